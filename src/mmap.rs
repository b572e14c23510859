//! `mmap` and `munmap` as JavaScript calls them: argument checks, the size
//! check that keeps a mapping inside its object, and finding the
//! ArrayBuffer behind a view. What happens to the ArrayBuffer itself is in
//! [`crate::external`].

use std::num::NonZeroUsize;
use std::ptr;

use napi::{sys, Env};
use napi_derive::napi;
use nix::sys::mman::ProtFlags;

use crate::args;
use crate::constants::{page_size, protections_allowed};
use crate::errors::{Failure, Outcome};
use crate::external::{self, check};
use crate::fast_calls;
use crate::fd::{object_size, with_fd};
use crate::mapping::Mapping;
use crate::registry;

/// Whether `mmap` can hand out zero-copy ArrayBuffers in this process.
#[napi]
pub fn external_buffers_allowed() -> bool {
  external::allowed()
}

/// Checks the arguments and maps `length` bytes of `fd` from `offset`,
/// refusing a range past the object's current end (which would raise
/// SIGBUS on touch). Shared by `mmap` and copy-mode regions.
pub fn checked_mapping(
  length: f64,
  protections: f64,
  fd: f64,
  offset: f64,
  zero_copy: bool,
) -> Outcome<Mapping> {
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
  // Refused before mapping, not after: nothing to undo.
  if zero_copy && !external::allowed() {
    return Err(Failure::NoExternalBuffers);
  }
  with_fd(fd, |fd| {
    Mapping::map_shared(fd, length, protections, offset as i64)
  })
}

fn map(env: &Env, length: f64, protections: f64, fd: f64, offset: f64) -> Outcome<sys::napi_value> {
  external::hand_out(env, checked_mapping(length, protections, fd, offset, true)?)
}

/// `mmapShared(length, protections, fd, offset)`: maps the range and
/// returns one ArrayBuffer over it. A plain callback: see `fast_calls`.
pub unsafe extern "C" fn mmap_shared(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[length, protections, fd, offset]| {
    map(
      &Env::from_raw(env),
      fast_calls::number(env, length, "length")?,
      fast_calls::number(env, protections, "protections")?,
      fast_calls::number(env, fd, "fd")?,
      fast_calls::number(env, offset, "offset")?,
    )
  })
}

pub type IsKind = unsafe fn(sys::napi_env, sys::napi_value, *mut bool) -> sys::napi_status;

/// Asks Node-API whether `value` is of one kind (`napi_is_arraybuffer`, ...).
pub fn is_kind(
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
  } else if is_kind(env, value, sys::napi_is_dataview, "napi_is_dataview")? {
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
  }
  // A view may be over a SharedArrayBuffer, which is never ours.
  if !array_buffer.is_null()
    && is_kind(
      env,
      array_buffer,
      sys::napi_is_arraybuffer,
      "napi_is_arraybuffer",
    )?
  {
    return Ok(array_buffer);
  }
  Err(Failure::InvalidValue(
    "The argument 'mapped' must be an ArrayBuffer returned by mmap() or a view on one".into(),
  ))
}

/// `munmapShared(mapped)`: unmaps what `mmapShared` returned, given the
/// ArrayBuffer or a view on it. A plain callback: see `fast_calls`.
pub unsafe extern "C" fn munmap_shared(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[mapped]| {
    let env = Env::from_raw(env);
    external::unmap(&env, array_buffer_of(&env, mapped)?)
  })
}

/// How many mappings JavaScript holds now (for tests and diagnostics).
#[napi]
pub fn live_mapping_count() -> u32 {
  registry::count() as u32
}

/// Keeps the ranges of this environment's mappings whose ArrayBuffers were
/// moved elsewhere (see `external::pin_moved`); the facade calls it on exit.
#[napi]
pub fn pin_moved_mappings(env: Env) {
  external::pin_moved(env.raw());
}

/// How many address ranges posix-shm holds now, mappings and the
/// placeholders of closed mappings that Node may still reach alike: what
/// counts against the mapping budget (for tests and diagnostics).
#[napi]
pub fn reserved_range_count() -> u32 {
  crate::mapping::reserved() as u32
}
