import test from 'ava'
import { mmap, munmap, shmClose, shmFtruncate, shmOpen, shmUnlink } from 'posix-shm'
import { removeQuietly, runNode, uniqueName } from './helpers'

test('a second Node process opens the same name and sees the first one\'s writes, and the reverse', async (t) => {
  const name = uniqueName('cross')
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  shmFtruncate(fd, 4096)
  const mapped = mmap(4096, ['read', 'write'], fd)
  const bytes = Buffer.from(mapped)
  bytes.write('hello from the parent', 0, 'utf8')

  const child = await runNode(`
    const { mmap, munmap, shmOpen, shmClose } = require('posix-shm')
    const fd = shmOpen(process.argv[1])
    const bytes = Buffer.from(mmap(4096, ['read', 'write'], fd))
    process.stdout.write(bytes.toString('utf8', 0, 21))
    bytes.write('and hello back', 100, 'utf8')
    munmap(bytes)
    shmClose(fd)
  `, { args: [name] })
  t.is(child.code, 0, child.stderr)
  t.is(child.stdout, 'hello from the parent')
  t.is(bytes.toString('utf8', 100, 114), 'and hello back')
  munmap(mapped)
  shmClose(fd)
  shmUnlink(name)
})
