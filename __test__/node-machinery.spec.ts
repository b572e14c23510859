// Node's own native code keeps the raw address of a buffer it works on:
// thread-pool jobs (crypto, zlib, fs) and queued socket writes use it after
// JavaScript has closed the mapping. Each case runs in a fresh process, so
// a crash shows as a signal, and checks that no byte crosses from one
// object to another: the closed range stays reserved until Node lets go of
// it, and late accesses land in a private placeholder.

import test from 'ava'
import { type ChildResult, linuxOnly, runNode } from './helpers'

function ok(t: { is: (a: unknown, b: unknown, m?: string) => void }, child: ChildResult, expected: string): void {
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout.trim(), expected, child.stderr)
}

test('crypto.randomFill on a mapping closed mid-flight neither crashes nor writes into a newer mapping', async (t) => {
  const child = await runNode(`
    const crypto = require('crypto')
    const { SharedMemory } = require('posix-shm')
    const size = 32 * 1024 * 1024
    const a = SharedMemory.anonymous(size)
    const later = []
    crypto.randomFill(a.buffer, (error) => {
      if (error) throw error
      // Every mapping made while the job ran is still all zeros.
      console.log('dirty ' + later.filter((s) => s.buffer.some((byte) => byte !== 0)).length)
    })
    a.close()
    // New mappings of the same size, where the kernel would reuse the hole.
    for (let i = 0; i < 8; i++) later.push(SharedMemory.anonymous(size))
  `)
  ok(t, child, 'dirty 0')
})

// Node's zlib re-reads the input's length between chunks and fails when
// the buffer was detached meanwhile, for any ArrayBuffer: Node 20 aborts
// (a CHECK in node_zlib.cc), Node 22 and later throw an uncaught
// RangeError from zlib's own callback. With a plain ArrayBuffer detached
// mid-deflate (structuredClone with a transfer list) Node 20 does worse:
// the thread pool reads freed memory, SIGSEGV. A mapping closed
// mid-deflate may meet Node's failure, but never a segfault, and no newer
// mapping is touched.
test('zlib.deflate on a mapping closed mid-flight never segfaults and never touches a newer mapping', async (t) => {
  const child = await runNode(`
    const zlib = require('zlib')
    const { SharedMemory } = require('posix-shm')
    const size = 32 * 1024 * 1024
    const a = SharedMemory.anonymous(size)
    const later = []
    const dirty = () => later.filter((s) => s.buffer.some((b) => b !== 0)).length
    zlib.deflate(a.buffer, (error) => console.log((error ? error.code : 'deflated') + ' dirty ' + dirty()))
    a.close()
    for (let i = 0; i < 8; i++) later.push(SharedMemory.anonymous(size))
  `)
  t.log(`ended with ${child.signal ?? `exit ${child.code}`}: ${child.stdout.trim()}`)
  t.not(child.signal, 'SIGSEGV', child.stderr)
  t.not(child.signal, 'SIGBUS', child.stderr)
  if (child.signal === 'SIGABRT') t.regex(child.stderr, /node_zlib\.cc/)
  else if (child.code === 1) t.regex(child.stderr, /input buffer is out of bounds/)
  else t.regex(child.stdout, /dirty 0/, child.stderr)
})

linuxOnly('it uses the Linux mkfifo + O_RDWR FIFO trick')('a pending fs.read into a closed mapping writes into a placeholder, never into a newer mapping', async (t) => {
  const child = await runNode(`
    const fs = require('fs')
    const os = require('os')
    const path = require('path')
    const { execFileSync } = require('child_process')
    const { SharedMemory } = require('posix-shm')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'psm-fifo-'))
    const fifo = path.join(dir, 'f')
    execFileSync('mkfifo', [fifo])
    // O_RDWR on a FIFO does not block on Linux; the read then waits for data.
    const fd = fs.openSync(fifo, 'r+')
    const size = 1024 * 1024
    const a = SharedMemory.anonymous(size)
    fs.read(fd, new Uint8Array(a.buffer.buffer, a.buffer.byteOffset, size), 0, size, null, (error, n) => {
      if (error) throw error
      const leaked = later.filter((s) => s.buffer.indexOf('SECRET-OF-A') !== -1).length
      console.log('read ' + n + ' leaked ' + leaked)
      fs.closeSync(fd)
      fs.rmSync(dir, { recursive: true })
    })
    // Let the read reach the thread pool and block there.
    setImmediate(() => {
      a.close()
      globalThis.later = []
      for (let i = 0; i < 16; i++) later.push(SharedMemory.anonymous(size))
      fs.writeFileSync(fifo, 'SECRET-OF-A')
    })
  `)
  ok(t, child, 'read 11 leaked 0')
})

