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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use nix::fcntl::{fcntl, FcntlArg};

use crate::core::descriptor::with_fd;
use crate::core::failure::{Failure, Outcome};

/// The owned descriptors by key, and their numbers, so a number is never
/// owned twice: two owners of one descriptor both close it, and the second
/// close hits whatever has reused the number meanwhile (a worker's event
/// loop descriptor, say, which libuv then aborts on).
#[derive(Default)]
struct Table {
  by_key: HashMap<usize, OwnedFd>,
  numbers: HashSet<RawFd>,
}

impl Table {
  fn remove(&mut self, key: usize) -> Option<OwnedFd> {
    let fd = self.by_key.remove(&key)?;
    self.numbers.remove(&fd.as_raw_fd());
    Some(fd)
  }
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
  owned().numbers.contains(&fd)
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
  if !table.numbers.insert(fd) {
    return Err(Failure::FdOwned(fd));
  }
  // SAFETY: `fd` is open (`check_adoptable` asked fcntl), no other owner
  // holds the number (checked under the lock just above), and the caller
  // hands us its ownership: the facade adopts only descriptors it opened
  // itself or that the user gave away through `SharedMemory.fromFd`.
  // Memory safety does not rest on this; at worst a number still used
  // elsewhere would be closed, as `fs.closeSync` can do.
  let fd = unsafe { OwnedFd::from_raw_fd(fd) };
  table.by_key.insert(key, fd);
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
/// by dropping it or with `close`); None if there is none, or no more.
pub fn release(key: usize) -> Option<OwnedFd> {
  // Taken out under the lock, and closed by the caller outside it.
  owned().remove(key)
}

/// Closes `fd`, reporting close(2)'s result (dropping an `OwnedFd` would not).
pub fn close(fd: OwnedFd) -> Outcome<()> {
  let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
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
    let fd = release(key).expect("owned");
    assert!(!is_owned(number));
    assert!(release(key).is_none());
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
