// Loads the native binding, and says plainly why when it cannot: a platform
// with no POSIX shared memory or no build of ours names the platform and
// the supported list; a supported platform whose binary package is missing
// names the package to install. A bare "Cannot find native binding" stack
// helps nobody.

import { stateError, systemError } from './errors'

// napi-rs types what it generates (native/binding.d.ts); the plain entries
// are typed from their table in src/node/entries.rs (native/entries.d.ts).
type Binding = typeof import('../native/binding.js') & import('../native/entries').Entries

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

/** What we read of Deno's global, where the runtime is Deno. */
interface DenoGlobal {
  build: { env?: string }
  permissions: { querySync(descriptor: { name: string; path?: string }): { state: string } }
}

const deno = (globalThis as { Deno?: DenoGlobal }).Deno

function isMusl(): boolean {
  // Deno says which C library it was built for; its process.report needs
  // --allow-sys, which posix-shm does not otherwise need.
  if (deno !== undefined) return deno.build.env === 'musl'
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return report?.header?.glibcVersionRuntime === undefined
}

function runningKey(): string {
  const base = `${process.platform}-${process.arch}`
  return process.platform === 'linux' ? `${base}-${isMusl() ? 'musl' : 'gnu'}` : base
}

/**
 * What loading posix-shm needs of Deno's permissions. Deno lets a package
 * in node_modules read its own files; from a checkout, reading dist/ needs
 * --allow-read anyway, and Deno names that itself.
 */
const DENO_PERMISSIONS = [
  { query: { name: 'ffi' }, flag: '--allow-ffi', why: 'to load a native addon' },
  { query: { name: 'env' }, flag: '--allow-env', why: "napi-rs's loader reads NAPI_RS_* variables" },
  ...(process.platform === 'linux'
    ? [{ query: { name: 'read', path: '/usr/bin/ldd' }, flag: '--allow-read', why: "napi-rs's loader reads /usr/bin/ldd to tell glibc from musl" }]
    : []),
]

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
    if (deno !== undefined) {
      // Without these Deno refuses the loader's reads or the dlopen, which
      // would otherwise read as a missing package.
      const missing = DENO_PERMISSIONS.filter(({ query }) => deno.permissions.querySync(query).state !== 'granted')
      if (missing.length > 0) {
        throw loadError(
          `${packageName} cannot load its native binary in Deno without ` +
            missing
              .map(({ flag, why }) => `${flag} (${why})`)
              .join(', ')
              .replace(/, (?=[^,]*$)/, ' and ') +
            `; run again with ${DENO_PERMISSIONS.map(({ flag }) => flag).join(' ')}`,
          'ERR_SHM_DENO_PERMISSION',
          cause,
        )
      }
    }
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

// The copy-mode switch as JavaScript sees it. The native side also reads it
// from the C environment when it loads, but in Bun a variable set from
// JavaScript (process.env.X = '1' before the require) never gets there.
if (process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS === '1') native.refuseExternalBuffers()

// Every error the binding throws is made by these, in this environment
// (each worker loads the binding again, and registers again).
native.setErrorFactories(systemError, stateError)
