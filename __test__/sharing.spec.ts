// Sharing one object with other processes, threads and languages, each
// through the real thing: forked and spawned Node processes, a worker
// thread, Python's multiprocessing.shared_memory, a private mount namespace.

import test from 'ava'
import { execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { SharedMemory } from 'posix-shm'
import { isRoot, linuxOnly, mappingCount, removeQuietly, ROOT, runScript, uniqueName } from './helpers'

const FIXTURES = join(ROOT, '__test__', 'fixtures')

function nextMessage(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('error', reject)
  })
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** Forks `script` and starts listening for its exit at once, so an early exit is not missed. */
function forkWatched(script: string, args: string[]): { child: ChildProcess; exit: Promise<Exit> } {
  const child = fork(join(FIXTURES, script), args)
  const exit = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return { child, exit }
}

test.serial('by name: a forked child sees the parent\'s writes and the parent sees the child\'s', async (t) => {
  const name = uniqueName('fork')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  shm.buffer.write('from parent', 0)
  const { child, exit } = forkWatched('peer.cjs', [name])
  t.is(await nextMessage(child), 'from parent\0')
  t.is(shm.buffer.toString('utf8', 100, 110), 'from child')
  shm.buffer.write('second write', 200)
  child.send('read again')
  t.is(await nextMessage(child), 'second write\0')
  t.is((await exit).code, 0)
})

test.serial('by name: 4 processes doing 100,000 Atomics.add each end at exactly 400,000', async (t) => {
  const name = uniqueName('atomics')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const ints = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
  const adders = Array.from({ length: 4 }, () => forkWatched('adder.cjs', [name, '100000']))
  await Promise.all(adders.map(({ child }) => nextMessage(child)))
  const done = adders.map(({ child }) => nextMessage(child))
  for (const { child } of adders) child.send('go')
  await Promise.all(done)
  const exits = await Promise.all(adders.map(({ exit }) => exit))
  t.deepEqual(
    exits.map((e) => e.code),
    [0, 0, 0, 0],
  )
  t.is(Atomics.load(ints, 0), 400_000)
})

