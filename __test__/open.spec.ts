import test from 'ava'
import { constants as os } from 'node:os'
import { constants as fsConstants, fstatSync } from 'node:fs'
import {
  ShmError,
  constants,
  fchmod,
  fchown,
  fstat,
  shmClose,
  shmFtruncate,
  shmOpen,
  shmOpenAnonymous,
  shmUnlink,
  type Permission,
} from 'posix-shm'
import { existsInDevShm, isLinux, isRoot, openFdCount, removeQuietly, uniqueName } from './helpers'

test.serial('shmOpen creates an object that ftruncate sizes and fstat reports, default mode 0600', (t) => {
  const name = uniqueName('create')
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  // Only Linux shows objects as files in /dev/shm.
  if (isLinux) t.true(existsInDevShm(name))
  shmFtruncate(fd, 12345)
  const stats = fstat(fd)
  t.is(stats.size, 12345)
  t.is(stats.mode & 0o777, 0o600 & ~process.umask())
  t.is(stats.nlink, 1)
  const node = fstatSync(fd)
  t.is(stats.ino, node.ino)
  t.is(stats.size, node.size)
  t.is(stats.uid, node.uid)
  shmClose(fd)
})

test.serial('a missing leading slash is added: "name" and "/name" are one object', (t) => {
  const name = uniqueName('slash')
  const a = shmOpen(name, { openFlags: ['create', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  const b = shmOpen(`/${name}`, { openFlags: ['read-only'] })
  t.is(fstat(a).ino, fstat(b).ino)
  shmClose(a)
  shmClose(b)
  shmUnlink(`/${name}`)
  t.false(existsInDevShm(name))
})

test.serial('open flag aliases reach the same constants', (t) => {
  const name = uniqueName('aliases')
  const fd = shmOpen(name, { openFlags: ['creat', 'excl', 'rdwr'] })
  t.teardown(() => removeQuietly(name))
  shmFtruncate(fd, 100)
  shmClose(fd)
  // excl / exclusive on an existing object: EEXIST
  for (const exclusive of ['excl', 'exclusive'] as const) {
    const error = t.throws(() => shmOpen(name, { openFlags: ['create', exclusive, 'read-write'] }), { instanceOf: ShmError })
    t.is(error?.code, 'EEXIST')
  }
  // every read-only spelling opens, and so does the numeric form
  for (const readOnly of ['rdonly', 'read', 'read-only'] as const) {
    const ro = shmOpen(name, { openFlags: [readOnly] })
    t.is(fstat(ro).size, 100)
    shmClose(ro)
  }
  // trunc / truncate empty the object
  for (const truncate of ['trunc', 'truncate'] as const) {
    const rw = shmOpen(name, { openFlags: ['read-write'] })
    shmFtruncate(rw, 100)
    shmClose(rw)
    const tr = shmOpen(name, { openFlags: [truncate, 'read-write'] })
    t.is(fstat(tr).size, 0)
    shmClose(tr)
  }
  const numeric = shmOpen(name, { openFlags: constants.O_RDWR | constants.O_TRUNC })
  t.is(fstat(numeric).size, 0)
  shmClose(numeric)
})

const PERMISSION_CONSTANTS: ReadonlyArray<[Permission, Permission, keyof typeof constants]> = [
  ['rusr', 'read-user', 'S_IRUSR'],
  ['wusr', 'write-user', 'S_IWUSR'],
  ['xusr', 'exec-user', 'S_IXUSR'],
  ['rwxu', 'all-user', 'S_IRWXU'],
  ['rgrp', 'read-group', 'S_IRGRP'],
  ['wgrp', 'write-group', 'S_IWGRP'],
  ['xgrp', 'exec-group', 'S_IXGRP'],
  ['rwxg', 'all-group', 'S_IRWXG'],
  ['roth', 'read-other', 'S_IROTH'],
  ['woth', 'write-other', 'S_IWOTH'],
  ['xoth', 'exec-other', 'S_IXOTH'],
  ['rwxo', 'all-other', 'S_IRWXO'],
]

test.serial('every permission keyword and its alias set the bits of its constant (seen by fs.fstatSync too)', (t) => {
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  for (const [short, long, constant] of PERMISSION_CONSTANTS) {
    for (const keyword of [short, long]) {
      fchmod(fd, [keyword])
      t.is(fstat(fd).mode & 0o777, constants[constant], keyword)
      t.is(fstatSync(fd).mode & 0o777, constants[constant], keyword)
    }
  }
  fchmod(fd, ['read-user', 'write-user', 'read-group'])
  t.is(fstat(fd).mode & 0o777, 0o640)
  fchmod(fd, 0o604)
  t.is(fstatSync(fd).mode & 0o777, 0o604)
})

test.serial('the platform constants are the ones Node knows', (t) => {
  t.is(constants.O_RDONLY, fsConstants.O_RDONLY)
  t.is(constants.O_RDWR, fsConstants.O_RDWR)
  t.is(constants.O_CREAT, fsConstants.O_CREAT)
  t.is(constants.O_EXCL, fsConstants.O_EXCL)
  t.is(constants.O_TRUNC, fsConstants.O_TRUNC)
  t.is(constants.S_IRWXU, fsConstants.S_IRWXU)
  t.is(constants.S_IROTH, fsConstants.S_IROTH)
  t.true(Number.isInteger(constants.pageSize) && constants.pageSize >= 4096)
})

test.serial('permissions given at create are the requested mode less the umask', (t) => {
  const name = uniqueName('mode')
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'], permissions: ['all-user', 'all-group', 'all-other'] })
  t.teardown(() => removeQuietly(name))
  t.is(fstat(fd).mode & 0o777, 0o777 & ~process.umask())
  shmClose(fd)
})

test.serial('ShmError looks like an fs error: message, code, negative errno, syscall, path', (t) => {
  const name = uniqueName('eexist')
  const fd = shmOpen(name, { openFlags: ['create', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  const error = t.throws(() => shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] }), {
    instanceOf: ShmError,
  })
  t.true(error instanceof Error)
  t.is(error?.message, `EEXIST: file already exists, shm_open '/${name}'`)
  t.is(error?.code, 'EEXIST')
  t.is(error?.errno, -os.errno.EEXIST)
  t.is(error?.syscall, 'shm_open')
  t.is(error?.path, `/${name}`)
  shmClose(fd)

  const missing = uniqueName('enoent')
  const notFound = t.throws(() => shmOpen(missing), { instanceOf: ShmError })
  t.is(notFound?.code, 'ENOENT')
  t.is(notFound?.errno, -os.errno.ENOENT)
  const unlinkMissing = t.throws(() => shmUnlink(missing), { instanceOf: ShmError })
  t.is(unlinkMissing?.syscall, 'shm_unlink')
  t.is(unlinkMissing?.message, `ENOENT: no such file or directory, shm_unlink '/${missing}'`)
})

test.serial('shmOpenAnonymous returns an unlinked object: no name is left behind', (t) => {
  const fd = shmOpenAnonymous({ openFlags: ['read-write'], permissions: ['all-user'], attempts: 5 })
  t.teardown(() => shmClose(fd))
  shmFtruncate(fd, 4096)
  const stats = fstat(fd)
  // A memfd has no link; other systems' anonymous objects may report one.
  if (isLinux) t.is(stats.nlink, 0)
  t.is(stats.size, 4096)
  t.is(stats.mode & 0o777, 0o700 & ~process.umask())
  t.throws(() => shmOpenAnonymous({ attempts: 0 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
})

test.serial('a second shmClose of the same fd is EBADF, like fs.closeSync', (t) => {
  const fd = shmOpenAnonymous()
  shmClose(fd)
  const error = t.throws(() => shmClose(fd), { instanceOf: ShmError })
  t.is(error?.code, 'EBADF')
  t.is(error?.syscall, 'close')
  t.is(error?.errno, -os.errno.EBADF)
  // Shaped like fs errors: no `path` when there is no name, no own `name`.
  t.deepEqual(Object.keys(error ?? {}), ['code', 'errno', 'syscall'])
  t.is(error?.name, 'ShmError')
})

test.serial('fds -1, 1e9 and a closed one are refused', (t) => {
  t.throws(() => fstat(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => shmClose(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => shmFtruncate(-1, 10), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.is(t.throws(() => fstat(1e9), { instanceOf: ShmError })?.code, 'EBADF')
  t.is(t.throws(() => fchmod(1e9, 0o600), { instanceOf: ShmError })?.code, 'EBADF')
  t.is(t.throws(() => fchown(1e9, -1, -1), { instanceOf: ShmError })?.code, 'EBADF')
  t.is(t.throws(() => shmFtruncate(1e9, 10), { instanceOf: ShmError })?.code, 'EBADF')
  const fd = shmOpenAnonymous()
  shmClose(fd)
  t.is(t.throws(() => fstat(fd), { instanceOf: ShmError })?.code, 'EBADF')
  t.throws(() => fstat(1.5), { instanceOf: RangeError })
  t.throws(() => fstat('3' as unknown as number), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
})

test.serial('ftruncate takes numbers and bigints, and refuses what is not a size', (t) => {
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  shmFtruncate(fd, 8192n)
  t.is(fstat(fd).size, 8192)
  shmFtruncate(fd, 0)
  t.is(fstat(fd).size, 0)
  for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
    t.throws(() => shmFtruncate(fd, bad), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }, String(bad))
  }
  t.throws(() => shmFtruncate(fd, -1n), { instanceOf: RangeError })
  t.throws(() => shmFtruncate(fd, 2n ** 63n), { instanceOf: RangeError })
  t.throws(() => shmFtruncate(fd, '4096' as unknown as number), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.is(fstat(fd).size, 0)
})

const ownerTest = isRoot ? test.serial : test.skip
if (!isRoot) console.log('skipped: fchown to another user needs root; this run is not root')
ownerTest('fchown reaches the object (seen by fstat and fs.fstatSync); -1 leaves a field unchanged', (t) => {
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  fchown(fd, 65534, 65533)
  t.is(fstat(fd).uid, 65534)
  t.is(fstatSync(fd).gid, 65533)
  fchown(fd, -1, 0)
  t.is(fstat(fd).uid, 65534)
  t.is(fstat(fd).gid, 0)
  t.throws(() => fchown(fd, -2, 0), { instanceOf: RangeError })
  t.throws(() => fchown(fd, 0, 2 ** 32), { instanceOf: RangeError })
})

test.serial('no fd is left open by any refused call', (t) => {
  const before = openFdCount()
  const name = uniqueName('leak')
  for (let i = 0; i < 20; i++) {
    t.throws(() => shmOpen(name))
    t.throws(() => shmOpen(name, { openFlags: ['create'] }))
    t.throws(() => shmOpen('a/b', { openFlags: ['create', 'read-write'] }))
  }
  t.is(openFdCount(), before)
})
