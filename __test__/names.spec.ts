import test from 'ava'
import { ShmError, fstat, shmClose, shmOpen, shmUnlink, withOpenShm } from 'posix-shm'
import { openFdCount, removeQuietly, uniqueName } from './helpers'

const CREATE = { openFlags: ['create', 'read-write'] } as const

const REFUSED_NAMES = ['', '/', '.', '..', '/.', '/..', 'a/b', '/a/b', 'a/', 'nul\0byte', '/\0', 'lone\uD800', '\uDC00']

test.serial('refused names throw ERR_INVALID_ARG_VALUE before any system call', (t) => {
  const before = openFdCount()
  for (const name of REFUSED_NAMES) {
    const error = t.throws(() => shmOpen(name, CREATE), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }, JSON.stringify(name))
    t.regex(error?.message ?? '', /The argument 'name'/)
    t.throws(() => shmUnlink(name), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => withOpenShm(name, CREATE, () => t.fail('body ran')), { instanceOf: TypeError })
  }
  t.is(openFdCount(), before)
})

test.serial('a name that is not a string throws ERR_INVALID_ARG_TYPE', (t) => {
  for (const name of [42, undefined, null, {}, ['a'], Symbol('s'), 1n]) {
    t.throws(() => shmOpen(name as unknown as string, CREATE), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => shmUnlink(name as unknown as string), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  }
})

test.serial('a 300-character name fails with ENAMETOOLONG from the platform, leaving nothing open', (t) => {
  const before = openFdCount()
  const name = 'n'.repeat(300)
  const error = t.throws(() => shmOpen(name, CREATE), { instanceOf: ShmError })
  t.is(error?.code, 'ENAMETOOLONG')
  t.is(error?.path, `/${name}`)
  t.is(openFdCount(), before)
  // 255 bytes after the slash is the Linux limit; 256 is one too many.
  t.is(t.throws(() => shmOpen('m'.repeat(256), CREATE), { instanceOf: ShmError })?.code, 'ENAMETOOLONG')
  t.is(t.throws(() => shmUnlink(name), { instanceOf: ShmError })?.code, 'ENAMETOOLONG')
  const longest = uniqueName('max').padEnd(255, 'm')
  t.teardown(() => removeQuietly(longest))
  const fd = shmOpen(longest, CREATE)
  t.is(fstat(fd).nlink, 1)
  shmClose(fd)
})

test.serial('unicode names work and round-trip', (t) => {
  const name = `${uniqueName('unicode')}_é_雪_🙂`
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  t.teardown(() => shmUnlink(name))
  const again = shmOpen(`/${name}`)
  t.is(fstat(again).ino, fstat(fd).ino)
  shmClose(fd)
  shmClose(again)
})
