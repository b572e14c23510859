// Anonymous objects have no name on Linux (memfd), so no other process can
// open one by watching /dev/shm; `seal: true` fixes the size for every
// process the descriptor reaches.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

import test from 'ava'
import { SharedMemory, fstat, shmFtruncate, shmOpenAnonymous } from 'posix-shm'
import { linuxOnly, mappingCount, runNode } from './helpers'

linuxOnly('it watches /dev/shm')('a process watching /dev/shm opens none of 2,000 anonymous objects while they are made', async (t) => {
  // The watcher lists /dev/shm and opens every name that looks like ours,
  // in a tight loop, until told to stop. Against objects made under a
  // random name and unlinked at once it opened about half of them here.
  const stop = join(mkdtempSync(join(tmpdir(), 'psm-watch-')), 'stop')
  const watcher = spawn(
    process.execPath,
    [
      '-e',
      `
      const fs = require('fs')
      let opened = 0
      console.log('watching')
      while (!fs.existsSync(process.argv[1])) {
        for (const name of fs.readdirSync('/dev/shm')) {
          if (!/^psm_[0-9a-f]{24}$/.test(name)) continue
          try {
            fs.closeSync(fs.openSync('/dev/shm/' + name, 'r'))
            opened++
          } catch {}
        }
      }
      console.log('opened ' + opened)
      `,
      stop,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let output = ''
  watcher.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  while (!output.includes('watching')) await once(watcher.stdout, 'data')
  for (let i = 0; i < 2000; i++) SharedMemory.anonymous(4096).close()
  writeFileSync(stop, '')
  await once(watcher, 'close')
  rmSync(dirname(stop), { recursive: true })
  t.is(output.trim().split('\n').pop(), 'opened 0')
})

linuxOnly('it reads the memfd link in /proc/self/fd')('an anonymous object is never a file in /dev/shm: its descriptor links to a memfd', (t) => {
  using shm = SharedMemory.anonymous(4096)
  t.regex(readlinkSync(`/proc/self/fd/${shm.fd}`), /^\/memfd:posix-shm/)
})

linuxOnly('anonymous objects are memfds with nlink 0 only on Linux')('an anonymous object is a memfd with no link, counted among the mappings', (t) => {
  const fd = shmOpenAnonymous()
  shmFtruncate(fd, 4096)
  const nlink = fstat(fd).nlink
  const before = mappingCount()
  using shm = SharedMemory.fromFd(fd) // takes ownership of fd
  t.is(nlink, 0)
  t.is(mappingCount(), before + 1)
  t.is(shm.size, 4096)
})

test('seal: true keeps every process the descriptor reaches from shrinking or growing the object', async (t) => {
  using sealed = SharedMemory.anonymous(8192, { seal: true })
  sealed.buffer[8191] = 7
  for (const size of [4096, 16384]) {
    const error = t.throws(() => shmFtruncate(sealed.fd, size), { code: 'EPERM' }) as Error & { syscall?: string }
    t.is(error.syscall, 'ftruncate')
  }
  using plain = SharedMemory.anonymous(8192)
  const shrinkInChild = async (fd: number) => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
        const { shmFtruncate } = require('posix-shm')
        try {
          shmFtruncate(3, 4096)
          console.log('shrunk')
        } catch (error) {
          console.log(error.code)
        }
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit', fd] },
    )
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    await once(child, 'close')
    return output.trim()
  }
  t.is(await shrinkInChild(sealed.fd), 'EPERM')
  t.true(sealed.check())
  t.is(sealed.buffer[8191], 7)
  // Without the seal a peer can shrink it (check() then says so).
  t.is(await shrinkInChild(plain.fd), 'shrunk')
  t.false(plain.check())
})

test('seal is checked like every option', (t) => {
  t.throws(() => SharedMemory.anonymous(4096, { seal: 'yes' as unknown as boolean }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
})

linuxOnly('the child reads memfd links in /proc/self/fd')('a child that inherits no descriptor cannot reach an anonymous object', async (t) => {
  using shm = SharedMemory.anonymous(4096)
  shm.buffer.write('private')
  // memfds are close-on-exec: a spawned child has only the stdio it is given.
  const child = await runNode(`
    const fs = require('fs')
    const links = fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd) } catch { return '' } })
    console.log(links.filter((link) => link.includes('memfd:posix-shm')).length)
  `)
  t.is(child.stdout.trim(), '0', child.stderr)
})
