// Findings of issue #12: calls that a hostile or careless caller can make,
// and that must end in an error or a clean release, never a crash or a leak.

import test from 'ava'
import { closeSync, fstatSync, openSync, statSync } from 'node:fs'
import { SharedMemory, constants, fstat, munmap, shmClose, shmFtruncate, shmOpen, shmOpenAnonymous, withMmap, withOpenShm } from 'posix-shm'
import { linuxOnly, mappingCount, openFdCount, removeQuietly, ROOT, runNode, uniqueName } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const native = require(`${ROOT}/native/binding.js`) as {
  shmOpenNamed(name: string, openFlags: number, mode: number): number
  shmOpenAnonymous(openFlags: number, mode: number, attempts: number, sealable: boolean): number
  fdOwnerAdopt(fd: number): object
  munmapShared(mapped: ArrayBufferView): void
  liveMappingCount(): number
}

// #12.14: O_TRUNC on a read-only open empties the object under every
// peer's mapping (SIGBUS on their next touch).

test.serial('read-only with truncate is refused before shm_open, by the facade and the binding (#12.14)', (t) => {
  const name = uniqueName('rotrunc')
  t.teardown(() => removeQuietly(name))
  const peer = SharedMemory.create(name, 8192)
  t.teardown(() => peer.close())
  peer.write('still here', 8000)
  const refusals: (() => unknown)[] = [
    () => shmOpen(name, { openFlags: ['read-only', 'truncate'] }),
    () => shmOpen(name, { openFlags: ['rdonly', 'trunc', 'create'] }),
    () => shmOpen(name, { openFlags: constants.O_RDONLY | constants.O_TRUNC }),
    () => native.shmOpenNamed(`/${name}`, constants.O_RDONLY | constants.O_TRUNC, 0o600),
    () => native.shmOpenAnonymous(constants.O_RDONLY | constants.O_TRUNC, 0o600, 3, false),
  ]
  for (const [index, refused] of refusals.entries()) {
    const fds = openFdCount()
    const error = t.throws(refused, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }, `call ${index}`)
    t.regex(error?.message ?? '', /truncate|O_TRUNC/, `call ${index}`)
    t.is(openFdCount(), fds, `call ${index} left a descriptor open`)
    // Checked before touching the mapping: past a truncation, touching it is SIGBUS.
    if (!t.is(fstat(peer.fd).size, 8192, `call ${index} truncated the object`)) return
  }
  t.is(peer.read(8000, 10).toString(), 'still here')
  // Read-write truncation is still allowed.
  shmClose(shmOpen(name, { openFlags: ['read-write', 'truncate'] }))
  t.is(fstat(peer.fd).size, 0)
})

// #12.13: fromFd(a.fd) made two owners of one descriptor; the second close
// hit whatever had reused the number.

test.serial('fromFd of a descriptor a SharedMemory owns takes a duplicate; closing both never closes a reused number (#12.13)', (t) => {
  const a = SharedMemory.anonymous(4096)
  const original = a.fd
  const b = SharedMemory.fromFd(original)
  t.teardown(() => (a.close(), b.close()))
  t.not(b.fd, original)
  // The same object behind both.
  a.write('one object', 0)
  t.is(b.read(0, 10).toString(), 'one object')
  a.close()
  const reused = openSync('/dev/null', 'r')
  t.teardown(() => closeSync(reused))
  t.is(reused, original, 'the number was not reused; the test proves nothing')
  b.close()
  t.notThrows(() => fstatSync(reused), 'b.close() closed a number that was not its own')
  t.is(fstatSync(reused).ino, statSync('/dev/null').ino)
})

test.serial('the binding refuses to adopt a descriptor that an owner already holds (#12.13)', (t) => {
  const a = SharedMemory.anonymous(4096)
  t.teardown(() => a.close())
  const fds = openFdCount()
  t.throws(() => native.fdOwnerAdopt(a.fd), { code: 'ERR_SHM_FD_OWNED', message: /is owned by a SharedMemory/ })
  t.is(openFdCount(), fds)
  a.close()
  t.is(openFdCount(), fds - 1)
})

