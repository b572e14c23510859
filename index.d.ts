// The public typings of posix-shm, generated from lib/ by
// scripts/bundle-typings.mjs (npm run build:ts). Do not edit: CI fails if a
// build changes this file.

// SharedMemory is Disposable (`using`); TypeScript 5.2 and later have this library.
/// <reference lib="esnext.disposable" />

/** Flag values of the running platform, and its page size. */
export declare const constants: Readonly<{
	O_RDONLY: number;
	O_RDWR: number;
	O_CREAT: number;
	O_EXCL: number;
	O_TRUNC: number;
	PROT_NONE: number;
	PROT_READ: number;
	PROT_WRITE: number;
	PROT_EXEC: number;
	S_IRUSR: number;
	S_IWUSR: number;
	S_IXUSR: number;
	S_IRWXU: number;
	S_IRGRP: number;
	S_IWGRP: number;
	S_IXGRP: number;
	S_IRWXG: number;
	S_IROTH: number;
	S_IWOTH: number;
	S_IXOTH: number;
	S_IRWXO: number;
	/** Mapping offsets must be a multiple of this. */
	pageSize: number;
}>;
/**
 * What the API throws when a system call fails, or when an object is in a
 * state that refuses the call. A failed system call is shaped like the
 * errors of Node's `fs`: `code` is the errno name ('EEXIST'), `errno` its
 * negative number, `syscall` the call that failed, `path` the object's name
 * when there is one (see `systemError`). A state error (`stateError`) has a
 * code of posix-shm's own ('ERR_SHM_CLOSED') and no `errno` or `syscall`:
 * no system call failed.
 */
export declare class ShmError extends Error {
	readonly code: string;
	readonly errno?: number;
	readonly syscall?: string;
	readonly path?: string;
	constructor(message: string, details: {
		code: string;
		errno?: number;
		syscall?: string;
		path?: string;
	});
	/**
	 * True for a ShmError made by any loaded copy of this module. The binding
	 * builds its errors with the factories the most recent load registered
	 * (a module cache cleared, a test runner's reload), so an error thrown
	 * through an earlier copy still passes that copy's `instanceof ShmError`.
	 */
	static [Symbol.hasInstance](value: unknown): boolean;
}
declare const OPEN_FLAG_KEYWORDS: {
	readonly rdonly: "O_RDONLY";
	readonly read: "O_RDONLY";
	readonly "read-only": "O_RDONLY";
	readonly rdwr: "O_RDWR";
	readonly "read-write": "O_RDWR";
	readonly creat: "O_CREAT";
	readonly create: "O_CREAT";
	readonly excl: "O_EXCL";
	readonly exclusive: "O_EXCL";
	readonly trunc: "O_TRUNC";
	readonly truncate: "O_TRUNC";
};
declare const PERMISSION_KEYWORDS: {
	readonly rusr: "S_IRUSR";
	readonly "read-user": "S_IRUSR";
	readonly wusr: "S_IWUSR";
	readonly "write-user": "S_IWUSR";
	readonly xusr: "S_IXUSR";
	readonly "exec-user": "S_IXUSR";
	readonly rwxu: "S_IRWXU";
	readonly "all-user": "S_IRWXU";
	readonly rgrp: "S_IRGRP";
	readonly "read-group": "S_IRGRP";
	readonly wgrp: "S_IWGRP";
	readonly "write-group": "S_IWGRP";
	readonly xgrp: "S_IXGRP";
	readonly "exec-group": "S_IXGRP";
	readonly rwxg: "S_IRWXG";
	readonly "all-group": "S_IRWXG";
	readonly roth: "S_IROTH";
	readonly "read-other": "S_IROTH";
	readonly woth: "S_IWOTH";
	readonly "write-other": "S_IWOTH";
	readonly xoth: "S_IXOTH";
	readonly "exec-other": "S_IXOTH";
	readonly rwxo: "S_IRWXO";
	readonly "all-other": "S_IRWXO";
};
declare const PROTECTION_KEYWORDS: {
	readonly read: "PROT_READ";
	readonly write: "PROT_WRITE";
	readonly exec: "PROT_EXEC";
	readonly none: "PROT_NONE";
};
/** A keyword for `shmOpen`'s `openFlags`. Exactly one of read-only / read-write. */
export type OpenFlag = keyof typeof OPEN_FLAG_KEYWORDS;
/** A keyword for the permissions a created object gets (less the umask), and for `fchmod`. */
export type Permission = keyof typeof PERMISSION_KEYWORDS;
/** A keyword for `mmap`'s protections; `none` stands alone. */
export type Protection = keyof typeof PROTECTION_KEYWORDS;
interface ShmStats {
	size: number;
	mode: number;
	uid: number;
	gid: number;
	ino: number;
	dev: number;
	nlink: number;
	atimeMs: number;
	mtimeMs: number;
	ctimeMs: number;
}
export interface OpenOptions {
	/** Keywords (exactly one of read-only / read-write) or the OR of `constants.O_*`. Default `['read-write']`. */
	openFlags?: readonly OpenFlag[] | number;
	/** Mode of a created object, less the umask. Keywords or the OR of `constants.S_I*`. Default `0o600`. */
	permissions?: readonly Permission[] | number;
}
/** What `fstat` reports about a shared memory object (the native side's type): times in milliseconds since the epoch, as `fs.Stats`. */
type ShmStats$1 = ShmStats;
/** Opens, and with `create` creates, the shared memory object `name`; returns its descriptor. */
export declare function shmOpen(name: string, options?: OpenOptions): number;
/**
 * Creates an object that no name reaches, and returns its descriptor: only
 * this descriptor, and whoever it is passed to, reaches the object. On
 * Linux it is a memfd (`memfd_create`, close-on-exec), on FreeBSD
 * `SHM_ANON`; it never has a name. On macOS it is created under an
 * unguessable random name (create and exclusive added to `openFlags`) that
 * is unlinked at once, retrying only on EEXIST, at most `attempts` times
 * (default 100; `attempts` matters only there).
 */
