//! Waiting on a 32-bit word in shared memory until another thread or
//! process notifies it, as `Atomics.wait` / `Atomics.notify` do within one
//! process. What differs between operating systems (futex, ulock, umtx) is
//! one file each, with the same functions: `sleep`, `wake` and `peek`.
//!
//! A waiter first spins briefly, watching the word: a peer that answers
//! within microseconds is seen without a trip through the scheduler (a
//! kernel sleep and wake-up costs tens of microseconds each way). After at
//! most `SPIN` it sleeps in the kernel and costs no CPU. So, unlike
//! `Atomics.wait`, a wait also ends with "ok" when, during that short spin,
//! it sees the word change without a notify; and `notify` counts only the
//! waiters asleep in the kernel.
//!
//! Asynchronous waits (`pending`) do not each own a thread: on Linux 5.16+
//! one watcher thread sleeps on up to 127 of them at once (`futex_waitv`).

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use crate::core::probe;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
mod outcome;
pub mod pending;
pub mod pool;
pub mod slot;
#[cfg(target_os = "linux")]
mod watcher;

#[cfg(target_os = "freebsd")]
use freebsd as platform;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
use macos as platform;
pub use outcome::{Sleep, Waited};

/// `start + timeout`, or no deadline at all if that is past what the
/// clock can express (a timeout of 1e300 ms waits forever, as Infinity).
pub fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
  timeout.and_then(|t| start.checked_add(t))
}

/// The longest a waiter spins before sleeping in the kernel.
const SPIN: Duration = Duration::from_micros(50);

/// A synchronous wait in a worker thread sleeps in slices this long and,
/// between two, asks whether its JavaScript environment is still alive
/// (see `wait`), so `terminate()` ends it within one slice. Each slice
/// also enters the kernel afresh, which is how a sleeping wait learns that
/// its word's page is gone (EFAULT). Between two slices the waiter is not
/// asleep, so a `notify` landing there does not count it (the waiter still
/// sees a changed word at once).
pub const WORKER_SLICE: Duration = Duration::from_millis(20);
/// The same on the process's main thread, which nothing but the process's
/// own end can stop: longer slices, so that `notify` nearly always finds
/// the waiter asleep, and a shrink is still noticed within a second.
pub const MAIN_THREAD_SLICE: Duration = Duration::from_secs(1);

/// Whether the calling thread is the process's first thread, the one that
/// runs Node's main environment.
fn on_main_thread() -> bool {
  #[cfg(target_os = "linux")]
  // SAFETY: gettid and getpid take no arguments and cannot fail.
  return unsafe { nix::libc::gettid() == nix::libc::getpid() };
  #[cfg(any(target_os = "macos", target_os = "freebsd"))]
  // SAFETY: pthread_main_np takes no arguments and cannot fail.
  return unsafe { nix::libc::pthread_main_np() } != 0;
}

/// Watches `word` for at most `SPIN` (or `limit`, if shorter): `Ok` if the
/// wait is over (the word differs from `expected`), else `Err` with the
/// moment the wait began, to go on in the kernel from there.
pub fn spin(word: &AtomicU32, expected: u32, limit: Option<Duration>) -> Result<Waited, Instant> {
  // Every look goes through `probe::load`: an acquire load (the word may be
  // in a read-only mapping, where only plain loads are allowed) that turns
  // a page a shrinking peer cut away into EFAULT instead of SIGBUS.
  // The first look comes before the clock is read: a call that finds the
  // word changed already is common, and reading the clock is not free.
  match look(word) {
    Ok(value) if value != expected => return Ok(Waited::NotEqual),
    Ok(_) => {}
    Err(failed) => return Ok(failed),
  }
  if limit == Some(Duration::ZERO) {
    return Ok(Waited::TimedOut);
  }
  let start = Instant::now();
  let spin = limit.map_or(SPIN, |t| t.min(SPIN));
  let mut turns: u32 = 0;
  loop {
    match look(word) {
      Ok(value) if value != expected => return Ok(Waited::Ok),
      Ok(_) => {}
      Err(failed) => return Ok(failed),
    }
    std::hint::spin_loop();
    turns = turns.wrapping_add(1);
    if turns.is_multiple_of(64) && start.elapsed() >= spin {
      return Err(start);
    }
  }
}

