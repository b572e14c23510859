// The low-level API: one function per system call, taking and returning
// plain descriptors, as the Lisp original's functions do.

import { constants as bufferConstants } from 'node:buffer'
import { isArrayBuffer, isArrayBufferView, isSharedArrayBuffer } from 'node:util/types'

import { isOwned, releaseAndDetach, trackMapping } from './mappings'
import { native } from './native'
import { invalidType, invalidValue } from './errors'
import type { OpenFlag, Permission, Protection } from './keywords'
import {
  normalizeName,
  openFlagBits,
  permissionBits,
  protectionBits,
  validateBoolean,
  validateFd,
  validateFileLength,
  validateId,
  validateInteger,
  validateObject,
  validateOffset,
} from './validate'

export interface OpenOptions {
  /** Keywords (exactly one of read-only / read-write) or the OR of `constants.O_*`. Default `['read-write']`. */
  openFlags?: readonly OpenFlag[] | number
  /** Mode of a created object, less the umask. Keywords or the OR of `constants.S_I*`. Default `0o600`. */
  permissions?: readonly Permission[] | number
}

/** What `fstat` reports about a shared memory object (the native side's type): times in milliseconds since the epoch, as `fs.Stats`. */
export type ShmStats = import('../native/entries').ShmStats

const DEFAULT_OPEN_FLAGS: readonly OpenFlag[] = ['read-write']
const DEFAULT_PERMISSIONS = 0o600
const DEFAULT_ANONYMOUS_ATTEMPTS = 100

function openOptions(options: unknown): { flags: number; mode: number } {
  if (options === undefined) options = {}
  validateObject(options, 'options')
  return {
    flags: openFlagBits(options.openFlags ?? DEFAULT_OPEN_FLAGS, 'options.openFlags'),
    mode: permissionBits(options.permissions ?? DEFAULT_PERMISSIONS, 'options.permissions'),
  }
}

/** Opens, and with `create` creates, the shared memory object `name`; returns its descriptor. */
export function shmOpen(name: string, options?: OpenOptions): number {
  const path = normalizeName(name)
  const { flags, mode } = openOptions(options)
  return native.shmOpenNamed(path, flags, mode)
}

/**
 * Creates an object that no name reaches, and returns its descriptor: only
 * this descriptor, and whoever it is passed to, reaches the object. On
 * Linux it is a memfd (`memfd_create`, close-on-exec), on FreeBSD
 * `SHM_ANON`; it never has a name. On macOS it is created under an
 * unguessable random name (create and exclusive added to `openFlags`) that
 * is unlinked at once, retrying only on EEXIST, at most `attempts` times
 * (default 100; `attempts` matters only there).
 */
export function shmOpenAnonymous(options?: OpenOptions & { attempts?: number }): number {
  const { flags, mode } = openOptions(options)
  const attempts = validateInteger(options?.attempts ?? DEFAULT_ANONYMOUS_ATTEMPTS, 'options.attempts', 1, 2 ** 32 - 1)
  return native.shmOpenAnonymous(flags, mode, attempts, false)
}

/** Sets the size of the object behind `fd` to exactly `length` bytes. */
export function shmFtruncate(fd: number, length: number | bigint): void {
  validateFd(fd)
  const size = validateFileLength(length, 'length')
  native.shmFtruncate(fd, size)
}

export interface MmapOptions {
  /**
   * Return a SharedArrayBuffer instead of an ArrayBuffer: it can be posted
   * to worker threads without a copy and used with `Atomics.wait`. It
   * cannot be unmapped by `munmap`: the range is unmapped once the last
   * thread holding it lets it go. Needs Node.js 22.23.3+, 24.16+, 26.1+ or
   * Bun; elsewhere throws ShmError `ERR_SHM_NO_SHARED_BUFFERS`. Default false.
   */
  shared?: boolean
}

