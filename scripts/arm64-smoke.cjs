// Smoke test for a non-native build, run by scripts/arm64.sh under
// qemu-user with the arm64 Node: loads the addon through the package's
// loader and checks, step by step, what matters across processes. Every
// step prints a line; the first failure throws and exits non-zero.
//
//   1. the loader picked native/posix-shm.linux-<arch>-gnu.node
//   2. low level: shmOpen, shmFtruncate, two mmaps of one object, munmap
//      (which detaches), fstat, shmClose, shmUnlink
//   3. SharedMemory.create by name; a second process opens it by name,
//      reads what this one wrote and writes back
//   4. wait/notify across the two processes, both ways: the waiter blocks
//      (sync here, waitAsync there) on an unchanged word, and the other side
//      calls notify until it reports one waiter woken; the wait must return
//      'ok' (not 'not-equal', not 'timed-out'). No sleep synchronizes.
//   5. copy mode: a third process started with POSIX_SHM_NO_EXTERNAL_BUFFERS=1
//      opens the object, reads and writes through read()/write(), and
//      `.buffer` throws ERR_SHM_NO_EXTERNAL_BUFFERS
//
// Children are started with process.execPath (scripts/arm64.sh points it at
// a wrapper that runs the arm64 Node under qemu). ARM64_SMOKE_ARCH (default
// arm64) is the process.arch expected; set it to x64 to try the script on
// the host's Node.
'use strict'
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')

const root = path.join(__dirname, '..')
const shm = require(path.join(root, 'dist'))
const { SharedMemory, ShmError, mmap, munmap, shmOpen, shmFtruncate, shmClose, shmUnlink, fstat } = shm

const WAIT_MS = 120_000 // a safety net only: qemu starts a Node in seconds
const PARENT_TEXT = 'written by the parent'
const CHILD_TEXT = 'written by the child'
const COPY_TEXT = 'written in copy mode'
const who = process.argv[2] || 'main'

function step(message) {
  console.log(`[${who} ${process.pid}] ${message}`)
}

// Calls notify on the word until it reports a woken waiter. The pause
// between calls only spaces them out: the handshake is the woken count.
function notifyUntilWoken(memory, byteOffset) {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (let calls = 1; ; calls++) {
    const woken = memory.notify(byteOffset)
    if (woken > 0) return { woken, calls }
    Atomics.wait(pause, 0, 0, 2)
  }
}

async function peer(name) {
  step(`node ${process.version}, arch ${process.arch}`)
  const memory = SharedMemory.open(name)
  const seen = memory.read(64, PARENT_TEXT.length).toString()
  assert.equal(seen, PARENT_TEXT)
  step(`opened /${name} by name, read "${seen}"`)
  memory.buffer.write(CHILD_TEXT, 128)
  step(`wrote "${CHILD_TEXT}" through .buffer`)
  const { woken, calls } = notifyUntilWoken(memory, 0)
  step(`notify(0) woke ${woken} waiter (after ${calls} call${calls === 1 ? '' : 's'})`)
  const result = await memory.waitAsync(8, 0, WAIT_MS)
  assert.equal(result, 'ok', `waitAsync(8) returned ${result}`)
  step(`waitAsync(8) woken by the parent: ${result}`)
  memory.close()
}

function copyPeer(name) {
  step(`node ${process.version}, arch ${process.arch}, POSIX_SHM_NO_EXTERNAL_BUFFERS=${process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS}`)
  assert.equal(SharedMemory.zeroCopy, false, 'SharedMemory.zeroCopy should be false in copy mode')
  const memory = SharedMemory.open(name)
  const seen = memory.read(64, PARENT_TEXT.length).toString()
  assert.equal(seen, PARENT_TEXT)
  step(`copy mode: opened /${name}, read() gives "${seen}"`)
  assert.throws(() => memory.buffer, (error) => error instanceof ShmError && error.code === 'ERR_SHM_NO_EXTERNAL_BUFFERS')
  step('copy mode: .buffer throws ERR_SHM_NO_EXTERNAL_BUFFERS')
  memory.write(COPY_TEXT, 256)
  const before = memory.atomicAdd(16, 5)
  step(`copy mode: write() done, atomicAdd(16, 5) saw ${before}`)
  memory.close()
}

function run(args, env) {
  const child = spawn(process.execPath, [__filename, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env })
  const exited = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  return { child, exited }
}

