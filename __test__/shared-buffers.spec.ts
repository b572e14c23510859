// Mappings as SharedArrayBuffers (`shared: true`): posted to workers
// without a copy, used with Atomics between threads, kept mapped while any
// thread holds them, and refused with a clear error where the runtime
// cannot make them (Node 20, copy mode). The tests of the feature itself
// run where the runtime has it (Node 22.23.3+, 24.16+, 26.1+: the matrix
// in .ci/run); the refusal is tested everywhere.

import test from 'ava'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { SharedMemory, ShmError, mmap, munmap, notify, shmOpenAnonymous, shmFtruncate, shmClose, wait } from 'posix-shm'
import { existsInDevShm, linuxOnly, openFdCount, removeQuietly, ROOT, runNode, SETTLE, uniqueName } from './helpers'

const native = createRequire(join(ROOT, 'package.json'))('./native/binding.js') as { sharedBuffersAllowed(): boolean }
const supported = native.sharedBuffersAllowed()
const where = supported ? test : test.skip
const whereNot = supported ? test.skip : test
if (!supported) console.log(`skipped: the shared-buffer tests need node_api_create_external_sharedarraybuffer, which Node ${process.version} lacks`)

whereNot('where the runtime cannot make them, shared: true throws ERR_SHM_NO_SHARED_BUFFERS before opening anything', (t) => {
  const name = uniqueName('noshared')
  const fds = openFdCount()
  for (const make of [
    () => SharedMemory.create(name, 4096, { shared: true }),
    () => SharedMemory.anonymous(4096, { shared: true }),
    () => SharedMemory.open(name, { shared: true }),
    () => SharedMemory.fromFd(0, { shared: true }),
  ]) {
    const error = t.throws(make, { instanceOf: ShmError })
    t.is(error?.code, 'ERR_SHM_NO_SHARED_BUFFERS')
    t.regex(error?.message ?? '', /22\.23\.3\+, 24\.16\+ and 26\.1\+/)
    t.is(error?.errno, undefined)
  }
  t.false(existsInDevShm(name))
  t.is(openFdCount(), fds)
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, 4096)
  t.throws(() => mmap(4096, ['read'], fd, 0, { shared: true }), { instanceOf: ShmError, code: 'ERR_SHM_NO_SHARED_BUFFERS' })
  shmClose(fd)
})

test('in copy mode shared: true is refused too, on every Node version', async (t) => {
  const child = await runNode(
    `
    const { SharedMemory } = require('posix-shm')
    try { SharedMemory.anonymous(4096, { shared: true }); console.log('made') } catch (e) { console.log(e.code) }
    `,
    { env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } },
  )
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout.trim(), 'ERR_SHM_NO_SHARED_BUFFERS')
})