export declare function shmOpenAnonymous(options?: OpenOptions & {
	attempts?: number;
}): number;
/** Sets the size of the object behind `fd` to exactly `length` bytes. */
export declare function shmFtruncate(fd: number, length: number | bigint): void;
export interface MmapOptions {
	/**
	 * Return a SharedArrayBuffer instead of an ArrayBuffer: it can be posted
	 * to worker threads without a copy and used with `Atomics.wait`. It
	 * cannot be unmapped by `munmap`: the range is unmapped once the last
	 * thread holding it lets it go. Needs Node.js 22.23.3+, 24.16+, 26.1+ or
	 * Bun; elsewhere throws ShmError `ERR_SHM_NO_SHARED_BUFFERS`. Default false.
	 */
	shared?: boolean;
}
/**
 * Maps `length` bytes of the object behind `fd`, from `offset` (a multiple
 * of `constants.pageSize`), always `MAP_SHARED`. The range must lie within
 * the object's current size. Returns one ArrayBuffer over the mapping
 * (a SharedArrayBuffer with `shared: true`); make views on it. Without
 * `write` in `protections`, writing through a view ends the process (the
 * kernel raises SIGSEGV).
 */
export declare function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset: number | undefined, options: MmapOptions & {
	shared: true;
}): SharedArrayBuffer;
export declare function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset?: number, options?: MmapOptions & {
	shared?: false;
}): ArrayBuffer;
export declare function mmap(length: number, protections: readonly Protection[] | number, fd: number, offset?: number, options?: MmapOptions): ArrayBuffer | SharedArrayBuffer;
/**
 * Unmaps what `mmap` returned, given the ArrayBuffer or any view on it.
 * The ArrayBuffer is detached first: its `byteLength`, and every view's
 * length, become 0, so nothing can reach the unmapped memory. A
 * SharedMemory's `buffer` is refused: its `close()` unmaps it.
 */
