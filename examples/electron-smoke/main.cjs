// Electron smoke test, run by the GitHub workflow (no Electron here):
// in the main process, where external ArrayBuffers are refused, create an
// object, write, have a child Node process read it back and answer through
// wait/notify, and exit 0 only if all of that worked.
const { app } = require('electron')
const { spawn } = require('node:child_process')
const { SharedMemory } = require('posix-shm')

async function smoke() {
  if (SharedMemory.zeroCopy) throw new Error('expected copy mode in Electron')
  const name = `posix-shm-electron-${process.pid}`
  const shm = SharedMemory.create(name, 4096)
  try {
    shm.write('written by the Electron main process', 16)
    // Electron's binary runs as plain Node with ELECTRON_RUN_AS_NODE=1.
    const child = spawn(process.execPath, [require.resolve('./child.cjs'), name], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: 'inherit',
    })
    const result = await shm.waitAsync(0, 0, 20_000)
    const reply = shm.read(100, 13).toString()
    if (result !== 'ok' || reply !== 'child read it') throw new Error(`round trip failed: ${result} ${reply}`)
    await new Promise((resolve) => child.once('exit', resolve))
    console.log('electron smoke: ok')
  } finally {
    shm.unlink()
    shm.close()
  }
}

app.whenReady().then(() =>
  smoke().then(
    () => app.exit(0),
    (error) => {
      console.error(error)
      app.exit(1)
    },
  ),
)
