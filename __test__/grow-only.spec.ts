// SharedMemory.create with `exclusive: false` grows an existing object to
// the size asked for, and never shrinks it, even when several processes
// create the same name at once with different sizes.

import { join } from 'node:path'

import test from 'ava'
import { SharedMemory } from 'posix-shm'
import { ROOT, removeQuietly, runScript, uniqueName } from './helpers'

const FIXTURES = join(ROOT, '__test__', 'fixtures')
const ROUNDS = Number(process.env.POSIX_SHM_GROW_ROUNDS ?? 1000)

test('8 processes create one name at once with different sizes, 1,000 rounds: each ends with at least its size, and none dies of SIGBUS', async (t) => {
  const control = uniqueName('grow')
  const shm = SharedMemory.create(control, 4096)
  t.teardown(() => {
    shm.close()
    removeQuietly(control)
    for (let round = 1; round <= ROUNDS; round++) removeQuietly(`${control}_round_${round}`)
  })
  let died: string | undefined
  const growers = Array.from({ length: 8 }, (_, index) =>
    runScript(join(FIXTURES, 'grower.cjs'), { args: [control, String(ROUNDS), String(index)] }).then((r) => {
      if (r.signal !== null || r.code !== 0) died ??= `grower ${index}: ${r.signal ?? `exit ${r.code}`} ${r.stderr}`
      return r
    }),
  )
  const reach = async (offset: number, target: number) => {
    for (let now = shm.atomicLoad(offset); now < target; now = shm.atomicLoad(offset)) {
      if (died !== undefined) throw new Error(died)
      await shm.waitAsync(offset, now, 1000)
    }
  }
  await reach(4, 8)
  for (let round = 1; round <= ROUNDS; round++) {
    shm.atomicStore(0, round)
    shm.notify(0)
    await reach(12, 8 * round)
    removeQuietly(`${control}_round_${round}`)
  }
  const results = await Promise.all(growers)
  for (const r of results) {
    t.is(r.signal, null, r.stderr)
    t.is(r.code, 0, r.stderr)
  }
  t.is(shm.atomicLoad(12), 8 * ROUNDS, 'every grower touched its last byte twice, every round')
  t.is(shm.atomicLoad(16), 0, 'no grower found the object smaller than it asked')
  t.log(`${ROUNDS} rounds x 8 processes, sizes 4 to 32 KiB: no shrink`)
})

test('create with exclusive: false never shrinks an existing larger object', (t) => {
  const name = uniqueName('grow')
  t.teardown(() => removeQuietly(name))
  using big = SharedMemory.create(name, 65536)
  big.buffer[65535] = 7
  using small = SharedMemory.create(name, 4096, { exclusive: false })
  t.is(small.size, 4096)
  t.true(big.check())
  t.is(big.buffer[65535], 7)
})
