//! Wait and notify on 32-bit words of a mapping, as JavaScript calls them:
//! the word is named by an ArrayBuffer that `mmap` returned (or a copy-mode
//! handle, see `region.rs`) and a byte offset into it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Duration;

use napi::bindgen_prelude::{Either, Unknown};
use napi::threadsafe_function::{
  ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{sys, Env, JsValue, Status};
use napi_derive::napi;
use nix::sys::mman::ProtFlags;

use crate::args;
use crate::errors::{report, Failure, Outcome};
use crate::external::check;
use crate::fast_calls;
use crate::mapping::Mapping;
use crate::mmap::is_kind;
use crate::registry;
use crate::wait::{self, pool, Waited};

/// A word: the mapping that holds it (kept mapped while this lives) and
/// its offset from the mapping's start.
pub struct Word {
  mapping: Arc<Mapping>,
  offset: usize,
  needed: ProtFlags,
}

impl Word {
  pub fn new(mapping: Arc<Mapping>, offset: usize, needed: ProtFlags) -> Outcome<Word> {
    if !mapping.protections().contains(needed) {
      return Err(Failure::InvalidValue(format!(
        "The mapping does not allow {needed:?}"
      )));
    }
    if mapping.word(offset, needed).is_none() {
      return Err(Failure::OutOfRange(format!(
        "The value of \"byteOffset\" is out of range. It must be a multiple of 4 inside the mapping ({} bytes). Received {offset}",
        mapping.length(),
      )));
    }
    Ok(Word {
      mapping,
      offset,
      needed,
    })
  }

  pub fn atomic(&self) -> &std::sync::atomic::AtomicU32 {
    // `new` checked this offset, alignment and access on this mapping,
    // which never changes, so this cannot fail.
    self
      .mapping
      .word(self.offset, self.needed)
      .expect("checked in Word::new")
  }
}

/// The word `byte_offset` bytes into the ArrayBuffer `buffer`, which must
/// be a live mapping of ours.
pub fn word_in_buffer(env: &Env, buffer: sys::napi_value, byte_offset: f64) -> Outcome<Word> {
  let byte_offset = args::byte_count(byte_offset, "byteOffset")? as usize;
  let mut data = std::ptr::null_mut();
  let mut length = 0usize;
  if is_kind(
    env.raw(),
    buffer,
    sys::napi_is_arraybuffer,
    "napi_is_arraybuffer",
  )? {
    // SAFETY: `buffer` is an ArrayBuffer handle valid for this call; the
    // out-pointers are live locals.
    let status =
      unsafe { sys::napi_get_arraybuffer_info(env.raw(), buffer, &mut data, &mut length) };
    check(status, "napi_get_arraybuffer_info")?;
  }
  let address = data as usize;
  let mapping = (!data.is_null())
    .then(|| registry::holding(address, length))
    .flatten()
    .ok_or_else(|| {
      Failure::InvalidValue("The argument 'view' must be over a live mapping made by mmap()".into())
    })?;
  let start = mapping.address().as_ptr() as usize;
  Word::new(mapping, address - start + byte_offset, ProtFlags::PROT_READ)
}

/// A timeout in milliseconds as `Atomics.wait` reads it: NaN or +Infinity
/// wait forever, a negative one does not wait.
pub fn timeout(milliseconds: f64) -> Option<Duration> {
  if milliseconds.is_nan() || milliseconds == f64::INFINITY {
    return None;
  }
  Some(Duration::try_from_secs_f64(milliseconds.max(0.0) / 1000.0).unwrap_or(Duration::MAX))
}

/// A notify count as `Atomics.notify` reads it: +Infinity (or more than
/// anyone could wait) wakes everyone, a negative or NaN one nobody.
pub fn count(count: f64) -> u32 {
  if count.is_nan() {
    0
  } else {
    count.clamp(0.0, f64::from(u32::MAX)) as u32
  }
}

pub fn wait_on(word: &Word, value: i32, timeout_ms: f64) -> Waited {
  wait::wait(word.atomic(), value as u32, timeout(timeout_ms))
}

/// A sync wait's result code, or its failure thrown as the system error it is.
pub fn waited_code(waited: Waited) -> Outcome<u32> {
  match waited {
    Waited::Failed(errno) => Err(Failure::Sys {
      errno,
      syscall: "futex",
    }),
    other => Ok(other.code()),
  }
}

pub fn notify_on(word: &Word, how_many: f64) -> u32 {
  wait::notify(word.atomic(), count(how_many))
}

/// `waitInBuffer(buffer, byteOffset, value, timeoutMs)`: waits on the word
/// `byteOffset` bytes into `buffer` (a mapping) while it holds `value`;
/// returns 0 (ok), 1 (not-equal) or 2 (timed-out). A plain callback: see
/// `fast_calls`.
pub unsafe extern "C" fn wait_in_buffer(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[buffer, byte_offset, value, timeout_ms]| {
    let byte_offset = fast_calls::number(env, byte_offset, "byteOffset")?;
    let value = fast_calls::number_as(env, value, sys::napi_get_value_int32, "value")?;
    let timeout_ms = fast_calls::number(env, timeout_ms, "timeoutMs")?;
    let word = word_in_buffer(&Env::from_raw(env), buffer, byte_offset)?;
    waited_code(wait_on(&word, value, timeout_ms))
  })
}

