// The plain-Node side of the Electron smoke test.
const { SharedMemory } = require('posix-shm')

const shm = SharedMemory.open(process.argv[2])
const text = shm.read(16, 36).toString()
if (text !== 'written by the Electron main process') process.exit(1)
shm.write('child read it', 100)
shm.atomicStore(0, 1)
shm.notify(0)
shm.close()
