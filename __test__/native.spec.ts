// The native binding defends itself: called directly, with anything at all,
// every entry returns or throws; it never crashes the process, and leaves
// no descriptor or mapping behind.

import { constants } from 'node:os'

import test from 'ava'
import { linuxOnly, MAPPING_COUNT_SOURCE, runNode } from './helpers'

linuxOnly('the child counts /proc/self/fd and /proc/self/maps')('every native entry survives hostile arguments', async (t) => {
  const child = await runNode(
    `
    const native = require('./native/binding.js')
    const fs = require('fs')
    const fds = () => fs.readdirSync('/proc/self/fd').length
    const maps = ${MAPPING_COUNT_SOURCE}
    const hostile = [
      undefined, null, true, false, '', 'x', '/', '/..', '/.', '/a/b', 'a\\0b', '\\uD800', 'n'.repeat(5000),
      0, -0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), Number.MAX_VALUE,
      0n, -1n, 2n ** 64n, {}, [], [1], () => 1, Symbol('s'),
      new ArrayBuffer(8), new SharedArrayBuffer(8), new Uint8Array(new SharedArrayBuffer(8)), Buffer.alloc(4),
      new DataView(new ArrayBuffer(8)),
    ]
    // Descriptors this test owns, the only ones the calls that change or
    // close a descriptor may get.
    const own = () => native.shmOpenAnonymous(2, 0o600, 3)
    const before = { fds: fds(), maps: maps() }
    let calls = 0, threw = 0
    // A call that opened something closes it again: the count is of leaks.
    const attempt = (fn) => {
      calls++
      try {
        const result = fn()
        if (typeof result === 'number') native.shmClose(result)
        if (result && typeof result.close === 'function') result.close()
      } catch { threw++ }
    }
    for (const a of hostile) {
      attempt(() => native.shmOpenNamed(a, 2, 0o600))
      attempt(() => native.shmOpenNamed('/psm_native_fuzz', a, 0o600))
      attempt(() => native.shmOpenNamed('/psm_native_fuzz', 0, a))
      attempt(() => native.shmUnlinkNamed(a))
      attempt(() => native.shmOpenAnonymous(a, 0o600, 1))
      attempt(() => native.shmOpenAnonymous(2, 0o600, a))
      attempt(() => native.shmFstat(a))
      attempt(() => native.shmIsReadOnly(a))
      attempt(() => native.munmapShared(a))
      attempt(() => native.fdOwnerAdopt(typeof a === 'number' ? -Math.abs(a) - 1 : a))
      attempt(() => native.fdOwnerClose(a))
      const fd = own()
      native.shmFtruncate(fd, 4096n)
      attempt(() => native.shmFtruncate(fd, a))
      attempt(() => native.shmFchmod(fd, a))
      attempt(() => native.shmFchown(fd, a, -1))
      attempt(() => native.shmAllocate(fd, a))
      attempt(() => native.mmapShared(a, 1, fd, 0))
      attempt(() => native.mmapShared(4096, a, fd, 0))
      attempt(() => native.mmapShared(4096, 1, a, 0))
      attempt(() => native.mmapShared(4096, 1, fd, a))
      // Wait and notify return numbers that are not descriptors: not closed.
      // The word holds 0, so a wait for 1 never sleeps, and a wait for
      // whatever \`a\` becomes has a timeout of 0.
      native.shmFtruncate(fd, 4096n)
      const mapped = native.mmapShared(4096, 3, fd, 0)
      const probe = (fn) => { calls++; try { fn() } catch { threw++ } }
      probe(() => native.waitInBuffer(a, 0, 1, 0))
      probe(() => native.waitInBuffer(mapped, a, 1, 0))
      probe(() => native.waitInBuffer(mapped, 0, a, 0))
      probe(() => native.waitInBuffer(mapped, 0, 1, a))
      probe(() => native.waitInBufferAsync(a, 0, 1, 0, () => {}))
      probe(() => native.waitInBufferAsync(mapped, a, 1, 0, () => {}))
      probe(() => native.waitInBufferAsync(mapped, 0, 1, 0, a))
      probe(() => native.notifyInBuffer(a, 0, 1))
      probe(() => native.notifyInBuffer(mapped, a, 1))
      probe(() => native.notifyInBuffer(mapped, 0, a))
      native.munmapShared(mapped)
      attempt(() => native.shmClose(fd))
      attempt(() => native.shmClose(typeof a === 'number' && a >= 0 ? -1 : a))
    }
    // Anything mapped by a call that happened to succeed is dropped now.
    for (let i = 0; i < 4; i++) gc()
    setTimeout(() => {
      gc()
      setTimeout(() => console.log(JSON.stringify({ calls, threw, before, after: { fds: fds(), maps: maps() } })), 50)
    }, 50)
    try { native.shmUnlinkNamed('/psm_native_fuzz') } catch {}
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { calls: number; threw: number; before: unknown; after: unknown }
  t.log(`${result.calls} calls, ${result.threw} threw`)
  t.true(result.calls > 500)
  t.true(result.threw > result.calls / 2)
  t.deepEqual(result.after, result.before)
})

test('the native layer refuses names that do not name one object, even unnormalized', async (t) => {
  const child = await runNode(`
    const native = require('./native/binding.js')
    const codes = ['/..', '/.', '..', 'x', '/a/b', '/'].map((name) => {
      try { native.shmOpenNamed(name, 0, 0); return 'opened' } catch (e) { return e.code }
    })
    console.log(JSON.stringify(codes))
  `)
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), Array(6).fill('ERR_INVALID_ARG_VALUE'))
})

linuxOnly('the child counts /proc/self/fd')('a descriptor handle: adopting needs an open descriptor, a second close does nothing, and collection closes only what is still open', async (t) => {
  const child = await runNode(
    `
    const native = require('./native/binding.js')
    const fs = require('fs')
    const fds = () => fs.readdirSync('/proc/self/fd').length
    const before = fds()
    const result = {}
    // A number that is not an open descriptor is refused and nothing is taken.
    const fd = native.shmOpenAnonymous(2, 0o600, 3)
    native.shmClose(fd)
    try { native.fdOwnerAdopt(fd); result.adoptedClosed = true } catch (e) { result.adoptClosed = [e.code, e.errno, e.syscall] }
    // Adopted, closed explicitly, closed again: the second close does nothing.
    const handle = native.fdOwnerAdopt(native.shmOpenAnonymous(2, 0o600, 3))
    result.whileOpen = fds() - before
    native.fdOwnerClose(handle)
    native.fdOwnerClose(handle)
    result.afterClose = fds() - before
    // A descriptor opened after that close may get the same number; when the
    // closed handle is collected, it must stay open.
    const reused = native.shmOpenAnonymous(2, 0o600, 3)
    // Handles dropped without a close are closed by collection.
    for (let i = 0; i < 10; i++) native.fdOwnerAdopt(native.shmOpenAnonymous(2, 0o600, 3))
    result.dropped = fds() - before
    setTimeout(() => {
      gc()
      setTimeout(() => {
        gc()
        setTimeout(() => {
          result.afterGc = fds() - before
          try { native.shmFstat(reused); result.reusedOpen = true } catch { result.reusedOpen = false }
          native.shmClose(reused)
          console.log(JSON.stringify(result))
        }, 50)
      }, 50)
    }, 50)
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout)
  t.deepEqual(result.adoptClosed, ['EBADF', -constants.errno.EBADF, 'fcntl'])
  t.is(result.whileOpen, 1)
  t.is(result.afterClose, 0)
  t.is(result.dropped, 11)
  t.is(result.afterGc, 1)
  t.true(result.reusedOpen)
})

