// What a wait must never do: keep a terminating worker or an exiting
// process hanging, burn CPU or a thread per pending waitAsync, crash on a
// view it cannot read, or die with SIGBUS on a word a peer cut away.
// Each case runs in a child process, so a hang or a crash fails the test
// instead of the test runner.

import test from 'ava'
import { spawn } from 'node:child_process'
import { SharedMemory } from 'posix-shm'
import { inSharedFutexWait, linuxOnly, removeQuietly, ROOT, runNode, uniqueName } from './helpers'

/**
 * Source of `inSharedFutexWait(pid)`: whether a thread of process `pid`
 * sleeps in FUTEX_WAIT without the private flag (op 0), which is our wait:
 * Node's and libuv's own waits all use private futexes. Read from
 * /proc/<pid>/task/<tid>/syscall: the call's number, then its arguments.
 */
const IN_SHARED_FUTEX_WAIT = `(pid) => {
  const fs = require('fs')
  const futex = process.arch === 'arm64' ? '98' : '202'
  return fs.readdirSync('/proc/' + pid + '/task').some((tid) => {
    try {
      const [call, , op] = fs.readFileSync('/proc/' + pid + '/task/' + tid + '/syscall', 'utf8').split(' ')
      return call === futex && op === '0x0'
    } catch { return false }
  })
}`
/** Kills the child if it has not ended in `ms`: a bound on a hang, not a clock for the test. */
const WATCHDOG = (ms: number) => `setTimeout(() => { console.log('hung'); process.kill(process.pid, 'SIGKILL') }, ${ms}).unref()`

linuxOnly('it reads futex waits from /proc/<pid>/task')('terminate() ends a worker blocked in a synchronous wait()', async (t) => {
  const child = await runNode(`
    ${WATCHDOG(20_000)}
    const { Worker } = require('worker_threads')
    const run = async (how) => {
      const worker = new Worker(\`
        const { parentPort } = require('worker_threads')
        const { SharedMemory, wait } = require(\${JSON.stringify(process.cwd())})
        const shm = SharedMemory.anonymous(4096)
        const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
        parentPort.postMessage('waiting')
        \${how === 'module' ? 'wait(words, 0, 0)' : 'shm.wait(0, 0)'}
        parentPort.postMessage('returned?')
      \`, { eval: true })
      await new Promise((resolve) => worker.once('message', resolve))
      // Asleep in the kernel, not just about to call wait().
      const inSharedFutexWait = ${IN_SHARED_FUTEX_WAIT}
      while (!inSharedFutexWait(process.pid)) await new Promise((r) => setImmediate(r))
      const start = process.hrtime.bigint()
      await worker.terminate()
      return Number(process.hrtime.bigint() - start) / 1e6
    }
    ;(async () => {
      const module = await run('module')
      const method = await run('method')
      console.log(JSON.stringify({ module, method }))
    })()
  `)
  t.is(child.code, 0, child.stderr)
  const latency = JSON.parse(child.stdout) as { module: number; method: number }
  t.log(`terminate() latency: wait() ${latency.module.toFixed(1)} ms, shm.wait() ${latency.method.toFixed(1)} ms`)
})

linuxOnly('it reads futex waits from /proc/<pid>/task')('process.exit() from the main thread is not kept waiting by a worker blocked in wait()', async (t) => {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { Worker } = require('worker_threads')
      const worker = new Worker(\`
        const { parentPort } = require('worker_threads')
        const { SharedMemory } = require(\${JSON.stringify(process.cwd())})
        const shm = SharedMemory.anonymous(4096)
        parentPort.postMessage('waiting')
        shm.wait(0, 0)
      \`, { eval: true })
      const inSharedFutexWait = ${IN_SHARED_FUTEX_WAIT}
      worker.once('message', async () => {
        while (!inSharedFutexWait(process.pid)) await new Promise((r) => setImmediate(r))
        process.exit(7)
      })
      `,
    ],
    { cwd: ROOT, stdio: 'ignore' },
  )
  // A bound on a hang: the exit should take milliseconds.
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  )
  clearTimeout(killer)
  t.is(signal, null, 'the process hung in process.exit() and was killed')
  t.is(code, 7)
})

