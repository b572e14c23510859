// The keyword spellings the API accepts, with their aliases, and the
// constant each one stands for. This file is the only place they are
// spelled; the types and the error messages are derived from these tables.

export const OPEN_FLAG_KEYWORDS = {
  rdonly: 'O_RDONLY',
  read: 'O_RDONLY',
  'read-only': 'O_RDONLY',
  rdwr: 'O_RDWR',
  'read-write': 'O_RDWR',
  creat: 'O_CREAT',
  create: 'O_CREAT',
  excl: 'O_EXCL',
  exclusive: 'O_EXCL',
  trunc: 'O_TRUNC',
  truncate: 'O_TRUNC',
} as const

export const PERMISSION_KEYWORDS = {
  rusr: 'S_IRUSR',
  'read-user': 'S_IRUSR',
  wusr: 'S_IWUSR',
  'write-user': 'S_IWUSR',
  xusr: 'S_IXUSR',
  'exec-user': 'S_IXUSR',
  rwxu: 'S_IRWXU',
  'all-user': 'S_IRWXU',
  rgrp: 'S_IRGRP',
  'read-group': 'S_IRGRP',
  wgrp: 'S_IWGRP',
  'write-group': 'S_IWGRP',
  xgrp: 'S_IXGRP',
  'exec-group': 'S_IXGRP',
  rwxg: 'S_IRWXG',
  'all-group': 'S_IRWXG',
  roth: 'S_IROTH',
  'read-other': 'S_IROTH',
  woth: 'S_IWOTH',
  'write-other': 'S_IWOTH',
  xoth: 'S_IXOTH',
  'exec-other': 'S_IXOTH',
  rwxo: 'S_IRWXO',
  'all-other': 'S_IRWXO',
} as const

export const PROTECTION_KEYWORDS = {
  read: 'PROT_READ',
  write: 'PROT_WRITE',
  exec: 'PROT_EXEC',
  none: 'PROT_NONE',
} as const

/** A keyword for `shmOpen`'s `openFlags`. Exactly one of read-only / read-write. */
export type OpenFlag = keyof typeof OPEN_FLAG_KEYWORDS
/** A keyword for the permissions a created object gets (less the umask), and for `fchmod`. */
export type Permission = keyof typeof PERMISSION_KEYWORDS
/** A keyword for `mmap`'s protections; `none` stands alone. */
export type Protection = keyof typeof PROTECTION_KEYWORDS
