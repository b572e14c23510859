import test from 'ava'
import { constants, fchmod, mmap, munmap, shmOpen, shmOpenAnonymous, shmClose, shmFtruncate } from 'posix-shm'
import { mappingCount, openFdCount, uniqueName } from './helpers'

test.serial('an unknown open flag keyword is refused, and the message lists the accepted ones', (t) => {
  const error = t.throws(() => shmOpen(uniqueName('x'), { openFlags: ['create', 'read-write', 'append' as 'create'] }), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_VALUE',
  })
  for (const accepted of ['rdonly', 'read', 'read-only', 'rdwr', 'read-write', 'creat', 'create', 'excl', 'exclusive', 'trunc', 'truncate']) {
    t.true(error?.message.includes(accepted), accepted)
  }
  t.regex(error?.message ?? '', /'append'/)
})

test.serial('both or neither of read-only / read-write is refused', (t) => {
  const name = uniqueName('access')
  for (const flags of [['read-only', 'read-write'], ['rdonly', 'rdwr', 'create'], ['create'], ['exclusive', 'create'], []] as const) {
    const error = t.throws(() => shmOpen(name, { openFlags: flags }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }, flags.join())
    t.regex(error?.message ?? '', /exactly one of read-only/)
  }
  // The same mode spelled twice is still one mode.
  t.throws(() => shmOpen(name, { openFlags: ['read', 'rdonly'] }), { code: 'ENOENT' })
})

test.serial('a protection list passed as open flags is refused', (t) => {
  t.throws(() => shmOpen(uniqueName('prot'), { openFlags: ['read', 'write'] as unknown as ['read'] }), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_VALUE',
  })
})

test.serial('numeric flags must be an OR of the constants', (t) => {
  t.throws(() => shmOpen(uniqueName('n'), { openFlags: 0o4000000 }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => shmOpen(uniqueName('n'), { openFlags: -1 }), { instanceOf: RangeError })
  t.throws(() => shmOpen(uniqueName('n'), { openFlags: 1.5 }), { instanceOf: RangeError })
  t.throws(() => shmOpen(uniqueName('n'), { openFlags: 'rdwr' as unknown as number }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => shmOpen(uniqueName('n'), { permissions: 0o1000 }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => shmOpen(uniqueName('n'), { permissions: ['read'] as unknown as ['rusr'] }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => shmOpen(uniqueName('n'), null as unknown as object), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  const fd = shmOpenAnonymous()
  t.throws(() => fchmod(fd, ['all-user', 'everyone' as 'all-user']), { code: 'ERR_INVALID_ARG_VALUE' })
  shmClose(fd)
})

test.serial('protections: none stands alone, an empty list and unknown keywords are refused, before any mapping', (t) => {
  const fd = shmOpenAnonymous()
  t.teardown(() => shmClose(fd))
  shmFtruncate(fd, constants.pageSize)
  const maps = mappingCount()
  const fds = openFdCount()
  t.throws(() => mmap(constants.pageSize, ['none', 'read'], fd), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mmap(constants.pageSize, [], fd), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mmap(constants.pageSize, ['read', 'rdwr' as 'read'], fd), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => mmap(constants.pageSize, 8, fd), { code: 'ERR_INVALID_ARG_VALUE' })
  t.is(mappingCount(), maps)
  t.is(openFdCount(), fds)
  // PROT_NONE alone is a valid mapping (not to be touched).
  const none = mmap(constants.pageSize, ['none'], fd)
  t.is(none.byteLength, constants.pageSize)
  munmap(none)
})
