// What the specs share: unique names, counts of the process's descriptors
// and mappings as the kernel reports them, and a real second Node process.

import test from 'ava'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { shmUnlink } from 'posix-shm'

/** The package root: ava runs specs from there. */
export const ROOT = process.cwd()

let serial = 0
/** A name no other test (or earlier run) uses. */
export function uniqueName(tag: string): string {
  serial += 1
  // macOS caps a name at 31 bytes, its leading '/' included (PSHMNAMLEN):
  // there a shorter name, the random part standing in for the pid.
  if (process.platform === 'darwin') return `psm_test_${tag.slice(0, 5)}${serial.toString(36)}_${randomBytes(4).toString('hex')}`
  return `psm_test_${tag}_${process.pid}_${serial}_${randomBytes(4).toString('hex')}`
}

/** Whether this is Linux, where /proc, /dev/shm and memfd exist. */
export const isLinux = process.platform === 'linux'

const reasonsGiven = new Set<string>()
/**
 * How a spec declares a test that needs a Linux-only fact (/proc, /dev/shm,
 * memfd, futex, flock(1), unshare, mkfifo, ...): `linuxOnly(reason)('title',
 * fn)`, or `linuxOnly(reason, test.serial)` for a serial one. Elsewhere the
 * test is skipped (ava lists it as skipped) and the reason is printed once.
 */
export function linuxOnly(reason: string, base: typeof test | typeof test.serial = test): typeof test.skip {
  if (isLinux) return base
  if (!reasonsGiven.has(reason)) {
    reasonsGiven.add(reason)
    console.log(`skipped off Linux (${process.platform}): ${reason}`)
  }
  return test.skip
}

/** Whether `/dev/shm` holds the object `name` (Linux shows objects there). */
export function existsInDevShm(name: string): boolean {
  return existsSync(`/dev/shm/${name.replace(/^\//, '')}`)
}

/** Unlinks `name` if it is still there. */
export function removeQuietly(name: string): void {
  try {
    shmUnlink(name)
  } catch {
    // already gone
  }
}

/** A line of /proc/self/maps that maps a shared memory object. */
function isObjectMapping(line: string): boolean {
  // Named objects live in /dev/shm; anonymous ones are memfds of ours.
  return line.includes(' /dev/shm/') || line.includes(' /memfd:posix-shm')
}

/**
 * How many shared memory mappings the kernel lists for this process: the
 * lines of /proc/self/maps backed by /dev/shm or by our memfds (unlinked
 * objects show too, as '(deleted)'). Counting only these keeps the number
 * exact while V8 and malloc map and unmap memory of their own.
 *
 * Off Linux there is no /proc: this and openFdCount() return NaN, so a
 * leak check such as `t.is(mappingCount(), before)` (Object.is, NaN is NaN)
 * holds without checking anything there, while the test's other assertions
 * still run. On Linux they count, as before.
 */
export function mappingCount(): number {
  if (!isLinux) return NaN
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter(isObjectMapping).length
}

/** The same count, as a line of source for a child process to use. */
export const MAPPING_COUNT_SOURCE =
  "() => process.platform !== 'linux' ? NaN : require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(' /dev/shm/') || l.includes(' /memfd:posix-shm')).length"

/** How many descriptors this process has open (NaN off Linux: see mappingCount). */
export function openFdCount(): number {
  if (!isLinux) return NaN
  return readdirSync('/proc/self/fd').length
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  args?: string[]
  /** Default: the package root. */
  cwd?: string
  env?: NodeJS.ProcessEnv
  nodeOptions?: string[]
  /** Caps the child's address space (`ulimit -v`), in KiB. */
  addressSpaceKiB?: number
}

/**
 * Runs `source` (CommonJS JavaScript, with `require('posix-shm')` resolving
 * to this package) in a fresh Node process. Its arguments start at
 * `process.argv[1]`.
 */
export function runNode(source: string, options: RunOptions = {}): Promise<ChildResult> {
  return runProcess([...(options.nodeOptions ?? []), '-e', source, ...(options.args ?? [])], options)
}

/** Runs the script file `path` in a fresh Node process; its arguments start at `process.argv[2]`. */
export function runScript(path: string, options: RunOptions = {}): Promise<ChildResult> {
  return runProcess([...(options.nodeOptions ?? []), path, ...(options.args ?? [])], options)
}

/** Runs the executable `path` (not Node) with `args` in a fresh process. */
export function runProcessFile(path: string, args: string[], options: RunOptions = {}): Promise<ChildResult> {
  return runProcess(args, options, path)
}

function runProcess(argv: string[], options: RunOptions, executable = process.execPath): Promise<ChildResult> {
  // Capped: a shell sets the limit, then becomes the executable with the same argv.
  const [file, args] =
    options.addressSpaceKiB === undefined
      ? [executable, argv]
      : ['/bin/sh', ['-c', `ulimit -v ${options.addressSpaceKiB} && exec "$0" "$@"`, executable, ...argv]]
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/** Whether this process runs as root (some tests need another user). */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/**
 * Whether a thread of process `pid` sleeps in FUTEX_WAIT without the
 * private flag (op 0), which is posix-shm's wait: Node's and libuv's own
 * waits all use private futexes. Read from /proc/<pid>/task/<tid>/syscall:
 * the call's number, then its arguments. A real signal that a waiter is
 * asleep in the kernel, where a delay would only guess.
 */
export function inSharedFutexWait(pid: number): boolean {
  const futex = process.arch === 'arm64' ? '98' : '202'
  return readdirSync(`/proc/${pid}/task`).some((tid) => {
    try {
      const [call, , op] = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')
      return call === futex && op === '0x0'
    } catch {
      return false
    }
  })
}

/**
 * Source for a child under --expose-gc: `settle(done)`, which collects and
 * lets the event loop turn until `done()` holds, and counters of its RSS,
 * shared memory mappings and all mappings (Linux).
 */
export const SETTLE = `
  // Finalizers of external buffers run on the JS thread after a GC, from
  // the event loop, when the runtime gets to them: collect and let the loop
  // turn until done() holds, for at most 10 seconds.
  async function settle(done = () => false, rounds = 4) {
    const deadline = Date.now() + 10000
    for (let i = 0; (i < rounds || !done()) && Date.now() < deadline; i++) {
      gc()
      await new Promise((resolve) => setTimeout(resolve, i < rounds ? 0 : 10))
    }
  }
  const rss = () => Number(require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\\s+(\\d+)/)[1]) * 1024
  const shmMappings = ${MAPPING_COUNT_SOURCE}
  const allMappings = () => require('fs').readFileSync('/proc/self/maps', 'utf8').trimEnd().split('\\n').length
`

