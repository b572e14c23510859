import test from 'ava'
import { constants as bufferConstants } from 'node:buffer'
import { closeSync, fstatSync, openSync } from 'node:fs'
import { fstat, shmOpen, shmUnlink, withMmap, withMmappedShm, withOpenShm, shmFtruncate, shmClose, munmap } from 'posix-shm'
import { existsInDevShm, isLinux, mappingCount, openFdCount, removeQuietly, uniqueName } from './helpers'

const CREATE = { openFlags: ['create', 'read-write'] } as const

function objectNamed(t: { teardown(fn: () => void): void }, size: number): string {
  const name = uniqueName('scoped')
  const fd = shmOpen(name, CREATE)
  shmFtruncate(fd, size)
  shmClose(fd)
  t.teardown(() => removeQuietly(name))
  return name
}

test.serial('withOpenShm returns the body\'s value and closes the descriptor', (t) => {
  const name = objectNamed(t, 100)
  const before = openFdCount()
  const size = withOpenShm(name, { openFlags: ['read-only'] }, (fd) => {
    t.is(openFdCount(), before + 1)
    return fstat(fd).size
  })
  t.is(size, 100)
  t.is(openFdCount(), before)
})

test.serial('withMmap returns the body\'s value and unmaps, also when the body unmapped it itself', (t) => {
  const name = objectNamed(t, 4096)
  withOpenShm(name, CREATE, (fd) => {
    const before = mappingCount()
    let kept: ArrayBuffer | undefined
    const first = withMmap(4096, ['read', 'write'], fd, 0, (mapped) => {
      kept = mapped
      t.is(mappingCount(), before + 1)
      new Uint8Array(mapped)[0] = 9
      return new Uint8Array(mapped)[0]
    })
    t.is(first, 9)
    t.is(kept?.byteLength, 0)
    t.is(mappingCount(), before)
    t.is(withMmap(4096, ['read'], fd, 0, (mapped) => (munmap(mapped), 'done')), 'done')
    t.is(mappingCount(), before)
  })
})

test.serial('withMmappedShm opens, sizes to offset + length, maps, and releases both', (t) => {
  const name = uniqueName('mmapped')
  t.teardown(() => removeQuietly(name))
  const fds = openFdCount()
  const maps = mappingCount()
  const result = withMmappedShm(name, CREATE, { length: 100, protections: ['read', 'write'] }, (fd, mapped) => {
    t.is(fstat(fd).size, 100)
    t.is(mapped.byteLength, 100)
    new Int32Array(mapped)[3] = 30
    return 'ok'
  })
  t.is(result, 'ok')
  t.is(openFdCount(), fds)
  t.is(mappingCount(), maps)
  // The object stays (the helper does not unlink) and holds the write.
  // Only Linux shows objects as files in /dev/shm.
  if (isLinux) t.true(existsInDevShm(name))
  const seen = withMmappedShm(name, { openFlags: ['read-only'] }, { length: 100, protections: ['read'], truncate: false }, (_fd, mapped) =>
    new Int32Array(mapped)[3],
  )
  t.is(seen, 30)
  // With an offset, the object is sized to offset + length.
  withMmappedShm(name, CREATE, { length: 10, offset: 8192, protections: ['read', 'write'] }, (fd, mapped) => {
    t.is(fstat(fd).size, 8192 + 10)
    t.is(mapped.byteLength, 10)
  })
  // truncate: false leaves the size alone.
  withMmappedShm(name, CREATE, { length: 10, protections: ['read'], truncate: false }, (fd) => {
    t.is(fstat(fd).size, 8192 + 10)
  })
})

test.serial('withMmappedShm grows an object but never shrinks it under another mapping', (t) => {
  const name = uniqueName('noshrink')
  t.teardown(() => removeQuietly(name))
  withMmappedShm(name, CREATE, { length: 8192, protections: ['read', 'write'] }, (_fd, outer) => {
    const bytes = new Uint8Array(outer)
    withMmappedShm(name, CREATE, { length: 10, protections: ['read', 'write'] }, (fd) => {
      t.is(fstat(fd).size, 8192)
    })
    // Had the inner call shrunk the object, this read would raise SIGBUS.
    bytes[5000] = 7
    t.is(bytes[5000], 7)
  })
})

