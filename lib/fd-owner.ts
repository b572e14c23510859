// FdOwner: a descriptor that belongs to one JavaScript object. close()
// closes it; if that never happens, the native side closes it when the
// object is garbage collected or its thread's environment is torn down
// (src/core/owner.rs). SharedMemory holds one.

import { native } from './native'

export class FdOwner {
  /** The native handle (an external) whose finalizer closes the descriptor. */
  readonly #handle: object
  #fd: number

  private constructor(handle: object, fd: number) {
    this.#handle = handle
    this.#fd = fd
  }

  /**
   * Takes ownership of the open descriptor `fd`. Fails, without taking it,
   * if `fd` is not open, or if another FdOwner already holds it (`Error`
   * coded `ERR_SHM_FD_OWNED`): two owners would close it twice, and the
   * second close would hit whatever reused the number.
   */
  static adopt(fd: number): FdOwner {
    return new FdOwner(native.fdOwnerAdopt(fd), fd)
  }

  /**
   * As `adopt`, but a descriptor another FdOwner holds is left to it: a
   * duplicate (F_DUPFD_CLOEXEC) is owned instead.
   */
  static adoptOrDuplicate(fd: number): FdOwner {
    try {
      return FdOwner.adopt(fd)
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code !== 'ERR_SHM_FD_OWNED') throw error
    }
    const duplicate = native.shmDuplicate(fd)
    try {
      return FdOwner.adopt(duplicate)
    } catch (error) {
      native.shmClose(duplicate)
      throw error
    }
  }

  /** The descriptor number, or -1 once closed (as Node's `FileHandle.fd`). */
  get fd(): number {
    return this.#fd
  }

  /** Closes the descriptor and reports close(2)'s result; later calls do nothing. */
  close(): void {
    if (this.#fd === -1) return
    this.#fd = -1
    native.fdOwnerClose(this.#handle)
  }
}
