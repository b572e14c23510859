import test from 'ava'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, runNode } from './helpers'

const API = [
  'ShmError',
  'constants',
  'fchmod',
  'fchown',
  'fstat',
  'mmap',
  'munmap',
  'shmClose',
  'shmFtruncate',
  'shmOpen',
  'shmOpenAnonymous',
  'shmUnlink',
  'withMmap',
  'withMmappedShm',
  'withOpenShm',
]

test('require("posix-shm") gives the whole API', async (t) => {
  const child = await runNode(`
    const api = require('posix-shm')
    console.log(JSON.stringify(Object.fromEntries(Object.entries(api).map(([k, v]) => [k, typeof v]))))
  `)
  t.is(child.code, 0, child.stderr)
  const kinds = JSON.parse(child.stdout) as Record<string, string>
  for (const name of API) t.true(name in kinds, name)
  t.is(kinds.constants, 'object')
  t.is(kinds.shmOpen, 'function')
})

test('import from "posix-shm" in ESM gives every name as a named export', async (t) => {
  const child = await runNode(
    `
    import * as api from 'posix-shm'
    import { shmOpen, withMmappedShm, constants } from 'posix-shm'
    const value = withMmappedShm('psm_esm_' + process.pid, { openFlags: ['create', 'read-write'] }, { length: 8, protections: ['read', 'write'] }, (fd, mapped) => {
      new Int32Array(mapped)[1] = 5
      return new Int32Array(mapped)[1]
    })
    api.shmUnlink('psm_esm_' + process.pid)
    console.log(JSON.stringify({ names: Object.keys(api), value, shmOpen: typeof shmOpen, page: constants.pageSize }))
    `,
    { nodeOptions: ['--input-type=module'] },
  )
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { names: string[]; value: number; shmOpen: string; page: number }
  for (const name of API) t.true(result.names.includes(name), name)
  t.is(result.value, 5)
  t.is(result.shmOpen, 'function')
})

test('on a platform without POSIX shared memory, loading fails with one clear sentence', async (t) => {
  const child = await runNode(`
    Object.defineProperty(process, 'platform', { value: 'win32' })
    try {
      require('posix-shm')
      console.log('loaded')
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: error.message }))
    }
  `)
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { code: string; message: string }
  t.is(result.code, 'ERR_SHM_UNSUPPORTED_PLATFORM')
  t.regex(result.message, /^posix-shm has no build for win32-\w+ \(Windows has no POSIX shared memory\); it supports linux-x64-gnu, /)
})

test('on a CPU with no build (32-bit ARM), the error names it and the supported list', async (t) => {
  const child = await runNode(`
    Object.defineProperty(process, 'arch', { value: 'arm' })
    try { require('posix-shm'); console.log('loaded') } catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })) }
  `)
  const result = JSON.parse(child.stdout) as { code: string; message: string }
  t.is(result.code, 'ERR_SHM_UNSUPPORTED_PLATFORM')
  t.regex(result.message, /no build for linux-arm-(gnu|musl); it supports .*darwin-arm64/)
})

test('with the binary missing, the error says which package to install', async (t) => {
  // A copy of the package as npm would install it without its optional
  // platform package: the JavaScript, the loader, no .node file.
  const dir = mkdtempSync(join(tmpdir(), 'posix-shm-nobinary-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const copy = join(dir, 'node_modules', 'posix-shm')
  mkdirSync(join(copy, 'native'), { recursive: true })
  cpSync(join(ROOT, 'dist'), join(copy, 'dist'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'))
  cpSync(join(ROOT, 'native', 'binding.js'), join(copy, 'native', 'binding.js'))
  const child = await runNode(
    `try { require('posix-shm'); console.log('loaded') } catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message, cause: String(error.cause) })) }`,
    { cwd: dir },
  )
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { code: string; message: string; cause: string }
  t.is(result.code, 'ERR_SHM_BINDING_MISSING')
  t.regex(result.message, new RegExp(`\`npm install posix-shm-${process.platform}-${process.arch}(-gnu|-musl)?\``))
  t.regex(result.cause, /Cannot find native binding|Failed to load/)
})

test('copy mode set in process.env from JavaScript reaches the native side where the C environment lacks it', async (t) => {
  // A worker's process.env is its own: what it holds never reaches the C
  // environment, as in Bun after `process.env.X = '1'`. The native side
  // reads the variable there when it loads and sees nothing; the facade
  // reads it in JavaScript and turns external buffers off, for the whole
  // process (the main thread, loading later, is in copy mode too).
  const child = await runNode(
    `
    const { Worker } = require('node:worker_threads')
    const worker = new Worker(
      \`const { SharedMemory } = require('posix-shm')
       const shm = SharedMemory.anonymous(64)
       shm.write('copied', 0)
       require('node:worker_threads').parentPort.postMessage({ zeroCopy: SharedMemory.zeroCopy, text: shm.read(0, 6).toString() })\`,
      { eval: true, env: { ...process.env, POSIX_SHM_NO_EXTERNAL_BUFFERS: '1' } },
    )
    worker.once('message', (seen) => {
      const { SharedMemory } = require('posix-shm')
      console.log(JSON.stringify({ ...seen, main: SharedMemory.zeroCopy, inC: process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS ?? null }))
    })
    `,
    { env: { POSIX_SHM_NO_EXTERNAL_BUFFERS: undefined } },
  )
  t.is(child.code, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), { zeroCopy: false, text: 'copied', main: false, inC: null })
})
