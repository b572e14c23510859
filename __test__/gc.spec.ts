// Mappings that become garbage are unmapped by their finalizers, and an
// explicit munmap is never followed by a second unmap of the same address.
// Each runs in a fresh process under --expose-gc so the counts are its own.

import { readFileSync } from 'node:fs'

import test from 'ava'
import { isLinux, linuxOnly, runNode, SETTLE } from './helpers'

/** Linux's cap on a process's mappings; some distributions raise it to 1,048,576. */
const MAX_MAP_COUNT = isLinux ? Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8')) : NaN
/** Above this, reaching the budget means most of a million mappings: too slow for a test. */
const CAP_WE_REACH = 131_072

linuxOnly('it reads /proc/self/maps and /proc/self/status')('100,000 map-and-drop cycles leave the mappings and the resident size flat', async (t) => {
  const child = await runNode(
    `${SETTLE}
    const { mmap, shmOpenAnonymous, shmFtruncate, constants } = require('posix-shm')
    const { native } = require('./dist/native')
    ;(async () => {
      const fd = shmOpenAnonymous()
      shmFtruncate(fd, 64 * 1024)
      // In a function of its own, so no stack slot keeps the last buffer alive.
      const mapAndDrop = (count) => {
        for (let i = 0; i < count; i++) {
          const bytes = new Uint8Array(mmap(64 * 1024, ['read', 'write'], fd))
          bytes[(i * 4096) % bytes.length] = i & 0xff
        }
        return shmMappings()
      }
      // Warm up, so the baseline includes V8's own steady state.
      mapAndDrop(2000)
      await settle(() => shmMappings() === 0)
      const start = { shm: shmMappings(), all: allMappings(), rss: rss() }
      const samples = []
      let peakShm = 0
      for (let round = 0; round < 5; round++) {
        peakShm = Math.max(peakShm, mapAndDrop(20000))
        await settle(() => shmMappings() <= start.shm)
        samples.push({ shm: shmMappings(), all: allMappings(), rss: rss(), reserved: native.reservedRangeCount() })
      }
      console.log(JSON.stringify({ start, samples, peakShm }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.code, 0, child.stderr)
  const { start, samples, peakShm } = JSON.parse(child.stdout) as {
    peakShm: number
    start: { shm: number; all: number; rss: number }
    samples: Array<{ shm: number; all: number; rss: number; reserved: number }>
  }
  const end = samples[samples.length - 1]
  t.log(
    `shm mappings ${start.shm} -> ${samples.map((s) => s.shm).join(', ')}; ` +
      `all mappings ${start.all} -> ${samples.map((s) => s.all).join(', ')}; ` +
      `RSS ${(start.rss / 2 ** 20).toFixed(1)} MiB -> ${(end.rss / 2 ** 20).toFixed(1)} MiB`,
  )
  // Mappings were live during each round, and every one was unmapped.
  t.true(peakShm > start.shm)
  for (const sample of samples) t.is(sample.shm, start.shm)
  // No address range is held back either (a mapping or a placeholder).
  for (const sample of samples) t.is(sample.reserved, 0)
  // The process's other mappings (V8's heap, malloc arenas) may grow by a
  // few dozen while the heap finds its size under load, then stay flat: a
  // leak of even one cycle in a hundred would add 200 a round.
  t.true(end.all - samples[1].all <= 64, `all mappings ${samples[1].all} -> ${end.all}`)
  t.true(end.rss - start.rss < 20 * 2 ** 20, `RSS grew by ${end.rss - start.rss} bytes`)
})

linuxOnly('it reads /proc/self/maps and vm.max_map_count')('an explicit munmap followed by garbage collection never unmaps twice, even when the address is reused', async (t) => {
  const child = await runNode(
    `${SETTLE}
    const { mmap, munmap, shmOpenAnonymous, shmFtruncate } = require('posix-shm')
    ;(async () => {
      const fd = shmOpenAnonymous()
      shmFtruncate(fd, 8192)
      let collected = 0
      const registry = new FinalizationRegistry(() => collected++)
      // In a function of its own, so no stack slot keeps a first buffer alive.
      const churn = () => {
        const survivors = []
        for (let i = 0; i < 300; i++) {
          const first = mmap(8192, ['read', 'write'], fd)
          registry.register(first, i)
          munmap(first)
          // The kernel is likely to hand the same address to this mapping
          // while the first ArrayBuffer still waits for its finalizer.
          const second = new Int32Array(mmap(8192, ['read', 'write'], fd))
          second[2 + i] = i
          survivors.push(second)
        }
        return survivors
      }
      const survivors = churn()
      const before = shmMappings()
      // Wait until every unmapped buffer has been collected, so their
      // finalizers have had every chance to run.
      await settle(() => collected === 300, 8)
      const after = shmMappings()
      let sum = 0
      survivors.forEach((view, i) => (sum += view[2 + i] + view.length))
      console.log(JSON.stringify({ before, after, sum, collected, lengths: survivors.every((v) => v.length === 2048) }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as { before: number; after: number; sum: number; collected: number; lengths: boolean }
  t.is(result.collected, 300)
  t.is(result.after, result.before)
  t.true(result.before >= 1)
  t.true(result.lengths)
  t.is(result.sum, (299 * 300) / 2 + 300 * 2048)
})

if (isLinux && MAX_MAP_COUNT > CAP_WE_REACH) {
  console.log(`gc.spec: skipping the mapping-budget test: vm.max_map_count is ${MAX_MAP_COUNT}, above the ${CAP_WE_REACH} this test can reach in reasonable time`)
}
;(MAX_MAP_COUNT > CAP_WE_REACH ? test.skip : linuxOnly('it reads vm.max_map_count and /proc/self/maps'))('a loop that maps and drops without yielding gets ERR_SHM_MAPPING_BUDGET at posix-shm\'s share of vm.max_map_count, not a process abort; the loop turning gives the mappings back', async (t) => {
  // Node unmaps collected buffers only from the event loop, so this loop
  // keeps every mapping it drops. At the system cap V8 itself could not map
  // and would abort the process: posix-shm must stop first, with an error.
  const child = await runNode(
    `${SETTLE}
    const { mmap, shmOpenAnonymous, shmFtruncate, SharedMemory } = require('posix-shm')
    ;(async () => {
      const fd = shmOpenAnonymous()
      shmFtruncate(fd, 4096)
      const cap = Number(require('fs').readFileSync('/proc/sys/vm/max_map_count', 'utf8'))
      let made = 0
      let error
      try {
        for (;;) {
          new Uint8Array(mmap(4096, ['read', 'write'], fd))[0] = 1
          made++
        }
      } catch (e) {
        error = { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }
      }
      const atLimit = shmMappings()
      await settle(() => shmMappings() === 0)
      const afterLoop = shmMappings()
      const again = new Uint8Array(mmap(4096, ['read'], fd))[0]
      console.log(JSON.stringify({ cap, made, error, atLimit, afterLoop, again }))
    })()
    `,
    { nodeOptions: ['--expose-gc'] },
  )
  t.is(child.signal, null, child.stderr)
  t.is(child.code, 0, child.stderr)
  const result = JSON.parse(child.stdout) as {
    cap: number
    made: number
    error: { name: string; code: string; errno?: number; syscall?: string; message: string }
    atLimit: number
    afterLoop: number
    again: number
  }
  t.log(`vm.max_map_count ${result.cap}: ${result.made} mappings made before ERR_SHM_MAPPING_BUDGET; ${result.afterLoop} left once the loop turned`)
  t.is(result.made, Math.floor(result.cap / 4) * 3)
  t.is(result.atLimit, result.made)
  t.like(result.error, { name: 'ShmError', code: 'ERR_SHM_MAPPING_BUDGET' })
  // A state of posix-shm's, not a failed system call: no errno, no syscall.
  t.is(result.error.errno, undefined)
  t.is(result.error.syscall, undefined)
  t.regex(result.error.message, /vm\.max_map_count/)
  t.is(result.afterLoop, 0)
  t.is(result.again, 1)
})
