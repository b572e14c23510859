// The npm peers of posix-shm (shm-typed-array, mmap-io, shmmap) as bench
// rows, the same workloads as bench/workloads.mjs, which runs these when
// asked for a peer. bench/run.mjs --peers installs the peers into a scratch
// folder and names it in POSIX_SHM_PEERS_DIR; they are loaded from there,
// on first use, through their public APIs only.
//
// What the peers cannot do (details by each row below):
//   shm-typed-array  creates exclusively (returns null if the name exists), but always
//                    sizes the object count*elementSize + 8 (a size header at the front;
//                    the Buffer starts 8 bytes in) and closes the fd inside create(): no
//                    separate ftruncate or close. detach()/destroy() unmap by *name*, and
//                    leave the Buffer pointing at unmapped memory (touching it after is a
//                    SIGSEGV). Its registry of objects is never shrunk and is searched
//                    linearly by name, so each cycle gets slower the more objects the
//                    process has made.
//   mmap-io          only maps an fd: the object is made with fs on /dev/shm (what glibc's
//                    shm_open does on Linux). It cannot unmap: a mapping goes away only
//                    when the garbage collector frees its Buffer and the event loop turns;
//                    a loop that never yields aborts the process near vm.max_map_count.
//   shmmap           picks the name itself ('/lw' + a hex counter from a random start), so
//                    the prefix cannot be used; sizes go through a C int (at most 2 GiB - 1).
//                    Maps with mmap-io, so it cannot unmap either; release(key) only
//                    unlinks and closes.

import { fork } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, ftruncateSync, openSync, unlinkSync, constants as fsConstants } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(import.meta.url)
const loaded = {}
function peer(name) {
  const folder = process.env.POSIX_SHM_PEERS_DIR
  if (!folder) throw new Error('POSIX_SHM_PEERS_DIR names no folder: run the peers through bench/run.mjs --peers')
  return (loaded[name] ??= createRequire(join(folder, 'package.json'))(name))
}

const now = () => Number(process.hrtime.bigint()) / 1e3 // microseconds
const { O_CREAT, O_EXCL, O_RDWR, O_RDONLY } = fsConstants

// shm-typed-array puts a size_t header in front of the data, so create(n) makes an
// object of n + 8 bytes. Asking for 4096 - 8 makes the object exactly 4096 bytes
// (one page), as in the other rows.
const STA_HEADER = 8

/** The lifecycle cycle (exclusive create, ftruncate 4096, map, touch, unmap, close, unlink), as near as each peer allows. */
function makePeerCycles(prefix) {
  return {
    // shm_open(O_CREAT|O_EXCL|O_RDWR, 0660), ftruncate, mmap and close all happen in
    // create(); destroy() is munmap + shm_unlink. Same syscalls, close moved before the touch.
    'shm-typed-array': (i) => {
      const shm = peer('shm-typed-array')
      const name = `/${prefix}${i}`
      const buffer = shm.create(4096 - STA_HEADER, 'Buffer', name)
      if (buffer === null) throw new Error(`shm-typed-array: ${name} exists`)
      buffer[0] = 1
      if (!shm.destroy(name)) throw new Error(`shm-typed-array: destroy ${name} failed`)
    },
    // No unmap: the mapping outlives the cycle until its Buffer is collected.
    'mmap-io': (i) => {
      const mmap = peer('mmap-io')
      const path = `/dev/shm/${prefix}${i}`
      const fd = openSync(path, O_CREAT | O_EXCL | O_RDWR, 0o600)
      ftruncateSync(fd, 4096)
      const buffer = mmap.map(4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd)
      buffer[0] = 1
      closeSync(fd)
      unlinkSync(path)
    },
    // create() is shm_open(O_CREAT|O_EXCL|O_RDWR, 0666) + ftruncate + mmap-io map, under a
    // name of its own; release() is shm_unlink + close. No unmap, no prefix.
    shmmap: (_i) => {
      const shmmap = peer('shmmap')
      const [key, buffer] = shmmap.create(4096)
      buffer[0] = 1
      shmmap.release(key)
    },
  }
}

