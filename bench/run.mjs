// npm run bench: every implementation measured in the same run, rows
// interleaved, several repetitions, each one a fresh process; prints
// medians with min-max and ratios, writes bench/results.json and the chart
// bench/chart.svg, and with --update-readme rewrites the tables in
// bench/README.md (between its bench markers) from these numbers.
//
//   npm run bench                    full sizes, 5 repetitions
//   npm run bench -- --short         small sizes, 1 repetition (what .ci/run does)
//   npm run bench -- --update-readme
//   npm run bench -- --peers         adds the npm peers' rows (shm-typed-array,
//                                    mmap-io, shmmap), installed into a scratch
//                                    folder outside the package
//   node bench/run.mjs --render-only --update-readme
//                                    re-renders from bench/results.json, measuring nothing
//   npm run bench -- --no-channel    leaves out the channel group
//
// The channel group (bench/channel.mjs, its own results-channel.json and
// chart-channel.svg) runs last, with --short, --update-readme and
// --render-only passed on; `node bench/channel.mjs` runs it alone.

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { chart, fmt } from './chart.mjs'

const bench = dirname(fileURLToPath(import.meta.url))
const root = join(bench, '..')
const args = new Set(process.argv.slice(2))
const short = args.has('--short')
const repetitions = short ? 1 : 5
const MiB = 1 << 20

const peersDir = args.has('--peers') && !args.has('--render-only') ? installPeers() : undefined

/**
 * Installs the peers listed in bench/peers/package.json into a scratch
 * folder in the system's temporary directory (kept between runs), never
 * into the package. They build from source with node-gyp, which gets
 * Node's headers from the running Node's own include/node where there is
 * one, instead of downloading them.
 */
function installPeers() {
  // One folder per user, used only if it is that user's own: code from a
  // folder someone else could write to is never run.
  const folder = join(tmpdir(), `posix-shm-bench-peers-${process.getuid()}`)
  if (existsSync(folder) && statSync(folder).uid !== process.getuid()) {
    throw new Error(`${folder} belongs to another user: remove it, or set TMPDIR elsewhere`)
  }
  const wanted = readFileSync(join(bench, 'peers', 'package.json'), 'utf8')
  const manifest = join(folder, 'package.json')
  const installed = ['shm-typed-array', 'mmap-io', 'shmmap'].every((name) => existsSync(join(folder, 'node_modules', name)))
  if (installed && existsSync(manifest) && readFileSync(manifest, 'utf8') === wanted) return folder
  mkdirSync(folder, { recursive: true, mode: 0o700 })
  writeFileSync(manifest, wanted)
  console.log(`--peers: installing shm-typed-array, mmap-io and shmmap into ${folder}`)
  const prefix = dirname(dirname(process.execPath))
  const headers = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: prefix } : {}
  execFileSync('npm', ['install', '--strict-allow-scripts', '--foreground-scripts', '--no-audit', '--no-fund'], {
    cwd: folder,
    stdio: ['ignore', 'ignore', 'inherit'],
    // mmap-io's build asks for C++11, which Node 20's headers outgrew.
    env: { ...process.env, CXXFLAGS: '-std=gnu++17', ...headers },
  })
  return folder
}

/** The peers' rows for a group, measured by `measure(impl)`, when --peers asked for them. */
function peerRows(measure, names = peerNames) {
  if (!peersDir) return {}
  return Object.fromEntries(Object.entries(names).map(([impl, row]) => [row, () => measure(impl)]))
}
const peerNames = { 'shm-typed-array': 'shm-typed-array', 'mmap-io': 'mmap-io', shmmap: 'shmmap' }
const unmapping = { 'shm-typed-array': 'shm-typed-array', 'mmap-io': 'mmap-io (never unmaps)', shmmap: 'shmmap (never unmaps)' }

// The C reference programs, compiled now with the system compiler.
const build = mkdtempSync(join(tmpdir(), 'posix-shm-bench-'))
process.on('exit', () => rmSync(build, { recursive: true, force: true }))
const c = {}
for (const program of ['lifecycle', 'pingpong', 'bulk']) {
  c[program] = join(build, program)
  execFileSync('cc', ['-O2', '-o', c[program], join(bench, 'c', `${program}.c`)])
}

