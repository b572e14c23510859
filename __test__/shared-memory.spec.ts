// SharedMemory's own behaviour. The same file runs a second time with
// POSIX_SHM_NO_EXTERNAL_BUFFERS=1 (shared-memory-copy-mode.spec.ts), where
// `buffer` is refused and everything goes through the copying methods;
// tests that look at `buffer` check whichever the mode promises.

import test from 'ava'
import { fstatSync } from 'node:fs'
import { inspect } from 'node:util'
import { SharedMemory, ShmError, fstat, shmClose, shmFtruncate, shmOpen, shmOpenAnonymous } from 'posix-shm'
import { existsInDevShm, isLinux, linuxOnly, mappingCount, openFdCount, removeQuietly, runNode, uniqueName } from './helpers'

test.serial('create maps a new object read-write; open by the same name sees its bytes', (t) => {
  const name = uniqueName('sm')
  const fds = openFdCount()
  const maps = mappingCount()
  const created = SharedMemory.create(name, 10_000)
  t.teardown(() => removeQuietly(name))
  t.is(created.name, name)
  t.is(created.size, 10_000)
  t.false(created.readOnly)
  t.false(created.closed)
  t.is(fstat(created.fd).size, 10_000)
  t.is(fstat(created.fd).mode & 0o777, 0o600 & ~process.umask())
  if (SharedMemory.zeroCopy) {
    t.true(Buffer.isBuffer(created.buffer))
    t.is(created.buffer.length, 10_000)
  } else {
    t.throws(() => created.buffer, { instanceOf: ShmError, code: 'ERR_SHM_NO_EXTERNAL_BUFFERS', message: /read\(\)/ })
  }
  t.is(created.write('shared', 9_000), 6)

  const opened = SharedMemory.open(`/${name}`, { readOnly: true })
  t.is(opened.name, `/${name}`)
  t.is(opened.size, 10_000)
  t.true(opened.readOnly)
  t.is(opened.read(9_000, 6).toString(), 'shared')
  t.throws(() => opened.write('x', 0), { code: 'ERR_SHM_READ_ONLY' })
  t.throws(() => opened.atomicAdd(0, 1), { code: 'ERR_SHM_READ_ONLY' })
  t.is(fstatSync(opened.fd).ino, fstatSync(created.fd).ino)
  t.is(openFdCount(), fds + 2)
  t.is(mappingCount(), maps + 2)

  opened.close()
  created.unlink()
  t.false(existsInDevShm(name))
  created.write('still mapped after unlink', 0)
  t.is(created.read(0, 5).toString(), 'still')
  created.close()
  t.is(openFdCount(), fds)
  t.is(mappingCount(), maps)
})

test.serial('close detaches the buffer and every view, closes the fd, and a second close does nothing', (t) => {
  const shm = SharedMemory.anonymous(4096)
  const buffer = SharedMemory.zeroCopy ? shm.buffer : undefined
  const ints = buffer && new Int32Array(buffer.buffer, buffer.byteOffset, 16)
  shm.atomicStore(0, 7)
  const fd = shm.fd
  shm.close()
  t.true(shm.closed)
  t.is(shm.fd, -1)
  if (buffer && ints) {
    t.is(buffer.length, 0)
    t.is(ints.length, 0)
  }
  t.throws(() => shm.buffer, { code: 'ERR_SHM_CLOSED' })
  for (const use of [() => shm.read(0, 1), () => shm.write('x', 0), () => shm.atomicLoad(0), () => shm.notify(0), () => shm.wait(0, 7, 0)]) {
    t.throws(use, { code: 'ERR_SHM_CLOSED' })
  }
  t.is(t.throws(() => fstat(fd), { instanceOf: ShmError })?.code, 'EBADF')
  t.notThrows(() => shm.close())
})

test.serial('using disposes: the object is closed at the end of the block', (t) => {
  let escaped: SharedMemory | undefined
  {
    using shm = SharedMemory.anonymous(4096)
    escaped = shm
    shm.write('x', 0)
  }
  t.true(escaped.closed)
})

