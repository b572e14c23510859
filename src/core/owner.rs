//! The table of descriptors owned by JavaScript objects (the facade's
//! `FdOwner`, which `SharedMemory` holds). Each is closed by an explicit
//! close, or, if that never happens, when its object is garbage collected
//! or its environment (a worker thread, say) is torn down: `OwnedFd`'s
//! `Drop` closes it. A number is owned at most once: adopting a number an
//! owner holds is refused, as both owners would close it.
//!
//! The owning object holds a key into the table, never a pointer: a serial
//! number mixed with a random value drawn once per process, so a handle
//! that is not ours (another addon's, passed to a direct call) finds
//! nothing instead of being read as ours.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use nix::fcntl::{fcntl, FcntlArg};

use crate::core::descriptor::with_fd;
use crate::core::failure::{Failure, Outcome};

/// What a descriptor refers to: its file's device and inode, read when it
/// was adopted. JavaScript can close an owned number behind its owner's
/// back (`fs.closeSync(shm.fd)`), and the next open reuses it; the owner
/// then finds another file there and leaves it alone rather than close it.
/// (macOS gives every shared memory object inode 0, so there a number
/// reused by another shared memory object on the same device still looks
/// like ours.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
  device: u64,
  inode: u64,
}

impl Identity {
  /// The identity of the file `fd` refers to; None if it is not open.
  pub fn of(fd: BorrowedFd<'_>) -> Option<Identity> {
    nix::sys::stat::fstat(fd)
      .ok()
      .map(|stat| Identity::of_stat(&stat))
  }

  /// The identity in an fstat result already at hand.
  pub fn of_stat(stat: &nix::sys::stat::FileStat) -> Identity {
    // The casts widen platform integer types to one width.
    #[allow(clippy::unnecessary_cast)]
    Identity {
      device: stat.st_dev as u64,
      inode: stat.st_ino as u64,
    }
  }

  /// Whether `fd` still refers to this file.
  pub fn is_of(self, fd: BorrowedFd<'_>) -> bool {
    Identity::of(fd) == Some(self)
  }
}

/// An owned descriptor and what it referred to when adopted.
struct Held {
  fd: OwnedFd,
  identity: Identity,
}

/// The owned descriptors by key, and their numbers, so a number is never
/// owned twice: two owners of one descriptor both close it, and the second
/// close hits whatever has reused the number meanwhile (a worker's event
/// loop descriptor, say, which libuv then aborts on).
#[derive(Default)]
struct Table {
  by_key: HashMap<usize, Held>,
  numbers: HashSet<RawFd>,
}

impl Table {
  fn remove(&mut self, key: usize) -> Option<Held> {
    let held = self.by_key.remove(&key)?;
    self.numbers.remove(&held.fd.as_raw_fd());
    Some(held)
  }
}

/// What `release` found under a key.
#[derive(Debug)]
pub enum Released {
  /// Nothing: never adopted, or released before.
  Nothing,
  /// The owner's descriptor, to close.
  Ours(OwnedFd),
  /// The number was closed behind the owner's back and is not open, or
  /// is open on another file: nothing of the owner's is left to close.
  Gone,
}

static OWNED: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);
static NEXT_SERIAL: AtomicUsize = AtomicUsize::new(1);
/// Mixed into every key. Should the operating system's random source
/// fail, a fixed pattern with the top bit set still keeps keys far from
/// the small integers another addon's external might carry.
static KEY_MASK: LazyLock<usize> = LazyLock::new(|| {
  let mut bytes = [0u8; std::mem::size_of::<usize>()];
  let random = match getrandom::fill(&mut bytes) {
    Ok(()) => usize::from_ne_bytes(bytes),
    Err(_) => 0x25a5_a5a5_a5a5_a5a5_u64 as usize,
  };
  random | 1 << (usize::BITS - 1)
});

/// A fresh key for one owner.
pub fn next_key() -> usize {
  NEXT_SERIAL.fetch_add(1, Ordering::Relaxed) ^ *KEY_MASK
}

