// How a SharedMemory reaches its mapping. There is one implementation per
// access mode, and a SharedMemory gets one of them when it is made
// (mode.ts) and keeps it: zero-copy.ts, through a Buffer over the mapping,
// and copy.ts, through the native side, for runtimes that refuse external
// ArrayBuffers. A mode over a SharedArrayBuffer would be a third.
//
// SharedMemory checks every argument, and whether it is closed, before it
// calls in here: offsets are in range, word offsets a multiple of 4.

import type { HostBuffer } from '../host-types'

export interface Access {
  /** A Buffer over the whole mapping (its ArrayBuffer or SharedArrayBuffer), or the ShmError saying that this mode has none. */
  buffer(): HostBuffer<ArrayBufferLike>
  /** Copies from `byteOffset` into all of `target`; returns the number of bytes. */
  readInto(target: Uint8Array, byteOffset: number): number
  /** Copies all of `source` to `byteOffset`; returns the number of bytes. */
  write(source: Uint8Array, byteOffset: number): number
  atomicLoad(byteOffset: number): number
  atomicStore(byteOffset: number, value: number): number
  atomicAdd(byteOffset: number, delta: number): number
  atomicCompareExchange(byteOffset: number, expected: number, replacement: number): number
  /** Waits while the word holds `value`; the native result code (see `waitResult`). */
  wait(byteOffset: number, value: number, timeoutMs: number): number
  /** Starts an async wait: a result code at once, or a pending wait that calls `settle` with one (or with the ShmError of its failed system call). */
  waitAsync(byteOffset: number, value: number, timeoutMs: number, settle: (result: number | Error) => void): number | { cancel(): void }
  /** Wakes up to `count` waiters on the word; returns how many were asleep. */
  notify(byteOffset: number, count: number): number
  /** Unmaps. Called once, by SharedMemory's close(). */
  unmap(): void
}
