// Loads the native binding, and says plainly why when it cannot: a platform
// with no POSIX shared memory or no build of ours names the platform and
// the supported list; a supported platform whose binary package is missing
// names the package to install. A bare "Cannot find native binding" stack
// helps nobody.

/**
 * The calls src/fast_calls.rs registers as plain Node-API callbacks (they
 * skip napi-rs's per-call glue), which napi-rs therefore leaves out of the
 * typings it generates.
 */
interface FastCalls {
  /** shm_open(name, openFlags, mode); returns the descriptor. */
  shmOpenNamed(name: string, openFlags: number, mode: number): number
  /** shm_unlink(name). */
  shmUnlinkNamed(name: string): void
  /** ftruncate(fd, length). */
  shmFtruncate(fd: number, length: number | bigint): void
  /** close(fd). */
  shmClose(fd: number): void
  /** Maps `length` bytes of `fd` from `offset`, MAP_SHARED; one ArrayBuffer over the mapping. */
  mmapShared(length: number, protections: number, fd: number, offset: number): ArrayBuffer
  /** Detaches the ArrayBuffer (given it or a view on it) and unmaps its memory. */
  munmapShared(mapped: ArrayBuffer | ArrayBufferView): void
  /** Takes ownership of `fd`, which must be open and not already owned (ERR_SHM_FD_OWNED); returns the handle whose finalizer closes it. */
  fdOwnerAdopt(fd: number): object
  /** Closes the descriptor a handle from `fdOwnerAdopt` owns; later calls do nothing. */
  fdOwnerClose(handle: object): void
  /** Waits on a word of a mapping; 0 ok, 1 not-equal, 2 timed-out. */
  waitInBuffer(buffer: ArrayBuffer, byteOffset: number, value: number, timeoutMs: number): number
  /** Wakes up to `count` waiters on a word of a mapping; returns how many were asleep. */
  notifyInBuffer(buffer: ArrayBuffer, byteOffset: number, count: number): number
  /** Compares a word of a mapping with `value` through the kernel where it can: 1 differs, 2 equal. */
  peekInBuffer(buffer: ArrayBuffer, byteOffset: number, value: number): number
}

type Binding = typeof import('../native/binding.js') & FastCalls

// The supported targets are the ones package.json builds (napi.targets).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { name: packageName, napi } = require('../package.json') as { name: string; napi: { targets: string[] } }

/** napi-rs's name for a Rust target triple: 'x86_64-unknown-linux-gnu' -> 'linux-x64-gnu'. */
function platformKey(triple: string): string {
  const [arch, vendor, os, abi] = triple.split('-')
  const cpu = arch === 'x86_64' ? 'x64' : arch === 'aarch64' ? 'arm64' : arch
  if (vendor === 'apple') return `darwin-${cpu}`
  if (abi === undefined) return `${os}-${cpu}`
  return `${os}-${cpu}-${abi}`
}

const SUPPORTED: readonly string[] = napi.targets.map(platformKey)

function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return report?.header?.glibcVersionRuntime === undefined
}

function runningKey(): string {
  const base = `${process.platform}-${process.arch}`
  return process.platform === 'linux' ? `${base}-${isMusl() ? 'musl' : 'gnu'}` : base
}

function loadError(message: string, code: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause })
  Object.defineProperty(error, 'code', { value: code, enumerable: true })
  return error
}

function loadBinding(): Binding {
  // On Linux both C libraries are built for each supported CPU, so the
  // (slow to detect) libc matters only for naming the package below.
  const base = `${process.platform}-${process.arch}`
  if (!SUPPORTED.some((key) => key === base || key.startsWith(`${base}-`))) {
    const here = process.platform === 'linux' ? runningKey() : base
    const why = process.platform === 'win32' ? ' (Windows has no POSIX shared memory)' : ''
    throw loadError(
      `${packageName} has no build for ${here}${why}; it supports ${SUPPORTED.join(', ')}`,
      'ERR_SHM_UNSUPPORTED_PLATFORM',
    )
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../native/binding.js') as Binding
  } catch (cause) {
    const here = runningKey()
    const binaryPackage = `${packageName}-${here}`
    throw loadError(
      `${packageName} could not load its native binary for ${here}. It comes in the package ${binaryPackage}, ` +
        `which npm installs as an optional dependency; it is missing when installing with --omit=optional or ` +
        `--no-optional, or from a lockfile made on another platform (an npm bug). Install it with ` +
        `\`npm install ${binaryPackage}\`, or build from source with \`npm run build\` in a clone.`,
      'ERR_SHM_BINDING_MISSING',
      cause,
    )
  }
}

export const native: Binding = loadBinding()