test.serial('the defaults and options of create: exclusive, permissions, growing an existing object', (t) => {
  const name = uniqueName('opts')
  const first = SharedMemory.create(name, 4096, { permissions: ['read-user', 'write-user', 'read-group'] })
  t.teardown(() => removeQuietly(name))
  t.is(fstat(first.fd).mode & 0o777, 0o640 & ~process.umask())
  t.is(t.throws(() => SharedMemory.create(name, 4096), { instanceOf: ShmError })?.code, 'EEXIST')
  // Not exclusive: opens it and grows it, never shrinks it.
  const grown = SharedMemory.create(name, 8192, { exclusive: false })
  t.is(fstat(grown.fd).size, 8192)
  const smaller = SharedMemory.create(name, 100, { exclusive: false })
  t.is(smaller.size, 100)
  t.is(fstat(smaller.fd).size, 8192)
  grown.close()
  smaller.close()
  first.close()
})

test.serial('open maps the whole object unless told a size, and refuses an empty object', (t) => {
  const name = uniqueName('open')
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  const fds = openFdCount()
  const empty = t.throws(() => SharedMemory.open(name), { instanceOf: ShmError })
  t.is(empty?.code, 'ERR_SHM_EMPTY')
  t.regex(empty?.message ?? '', /size 0: there is nothing to map/)
  t.is(openFdCount(), fds)
  shmFtruncate(fd, 3 * 4096)
  const whole = SharedMemory.open(name)
  t.is(whole.size, 3 * 4096)
  const part = SharedMemory.open(name, { size: 4096 })
  t.is(part.size, 4096)
  t.throws(() => SharedMemory.open(name, { size: 4 * 4096 }), { instanceOf: RangeError })
  t.is(openFdCount(), fds + 2)
  whole.close()
  part.close()
  shmClose(fd)
  t.is(t.throws(() => SharedMemory.open(uniqueName('missing')), { instanceOf: ShmError })?.code, 'ENOENT')
})

test.serial('fromFd takes ownership: close() closes the descriptor, read-only is taken from it', (t) => {
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, 4096)
  const shm = SharedMemory.fromFd(fd)
  t.is(shm.fd, fd)
  t.is(shm.size, 4096)
  t.is(shm.name, undefined)
  t.false(shm.readOnly)
  shm.close()
  t.is(t.throws(() => fstat(fd), { instanceOf: ShmError })?.code, 'EBADF')

  const name = uniqueName('ro')
  const rw = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const roFd = shmOpen(name, { openFlags: ['read-only'] })
  const ro = SharedMemory.fromFd(roFd)
  t.true(ro.readOnly)
  ro.close()
  rw.close()
  t.throws(() => SharedMemory.fromFd(roFd), { instanceOf: ShmError, code: 'EBADF' })
})

