// Channel under a hostile or careless user (#16): peers that scribble on
// the header and the ring, shrink the object, die in the middle of a wait,
// or hold an end twice; workers terminated mid-wait; lent views handed to
// Node's asynchronous APIs; strange arguments; and leaks. Every case must
// end in a coded error or a clean release, never a crash, a hang or a lie.

import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fstatSync, ftruncateSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { Channel, SharedMemory } from 'posix-shm'
import { linuxOnly, mappingCount, openFdCount, removeQuietly, ROOT, runNode, runScript, SETTLE, uniqueName } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const native = require(`${ROOT}/native/binding.js`) as {
  fdOwnerAdopt(fd: number): object
  fdOwnerClose(handle: object): void
  shmOpenAnonymous(openFlags: number, mode: number, attempts: number, sealable: boolean): number
  channelCreate(fd: number, capacity: number, seal?: boolean): object
  channelAttach(fd: number): object
  channelCapacity(handle: object): number
  channelSend(handle: object, data: unknown, timeoutMs: number): boolean
  channelReceiveInto(handle: object, target: unknown, offset: number, timeoutMs: number): number
  channelReceiveView(handle: object, timeoutMs: number): ArrayBuffer | number
  channelRelease(handle: object): void
  channelEnd(handle: object): void
  channelClose(handle: object): void
}

const fixture = (file: string) => join(ROOT, '__test__', 'fixtures', file)

/** Header offsets (CHANNEL-LAYOUT.md). */
const MAGIC_AT = 0
const VERSION_AT = 8
const HEADER_BYTES_AT = 12
const CAPACITY_AT = 16
const HEAD_AT = 64
const TAIL_AT = 128
const RECEIVER_SLEEPING_AT = 192
const SENDER_SLEEPING_AT = 256
const RING = 4096

/** A named channel of 4096 bytes, a second handle on it, and a plain mapping of the whole object to scribble with. */
function scribbled(t: import('ava').ExecutionContext, tag: string) {
  const name = uniqueName(tag)
  t.teardown(() => removeQuietly(name))
  const tx = Channel.create(name, { capacity: 4096 })
  const rx = Channel.open(name)
  const raw = SharedMemory.open(name)
  t.teardown(() => (tx.close(), rx.close(), raw.close()))
  return { name, tx, rx, raw, bytes: raw.buffer }
}

/** Spawns a Node script with its output collected; `exited` resolves with the whole result. */
function start(path: string, args: string[], extraFds: number[] = []) {
  const child = spawn(process.execPath, [path, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', ...extraFds] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  )
  const line = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const look = () => {
        if (stdout.includes(text)) resolve()
      }
      child.stdout!.on('data', look)
      child.once('close', () => (stdout.includes(text) ? resolve() : reject(new Error(`child exited without '${text}': ${stderr}`))))
      look()
    })
  return { child, exited, line }
}

/** Resolves once `done()` holds, looking every few milliseconds (for at most 10 s). */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 10 s')
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

// --- A peer scribbles on the fixed header fields --------------------------

function forge(t: import('ava').ExecutionContext, size: number, fields: Record<number, [number, bigint | number]>) {
  const name = uniqueName('forge')
  t.teardown(() => removeQuietly(name))
  const raw = SharedMemory.create(name, size)
  t.teardown(() => raw.close())
  raw.buffer.writeUInt32LE(1, VERSION_AT)
  raw.buffer.writeUInt32LE(4096, HEADER_BYTES_AT)
  raw.buffer.writeBigUInt64LE(BigInt(RING), CAPACITY_AT)
  raw.buffer.write('PSHMCHAN', MAGIC_AT, 'latin1')
  for (const [at, [width, value]] of Object.entries(fields)) {
    if (width === 8) raw.buffer.writeBigUInt64LE(BigInt(value), Number(at))
    else raw.buffer.writeUInt32LE(Number(value), Number(at))
  }
  return name
}

test.serial('a header a peer forged is refused at open with a coded error, and the refusal leaks nothing', (t) => {
  const full = 4096 + RING
  const cases: [string, number, Record<number, [number, bigint | number]>, string][] = [
    ['another magic', full, { [MAGIC_AT]: [8, 0x1234n] }, 'ERR_SHM_NOT_A_CHANNEL'],
    ['version 2', full, { [VERSION_AT]: [4, 2] }, 'ERR_SHM_NOT_A_CHANNEL'],
    ['version 0', full, { [VERSION_AT]: [4, 0] }, 'ERR_SHM_NOT_A_CHANNEL'],
    ['header_bytes 8192', full, { [HEADER_BYTES_AT]: [4, 8192] }, 'ERR_SHM_CHANNEL_CORRUPT'],
    ['capacity 0', full, { [CAPACITY_AT]: [8, 0] }, 'ERR_SHM_CHANNEL_CORRUPT'],
    ['capacity 12288 (no power of two)', 4096 + 12288, { [CAPACITY_AT]: [8, 12288] }, 'ERR_SHM_CHANNEL_CORRUPT'],
    ['capacity 2^31', full, { [CAPACITY_AT]: [8, 2n ** 31n] }, 'ERR_SHM_CHANNEL_CORRUPT'],
    ['capacity 2^63', full, { [CAPACITY_AT]: [8, 2n ** 63n] }, 'ERR_SHM_CHANNEL_CORRUPT'],
    ['capacity past the object', full, { [CAPACITY_AT]: [8, 1n << 20n] }, 'ERR_SHM_CHANNEL_CORRUPT'],
  ]
  const names = cases.map(([, size, fields]) => forge(t, size, fields))
  const fds = openFdCount()
  const mappings = mappingCount()
  for (const [index, [what, , , code]] of cases.entries()) {
    t.throws(() => Channel.open(names[index]!), { code }, what)
  }
  t.is(openFdCount(), fds)
  t.is(mappingCount(), mappings)
})

