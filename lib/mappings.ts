// Which ArrayBuffers are mappings `mmap` handed out, and which of those a
// SharedMemory owns. WeakSets, so that this bookkeeping never keeps a
// buffer alive. Importing this module has no effect: the guards that read
// it are installed by import-effects.ts.

import { isDataView, isTypedArray } from 'node:util/types'
import * as workerThreads from 'node:worker_threads'

const mapped = new WeakSet<ArrayBuffer>()
/** The mappings a SharedMemory owns: only its close() may unmap them. */
const owned = new WeakSet<ArrayBuffer>()
/** Whether anything reads `mapped` (Node 20 has no transfer() to guard). */
let tracking = false

/** Records every mapping from now on: called once there is a guard that asks. */
export function trackMappings(): void {
  tracking = true
}

/** Records `buffer` as a mapping, where there is something to guard it from. */
export function trackMapping(buffer: ArrayBuffer): ArrayBuffer {
  // A WeakSet entry is not free (an ephemeron write barrier per mapping).
  if (tracking) mapped.add(buffer)
  return buffer
}

/** Whether `buffer` is a mapping `mmap` handed out (recorded once tracking). */
export function isMapping(buffer: ArrayBuffer): boolean {
  return mapped.has(buffer)
}

/** Records `buffer` as the mapping of a SharedMemory. */
export function markOwned(buffer: ArrayBuffer): void {
  owned.add(buffer)
}

// The engine's own getters, not a property lookup on the view, which an
// own `buffer` property defined on it would answer.
const typedArrayBuffer = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'buffer')!
  .get as (this: ArrayBufferView) => ArrayBufferLike
const dataViewBuffer = Object.getOwnPropertyDescriptor(DataView.prototype, 'buffer')!.get as (this: DataView) => ArrayBufferLike

/** The ArrayBuffer of `value`, itself one or a view on one. */
function bufferOf(value: ArrayBuffer | ArrayBufferView): ArrayBufferLike {
  if (isTypedArray(value)) return typedArrayBuffer.call(value)
  if (isDataView(value)) return dataViewBuffer.call(value)
  return value as ArrayBuffer
}

/** Whether `value` (an ArrayBuffer or a view on one) is a SharedMemory's mapping. */
export function isOwned(value: ArrayBuffer | ArrayBufferView): boolean {
  return owned.has(bufferOf(value) as ArrayBuffer)
}

// Since Node 24, `markAsUntransferable(buffer)` also gives the buffer a
// detach key, and Node-API's napi_detach_arraybuffer then ends the process
// (a failed V8 Check) instead of returning an error. No question tells such
// a buffer apart beforehand (Node reports every external buffer as marked
// untransferable). So where the mark stops detaching, the facade detaches
// our buffers itself with the engine's transfer(0), which lets go of the
// memory (nothing is moved) and throws a TypeError for a marked buffer:
// that one stays attached, showing the private placeholder (zeros) or, for
// a lent channel view, the ring.
type Untransferable = { markAsUntransferable?: (value: object) => void }
type Transfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer
const untransferable = workerThreads as unknown as Untransferable
/** The engine's own transfer(), taken before import-effects.ts patches it. */
const engineTransfer = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer
let markStopsDetaching: boolean | undefined

/** Whether this runtime's untransferable mark stops detaching (tried once, on a buffer of our own). */
function markingStopsDetaching(): boolean {
  if (markStopsDetaching === undefined) {
    markStopsDetaching = false
    if (typeof untransferable.markAsUntransferable === 'function' && typeof engineTransfer === 'function') {
      const probe = new ArrayBuffer(1)
      untransferable.markAsUntransferable(probe)
      try {
        engineTransfer.call(probe)
      } catch {
        markStopsDetaching = true
      }
    }
  }
  return markStopsDetaching
}

/**
 * Runs `release`, a native call that unmaps or gives back the memory of
 * `value` (an ArrayBuffer or a view on one) and detaches it when told to;
 * where detaching is ours to do (see above), does it afterwards. If
 * `release` throws, nothing is detached, unless `evenOnError` (a channel
 * gives its lent view back, detached, even when it then fails).
 */
export function releaseAndDetach(
  value: ArrayBuffer | ArrayBufferView | undefined,
  release: (detach: boolean) => void,
  evenOnError = false,
): void {
  const ours = value !== undefined && markingStopsDetaching()
  if (!ours) return release(true)
  let released = false
  try {
    release(false)
    released = true
  } finally {
    if (released || evenOnError) {
      try {
        engineTransfer!.call(bufferOf(value) as ArrayBuffer, 0)
      } catch (error) {
        if (!(error instanceof TypeError)) throw error
      }
    }
  }
}