test('1,000 idle waitAsync calls cost no CPU and a handful of threads', async (t) => {
  const child = await runNode(`
    const { SharedMemory, waitAsync } = require('posix-shm')
    const { waiterThreadCount } = require('./native/binding.js')
    const shm = SharedMemory.anonymous(4096)
    const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1000)
    const pending = Array.from({ length: 1000 }, (_, i) => waitAsync(words, i, 0))
    const threads = waiterThreadCount()
    const before = process.cpuUsage()
    setTimeout(async () => {
      const used = process.cpuUsage(before)
      for (let i = 0; i < 1000; i++) { Atomics.store(words, i, 1); shm.notify(i * 4) }
      const results = await Promise.all(pending)
      console.log(JSON.stringify({ cpuS: (used.user + used.system) / 1e6, threads, ok: results.every((r) => r === 'ok') }))
    }, 3000)
  `)
  t.is(child.code, 0, child.stderr)
  const { cpuS, threads, ok } = JSON.parse(child.stdout) as { cpuS: number; threads: number; ok: boolean }
  t.log(`1,000 pending waitAsync: ${cpuS.toFixed(4)} s of CPU in 3 s idle, ${threads} waiter threads`)
  t.true(ok)
  t.true(cpuS < 0.05, `${cpuS} s`)
  t.true(threads <= Math.ceil(1000 / 127), `${threads} threads`)
})

linuxOnly('it reads watcher threads from /proc/self/task')('10,000 pending waitAsync calls in one process: bounded threads, each settles soon after its notify', async (t) => {
  const child = await runNode(`
    const { SharedMemory, waitAsync, notify } = require('posix-shm')
    const { waiterThreadCount } = require('./native/binding.js')
    const count = 10000
    const shm = SharedMemory.anonymous(count * 4)
    const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, count)
    const settledAt = new Array(count)
    const pending = Array.from({ length: count }, (_, i) =>
      waitAsync(words, i, 0).then((r) => { settledAt[i] = process.hrtime.bigint(); return r }))
    const threads = waiterThreadCount()
    ;(async () => {
      const latencies = []
      let woken = 0
      for (let i = 0; i < count; i++) {
        Atomics.store(words, i, 1)
        const at = process.hrtime.bigint()
        woken += notify(words, i)
        if ((await pending[i]) !== 'ok') throw new Error('not ok at ' + i)
        latencies.push(Number(settledAt[i] - at) / 1e6)
      }
      latencies.sort((a, b) => a - b)
      console.log(JSON.stringify({ threads, woken, median: latencies[count >> 1], p99: latencies[Math.floor(count * 0.99)], max: latencies[count - 1] }))
    })()
  `)
  t.is(child.code, 0, child.stderr)
  const r = JSON.parse(child.stdout) as { threads: number; woken: number; median: number; p99: number; max: number }
  // A notify that comes while the word's watcher is between two calls (it
  // was just woken for the word before) finds no one asleep and counts 0;
  // the wait settles all the same, as its word changed.
  t.log(`10,000 pending: ${r.threads} threads; notify to settle median ${r.median.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, max ${r.max.toFixed(1)} ms; notify counted ${r.woken}`)
  t.true(r.threads <= Math.ceil(10_000 / 127), `${r.threads} threads`)
  t.true(r.median < 5, `median ${r.median} ms`)
})

/** Source for a child: resolves once the watcher threads sleep in the kernel on `n` waits. */
const ASLEEP_ON = `
  const asleepOn = async (n) => {
    const fs = require('fs')
    const { armedWaitCount } = require('./native/binding.js')
    const watchers = () => fs.readdirSync('/proc/self/task').filter((id) => fs.readFileSync('/proc/self/task/' + id + '/comm', 'utf8').trim() === 'posix-shm-watch')
    const asleep = () => watchers().every((id) => fs.readFileSync('/proc/self/task/' + id + '/wchan', 'utf8') === 'futex_wait_multiple')
    while (armedWaitCount() !== n || !asleep()) await new Promise((r) => setImmediate(r))
  }
`

test('several waitAsync calls on one word: notify counts each one asleep, and a cancelled one is gone', async (t) => {
  const child = await runNode(`
    const { SharedMemory, waitAsync, notify } = require('posix-shm')
    ${ASLEEP_ON}
    const shm = SharedMemory.anonymous(4096)
    const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
    const controller = new AbortController()
    const aborted = waitAsync(words, 0, 0, Infinity, { signal: controller.signal }).catch((e) => e.name)
    const pending = Array.from({ length: 10 }, () => waitAsync(words, 0, 0))
    controller.abort()
    ;(async () => {
      const name = await aborted
      await asleepOn(10)
      Atomics.store(words, 0, 1)
      const woken = notify(words, 0)
      const results = await Promise.all(pending)
      console.log(name, woken, results.join(','))
    })()
  `)
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout, `AbortError 10 ${Array(10).fill('ok').join(',')}\n`)
})