test('shared must be a boolean', (t) => {
  for (const shared of [1, 'yes', {}]) {
    t.throws(() => SharedMemory.anonymous(4096, { shared: shared as unknown as boolean }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  }
})

where('a shared mapping is a SharedArrayBuffer; munmap refuses it; posix-shm wait and notify work on it', (t) => {
  using shm = SharedMemory.anonymous(8192, { shared: true })
  t.true(shm.shared)
  t.true(shm.buffer.buffer instanceof SharedArrayBuffer)
  const ints = new Int32Array(shm.buffer.buffer as unknown as SharedArrayBuffer)
  t.is(wait(ints, 1, 5, 0), 'not-equal')
  t.is(wait(ints, 1, 0, 0), 'timed-out')
  t.is(notify(ints, 1), 0)
  t.is(shm.wait(4096, 0, 0), 'timed-out')
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, 4096)
  const mapped = mmap(4096, ['read', 'write'], fd, 0, { shared: true })
  shmClose(fd)
  t.true(mapped instanceof SharedArrayBuffer)
  t.throws(() => munmap(mapped as unknown as ArrayBuffer), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => munmap(new Int32Array(mapped)), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  // A SharedArrayBuffer that is not a mapping of ours is refused by wait.
  t.throws(() => wait(new Int32Array(new SharedArrayBuffer(8)), 0, 0, 0), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
})

where('posted to a worker without a copy: its writes reach the main thread and another process; Atomics.wait there is woken by Atomics.notify here', async (t) => {
  const name = uniqueName('sab-worker')
  t.teardown(() => removeQuietly(name))
  const child = await runNode(
    `
    const { Worker } = require('worker_threads')
    const { SharedMemory } = require('posix-shm')
    const { execFileSync } = require('child_process')
    const shm = SharedMemory.create(process.argv[1], 4096, { shared: true })
    const ints = new Int32Array(shm.buffer.buffer)
    let result
    const worker = new Worker(\`
      const { parentPort } = require('worker_threads')
      parentPort.once('message', (sab) => {
        const ints = new Int32Array(sab)
        ints[1] = 4242
        parentPort.postMessage('wrote')
        // Sleeps until the main thread's Atomics.notify.
        const woke = Atomics.wait(ints, 0, 0, 10000)
        parentPort.postMessage(woke + ' ' + ints[0])
      })
    \`, { eval: true })
    worker.postMessage(shm.buffer.buffer)
    worker.on('message', (message) => {
      if (message === 'wrote') {
        // Another process opens it by name and reads what the worker wrote.
        const seen = execFileSync(process.execPath, ['-e', \`
          const { SharedMemory } = require('posix-shm')
          const other = SharedMemory.open(process.argv[1])
          console.log(new Int32Array(other.buffer.buffer, other.buffer.byteOffset, 2)[1])
        \`, process.argv[1]], { encoding: 'utf8' }).trim()
        result = { main: ints[1], other: Number(seen) }
        // Atomics.notify says whether the worker was asleep in Atomics.wait:
        // until it is, take the value back and try again.
        const wake = () => {
          Atomics.store(ints, 0, 7)
          if (Atomics.notify(ints, 0) === 1) return
          Atomics.store(ints, 0, 0)
          setTimeout(wake, 5)
        }
        wake()
      } else {
        result.worker = message
        console.log(JSON.stringify(result))
        shm.close(); shm.unlink(); worker.terminate()
      }
    })
    `,
    { args: [name] },
  )
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), { main: 4242, other: 4242, worker: 'ok 7' })
})

where('a buffer posted from a worker that then exits stays mapped and shared in the main thread', async (t) => {
  const name = uniqueName('sab-exit')
  t.teardown(() => removeQuietly(name))
  const child = await runNode(
    `
    const { Worker } = require('worker_threads')
    const { SharedMemory } = require('posix-shm')
    const worker = new Worker(\`
      const { parentPort, workerData } = require('worker_threads')
      const { SharedMemory } = require('posix-shm')
      const shm = SharedMemory.create(workerData, 4096, { shared: true })
      shm.buffer.write('from the worker')
      parentPort.postMessage(shm.buffer.buffer)
      shm.close()
    \`, { eval: true, workerData: process.argv[1] })
    let sab
    worker.once('message', (received) => { sab = received })
    worker.once('exit', (code) => {
      global.gc(); global.gc()
      const bytes = Buffer.from(sab)
      const before = bytes.toString('utf8', 0, 15)
      bytes.write('main after exit')
      const other = SharedMemory.open(process.argv[1])
      console.log(JSON.stringify({ code, before, other: other.buffer.toString('utf8', 0, 15) }))
      other.close(); other.unlink()
    })
    `,
    { args: [name], nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), { code: 0, before: 'from the worker', other: 'main after exit' })
})

where('close() lets go: views keep working, and the pages go once the last view is collected', async (t) => {
  const child = await runNode(
    `${SETTLE}
    const { SharedMemory } = require('posix-shm')
    const { native } = require('./dist/native')
    ;(async () => {
      const shm = SharedMemory.anonymous(4096, { shared: true })
      let view = new Int32Array(shm.buffer.buffer)
      shm.close()
      view[0] = 99
      const afterClose = { value: view[0], mapped: shmMappings(), live: native.liveMappingCount() }
      view = undefined
      await settle(() => native.reservedRangeCount() === 0)
      console.log(JSON.stringify({ afterClose, mapped: shmMappings(), live: native.liveMappingCount(), reserved: native.reservedRangeCount() }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout)
  t.deepEqual(result.afterClose.value, 99)
  t.is(result.afterClose.live, 1)
  t.is(result.live, 0)
  t.is(result.reserved, 0)
  if (Number.isFinite(result.afterClose.mapped)) t.is(result.mapped, result.afterClose.mapped - 1)
})

const whereOnLinux: typeof test.skip = supported ? linuxOnly('it reads /proc/self/maps and /proc/self/status') : test.skip

whereOnLinux('100,000 shared map-and-drop cycles, their finalizers on other threads: mappings and resident size stay flat', async (t) => {
  const child = await runNode(
    `${SETTLE}
    const { mmap, shmOpenAnonymous, shmFtruncate } = require('posix-shm')
    const { native } = require('./dist/native')
    ;(async () => {
      const fd = shmOpenAnonymous()
      shmFtruncate(fd, 64 * 1024)
      const mapAndDrop = (count) => {
        for (let i = 0; i < count; i++) {
          const bytes = new Uint8Array(mmap(64 * 1024, ['read', 'write'], fd, 0, { shared: true }))
          bytes[(i * 4096) % bytes.length] = i & 0xff
        }
      }
      mapAndDrop(2000)
      await settle(() => native.reservedRangeCount() === 0)
      const start = { shm: shmMappings(), rss: rss() }
      const samples = []
      for (let round = 0; round < 5; round++) {
        mapAndDrop(20000)
        await settle(() => native.reservedRangeCount() === 0)
        samples.push({ shm: shmMappings(), rss: rss(), reserved: native.reservedRangeCount(), live: native.liveMappingCount() })
      }
      console.log(JSON.stringify({ start, samples }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  const { start, samples } = JSON.parse(child.stdout) as { start: { shm: number; rss: number }; samples: Array<{ shm: number; rss: number; reserved: number; live: number }> }
  const end = samples[samples.length - 1]!
  t.log(`RSS ${(start.rss / 2 ** 20).toFixed(1)} MiB -> ${(end.rss / 2 ** 20).toFixed(1)} MiB over 100,000 shared mappings`)
  for (const sample of samples) {
    t.is(sample.shm, start.shm)
    t.is(sample.reserved, 0)
    t.is(sample.live, 0)
  }
  t.true(end.rss - start.rss < 20 * 2 ** 20, `RSS grew by ${end.rss - start.rss} bytes`)
})

where('mappings freed from a worker and on V8 background threads, under load: no double unmap, no leak', async (t) => {
  const child = await runNode(
    `${SETTLE}
    const { Worker } = require('worker_threads')
    const { native } = require('./dist/native')
    ;(async () => {
      const before = shmMappings()
      // Four workers at once each map 2,000 shared buffers, post every other
      // one to the main thread, and exit: the rest die with them, the posted
      // ones are dropped here.
      const received = []
      await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
        const worker = new Worker(\`
          const { parentPort } = require('worker_threads')
          const { mmap, shmOpenAnonymous, shmFtruncate, shmClose } = require('posix-shm')
          const fd = shmOpenAnonymous(); shmFtruncate(fd, 4096)
          const kept = []
          for (let i = 0; i < 2000; i++) {
            const sab = mmap(4096, ['read', 'write'], fd, 0, { shared: true })
            new Int32Array(sab)[0] = i
            if (i % 2 === 0) parentPort.postMessage(sab)
            else kept.push(sab)
          }
          shmClose(fd)
        \`, { eval: true })
        worker.on('message', (sab) => received.push(sab))
        worker.once('error', reject)
        worker.once('exit', resolve)
      })))
      const sum = received.reduce((total, sab) => total + new Int32Array(sab)[0], 0)
      const count = received.length
      received.length = 0
      await settle(() => native.reservedRangeCount() === 0)
      console.log(JSON.stringify({ count, sum, live: native.liveMappingCount(), reserved: native.reservedRangeCount(), grew: shmMappings() - before }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout)
  t.is(result.count, 4000)
  // Every buffer maps the same page of the same object: each reads the
  // last value its worker wrote there.
  t.is(result.sum, 4000 * 1999)
  t.is(result.live, 0)
  t.is(result.reserved, 0)
  if (result.grew !== null) t.is(result.grew, 0)
})

where("posix-shm's wait in a worker on a posted shared buffer is woken by notify here; terminate() ends one blocked there", async (t) => {
  const child = await runNode(`
    const { Worker } = require('worker_threads')
    const { SharedMemory, notify } = require('posix-shm')
    const shm = SharedMemory.anonymous(4096, { shared: true })
    const ints = new Int32Array(shm.buffer.buffer)
    const waiter = (index) => new Worker(\`
      const { workerData, parentPort } = require('worker_threads')
      const { wait } = require('posix-shm')
      parentPort.postMessage('ready')
      parentPort.postMessage(wait(new Int32Array(workerData), \${index}, 0))
    \`, { eval: true, workerData: shm.buffer.buffer })
    const result = {}
    const woken = waiter(2)
    woken.on('message', (message) => {
      if (message === 'ready') {
        // notify counts the waiters asleep: until the worker is, take the value back and retry.
        const wake = () => {
          Atomics.store(ints, 2, 1)
          if (notify(ints, 2) === 1) return
          Atomics.store(ints, 2, 0)
          setTimeout(wake, 5)
        }
        wake()
        return
      }
      result.woken = message
      const blocked = waiter(3)
      blocked.once('message', () => setTimeout(() => blocked.terminate().then((code) => {
        result.terminated = code
        shm.close()
        console.log(JSON.stringify(result))
      }), 50))
    })
  `)
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), { woken: 'ok', terminated: 1 })
})
