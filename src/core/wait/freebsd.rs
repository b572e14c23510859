//! FreeBSD: `_umtx_op` with UMTX_OP_WAIT_UINT and UMTX_OP_WAKE, the shared
//! (not _PRIVATE) forms, so processes mapping the same object meet.
//! Never compiled or run here: built in the GitHub workflow only.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;

use super::outcome::{Sleep, Waited};

/// Through `probe`: a word whose page a shrinking peer cut away is EFAULT,
/// not a SIGBUS. (Asking the kernel, as on Linux, is left for when this can
/// be run: UMTX_OP_WAIT_UINT with a zero timeout might sleep out a timer
/// slack as Linux's FUTEX_WAIT does.)
pub fn peek(word: &AtomicU32, expected: u32) -> Result<bool, Waited> {
  match crate::core::probe::load(word) {
    Ok(value) => Ok(value == expected),
    Err(_) => Err(Waited::Failed(Errno::EFAULT, sleep_call())),
  }
}

/// The call a wait sleeps in, as errors name it.
pub fn sleep_call() -> &'static str {
  "_umtx_op"
}

pub fn sleep(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Sleep {
  let address = word.as_ptr().cast::<libc::c_void>();
  let mut time = timeout.map(|t| libc::_umtx_time {
    _timeout: libc::timespec {
      tv_sec: t.as_secs() as libc::time_t,
      tv_nsec: t.subsec_nanos() as libc::c_long,
    },
    _flags: 0,
    _clockid: libc::CLOCK_MONOTONIC as u32,
  });
  let (size, time_ptr) = match time.as_mut() {
    Some(t) => (
      std::mem::size_of::<libc::_umtx_time>(),
      t as *mut libc::_umtx_time as *mut libc::c_void,
    ),
    None => (0, std::ptr::null_mut()),
  };
  // SAFETY: the word is inside a live mapping held by the caller; the call
  // reads it and the optional timeout (whose size is passed as uaddr, as
  // _umtx_op(2) specifies) and sleeps.
  let result = unsafe {
    libc::_umtx_op(
      address,
      libc::UMTX_OP_WAIT_UINT,
      libc::c_ulong::from(expected),
      size as *mut libc::c_void,
      time_ptr,
    )
  };
  if result == 0 {
    return Sleep::Woken;
  }
  match Errno::last() {
    Errno::ETIMEDOUT => Sleep::TimedOut,
    Errno::EINTR => Sleep::Interrupted,
    errno => Sleep::Failed(errno, sleep_call()),
  }
}

/// UMTX_OP_WAKE does not say how many it woke; report none rather than guess.
pub fn wake(word: &AtomicU32, count: u32) -> u32 {
  let address = word.as_ptr().cast::<libc::c_void>();
  // SAFETY: waking only uses the address to find sleepers.
  unsafe {
    libc::_umtx_op(
      address,
      libc::UMTX_OP_WAKE,
      libc::c_ulong::from(count.min(i32::MAX as u32)),
      std::ptr::null_mut(),
      std::ptr::null_mut(),
    );
  }
  0
}
