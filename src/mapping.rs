//! `Mapping`: one `MAP_SHARED` mapping of a shared memory object, unmapped
//! exactly once when it is dropped.

use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::LazyLock;

use nix::libc::c_void;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use crate::errors::{Failure, Outcome};

/// `Mapping`s alive in this process, zero-copy and copy-mode alike.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The most mappings posix-shm holds at once, and the system cap it is a
/// share of. Linux caps the mappings of a process at vm.max_map_count
/// (65,530 by default). At the cap every mmap fails, V8's own included, and
/// V8 aborts the process rather than report it. A program reaches it easily:
/// Node unmaps the ArrayBuffers it collects only when the event loop next
/// turns, so a loop that maps without yielding keeps every mapping. So
/// posix-shm stops at three quarters of the cap with an error, and leaves
/// the rest to Node (V8's heap pages, thread stacks, malloc's arenas).
/// Other systems have no such cap.
pub static BUDGET: LazyLock<MappingBudget> = LazyLock::new(MappingBudget::read);

#[derive(Clone, Copy, Debug)]
pub struct MappingBudget {
  pub ours: usize,
  pub system: Option<usize>,
}

impl MappingBudget {
  fn read() -> MappingBudget {
    #[cfg(target_os = "linux")]
    let system = std::fs::read_to_string("/proc/sys/vm/max_map_count")
      .ok()
      .and_then(|text| text.trim().parse::<usize>().ok());
    #[cfg(not(target_os = "linux"))]
    let system = None;
    MappingBudget {
      ours: system.map_or(usize::MAX, |cap| (cap / 4 * 3).max(1)),
      system,
    }
  }
}

pub struct Mapping {
  address: NonNull<c_void>,
  length: NonZeroUsize,
  protections: ProtFlags,
}

// SAFETY: a `Mapping` is an address range owned by the process, not by a
// thread; moving the owner to another thread (the registry's lock may be
// taken from a worker's thread) changes nothing about who may unmap it.
unsafe impl Send for Mapping {}

// SAFETY: through a shared `&Mapping` the memory is reached only as
// atomics (`word`), which other threads and processes may change at any
// time by design; nothing hands out a plain `&` or `&mut` to its bytes.
unsafe impl Sync for Mapping {}

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
    let budget = *BUDGET;
    if LIVE
      .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
        (live < budget.ours).then_some(live + 1)
      })
      .is_err()
    {
      return Err(Failure::MappingBudget(budget));
    }
    // SAFETY: we let the kernel choose the address (no MAP_FIXED), so no
    // existing mapping is replaced; the new range is owned by the returned
    // `Mapping` alone, and only `Drop` unmaps it.
    let address = unsafe { mmap(None, length, protections, MapFlags::MAP_SHARED, fd, offset) }
      .map_err(|errno| {
        LIVE.fetch_sub(1, Ordering::AcqRel);
        Failure::Sys {
          errno,
          syscall: "mmap",
        }
      })?;
    Ok(Mapping {
      address,
      length,
      protections,
    })
  }

  pub fn address(&self) -> NonNull<c_void> {
    self.address
  }

  pub fn length(&self) -> usize {
    self.length.get()
  }

  pub fn protections(&self) -> ProtFlags {
    self.protections
  }

  /// The 32-bit word at `offset`, if it is 4-aligned and inside the
  /// mapping, and the mapping allows `needed`.
  pub fn word(&self, offset: usize, needed: ProtFlags) -> Option<&AtomicU32> {
    let inside = offset.is_multiple_of(4) && offset.checked_add(4)? <= self.length();
    if !inside || !self.protections.contains(needed) {
      return None;
    }
    // SAFETY: the word lies inside the mapping, which stays mapped while
    // `self` is borrowed; the mapping is page-aligned, so `offset % 4 == 0`
    // makes the word 4-aligned as AtomicU32 needs; it is readable (and
    // writable, if asked) as the protections say. Other processes change it
    // concurrently, which is exactly what atomics allow.
    Some(unsafe {
      &*(self
        .address
        .as_ptr()
        .cast::<u8>()
        .add(offset)
        .cast::<AtomicU32>())
    })
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
    LIVE.fetch_sub(1, Ordering::AcqRel);
  }
}
