// posix-shm: POSIX shared memory for Node.js.

// For its effects: importing posix-shm guards ArrayBuffer.prototype.transfer
// against moving a mapping, and pins moved mappings at 'exit'.
import './import-effects'

export { constants } from './constants'
export { ShmError } from './errors'
export type { OpenFlag, Permission, Protection } from './keywords'
export {
  fchmod,
  fchown,
  fstat,
  mmap,
  munmap,
  shmClose,
  shmFtruncate,
  shmOpen,
  shmOpenAnonymous,
  shmUnlink,
  type MmapOptions,
  type OpenOptions,
  type ShmStats,
} from './shm'
export { withMmap, withMmappedShm, withOpenShm, type MapOptions } from './scoped'
export {
  SharedMemory,
  type AnonymousOptions,
  type CreateOptions,
  type FromFdOptions,
  type OpenSharedOptions,
} from './shared-memory'
export {
  Channel,
  type AsyncOptions,
  type ChannelCreateOptions,
  type ChannelData,
  type ChannelOptions,
  type ReceiveManyOptions,
  type ReceiveOptions,
} from './channel'
export { notify, wait, waitAsync, type WaitAsyncOptions, type WaitResult } from './wait'
