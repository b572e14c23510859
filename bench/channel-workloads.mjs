// One channel-group measurement per process, for bench/channel.mjs:
//
//   node bench/channel-workloads.mjs ROW SIZE SECONDS CAPACITY
//
// prints one JSON object. The one-way rows (ipc, socket, socket-batch,
// channel, channel-view) send SIZE-byte messages from this process (the
// producer) to a forked consumer for a warm-up (a fifth of SECONDS, at least
// 0.1 s) plus SECONDS; the consumer checks every message and measures its
// own rate after the warm-up: { messages, measured, seconds, msgsPerSec, GBs }
// (GB/s of payload). The ping-pong rows (pingpong-ipc, pingpong-socket,
// pingpong-channel, pingpong-channel-async) bounce one 64-byte message
// between the two processes, checked at both ends: { rounds, usPerRoundTrip }.
// A Channel row prints { unavailable: true } when posix-shm has no Channel.
//
// Every message is the same as bench/c/channel.c's: a u64 sequence number
// in its first 8 bytes, byte i (i >= 8) holding (i >> 6) & 0xff, and the
// last byte the sequence number's low byte. The consumer checks the
// sequence number, the last byte and one byte in every 64-byte line.

import { fork } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as posixShm from 'posix-shm'

const Channel = posixShm.Channel ?? posixShm.default?.Channel
const here = fileURLToPath(import.meta.url)
const prefix = `psm_bench_chan_${process.pid}_`
const now = () => performance.now() // milliseconds
const warmMs = (seconds) => Math.max(100, (seconds * 1000) / 5)

// ---- the checked messages -------------------------------------------------

function template(size) {
  const message = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) message[i] = (i >> 6) & 0xff
  return message
}

function stamp(message, seq) {
  const low = seq >>> 0
  message.writeUInt32LE(low, 0)
  message.writeUInt32LE((seq - low) / 4294967296, 4)
  message[message.length - 1] = seq & 0xff
}

