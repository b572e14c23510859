/// <reference lib="esnext.disposable" preserve="true" />

// SharedMemory: one object for the whole lifecycle of a shared memory
// object: create or open, map, hand out a Buffer, clean up.
//
// Lifecycle, as in Python's multiprocessing.shared_memory: every process
// that uses the object calls close() (or lets `using` do it) when done;
// exactly one of them calls unlink() to remove the name. The object itself
// lives until the last process has closed it and the name is gone.
//
// How it reaches the mapping, through a Buffer or by copying, is its
// Access (access/), chosen once when it is made.

import { constants as bufferConstants } from 'node:buffer'
import { inspect } from 'node:util'

import type { Access } from './access/access'
import { mapAccess, zeroCopyAllowed } from './access/mode'
import { constants } from './constants'
import { ShmError, invalidType, outOfRange, stateError, withCode } from './errors'
import type { Permission } from './keywords'
import { FdOwner } from './fd-owner'
import type { HostBuffer, NodeBuffer } from './host-types'
import { native } from './native'
import { fstat, shmClose, shmOpen, shmUnlink } from './shm'
import {
  normalizeName,
  permissionBits,
  validateBoolean,
  validateCount,
  validateFd,
  validateInteger,
  validateObject,
  validateSignal,
  validateSize,
  validateTimeout,
  validateWaitValue,
} from './validate'
import { abortError, settleWait, waitResult, type WaitAsyncOptions, type WaitResult } from './wait'

export interface CreateOptions {
  /** Mode of the new object, less the umask. Default `0o600`. */
  permissions?: readonly Permission[] | number
  /** Fail with EEXIST if the name exists (default true). Otherwise open it, growing it to `size` if smaller. */
  exclusive?: boolean
  /** Reserve the pages now, so a full /dev/shm fails here with ENOSPC rather than SIGBUS on first touch (Linux). */
  allocate?: boolean
  /**
   * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
   * without a copy and used with `Atomics` there. `close()` then closes the
   * descriptor and lets go of this object's buffer; the pages are unmapped
   * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
   * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
   * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
   */
  shared?: boolean
}

export interface OpenSharedOptions {
  /** Open and map read-only. Default false. */
  readOnly?: boolean
  /** How many bytes to map. Default: the object's size. */
  size?: number
  /**
   * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
   * without a copy and used with `Atomics` there. `close()` then closes the
   * descriptor and lets go of this object's buffer; the pages are unmapped
   * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
   * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
   * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
   */
  shared?: boolean
}

export interface AnonymousOptions {
  /** As for `create`. */
  allocate?: boolean
  /**
   * Linux: once sized, seal the object's size, so that no process it is
   * passed to can shrink it under this one's mapping (or grow it). Default
   * false. Elsewhere it throws `ERR_SHM_SEAL_UNSUPPORTED`.
   */
  seal?: boolean
  /**
   * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
   * without a copy and used with `Atomics` there. `close()` then closes the
   * descriptor and lets go of this object's buffer; the pages are unmapped
   * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
   * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
   * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
   */
  shared?: boolean
}

export interface FromFdOptions {
  /** How many bytes to map. Default: the object's size. */
  size?: number
  /** Map read-only. Default: whether the descriptor was opened read-only. */
  readOnly?: boolean
  /**
   * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
   * without a copy and used with `Atomics` there. `close()` then closes the
   * descriptor and lets go of this object's buffer; the pages are unmapped
   * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
   * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
   * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
   */
  shared?: boolean
}

/**
 * `options.shared`, checked; if true, also that this runtime can make
 * SharedArrayBuffers over mappings, so that a refusal comes before any
 * object is opened or created.
 */
function sharedOption(options: { shared?: unknown }): boolean {
  const shared = validateBoolean(options.shared ?? false, 'options.shared')
  if (shared) native.requireSharedBuffers()
  return shared
}

/**
 * A Buffer for a copy of `length` bytes. Its allocation is the one that can
 * fail for a length the caller chose; V8 then throws a bare RangeError,
 * given its code here. (Node-API's own buffer calls would end the process.)
 */
function allocateCopy(length: number): NodeBuffer {
  try {
    return Buffer.allocUnsafe(length)
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    throw withCode(new RangeError(`Cannot allocate ${length} bytes for the copy`, { cause: error }), 'ERR_MEMORY_ALLOCATION_FAILED')
  }
}

