//! The mappings that JavaScript currently holds, by address.
//!
//! Each mapping is owned here from the moment it is handed out until the
//! first of two events: an explicit `munmap`, or the finalizer of its
//! ArrayBuffer. Whichever comes second finds nothing and does nothing, so
//! no address is ever unmapped twice. Every entry carries a serial number,
//! because after an explicit unmap the kernel may give the same address to
//! a new mapping before the old ArrayBuffer's finalizer has run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::mapping::Mapping;

struct Entry {
  serial: usize,
  mapping: Mapping,
}

static LIVE: LazyLock<Mutex<HashMap<usize, Entry>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_SERIAL: AtomicUsize = AtomicUsize::new(1);

fn live() -> MutexGuard<'static, HashMap<usize, Entry>> {
  // No code holding the lock can panic, but never turn a poisoned lock
  // into a panic across the FFI boundary either.
  LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A serial number for a mapping about to be handed out.
pub fn next_serial() -> usize {
  NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// Takes ownership of a mapping that JavaScript now reaches.
pub fn adopt(serial: usize, mapping: Mapping) {
  let address = mapping.address().as_ptr() as usize;
  live().insert(address, Entry { serial, mapping });
}

/// Gives back the mapping at `address` if it is still the one with `serial`.
pub fn release(address: usize, serial: usize) -> Option<Mapping> {
  let mut live = live();
  match live.get(&address) {
    Some(entry) if entry.serial == serial => live.remove(&address).map(|entry| entry.mapping),
    _ => None,
  }
}

/// Whether a live mapping starts at `address` and is `length` bytes long.
pub fn holds(address: usize, length: usize) -> bool {
  live()
    .get(&address)
    .is_some_and(|entry| entry.mapping.length() == length)
}

/// Gives back the mapping at `address`, whatever its serial.
pub fn take(address: usize) -> Option<Mapping> {
  live().remove(&address).map(|entry| entry.mapping)
}

/// How many mappings JavaScript holds right now.
pub fn count() -> usize {
  live().len()
}
