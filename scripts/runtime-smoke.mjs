// Smoke test of posix-shm under another runtime than Node (Bun, Deno), run
// by scripts/bun-smoke.sh and scripts/deno-smoke.sh. Every step prints a
// line; the first failure throws and exits non-zero.
//
//   1. this runtime creates an object by name and writes; a real Node
//      process (SMOKE_NODE) opens it by name, reads, writes back and
//      notifies; this runtime waits (sync) until woken, then reads
//   2. the reverse: Node creates and writes, then waits (sync); this
//      runtime opens it by name, reads, writes back and notifies it awake
//   3. shared mappings: SharedMemory.anonymous(4096, { shared: true }) is a
//      SharedArrayBuffer, posted to a Worker, which sleeps in Atomics.wait
//      until this thread's Atomics.notify wakes it and then writes; the
//      write shows here. SMOKE_SHARED=required fails where the runtime
//      cannot make one; otherwise such a runtime must refuse the option
//      with ERR_SHM_NO_SHARED_BUFFERS
//   4. copy mode chosen from JavaScript: a child of this runtime, with the
//      variable absent from its environment, sets
//      process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS = '1' and only then loads
//      posix-shm; SharedMemory.zeroCopy is false and read/write/atomicAdd
//      work on the object this process made
//   5. a descriptor from shmOpenAnonymous with node:fs: fs.fstatSync sees
//      its size, except in Deno, whose node:fs knows only descriptors it
//      opened itself (EBADF), as the README says
//   6. a Channel by name: a real Node process sends 2,000 messages of
//      varying sizes, then end(); this runtime receives them with
//      for await, checking each, and sends 2,000 back on a second channel,
//      which Node receives and checks
//
// Waits are woken by notify, never by a delay: a notifier calls notify
// until it reports a woken waiter, and a waiter must return 'ok'.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fstatSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

const WAIT_MS = 60_000 // a safety net only
const script = fileURLToPath(import.meta.url)
const [role = 'main', name] = process.argv.slice(2)
const runtime = process.versions.bun ? `bun ${process.versions.bun}` : process.versions.deno ? `deno ${process.versions.deno}` : `node ${process.version}`

function step(message) {
  console.log(`[${role} ${process.pid}, ${runtime}] ${message}`)
}

// Calls notify until it reports a woken waiter; the pause only spaces the
// calls out.
function notifyUntilWoken(memory, byteOffset) {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (let calls = 1; ; calls++) {
    const woken = memory.notify(byteOffset)
    if (woken > 0) return `woke ${woken} waiter after ${calls} call${calls === 1 ? '' : 's'}`
    Atomics.wait(pause, 0, 0, 2)
  }
}

/** Runs this script in `role` under `command`; resolves to its exit and what it printed. */
function run(command, args, env = process.env) {
  const child = spawn(command, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
  let out = ''
  const printed = []
  const waiting = []
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk)
    out += chunk
    const lines = out.split('\n')
    out = lines.pop()
    for (const line of lines) printed.push(line)
    for (const wanted of waiting.splice(0)) wanted()
  })
  const exited = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  /** Resolves once the child has printed a line containing `text`. */
  const printedLine = (text) =>
    new Promise((resolve, reject) => {
      const look = () => (printed.some((line) => line.includes(text)) ? resolve() : waiting.push(look))
      exited.then(({ code }) => reject(new Error(`the child exited ${code} before printing "${text}"`)))
      look()
    })
  return { exited, printedLine }
}