function emptyObjectError(path: string | undefined): ShmError {
  const what = path === undefined ? 'the object' : `'${path}'`
  return stateError('ERR_SHM_EMPTY', `${what} has size 0: there is nothing to map (its creator sizes it)`, path)
}

function closedError(): ShmError {
  return stateError('ERR_SHM_CLOSED', 'this SharedMemory is closed')
}

function readOnlyError(): ShmError {
  return stateError('ERR_SHM_READ_ONLY', 'this SharedMemory is read-only')
}

interface Setup {
  name: string | undefined
  path: string | undefined
  /** The open descriptor, already owned by `owner`. */
  owner: FdOwner
  readOnly: boolean
  /** Bytes to map; undefined: the object's current size. */
  size: number | undefined
  /** Bring the object to `size` first: allocate its pages, or only grow it. */
  sizing: 'allocate' | 'grow' | 'none'
  /** Whether this call created the name, so a failure must unlink it. */
  created: boolean
  /** Seal the size once sized (an anonymous object made sealable). */
  seal?: boolean
  /** Map over a SharedArrayBuffer. */
  shared: boolean
}

/** Takes ownership of a descriptor just opened; closes it if that fails. */
function adopt(fd: number): FdOwner {
  try {
    return FdOwner.adopt(fd)
  } catch (error) {
    shmClose(fd)
    throw error
  }
}

/**
 * A mapped shared memory object. `B` is the kind of memory `buffer` is
 * over: `ArrayBuffer` (the default), or `SharedArrayBuffer` when made with
 * `shared: true`; `ArrayBufferLike` when the option was not known to the
 * compiler (a `boolean`).
 */
export class SharedMemory<B extends ArrayBufferLike = ArrayBuffer> implements Disposable {
  /** The name as the caller gave it; undefined for `anonymous` and `fromFd`. */
  readonly name: string | undefined
  /** How many bytes are mapped. */
  readonly size: number
  readonly readOnly: boolean
  /** Whether `buffer` is over a SharedArrayBuffer (the `shared` option). */
  readonly shared: boolean
  readonly #path: string | undefined
  readonly #owner: FdOwner
  #access: Access | undefined
  #unlinked = false

  /**
   * Whether `buffer` is available in this runtime. False where external
   * ArrayBuffers are refused (Electron 21 and later, or
   * POSIX_SHM_NO_EXTERNAL_BUFFERS=1): then every SharedMemory works by
   * copying, through read(), readInto(), write() and the atomic*() methods.
   * Read-only: assigning to it throws a TypeError in strict code (and does
   * nothing in sloppy code); the mode is the runtime's, not the caller's.
   */
  static get zeroCopy(): boolean {
    return zeroCopyAllowed()
  }

  /**
   * Whether `shared: true` works in this runtime: Node.js 22.23.3+, 24.16+,
   * 26.1+ and Bun can make a SharedArrayBuffer over a mapping; Node.js 20,
   * Electron and copy mode cannot. Read-only.
   */
  static get sharedBuffers(): boolean {
    return native.sharedBuffersAllowed()
  }

  private constructor(setup: Setup, size: number, access: Access) {
    this.name = setup.name
    this.#path = setup.path
    this.#owner = setup.owner
    this.readOnly = setup.readOnly
    this.shared = setup.shared
    this.size = size
    this.#access = access
  }

