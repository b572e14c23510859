// Property-based tests: arbitrary names, flags, permissions, lengths,
// offsets, descriptors and buffers against every public function. Each
// call either works or throws the documented error class and code; the
// process never crashes; descriptors and mappings end where they started.
// Descriptors from thin air go only to the calls that read (fstat); the
// calls that close or change a descriptor get only descriptors the test
// opened itself.

import test from 'ava'
import fc from 'fast-check'
import {
  SharedMemory,
  ShmError,
  fchmod,
  fchown,
  fstat,
  mmap,
  munmap,
  shmClose,
  shmFtruncate,
  shmOpen,
  shmOpenAnonymous,
  shmUnlink,
} from 'posix-shm'
import { existsInDevShm, mappingCount, openFdCount } from './helpers'

const RUNS = Number(process.env.POSIX_SHM_PROPERTY_RUNS ?? 200)
let cases = 0

/** What a call may do: work, or throw one of the documented errors. */
function documented(call: () => unknown): boolean {
  cases++
  try {
    call()
    return true
  } catch (error) {
    // A failed system call has an integer errno and a syscall; a state error has neither.
    if (error instanceof ShmError) {
      return typeof error.code === 'string' && (error.errno === undefined ? error.syscall === undefined : Number.isInteger(error.errno))
    }
    if (error instanceof TypeError) return ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE'].includes((error as { code?: string }).code ?? '')
    if (error instanceof RangeError) return (error as { code?: string }).code === 'ERR_OUT_OF_RANGE'
    return false
  }
}

const anything = fc.oneof(
  fc.anything(),
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 2 ** 53, 2 ** 31, -1),
)
const names = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.stringMatching(/^\/?[a-z/.\0]{0,8}$/),
  anything,
)
const keywordLists = (keywords: readonly string[]) =>
  fc.oneof(fc.array(fc.oneof(fc.constantFrom(...keywords), fc.string({ maxLength: 6 })), { maxLength: 5 }), fc.integer(), anything)
const OPEN = ['rdonly', 'read', 'read-only', 'rdwr', 'read-write', 'creat', 'create', 'excl', 'exclusive', 'trunc', 'truncate']
const PERMISSIONS = ['rusr', 'read-user', 'wusr', 'all-user', 'rgrp', 'all-group', 'roth', 'all-other']
const PROTECTIONS = ['read', 'write', 'exec', 'none']
const lengths = fc.oneof(fc.integer({ min: -2, max: 3 * 65536 }), fc.constantFrom(0, 4096, 65536, 65537), anything)

test.serial('every public function works or throws a documented error, whatever it is given, and leaves nothing open', (t) => {
  const fds = openFdCount()
  const maps = mappingCount()
  const made = new Set<string>()
  const ownFd = shmOpenAnonymous()
  shmFtruncate(ownFd, 65536)

  fc.assert(
    fc.property(names, keywordLists(OPEN), keywordLists(PERMISSIONS), (name, openFlags, permissions) =>
      documented(() => {
        // Remove afterwards only what this call created, never an object
        // that happened to exist under that name.
        const existed = typeof name === 'string' && existsInDevShm(name)
        const fd = shmOpen(name as string, { openFlags: openFlags as never, permissions: permissions as never })
        shmClose(fd)
        if (!existed) made.add(name as string)
      }),
    ),
    { numRuns: RUNS },
  )
  for (const name of made) documented(() => shmUnlink(name))

  fc.assert(
    fc.property(lengths, keywordLists(PROTECTIONS), lengths, (length, protections, offset) =>
      documented(() => {
        const mapped = mmap(length as number, protections as never, ownFd, offset as number)
        munmap(mapped)
      }),
    ),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(anything, (fd) => documented(() => fstat(fd as number))),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(keywordLists(PERMISSIONS), anything, anything, lengths, (permissions, uid, gid, length) =>
      documented(() => fchmod(ownFd, permissions as never)) &&
      documented(() => fchown(ownFd, uid as number, -1)) &&
      documented(() => fchown(ownFd, -1, gid as number)) &&
      documented(() => shmFtruncate(ownFd, length as number)),
    ),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(anything, (value) => documented(() => munmap(value as ArrayBuffer))),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(lengths, anything, lengths, lengths, (size, options, offset, length) =>
      documented(() => {
        const shm = SharedMemory.anonymous(size as number, options as never)
        try {
          documented(() => shm.read(offset as number, length as number))
          documented(() => shm.write('x'.repeat(Math.max(0, Math.min(10, Number(length) || 0))), offset as number))
          documented(() => shm.atomicAdd(offset as number, 1))
          documented(() => shm.notify(offset as number, length as number))
        } finally {
          shm.close()
        }
      }),
    ),
    { numRuns: RUNS },
  )

  fchmod(ownFd, 0o600)
  shmClose(ownFd)
  t.is(openFdCount(), fds)
  t.is(mappingCount(), maps)
  t.log(`${cases} calls in ${6 * RUNS} generated cases, each working or throwing a documented error`)
  t.true(cases >= 6 * RUNS)
})
