// Security and racing processes: modes under the umask, an unprivileged
// user kept out, and 8 processes racing to create one name.

import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { SharedMemory, fstat, shmClose, shmOpen } from 'posix-shm'
import { isRoot, linuxOnly, removeQuietly, ROOT, runNode, runScript, uniqueName } from './helpers'

const FIXTURES = join(ROOT, '__test__', 'fixtures')
const ROUNDS = Number(process.env.POSIX_SHM_RACE_ROUNDS ?? 100)

for (const umask of [0o022, 0o077]) {
  test(`under umask ${umask.toString(8).padStart(3, '0')}, a created object's mode is the request less the umask, as fs.openSync gives a file`, async (t) => {
    const name = uniqueName('umask')
    t.teardown(() => removeQuietly(name))
    const child = await runNode(
      `
      const fs = require('fs'), os = require('os'), path = require('path')
      const { SharedMemory, fstat, shmOpen, shmClose, shmUnlink } = require('posix-shm')
      process.umask(${umask})
      const modes = {}
      for (const request of [0o600, 0o644, 0o666, 0o777]) {
        const fd = shmOpen(process.argv[1] + request, { openFlags: ['create', 'exclusive', 'read-write'], permissions: request })
        const file = path.join(os.tmpdir(), 'psm-umask-' + process.pid + '-' + request)
        const ffd = fs.openSync(file, 'wx', request)
        modes[request] = [fstat(fd).mode & 0o777, fs.fstatSync(ffd).mode & 0o777]
        shmClose(fd); shmUnlink(process.argv[1] + request); fs.closeSync(ffd); fs.unlinkSync(file)
      }
      const shm = SharedMemory.create(process.argv[1], 4096)
      modes.default = fstat(shm.fd).mode & 0o777
      shm.unlink(); shm.close()
      console.log(JSON.stringify(modes))
      `,
      { args: [name] },
    )
    t.is(child.code, 0, child.stderr)
    const modes = JSON.parse(child.stdout) as Record<string, number | [number, number]>
    for (const request of [0o600, 0o644, 0o666, 0o777]) {
      const [shmMode, fileMode] = modes[request] as [number, number]
      t.is(shmMode, request & ~umask, `request ${request.toString(8)}`)
      t.is(shmMode, fileMode, 'the same as fs.openSync')
    }
    t.is(modes.default, 0o600 & ~umask, 'never wider than owner-only by default')
  })
}

function nobodyCanRun(): string | undefined {
  if (!isRoot) return 'it needs root to run a process as nobody'
  const probe = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { uid: 65534, gid: 65534 })
  if (probe.status !== 0) return `node cannot run as nobody here (${probe.error?.message ?? probe.stderr})`
  return undefined
}
const noNobody = nobodyCanRun()
if (noNobody !== undefined) console.log(`skipped: the unprivileged-opener test: ${noNobody}`)

;(noNobody === undefined ? linuxOnly('it opens the object through /dev/shm') : test.skip)('an object made 0600 by root cannot be opened by an unprivileged user', async (t) => {
  const name = uniqueName('private')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  shm.write('secret', 0)
  t.is(fstat(shm.fd).mode & 0o777, 0o600 & ~process.umask())
  // shm_open is open(2) on /dev/shm on Linux: the same permission check,
  // without needing the package to be readable by nobody.
  const attempt = (flags: string) =>
    spawnSync(process.execPath, ['-e', `try { require('fs').openSync('/dev/shm/${name}', '${flags}'); console.log('opened') } catch (e) { console.log(e.code) }`], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    }).stdout.trim()
  t.is(attempt('r'), 'EACCES')
  t.is(attempt('r+'), 'EACCES')
  // And once the owner widens it, the same user can.
  const fd = shmOpen(name)
  const { fchmod } = await import('posix-shm')
  fchmod(fd, 0o604)
  shmClose(fd)
  t.is(attempt('r'), 'opened')
})

test(`8 processes race to create one name exclusively, ${ROUNDS} rounds: exactly one wins each round`, async (t) => {
  const control = uniqueName('race')
  using shm = SharedMemory.create(control, 4096)
  t.teardown(() => {
    removeQuietly(control)
    for (let round = 1; round <= ROUNDS; round++) removeQuietly(`${control}_round_${round}`)
  })
  const racers = Array.from({ length: 8 }, () => runScript(join(FIXTURES, 'racer.cjs'), { args: [control, String(ROUNDS)] }))
  await new Promise((r) => setTimeout(r, 300)) // let them all open the control object
  for (let round = 1; round <= ROUNDS; round++) {
    shm.atomicStore(0, round)
    shm.notify(0)
    while (shm.atomicLoad(20) < 8 * round) await shm.waitAsync(20, shm.atomicLoad(20), 1000)
    removeQuietly(`${control}_round_${round}`)
  }
  const results = await Promise.all(racers)
  for (const r of results) t.is(r.code, 0, r.stderr)
  t.is(shm.atomicLoad(8), ROUNDS, 'one winner a round')
  t.is(shm.atomicLoad(12), 7 * ROUNDS, 'the other seven get EEXIST')
  t.is(shm.atomicLoad(16), 0, 'no other outcome')
  t.is(shm.atomicLoad(24), ROUNDS, 'every winner found the object whole')
  t.log(`${ROUNDS} rounds x 8 processes: ${shm.atomicLoad(8)} wins, ${shm.atomicLoad(12)} EEXIST`)
})

linuxOnly('it looks in /dev/shm')('8 processes make anonymous objects at once: no failure, and nothing left in /dev/shm', async (t) => {
  const perProcess = Number(process.env.POSIX_SHM_ANON_COUNT ?? 1000)
  const children = Array.from({ length: 8 }, () =>
    runNode(
      `
      const { shmOpenAnonymous, shmClose } = require('posix-shm')
      for (let i = 0; i < ${perProcess}; i++) shmClose(shmOpenAnonymous({ attempts: 1 }))
      console.log('ok')
      `,
    ),
  )
  const results = await Promise.all(children)
  for (const r of results) {
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout, 'ok\n')
  }
  t.deepEqual(readdirSync('/dev/shm').filter((n) => /^psm_[0-9a-f]{24}$/.test(n)), [])
  t.log(`${8 * perProcess} anonymous objects, with a single attempt each: no EEXIST, nothing left`)
})

test('a child killed with SIGKILL while holding mappings and pending waits leaves the parent working; the wait it would have notified times out', async (t) => {
  const name = uniqueName('killed')
  using shm = SharedMemory.create(name, 4096)
  t.teardown(() => removeQuietly(name))
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { SharedMemory } = require('posix-shm')
      const shm = SharedMemory.open(process.argv[1])
      const mine = Array.from({ length: 8 }, () => SharedMemory.open(process.argv[1]))
      for (let i = 0; i < 8; i++) shm.waitAsync(64 + 4 * i, 0)
      shm.atomicStore(4, 1)
      shm.notify(4)
      setInterval(() => {}, 1000)
      `,
      name,
    ],
    { cwd: ROOT, stdio: 'ignore' },
  )
  const exit = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  while (shm.atomicLoad(4) === 0) await shm.waitAsync(4, 0, 1000)
  child.kill('SIGKILL')
  t.is(await exit, 'SIGKILL')
  // The parent still works, and waiting for a notify the child will never send ends cleanly.
  t.is(await shm.waitAsync(8, 0, 100), 'timed-out')
  t.is(shm.wait(8, 0, 50), 'timed-out')
  shm.write('still here', 100)
  t.is(shm.read(100, 10).toString(), 'still here')
})