/**
 * Maps `length` bytes of the object behind `fd`, from `offset` (a multiple
 * of `constants.pageSize`), always `MAP_SHARED`. The range must lie within
 * the object's current size. Returns one ArrayBuffer over the mapping
 * (a SharedArrayBuffer with `shared: true`); make views on it. Without
 * `write` in `protections`, writing through a view ends the process (the
 * kernel raises SIGSEGV).
 */
export function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset: number | undefined, options: MmapOptions & { shared: true }): SharedArrayBuffer
export function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset?: number, options?: MmapOptions & { shared?: false }): ArrayBuffer
export function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset?: number, options?: MmapOptions): ArrayBuffer | SharedArrayBuffer
export function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset = 0, options?: MmapOptions): ArrayBuffer | SharedArrayBuffer {
  // One ArrayBuffer per mapping, so a mapping can be no larger than the
  // runtime's largest buffer (4 GiB on Node 20).
  const size = validateInteger(length, 'length', 1, bufferConstants.MAX_LENGTH)
  const prot = protectionBits(protections)
  validateFd(fd)
  validateOffset(offset)
  const shared = sharedOption(options)
  if (shared) return native.mmapSharedBuffer(size, prot, fd, offset)
  return trackMapping(native.mmapShared(size, prot, fd, offset))
}

/** `options.shared`, checked. */
function sharedOption(options: unknown): boolean {
  if (options === undefined) return false
  validateObject(options, 'options')
  return validateBoolean(options.shared ?? false, 'options.shared')
}

/**
 * Unmaps what `mmap` returned, given the ArrayBuffer or any view on it.
 * The ArrayBuffer is detached first: its `byteLength`, and every view's
 * length, become 0, so nothing can reach the unmapped memory. A
 * SharedMemory's `buffer` is refused: its `close()` unmaps it.
 */
export function munmap(mapped: ArrayBuffer | ArrayBufferView): void {
  const unmappable = 'a SharedArrayBuffer, even one from mmap() with `shared: true`, cannot be unmapped: it is unmapped once the last thread holding it lets it go'
  if (isSharedArrayBuffer(mapped)) {
    throw invalidType('mapped', `an ArrayBuffer returned by mmap() or a view on one (${unmappable})`, mapped)
  }
  if (isArrayBufferView(mapped) && isSharedArrayBuffer(mapped.buffer)) throw invalidValue('mapped', `is a view on ${unmappable}`, mapped)
  // util.types sees ArrayBuffers of every realm (a vm context's too).
  if (!isArrayBuffer(mapped) && !isArrayBufferView(mapped)) {
    throw invalidType('mapped', 'an ArrayBuffer returned by mmap() or a view on one', mapped)
  }
  if (isOwned(mapped)) {
    throw invalidValue('mapped', "belongs to a SharedMemory: call that object's close(), which also closes its descriptor", mapped)
  }
  releaseAndDetach(mapped, (detach) => native.munmapShared(mapped, detach))
}

/** Removes the name `name`; objects stay alive while open or mapped anywhere. */
export function shmUnlink(name: string): void {
  const path = normalizeName(name)
  native.shmUnlinkNamed(path)
}

/** Closes `fd`. Closing it again is EBADF, as with `fs.closeSync`. */
export function shmClose(fd: number): void {
  validateFd(fd)
  native.shmClose(fd)
}

export function fstat(fd: number): ShmStats {
  validateFd(fd)
  return native.shmFstat(fd)
}

/** Changes the object's permission bits (not subject to the umask). */
export function fchmod(fd: number, permissions: readonly Permission[] | number): void {
  validateFd(fd)
  const mode = permissionBits(permissions)
  native.shmFchmod(fd, mode)
}

/** Changes the object's owner and group; -1 leaves one unchanged. */
export function fchown(fd: number, uid: number, gid: number): void {
  validateFd(fd)
  validateId(uid, 'uid')
  validateId(gid, 'gid')
  native.shmFchown(fd, uid, gid)
}
