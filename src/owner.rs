//! Descriptors owned by JavaScript objects (the facade's `FdOwner`, which
//! `SharedMemory` holds). Each is closed by an explicit close, or, if that
//! never happens, when its object is garbage collected or its environment
//! (a worker thread, say) is torn down: `OwnedFd`'s `Drop` closes it.
//! A number is owned at most once: adopting a number an owner holds is
//! refused, as both owners would close it.
//!
//! JavaScript holds a Node-API external whose data is a key into the table
//! here, never a pointer: a serial number mixed with a random value drawn
//! once per process, so an external that is not ours (another addon's,
//! passed to a direct call) finds nothing instead of being read as ours.
//! An external is much cheaper to make than a napi-rs class instance,
//! which was a third of a `SharedMemory` cycle's time outside the kernel.

use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use napi::sys;
use nix::fcntl::{fcntl, FcntlArg};
use nix::unistd::close;

use crate::errors::Failure;
use crate::external::{account, check};
use crate::fast_calls;
use crate::fd::with_fd;

/// What an owned descriptor counts for in V8's external memory. Not its
/// size: a hint, so that a program dropping SharedMemory objects without
/// closing them gets a collection (which closes them) every thousand or so,
/// long before it runs out of descriptors.
const FD_PRESSURE: i64 = 64 * 1024;

/// The owned descriptors by key, and their numbers, so a number is never
/// owned twice: two owners of one descriptor both close it, and the second
/// close hits whatever has reused the number meanwhile (a worker's event
/// loop descriptor, say, which libuv then aborts on).
#[derive(Default)]
struct Table {
  by_key: HashMap<usize, OwnedFd>,
  numbers: HashSet<RawFd>,
}

impl Table {
  fn remove(&mut self, key: usize) -> Option<OwnedFd> {
    let fd = self.by_key.remove(&key)?;
    self.numbers.remove(&fd.as_raw_fd());
    Some(fd)
  }
}

static OWNED: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);
static NEXT_SERIAL: AtomicUsize = AtomicUsize::new(1);
/// Mixed into every key. Should the operating system's random source
/// fail, a fixed pattern with the top bit set still keeps keys far from
/// the small integers another addon's external might carry.
static KEY_MASK: LazyLock<usize> = LazyLock::new(|| {
  let mut bytes = [0u8; std::mem::size_of::<usize>()];
  let random = match getrandom::fill(&mut bytes) {
    Ok(()) => usize::from_ne_bytes(bytes),
    Err(_) => 0x25a5_a5a5_a5a5_a5a5_u64 as usize,
  };
  random | 1 << (usize::BITS - 1)
});

fn next_key() -> usize {
  NEXT_SERIAL.fetch_add(1, Ordering::Relaxed) ^ *KEY_MASK
}

fn owned() -> MutexGuard<'static, Table> {
  // No code holding the lock can panic, but never turn a poisoned lock
  // into a panic across the FFI boundary either.
  OWNED
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs when the external is collected or its environment torn down.
/// `data` is the serial number; an explicit close may have come first.
unsafe extern "C" fn close_when_collected(
  env: sys::napi_env,
  data: *mut c_void,
  _hint: *mut c_void,
) {
  // Taken out first, so the table's lock is not held across close(2).
  let fd = owned().remove(data as usize);
  if let Some(fd) = fd {
    account(env, -FD_PRESSURE);
    // `fd` drops here: OwnedFd closes it.
    drop(fd);
  }
}

/// `shmClose(fd)`: closes `fd`, unless an owner holds it: a SharedMemory
/// closes its own descriptor, and a second close would hit whatever had
/// reused the number by then (`ERR_SHM_FD_OWNED`). A second close of the
/// same number is EBADF, as with `fs.closeSync`. A plain callback: see
/// `fast_calls`.
pub unsafe extern "C" fn shm_close(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[fd]| {
    let fd = fast_calls::fd(env, fd)?;
    if is_owned(fd) {
      return Err(Failure::FdOwned(fd));
    }
    close(fd).map_err(Failure::sys("close"))
  })
}

/// Whether an owner holds the descriptor number `fd`.
pub fn is_owned(fd: RawFd) -> bool {
  owned().numbers.contains(&fd)
}

/// `fdOwnerAdopt(fd)`: takes ownership of the open descriptor `fd` and
/// returns the handle that owns it. Fails, without taking it, if `fd` is
/// not open, or is already owned (`ERR_SHM_FD_OWNED`: the facade's
/// `fromFd` then takes a duplicate). A plain callback: see `fast_calls`.
pub unsafe extern "C" fn fd_owner_adopt(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[fd]| {
    let fd = fast_calls::fd(env, fd)?;
    // Confirms the descriptor is open before anyone may close it, with the
    // cheapest call that asks.
    with_fd(fd, |fd| fcntl(fd, FcntlArg::F_GETFD)).map_err(Failure::sys("fcntl"))?;
    // Checked again under the lock below; this early answer spares making
    // an external that would only be thrown away.
    if is_owned(fd) {
      return Err(Failure::FdOwned(fd));
    }
    let key = next_key();
    let mut handle = ptr::null_mut();
    // SAFETY: the data is an integer the finalizer only looks up, never a
    // pointer; the finalizer matches napi_finalize; `handle` is a live local.
    let status = unsafe {
      sys::napi_create_external(
        env,
        key as *mut c_void,
        Some(close_when_collected),
        ptr::null_mut(),
        &mut handle,
      )
    };
    // Nothing is taken until the handle exists: a failure leaves `fd` to
    // the caller, who closes it.
    check(status, "napi_create_external")?;
    let mut table = owned();
    // Another thread may have adopted the number since the check above.
    // The external then finds no entry when collected, and does nothing.
    if !table.numbers.insert(fd) {
      return Err(Failure::FdOwned(fd));
    }
    // SAFETY: `fd` is open (fcntl just answered for it), no other owner
    // holds the number (checked under the lock just above), and the caller
    // hands us its ownership: the facade adopts only descriptors it opened
    // itself or that the user gave away through `SharedMemory.fromFd`.
    // Memory safety does not rest on this; at worst a number still used
    // elsewhere would be closed, as `fs.closeSync` can do.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    table.by_key.insert(key, fd);
    drop(table);
    account(env, FD_PRESSURE);
    Ok(handle)
  })
}

/// `fdOwnerClose(handle)`: closes the descriptor `handle` owns and reports
/// close(2)'s result; later calls do nothing. A plain callback.
pub unsafe extern "C" fn fd_owner_close(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[handle]| {
    let mut data = ptr::null_mut();
    // SAFETY: `handle` is a value valid for this call; `data` a live local.
    // For anything but an external Node-API answers napi_invalid_arg.
    let status = unsafe { sys::napi_get_value_external(env, handle, &mut data) };
    if status == sys::Status::napi_invalid_arg {
      return Err(Failure::InvalidValue(
        "The argument 'handle' must be a handle returned by fdOwnerAdopt()".into(),
      ));
    }
    check(status, "napi_get_value_external")?;
    let Some(fd) = owned().remove(data as usize) else {
      return Ok(());
    };
    account(env, -FD_PRESSURE);
    close(fd).map_err(Failure::sys("close"))
  })
}
