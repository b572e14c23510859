import test from 'ava'
import { constants as bufferConstants } from 'node:buffer'
import { runInNewContext } from 'node:vm'
import { ShmError, constants, mmap, munmap, shmClose, shmFtruncate, shmOpen, shmOpenAnonymous, shmUnlink } from 'posix-shm'
import { isLinux, MAPPING_COUNT_SOURCE, mappingCount, openFdCount, removeQuietly, runNode, uniqueName } from './helpers'

const PAGE = constants.pageSize

function anonymousObject(size: number): number {
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, size)
  return fd
}

test.serial('a write mapping and a read mapping of one object see the same ten ints', (t) => {
  const name = uniqueName('ten')
  const fd = shmOpen(name, { openFlags: ['create', 'read-write'], permissions: ['read-user', 'write-user'] })
  t.teardown(() => removeQuietly(name))
  const size = 10 * Int32Array.BYTES_PER_ELEMENT
  shmFtruncate(fd, size)
  const writable = mmap(size, ['write'], fd, 0)
  const readable = mmap(size, ['read'], fd, 0)
  const ints = new Int32Array(writable)
  for (let i = 0; i < 10; i++) ints[i] = i * 10
  t.deepEqual([...new Int32Array(readable)], [0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
  munmap(writable)
  munmap(readable)
  shmClose(fd)
  shmUnlink(name)
})

test.serial('munmap detaches the ArrayBuffer: byteLength 0, every view empty, nothing reaches the memory', (t) => {
  const fd = anonymousObject(2 * PAGE)
  t.teardown(() => shmClose(fd))
  const before = mappingCount()
  const mapped = mmap(2 * PAGE, ['read', 'write'], fd)
  t.is(mappingCount(), before + 1)
  const ints = new Int32Array(mapped)
  const bytes = Buffer.from(mapped, 100, 50)
  const view = new DataView(mapped)
  ints[0] = 1234
  t.is(view.getInt32(0, true), 1234)
  munmap(mapped)
  t.is(mapped.byteLength, 0)
  t.is(ints.length, 0)
  t.is(bytes.length, 0)
  t.is(ints[0] as number | undefined, undefined)
  ints[0] = 5 // ignored, as for any detached buffer
  t.is(ints[0] as number | undefined, undefined)
  t.throws(() => view.getInt32(0, true), { instanceOf: TypeError })
  t.is(bytes.toString('hex'), '')
  t.is(mappingCount(), before)
})

test.serial('munmap takes any view on the mapping, including one at an offset', (t) => {
  const fd = anonymousObject(PAGE)
  t.teardown(() => shmClose(fd))
  const before = mappingCount()
  const mapped = mmap(PAGE, ['read', 'write'], fd)
  const tail = new Uint8Array(mapped, 128, 16)
  munmap(tail)
  t.is(mapped.byteLength, 0)
  t.is(mappingCount(), before)
  const again = mmap(PAGE, ['read', 'write'], fd)
  munmap(new DataView(again, 8))
  t.is(again.byteLength, 0)
})

test.serial('munmap of anything it did not map throws and unmaps nothing', (t) => {
  const fd = anonymousObject(PAGE)
  t.teardown(() => shmClose(fd))
  const live = mmap(PAGE, ['read', 'write'], fd)
  const liveInts = new Int32Array(live)
  liveInts[0] = 77
  const gone = mmap(PAGE, ['read', 'write'], fd)
  munmap(gone)
  const before = mappingCount()
  const foreign: Array<ArrayBuffer | ArrayBufferView> = [
    new ArrayBuffer(PAGE),
    Buffer.alloc(PAGE),
    Buffer.allocUnsafe(16),
    new Uint8Array(live).slice(0, 16),
    gone,
    new Uint8Array(0),
  ]
  for (const value of foreign) {
    t.throws(() => munmap(value), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  }
  // Views over memory that is not an ArrayBuffer of ours, from any realm.
  for (const value of [new Uint8Array(new SharedArrayBuffer(PAGE)), new DataView(new SharedArrayBuffer(8)), runInNewContext('new ArrayBuffer(8)')]) {
    t.throws(() => munmap(value as ArrayBuffer), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  }
  for (const value of ['x', 42, null, undefined, {}, [1, 2], new SharedArrayBuffer(PAGE)]) {
    t.throws(() => munmap(value as unknown as ArrayBuffer), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  }
  t.is(mappingCount(), before)
  t.is(liveInts[0], 77)
  t.is(live.byteLength, PAGE)
  munmap(live)
})

test.serial('mmap refuses a range past the end of the object, naming both numbers', (t) => {
  const fd = anonymousObject(PAGE)
  t.teardown(() => shmClose(fd))
  const before = mappingCount()
  const beyond = t.throws(() => mmap(2 * PAGE, ['read'], fd), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.regex(beyond?.message ?? '', new RegExp(`\\(${2 * PAGE}\\).*\\(${PAGE} bytes\\)`))
  const offset = t.throws(() => mmap(1, ['read'], fd, PAGE), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.regex(offset?.message ?? '', new RegExp(`\\(${PAGE + 1}\\).*\\(${PAGE} bytes\\)`))
  const empty = anonymousObject(0)
  t.throws(() => mmap(1, ['read'], empty), { instanceOf: RangeError })
  shmClose(empty)
  t.is(mappingCount(), before)
  // Inside the object it works, up to the last byte.
  const last = mmap(PAGE, ['read'], fd)
  t.is(last.byteLength, PAGE)
  munmap(last)
})

test.serial('bad lengths, offsets and fds are refused before any mapping or descriptor is made', (t) => {
  const fd = anonymousObject(4 * PAGE)
  const closed = shmOpenAnonymous()
  shmClose(closed)
  t.teardown(() => shmClose(fd))
  const maps = mappingCount()
  const fds = openFdCount()
  for (const length of [-1, 0, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 53]) {
    t.throws(() => mmap(length, ['read'], fd), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }, String(length))
  }
  t.throws(() => mmap('4096' as unknown as number, ['read'], fd), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => mmap(PAGE, ['read'], fd, 100), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => mmap(PAGE, ['read'], fd, PAGE / 2), { instanceOf: RangeError })
  t.throws(() => mmap(PAGE, ['read'], fd, -PAGE), { instanceOf: RangeError })
  t.throws(() => mmap(PAGE, ['read'], -1), { instanceOf: RangeError })
  t.is(t.throws(() => mmap(PAGE, ['read'], 1e9), { instanceOf: ShmError })?.code, 'EBADF')
  t.is(t.throws(() => mmap(PAGE, ['read'], closed), { instanceOf: ShmError })?.code, 'EBADF')
  t.is(mappingCount(), maps)
  t.is(openFdCount(), fds)
  // An offset that is a page multiple maps the right bytes.
  const whole = new Uint8Array(mmap(4 * PAGE, ['read', 'write'], fd))
  whole[2 * PAGE] = 99
  const part = mmap(PAGE, ['read'], fd, 2 * PAGE)
  t.is(new Uint8Array(part)[0], 99)
  munmap(part)
  munmap(whole)
})

test.serial('a mapping larger than the runtime\'s largest buffer is refused before mapping', (t) => {
  const limit = bufferConstants.MAX_LENGTH
  t.true(limit >= 2 ** 32)
  const fd = anonymousObject(0)
  t.teardown(() => shmClose(fd))
  const before = mappingCount()
  if (limit < Number.MAX_SAFE_INTEGER) {
    // Sparse: no memory is used until touched.
    shmFtruncate(fd, limit + PAGE)
    const error = t.throws(() => mmap(limit + PAGE, ['read'], fd), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    t.regex(error?.message ?? '', new RegExp(`<= ${limit}`))
  } else {
    t.throws(() => mmap(limit + 1, ['read'], fd), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  }
  t.is(mappingCount(), before)
})

test.serial('a write mapping of a read-only descriptor fails with EACCES and leaves nothing mapped', (t) => {
  const name = uniqueName('eacces')
  const rw = shmOpen(name, { openFlags: ['create', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  shmFtruncate(rw, PAGE)
  shmClose(rw)
  const ro = shmOpen(name, { openFlags: ['read-only'] })
  const before = mappingCount()
  const error = t.throws(() => mmap(PAGE, ['read', 'write'], ro), { instanceOf: ShmError })
  t.is(error?.code, 'EACCES')
  t.is(error?.syscall, 'mmap')
  t.is(mappingCount(), before)
  shmClose(ro)
})

test.serial('where external buffers are refused, mmap throws ERR_SHM_NO_EXTERNAL_BUFFERS and unmaps what it mapped', async (t) => {
  const child = await runNode(
    `
    const { mmap, shmOpenAnonymous, shmFtruncate, ShmError, constants } = require('posix-shm')
    const count = ${MAPPING_COUNT_SOURCE}
    const fd = shmOpenAnonymous()
    shmFtruncate(fd, constants.pageSize)
    const before = count()
    let error
    for (let i = 0; i < 1000; i++) {
      try { mmap(constants.pageSize, ['read', 'write'], fd) } catch (e) { error = e }
    }
    console.log(JSON.stringify({ isShmError: error instanceof ShmError, code: error.code, stateError: !('errno' in error) && !('syscall' in error), message: error.message, grew: count() - before }))
    `,
    { env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } },
  )
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { isShmError: boolean; code: string; stateError: boolean; message: string; grew: number }
  t.true(result.isShmError)
  t.is(result.code, 'ERR_SHM_NO_EXTERNAL_BUFFERS')
  t.true(result.stateError, 'a state error: no errno, no syscall')
  t.regex(result.message, /refuses external ArrayBuffers/)
  // The child counts mappings in /proc/self/maps: NaN, sent as null, elsewhere.
  if (isLinux) t.is(result.grew, 0)
})

test.serial('a mapping without write is returned and reads work; writing through it ends the process', async (t) => {
  const name = uniqueName('readonly')
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  shmFtruncate(fd, PAGE)
  const writer = new Int32Array(mmap(PAGE, ['read', 'write'], fd))
  writer[5] = 4242
  shmClose(fd)
  const script = (write: boolean) => `
    const { mmap, shmOpen } = require('posix-shm')
    const fd = shmOpen(${JSON.stringify(name)}, { openFlags: ['read-only'] })
    const view = new Int32Array(mmap(${PAGE}, ['read'], fd))
    console.log(view[5])
    ${write ? 'view[5] = 1' : ''}
    console.log('still alive')
  `
  const reader = await runNode(script(false))
  t.is(reader.code, 0, reader.stderr)
  t.is(reader.stdout, '4242\nstill alive\n')
  const crasher = await runNode(script(true))
  t.is(crasher.stdout, '4242\n')
  t.true(crasher.signal === 'SIGSEGV' || crasher.signal === 'SIGBUS', `ended by ${crasher.signal}, code ${crasher.code}`)
  t.is(writer[5], 4242)
})

const canTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'
if (!canTransfer) console.log(`skipped: ArrayBuffer.prototype.transfer does not exist in Node ${process.version}, so there is nothing to refuse`)
;(canTransfer ? test.serial : test.skip)('a mapping cannot be moved with transfer(), which would outlive its unmapping', (t) => {
  const fd = anonymousObject(PAGE)
  t.teardown(() => shmClose(fd))
  const mapped = mmap(PAGE, ['read', 'write'], fd) as ArrayBuffer & { transfer(): ArrayBuffer; transferToFixedLength(): ArrayBuffer }
  t.throws(() => mapped.transfer(), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mapped.transferToFixedLength(), { instanceOf: TypeError })
  t.is(mapped.byteLength, PAGE)
  const plain = new ArrayBuffer(8) as ArrayBuffer & { transfer(): ArrayBuffer }
  t.is(plain.transfer().byteLength, 8)
  munmap(mapped)
})
