// One measurement per process: `node bench/workloads.mjs WORKLOAD IMPL [SIZE]`
// prints one JSON object. bench/run.mjs starts a fresh process for every
// repetition of every row, so no row inherits another's heap or mappings.

import { fork } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, unlinkSync, writeSync, constants as fsConstants } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SharedMemory, mmap, munmap, notify, shmClose, shmFtruncate, shmOpen, shmUnlink, wait, waitAsync } from 'posix-shm'

import { peerCrossProcess, peerCycles, peerMapFresh } from './peer-workloads.mjs'

const [workload, impl, sizeArg] = process.argv.slice(2)
const size = Number(sizeArg)
const here = fileURLToPath(import.meta.url)
const now = () => Number(process.hrtime.bigint()) / 1e3 // microseconds
const shmMappings = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(' /dev/shm/') || l.includes(' /memfd:posix-shm')).length
const rssMiB = () => Number(readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024
const prefix = `psm_bench_${process.pid}_`
const print = (result) => console.log(JSON.stringify(result))

/** The cycle of issue #6: exclusive create, ftruncate 4096, map, touch one byte, unmap, close, unlink. */
const cycles = {
  'low-level': (i) => {
    const name = prefix + i
    const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
    shmFtruncate(fd, 4096)
    const mapped = mmap(4096, ['read', 'write'], fd)
    new Uint8Array(mapped)[0] = 1
    munmap(mapped)
    shmClose(fd)
    shmUnlink(name)
  },
  SharedMemory: (i) => {
    const shm = SharedMemory.create(prefix + i, 4096)
    shm.buffer[0] = 1
    shm.close()
    shm.unlink()
  },
  'fs on /dev/shm': (i) => {
    // No mapping in fs: the nearest thing is a one-byte write and read.
    const path = `/dev/shm/${prefix}${i}`
    const fd = openSync(path, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_RDWR, 0o600)
    ftruncateSync(fd, 4096)
    writeSync(fd, Buffer.from([1]), 0, 1, 0)
    readSync(fd, Buffer.alloc(1), 0, 1, 0)
    closeSync(fd)
    unlinkSync(path)
  },
}

// The npm peers' rows (bench/run.mjs --peers): their own cycle, the same
// lifecycle and scale loops.
Object.assign(cycles, peerCycles)

function lifecycle(count) {
  const cycle = cycles[impl]
  const startMappings = shmMappings()
  for (let i = 0; i < Math.min(1000, count); i++) cycle(`warm${i}`)
  const start = now()
  for (let i = 0; i < count; i++) cycle(i)
  const usPerCycle = (now() - start) / count
  return { usPerCycle, mappingsLeft: shmMappings() - startMappings }
}

const SCALE_WARM_UP = 5000

async function scale(counts) {
  const cycle = cycles[impl]
  const startMappings = shmMappings()
  // The event loop turns every 1,000 cycles outside the timed stretches,
  // as in any program that runs this long: a closed posix-shm mapping
  // keeps its address range until Node has collected its buffer (see the
  // README's safety notes), which a loop that never yields does not allow,
  // and 100,000 of them would reach the mapping budget.
  const turn = (i) => (i % 1000 === 999 ? new Promise(setImmediate) : undefined)
  // Warm-up cycles first, so that the first mark measures the code after
  // the JIT has compiled it, not the compiling: after 1,000 (as in
  // lifecycle) the first mark still ran a third slower than the later ones
  // here, after 5,000 it did not. The marks count objects made after these.
  for (let i = 0; i < SCALE_WARM_UP; i++) {
    cycle(`warm${i}`)
    await turn(i)
  }
  const rows = []
  let made = 0
  for (const target of counts) {
    // Time the last 1,000 cycles before each mark, after `target` objects made.
    while (made < target - 1000) {
      cycle(made)
      await turn(made++)
    }
    await new Promise(setImmediate)
    const start = now()
    while (made < target) cycle(made++)
    rows.push({ objects: target, usPerCycle: (now() - start) / 1000, mappings: shmMappings() - startMappings, rssMiB: rssMiB() })
  }
  return { rows }
}

/** A fresh object of `bytes`, made by `impl`, mapped read-write and unlinked. */
function freshMapping(bytes) {
  if (impl in peerCycles) {
    const { buffer, release } = peerMapFresh(impl, bytes)
    return { mapped: buffer, release }
  }
  if (impl === 'ArrayBuffer') {
    // Not shared memory: Node's own buffer of the same size, for what V8
    // charges any ArrayBuffer this large, and for the copy speed of
    // ordinary memory.
    return { mapped: Buffer.from(new ArrayBuffer(bytes)), release: () => {} }
  }
  if (impl === 'SharedMemory') {
    const shm = SharedMemory.anonymous(bytes)
    return { mapped: shm.buffer, release: () => shm.close() }
  }
  const name = `${prefix}bulk`
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  shmUnlink(name)
  shmFtruncate(fd, bytes)
  const mapped = Buffer.from(mmap(bytes, ['read', 'write'], fd))
  return {
    mapped,
    release: () => {
      munmap(mapped)
      shmClose(fd)
    },
  }
}

/**
 * Bulk: copy a buffer of `bytes` into a fresh object (its pages are
 * allocated on the way, as the kernel does for fs), then copy it all back
 * out. Every implementation moves the same bytes between the same kind of
 * JavaScript buffers, so the rows compare like with like.
 */
function bulk(bytes) {
  const source = Buffer.alloc(bytes, 0xab)
  const target = Buffer.alloc(bytes)
  if (impl === 'fs on /dev/shm') {
    const path = `/dev/shm/${prefix}bulk`
    const fd = openSync(path, fsConstants.O_CREAT | fsConstants.O_RDWR, 0o600)
    let start = now()
    for (let at = 0; at < bytes; at += 1 << 20) writeSync(fd, source, at, Math.min(1 << 20, bytes - at), at)
    const writeUs = now() - start
    start = now()
    for (let at = 0; at < bytes; at += 1 << 20) readSync(fd, target, at, Math.min(1 << 20, bytes - at), at)
    const readUs = now() - start
    closeSync(fd)
    unlinkSync(path)
    return { mapMs: null, writeGBs: bytes / writeUs / 1e3, readGBs: bytes / readUs / 1e3 }
  }
  // Once small first, so the map time is of mapping, not of the first
  // call through this code (the C row has nothing to warm up).
  freshMapping(4096).release()
  const mapStart = now()
  const { mapped, release } = freshMapping(bytes)
  const mapMs = (now() - mapStart) / 1e3
  let start = now()
  mapped.set(source)
  const writeUs = now() - start
  start = now()
  target.set(mapped)
  const readUs = now() - start
  if (!target.equals(source)) throw new Error('bulk: the bytes read back differ')
  release()
  return { mapMs, writeGBs: bytes / writeUs / 1e3, readGBs: bytes / readUs / 1e3 }
}

/** A child that receives rounds and acknowledges each, checking its bytes. */
async function streamChild(name, kind, region) {
  const expected = Buffer.alloc(region, 0x5a)
  if (kind === 'posix-shm') {
    const shm = SharedMemory.open(name)
    process.on('message', (round) => process.send(shm.buffer.equals(expected) ? round : -1))
    process.on('disconnect', () => shm.close())
  } else if (kind === 'IPC') {
    process.on('message', ({ round, data }) => process.send(Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(expected) ? round : -1))
  } else {
    const socket = connect(name)
    let got = 0
    let chunks = []
    socket.on('data', (chunk) => {
      chunks.push(chunk)
      got += chunk.length
      if (got >= region) {
        const ok = Buffer.concat(chunks).subarray(0, region).equals(expected)
        chunks = []
        got = 0
        socket.write(ok ? 'k' : 'x')
      }
    })
  }
  process.send('ready')
}

async function stream(total) {
  const region = Number(process.env.REGION ?? 64 << 20)
  if (impl in peerCycles) return peerCrossProcess(impl, total, region)
  const rounds = Math.max(1, Math.round(total / region))
  const data = Buffer.alloc(region, 0x5a)
  const childArgs = (name, kind) => ['stream-child', kind, String(region), name]
  let start
  if (impl === 'posix-shm') {
    const name = `${prefix}stream`
    const shm = SharedMemory.create(name, region)
    const child = fork(here, childArgs(name, 'posix-shm'))
    await once(child, 'message')
    start = now()
    for (let round = 0; round < rounds; round++) {
      shm.buffer.set(data)
      child.send(round)
      const [ack] = await once(child, 'message')
      if (ack !== round) throw new Error('bad round')
    }
    const us = now() - start
    child.disconnect()
    shm.unlink()
    shm.close()
    return { GBs: (rounds * region) / us / 1e3 }
  }
  if (impl === 'IPC') {
    const child = fork(here, childArgs('', 'IPC'), { serialization: 'advanced' })
    await once(child, 'message')
    start = now()
    for (let round = 0; round < rounds; round++) {
      child.send({ round, data })
      const [ack] = await once(child, 'message')
      if (ack !== round) throw new Error('bad round')
    }
    const us = now() - start
    child.disconnect()
    return { GBs: (rounds * region) / us / 1e3 }
  }
  // A Unix-domain socket carrying the same bytes.
  const path = join(tmpdir(), `${prefix}stream.sock`)
  const server = createServer()
  await new Promise((resolve) => server.listen(path, resolve))
  const child = fork(here, childArgs(path, 'socket'))
  const [socket] = await once(server, 'connection')
  await once(child, 'message')
  start = now()
  for (let round = 0; round < rounds; round++) {
    socket.write(data)
    const [ack] = await once(socket, 'data')
    if (ack.toString() !== 'k') throw new Error('bad round')
  }
  const us = now() - start
  child.kill()
  server.close()
  return { GBs: (rounds * region) / us / 1e3 }
}

async function latencyChild(kind, name) {
  if (kind === 'IPC') {
    process.on('message', (n) => process.send(n))
  } else if (kind === 'socket') {
    const socket = connect(name)
    socket.on('data', (chunk) => socket.write(chunk))
  } else {
    const shm = SharedMemory.open(name)
    const word = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
    process.send('ready')
    for (;;) {
      for (let v = Atomics.load(word, 0); v % 2 === 0; v = Atomics.load(word, 0)) {
        if (v < 0) return process.exit(0)
        if (kind === 'async') await waitAsync(word, 0, v)
        else wait(word, 0, v)
      }
      Atomics.add(word, 0, 1)
      notify(word, 0)
    }
  }
  if (kind !== 'socket') return
  process.send('ready')
}

async function latency(rounds) {
  if (impl === 'IPC') {
    const child = fork(here, ['latency-child', 'IPC'])
    for (let i = 0; i < 1000; i++) (child.send(i), await once(child, 'message'))
    const start = now()
    for (let i = 0; i < rounds; i++) (child.send(i), await once(child, 'message'))
    const us = (now() - start) / rounds
    child.kill()
    return { usPerRoundTrip: us }
  }
  if (impl === 'Unix socket') {
    const path = join(tmpdir(), `${prefix}latency.sock`)
    const server = createServer()
    await new Promise((resolve) => server.listen(path, resolve))
    const child = fork(here, ['latency-child', 'socket', path])
    const [socket] = await once(server, 'connection')
    socket.setNoDelay(true)
    const one = Buffer.from([1])
    for (let i = 0; i < 1000; i++) (socket.write(one), await once(socket, 'data'))
    const start = now()
    for (let i = 0; i < rounds; i++) (socket.write(one), await once(socket, 'data'))
    const us = (now() - start) / rounds
    child.kill()
    server.close()
    return { usPerRoundTrip: us }
  }
  const mode = impl === 'posix-shm waitAsync' ? 'async' : 'sync'
  const name = `${prefix}latency`
  const shm = SharedMemory.create(name, 4096)
  const word = new Int32Array(shm.buffer.buffer, shm.buffer.byteOffset, 1)
  const child = fork(here, ['latency-child', mode, name])
  await once(child, 'message')
  // The sync rows run a plain loop: an `await` per round would add a
  // promise and a microtask to every round trip, which the sync API has not.
  const turnSync = () => {
    Atomics.add(word, 0, 1)
    notify(word, 0)
    for (let v = Atomics.load(word, 0); v % 2 === 1; v = Atomics.load(word, 0)) wait(word, 0, v)
  }
  const turnAsync = async () => {
    Atomics.add(word, 0, 1)
    notify(word, 0)
    for (let v = Atomics.load(word, 0); v % 2 === 1; v = Atomics.load(word, 0)) await waitAsync(word, 0, v)
  }
  const run = async (count) => {
    if (mode === 'async') for (let i = 0; i < count; i++) await turnAsync()
    else for (let i = 0; i < count; i++) turnSync()
  }
  await run(1000)
  const start = now()
  await run(rounds)
  const us = (now() - start) / rounds
  Atomics.store(word, 0, -2)
  notify(word, 0)
  await once(child, 'exit')
  shm.unlink()
  shm.close()
  return { usPerRoundTrip: us }
}

const workloads = { lifecycle, scale, bulk, stream, latency }
if (workload === 'stream-child') await streamChild(process.argv[5], impl, Number(sizeArg))
else if (workload === 'latency-child') await latencyChild(impl, sizeArg)
else if (workload === 'scale') print(await scale(sizeArg.split(',').map(Number)))
else print(await workloads[workload](size))
