// Argument checks shared by every function, run before any system call.
// Each throws the TypeError or RangeError Node's own APIs would.

import { constants as bufferConstants } from 'node:buffer'

import { constants, type ConstantName } from './constants'
import { describe, invalidType, invalidValue, outOfRange } from './errors'
import {
  OPEN_FLAG_KEYWORDS,
  PERMISSION_KEYWORDS,
  PROTECTION_KEYWORDS,
  type OpenFlag,
  type Permission,
  type Protection,
} from './keywords'

const MAX_ID = 2 ** 32 - 2

export function validateInteger(value: unknown, argument: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidType(argument, 'of type number', value)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(argument, `an integer >= ${min} and <= ${max}`, value)
  }
  return value
}

export function validateFd(fd: unknown, argument = 'fd'): number {
  return validateInteger(fd, argument, 0, 2 ** 31 - 1)
}

/** An owner or group id; -1 leaves it unchanged, as with `fs.fchownSync`. */
export function validateId(id: unknown, argument: string): number {
  return validateInteger(id, argument, -1, MAX_ID)
}

/** A byte count: an integer from `min` up to 2^53 - 1. */
export function validateLength(length: unknown, argument: string, min = 0): number {
  return validateInteger(length, argument, min, Number.MAX_SAFE_INTEGER)
}

/** An ftruncate length: a number up to 2^53 - 1, or a bigint up to 2^63 - 1. */
export function validateFileLength(length: unknown, argument: string): number | bigint {
  if (typeof length === 'bigint') {
    if (length < 0n || length > 2n ** 63n - 1n) throw outOfRange(argument, '>= 0 and <= 2 ** 63 - 1', `${length}n`)
    return length
  }
  if (typeof length !== 'number') throw invalidType(argument, 'of type number or bigint', length)
  return validateLength(length, argument)
}

export function validateOffset(offset: unknown, argument = 'offset'): number {
  const value = validateLength(offset, argument)
  if (value % constants.pageSize !== 0) {
    throw outOfRange(argument, `a multiple of the page size (${constants.pageSize})`, value)
  }
  return value
}

export function validateBoolean(value: unknown, argument: string): boolean {
  if (typeof value !== 'boolean') throw invalidType(argument, 'of type boolean', value)
  return value
}

/** A SharedMemory's size: at least 1 byte, at most one Buffer's length. */
export function validateSize(value: unknown, argument: string): number {
  if (value === 0) throw outOfRange(argument, '>= 1: an object of size 0 has nothing to map', value)
  // One Buffer covers the whole mapping, so the runtime's largest buffer is the limit.
  return validateInteger(value, argument, 1, bufferConstants.MAX_LENGTH)
}

/** The value to compare with, converted as Atomics.wait converts it. */
export function validateWaitValue(value: unknown): number {
  if (typeof value !== 'number') throw invalidType('value', 'of type number', value)
  return value | 0
}

/** A timeout in milliseconds, as Atomics.wait reads it: undefined and NaN wait forever. */
export function validateTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined) return Infinity
  if (typeof timeoutMs !== 'number') throw invalidType('timeoutMs', 'of type number', timeoutMs)
  return Number.isNaN(timeoutMs) ? Infinity : timeoutMs
}

/** A notify count, as Atomics.notify reads it: undefined wakes every waiter. */
export function validateCount(count: unknown): number {
  if (count === undefined) return Infinity
  if (typeof count !== 'number') throw invalidType('count', 'of type number', count)
  return Number.isNaN(count) ? 0 : Math.max(0, Math.trunc(count))
}

/** A wait's `options.signal`, checked before anything else can settle the wait. */
export function validateSignal(options: unknown): AbortSignal | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'of type object', options)
  const { signal } = options as { signal?: unknown }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal)
  return signal
}

export function validateFunction(value: unknown, argument: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw invalidType(argument, 'of type function', value)
}

export function validateObject(value: unknown, argument: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidType(argument, 'of type object', value)
  }
}

/**
 * A name as POSIX wants it: one leading '/', then at least one character,
 * no further '/', no NUL, and not '.' or '..'. A missing leading '/' is
 * added, so 'psm_1234' and '/psm_1234' name one object (as Python's
 * multiprocessing.shared_memory does it). Length limits are the platform's
 * (255 bytes after the slash on Linux, 31 with it on macOS, 1023 with it
 * on FreeBSD: `src/core/platform.rs`) and come back as ENAMETOOLONG.
 */
export function normalizeName(name: unknown, argument = 'name'): string {
  if (typeof name !== 'string') throw invalidType(argument, 'of type string', name)
  // Checked in place on the full name, with no substring made; the checks
  // flatten it, so the native side reads one flat string.
  const full = name.charCodeAt(0) === SLASH ? name : `/${name}`
  let problem: string | undefined
  if (full.length === 1) problem = 'must name an object: it is empty or only "/"'
  else if (full === '/.' || full === '/..') problem = 'must not be "." or ".."'
  else if (full.indexOf('/', 1) !== -1) problem = 'must not contain "/" after its first character'
  else if (full.includes('\0')) problem = 'must not contain NUL bytes'
  // A lone surrogate has no UTF-8 form: it would become U+FFFD, so two
  // different strings would name one object.
  else if (!isWellFormed(full)) problem = 'must be well-formed Unicode (it has a lone surrogate)'
  if (problem !== undefined) throw invalidValue(argument, problem, name)
  return full
}

