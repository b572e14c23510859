// Soak: lifecycle cycles with the low-level API and with SharedMemory,
// half closed explicitly and half left to garbage collection (the event
// loop turns every 1,000 cycles). Prints the
// resident size, open descriptors and live shm mappings every tenth of the
// run, then checks that descriptors and mappings are back where they
// started and that resident memory grew by at most 20 MiB.
//
//   npm run soak                       1,000,000 cycles per API
//   node --expose-gc scripts/soak.mjs --short   50,000 (what .ci/run does)

import { readdirSync, readFileSync } from 'node:fs'
import { SharedMemory, mmap, munmap, shmClose, shmFtruncate, shmOpen, shmUnlink } from 'posix-shm'

const short = process.argv.includes('--short')
const cycles = short ? 50_000 : 1_000_000
const prefix = `psm_soak_${process.pid}_`
const rssMiB = () => Number(readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024
const fds = () => readdirSync('/proc/self/fd').length
const heapMiB = () => process.memoryUsage().heapTotal / 2 ** 20
const maps = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(' /dev/shm/')).length

async function settle(done) {
  for (let i = 0; i < 200 && (i < 4 || !done()); i++) {
    globalThis.gc()
    await new Promise((resolve) => setTimeout(resolve, i < 4 ? 0 : 10))
  }
}

const apis = {
  'low-level': (i, explicit) => {
    const name = prefix + i
    const fd = shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
    shmUnlink(name)
    shmFtruncate(fd, 4096)
    const mapped = mmap(4096, ['read', 'write'], fd)
    new Uint8Array(mapped)[0] = 1
    // The descriptor is a plain number at this level: it is always closed;
    // the mapping is unmapped explicitly or left to the collector.
    if (explicit) munmap(mapped)
    shmClose(fd)
  },
  SharedMemory: (i, explicit) => {
    const shm = SharedMemory.create(prefix + i, 4096)
    shm.unlink()
    shm.write('x', 0)
    if (explicit) shm.close()
  },
}

let failed = false
const figures = {}
for (const [api, cycle] of Object.entries(apis)) {
  await settle(() => true)
  const start = { rss: rssMiB(), heap: heapMiB(), fds: fds(), maps: maps() }
  const curve = []
  const step = cycles / 10
  for (let done = 0; done < cycles; ) {
    for (const end = done + step; done < end; done++) {
      cycle(done, done % 2 === 0)
      // Let the event loop turn every thousand cycles, as any real program
      // does: Node runs the finalizers of collected objects from the loop,
      // so a loop that never yields never gets their descriptors back.
      if (done % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
    }
    await settle(() => true) // a few collections, then sample
    curve.push({ cycles: done, rssMiB: rssMiB(), heapMiB: heapMiB(), fds: fds(), maps: maps() })
  }
  await settle(() => fds() === start.fds && maps() === start.maps)
  const end = { rss: rssMiB(), fds: fds(), maps: maps() }
  const growth = end.rss - start.rss
  console.log(`\n${api}: ${cycles.toLocaleString('en')} cycles, half closed explicitly, half left to GC`)
  console.log('| cycles | RSS MiB | V8 heap MiB | open fds | shm mappings |')
  console.log('| ---: | ---: | ---: | ---: | ---: |')
  console.log(`| 0 | ${start.rss.toFixed(1)} | ${start.heap.toFixed(1)} | ${start.fds} | ${start.maps} |`)
  for (const point of curve) console.log(`| ${point.cycles.toLocaleString('en')} | ${point.rssMiB.toFixed(1)} | ${point.heapMiB.toFixed(1)} | ${point.fds} | ${point.maps} |`)
  console.log(`after the last collection: RSS ${end.rss.toFixed(1)} MiB (grew ${growth.toFixed(1)} MiB), ${end.fds} fds, ${end.maps} mappings`)
  const ok = growth <= 20 && end.fds === start.fds && end.maps === start.maps
  if (!ok) failed = true
  figures[api] = { cycles, growthMiB: growth, fdsBack: end.fds === start.fds, mappingsBack: end.maps === start.maps, ok }
}
console.log(`\nsoak: ${failed ? 'FAILED' : 'ok'} ${JSON.stringify(figures)}`)
process.exitCode = failed ? 1 : 0
