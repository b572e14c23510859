//! How a kernel sleep, and a whole wait, ended: the types every backend
//! and every carrier of waits share.

use crate::core::failure::{Failure, Outcome};

/// How one kernel sleep ended.
pub enum Sleep {
  Woken,
  /// The word no longer held the expected value when the sleep began.
  /// Only the futex reports it; macOS's and FreeBSD's sleeps report Woken.
  #[cfg(target_os = "linux")]
  ValueChanged,
  TimedOut,
  /// A signal ended the sleep early: sleep again.
  Interrupted,
  /// The kernel refused (EFAULT when the word's page is gone because the
  /// object shrank, ENOSYS under a seccomp filter) in the named system
  /// call: retrying cannot help.
  Failed(nix::errno::Errno, &'static str),
}

/// How a wait ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Waited {
  Ok,
  NotEqual,
  TimedOut,
  /// Cancelled, or the JavaScript environment of a synchronous wait is
  /// being torn down (a worker's `terminate()`, `process.exit()`).
  Cancelled,
  /// The named system call failed with this errno.
  Failed(nix::errno::Errno, &'static str),
}

impl Waited {
  /// The number JavaScript knows a finished wait by: 0 ok, 1 not-equal,
  /// 2 timed-out, 3 cancelled; or the failure of its system call.
  pub fn code(self) -> Outcome<u32> {
    match self {
      Waited::Ok => Ok(0),
      Waited::NotEqual => Ok(1),
      Waited::TimedOut => Ok(2),
      Waited::Cancelled => Ok(3),
      Waited::Failed(errno, syscall) => Err(Failure::Sys { errno, syscall }),
    }
  }
}
