// A consumer that installed posix-shm and nothing else: no @types/node, no
// DOM library, only ES2022. `tsc --strict` must accept every line against
// the shipped typings (index.d.ts), and each @ts-expect-error line must stay
// an error. scripts/pack-and-install.sh compiles it in a scratch project
// where only the packed tarballs are installed; `npm run typecheck` here.

import {
  SharedMemory,
  ShmError,
  constants,
  fstat,
  mmap,
  munmap,
  notify,
  shmClose,
  shmFtruncate,
  shmOpen,
  shmUnlink,
  wait,
  waitAsync,
  withMmap,
  type ShmStats,
  type WaitResult,
} from 'posix-shm'

const fd: number = shmOpen('/bare', { openFlags: ['create', 'read-write'], permissions: ['read-user', 'write-user'] })
shmFtruncate(fd, constants.pageSize)
const stats: ShmStats = fstat(fd)
const mapped: ArrayBuffer = mmap(stats.size, ['read', 'write'], fd)
const words = new Int32Array(mapped)
const waited: WaitResult = wait(words, 0, 1, 0)
const woken: number = notify(words, 0)
const later: Promise<WaitResult> = waitAsync(words, 0, 0, 10)
munmap(mapped)
const length: number = withMmap(16, ['read'], fd, 0, (buffer) => buffer.byteLength)
shmClose(fd)
shmUnlink('/bare')

const shm = SharedMemory.create('bare-object', 4096, { exclusive: false })
// Without Node's types, the zero-copy buffer is the Uint8Array that Buffer extends.
const bytes: Uint8Array = shm.buffer
const copy: Uint8Array = shm.read(0, 4)
shm.write('text', 0)
const previous: number = shm.atomicAdd(0, 1)
const zeroCopy: boolean = SharedMemory.zeroCopy
shm.unlink()
shm.close()
// With `shared: true`, a Uint8Array over a SharedArrayBuffer.
const shared: SharedMemory<SharedArrayBuffer> = SharedMemory.anonymous(4096, { shared: true })
const sharedBytes: Uint8Array<SharedArrayBuffer> = shared.buffer
const plainBytes: Uint8Array<ArrayBuffer> = SharedMemory.fromFd(shared.fd, { shared: false }).buffer
declare const maybeShared: boolean
const eitherBytes: Uint8Array<ArrayBufferLike> = SharedMemory.open('bare-object', { shared: maybeShared }).buffer
// @ts-expect-error a shared mapping's bytes are not over an ArrayBuffer
const notPlain: Uint8Array<ArrayBuffer> = shared.buffer
// @ts-expect-error nor may a boolean's be taken for shared
const notShared: Uint8Array<SharedArrayBuffer> = SharedMemory.create('bare-object', 4096, { shared: maybeShared }).buffer

try {
  SharedMemory.open('bare-object')
} catch (error) {
  if (error instanceof ShmError) {
    const code: string = error.code
    // A state error has no errno or syscall; a failed system call has both.
    const errno: number | undefined = error.errno
    const syscall: string | undefined = error.syscall
    void [code, errno, syscall]
    // @ts-expect-error errno may be absent
    const always: number = error.errno
    void always
  }
}

// @ts-expect-error a string size
SharedMemory.create('bare-object', '4096')
// @ts-expect-error SharedMemory.zeroCopy is read-only
SharedMemory.zeroCopy = false
// @ts-expect-error an unknown open flag keyword
shmOpen('/bare', { openFlags: ['append'] })
// @ts-expect-error wait takes an Int32Array
wait(new Uint8Array(mapped), 0, 0)

void [waited, woken, later, length, bytes, copy, previous, zeroCopy, sharedBytes, plainBytes, eitherBytes, notPlain, notShared]
