// A consumer of the shipped typings. `tsc --strict` must accept every line,
// and each line marked @ts-expect-error must stay an error: if the typings
// grew loose enough to accept it, tsc reports the unused directive.

import {
  SharedMemory,
  ShmError,
  constants,
  fstat,
  mmap,
  munmap,
  shmClose,
  shmFtruncate,
  shmOpen,
  shmOpenAnonymous,
  withMmap,
  withMmappedShm,
  withOpenShm,
  waitAsync,
  type OpenFlag,
  type OpenOptions,
  type Permission,
  type Protection,
  type ShmStats,
} from 'posix-shm'

const flags: OpenFlag[] = ['create', 'read-write']
const permissions: Permission[] = ['read-user', 'write-user']
const protections: Protection[] = ['read', 'write']
const options: OpenOptions = { openFlags: flags, permissions }

const fd: number = shmOpen('/typed', options)
shmFtruncate(fd, 4096)
shmFtruncate(fd, 4096n)
const stats: ShmStats = fstat(fd)
const size: number = stats.size
const mapped: ArrayBuffer = mmap(size, protections, fd, 0)
// The option says which kind of buffer comes back.
const sharedMapping: SharedArrayBuffer = mmap(size, protections, fd, 0, { shared: true })
const plainMapping: ArrayBuffer = mmap(size, protections, fd, 0, { shared: false })
const sharedMemory: SharedMemory<SharedArrayBuffer> = SharedMemory.anonymous(size, { shared: true })
const isShared: boolean = sharedMemory.shared && SharedMemory.sharedBuffers
// @ts-expect-error a shared mapping is not an ArrayBuffer
const notPlain: ArrayBuffer = mmap(size, protections, fd, 0, { shared: true })
// @ts-expect-error a plain mapping is not a SharedArrayBuffer
const notShared: SharedArrayBuffer = mmap(size, protections, fd, 0)
void [sharedMapping, plainMapping, isShared, notPlain, notShared]

// So does SharedMemory's: `shared: true` makes a SharedMemory<SharedArrayBuffer>,
// whose buffer is Node's Buffer<SharedArrayBuffer>; without the option, or with
// `shared: false`, a SharedMemory<ArrayBuffer> (plain `SharedMemory`); with a
// boolean the compiler cannot read, either (ArrayBufferLike).
type Exactly<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false
function exactly<X, Y>(proof: Exactly<X, Y>): Exactly<X, Y> {
  return proof
}
declare const maybeShared: boolean
{
  const created = SharedMemory.create('typed-shared', 4096, { exclusive: false, shared: true })
  const opened = SharedMemory.open('typed-shared', { readOnly: true, shared: true })
  const anonymous = SharedMemory.anonymous(4096, { seal: true, shared: true })
  const received = SharedMemory.fromFd(created.fd, { size: 4096, shared: true })
  exactly<typeof created, SharedMemory<SharedArrayBuffer>>(true)
  exactly<typeof opened, SharedMemory<SharedArrayBuffer>>(true)
  exactly<typeof anonymous, SharedMemory<SharedArrayBuffer>>(true)
  exactly<typeof received, SharedMemory<SharedArrayBuffer>>(true)
  exactly<typeof created.buffer, Buffer<SharedArrayBuffer>>(true)
  const posted: SharedArrayBuffer = anonymous.buffer.buffer
  const words = new Int32Array(received.buffer.buffer)
  exactly<typeof words, Int32Array<SharedArrayBuffer>>(true)
  const anyBuffer: Buffer = opened.buffer
  // @ts-expect-error a shared SharedMemory is not a plain one
  const plain: SharedMemory = created
  // @ts-expect-error its buffer is over a SharedArrayBuffer, not an ArrayBuffer
  const notArrayBuffer: ArrayBuffer = created.buffer.buffer
  // @ts-expect-error nor a Buffer<ArrayBuffer>
  const notPlainBuffer: Buffer<ArrayBuffer> = anonymous.buffer
  void [posted, anyBuffer, plain, notArrayBuffer, notPlainBuffer]
}
{
  const created = SharedMemory.create('typed-plain', 4096, { shared: false })
  const opened = SharedMemory.open('typed-plain', { shared: false })
  const anonymous = SharedMemory.anonymous(4096, { shared: false })
  const received = SharedMemory.fromFd(created.fd, { shared: false })
  exactly<typeof created, SharedMemory<ArrayBuffer>>(true)
  exactly<typeof opened, SharedMemory<ArrayBuffer>>(true)
  exactly<typeof anonymous, SharedMemory<ArrayBuffer>>(true)
  exactly<typeof received, SharedMemory<ArrayBuffer>>(true)
  exactly<typeof created.buffer, Buffer<ArrayBuffer>>(true)
  // @ts-expect-error a plain SharedMemory's buffer is not over a SharedArrayBuffer
  const notShared: SharedArrayBuffer = received.buffer.buffer
  // @ts-expect-error nor is the SharedMemory a shared one
  const notSharedMemory: SharedMemory<SharedArrayBuffer> = opened
  void [notShared, notSharedMemory]
}
{
  const created = SharedMemory.create('typed-plain', 4096)
  const opened = SharedMemory.open('typed-plain')
  const anonymous = SharedMemory.anonymous(4096, {})
  const received = SharedMemory.fromFd(created.fd)
  exactly<typeof created, SharedMemory>(true)
  exactly<typeof opened, SharedMemory>(true)
  exactly<typeof anonymous, SharedMemory<ArrayBuffer>>(true)
  exactly<typeof received, SharedMemory<ArrayBuffer>>(true)
  const mapping: ArrayBuffer = anonymous.buffer.buffer
  void mapping
}
{
  const created = SharedMemory.create('typed-either', 4096, { shared: maybeShared })
  const opened = SharedMemory.open('typed-either', { shared: maybeShared })
  const anonymous = SharedMemory.anonymous(4096, { shared: maybeShared })
  const received = SharedMemory.fromFd(created.fd, { shared: maybeShared })
  exactly<typeof created, SharedMemory<ArrayBufferLike>>(true)
  exactly<typeof opened, SharedMemory<ArrayBufferLike>>(true)
  exactly<typeof anonymous, SharedMemory<ArrayBufferLike>>(true)
  exactly<typeof received, SharedMemory<ArrayBufferLike>>(true)
  exactly<typeof created.buffer, Buffer<ArrayBufferLike>>(true)
  const either: ArrayBuffer | SharedArrayBuffer = opened.buffer.buffer
  // Either kind goes where either is accepted.
  const wide: SharedMemory<ArrayBufferLike> = SharedMemory.create('typed-either', 4096, { shared: true })
  // @ts-expect-error it may be shared: not an ArrayBuffer for certain
  const notArrayBuffer: ArrayBuffer = anonymous.buffer.buffer
  // @ts-expect-error nor a SharedArrayBuffer
  const notShared: SharedArrayBuffer = received.buffer.buffer
  void [either, wide, notArrayBuffer, notShared]
}
munmap(new Uint8Array(mapped))
const numeric: number = shmOpenAnonymous({ openFlags: constants.O_RDWR, permissions: 0o600, attempts: 3 })
shmClose(numeric)

