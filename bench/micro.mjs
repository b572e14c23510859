// The per-call cost of the calls on hot paths, for comparing two builds of
// posix-shm (say, before and after a change to the native boundary):
//
//   node bench/micro.mjs                      this checkout
//   node bench/micro.mjs <root> [<root>...]   each a checkout with dist/ and
//                                             native/ built; the first is
//                                             the reference for ratios
//
// Each measurement runs in a fresh process, the checkouts interleaved, 7
// times; it prints medians with min-max, and each root's ratio to the first.

import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const roots = process.argv.slice(2).map((root) => resolve(root))
if (roots.length === 0) roots.push(join(here, '..'))
const REPETITIONS = 7

// Each workload prints nanoseconds per operation.
const workloads = {
  'wait, not-equal (ns)': `
    const ints = new Int32Array(shm.mmap(4096, ['read', 'write'], fd, 0))
    const n = 2_000_000
    for (let i = 0; i < 100_000; i++) shm.wait(ints, 0, 1)
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) shm.wait(ints, 0, 1)
    console.log(Number(process.hrtime.bigint() - start) / n)`,
  'notify, nobody waiting (ns)': `
    const ints = new Int32Array(shm.mmap(4096, ['read', 'write'], fd, 0))
    const n = 2_000_000
    for (let i = 0; i < 100_000; i++) shm.notify(ints, 0)
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) shm.notify(ints, 0)
    console.log(Number(process.hrtime.bigint() - start) / n)`,
  'lifecycle, low-level: open, ftruncate, mmap, munmap, close, unlink (ns)': `
    const n = 50_000
    const cycle = (name) => {
      const f = shm.shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
      shm.shmFtruncate(f, 4096)
      const mapped = shm.mmap(4096, ['read', 'write'], f, 0)
      shm.munmap(mapped)
      shm.shmClose(f)
      shm.shmUnlink(name)
    }
    await inBatches(5_000, () => cycle('/psm_micro_' + process.pid))
    const start = process.hrtime.bigint()
    await inBatches(n, () => cycle('/psm_micro_' + process.pid))
    console.log(Number(process.hrtime.bigint() - start) / n)`,
  'lifecycle, SharedMemory: create, close, unlink (ns)': `
    const n = 50_000
    const cycle = (name) => {
      const m = shm.SharedMemory.create(name, 4096)
      m.close()
      m.unlink()
    }
    await inBatches(5_000, () => cycle('psm_micro_' + process.pid))
    const start = process.hrtime.bigint()
    await inBatches(n, () => cycle('psm_micro_' + process.pid))
    console.log(Number(process.hrtime.bigint() - start) / n)`,
}

function measure(root, body) {
  const script = `
    const shm = require(${JSON.stringify(root)})
    const fd = shm.shmOpenAnonymous()
    shm.shmFtruncate(fd, 4096)
    // Runs step count times, turning the event loop every 1,000: an
    // unmapped range stays reserved until Node collects its detached
    // ArrayBuffer, which a loop that never yields does not let it do.
    const inBatches = async (count, step) => {
      for (let i = 0; i < count; i++) {
        step()
        if (i % 1000 === 999) await new Promise(setImmediate)
      }
    }
    ;(async () => { ${body} })()`
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim())
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

for (const [title, body] of Object.entries(workloads)) {
  const samples = roots.map(() => [])
  for (let r = 0; r < REPETITIONS; r++) {
    roots.forEach((root, i) => samples[i].push(measure(root, body)))
  }
  console.log(`\n${title}`)
  const reference = median(samples[0])
  roots.forEach((root, i) => {
    const m = median(samples[i])
    const range = `${Math.min(...samples[i]).toFixed(0)}-${Math.max(...samples[i]).toFixed(0)}`
    const ratio = i === 0 ? '' : `  x${(m / reference).toFixed(3)} of the first`
    console.log(`  ${root}: ${m.toFixed(0)} (${range})${ratio}`)
  })
}
