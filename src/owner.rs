//! `FdOwner`: a descriptor owned by a JavaScript object (the facade's
//! `SharedMemory`). It is closed by an explicit `close()`, or, if that never
//! happens, when the object is garbage collected or its environment (a
//! worker thread, say) is torn down: `OwnedFd`'s `Drop` closes it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use napi::bindgen_prelude::ObjectFinalize;
use napi::Env;
use napi_derive::napi;
use nix::unistd::close;

use crate::args;
use crate::errors::{report, Failure};
use crate::external::account;
use crate::fd::object_size;

/// What an owned descriptor counts for in V8's external memory. Not its
/// size: a hint, so that a program dropping SharedMemory objects without
/// closing them gets a collection (which closes them) every thousand or so,
/// long before it runs out of descriptors.
const FD_PRESSURE: i64 = 64 * 1024;

#[napi(custom_finalize)]
pub struct FdOwner {
  fd: Option<OwnedFd>,
}

impl ObjectFinalize for FdOwner {
  fn finalize(self, env: Env) -> napi::Result<()> {
    if self.fd.is_some() {
      account(env.raw(), -FD_PRESSURE);
    }
    // `self.fd` drops here: OwnedFd closes it.
    Ok(())
  }
}

#[napi]
impl FdOwner {
  /// Takes ownership of the open descriptor `fd`; from now on only this
  /// object closes it. Fails, without taking it, if `fd` is not open.
  #[napi(factory)]
  pub fn adopt(env: Env, fd: f64) -> napi::Result<FdOwner> {
    let outcome = args::fd(fd).and_then(|fd| {
      // Confirms the descriptor is open before anyone may close it.
      object_size(fd)?;
      // SAFETY: `fd` is open (fstat just succeeded) and the caller hands us
      // its ownership: the facade adopts only descriptors it opened itself
      // or that the user gave away through `SharedMemory.fromFd`. Memory
      // safety does not rest on this; at worst a number still used
      // elsewhere would be closed, as `fs.closeSync` can do.
      Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    });
    let fd = report(&env, outcome)?;
    account(env.raw(), FD_PRESSURE);
    Ok(FdOwner { fd: Some(fd) })
  }

  /// The descriptor number, or -1 once closed (as Node's `FileHandle.fd`).
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
  }

  /// Closes the descriptor and reports close(2)'s result; later calls do
  /// nothing.
  #[napi]
  pub fn close(&mut self, env: Env) -> napi::Result<()> {
    match self.fd.take() {
      Some(fd) => {
        account(env.raw(), -FD_PRESSURE);
        report(&env, close(fd).map_err(Failure::sys("close")))
      }
      None => Ok(()),
    }
  }
}