/// `notifyInBuffer(buffer, byteOffset, count)`: wakes up to `count`
/// waiters on the word; returns how many were asleep. A plain callback.
pub unsafe extern "C" fn notify_in_buffer(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[buffer, byte_offset, count]| {
    let byte_offset = fast_calls::number(env, byte_offset, "byteOffset")?;
    let count = fast_calls::number(env, count, "count")?;
    let word = word_in_buffer(&Env::from_raw(env), buffer, byte_offset)?;
    Ok(notify_on(&word, count))
  })
}

/// Called with the wait's result code (0 ok, 1 not-equal, 2 timed-out) on
/// the JavaScript thread. A strong threadsafe function: while a wait is
/// pending it keeps the event loop, and so the process, alive.
pub type Settle = ThreadsafeFunction<u32, UnknownReturnValue, u32, Status, false>;

/// Cancellation flags of pending waits, by the environment that started
/// them, so a worker that is torn down (terminate() included) stops its
/// waits within one 20 ms slice instead of leaving threads asleep forever,
/// holding their mappings.
/// (environment, cancellation flag) of each pending wait.
type Pending = Vec<(usize, Weak<AtomicBool>)>;
static PENDING: LazyLock<Mutex<Pending>> = LazyLock::new(Mutex::default);
static HOOKED: LazyLock<Mutex<HashSet<usize>>> = LazyLock::new(Mutex::default);

fn lock<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
  mutex
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `flag` to be set when `env` is torn down.
fn cancel_at_teardown(env: sys::napi_env, flag: &Arc<AtomicBool>) {
  let key = env as usize;
  if lock(&HOOKED).insert(key) {
    // SAFETY: `env` is the calling environment; the hook reads its argument
    // as an integer only.
    unsafe {
      sys::napi_add_env_cleanup_hook(env, Some(cancel_environment), key as *mut std::ffi::c_void)
    };
  }
  let mut pending = lock(&PENDING);
  pending.retain(|(_, weak)| weak.strong_count() > 0);
  pending.push((key, Arc::downgrade(flag)));
}

unsafe extern "C" fn cancel_environment(arg: *mut std::ffi::c_void) {
  let key = arg as usize;
  lock(&HOOKED).remove(&key);
  lock(&PENDING).retain(|(env, weak)| {
    if *env != key {
      return true;
    }
    if let Some(flag) = weak.upgrade() {
      flag.store(true, Ordering::Release);
    }
    false
  });
}

/// A `waitAsync` in progress, for cancelling it.
#[napi]
pub struct PendingWait {
  cancelled: Arc<AtomicBool>,
}

#[napi]
impl PendingWait {
  /// Stops the wait; its callback is never called. The thread that carried
  /// it notices within 20 ms and takes the next wait or ends.
  #[napi]
  pub fn cancel(&self) {
    self.cancelled.store(true, Ordering::Release);
  }
}

/// How `waitAsync` started: over already (the result code), or pending.
pub type Started = Either<u32, PendingWait>;

/// Spins on the calling thread first (a peer that answers within
/// microseconds is seen at once, without a round through the event loop);
/// then hands the kernel sleep to a waiter thread, which calls `settle`.
pub fn wait_async_on(
  env: &Env,
  word: Word,
  value: i32,
  timeout_ms: f64,
  settle: Settle,
) -> Outcome<Started> {
  let limit = timeout(timeout_ms);
  let start = match wait::spin(word.atomic(), value as u32, limit) {
    Ok(waited) => return Ok(Either::A(waited.code())),
    Err(start) => start,
  };
  let deadline = wait::deadline(start, limit);
  let cancelled = Arc::new(AtomicBool::new(false));
  cancel_at_teardown(env.raw(), &cancelled);
  let flag = Arc::clone(&cancelled);
  pool::run(Box::new(move |mark_idle: &dyn Fn()| {
    let waited = wait::sleep(word.atomic(), value as u32, deadline, Some(&flag));
    drop(word); // the mapping may unmap now
    mark_idle();
    if waited != Waited::Cancelled {
      settle.call(waited.code(), ThreadsafeFunctionCallMode::NonBlocking);
    }
    // `settle` drops here: the event loop may exit.
  }))
  .map_err(|error| Failure::Sys {
    errno: nix::errno::Errno::from_raw(error.raw_os_error().unwrap_or(nix::libc::EAGAIN)),
    syscall: "pthread_create",
  })?;
  Ok(Either::B(PendingWait { cancelled }))
}

// `waitInBuffer` and `notifyInBuffer` are in `fast_calls.rs`.

/// Starts waiting on a thread of our own; `settle` gets the result code.
#[napi(
  ts_args_type = "buffer: ArrayBuffer, byteOffset: number, value: number, timeoutMs: number, settle: (result: number) => void",
  ts_return_type = "number | PendingWait"
)]
pub fn wait_in_buffer_async(
  env: &Env,
  buffer: Unknown<'_>,
  byte_offset: f64,
  value: i32,
  timeout_ms: f64,
  settle: Settle,
) -> napi::Result<Started> {
  let word = report(env, word_in_buffer(env, buffer.raw(), byte_offset))?;
  report(env, wait_async_on(env, word, value, timeout_ms, settle))
}
