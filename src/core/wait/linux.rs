//! Linux: futex, without FUTEX_PRIVATE_FLAG, so waiters and wakers in
//! different processes that map the same object meet on the same word (the
//! kernel keys shared futexes by the object and offset, not the address).
//! Many words at once: `futex_waitv` (Linux 5.16).

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;

use super::outcome::{Sleep, Waited};

/// Saturates at i64::MAX seconds. time_t is i64 on every Linux triple we
/// build (all 64-bit); it is not named here because libc marks its
/// `time_t` alias deprecated on musl.
fn timespec(t: Duration) -> libc::timespec {
  libc::timespec {
    tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
    tv_nsec: t.subsec_nanos() as libc::c_long,
  }
}

/// Sleeps while `word` holds `expected`, for at most `timeout`.
pub fn sleep(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Sleep {
  let timespec = timeout.map(timespec);
  let timespec_ptr = timespec
    .as_ref()
    .map_or(std::ptr::null(), |t| t as *const libc::timespec);
  // SAFETY: FUTEX_WAIT reads the word at this address (inside a live
  // mapping: the caller holds it; a page cut away by a shrinking peer is
  // EFAULT, not a fault) and the optional relative timeout, a live local;
  // it writes nothing of ours.
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
    errno => Sleep::Failed(errno, sleep_call()),
  }
}

/// The call a wait sleeps in, as errors name it.
pub fn sleep_call() -> &'static str {
  "futex"
}

/// FUTEX_CMP_REQUEUE that moves and wakes no one: the kernel compares the
/// word with `expected` (EAGAIN if it differs) and returns at once, with
/// EFAULT rather than a SIGBUS if the word's page is gone. (FUTEX_WAIT with
/// a zero timeout would compare too, but sleeps out the timer slack, about
/// 100 µs, when the word is equal.)
pub fn peek(word: &AtomicU32, expected: u32) -> Result<bool, Waited> {
  loop {
    // SAFETY: the kernel reads the word at this address (inside a live
    // mapping the caller holds; a missing page is EFAULT) and, with no one
    // to wake or requeue, only uses the second address to find sleepers.
    let result = unsafe {
      libc::syscall(
        libc::SYS_futex,
        word.as_ptr(),
        libc::FUTEX_CMP_REQUEUE,
        0 as libc::c_int,
        0 as libc::c_long,
        word.as_ptr(),
        expected,
      )
    };
    if result >= 0 {
      return Ok(true);
    }
    match Errno::last() {
      Errno::EAGAIN => return Ok(false),
      Errno::EINTR => continue,
      errno => return Err(Waited::Failed(errno, "futex")),
    }
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

/// Wakes every sleeper on a word of this process only (a watcher's
/// control word, which is private memory).
pub fn wake_private(word: &AtomicU32) {
  // SAFETY: as in `wake`.
  unsafe {
    libc::syscall(
      libc::SYS_futex,
      word.as_ptr(),
      libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
      libc::c_int::MAX,
    )
  };
}

/// `struct futex_waitv` of <linux/futex.h>.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WaitV {
  pub value: u64,
  pub address: u64,
  pub flags: u32,
  reserved: u32,
}

const FUTEX2_SIZE_U32: u32 = 2;
const FUTEX2_PRIVATE: u32 = 128;
/// The kernel's limit on one `futex_waitv` call.
pub const WAITV_MAX: usize = 128;
// The same number on x86_64 and aarch64 (and every architecture that has
// it: it came after the tables were unified).
const SYS_FUTEX_WAITV: libc::c_long = 449;

impl WaitV {
  /// A word shared with other processes (no private flag).
  pub fn shared(word: &AtomicU32, expected: u32) -> WaitV {
    WaitV {
      value: u64::from(expected),
      address: word.as_ptr() as u64,
      flags: FUTEX2_SIZE_U32,
      reserved: 0,
    }
  }

  /// A word of this process only.
  pub fn private(word: &AtomicU32, expected: u32) -> WaitV {
    WaitV {
      flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
      ..WaitV::shared(word, expected)
    }
  }
}

/// How a `futex_waitv` ended.
pub enum Many {
  /// This entry was woken.
  Woken(usize),
  /// Some entry did not hold its value when the call began.
  ValueChanged,
  TimedOut,
  Interrupted,
  Failed(Errno),
}

/// Sleeps on every word of `waits` (the caller keeps each one mapped),
/// until one is woken, or `deadline` on the monotonic clock (which is what
/// `Instant` reads on Linux).
///
/// # Safety
/// Each entry's address must be a live, 4-aligned word for the whole call.
pub unsafe fn wait_many(waits: &[WaitV], deadline: Option<Instant>) -> Many {
  let timeout = deadline.map(|d| {
    let mut now = libc::timespec {
      tv_sec: 0,
      tv_nsec: 0,
    };
    // SAFETY: writes the live local `now` only.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let left = d.saturating_duration_since(Instant::now());
    let now = Duration::new(
      now.tv_sec.max(0) as u64,
      now.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    timespec(now.saturating_add(left))
  });
  let timeout_ptr = timeout
    .as_ref()
    .map_or(std::ptr::null(), |t| t as *const libc::timespec);
  // SAFETY: the array and the optional absolute timeout are live for the
  // call and only read; the caller vouches for the words they name.
  let result = unsafe {
    libc::syscall(
      SYS_FUTEX_WAITV,
      waits.as_ptr(),
      waits.len() as libc::c_uint,
      0 as libc::c_uint,
      timeout_ptr,
      libc::CLOCK_MONOTONIC,
    )
  };
  if result >= 0 {
    return Many::Woken(result as usize);
  }
  match Errno::last() {
    Errno::EAGAIN => Many::ValueChanged,
    Errno::ETIMEDOUT => Many::TimedOut,
    Errno::EINTR => Many::Interrupted,
    errno => Many::Failed(errno),
  }
}

/// Whether this kernel has `futex_waitv` (5.16 and later, unless a seccomp
/// filter refuses it): asked once, with an empty list, which it refuses
/// with EINVAL if it knows the call and ENOSYS (or EPERM) if not.
pub fn has_wait_many() -> bool {
  static KNOWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
  *KNOWN.get_or_init(|| {
    if std::env::var_os("POSIX_SHM_NO_FUTEX_WAITV").is_some() {
      return false;
    }
    // SAFETY: an empty list with no timeout reads no memory.
    let result = unsafe {
      libc::syscall(
        SYS_FUTEX_WAITV,
        std::ptr::null::<WaitV>(),
        0 as libc::c_uint,
        0 as libc::c_uint,
        std::ptr::null::<libc::timespec>(),
        libc::CLOCK_MONOTONIC,
      )
    };
    result == -1 && Errno::last() == Errno::EINVAL
  })
}
