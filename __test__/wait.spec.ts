// Cross-process wait/notify: the rules of Atomics.wait/waitAsync/notify,
// real second processes, and the behaviour a pending waitAsync must have.

import test from 'ava'
import { fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { SharedMemory, ShmError, mmap, munmap, notify, shmClose, shmFtruncate, shmOpenAnonymous, wait, waitAsync } from 'posix-shm'
import { inSharedFutexWait, linuxOnly, removeQuietly, ROOT, runNode, runScript, uniqueName } from './helpers'

const FIXTURES = join(ROOT, '__test__', 'fixtures')

function mappedWords(count: number): { words: Int32Array; release(): void } {
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, 4096)
  const words = new Int32Array(mmap(4096, ['read', 'write'], fd), 0, count)
  return {
    words,
    release: () => {
      munmap(words)
      shmClose(fd)
    },
  }
}

test('wait and notify follow Atomics: not-equal, timed-out, and no waiters to wake', (t) => {
  const { words, release } = mappedWords(4)
  t.teardown(release)
  words[1] = 7
  t.is(wait(words, 1, 8), 'not-equal')
  t.is(wait(words, 1, 7, 0), 'timed-out')
  t.is(wait(words, 1, 7, 20), 'timed-out')
  t.is(wait(words, 1, 7, -5), 'timed-out')
  t.is(wait(words, 1, 7.9 as number, 1), 'timed-out') // converted as Atomics converts: 7
  t.is(notify(words, 1), 0)
  t.is(notify(words, 1, 0), 0)
})

test('waitAsync compares at the call: a mismatch resolves at once', async (t) => {
  const { words, release } = mappedWords(1)
  t.teardown(release)
  words[0] = 3
  t.is(await waitAsync(words, 0, 4), 'not-equal')
  t.is(await waitAsync(words, 0, 3, 0), 'timed-out')
  t.is(await waitAsync(words, 0, 3, 30), 'timed-out')
})