test.serial('bad arguments are refused before any system call', (t) => {
  const fds = openFdCount()
  const name = uniqueName('bad')
  t.throws(() => SharedMemory.create(name, 0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: /size 0 has nothing to map/ })
  for (const size of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
    t.throws(() => SharedMemory.create(name, size), { instanceOf: RangeError }, String(size))
    t.throws(() => SharedMemory.anonymous(size), { instanceOf: RangeError })
  }
  t.throws(() => SharedMemory.create(name, '4096' as unknown as number), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => SharedMemory.create('a/b', 10), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => SharedMemory.create(name, 10, { exclusive: 'yes' as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => SharedMemory.create(name, 10, { allocate: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => SharedMemory.create(name, 10, { permissions: ['read-all' as 'read-user'] }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => SharedMemory.open(name, { size: 0 }), { instanceOf: RangeError })
  t.throws(() => SharedMemory.open(name, null as unknown as object), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => SharedMemory.fromFd(-1), { instanceOf: RangeError })
  t.throws(() => SharedMemory.fromFd(1e9), { instanceOf: ShmError, code: 'EBADF' })
  t.false(existsInDevShm(name))
  t.is(openFdCount(), fds)
})

test.serial('a constructor that fails after opening closes its descriptor and leaves a name it did not create', (t) => {
  const existing = uniqueName('existing')
  const fd = shmOpen(existing, { openFlags: ['create', 'read-write'] })
  shmFtruncate(fd, 4096)
  shmClose(fd)
  t.teardown(() => removeQuietly(existing))
  const fds = openFdCount()
  // shm_open succeeds, then the mapping is refused: more than the object holds.
  t.throws(() => SharedMemory.open(existing, { size: 8192 }), { instanceOf: RangeError })
  t.throws(() => SharedMemory.fromFd(shmOpen(existing), { size: 8192 }), { instanceOf: RangeError })
  t.is(openFdCount(), fds)
  // Only Linux shows objects as files in /dev/shm.
  if (isLinux) t.true(existsInDevShm(existing), 'a name it only opened is left alone')
  // (A name that create made and then could not map is unlinked: see the
  // full-/dev/shm test in sharing.spec.ts, where allocate fails with ENOSPC.)
})

test.serial('inspect shows what it is without dumping the memory', (t) => {
  const shm = SharedMemory.anonymous(1 << 20)
  t.regex(inspect(shm), /^SharedMemory \{ anonymous, 1048576 bytes, fd \d+ \}$/)
  shm.close()
  t.is(inspect(shm), 'SharedMemory { anonymous, 1048576 bytes, closed }')
})

linuxOnly('the child counts /proc/self/fd and /proc/self/maps', test.serial)('a SharedMemory that is never closed releases its fd and mapping when collected', async (t) => {
  const child = await runNode(
    `
    const { SharedMemory } = require('posix-shm')
    const fs = require('fs')
    const fds = () => fs.readdirSync('/proc/self/fd').length
    const maps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(' /dev/shm/') || l.includes(' /memfd:posix-shm')).length
    ;(async () => {
      const before = { fds: fds(), maps: maps() }
      for (let i = 0; i < 5000; i++) SharedMemory.anonymous(4096).write('x', 0)
      for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setImmediate(r)) }
      console.log(JSON.stringify({ before, after: { fds: fds(), maps: maps() } }))
    })()
    `,
    { nodeOptions: ['--expose-gc'], env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS ?? '' } },
  )
  t.is(child.code, 0, child.stderr)
  const { before, after } = JSON.parse(child.stdout) as { before: { fds: number; maps: number }; after: { fds: number; maps: number } }
  t.deepEqual(after, before)
})

test.serial('read, readInto, write and the atomics work on the mapping, and check their ranges', (t) => {
  using shm = SharedMemory.anonymous(8192)
  t.is(shm.write(new Uint8Array([1, 2, 3]), 100), 3)
  t.deepEqual([...shm.read(100, 3)], [1, 2, 3])
  const target = new Uint16Array(2)
  t.is(shm.readInto(target, 100), 4)
  t.deepEqual([...new Uint8Array(target.buffer)], [1, 2, 3, 0])
  t.is(shm.write('é', 8190), 2)
  t.is(shm.read(8190, 2).toString(), 'é')
  t.is(shm.atomicStore(4, -5), -5)
  t.is(shm.atomicAdd(4, 10), -5)
  t.is(shm.atomicLoad(4), 5)
  t.is(shm.atomicAdd(4, 2 ** 31), 5) // wraps, as Atomics.add does
  t.is(shm.atomicCompareExchange(8, 0, 42), 0)
  t.is(shm.atomicCompareExchange(8, 0, 43), 42)
  t.is(shm.atomicLoad(8), 42)
  t.throws(() => shm.read(8190, 3), { instanceOf: RangeError })
  t.throws(() => shm.write('abc', 8190), { instanceOf: RangeError })
  t.throws(() => shm.readInto(new Uint8Array(10), 8190), { instanceOf: RangeError })
  t.throws(() => shm.atomicLoad(2), { instanceOf: RangeError })
  t.throws(() => shm.atomicLoad(8192), { instanceOf: RangeError })
  t.throws(() => shm.wait(6, 0, 0), { instanceOf: RangeError })
  t.throws(() => shm.read(-1, 1), { instanceOf: RangeError })
  t.throws(() => shm.write(42 as unknown as string, 0), { instanceOf: TypeError })
  t.throws(() => shm.readInto([] as unknown as Uint8Array, 0), { instanceOf: TypeError })
  // Nothing to copy is fine, in both modes.
  t.is(shm.write('', 0), 0)
  t.is(shm.write(new Uint8Array(0), 8192), 0)
  t.is(shm.readInto(new Uint8Array(0), 0), 0)
  t.is(shm.read(8192, 0).length, 0)
  t.is(shm.wait(8, 41), 'not-equal')
  t.is(shm.wait(8, 42, 5), 'timed-out')
  t.is(shm.notify(8), 0)
})

test.serial('SharedMemory wait/notify between two processes, and waitAsync', async (t) => {
  const name = uniqueName('smwait')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const pending = shm.waitAsync(0, 0, 10_000)
  const child = await runNode(
    `
    const { SharedMemory } = require('posix-shm')
    const shm = SharedMemory.open(process.argv[1])
    shm.write('from the child', 16)
    shm.atomicStore(0, 1)
    shm.notify(0)
    shm.close()
    `,
    { args: [name], env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS ?? '' } },
  )
  t.is(child.code, 0, child.stderr)
  t.is(await pending, 'ok')
  t.is(shm.read(16, 14).toString(), 'from the child')
})

test.serial('a state that refuses a call is a ShmError with its own code and no errno or syscall', (t) => {
  const name = uniqueName('state')
  t.teardown(() => removeQuietly(name))
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  const empty = t.throws(() => SharedMemory.open(name))
  const stateErrors: [code: string, call: () => unknown][] = [['ERR_SHM_EMPTY', () => { throw empty }]]
  shmFtruncate(fd, 4096)
  shmClose(fd)
  const readOnly = SharedMemory.open(name, { readOnly: true })
  t.teardown(() => readOnly.close())
  stateErrors.push(['ERR_SHM_READ_ONLY', () => readOnly.write('x', 0)])
  stateErrors.push(['ERR_SHM_FD_OWNED', () => shmClose(readOnly.fd)])
  if (!SharedMemory.zeroCopy) stateErrors.push(['ERR_SHM_NO_EXTERNAL_BUFFERS', () => readOnly.buffer])
  if (!isLinux) stateErrors.push(['ERR_SHM_SEAL_UNSUPPORTED', () => SharedMemory.anonymous(4096, { seal: true })])
  const closed = SharedMemory.anonymous(4096)
  closed.close()
  stateErrors.push(['ERR_SHM_CLOSED', () => closed.read(0, 1)])
  for (const [code, call] of stateErrors) {
    const error = t.throws(call, { instanceOf: ShmError, code }, code)
    t.is(error?.name, 'ShmError')
    t.false(Object.hasOwn(error ?? {}, 'errno'), code)
    t.false(Object.hasOwn(error ?? {}, 'syscall'), code)
    t.is(error?.errno, undefined)
    t.is(error?.syscall, undefined)
  }
})

test('SharedMemory.zeroCopy says which mode this process is in', (t) => {
  t.is(SharedMemory.zeroCopy, process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS !== '1')
})

test('SharedMemory.zeroCopy is read-only: assigning to it throws a TypeError and changes nothing', (t) => {
  const mode = SharedMemory.zeroCopy
  t.throws(
    () => {
      // Specs compile to strict code, where assigning to a getter-only property throws.
      ;(SharedMemory as { zeroCopy: boolean }).zeroCopy = !mode
    },
    { instanceOf: TypeError },
  )
  t.is(SharedMemory.zeroCopy, mode)
  // Sloppy code: the assignment is ignored.
  t.notThrows(() => new Function('SharedMemory', 'mode', 'SharedMemory.zeroCopy = !mode')(SharedMemory, mode))
  t.is(SharedMemory.zeroCopy, mode)
  t.is(Object.getOwnPropertyDescriptor(SharedMemory, 'zeroCopy')?.set, undefined)
  using shm = SharedMemory.anonymous(4096)
  if (mode) t.true(Buffer.isBuffer(shm.buffer))
  else t.throws(() => shm.buffer, { code: 'ERR_SHM_NO_EXTERNAL_BUFFERS' })
})

test.serial('check() reports an object shrunk by another process; reads within the new size keep working', async (t) => {
  const name = uniqueName('shrunk')
  using shm = SharedMemory.create(name, 3 * 4096)
  t.teardown(() => removeQuietly(name))
  shm.write('first page', 0)
  t.true(shm.check())
  const child = await runNode(
    `
    const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
    const fd = shmOpen(process.argv[1])
    shmFtruncate(fd, 4096)
    shmClose(fd)
    `,
    { args: [name] },
  )
  t.is(child.code, 0, child.stderr)
  t.false(shm.check())
  t.is(shm.read(0, 10).toString(), 'first page')
  shm.write('still', 4000)
  t.is(shm.read(4000, 5).toString(), 'still')
  // Grown back, the whole mapping is safe again.
  shmFtruncate(shm.fd, 3 * 4096)
  t.true(shm.check())
  shm.close()
  t.throws(() => shm.check(), { code: 'ERR_SHM_CLOSED' })
})
