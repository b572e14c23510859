//! One pending asynchronous wait (`Slot`), shared by the thread that
//! carries it and whoever may cancel it, and what every carrier (watcher
//! or pool thread) shares: the word type and the count of threads.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::Waited;

/// A word to wait on, kept mapped while the value lives.
pub trait Watched: Send + 'static {
  fn atomic(&self) -> &AtomicU32;
}

/// Called once with how the wait ended, unless it was cancelled.
pub type Done = Box<dyn FnOnce(Waited) + Send>;

/// Threads carrying waits now: watchers and pool threads, busy or idle.
pub static THREADS: AtomicUsize = AtomicUsize::new(0);

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
  pub fn new(done: Done) -> Slot {
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
