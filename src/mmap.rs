//! `mmap` and `munmap` as JavaScript sees them: each mapping is handed out
//! as exactly one external ArrayBuffer (views are made in JavaScript), and
//! `munmap` detaches that ArrayBuffer before the range is unmapped, so no
//! view can reach the freed addresses.
//!
//! napi-rs's own external-buffer helpers are not used: where the runtime
//! refuses external buffers they fall back to a private copy, which would
//! silently stop the sharing. We call Node-API directly and report that case.

use std::num::NonZeroUsize;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use nix::sys::mman::ProtFlags;

use crate::args;
use crate::constants::{page_size, protections_allowed};
use crate::errors::{report, Failure, Outcome};
use crate::fd::{borrow, object_size};
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

/// Whether `mmap` can hand out zero-copy ArrayBuffers in this process.
#[napi]
pub fn external_buffers_allowed() -> bool {
  !REFUSE_EXTERNAL_BUFFERS.load(Ordering::Relaxed)
}

fn check(status: sys::napi_status, call: &'static str) -> Outcome<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(Failure::NodeApi {
      status: status.into(),
      call,
    })
  }
}

/// Runs when V8 has collected the ArrayBuffer over a mapping. `data` is the
/// mapping's address and `hint` its serial number (an integer, not a
/// pointer: there is nothing to free).
unsafe extern "C" fn finalize_mapping(
  _env: sys::napi_env,
  data: *mut std::ffi::c_void,
  hint: *mut std::ffi::c_void,
) {
  // An explicit munmap may have come first; then this finds nothing, or a
  // newer mapping at the same address with another serial, and leaves it.
  drop(registry::release(data as usize, hint as usize));
}

/// Wraps `mapping` in one external ArrayBuffer and hands its ownership to
/// the registry. On any failure the mapping is dropped, so unmapped.
fn hand_out(env: &Env, mapping: Mapping) -> Outcome<sys::napi_value> {
  if !external_buffers_allowed() {
    return Err(Failure::NoExternalBuffers);
  }
  let serial = registry::next_serial();
  let mut array_buffer = ptr::null_mut();
  // SAFETY: the data pointer and length describe a live mapping that the
  // registry will own until this ArrayBuffer is finalized or detached, so
  // the ArrayBuffer never outlives its memory. The finalizer reads only the
  // two integers passed here. `env` is the current call's environment.
  let status = unsafe {
    sys::napi_create_external_arraybuffer(
      env.raw(),
      mapping.address().as_ptr(),
      mapping.length(),
      Some(finalize_mapping),
      serial as *mut std::ffi::c_void,
      &mut array_buffer,
    )
  };
  if status == sys::Status::napi_no_external_buffers_allowed {
    return Err(Failure::NoExternalBuffers);
  }
  check(status, "napi_create_external_arraybuffer")?;
  registry::adopt(serial, mapping);
  Ok(array_buffer)
}

/// Maps `length` bytes of `fd` from `offset` with `protections`, refusing a
/// range past the object's current end (which would raise SIGBUS on touch).
fn map(env: &Env, length: f64, protections: f64, fd: f64, offset: f64) -> Outcome<sys::napi_value> {
  let length = args::byte_count(length, "length")?;
  let length = NonZeroUsize::new(length as usize).ok_or_else(|| {
    Failure::OutOfRange(
      "The value of \"length\" is out of range. It must be > 0. Received 0".into(),
    )
  })?;
  let protections = args::bits_within(protections, protections_allowed(), "protections")?;
  let protections = ProtFlags::from_bits_truncate(protections as nix::libc::c_int);
  let fd = args::fd(fd)?;
  let offset = args::byte_count(offset, "offset")?;
  let page = page_size();
  if offset % page != 0 {
    return Err(Failure::OutOfRange(format!(
      "The value of \"offset\" is out of range. It must be a multiple of the page size ({page}). Received {offset}"
    )));
  }
  let size = object_size(fd)?;
  let end = offset + length.get() as u64;
  if end > size {
    return Err(Failure::OutOfRange(format!(
      "offset + length ({end}) is beyond the end of the object ({size} bytes); ftruncate it first"
    )));
  }
  let mapping = Mapping::map_shared(borrow(fd), length, protections, offset as i64)?;
  hand_out(env, mapping)
}

