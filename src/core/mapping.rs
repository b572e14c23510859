//! `Mapping`: one `MAP_SHARED` mapping of a shared memory object, unmapped
//! exactly once when it is dropped; and `Claims`, which keep its address
//! range reserved while code outside our control may still hold a raw
//! pointer into it.
//!
//! Giving an address range back to the kernel while someone still holds a
//! pointer into it is worse than a crash: the next `mmap` (ours, or V8's)
//! may land at the same address, and a late write through the old pointer
//! then goes into that new mapping, a late read sends its bytes. So once a
//! range has been handed to JavaScript, dropping its `Mapping` (the last
//! shared user gone) does not always unmap it: while any claim remains, the
//! shared pages are replaced in place by a private, anonymous placeholder
//! (`MAP_FIXED`). Late writes then land in memory no one else sees, late
//! reads see zeros, and the address stays ours until the last claim is
//! released; only then does the range go back to the kernel.

use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use nix::libc::c_void;
use nix::sys::mman::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};

use crate::core::args;
use crate::core::constants::{page_size, protections_allowed};
use crate::core::descriptor::{object_size, with_fd};
use crate::core::failure::{Failure, Outcome};
use crate::core::probe;

/// Checks the numbers JavaScript gave and maps `length` bytes of `fd` from
/// `offset`, refusing a range past the object's current end (which would
/// raise SIGBUS on touch). `before_mapping` may refuse last, once the
/// arguments are known good and before anything is mapped, so there is
/// nothing to undo. Shared by `mmap` and copy-mode regions.
pub fn map_checked(
  length: f64,
  protections: f64,
  fd: f64,
  offset: f64,
  before_mapping: impl FnOnce() -> Outcome<()>,
) -> Outcome<Mapping> {
  let length = args::byte_count(length, "length")?;
  let length = NonZeroUsize::new(length as usize).ok_or_else(|| {
    Failure::OutOfRange(
      "The value of \"length\" is out of range. It must be > 0. Received 0".into(),
    )
  })?;
  let protections = args::bits_within(protections, protections_allowed(), "protections")?;
  let protections = ProtFlags::from_bits_truncate(protections as nix::libc::c_int);
  let fd = args::fd(fd)?;
  let offset = args::byte_count(offset, "offset")?;
  let page = page_size();
  if offset % page != 0 {
    return Err(Failure::OutOfRange(format!(
      "The value of \"offset\" is out of range. It must be a multiple of the page size ({page}). Received {offset}"
    )));
  }
  let size = object_size(fd)?;
  let end = offset + length.get() as u64;
  if end > size {
    return Err(Failure::OutOfRange(format!(
      "offset + length ({end}) is beyond the end of the object ({size} bytes); ftruncate it first"
    )));
  }
  before_mapping()?;
  with_fd(fd, |fd| {
    Mapping::map_shared(fd, length, protections, offset as i64)
  })
}

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

