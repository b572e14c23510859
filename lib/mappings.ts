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

// Since Node 24, `markAsUntransferable(buffer)` also makes the buffer
// impossible to detach, and Node-API's napi_detach_arraybuffer then ends
// the process (a failed V8 `Check`) instead of returning an error. Such a
// buffer is unmapped without detaching: it then shows a private
// placeholder (zeros; writes land nowhere shared) until it is collected.
type Untransferable = { markAsUntransferable?: (value: object) => void; isMarkedAsUntransferable?: (value: object) => boolean }
const untransferable = workerThreads as unknown as Untransferable
let markStopsDetaching: boolean | undefined

/** Whether this runtime's untransferable mark also stops detaching (tried once, on a buffer of our own). */
function markingStopsDetaching(): boolean {
  if (markStopsDetaching === undefined) {
    markStopsDetaching = false
    const transfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer
    if (typeof untransferable.markAsUntransferable === 'function' && typeof untransferable.isMarkedAsUntransferable === 'function' && typeof transfer === 'function') {
      const probe = new ArrayBuffer(1)
      untransferable.markAsUntransferable(probe)
      try {
        transfer.call(probe)
      } catch {
        markStopsDetaching = true
      }
    }
  }
  return markStopsDetaching
}

/** Whether the ArrayBuffer of `value` can be detached without ending the process. */
export function canDetach(value: ArrayBuffer | ArrayBufferView): boolean {
  return !(markingStopsDetaching() && untransferable.isMarkedAsUntransferable!(bufferOf(value)))
}