const sizes = short
  ? { cycles: 2000, bulk: 16 * MiB, stream: 64 * MiB, region: 8 * MiB, rounds: 2000, scale: [1000, 2000, 4000] }
  : { cycles: 20000, bulk: 256 * MiB, stream: 1024 * MiB, region: 64 * MiB, rounds: 50000, scale: [1000, 10000, 100000] }

function node(workload, impl, size, env = {}) {
  const out = execFileSync(process.execPath, [join(bench, 'workloads.mjs'), workload, impl, String(size)], {
    cwd: root,
    env: { ...process.env, ...(peersDir ? { POSIX_SHM_PEERS_DIR: peersDir } : {}), ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  })
  return JSON.parse(out.trim().split('\n').pop())
}

function native(program, ...programArgs) {
  return JSON.parse(execFileSync(c[program], programArgs.map(String), { encoding: 'utf8' }))
}

/**
 * One of the three bulk groups, all from the same workload: `field` is
 * mapMs, writeGBs or readGBs. fs has no map time, so no row there.
 */
function bulkGroup(field, title, reference) {
  const mapping = field === 'mapMs'
  return {
    title,
    unit: mapping ? 'ms' : 'GB/s',
    lowerIsBetter: mapping,
    reference,
    rows: {
      C: () => native('bulk', sizes.bulk)[field],
      'posix-shm low-level': () => node('bulk', 'low-level', sizes.bulk)[field],
      'posix-shm SharedMemory': () => node('bulk', 'SharedMemory', sizes.bulk)[field],
      ...(mapping ? {} : { 'fs on /dev/shm (write/read)': () => node('bulk', 'fs on /dev/shm', sizes.bulk)[field] }),
      'new ArrayBuffer (not shared)': () => node('bulk', 'ArrayBuffer', sizes.bulk)[field],
      ...peerRows((impl) => node('bulk', impl, sizes.bulk)[field]),
    },
  }
}

/** Each row: how to measure it once. Rows of a group are measured interleaved. */
const groups = [
  {
    title: `Lifecycle: exclusive create, ftruncate 4096, map, touch, unmap, close, unlink (µs per cycle, ${sizes.cycles} cycles)`,
    unit: 'µs',
    lowerIsBetter: true,
    reference: 'C',
    // Rows that return an object give their µs here, and how many of the
    // cycles' mappings were still live at the end.
    field: 'usPerCycle',
    rows: {
      C: () => native('lifecycle', sizes.cycles).usPerCycle,
      'posix-shm low-level': () => node('lifecycle', 'low-level', sizes.cycles),
      'posix-shm SharedMemory': () => node('lifecycle', 'SharedMemory', sizes.cycles),
      'fs on /dev/shm (no mapping)': () => node('lifecycle', 'fs on /dev/shm', sizes.cycles),
      ...peerRows((impl) => node('lifecycle', impl, sizes.cycles), unmapping),
    },
  },
  bulkGroup('mapMs', `Bulk: make a fresh ${sizes.bulk / MiB} MiB object and map it (ms)`, 'C'),
  bulkGroup('writeGBs', `Bulk: copy ${sizes.bulk / MiB} MiB from a Buffer into the fresh object (GB/s)`, 'fs on /dev/shm (write/read)'),
  bulkGroup('readGBs', `Bulk: copy the ${sizes.bulk / MiB} MiB back out into a Buffer (GB/s)`, 'fs on /dev/shm (write/read)'),
  {
    title: `Cross-process: ${sizes.stream / MiB} MiB to a child through a ${sizes.region / MiB} MiB region, every round checked (GB/s)`,
    unit: 'GB/s',
    reference: 'child_process IPC (advanced)',
    rows: {
      'posix-shm SharedMemory': () => node('stream', 'posix-shm', sizes.stream, { REGION: sizes.region }).GBs,
      'child_process IPC (advanced)': () => node('stream', 'IPC', sizes.stream, { REGION: sizes.region }).GBs,
      'Unix-domain socket': () => node('stream', 'Unix socket', sizes.stream, { REGION: sizes.region }).GBs,
      ...peerRows((impl) => node('stream', impl, sizes.stream, { REGION: sizes.region }).GBs),
    },
  },
  {
    title: `Latency: ping-pong round trip between two processes (µs, ${sizes.rounds} rounds)`,
    unit: 'µs',
    lowerIsBetter: true,
    reference: 'child_process IPC',
    rows: {
      'posix-shm wait/notify': () => node('latency', 'posix-shm wait', sizes.rounds).usPerRoundTrip,
      'posix-shm waitAsync/notify': () => node('latency', 'posix-shm waitAsync', sizes.rounds).usPerRoundTrip,
      'child_process IPC': () => node('latency', 'IPC', sizes.rounds).usPerRoundTrip,
      'Unix-domain socket': () => node('latency', 'Unix socket', sizes.rounds).usPerRoundTrip,
      'C, futex only': () => native('pingpong', sizes.rounds, 0).usPerRoundTrip,
      'C, spin 50 µs then futex': () => native('pingpong', sizes.rounds, 50).usPerRoundTrip,
    },
  },
]

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const previous = args.has('--render-only') ? JSON.parse(readFileSync(join(bench, 'results.json'), 'utf8')) : undefined
const results = previous?.results ?? []
for (const group of previous ? [] : groups) {
  const samples = Object.fromEntries(Object.keys(group.rows).map((name) => [name, []]))
  const mappingsLeft = {}
  for (let rep = 0; rep < repetitions; rep++) {
    // Interleaved, and in a rotated order each repetition.
    const names = Object.keys(group.rows)
    const order = names.map((_, i) => names[(i + rep) % names.length])
    for (const name of order) {
      const measured = group.rows[name]()
      samples[name].push(typeof measured === 'number' ? measured : measured[group.field])
      if (typeof measured?.mappingsLeft === 'number') mappingsLeft[name] = Math.max(mappingsLeft[name] ?? 0, measured.mappingsLeft)
    }
  }
  const rows = Object.entries(samples).map(([name, values]) => ({
    name,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    ...(name in mappingsLeft ? { mappingsLeft: mappingsLeft[name] } : {}),
  }))
  const reference = rows.find((r) => r.name === group.reference)
  for (const row of rows) row.ratio = row.median / reference.median
  results.push({ title: group.title, unit: group.unit, reference: group.reference, lowerIsBetter: !!group.lowerIsBetter, rows })
}

// Scale: the cost per cycle as objects accumulate, and what stays behind.
const scale = previous?.scale ?? {}
const scaleRows = {
  'posix-shm low-level': ['low-level', sizes.scale],
  'posix-shm SharedMemory': ['SharedMemory', sizes.scale],
  ...(peersDir
    ? {
        'shm-typed-array': ['shm-typed-array', sizes.scale],
        // These two never unmap, and their process aborts near 65,000 live
        // mappings (vm.max_map_count): they stop at 55,000, 60,000 with the
        // 5,000 warm-up cycles.
        'mmap-io (never unmaps)': ['mmap-io', sizes.scale.map((n) => Math.min(n, 55000))],
        'shmmap (never unmaps)': ['shmmap', sizes.scale.map((n) => Math.min(n, 55000))],
      }
    : {}),
}
// Like the groups above: every row `repetitions` times, each a fresh
// process, interleaved in a rotated order; the median of each mark, with
// its min and max. One run's 1,000-cycle windows (about 30 ms) move by
// a third with where the collector happens to run.
if (!previous) {
  const runs = Object.fromEntries(Object.keys(scaleRows).map((row) => [row, []]))
  for (let rep = 0; rep < repetitions; rep++) {
    const names = Object.keys(scaleRows)
    for (const row of names.map((_, i) => names[(i + rep) % names.length])) {
      const [impl, counts] = scaleRows[row]
      runs[row].push(node('scale', impl, counts.join(',')).rows)
    }
  }
  for (const [row, measured] of Object.entries(runs)) {
    scale[row] = measured[0].map((mark, i) => {
      const us = measured.map((rows) => rows[i].usPerCycle)
      return {
        objects: mark.objects,
        usPerCycle: median(us),
        min: Math.min(...us),
        max: Math.max(...us),
        mappings: Math.max(...measured.map((rows) => rows[i].mappings)),
        rssMiB: median(measured.map((rows) => rows[i].rssMiB)),
      }
    })
  }
}

const machine = previous?.machine ?? `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Linux ${process.arch}, Node ${process.version}`
const table = []
for (const group of results) {
  table.push(`**${group.title}**`, '')
  const counted = group.rows.some((row) => 'mappingsLeft' in row)
  table.push(`| implementation | median | min - max | × ${group.reference} |${counted ? ' shm mappings live after the run |' : ''}`)
  table.push(`| --- | ---: | ---: | ---: |${counted ? ' ---: |' : ''}`)
  for (const row of group.rows) {
    const left = counted ? ` ${row.mappingsLeft ?? 'not counted'} |` : ''
    table.push(`| ${row.name} | ${fmt(row.median)} ${group.unit} | ${fmt(row.min)} - ${fmt(row.max)} | ${row.ratio.toFixed(2)} |${left}`)
  }
  table.push('')
}
table.push('**Scale: µs per cycle over the last 1,000 cycles before each mark (objects made after 5,000 warm-up cycles), shm mappings still live (most of any run), resident memory (median)**', '')
table.push('| implementation | objects made | µs per cycle | min - max | × first mark | live mappings | RSS MiB |')
table.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const [name, rows] of Object.entries(scale)) {
  // results.json from before the rows were named in full said 'low-level'.
  const shown = name.startsWith('posix-shm') || Object.values(unmapping).includes(name) ? name : `posix-shm ${name}`
  for (const row of rows) {
    const range = `${fmt(row.min ?? row.usPerCycle)} - ${fmt(row.max ?? row.usPerCycle)}`
    const growth = rows[0].usPerCycle > 0 ? (row.usPerCycle / rows[0].usPerCycle).toFixed(2) : 'n/a'
    table.push(`| ${shown} | ${row.objects} | ${fmt(row.usPerCycle)} | ${range} | ${growth} | ${row.mappings} | ${row.rssMiB.toFixed(0)} |`)
  }
}
const output = table.join('\n')
const runs = previous?.repetitions ?? repetitions
console.log(`${machine}; ${runs} repetition(s), each a fresh process${short ? ' (short mode)' : ''}\n`)
console.log(output)

