// The channel group: one process streaming messages to another, every
// message checked by its consumer, each transport side by side in one run,
// rows interleaved in a rotated order, each measurement a fresh pair of
// processes (bench/channel-workloads.mjs; bench/c/channel.c for the C ring).
// Prints msgs/s and GB/s with ratios to IPC, to the socket (one write per
// message and 64 per writev) and to the C ring; writes
// bench/results-channel.json and bench/chart-channel.svg, and with
// --update-readme the channel tables of bench/README.md.
//
//   node bench/channel.mjs                 1 s per measurement, 5 repetitions (a few minutes)
//   node bench/channel.mjs --short         0.25 s, 1 repetition (under half a minute; .ci/run)
//   node bench/channel.mjs --update-readme
//   node bench/channel.mjs --render-only [--update-readme]
//                                          re-renders from bench/results-channel.json
//
// npm run bench runs it after bench/run.mjs's groups, with the same flags.
// It needs the built package (npm run build). The Channel rows are skipped,
// with "Channel: not available", while posix-shm exports no Channel.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as posixShm from 'posix-shm'

import { chart, fmt } from './chart.mjs'

const bench = dirname(fileURLToPath(import.meta.url))
const root = join(bench, '..')
const args = new Set(process.argv.slice(2))
const short = args.has('--short')
const renderOnly = args.has('--render-only')
const repetitions = short ? 1 : 5
// Seconds each measurement runs after its warm-up (a fifth of this, at least 0.1 s).
const seconds = short ? 0.25 : 1
// The ring of the shared memory rows (C and Channel), the same for all.
const capacity = 4 << 20
const sizes = [64, 1024, 64 << 10, 1 << 20]
const channelAvailable = typeof (posixShm.Channel ?? posixShm.default?.Channel) === 'function'

const IPC = 'child_process IPC (advanced)'
const SOCKET = 'Unix socket, one write per message'
const BATCHED = 'Unix socket, 64 messages per writev'
const C = 'C ring, checked in place'
const oneWayRows = [
  [IPC, 'ipc'],
  [SOCKET, 'socket'],
  [BATCHED, 'socket-batch'],
  [C, 'c:view'],
  ['C ring, copied out', 'c:copy'],
  ['Channel, receive() (a copy)', 'channel'],
  ['Channel, receiveView()/release()', 'channel-view'],
]
const pingpongRows = [
  ['child_process IPC (advanced)', 'pingpong-ipc'],
  ['Unix socket', 'pingpong-socket'],
  ['C rings, spin then futex', 'c:pingpong'],
  ['Channel, receive()', 'pingpong-channel'],
  ['Channel, receiveAsync()', 'pingpong-channel-async'],
]
const ratioTo = { '× IPC': IPC, '× socket': SOCKET, '× socket, 64 per writev': BATCHED, '× C': C }
const pingpongRatioTo = { '× IPC': 'child_process IPC (advanced)', '× socket': 'Unix socket', '× C': 'C rings, spin then futex' }
const isChannel = (impl) => impl.includes('channel')

