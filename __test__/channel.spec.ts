// Channel: messages between real processes, every byte checked, in both
// modes and both styles; the ends, timeouts, aborts, the end of a channel,
// views, workers, and what a channel leaves behind.

import test from 'ava'
import { EventEmitter, once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { Channel, ShmError, SharedMemory, shmClose, shmOpen } from 'posix-shm'

import { ROOT, linuxOnly, mappingCount, openFdCount, removeQuietly, runNode, runScript, uniqueName } from './helpers'

const PEER = `${ROOT}/__test__/fixtures/channel-peer.cjs`
/** Messages per exchange; `POSIX_SHM_CHANNEL_MESSAGES` lowers it (under Valgrind, say). */
const MESSAGES = Number(process.env.POSIX_SHM_CHANNEL_MESSAGES ?? 1_000_000)

/**
 * One process sends MESSAGES messages of random sizes, another receives
 * and checks every byte; both are real processes, in the given mode.
 */
async function exchange(
  t: import('ava').ExecutionContext,
  style: 'sync' | 'async' | 'view',
  copyMode: boolean,
): Promise<void> {
  const name = uniqueName('chx')
  const channel = Channel.create(name, { capacity: 256 * 1024 })
  try {
    const env = copyMode ? { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } : { POSIX_SHM_NO_EXTERNAL_BUFFERS: '' }
    const seed = String(1 + Math.floor(Math.random() * 1e9))
    const args = (role: string) => [role, name, String(MESSAGES), style, seed]
    const [receiver, sender] = await Promise.all([
      runScript(PEER, { args: args('receive'), env }),
      runScript(PEER, { args: args('send'), env }),
    ])
    t.is(sender.code, 0, sender.stderr)
    t.is(receiver.code, 0, receiver.stderr)
    const report = JSON.parse(receiver.stdout) as { messages: number; bytes: number; ended: boolean }
    t.is(report.messages, MESSAGES)
    t.true(report.ended)
    t.log(`${report.messages} messages, ${report.bytes} bytes, seed ${seed}`)
  } finally {
    channel.close()
    channel.unlink()
  }
}

for (const copyMode of [false, true]) {
  const mode = copyMode ? 'copy mode' : 'zero-copy mode'
  test.serial(`${mode}: two processes exchange messages of random sizes with every byte checked, sync`, (t) =>
    exchange(t, 'sync', copyMode),
  )
  test.serial(`${mode}: two processes exchange messages of random sizes with every byte checked, async`, (t) =>
    exchange(t, 'async', copyMode),
  )
}
test.serial('receiveView: two processes exchange messages with every byte checked in the ring itself', (t) =>
  exchange(t, 'view', false),
)

test('messages of every kind of data arrive as sent, in order, and null after end()', (t) => {
  const name = uniqueName('chk')
  const sender = Channel.create(name, { capacity: 4096 })
  const receiver = Channel.open(name)
  try {
    t.is(sender.capacity, 4096)
    t.is(receiver.capacity, 4096)
    sender.send('héllo')
    sender.send(new Uint16Array([1, 2, 3]))
    sender.send(new ArrayBuffer(5))
    sender.send(new DataView(new ArrayBuffer(8), 2, 3))
    sender.send(new Uint8Array(0))
    t.is(receiver.receive()!.toString(), 'héllo')
    t.deepEqual([...receiver.receive()!], [1, 0, 2, 0, 3, 0])
    t.is(receiver.receive()!.length, 5)
    t.is(receiver.receive()!.length, 3)
    t.is(receiver.receive()!.length, 0)
    sender.end()
    t.is(receiver.receive(), null)
    t.is(receiver.receive(), null)
    t.throws(() => sender.send('more'), { instanceOf: ShmError, code: 'ERR_SHM_CHANNEL_ENDED' })
  } finally {
    sender.close()
    receiver.close()
    sender.unlink()
  }
})

test('capacity rounds up to a power of two, at least 4096; a message larger than capacity - 8 is a RangeError that claims nothing', (t) => {
  const a = Channel.anonymous({ capacity: 5000 })
  try {
    t.is(a.capacity, 8192)
    t.throws(() => a.send(new Uint8Array(8185)), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    a.send(new Uint8Array(8184))
    const b = Channel.fromFd(a.fd)
    t.is(b.receive()!.length, 8184)
    b.close()
  } finally {
    a.close()
  }
  t.throws(() => Channel.anonymous({ capacity: 2 ** 30 + 1 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.anonymous({ capacity: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.anonymous({ capacity: 1.5 }), { code: 'ERR_OUT_OF_RANGE' })
  t.is(Channel.anonymous({ capacity: 1 }).capacity, 4096)
})

test('an end belongs to the handle that first used it: others get ERR_SHM_CHANNEL_BUSY until it closes', (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const b = Channel.fromFd(a.fd)
  const c = Channel.fromFd(a.fd)
  try {
    a.send('one')
    t.throws(() => b.send('two'), { instanceOf: ShmError, code: 'ERR_SHM_CHANNEL_BUSY' })
    t.is(b.receive()!.toString(), 'one')
    t.throws(() => c.receive({ timeout: 0 }), { code: 'ERR_SHM_CHANNEL_BUSY' })
    t.throws(() => c.end(), { code: 'ERR_SHM_CHANNEL_BUSY' })
    a.close()
    c.send('three')
    t.is(b.receive()!.toString(), 'three')
  } finally {
    a.close()
    b.close()
    c.close()
  }
})

linuxOnly('other processes are counted through /proc and /dev/shm')(
  'an end held by another process is busy, and free again once that process is gone',
  async (t) => {
    const name = uniqueName('chb')
    const channel = Channel.create(name)
    try {
      const holder = await runScript(PEER, { args: ['send', name, '0', 'sync', '1'] })
      t.is(holder.code, 0, holder.stderr)
      // That sender ended the channel; an end it held is free again.
      t.is(channel.receive(), null)
      const busy = await runScript(PEER, { args: ['receive', name, '0', 'sync', '1'] })
      t.not(busy.code, 0)
      t.regex(busy.stderr, /ERR_SHM_CHANNEL_BUSY/)
    } finally {
      channel.close()
      channel.unlink()
    }
  },
)

test('a timeout throws ShmError ETIMEDOUT; timeout 0 only looks; trySend says false when full', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const b = Channel.fromFd(a.fd)
  try {
    const error = t.throws(() => b.receive({ timeout: 0 }), { instanceOf: ShmError, code: 'ETIMEDOUT' })
    t.is(error?.syscall, 'receive')
    t.throws(() => b.receive({ timeout: 20 }), { code: 'ETIMEDOUT' })
    await t.throwsAsync(b.receiveAsync({ timeout: 20 }), { code: 'ETIMEDOUT' })
    t.true(a.trySend(new Uint8Array(2000)))
    t.true(a.trySend(new Uint8Array(2000)))
    t.false(a.trySend(new Uint8Array(2000)))
    t.throws(() => a.send(new Uint8Array(2000), { timeout: 10 }), { code: 'ETIMEDOUT' })
    await t.throwsAsync(a.sendAsync(new Uint8Array(2000), { timeout: 10 }), { code: 'ETIMEDOUT' })
    t.is(b.receive()!.length, 2000)
    t.true(a.trySend(new Uint8Array(2000)))
  } finally {
    a.close()
    b.close()
  }
})

test('an aborted signal rejects with signal.reason, at once or while waiting', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  try {
    const reason = new Error('stop')
    await t.throwsAsync(a.receiveAsync({ signal: AbortSignal.abort(reason) }), { is: reason })
    const controller = new AbortController()
    const pending = a.receiveAsync({ signal: controller.signal })
    setImmediate(() => controller.abort(reason))
    await t.throwsAsync(pending, { is: reason })
    // The end still works afterwards.
    const b = Channel.fromFd(a.fd)
    b.send('after')
    t.is((await a.receiveAsync())!.toString(), 'after')
    b.close()
  } finally {
    a.close()
  }
})

test('receiveAsync is woken by a send; for await ends after end()', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const b = Channel.fromFd(a.fd)
  try {
    const first = b.receiveAsync()
    setImmediate(() => a.send('woken'))
    t.is((await first)!.toString(), 'woken')
    const received: string[] = []
    const done = (async () => {
      for await (const message of b) received.push(message.toString())
    })()
    for (let i = 0; i < 100; i += 1) await a.sendAsync(`m${i}`)
    a.end()
    await done
    t.is(received.length, 100)
    t.is(received[99], 'm99')
  } finally {
    a.close()
    b.close()
  }
})

test('sendAsync waits for room without blocking, and is woken when the receiver takes a message', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const b = Channel.fromFd(a.fd)
  try {
    a.send(new Uint8Array(4000))
    const sent = a.sendAsync(new Uint8Array(4000))
    await new Promise((resolve) => setImmediate(resolve))
    t.is(b.receive()!.length, 4000)
    await sent
    t.is(b.receive()!.length, 4000)
  } finally {
    a.close()
    b.close()
  }
})

test('close() rejects pending calls with ERR_SHM_CLOSED, gives the ends up, and later calls throw it', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const pending = a.receiveAsync()
  a.close()
  await t.throwsAsync(pending, { instanceOf: ShmError, code: 'ERR_SHM_CLOSED' })
  t.throws(() => a.send('x'), { code: 'ERR_SHM_CLOSED' })
  t.throws(() => a.receive(), { code: 'ERR_SHM_CLOSED' })
  t.is(a.fd, -1)
  t.true(a.closed)
  a.close()
})

test('receiveView lends the message in the ring until release() or the next receive, which detach it', (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const b = Channel.fromFd(a.fd)
  try {
    a.send('first')
    a.send('second')
    const view = b.receiveView()!
    t.is(view.toString(), 'first')
    const copy = b.receive()!
    t.is(view.length, 0)
    t.is(copy.toString(), 'second')
    a.send(new Uint8Array(3000))
    const big = b.receiveView()!
    t.is(big.length, 3000)
    // The ring stays full while the view is lent...
    t.false(a.trySend(new Uint8Array(2000)))
    b.release()
    t.is(big.length, 0)
    // ...and has room once it is given back.
    t.true(a.trySend(new Uint8Array(2000)))
    b.release()
  } finally {
    a.close()
    b.close()
  }
})

test('the descriptor belongs to the channel: shmClose refuses it, and the caller keeps its own', (t) => {
  const shm = SharedMemory.anonymous(4096)
  const a = Channel.anonymous()
  try {
    t.throws(() => shmClose(a.fd), { code: 'ERR_SHM_FD_OWNED' })
    t.throws(() => Channel.fromFd(shm.fd), { instanceOf: ShmError, code: 'ERR_SHM_NOT_A_CHANNEL' })
    t.false(shm.closed)
  } finally {
    a.close()
    shm.close()
  }
})

test('an object that is not a channel is ERR_SHM_NOT_A_CHANNEL; a scribbled header is ERR_SHM_CHANNEL_CORRUPT', (t) => {
  const name = uniqueName('chn')
  const plain = SharedMemory.create(name, 8192)
  try {
    plain.buffer.write('something else')
    t.throws(() => Channel.open(name), { instanceOf: ShmError, code: 'ERR_SHM_NOT_A_CHANNEL' })
  } finally {
    plain.close()
    removeQuietly(name)
  }
  const channelName = uniqueName('chc')
  const channel = Channel.create(channelName, { capacity: 4096 })
  const scribbler = SharedMemory.open(channelName)
  try {
    channel.send('x')
    // head, as a peer might scribble it: past a whole ring ahead of tail.
    scribbler.buffer.writeBigUInt64LE(1n << 40n, 64)
    t.throws(() => channel.receive({ timeout: 0 }), { code: 'ERR_SHM_CHANNEL_CORRUPT' })
  } finally {
    scribbler.close()
    channel.close()
    channel.unlink()
  }
})

test('a worker thread receives what the main thread sends, through the descriptor', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  try {
    const worker = new Worker(
      `const { Channel } = require('posix-shm'); const { parentPort, workerData } = require('node:worker_threads')
       const channel = Channel.fromFd(workerData)
       let total = 0, count = 0
       for (;;) { const m = channel.receive(); if (m === null) break; total += m.length; count += 1 }
       channel.close()
       parentPort.postMessage({ total, count })`,
      { eval: true, workerData: a.fd },
    )
    const exited = once(worker, 'exit')
    for (let i = 0; i < 10_000; i += 1) a.send(new Uint8Array(i % 100))
    a.end()
    const [report] = (await once(worker, 'message')) as [{ total: number; count: number }]
    t.deepEqual(report, { count: 10_000, total: 495_000 })
    await exited
  } finally {
    a.close()
  }
})

