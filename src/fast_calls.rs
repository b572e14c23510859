//! `waitInBuffer` and `notifyInBuffer`, the two calls a wait/notify
//! ping-pong makes every round, as plain Node-API callbacks.
//!
//! napi-rs wraps every `#[napi]` function that takes arguments in
//! bookkeeping for borrowed class instances (a thread-local scope, a heap
//! allocation and a lock per call). These two borrow nothing, and the
//! bookkeeping was about a third of their cost: a profile of
//! `waitInBuffer` returning 'not-equal' put 150 of its 440 ns there. A
//! round trip makes four such calls, against a goal of 2 µs for all of it.
//!
//! The arguments are read with the same Node-API calls napi-rs would make,
//! and failures go through the same `Failure` as every other entry. The
//! TypeScript declarations live in `lib/native.ts` (napi-rs types only what
//! it generates).

use std::ffi::{c_void, CStr};
use std::ptr;

use napi::bindgen_prelude::Object;
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::errors::{Failure, Outcome};
use crate::external::check;
use crate::words;

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
fn number_as<T: Default>(
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

/// Hands `outcome` to JavaScript: the number, or the failure thrown (and a
/// null handle, which Node-API reads as undefined under the exception).
fn finish(env: sys::napi_env, outcome: Outcome<u32>) -> sys::napi_value {
  let failure = match outcome {
    Ok(number) => {
      let mut result = ptr::null_mut();
      // SAFETY: `result` is a live local that Node-API writes one handle to.
      let status = unsafe { sys::napi_create_uint32(env, number, &mut result) };
      match check(status, "napi_create_uint32") {
        Ok(()) => return result,
        Err(failure) => failure,
      }
    }
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

/// `waitInBuffer(buffer, byteOffset, value, timeoutMs)`: waits on the word
/// `byteOffset` bytes into `buffer` (a mapping) while it holds `value`;
/// returns 0 (ok), 1 (not-equal) or 2 (timed-out).
unsafe extern "C" fn wait_in_buffer(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  let outcome = (|| {
    let [buffer, byte_offset, value, timeout_ms] = arguments::<4>(env, info)?;
    let byte_offset = number_as(env, byte_offset, sys::napi_get_value_double, "byteOffset")?;
    let value = number_as(env, value, sys::napi_get_value_int32, "value")?;
    let timeout_ms = number_as(env, timeout_ms, sys::napi_get_value_double, "timeoutMs")?;
    let word = words::word_in_buffer(&Env::from_raw(env), buffer, byte_offset)?;
    words::waited_code(words::wait_on(&word, value, timeout_ms))
  })();
  finish(env, outcome)
}

/// `notifyInBuffer(buffer, byteOffset, count)`: wakes up to `count`
/// waiters on the word; returns how many were asleep.
unsafe extern "C" fn notify_in_buffer(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  let outcome = (|| {
    let [buffer, byte_offset, count] = arguments::<3>(env, info)?;
    let byte_offset = number_as(env, byte_offset, sys::napi_get_value_double, "byteOffset")?;
    let count = number_as(env, count, sys::napi_get_value_double, "count")?;
    let word = words::word_in_buffer(&Env::from_raw(env), buffer, byte_offset)?;
    Ok(words::notify_on(&word, count))
  })();
  finish(env, outcome)
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

const FAST_CALLS: [(&CStr, Callback); 2] = [
  (c"waitInBuffer", wait_in_buffer),
  (c"notifyInBuffer", notify_in_buffer),
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
