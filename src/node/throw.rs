//! The one route by which a failure reaches JavaScript: every entry, plain
//! or napi-rs, throws its failures through here, in the error's final
//! shape. (napi-rs's own argument conversion, for the few entries it
//! reads, still throws its plain errors for a wrong type; the facade
//! validates before calling them.)
//!
//! - A failed system call is a `ShmError` shaped like Node's `fs` errors
//!   (`code` the errno name, `errno` negative, `syscall`, `path`, and
//!   libuv's message). Node's table of errno names and messages is only
//!   reachable from JavaScript (`util.getSystemErrorMap`), so the facade
//!   registers its factories (`systemError`, `stateError` in
//!   lib/errors.ts) once per environment as it loads the binding, and the
//!   error is made by calling them.
//! - A state that is not a system-call failure (the mapping budget, a
//!   descriptor already owned, a runtime without external buffers) is a
//!   `ShmError` with a code of its own and no errno or syscall.
//! - A bad argument is a `TypeError` or `RangeError` with Node's codes.
//!
//! Without registered factories (the binding called directly) a plain
//! Error of the same shape is thrown, with the system's message.

use std::ffi::c_void;
use std::ptr;

use napi::sys;

use crate::core::failure::{Failure, Outcome};
use crate::node::convert::{self, check, Arg};

/// The facade's two error factories, held by this environment.
struct Factories {
  system: sys::napi_ref,
  state: sys::napi_ref,
}

/// `systemError(errno, syscall, path?, fallbackMessage?, detail?)`.
pub struct SystemErrorFactory(sys::napi_value);
/// `stateError(code, message, path?)`.
pub struct StateErrorFactory(sys::napi_value);

fn function(env: sys::napi_env, value: sys::napi_value, name: &str) -> Outcome<sys::napi_value> {
  let mut kind = sys::ValueType::napi_undefined;
  // SAFETY: `value` is a handle valid for this call; `kind` a live local.
  let status = unsafe { sys::napi_typeof(env, value, &mut kind) };
  check(status, "napi_typeof")?;
  if kind != sys::ValueType::napi_function {
    return Err(Failure::InvalidValue(format!(
      "The argument '{name}' must be a function"
    )));
  }
  Ok(value)
}

impl Arg for SystemErrorFactory {
  const TS: &'static str = "(errno: number, syscall: string, path?: string, fallbackMessage?: string, detail?: string) => Error";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    function(env, value, name).map(SystemErrorFactory)
  }
}

impl Arg for StateErrorFactory {
  const TS: &'static str = "(code: string, message: string, path?: string) => Error";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    function(env, value, name).map(StateErrorFactory)
  }
}

unsafe extern "C" fn drop_factories(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  // SAFETY: `data` is the box `register` leaked for this environment; Node
  // runs this once, as the environment is torn down (which deletes the
  // references themselves).
  drop(unsafe { Box::from_raw(data as *mut Factories) });
}

/// Makes `system` and `state` the factories of this environment's errors.
/// Each load of the facade registers (a module cache cleared, a test
/// runner's reload): the latest pair wins, and the one it replaces is let
/// go at once.
pub fn register(
  env: sys::napi_env,
  system: SystemErrorFactory,
  state: StateErrorFactory,
) -> Outcome<()> {
  let mut factories = Factories {
    system: ptr::null_mut(),
    state: ptr::null_mut(),
  };
  // SAFETY: both values are function handles valid for this call; the
  // out-pointers are fields of a live local. Strong references (count 1)
  // keep the functions for the environment's life.
  unsafe {
    check(
      sys::napi_create_reference(env, system.0, 1, &mut factories.system),
      "napi_create_reference",
    )?;
    check(
      sys::napi_create_reference(env, state.0, 1, &mut factories.state),
      "napi_create_reference",
    )?;
  }
  let mut existing = ptr::null_mut();
  // SAFETY: the out-pointer is a live local.
  let status = unsafe { sys::napi_get_instance_data(env, &mut existing) };
  if status == sys::Status::napi_ok && !existing.is_null() {
    // SAFETY: only this function sets this addon's instance data, to a
    // live `Factories` box that lives until the environment's teardown;
    // no other reference to it is held across this call.
    let existing = unsafe { &mut *(existing as *mut Factories) };
    let old = std::mem::replace(existing, factories);
    // SAFETY: the old references were made in this environment by an
    // earlier call, and nothing else holds or deletes them.
    unsafe {
      sys::napi_delete_reference(env, old.system);
      sys::napi_delete_reference(env, old.state);
    }
    return Ok(());
  }
  let data = Box::into_raw(Box::new(factories));
  // SAFETY: `data` is a box the finalizer takes back, set once per
  // environment (later registrations replace its contents above).
  let status = unsafe {
    sys::napi_set_instance_data(
      env,
      data as *mut c_void,
      Some(drop_factories),
      ptr::null_mut(),
    )
  };
  if status != sys::Status::napi_ok {
    // SAFETY: not registered, so the box is still ours.
    drop(unsafe { Box::from_raw(data) });
  }
  check(status, "napi_set_instance_data")
}