fn owned() -> MutexGuard<'static, Table> {
  // No code holding the lock can panic, but never turn a poisoned lock
  // into a panic across the FFI boundary either.
  OWNED
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether an owner holds the descriptor number `fd`.
pub fn is_owned(fd: RawFd) -> bool {
  held_now(&mut owned(), fd)
}

/// Whether an owner holds the number `fd` now. An entry whose number no
/// longer refers to its file (JavaScript closed it behind the owner's back
/// and an open reused it, or it is not open at all) is dropped on the way,
/// without closing anything: the number is not the owner's any more, and
/// refusing it would make the new file's own owner fail (and leak it).
fn held_now(table: &mut Table, fd: RawFd) -> bool {
  if !table.numbers.contains(&fd) {
    return false;
  }
  let stale = table
    .by_key
    .iter()
    .find(|(_, held)| held.fd.as_raw_fd() == fd)
    .filter(|(_, held)| !held.identity.is_of(held.fd.as_fd()))
    .map(|(key, _)| *key);
  match stale.and_then(|key| table.remove(key)) {
    Some(held) => {
      // Forgotten, never closed: the number belongs to someone else.
      let _ = held.fd.into_raw_fd();
      false
    }
    None => true,
  }
}

/// Closes `fd`, unless an owner holds it: a SharedMemory closes its own
/// descriptor, and a second close would hit whatever had reused the number
/// by then (`FdOwned`). A second close of the same number is EBADF, as
/// with `fs.closeSync`.
pub fn close_unowned(fd: RawFd) -> Outcome<()> {
  if is_owned(fd) {
    return Err(Failure::FdOwned(fd));
  }
  nix::unistd::close(fd).map_err(Failure::sys("close"))
}

/// Checks that `fd` may be adopted: it is open (asked with the cheapest
/// call that answers), and no owner holds it. `adopt` checks ownership
/// again under the lock; this early answer spares the caller making a
/// handle that would only be thrown away.
pub fn check_adoptable(fd: RawFd) -> Outcome<()> {
  with_fd(fd, |fd| fcntl(fd, FcntlArg::F_GETFD)).map_err(Failure::sys("fcntl"))?;
  if is_owned(fd) {
    return Err(Failure::FdOwned(fd));
  }
  Ok(())
}

/// Takes ownership of the open descriptor `fd` under `key` (from
/// `next_key`), after `check_adoptable`.
pub fn adopt(key: usize, fd: RawFd) -> Outcome<()> {
  let mut table = owned();
  // Another thread may have adopted the number since the check.
  if held_now(&mut table, fd) {
    return Err(Failure::FdOwned(fd));
  }
  table.numbers.insert(fd);
  // SAFETY: `fd` is open (`check_adoptable` asked fcntl), no other owner
  // holds the number (checked under the lock just above), and the caller
  // hands us its ownership: the facade adopts only descriptors it opened
  // itself or that the user gave away through `SharedMemory.fromFd`.
  // Memory safety does not rest on this; at worst a number still used
  // elsewhere would be closed, as `fs.closeSync` can do.
  let fd = unsafe { OwnedFd::from_raw_fd(fd) };
  let Some(identity) = Identity::of(fd.as_fd()) else {
    // Closed since the check: not ours to close again.
    table.numbers.remove(&fd.into_raw_fd());
    return Err(Failure::Sys {
      errno: nix::errno::Errno::EBADF,
      syscall: "fstat",
    });
  };
  table.by_key.insert(key, Held { fd, identity });
  Ok(())
}

/// Marks the number of `fd`, which a native object owns (a channel), as
/// owned: closing it from JavaScript is refused, and adopting it takes a
/// duplicate, as for a SharedMemory's.
pub fn reserve(fd: RawFd) -> Outcome<()> {
  if owned().numbers.insert(fd) {
    Ok(())
  } else {
    Err(Failure::FdOwned(fd))
  }
}

/// Ends `reserve`, just before the owner closes the descriptor.
pub fn unreserve(fd: RawFd) {
  owned().numbers.remove(&fd);
}