// The same hazard from the other side: JavaScript closes an owned number
// itself (fs.closeSync(shm.fd)), an open reuses it, and the owner's close
// would then close that stranger. Each owner remembers its file's device
// and inode and leaves a number that names another file alone.

test('a SharedMemory or Channel whose descriptor JavaScript closed behind its back never closes the file that reused the number', async (t) => {
  const name = uniqueName('reused')
  t.teardown(() => removeQuietly(name))
  const child = await runNode(`
    const fs = require('fs')
    const { SharedMemory, Channel, shmUnlink } = require('posix-shm')
    const nullIno = fs.statSync('/dev/null').ino
    const check = (what, owner) => {
      const number = owner.fd
      fs.closeSync(number)
      // Opens until one lands on the number (a lower one may be free too).
      const extra = []
      let reused = fs.openSync('/dev/null', 'r')
      while (reused !== number && extra.length < 64) extra.push(reused), (reused = fs.openSync('/dev/null', 'r'))
      for (const fd of extra) fs.closeSync(fd)
      if (reused !== number) throw new Error(what + ': the number was not reused; the test proves nothing')
      owner.close()
      let verdict
      try { verdict = fs.fstatSync(reused).ino === nullIno ? 'left alone' : 'another file' } catch (e) { verdict = e.code }
      console.log(what + ': ' + verdict)
      if (verdict === 'left alone') fs.closeSync(reused)
    }
    check('SharedMemory.anonymous', SharedMemory.anonymous(4096))
    const name = process.argv[1]
    check('SharedMemory.create', SharedMemory.create(name, 4096))
    shmUnlink(name)
    check('Channel.anonymous', Channel.anonymous())
  `, { args: [name] })
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout, 'SharedMemory.anonymous: left alone\nSharedMemory.create: left alone\nChannel.anonymous: left alone\n')
})

test('a number JavaScript closed behind its owner can be owned again by a new SharedMemory, and each closes only its own', async (t) => {
  const [first, second] = [uniqueName('stale_a'), uniqueName('stale_b')]
  t.teardown(() => (removeQuietly(first), removeQuietly(second)))
  const child = await runNode(`
    const fs = require('fs')
    const { SharedMemory, shmUnlink } = require('posix-shm')
    const [first, second] = process.argv.slice(1)
    const count = () => fs.readdirSync('/proc/self/fd').length
    const before = count()
    const a = SharedMemory.create(first, 4096)
    const number = a.fd
    fs.closeSync(number)
    // Opens until one lands on the number, as the next create would.
    const extra = []
    let b
    for (;;) {
      b = SharedMemory.create(second, 4096)
      if (b.fd === number || extra.length >= 64) break
      extra.push(b)
      shmUnlink(second)
    }
    for (const s of extra) s.close()
    if (b.fd !== number) throw new Error('the number was not reused; the test proves nothing')
    b.buffer.write('still open', 0)
    a.close()
    const open = fs.fstatSync(b.fd).size
    b.close()
    shmUnlink(first)
    shmUnlink(second)
    console.log(['b open after a.close()', open, 'descriptors left', count() - before].join(' '))
  `, { args: [first, second] })
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout, 'b open after a.close() 4096 descriptors left 0\n')
})

// #12.11: munmap(shm.buffer) left close() throwing and the descriptor open.

test.serial('munmap refuses a SharedMemory buffer; close() always closes the descriptor (#12.11)', (t) => {
  if (!SharedMemory.zeroCopy) return t.pass('no buffer in copy mode')
  const fds = openFdCount()
  const maps = mappingCount()
  const shm = SharedMemory.anonymous(4096)
  const fd = shm.fd
  const mapped = shm.buffer.buffer as ArrayBuffer
  for (const view of [shm.buffer, mapped, new DataView(mapped), new Int32Array(mapped)]) {
    t.throws(() => munmap(view), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /close\(\)/ })
  }
  t.is(shm.buffer.length, 4096)
  t.is(mappingCount(), maps + 1)
  t.notThrows(() => shm.close())
  t.true(shm.closed)
  t.is(mappingCount(), maps)
  t.is(openFdCount(), fds)
  t.throws(() => fstatSync(fd), { code: 'EBADF' })
  t.notThrows(() => shm.close())
})

