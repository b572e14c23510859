//! Asynchronous waits: each is a `Slot` that some thread watches, and that
//! JavaScript can cancel. Where the kernel can sleep on many words at once
//! (Linux 5.16+, `futex_waitv`), watcher threads carry up to 127 waits
//! each (`watcher.rs`); elsewhere (older Linux, macOS, FreeBSD) each wait
//! has a thread from `pool` that sleeps on its word alone, in slices of
//! `FALLBACK_SLICE` to notice cancellation (the word cannot be woken for
//! that without also waking other processes' waiters on it).
//!
//! Cancelling drops the wait's callback at once (so a pending wait stops
//! keeping the event loop alive at once); the thread lets go of the word,
//! and so of its mapping, when it next looks: at once for a watcher, within
//! `FALLBACK_SLICE` for a pool thread.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool;
use super::slot::{Done, Slot, Watched, THREADS};

/// How long a pool thread sleeps before looking at its cancellation flag.
const FALLBACK_SLICE: Duration = Duration::from_secs(1);

/// How many threads carry (or stand ready to carry) asynchronous waits.
pub fn thread_count() -> usize {
  THREADS.load(Ordering::Relaxed)
}

/// How many pending waits watcher threads have handed to the kernel (see
/// `watcher::armed_count`); 0 where there are no watchers.
pub fn armed_count() -> usize {
  #[cfg(target_os = "linux")]
  return super::watcher::armed_count();
  #[cfg(not(target_os = "linux"))]
  0
}

/// A wait that has started, for cancelling it.
pub struct Handle(Arc<Slot>);

impl Handle {
  pub fn cancel(&self) {
    self.0.cancel();
  }

  pub fn slot(&self) -> &Arc<Slot> {
    &self.0
  }
}

/// Waits on `word` while it holds `expected`, until `deadline`, on another
/// thread; `done` gets the outcome there. Fails only if no thread can be
/// started.
pub fn start(
  word: Box<dyn Watched>,
  expected: u32,
  deadline: Option<Instant>,
  done: Done,
) -> std::io::Result<Handle> {
  let slot = Arc::new(Slot::new(done));
  #[cfg(target_os = "linux")]
  if super::linux::has_wait_many() {
    super::watcher::add(super::watcher::Entry {
      slot: Arc::clone(&slot),
      word,
      expected,
      deadline,
    })?;
    return Ok(Handle(slot));
  }
  let carried = Arc::clone(&slot);
  pool::run(Box::new(move |mark_idle: &dyn Fn()| {
    let waited = super::sleep(
      word.atomic(),
      expected,
      deadline,
      FALLBACK_SLICE,
      &mut || !carried.is_cancelled(),
    );
    drop(word); // the mapping may unmap now
    mark_idle();
    carried.settle(waited);
  }))?;
  Ok(Handle(slot))
}
