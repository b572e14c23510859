// A Channel between Node and a peer in another language: the Python program
// __test__/fixtures/channel_peer.py, written from CHANNEL-LAYOUT.md alone
// with Python's standard library (mmap, struct, fcntl, ctypes), is one end
// and Node the other, each way, 10,000 messages with every byte checked.

import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Channel } from 'posix-shm'
import { linuxOnly, removeQuietly, ROOT, uniqueName, type ChildResult } from './helpers'

const PEER = join(ROOT, '__test__', 'fixtures', 'channel_peer.py')
const COUNT = 10_000
/** The smallest ring: messages up to 3,000 bytes wrap it and pad it often. */
const CAPACITY = 4096

// The peer needs a 64-bit Linux python3 (it maps /dev/shm/<name>, takes OFD
// locks and calls futex); any python3 there will do (3.7 or later).
const probe = spawnSync('python3', ['-c', 'import sys, struct; sys.exit(0 if struct.calcsize("P") == 8 and sys.version_info >= (3, 7) else 1)'], { encoding: 'utf8' })
const noPython =
  probe.error !== undefined ? `python3 cannot be run (${probe.error.message})` : probe.status !== 0 ? `python3 is older than 3.7 or not a 64-bit build (${probe.stderr.trim()})` : undefined
if (noPython !== undefined) console.log(`skipped: the Channel tests with a Python peer: ${noPython}`)
const pythonTest = noPython === undefined ? linuxOnly('the Python peer maps /dev/shm, takes OFD locks and calls futex', test.serial) : test.skip

/**
 * Message number `index` of `length` bytes, as channel_peer.py documents
 * it: byte j is (index * 31 + j) & 0xff, then, when length >= 8, bytes 0 to
 * 7 are replaced by index as a little-endian u64.
 */
function pattern(index: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length)
  const start = (index * 31) & 0xff
  for (let j = 0; j < length; j++) bytes[j] = (start + j) & 0xff
  if (length >= 8) bytes.writeBigUInt64LE(BigInt(index), 0)
  return bytes
}

/**
 * The sizes channel_peer.py's sender picks (its docstring): 0, then
 * capacity - 8, then 1, then xorshift32 from `seed`, every 97th message
 * drawn up to capacity - 8 and the rest up to min(capacity - 8, 3000).
 */
function sizes(seed: number, capacity: number): (index: number) => number {
  let x = seed >>> 0 || 1
  const largest = capacity - 8
  const usual = Math.min(largest, 3000)
  return (index) => {
    if (index === 0) return 0
    if (index === 1) return largest
    if (index === 2) return 1
    x = (x ^ (x << 13)) >>> 0
    x = (x ^ (x >>> 17)) >>> 0
    x = (x ^ (x << 5)) >>> 0
    return index % 97 === 96 ? x % (largest + 1) : x % (usual + 1)
  }
}

interface Peer {
  pid: number
  kill(signal: NodeJS.Signals): void
  /** Settles when the process has exited and its output is read. */
  done: Promise<ChildResult>
}

