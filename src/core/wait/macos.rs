//! macOS: `os_sync_wait_on_address` / `os_sync_wake_by_address_any` with the
//! SHARED flag where the system has them (macOS 14.4 and later, looked up at
//! run time so older systems still load the addon), else the older
//! `__ulock_wait` / `__ulock_wake` with UL_COMPARE_AND_WAIT_SHARED.
//! Never compiled or run here: built in the GitHub workflow only.

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;

use super::outcome::{Sleep, Waited};

const OS_SYNC_SHARED: u32 = 1; // OS_SYNC_WAIT_ON_ADDRESS_SHARED == OS_SYNC_WAKE_BY_ADDRESS_SHARED
const OS_CLOCK_MACH_ABSOLUTE_TIME: u32 = 32;
const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;

type WaitWithTimeout = unsafe extern "C" fn(*mut c_void, u64, usize, u32, u32, u64) -> c_int;
type Wait = unsafe extern "C" fn(*mut c_void, u64, usize, u32) -> c_int;
type Wake = unsafe extern "C" fn(*mut c_void, usize, u32) -> c_int;

// The private but long-stable ulock calls; neither nix nor libc declares them.
extern "C" {
  fn __ulock_wait(operation: u32, address: *mut c_void, value: u64, timeout_us: u32) -> c_int;
  fn __ulock_wake(operation: u32, address: *mut c_void, wake_value: u64) -> c_int;
}

const ULF_WAKE_ALL: u32 = 0x100;

struct OsSync {
  wait: Wait,
  wait_with_timeout: WaitWithTimeout,
  wake_any: Wake,
  wake_all: Wake,
}

fn os_sync() -> Option<&'static OsSync> {
  static FOUND: OnceLock<Option<OsSync>> = OnceLock::new();
  FOUND
    .get_or_init(|| {
      let find = |name: &CStr| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only
        // looks a symbol up.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        (!symbol.is_null()).then_some(symbol)
      };
      let wait = find(c"os_sync_wait_on_address")?;
      let wait_with_timeout = find(c"os_sync_wait_on_address_with_timeout")?;
      let wake_any = find(c"os_sync_wake_by_address_any")?;
      let wake_all = find(c"os_sync_wake_by_address_all")?;
      // SAFETY: these symbols have exactly these C signatures
      // (<os/os_sync_wait_on_address.h>).
      Some(unsafe {
        OsSync {
          wait: std::mem::transmute::<*mut c_void, Wait>(wait),
          wait_with_timeout: std::mem::transmute::<*mut c_void, WaitWithTimeout>(wait_with_timeout),
          wake_any: std::mem::transmute::<*mut c_void, Wake>(wake_any),
          wake_all: std::mem::transmute::<*mut c_void, Wake>(wake_all),
        }
      })
    })
    .as_ref()
}

fn outcome(result: c_int, syscall: &'static str) -> Sleep {
  if result >= 0 {
    return Sleep::Woken;
  }
  match Errno::last() {
    Errno::ETIMEDOUT => Sleep::TimedOut,
    Errno::EINTR => Sleep::Interrupted,
    errno => Sleep::Failed(errno, syscall),
  }
}

/// Through `probe`, as elsewhere, though objects cannot shrink on macOS
/// (`ftruncate` works once), so a word of a live mapping keeps its page.
pub fn peek(word: &AtomicU32, expected: u32) -> Result<bool, Waited> {
  match crate::core::probe::load(word) {
    Ok(value) => Ok(value == expected),
    Err(_) => Err(Waited::Failed(Errno::EFAULT, sleep_call())),
  }
}

/// The call a wait sleeps in, as errors name it.
pub fn sleep_call() -> &'static str {
  if os_sync().is_some() {
    "os_sync_wait_on_address"
  } else {
    "__ulock_wait"
  }
}

pub fn sleep(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Sleep {
  let address = word.as_ptr().cast::<c_void>();
  if let Some(os) = os_sync() {
    // SAFETY: the word is inside a live mapping held by the caller; the
    // calls read it and sleep; they write nothing of ours.
    let result = unsafe {
      match timeout {
        Some(t) => (os.wait_with_timeout)(
          address,
          u64::from(expected),
          4,
          OS_SYNC_SHARED,
          OS_CLOCK_MACH_ABSOLUTE_TIME,
          t.as_nanos().min(u64::MAX as u128) as u64,
        ),
        None => (os.wait)(address, u64::from(expected), 4, OS_SYNC_SHARED),
      }
    };
    return outcome(result, sleep_call());
  }
  // __ulock_wait takes microseconds in a u32, 0 meaning forever.
  let micros = timeout.map_or(0, |t| t.as_micros().clamp(1, u32::MAX as u128) as u32);
  // SAFETY: as above.
  let result = unsafe {
    __ulock_wait(
      UL_COMPARE_AND_WAIT_SHARED,
      address,
      u64::from(expected),
      micros,
    )
  };
  outcome(result, sleep_call())
}

/// Neither call reports how many it woke. A bounded count wakes one at a
/// time until no one is left; "all" (u32::MAX) wakes everyone at once, so a
/// waiter that quickly sleeps again is not woken over and over, and
/// reports 1 if anyone was asleep, else 0.
pub fn wake(word: &AtomicU32, count: u32) -> u32 {
  let address = word.as_ptr().cast::<c_void>();
  if count == u32::MAX {
    // SAFETY: waking only uses the address to find sleepers.
    let result = unsafe {
      match os_sync() {
        Some(os) => (os.wake_all)(address, 4, OS_SYNC_SHARED),
        None => __ulock_wake(UL_COMPARE_AND_WAIT_SHARED | ULF_WAKE_ALL, address, 0),
      }
    };
    return u32::from(result >= 0);
  }
  let mut woken = 0;
  while woken < count {
    // SAFETY: waking only uses the address to find sleepers.
    let result = unsafe {
      match os_sync() {
        Some(os) => (os.wake_any)(address, 4, OS_SYNC_SHARED),
        None => __ulock_wake(UL_COMPARE_AND_WAIT_SHARED, address, 0),
      }
    };
    if result < 0 {
      break; // ENOENT: nobody was waiting
    }
    woken += 1;
  }
  woken
}