// The receiver's futex word in a channel's header (CHANNEL-LAYOUT.md).
const RECEIVER_SLEEPING_AT = 192

test('a worker blocked in receive() is ended by terminate()', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  try {
    const worker = new Worker(
      `const { Channel } = require('posix-shm'); const { parentPort, workerData } = require('node:worker_threads')
       const channel = Channel.fromFd(workerData)
       // A handle takes its end on first use: take it before saying so.
       try { channel.receive({ timeout: 0 }) } catch (error) { if (error.code !== 'ETIMEDOUT') throw error }
       parentPort.postMessage('holding')
       channel.receive()`,
      { eval: true, workerData: a.fd },
    )
    t.is((await once(worker, 'message'))[0], 'holding')
    // Blocked: the receiver has announced its sleep in the header.
    const header = SharedMemory.fromFd(a.fd, { size: 4096, readOnly: true })
    t.not(header.wait(RECEIVER_SLEEPING_AT, 0, 60_000), 'timed-out')
    header.close()
    await worker.terminate()
    // Torn down without close(), the worker's receiver is gone to the sender...
    t.throws(() => a.send('to the dead receiver'), { code: 'ERR_SHM_PEER_GONE' })
    // ...and its end is free: another receiver takes it, and the sender goes on.
    const b = Channel.fromFd(a.fd)
    t.throws(() => b.receive({ timeout: 0 }), { code: 'ETIMEDOUT' })
    a.send('to the new receiver')
    t.is(b.receive({ timeout: 5000 })!.toString(), 'to the new receiver')
    b.close()
  } finally {
    a.close()
  }
})

