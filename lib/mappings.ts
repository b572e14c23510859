// Which ArrayBuffers are mappings `mmap` handed out, and which of those a
// SharedMemory owns. WeakSets, so that this bookkeeping never keeps a
// buffer alive. Importing this module has no effect: the guards that read
// it are installed by import-effects.ts.

import { isDataView, isTypedArray } from 'node:util/types'

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

/** Whether `value` (an ArrayBuffer or a view on one) is a SharedMemory's mapping. */
export function isOwned(value: ArrayBuffer | ArrayBufferView): boolean {
  let buffer: unknown = value
  if (isTypedArray(value)) buffer = typedArrayBuffer.call(value)
  else if (isDataView(value)) buffer = dataViewBuffer.call(value)
  return owned.has(buffer as ArrayBuffer)
}
