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

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{pool, Waited};

/// A word to wait on, kept mapped while the value lives.
pub trait Watched: Send + 'static {
  fn atomic(&self) -> &AtomicU32;
}

/// Called once with how the wait ended, unless it was cancelled.
pub type Done = Box<dyn FnOnce(Waited) + Send>;

/// How long a pool thread sleeps before looking at its cancellation flag.
const FALLBACK_SLICE: Duration = Duration::from_secs(1);

/// Threads carrying waits now: watchers and pool threads, busy or idle.
pub static THREADS: AtomicUsize = AtomicUsize::new(0);

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

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
  mutex
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One pending wait, shared by whoever carries it and whoever may cancel it.
pub struct Slot {
  done: Mutex<Option<Done>>,
  cancelled: AtomicBool,
  /// Tells the carrier to look now (a watcher); unset for a pool thread.
  kick: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Slot {
  fn new(done: Done) -> Slot {
    Slot {
      done: Mutex::new(Some(done)),
      cancelled: AtomicBool::new(false),
      kick: OnceLock::new(),
    }
  }

  /// Stops the wait: its callback is dropped uncalled, now.
  pub fn cancel(&self) {
    self.cancelled.store(true, Ordering::Release);
    let done = lock(&self.done).take();
    drop(done);
    if let Some(kick) = self.kick.get() {
      kick();
    }
  }

  pub fn is_cancelled(&self) -> bool {
    self.cancelled.load(Ordering::Acquire)
  }

  /// Calls the callback, if the wait was not cancelled.
  pub fn settle(&self, waited: Waited) {
    let done = lock(&self.done).take();
    if let Some(done) = done {
      done(waited);
    }
  }

  // Only watchers (Linux) have a way to be told.
  #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
  pub fn set_kick(&self, kick: Box<dyn Fn() + Send + Sync>) {
    self.kick.set(kick).ok();
  }
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
