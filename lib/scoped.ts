// The scoped helpers: open or map, run a body, and release what was opened
// when the body returns, throws, or (when it returns a promise) settles.

import type { Protection } from './keywords'
import { mmap, munmap, shmClose, shmFtruncate, shmOpen, type OpenOptions } from './shm'
import { protectionBits, validateFunction, validateLength, validateObject, validateOffset } from './validate'

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

/** Opens `name`, runs `body(fd)`, and closes the descriptor afterwards (it does not unlink). */
export function withOpenShm<T>(name: string, options: OpenOptions, body: (fd: number) => T): T {
  validateFunction(body, 'body')
  const fd = shmOpen(name, options)
  return releasing(
    () => body(fd),
    () => shmClose(fd),
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
  /** Whether to ftruncate the object to `offset + length` first. Default true. */
  truncate?: boolean
}

/**
 * Opens `name`, ftruncates it to `offset + length` (unless `map.truncate`
 * is false), maps it, runs `body(fd, mapped)`, then unmaps and closes.
 */
export function withMmappedShm<T>(
  name: string,
  options: OpenOptions,
  map: MapOptions,
  body: (fd: number, mapped: ArrayBuffer) => T,
): T {
  validateObject(map, 'map')
  const length = validateLength(map.length, 'map.length', 1)
  protectionBits(map.protections, 'map.protections')
  const offset = validateOffset(map.offset ?? 0, 'map.offset')
  validateFunction(body, 'body')
  return withOpenShm(name, options, (fd) => {
    if (map.truncate !== false) shmFtruncate(fd, offset + length)
    return withMmap(length, map.protections, fd, offset, (mapped) => body(fd, mapped))
  })
}
