// Soak: lifecycle cycles with the low-level API and with SharedMemory, half
// closed explicitly and half left to garbage collection (the event loop
// turns every 1,000 cycles), and the same cycle done with `fs` on /dev/shm
// as a control that never loads posix-shm. Each runs in a fresh process.
// Prints resident size, V8 heap, open descriptors and live shm mappings
// every tenth of the run, then checks that descriptors and mappings are back
// where they started and that resident memory grew by at most 20 MiB.
//
// Why a warm-up, and why `--min-semi-space-size`: from a cold start, V8
// grows its young generation step by step (2, 4, 8, 16, 32 MiB) as a
// program keeps allocating, in any Node program, with or without an addon:
// the control shows it. That growth is V8's and has a fixed cap; what the
// soak is after is memory that accumulates cycle after cycle. So each
// process starts with the young generation at its cap, runs a warm-up (a
// tenth of the run), and measures growth from there. The cold-start size is
// printed too.
//
//   npm run soak                           1,000,000 cycles per API
//   node scripts/soak.mjs --short          50,000 (what .ci/run does)
//   node scripts/soak.mjs --update         also rewrites the soak table in RELIABILITY.md

import { spawnSync } from 'node:child_process'
import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync, constants as fsConstants } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(import.meta.url)
const args = process.argv.slice(2)
const short = args.includes('--short')
const cycles = short ? 50_000 : 1_000_000
const boundMiB = 20
/** V8's cap for one semi-space on 64-bit Node 20 to 24, in MiB. */
const semiSpaceMiB = 16
const apiNames = ['low-level', 'SharedMemory', 'fs on /dev/shm (control, no posix-shm)']

async function main() {
  const results = []
  for (const api of apiNames) {
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', `--min-semi-space-size=${semiSpaceMiB}`, here, '--api', api, ...(short ? ['--short'] : [])],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
    )
    if (child.status !== 0) throw new Error(`soak of ${api} exited with ${child.status ?? child.signal}`)
    results.push(JSON.parse(child.stdout))
  }
  for (const result of results) printCurve(result)
  console.log('')
  const table = summary(results)
  console.log(table)
  const failed = results.filter((r) => !r.control && !r.ok)
  if (args.includes('--update')) updateReliability(table)
  console.log(`\nsoak: ${failed.length ? `FAILED (${failed.map((r) => r.api).join(', ')})` : 'ok'}`)
  process.exitCode = failed.length ? 1 : 0
}