/** Throws unless `m` (any Uint8Array) is message `seq` of `size` bytes. */
function check(m, seq, size) {
  const len = m.length
  const low = seq >>> 0
  if (
    len !== size ||
    (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0 !== low ||
    (m[4] | (m[5] << 8) | (m[6] << 16) | (m[7] << 24)) >>> 0 !== (seq - low) / 4294967296 ||
    m[len - 1] !== (seq & 0xff)
  ) {
    throw new Error(`message ${seq} failed its check (length ${len}, want ${size})`)
  }
  for (let i = 64; i < len - 1; i += 64) {
    if (m[i] !== ((i >> 6) & 0xff)) throw new Error(`message ${seq} failed its check at byte ${i}`)
  }
}

/** The consumer's count and clock: it measures after its own warm-up. */
function meter(size, seconds) {
  const warm = warmMs(seconds)
  let seq = 0
  let first = 0
  let mark = 0
  let markSeq = 0
  return {
    take(m) {
      check(m, seq, size)
      seq++
      if (seq === 1) first = now()
      else if (!mark && (seq & 63) === 0) {
        const t = now()
        if (t - first >= warm) (mark = t), (markSeq = seq)
      }
    },
    result() {
      const end = now()
      if (!mark) (mark = first), (markSeq = 1)
      const measured = seq - markSeq
      const s = (end - mark) / 1000
      return { messages: seq, measured, seconds: s, msgsPerSec: measured / s, GBs: (measured * size) / s / 1e9 }
    },
  }
}

/** Length-prefixed frames (a u32 length, then the payload) out of a byte stream. */
function deframer(onMessage) {
  let pending = [] // chunks of an incomplete frame
  let pendingBytes = 0
  return (chunk) => {
    if (pendingBytes) {
      pending.push(chunk)
      pendingBytes += chunk.length
      if (pendingBytes < 4) return
      const head = pending[0].length >= 4 ? pending[0] : Buffer.concat(pending)
      if (pendingBytes < 4 + head.readUInt32LE(0)) return
      chunk = Buffer.concat(pending, pendingBytes)
      pending = []
      pendingBytes = 0
    }
    let at = 0
    while (chunk.length - at >= 4) {
      const length = chunk.readUInt32LE(at)
      if (chunk.length - at - 4 < length) break
      onMessage(chunk.subarray(at + 4, at + 4 + length))
      at += 4 + length
    }
    if (at < chunk.length) {
      pending = [chunk.subarray(at)]
      pendingBytes = chunk.length - at
    }
  }
}

function frame(message) {
  const out = Buffer.allocUnsafe(4 + message.length)
  out.writeUInt32LE(message.length, 0)
  message.copy(out, 4)
  return out
}

/** The producer's clock: true while it should keep sending. */
function sending(seconds) {
  const until = now() + warmMs(seconds) + seconds * 1000
  return () => now() < until
}

const sendAndWait = (message) => new Promise((resolve) => process.send(message, resolve))

// ---- one way ----------------------------------------------------------------

async function oneWay(row, size, seconds, capacity) {
  const message = template(size)
  const childArgs = (target) => ['consumer', row, String(size), String(seconds), target]
  let more // the producer's clock, started once the consumer is ready

  if (row === 'ipc') {
    const child = fork(here, childArgs(''), { serialization: 'advanced' })
    await once(child, 'message') // ready
    more = sending(seconds)
    // Node's own backpressure for IPC: send() returns false once its queue
    // holds more than 128 KiB; then wait until half of what is queued has
    // been written.
    let sent = 0
    let written = 0
    let wanted = 0
    let resume
    const done = () => {
      written++
      if (resume && written >= wanted) (resume(), (resume = undefined))
    }
    const result = new Promise((resolve) => child.on('message', resolve))
    for (let seq = 0; ; ) {
      if (!more()) break
      for (let i = 0; i < 64; i++, seq++) {
        stamp(message, seq)
        sent++
        if (!child.send(message, done)) {
          wanted = written + Math.ceil((sent - written) / 2)
          await new Promise((resolve) => (resume = resolve))
        }
      }
    }
    child.send('end')
    const measured = await result
    await once(child, 'exit')
    return measured
  }

  if (row === 'socket' || row === 'socket-batch') {
    const path = join(tmpdir(), `${prefix}one-way.sock`)
    const server = createServer()
    await new Promise((resolve) => server.listen(path, resolve))
    const child = fork(here, childArgs(path))
    const [socket] = await once(server, 'connection')
    await once(child, 'message') // ready
    more = sending(seconds)
    const result = new Promise((resolve) => child.on('message', resolve))
    for (let seq = 0; more(); ) {
      if (row === 'socket') {
        for (let i = 0; i < 64; i++, seq++) {
          stamp(message, seq)
          if (!socket.write(frame(message))) await once(socket, 'drain')
        }
      } else {
        // 64 messages, one writev: cork, write each frame, uncork.
        socket.cork()
        for (let i = 0; i < 64; i++, seq++) (stamp(message, seq), socket.write(frame(message)))
        socket.uncork()
        if (socket.writableNeedDrain) await once(socket, 'drain')
      }
    }
    socket.end()
    const measured = await result
    await once(child, 'exit')
    server.close()
    return measured
  }

  // channel, channel-view
  const name = `${prefix}one-way`
  const ch = Channel.create(name, { capacity })
  const child = fork(here, childArgs(name))
  await once(child, 'message') // ready
  more = sending(seconds)
  const result = new Promise((resolve) => child.on('message', resolve))
  for (let seq = 0; more(); ) {
    for (let i = 0; i < 64; i++, seq++) (stamp(message, seq), ch.send(message))
  }
  ch.end()
  const measured = await result
  await once(child, 'exit')
  ch.close()
  ch.unlink()
  return measured
}

async function consumer(row, size, seconds, target) {
  const m = meter(size, seconds)
  if (row === 'ipc') {
    process.on('message', (msg) => {
      if (msg === 'end') return sendAndWait(m.result()).then(() => process.disconnect())
      m.take(msg)
    })
    process.send('ready')
    return
  }
  if (row === 'socket' || row === 'socket-batch') {
    const socket = connect(target)
    socket.on('data', deframer((msg) => m.take(msg)))
    socket.on('end', () => sendAndWait(m.result()).then(() => process.disconnect()))
    await once(socket, 'connect')
    process.send('ready')
    return
  }
  const peer = Channel.open(target)
  await sendAndWait('ready')
  // A plain loop: receive() blocks while the ring is empty.
  if (row === 'channel') {
    for (let msg; (msg = peer.receive()) !== null; ) m.take(msg)
  } else {
    for (let view; (view = peer.receiveView()) !== null; ) (m.take(view), peer.release())
  }
  await sendAndWait(m.result())
  peer.close()
  process.disconnect()
}

// ---- ping-pong, 64 bytes ----------------------------------------------------

/** Runs `round(seq)` (which returns a promise, or nothing when sync) for a warm-up, then timed. */
async function rounds(seconds, round, sync) {
  const warmUntil = now() + warmMs(seconds)
  let seq = 0
  if (sync) {
    while (now() < warmUntil) for (let i = 0; i < 64; i++) round(seq++)
  } else {
    while (now() < warmUntil) for (let i = 0; i < 64; i++) await round(seq++)
  }
  const start = now()
  const until = start + seconds * 1000
  const from = seq
  if (sync) {
    while (now() < until) for (let i = 0; i < 64; i++) round(seq++)
  } else {
    while (now() < until) for (let i = 0; i < 64; i++) await round(seq++)
  }
  const count = seq - from
  return { rounds: count, usPerRoundTrip: ((now() - start) * 1000) / count }
}

async function pingpong(row, seconds, capacity) {
  const size = 64
  const message = template(size)
  const childArgs = (target) => ['echo', row, String(size), String(seconds), target]

  if (row === 'pingpong-ipc') {
    const child = fork(here, childArgs(''), { serialization: 'advanced' })
    await once(child, 'message')
    let resolveReply
    child.on('message', (reply) => resolveReply(reply))
    const result = await rounds(seconds, async (seq) => {
      stamp(message, seq)
      const reply = new Promise((resolve) => (resolveReply = resolve))
      child.send(message)
      check(await reply, seq, size)
    })
    child.kill()
    return result
  }

  if (row === 'pingpong-socket') {
    const path = join(tmpdir(), `${prefix}pingpong.sock`)
    const server = createServer()
    await new Promise((resolve) => server.listen(path, resolve))
    const child = fork(here, childArgs(path))
    const [socket] = await once(server, 'connection')
    await once(child, 'message')
    let resolveReply
    socket.on('data', deframer((reply) => resolveReply(reply)))
    const result = await rounds(seconds, async (seq) => {
      stamp(message, seq)
      const reply = new Promise((resolve) => (resolveReply = resolve))
      socket.write(frame(message))
      check(await reply, seq, size)
    })
    child.kill()
    server.close()
    return result
  }

  // pingpong-channel, pingpong-channel-async: one channel each way.
  const there = Channel.create(`${prefix}there`, { capacity })
  const back = Channel.create(`${prefix}back`, { capacity })
  const child = fork(here, childArgs(prefix))
  await once(child, 'message')
  const result =
    row === 'pingpong-channel'
      ? await rounds(
          seconds,
          (seq) => {
            stamp(message, seq)
            there.send(message)
            check(back.receive(), seq, size)
          },
          true,
        )
      : await rounds(seconds, async (seq) => {
          stamp(message, seq)
          there.send(message)
          check(await back.receiveAsync(), seq, size)
        })
  there.end()
  await once(child, 'exit')
  for (const ch of [there, back]) (ch.close(), ch.unlink())
  return result
}

async function echo(row, target) {
  if (row === 'pingpong-ipc') {
    process.on('message', (msg) => process.send(msg))
    process.send('ready')
    return
  }
  if (row === 'pingpong-socket') {
    const socket = connect(target)
    socket.on('data', deframer((msg) => socket.write(frame(msg))))
    await once(socket, 'connect')
    process.send('ready')
    return
  }
  const there = Channel.open(`${target}there`)
  const back = Channel.open(`${target}back`)
  await sendAndWait('ready')
  if (row === 'pingpong-channel') {
    for (let msg; (msg = there.receive()) !== null; ) back.send(msg)
  } else {
    for (let msg; (msg = await there.receiveAsync()) !== null; ) back.send(msg)
  }
  back.end()
  there.close()
  back.close()
  process.disconnect()
}

// ---- dispatch ---------------------------------------------------------------

const [command, ...rest] = process.argv.slice(2)
if (command === 'consumer') {
  const [row, size, seconds, target] = rest
  await consumer(row, Number(size), Number(seconds), target)
} else if (command === 'echo') {
  const [row, , , target] = rest
  await echo(row, target)
} else {
  const [size, seconds, capacity] = rest.map(Number)
  if (command.includes('channel') && typeof Channel !== 'function') {
    console.log(JSON.stringify({ unavailable: true }))
  } else {
    const result = command.startsWith('pingpong-') ? await pingpong(command, seconds, capacity) : await oneWay(command, size, seconds, capacity)
    console.log(JSON.stringify(result))
    process.exit(0)
  }
}