test('a socket write queued behind a slow reader never sends the bytes of a newer mapping', async (t) => {
  const child = await runNode(`
    const net = require('net')
    const { SharedMemory } = require('posix-shm')
    const size = 16 * 1024 * 1024
    const server = net.createServer((socket) => {
      socket.pause()
      let received = 0
      let secret = 0
      socket.on('data', (chunk) => {
        received += chunk.length
        for (const byte of chunk) if (byte === 0x53) secret++
      })
      socket.on('end', () => {
        console.log('received ' + received + ' secret ' + secret)
        server.close()
      })
      clientReady.then(() => socket.resume())
    })
    let ready
    const clientReady = new Promise((resolve) => (ready = resolve))
    server.listen(0, '127.0.0.1', () => {
      const client = net.connect(server.address().port, '127.0.0.1', () => {
        const a = SharedMemory.anonymous(size)
        a.buffer.fill(0x41)
        // More than the socket buffers take: the rest waits in libuv.
        client.write(a.buffer, () => client.end())
        a.close()
        const later = []
        for (let i = 0; i < 8; i++) {
          const b = SharedMemory.anonymous(size)
          b.buffer.fill(0x53) // 'S', the secret
          later.push(b)
        }
        globalThis.keep = later
        ready()
      })
    })
  `)
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  const match = /received (\d+) secret (\d+)/.exec(child.stdout)
  t.truthy(match, child.stdout + child.stderr)
  t.is(Number(match![1]), 16 * 1024 * 1024)
  t.is(Number(match![2]), 0)
})