test.serial('withOpenShm leaves alone a descriptor number the body closed and something else reused', (t) => {
  const name = objectNamed(t, 100)
  let reused = -1
  withOpenShm(name, CREATE, (fd) => {
    shmClose(fd)
    reused = openSync('/dev/null', 'r')
    t.is(reused, fd)
  })
  t.notThrows(() => fstatSync(reused))
  closeSync(reused)
})

test.serial('a body that throws: the same error reaches the caller, and everything is released', (t) => {
  const name = objectNamed(t, 4096)
  const fds = openFdCount()
  const maps = mappingCount()
  const boom = new Error('boom')
  t.is(t.throws(() => withOpenShm(name, CREATE, () => { throw boom })), boom)
  withOpenShm(name, CREATE, (fd) => {
    t.is(t.throws(() => withMmap(4096, ['read'], fd, 0, () => { throw boom })), boom)
  })
  t.is(t.throws(() => withMmappedShm(name, CREATE, { length: 4096, protections: ['read'] }, () => { throw boom })), boom)
  const notAnError = { reason: 'thrown object' }
  t.is(t.throws(() => withOpenShm(name, CREATE, () => { throw notAnError }), { any: true }) as unknown, notAnError)
  t.is(openFdCount(), fds)
  t.is(mappingCount(), maps)
})

test.serial('a body that returns a promise: released after it settles, and the promise\'s value returned', async (t) => {
  const name = objectNamed(t, 4096)
  const fds = openFdCount()
  const maps = mappingCount()
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const pending = withMmappedShm(name, CREATE, { length: 4096, protections: ['read', 'write'] }, async (_fd, mapped) => {
    await gate
    new Uint8Array(mapped)[0] = 1
    return 'settled'
  })
  t.true(pending instanceof Promise)
  // Still open and mapped while the body waits.
  t.is(openFdCount(), fds + 1)
  t.is(mappingCount(), maps + 1)
  release()
  t.is(await pending, 'settled')
  t.is(openFdCount(), fds)
  t.is(mappingCount(), maps)
})

test.serial('a body that rejects: the same rejection reaches the caller, and everything is released', async (t) => {
  const name = objectNamed(t, 4096)
  const fds = openFdCount()
  const maps = mappingCount()
  const boom = new Error('rejected')
  t.is(await t.throwsAsync(withOpenShm(name, CREATE, async () => { throw boom })), boom)
  t.is(
    await t.throwsAsync(withOpenShm(name, CREATE, (fd) => withMmap(4096, ['read'], fd, 0, () => Promise.reject(boom)))),
    boom,
  )
  t.is(await t.throwsAsync(withMmappedShm(name, CREATE, { length: 4096, protections: ['read'] }, async () => { throw boom })), boom)
  t.is(openFdCount(), fds)
  t.is(mappingCount(), maps)
})

test.serial('a missing body or a bad map description is refused before anything is opened', (t) => {
  const name = uniqueName('nobody')
  const fds = openFdCount()
  t.throws(() => withOpenShm(name, CREATE, undefined as unknown as () => void), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => withMmappedShm(name, CREATE, { length: 10, protections: ['read'] }, 'body' as unknown as () => void), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
  })
  t.throws(() => withMmappedShm(name, CREATE, { length: 0, protections: ['read'] }, () => 1), { instanceOf: RangeError })
  t.throws(() => withMmappedShm(name, CREATE, { length: 10, protections: ['none', 'read'] }, () => 1), { instanceOf: TypeError })
  t.throws(() => withMmappedShm(name, CREATE, { length: 10, protections: ['read'], offset: 3 }, () => 1), { instanceOf: RangeError })
  t.throws(() => withMmappedShm(name, CREATE, null as unknown as { length: 1; protections: ['read'] }, () => 1), { instanceOf: TypeError })
  t.throws(() => withMmap(10, ['read'], 0, 0, undefined as unknown as () => void), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => withMmappedShm(name, CREATE, { length: bufferConstants.MAX_LENGTH + 1, protections: ['read'] }, () => 1), { instanceOf: RangeError, message: /map\.length/ })
  t.throws(() => withMmappedShm(name, CREATE, { length: 8192, offset: 2 ** 53 - 4096, protections: ['read'] }, () => 1), {
    instanceOf: RangeError,
  })
  t.throws(() => withMmappedShm(name, CREATE, { length: 1, protections: ['read'], truncate: 1 as unknown as boolean }, () => 1), {
    instanceOf: TypeError,
  })
  t.false(existsInDevShm(name))
  t.is(openFdCount(), fds)
  t.throws(() => shmUnlink(name), { code: 'ENOENT' })
})