async function main() {
  const { SharedMemory, ShmError } = await import('posix-shm')
  const node = process.env.SMOKE_NODE
  assert.ok(node, 'SMOKE_NODE must name a Node binary')
  step(`zeroCopy ${SharedMemory.zeroCopy}, sharedBuffers ${SharedMemory.sharedBuffers}`)
  assert.equal(SharedMemory.zeroCopy, true)

  // 1. This runtime creates; Node opens.
  const first = `posix-shm-example-${process.pid}-a`
  const memory = SharedMemory.create(first, 4096)
  try {
    memory.buffer.write('from the runtime', 64)
    step(`created /${first}, wrote "from the runtime"; starting Node`)
    const peer = run(node, ['node-opens', first])
    const result = memory.wait(0, 0, WAIT_MS)
    assert.equal(result, 'ok', `wait(0) returned ${result}`)
    step(`wait(0) woken by Node's notify: ${result}`)
    const reply = memory.buffer.toString('utf8', 128, 128 + 'from node'.length)
    assert.equal(reply, 'from node')
    step(`Node's write is here: "${reply}"`)
    assert.deepEqual(await peer.exited, { code: 0, signal: null }, 'the Node peer failed')
  } finally {
    memory.close()
    memory.unlink()
  }

  // 2. Node creates; this runtime opens.
  const second = `posix-shm-example-${process.pid}-b`
  const host = run(node, ['node-creates', second])
  await host.printedLine('waiting on word 0')
  const opened = SharedMemory.open(second)
  try {
    const seen = opened.buffer.toString('utf8', 64, 64 + 'from node'.length)
    assert.equal(seen, 'from node')
    step(`opened /${second} made by Node, read "${seen}"`)
    opened.buffer.write('from the runtime', 128)
    step(`wrote "from the runtime"; notify(0): ${notifyUntilWoken(opened, 0)}`)
  } finally {
    opened.close()
  }
  assert.deepEqual(await host.exited, { code: 0, signal: null }, 'the Node host failed')

  // 3. Shared mappings.
  if (SharedMemory.sharedBuffers) {
    await sharedMapping(SharedMemory)
  } else {
    assert.notEqual(process.env.SMOKE_SHARED, 'required', `${runtime} cannot make a SharedArrayBuffer over a mapping`)
    assert.throws(
      () => SharedMemory.anonymous(4096, { shared: true }),
      (error) => error instanceof ShmError && error.code === 'ERR_SHM_NO_SHARED_BUFFERS',
    )
    step('shared: true refused with ERR_SHM_NO_SHARED_BUFFERS (this runtime cannot make a SharedArrayBuffer over a mapping)')
  }

  // 4. Copy mode chosen from JavaScript.
  const third = `posix-shm-example-${process.pid}-c`
  const copied = SharedMemory.create(third, 4096)
  try {
    copied.buffer.write('from the runtime', 64)
    const { POSIX_SHM_NO_EXTERNAL_BUFFERS: _, ...env } = process.env
    const child = run(process.execPath, ['copy-mode', third], env)
    assert.deepEqual(await child.exited, { code: 0, signal: null }, 'the copy-mode child failed')
    assert.equal(copied.buffer.toString('utf8', 256, 256 + 'copy mode'.length), 'copy mode')
    assert.equal(copied.atomicLoad(16), 5)
    step("the copy-mode child's write and atomicAdd are here")
  } finally {
    copied.close()
    copied.unlink()
  }
  // 5. Descriptors with node:fs.
  const { shmOpenAnonymous, shmFtruncate, shmClose } = await import('posix-shm')
  const fd = shmOpenAnonymous()
  try {
    shmFtruncate(fd, 8192)
    if (process.versions.deno) {
      assert.throws(() => fstatSync(fd), { code: 'EBADF' })
      step(`node:fs fstatSync on descriptor ${fd} from shmOpenAnonymous: EBADF in Deno`)
    } else {
      assert.equal(fstatSync(fd).size, 8192)
      step(`node:fs fstatSync on descriptor ${fd} from shmOpenAnonymous: size 8192`)
    }
  } finally {
    shmClose(fd)
  }
  // 6. A Channel each way with Node.
  await channelRoundTrip(node)
  step('all steps passed')
}

const CHANNEL_MESSAGES = 2000
/** Message i: i in its first 4 bytes, then bytes of (i + j) & 255, (i * 7) % 500 + 4 bytes in all. */
function channelMessage(i) {
  const message = Buffer.alloc(((i * 7) % 500) + 4)
  for (let j = 4; j < message.length; j++) message[j] = (i + j) & 255
  message.writeUInt32LE(i, 0)
  return message
}

async function receiveChecked(channel) {
  let i = 0
  for await (const message of channel) {
    assert.ok(message.equals(channelMessage(i)), `channel message ${i} differs`)
    i++
  }
  assert.equal(i, CHANNEL_MESSAGES)
}

async function channelRoundTrip(node) {
  const { Channel } = await import('posix-shm')
  const toHere = `posix-shm-example-${process.pid}-d`
  const toNode = `posix-shm-example-${process.pid}-e`
  const inbound = Channel.create(toHere, { capacity: 4096 })
  const outbound = Channel.create(toNode, { capacity: 4096 })
  try {
    const peer = run(node, ['node-channel', toHere, toNode])
    await receiveChecked(inbound)
    step(`Channel: received ${CHANNEL_MESSAGES} messages from Node through a 4 KiB ring, each checked, then null`)
    for (let i = 0; i < CHANNEL_MESSAGES; i++) await outbound.sendAsync(channelMessage(i))
    outbound.end()
    assert.deepEqual(await peer.exited, { code: 0, signal: null }, 'the Node channel peer failed')
    step(`Channel: Node received the ${CHANNEL_MESSAGES} messages this runtime sent, each checked`)
  } finally {
    inbound.close()
    outbound.close()
    inbound.unlink()
    outbound.unlink()
  }
}

// Node, the other end of two channels: sends, then receives.
async function nodeChannel() {
  const { Channel } = await import('posix-shm')
  const [toRuntime, fromRuntime] = process.argv.slice(3)
  const outbound = Channel.open(toRuntime)
  for (let i = 0; i < CHANNEL_MESSAGES; i++) outbound.send(channelMessage(i))
  outbound.end()
  outbound.close()
  const inbound = Channel.open(fromRuntime)
  await receiveChecked(inbound)
  inbound.close()
  step(`received ${CHANNEL_MESSAGES} checked messages from the runtime`)
}

