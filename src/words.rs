//! Wait and notify on 32-bit words of a mapping, as JavaScript calls them:
//! the word is named by an ArrayBuffer that `mmap` returned (or a copy-mode
//! handle, see `region.rs`) and a byte offset into it.

use std::collections::HashSet;
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
use crate::wait::pending::{self, Slot, Watched};
use crate::wait::{self, Waited};

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
    Watched::atomic(self)
  }
}

impl Watched for Word {
  fn atomic(&self) -> &std::sync::atomic::AtomicU32 {
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

/// Whether JavaScript may still run in `env`. When a worker is terminated
/// or the process exits, Node stops the environment from another thread
/// and V8 is asked to terminate; a preamble-checked Node-API call (here
/// `napi_coerce_to_bool`, which runs no JavaScript) then fails with
/// `napi_pending_exception` (Node 20 to 26, tried). A synchronous wait asks
/// between two slices of its sleep and gives up, so `terminate()` and
/// `process.exit()` are not kept waiting forever.
pub fn env_alive(env: sys::napi_env) -> bool {
  let mut scope = std::ptr::null_mut();
  // SAFETY: `env` is the environment of the call in progress on this
  // thread; the scope is closed below, before the call returns.
  if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
    return false;
  }
  let mut undefined = std::ptr::null_mut();
  let mut boolean = std::ptr::null_mut();
  // SAFETY: both out-pointers are live locals; `undefined` is read only
  // once napi_get_undefined has set it.
  let alive = unsafe {
    sys::napi_get_undefined(env, &mut undefined) == sys::Status::napi_ok
      && sys::napi_coerce_to_bool(env, undefined, &mut boolean) == sys::Status::napi_ok
  };
  // SAFETY: the scope opened above, on this thread.
  unsafe { sys::napi_close_handle_scope(env, scope) };
  alive
}

/// A synchronous wait on `word`, given up if `env` is torn down meanwhile.
pub fn wait_on(env: sys::napi_env, word: &Word, value: i32, timeout_ms: f64) -> Waited {
  wait::wait(
    word.atomic(),
    value as u32,
    timeout(timeout_ms),
    &mut || env_alive(env),
  )
}

/// A sync wait's result code, or its failure thrown as the system error it is.
pub fn waited_code(waited: Waited) -> Outcome<u32> {
  match waited {
    Waited::Failed(errno, syscall) => Err(Failure::Sys { errno, syscall }),
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
    waited_code(wait_on(env, &word, value, timeout_ms))
  })
}

