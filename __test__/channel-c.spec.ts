// A C peer written from CHANNEL-LAYOUT.md alone (bench/c/channel.c, the
// benchmark's limit) and a posix-shm Channel, each way: the layout document
// is enough to be either end. Every message is checked as the C program
// checks it: a u64 sequence number in its first 8 bytes, byte i holding
// (i >> 6) & 255, the last byte the sequence number's low byte.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Channel } from 'posix-shm'

import { ROOT, linuxOnly, runProcessFile, uniqueName } from './helpers'

/** The C peer, compiled once; undefined (with the reason printed) without a C compiler. */
const peer = (() => {
  if (process.platform !== 'linux') return undefined
  const dir = mkdtempSync(join(tmpdir(), 'posix-shm-c-peer-'))
  const binary = join(dir, 'channel')
  try {
    execFileSync('cc', ['-O2', '-o', binary, join(ROOT, 'bench', 'c', 'channel.c')], { stdio: 'pipe' })
  } catch (error) {
    console.log(`channel-c: skipped, the C peer does not compile here: ${(error as Error).message}`)
    rmSync(dir, { recursive: true, force: true })
    return undefined
  }
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return binary
})()

const cTest = peer === undefined ? test.skip : linuxOnly('the C peer uses futex and F_OFD_SETLK')

function message(size: number, seq: number): Buffer {
  const m = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) m[i] = (i >> 6) & 0xff
  m.writeBigUInt64LE(BigInt(seq), 0)
  m[size - 1] = seq & 0xff
  return m
}

/** Messages of each size: fewer large ones, whose checks are slow in JavaScript. */
const COUNTS: [number, number][] = [
  [64, 20_000],
  [1000, 20_000],
  [40_000, 1_000],
]

for (const [size, COUNT] of COUNTS) {
  cTest(`a C sender by the layout document alone: Node receives ${COUNT} messages of ${size} bytes through a 64 KiB ring, each as sent`, async (t) => {
    const name = uniqueName('chcs')
    const channel = Channel.create(name, { capacity: 64 * 1024 })
    try {
      const sender = runProcessFile(peer!, ['send', name, String(size), String(COUNT)])
      let seq = 0
      for await (const received of channel) {
        if (!received.equals(message(size, seq))) t.fail(`message ${seq} differs`)
        seq += 1
      }
      t.is(seq, COUNT)
      const result = await sender
      t.is(result.code, 0, result.stderr)
    } finally {
      channel.close()
      channel.unlink()
    }
  })

  cTest(`a C receiver by the layout document alone checks ${COUNT} messages of ${size} bytes Node sends, then the end`, async (t) => {
    const name = uniqueName('chcr')
    const channel = Channel.create(name, { capacity: 64 * 1024 })
    try {
      const receiver = runProcessFile(peer!, ['receive', name])
      for (let seq = 0; seq < COUNT; seq++) await channel.sendAsync(message(size, seq))
      channel.end()
      const result = await receiver
      t.is(result.code, 0, result.stderr)
      const report = JSON.parse(result.stdout) as { messages?: number; count?: number }
      t.is(report.messages ?? report.count, COUNT, result.stdout)
    } finally {
      channel.close()
      channel.unlink()
    }
  })
}
