/// <reference lib="esnext.disposable" preserve="true" />

// Channel: one sending end and one receiving end over a ring of bytes in
// one shared memory object (CHANNEL-LAYOUT.md has the layout and the
// protocol). The ring, the ends and the waits are native
// (src/core/channel); this file checks arguments, opens and names objects,
// hands out received messages, and runs the asynchronous loops.
//
// Received messages are copied out of the ring into a pool: one 64 KiB
// Buffer from which each message is a slice, so that a message does not
// cost a fresh ArrayBuffer (a few microseconds each). A message keeps its
// pool alive while it lives; larger messages get a Buffer of their own.

import { constants as osConstants } from 'node:os'
import * as workerThreads from 'node:worker_threads'

import { constants } from './constants'
import { ShmError, invalidType, outOfRange, stateError, systemError } from './errors'
import type { AbortSignalLike, NodeBuffer } from './host-types'
import type { Permission } from './keywords'
import { releaseAndDetach } from './mappings'
import { native } from './native'
import { shmClose, shmOpen, shmUnlink } from './shm'
import { normalizeName, permissionBits, validateFd, validateInteger, validateObject } from './validate'

export interface ChannelOptions {
  /**
   * The ring's size in bytes, rounded up to a power of two, at least 4096,
   * at most 2^30. The largest message is the ring's size less 8. Default
   * 1 MiB.
   */
  capacity?: number
}

export interface ChannelCreateOptions extends ChannelOptions {
  /** Mode of the new object, less the umask. Default `0o600`. */
  permissions?: readonly Permission[] | number
}

export interface ReceiveOptions {
  /** Milliseconds to wait: undefined or Infinity waits forever, 0 only looks. */
  timeout?: number
}

export interface ReceiveManyOptions extends ReceiveOptions {
  /** The most messages to return at once, 1 to 65,536. Default 1,024. */
  max?: number
}

export interface AsyncOptions extends ReceiveOptions {
  /** Aborting it rejects the call with `signal.reason`. */
  signal?: AbortSignalLike
}

/** What `send` accepts: bytes, or a string sent as UTF-8. */
export type ChannelData = ArrayBufferView | ArrayBuffer | SharedArrayBuffer | string

const DEFAULT_CAPACITY = 1 << 20
const MAX_CAPACITY = 1 << 30
const POOL_BYTES = 64 * 1024
const DEFAULT_BATCH = 1024
const MAX_BATCH = 65536
/** Missing in some runtimes; the pool then relies on renewing itself. */
const markAsUntransferable: ((object: object) => void) | undefined = (workerThreads as { markAsUntransferable?: (object: object) => void })
  .markAsUntransferable
/** The native codes besides a length (src/node/channel.rs). */
const TIMED_OUT = -1
const ENDED = -2
const TOO_LARGE = -3
/** An asynchronous wait looks at the peer's life this often at least. */
const ASYNC_SLICE_MS = 250

function capacityOption(options: ChannelOptions): number {
  return options.capacity === undefined
    ? DEFAULT_CAPACITY
    : validateInteger(options.capacity, 'options.capacity', 1, MAX_CAPACITY)
}

function timeoutOption(options: ReceiveOptions | undefined, argument = 'options'): number {
  if (options === undefined) return Infinity
  validateObject(options, argument)
  const { timeout } = options
  if (timeout === undefined) return Infinity
  if (typeof timeout !== 'number') throw invalidType(`${argument}.timeout`, 'of type number', timeout)
  if (Number.isNaN(timeout)) throw outOfRange(`${argument}.timeout`, 'a number of milliseconds, not NaN', timeout)
  return Math.max(0, timeout)
}

function signalOption(options: AsyncOptions | undefined): AbortSignal | undefined {
  const signal = options?.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal)
  return signal
}

function timedOut(operation: string, path: string | undefined): ShmError {
  return systemError(-osConstants.errno.ETIMEDOUT, operation, path)
}

function closedError(): ShmError {
  return stateError('ERR_SHM_CLOSED', 'this Channel is closed')
}

/** `data` as something the native side reads bytes from. */
function bytesOf(data: unknown): ArrayBufferView | ArrayBuffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data
  if (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer) return new Uint8Array(data)
  throw invalidType('data', 'a string, an ArrayBuffer, a SharedArrayBuffer or an ArrayBufferView', data)
}

/**
 * A pool's memory, marked as Node marks its own Buffer pool: a message's
 * `buffer` is the whole pool, and transferring it (postMessage,
 * structuredClone) would empty every other message cut from it.
 */
