// The running platform's flag values, as the native side reports them.

import { native } from './native'

const values = native.platformConstants()

/** Flag values of the running platform, and its page size. */
export const constants = Object.freeze({
  O_RDONLY: values.oRdonly,
  O_RDWR: values.oRdwr,
  O_CREAT: values.oCreat,
  O_EXCL: values.oExcl,
  O_TRUNC: values.oTrunc,
  PROT_NONE: values.protNone,
  PROT_READ: values.protRead,
  PROT_WRITE: values.protWrite,
  PROT_EXEC: values.protExec,
  S_IRUSR: values.sIrusr,
  S_IWUSR: values.sIwusr,
  S_IXUSR: values.sIxusr,
  S_IRWXU: values.sIrwxu,
  S_IRGRP: values.sIrgrp,
  S_IWGRP: values.sIwgrp,
  S_IXGRP: values.sIxgrp,
  S_IRWXG: values.sIrwxg,
  S_IROTH: values.sIroth,
  S_IWOTH: values.sIwoth,
  S_IXOTH: values.sIxoth,
  S_IRWXO: values.sIrwxo,
  /** Mapping offsets must be a multiple of this. */
  pageSize: values.pageSize,
})

export type ConstantName = Exclude<keyof typeof constants, 'pageSize'>