test.serial('close() closes the descriptor even after the binding unmapped the buffer behind its back (#12.11)', (t) => {
  if (!SharedMemory.zeroCopy) return t.pass('no buffer in copy mode')
  const fds = openFdCount()
  const maps = mappingCount()
  const shm = SharedMemory.anonymous(4096)
  const fd = shm.fd
  native.munmapShared(shm.buffer)
  t.is(mappingCount(), maps)
  t.notThrows(() => shm.close())
  t.true(shm.closed)
  t.is(openFdCount(), fds)
  t.throws(() => fstatSync(fd), { code: 'EBADF' })
})

// #12.10: a result whose `then` getter throws skipped the release.

function hostileThenables(): { what: string; make: () => unknown }[] {
  return [
    {
      what: 'a then getter that throws',
      make: () =>
        Object.defineProperty({}, 'then', {
          get() {
            throw new Error('hostile getter')
          },
        }),
    },
    {
      what: 'a then getter that is a function only the first time',
      make: () => {
        let reads = 0
        return Object.defineProperty({}, 'then', {
          get() {
            reads += 1
            return reads === 1 ? (resolve: (v: unknown) => void) => resolve('first') : 42
          },
        })
      },
    },
    {
      what: 'a then getter that is a function only from the second time',
      make: () => {
        let reads = 0
        return Object.defineProperty({}, 'then', {
          get() {
            reads += 1
            return reads === 1 ? 42 : (resolve: (v: unknown) => void) => resolve('second')
          },
        })
      },
    },
    {
      what: 'a then that calls back twice and then throws',
      make: () => ({
        then(resolve: (v: unknown) => void, reject: (e: unknown) => void) {
          resolve('once')
          reject(new Error('twice'))
          throw new Error('and throws')
        },
      }),
    },
    { what: 'a then that throws', make: () => ({ then: () => { throw new Error('hostile then') } }) },
  ]
}

/** Settles `value` if it is a real promise; anything else is returned as is. */
async function outcome(call: () => unknown): Promise<string> {
  try {
    const value = call()
    return value instanceof Promise ? `resolved ${String(await value)}` : 'returned'
  } catch (error) {
    return `threw ${(error as Error).message}`
  }
}

test.serial('withOpenShm releases the descriptor exactly once, whatever the body returns (#12.10)', async (t) => {
  const name = uniqueName('thenable')
  shmClose(shmOpen(name, { openFlags: ['create', 'read-write'] }))
  t.teardown(() => removeQuietly(name))
  for (const { what, make } of hostileThenables()) {
    const fds = openFdCount()
    const results = new Set<string>()
    for (let i = 0; i < 100; i++) results.add(await outcome(() => withOpenShm(name, {}, () => make())))
    t.is(openFdCount(), fds, `${what}: ${[...results].join(', ')}`)
  }
})

test.serial('withMmap releases the mapping exactly once, whatever the body returns (#12.10)', async (t) => {
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  shmFtruncate(fd, 4096)
  for (const { what, make } of hostileThenables()) {
    const maps = mappingCount()
    const live = native.liveMappingCount()
    for (let i = 0; i < 100; i++) await outcome(() => withMmap(4096, ['read'], fd, 0, () => make()))
    t.is(mappingCount(), maps, what)
    t.is(native.liveMappingCount(), live, what)
  }
})