/// Mappings and placeholders alive now.
pub fn reserved() -> usize {
  LIVE.load(Ordering::Acquire)
}

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
    let system: Option<usize> = None;
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
  /// Set once the range has been handed to code we do not control.
  claims: Option<Arc<Claims>>,
  /// Set once a guarded access found a page cut away (see `guarded`).
  cut: AtomicBool,
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
      return Err(Failure::MappingBudget {
        ours: budget.ours,
        system: budget.system,
      });
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
      claims: None,
      cut: AtomicBool::new(false),
    })
  }

  /// From now on the range is not unmapped while `claims` holds a claim
  /// (see the top of this file). Call before handing the address out.
  pub fn share_range(&mut self, claims: Arc<Claims>) {
    self.claims = Some(claims);
  }

  pub fn claims(&self) -> Option<&Arc<Claims>> {
    self.claims.as_ref()
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

  /// Runs `access`, which touches `start .. start + length` of this
  /// mapping and nothing else of ours, under `probe::guarded`: if another
  /// process shrank the object under that range, the access completes
  /// over a private zero page and the result is `Shrunk`, not a SIGBUS.
  /// The mapping no longer shows the object at that page, so every guarded
  /// access after that is `Shrunk` at once.
  pub fn guarded<T>(
    &self,
    start: *const u8,
    length: usize,
    access: impl FnOnce() -> T,
  ) -> Outcome<T> {
    self.refuse_if_cut()?;
    let writable = self.protections.contains(ProtFlags::PROT_WRITE);
    probe::guarded(start, length, writable, access).map_err(|_| {
      self.cut.store(true, Ordering::Release);
      Failure::Shrunk
    })
  }

  /// `Shrunk` once a guarded access met a page a peer cut away: the
  /// mapping no longer shows the object there.
  pub fn refuse_if_cut(&self) -> Outcome<()> {
    if self.cut.load(Ordering::Acquire) {
      Err(Failure::Shrunk)
    } else {
      Ok(())
    }
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
    if let Some(claims) = &self.claims {
      let mut state = claims.state();
      if state.pinned {
        // Someone may use these pages for as long as the process lives:
        // they stay mapped, shared, and counted, until it ends.
        return;
      }
      state.mapped = false;
      if state.claimed() {
        // SAFETY: the range is ours (mapped by `map_shared`, not yet
        // unmapped: `mapped` was true until now, under this lock), so
        // MAP_FIXED replaces only our own pages. Code that still holds a
        // pointer into it sees private zero pages from now on.
        unsafe { placeholder(self.address, self.length) };
        // The range, and its place in the budget, now belong to `claims`.
        return;
      }
      // Unmapped just below: a late release must find nothing to unmap.
      state.length = 0;
    }
    // SAFETY: the range was returned by mmap and is unmapped only here, and
    // `Drop` runs once; no claim remains on it (above). munmap of a range
    // we own can only fail with EINVAL on arguments we know to be valid,
    // and a destructor has no one to report to, so the result is ignored.
    let _ = unsafe { munmap(self.address, self.length.get()) };
    LIVE.fetch_sub(1, Ordering::AcqRel);
  }
}

/// Replaces the pages of `address .. address + length` with private,
/// anonymous, readable and writable ones. If the kernel refuses (out of
/// memory for the new mapping), the shared pages stay: still safe, only
/// shared longer than asked.
///
/// # Safety
/// The range must be a mapping of ours that nothing else will unmap or
/// replace meanwhile.
unsafe fn placeholder(address: NonNull<c_void>, length: NonZeroUsize) {
  #[cfg(not(target_os = "freebsd"))]
  let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_FIXED | MapFlags::MAP_NORESERVE;
  #[cfg(target_os = "freebsd")]
  let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_FIXED;
  let at = NonZeroUsize::new(address.as_ptr() as usize);
  // SAFETY: the caller owns the range; MAP_FIXED over it replaces nothing
  // of anyone else's, and the new pages are ours until `Claims` unmaps them.
  let _ = unsafe {
    mmap_anonymous(
      at,
      length,
      ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
      flags,
    )
  };
}

/// What may still reach a range besides its `Mapping`, once it was handed
/// out. Each claim is released once, by whoever learns that it is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
  /// A JavaScript object whose collection ends the claim (for an
  /// ArrayBuffer: the object itself, which Node's pending operations hold).
  Object,
  /// Memory that someone else frees (for an ArrayBuffer: V8's backing
  /// store, which may outlive the object that made it).
  Store,
}

pub struct Claims {
  state: Mutex<ClaimState>,
}

struct ClaimState {
  address: usize,
  length: usize,
  /// The `Mapping` still exists (its shared pages are in place).
  mapped: bool,
  object: bool,
  store: bool,
  /// Never give the range back (see `Claims::pin`).
  pinned: bool,
}

impl ClaimState {
  fn claimed(&self) -> bool {
    self.object || self.store || self.pinned
  }
}

impl Claims {
  /// Claims on `mapping`'s range, starting with `initial`.
  pub fn new(mapping: &Mapping, initial: &[Claim]) -> Arc<Claims> {
    Arc::new(Claims {
      state: Mutex::new(ClaimState {
        address: mapping.address.as_ptr() as usize,
        length: mapping.length(),
        mapped: true,
        object: initial.contains(&Claim::Object),
        store: initial.contains(&Claim::Store),
        pinned: false,
      }),
    })
  }

  fn state(&self) -> MutexGuard<'_, ClaimState> {
    // Nothing that holds the lock panics; never let a poisoned lock turn
    // into a panic across the FFI boundary either.
    self
      .state
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  pub fn add(&self, claim: Claim) {
    let mut state = self.state();
    match claim {
      Claim::Object => state.object = true,
      Claim::Store => state.store = true,
    }
  }

