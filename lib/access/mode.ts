// Which access a SharedMemory gets: zero-copy where the runtime allows
// external ArrayBuffers, copy where it refuses them (Electron 21 and
// later, or POSIX_SHM_NO_EXTERNAL_BUFFERS=1 when posix-shm loads).
// Decided for the whole process, and revised at most once: when a runtime
// we did not recognize refuses the first zero-copy mapping.

import { constants } from '../constants'
import { ShmError } from '../errors'
import { native } from '../native'
import type { Access } from './access'
import { CopyAccess } from './copy'
import { ZeroCopyAccess } from './zero-copy'

/** Electron 21 and later refuse external ArrayBuffers in every process. */
function runtimeRefusesExternalBuffers(): boolean {
  const electron = process.versions.electron
  return electron !== undefined && Number(electron.split('.')[0]) >= 21
}

let zeroCopy = native.externalBuffersAllowed() && !runtimeRefusesExternalBuffers()

/** Whether mappings are made zero-copy in this process (SharedMemory.zeroCopy). */
export function zeroCopyAllowed(): boolean {
  return zeroCopy
}

/**
 * Maps `size` bytes of `fd` in the mode this runtime allows, or over a
 * SharedArrayBuffer if `shared` (which the caller has checked the runtime
 * can make: there is no copying fallback for it).
 */
export function mapAccess(size: number, readOnly: boolean, fd: number, shared: boolean): Access {
  const protections = readOnly ? constants.PROT_READ : constants.PROT_READ | constants.PROT_WRITE
  if (shared) return ZeroCopyAccess.map(size, protections, fd, true)
  if (zeroCopy) {
    try {
      return ZeroCopyAccess.map(size, protections, fd, false)
    } catch (error) {
      if (!(error instanceof ShmError) || error.code !== 'ERR_SHM_NO_EXTERNAL_BUFFERS') throw error
      // A runtime we did not recognize refuses them: copy from now on.
      zeroCopy = false
    }
  }
  return CopyAccess.map(size, protections, fd)
}
