// Behaviour that differs between the Node versions we support (20, 22, 24,
// 26), each test asserting what the running major does. `npm test` runs
// these on Node 20; scripts/node-matrix.sh runs them on 22, 24 and 26.
// Nothing here is skipped by version: where a feature is absent, its
// absence is what is asserted.

import test from 'ava'
import { constants as bufferConstants } from 'node:buffer'
import { Worker } from 'node:worker_threads'
import { SharedMemory, mmap, munmap, shmClose, shmFtruncate, shmOpenAnonymous } from 'posix-shm'
import { existsInDevShm, removeQuietly, uniqueName } from './helpers'

const MAJOR = Number(process.versions.node.split('.')[0])
const PAGE = 4096

type Movable = ArrayBuffer & { transfer?: (length?: number) => ArrayBuffer; transferToFixedLength?: (length?: number) => ArrayBuffer }

test('the suite runs on the Node binary it was started with, in a supported major', (t) => {
  t.log(`node ${process.version} at ${process.execPath}`)
  t.true([20, 22, 24, 26].includes(MAJOR), `Node ${process.version} is not one of the majors these tests know`)
  // scripts/node-matrix.sh says which version it started ava with: ava's
  // worker processes must run that binary too (child_process.fork uses
  // process.execPath), or the matrix would test Node 20 four times.
  const expected = process.env.POSIX_SHM_EXPECT_NODE
  if (expected !== undefined) t.is(process.version, expected)
})

test('ArrayBuffer.prototype.transfer is absent on Node 20; on 22+ it exists and refuses a mapping', (t) => {
  const prototype = ArrayBuffer.prototype as Movable
  if (MAJOR < 21) {
    t.log(`Node ${process.version} has no ArrayBuffer.prototype.transfer: nothing can move a mapping, so nothing to guard`)
    t.is(prototype.transfer, undefined)
    t.is(prototype.transferToFixedLength, undefined)
    return
  }
  t.is(typeof prototype.transfer, 'function')
  t.is(typeof prototype.transferToFixedLength, 'function')
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  shmFtruncate(fd, PAGE)
  const mapped = mmap(PAGE, ['read', 'write'], fd) as Movable
  t.teardown(() => munmap(mapped))
  new Uint8Array(mapped)[0] = 42
  t.throws(() => mapped.transfer!(), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /transfer\(\)/ })
  t.throws(() => mapped.transferToFixedLength!(), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /transferToFixedLength\(\)/ })
  // Refused, not half done: the mapping is still whole and in place.
  t.is(mapped.byteLength, PAGE)
  t.is(new Uint8Array(mapped)[0], 42)
  // SharedMemory's buffer sits over a mapping too.
  using shared = SharedMemory.anonymous(PAGE)
  t.throws(() => (shared.buffer.buffer as Movable).transfer!(), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  // And an ordinary ArrayBuffer still moves.
  const plain = new ArrayBuffer(8) as Movable
  t.is(plain.transfer!().byteLength, 8)
  t.is(plain.byteLength, 0)
})

test('buffer.constants.MAX_LENGTH is 2 ** 32 on Node 20 and 2 ** 53 - 1 on 22+, and sizes are checked against it', (t) => {
  const limit = bufferConstants.MAX_LENGTH
  t.is(limit, MAJOR < 22 ? 2 ** 32 : Number.MAX_SAFE_INTEGER)
  const name = uniqueName('maxlen')
  t.teardown(() => removeQuietly(name))
  const tooBig = limit + 1
  const expectation = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: new RegExp(`"size" is out of range\\. It must be an integer >= 1 and <= ${limit}\\.`) }
  t.throws(() => SharedMemory.create(name, tooBig), expectation)
  // Refused before shm_open: no object was left behind.
  t.false(existsInDevShm(name))
  t.throws(() => SharedMemory.anonymous(tooBig), expectation)
  using existing = SharedMemory.create(name, PAGE)
  t.throws(() => SharedMemory.open(name, { size: tooBig }), { ...expectation, message: new RegExp(`"options\\.size" is out of range\\. It must be an integer >= 1 and <= ${limit}\\.`) })
  t.is(existing.buffer.length, PAGE)
})