linuxOnly('it uses the Linux mkfifo + O_RDWR FIFO trick')('a closed mapping keeps its placeholder only until Node lets go of the buffer, then gives the range back', async (t) => {
  const child = await runNode(
    `
    const fs = require('fs')
    const os = require('os')
    const path = require('path')
    const { execFileSync } = require('child_process')
    const { SharedMemory } = require('posix-shm')
    const { native } = require('./dist/native')
    const settle = async (done, rounds = 500) => {
      for (let i = 0; i < rounds && !done(); i++) {
        gc()
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    ;(async () => {
      // 1,000 closes with nothing pending: every range comes back.
      for (let i = 0; i < 1000; i++) SharedMemory.anonymous(65536).close()
      await settle(() => native.reservedRangeCount() === 0)
      const afterChurn = native.reservedRangeCount()
      // A read pending in the thread pool holds its buffer: the range stays
      // reserved while it is pending, and comes back after it completes.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'psm-fifo-'))
      const fifo = path.join(dir, 'f')
      execFileSync('mkfifo', [fifo])
      const fd = fs.openSync(fifo, 'r+')
      const a = SharedMemory.anonymous(65536)
      const done = new Promise((resolve) => fs.read(fd, new Uint8Array(a.buffer.buffer), 0, 16, null, () => resolve()))
      await new Promise((resolve) => setImmediate(resolve))
      a.close()
      await settle(() => false, 20)
      const whilePending = native.reservedRangeCount()
      fs.writeFileSync(fifo, 'x')
      await done
      fs.closeSync(fd)
      fs.rmSync(dir, { recursive: true })
      await settle(() => native.reservedRangeCount() === 0)
      console.log(JSON.stringify({ afterChurn, whilePending, afterRead: native.reservedRangeCount() }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), { afterChurn: 0, whilePending: 1, afterRead: 0 })
})

const major = Number(process.versions.node.split('.')[0])
if (major < 21) console.log(`node-machinery.spec: Node ${process.versions.node} has no ArrayBuffer.prototype.transfer; the transfer-from-a-worker test runs on Node 22 and later`)
;(major < 21 ? test.skip : test)('a mapping moved out of a worker by transfer() from another realm stays valid after the worker exits', async (t) => {
  const child = await runNode(
    `
    const { Worker } = require('worker_threads')
    const { SharedMemory } = require('posix-shm')
    const worker = new Worker(\`
      const { parentPort } = require('worker_threads')
      const vm = require('vm')
      const { SharedMemory } = require(process.cwd())
      const shm = SharedMemory.anonymous(1 << 20)
      shm.buffer.write('still here', 0)
      // The realm that loaded posix-shm refuses transfer() of a mapping;
      // a fresh realm's transfer() does not know of it.
      const transfer = vm.runInNewContext('ArrayBuffer.prototype.transfer')
      const moved = transfer.call(shm.buffer.buffer)
      parentPort.postMessage(moved, [moved])
    \`, { eval: true })
    let moved
    worker.on('message', (message) => (moved = message))
    worker.on('exit', async () => {
      for (let i = 0; i < 5; i++) {
        gc()
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      // Where a freed range would be reused.
      const others = []
      for (let i = 0; i < 8; i++) others.push(SharedMemory.anonymous(1 << 20))
      others.forEach((s) => s.buffer.fill(0x53))
      console.log(Buffer.from(moved, 0, 10).toString())
    })
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout.trim(), 'still here')
})

test('a worker that drops its mappings and exits before their finalizers run leaves no range behind', async (t) => {
  // Collected but not yet finalized at the worker's exit: such a buffer
  // must not be mistaken for one moved elsewhere, and kept for good.
  const child = await runNode(
    `
    const { Worker } = require('worker_threads')
    const { native } = require('./dist/native')
    const worker = new Worker(\`
      const { mmap, shmClose, shmFtruncate, shmOpenAnonymous } = require(process.cwd())
      const fd = shmOpenAnonymous()
      shmFtruncate(fd, 1 << 20)
      for (let i = 0; i < 10; i++) new Uint8Array(mmap(1 << 20, ['read', 'write'], fd)).fill(1)
      shmClose(fd)
      gc()
      process.exit(0)
    \`, { eval: true })
    worker.on('exit', () => console.log(native.reservedRangeCount()))
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout.trim(), '0')
})

// Since Node 24, markAsUntransferable() also makes a buffer impossible to
// detach, and Node-API's detach then ends the process (a failed V8 Check).
// close(), munmap() and a channel's release() leave such a buffer attached
// instead: it shows the private placeholder (zeros) or, for a lent view,
// the ring. Everything is dropped and collected before the exit, because
// Node 26 itself aborts at exit while cleaning up an external buffer
// marked this way that is still alive (src/node/buffers.rs).
test('close, munmap and release of a buffer marked untransferable neither abort nor leave it on the shared pages', async (t) => {
  const child = await runNode(
    `
    const { markAsUntransferable } = require('worker_threads')
    const { SharedMemory, Channel, mmap, munmap, shmOpenAnonymous, shmFtruncate, shmClose } = require('posix-shm')
    const probe = new ArrayBuffer(1)
    markAsUntransferable(probe)
    let stops = false
    if (typeof probe.transfer === 'function') try { probe.transfer() } catch { stops = true }
    const run = () => {
      const out = { stops }
      const plain = SharedMemory.anonymous(4096)
      const plainView = new Uint8Array(plain.buffer.buffer)
      plain.close()
      out.plain = plainView.length
      const shm = SharedMemory.anonymous(1 << 16)
      shm.buffer.fill(7)
      const view = new Uint8Array(shm.buffer.buffer)
      markAsUntransferable(shm.buffer.buffer)
      shm.close()
      out.close = [view.length, view.length > 0 && view.some((byte) => byte !== 0)]
      const fd = shmOpenAnonymous()
      shmFtruncate(fd, 4096)
      const mapped = mmap(4096, ['read', 'write'], fd)
      new Uint8Array(mapped).fill(9)
      markAsUntransferable(mapped)
      munmap(mapped)
      out.munmap = [mapped.byteLength, mapped.byteLength > 0 && new Uint8Array(mapped).some((byte) => byte !== 0)]
      try { munmap(mapped) } catch (error) { out.again = error.code }
      shmClose(fd)
      const sender = Channel.anonymous({ capacity: 4096 })
      const receiver = Channel.fromFd(sender.fd)
      for (const word of ['one', 'two', 'three', 'four']) sender.send(Buffer.from(word))
      const lent = receiver.receiveView()
      markAsUntransferable(lent.buffer)
      receiver.release()
      const next = receiver.receiveView()
      markAsUntransferable(next.buffer)
      out.received = [receiver.receive().toString(), receiver.receiveView().toString()]
      receiver.close()
      sender.close()
      out.views = [lent.length, next.length]
      console.log(JSON.stringify(out))
    }
    run()
    ;(async () => {
      for (let i = 0; i < 5; i++) {
        gc()
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  const out = JSON.parse(child.stdout) as { stops: boolean; plain: number; close: unknown; munmap: unknown; again: string; received: string[]; views: number[] }
  t.is(out.plain, 0, 'an unmarked mapping is detached by close()')
  t.is(out.stops, Number(process.versions.node.split('.')[0]) >= 24, 'markAsUntransferable stops detaching from Node 24 on')
  t.deepEqual(out.close, out.stops ? [1 << 16, false] : [0, false], 'after close: the placeholder, or detached')
  t.deepEqual(out.munmap, out.stops ? [4096, false] : [0, false], 'after munmap: the placeholder, or detached')
  t.is(out.again, 'ERR_INVALID_ARG_VALUE', 'a second munmap finds no live mapping')
  t.deepEqual(out.received, ['three', 'four'], 'the channel went on after each view came back')
  t.deepEqual(out.views, out.stops ? [3, 3] : [0, 0], 'given-back views: still attached (to the ring), or detached')
})
