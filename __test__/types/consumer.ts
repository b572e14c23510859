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
