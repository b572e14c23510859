//! Waiting on a 32-bit word in shared memory until another thread or
//! process notifies it, as `Atomics.wait` / `Atomics.notify` do within one
//! process. What differs between operating systems (futex, ulock, umtx) is
//! one file each, with the same two functions: `sleep` and `wake`.
//!
//! A waiter first spins briefly, watching the word: a peer that answers
//! within microseconds is seen without a trip through the scheduler (a
//! kernel sleep and wake-up costs tens of microseconds each way). After at
//! most `SPIN` it sleeps in the kernel and costs no CPU. So, unlike
//! `Atomics.wait`, a wait also ends with "ok" when, during that short spin,
//! it sees the word change without a notify; and `notify` counts only the
//! waiters asleep in the kernel.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
pub mod pool;

#[cfg(target_os = "freebsd")]
use freebsd as platform;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
use macos as platform;

/// How one kernel sleep ended.
pub enum Sleep {
  Woken,
  /// The word no longer held the expected value when the sleep began.
  ValueChanged,
  TimedOut,
  /// A signal ended the sleep early: sleep again.
  Interrupted,
  /// The kernel refused (EFAULT when the word's page is gone because the
  /// object shrank, ENOSYS under a seccomp filter): retrying cannot help.
  Failed(nix::errno::Errno),
}

/// How a wait ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Waited {
  Ok,
  NotEqual,
  TimedOut,
  Cancelled,
  Failed(nix::errno::Errno),
}

impl Waited {
  /// The number the JavaScript side knows it by: 0 ok, 1 not-equal,
  /// 2 timed-out, 3 cancelled; a failure is 1000 + errno.
  pub fn code(self) -> u32 {
    match self {
      Waited::Ok => 0,
      Waited::NotEqual => 1,
      Waited::TimedOut => 2,
      Waited::Cancelled => 3,
      Waited::Failed(errno) => 1000 + errno as u32,
    }
  }
}

/// `start + timeout`, or no deadline at all if that is past what the
/// clock can express (a timeout of 1e300 ms waits forever, as Infinity).
pub fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
  timeout.and_then(|t| start.checked_add(t))
}

/// The longest a waiter spins before sleeping in the kernel.
const SPIN: Duration = Duration::from_micros(50);
/// A cancellable waiter sleeps in slices this long, to notice cancellation.
const CANCEL_SLICE: Duration = Duration::from_millis(20);

/// Watches `word` for at most `SPIN` (or `limit`, if shorter): `Ok` if the
/// wait is over (the word differs from `expected`), else `Err` with the
/// moment the wait began, to go on in the kernel from there.
pub fn spin(word: &AtomicU32, expected: u32, limit: Option<Duration>) -> Result<Waited, Instant> {
  // Acquire, not SeqCst: the word may be in a read-only mapping, where only
  // plain (not read-modify-write, not SeqCst) atomic loads are allowed.
  // The first look comes before the clock is read: a call that finds the
  // word changed already is common, and reading the clock is not free.
  if word.load(Ordering::Acquire) != expected {
    return Ok(Waited::NotEqual);
  }
  let start = Instant::now();
  let spin = limit.map_or(SPIN, |t| t.min(SPIN));
  let mut turns: u32 = 0;
  loop {
    if word.load(Ordering::Acquire) != expected {
      return Ok(Waited::Ok);
    }
    std::hint::spin_loop();
    turns = turns.wrapping_add(1);
    if turns.is_multiple_of(64) && start.elapsed() >= spin {
      return Err(start);
    }
  }
}

/// Waits while `word` holds `expected`: spins (see `spin`), then sleeps in
/// the kernel until notified, for at most `timeout` in all (None: forever).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Waited {
  match spin(word, expected, timeout) {
    Ok(waited) => waited,
    Err(start) => sleep(word, expected, deadline(start, timeout), None),
  }
}

/// The kernel half of a wait, until `deadline`, checking `cancel` at least
/// every 20 ms when there is one.
pub fn sleep(
  word: &AtomicU32,
  expected: u32,
  deadline: Option<Instant>,
  cancel: Option<&AtomicBool>,
) -> Waited {
  loop {
    if cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
      return Waited::Cancelled;
    }
    let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if remaining == Some(Duration::ZERO) {
      return Waited::TimedOut;
    }
    let slice = match cancel {
      Some(_) => Some(remaining.map_or(CANCEL_SLICE, |r| r.min(CANCEL_SLICE))),
      None => remaining,
    };
    match platform::sleep(word, expected, slice) {
      Sleep::Woken | Sleep::ValueChanged => return Waited::Ok,
      Sleep::TimedOut | Sleep::Interrupted => continue,
      Sleep::Failed(errno) => return Waited::Failed(errno),
    }
  }
}

/// Wakes up to `count` waiters asleep on `word`, in every process; returns
/// how many the kernel woke.
pub fn notify(word: &AtomicU32, count: u32) -> u32 {
  platform::wake(word, count)
}