/// The descriptor owned under `key`, taken out of the table (to close it,
/// by dropping it or with `close`), if it still refers to the file it was
/// adopted for (see `Identity`).
pub fn release(key: usize) -> Released {
  // Taken out under the lock, and closed by the caller outside it.
  let Some(Held { fd, identity }) = owned().remove(key) else {
    return Released::Nothing;
  };
  if identity.is_of(fd.as_fd()) {
    Released::Ours(fd)
  } else {
    // Not ours any more: forgotten, never closed.
    let _ = fd.into_raw_fd();
    Released::Gone
  }
}

/// Closes `fd`, reporting close(2)'s result (dropping an `OwnedFd` would not).
pub fn close(fd: OwnedFd) -> Outcome<()> {
  let raw = fd.into_raw_fd();
  nix::unistd::close(raw).map_err(Failure::sys("close"))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_number_is_owned_once_and_released_once() {
    let (read, write) = nix::unistd::pipe().unwrap();
    let number = std::os::fd::IntoRawFd::into_raw_fd(read);
    check_adoptable(number).unwrap();
    let key = next_key();
    adopt(key, number).unwrap();
    assert!(is_owned(number));
    assert!(matches!(check_adoptable(number), Err(Failure::FdOwned(n)) if n == number));
    assert!(matches!(
      adopt(next_key(), number),
      Err(Failure::FdOwned(_))
    ));
    let Released::Ours(fd) = release(key) else {
      panic!("owned")
    };
    assert!(!is_owned(number));
    assert!(matches!(release(key), Released::Nothing));
    close(fd).unwrap();
    drop(write);
  }

  #[test]
  fn a_number_closed_behind_the_owner_and_reused_is_left_alone() {
    let (read, write) = nix::unistd::pipe().unwrap();
    let number = read.into_raw_fd();
    let key = next_key();
    check_adoptable(number).unwrap();
    adopt(key, number).unwrap();
    // JavaScript's fs.closeSync(number), then an open that reuses it, in
    // one step (dup2), so no test running beside this one takes the number
    // between the two.
    // (Not the pipe's other end: both ends of a pipe share one inode.)
    let other = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: dup2 closes the number and makes it a second descriptor of
    // /dev/null, owned by `reused`.
    let reused = unsafe { OwnedFd::from_raw_fd(nix::libc::dup2(other.as_raw_fd(), number)) };
    assert_eq!(reused.as_raw_fd(), number);
    assert!(matches!(release(key), Released::Gone));
    assert!(
      Identity::of(reused.as_fd()).is_some(),
      "the reused number is still open"
    );
    drop(reused);
    drop(write);
  }

  #[test]
  fn a_number_reused_behind_its_owner_can_be_adopted_by_the_new_files_owner() {
    let (read, write) = nix::unistd::pipe().unwrap();
    let number = read.into_raw_fd();
    let stale_key = next_key();
    adopt(stale_key, number).unwrap();
    let other = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: as above: the number becomes a descriptor of /dev/null,
    // which the new owner adopts below.
    let reused = unsafe { nix::libc::dup2(other.as_raw_fd(), number) };
    assert_eq!(reused, number);
    assert!(!is_owned(number), "the stale entry does not count");
    check_adoptable(number).unwrap();
    let key = next_key();
    adopt(key, number).unwrap();
    assert!(
      matches!(release(stale_key), Released::Nothing),
      "the stale owner finds nothing to close"
    );
    let Released::Ours(fd) = release(key) else {
      panic!("the new owner's")
    };
    close(fd).unwrap();
    drop(write);
  }

  #[test]
  fn a_number_that_is_not_open_cannot_be_adopted() {
    // Far above any descriptor limit, so no test running beside this one
    // can have opened it (a number just closed could be reused at once).
    let number = i32::MAX - 7;
    assert!(matches!(
      check_adoptable(number),
      Err(Failure::Sys {
        errno: nix::errno::Errno::EBADF,
        ..
      })
    ));
  }
}
