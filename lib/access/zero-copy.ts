// Zero-copy access: the mapping is one external ArrayBuffer, and the
// SharedMemory's `buffer` is a Buffer over it. Reads, writes and atomics
// run in JavaScript on the mapped memory; waits and notifies name the word
// to the native side by that ArrayBuffer and an offset.

import { markOwned } from '../mappings'
import type { NodeBuffer } from '../host-types'
import { native } from '../native'
import { mmap } from '../shm'
import type { Access } from './access'

export class ZeroCopyAccess implements Access {
  readonly #mapped: ArrayBuffer
  readonly #buffer: NodeBuffer
  #words: Int32Array | undefined

  private constructor(mapped: ArrayBuffer) {
    this.#mapped = mapped
    this.#buffer = Buffer.from(mapped)
  }

  /**
   * Maps `size` bytes of `fd`. Where the runtime refuses external
   * ArrayBuffers, throws ShmError ERR_SHM_NO_EXTERNAL_BUFFERS, having
   * mapped nothing.
   */
  static map(size: number, protections: number, fd: number): ZeroCopyAccess {
    const mapped = mmap(size, protections, fd, 0)
    markOwned(mapped)
    return new ZeroCopyAccess(mapped)
  }

  buffer(): NodeBuffer {
    return this.#buffer
  }

  /** The Int32 view for atomics, made on first use. */
  #ints(): Int32Array {
    this.#words ??= new Int32Array(this.#mapped, 0, Math.floor(this.#mapped.byteLength / 4))
    return this.#words
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
    return native.waitInBuffer(this.#mapped, byteOffset, value, timeoutMs)
  }

  waitAsync(byteOffset: number, value: number, timeoutMs: number, settle: (result: number | Error) => void): number | { cancel(): void } {
    return native.waitInBufferAsync(this.#mapped, byteOffset, value, timeoutMs, settle)
  }

  notify(byteOffset: number, count: number): number {
    return native.notifyInBuffer(this.#mapped, byteOffset, count)
  }

  unmap(): void {
    // `munmap` refuses our buffer, but a direct call to the binding can
    // unmap (and so detach) it: then there is nothing left to unmap.
    if (this.#mapped.byteLength !== 0) native.munmapShared(this.#mapped)
  }
}
