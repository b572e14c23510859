//! A 32-bit word of a mapping, checked once for alignment, bounds and
//! access, and the waits and wakes on it that JavaScript asks for with
//! the numbers `Atomics.wait` and `Atomics.notify` take.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::mman::ProtFlags;

use crate::core::failure::{Failure, Outcome};
use crate::core::mapping::Mapping;
use crate::core::registry;
use crate::core::wait::slot::Watched;
use crate::core::wait::{self, Waited};

/// A word: the mapping that holds it (kept mapped while this lives) and
/// its offset from the mapping's start.
pub struct Word {
  mapping: Arc<Mapping>,
  offset: usize,
  needed: ProtFlags,
}

impl Word {
  pub fn new(mapping: Arc<Mapping>, offset: usize, needed: ProtFlags) -> Outcome<Word> {
    if !mapping.protections().contains(needed) {
      return Err(Failure::InvalidValue(format!(
        "The mapping does not allow {needed:?}"
      )));
    }
    if mapping.word(offset, needed).is_none() {
      return Err(Failure::OutOfRange(format!(
        "The value of \"byteOffset\" is out of range. It must be a multiple of 4 inside the mapping ({} bytes). Received {offset}",
        mapping.length(),
      )));
    }
    Ok(Word {
      mapping,
      offset,
      needed,
    })
  }

  pub fn atomic(&self) -> &std::sync::atomic::AtomicU32 {
    Watched::atomic(self)
  }
}

impl Watched for Word {
  fn atomic(&self) -> &std::sync::atomic::AtomicU32 {
    // `new` checked this offset, alignment and access on this mapping,
    // which never changes, so this cannot fail.
    self
      .mapping
      .word(self.offset, self.needed)
      .expect("checked in Word::new")
  }
}

/// The word at `address` inside a live mapping of ours that starts at or
/// before it and spans `length` bytes from `address` (a view's buffer),
/// `byte_offset` bytes further on; None if no live mapping holds it.
pub fn in_live_mapping(address: usize, length: usize, byte_offset: usize) -> Outcome<Word> {
  let mapping = (address != 0)
    .then(|| registry::holding(address, length))
    .flatten()
    .ok_or_else(|| {
      Failure::InvalidValue("The argument 'view' must be over a live mapping made by mmap()".into())
    })?;
  let start = mapping.address().as_ptr() as usize;
  Word::new(mapping, address - start + byte_offset, ProtFlags::PROT_READ)
}

/// A timeout in milliseconds as `Atomics.wait` reads it: NaN or +Infinity
/// wait forever, a negative one does not wait.
pub fn timeout(milliseconds: f64) -> Option<Duration> {
  if milliseconds.is_nan() || milliseconds == f64::INFINITY {
    return None;
  }
  Some(Duration::try_from_secs_f64(milliseconds.max(0.0) / 1000.0).unwrap_or(Duration::MAX))
}

/// A notify count as `Atomics.notify` reads it: +Infinity (or more than
/// anyone could wait) wakes everyone, a negative or NaN one nobody.
pub fn count(count: f64) -> u32 {
  if count.is_nan() {
    0
  } else {
    count.clamp(0.0, f64::from(u32::MAX)) as u32
  }
}

/// A synchronous wait on `word`, given up as soon as `alive` says no
/// between two slices of its sleep (see `wait::wait`).
pub fn wait_on(
  word: &Word,
  value: i32,
  timeout_ms: f64,
  alive: &mut dyn FnMut() -> bool,
) -> Outcome<u32> {
  wait::wait(word.atomic(), value as u32, timeout(timeout_ms), alive).code()
}

/// 1 (not-equal) if `word` differs from `value`, else 2 (what a wait with
/// no time to wait returns); asked of the kernel where it can answer, so a
/// word whose page is gone is EFAULT, not a SIGBUS.
pub fn peek_on(word: &Word, value: i32) -> Outcome<u32> {
  match wait::peek(word.atomic(), value as u32) {
    Ok(true) => Waited::TimedOut.code(),
    Ok(false) => Waited::NotEqual.code(),
    Err(failed) => failed.code(),
  }
}

pub fn notify_on(word: &Word, how_many: f64) -> u32 {
  wait::notify(word.atomic(), count(how_many))
}