export declare function munmap(mapped: ArrayBuffer | ArrayBufferView): void;
/** Removes the name `name`; objects stay alive while open or mapped anywhere. */
export declare function shmUnlink(name: string): void;
/** Closes `fd`. Closing it again is EBADF, as with `fs.closeSync`. */
export declare function shmClose(fd: number): void;
export declare function fstat(fd: number): ShmStats$1;
/** Changes the object's permission bits (not subject to the umask). */
export declare function fchmod(fd: number, permissions: readonly Permission[] | number): void;
/** Changes the object's owner and group; -1 leaves one unchanged. */
export declare function fchown(fd: number, uid: number, gid: number): void;
/**
 * Opens `name`, runs `body(fd)`, and closes the descriptor afterwards (it
 * does not unlink). If the body closed `fd` itself, and the number now
 * belongs to something else, that is left alone.
 */
export declare function withOpenShm<T>(name: string, options: OpenOptions, body: (fd: number) => T): T;
/** Maps, runs `body(mapped)`, and unmaps afterwards (unless the body already did). */
export declare function withMmap<T>(length: number, protections: readonly Protection[] | number, fd: number, offset: number, body: (mapped: ArrayBuffer) => T): T;
export interface MapOptions {
	length: number;
	protections: readonly Protection[] | number;
	/** Default 0. */
	offset?: number;
	/**
	 * Whether to grow the object to `offset + length` first if it is smaller
	 * (default true). It is never shrunk: that would make other mappings of
	 * it fail with SIGBUS.
	 */
	truncate?: boolean;
}
/**
 * Opens `name`, grows it to `offset + length` if it is smaller (unless
 * `map.truncate` is false), maps it, runs `body(fd, mapped)`, then unmaps
 * and closes. Every argument is checked before the object is opened.
 */
export declare function withMmappedShm<T>(name: string, options: OpenOptions, map: MapOptions, body: (fd: number, mapped: ArrayBuffer) => T): T;
type NodeBuffer = typeof globalThis extends {
	Buffer: {
		alloc(size: number): infer B;
	};
} ? B : Uint8Array;
declare const uint8ArrayConstructor: {
	new <B extends ArrayBufferLike>(buffer: B): Uint8Array;
} & typeof Uint8Array;
type BytesOver<B extends ArrayBufferLike> = InstanceType<typeof uint8ArrayConstructor<B>>;
type HostBufferConstructor = typeof globalThis extends {
	Buffer: infer C;
} ? C : unknown;
declare const hostBufferConstructor: {
	from<B extends ArrayBufferLike>(arrayBuffer: B): typeof globalThis extends {
		Buffer: unknown;
	} ? NodeBuffer : BytesOver<B>;
} & HostBufferConstructor;
type HostBuffer<B extends ArrayBufferLike> = ReturnType<typeof hostBufferConstructor.from<B>>;
type AbortSignalLike = typeof globalThis extends {
	AbortSignal: {
		prototype: infer S;
	};
} ? S : {
	readonly aborted: boolean;
	readonly reason: unknown;
};
export type WaitResult = "ok" | "not-equal" | "timed-out";
export interface WaitAsyncOptions {
	/** Aborting rejects the promise with an AbortError and stops the wait. */
	signal?: AbortSignalLike;
}
/**
 * Waits while `view[index]` holds `value`, until notified from any
 * process, or for `timeoutMs`. Blocks the thread, as Atomics.wait does in a
 * worker: on the main thread prefer `waitAsync`.
 */
export declare function wait(view: Int32Array, index: number, value: number, timeoutMs?: number): WaitResult;
/**
 * `wait` without blocking: resolves when notified, at once with
 * 'not-equal' if `view[index]` is not `value` now, or with 'timed-out'.
 * The waiting happens on a thread of posix-shm's own, not libuv's pool, and
 * keeps the process alive while pending, as a timer does.
 */