/// This environment's factory, if the facade registered them.
fn factory(env: sys::napi_env, pick: fn(&Factories) -> sys::napi_ref) -> Option<sys::napi_value> {
  let mut data = ptr::null_mut();
  // SAFETY: the out-pointer is a live local.
  let status = unsafe { sys::napi_get_instance_data(env, &mut data) };
  if status != sys::Status::napi_ok || data.is_null() {
    return None;
  }
  // SAFETY: only `register` sets this addon's instance data, to a live
  // `Factories` box freed only at the environment's teardown.
  let reference = pick(unsafe { &*(data as *const Factories) });
  let mut function = ptr::null_mut();
  // SAFETY: the reference is strong and belongs to this environment.
  let status = unsafe { sys::napi_get_reference_value(env, reference, &mut function) };
  (status == sys::Status::napi_ok && !function.is_null()).then_some(function)
}

fn string(env: sys::napi_env, text: &str) -> Outcome<sys::napi_value> {
  let mut value = ptr::null_mut();
  // SAFETY: `text` is valid UTF-8 of the given length; `value` a live local.
  let status = unsafe {
    sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut value)
  };
  check(status, "napi_create_string_utf8")?;
  Ok(value)
}

fn optional_string(env: sys::napi_env, text: Option<&str>) -> Outcome<sys::napi_value> {
  match text {
    Some(text) => string(env, text),
    None => {
      let mut value = ptr::null_mut();
      // SAFETY: the out-pointer is a live local.
      let status = unsafe { sys::napi_get_undefined(env, &mut value) };
      check(status, "napi_get_undefined")?;
      Ok(value)
    }
  }
}

fn number(env: sys::napi_env, value: f64) -> Outcome<sys::napi_value> {
  convert::make(env, value, sys::napi_create_double)
}

/// Calls `function` with `args`; None if it threw (its exception is then
/// pending, and is what JavaScript sees).
fn call(
  env: sys::napi_env,
  function: sys::napi_value,
  args: &[sys::napi_value],
) -> Outcome<Option<sys::napi_value>> {
  let mut this = ptr::null_mut();
  let mut result = ptr::null_mut();
  // SAFETY: `function` and `args` are handles valid for this call; the
  // out-pointers are live locals.
  let status = unsafe {
    sys::napi_get_undefined(env, &mut this);
    sys::napi_call_function(env, this, function, args.len(), args.as_ptr(), &mut result)
  };
  if status == sys::Status::napi_pending_exception {
    return Ok(None);
  }
  check(status, "napi_call_function")?;
  Ok(Some(result))
}

