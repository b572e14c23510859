//! Linux: futex, without FUTEX_PRIVATE_FLAG, so waiters and wakers in
//! different processes that map the same object meet on the same word (the
//! kernel keys shared futexes by the object and offset, not the address).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;

use super::Sleep;

/// Sleeps while `word` holds `expected`, for at most `timeout`.
pub fn sleep(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Sleep {
  let timespec = timeout.map(|t| libc::timespec {
    tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
    tv_nsec: t.subsec_nanos() as libc::c_long,
  });
  let timespec_ptr = timespec
    .as_ref()
    .map_or(std::ptr::null(), |t| t as *const libc::timespec);
  // SAFETY: FUTEX_WAIT reads the word at this address (inside a live
  // mapping: the caller holds it) and the optional relative timeout; it
  // writes nothing of ours.
  let result = unsafe {
    libc::syscall(
      libc::SYS_futex,
      word.as_ptr(),
      libc::FUTEX_WAIT,
      expected,
      timespec_ptr,
    )
  };
  if result == 0 {
    return Sleep::Woken;
  }
  match Errno::last() {
    Errno::EAGAIN => Sleep::ValueChanged,
    Errno::ETIMEDOUT => Sleep::TimedOut,
    Errno::EINTR => Sleep::Interrupted,
    errno => Sleep::Failed(errno),
  }
}

/// Wakes up to `count` sleepers on `word`, in any process; returns how many.
pub fn wake(word: &AtomicU32, count: u32) -> u32 {
  let count = count.min(i32::MAX as u32) as libc::c_int;
  // SAFETY: FUTEX_WAKE only uses the address to find sleepers; it reads
  // and writes no memory of ours.
  let woken = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
  woken.max(0) as u32
}