async function soakOne(api) {
  // Loaded only in the processes that use it, so the control never has it.
  const shm = api.startsWith('fs on') ? null : await import('posix-shm')
  const prefix = `psm_soak_${process.pid}_`
  const cycle = {
    'low-level': (i, explicit) => {
      const name = prefix + i
      const fd = shm.shmOpen(name, { openFlags: ['create', 'exclusive', 'read-write'] })
      shm.shmUnlink(name)
      shm.shmFtruncate(fd, 4096)
      const mapped = shm.mmap(4096, ['read', 'write'], fd)
      new Uint8Array(mapped)[0] = 1
      // The descriptor is a plain number at this level: it is always
      // closed; the mapping is unmapped explicitly or left to the collector.
      if (explicit) shm.munmap(mapped)
      shm.shmClose(fd)
    },
    SharedMemory: (i, explicit) => {
      const object = shm.SharedMemory.create(prefix + i, 4096)
      object.unlink()
      object.write('x', 0)
      if (explicit) object.close()
    },
    'fs on /dev/shm (control, no posix-shm)': (i) => {
      const path = `/dev/shm/${prefix}${i}`
      const fd = openSync(path, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_RDWR, 0o600)
      unlinkSync(path)
      ftruncateSync(fd, 4096)
      writeSync(fd, 'x', 0)
      closeSync(fd)
    },
  }[api]
  if (!cycle) throw new Error(`no soak named ${api}`)

  const cold = await sample(0)
  let done = 0
  const run = async (count) => {
    for (const end = done + count; done < end; done++) {
      cycle(done, done % 2 === 0)
      // Let the event loop turn every thousand cycles, as any real program
      // does: Node runs the finalizers of collected objects from the loop,
      // so a loop that never yields never gets their descriptors back.
      if (done % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  await run(cycles / 10)
  const start = await sample(0)
  const curve = []
  for (let step = 0; step < 10; step++) {
    await run(cycles / 10)
    curve.push(await sample(done - cycles / 10))
  }
  const end = await sample(cycles, () => fds() === start.fds && maps() === start.maps)
  const growthMiB = end.rssMiB - start.rssMiB
  const back = end.fds === cold.fds && end.maps === cold.maps
  return { api, control: shm === null, cycles, cold, start, curve, end, growthMiB, back, ok: growthMiB <= boundMiB && back }
}

/** Collects garbage until `settled()` holds (or two seconds pass), then measures. */
async function sample(cyclesDone, settled = () => true) {
  for (let i = 0; i < 200 && (i < 4 || !settled()); i++) {
    globalThis.gc()
    await new Promise((resolve) => setTimeout(resolve, i < 4 ? 0 : 10))
  }
  const status = readFileSync('/proc/self/status', 'utf8')
  return {
    cycles: cyclesDone,
    rssMiB: Number(status.match(/VmRSS:\s+(\d+)/)[1]) / 1024,
    heapMiB: process.memoryUsage().heapTotal / 2 ** 20,
    heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
    fds: fds(),
    maps: maps(),
  }
}

function fds() {
  return readdirSync('/proc/self/fd').length
}

function maps() {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.includes(' /dev/shm/') || line.includes(' /memfd:posix-shm'))
    .length
}

// A growth that rounds to zero prints as 0.0, never -0.0.
const mib = (value) => (Math.abs(value) < 0.05 ? 0 : value).toFixed(1)
const count = (value) => value.toLocaleString('en')

function printCurve(result) {
  console.log(`\n${result.api}: ${count(result.cycles)} cycles after ${count(result.cycles / 10)} of warm-up, half closed explicitly, half left to GC`)
  console.log('| cycles | RSS MiB | V8 heap MiB (in use) | open fds | shm mappings |')
  console.log('| ---: | ---: | ---: | ---: | ---: |')
  const row = (label, point) => `| ${label} | ${mib(point.rssMiB)} | ${mib(point.heapMiB)} (${mib(point.heapUsedMiB)}) | ${point.fds} | ${point.maps} |`
  console.log(row('cold start', result.cold))
  for (const point of [result.start, ...result.curve]) console.log(row(count(point.cycles), point))
  console.log(`after the last collection: RSS ${mib(result.end.rssMiB)} MiB (grew ${mib(result.growthMiB)} MiB), ${result.end.fds} fds, ${result.end.maps} mappings`)
}

function summary(results) {
  const rows = results.map((r) => {
    const verdict = r.control ? 'control' : r.ok ? 'yes' : 'NO'
    return `| ${r.api} | ${count(r.cycles)} | ${mib(r.cold.rssMiB)} MiB | ${mib(r.start.rssMiB)} MiB | ${mib(r.end.rssMiB)} MiB | ${mib(r.growthMiB)} MiB | ${mib(r.start.heapUsedMiB)} / ${mib(r.end.heapUsedMiB)} MiB | ${r.back ? 'yes' : 'NO'} (${r.end.fds} fds, ${r.end.maps} mappings) | ${verdict} |`
  })
  return [
    `| API | cycles | RSS cold | RSS after warm-up | RSS at end | growth | V8 heap in use, warm-up / end | descriptors and mappings back | within ${boundMiB} MiB |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows,
  ].join('\n')
}

function updateReliability(table) {
  const path = new URL('../RELIABILITY.md', import.meta.url)
  const text = readFileSync(path, 'utf8')
  const begin = '<!-- soak:begin -->'
  const end = '<!-- soak:end -->'
  const from = text.indexOf(begin)
  const to = text.indexOf(end)
  if (from === -1 || to < from) throw new Error(`RELIABILITY.md has no ${begin} ... ${end} section`)
  writeFileSync(path, `${text.slice(0, from + begin.length)}\n${table}\n${text.slice(to)}`)
  console.log('RELIABILITY.md: soak table rewritten')
}

// Last, so every helper above is initialised before the top-level await.
const apiArg = args.indexOf('--api')
if (apiArg !== -1) {
  process.stdout.write(JSON.stringify(await soakOne(args[apiArg + 1])) + '\n')
} else {
  await main()
}