test('an object without a header (empty, too small, all zeroes) is no channel, after the creator grace of about a second', (t) => {
  for (const size of [0, 100, 4096 + RING]) {
    const name = uniqueName('nohdr')
    t.teardown(() => removeQuietly(name))
    const raw = SharedMemory.create(name, Math.max(size, 1))
    if (size === 0) require('node:fs').ftruncateSync(raw.fd, 0)
    raw.close()
    const started = performance.now()
    t.throws(() => Channel.open(name), { code: 'ERR_SHM_NOT_A_CHANNEL' }, `${size} bytes`)
    const waited = performance.now() - started
    t.true(waited >= 900 && waited < 5000, `waited ${waited} ms`)
  }
})

linuxOnly('/dev/null and /proc')('Channel.fromFd of a descriptor that is no shared memory object is refused at once, and leaks nothing', (t) => {
  const { openSync, closeSync } = require('node:fs') as typeof import('node:fs')
  const targets = [openSync('/dev/null', 'r+'), openSync('/proc', 'r')]
  t.teardown(() => targets.forEach((fd) => closeSync(fd)))
  const fds = openFdCount()
  for (const fd of targets) {
    const started = performance.now()
    t.throws(() => Channel.fromFd(fd), { code: 'ERR_SHM_NOT_A_CHANNEL' }, String(fd))
    t.true(performance.now() - started < 500)
  }
  t.is(openFdCount(), fds)
})

// --- A peer scribbles on the counts and records -------------------------

test('a receiver refuses counts and records a peer scribbled on, and never hangs or reads out of bounds', (t) => {
  // `at` is where the third message's record starts in the object.
  const scribbles: [string, (bytes: Buffer, at: number) => void][] = [
    ['head not a multiple of 8', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(HEAD_AT) + 3n, HEAD_AT)],
    ['head more than a ring ahead', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(TAIL_AT) + 8192n, HEAD_AT)],
    ['head behind tail', (b) => b.writeBigUInt64LE(0n, HEAD_AT)],
    ['head 2^64 - 8', (b) => b.writeBigUInt64LE(2n ** 64n - 8n, HEAD_AT)],
    ['kind 0', (b, at) => b.writeUInt32LE(0, at + 4)],
    ['kind 3', (b, at) => b.writeUInt32LE(3, at + 4)],
    ['kind 0xffffffff', (b, at) => b.writeUInt32LE(0xffffffff, at + 4)],
    ['length past head', (b, at) => b.writeUInt32LE(1000, at)],
    ['length 0xffffffff', (b, at) => b.writeUInt32LE(0xffffffff, at)],
    ['padding with a length', (b, at) => (b.writeUInt32LE(2, at + 4), b.writeUInt32LE(8, at))],
    ['padding before the end of the ring', (b, at) => (b.writeUInt32LE(2, at + 4), b.writeUInt32LE(0, at))],
  ]
  for (const [what, scribble] of scribbles) {
    const { tx, rx, bytes } = scribbled(t, 'scrib')
    // Two messages received, so tail is 32, then one more in the ring at 32.
    tx.send('first message..')
    tx.send('second message.')
    t.is(rx.receive()?.toString(), 'first message..')
    t.is(rx.receive()?.toString(), 'second message.')
    tx.send('third message..')
    scribble(bytes, 4096 + Number(bytes.readBigUInt64LE(TAIL_AT) % BigInt(RING)))
    // A timeout only bounds a hang: the error must come at once.
    const error = t.throws(() => rx.receive({ timeout: 5000 }), { code: 'ERR_SHM_CHANNEL_CORRUPT' }, what)
    t.is(error?.name, 'ShmError', what)
    // And again: a corrupt channel stays refused, it does not come back to life.
    t.throws(() => rx.receive({ timeout: 0 }), { code: 'ERR_SHM_CHANNEL_CORRUPT' }, `${what}, again`)
  }
})

test('a record whose length runs past the end of the ring is refused', (t) => {
  const { tx, rx, bytes } = scribbled(t, 'pastend')
  // Records of 4064 and 16 bytes, received; then one of 16 in the ring's last 16 bytes.
  tx.send(Buffer.alloc(4056))
  t.is(rx.receive()?.length, 4056)
  tx.send(Buffer.alloc(8))
  t.is(rx.receive()?.length, 8)
  tx.send(Buffer.alloc(8))
  t.is(bytes.readBigUInt64LE(TAIL_AT), BigInt(RING - 16))
  // Its length now says 16: 8 bytes past the end.
  bytes.writeUInt32LE(16, 4096 + RING - 16)
  t.throws(() => rx.receive({ timeout: 5000 }), { code: 'ERR_SHM_CHANNEL_CORRUPT' })
})

test('a sender refuses a tail a peer scribbled on once it needs to look at it', (t) => {
  const scribbles: [string, (b: Buffer) => void][] = [
    ['tail past head', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(HEAD_AT) + 8n, TAIL_AT)],
    ['tail not a multiple of 8', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(TAIL_AT) + 1n, TAIL_AT)],
    ['tail gone back', (b) => b.writeBigUInt64LE(0n, TAIL_AT)],
  ]
  for (const [what, scribble] of scribbles) {
    const { tx, rx, bytes } = scribbled(t, 'tailscr')
    tx.send(Buffer.alloc(1000))
    t.is(rx.receive()?.length, 1000)
    while (tx.trySend(Buffer.alloc(1000)));
    scribble(bytes)
    t.throws(() => tx.send(Buffer.alloc(1000), { timeout: 5000 }), { code: 'ERR_SHM_CHANNEL_CORRUPT' }, what)
  }
})

