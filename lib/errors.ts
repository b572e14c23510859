// The errors the API throws: Node-style argument errors, and ShmError for
// failed system calls, shaped like the errors of Node's `fs`.

import { getSystemErrorMap, getSystemErrorName, inspect } from 'node:util'

type ArgumentErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE'

export function withCode<E extends Error>(error: E, code: string): E & { code: string } {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return error as E & { code: string }
}

export function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`
  const shown = inspect(value, { maxStringLength: 40 })
  return `type ${typeof value} (${shown})`
}

export function invalidType(argument: string, expected: string, received: unknown): TypeError {
  return withCode(
    new TypeError(`The "${argument}" argument must be ${expected}. Received ${describe(received)}`),
    'ERR_INVALID_ARG_TYPE' satisfies ArgumentErrorCode,
  )
}

export function invalidValue(argument: string, reason: string, received: unknown): TypeError {
  return withCode(
    new TypeError(`The argument '${argument}' ${reason}. Received ${inspect(received, { maxStringLength: 40 })}`),
    'ERR_INVALID_ARG_VALUE' satisfies ArgumentErrorCode,
  )
}

export function outOfRange(argument: string, range: string, received: unknown): RangeError {
  return withCode(
    new RangeError(`The value of "${argument}" is out of range. It must be ${range}. Received ${String(received)}`),
    'ERR_OUT_OF_RANGE' satisfies ArgumentErrorCode,
  )
}

/**
 * A failed system call (or an operation the runtime refused), shaped like
 * the errors of Node's `fs`: `code` is the errno name ('EEXIST'), `errno`
 * its negative number, `syscall` the call that failed, `path` the object's
 * name when there is one. For an error that no system call raised
 * (`ERR_SHM_NO_EXTERNAL_BUFFERS`), `errno` is 0.
 */
export class ShmError extends Error {
  readonly code: string
  declare readonly errno?: number
  declare readonly syscall?: string
  declare readonly path?: string

  constructor(message: string, details: { code: string; errno?: number; syscall?: string; path?: string }) {
    super(message)
    this.code = details.code
    if (details.errno !== undefined) (this as { errno?: number }).errno = details.errno
    if (details.syscall !== undefined) (this as { syscall?: string }).syscall = details.syscall
    if (details.path !== undefined) (this as { path?: string }).path = details.path
  }
}

// On the prototype, not the instance: like fs errors, no own `name` property.
Object.defineProperty(ShmError.prototype, 'name', { value: 'ShmError', writable: true, configurable: true })

/** The ShmError for `errno` (negative, as Node numbers them) from `syscall`. */
export function systemError(
  errno: number,
  syscall: string,
  path?: string,
  fallbackMessage?: string,
  detail?: string,
): ShmError {
  const known = getSystemErrorMap().get(errno)
  const code = known ? known[0] : getSystemErrorName(errno)
  const description = known ? known[1] : (fallbackMessage ?? 'unknown error')
  const where = path === undefined ? syscall : `${syscall} '${path}'`
  const why = detail === undefined ? '' : ` (${detail})`
  return new ShmError(`${code}: ${description}, ${where}${why}`, { code, errno, syscall, path })
}

/**
 * The ShmError for a state that no system call reported (closed,
 * read-only, the mapping budget, ...): a code of its own, and no `errno`
 * or `syscall`.
 */
export function stateError(code: string, message: string, path?: string): ShmError {
  return new ShmError(message, { code, path })
}