const SLASH = 0x2f

/** `String.prototype.isWellFormed` (ES2024, in Node 20), which TypeScript's ES2022 library does not declare. */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed()
}

/**
 * A keyword table made ready for lookups: each keyword's constant value,
 * and a bit ("mark") standing for its constant name, so the distinct names
 * in a list fit in one number. Parsing a list then allocates nothing; a
 * Set per call was a tenth of a lifecycle cycle's JavaScript time.
 */
class KeywordLookup<K extends string> {
  private readonly entries = new Map<string, { value: number; mark: number }>()
  private readonly marks = new Map<ConstantName, number>()

  constructor(readonly table: Readonly<Record<K, ConstantName>>) {
    for (const [keyword, name] of Object.entries(table) as [K, ConstantName][]) {
      let mark = this.marks.get(name)
      if (mark === undefined) {
        mark = 2 ** this.marks.size
        this.marks.set(name, mark)
      }
      this.entries.set(keyword, { value: constants[name], mark })
    }
  }

  entry(keyword: unknown): { value: number; mark: number } | undefined {
    return typeof keyword === 'string' ? this.entries.get(keyword) : undefined
  }

  /** The mark of `name`, which the table must hold. */
  mark(name: ConstantName): number {
    return this.marks.get(name) as number
  }
}

const OPEN_FLAGS = new KeywordLookup<OpenFlag>(OPEN_FLAG_KEYWORDS)
const PERMISSIONS = new KeywordLookup<Permission>(PERMISSION_KEYWORDS)
const PROTECTIONS = new KeywordLookup<Protection>(PROTECTION_KEYWORDS)
const READ_ONLY_MARK = OPEN_FLAGS.mark('O_RDONLY')
const READ_WRITE_MARK = OPEN_FLAGS.mark('O_RDWR')
const PROT_NONE_MARK = PROTECTIONS.mark('PROT_NONE')

/** How many marks are set in `marks`. */
function markCount(marks: number): number {
  let count = 0
  for (let rest = marks; rest !== 0; rest &= rest - 1) count++
  return count
}

/**
 * A keyword list or a number, turned into the OR of the constants.
 * `bits` is that OR; `marks` has the mark of every distinct constant named
 * (-1 for a number, which names none).
 */
function flagBits<K extends string>(
  value: unknown,
  argument: string,
  lookup: KeywordLookup<K>,
  allowedBits: number,
): { bits: number; marks: number } {
  if (typeof value === 'number') {
    const bits = validateInteger(value, argument, 0, 2 ** 31 - 1)
    if ((bits & ~allowedBits) !== 0) {
      throw invalidValue(argument, `must be an OR of the constants for it (any of ${allowedBits.toString(8)} octal)`, value)
    }
    return { bits, marks: -1 }
  }
  if (!Array.isArray(value)) throw invalidType(argument, 'an array of keywords or a number', value)
  let bits = 0
  let marks = 0
  for (const keyword of value as unknown[]) {
    const entry = lookup.entry(keyword)
    if (entry === undefined) {
      const accepted = Object.keys(lookup.table).join(', ')
      const shown = typeof keyword === 'string' ? `'${keyword}'` : describe(keyword)
      throw invalidValue(argument, `has an unknown keyword ${shown}; accepted: ${accepted}`, value)
    }
    bits |= entry.value
    marks |= entry.mark
  }
  return { bits, marks }
}

export function openFlagBits(value: unknown, argument = 'openFlags'): number {
  const allowed = constants.O_RDONLY | constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_TRUNC
  const { bits, marks } = flagBits(value, argument, OPEN_FLAGS, allowed)
  if (marks !== -1 && ((marks & READ_ONLY_MARK) !== 0) === ((marks & READ_WRITE_MARK) !== 0)) {
    throw invalidValue(argument, 'must hold exactly one of read-only (rdonly, read) or read-write (rdwr)', value)
  }
  // POSIX leaves O_TRUNC with O_RDONLY undefined, and Linux truncates: the
  // object is emptied under every peer's mapping, whose next touch is SIGBUS.
  if ((bits & constants.O_TRUNC) !== 0 && (bits & constants.O_RDWR) === 0) {
    throw invalidValue(argument, 'must not combine truncate (O_TRUNC) with read-only: only a read-write open may truncate', value)
  }
  return bits
}

export function permissionBits(value: unknown, argument = 'permissions'): number {
  return flagBits(value, argument, PERMISSIONS, constants.S_IRWXU | constants.S_IRWXG | constants.S_IRWXO).bits
}

export function protectionBits(value: unknown, argument = 'protections'): number {
  const allowed = constants.PROT_READ | constants.PROT_WRITE | constants.PROT_EXEC
  const { bits, marks } = flagBits(value, argument, PROTECTIONS, allowed)
  if (marks !== -1) {
    if (marks === 0) throw invalidValue(argument, "must not be empty (use ['none'] for PROT_NONE)", value)
    if ((marks & PROT_NONE_MARK) !== 0 && markCount(marks) > 1) {
      throw invalidValue(argument, "must not combine 'none' with other protections", value)
    }
  }
  return bits
}