export const peerCycles = makePeerCycles(`psm_bench_${process.pid}_`)

/** Make a fresh object of `bytes` and map it read-write: { buffer, key, release }. */
function peerCreate(impl, name, bytes, unlinkNow) {
  if (impl === 'shm-typed-array') {
    const shm = peer('shm-typed-array')
    const buffer = shm.create(bytes, 'Buffer', `/${name}`)
    if (buffer === null) throw new Error(`shm-typed-array: /${name} exists`)
    // detach(name, true) is munmap + shm_unlink; there is no unlink that keeps the mapping.
    return { buffer, key: `/${name}`, release: () => shm.destroy(`/${name}`) }
  }
  if (impl === 'mmap-io') {
    const mmap = peer('mmap-io')
    const path = `/dev/shm/${name}`
    const fd = openSync(path, O_CREAT | O_EXCL | O_RDWR, 0o600)
    if (unlinkNow) unlinkSync(path)
    ftruncateSync(fd, bytes)
    const buffer = mmap.map(bytes, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd)
    // Only the fd and the name can be given back; the mapping stays until GC.
    return { buffer, key: name, release: () => (closeSync(fd), unlinkNow || unlinkSync(path)) }
  }
  if (impl === 'shmmap') {
    const shmmap = peer('shmmap')
    const [key, buffer] = shmmap.create(bytes)
    return { buffer, key, release: () => shmmap.release(key) }
  }
  throw new Error(`unknown peer ${impl}`)
}

/** For bulk() in workloads.mjs: a fresh object of `bytes`, mapped read-write and unlinked. */
export function peerMapFresh(impl, bytes, prefix = `psm_bench_${process.pid}_`) {
  return peerCreate(impl, `${prefix}bulk`, bytes, true)
}

/** The child of peerCrossProcess: opens the region by name and acknowledges each checked round. */
async function peerStreamChild(impl, region, key) {
  const expected = Buffer.alloc(region, 0x5a)
  let view, close
  if (impl === 'shm-typed-array') {
    const shm = peer('shm-typed-array')
    view = shm.get(key, 'Buffer') // the size comes from the object's header
    close = () => shm.detach(key)
  } else if (impl === 'mmap-io') {
    const mmap = peer('mmap-io')
    const fd = openSync(`/dev/shm/${key}`, O_RDONLY)
    view = mmap.map(region, mmap.PROT_READ, mmap.MAP_SHARED, fd)
    close = () => closeSync(fd) // no unmap
  } else {
    const shmmap = peer('shmmap')
    view = shmmap.read(key, region) // read-only mapping; the fd stays open until release
    close = () => shmmap.release(key)
  }
  if (view === null || view.length !== region) throw new Error(`${impl}: cannot open ${key} in the child`)
  process.on('message', (round) => process.send(view.equals(expected) ? round : -1))
  process.on('disconnect', () => close())
  process.send('ready')
}

/** Cross-process, as stream() in workloads.mjs: `total` bytes to a child through a `region`-byte object. */
export async function peerCrossProcess(impl, total, region = 64 << 20, prefix = `psm_bench_${process.pid}_`) {
  const rounds = Math.max(1, Math.round(total / region))
  const data = Buffer.alloc(region, 0x5a)
  const { buffer, key, release } = peerCreate(impl, `${prefix}stream`, region, false)
  const child = fork(here, ['stream-child', impl, String(region), key])
  await once(child, 'message')
  const start = now()
  for (let round = 0; round < rounds; round++) {
    buffer.set(data)
    child.send(round)
    const [ack] = await once(child, 'message')
    if (ack !== round) throw new Error('bad round')
  }
  const us = now() - start
  child.disconnect()
  await once(child, 'exit')
  release()
  return { GBs: (rounds * region) / us / 1e3 }
}

// The child of peerCrossProcess.
if (process.argv[1] === here && process.argv[2] === 'stream-child') {
  const [impl, region, key] = process.argv.slice(3)
  await peerStreamChild(impl, Number(region), key)
}
