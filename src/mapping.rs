//! `Mapping`: one `MAP_SHARED` mapping of a shared memory object, unmapped
//! exactly once when it is dropped.

use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use nix::libc::c_void;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use crate::errors::{Failure, Outcome};

pub struct Mapping {
  address: NonNull<c_void>,
  length: NonZeroUsize,
}

// SAFETY: a `Mapping` is an address range owned by the process, not by a
// thread; moving the owner to another thread (the registry's lock may be
// taken from a worker's thread) changes nothing about who may unmap it.
unsafe impl Send for Mapping {}

impl Mapping {
  /// Maps `length` bytes of the object behind `fd`, from `offset`, shared
  /// with every other process that maps it.
  ///
  /// POSIX does not check the object's size here: touching a page wholly
  /// past the end of the object raises SIGBUS. Callers check the size first.
  pub fn map_shared(
    fd: BorrowedFd<'_>,
    length: NonZeroUsize,
    protections: ProtFlags,
    offset: i64,
  ) -> Outcome<Mapping> {
    // SAFETY: we let the kernel choose the address (no MAP_FIXED), so no
    // existing mapping is replaced; the new range is owned by the returned
    // `Mapping` alone, and only `Drop` unmaps it.
    let address = unsafe { mmap(None, length, protections, MapFlags::MAP_SHARED, fd, offset) }
      .map_err(Failure::sys("mmap"))?;
    Ok(Mapping { address, length })
  }

  pub fn address(&self) -> NonNull<c_void> {
    self.address
  }

  pub fn length(&self) -> usize {
    self.length.get()
  }
}

impl Drop for Mapping {
  fn drop(&mut self) {
    // SAFETY: the range was returned by mmap and is unmapped only here, and
    // `Drop` runs once. Whoever handed it to JavaScript detached or
    // finalized every ArrayBuffer over it before dropping the `Mapping`.
    // munmap of a range we own can only fail with EINVAL on arguments we
    // know to be valid, and a destructor has no one to report to, so the
    // result is ignored.
    let _ = unsafe { munmap(self.address, self.length.get()) };
  }
}