  /** Sizes and maps; on any failure closes the descriptor and unlinks what this call created. */
  static #map(setup: Setup): SharedMemory<ArrayBufferLike> {
    const fd = setup.owner.fd
    try {
      let size = setup.size
      // Where the platform cannot allocate (macOS), shmAllocate does nothing
      // and says so: then the object is only grown.
      let allocated = false
      if (setup.sizing === 'allocate' && size !== undefined) {
        allocated = native.shmAllocate(fd, size!, setup.path)
      }
      if (setup.sizing !== 'none' && !allocated && size !== undefined) {
        // Never shrinks, even racing another create of the same name: a
        // shrink would kill every process mapping past the new end.
        native.shmGrow(fd, size!, setup.path)
      }
      if (setup.seal) native.shmSeal(fd)
      if (size === undefined) {
        size = fstat(fd).size
        if (size === 0) throw emptyObjectError(setup.path)
      }
      return new SharedMemory<ArrayBufferLike>(setup, size, mapAccess(size, setup.readOnly, fd, setup.shared))
    } catch (error) {
      try {
        setup.owner.close()
      } catch {
        // The original failure is the one to report.
      }
      if (setup.created && setup.path !== undefined) {
        try {
          shmUnlink(setup.path)
        } catch {
          // As above.
        }
      }
      throw error
    }
  }

  /**
   * Creates the object `name` of `size` bytes and maps it read-write. By
   * default the name must not exist yet (`exclusive: true`) and the mode is
   * 0600 less the umask. With `shared: true` the mapping is a
   * SharedArrayBuffer, and the result is typed `SharedMemory<SharedArrayBuffer>`.
   */
  static create(name: string, size: number, options: CreateOptions & { shared: true }): SharedMemory<SharedArrayBuffer>
  static create(name: string, size: number, options?: CreateOptions & { shared?: false }): SharedMemory<ArrayBuffer>
  static create(name: string, size: number, options?: CreateOptions): SharedMemory<ArrayBufferLike>
  static create(name: string, size: number, options: CreateOptions = {}): SharedMemory<ArrayBufferLike> {
    const path = normalizeName(name)
    validateSize(size, 'size')
    validateObject(options, 'options')
    const permissions = permissionBits(options.permissions ?? 0o600, 'options.permissions')
    const exclusive = validateBoolean(options.exclusive ?? true, 'options.exclusive')
    const allocate = validateBoolean(options.allocate ?? false, 'options.allocate')
    const shared = sharedOption(options)
    const { O_CREAT, O_EXCL, O_RDWR } = constants
    let fd: number
    let created = true
    try {
      fd = shmOpen(path, { openFlags: O_CREAT | O_EXCL | O_RDWR, permissions })
    } catch (error) {
      if (exclusive || !(error instanceof ShmError) || error.code !== 'EEXIST') throw error
      // It exists: open it without creating, so we know we did not make it
      // and never unlink someone else's object on failure.
      fd = shmOpen(path, { openFlags: O_RDWR })
      created = false
    }
    return SharedMemory.#map({
      name,
      path,
      owner: adopt(fd),
      readOnly: false,
      size,
      sizing: allocate ? 'allocate' : 'grow',
      created,
      shared,
    })
  }

  /** Opens the existing object `name` and maps `size` bytes (default: all of it). */
  static open(name: string, options: OpenSharedOptions & { shared: true }): SharedMemory<SharedArrayBuffer>
  static open(name: string, options?: OpenSharedOptions & { shared?: false }): SharedMemory<ArrayBuffer>
  static open(name: string, options?: OpenSharedOptions): SharedMemory<ArrayBufferLike>
  static open(name: string, options: OpenSharedOptions = {}): SharedMemory<ArrayBufferLike> {
    const path = normalizeName(name)
    validateObject(options, 'options')
    const readOnly = validateBoolean(options.readOnly ?? false, 'options.readOnly')
    const size = options.size === undefined ? undefined : validateSize(options.size, 'options.size')
    const shared = sharedOption(options)
    const fd = shmOpen(path, { openFlags: readOnly ? constants.O_RDONLY : constants.O_RDWR })
    return SharedMemory.#map({ name, path, owner: adopt(fd), readOnly, size, sizing: 'none', created: false, shared })
  }

  /**
   * Creates an object with no name (see `shmOpenAnonymous`): only its
   * descriptor reaches it, for this process and whoever it passes `fd` to.
   */
  static anonymous(size: number, options: AnonymousOptions & { shared: true }): SharedMemory<SharedArrayBuffer>
  static anonymous(size: number, options?: AnonymousOptions & { shared?: false }): SharedMemory<ArrayBuffer>
  static anonymous(size: number, options?: AnonymousOptions): SharedMemory<ArrayBufferLike>
  static anonymous(size: number, options: AnonymousOptions = {}): SharedMemory<ArrayBufferLike> {
    validateSize(size, 'size')
    validateObject(options, 'options')
    const allocate = validateBoolean(options.allocate ?? false, 'options.allocate')
    const seal = validateBoolean(options.seal ?? false, 'options.seal')
    const shared = sharedOption(options)
    if (seal && process.platform !== 'linux') {
      throw stateError('ERR_SHM_SEAL_UNSUPPORTED', `options.seal: posix-shm seals anonymous objects on Linux only, not on ${process.platform}`)
    }
    const fd = native.shmOpenAnonymous(constants.O_RDWR, 0o600, 100, seal)
    return SharedMemory.#map({
      name: undefined,
      path: undefined,
      owner: adopt(fd),
      readOnly: false,
      size,
      sizing: allocate ? 'allocate' : 'grow',
      created: false,
      seal,
      shared,
    })
  }

  /**
   * Maps the object behind a descriptor this process received (from a
   * parent's `stdio`, say) and takes ownership of it: `close()` closes it,
   * and so does a failure of `fromFd` itself once `fd` is known to be open.
   *
   * A descriptor that another SharedMemory of this process owns (`a.fd`)
   * stays with it: `fromFd` then maps a duplicate of it (F_DUPFD_CLOEXEC),
   * so the new object's `fd` differs, and each `close()` closes only its
   * own descriptor.
   */
  static fromFd(fd: number, options: FromFdOptions & { shared: true }): SharedMemory<SharedArrayBuffer>
  static fromFd(fd: number, options?: FromFdOptions & { shared?: false }): SharedMemory<ArrayBuffer>
  static fromFd(fd: number, options?: FromFdOptions): SharedMemory<ArrayBufferLike>
  static fromFd(fd: number, options: FromFdOptions = {}): SharedMemory<ArrayBufferLike> {
    validateFd(fd)
    validateObject(options, 'options')
    const size = options.size === undefined ? undefined : validateSize(options.size, 'options.size')
    const askedReadOnly = options.readOnly === undefined ? undefined : validateBoolean(options.readOnly, 'options.readOnly')
    const shared = sharedOption(options)
    const owner = FdOwner.adoptOrDuplicate(fd)
    let readOnly: boolean
    try {
      readOnly = askedReadOnly ?? native.shmIsReadOnly(owner.fd)
    } catch (error) {
      owner.close()
      throw error
    }
    return SharedMemory.#map({ name: undefined, path: undefined, owner, readOnly, size, sizing: 'none', created: false, shared })
  }

  /** The descriptor, or -1 once closed. */
  get fd(): number {
    return this.#owner.fd
  }

  /**
   * A zero-copy Buffer over the whole mapping: over an ArrayBuffer, or with
   * `shared: true` a SharedArrayBuffer (typed `Buffer<B>`). After `close()`
   * it, and every view made on it, has length 0 (a SharedArrayBuffer's views
   * keep theirs). On a read-only SharedMemory, writing through it ends the
   * process (SIGSEGV): only read.
   */
  get buffer(): HostBuffer<B> {
    // The factories' overloads tie B to the `shared` option, which chose
    // the kind of memory the access maps.
    return this.#open().buffer() as HostBuffer<B>
  }

  get closed(): boolean {
    return this.#access === undefined
  }

  /**
   * Unmaps (the buffer and every view on it become empty) and closes the
   * descriptor. The descriptor is closed whatever happens to the mapping.
   * A second call does nothing.
   */
  close(): void {
    const access = this.#access
    if (access === undefined) return
    this.#access = undefined
    try {
      access.unmap()
    } finally {
      this.#owner.close()
    }
  }

  #open(): Access {
    if (this.#access === undefined) throw closedError()
    return this.#access
  }

  /** Checks that `length` bytes from `byteOffset` lie inside the mapping. */
  #range(byteOffset: unknown, length: number): number {
    const offset = validateInteger(byteOffset, 'byteOffset', 0, this.size)
    if (offset + length > this.size) {
      throw outOfRange('byteOffset', `such that ${length} bytes fit in the mapping (${this.size} bytes)`, offset)
    }
    return offset
  }

  /** Checks a word's byte offset: a multiple of 4, inside the mapping. */
  #word(byteOffset: unknown, writing: boolean): number {
    const offset = this.#range(byteOffset, 4)
    if (offset % 4 !== 0) throw outOfRange('byteOffset', 'a multiple of 4', offset)
    if (writing && this.readOnly) throw readOnlyError()
    return offset
  }

  /**
   * A copy of `length` bytes from `byteOffset`. Works in every runtime.
   * The copy is one Buffer, so `length` is at most `buffer.constants.MAX_LENGTH`
   * (a copy-mode object may be larger: read it in parts); if its memory
   * cannot be had, a RangeError coded `ERR_MEMORY_ALLOCATION_FAILED`.
   */
  read(byteOffset: number, length: number): NodeBuffer {
    const access = this.#open()
    validateInteger(length, 'length', 0, Math.min(this.size, bufferConstants.MAX_LENGTH))
    const offset = this.#range(byteOffset, length)
    const copy = allocateCopy(length)
    access.readInto(copy, offset)
    return copy
  }

  /** Copies from `byteOffset` into all of `target`; returns the number of bytes. */
  readInto(target: ArrayBufferView, byteOffset: number): number {
    const access = this.#open()
    if (!ArrayBuffer.isView(target)) throw invalidType('target', 'an ArrayBufferView', target)
    const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength)
    const offset = this.#range(byteOffset, bytes.length)
    return access.readInto(bytes, offset)
  }

  /** Copies `source` (a string as UTF-8) to `byteOffset`; returns the number of bytes. */
  write(source: ArrayBufferView | string, byteOffset: number): number {
    const access = this.#open()
    let bytes: Uint8Array
    if (typeof source === 'string') bytes = Buffer.from(source, 'utf8')
    else if (ArrayBuffer.isView(source)) bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
    else throw invalidType('source', 'an ArrayBufferView or a string', source)
    const offset = this.#range(byteOffset, bytes.length)
    if (this.readOnly) throw readOnlyError()
    return access.write(bytes, offset)
  }

  /** The Int32 at `byteOffset` (a multiple of 4), read atomically (sequentially consistent). */
  atomicLoad(byteOffset: number): number {
    const access = this.#open()
    const offset = this.#word(byteOffset, false)
    return access.atomicLoad(offset)
  }

  /** Stores `value` (as an Int32) atomically; returns the stored value. */
  atomicStore(byteOffset: number, value: number): number {
    const access = this.#open()
    const offset = this.#word(byteOffset, true)
    const int = validateWaitValue(value)
    return access.atomicStore(offset, int)
  }

  /** Adds `delta` atomically (wrapping, as Atomics.add); returns the old value. */
  atomicAdd(byteOffset: number, delta: number): number {
    const access = this.#open()
    const offset = this.#word(byteOffset, true)
    const int = validateWaitValue(delta)
    return access.atomicAdd(offset, int)
  }

  /** Stores `replacement` if the Int32 holds `expected`; returns the old value. */
  atomicCompareExchange(byteOffset: number, expected: number, replacement: number): number {
    const access = this.#open()
    const offset = this.#word(byteOffset, true)
    const from = validateWaitValue(expected)
    const to = validateWaitValue(replacement)
    return access.atomicCompareExchange(offset, from, to)
  }

  /** As the module's `wait`, on the Int32 at `byteOffset`. Blocks the thread. */
  wait(byteOffset: number, value: number, timeoutMs?: number): WaitResult {
    const access = this.#open()
    const offset = this.#word(byteOffset, false)
    const expected = validateWaitValue(value)
    const timeout = validateTimeout(timeoutMs)
    return waitResult(access.wait(offset, expected, timeout))
  }

  /** As the module's `waitAsync`, on the Int32 at `byteOffset`. */
  waitAsync(byteOffset: number, value: number, timeoutMs?: number, options?: WaitAsyncOptions): Promise<WaitResult> {
    const access = this.#open()
    const offset = this.#word(byteOffset, false)
    const expected = validateWaitValue(value)
    const timeout = validateTimeout(timeoutMs)
    const signal = validateSignal(options)
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return settleWait((settle) => access.waitAsync(offset, expected, timeout, settle), signal)
  }

  /** As the module's `notify`, on the Int32 at `byteOffset`. */
  notify(byteOffset: number, count?: number): number {
    const access = this.#open()
    const offset = this.#word(byteOffset, false)
    const howMany = validateCount(count)
    return access.notify(offset, howMany)
  }

  /**
   * Removes the name, so no one else can open the object; the mapping stays
   * usable until `close()`. Does nothing for an object without a name, or
   * the second time.
   */
  unlink(): void {
    if (this.#path === undefined || this.#unlinked) return
    shmUnlink(this.#path)
    this.#unlinked = true
  }

  /**
   * Whether the object is still as large as the mapping, read with one
   * fstat. If another process shrinks the object, touching the mapping past
   * its new end raises SIGBUS, which ends the process (no addon can catch
   * it); reads and writes within the new size keep working. Where another
   * process might shrink the object, check before touching the far end.
   */
  check(): boolean {
    this.#open()
    return fstat(this.fd).size >= this.size
  }

  [Symbol.dispose](): void {
    this.close()
  }

  /** @internal util.inspect's hook; left out of the public typings, which then need no node:util. */
  [inspect.custom](): string {
    const state = this.closed ? 'closed' : `fd ${this.fd}`
    const name = this.name === undefined ? 'anonymous' : `'${this.name}'`
    return `SharedMemory { ${name}, ${this.size} bytes${this.readOnly ? ', read-only' : ''}, ${state} }`
  }
}