/// A plain Error, TypeError or RangeError with `code` and `message`, plus
/// the given properties (for errors made without the facade's factories).
fn plain(
  env: sys::napi_env,
  maker: unsafe fn(
    sys::napi_env,
    sys::napi_value,
    sys::napi_value,
    *mut sys::napi_value,
  ) -> sys::napi_status,
  code: &str,
  message: &str,
  properties: &[(&std::ffi::CStr, sys::napi_value)],
) -> Outcome<sys::napi_value> {
  let code = string(env, code)?;
  let message = string(env, message)?;
  let mut error = ptr::null_mut();
  // SAFETY: `maker` is napi_create_error, _type_error or _range_error,
  // given string handles made just above; `error` is a live local.
  let status = unsafe { maker(env, code, message, &mut error) };
  check(status, "napi_create_error")?;
  for (name, value) in properties {
    // SAFETY: `error` was just made; `name` is NUL-terminated; `value` is
    // a handle valid for this call.
    let status = unsafe { sys::napi_set_named_property(env, error, name.as_ptr(), *value) };
    check(status, "napi_set_named_property")?;
  }
  Ok(error)
}

fn system_error(
  env: sys::napi_env,
  errno: nix::errno::Errno,
  syscall: &str,
  path: Option<&str>,
  detail: Option<&str>,
) -> Outcome<Option<sys::napi_value>> {
  let negative = number(env, -(errno as i32) as f64)?;
  let syscall_value = string(env, syscall)?;
  let path_value = optional_string(env, path)?;
  let Some(factory) = factory(env, |f| f.system) else {
    let name = format!("{errno:?}");
    let where_ = path.map_or(syscall.to_owned(), |p| format!("{syscall} '{p}'"));
    let why = detail.map_or(String::new(), |d| format!(" ({d})"));
    let message = format!("{name}: {}, {where_}{why}", errno.desc());
    let mut properties = vec![(c"errno", negative), (c"syscall", syscall_value)];
    if path.is_some() {
      properties.push((c"path", path_value));
    }
    return plain(env, sys::napi_create_error, &name, &message, &properties).map(Some);
  };
  let fallback = string(env, errno.desc())?;
  let detail = optional_string(env, detail)?;
  call(
    env,
    factory,
    &[negative, syscall_value, path_value, fallback, detail],
  )
}

fn state_error(
  env: sys::napi_env,
  code: &str,
  message: &str,
  path: Option<&str>,
) -> Outcome<Option<sys::napi_value>> {
  let Some(factory) = factory(env, |f| f.state) else {
    return plain(env, sys::napi_create_error, code, message, &[]).map(Some);
  };
  let args = [
    string(env, code)?,
    string(env, message)?,
    optional_string(env, path)?,
  ];
  call(env, factory, &args)
}

fn budget_message(ours: usize, system: Option<usize>) -> String {
  let system = system.map_or(String::new(), |cap| {
    format!(", three quarters of vm.max_map_count ({cap})")
  });
  format!(
    "posix-shm holds {} mappings, all it may{system}; mappings dropped without munmap() or close() are \
     unmapped only when the event loop turns",
    ours
  )
}

