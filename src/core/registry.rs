//! The mappings that JavaScript currently holds.
//!
//! Each mapping is owned here from the moment it is handed out until the
//! first of two events: an explicit `munmap`, or the finalizer of its
//! ArrayBuffer. Whichever comes second finds nothing and does nothing, so
//! no address is ever unmapped twice. The address range stays reserved
//! (`mapping::Claims`) until the finalizer has run, so no newer mapping
//! can take the address of an entry whose finalizer is still to come; the
//! finalizer still checks that the entry is its own, by its claims.
//!
//! A mapping is held through an `Arc`, so a thread waiting on a word inside
//! it (`waitAsync`) keeps the memory mapped after JavaScript has unmapped
//! it; the last holder's drop unmaps, once.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::core::mapping::{Claims, Mapping};

pub struct Entry {
  pub mapping: Arc<Mapping>,
  /// The boundary's own handle on the object that reaches the mapping
  /// (for an ArrayBuffer: its environment and a weak reference), opaque here.
  pub holder: Holder,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Holder {
  pub env: usize,
  pub reference: usize,
}

// By address, ordered, so the mapping holding any address can be found.
static LIVE: LazyLock<Mutex<BTreeMap<usize, Entry>>> = LazyLock::new(Mutex::default);

fn live() -> MutexGuard<'static, BTreeMap<usize, Entry>> {
  // No code holding the lock can panic, but never turn a poisoned lock
  // into a panic across the FFI boundary either.
  LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes ownership of a mapping that JavaScript now reaches.
pub fn adopt(entry: Entry) {
  let address = entry.mapping.address().as_ptr() as usize;
  live().insert(address, entry);
}

/// The live mapping that holds all of `address .. address + length`.
pub fn holding(address: usize, length: usize) -> Option<Arc<Mapping>> {
  let live = live();
  let (&start, entry) = live.range(..=address).next_back()?;
  let end = start + entry.mapping.length();
  (address.checked_add(length)? <= end).then(|| Arc::clone(&entry.mapping))
}

/// Gives back the entry at `address` if its mapping is the one `claims`
/// belongs to.
pub fn release_claimed(address: usize, claims: &Arc<Claims>) -> Option<Entry> {
  let mut live = live();
  match live.get(&address) {
    Some(entry)
      if entry
        .mapping
        .claims()
        .is_some_and(|c| Arc::ptr_eq(c, claims)) =>
    {
      live.remove(&address)
    }
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

/// Calls `visit` with every entry whose holder lives in environment `env`.
pub fn for_each_held_by(env: usize, mut visit: impl FnMut(&Entry)) {
  live()
    .values()
    .filter(|entry| entry.holder.env == env)
    .for_each(&mut visit);
}

/// How many mappings JavaScript holds right now.
pub fn count() -> usize {
  live().len()
}
