//! How a native entry reports failure to JavaScript.
//!
//! The native layer does not know libuv's error messages (`file already
//! exists`), so a failed system call is thrown as an `Error` carrying the raw
//! facts (`errno` negative, as Node does it, and `syscall`) under the code
//! `ERR_SHM_SYSCALL`; the facade turns it into a `ShmError` with the message
//! and errno name of the running platform. Argument errors are thrown in
//! their final shape (`TypeError`/`RangeError` with Node's codes), because
//! the facade checks arguments first and these only fire when the binding
//! is called directly.

use napi::bindgen_prelude::{FromNapiValue, Object};
use napi::{Env, Error, JsError, JsValue, Status};
use nix::errno::Errno;

use crate::mapping::MappingBudget;

/// Everything a native entry can fail with.
#[derive(Debug)]
pub enum Failure {
  /// A system call failed with this errno.
  Sys { errno: Errno, syscall: &'static str },
  /// A system call failed, or was not made because it would fail, for a
  /// reason of the platform's (see `platform`) that `detail` explains.
  Platform {
    errno: Errno,
    syscall: &'static str,
    detail: String,
  },
  /// A number outside what the call accepts: `RangeError`, `ERR_OUT_OF_RANGE`.
  OutOfRange(String),
  /// A value of the right type but not usable: `TypeError`, `ERR_INVALID_ARG_VALUE`.
  InvalidValue(String),
  /// The runtime refuses external ArrayBuffers (Electron 21 and later), or
  /// `POSIX_SHM_NO_EXTERNAL_BUFFERS=1` asked us to behave as if it did.
  NoExternalBuffers,
  /// posix-shm holds all the mappings it may (see `mapping::BUDGET`):
  /// thrown as mmap's ENOMEM, with why.
  MappingBudget(MappingBudget),
  /// Memory for a copy of this many bytes, a length the caller chose,
  /// could not be had: `RangeError`, `ERR_MEMORY_ALLOCATION_FAILED` (an
  /// allocation failure must never abort the process).
  Allocation(usize),
  /// The descriptor already belongs to an owner (a `SharedMemory`), which
  /// will close it: owning it twice would close it twice.
  FdOwned(std::os::fd::RawFd),
  /// A Node-API call failed where it should not; reported, never unwrapped.
  NodeApi { status: Status, call: &'static str },
}

pub type Outcome<T> = std::result::Result<T, Failure>;

impl Failure {
  pub fn sys(syscall: &'static str) -> impl FnOnce(Errno) -> Failure {
    move |errno| Failure::Sys { errno, syscall }
  }

  /// Throws this failure as a JavaScript exception and returns the napi-rs
  /// error that tells the binding glue an exception is already pending.
  pub fn throw(self, env: &Env) -> Error {
    // If building or throwing the exception itself fails there is nothing
    // better to report: napi-rs then throws its own generic error.
    if let Err(err) = self.throw_inner(env) {
      return err;
    }
    Error::from_status(Status::PendingException)
  }

  fn throw_inner(self, env: &Env) -> napi::Result<()> {
    match self {
      Failure::Sys { errno, syscall } => throw_sys(env, errno, syscall, None),
      Failure::Platform {
        errno,
        syscall,
        detail,
      } => throw_sys(env, errno, syscall, Some(detail)),
      Failure::MappingBudget(budget) => {
        let system = budget.system.map_or(String::new(), |cap| {
          format!(", three quarters of vm.max_map_count ({cap})")
        });
        let detail = format!(
          "posix-shm holds {} mappings, all it may{system}; mappings dropped without munmap() or close() are \
           unmapped only when the event loop turns",
          budget.ours
        );
        throw_sys(env, Errno::ENOMEM, "mmap", Some(detail))
      }
      Failure::OutOfRange(message) => env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE")),
      Failure::InvalidValue(message) => {
        env.throw_type_error(&message, Some("ERR_INVALID_ARG_VALUE"))
      }
      Failure::NoExternalBuffers => env.throw_error(
        "this runtime refuses external ArrayBuffers (Electron 21 and later do), so a mapping \
         cannot be handed to JavaScript without copying it, and a copy would not be shared",
        Some("ERR_SHM_NO_EXTERNAL_BUFFERS"),
      ),
      Failure::Allocation(length) => env.throw_range_error(
        &format!("Cannot allocate {length} bytes for the copy"),
        Some("ERR_MEMORY_ALLOCATION_FAILED"),
      ),
      Failure::FdOwned(fd) => env.throw_error(
        &format!(
          "fd {fd} is owned by a SharedMemory, which will close it: close that SharedMemory \
           instead, or pass a duplicate (SharedMemory.fromFd takes one itself)"
        ),
        Some("ERR_SHM_FD_OWNED"),
      ),
      Failure::NodeApi { status, call } => env.throw_error(
        &format!("{call} failed with Node-API status {status}"),
        Some("ERR_SHM_NODE_API"),
      ),
    }
  }
}

/// Throws a failed system call as the facade expects it (see the top of
/// this file), with `detail` saying more than the errno can.
fn throw_sys(env: &Env, errno: Errno, syscall: &str, detail: Option<String>) -> napi::Result<()> {
  let error = JsError::from(Error::new(
    "ERR_SHM_SYSCALL",
    format!("{syscall} failed: {}", errno.desc()),
  ))
  .into_unknown(*env);
  // SAFETY: `into_unknown` made an Error object in this environment.
  let mut error = unsafe { Object::from_napi_value(env.raw(), error.raw()) }?;
  error.set("errno", -(errno as i32))?;
  error.set("syscall", syscall)?;
  if let Some(detail) = detail {
    error.set("detail", detail)?;
  }
  env.throw(error)
}

/// Runs a native entry's body and throws its failure, if any.
pub fn report<T>(env: &Env, outcome: Outcome<T>) -> napi::Result<T> {
  outcome.map_err(|failure| failure.throw(env))
}
