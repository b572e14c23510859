import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { linuxOnly, ROOT } from './helpers'

linuxOnly('it looks for the object in /dev/shm')('the demo removes its object when interrupted with Ctrl-C (SIGINT), and its consumer ends', async (t) => {
  const demo = spawn(process.execPath, [join(ROOT, 'examples', 'demo.mjs'), '--total-mib', '100000'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const name = `posix-shm-demo-${demo.pid}`
  let stdout = ''
  demo.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  // Wait until the object exists, then interrupt.
  for (let i = 0; i < 200 && !readdirSync('/dev/shm').includes(name); i++) await new Promise((r) => setTimeout(r, 25))
  t.true(readdirSync('/dev/shm').includes(name), 'the demo created its object')
  await new Promise((r) => setTimeout(r, 300))
  demo.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve))
  t.is(code, 130)
  t.regex(stdout, new RegExp(`SIGINT: removed /${name}`))
  t.false(readdirSync('/dev/shm').includes(name))
})