/// The JavaScript error for `failure`, made but not thrown; None if making
/// it threw (that exception is then pending).
pub fn error_value(env: sys::napi_env, failure: Failure) -> Outcome<Option<sys::napi_value>> {
  let (path, failure) = match failure {
    Failure::At { path, failure } => (Some(path), *failure),
    failure => (None, failure),
  };
  let path = path.as_deref();
  match failure {
    Failure::Sys { errno, syscall } => system_error(env, errno, syscall, path, None),
    Failure::Platform {
      errno,
      syscall,
      detail,
    } => system_error(env, errno, syscall, path, Some(&detail)),
    Failure::At { failure, .. } => error_value(env, *failure),
    Failure::OutOfRange(message) => plain(
      env,
      sys::napi_create_range_error,
      "ERR_OUT_OF_RANGE",
      &message,
      &[],
    )
    .map(Some),
    Failure::InvalidValue(message) => plain(
      env,
      sys::napi_create_type_error,
      "ERR_INVALID_ARG_VALUE",
      &message,
      &[],
    )
    .map(Some),
    Failure::Allocation(length) => plain(
      env,
      sys::napi_create_range_error,
      "ERR_MEMORY_ALLOCATION_FAILED",
      &format!("Cannot allocate {length} bytes for the copy"),
      &[],
    )
    .map(Some),
    Failure::NoExternalBuffers => state_error(
      env,
      "ERR_SHM_NO_EXTERNAL_BUFFERS",
      "this runtime refuses external ArrayBuffers (Electron 21 and later do), so a mapping \
       cannot be handed to JavaScript without copying it, and a copy would not be shared",
      path,
    ),
    Failure::NoSharedBuffers => state_error(
      env,
      "ERR_SHM_NO_SHARED_BUFFERS",
      "this runtime cannot make a SharedArrayBuffer over a mapping: `shared: true` needs \
       node_api_create_external_sharedarraybuffer, which Node.js 22.23.3+, 24.16+ and 26.1+ and Bun \
       have (Node.js 20 and Electron do not)",
      path,
    ),
    Failure::MappingBudget { ours, system } => state_error(
      env,
      "ERR_SHM_MAPPING_BUDGET",
      &budget_message(ours, system),
      path,
    ),
    Failure::FdOwned(fd) => state_error(
      env,
      "ERR_SHM_FD_OWNED",
      &format!(
        "fd {fd} is owned by a SharedMemory or a Channel, which will close it: close that \
         object instead, or pass a duplicate (SharedMemory.fromFd takes one itself)"
      ),
      path,
    ),
    Failure::Shrunk => state_error(
      env,
      "ERR_SHM_SHRUNK",
      "another process shrank the object under this mapping: a page this call needed is past \
       the object's end now, and the mapping is refused from here on (close it and map the \
       object afresh; `seal: true` rules this out)",
      path,
    ),
    Failure::Closed(what) => state_error(
      env,
      "ERR_SHM_CLOSED",
      &format!("this {what} is closed"),
      path,
    ),
    Failure::NotAChannel(why) => state_error(
      env,
      "ERR_SHM_NOT_A_CHANNEL",
      &format!("the object is not a channel: {why}"),
      path,
    ),
    Failure::ChannelCorrupt(what) => state_error(
      env,
      "ERR_SHM_CHANNEL_CORRUPT",
      &format!("the channel is corrupt (a peer wrote what no channel end writes): {what}"),
      path,
    ),
    Failure::ChannelBusy(end) => state_error(
      env,
      "ERR_SHM_CHANNEL_BUSY",
      &format!(
        "another handle holds the {end} end of this channel (in this or another process); \
         an end is free again once its holder closes or dies"
      ),
      path,
    ),
    Failure::ChannelEnded => state_error(
      env,
      "ERR_SHM_CHANNEL_ENDED",
      "the channel's sending end was ended: nothing more can be sent",
      path,
    ),
    Failure::PeerGone(end) => state_error(
      env,
      "ERR_SHM_PEER_GONE",
      &format!("the process holding the {end} end of the channel died"),
      path,
    ),
    Failure::NodeApi { status, call } => plain(
      env,
      sys::napi_create_error,
      "ERR_SHM_NODE_API",
      &format!("{call} failed with Node-API status {status}"),
      &[],
    )
    .map(Some),
  }
}

/// Throws `failure` as its JavaScript error. If even that cannot be made,
/// a plain Error says so, so that a call never fails quietly.
pub fn throw(env: sys::napi_env, failure: Failure) {
  match error_value(env, failure) {
    // SAFETY: `error` was made in this environment during this call.
    Ok(Some(error)) => unsafe {
      sys::napi_throw(env, error);
    },
    // Making it threw: that exception is pending already.
    Ok(None) => {}
    // SAFETY: a NUL-terminated literal message and no code.
    Err(_) => unsafe {
      sys::napi_throw_error(
        env,
        ptr::null(),
        c"posix-shm: the call failed and its error could not be built".as_ptr(),
      );
    },
  }
}

/// For napi-rs entries: throws `outcome`'s failure, if any, and returns
/// the error that tells napi-rs an exception is already pending.
pub fn report<T>(env: &napi::Env, outcome: Outcome<T>) -> napi::Result<T> {
  outcome.map_err(|failure| {
    throw(env.raw(), failure);
    napi::Error::from_status(napi::Status::PendingException)
  })
}
