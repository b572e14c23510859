// posix-shm demo: stream 1 GiB from this process to a forked consumer
// through a 64 MiB shared memory region, round by round, with the consumer
// checking every byte of every round; then send the same bytes over
// child_process IPC and print both throughputs side by side.
//
//   npm run demo                      1 GiB through 64 MiB
//   node examples/demo.mjs --total-mib 256 --region-mib 16
//
// Ctrl-C at any point removes the shared memory object before exiting.

import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SharedMemory } from 'posix-shm'

const MiB = 1024 * 1024
const { values: options } = parseArgs({
  options: {
    'total-mib': { type: 'string', default: '1024' },
    'region-mib': { type: 'string', default: '64' },
    role: { type: 'string', default: 'producer' },
    name: { type: 'string' },
  },
})
const REGION = Number(options['region-mib']) * MiB
const TOTAL = Number(options['total-mib']) * MiB
const ROUNDS = Math.ceil(TOTAL / REGION)

/**
 * The bytes of round `round`: two patterns, alternating, so a round that
 * left the previous round's data in place is caught. Both sides make them
 * the same way, before any timing starts.
 */
function roundPatterns() {
  return [0, 1].map((seed) => {
    const words = new Uint32Array(REGION / 4)
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761) ^ (seed * 0x9e3779b9)
    return Buffer.from(words.buffer)
  })
}

if (options.role === 'consumer') {
  const expected = roundPatterns()
  const shm = SharedMemory.open(options.name)
  process.on('message', (message) => {
    // Shared memory rounds name the round; IPC rounds carry the bytes.
    const data = message.data ?? shm.buffer
    const ok = Buffer.compare(data, expected[message.round % 2]) === 0
    process.send({ round: message.round, ok })
  })
  process.on('disconnect', () => shm.close())
  process.send('ready')
} else {
  const name = `posix-shm-demo-${process.pid}`
  const shm = SharedMemory.create(name, REGION)
  let consumer
  const cleanUp = () => {
    consumer?.kill()
    shm.unlink()
    shm.close()
  }
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      cleanUp()
      console.log(`\n${signal}: removed /${name}`)
      process.exit(130)
    })
  }

  try {
    const patterns = roundPatterns()
    consumer = fork(fileURLToPath(import.meta.url), ['--role', 'consumer', '--name', name, '--region-mib', String(REGION / MiB)], {
      serialization: 'advanced',
    })
    await once(consumer, 'message')

    async function run(sendRound) {
      const start = process.hrtime.bigint()
      for (let round = 0; round < ROUNDS; round++) {
        sendRound(round)
        const [reply] = await once(consumer, 'message')
        if (reply.round !== round || !reply.ok) throw new Error(`the consumer found round ${round} wrong`)
      }
      return Number(process.hrtime.bigint() - start) / 1e9
    }

    const viaShm = await run((round) => {
      shm.buffer.set(patterns[round % 2])
      consumer.send({ round })
    })
    const viaIpc = await run((round) => consumer.send({ round, data: patterns[round % 2] }))

    const bytes = ROUNDS * REGION
    const row = (label, seconds) =>
      `${label.padEnd(44)}${`${seconds.toFixed(3)} s`.padStart(10)}${`${(bytes / seconds / 1e9).toFixed(2)} GB/s`.padStart(13)}`
    console.log(`${(bytes / MiB).toFixed(0)} MiB to a child process in ${ROUNDS} rounds of ${REGION / MiB} MiB; the child checked every byte`)
    console.log()
    console.log(`${'method'.padEnd(44)}${'time'.padStart(10)}${'throughput'.padStart(13)}`)
    console.log(row(`posix-shm SharedMemory (${REGION / MiB} MiB region)`, viaShm))
    console.log(row('child_process IPC (advanced serialization)', viaIpc))
    console.log()
    console.log(`shared memory: ${(viaIpc / viaShm).toFixed(1)}x the throughput of IPC`)
  } finally {
    consumer?.disconnect()
    cleanUp()
  }
}