function newPoolBuffer(length: number): NodeBuffer {
  const buffer = Buffer.allocUnsafeSlow(length)
  markAsUntransferable?.(buffer.buffer)
  return buffer
}

/** `n` rounded up to a multiple of 8 (for n up to 2^53). */
function alignUp(n: number): number {
  return Math.ceil(n / 8) * 8
}

/** Where the native side puts a received message: a slice of the pool. */
class Pool {
  #buffer: NodeBuffer = newPoolBuffer(POOL_BYTES)
  #offset = 0

  get buffer(): NodeBuffer {
    // Detached all the same (ArrayBuffer#transfer, a runtime without the
    // mark): start afresh rather than refuse every later message.
    if (this.#buffer.length === 0) this.renew(0)
    return this.#buffer
  }

  get offset(): number {
    return this.#offset
  }

  /** The `length` bytes just written at the offset, as a message. */
  take(length: number): NodeBuffer {
    const message = this.#buffer.subarray(this.#offset, this.#offset + length) as NodeBuffer
    // Each message starts 8-aligned, so views of any element type fit. The
    // pool's length is a multiple of 8, so the next offset never falls
    // back inside this message.
    this.#offset = Math.min(this.#buffer.length, alignUp(this.#offset + length))
    return message
  }

  /** A fresh pool, for a message of `length` bytes that did not fit. */
  renew(length: number): void {
    this.#buffer = newPoolBuffer(alignUp(Math.max(POOL_BYTES, length)))
    this.#offset = 0
  }
}

/** An asynchronous wait in progress, for close() to stop. */
interface Pending {
  cancel(): void
  reject(error: Error): void
  /** Forgets the wait: removes it from the set and its abort listener. */
  done(): void
}

export class Channel implements Disposable, AsyncIterable<NodeBuffer> {
  /** The name as the caller gave it; undefined for `anonymous` and `fromFd`. */
  readonly name: string | undefined
  /** The ring's size in bytes (the requested capacity, rounded up). */
  readonly capacity: number
  readonly #path: string | undefined
  #handle: object | undefined
  #unlinked = false
  readonly #pool = new Pool()
  /** Where channelReceiveMany writes the lengths of a batch. */
  #lengths = new Uint32Array(DEFAULT_BATCH)
  #view: NodeBuffer | undefined
  readonly #pending = new Set<Pending>()

  private constructor(name: string | undefined, path: string | undefined, handle: object) {
    this.name = name
    this.#path = path
    this.#handle = handle
    this.capacity = native.channelCapacity(handle)
  }

  /**
   * Creates the channel `name`: a new shared memory object (exclusive: the
   * name must not exist; mode 0600 less the umask by default). Either side
   * may create it; the other opens it.
   */
  static create(name: string, options: ChannelCreateOptions = {}): Channel {
    const path = normalizeName(name)
    validateObject(options, 'options')
    const capacity = capacityOption(options)
    const permissions = permissionBits(options.permissions ?? 0o600, 'options.permissions')
    const { O_CREAT, O_EXCL, O_RDWR } = constants
    const fd = shmOpen(path, { openFlags: O_CREAT | O_EXCL | O_RDWR, permissions })
    let handle: object
    try {
      handle = native.channelCreate(fd, capacity)
    } catch (error) {
      shmUnlink(path)
      throw error
    } finally {
      // The channel holds a descriptor of its own.
      shmClose(fd)
    }
    return new Channel(name, path, handle)
  }

  /** Opens the channel `name`, waiting up to a second for its creator to finish it. */
  static open(name: string): Channel {
    const path = normalizeName(name)
    const fd = shmOpen(path, { openFlags: constants.O_RDWR })
    try {
      return new Channel(name, path, native.channelAttach(fd, true))
    } finally {
      shmClose(fd)
    }
  }

  /**
   * Creates a channel in an object that no name reaches: only its
   * descriptor (`fd`) does, for this process and whoever it passes it to
   * (who calls `Channel.fromFd`). On Linux its size is sealed, so no peer
   * can shrink it.
   */
  static anonymous(options: ChannelOptions = {}): Channel {
    validateObject(options, 'options')
    const capacity = capacityOption(options)
    const seal = process.platform === 'linux'
    const fd = native.shmOpenAnonymous(constants.O_RDWR, 0o600, 100, seal)
    try {
      return new Channel(undefined, undefined, native.channelCreate(fd, capacity, seal))
    } finally {
      shmClose(fd)
    }
  }

