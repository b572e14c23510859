// Made from the entry table in src/node/entries.rs; `npm run build:entries` rewrites it,
// and `cargo test` fails while it differs from the table.

export interface ShmStats {
  size: number
  mode: number
  uid: number
  gid: number
  ino: number
  dev: number
  nlink: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
}

export interface PlatformConstants {
  oRdonly: number
  oRdwr: number
  oCreat: number
  oExcl: number
  oTrunc: number
  protNone: number
  protRead: number
  protWrite: number
  protExec: number
  sIrusr: number
  sIwusr: number
  sIxusr: number
  sIrwxu: number
  sIrgrp: number
  sIwgrp: number
  sIxgrp: number
  sIrwxg: number
  sIroth: number
  sIwoth: number
  sIxoth: number
  sIrwxo: number
  pageSize: number
}

/** The plain Node-API entries of the binding. */
export interface Entries {
  /**
   * Registers the facade's error factories for this environment: every
   * error the binding throws from then on is made by them (see `throw`).
   */
  setErrorFactories(systemError: (errno: number, syscall: string, path?: string, fallbackMessage?: string, detail?: string) => Error, stateError: (code: string, message: string, path?: string) => Error): void
  /**
   * shm_open(name, openFlags, mode); returns the descriptor, which from
   * then on belongs to JavaScript.
   */
  shmOpenNamed(name: string, openFlags: number, mode: number): number
  /**
   * shm_unlink(name).
   */
  shmUnlinkNamed(name: string): void
  /**
   * Opens an object that no name reaches (memfd on Linux, SHM_ANON on
   * FreeBSD, a random name unlinked at once on macOS, tried `attempts`
   * times); returns the descriptor. `sealable`: Linux only, see shmSeal.
   */
  shmOpenAnonymous(openFlags: number, mode: number, attempts: number, sealable?: boolean): number
  /**
   * Seals the size of an object opened by shmOpenAnonymous with
   * `sealable`: nobody can shrink or grow it from then on (Linux).
   */
  shmSeal(fd: number): void
  /**
   * ftruncate(fd, length): sets the object's size to exactly `length`.
   */
  shmFtruncate(fd: number, length: number | bigint): void
  /**
   * close(fd), refused (ERR_SHM_FD_OWNED) for a descriptor a
   * SharedMemory owns.
   */
  shmClose(fd: number): void
  /**
   * fstat(fd).
   */
  shmFstat(fd: number): ShmStats
  /**
   * fchmod(fd, mode).
   */
  shmFchmod(fd: number, mode: number): void
  /**
   * fchown(fd, uid, gid); -1 leaves one unchanged.
   */
  shmFchown(fd: number, uid: number, gid: number): void
  /**
   * Reserves the object's pages up to `length` (posix_fallocate), so a
   * full /dev/shm fails here rather than with SIGBUS on first touch;
   * false where the platform cannot. `path` names the object in errors.
   */
  shmAllocate(fd: number, length: number, path?: string): boolean
  /**
   * Grows the object to `length` bytes if it is smaller, never shrinking
   * it, also against other processes growing it at once; returns the size
   * it found. `path` names the object in errors.
   */
  shmGrow(fd: number, length: number, path?: string): number
  /**
   * Whether `fd` was opened read-only.
   */
  shmIsReadOnly(fd: number): boolean
  /**
   * A duplicate of `fd` (F_DUPFD_CLOEXEC).
   */
  shmDuplicate(fd: number): number
  /**
   * Takes ownership of `fd`, which must be open and not already owned
   * (ERR_SHM_FD_OWNED); returns the handle whose collection closes it.
   */
  fdOwnerAdopt(fd: number): object
  /**
   * Closes the descriptor a handle from fdOwnerAdopt owns; later calls
   * do nothing, and so does a call once the number was closed behind the
   * owner's back (it may name another file by then).
   */
  fdOwnerClose(handle: object): void
  /**
   * Maps `length` bytes of `fd` from `offset`, MAP_SHARED; one
   * ArrayBuffer over the mapping.
   */
  mmapShared(length: number, protections: number, fd: number, offset: number): ArrayBuffer
  /**
   * Maps like mmapShared, as one SharedArrayBuffer (refused with
   * ERR_SHM_NO_SHARED_BUFFERS where the runtime cannot make one): it can
   * be posted to workers without a copy and used with Atomics. It cannot
   * be detached, so nothing unmaps it early: the range is unmapped once
   * the last thread holding it lets it go.
   */
  mmapSharedBuffer(length: number, protections: number, fd: number, offset: number): SharedArrayBuffer
  /**
   * Detaches the ArrayBuffer (given it or a view on it; unless `detach`
   * is false: the caller does that, default true) and unmaps its memory
   * once nothing can still use it.
   */
  munmapShared(mapped: ArrayBuffer | ArrayBufferView, detach?: boolean): void
  /**
   * Waits on a word of a mapping while it holds `value`; 0 ok,
   * 1 not-equal, 2 timed-out, 3 cancelled (the environment is ending).
   */
  waitInBuffer(buffer: ArrayBuffer | Int32Array, byteOffset: number, value: number, timeoutMs: number): number
  /**
   * Compares a word of a mapping with `value` through the kernel where it
   * can (a word whose page is gone is EFAULT, not SIGBUS): 1 differs,
   * 2 equal.
   */
  peekInBuffer(buffer: ArrayBuffer | Int32Array, byteOffset: number, value: number): number
  /**
   * Wakes up to `count` waiters on a word of a mapping; returns how many
   * were asleep.
   */
  notifyInBuffer(buffer: ArrayBuffer | Int32Array, byteOffset: number, count: number): number
  /**
   * Whether mmapShared can hand out zero-copy ArrayBuffers here.
   */
  externalBuffersAllowed(): boolean
  /**
   * From now on, in the whole process, behave as if the runtime refused
   * external ArrayBuffers: the facade's route to copy mode, for runtimes
   * whose `process.env` writes never reach the C environment (Bun).
   */
  refuseExternalBuffers(): void
  /**
   * Whether mmapSharedBuffer can hand out SharedArrayBuffers here.
   */
  sharedBuffersAllowed(): boolean
  /**
   * Throws ERR_SHM_NO_SHARED_BUFFERS unless mmapSharedBuffer can work
   * here: for callers that refuse before they open anything.
   */
  requireSharedBuffers(): void
  /**
   * The running platform's values of every flag the API accepts.
   */
  platformConstants(): PlatformConstants
  /**
   * How many mappings JavaScript holds now (a diagnostic).
   */
  liveMappingCount(): number
  /**
   * How many address ranges posix-shm holds now, mappings and the
   * placeholders of closed mappings that Node may still reach alike: what
   * counts against the mapping budget (a diagnostic).
   */
  reservedRangeCount(): number
  /**
   * Keeps the ranges of this environment's mappings whose ArrayBuffers
   * were moved elsewhere; the facade calls it as a worker exits.
   */
  pinMovedMappings(): void
  /**
   * Puts back the SIGBUS handler that turns a peer's shrink into an
   * error, if SIGBUS was reset to the default since it was installed; the
   * facade calls it when the last 'SIGBUS' listener is removed.
   */
  restoreFaultHandler(): void
  /**
   * Makes a channel in the new, empty object behind `fd` (which stays
   * the caller's: the channel opens a descriptor of its own), with a ring
   * of `capacity` bytes rounded up to a power of two, at least 4096;
   * `seal` then seals the object's size (Linux, anonymous objects).
   * Returns the channel's handle, whose collection closes it.
   */
  channelCreate(fd: number, capacity: number, seal?: boolean): object
  /**
   * Opens the channel in the object behind `fd` (which stays the
   * caller's), waiting up to a second for its creator to finish the
   * header. `fresh`: the caller just opened `fd` itself and closes it next
   * (else it may be shared with other processes, and the channel opens
   * the object afresh). Returns the channel's handle.
   */
  channelAttach(fd: number, fresh?: boolean): object
  /**
   * The ring's size in bytes.
   */
  channelCapacity(handle: object): number
  /**
   * The channel's own descriptor, for passing it to another process.
   */
  channelFd(handle: object): number
  /**
   * Sends `data` (taking the sending end if this handle has not yet),
   * waiting while the ring is full for at most `timeoutMs` (Infinity:
   * forever; 0: not at all); false if the ring stayed full. Like every
   * entry below that touches the channel's memory, it runs guarded: a
   * peer that shrank the object is ERR_SHM_SHRUNK, not a SIGBUS.
   */
  channelSend(handle: object, data: ArrayBufferView | ArrayBuffer, timeoutMs: number): boolean
  /**
   * Receives the next message (taking the receiving end if this handle
   * has not yet) into `target` from `offset`, waiting for at most
   * `timeoutMs`: its length; -1 if none came; -2 once the sender has
   * ended and every message was received; -3 minus its length if it does
   * not fit (it stays in the ring). Gives back a lent view first.
   */
  channelReceiveInto(handle: object, target: ArrayBufferView | ArrayBuffer, offset: number, timeoutMs: number): number
  /**
   * Receives like channelReceiveInto, then every message already
   * published after the first, while they fit in `target` (each from the
   * next multiple of 8) and `lengths` (a Uint32Array) has room for their
   * lengths; returns how many, or channelReceiveInto's codes for the first.
   */
  channelReceiveMany(handle: object, target: ArrayBufferView | ArrayBuffer, offset: number, lengths: ArrayBufferView | ArrayBuffer, timeoutMs: number): number
  /**
   * Lends the next message as an ArrayBuffer over the ring itself, until
   * channelRelease or the next receive detaches it; -1 or -2 as
   * channelReceiveInto. Refused where external buffers are.
   */
  channelReceiveView(handle: object, timeoutMs: number): ArrayBuffer | number
  /**
   * Detaches the lent view, if any (unless `detach` is false: the caller
   * does that, default true), and gives its message's bytes back to the
   * sender.
   */
  channelRelease(handle: object, detach?: boolean): void
  /**
   * Ends the sending end: the receiver gets every message sent so far,
   * then learns that no more will come.
   */
  channelEnd(handle: object): void
  /**
   * Whether the process holding the other end (`sending`: this handle
   * sends, so the receiver's) died.
   */
  channelPeerGone(handle: object, sending?: boolean): boolean
  /**
   * Closes the channel handle: detaches a lent view (`detach` as for
   * channelRelease), gives up its ends, closes its descriptor. Later
   * calls do nothing.
   */
  channelClose(handle: object, detach?: boolean): void
  /**
   * How many threads posix-shm runs for pending waitAsync calls, idle
   * ones included (a diagnostic).
   */
  waiterThreadCount(): number
  /**
   * How many pending waitAsync calls watcher threads have handed to the
   * kernel in their current call (Linux 5.16+; 0 elsewhere): the waits a
   * notify counts (a diagnostic).
   */
  armedWaitCount(): number
}
