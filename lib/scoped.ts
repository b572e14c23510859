// The scoped helpers: open or map, run a body, and release what was opened
// when the body returns, throws, or (when it returns a promise) settles.

import type { Protection } from './keywords'
import { constants as bufferConstants } from 'node:buffer'

import { fstat, mmap, munmap, shmClose, shmOpen, type OpenOptions, type ShmStats } from './shm'
import { protectionBits, validateFunction, validateInteger, validateObject, validateOffset } from './validate'
import { callNative, invalidType, outOfRange } from './errors'
import { native } from './native'

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/**
 * Runs `body`, then `release`. The body's error reaches the caller
 * unchanged (an error from `release` after it is dropped); a promise from
 * the body is returned as a promise that settles the same way, after the
 * release.
 */
function releasing<T>(body: () => T, release: () => void): T {
  let result: T
  try {
    result = body()
  } catch (error) {
    try {
      release()
    } catch {
      // The body's error is the one the caller needs to see.
    }
    throw error
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      (value) => {
        release()
        return value
      },
      (error: unknown) => {
        try {
          release()
        } catch {
          // As above: the body's rejection wins.
        }
        throw error
      },
    ) as T
  }
  release()
  return result
}

/**
 * Opens `name`, runs `body(fd)`, and closes the descriptor afterwards (it
 * does not unlink). If the body closed `fd` itself, and the number now
 * belongs to something else, that is left alone.
 */
export function withOpenShm<T>(name: string, options: OpenOptions, body: (fd: number) => T): T {
  validateFunction(body, 'body')
  const fd = shmOpen(name, options)
  const opened = fstat(fd)
  return releasing(
    () => body(fd),
    () => {
      let now: ShmStats
      try {
        now = fstat(fd)
      } catch {
        return // closed by the body
      }
      if (now.ino === opened.ino && now.dev === opened.dev) shmClose(fd)
    },
  )
}

/** Maps, runs `body(mapped)`, and unmaps afterwards (unless the body already did). */
export function withMmap<T>(
  length: number,
  protections: readonly Protection[] | number,
  fd: number,
  offset: number,
  body: (mapped: ArrayBuffer) => T,
): T {
  validateFunction(body, 'body')
  const mapped = mmap(length, protections, fd, offset)
  return releasing(
    () => body(mapped),
    () => {
      // A detached buffer has byteLength 0: the body unmapped it itself.
      if (mapped.byteLength !== 0) munmap(mapped)
    },
  )
}

export interface MapOptions {
  length: number
  protections: readonly Protection[] | number
  /** Default 0. */
  offset?: number
  /**
   * Whether to grow the object to `offset + length` first if it is smaller
   * (default true). It is never shrunk: that would make other mappings of
   * it fail with SIGBUS.
   */
  truncate?: boolean
}

/**
 * Opens `name`, grows it to `offset + length` if it is smaller (unless
 * `map.truncate` is false), maps it, runs `body(fd, mapped)`, then unmaps
 * and closes. Every argument is checked before the object is opened.
 */
export function withMmappedShm<T>(
  name: string,
  options: OpenOptions,
  map: MapOptions,
  body: (fd: number, mapped: ArrayBuffer) => T,
): T {
  validateObject(map, 'map')
  // Each field is read once, so a getter cannot change it between checks.
  const { length, protections, offset = 0, truncate = true } = map
  validateInteger(length, 'map.length', 1, bufferConstants.MAX_LENGTH)
  protectionBits(protections, 'map.protections')
  validateOffset(offset, 'map.offset')
  const end = offset + length
  if (end > Number.MAX_SAFE_INTEGER) throw outOfRange('map.offset + map.length', `<= ${Number.MAX_SAFE_INTEGER}`, end)
  if (typeof truncate !== 'boolean') throw invalidType('map.truncate', 'of type boolean', truncate)
  validateFunction(body, 'body')
  return withOpenShm(name, options, (fd) => {
    // Grow-only, and safe against another process growing it meanwhile.
    if (truncate) callNative(() => native.shmGrow(fd, end))
    return withMmap(length, protections, fd, offset, (mapped) => body(fd, mapped))
  })
}
