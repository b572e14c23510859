// The scoped helpers: open or map, run a body, and release what was opened
// when the body returns, throws, or (when it returns a promise) settles.

import type { Protection } from './keywords'
import { constants as bufferConstants } from 'node:buffer'

import { fstat, mmap, munmap, shmClose, shmOpen, type OpenOptions, type ShmStats } from './shm'
import { protectionBits, validateFunction, validateInteger, validateObject, validateOffset } from './validate'
import { invalidType, outOfRange } from './errors'
import { native } from './native'

/**
 * Runs `body`, then `release`, exactly once. The body's error reaches the
 * caller unchanged (an error from `release` after it is dropped).
 *
 * A result with a callable `then` is taken as a promise: `then` is read
 * once and called once, and the caller gets a promise that settles as the
 * result does, after the release. Reading `then` only once matters: a
 * getter may answer differently each time, or throw, and the release
 * must not depend on which answer comes when. If reading `then` throws,
 * the release happens and that error is thrown. A result whose `then`
 * never calls back keeps the descriptor or mapping, exactly as a promise
 * that never settles (or a body that never returns) does: the body may
 * still be using it through other references, so it is not released on a
 * guess, nor when the result is garbage collected.
 */
function releasing<T>(body: () => T, release: () => void): T {
  let result: T
  let then: unknown
  try {
    result = body()
    if ((typeof result === 'object' && result !== null) || typeof result === 'function') {
      then = (result as { then?: unknown }).then
    }
  } catch (error) {
    try {
      release()
    } catch {
      // The body's error is the one the caller needs to see.
    }
    throw error
  }
  if (typeof then !== 'function') {
    release()
    return result
  }
  const thenable = result
  // The promise's own resolve and reject settle it once, however often
  // `then` calls them, and adopt a thenable it resolves with; a `then`
  // that throws rejects it (ignored if it had settled already).
  const settled = new Promise((resolve, reject) => {
    ;(then as (onFulfilled: (value: unknown) => void, onRejected: (reason: unknown) => void) => unknown).call(
      thenable,
      resolve,
      reject,
    )
  })
  return settled.then(
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
      if (now.ino !== opened.ino || now.dev !== opened.dev) return // reused by the body
      try {
        shmClose(fd)
      } catch (error) {
        // The body gave it to SharedMemory.fromFd, which closes it itself.
        if ((error as { code?: unknown } | null)?.code !== 'ERR_SHM_FD_OWNED') throw error
      }
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
    if (truncate) native.shmGrow(fd, end)
    return withMmap(length, protections, fd, offset, (mapped) => body(fd, mapped))
  })
}