async function main() {
  const arch = process.env.ARM64_SMOKE_ARCH || 'arm64'
  step(`node ${process.version}, arch ${process.arch}, execPath ${process.execPath}`)
  assert.equal(process.arch, arch, `expected process.arch ${arch}`)

  // 1. The loader.
  const expected = path.join(root, 'native', `posix-shm.linux-${arch}-gnu.node`)
  const loaded = Object.keys(require.cache).filter((file) => file.endsWith('.node'))
  assert.deepEqual(loaded, [expected], `loaded ${loaded.join(', ') || 'no addon'}`)
  step(`loader picked ${path.relative(root, expected)}`)

  // 2. Low level.
  const low = `posix-shm-example-arm64-low-${process.pid}`
  const fd = shmOpen(low, { openFlags: ['create', 'exclusive', 'read-write'], permissions: ['read-user', 'write-user'] })
  try {
    shmFtruncate(fd, 8192)
    assert.equal(fstat(fd).size, 8192)
    const first = mmap(8192, ['read', 'write'], fd)
    const second = mmap(4096, ['read'], fd, 4096)
    new Int32Array(first)[1024] = 0x12345678
    assert.equal(new Int32Array(second)[0], 0x12345678)
    munmap(first)
    assert.equal(first.byteLength, 0)
    assert.equal(new Int32Array(second)[0], 0x12345678)
    munmap(second)
    assert.equal(second.byteLength, 0)
    step('shmOpen, shmFtruncate, fstat, two mmaps of one object (offset 4096) agree, munmap detaches')
    // A shrink cuts the second page away: a wait on it fails with EFAULT
    // (the SIGBUS handler recognises arm64's faulting load), and a wait
    // on the first page still works.
    const cut = mmap(8192, ['read', 'write'], fd)
    shmFtruncate(fd, 4096)
    assert.throws(() => shm.wait(new Int32Array(cut, 4096, 1), 0, 0, 1000), { code: 'EFAULT', syscall: 'futex' })
    assert.equal(shm.wait(new Int32Array(cut, 0, 1), 0, 1, 1000), 'not-equal')
    munmap(cut)
    step('after a shrink, wait() on the cut page fails with EFAULT; the first page still waits')
  } finally {
    shmClose(fd)
    shmUnlink(low)
  }

  // 3 and 4. Two processes.
  const name = `posix-shm-example-arm64-${process.pid}`
  const memory = SharedMemory.create(name, 4096)
  try {
    memory.buffer.write(PARENT_TEXT, 64)
    step(`SharedMemory.create /${name}, wrote "${PARENT_TEXT}"; starting the peer`)
    const peerRun = run(['peer', name], process.env)
    const result = memory.wait(0, 0, WAIT_MS)
    assert.equal(result, 'ok', `wait(0) returned ${result}`)
    step(`wait(0) woken by the peer: ${result}`)
    const reply = memory.buffer.toString('utf8', 128, 128 + CHILD_TEXT.length)
    assert.equal(reply, CHILD_TEXT)
    step(`the peer's write is here: "${reply}"`)
    const { woken, calls } = notifyUntilWoken(memory, 8)
    step(`notify(8) woke ${woken} waiter (after ${calls} call${calls === 1 ? '' : 's'})`)
    const peerExit = await peerRun.exited
    assert.deepEqual(peerExit, { code: 0, signal: null }, 'the peer failed')
    step('the peer exited 0')

    // 5. Copy mode.
    const copyRun = run(['copy', name], { ...process.env, POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' })
    const copyExit = await copyRun.exited
    assert.deepEqual(copyExit, { code: 0, signal: null }, 'the copy-mode child failed')
    assert.equal(memory.buffer.toString('utf8', 256, 256 + COPY_TEXT.length), COPY_TEXT)
    assert.equal(memory.atomicLoad(16), 5)
    step(`the copy-mode child exited 0; its write and atomicAdd are here`)
  } finally {
    memory.close()
    memory.unlink()
  }
  step('all steps passed')
}

const roles = { main, peer: () => peer(process.argv[3]), copy: () => copyPeer(process.argv[3]) }
Promise.resolve()
  .then(roles[who])
  .catch((error) => {
    console.error(`[${who} ${process.pid}] FAILED:`, error)
    process.exit(1)
  })
