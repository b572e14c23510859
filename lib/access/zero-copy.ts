// Zero-copy access: the mapping is one external ArrayBuffer, or with
// `shared: true` one SharedArrayBuffer, and the SharedMemory's `buffer` is
// a Buffer over it. Reads, writes and atomics run in JavaScript on the
// mapped memory; waits and notifies name the word to the native side by an
// Int32Array over the whole mapping and an offset.

import { markOwned, releaseAndDetach } from '../mappings'
import type { HostBuffer } from '../host-types'
import { native } from '../native'
import { mmap } from '../shm'
import type { Access } from './access'

export class ZeroCopyAccess implements Access {
  readonly #mapped: ArrayBuffer | SharedArrayBuffer
  readonly #buffer: HostBuffer<ArrayBufferLike>
  #words: Int32Array | undefined

  private constructor(mapped: ArrayBuffer | SharedArrayBuffer) {
    this.#mapped = mapped
    this.#buffer = Buffer.from(mapped)
  }

  /**
   * Maps `size` bytes of `fd`, as a SharedArrayBuffer if `shared`. Where
   * the runtime refuses external ArrayBuffers, throws ShmError
   * ERR_SHM_NO_EXTERNAL_BUFFERS (ERR_SHM_NO_SHARED_BUFFERS for `shared`),
   * having mapped nothing.
   */
  static map(size: number, protections: number, fd: number, shared: boolean): ZeroCopyAccess {
    if (shared) return new ZeroCopyAccess(mmap(size, protections, fd, 0, { shared: true }))
    const mapped = mmap(size, protections, fd, 0)
    markOwned(mapped)
    return new ZeroCopyAccess(mapped)
  }

  buffer(): HostBuffer<ArrayBufferLike> {
    return this.#buffer
  }

  /** The Int32 view for atomics, made on first use. */
  #ints(): Int32Array {
    this.#words ??= new Int32Array(this.#mapped, 0, Math.floor(this.#mapped.byteLength / 4))
    return this.#words
  }

  /**
   * What names a word of the mapping to the native side: the ArrayBuffer,
   * or for a SharedArrayBuffer (which Node-API reads only through a view)
   * the Int32Array over all of it.
   */
  #word(): ArrayBuffer | Int32Array {
    return this.#mapped instanceof ArrayBuffer ? this.#mapped : this.#ints()
  }

  readInto(target: Uint8Array, byteOffset: number): number {
    target.set(this.#buffer.subarray(byteOffset, byteOffset + target.length))
    return target.length
  }

  write(source: Uint8Array, byteOffset: number): number {
    this.#buffer.set(source, byteOffset)
    return source.length
  }

  atomicLoad(byteOffset: number): number {
    return Atomics.load(this.#ints(), byteOffset / 4)
  }

  atomicStore(byteOffset: number, value: number): number {
    return Atomics.store(this.#ints(), byteOffset / 4, value)
  }

  atomicAdd(byteOffset: number, delta: number): number {
    return Atomics.add(this.#ints(), byteOffset / 4, delta)
  }

  atomicCompareExchange(byteOffset: number, expected: number, replacement: number): number {
    return Atomics.compareExchange(this.#ints(), byteOffset / 4, expected, replacement)
  }

  wait(byteOffset: number, value: number, timeoutMs: number): number {
    return native.waitInBuffer(this.#word(), byteOffset, value, timeoutMs)
  }

  waitAsync(byteOffset: number, value: number, timeoutMs: number, settle: (result: number | Error) => void): number | { cancel(): void } {
    return native.waitInBufferAsync(this.#word(), byteOffset, value, timeoutMs, settle)
  }

  notify(byteOffset: number, count: number): number {
    return native.notifyInBuffer(this.#word(), byteOffset, count)
  }

  unmap(): void {
    // A SharedArrayBuffer cannot be detached: letting go of it is all this
    // object can do, and the pages go when the last thread lets go too.
    if (!(this.#mapped instanceof ArrayBuffer)) return
    // `munmap` refuses our buffer, but a direct call to the binding can
    // unmap (and so detach) it: then there is nothing left to unmap.
    const mapped = this.#mapped
    if (mapped.byteLength !== 0) releaseAndDetach(mapped, (detach) => native.munmapShared(mapped, detach))
  }
}
