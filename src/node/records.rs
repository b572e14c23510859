//! The objects of numbers that entries return: each struct's `fields` is
//! the one list of its property names, for the object JavaScript gets and
//! for the TypeScript interface in native/entries.d.ts.

use std::ffi::CStr;

use nix::fcntl::OFlag;
use nix::sys::mman::ProtFlags;
use nix::sys::stat::Mode;

use crate::core::constants::{mode_bits, page_size};
use crate::core::descriptor::Stats;
use crate::node::convert::Record;

impl Record for Stats {
  const INTERFACE: &'static str = "ShmStats";
  fn fields(&self) -> Vec<(&'static CStr, f64)> {
    vec![
      (c"size", self.size),
      (c"mode", f64::from(self.mode)),
      (c"uid", f64::from(self.uid)),
      (c"gid", f64::from(self.gid)),
      (c"ino", self.ino),
      (c"dev", self.dev),
      (c"nlink", self.nlink),
      (c"atimeMs", self.atime_ms),
      (c"mtimeMs", self.mtime_ms),
      (c"ctimeMs", self.ctime_ms),
    ]
  }
}

/// The running platform's values of every flag the API accepts.
pub struct PlatformConstants;

impl Record for PlatformConstants {
  const INTERFACE: &'static str = "PlatformConstants";
  fn fields(&self) -> Vec<(&'static CStr, f64)> {
    let open = |flag: OFlag| f64::from(flag.bits());
    let protection = |flag: ProtFlags| f64::from(flag.bits());
    let mode = |flag: Mode| f64::from(mode_bits(flag));
    vec![
      (c"oRdonly", open(OFlag::O_RDONLY)),
      (c"oRdwr", open(OFlag::O_RDWR)),
      (c"oCreat", open(OFlag::O_CREAT)),
      (c"oExcl", open(OFlag::O_EXCL)),
      (c"oTrunc", open(OFlag::O_TRUNC)),
      (c"protNone", protection(ProtFlags::PROT_NONE)),
      (c"protRead", protection(ProtFlags::PROT_READ)),
      (c"protWrite", protection(ProtFlags::PROT_WRITE)),
      (c"protExec", protection(ProtFlags::PROT_EXEC)),
      (c"sIrusr", mode(Mode::S_IRUSR)),
      (c"sIwusr", mode(Mode::S_IWUSR)),
      (c"sIxusr", mode(Mode::S_IXUSR)),
      (c"sIrwxu", mode(Mode::S_IRWXU)),
      (c"sIrgrp", mode(Mode::S_IRGRP)),
      (c"sIwgrp", mode(Mode::S_IWGRP)),
      (c"sIxgrp", mode(Mode::S_IXGRP)),
      (c"sIrwxg", mode(Mode::S_IRWXG)),
      (c"sIroth", mode(Mode::S_IROTH)),
      (c"sIwoth", mode(Mode::S_IWOTH)),
      (c"sIxoth", mode(Mode::S_IXOTH)),
      (c"sIrwxo", mode(Mode::S_IRWXO)),
      (c"pageSize", page_size() as f64),
    ]
  }
}