if (!previous) writeFileSync(join(bench, 'results.json'), `${JSON.stringify({ machine, repetitions, short, results, scale }, null, 2)}\n`)
writeFileSync(join(bench, 'chart.svg'), chart(results))
console.log('\nwrote bench/results.json and bench/chart.svg')

if (args.has('--update-readme')) {
  const readmePath = join(bench, 'README.md')
  const readme = readFileSync(readmePath, 'utf8')
  const begin = '<!-- bench:begin -->'
  const end = '<!-- bench:end -->'
  const section = `${begin}\nMeasured by \`npm run bench\` on ${machine}; ${runs} repetitions, each a fresh process, medians.\n\n![benchmark chart](chart.svg)\n\n${output}\n${end}`
  const start = readme.indexOf(begin)
  const stop = readme.indexOf(end)
  if (start < 0 || stop < 0) throw new Error('bench/README.md has no bench markers')
  writeFileSync(readmePath, readme.slice(0, start) + section + readme.slice(stop + end.length))
  console.log('updated the tables in bench/README.md')
}

if (!args.has('--no-channel')) {
  const passed = ['--short', '--update-readme', '--render-only'].filter((flag) => args.has(flag))
  execFileSync(process.execPath, [join(bench, 'channel.mjs'), ...passed], { cwd: root, stdio: 'inherit' })
}