/** Starts channel_peer.py with `args`; its exit is awaited through `done`. */
function startPeer(args: string[]): Peer {
  const child = spawn('python3', [PEER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { pid: child.pid ?? -1, kill: (signal) => child.kill(signal), done }
}

/** The first difference between a received message and the expected one, or undefined. */
function mismatch(index: number, got: Buffer, expectedLength: number): string | undefined {
  if (got.length !== expectedLength) return `message ${index}: ${got.length} bytes, expected ${expectedLength}`
  const expected = pattern(index, expectedLength)
  if (got.equals(expected)) return undefined
  let j = 0
  while (got[j] === expected[j]) j++
  return `message ${index} (${got.length} bytes) differs at byte ${j}: got ${got[j]}, expected ${expected[j]}`
}

pythonTest('the Python peer passes its own selftest (Python to Python, a killed sender, corrupt records)', async (t) => {
  const result = await startPeer(['selftest']).done
  t.is(result.code, 0, `${result.stdout}\n${result.stderr}`)
  t.regex(result.stdout, /selftest passed/)
})

pythonTest('a Python sender sends 10,000 messages of random sizes through a 4 KiB ring; Node receives every byte as sent, then null', async (t) => {
  const name = uniqueName('chpy_recv')
  t.teardown(() => removeQuietly(name))
  const ch = Channel.create(name, { capacity: CAPACITY })
  const seed = 12345
  const sender = startPeer(['send', name, String(COUNT), '--seed', String(seed)])
  const sizeOf = sizes(seed, CAPACITY)
  let received = 0
  let firstMismatch: string | undefined
  let failure: unknown
  try {
    for (;;) {
      const message = ch.receive({ timeout: 20_000 })
      if (message === null) break
      const wrong = mismatch(received, message, sizeOf(received))
      if (wrong !== undefined && firstMismatch === undefined) firstMismatch = wrong
      received++
    }
  } catch (error) {
    failure = error
  }
  const exit = await sender.done
  t.is(failure, undefined, `receive threw after ${received} messages; the Python sender: ${exit.stderr}`)
  t.is(exit.code, 0, exit.stderr)
  t.is(firstMismatch, undefined)
  t.is(received, COUNT)
  ch.close()
  ch.unlink()
})

pythonTest('Node sends 10,000 messages of random sizes through a 4 KiB ring, then end(); a Python receiver checks every byte and the end and exits 0', async (t) => {
  const name = uniqueName('chpy_send')
  t.teardown(() => removeQuietly(name))
  const ch = Channel.create(name, { capacity: CAPACITY })
  const receiver = startPeer(['receive', name, String(COUNT)])
  const sizeOf = sizes(777, CAPACITY)
  let sent = 0
  let failure: unknown
  try {
    for (; sent < COUNT; sent++) ch.send(pattern(sent, sizeOf(sent)))
    ch.end()
  } catch (error) {
    failure = error
  }
  const exit = await receiver.done
  t.is(failure, undefined, `send threw after ${sent} messages; the Python receiver: ${exit.stderr}`)
  t.is(exit.code, 0, exit.stderr)
  t.regex(exit.stdout, new RegExp(`received ${COUNT} messages`))
  ch.close()
  ch.unlink()
})

pythonTest('a Python sender killed with SIGKILL mid-way: Node receives every message it published, then ERR_SHM_PEER_GONE within a second, before the child is reaped', async (t) => {
  const name = uniqueName('chpy_dead')
  t.teardown(() => removeQuietly(name))
  const ch = Channel.create(name, { capacity: CAPACITY })
  const seed = 99
  const sender = startPeer(['send', name, String(100 * COUNT), '--seed', String(seed)])
  const sizeOf = sizes(seed, CAPACITY)
  let received = 0
  let firstMismatch: string | undefined
  const take = (): void => {
    const message = ch.receive({ timeout: 20_000 })
    if (message === null) throw new Error(`null after ${received} messages: the sender never ended`)
    const wrong = mismatch(received, message, sizeOf(received))
    if (wrong !== undefined && firstMismatch === undefined) firstMismatch = wrong
    received++
  }
  for (let i = 0; i < 1000; i++) take()
  sender.kill('SIGKILL')
  // Synchronous from here: the event loop cannot reap the child until the
  // loop ends, so the sender is a zombie while Node tells that it died.
  const killedAt = Date.now()
  const error = t.throws(() => {
    for (;;) take()
  }, { code: 'ERR_SHM_PEER_GONE' })
  const tookMs = Date.now() - killedAt
  t.log(`received ${received} messages, ${received - 1000} after the kill; ERR_SHM_PEER_GONE after ${tookMs} ms`)
  t.truthy(error)
  t.true(tookMs < 2000, `${tookMs} ms`)
  t.is(firstMismatch, undefined)
  const exit = await sender.done
  t.is(exit.signal, 'SIGKILL')
  ch.close()
  ch.unlink()
})
