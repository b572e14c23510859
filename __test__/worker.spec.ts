import test from 'ava'
import { Worker } from 'node:worker_threads'
import { mmap, munmap, shmClose, shmFtruncate, shmOpen } from 'posix-shm'
import { ROOT, mappingCount, removeQuietly, uniqueName } from './helpers'

test('the module works inside worker_threads, and what a worker mapped is released when it exits', async (t) => {
  const name = uniqueName('worker')
  const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
  t.teardown(() => removeQuietly(name))
  shmFtruncate(fd, 4096)
  const before = mappingCount()
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('worker_threads')
    const { mmap, shmOpen, shmClose } = require(workerData.root)
    const fd = shmOpen(workerData.name)
    const kept = []
    for (let i = 0; i < 8; i++) kept.push(new Int32Array(mmap(4096, ['read', 'write'], fd)))
    kept[0][0] = 31337
    shmClose(fd)
    globalThis.kept = kept
    parentPort.postMessage('mapped')
    parentPort.once('message', () => process.exit(0))
    `,
    { eval: true, workerData: { name, root: ROOT } },
  )
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve())
    worker.once('error', reject)
  })
  const whileAlive = mappingCount()
  worker.postMessage('exit')
  await new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  // The worker's environment is torn down on exit; its mappings go with it.
  t.is(whileAlive, before + 8)
  t.is(mappingCount(), before)
  const mapped = mmap(4096, ['read'], fd)
  t.is(new Int32Array(mapped)[0], 31337)
  munmap(mapped)
  shmClose(fd)
})