let ring // the compiled C ring
function measure(impl, size) {
  const options = { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20, timeout: 120_000 }
  if (impl.startsWith('c:')) {
    if (!ring) {
      const build = mkdtempSync(join(tmpdir(), 'posix-shm-bench-channel-'))
      process.on('exit', () => rmSync(build, { recursive: true, force: true }))
      ring = join(build, 'channel')
      execFileSync('cc', ['-O2', '-o', ring, join(bench, 'c', 'channel.c')])
    }
    const mode = impl.slice(2)
    const out = mode === 'pingpong' ? execFileSync(ring, ['pingpong', seconds, capacity].map(String), options) : execFileSync(ring, ['bench', size, seconds, capacity, mode].map(String), options)
    return JSON.parse(out)
  }
  const out = execFileSync(process.execPath, [join(bench, 'channel-workloads.mjs'), impl, String(size), String(seconds), String(capacity)], options)
  return JSON.parse(out.trim().split('\n').pop())
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const stats = (values) => ({ median: median(values), min: Math.min(...values), max: Math.max(...values) })

function run() {
  if (!channelAvailable) console.log('Channel: not available (posix-shm exports no Channel); its rows are skipped\n')
  const tasks = []
  for (const size of sizes) for (const [name, impl] of oneWayRows) tasks.push({ key: `${size} ${name}`, impl, size })
  for (const [name, impl] of pingpongRows) tasks.push({ key: `pingpong ${name}`, impl, size: 64 })
  const wanted = tasks.filter((task) => channelAvailable || !isChannel(task.impl))
  const samples = Object.fromEntries(wanted.map((task) => [task.key, []]))
  const started = Date.now()
  for (let rep = 0; rep < repetitions; rep++) {
    // Interleaved, in a rotated order each repetition.
    const order = wanted.map((_, i) => wanted[(i + rep * 7) % wanted.length])
    for (const task of order) samples[task.key].push(measure(task.impl, task.size))
    console.error(`channel group: repetition ${rep + 1} of ${repetitions} done, ${((Date.now() - started) / 1000).toFixed(0)} s`)
  }
  const oneWay = sizes.map((size) => {
    const rows = oneWayRows.map(([name]) => {
      const got = samples[`${size} ${name}`]
      if (!got) return { name, available: false }
      return { name, available: true, msgsPerSec: stats(got.map((s) => s.msgsPerSec)), GBs: stats(got.map((s) => s.GBs)) }
    })
    for (const row of rows.filter((r) => r.available)) {
      row.ratios = {}
      for (const [label, reference] of Object.entries(ratioTo)) {
        const ref = rows.find((r) => r.name === reference)
        row.ratios[label] = ref?.available ? row.msgsPerSec.median / ref.msgsPerSec.median : null
      }
    }
    return { size, rows }
  })
  const pingRows = pingpongRows.map(([name]) => {
    const got = samples[`pingpong ${name}`]
    if (!got) return { name, available: false }
    return { name, available: true, usPerRoundTrip: stats(got.map((s) => s.usPerRoundTrip)) }
  })
  for (const row of pingRows.filter((r) => r.available)) {
    row.ratios = {}
    for (const [label, reference] of Object.entries(pingpongRatioTo)) {
      const ref = pingRows.find((r) => r.name === reference)
      row.ratios[label] = ref?.available ? row.usPerRoundTrip.median / ref.usPerRoundTrip.median : null
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Linux ${process.arch}, Node ${process.version}`
  return { machine, repetitions, short, seconds, capacity, channelAvailable, oneWay, pingpong: { rows: pingRows } }
}

const sizeName = (size) => (size >= 1 << 20 ? `${size >> 20} MiB` : size >= 1024 ? `${size >> 10} KiB` : `${size} B`)
const rate = (n) => (n >= 1e6 ? `${fmt(n / 1e6)}M` : n >= 1e3 ? `${fmt(n / 1e3)}k` : fmt(n))
const ratio = (r) => (r == null ? '—' : r.toFixed(2))

function render(results) {
  const lines = []
  const ringNote = `${results.capacity >> 20} MiB ring for the C and Channel rows`
  lines.push(`**Channel group: one way, producer process to consumer process, every message checked by the consumer (${ringNote}); 64 B ping-pong round trip**`, '')
  lines.push('| transport | 64 B msgs/s | 1 KiB msgs/s | 64 KiB GB/s | 1 MiB GB/s | 64 B round trip |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: |')
  const pingByName = { [IPC]: 'child_process IPC (advanced)', [SOCKET]: 'Unix socket', [C]: 'C rings, spin then futex' }
  for (const [name] of oneWayRows) {
    const cell = (i, field) => {
      const row = results.oneWay[i].rows.find((r) => r.name === name)
      if (!row.available) return 'not available'
      return field === 'rate' ? rate(row.msgsPerSec.median) : fmt(row.GBs.median)
    }
    const ping = results.pingpong.rows.find((r) => r.name === pingByName[name])
    const rtt = ping?.available ? `${fmt(ping.usPerRoundTrip.median)} µs` : '—'
    lines.push(`| ${name} | ${cell(0, 'rate')} | ${cell(1, 'rate')} | ${cell(2, 'GBs')} | ${cell(3, 'GBs')} | ${rtt} |`)
  }
  for (const row of results.pingpong.rows.filter((r) => r.name.startsWith('Channel'))) {
    const rtt = row.available ? `${fmt(row.usPerRoundTrip.median)} µs` : 'not available'
    lines.push(`| Channel ping-pong, ${row.name.replace('Channel, ', '')} | | | | | ${rtt} |`)
  }
  lines.push('')
  for (const group of results.oneWay) {
    lines.push(`**One way, ${sizeName(group.size)} messages (medians; ratios of msgs/s)**`, '')
    lines.push(`| transport | msgs/s | min - max | GB/s | ${Object.keys(ratioTo).join(' | ')} |`)
    lines.push(`| --- | ---: | ---: | ---: |${' ---: |'.repeat(Object.keys(ratioTo).length)}`)
    for (const row of group.rows) {
      if (!row.available) {
        lines.push(`| ${row.name} | not available | | |${' |'.repeat(Object.keys(ratioTo).length)}`)
        continue
      }
      const m = row.msgsPerSec
      lines.push(`| ${row.name} | ${rate(m.median)} | ${rate(m.min)} - ${rate(m.max)} | ${fmt(row.GBs.median)} | ${Object.values(row.ratios).map(ratio).join(' | ')} |`)
    }
    lines.push('')
  }
  lines.push('**Ping-pong, 64 B, two processes (µs per round trip, lower is better)**', '')
  lines.push(`| transport | median | min - max | ${Object.keys(pingpongRatioTo).join(' | ')} |`)
  lines.push(`| --- | ---: | ---: |${' ---: |'.repeat(Object.keys(pingpongRatioTo).length)}`)
  for (const row of results.pingpong.rows) {
    if (!row.available) {
      lines.push(`| ${row.name} | not available | |${' |'.repeat(Object.keys(pingpongRatioTo).length)}`)
      continue
    }
    const u = row.usPerRoundTrip
    lines.push(`| ${row.name} | ${fmt(u.median)} µs | ${fmt(u.min)} - ${fmt(u.max)} | ${Object.values(row.ratios).map(ratio).join(' | ')} |`)
  }
  return lines.join('\n')
}

function chartGroups(results) {
  const groups = results.oneWay.map((group) => {
    const byRate = group.size <= 1024
    return {
      title: `Channel group, one way, ${sizeName(group.size)} messages (${byRate ? 'M msgs/s' : 'GB/s'})`,
      unit: byRate ? 'M msgs/s' : 'GB/s',
      rows: group.rows.filter((r) => r.available).map((r) => ({ name: r.name, median: byRate ? r.msgsPerSec.median / 1e6 : r.GBs.median })),
    }
  })
  groups.push({
    title: 'Channel group, ping-pong 64 B round trip (µs)',
    unit: 'µs',
    lowerIsBetter: true,
    rows: results.pingpong.rows.filter((r) => r.available).map((r) => ({ name: r.name, median: r.usPerRoundTrip.median })),
  })
  return groups
}

const resultsPath = join(bench, 'results-channel.json')
const results = renderOnly ? JSON.parse(readFileSync(resultsPath, 'utf8')) : run()
const output = render(results)
console.log(`\n${results.machine}; ${results.repetitions} repetition(s) of ${results.seconds} s, each a fresh pair of processes${results.short ? ' (short mode)' : ''}\n`)
console.log(output)
if (!renderOnly) writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(bench, 'chart-channel.svg'), chart(chartGroups(results)))
console.log(renderOnly ? '\nwrote bench/chart-channel.svg' : '\nwrote bench/results-channel.json and bench/chart-channel.svg')

if (args.has('--update-readme')) {
  const readmePath = join(bench, 'README.md')
  const readme = readFileSync(readmePath, 'utf8')
  const begin = '<!-- bench-channel:begin -->'
  const end = '<!-- bench-channel:end -->'
  const note = `Measured by \`npm run bench\` on ${results.machine}; ${results.repetitions} repetitions of ${results.seconds} s, each a fresh pair of processes, medians.`
  const section = `${begin}\n${note}\n\n![channel benchmark chart](chart-channel.svg)\n\n${output}\n${end}`
  const start = readme.indexOf(begin)
  const stop = readme.indexOf(end)
  if (start < 0 || stop < 0) throw new Error('bench/README.md has no bench-channel markers')
  writeFileSync(readmePath, readme.slice(0, start) + section + readme.slice(stop + end.length))
  console.log('updated the channel tables in bench/README.md')
}
