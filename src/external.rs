//! The one external ArrayBuffer over each mapping, and the end of its life.
//!
//! A mapping is unmapped exactly once, by the first of:
//! - an explicit `munmap`, which detaches the ArrayBuffer first;
//! - the ArrayBuffer's finalizer, which Node runs once V8 has freed the
//!   buffer's memory (its "backing store"), wherever it ended up.
//!
//! One case this layer cannot guard: since Node 21,
//! `ArrayBuffer.prototype.transfer()` moves the memory to a new ArrayBuffer
//! that `postMessage` can move to another thread, and when the environment
//! that made the buffer (a worker) exits, Node calls the finalizer although
//! the memory may still be in use there (no finalizer or cleanup hook runs
//! early enough to tell). The facade therefore refuses `transfer()` of a
//! mapping (see `lib/mapped-buffers.ts`).
//!
//! napi-rs's external-buffer helpers are not used: where the runtime
//! refuses external buffers they fall back to a private copy, which would
//! silently stop the sharing. We call Node-API directly and report that.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::{sys, Env};

use crate::errors::{Failure, Outcome};
use crate::mapping::Mapping;
use crate::registry;

/// `POSIX_SHM_NO_EXTERNAL_BUFFERS=1`, read once when the addon loads: behave
/// as if the runtime refused external buffers, so that mode can be tested
/// in plain Node.
static REFUSE_EXTERNAL_BUFFERS: AtomicBool = AtomicBool::new(false);

#[napi_derive::module_init]
fn read_environment() {
  let refuse = std::env::var_os("POSIX_SHM_NO_EXTERNAL_BUFFERS").is_some_and(|v| v == "1");
  REFUSE_EXTERNAL_BUFFERS.store(refuse, Ordering::Relaxed);
}

pub fn allowed() -> bool {
  !REFUSE_EXTERNAL_BUFFERS.load(Ordering::Relaxed)
}

pub fn check(status: sys::napi_status, call: &'static str) -> Outcome<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(Failure::NodeApi {
      status: status.into(),
      call,
    })
  }
}

/// Wraps `mapping` in one external ArrayBuffer and hands its ownership to
/// the registry. On any failure the mapping is dropped, so unmapped.
pub fn hand_out(env: &Env, mapping: Mapping) -> Outcome<sys::napi_value> {
  let serial = registry::next_serial();
  let env = env.raw();
  let mut array_buffer = ptr::null_mut();
  // SAFETY: the data pointer and length describe a live mapping that the
  // registry owns until this ArrayBuffer's memory is freed or detached, so
  // the ArrayBuffer never outlives its memory (for the one exception,
  // transfer() to another thread, see the top of this file).
  // The finalizer reads only the two integers passed here.
  let status = unsafe {
    sys::napi_create_external_arraybuffer(
      env,
      mapping.address().as_ptr(),
      mapping.length(),
      Some(finalize),
      serial as *mut c_void,
      &mut array_buffer,
    )
  };
  if status == sys::Status::napi_no_external_buffers_allowed {
    return Err(Failure::NoExternalBuffers);
  }
  check(status, "napi_create_external_arraybuffer")?;
  // No `account` here: V8 counts every ArrayBuffer's length as external
  // memory itself (its array-buffer sweeper reports it when the buffer is
  // set up and takes it back when the buffer is freed or detached). A
  // second report doubled the pressure, and for a large mapping it made
  // the very call that mapped it run a synchronous full collection:
  // milliseconds for 256 MiB, where the system calls take microseconds.
  registry::adopt(serial, Arc::new(mapping));
  Ok(array_buffer)
}

/// Tells V8 how much memory outside its heap a JavaScript object holds, so
/// the collector runs (and finalizers release mappings and descriptors)
/// when many of them are garbage, not only when its own heap is full. For
/// what V8 cannot see: descriptors and copy-mode mappings (no ArrayBuffer).
pub fn account(env: sys::napi_env, bytes: i64) {
  let mut total = 0;
  // SAFETY: `env` is the calling environment; the out-pointer is a live
  // local. A failure only means V8 misses a hint, so it is ignored.
  unsafe { sys::napi_adjust_external_memory(env, bytes, &mut total) };
}

/// Runs when the ArrayBuffer's memory has been freed, or when its
/// environment is torn down. `data` is the mapping's address and `hint` its
/// serial number (integers, not pointers: there is nothing to free).
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, hint: *mut c_void) {
  // An explicit munmap may have come first; then this finds nothing, or a
  // newer mapping at the same address with another serial, and leaves it.
  drop(registry::release(data as usize, hint as usize));
}

/// Detaches `array_buffer` and unmaps its range, if it is a live mapping
/// of ours; otherwise touches nothing and says so.
pub fn unmap(env: &Env, array_buffer: sys::napi_value) -> Outcome<()> {
  let mut data = ptr::null_mut();
  let mut length = 0usize;
  // SAFETY: `array_buffer` is an ArrayBuffer handle valid for this call;
  // the out-pointers point at live locals.
  let status =
    unsafe { sys::napi_get_arraybuffer_info(env.raw(), array_buffer, &mut data, &mut length) };
  check(status, "napi_get_arraybuffer_info")?;
  let entry = if data.is_null() {
    None
  } else {
    registry::take(data as usize, length)
  };
  let Some(entry) = entry else {
    return Err(Failure::InvalidValue(
      "The argument 'mapped' is not a live mapping made by mmap(): it was never mapped by posix-shm or is already unmapped"
        .into(),
    ));
  };
  // Detach first: once this succeeds no JavaScript value reaches the range.
  // SAFETY: `array_buffer` is a valid ArrayBuffer handle for this call.
  let status = unsafe { sys::napi_detach_arraybuffer(env.raw(), array_buffer) };
  if let Err(failure) = check(status, "napi_detach_arraybuffer") {
    // Still reachable: put it back untouched.
    registry::adopt(entry.serial, entry.mapping);
    return Err(failure);
  }
  drop(entry);
  Ok(())
}
