// The ArrayBuffers that `mmap` handed out, and what guards them when they
// are moved. Importing this module patches ArrayBuffer.prototype in this
// realm and adds an 'exit' listener to this thread's process object.
//
// Since Node 21, `ArrayBuffer.prototype.transfer()` (and
// `transferToFixedLength()`) move an ArrayBuffer's memory to a new buffer
// that `postMessage` can move to another thread. When the worker that
// mapped it exits, Node finalizes the mapping although the other thread
// still reads it. Two guards:
// - on 'exit', before Node tears the thread down, the native side keeps
//   (pins) every mapping of this thread whose buffer was moved, in any
//   realm (src/external.rs, `pin_moved`). `worker.terminate()` emits no
//   'exit' in the worker: there the second guard is all there is;
// - in this realm, transfer() refuses a mapping with a clear error, since
//   moving one is almost always a mistake. Other realms (`vm` contexts)
//   and references to transfer() taken before this import are not patched.

import { isDataView, isTypedArray } from 'node:util/types'

import { withCode } from './errors'
import { native } from './native'

process.once('exit', () => native.pinMovedMappings())

const mapped = new WeakSet<ArrayBuffer>()
/** The mappings a SharedMemory owns: only its close() may unmap them. */
const owned = new WeakSet<ArrayBuffer>()
/** Whether this runtime has a method to guard (Node 20 has neither). */
let guarding = false

/** Records `buffer` as a mapping, where there is something to guard it from. */
export function trackMapping(buffer: ArrayBuffer): ArrayBuffer {
  // A WeakSet entry is not free (an ephemeron write barrier per mapping).
  if (guarding) mapped.add(buffer)
  return buffer
}

type Transfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer

function guardTransfer(method: 'transfer' | 'transferToFixedLength'): void {
  const prototype = ArrayBuffer.prototype as unknown as Record<string, unknown>
  const descriptor = Object.getOwnPropertyDescriptor(prototype, method)
  const original = descriptor?.value as Transfer | undefined
  if (descriptor === undefined || typeof original !== 'function') return
  const guarded = {
    [method](this: ArrayBuffer, ...args: [newLength?: number]): ArrayBuffer {
      if (mapped.has(this)) {
        throw withCode(
          new TypeError(
            `A shared memory mapping cannot be moved with ${method}(): its memory would be unmapped while still in use. Make a view, or copy it with slice()`,
          ),
          'ERR_INVALID_ARG_VALUE',
        )
      }
      return original.apply(this, args)
    },
  }[method]
  Object.defineProperty(prototype, method, { ...descriptor, value: guarded })
  guarding = true
}

guardTransfer('transfer')
guardTransfer('transferToFixedLength')

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