export declare function waitAsync(view: Int32Array, index: number, value: number, timeoutMs?: number, options?: WaitAsyncOptions): Promise<WaitResult>;
/** Wakes up to `count` (default: all) waiters on `view[index]` in every process; returns how many were asleep. */
export declare function notify(view: Int32Array, index: number, count?: number): number;
export interface CreateOptions {
	/** Mode of the new object, less the umask. Default `0o600`. */
	permissions?: readonly Permission[] | number;
	/** Fail with EEXIST if the name exists (default true). Otherwise open it, growing it to `size` if smaller. */
	exclusive?: boolean;
	/** Reserve the pages now, so a full /dev/shm fails here with ENOSPC rather than SIGBUS on first touch (Linux). */
	allocate?: boolean;
	/**
	 * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
	 * without a copy and used with `Atomics` there. `close()` then closes the
	 * descriptor and lets go of this object's buffer; the pages are unmapped
	 * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
	 * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
	 * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
	 */
	shared?: boolean;
}
export interface OpenSharedOptions {
	/** Open and map read-only. Default false. */
	readOnly?: boolean;
	/** How many bytes to map. Default: the object's size. */
	size?: number;
	/**
	 * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
	 * without a copy and used with `Atomics` there. `close()` then closes the
	 * descriptor and lets go of this object's buffer; the pages are unmapped
	 * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
	 * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
	 * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
	 */
	shared?: boolean;
}
export interface AnonymousOptions {
	/** As for `create`. */
	allocate?: boolean;
	/**
	 * Linux: once sized, seal the object's size, so that no process it is
	 * passed to can shrink it under this one's mapping (or grow it). Default
	 * false. Elsewhere it throws `ERR_SHM_SEAL_UNSUPPORTED`.
	 */
	seal?: boolean;
	/**
	 * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
	 * without a copy and used with `Atomics` there. `close()` then closes the
	 * descriptor and lets go of this object's buffer; the pages are unmapped
	 * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
	 * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
	 * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
	 */
	shared?: boolean;
}
export interface FromFdOptions {
	/** How many bytes to map. Default: the object's size. */
	size?: number;
	/** Map read-only. Default: whether the descriptor was opened read-only. */
	readOnly?: boolean;
	/**
	 * Map over a SharedArrayBuffer: `buffer` can be posted to worker threads
	 * without a copy and used with `Atomics` there. `close()` then closes the
	 * descriptor and lets go of this object's buffer; the pages are unmapped
	 * once the last thread holding a view lets it go. Needs Node.js 22.23.3+,
	 * 24.16+, 26.1+ or Bun; elsewhere throws ShmError
	 * `ERR_SHM_NO_SHARED_BUFFERS` before opening anything. Default false.
	 */
	shared?: boolean;
}
/**
 * A mapped shared memory object. `B` is the kind of memory `buffer` is
 * over: `ArrayBuffer` (the default), or `SharedArrayBuffer` when made with
 * `shared: true`; `ArrayBufferLike` when the option was not known to the
 * compiler (a `boolean`).
 */