test('ends are held by lock here, or by this process id where POSIX_SHM_CHANNEL_ENDS=process (as on macOS)', async (t) => {
  const probe = `const { Channel, SharedMemory } = require('posix-shm')
    const name = process.argv[1]
    const channel = Channel.create(name, { capacity: 4096 })
    channel.send('x')
    const header = SharedMemory.open(name, { readOnly: true })
    console.log(JSON.stringify({ pid: process.pid, holder: Number(header.buffer.readBigUInt64LE(80) >> 32n) }))
    header.close(); channel.close(); channel.unlink()`
  const byLock = await runNode(probe, { args: [uniqueName('chl')], env: { POSIX_SHM_CHANNEL_ENDS: '' } })
  const byProcess = await runNode(probe, { args: [uniqueName('chp')], env: { POSIX_SHM_CHANNEL_ENDS: 'process' } })
  t.is(byLock.code, 0, byLock.stderr)
  t.is(byProcess.code, 0, byProcess.stderr)
  const lock = JSON.parse(byLock.stdout) as { pid: number; holder: number }
  const proc = JSON.parse(byProcess.stdout) as { pid: number; holder: number }
  t.is(proc.holder, proc.pid)
  t.is(lock.holder, process.platform === 'darwin' ? lock.pid : 0)
})