const total: number = withOpenShm('/typed', options, (descriptor) =>
  withMmap(100, ['read'], descriptor, 0, (buffer) => buffer.byteLength),
)
const later: Promise<string> = withMmappedShm('/typed', options, { length: 10, protections: ['read'] }, async (_fd, buffer) =>
  String(buffer.byteLength),
)

{
  using shm = SharedMemory.create('typed-object', 4096, { exclusive: false, allocate: true })
  const name: string | undefined = shm.name
  const bytes: Buffer = shm.buffer
  bytes[0] = shm.readOnly ? 0 : 1
  // With Node's types, buffer and read() are Node's Buffer, not a bare Uint8Array.
  const text: string = shm.read(0, 4).toString('utf8') + bytes.toString('hex', 0, 1)
  const mode: boolean = SharedMemory.zeroCopy
  void [name, text, mode]
}
const opened = SharedMemory.open('typed-object', { readOnly: true, size: 10 })
opened.close()

try {
  shmOpen('/typed')
} catch (error) {
  if (error instanceof ShmError) {
    const code: string = error.code
    const errno: number | undefined = error.errno
    const syscall: string | undefined = error.syscall
    const path: string | undefined = error.path
    void [code, errno, syscall, path]
    // @ts-expect-error a state error has no errno
    const always: number = error.errno
    void always
  }
}

// @ts-expect-error an unknown open flag keyword
shmOpen('/typed', { openFlags: ['append'] })
// @ts-expect-error a protection list passed as open flags
shmOpen('/typed', { openFlags: protections })
// @ts-expect-error a permission keyword that does not exist
shmOpen('/typed', { permissions: ['read-all'] })
// @ts-expect-error a string size
shmFtruncate(fd, '4096')
// @ts-expect-error a string size
SharedMemory.create('typed-object', '4096')
// @ts-expect-error a string length
mmap('4096', ['read'], fd)
// @ts-expect-error open flags where protections go
mmap(4096, ['read-write'], fd)
// @ts-expect-error a missing body in a with* helper
withOpenShm('/typed', options)
// @ts-expect-error a missing body in a with* helper
withMmap(100, ['read'], fd, 0)
// @ts-expect-error a missing body in a with* helper
withMmappedShm('/typed', options, { length: 10, protections: ['read'] })
// @ts-expect-error the buffer is read-only as a property
opened.buffer = Buffer.alloc(1)
// @ts-expect-error SharedMemory has no public constructor
new SharedMemory()
// @ts-expect-error SharedMemory.zeroCopy is read-only
SharedMemory.zeroCopy = false
// @ts-expect-error SharedMemory.sharedBuffers is read-only
SharedMemory.sharedBuffers = true

const aborted: Promise<string> = waitAsync(new Int32Array(mapped), 0, 0, 10, { signal: AbortSignal.timeout(5) })
void [total, later, aborted]
