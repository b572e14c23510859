// End-to-end example: this process creates a shared memory object and
// writes ten ints into it; a second Node process maps the same name
// read-only and prints them. Run with `npm run example`.

import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { mmap, munmap, shmClose, shmFtruncate, shmOpen, shmUnlink } from 'posix-shm'

const NAME = `posix-shm-example-${process.pid}`
const SIZE = 10 * Int32Array.BYTES_PER_ELEMENT

if (process.argv[2] === 'reader') {
  const fd = shmOpen(process.argv[3], { openFlags: ['read-only'] })
  const ints = new Int32Array(mmap(SIZE, ['read'], fd))
  console.log(`reader (pid ${process.pid}) sees: ${ints.join(' ')}`)
  munmap(ints)
  shmClose(fd)
} else {
  const fd = shmOpen(NAME, { openFlags: ['create', 'exclusive', 'read-write'], permissions: ['read-user', 'write-user'] })
  try {
    shmFtruncate(fd, SIZE)
    const ints = new Int32Array(mmap(SIZE, ['read', 'write'], fd))
    for (let i = 0; i < 10; i++) ints[i] = i * 10
    console.log(`writer (pid ${process.pid}) wrote: ${ints.join(' ')} to /${NAME}`)
    const reader = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'reader', NAME], { stdio: 'inherit' })
    munmap(ints)
    if (reader.status !== 0) process.exitCode = 1
  } finally {
    shmClose(fd)
    shmUnlink(NAME)
  }
}
