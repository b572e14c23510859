//! The calls that run on every hot path (a lifecycle cycle, a wait/notify
//! round trip), as plain Node-API callbacks.
//!
//! napi-rs wraps every `#[napi]` function that takes arguments in
//! bookkeeping for borrowed class instances (a thread-local scope, a heap
//! allocation and a lock per call). None of these calls borrows a class
//! instance, and the bookkeeping was a large share of their cost: 150 of
//! the 440 ns of a `waitInBuffer` that returns 'not-equal', and about a
//! microsecond of the seven calls of a lifecycle cycle.
//!
//! Each callback lives in the module of its concern; this one reads
//! arguments with the same Node-API calls napi-rs would make, hands
//! results and `Failure`s to JavaScript the way every other entry does, and
//! registers the callbacks. Their TypeScript declarations live in
//! `lib/native.ts` (napi-rs types only what it generates).

use std::ffi::{c_void, CStr};
use std::os::fd::RawFd;
use std::ptr;

use napi::bindgen_prelude::Object;
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use nix::errno::Errno;

use crate::args;
use crate::errors::{Failure, Outcome};
use crate::external::check;
use crate::{fd, mmap, owner, shm, words};

/// The arguments of a call, `N` of them; missing ones are `undefined`.
fn arguments<const N: usize>(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> Outcome<[sys::napi_value; N]> {
  let mut argv = [ptr::null_mut(); N];
  let mut argc = N;
  // SAFETY: `info` is this callback's own; `argv` has room for `argc`
  // handles, and Node-API fills the ones the caller left out with undefined.
  let status = unsafe {
    sys::napi_get_cb_info(
      env,
      info,
      &mut argc,
      argv.as_mut_ptr(),
      ptr::null_mut(),
      ptr::null_mut(),
    )
  };
  check(status, "napi_get_cb_info")?;
  Ok(argv)
}

/// Node-API's reader of one kind of number (`napi_get_value_double`, ...).
type NumberReader<T> = unsafe fn(sys::napi_env, sys::napi_value, *mut T) -> sys::napi_status;

/// A JavaScript number read by `reader`, as napi-rs reads an argument of
/// that type. Anything else is refused with a TypeError coded
/// ERR_INVALID_ARG_VALUE, like our other argument errors (napi-rs threw a
/// plain Error coded NumberExpected); only direct calls to the binding see
/// it, as the facade checks first.
pub fn number_as<T: Default>(
  env: sys::napi_env,
  value: sys::napi_value,
  reader: NumberReader<T>,
  what: &str,
) -> Outcome<T> {
  let mut number = T::default();
  // SAFETY: `reader` is one of Node-API's napi_get_value_* functions, which
  // read the handle `value` (valid for this call) and write only `number`,
  // a live local of the type it expects.
  let status = unsafe { reader(env, value, &mut number) };
  match status {
    sys::Status::napi_ok => Ok(number),
    sys::Status::napi_number_expected => Err(Failure::InvalidValue(format!(
      "The argument '{what}' must be a number"
    ))),
    status => check(status, "napi_get_value_*").map(|()| number),
  }
}

/// A JavaScript number, as `f64` (the checks in `args` take it from there).
pub fn number(env: sys::napi_env, value: sys::napi_value, what: &str) -> Outcome<f64> {
  number_as(env, value, sys::napi_get_value_double, what)
}

/// A descriptor number argument, checked as `args::fd` checks it.
pub fn fd(env: sys::napi_env, value: sys::napi_value) -> Outcome<RawFd> {
  args::fd(number(env, value, "fd")?)
}

/// Room on the stack for a name's UTF-8 and its NUL. Shared memory names
/// are at most 255 bytes on Linux and 31 on macOS; longer ones are refused
/// before they are copied, so no name, however long, is copied to the heap.
const LONGEST_NAME: usize = 511;

/// Reads a name argument as UTF-8 (a lone surrogate becomes U+FFFD, as
/// napi-rs reads it; the facade refuses those first) and lends it to
/// `use_it`. A name longer than `LONGEST_NAME` bytes is ENAMETOOLONG from
/// `syscall`, as the system would answer.
pub fn with_name<T>(
  env: sys::napi_env,
  value: sys::napi_value,
  syscall: &'static str,
  use_it: impl FnOnce(&str) -> Outcome<T>,
) -> Outcome<T> {
  let mut length = 0usize;
  // SAFETY: a null buffer asks only for the length, written to a live local.
  let status =
    unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut length) };
  if status == sys::Status::napi_string_expected {
    return Err(Failure::InvalidValue(
      "The argument 'name' must be a string".into(),
    ));
  }
  check(status, "napi_get_value_string_utf8")?;
  if length > LONGEST_NAME {
    return Err(Failure::Sys {
      errno: Errno::ENAMETOOLONG,
      syscall,
    });
  }
  let mut buffer = [0u8; LONGEST_NAME + 1];
  let mut written = 0usize;
  // SAFETY: `buffer` has room for the `length` bytes and the NUL Node-API
  // adds; Node-API writes at most `buffer.len()` bytes into it and the
  // count to a live local. The string cannot change between the two calls
  // (strings are immutable and no JavaScript runs in between).
  let status = unsafe {
    sys::napi_get_value_string_utf8(
      env,
      value,
      buffer.as_mut_ptr().cast(),
      buffer.len(),
      &mut written,
    )
  };
  check(status, "napi_get_value_string_utf8")?;
  // Node-API writes UTF-8, so this cannot fail; it is checked rather than
  // assumed so that nothing here can panic or read past what was written.
  let name = std::str::from_utf8(&buffer[..written.min(length)])
    .map_err(|_| Failure::InvalidValue("The argument 'name' could not be read as UTF-8".into()))?;
  use_it(name)
}

