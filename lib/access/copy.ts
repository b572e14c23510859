// Copy access, for runtimes that refuse external ArrayBuffers (Electron 21
// and later): the mapping stays on the native side (a MappedRegion), and
// every read, write, atomic and wait is a native call. There is no Buffer
// over the mapping: a copy would not be shared.

import { ShmError, stateError } from '../errors'
import { native } from '../native'
import type { Access } from './access'

type MappedRegion = InstanceType<typeof native.MappedRegion>

export class CopyAccess implements Access {
  readonly #region: MappedRegion

  private constructor(region: MappedRegion) {
    this.#region = region
  }

  /** Maps `size` bytes of `fd`. */
  static map(size: number, protections: number, fd: number): CopyAccess {
    return new CopyAccess(native.MappedRegion.map(size, protections, fd, 0))
  }

  buffer(): never {
    throw noBufferError()
  }

  readInto(target: Uint8Array, byteOffset: number): number {
    return this.#region.readInto(target, byteOffset)
  }

  write(source: Uint8Array, byteOffset: number): number {
    return this.#region.write(source, byteOffset)
  }

  atomicLoad(byteOffset: number): number {
    return this.#region.atomicLoad(byteOffset)
  }

  atomicStore(byteOffset: number, value: number): number {
    return this.#region.atomicStore(byteOffset, value)
  }

  atomicAdd(byteOffset: number, delta: number): number {
    return this.#region.atomicAdd(byteOffset, delta)
  }

  atomicCompareExchange(byteOffset: number, expected: number, replacement: number): number {
    return this.#region.atomicCompareExchange(byteOffset, expected, replacement)
  }

  wait(byteOffset: number, value: number, timeoutMs: number): number {
    return this.#region.wait(byteOffset, value, timeoutMs)
  }

  waitAsync(byteOffset: number, value: number, timeoutMs: number, settle: (result: number | Error) => void): number | { cancel(): void } {
    return this.#region.waitAsync(byteOffset, value, timeoutMs, settle)
  }

  notify(byteOffset: number, count: number): number {
    return this.#region.notify(byteOffset, count)
  }

  unmap(): void {
    this.#region.close()
  }
}

function noBufferError(): ShmError {
  return stateError(
    'ERR_SHM_NO_EXTERNAL_BUFFERS',
    'this runtime refuses external ArrayBuffers (Electron 21 and later do), so there is no zero-copy buffer; ' +
      'use read(), readInto(), write() and the atomic*() methods, which copy',
  )
}