async function sharedMapping(SharedMemory) {
  const shm = SharedMemory.anonymous(4096, { shared: true })
  try {
    const memory = shm.buffer.buffer
    assert.ok(memory instanceof SharedArrayBuffer, `shm.buffer.buffer is a ${memory.constructor.name}`)
    step('SharedMemory.anonymous(4096, { shared: true }).buffer.buffer is a SharedArrayBuffer')
    const ints = new Int32Array(memory)
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads')
       const ints = new Int32Array(workerData)
       parentPort.postMessage('about to wait')
       const result = Atomics.wait(ints, 0, 0, ${WAIT_MS})
       ints[1] = 42
       parentPort.postMessage(result)`,
      { eval: true, workerData: memory },
    )
    const messages = []
    const next = () =>
      new Promise((resolve, reject) => {
        if (messages.length > 0) return resolve(messages.shift())
        worker.once('message', () => resolve(messages.shift()))
        worker.once('error', reject)
      })
    worker.on('message', (message) => messages.push(message))
    assert.equal(await next(), 'about to wait')
    // Nothing changes word 0, so only a notify can make the wait return 'ok'.
    const pause = new Int32Array(new SharedArrayBuffer(4))
    let calls = 1
    while (Atomics.notify(ints, 0) === 0) {
      Atomics.wait(pause, 0, 0, 2)
      calls++
    }
    const result = await next()
    assert.equal(result, 'ok', `the worker's Atomics.wait returned ${result}`)
    step(`posted to a Worker; its Atomics.wait woken by this thread's Atomics.notify (after ${calls} calls): ${result}`)
    assert.equal(ints[1], 42)
    step('the worker wrote 42 into the posted buffer and this thread sees it: no copy was made')
    await worker.terminate()
  } finally {
    shm.close()
  }
}

// Node, opening what the runtime made: reads, writes back, notifies.
async function nodeOpens() {
  const { SharedMemory } = await import('posix-shm')
  const memory = SharedMemory.open(name)
  const seen = memory.buffer.toString('utf8', 64, 64 + 'from the runtime'.length)
  assert.equal(seen, 'from the runtime')
  step(`opened /${name} by name, read "${seen}"`)
  memory.buffer.write('from node', 128)
  step(`wrote "from node"; notify(0): ${notifyUntilWoken(memory, 0)}`)
  memory.close()
}

// Node, making an object for the runtime: writes, waits to be woken.
async function nodeCreates() {
  const { SharedMemory } = await import('posix-shm')
  const memory = SharedMemory.create(name, 4096)
  try {
    memory.buffer.write('from node', 64)
    step(`created /${name}, wrote "from node", waiting on word 0`)
    const result = memory.wait(0, 0, WAIT_MS)
    assert.equal(result, 'ok', `wait(0) returned ${result}`)
    const reply = memory.buffer.toString('utf8', 128, 128 + 'from the runtime'.length)
    assert.equal(reply, 'from the runtime')
    step(`woken by the runtime's notify: ${result}; its write is here: "${reply}"`)
  } finally {
    memory.close()
    memory.unlink()
  }
}

// This runtime in copy mode, chosen from JavaScript only.
async function copyMode() {
  assert.equal(process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS, undefined, 'the variable must come from JavaScript here')
  process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS = '1'
  const { SharedMemory, ShmError } = await import('posix-shm')
  assert.equal(SharedMemory.zeroCopy, false, 'SharedMemory.zeroCopy should be false in copy mode')
  step('process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS = "1" set from JavaScript before loading: zeroCopy is false')
  const memory = SharedMemory.open(name)
  const seen = memory.read(64, 'from the runtime'.length).toString()
  assert.equal(seen, 'from the runtime')
  assert.throws(() => memory.buffer, (error) => error instanceof ShmError && error.code === 'ERR_SHM_NO_EXTERNAL_BUFFERS')
  memory.write('copy mode', 256)
  const before = memory.atomicAdd(16, 5)
  step(`copy mode: read() gives "${seen}", .buffer throws ERR_SHM_NO_EXTERNAL_BUFFERS, write() and atomicAdd (saw ${before}) done`)
  memory.close()
}

// Only loads posix-shm: what scripts/deno-smoke.sh runs with a permission
// left out, to read the error.
async function load() {
  try {
    const { SharedMemory } = await import('posix-shm')
    step(`loaded; zeroCopy ${SharedMemory.zeroCopy}`)
  } catch (error) {
    console.error(`${error.code}: ${error.message}`)
    process.exit(2)
  }
}

const roles = { main, load, 'node-opens': nodeOpens, 'node-creates': nodeCreates, 'copy-mode': copyMode, 'node-channel': nodeChannel }
Promise.resolve()
  .then(roles[role])
  .catch((error) => {
    console.error(`[${role} ${process.pid}] FAILED:`, error)
    process.exit(1)
  })