test('views that are not over a mapping, bad indexes and bad values are refused before any system call', (t) => {
  const { words, release } = mappedWords(4)
  t.teardown(release)
  for (const view of [new Uint32Array(4), [0, 0], new Int32Array(mmapLike())]) {
    t.throws(() => wait(view as Int32Array, 0, 0, 0), { instanceOf: TypeError })
    t.throws(() => notify(view as Int32Array, 0), { instanceOf: TypeError })
  }
  t.throws(() => wait(new Int32Array(new SharedArrayBuffer(8)), 0, 0, 0), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  for (const index of [-1, 4, 1.5, Number.NaN]) {
    t.throws(() => wait(words, index, 0, 0), { instanceOf: RangeError }, String(index))
    t.throws(() => notify(words, index), { instanceOf: RangeError })
    t.throws(() => waitAsync(words, index, 0, 0), { instanceOf: RangeError })
  }
  t.throws(() => wait(words, 0, '0' as unknown as number, 0), { instanceOf: TypeError })
  t.throws(() => wait(words, 0, 0, '5' as unknown as number), { instanceOf: TypeError })
  t.throws(() => notify(words, 0, '1' as unknown as number), { instanceOf: TypeError })
  t.throws(() => waitAsync(words, 0, 0, 10, { signal: {} as AbortSignal }), { instanceOf: TypeError })
  function mmapLike(): ArrayBuffer {
    return new ArrayBuffer(16)
  }
})

linuxOnly('it reads futex waits from /proc/<pid>/task')('notify wakes a waiter asleep in another process and says how many it woke', async (t) => {
  const name = uniqueName('wake')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 2)
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { SharedMemory, wait } = require('posix-shm')
      const shm = SharedMemory.open(process.argv[1])
      const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 2)
      Atomics.store(words, 1, 1) // ready
      // A long timeout: other tests may keep this process's parent busy.
      console.log(wait(words, 0, 0, 120000))
      `,
      name,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = once(child, 'close')
  // Until the child is asleep in the kernel, past its spin: the kernel says so.
  while (Atomics.load(words, 1) === 0 || !inSharedFutexWait(child.pid!)) await new Promise((r) => setTimeout(r, 5))
  Atomics.store(words, 0, 1)
  t.is(notify(words, 0), 1)
  const [code] = (await exited) as [number | null]
  t.is(code, 0)
  t.is(output.trim(), 'ok')
})

for (const mode of ['sync', 'async'] as const) {
  test(`ping-pong with ${mode} waits: 100,000 round trips between two processes, none lost`, async (t) => {
    const name = uniqueName(`pingpong_${mode}`)
    using shm = SharedMemory.create(name, 4096)
    t.teardown(() => removeQuietly(name))
    const word = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
    const rounds = 100_000
    const child = runScript(join(FIXTURES, 'ping-pong.cjs'), { args: [name, String(rounds), mode] })
    for (let i = 0; i < rounds; i++) {
      Atomics.add(word, 0, 1) // even -> odd: the child's turn
      notify(word, 0)
      for (let v = Atomics.load(word, 0); v % 2 === 1; v = Atomics.load(word, 0)) {
        if (mode === 'async') await waitAsync(word, 0, v, 10_000)
        else wait(word, 0, v, 10_000)
      }
    }
    const result = await child
    t.is(result.code, 0, result.stderr)
    t.is(Atomics.load(word, 0), 2 * rounds)
  })
}

/** The README's mutex recipe, as a module a child process can require. */
function readmeMutexModule(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const block = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]).find((code) => code.includes('function lock('))
  if (block === undefined) throw new Error('the README has no mutex recipe')
  const dir = join(ROOT, '.readme-mutex')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `mutex-${process.pid}.cjs`)
  const { outputText } = ts.transpileModule(block, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  })
  writeFileSync(file, outputText)
  return file
}

test('the README mutex: 4 processes add 1 to a plain 64-bit counter 50,000 times each, and it ends exact', async (t) => {
  const name = uniqueName('mutex')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const recipe = readmeMutexModule()
  t.teardown(() => rmSync(join(ROOT, '.readme-mutex'), { recursive: true, force: true }))
  const workers = Array.from({ length: 4 }, () => {
    const child = fork(join(FIXTURES, 'mutex-worker.cjs'), [name, '50000', recipe], { cwd: ROOT, silent: true })
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
    const message = () => new Promise((resolve) => child.once('message', resolve))
    return { child, exit, message }
  })
  await Promise.all(workers.map((w) => w.message()))
  const done = workers.map((w) => w.message())
  for (const w of workers) w.child.send('go')
  await Promise.all(done)
  t.deepEqual(await Promise.all(workers.map((w) => w.exit)), [0, 0, 0, 0])
  t.is(shm.read(8, 8).readBigUInt64LE(0), 200_000n)
  t.is(shm.atomicLoad(0), 0) // unlocked
})

test('64 pending waitAsync calls leave the libuv pool free: fs.promises.readFile still works', async (t) => {
  const child = await runNode(`
    const { SharedMemory, waitAsync } = require('posix-shm')
    const fs = require('fs')
    const shm = SharedMemory.anonymous(4096)
    const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 64)
    const pending = Array.from({ length: 64 }, (_, i) => waitAsync(words, i, 0, 5000))
    ;(async () => {
      const reads = await Promise.all(Array.from({ length: 8 }, () => fs.promises.readFile(process.execPath).then((b) => b.length)))
      console.log('read ' + reads.length + ' files while 64 waits were pending')
      for (let i = 0; i < 64; i++) { Atomics.store(words, i, 1); shm.notify(i * 4) }
      const results = await Promise.all(pending)
      console.log(results.every((r) => r === 'ok') ? 'all ok' : JSON.stringify(results))
      shm.close()
    })()
  `)
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout, 'read 8 files while 64 waits were pending\nall ok\n')
})

test('a pending waitAsync keeps the process alive until it is notified', async (t) => {
  const name = uniqueName('alive')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { SharedMemory } = require('posix-shm')
      const shm = SharedMemory.open(process.argv[1])
      shm.waitAsync(0, 0).then((result) => console.log('woke: ' + result))
      shm.atomicStore(4, 1) // waiting now
      `,
      name,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
  // 'exit' can come before the last of stdout has been read: 'close' waits for it.
  const closed = new Promise((resolve) => child.once('close', resolve))
  let exited = false
  void exit.then(() => (exited = true))
  while (shm.atomicLoad(4) === 0 && !exited) await new Promise((r) => setTimeout(r, 5))
  await new Promise((r) => setTimeout(r, 300))
  t.false(exited, 'the consumer exited with its only work pending')
  shm.atomicStore(0, 1)
  shm.notify(0)
  t.is(await exit, 0)
  await closed
  t.is(stdout, 'woke: ok\n')
})

test('an aborted waitAsync rejects with an AbortError and leaves nothing running; process.exit with waits pending is prompt', async (t) => {
  const child = await runNode(`
    const { SharedMemory } = require('posix-shm')
    const shm = SharedMemory.anonymous(4096)
    const controller = new AbortController()
    const pending = shm.waitAsync(0, 0, Infinity, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('enough')), 50)
    pending.then(
      () => console.log('resolved?'),
      (error) => {
        console.log(error.name + ' ' + error.code + ' ' + error.cause.message)
        // Nothing else pending: the process must now end by itself.
      },
    )
    const already = new AbortController()
    already.abort()
    shm.waitAsync(0, 0, 1000, { signal: already.signal }).catch((e) => console.log('pre-aborted: ' + e.name))
  `)
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout, 'pre-aborted: AbortError\nAbortError ABORT_ERR enough\n')

  const exiting = await runNode(`
    const { SharedMemory } = require('posix-shm')
    const shm = SharedMemory.anonymous(4096)
    for (let i = 0; i < 16; i++) shm.waitAsync(0, 0)
    setTimeout(() => process.exit(3), 20)
  `)
  t.is(exiting.code, 3, exiting.stderr)
})