linuxOnly('descriptors and mappings are counted through /proc', test.serial)(
  'channels give back every descriptor and mapping, closed or collected',
  async (t) => {
    const fds = openFdCount()
    const maps = mappingCount()
    for (let i = 0; i < 300; i += 1) {
      const a = Channel.anonymous({ capacity: 4096 })
      const b = Channel.fromFd(a.fd)
      a.send('x')
      b.receiveView()
      a.close()
      b.close()
    }
    for (let i = 0; i < 300; i += 1) Channel.anonymous({ capacity: 4096 }).send('dropped')
    for (let round = 0; round < 10 && (openFdCount() > fds || mappingCount() > maps); round += 1) {
      globalThis.gc?.()
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    t.is(openFdCount(), fds)
    t.is(mappingCount(), maps)
  },
)

test('a handle that closes cleanly is never reported as dead, however its close and the look interleave', async (t) => {
  const name = uniqueName('chg')
  const receiver = Channel.create(name, { capacity: 1 << 20 })
  try {
    // The child takes the sending end and closes it, over and over, while
    // this process keeps asking whether the sender died.
    const child = runNode(
      `const { Channel } = require('posix-shm')
       for (let i = 0; i < 20000; i++) { const c = Channel.open(process.argv[1]); c.trySend('x'); c.close() }`,
      { args: [name] },
    )
    let finished = false
    void child.then(() => (finished = true))
    let peerGone = 0
    let received = 0
    while (!finished) {
      for (let i = 0; i < 2000; i++) {
        try {
          // A timeout above 0 makes every look ask the kernel afresh (a poll
          // may answer from a look less than 100 ms old).
          if (receiver.receive({ timeout: 0.01 }) !== null) received += 1
        } catch (error) {
          if ((error as ShmError).code === 'ERR_SHM_PEER_GONE') peerGone += 1
          else if ((error as ShmError).code !== 'ETIMEDOUT') throw error
        }
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    const result = await child
    t.is(result.code, 0, result.stderr)
    t.is(peerGone, 0)
    t.log(`${received} messages received while the sender came and went 20,000 times`)
  } finally {
    receiver.close()
    receiver.unlink()
  }
})

test('a poll that finds nothing leaves a pending receiveAsync of the same handle announced to the sender', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const b = Channel.fromFd(a.fd)
  const header = SharedMemory.fromFd(a.fd)
  try {
    const pending = b.receiveAsync()
    // receiver_sleeping (offset 192) is 1 once the wait has announced itself.
    while (header.atomicLoad(192) !== 1) await new Promise((resolve) => setImmediate(resolve))
    t.throws(() => b.receive({ timeout: 0 }), { code: 'ETIMEDOUT' })
    t.is(header.atomicLoad(192), 1)
    a.send('seen')
    t.is((await pending)!.toString(), 'seen')
  } finally {
    header.close()
    a.close()
    b.close()
  }
})

test('close() forgets the abort listeners of the calls it rejects', async (t) => {
  const a = Channel.anonymous({ capacity: 4096 })
  const controller = new AbortController()
  const pending = [a.receiveAsync({ signal: controller.signal }), a.receiveAsync({ signal: controller.signal })]
  await new Promise((resolve) => setImmediate(resolve))
  a.close()
  for (const call of pending) await t.throwsAsync(call, { code: 'ERR_SHM_CLOSED' })
  t.is(EventEmitter.getEventListeners(controller.signal, 'abort').length, 0)
})

test('a descriptor opened read-only is refused before anything is mapped', (t) => {
  const name = uniqueName('chr')
  const channel = Channel.create(name, { capacity: 4096 })
  const fd = shmOpen(name, { openFlags: ['read-only'] })
  try {
    t.throws(() => Channel.fromFd(fd), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /read-only/ })
  } finally {
    shmClose(fd)
    channel.close()
    channel.unlink()
  }
})

test('a message larger than the pool gets a pool of its own, and the next message never overwrites its last byte', (t) => {
  const a = Channel.anonymous({ capacity: 256 * 1024 })
  const b = Channel.fromFd(a.fd)
  try {
    // 70,001 bytes: past the 64 KiB pool, and not a multiple of 8.
    a.send(Buffer.alloc(70_001, 0xaa))
    a.send(Buffer.from([0x55]))
    a.send(Buffer.alloc(9, 0x77))
    const big = b.receive()!
    const one = b.receive()!
    const nine = b.receive()!
    t.is(big.length, 70_001)
    t.true(big.every((byte) => byte === 0xaa))
    t.deepEqual([...one], [0x55])
    t.true(nine.every((byte) => byte === 0x77))
    t.is(big.buffer === one.buffer, false)
  } finally {
    a.close()
    b.close()
  }
})

test('receiveMany takes every message waiting, in order, up to max, and null after end()', (t) => {
  const a = Channel.anonymous({ capacity: 256 * 1024 })
  const b = Channel.fromFd(a.fd)
  try {
    t.throws(() => b.receiveMany({ timeout: 0 }), { code: 'ETIMEDOUT' })
    for (let i = 0; i < 100; i++) a.send(Buffer.alloc(i % 37, i))
    const first = b.receiveMany({ max: 30 })!
    t.is(first.length, 30)
    const rest = b.receiveMany()!
    t.is(rest.length, 70)
    const all = [...first, ...rest]
    all.forEach((message, i) => {
      t.is(message.length, i % 37)
      t.true(message.every((byte) => byte === i))
    })
    // A message larger than what is left of the pool comes first in a batch of its own.
    a.send(Buffer.alloc(60_000, 1))
    a.send(Buffer.alloc(10_000, 2))
    const big = b.receiveMany()!
    const more = big.length === 2 ? [] : b.receiveMany()!
    t.deepEqual([...big, ...more].map((m) => [m.length, m[0]]), [
      [60_000, 1],
      [10_000, 2],
    ])
    // The ring was given back: the sender can fill it again.
    for (let i = 0; i < 4; i++) t.true(a.trySend(Buffer.alloc(60_000)))
    // A 64 KiB pool holds one of them: a batch each.
    for (let i = 0; i < 4; i++) t.deepEqual(b.receiveMany()!.map((m) => m.length), [60_000])
    a.end()
    t.is(b.receiveMany(), null)
    t.throws(() => b.receiveMany({ max: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  } finally {
    a.close()
    b.close()
  }
})