/// The word's value; a page cut away by a shrinking peer is the EFAULT
/// its wait would have met in the kernel, named after the platform's call.
fn look(word: &AtomicU32) -> Result<u32, Waited> {
  probe::load(word).map_err(|_| Waited::Failed(nix::errno::Errno::EFAULT, platform::sleep_call()))
}

/// Whether `word` holds `expected`, asked of the kernel on Linux (where a
/// system call that answers at once exists), else through `probe`: a word
/// whose page is gone (the object shrank under the mapping) is then an
/// error, not a SIGBUS.
pub fn peek(word: &AtomicU32, expected: u32) -> Result<bool, Waited> {
  platform::peek(word, expected)
}

/// Waits while `word` holds `expected`: spins (see `spin`), then sleeps in
/// the kernel until notified, for at most `timeout` in all (None: forever).
/// Sleeps in slices (`WORKER_SLICE`, `MAIN_THREAD_SLICE`), and ends with
/// `Cancelled` as soon as `alive` says no between two.
pub fn wait(
  word: &AtomicU32,
  expected: u32,
  timeout: Option<Duration>,
  alive: &mut dyn FnMut() -> bool,
) -> Waited {
  match spin(word, expected, timeout) {
    Ok(waited) => waited,
    Err(start) => {
      let slice = if on_main_thread() {
        MAIN_THREAD_SLICE
      } else {
        WORKER_SLICE
      };
      sleep(word, expected, deadline(start, timeout), slice, alive)
    }
  }
}

/// The kernel half of a wait, until `deadline`, in slices of at most
/// `slice`, asking `go_on` between two.
pub fn sleep(
  word: &AtomicU32,
  expected: u32,
  deadline: Option<Instant>,
  slice: Duration,
  go_on: &mut dyn FnMut() -> bool,
) -> Waited {
  let mut first = true;
  loop {
    if !first && !go_on() {
      return Waited::Cancelled;
    }
    first = false;
    let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if remaining == Some(Duration::ZERO) {
      return Waited::TimedOut;
    }
    let this_slice = remaining.map_or(slice, |r| r.min(slice));
    match platform::sleep(word, expected, Some(this_slice)) {
      Sleep::Woken => return Waited::Ok,
      #[cfg(target_os = "linux")]
      Sleep::ValueChanged => return Waited::Ok,
      Sleep::TimedOut | Sleep::Interrupted => continue,
      Sleep::Failed(errno, syscall) => return Waited::Failed(errno, syscall),
    }
  }
}

/// Wakes up to `count` waiters asleep on `word`, in every process; returns
/// how many the kernel woke.
pub fn notify(word: &AtomicU32, count: u32) -> u32 {
  platform::wake(word, count)
}

#[cfg(test)]
mod tests {
  use super::*;

  use crate::core::failure::Failure;

  #[test]
  fn a_failed_wait_is_the_failure_of_its_system_call() {
    assert_eq!(Waited::Ok.code().ok(), Some(0));
    assert_eq!(Waited::Cancelled.code().ok(), Some(3));
    let efault = nix::errno::Errno::EFAULT;
    assert!(matches!(
      Waited::Failed(efault, "futex").code(),
      Err(Failure::Sys {
        errno: nix::errno::Errno::EFAULT,
        syscall: "futex"
      })
    ));
  }

  #[test]
  fn peek_compares() {
    let word = AtomicU32::new(5);
    assert_eq!(peek(&word, 5), Ok(true));
    assert_eq!(peek(&word, 6), Ok(false));
  }

  #[test]
  fn a_wait_ends_when_alive_says_no() {
    let word = AtomicU32::new(0);
    let mut asked = 0;
    let waited = wait(&word, 0, None, &mut || {
      asked += 1;
      asked < 2
    });
    assert_eq!(waited, Waited::Cancelled);
    assert_eq!(asked, 2);
  }
}