/// What a callback returns to JavaScript.
pub trait Returned {
  fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value>;
}

impl Returned for () {
  fn into_js(self, _env: sys::napi_env) -> Outcome<sys::napi_value> {
    // A callback that returns a null handle returns undefined.
    Ok(ptr::null_mut())
  }
}

impl Returned for sys::napi_value {
  fn into_js(self, _env: sys::napi_env) -> Outcome<sys::napi_value> {
    Ok(self)
  }
}

/// Node-API's maker of one kind of number (`napi_create_int32`, ...).
type NumberMaker<T> = unsafe fn(sys::napi_env, T, *mut sys::napi_value) -> sys::napi_status;

fn make_number<T>(
  env: sys::napi_env,
  number: T,
  maker: NumberMaker<T>,
) -> Outcome<sys::napi_value> {
  let mut result = ptr::null_mut();
  // SAFETY: `maker` is one of Node-API's napi_create_* number functions,
  // which write one handle to `result`, a live local.
  let status = unsafe { maker(env, number, &mut result) };
  check(status, "napi_create_*")?;
  Ok(result)
}

impl Returned for i32 {
  fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value> {
    make_number(env, self, sys::napi_create_int32)
  }
}

impl Returned for u32 {
  fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value> {
    make_number(env, self, sys::napi_create_uint32)
  }
}

/// The whole of a plain callback taking `N` arguments: reads them, runs
/// `body`, and hands its outcome to JavaScript (the value, or the failure
/// thrown and a null handle, which Node-API reads as undefined under the
/// pending exception).
pub fn call<const N: usize, R: Returned>(
  env: sys::napi_env,
  info: sys::napi_callback_info,
  body: impl FnOnce([sys::napi_value; N]) -> Outcome<R>,
) -> sys::napi_value {
  let failure = match arguments::<N>(env, info)
    .and_then(body)
    .and_then(|returned| returned.into_js(env))
  {
    Ok(value) => return value,
    Err(failure) => failure,
  };
  // `throw` leaves the error pending in JavaScript and says so; if it could
  // not even build the error, a plain one is thrown so the call never
  // returns quietly.
  if failure.throw(&Env::from_raw(env)).status != napi::Status::PendingException {
    // SAFETY: a NUL-terminated literal message and no code; `env` is this
    // call's environment.
    unsafe {
      sys::napi_throw_error(
        env,
        ptr::null(),
        c"posix-shm: the call failed and its error could not be built".as_ptr(),
      )
    };
  }
  ptr::null_mut()
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

const FAST_CALLS: [(&CStr, Callback); 11] = [
  (c"shmOpenNamed", shm::shm_open_named),
  (c"shmUnlinkNamed", shm::shm_unlink_named),
  (c"shmFtruncate", fd::shm_ftruncate),
  (c"shmClose", owner::shm_close),
  (c"mmapShared", mmap::mmap_shared),
  (c"munmapShared", mmap::munmap_shared),
  (c"fdOwnerAdopt", owner::fd_owner_adopt),
  (c"fdOwnerClose", owner::fd_owner_close),
  (c"waitInBuffer", words::wait_in_buffer),
  (c"notifyInBuffer", words::notify_in_buffer),
  (c"peekInBuffer", words::peek_in_buffer),
];

/// Puts the plain callbacks on the addon's exports, beside napi-rs's.
#[napi(module_exports)]
pub fn register_fast_calls(exports: Object) -> napi::Result<()> {
  let env = exports.value().env;
  for (name, callback) in FAST_CALLS {
    let mut function = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated and lives for the program (a
    // literal); the callback matches napi_callback; `function` is a live
    // local. No data pointer is attached.
    let status = unsafe {
      sys::napi_create_function(
        env,
        name.as_ptr(),
        name.to_bytes().len() as isize,
        Some(callback),
        ptr::null_mut::<c_void>(),
        &mut function,
      )
    };
    check(status, "napi_create_function").map_err(|f| f.throw(&Env::from_raw(env)))?;
    // SAFETY: `exports` is the module's exports object, valid during
    // registration; `name` is NUL-terminated; `function` was just made.
    let status =
      unsafe { sys::napi_set_named_property(env, exports.raw(), name.as_ptr(), function) };
    check(status, "napi_set_named_property").map_err(|f| f.throw(&Env::from_raw(env)))?;
  }
  Ok(())
}
