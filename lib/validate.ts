// Argument checks shared by every function, run before any system call.
// Each throws the TypeError or RangeError Node's own APIs would.

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
export function validateFileLength(length: unknown, argument: string): bigint {
  if (typeof length === 'bigint') {
    if (length < 0n || length > 2n ** 63n - 1n) throw outOfRange(argument, '>= 0 and <= 2 ** 63 - 1', `${length}n`)
    return length
  }
  if (typeof length !== 'number') throw invalidType(argument, 'of type number or bigint', length)
  return BigInt(validateLength(length, argument))
}

export function validateOffset(offset: unknown, argument = 'offset'): number {
  const value = validateLength(offset, argument)
  if (value % constants.pageSize !== 0) {
    throw outOfRange(argument, `a multiple of the page size (${constants.pageSize})`, value)
  }
  return value
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
 * (255 bytes on Linux, 31 on macOS) and come back as ENAMETOOLONG.
 */
export function normalizeName(name: unknown, argument = 'name'): string {
  if (typeof name !== 'string') throw invalidType(argument, 'of type string', name)
  const full = name.startsWith('/') ? name : `/${name}`
  const rest = full.slice(1)
  let problem: string | undefined
  if (rest === '') problem = 'must name an object: it is empty or only "/"'
  else if (rest === '.' || rest === '..') problem = 'must not be "." or ".."'
  else if (rest.includes('/')) problem = 'must not contain "/" after its first character'
  else if (rest.includes('\0')) problem = 'must not contain NUL bytes'
  // A lone surrogate has no UTF-8 form: it would become U+FFFD, so two
  // different strings would name one object.
  else if (/\p{Cs}/u.test(rest)) problem = 'must be well-formed Unicode (it has a lone surrogate)'
  if (problem !== undefined) throw invalidValue(argument, problem, name)
  return full
}

/** A keyword list or a number, turned into the OR of the constants. */
function flagBits<K extends string>(
  value: unknown,
  argument: string,
  table: Readonly<Record<K, ConstantName>>,
  allowedBits: number,
): { bits: number; names: Set<ConstantName> | undefined } {
  if (typeof value === 'number') {
    const bits = validateInteger(value, argument, 0, 2 ** 31 - 1)
    if ((bits & ~allowedBits) !== 0) {
      throw invalidValue(argument, `must be an OR of the constants for it (any of ${allowedBits.toString(8)} octal)`, value)
    }
    return { bits, names: undefined }
  }
  if (!Array.isArray(value)) throw invalidType(argument, 'an array of keywords or a number', value)
  const names = new Set<ConstantName>()
  let bits = 0
  for (const keyword of value as unknown[]) {
    if (typeof keyword !== 'string' || !Object.hasOwn(table, keyword)) {
      const accepted = Object.keys(table).join(', ')
      const shown = typeof keyword === 'string' ? `'${keyword}'` : describe(keyword)
      throw invalidValue(argument, `has an unknown keyword ${shown}; accepted: ${accepted}`, value)
    }
    const name = table[keyword as K]
    names.add(name)
    bits |= constants[name]
  }
  return { bits, names }
}

export function openFlagBits(value: unknown, argument = 'openFlags'): number {
  const allowed = constants.O_RDONLY | constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_TRUNC
  const { bits, names } = flagBits<OpenFlag>(value, argument, OPEN_FLAG_KEYWORDS, allowed)
  if (names !== undefined && names.has('O_RDONLY') === names.has('O_RDWR')) {
    throw invalidValue(argument, 'must hold exactly one of read-only (rdonly, read) or read-write (rdwr)', value)
  }
  return bits
}

export function permissionBits(value: unknown, argument = 'permissions'): number {
  return flagBits<Permission>(value, argument, PERMISSION_KEYWORDS, constants.S_IRWXU | constants.S_IRWXG | constants.S_IRWXO).bits
}

export function protectionBits(value: unknown, argument = 'protections'): number {
  const allowed = constants.PROT_READ | constants.PROT_WRITE | constants.PROT_EXEC
  const { bits, names } = flagBits<Protection>(value, argument, PROTECTION_KEYWORDS, allowed)
  if (names !== undefined) {
    if (names.size === 0) throw invalidValue(argument, "must not be empty (use ['none'] for PROT_NONE)", value)
    if (names.has('PROT_NONE') && names.size > 1) throw invalidValue(argument, "must not combine 'none' with other protections", value)
  }
  return bits
}
