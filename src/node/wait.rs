//! The waits JavaScript starts on a word and that finish later or are
//! cut short: `waitAsync` (a watcher thread settles it through a
//! threadsafe function), its cancelling when its environment is torn down,
//! and the liveness probe a synchronous wait asks between two slices.
//! napi-rs entries: they need its threadsafe functions and a class.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use napi::bindgen_prelude::{Either, ToNapiValue, Unknown};
use napi::threadsafe_function::{
  ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{sys, Env, JsValue, Status};
use napi_derive::napi;

use crate::core::failure::{Failure, Outcome};
use crate::core::wait::pending;
use crate::core::wait::slot::{self, Slot};
use crate::core::wait::{self, Waited};
use crate::core::word::{self, Word};
use crate::node::convert::{Arg, BufferMemory};
use crate::node::throw::{self, report};

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

/// How a `waitAsync` ended, as its settle callback receives it: the result
/// code (see `Waited::code`), or the error of its failed system call, made
/// on the JavaScript thread through `throw`.
pub struct Settled(Waited);

impl ToNapiValue for Settled {
  unsafe fn to_napi_value(env: sys::napi_env, settled: Self) -> napi::Result<sys::napi_value> {
    let failure = match settled.0.code() {
      // SAFETY: `env` is the JavaScript thread's, where this runs.
      Ok(code) => return unsafe { u32::to_napi_value(env, code) },
      Err(failure) => failure,
    };
    if let Ok(Some(error)) = throw::error_value(env, failure) {
      return Ok(error);
    }
    // Making the error threw (its exception is the reason now) or failed:
    // settle with that rather than leave the promise pending forever.
    let mut pending = false;
    let mut reason = std::ptr::null_mut();
    // SAFETY: `env` is the JavaScript thread's; the out-pointers are live
    // locals. Clearing the exception hands it to the settle callback.
    unsafe {
      sys::napi_is_exception_pending(env, &mut pending);
      if pending {
        sys::napi_get_and_clear_last_exception(env, &mut reason);
      }
    }
    if pending && !reason.is_null() {
      return Ok(reason);
    }
    let mut error = std::ptr::null_mut();
    let mut message = std::ptr::null_mut();
    let text = "posix-shm: a wait failed and its error could not be built";
    // SAFETY: `text` is valid UTF-8 of the given length; the out-pointers
    // are live locals, and `error` is used only if both calls succeed.
    let made = unsafe {
      sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut message)
        == sys::Status::napi_ok
        && sys::napi_create_error(env, std::ptr::null_mut(), message, &mut error)
          == sys::Status::napi_ok
    };
    if made {
      Ok(error)
    } else {
      Err(napi::Error::from_status(Status::GenericFailure))
    }
  }
}

/// Called with how the wait ended on the JavaScript thread. A strong
/// threadsafe function: while a wait is pending it keeps the event loop,
/// and so the process, alive.
pub type Settle = ThreadsafeFunction<Settled, UnknownReturnValue, Settled, Status, false>;

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
///
/// `kernel_first: false` skips the kernel's look, for words whose page no
/// shrink can cut away without everything else failing too (a channel's
/// header: the channel reads it on every call).
pub fn wait_async_on(
  env: &Env,
  word: Word,
  value: i32,
  timeout_ms: f64,
  settle: Settle,
  kernel_first: bool,
) -> Outcome<Started> {
  let limit = word::timeout(timeout_ms);
  if kernel_first {
    match wait::peek(word.atomic(), value as u32) {
      Ok(true) => {}
      Ok(false) => return Waited::NotEqual.code().map(Either::A),
      Err(failed) => return failed.code().map(Either::A),
    }
  }
  let start = match wait::spin(word.atomic(), value as u32, limit) {
    Ok(waited) => return waited.code().map(Either::A),
    Err(start) => start,
  };
  let deadline = wait::deadline(start, limit);
  let done: slot::Done = Box::new(move |waited: Waited| {
    settle.call(Settled(waited), ThreadsafeFunctionCallMode::NonBlocking);
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

/// The word `byteOffset` bytes into `buffer` (a mapping), read as the
/// plain entries read it.
pub fn word_in_buffer(
  env: sys::napi_env,
  buffer: sys::napi_value,
  byte_offset: f64,
) -> Outcome<Word> {
  BufferMemory::read(env, buffer, "buffer")?.word(byte_offset)
}

/// Starts waiting on a thread of our own; `settle` gets the result code,
/// or the error of a failed system call.
#[napi(
  ts_args_type = "buffer: ArrayBuffer | Int32Array, byteOffset: number, value: number, timeoutMs: number, settle: (result: number | Error) => void",
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
  let word = report(env, word_in_buffer(env.raw(), buffer.raw(), byte_offset))?;
  report(
    env,
    wait_async_on(env, word, value, timeout_ms, settle, true),
  )
}