linuxOnly('it looks in /dev/shm', test.serial)('by descriptor: a spawned child takes fd 3 with fromFd and no name is ever in /dev/shm', async (t) => {
  // Other spec files run at the same time and make names of their own; an
  // anonymous object's name would look like psm_ and 24 hex digits.
  const anonymousNames = () => readdirSync('/dev/shm').filter((n) => /^psm_[0-9a-f]{24}$/.test(n))
  t.deepEqual(anonymousNames(), [])
  using shm = SharedMemory.anonymous(8192)
  shm.buffer.write('parent data for fd 3', 0)
  const child = spawn(process.execPath, [join(FIXTURES, 'from-fd.cjs')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', shm.fd],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const duringChild = anonymousNames()
  // 'close', not 'exit': only then has all of the child's output been read.
  const { code } = await new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  t.is(code, 0, stderr)
  t.deepEqual(JSON.parse(stdout), { size: 8192, text: 'parent data for fd 3', readOnly: false })
  t.is(shm.buffer.toString('utf8', 1000, 1014), 'child was here')
  t.deepEqual(duringChild, [])
  t.deepEqual(anonymousNames(), [])
})

test.serial('worker threads: a worker opens by name and writes; its mapping is gone after it exits', async (t) => {
  const name = uniqueName('worker')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const before = mappingCount()
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('worker_threads')
    const { SharedMemory } = require(workerData.root)
    const shm = SharedMemory.open(workerData.name)
    shm.buffer.write('written by a worker', 0)
    parentPort.postMessage(0)
    // Once counted, exit without close(): the environment's teardown must release it.
    parentPort.once('message', () => parentPort.close())
    `,
    { eval: true, workerData: { name, root: ROOT } },
  )
  let duringWorker = 0
  worker.once('message', () => {
    duringWorker = mappingCount()
    worker.postMessage('exit')
  })
  const code = await new Promise<number>((resolve, reject) => {
    worker.once('exit', resolve)
    worker.once('error', reject)
  })
  t.is(code, 0)
  t.is(duringWorker, before + 1)
  t.is(shm.buffer.toString('utf8', 0, 19), 'written by a worker')
  t.is(mappingCount(), before)
})

const python = spawnSync('python3', ['-c', 'import multiprocessing.shared_memory'], { encoding: 'utf8' })
const hasPython = python.status === 0
if (!hasPython) console.log(`skipped: the Python tests need python3 with multiprocessing.shared_memory (${python.error?.message ?? python.stderr})`)
const pythonTest = hasPython ? test.serial : test.skip

// Python's resource tracker unlinks, at interpreter exit, segments it saw
// created (and, before 3.13, attached to); unregistering leaves that to us.
const PYTHON_PRELUDE = `
import sys
from multiprocessing import resource_tracker, shared_memory
def keep(shm):
    resource_tracker.unregister(shm._name, 'shared_memory')
`

pythonTest('Python creates and writes, Node opens by the same name and reads', (t) => {
  const name = uniqueName('py2node')
  t.teardown(() => removeQuietly(name))
  execFileSync('python3', [
    '-c',
    `${PYTHON_PRELUDE}
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=4096)
keep(shm)
shm.buf[:17] = b'written by python'
shm.close()
`,
    name,
  ])
  using shm = SharedMemory.open(name)
  t.is(shm.size, 4096)
  t.is(shm.buffer.toString('utf8', 0, 17), 'written by python')
  shm.unlink()
})

pythonTest('Node creates and writes, Python opens by the same name and reads', (t) => {
  const name = uniqueName('node2py')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  shm.buffer.write('written by node', 0)
  const read = execFileSync(
    'python3',
    [
      '-c',
      `${PYTHON_PRELUDE}
shm = shared_memory.SharedMemory(name=sys.argv[1])
keep(shm)
sys.stdout.write(bytes(shm.buf[:15]).decode() + ' ' + shm.name)
shm.close()
`,
      name,
    ],
    { encoding: 'utf8' },
  )
  t.is(read, `written by node ${name}`)
  shm.unlink()
})

function privateShmNamespace(): string | undefined {
  if (!isRoot) return 'it needs root to mount a tmpfs in a private mount namespace'
  const probe = spawnSync('unshare', ['-m', 'true'], { encoding: 'utf8' })
  if (probe.status !== 0) return `unshare -m is not available here (${probe.error?.message ?? probe.stderr.trim()})`
  return undefined
}
const noNamespace = privateShmNamespace()
if (noNamespace !== undefined) console.log(`skipped: the full /dev/shm test: ${noNamespace}`)
const namespaceTest = noNamespace === undefined ? linuxOnly('it mounts a small tmpfs on /dev/shm with unshare', test.serial) : test.skip

namespaceTest('a full /dev/shm: create with allocate fails with ENOSPC and the process lives', (t) => {
  const script = `
    const { SharedMemory } = require('posix-shm')
    const fs = require('fs')
    const result = {}
    const fds = fs.readdirSync('/proc/self/fd').length
    try { SharedMemory.create('too-big', 4 << 20, { allocate: true }); result.big = 'created' } catch (e) { result.big = e.code }
    // The name this create made is unlinked again, and its descriptor closed.
    result.leftAfterFailure = fs.readdirSync('/dev/shm')
    result.fdsLeaked = fs.readdirSync('/proc/self/fd').length - fds
    const fits = SharedMemory.create('fits', 512 << 10, { allocate: true })
    fits.write(Buffer.alloc(512 << 10, 0xab), 0)
    result.fits = fits.read(0, 512 << 10).every((b) => b === 0xab)
    fits.unlink()
    fits.close()
    console.log(JSON.stringify(result))
  `
  const out = execFileSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" -e "$1"', process.execPath, script],
    { cwd: ROOT, encoding: 'utf8' },
  )
  t.deepEqual(JSON.parse(out), { big: 'ENOSPC', leftAfterFailure: [], fdsLeaked: 0, fits: true })
})

test.serial('a writer killed half way: every byte it wrote is still there for the reader', async (t) => {
  const name = uniqueName('dying')
  const chunkSize = 64 * 1024
  const chunks = 16
  using shm = SharedMemory.create(name, 8 + 2 * chunks * chunkSize)
  t.teardown(() => removeQuietly(name))
  const child = await runScript(join(FIXTURES, 'dying-writer.cjs'), {
    args: [name, String(chunkSize), String(chunks)],
  })
  t.is(child.signal, 'SIGKILL', child.stderr)
  const header = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 2)
  t.is(Atomics.load(header, 0), chunks)
  for (let chunk = 0; chunk < chunks; chunk++) {
    const bytes = shm.buffer.subarray(8 + chunk * chunkSize, 8 + (chunk + 1) * chunkSize)
    t.true(bytes.every((b) => b === ((chunk * 7 + 1) & 0xff)), `chunk ${chunk}`)
  }
  // The half it never reached is still zero.
  t.true(shm.buffer.subarray(8 + chunks * chunkSize).every((b) => b === 0))
})