linuxOnly('it forces the futex fallback for futex_waitv')('where futex_waitv is missing, each pending waitAsync has a thread that sleeps without polling', async (t) => {
  const child = await runNode(
    `
    const { SharedMemory, waitAsync } = require('posix-shm')
    const { waiterThreadCount } = require('./native/binding.js')
    const shm = SharedMemory.anonymous(4096)
    const words = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 100)
    const controller = new AbortController()
    const aborted = waitAsync(words, 99, 0, Infinity, { signal: controller.signal }).catch((e) => e.name)
    const pending = Array.from({ length: 99 }, (_, i) => waitAsync(words, i, 0))
    const threads = waiterThreadCount()
    const before = process.cpuUsage()
    setTimeout(async () => {
      const used = process.cpuUsage(before)
      controller.abort()
      for (let i = 0; i < 99; i++) { Atomics.store(words, i, 1); shm.notify(i * 4) }
      const results = await Promise.all(pending)
      console.log(JSON.stringify({ threads, cpuS: (used.user + used.system) / 1e6, ok: results.every((r) => r === 'ok'), aborted: await aborted }))
    }, 2000)
    `,
    { env: { POSIX_SHM_NO_FUTEX_WAITV: '1' } },
  )
  t.is(child.code, 0, child.stderr)
  const r = JSON.parse(child.stdout) as { threads: number; cpuS: number; ok: boolean; aborted: string }
  t.log(`fallback: ${r.threads} threads for 100 waits, ${r.cpuS.toFixed(4)} s of CPU in 2 s`)
  t.is(r.threads, 100)
  t.true(r.ok)
  t.is(r.aborted, 'AbortError')
  t.true(r.cpuS < 0.05, `${r.cpuS} s`)
})

test('waitAsync on a view it cannot read rejects with a TypeError, as wait() throws one', async (t) => {
  const child = await runNode(`
    const { mmap, shmOpenAnonymous, shmFtruncate, wait, waitAsync } = require('posix-shm')
    const fd = shmOpenAnonymous()
    shmFtruncate(fd, 4096)
    const view = new Int32Array(mmap(4096, ['none'], fd))
    let sync
    try { wait(view, 0, 0, 0) } catch (e) { sync = e.constructor.name }
    waitAsync(view, 0, 0).then(
      (r) => console.log(sync, 'resolved ' + r),
      (e) => console.log(sync, e.constructor.name, e.code),
    )
  `)
  t.is(child.signal, null, child.stderr)
  t.is(child.stdout, 'TypeError TypeError ERR_INVALID_ARG_VALUE\n')
})