  /**
   * Opens the channel in the object behind `fd` (received from another
   * process, say). The descriptor stays the caller's: the channel opens
   * one of its own.
   */
  static fromFd(fd: number): Channel {
    validateFd(fd)
    return new Channel(undefined, undefined, native.channelAttach(fd))
  }

  /** The channel's own descriptor, to pass to another process; -1 once closed. */
  get fd(): number {
    return this.#handle === undefined ? -1 : native.channelFd(this.#handle)
  }

  get closed(): boolean {
    return this.#handle === undefined
  }

  #open(): object {
    if (this.#handle === undefined) throw closedError()
    return this.#handle
  }

  /**
   * Sends `data`, waiting while the ring is full (for `options.timeout`
   * at most: then ShmError ETIMEDOUT). Takes the sending end on first use:
   * ERR_SHM_CHANNEL_BUSY if another handle holds it. A message larger than
   * the ring can ever hold (`capacity - 8` bytes) is a RangeError.
   */
  send(data: ChannelData, options?: ReceiveOptions): void {
    const bytes = bytesOf(data)
    const timeout = timeoutOption(options)
    if (!native.channelSend(this.#open(), bytes, timeout)) throw timedOut('send', this.#path)
  }

  /** Sends `data` if the ring has room now: false if it is full. Never waits. */
  trySend(data: ChannelData): boolean {
    return native.channelSend(this.#open(), bytesOf(data), 0)
  }

  /** `send` without blocking the thread while the ring is full. */
  async sendAsync(data: ChannelData, options?: AsyncOptions): Promise<void> {
    const bytes = bytesOf(data)
    const timeout = timeoutOption(options)
    const signal = signalOption(options)
    const deadline = performance.now() + timeout
    for (;;) {
      if (signal?.aborted) throw signal.reason
      if (native.channelSend(this.#open(), bytes, 0)) return
      await this.#sleep(true, deadline, signal, 'send')
    }
  }

  /**
   * The next message, copied out of the ring: a Buffer (see the top of
   * this file for what it keeps alive), or null once the sender has ended
   * the channel and every message was received. Waits for `options.timeout`
   * at most (then ShmError ETIMEDOUT); throws ERR_SHM_PEER_GONE if the
   * sender's process died and nothing is left. Takes the receiving end on
   * first use.
   */
  receive(options?: ReceiveOptions): NodeBuffer | null {
    const timeout = timeoutOption(options)
    const message = this.#receive(timeout)
    if (message === undefined) throw timedOut('receive', this.#path)
    return message
  }

  /** A message, null at the end, or undefined if none came within `timeout`. */
  #receive(timeout: number): NodeBuffer | null | undefined {
    const handle = this.#open()
    this.#giveBackView(handle)
    const pool = this.#pool
    for (;;) {
      const result = native.channelReceiveInto(handle, pool.buffer, pool.offset, timeout)
      if (result >= 0) return pool.take(result)
      if (result === ENDED) return null
      if (result === TIMED_OUT) return undefined
      pool.renew(TOO_LARGE - result)
    }
  }

  /**
   * Every message waiting, at most `options.max` (default 1,024): waits
   * for the first as `receive` does, then takes the ones already sent after
   * it, in one native call that gives the ring back once. An array of at
   * least one Buffer (slices of the pool, as from `receive`), or null once
   * the sender has ended and every message was received.
   */
  receiveMany(options?: ReceiveManyOptions): NodeBuffer[] | null {
    const timeout = timeoutOption(options)
    const max = options?.max === undefined ? DEFAULT_BATCH : validateInteger(options.max, 'options.max', 1, MAX_BATCH)
    const handle = this.#open()
    this.#giveBackView(handle)
    if (this.#lengths.length < max) this.#lengths = new Uint32Array(max)
    const lengths = this.#lengths.length === max ? this.#lengths : this.#lengths.subarray(0, max)
    const pool = this.#pool
    for (;;) {
      const result = native.channelReceiveMany(handle, pool.buffer, pool.offset, lengths, timeout)
      if (result >= 0) {
        const messages: NodeBuffer[] = new Array(result)
        for (let i = 0; i < result; i++) messages[i] = pool.take(lengths[i]!)
        return messages
      }
      if (result === ENDED) return null
      if (result === TIMED_OUT) throw timedOut('receive', this.#path)
      pool.renew(TOO_LARGE - result)
    }
  }

  /** `receive` without blocking the thread while the ring is empty. */
  async receiveAsync(options?: AsyncOptions): Promise<NodeBuffer | null> {
    const timeout = timeoutOption(options)
    const signal = signalOption(options)
    const deadline = performance.now() + timeout
    for (;;) {
      if (signal?.aborted) throw signal.reason
      const message = this.#receive(0)
      if (message !== undefined) return message
      await this.#sleep(false, deadline, signal, 'receive')
    }
  }

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
  receiveView(options?: ReceiveOptions): NodeBuffer | null {
    const timeout = timeoutOption(options)
    const handle = this.#open()
    if (!native.externalBuffersAllowed()) return this.receive(options)
    this.#giveBackView(handle)
    const result = native.channelReceiveView(handle, timeout)
    if (typeof result === 'number') {
      if (result === ENDED) return null
      throw timedOut('receive', this.#path)
    }
    this.#view = Buffer.from(result)
    return this.#view
  }

  /** Gives back the message `receiveView` lent (detaching its Buffer). Does nothing if none is lent. */
  release(): void {
    if (this.#handle !== undefined) this.#giveBackView(this.#handle, true)
  }

  /**
   * Gives back a lent view before a receive, which would otherwise do it
   * natively, always detaching through Node-API: that ends the process
   * for a view marked untransferable on Node 24+ (see `releaseAndDetach`).
   * `evenIfNoneKnown`: ask the native side though this object holds no
   * view, as `release()` promises to give back whatever is lent.
   */
  #giveBackView(handle: object, evenIfNoneKnown = false): void {
    const view = this.#view
    this.#view = undefined
    if (view === undefined && !evenIfNoneKnown) return
    releaseAndDetach(view, (detach) => native.channelRelease(handle, detach), true)
  }

  /** Messages until the sender ends the channel, received asynchronously. */
  async *[Symbol.asyncIterator](): AsyncIterator<NodeBuffer> {
    for (;;) {
      const message = await this.receiveAsync()
      if (message === null) return
      yield message
    }
  }

  /** Sleeps until this end may have work, the deadline passes (ETIMEDOUT), or `signal` aborts. */
  #sleep(sending: boolean, deadline: number, signal: AbortSignal | undefined, operation: string): Promise<void> {
    const remaining = deadline - performance.now()
    if (remaining <= 0) return Promise.reject(timedOut(operation, this.#path))
    const handle = this.#open()
    return new Promise<void>((resolve, reject) => {
      let started: number | { cancel(): void }
      const done = () => {
        this.#pending.delete(pending)
        signal?.removeEventListener('abort', onAbort)
      }
      const pending: Pending = {
        cancel: () => {
          if (typeof started !== 'number') started.cancel()
        },
        reject,
        done,
      }
      const onAbort = () => {
        done()
        pending.cancel()
        reject(signal!.reason)
      }
      try {
        started = native.channelWaitAsync(handle, sending, Math.min(remaining, ASYNC_SLICE_MS), (result) => {
          done()
          if (typeof result === 'number') resolve()
          else reject(result)
        })
      } catch (error) {
        reject(error as Error)
        return
      }
      if (typeof started === 'number') {
        resolve()
        return
      }
      this.#pending.add(pending)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Ends the sending end: the receiver gets every message sent so far,
   * then null. Sending afterwards throws ERR_SHM_CHANNEL_ENDED, from any
   * handle. Takes the sending end if this handle does not hold it.
   */
  end(): void {
    native.channelEnd(this.#open())
  }

  /**
   * Gives up the ends this handle holds (another handle may then take
   * them), detaches a lent view, rejects pending asynchronous calls with
   * ERR_SHM_CLOSED, and closes the descriptor. A second call does nothing.
   */
  close(): void {
    const handle = this.#handle
    if (handle === undefined) return
    this.#handle = undefined
    const view = this.#view
    this.#view = undefined
    for (const pending of [...this.#pending]) {
      pending.done()
      pending.cancel()
      pending.reject(closedError())
    }
    releaseAndDetach(view, (detach) => native.channelClose(handle, detach), true)
  }

  /**
   * Removes the channel's name, as `SharedMemory#unlink` does; handles
   * already open keep working. Does nothing for a channel without a name,
   * or a second time.
   */
  unlink(): void {
    if (this.#path === undefined || this.#unlinked) return
    shmUnlink(this.#path)
    this.#unlinked = true
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
