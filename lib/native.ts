// Loads the native binding, after making sure this platform can have one.
// Windows has no POSIX shared memory: there a missing-binding stack trace
// would say nothing useful, so say what is wrong in one sentence instead.

type Binding = typeof import('../native/binding.js')

const SUPPORTED_PLATFORMS: readonly string[] = ['linux', 'darwin', 'freebsd']

function loadBinding(): Binding {
  if (!SUPPORTED_PLATFORMS.includes(process.platform)) {
    const error = new Error(
      `posix-shm needs POSIX shared memory, which ${process.platform} does not have; it supports ${SUPPORTED_PLATFORMS.join(', ')}`,
    )
    Object.defineProperty(error, 'code', { value: 'ERR_SHM_UNSUPPORTED_PLATFORM', enumerable: true })
    throw error
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../native/binding.js') as Binding
}

export const native: Binding = loadBinding()