export declare class SharedMemory<B extends ArrayBufferLike = ArrayBuffer> implements Disposable {
	#private;
	/** The name as the caller gave it; undefined for `anonymous` and `fromFd`. */
	readonly name: string | undefined;
	/** How many bytes are mapped. */
	readonly size: number;
	readonly readOnly: boolean;
	/** Whether `buffer` is over a SharedArrayBuffer (the `shared` option). */
	readonly shared: boolean;
	/**
	 * Whether `buffer` is available in this runtime. False where external
	 * ArrayBuffers are refused (Electron 21 and later, or
	 * POSIX_SHM_NO_EXTERNAL_BUFFERS=1): then every SharedMemory works by
	 * copying, through read(), readInto(), write() and the atomic*() methods.
	 * Read-only: assigning to it throws a TypeError in strict code (and does
	 * nothing in sloppy code); the mode is the runtime's, not the caller's.
	 */
	static get zeroCopy(): boolean;
	/**
	 * Whether `shared: true` works in this runtime: Node.js 22.23.3+, 24.16+,
	 * 26.1+ and Bun can make a SharedArrayBuffer over a mapping; Node.js 20,
	 * Electron and copy mode cannot. Read-only.
	 */
	static get sharedBuffers(): boolean;
	private constructor();
	/**
	 * Creates the object `name` of `size` bytes and maps it read-write. By
	 * default the name must not exist yet (`exclusive: true`) and the mode is
	 * 0600 less the umask. With `shared: true` the mapping is a
	 * SharedArrayBuffer, and the result is typed `SharedMemory<SharedArrayBuffer>`.
	 */
	static create(name: string, size: number, options: CreateOptions & {
		shared: true;
	}): SharedMemory<SharedArrayBuffer>;
	static create(name: string, size: number, options?: CreateOptions & {
		shared?: false;
	}): SharedMemory<ArrayBuffer>;
	static create(name: string, size: number, options?: CreateOptions): SharedMemory<ArrayBufferLike>;
	/** Opens the existing object `name` and maps `size` bytes (default: all of it). */
	static open(name: string, options: OpenSharedOptions & {
		shared: true;
	}): SharedMemory<SharedArrayBuffer>;
	static open(name: string, options?: OpenSharedOptions & {
		shared?: false;
	}): SharedMemory<ArrayBuffer>;
	static open(name: string, options?: OpenSharedOptions): SharedMemory<ArrayBufferLike>;
	/**
	 * Creates an object with no name (see `shmOpenAnonymous`): only its
	 * descriptor reaches it, for this process and whoever it passes `fd` to.
	 */
	static anonymous(size: number, options: AnonymousOptions & {
		shared: true;
	}): SharedMemory<SharedArrayBuffer>;
	static anonymous(size: number, options?: AnonymousOptions & {
		shared?: false;
	}): SharedMemory<ArrayBuffer>;
	static anonymous(size: number, options?: AnonymousOptions): SharedMemory<ArrayBufferLike>;
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
	static fromFd(fd: number, options: FromFdOptions & {
		shared: true;
	}): SharedMemory<SharedArrayBuffer>;
	static fromFd(fd: number, options?: FromFdOptions & {
		shared?: false;
	}): SharedMemory<ArrayBuffer>;
	static fromFd(fd: number, options?: FromFdOptions): SharedMemory<ArrayBufferLike>;
	/** The descriptor, or -1 once closed. */
	get fd(): number;
	/**
	 * A zero-copy Buffer over the whole mapping: over an ArrayBuffer, or with
	 * `shared: true` a SharedArrayBuffer (typed `Buffer<B>`). After `close()`
	 * it, and every view made on it, has length 0 (a SharedArrayBuffer's views
	 * keep theirs). On a read-only SharedMemory, writing through it ends the
	 * process (SIGSEGV): only read.
	 */
	get buffer(): HostBuffer<B>;
	get closed(): boolean;
	/**
	 * Unmaps (the buffer and every view on it become empty) and closes the
	 * descriptor. The descriptor is closed whatever happens to the mapping.
	 * A second call does nothing.
	 */
	close(): void;
	/**
	 * A copy of `length` bytes from `byteOffset`. Works in every runtime.
	 * The copy is one Buffer, so `length` is at most `buffer.constants.MAX_LENGTH`
	 * (a copy-mode object may be larger: read it in parts); if its memory
	 * cannot be had, a RangeError coded `ERR_MEMORY_ALLOCATION_FAILED`.
	 */
	read(byteOffset: number, length: number): NodeBuffer;
	/** Copies from `byteOffset` into all of `target`; returns the number of bytes. */
	readInto(target: ArrayBufferView, byteOffset: number): number;
	/** Copies `source` (a string as UTF-8) to `byteOffset`; returns the number of bytes. */
	write(source: ArrayBufferView | string, byteOffset: number): number;
	/** The Int32 at `byteOffset` (a multiple of 4), read atomically (sequentially consistent). */
	atomicLoad(byteOffset: number): number;
	/** Stores `value` (as an Int32) atomically; returns the stored value. */
	atomicStore(byteOffset: number, value: number): number;
	/** Adds `delta` atomically (wrapping, as Atomics.add); returns the old value. */
	atomicAdd(byteOffset: number, delta: number): number;
	/** Stores `replacement` if the Int32 holds `expected`; returns the old value. */
	atomicCompareExchange(byteOffset: number, expected: number, replacement: number): number;
	/** As the module's `wait`, on the Int32 at `byteOffset`. Blocks the thread. */
	wait(byteOffset: number, value: number, timeoutMs?: number): WaitResult;
	/** As the module's `waitAsync`, on the Int32 at `byteOffset`. */
	waitAsync(byteOffset: number, value: number, timeoutMs?: number, options?: WaitAsyncOptions): Promise<WaitResult>;
	/** As the module's `notify`, on the Int32 at `byteOffset`. */
	notify(byteOffset: number, count?: number): number;
	/**
	 * Removes the name, so no one else can open the object; the mapping stays
	 * usable until `close()`. Does nothing for an object without a name, or
	 * the second time.
	 */
	unlink(): void;
	/**
	 * Whether the object is still as large as the mapping, read with one
	 * fstat. If another process shrinks the object, touching the mapping past
	 * its new end raises SIGBUS, which ends the process (no addon can catch
	 * it); reads and writes within the new size keep working. Where another
	 * process might shrink the object, check before touching the far end.
	 */
	check(): boolean;
	[Symbol.dispose](): void;
}
export interface ChannelOptions {
	/**
	 * The ring's size in bytes, rounded up to a power of two, at least 4096,
	 * at most 2^30. The largest message is the ring's size less 8. Default
	 * 1 MiB.
	 */
	capacity?: number;
}
export interface ChannelCreateOptions extends ChannelOptions {
	/** Mode of the new object, less the umask. Default `0o600`. */
	permissions?: readonly Permission[] | number;
}
export interface ReceiveOptions {
	/** Milliseconds to wait: undefined or Infinity waits forever, 0 only looks. */
	timeout?: number;
}
export interface ReceiveManyOptions extends ReceiveOptions {
	/** The most messages to return at once, 1 to 65,536. Default 1,024. */
	max?: number;
}
export interface AsyncOptions extends ReceiveOptions {
	/** Aborting it rejects the call with `signal.reason`. */
	signal?: AbortSignalLike;
}
/** What `send` accepts: bytes, or a string sent as UTF-8. */
export type ChannelData = ArrayBufferView | ArrayBuffer | SharedArrayBuffer | string;
export declare class Channel implements Disposable, AsyncIterable<NodeBuffer> {
	#private;
	/** The name as the caller gave it; undefined for `anonymous` and `fromFd`. */
	readonly name: string | undefined;
	/** The ring's size in bytes (the requested capacity, rounded up). */
	readonly capacity: number;
	private constructor();
	/**
	 * Creates the channel `name`: a new shared memory object (exclusive: the
	 * name must not exist; mode 0600 less the umask by default). Either side
	 * may create it; the other opens it.
	 */
	static create(name: string, options?: ChannelCreateOptions): Channel;
	/** Opens the channel `name`, waiting up to a second for its creator to finish it. */
	static open(name: string): Channel;
	/**
	 * Creates a channel in an object that no name reaches: only its
	 * descriptor (`fd`) does, for this process and whoever it passes it to
	 * (who calls `Channel.fromFd`). On Linux its size is sealed, so no peer
	 * can shrink it.
	 */
	static anonymous(options?: ChannelOptions): Channel;
	/**
	 * Opens the channel in the object behind `fd` (received from another
	 * process, say). The descriptor stays the caller's: the channel opens
	 * one of its own.
	 */
	static fromFd(fd: number): Channel;
	/** The channel's own descriptor, to pass to another process; -1 once closed. */
	get fd(): number;
	get closed(): boolean;
	/**
	 * Sends `data`, waiting while the ring is full (for `options.timeout`
	 * at most: then ShmError ETIMEDOUT). Takes the sending end on first use:
	 * ERR_SHM_CHANNEL_BUSY if another handle holds it. A message larger than
	 * the ring can ever hold (`capacity - 8` bytes) is a RangeError.
	 */
	send(data: ChannelData, options?: ReceiveOptions): void;
	/** Sends `data` if the ring has room now: false if it is full. Never waits. */
	trySend(data: ChannelData): boolean;
	/** `send` without blocking the thread while the ring is full. */
	sendAsync(data: ChannelData, options?: AsyncOptions): Promise<void>;
	/**
	 * The next message, copied out of the ring: a Buffer (see the top of
	 * this file for what it keeps alive), or null once the sender has ended
	 * the channel and every message was received. Waits for `options.timeout`
	 * at most (then ShmError ETIMEDOUT); throws ERR_SHM_PEER_GONE if the
	 * sender's process died and nothing is left. Takes the receiving end on
	 * first use.
	 */
	receive(options?: ReceiveOptions): NodeBuffer | null;
	/**
	 * Every message waiting, at most `options.max` (default 1,024): waits
	 * for the first as `receive` does, then takes the ones already sent after
	 * it, in one native call that gives the ring back once. An array of at
	 * least one Buffer (slices of the pool, as from `receive`), or null once
	 * the sender has ended and every message was received.
	 */
	receiveMany(options?: ReceiveManyOptions): NodeBuffer[] | null;
	/** `receive` without blocking the thread while the ring is empty. */
	receiveAsync(options?: AsyncOptions): Promise<NodeBuffer | null>;
	/**
	 * The next message without a copy: a Buffer over the ring itself, valid
	 * until `release()` or the next receive on this channel, which detach it
	 * (it then has length 0) and give its bytes back to the sender. Null at
	 * the end, as `receive`. Where the runtime refuses external buffers
	 * (copy mode, Electron), a copy, as `receive` returns.
	 *
	 * Hand the view to nothing that keeps it past `release()`: Node's
	 * asynchronous APIs (a socket write, fs, zlib) read or write it later,
	 * and after `release()` the sender reuses those bytes. Copy what you keep.
	 */
	receiveView(options?: ReceiveOptions): NodeBuffer | null;
	/** Gives back the message `receiveView` lent (detaching its Buffer). Does nothing if none is lent. */
	release(): void;
	/** Messages until the sender ends the channel, received asynchronously. */
	[Symbol.asyncIterator](): AsyncIterator<NodeBuffer>;
	/**
	 * Ends the sending end: the receiver gets every message sent so far,
	 * then null. Sending afterwards throws ERR_SHM_CHANNEL_ENDED, from any
	 * handle. Takes the sending end if this handle does not hold it.
	 */
	end(): void;
	/**
	 * Gives up the ends this handle holds (another handle may then take
	 * them), detaches a lent view, rejects pending asynchronous calls with
	 * ERR_SHM_CLOSED, and closes the descriptor. A second call does nothing.
	 */
	close(): void;
	/**
	 * Removes the channel's name, as `SharedMemory#unlink` does; handles
	 * already open keep working. Does nothing for a channel without a name,
	 * or a second time.
	 */
	unlink(): void;
	[Symbol.dispose](): void;
}

export {
	ShmStats$1 as ShmStats,
};

export {};