#[napi(ts_return_type = "ArrayBuffer")]
pub fn mmap_shared<'env>(
  env: &'env Env,
  length: f64,
  protections: f64,
  fd: f64,
  offset: f64,
) -> napi::Result<Unknown<'env>> {
  let value = report(env, map(env, length, protections, fd, offset))?;
  // SAFETY: `value` was just created in this environment by Node-API.
  Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}

type IsKind = unsafe fn(sys::napi_env, sys::napi_value, *mut bool) -> sys::napi_status;

/// Asks Node-API whether `value` is of one kind (`napi_is_arraybuffer`, ...).
fn is_kind(
  env: sys::napi_env,
  value: sys::napi_value,
  test: IsKind,
  call: &'static str,
) -> Outcome<bool> {
  let mut answer = false;
  // SAFETY: `test` is one of Node-API's napi_is_* functions, which read the
  // handle `value` (valid for this call) and write only `answer`, a live local.
  check(unsafe { test(env, value, &mut answer) }, call)?;
  Ok(answer)
}

/// The ArrayBuffer behind `value`, which may be an ArrayBuffer, a typed
/// array or a DataView.
fn array_buffer_of(env: &Env, value: sys::napi_value) -> Outcome<sys::napi_value> {
  let env = env.raw();
  if is_kind(env, value, sys::napi_is_arraybuffer, "napi_is_arraybuffer")? {
    return Ok(value);
  }
  let mut array_buffer = ptr::null_mut();
  if is_kind(env, value, sys::napi_is_typedarray, "napi_is_typedarray")? {
    // SAFETY: `value` is a typed array handle valid for this call; the one
    // out-pointer we pass points at a live local, the others are null,
    // which Node-API allows for fields the caller skips.
    let status = unsafe {
      sys::napi_get_typedarray_info(
        env,
        value,
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        &mut array_buffer,
        ptr::null_mut(),
      )
    };
    check(status, "napi_get_typedarray_info")?;
    return Ok(array_buffer);
  }
  if is_kind(env, value, sys::napi_is_dataview, "napi_is_dataview")? {
    // SAFETY: as for the typed array above, for a DataView handle.
    let status = unsafe {
      sys::napi_get_dataview_info(
        env,
        value,
        ptr::null_mut(),
        ptr::null_mut(),
        &mut array_buffer,
        ptr::null_mut(),
      )
    };
    check(status, "napi_get_dataview_info")?;
    return Ok(array_buffer);
  }
  Err(Failure::InvalidValue(
    "The argument 'mapped' must be an ArrayBuffer returned by mmap() or a view on one".into(),
  ))
}

/// Detaches the ArrayBuffer behind `value` and unmaps its range, or, if it
/// is not a live mapping of ours, throws and touches nothing.
fn unmap(env: &Env, value: sys::napi_value) -> Outcome<()> {
  let array_buffer = array_buffer_of(env, value)?;
  let mut data = ptr::null_mut();
  let mut length = 0usize;
  // SAFETY: `array_buffer` is an ArrayBuffer handle valid for this call;
  // the out-pointers point at live locals.
  let status =
    unsafe { sys::napi_get_arraybuffer_info(env.raw(), array_buffer, &mut data, &mut length) };
  check(status, "napi_get_arraybuffer_info")?;
  let address = data as usize;
  if data.is_null() || !registry::holds(address, length) {
    return Err(Failure::InvalidValue(
      "The argument 'mapped' is not a live mapping made by mmap(): it was never mapped by posix-shm or is already unmapped"
        .into(),
    ));
  }
  // Detach first: once this succeeds no JavaScript value reaches the range.
  // SAFETY: `array_buffer` is a valid ArrayBuffer handle for this call.
  let status = unsafe { sys::napi_detach_arraybuffer(env.raw(), array_buffer) };
  check(status, "napi_detach_arraybuffer")?;
  drop(registry::take(address));
  Ok(())
}

#[napi(ts_args_type = "mapped: ArrayBuffer | ArrayBufferView")]
pub fn munmap_shared(env: &Env, mapped: Unknown<'_>) -> napi::Result<()> {
  report(env, unmap(env, mapped.raw()))
}

/// How many mappings JavaScript holds now (for tests and diagnostics).
#[napi]
pub fn live_mapping_count() -> u32 {
  registry::count() as u32
}