test('a peer scribbling on the sleeping words costs wake-ups, never a lost message or a hang', async (t) => {
  const { name, tx, bytes } = scribbled(t, 'sleepw')
  const receiver = start(fixture('channel-receiver.cjs'), [name, 'sync'])
  const messages = Array.from({ length: 200 }, (_, i) => `m${i}`)
  for (const [i, message] of messages.entries()) {
    // Lie both ways: the receiver does not sleep, the sender does.
    bytes.writeUInt32LE(i % 2, RECEIVER_SLEEPING_AT)
    bytes.writeUInt32LE(1 - (i % 2), SENDER_SLEEPING_AT)
    await tx.sendAsync(message)
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  tx.end()
  const result = await receiver.exited
  t.deepEqual(JSON.parse(result.stdout), { messages, end: 'null' })
})

for (const mode of ['sync', 'async'] as const) {
  test(`a receiver blocked in ${mode} receive gets ERR_SHM_CHANNEL_CORRUPT when a peer scribbles on head`, async (t) => {
    const { name, tx, raw } = scribbled(t, `blkscr${mode}`)
    const receiver = start(fixture('channel-receiver.cjs'), [name, mode])
    tx.send('before')
    // The receiver says it sleeps once it has taken 'before' and found the ring empty.
    await until(() => raw.atomicLoad(RECEIVER_SLEEPING_AT) === 1)
    raw.buffer.writeBigUInt64LE(raw.buffer.readBigUInt64LE(HEAD_AT) + 12n, HEAD_AT)
    const result = await receiver.exited
    t.deepEqual(JSON.parse(result.stdout), { messages: ['before'], end: 'ERR_SHM_CHANNEL_CORRUPT' }, result.stderr)
  })
}

// --- Another process shrinks the object ---------------------------------

linuxOnly('Linux lets a peer shrink an object under a mapping and raises SIGBUS past its end')(
  'a peer shrinks a named channel: every call fails with ERR_SHM_SHRUNK instead of a SIGBUS, and close() still closes',
  async (t) => {
    const name = uniqueName('shrink')
    t.teardown(() => removeQuietly(name))
    const result = await runNode(
      `
      const { execFileSync } = require('child_process')
      const { Channel, shmClose, shmFtruncate, shmOpen } = require('posix-shm')
      const name = process.argv[1]
      // A real second process cuts the whole object away.
      const shrink = (size = 0) => execFileSync(process.execPath, ['-e', \`
        const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
        const fd = shmOpen(process.argv[1], { openFlags: ['read-write'] }); shmFtruncate(fd, Number(process.argv[2])); shmClose(fd)
      \`, name, String(size)])
      const outcome = async (f) => { try { await f(); return 'worked' } catch (e) { return e.code } }
      const calls = {
        send: (c) => c.send('x'),
        trySend: (c) => c.trySend('x'),
        sendAsync: (c) => c.sendAsync('x'),
        receive: (c) => c.receive(),
        receiveAsync: (c) => c.receiveAsync(),
        receiveMany: (c) => c.receiveMany(),
        receiveView: (c) => c.receiveView(),
        end: (c) => c.end(),
      }
      const main = async () => {
        for (const [what, call] of Object.entries(calls)) {
          const channel = Channel.create(name, { capacity: 4096 })
          channel.send('in the ring')
          shrink()
          const first = await outcome(() => call(channel))
          const then = await outcome(() => channel.receive())
          const closed = await outcome(() => channel.close())
          channel.unlink()
          console.log([what, first, 'then', then, 'close', closed].join(' '))
        }
        // Closed past a cut, a handle still gives its ends up: once the ring
        // is back (the header page stayed), another process takes them, and
        // so does another handle of this one.
        const cut = Channel.create(name, { capacity: 4096 })
        cut.send('held')
        shrink(4096)
        const refused = await outcome(() => cut.send('x'))
        cut.close()
        const fd = shmOpen(name, { openFlags: ['read-write'] })
        shmFtruncate(fd, 2 * 4096)
        shmClose(fd)
        const elsewhere = execFileSync(process.execPath, [process.argv[2], name, 'send']).toString()
        const again = Channel.open(name)
        console.log(['past a cut', refused, 'then the end elsewhere', elsewhere, 'and here', await outcome(() => again.send('y'))].join(' '))
        again.close()
        cut.unlink()
        // A view lent before the shrink: release() detaches it all the same.
        const lending = Channel.create(name, { capacity: 4096 })
        lending.send('lent')
        const view = lending.receiveView()
        shrink()
        console.log(['release', await outcome(() => lending.release()), 'view bytes', view.byteLength, 'close', await outcome(() => lending.close())].join(' '))
        lending.unlink()
        // A receive already waiting when the shrink comes.
        const waiting = Channel.create(name, { capacity: 4096 })
        const pending = outcome(() => waiting.receiveAsync())
        shrink()
        const ended = await pending
        console.log(['pending receiveAsync', ended === 'EFAULT' || ended === 'ERR_SHM_SHRUNK' ? 'failed' : ended, 'close', await outcome(() => waiting.close())].join(' '))
        waiting.unlink()
        console.log('alive')
      }
      main()
      `,
      { args: [name, fixture('channel-take.cjs')] },
    )
    t.is(result.signal, null, result.stderr)
    t.is(result.code, 0, result.stderr)
    const expected = ['send', 'trySend', 'sendAsync', 'receive', 'receiveAsync', 'receiveMany', 'receiveView', 'end'].map(
      (what) => `${what} ERR_SHM_SHRUNK then ERR_SHM_SHRUNK close worked`,
    )
    expected.push('past a cut ERR_SHM_SHRUNK then the end elsewhere took and here worked')
    expected.push('release ERR_SHM_SHRUNK view bytes 0 close worked', 'pending receiveAsync failed close worked', 'alive', '')
    t.is(result.stdout, expected.join('\n'))
  },
)

linuxOnly('memfd seals')('an anonymous channel is sealed: neither this process nor one it passes the descriptor to can resize it', async (t) => {
  const channel = Channel.anonymous({ capacity: 4096 })
  t.teardown(() => channel.close())
  t.throws(() => ftruncateSync(channel.fd, 0), { code: 'EPERM' })
  t.throws(() => ftruncateSync(channel.fd, 1 << 20), { code: 'EPERM' })
  const peer = spawn(
    process.execPath,
    [
      '-e',
      `
      const { Channel } = require('posix-shm')
      let code = 'resized'
      try { require('fs').ftruncateSync(3, 0) } catch (error) { code = error.code }
      const channel = Channel.fromFd(3)
      channel.send('from the peer')
      channel.close()
      process.stdout.write(code)
      `,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit', channel.fd] },
  )
  let stdout = ''
  peer.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  await once(peer, 'close')
  t.is(stdout, 'EPERM')
  t.is(channel.receive({ timeout: 0 })?.toString(), 'from the peer')
})

// --- Peer death -----------------------------------------------------------

for (const mode of ['sync', 'async'] as const) {
  test(`a receiver blocked in ${mode} receive gets ERR_SHM_PEER_GONE within a second of its sender's SIGKILL, and a new sender continues`, async (t) => {
    const name = uniqueName(`deadtx${mode}`)
    t.teardown(() => removeQuietly(name))
    const rx = Channel.create(name, { capacity: 4096 })
    t.teardown(() => rx.close())
    const sender = start(fixture('channel-dying-peer.cjs'), [name, 'sender', '3', 'blocked'])
    const receive = (timeout: number) => (mode === 'sync' ? rx.receive({ timeout }) : rx.receiveAsync({ timeout }))
    const got: string[] = []
    for (let i = 0; i < 3; i++) got.push(String(await receive(20_000)))
    t.deepEqual(got, ['message 0', 'message 1', 'message 2'])
    // Now the ring is empty and the receiver sleeps: the sender kills itself.
    const started = performance.now()
    await t.throwsAsync(async () => receive(20_000), { code: 'ERR_SHM_PEER_GONE' })
    const waited = performance.now() - started
    t.true(waited < 1000, `PEER_GONE after ${waited} ms`)
    t.is((await sender.exited).signal, 'SIGKILL')
    // The dead end is free: another process takes it and goes on.
    const next = await runScript(fixture('channel-sender.cjs'), { args: [name, 'again'] })
    t.is(next.stdout, 'sent', next.stderr)
    t.is(String(await receive(5000)), 'again')
    t.is(await receive(5000), null)
  })

  test(`a sender blocked in ${mode} send on a full ring gets ERR_SHM_PEER_GONE within a second of its receiver's SIGKILL, and a new receiver drains`, async (t) => {
    const name = uniqueName(`deadrx${mode}`)
    t.teardown(() => removeQuietly(name))
    const tx = Channel.create(name, { capacity: 4096 })
    t.teardown(() => tx.close())
    const receiver = start(fixture('channel-dying-peer.cjs'), [name, 'receiver'])
    await receiver.line('ready')
    const sent: string[] = []
    for (let i = 0; tx.trySend(`queued ${i}`); i++) sent.push(`queued ${i}`)
    t.true(sent.length > 100)
    const started = performance.now()
    await t.throwsAsync(async () => (mode === 'sync' ? tx.send('one too many', { timeout: 20_000 }) : tx.sendAsync('one too many', { timeout: 20_000 })), {
      code: 'ERR_SHM_PEER_GONE',
    })
    const waited = performance.now() - started
    t.true(waited < 1000, `PEER_GONE after ${waited} ms`)
    t.is((await receiver.exited).signal, 'SIGKILL')
    tx.end()
    const next = await runScript(fixture('channel-receiver.cjs'), { args: [name, mode] })
    t.deepEqual(JSON.parse(next.stdout), { messages: sent, end: 'null' }, next.stderr)
  })
}

test('what a sender published before its SIGKILL is all delivered, then ERR_SHM_PEER_GONE at once', async (t) => {
  const name = uniqueName('drain')
  t.teardown(() => removeQuietly(name))
  const rx = Channel.create(name, { capacity: 4096 })
  t.teardown(() => rx.close())
  const sender = start(fixture('channel-dying-peer.cjs'), [name, 'sender', '5', 'now'])
  t.is((await sender.exited).signal, 'SIGKILL')
  for (let i = 0; i < 5; i++) t.is(rx.receive({ timeout: 0 })?.toString(), `message ${i}`)
  const started = performance.now()
  t.throws(() => rx.receive({ timeout: 20_000 }), { code: 'ERR_SHM_PEER_GONE' })
  t.true(performance.now() - started < 1000)
  await t.throwsAsync(rx.receiveAsync({ timeout: 20_000 }), { code: 'ERR_SHM_PEER_GONE' })
})

// --- Busy ends --------------------------------------------------------------

test('an end held by one handle is ERR_SHM_CHANNEL_BUSY for a second handle, fromFd(ch.fd), a worker and another process, and free after close()', async (t) => {
  const name = uniqueName('busy')
  t.teardown(() => removeQuietly(name))
  const holder = Channel.create(name, { capacity: 4096 })
  const receiver = Channel.open(name)
  const again = Channel.open(name)
  const viaFd = Channel.fromFd(holder.fd)
  t.teardown(() => (holder.close(), receiver.close(), again.close(), viaFd.close()))
  holder.send('taken')
  t.is(receiver.receive({ timeout: 0 })?.toString(), 'taken')
  for (const [what, other] of [['a second handle', again], ['Channel.fromFd(ch.fd)', viaFd]] as const) {
    t.throws(() => other.trySend('x'), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
    t.throws(() => other.send('x'), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
    t.throws(() => other.end(), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
    t.throws(() => other.receive({ timeout: 0 }), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
    t.throws(() => other.receiveView({ timeout: 0 }), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
    await t.throwsAsync(other.sendAsync('x'), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
    await t.throwsAsync(other.receiveAsync({ timeout: 0 }), { code: 'ERR_SHM_CHANNEL_BUSY' }, what)
  }
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('worker_threads')
    const { Channel } = require(workerData.root)
    const channel = Channel.open(workerData.name)
    const codes = []
    for (const attempt of [() => channel.trySend('x'), () => channel.receive({ timeout: 0 })]) {
      try { attempt(); codes.push('took') } catch (error) { codes.push(error.code) }
    }
    channel.close()
    parentPort.postMessage(codes)
    `,
    { eval: true, workerData: { name, root: ROOT } },
  )
  const [codes] = (await once(worker, 'message')) as [string[]]
  t.deepEqual(codes, ['ERR_SHM_CHANNEL_BUSY', 'ERR_SHM_CHANNEL_BUSY'])
  for (const end of ['send', 'receive']) {
    t.is((await runScript(fixture('channel-take.cjs'), { args: [name, end] })).stdout, 'ERR_SHM_CHANNEL_BUSY', end)
  }
  // A passed descriptor is no way around it either.
  const passed = start(fixture('channel-take.cjs'), ['fd:3', 'send'], [holder.fd])
  t.is((await passed.exited).stdout, 'ERR_SHM_CHANNEL_BUSY')
  holder.close()
  receiver.close()
  t.is((await runScript(fixture('channel-take.cjs'), { args: [name, 'send'] })).stdout, 'took')
  t.is((await runScript(fixture('channel-take.cjs'), { args: [name, 'receive'] })).stdout, 'took')
  t.true(viaFd.trySend('now mine'))
  // (The second process received what the first sent.)
  t.is(again.receive({ timeout: 0 })?.toString(), 'now mine')
})

// --- Workers and exits --------------------------------------------------------

test.serial('terminate() of a worker blocked in a sync receive settles within a second and frees its end', async (t) => {
  const name = uniqueName('wterm')
  t.teardown(() => removeQuietly(name))
  const tx = Channel.create(name, { capacity: 4096 })
  const raw = SharedMemory.open(name)
  t.teardown(() => (tx.close(), raw.close()))
  const worker = new Worker(
    `
    const { workerData } = require('worker_threads')
    const { Channel } = require(workerData.root)
    Channel.open(workerData.name).receive()
    `,
    { eval: true, workerData: { name, root: ROOT } },
  )
  await until(() => raw.atomicLoad(RECEIVER_SLEEPING_AT) === 1)
  const started = performance.now()
  await worker.terminate()
  const waited = performance.now() - started
  t.true(waited < 1000, `terminate took ${waited} ms`)
  // Torn down without close(), the worker's end counts as a dead holder's.
  t.throws(() => tx.send('to the torn-down worker'), { code: 'ERR_SHM_PEER_GONE' })
  const rx = Channel.open(name)
  t.teardown(() => rx.close())
  t.throws(() => rx.receive({ timeout: 0 }), { code: 'ETIMEDOUT' })
  tx.send('after the worker')
  t.is(rx.receive({ timeout: 0 })?.toString(), 'after the worker')
})

test('process.exit() with a receiveAsync and a sendAsync pending exits at once, in the main thread and in a worker', async (t) => {
  const result = await runNode(`
    const { Worker } = require('worker_threads')
    const { Channel } = require('posix-shm')
    const worker = new Worker(\`
      const { Channel } = require(${JSON.stringify(ROOT)})
      const channel = Channel.anonymous({ capacity: 4096 })
      channel.receiveAsync()
      process.exit(3)
    \`, { eval: true })
    worker.on('exit', (code) => {
      process.stdout.write('worker ' + code + '; ')
      const full = Channel.anonymous({ capacity: 4096 })
      while (full.trySend('x'));
      full.sendAsync('x')
      Channel.anonymous({ capacity: 4096 }).receiveAsync()
      setImmediate(() => process.exit(7))
    })
  `)
  t.is(result.stdout, 'worker 3; ', result.stderr)
  t.is(result.code, 7)
})

test('close() with receiveAsync and sendAsync pending rejects them with ERR_SHM_CLOSED and leaves nothing running', async (t) => {
  const result = await runNode(`
    const { Channel } = require('posix-shm')
    const rx = Channel.anonymous({ capacity: 4096 })
    const tx = Channel.anonymous({ capacity: 4096 })
    while (tx.trySend('x'));
    const controller = new AbortController()
    const pending = [rx.receiveAsync(), rx.receiveAsync({ signal: controller.signal }), tx.sendAsync('x'), tx.sendAsync('y', { timeout: 1e9 })]
    rx.close()
    tx.close()
    Promise.allSettled(pending).then((results) => {
      process.stdout.write(results.map((r) => r.status + ':' + (r.reason && r.reason.code)).join(' '))
      controller.abort()
    })
  `)
  // The process ended by itself: no wait, thread or handle was left behind.
  t.is(result.code, 0, result.stderr)
  t.is(result.stdout, Array(4).fill('rejected:ERR_SHM_CLOSED').join(' '))
})

// --- Lent views ---------------------------------------------------------------

test('a lent view in a pending socket write survives release() and close(): the ring stays mapped until Node lets go of it', async (t) => {
  const result = await runNode(
    `${SETTLE}
    const { Channel } = require('posix-shm')
    const { spawn } = require('child_process')
    async function main() {
      const size = 512 * 1024
      const pattern = Buffer.alloc(size)
      for (let i = 0; i < size; i++) pattern[i] = (i * 7 + (i >> 12)) & 0xff
      const channel = Channel.anonymous({ capacity: 1 << 20 })
      channel.send(pattern)
      const view = channel.receiveView()
      // cat copies stdin to stdout; nobody reads its stdout yet, so it stops
      // and most of the write stays queued, pointing into the ring.
      const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] })
      cat.stdin.write(view)
      cat.stdin.end()
      const queued = cat.stdin.writableLength
      channel.release()
      channel.close()
      await settle()
      const chunks = []
      cat.stdout.on('data', (chunk) => chunks.push(chunk))
      await new Promise((resolve) => cat.on('close', resolve))
      const out = Buffer.concat(chunks)
      process.stdout.write(JSON.stringify({ queued: queued > 0, viewLength: view.length, length: out.length, same: out.equals(pattern) }))
    }
    main()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(result.code, 0, result.stderr)
  t.deepEqual(JSON.parse(result.stdout), { queued: true, viewLength: 0, length: 512 * 1024, same: true })
})

test('lent views handed to fs.write, zlib and crypto.randomFill, then released or closed mid-flight, crash nothing', async (t) => {
  const result = await runNode(
    `${SETTLE}
    const { Channel } = require('posix-shm')
    const fs = require('fs'), zlib = require('zlib'), crypto = require('crypto'), os = require('os'), path = require('path')
    async function main() {
      const file = path.join(os.tmpdir(), 'psm-channel-view-' + process.pid)
      const fd = fs.openSync(file, 'w')
      const pending = []
      for (let round = 0; round < 20; round++) {
        const channel = Channel.anonymous({ capacity: 1 << 20 })
        for (let i = 0; i < 4; i++) channel.send(Buffer.alloc(200 * 1024, i + round))
        const asPromise = (start) => new Promise((resolve) => start((error) => resolve(error ? error.code : 'ok')))
        let view = channel.receiveView()
        const written = view
        pending.push(asPromise((done) => fs.write(fd, written, done)))
        channel.release()
        view = channel.receiveView()
        const zipped = view
        pending.push(asPromise((done) => zlib.deflate(zipped, done)))
        view = channel.receiveView()
        const filled = view
        pending.push(asPromise((done) => crypto.randomFill(filled, done)))
        view = channel.receiveView()
        const hashed = view
        pending.push(new Promise((resolve) => { crypto.subtle.digest('SHA-256', hashed).then(() => resolve('ok'), (e) => resolve(e.name)) }))
        if (round % 2) channel.close()
        else (channel.release(), channel.close())
        gc()
      }
      const outcomes = await Promise.all(pending)
      await settle()
      fs.closeSync(fd)
      fs.unlinkSync(file)
      process.stdout.write(JSON.stringify([...new Set(outcomes.map((o) => typeof o))]))
    }
    main()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(result.signal, null, result.stderr)
  t.is(result.code, 0, result.stderr)
  t.is(result.stdout, '["string"]')
})

test('send(view) of a view lent by the same channel copies it whole, never over itself, and cannot deadlock with a timeout', (t) => {
  const channel = Channel.anonymous({ capacity: 4096 })
  t.teardown(() => channel.close())
  const message = Buffer.alloc(2040)
  for (let i = 0; i < message.length; i++) message[i] = (i * 13) & 0xff
  channel.send(message)
  const view = channel.receiveView()!
  t.true(view.equals(message))
  // The lent message (2048 bytes of the ring) is still held: exactly the other half is free.
  channel.send(view)
  t.false(channel.trySend(view))
  t.throws(() => channel.send(view, { timeout: 10 }), { code: 'ETIMEDOUT' })
  t.true(channel.receive({ timeout: 0 })!.equals(message))
  t.is(view.length, 0)
  t.throws(() => channel.receive({ timeout: 0 }), { code: 'ETIMEDOUT' })
})

// --- Hostile arguments --------------------------------------------------------

test('hostile arguments to every method end in TypeErrors and RangeErrors, and the channel still works', async (t) => {
  const channel = Channel.anonymous({ capacity: 4096 })
  t.teardown(() => channel.close())
  const getter = {
    get timeout() {
      throw new Error('a getter ran')
    },
  }
  const detached = new ArrayBuffer(8)
  structuredClone(detached, { transfer: [detached] })
  const refused: [string, () => unknown, string][] = [
    ['create capacity 0', () => Channel.anonymous({ capacity: 0 }), 'ERR_OUT_OF_RANGE'],
    ['create capacity -1', () => Channel.anonymous({ capacity: -1 }), 'ERR_OUT_OF_RANGE'],
    ['create capacity 1.5', () => Channel.anonymous({ capacity: 1.5 }), 'ERR_OUT_OF_RANGE'],
    ['create capacity NaN', () => Channel.anonymous({ capacity: NaN }), 'ERR_OUT_OF_RANGE'],
    ['create capacity Infinity', () => Channel.anonymous({ capacity: Infinity }), 'ERR_OUT_OF_RANGE'],
    ['create capacity 2^30 + 1', () => Channel.anonymous({ capacity: 2 ** 30 + 1 }), 'ERR_OUT_OF_RANGE'],
    ['create capacity 2^53', () => Channel.anonymous({ capacity: 2 ** 53 }), 'ERR_OUT_OF_RANGE'],
    ['create capacity "4096"', () => Channel.anonymous({ capacity: '4096' as unknown as number }), 'ERR_INVALID_ARG_TYPE'],
    ['create options null', () => Channel.anonymous(null as never), 'ERR_INVALID_ARG_TYPE'],
    ['fromFd -1', () => Channel.fromFd(-1), 'ERR_OUT_OF_RANGE'],
    ['fromFd NaN', () => Channel.fromFd(NaN), 'ERR_OUT_OF_RANGE'],
    ['fromFd 2^53', () => Channel.fromFd(2 ** 53), 'ERR_OUT_OF_RANGE'],
    ['fromFd "3"', () => Channel.fromFd('3' as never), 'ERR_INVALID_ARG_TYPE'],
    ['send a number', () => channel.send(42 as never), 'ERR_INVALID_ARG_TYPE'],
    ['send null', () => channel.send(null as never), 'ERR_INVALID_ARG_TYPE'],
    ['send an object', () => channel.send({ length: 8 } as never), 'ERR_INVALID_ARG_TYPE'],
    ['send too large', () => channel.send(Buffer.alloc(4089)), 'ERR_OUT_OF_RANGE'],
    ['send a huge string', () => channel.send('x'.repeat(1 << 20)), 'ERR_OUT_OF_RANGE'],
    ['send timeout NaN', () => channel.send('x', { timeout: NaN }), 'ERR_OUT_OF_RANGE'],
    ['send timeout "1"', () => channel.send('x', { timeout: '1' as never }), 'ERR_INVALID_ARG_TYPE'],
    ['send options 5', () => channel.send('x', 5 as never), 'ERR_INVALID_ARG_TYPE'],
    ['receive timeout NaN', () => channel.receive({ timeout: NaN }), 'ERR_OUT_OF_RANGE'],
    ['receive timeout a bigint', () => channel.receive({ timeout: 1n as never }), 'ERR_INVALID_ARG_TYPE'],
    ['receiveView options "x"', () => channel.receiveView('x' as never), 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [what, call, code] of refused) {
    const error = t.throws(call, undefined, what)
    t.is((error as NodeJS.ErrnoException | undefined)?.code, code, `${what}: ${error?.message}`)
    t.true(error instanceof TypeError || error instanceof RangeError, what)
  }
  t.throws(() => channel.receive(getter as never), { message: 'a getter ran' })
  await t.throwsAsync(channel.receiveAsync({ signal: {} as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(channel.sendAsync('x', { timeout: NaN }), { code: 'ERR_OUT_OF_RANGE' })
  // Strange but valid: negative timeouts poll, huge ones wait forever.
  t.throws(() => channel.receive({ timeout: -1 }), { code: 'ETIMEDOUT' })
  t.throws(() => channel.receive({ timeout: -Infinity }), { code: 'ETIMEDOUT' })
  channel.send('a', { timeout: Number.MAX_VALUE })
  channel.send('b', { timeout: 2 ** 53 })
  t.is(channel.receive({ timeout: Number.MAX_VALUE })?.toString(), 'a')
  t.is(channel.receive({ timeout: Infinity })?.toString(), 'b')
  // A detached buffer is sent as what it holds now: nothing.
  channel.send(detached)
  t.is(channel.receive({ timeout: 0 })?.length, 0)
  // Every kind of view, by its bytes.
  channel.send(new Float64Array([1.5, -2]))
  const floats = channel.receive({ timeout: 0 })!
  t.deepEqual([floats.readDoubleLE(0), floats.readDoubleLE(8)], [1.5, -2])
  channel.send(new DataView(new ArrayBuffer(16), 4, 8))
  t.is(channel.receive({ timeout: 0 })?.length, 8)
  channel.send(new BigInt64Array(2).subarray(1))
  t.is(channel.receive({ timeout: 0 })?.length, 8)
  channel.send(new Uint16Array(5).subarray(1, 4))
  t.is(channel.receive({ timeout: 0 })?.length, 6)
  t.true(channel.trySend('still works'))
  t.is(channel.receive()?.toString(), 'still works')
})

// Node-API reports Float16Array as a kind of its own (11) where the
// runtime has them; taken for an 8-byte kind, a send read 4 times its
// bytes, past the array. Runs where Float16Array exists.
type Float16ArrayConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView
const float16 = (globalThis as { Float16Array?: Float16ArrayConstructor }).Float16Array
;(float16 === undefined ? test.skip : test)('a Float16Array is sent as its own bytes, no more', (t) => {
  const channel = Channel.anonymous({ capacity: 4096 })
  t.teardown(() => channel.close())
  const bytes = new Uint8Array(1024).fill(7)
  channel.send(new float16!(bytes.buffer, 16, 3))
  const received = channel.receive({ timeout: 0 })
  t.is(received?.length, 6)
  t.deepEqual([...received!], [7, 7, 7, 7, 7, 7])
})

test('native entries given handles that are not channel handles throw TypeErrors, never read them', (t) => {
  const fd = native.shmOpenAnonymous(2, 0o600, 10, false)
  const owner = native.fdOwnerAdopt(fd)
  t.teardown(() => native.fdOwnerClose(owner))
  const channel = Channel.anonymous({ capacity: 4096 })
  t.teardown(() => channel.close())
  const strangers: [string, unknown][] = [
    ['{}', {}],
    ['null', null],
    ['a number', 7],
    ['a fdOwner handle', owner],
    ['a Channel object', channel],
    ['a Buffer', Buffer.alloc(64)],
    ['a function', () => 0],
  ]
  for (const [what, handle] of strangers) {
    const calls: [string, () => unknown][] = [
      ['channelCapacity', () => native.channelCapacity(handle as object)],
      ['channelSend', () => native.channelSend(handle as object, Buffer.from('x'), 0)],
      ['channelReceiveInto', () => native.channelReceiveInto(handle as object, Buffer.alloc(64), 0, 0)],
      ['channelReceiveView', () => native.channelReceiveView(handle as object, 0)],
      ['channelRelease', () => native.channelRelease(handle as object)],
      ['channelEnd', () => native.channelEnd(handle as object)],
      ['channelClose', () => native.channelClose(handle as object)],
    ]
    for (const [entry, call] of calls) t.throws(call, { instanceOf: TypeError }, `${entry}(${what})`)
  }
  // A real handle with wrong other arguments.
  const handle = native.channelCreate(native.shmOpenAnonymous(2, 0o600, 10, false), 4096)
  native.channelSend(handle, Buffer.from('hello'), 0)
  t.throws(() => native.channelReceiveInto(handle, Buffer.alloc(8), -1, 0), { instanceOf: RangeError })
  t.throws(() => native.channelReceiveInto(handle, Buffer.alloc(8), 9, 0), { instanceOf: RangeError })
  t.throws(() => native.channelReceiveInto(handle, Buffer.alloc(8), 0.5, 0), { instanceOf: RangeError })
  t.throws(() => native.channelReceiveInto(handle, Buffer.alloc(8), NaN, 0), { instanceOf: RangeError })
  t.throws(() => native.channelReceiveInto(handle, 'a string', 0, 0), { instanceOf: TypeError })
  // Too small a target leaves the message in the ring.
  t.is(native.channelReceiveInto(handle, Buffer.alloc(2), 0, 0), -3 - 5)
  const target = Buffer.alloc(8)
  t.is(native.channelReceiveInto(handle, target, 3, 0), 5)
  t.is(target.toString('utf8', 3), 'hello')
  t.throws(() => native.channelCreate(3, NaN), { instanceOf: RangeError })
  native.channelClose(handle)
  native.channelClose(handle)
  t.throws(() => native.channelSend(handle, Buffer.from('x'), 0), { code: 'ERR_SHM_CLOSED' })
})

test('transferring a received message\'s ArrayBuffer empties no other message of its pool and breaks no later receive', (t) => {
  const channel = Channel.anonymous({ capacity: 4096 })
  t.teardown(() => channel.close())
  channel.send('one')
  channel.send('two')
  channel.send('three')
  const one = channel.receive()!
  const two = channel.receive()!
  // A zero-copy hand-off of one message (to a worker, say): refused, or
  // done as a copy, since the buffer is shared with other messages.
  try {
    structuredClone(two.buffer, { transfer: [two.buffer] })
  } catch (error) {
    t.is((error as Error).name, 'DataCloneError')
  }
  t.is(one.toString(), 'one')
  t.is(two.toString(), 'two')
  t.is(channel.receive({ timeout: 0 })?.toString(), 'three')
  channel.send('four')
  t.is(channel.receive({ timeout: 0 })?.toString(), 'four')
})

test('the binding refuses to make a channel in an object that is not empty, and so never shrinks a live mapping', (t) => {
  const shm = SharedMemory.anonymous(1 << 16)
  t.teardown(() => shm.close())
  shm.buffer.write('still mapped', 60_000)
  const fds = openFdCount()
  t.throws(() => native.channelCreate(shm.fd, 4096), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.is(openFdCount(), fds)
  t.is(fstatSync(shm.fd).size, 1 << 16)
  // Had the object shrunk, this read would be SIGBUS.
  t.is(shm.buffer.toString('utf8', 60_000, 60_012), 'still mapped')
  const channel = Channel.anonymous({ capacity: 1 << 16 })
  t.teardown(() => channel.close())
  t.throws(() => native.channelCreate(channel.fd, 4096), { code: 'ERR_INVALID_ARG_VALUE' })
  channel.send('intact')
  t.is(channel.receive({ timeout: 0 })?.toString(), 'intact')
})

// --- Leaks ----------------------------------------------------------------

test.serial('10,000 channels made, used and closed leave descriptors and mappings as they were', (t) => {
  const fds = openFdCount()
  const mappings = mappingCount()
  for (let i = 0; i < 10_000; i++) {
    const channel = Channel.anonymous({ capacity: 4096 })
    channel.send('x')
    channel.receive()
    channel.close()
  }
  const name = uniqueName('cycles')
  for (let i = 0; i < 1000; i++) {
    const tx = Channel.create(name, { capacity: 4096 })
    const rx = Channel.open(name)
    tx.send('y')
    rx.receive()
    tx.unlink()
    tx.close()
    rx.close()
  }
  t.is(openFdCount(), fds)
  t.is(mappingCount(), mappings)
})

linuxOnly('/proc counts')('channels dropped without close() are closed by the garbage collector, and their ends freed', async (t) => {
  const name = uniqueName('gcdrop')
  t.teardown(() => removeQuietly(name))
  const result = await runNode(
    `${SETTLE}
    const { Channel } = require('posix-shm')
    const fds = () => require('fs').readdirSync('/proc/self/fd').length
    async function main() {
      const name = process.argv[1]
      const keeper = Channel.create(name, { capacity: 4096 })
      const before = { fds: fds(), mappings: shmMappings() }
      ;(() => {
        for (let i = 0; i < 500; i++) {
          const channel = Channel.anonymous({ capacity: 4096 })
          channel.send('x')
          channel.send('y')
          channel.receive()
          // A lent view keeps the ring mapped until it is collected, even past close().
          channel.receiveView()
          if (i % 2) channel.close()
        }
        try { Channel.open(name).receive({ timeout: 0 }) } catch {}
      })()
      await settle(() => fds() === before.fds && shmMappings() === before.mappings)
      const after = { fds: fds(), mappings: shmMappings() }
      let code = 'took'
      try { Channel.open(name).receive({ timeout: 0 }) } catch (error) { code = error.code }
      keeper.close()
      process.stdout.write(JSON.stringify({ same: JSON.stringify(before) === JSON.stringify(after), code }))
    }
    main()
    `,
    { args: [name], nodeOptions: ['--expose-gc'] },
  )
  t.is(result.code, 0, result.stderr)
  t.deepEqual(JSON.parse(result.stdout), { same: true, code: 'ETIMEDOUT' })
})

// --- Copy mode --------------------------------------------------------------

test('in copy mode send, receive and receiveView work, and a view is a copy that release() leaves alone', async (t) => {
  const result = await runNode(
    `
    const { Channel } = require('posix-shm')
    const channel = Channel.anonymous({ capacity: 4096 })
    const out = []
    for (let round = 0; round < 300; round++) {
      const message = Buffer.alloc(round * 7 % 1000, round & 0xff)
      channel.send(message)
      channel.send(new Uint32Array([round, round + 1]))
      const copy = channel.receiveView()
      channel.release()
      const second = channel.receive()
      if (!copy.equals(message) || second.readUInt32LE(4) !== round + 1) out.push('wrong at ' + round)
    }
    channel.end()
    out.push(String(channel.receiveView()))
    process.stdout.write(out.join(','))
    `,
    { env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } },
  )
  t.is(result.code, 0, result.stderr)
  t.is(result.stdout, 'null')
})
