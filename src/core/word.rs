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

/// The word `byte_offset` bytes into the memory JavaScript named, the
/// `length` bytes at `address` (an ArrayBuffer, or a view), which must lie
/// in one live mapping of ours. The word must lie inside what was named:
/// a view that ends where another mapping begins (a zero-length view at a
/// mapping's end, say) never reaches into that other mapping.
pub fn in_live_mapping(address: usize, length: usize, byte_offset: usize) -> Outcome<Word> {
  if byte_offset.checked_add(4).is_none_or(|end| end > length) {
    return Err(Failure::OutOfRange(format!(
      "The value of \"byteOffset\" is out of range. It must leave a 4-byte word inside the view or buffer ({length} bytes). Received {byte_offset}"
    )));
  }
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

#[cfg(test)]
mod tests {
  #[cfg(target_os = "linux")]
  use super::*;

  // A memfd stands in for a shared memory object: Linux only.
  #[cfg(target_os = "linux")]
  #[test]
  fn a_word_must_lie_inside_the_memory_named() {
    use crate::core::registry::{Entry, Holder};
    use std::num::NonZeroUsize;
    let fd =
      nix::sys::memfd::memfd_create(c"word-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&fd, 8192).unwrap();
    let length = NonZeroUsize::new(8192).unwrap();
    let mapping = Mapping::map_shared(
      std::os::fd::AsFd::as_fd(&fd),
      length,
      ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
      0,
    )
    .unwrap();
    let start = mapping.address().as_ptr() as usize;
    registry::adopt(Entry {
      mapping: Arc::new(mapping),
      holder: Holder::default(),
    });
    // The whole mapping, and a view of one word at its second page.
    assert!(in_live_mapping(start, 8192, 8188).is_ok());
    assert!(in_live_mapping(start + 4096, 4, 0).is_ok());
    // A word past what was named, though inside the mapping, is refused;
    // so is any word of a zero-length view (at the mapping's end it would
    // otherwise be the next mapping's first word).
    assert!(matches!(
      in_live_mapping(start + 4096, 4, 4),
      Err(Failure::OutOfRange(_))
    ));
    assert!(matches!(
      in_live_mapping(start + 8192, 0, 0),
      Err(Failure::OutOfRange(_))
    ));
    assert!(matches!(
      in_live_mapping(start, 0, 0),
      Err(Failure::OutOfRange(_))
    ));
    assert!(matches!(
      in_live_mapping(start, 8192, usize::MAX),
      Err(Failure::OutOfRange(_))
    ));
    drop(registry::take(start, 8192));
  }
}