/// `peekInBuffer(buffer, byteOffset, value)`: 1 (not-equal) if the word
/// `byteOffset` bytes into `buffer` differs from `value`, else 2 (what a
/// wait with no time to wait returns); asked of the kernel where it can
/// answer, so a word whose page is gone is EFAULT, not a SIGBUS. The first
/// look of `waitAsync`, before it pays for a threadsafe function. A plain
/// callback.
pub unsafe extern "C" fn peek_in_buffer(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[buffer, byte_offset, value]| {
    let byte_offset = fast_calls::number(env, byte_offset, "byteOffset")?;
    let value = fast_calls::number_as(env, value, sys::napi_get_value_int32, "value")?;
    let word = word_in_buffer(&Env::from_raw(env), buffer, byte_offset)?;
    match wait::peek(word.atomic(), value as u32) {
      Ok(true) => Ok(Waited::TimedOut.code()),
      Ok(false) => Ok(Waited::NotEqual.code()),
      Err(failed) => waited_code(failed),
    }
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

/// Called with the wait's result code (see `Waited::code`) on the
/// JavaScript thread. A strong threadsafe function: while a wait is
/// pending it keeps the event loop, and so the process, alive.
pub type Settle = ThreadsafeFunction<u32, UnknownReturnValue, u32, Status, false>;

/// Pending waits by the environment that started them, so a worker that is
/// torn down (terminate() included) cancels its waits at once instead of
/// leaving them asleep forever, holding their mappings.
/// (environment, wait) of each pending wait.
type Pending = Vec<(usize, Weak<Slot>)>;
static PENDING: LazyLock<Mutex<Pending>> = LazyLock::new(Mutex::default);
static HOOKED: LazyLock<Mutex<HashSet<usize>>> = LazyLock::new(Mutex::default);

fn lock<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
  mutex
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `slot` to be cancelled when `env` is torn down.
fn cancel_at_teardown(env: sys::napi_env, slot: &Arc<Slot>) {
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
  pending.push((key, Arc::downgrade(slot)));
}

unsafe extern "C" fn cancel_environment(arg: *mut std::ffi::c_void) {
  let key = arg as usize;
  lock(&HOOKED).remove(&key);
  let mut ours = Vec::new();
  lock(&PENDING).retain(|(env, weak)| {
    if *env != key {
      return true;
    }
    ours.extend(weak.upgrade());
    false
  });
  // Outside the lock: cancelling drops each wait's callback.
  for slot in ours {
    slot.cancel();
  }
}

/// A `waitAsync` in progress, for cancelling it.
#[napi]
pub struct PendingWait {
  wait: pending::Handle,
}

#[napi]
impl PendingWait {
  /// Stops the wait; its callback is never called, and the event loop is
  /// no longer kept alive by it.
  #[napi]
  pub fn cancel(&self) {
    self.wait.cancel();
  }
}

/// How `waitAsync` started: over already (the result code), or pending.
pub type Started = Either<u32, PendingWait>;

/// Looks at the word through the kernel first (one system call: a word
/// whose page a shrinking peer cut away is EFAULT, not a SIGBUS), spins on
/// the calling thread (a peer that answers within microseconds is seen at
/// once, without a round through the event loop), then hands the wait to
/// a watcher thread (see `wait::pending`), which calls `settle`.
pub fn wait_async_on(
  env: &Env,
  word: Word,
  value: i32,
  timeout_ms: f64,
  settle: Settle,
) -> Outcome<Started> {
  let limit = timeout(timeout_ms);
  match wait::peek(word.atomic(), value as u32) {
    Ok(true) => {}
    Ok(false) => return Ok(Either::A(Waited::NotEqual.code())),
    Err(failed) => return waited_code(failed).map(Either::A),
  }
  let start = match wait::spin(word.atomic(), value as u32, limit) {
    Ok(waited) => return Ok(Either::A(waited.code())),
    Err(start) => start,
  };
  let deadline = wait::deadline(start, limit);
  let done: pending::Done = Box::new(move |waited: Waited| {
    settle.call(waited.code(), ThreadsafeFunctionCallMode::NonBlocking);
    // `settle` drops here: the event loop may exit.
  });
  let wait =
    pending::start(Box::new(word), value as u32, deadline, done).map_err(|error| Failure::Sys {
      errno: nix::errno::Errno::from_raw(error.raw_os_error().unwrap_or(nix::libc::EAGAIN)),
      syscall: "pthread_create",
    })?;
  cancel_at_teardown(env.raw(), wait.slot());
  Ok(Either::B(PendingWait { wait }))
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

/// The system calls a failed wait may name: a result code of 1000 or more
/// is `1000 + 1000 * index + errno` (see `Waited::code`).
#[napi]
pub fn wait_syscalls() -> Vec<&'static str> {
  wait::SYSCALLS.to_vec()
}

/// How many threads posix-shm runs for pending `waitAsync` calls (watchers
/// of up to 127 waits each, or one per wait where the kernel cannot watch
/// many words at once), idle ones included. A diagnostic.
#[napi]
pub fn waiter_thread_count() -> u32 {
  pending::thread_count() as u32
}

/// How many pending `waitAsync` calls watcher threads have handed to the
/// kernel in their current call (Linux 5.16+; 0 elsewhere). With the
/// watchers asleep, these are the waits a `notify` counts. A diagnostic.
#[napi]
pub fn armed_wait_count() -> u32 {
  pending::armed_count() as u32
}
