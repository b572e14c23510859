// What importing posix-shm does beyond defining its exports: it patches
// ArrayBuffer.prototype in this realm and adds an 'exit' listener to this
// thread's process object. Both guard the mappings `mmap` hands out when
// they are moved; index.ts imports this module for these effects alone.
// It also adds a 'removeListener' listener, for SIGBUS (at the end).
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

import { isMainThread } from 'node:worker_threads'

import { withCode } from './errors'
import { isMapping, trackMappings } from './mappings'
import { native } from './native'

process.once('exit', () => native.pinMovedMappings())

type Transfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer

function guardTransfer(method: 'transfer' | 'transferToFixedLength'): void {
  const prototype = ArrayBuffer.prototype as unknown as Record<string, unknown>
  const descriptor = Object.getOwnPropertyDescriptor(prototype, method)
  const original = descriptor?.value as Transfer | undefined
  if (descriptor === undefined || typeof original !== 'function') return
  const guarded = {
    [method](this: ArrayBuffer, ...args: [newLength?: number]): ArrayBuffer {
      if (isMapping(this)) {
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
  trackMappings()
}

guardTransfer('transfer')
guardTransfer('transferToFixedLength')

// A peer's shrink becomes an error (EFAULT, ERR_SHM_SHRUNK) through a
// SIGBUS handler of ours (src/core/probe). When the last
// process.on('SIGBUS') listener goes, Node resets SIGBUS to its default,
// which would end the process at the next shrink instead: put ours back.
// Node's own 'removeListener' listener, which does the reset, was added
// at startup and runs before this one. Only the main thread's listeners
// reach the signal (a worker's never do), so only there.
if (isMainThread) {
  process.on('removeListener', (event) => {
    if (event === 'SIGBUS' && process.listenerCount('SIGBUS') === 0) native.restoreFaultHandler()
  })
}