linuxOnly("it reads futex waits from /proc and expects futex's EFAULT", test.serial)('a peer shrinks the object: a sleeping wait() fails with EFAULT from futex, and a later waitAsync() too', async (t) => {
  const name = uniqueName('shrink')
  const shm = SharedMemory.create(name, 2 * 4096)
  t.teardown(() => {
    shm.close()
    removeQuietly(name)
  })
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { SharedMemory } = require('posix-shm')
      const shm = SharedMemory.open(process.argv[1])
      const report = (e) => e.code + ' ' + e.syscall
      shm.atomicStore(0, 1) // about to wait
      try { console.log('sync: ' + shm.wait(4096, 0, 20000)) } catch (e) { console.log('sync: ' + report(e)) }
      shm.waitAsync(4096, 0, 20000).then((r) => console.log('async: ' + r), (e) => console.log('async: ' + report(e)))
      `,
      name,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const closed = new Promise<[number | null, string | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])))
  while (shm.atomicLoad(0) === 0 || !inSharedFutexWait(child.pid!)) await new Promise((r) => setTimeout(r, 5))
  const shrink = await runNode(
    `
    const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
    const fd = shmOpen(process.argv[1]); shmFtruncate(fd, 4096); shmClose(fd)
    `,
    { args: [name] },
  )
  t.is(shrink.code, 0, shrink.stderr)
  const [code, signal] = await closed
  t.is(signal, null, stderr)
  t.is(code, 0, stderr)
  t.is(stdout, 'sync: EFAULT futex\nasync: EFAULT futex\n')
})

linuxOnly('Linux raises SIGBUS for a page past the end of a shared memory object')(
  'a peer shrinks the object first: every wait started afterwards fails with EFAULT, and other faults still end the process with SIGBUS',
  async (t) => {
    const name = uniqueName('shrunk-first')
    t.teardown(() => removeQuietly(name))
    const child = await runNode(
      `
      ${WATCHDOG(20_000)}
      const { execFileSync } = require('child_process')
      const { SharedMemory, wait, waitAsync } = require('posix-shm')
      const name = process.argv[1]
      const shm = SharedMemory.create(name, 2 * 4096)
      shm.atomicStore(0, 5)
      shm.atomicStore(4096, 7)
      // A real second process cuts the second page away.
      execFileSync(process.execPath, ['-e', \`
        const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
        const fd = shmOpen(process.argv[1]); shmFtruncate(fd, 4096); shmClose(fd)
      \`, name], { stdio: 'inherit' })
      const cut = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset + 4096, 1)
      const report = (what, f) => {
        try { console.log(what + ': ' + f()) } catch (e) { console.log(what + ': ' + e.code + ' ' + e.syscall) }
      }
      report('wait, 1 s', () => shm.wait(4096, 7, 1000))
      report('wait, no timeout', () => shm.wait(4096, 7))
      report('wait, no time at all', () => shm.wait(4096, 7, 0))
      report('wait, other value', () => shm.wait(4096, 8, 1000))
      report('wait(view)', () => wait(cut, 0, 7, 1000))
      report('first page', () => shm.wait(0, 6, 1000))
      waitAsync(cut, 0, 7, 1000).then(
        (r) => console.log('waitAsync: ' + r),
        (e) => console.log('waitAsync: ' + e.code + ' ' + e.syscall),
      ).then(() => {
        console.log('touching the cut page')
        console.log(shm.buffer[4096])
        console.log('still alive')
      })
      `,
      { args: [name] },
    )
    t.is(child.signal, 'SIGBUS', child.stderr)
    t.is(
      child.stdout,
      [
        'wait, 1 s: EFAULT futex',
        'wait, no timeout: EFAULT futex',
        'wait, no time at all: EFAULT futex',
        'wait, other value: EFAULT futex',
        'wait(view): EFAULT futex',
        'first page: not-equal',
        'waitAsync: EFAULT futex',
        'touching the cut page',
        '',
      ].join('\n'),
    )
  },
)

linuxOnly('Linux raises SIGBUS for a page past the end of a shared memory object')(
  'a SIGBUS listener added and removed leaves the handler in place: a wait, and a copy-mode read, on a cut page still fail',
  async (t) => {
    const script = `
      ${WATCHDOG(20_000)}
      const { execFileSync } = require('child_process')
      const { SharedMemory } = require('posix-shm')
      const name = process.argv[1]
      const shm = SharedMemory.create(name, 2 * 4096)
      // A look at the word, or a guarded read, puts the handler in place.
      const use = () => (SharedMemory.zeroCopy ? shm.wait(4096, 1, 0) : shm.read(4096, 4))
      // Node takes SIGBUS over while a listener is there, and resets it to
      // the default when the last one goes.
      const listener = () => {}
      if (process.argv[2] === 'listener first') {
        process.on('SIGBUS', listener)
        use()
        process.off('SIGBUS', listener)
      } else {
        use()
        process.on('SIGBUS', listener)
        process.off('SIGBUS', listener)
        process.on('SIGBUS', listener)
        process.removeAllListeners('SIGBUS')
      }
      execFileSync(process.execPath, ['-e', \`
        const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
        const fd = shmOpen(process.argv[1]); shmFtruncate(fd, 4096); shmClose(fd)
      \`, name], { stdio: 'inherit' })
      try {
        console.log(SharedMemory.zeroCopy ? shm.wait(4096, 0, 1000) : shm.read(4096, 4).length)
      } catch (e) { console.log(e.code) }
      console.log('still alive')
      `
    for (const order of ['handler first', 'listener first']) {
      for (const [mode, env, expected] of [
        ['zero-copy', {}, 'EFAULT'],
        ['copy', { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' }, 'ERR_SHM_SHRUNK'],
      ] as const) {
        const name = uniqueName('listener-gone')
        t.teardown(() => removeQuietly(name))
        const child = await runNode(script, { args: [name, order], env })
        t.is(child.signal, null, `${order}, ${mode}: ${child.stderr}`)
        t.is(child.stdout, `${expected}\nstill alive\n`, `${order}, ${mode}`)
      }
    }
  },
)

linuxOnly('it sends SIGBUS with kill(2)')('a SIGBUS sent by another process still ends the process after a wait has put its handler in place', async (t) => {
  const child = await runNode(`
    ${WATCHDOG(20_000)}
    const { SharedMemory } = require('posix-shm')
    const shm = SharedMemory.anonymous(4096)
    console.log(shm.wait(0, 1, 0))
    process.kill(process.pid, 'SIGBUS')
    setTimeout(() => console.log('still alive'), 2000)
  `)
  t.is(child.signal, 'SIGBUS', child.stderr)
  t.is(child.stdout, 'not-equal\n')
})
