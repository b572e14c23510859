//! The mappings that JavaScript currently holds.
//!
//! Each mapping is owned here from the moment it is handed out until the
//! first of two events: an explicit `munmap`, or the finalizer of its
//! ArrayBuffer. Whichever comes second finds nothing and does nothing, so
//! no address is ever unmapped twice. Every entry carries a serial number,
//! because after an explicit unmap the kernel may give the same address to
//! a new mapping before the old ArrayBuffer's finalizer has run.
//!
//! A mapping is held through an `Arc`, so a thread waiting on a word inside
//! it (`waitAsync`) keeps the memory mapped after JavaScript has unmapped
//! it; the last holder's drop unmaps, once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::mapping::Mapping;

pub struct Entry {
  pub serial: usize,
  pub mapping: Arc<Mapping>,
}

// By address, ordered, so the mapping holding any address can be found.
static LIVE: LazyLock<Mutex<BTreeMap<usize, Entry>>> = LazyLock::new(Mutex::default);
static NEXT_SERIAL: AtomicUsize = AtomicUsize::new(1);

fn live() -> MutexGuard<'static, BTreeMap<usize, Entry>> {
  // No code holding the lock can panic, but never turn a poisoned lock
  // into a panic across the FFI boundary either.
  LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A serial number for a mapping about to be handed out.
pub fn next_serial() -> usize {
  NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// Takes ownership of a mapping that JavaScript now reaches.
pub fn adopt(serial: usize, mapping: Arc<Mapping>) {
  let address = mapping.address().as_ptr() as usize;
  live().insert(address, Entry { serial, mapping });
}

/// The live mapping that holds all of `address .. address + length`.
pub fn holding(address: usize, length: usize) -> Option<Arc<Mapping>> {
  let live = live();
  let (&start, entry) = live.range(..=address).next_back()?;
  let end = start + entry.mapping.length();
  (address.checked_add(length)? <= end).then(|| Arc::clone(&entry.mapping))
}

/// Gives back the entry at `address` if it is still the one with `serial`.
pub fn release(address: usize, serial: usize) -> Option<Entry> {
  let mut live = live();
  match live.get(&address) {
    Some(entry) if entry.serial == serial => live.remove(&address),
    _ => None,
  }
}

/// Gives back the entry at `address` if it is `length` bytes long.
pub fn take(address: usize, length: usize) -> Option<Entry> {
  let mut live = live();
  match live.get(&address) {
    Some(entry) if entry.mapping.length() == length => live.remove(&address),
    _ => None,
  }
}

/// How many mappings JavaScript holds right now.
pub fn count() -> usize {
  live().len()
}