test.serial('withOpenShm: a then getter that throws reaches the caller; a thenable is awaited once (#12.10)', async (t) => {
  const name = uniqueName('thenable')
  shmClose(shmOpen(name, { openFlags: ['create', 'read-write'] }))
  t.teardown(() => removeQuietly(name))
  const [getter, firstOnly, secondOnly, twice, throwing] = hostileThenables()
  t.is(await outcome(() => withOpenShm(name, {}, getter!.make)), 'threw hostile getter')
  t.is(await outcome(() => withOpenShm(name, {}, firstOnly!.make)), 'resolved first')
  t.is(await outcome(() => withOpenShm(name, {}, secondOnly!.make)), 'returned')
  t.is(await outcome(() => withOpenShm(name, {}, twice!.make)), 'resolved once')
  t.is(await outcome(() => withOpenShm(name, {}, throwing!.make)), 'threw hostile then')
})

// #12.8: in copy mode, read() of a huge range allocated with an
// infallible allocation, which aborts the process when it fails.

linuxOnly("it relies on Linux's ulimit -v semantics and /proc/self/status")('copy mode: read() of a 1 TiB object is a RangeError, not an abort (#12.8)', async (t) => {
  const name = uniqueName('huge')
  t.teardown(() => removeQuietly(name))
  const child = await runNode(
    `
    const { SharedMemory, shmOpen, shmFtruncate, shmClose, constants } = require('posix-shm')
    const native = require('./native/binding.js')
    const { MAX_LENGTH } = require('buffer').constants
    const HUGE = 2 ** 40
    const outcome = (call) => { try { call(); return 'returned' } catch (e) { return e.name + ' ' + e.code } }
    const fd = shmOpen(process.argv[1], { openFlags: ['read-write', 'create', 'exclusive'] })
    shmFtruncate(fd, HUGE) // sparse: no page is used
    const result = { zeroCopy: SharedMemory.zeroCopy }
    // The binding, called directly (the facade's size check does not apply).
    const region = native.MappedRegion.map(HUGE, constants.PROT_READ, fd, 0)
    result.binding = outcome(() => region.read(0, HUGE))
    region.close()
    // The facade: a copy-mode SharedMemory may be larger than a Buffer.
    const shm = SharedMemory.open(process.argv[1], { readOnly: true })
    result.size = shm.size
    result.facade = outcome(() => shm.read(0, HUGE))
    result.tail = shm.read(HUGE - 4, 4).length
    shm.close()
    result.bigBuffers = MAX_LENGTH >= HUGE
    shmClose(fd)
    console.log(JSON.stringify(result))
    `,
    { args: [name], env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { zeroCopy: boolean; binding: string; size: number; facade: string; tail: number; bigBuffers: boolean }
  t.false(result.zeroCopy)
  t.is(result.binding, 'RangeError ERR_MEMORY_ALLOCATION_FAILED')
  t.is(result.size, 2 ** 40)
  // Node 20's buffers stop at 4 GiB: the length is refused first. From Node 22 they may be that long, and allocating fails.
  t.is(result.facade, result.bigBuffers ? 'RangeError ERR_MEMORY_ALLOCATION_FAILED' : 'RangeError ERR_OUT_OF_RANGE')
  t.is(result.tail, 4)
})

for (const mode of ['copy', 'zero-copy'] as const) {
  test(`${mode} mode: read() whose copy cannot be allocated is a RangeError coded ERR_MEMORY_ALLOCATION_FAILED (#12.8)`, async (t) => {
    // Node 20 caps a zero-copy SharedMemory at 4 GiB, which a machine may well
    // copy: cap the child's address space instead, so that the mapping fits
    // and its copy does not.
    const name = uniqueName('capped')
    t.teardown(() => removeQuietly(name))
    const env = { POSIX_SHM_NO_EXTERNAL_BUFFERS: mode === 'copy' ? '1' : '0' }
    const probe = await runNode("require('posix-shm'); console.log(require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmSize:\\s+(\\d+)/)[1])", { env })
    const baseKiB = Number(probe.stdout)
    t.true(baseKiB > 0, probe.stderr)
    const GIB_KIB = 1024 * 1024
    const child = await runNode(
      `
      const { SharedMemory, shmOpen, shmFtruncate, shmClose } = require('posix-shm')
      const SIZE = 2 ** 30
      const outcome = (call) => { try { call(); return 'returned' } catch (e) { return e.name + ' ' + e.code } }
      const fd = shmOpen(process.argv[1], { openFlags: ['read-write', 'create', 'exclusive'] })
      shmFtruncate(fd, SIZE)
      shmClose(fd)
      const shm = SharedMemory.open(process.argv[1], { readOnly: true })
      const result = { zeroCopy: SharedMemory.zeroCopy, facade: outcome(() => shm.read(0, SIZE)) }
      result.small = shm.read(SIZE - 4, 4).length
      shm.close()
      console.log(JSON.stringify(result))
      `,
      { args: [name], env, addressSpaceKiB: Math.round(baseKiB + 1.5 * GIB_KIB) },
    )
    t.is(child.signal, null, child.stderr)
    t.is(child.code, 0, child.stderr)
    const result = JSON.parse(child.stdout) as { zeroCopy: boolean; facade: string; small: number }
    t.is(result.zeroCopy, mode === 'zero-copy')
    t.is(result.facade, 'RangeError ERR_MEMORY_ALLOCATION_FAILED')
    t.is(result.small, 4)
  })
}

test.serial('shmClose refuses a descriptor a SharedMemory owns, so its close() never hits a reused number', (t) => {
  const name = uniqueName('owned')
  t.teardown(() => removeQuietly(name))
  const shm = SharedMemory.create(name, 4096)
  t.throws(() => shmClose(shm.fd), { code: 'ERR_SHM_FD_OWNED' })
  t.is(fstat(shm.fd).size, 4096, 'still open')
  shm.close()
})

test.serial('withOpenShm leaves a descriptor its body gave to SharedMemory.fromFd to that SharedMemory', (t) => {
  const name = uniqueName('scoped_owned')
  t.teardown(() => removeQuietly(name))
  const kept = withOpenShm(name, { openFlags: ['create', 'read-write'] }, (fd) => {
    shmFtruncate(fd, 4096)
    return SharedMemory.fromFd(fd)
  })
  t.false(kept.closed)
  kept.buffer[0] = 1
  t.is(fstat(kept.fd).size, 4096)
  kept.close()
})

linuxOnly('it runs flock(1) on the object in /dev/shm')('a grow waits for another holder of the object\'s lock only briefly, then goes on', async (t) => {
  // `flock /dev/shm/x node app.js` holds the lock for as long as the app
  // runs; growing the object must not wait for it forever.
  const name = uniqueName('locked')
  t.teardown(() => removeQuietly(name))
  const child = await runNode(
    `
    const fs = require('fs')
    const { execFileSync, spawn } = require('child_process')
    const { SharedMemory, shmOpen, shmClose } = require('posix-shm')
    shmClose(shmOpen(process.argv[1], { openFlags: ['create', 'read-write'] }))
    const path = '/dev/shm/' + process.argv[1]
    // flock(1) holds the lock until its own child ends; that child waits
    // for its stdin, which this process closes when done.
    const holder = spawn('flock', ['-x', path, 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] })
    const held = () => {
      try {
        execFileSync('flock', ['-n', '-x', path, 'true'])
        return false
      } catch {
        return true
      }
    }
    while (!held()) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
    const shm = SharedMemory.create(process.argv[1], 8192, { exclusive: false })
    console.log(shm.size + ' ' + shm.check())
    shm.close()
    holder.stdin.end()
    `,
    { args: [name] },
  )
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout.trim(), '8192 true')
})

// In copy mode every access to the memory is native, so a peer that cuts
// pages away can be met without a SIGBUS: each copy and atomic runs
// guarded, a cut page becomes ERR_SHM_SHRUNK, and the mapping is refused
// from then on (the page it saw there is a private stand-in now).
linuxOnly('Linux lets a peer shrink an object under a mapping and raises SIGBUS past its end')(
  'copy mode: reads, writes and atomics on pages a peer cut away throw ERR_SHM_SHRUNK, and the mapping is refused after',
  async (t) => {
    const name = uniqueName('copy-shrunk')
    t.teardown(() => removeQuietly(name))
    const child = await runNode(
      `
      const { execFileSync } = require('child_process')
      const { SharedMemory, shmUnlink } = require('posix-shm')
      const name = process.argv[1]
      const operations = {
        'read': (shm) => shm.read(4000, 200),
        'readInto': (shm) => shm.readInto(new Uint8Array(16), 4096),
        'write': (shm) => shm.write(Buffer.from('past the end'), 4090),
        'atomicLoad': (shm) => shm.atomicLoad(4096),
        'atomicStore': (shm) => shm.atomicStore(4100, 1),
        'atomicAdd': (shm) => shm.atomicAdd(8188, 1),
        'atomicCompareExchange': (shm) => shm.atomicCompareExchange(4096, 0, 1),
      }
      for (const [what, operation] of Object.entries(operations)) {
        const shm = SharedMemory.create(name, 2 * 4096)
        shm.write(Buffer.from('first page'), 0)
        execFileSync(process.execPath, ['-e', \`
          const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
          const fd = shmOpen(process.argv[1]); shmFtruncate(fd, 4096); shmClose(fd)
        \`, name])
        const outcome = (f) => { try { f(); return 'worked' } catch (e) { return e.code } }
        console.log([what, outcome(() => operation(shm)), 'then first page', outcome(() => shm.read(0, 10)), 'check', shm.check()].join(' '))
        shm.close()
        shmUnlink(name)
      }
      // Grown back and written by the peer after the cut: the page this
      // process maps there is a private stand-in, so waits and notifies on
      // it are refused too, not left to watch a word no one writes.
      const shm = SharedMemory.create(name, 2 * 4096)
      const peer = (script) => execFileSync(process.execPath, ['-e', script, name])
      const resize = \`const { shmOpen, shmFtruncate, shmClose } = require('posix-shm')
        const fd = shmOpen(process.argv[1]); shmFtruncate(fd, SIZE); shmClose(fd)\`
      peer(resize.replace('SIZE', '4096'))
      const outcome = (f) => { try { f(); return 'worked' } catch (e) { return e.code } }
      const cut = outcome(() => shm.read(4096, 4))
      peer(resize.replace('SIZE', '8192'))
      peer(\`const { SharedMemory } = require('posix-shm')
        const s = SharedMemory.open(process.argv[1]); s.atomicStore(4096, 5); s.close()\`)
      const waits = [outcome(() => shm.wait(4096, 0, 100)), outcome(() => shm.wait(4096, 5, 100)), outcome(() => shm.notify(4096))]
      shm.waitAsync(4096, 0, 100).then((r) => r, (e) => e.code).then((asynchronous) => {
        console.log(['regrown: read', cut, 'wait', ...waits, 'waitAsync', asynchronous].join(' '))
        shm.close()
        shmUnlink(name)
        console.log('alive')
      })
      `,
      { args: [name], env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } },
    )
    t.is(child.signal, null, child.stderr)
    t.is(child.code, 0, child.stderr)
    const lines = ['read', 'readInto', 'write', 'atomicLoad', 'atomicStore', 'atomicAdd', 'atomicCompareExchange'].map(
      (what) => `${what} ERR_SHM_SHRUNK then first page ERR_SHM_SHRUNK check false`,
    )
    const regrown = 'regrown: read ERR_SHM_SHRUNK wait ERR_SHM_SHRUNK ERR_SHM_SHRUNK ERR_SHM_SHRUNK waitAsync ERR_SHM_SHRUNK'
    t.is(child.stdout, [...lines, regrown, 'alive', ''].join('\n'))
  },
)