test('a mapping larger than 4 GiB is refused on Node 20 and mapped on 22+', (t) => {
  // Sparse: ftruncate and mmap take no memory until pages are touched.
  const size = 2 ** 32 + PAGE
  if (MAJOR < 22) {
    t.throws(() => SharedMemory.anonymous(size), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    return
  }
  using shared = SharedMemory.anonymous(size)
  t.is(shared.buffer.length, size)
  // The last page, past the 32-bit range, is reachable and shared.
  shared.buffer[size - 1] = 7
  const view = new Uint8Array(mmap(PAGE, ['read'], shared.fd, 2 ** 32))
  t.teardown(() => munmap(view.buffer as ArrayBuffer))
  t.is(view[PAGE - 1], 7)
})

// The worker answers each message by reading byte 0 of the buffer it got,
// writing 77 there, and reporting what it read.
const ECHO = `
const { parentPort } = require('node:worker_threads')
parentPort.on('message', ({ buffer }) => {
  const bytes = new Uint8Array(buffer)
  const seen = bytes[0]
  bytes[0] = 77
  parentPort.postMessage({ seen, length: buffer.byteLength })
})
`

interface Echo {
  seen: number
  length: number
}

async function withEchoWorker<T>(use: (send: (buffer: ArrayBuffer, transfer: boolean) => Promise<Echo>) => Promise<T>): Promise<T> {
  const worker = new Worker(ECHO, { eval: true })
  const failed = new Promise<never>((_, reject) => worker.once('error', reject))
  failed.catch(() => {}) // seen through the race below, while a reply is awaited
  try {
    return await use((buffer, transfer) => {
      // Throws here, synchronously, if the buffer cannot be cloned or moved.
      worker.postMessage({ buffer }, transfer ? [buffer] : [])
      return Promise.race([new Promise<Echo>((resolve) => worker.once('message', resolve)), failed])
    })
  } finally {
    await worker.terminate()
  }
}

for (const source of ['mmap', 'SharedMemory'] as const) {
  test(`postMessage of a ${source} mapping to a worker copies it; with a transfer list Node 20 copies and 22+ throw DataCloneError`, async (t) => {
    const fd = shmOpenAnonymous()
    t.teardown(() => shmClose(fd))
    shmFtruncate(fd, PAGE)
    const mapping = (): ArrayBuffer => {
      if (source === 'mmap') {
        const mapped = mmap(PAGE, ['read', 'write'], fd)
        t.teardown(() => munmap(mapped))
        return mapped
      }
      const shared = SharedMemory.anonymous(PAGE)
      t.teardown(() => shared.close())
      return shared.buffer.buffer as ArrayBuffer
    }
    await withEchoWorker(async (send) => {
      // Cloned: the worker gets its own copy. Its write stays there.
      const cloned = mapping()
      new Uint8Array(cloned)[0] = 5
      t.deepEqual(await send(cloned, false), { seen: 5, length: PAGE })
      t.is(cloned.byteLength, PAGE)
      t.is(new Uint8Array(cloned)[0], 5, 'the worker wrote into the mapping: it was shared, not copied')

      // In the transfer list: never moved (which would leave the worker
      // with memory this thread unmaps), either copied or refused.
      const listed = mapping()
      new Uint8Array(listed)[0] = 6
      if (MAJOR < 22) {
        t.log(`Node ${process.version} copies an external ArrayBuffer named in the transfer list, and leaves it attached here`)
        t.deepEqual(await send(listed, true), { seen: 6, length: PAGE })
      } else {
        // postMessage throws at once, before anything is sent.
        t.throws(() => send(listed, true), { name: 'DataCloneError', message: /unsupported type/ })
      }
      t.is(listed.byteLength, PAGE, 'the mapping was detached here')
      t.is(new Uint8Array(listed)[0], 6, 'the worker wrote into the mapping: it was shared, not copied')

      // Control: an ordinary ArrayBuffer in the transfer list does move, so
      // the list above was honoured and the difference is the mapping's.
      const plain = new ArrayBuffer(PAGE)
      new Uint8Array(plain)[0] = 8
      t.deepEqual(await send(plain, true), { seen: 8, length: PAGE })
      t.is(plain.byteLength, 0)
    })
  })
}

test('structuredClone of a mapping copies it; with a transfer list Node 20 copies and 22+ throw DataCloneError', (t) => {
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  shmFtruncate(fd, PAGE)
  const mapped = mmap(PAGE, ['read', 'write'], fd)
  t.teardown(() => munmap(mapped))
  new Uint8Array(mapped)[0] = 9
  const copy = structuredClone(mapped)
  new Uint8Array(copy)[0] = 1
  t.is(new Uint8Array(mapped)[0], 9)
  if (MAJOR < 22) {
    const moved = structuredClone(mapped, { transfer: [mapped] })
    new Uint8Array(moved)[0] = 2
    t.is(new Uint8Array(mapped)[0], 9)
  } else {
    t.throws(() => structuredClone(mapped, { transfer: [mapped] }), { name: 'DataCloneError' })
  }
  t.is(mapped.byteLength, PAGE)
})
