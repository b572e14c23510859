// Cross-process wait and notify on a word of a mapping, with the
// arguments, results and rules of Atomics.wait, Atomics.waitAsync and
// Atomics.notify (which cannot help here: V8 keeps their waiters inside
// one process). The waiting itself is native: a brief spin, then a kernel
// sleep (futex, ulock, umtx); see src/core/wait/mod.rs. Pending waitAsync calls
// share a few watcher threads (src/core/wait/pending.rs).

import { isArrayBuffer, isInt32Array } from 'node:util/types'

import { invalidType, withCode } from './errors'
import type { AbortSignalLike } from './host-types'
import { native } from './native'
import { validateCount, validateInteger, validateSignal, validateTimeout, validateWaitValue } from './validate'

export type WaitResult = 'ok' | 'not-equal' | 'timed-out'

/** Indexed by the native result code. */
const RESULTS: readonly WaitResult[] = ['ok', 'not-equal', 'timed-out']

export interface WaitAsyncOptions {
  /** Aborting rejects the promise with an AbortError and stops the wait. */
  signal?: AbortSignalLike
}

/**
 * A word named by an ArrayBuffer of ours and a byte offset into it, or, on
 * a SharedArrayBuffer (which Node-API reads only through a view), by the
 * view and a byte offset from the view's start.
 */
export interface WordAddress {
  buffer: ArrayBuffer | Int32Array
  byteOffset: number
}

function locate(view: unknown, index: unknown): WordAddress {
  // instanceof first: it is the common case and much cheaper than the
  // util.types checks, which are there for views from other realms.
  if (!(view instanceof Int32Array) && !isInt32Array(view)) throw invalidType('view', 'an Int32Array over a mapping', view)
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= view.length) {
    validateInteger(index, 'index', 0, view.length - 1)
  }
  const buffer = view.buffer
  if (buffer instanceof ArrayBuffer || isArrayBuffer(buffer)) {
    return { buffer: buffer as ArrayBuffer, byteOffset: view.byteOffset + (index as number) * 4 }
  }
  // A SharedArrayBuffer: the native side finds the mapping by the view's
  // memory, and refuses one that is not a mapping of ours.
  return { buffer: view as Int32Array, byteOffset: (index as number) * 4 }
}

export function abortError(signal: AbortSignal): Error {
  const error = withCode(new Error('The operation was aborted', { cause: signal.reason }), 'ABORT_ERR')
  error.name = 'AbortError'
  return error
}

/**
 * Runs a native async wait, settling the promise with its result, or
 * rejecting with an AbortError (and stopping the wait) if `signal` aborts.
 */
export function settleWait(
  start: (settle: (result: number | Error) => void) => number | { cancel(): void },
  signal: AbortSignal | undefined,
): Promise<WaitResult> {
  if (signal?.aborted) return Promise.reject(abortError(signal))
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      if (typeof started !== 'number') started.cancel()
      reject(abortError(signal!))
    }
    // The native side spins briefly first, and answers at once (a result
    // code) if the wait ended within the spin.
    // A pending wait whose system call failed settles with its ShmError.
    const settle = (result: number | Error) => {
      if (typeof result === 'number') resolve(waitResult(result))
      else reject(result)
    }
    const started = start((code) => {
      signal?.removeEventListener('abort', onAbort)
      settle(code)
    })
    if (typeof started === 'number') settle(started)
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * A native result code as a result. 3 is a synchronous wait given up
 * because its worker is being terminated (or the process is exiting): no
 * JavaScript runs after it, so what it returns is never seen. (A failed
 * wait throws its ShmError natively.)
 */
export function waitResult(code: number): WaitResult {
  return code === 3 ? 'timed-out' : RESULTS[code]!
}

/**
 * Waits while `view[index]` holds `value`, until notified from any
 * process, or for `timeoutMs`. Blocks the thread, as Atomics.wait does in a
 * worker: on the main thread prefer `waitAsync`.
 */
export function wait(view: Int32Array, index: number, value: number, timeoutMs?: number): WaitResult {
  const { buffer, byteOffset } = locate(view, index)
  const expected = validateWaitValue(value)
  const timeout = validateTimeout(timeoutMs)
  return waitResult(native.waitInBuffer(buffer, byteOffset, expected, timeout))
}

/**
 * `wait` without blocking: resolves when notified, at once with
 * 'not-equal' if `view[index]` is not `value` now, or with 'timed-out'.
 * The waiting happens on a thread of posix-shm's own, not libuv's pool, and
 * keeps the process alive while pending, as a timer does.
 */
export function waitAsync(
  view: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
  options?: WaitAsyncOptions,
): Promise<WaitResult> {
  const { buffer, byteOffset } = locate(view, index)
  const expected = validateWaitValue(value)
  const timeout = validateTimeout(timeoutMs)
  const signal = validateSignal(options)
  if (signal?.aborted) return Promise.reject(abortError(signal))
  // The first look at the word is native (Atomics.load here would crash on
  // a view without read access, or on a word whose page a shrinking peer
  // cut away): a TypeError, or EFAULT on Linux, rejects the promise.
  let first: number
  try {
    first = native.peekInBuffer(buffer, byteOffset, expected)
  } catch (error) {
    return Promise.reject(error as Error)
  }
  if (first === 1) return Promise.resolve('not-equal')
  if (timeout <= 0) return Promise.resolve('timed-out')
  return settleWait(
    (settle) => native.waitInBufferAsync(buffer, byteOffset, expected, timeout, settle),
    signal,
  )
}

/** Wakes up to `count` (default: all) waiters on `view[index]` in every process; returns how many were asleep. */
export function notify(view: Int32Array, index: number, count?: number): number {
  const { buffer, byteOffset } = locate(view, index)
  const howMany = validateCount(count)
  return native.notifyInBuffer(buffer, byteOffset, howMany)
}