test('the facade loaded twice: an error thrown through either copy is an instance of both copies\' ShmError', async (t) => {
  const child = await runNode(`
    const A = require('.')
    for (const key of Object.keys(require.cache)) if (key.includes('/dist/')) delete require.cache[key]
    const B = require('.')
    const seen = []
    for (const copy of [A, B]) {
      try { copy.fstat(987654) } catch (e) { seen.push([e.code, e instanceof A.ShmError, e instanceof B.ShmError, e instanceof Error]) }
    }
    // Not a ShmError, whatever it has: instanceof looks for the brand.
    seen.push(new Error('plain') instanceof A.ShmError, { code: 'EBADF' } instanceof B.ShmError)
    console.log(JSON.stringify(seen))
  `)
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), [['EBADF', true, true, true], ['EBADF', true, true, true], false, false])
})

test('registering the error factories again replaces them, and what they make is what the binding throws', async (t) => {
  const child = await runNode(`
    const native = require('./native/binding.js')
    const made = []
    for (const tag of ['first', 'second']) {
      native.setErrorFactories(
        (errno, syscall) => Object.assign(new Error(tag), { errno, syscall }),
        (code, message) => Object.assign(new Error(tag + ' ' + message), { code }),
      )
      try { native.shmFstat(987654) } catch (e) { made.push([e.message, e.errno, e.syscall]) }
      try { native.fdOwnerAdopt(-1) } catch (e) { made.push([e.code]) }
    }
    console.log(JSON.stringify(made))
  `)
  t.is(child.code, 0, child.stderr)
  const EBADF = -constants.errno.EBADF
  t.deepEqual(JSON.parse(child.stdout), [['first', EBADF, 'fstat'], ['ERR_OUT_OF_RANGE'], ['second', EBADF, 'fstat'], ['ERR_OUT_OF_RANGE']])
})

linuxOnly('it cuts a page away under a futex wait', test.serial)('a pending wait whose error factory throws settles with that exception, never left pending', async (t) => {
  const child = await runNode(`
    const native = require('./native/binding.js')
    native.setErrorFactories(() => { throw new Error('the factory threw') }, () => new Error('state'))
    process.on('uncaughtException', (e) => { console.log(JSON.stringify({ uncaught: e.message })); process.exit(1) })
    const fd = native.shmOpenAnonymous(2, 0o600, 1)
    native.shmFtruncate(fd, 8192)
    const mapped = native.mmapShared(8192, 3, fd, 0)
    const started = native.waitInBufferAsync(mapped, 4096, 0, 10000, (result) => {
      console.log(JSON.stringify({ settled: result instanceof Error ? result.message : result }))
    })
    if (typeof started === 'number') throw new Error('settled at once: ' + started)
    // The wait is asleep in the kernel once its thread has armed it.
    const shrink = () => native.armedWaitCount() > 0 || native.waiterThreadCount() > 0 ? native.shmFtruncate(fd, 4096) : setImmediate(shrink)
    setImmediate(shrink)
  `)
  t.is(child.code, 0, child.stderr + child.stdout)
  t.deepEqual(JSON.parse(child.stdout), { settled: 'the factory threw' })
})