test('unmapping while a waitAsync is pending: the wait keeps its word mapped and still resolves', async (t) => {
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, 4096)
  t.teardown(() => shmClose(fd))
  const first = new Int32Array(mmap(4096, ['read', 'write'], fd))
  const pending = waitAsync(first, 0, 0, 5000)
  munmap(first)
  const second = new Int32Array(mmap(4096, ['read', 'write'], fd))
  Atomics.store(second, 0, 1)
  notify(second, 0)
  t.is(await pending, 'ok')
  munmap(second)
})

test('an idle waiter sleeps in the kernel: its CPU time over 5 idle seconds', async (t) => {
  const child = await runNode(`
    const { SharedMemory, wait } = require('posix-shm')
    const shm = SharedMemory.anonymous(4096)
    const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
    const before = process.cpuUsage()
    const result = wait(words, 0, 0, 5000)
    const used = process.cpuUsage(before)
    console.log(JSON.stringify({ result, cpuMs: (used.user + used.system) / 1000 }))
  `)
  t.is(child.code, 0, child.stderr)
  const { result, cpuMs } = JSON.parse(child.stdout) as { result: string; cpuMs: number }
  t.is(result, 'timed-out')
  t.log(`CPU time of a waiter over 5 idle seconds: ${cpuMs.toFixed(2)} ms`)
  // A waiter that kept spinning would use about 5000 ms.
  t.true(cpuMs < 200, `${cpuMs} ms`)
})

test('timeouts beyond what the clock can hold wait forever instead of failing', async (t) => {
  const { words, release } = mappedWords(2)
  t.teardown(release)
  t.is(wait(words, 0, 1, 1e300), 'not-equal')
  t.is(wait(words, 0, 1, Number.MAX_VALUE), 'not-equal')
  const pending = waitAsync(words, 0, 0, 1e300)
  setTimeout(() => {
    Atomics.store(words, 0, 1)
    notify(words, 0)
  }, 30)
  t.is(await pending, 'ok')
})

linuxOnly('it expects EFAULT from futex or futex_waitv', test.serial)('a waiter whose page is cut away by a shrinking peer fails with EFAULT instead of spinning', async (t) => {
  const name = uniqueName('efault')
  using shm = SharedMemory.create(name, 2 * 4096)
  t.teardown(() => removeQuietly(name))
  const pending = shm.waitAsync(4096, 0, 5000)
  await new Promise((r) => setTimeout(r, 50)) // asleep in the kernel
  const shrink = await runNode(
    `
    const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
    const fd = shmOpen(process.argv[1]); shmFtruncate(fd, 4096); shmClose(fd)
    `,
    { args: [name] },
  )
  t.is(shrink.code, 0, shrink.stderr)
  const error = await t.throwsAsync(pending)
  // Made natively on the JavaScript thread, in its final shape.
  t.true(error instanceof ShmError)
  t.is((error as { code?: string }).code, 'EFAULT')
  // futex_waitv where the kernel has it; futex where it answers ENOSYS
  // (older kernels, and Valgrind, which does not know the call).
  t.true(['futex_waitv', 'futex'].includes((error as { syscall?: string }).syscall ?? ''), (error as Error).message)
})

linuxOnly('it counts mappings in /proc/self/maps', test.serial)('terminating a worker with a wait pending stops that wait and releases its mapping', async (t) => {
  const name = uniqueName('terminate')
  const shm = SharedMemory.create(name, 4096)
  t.teardown(() => {
    shm.close()
    removeQuietly(name)
  })
  const { Worker } = await import('node:worker_threads')
  const { mappingCount } = await import('./helpers.js')
  const before = mappingCount()
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('worker_threads')
    const { SharedMemory } = require(workerData.root)
    const shm = SharedMemory.open(workerData.name)
    shm.waitAsync(0, 0) // no timeout: only teardown can end it
    parentPort.postMessage('waiting')
    `,
    { eval: true, workerData: { name, root: ROOT } },
  )
  await new Promise((resolve) => worker.once('message', resolve))
  const whileWaiting = mappingCount()
  await worker.terminate()
  t.is(whileWaiting, before + 1)
  // Teardown cancels the wait, and its watcher lets go of the mapping.
  for (let i = 0; i < 100 && mappingCount() !== before; i++) await new Promise((r) => setTimeout(r, 20))
  t.is(mappingCount(), before)
})