  /// Keeps the range until the process ends, with its shared pages if the
  /// `Mapping` still exists: for a range that something we cannot track
  /// may use for as long as it lives.
  pub fn pin(&self) {
    self.state().pinned = true;
  }

  /// Ends `claim`; if it was the last and the `Mapping` is gone, unmaps
  /// the placeholder.
  pub fn release(&self, claim: Claim) {
    let mut state = self.state();
    match claim {
      Claim::Object => state.object = false,
      Claim::Store => state.store = false,
    }
    if state.mapped || state.claimed() {
      return;
    }
    if let (Some(address), Some(length)) = (
      NonNull::new(state.address as *mut c_void),
      NonZeroUsize::new(state.length),
    ) {
      // SAFETY: the `Mapping` is gone and left this range to us as a
      // placeholder (`mapped` is false); no claim remains, so nothing
      // holds a pointer into it. Clearing `length` under the lock makes
      // this run once.
      let _ = unsafe { munmap(address, length.get()) };
      state.length = 0;
      LIVE.fetch_sub(1, Ordering::AcqRel);
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::os::fd::{AsFd, OwnedFd};

  use nix::fcntl::OFlag;
  use nix::sys::mman::{shm_open, shm_unlink};
  use nix::sys::stat::Mode;

  const PAGE: usize = 4096;

  fn object(tag: &str) -> OwnedFd {
    let name = format!("/psm_unit_{tag}_{}", std::process::id());
    let fd = shm_open(
      name.as_str(),
      OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
      Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .unwrap();
    shm_unlink(name.as_str()).unwrap();
    nix::unistd::ftruncate(&fd, PAGE as i64).unwrap();
    fd
  }

  fn map(fd: &OwnedFd) -> Mapping {
    Mapping::map_shared(
      fd.as_fd(),
      NonZeroUsize::new(PAGE).unwrap(),
      ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
      0,
    )
    .unwrap()
  }

  fn byte(address: usize) -> u8 {
    // SAFETY: the tests read only ranges they keep mapped or reserved.
    unsafe { std::ptr::read_volatile(address as *const u8) }
  }

  fn set_byte(address: usize, value: u8) {
    // SAFETY: as in `byte`; every range here is writable.
    unsafe { std::ptr::write_volatile(address as *mut u8, value) }
  }

  // One test, so that the budget counts it sees are its own.
  #[test]
  fn a_claimed_range_becomes_a_private_placeholder_and_returns_with_the_last_claim() {
    let fd = object("claims");
    let before = reserved();

    // Claimed: the shared pages give way to a placeholder in place.
    let mut first = map(&fd);
    let address = first.address().as_ptr() as usize;
    set_byte(address, 7);
    let claims = Claims::new(&first, &[Claim::Store]);
    first.share_range(Arc::clone(&claims));
    claims.add(Claim::Object);
    drop(first);
    assert_eq!(reserved(), before + 1, "the placeholder still counts");
    assert_eq!(byte(address), 0, "late reads see zeros");
    set_byte(address, 9); // a late write lands in private memory
    let second = map(&fd);
    assert_ne!(second.address().as_ptr() as usize, address);
    assert_eq!(
      byte(second.address().as_ptr() as usize),
      7,
      "the object never saw it"
    );
    drop(second);

    // The last claim gives the range back, once.
    claims.release(Claim::Store);
    assert_eq!(reserved(), before + 1);
    claims.release(Claim::Object);
    assert_eq!(reserved(), before);
    claims.release(Claim::Object);
    assert_eq!(reserved(), before);

    // Unclaimed by the time the mapping goes: unmapped at once.
    let mut third = map(&fd);
    let claims = Claims::new(&third, &[Claim::Store]);
    third.share_range(Arc::clone(&claims));
    claims.release(Claim::Store);
    assert_eq!(reserved(), before + 1);
    drop(third);
    assert_eq!(reserved(), before);

    // Pinned: the shared pages stay, for as long as the process lives.
    let mut pinned = map(&fd);
    let address = pinned.address().as_ptr() as usize;
    let claims = Claims::new(&pinned, &[Claim::Store]);
    pinned.share_range(Arc::clone(&claims));
    claims.pin();
    drop(pinned);
    claims.release(Claim::Store);
    assert_eq!(byte(address), 7, "still the object's pages");
    assert_eq!(reserved(), before + 1);
  }
}
