//! `MappedRegion`: a mapping reached by copying instead of through an
//! ArrayBuffer, for runtimes that refuse external ArrayBuffers (Electron 21
//! and later). The facade's `SharedMemory` uses it in that mode; its
//! methods copy bytes in and out, do Int32 atomics, and wait and notify.
//! The mapping comes from the same checked `mmap` as the zero-copy path.

use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{ObjectFinalize, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use nix::sys::mman::ProtFlags;

use crate::core::args;
use crate::core::failure::{Failure, Outcome};
use crate::core::mapping::{self, Mapping};
use crate::core::word::{self, Word};
use crate::node::buffers::account;
use crate::node::convert::{check, is_kind};
use crate::node::throw::report;
use crate::node::wait::{env_alive, wait_async_on, Settle, Started};

#[napi(custom_finalize)]
pub struct MappedRegion {
  mapping: Option<Arc<Mapping>>,
}

impl ObjectFinalize for MappedRegion {
  fn finalize(self, env: Env) -> napi::Result<()> {
    if let Some(mapping) = &self.mapping {
      account(env.raw(), -(mapping.length() as i64));
    }
    Ok(())
  }
}

fn closed() -> Failure {
  Failure::InvalidValue("The region is closed".into())
}

/// The bytes of a Uint8Array as a raw range (no Rust reference is made to
/// memory that other processes may be writing).
fn bytes_of(env: &Env, value: sys::napi_value, argument: &str) -> Outcome<(*mut u8, usize)> {
  let refused = || Failure::InvalidValue(format!("The argument '{argument}' must be a Uint8Array"));
  if !is_kind(
    env.raw(),
    value,
    sys::napi_is_typedarray,
    "napi_is_typedarray",
  )? {
    return Err(refused());
  }
  let mut kind = 0;
  let mut length = 0usize;
  let mut data = ptr::null_mut();
  // SAFETY: `value` is a typed array handle valid for this call; the
  // out-pointers are live locals, null for the fields we skip.
  let status = unsafe {
    sys::napi_get_typedarray_info(
      env.raw(),
      value,
      &mut kind,
      &mut length,
      &mut data,
      ptr::null_mut(),
      ptr::null_mut(),
    )
  };
  check(status, "napi_get_typedarray_info")?;
  if kind != sys::TypedarrayType::uint8_array {
    return Err(refused());
  }
  // An empty typed array may have no memory at all (a null pointer), which
  // `ptr::copy` must not see; there is nothing to copy anyway.
  Ok((
    if length == 0 {
      ptr::null_mut()
    } else {
      data.cast::<u8>()
    },
    length,
  ))
}

/// A new Uint8Array of `length` bytes, from JavaScript's own constructor,
/// and its memory. Not from Node-API's `napi_create_buffer*` or
/// `napi_create_arraybuffer` (which napi-rs's buffers use): when the memory
/// cannot be had, they end the process, where the constructor throws a
/// RangeError, which becomes ours. The length comes from the caller, so
/// failing must be an error, never an abort.
fn new_bytes(env: &Env, length: usize) -> Outcome<(sys::napi_value, *mut u8)> {
  let env = env.raw();
  let mut global = ptr::null_mut();
  // SAFETY: `env` is this call's environment; the out-pointer is a live local.
  let status = unsafe { sys::napi_get_global(env, &mut global) };
  check(status, "napi_get_global")?;
  let mut constructor = ptr::null_mut();
  // SAFETY: `global` is a valid object handle for this call; the name is
  // a NUL-terminated literal; the out-pointer is a live local.
  let status =
    unsafe { sys::napi_get_named_property(env, global, c"Uint8Array".as_ptr(), &mut constructor) };
  check(status, "napi_get_named_property")?;
  let mut argument = ptr::null_mut();
  // SAFETY: a number is made from a plain f64 in this call's environment;
  // the out-pointer is a live local.
  let status = unsafe { sys::napi_create_double(env, length as f64, &mut argument) };
  check(status, "napi_create_double")?;
  let mut bytes = ptr::null_mut();
  // SAFETY: `constructor` and `argument` are handles valid for this call;
  // `argv` points at one handle, as `argc` says; the out-pointer is a live
  // local.
  let status = unsafe { sys::napi_new_instance(env, constructor, 1, &argument, &mut bytes) };
  if status == sys::Status::napi_pending_exception {
    let mut exception = ptr::null_mut();
    // SAFETY: clears the pending RangeError so ours can be thrown in its
    // place; the out-pointer is a live local.
    unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
    return Err(Failure::Allocation(length));
  }
  check(status, "napi_new_instance")?;
  let mut kind = 0;
  let mut count = 0usize;
  let mut data = ptr::null_mut();
  // SAFETY: `bytes` is a handle valid for this call; the out-pointers are
  // live locals, null for the fields we skip.
  let status = unsafe {
    sys::napi_get_typedarray_info(
      env,
      bytes,
      &mut kind,
      &mut count,
      &mut data,
      ptr::null_mut(),
      ptr::null_mut(),
    )
  };
  check(status, "napi_get_typedarray_info")?;
  // A global Uint8Array replaced by a script could make anything at all.
  if kind != sys::TypedarrayType::uint8_array || count != length || (length > 0 && data.is_null()) {
    return Err(Failure::InvalidValue(
      "globalThis.Uint8Array did not make a Uint8Array of the length asked".into(),
    ));
  }
  Ok((bytes, data.cast::<u8>()))
}

impl MappedRegion {
  fn mapping(&self) -> Outcome<&Arc<Mapping>> {
    self.mapping.as_ref().ok_or_else(closed)
  }

  /// The address of `offset .. offset + length`, if it lies inside the
  /// mapping and the mapping allows `needed`.
  fn range(&self, offset: f64, length: usize, needed: ProtFlags) -> Outcome<*mut u8> {
    let mapping = self.mapping()?;
    let offset = args::byte_count(offset, "byteOffset")? as usize;
    let fits = offset
      .checked_add(length)
      .is_some_and(|end| end <= mapping.length());
    if !fits {
      return Err(Failure::OutOfRange(format!(
        "The value of \"byteOffset\" is out of range. {length} bytes from {offset} do not fit in the mapping ({} bytes)",
        mapping.length()
      )));
    }
    if !mapping.protections().contains(needed) {
      return Err(Failure::InvalidValue(format!(
        "The mapping does not allow {needed:?}"
      )));
    }
    // SAFETY: `offset + length <= mapping.length()`, so the pointer stays
    // inside (or one past the end of) the mapping.
    Ok(unsafe { mapping.address().as_ptr().cast::<u8>().add(offset) })
  }

  fn word(&self, offset: f64, needed: ProtFlags) -> Outcome<Word> {
    let offset = args::byte_count(offset, "byteOffset")? as usize;
    let mapping = self.mapping()?;
    // Past a cut the page may be a private stand-in: a wait there would
    // watch a word no peer writes, a notify wake no one.
    mapping.refuse_if_cut()?;
    Word::new(Arc::clone(mapping), offset, needed)
  }

  /// Runs `operation` on the word at `offset`, guarded: a word whose page
  /// a peer cut away is `Shrunk`, not a SIGBUS.
  fn atomic<T>(
    &self,
    offset: f64,
    needed: ProtFlags,
    operation: impl FnOnce(&AtomicU32) -> T,
  ) -> Outcome<T> {
    let word = self.word(offset, needed)?;
    let atomic = word.atomic();
    self
      .mapping()?
      .guarded(atomic.as_ptr() as *const u8, 4, || operation(atomic))
  }
}

/// Which way `copy_view` copies.
enum Direction {
  OutOfMapping,
  IntoMapping,
}

impl MappedRegion {
  /// Copies all of `view` out of or into the mapping at `byte_offset`;
  /// returns the byte count.
  fn copy_view(
    &self,
    env: &Env,
    view: Unknown<'_>,
    byte_offset: f64,
    direction: Direction,
  ) -> Outcome<u32> {
    let (what, needed) = match direction {
      Direction::OutOfMapping => ("target", ProtFlags::PROT_READ),
      Direction::IntoMapping => ("source", ProtFlags::PROT_WRITE),
    };
    let (bytes, length) = bytes_of(env, view.raw(), what)?;
    let mapped = self.range(byte_offset, length, needed)?;
    if length == 0 {
      return Ok(0);
    }
    let (from, to) = match direction {
      Direction::OutOfMapping => (mapped as *const u8, bytes),
      Direction::IntoMapping => (bytes as *const u8, mapped),
    };
    // A page of the mapping's side that a peer cut away is `Shrunk` (see
    // `Mapping::guarded`).
    self.mapping()?.guarded(mapped, length, || {
      // SAFETY: both ranges are `length` bytes of live memory: the view is
      // a typed array JavaScript cannot touch during this call, and `range`
      // checked the mapping's side, including that it allows this
      // direction. They may overlap if the view is over this same mapping,
      // which `ptr::copy` allows.
      unsafe { ptr::copy(from, to, length) }
    })?;
    Ok(length as u32)
  }
}

#[napi]
impl MappedRegion {
  /// Maps like `mmap`, with the same checks, for copy-mode access.
  #[napi(factory)]
  pub fn map(
    env: Env,
    length: f64,
    protections: f64,
    fd: f64,
    offset: f64,
  ) -> napi::Result<MappedRegion> {
    let mapping = report(
      &env,
      mapping::map_checked(length, protections, fd, offset, || Ok(())),
    )?;
    // No ArrayBuffer here for V8 to count: say it ourselves, as `close` and
    // the finalizer take it back.
    account(env.raw(), mapping.length() as i64);
    Ok(MappedRegion {
      mapping: Some(Arc::new(mapping)),
    })
  }

  /// A copy of `length` bytes from `byteOffset`, in a new Uint8Array. If
  /// its memory cannot be had: a RangeError coded ERR_MEMORY_ALLOCATION_FAILED.
  #[napi(ts_return_type = "Uint8Array")]
  pub fn read<'env>(
    &self,
    env: &'env Env,
    byte_offset: f64,
    length: f64,
  ) -> napi::Result<Unknown<'env>> {
    let outcome = args::byte_count(length, "length").and_then(|length| {
      let length = usize::try_from(length).map_err(|_| Failure::Allocation(usize::MAX))?;
      let from = self.range(byte_offset, length, ProtFlags::PROT_READ)?;
      let (copy, to) = new_bytes(env, length)?;
      if length > 0 {
        // A page a peer cut away is `Shrunk` (see `Mapping::guarded`).
        self.mapping()?.guarded(from, length, || {
          // SAFETY: `from .. from + length` is inside the readable
          // mapping; `to` is the memory of a fresh Uint8Array of that
          // length, which no JavaScript runs to touch during this call.
          // Other processes may write the source meanwhile: the copy may
          // then mix old and new bytes, as any unsynchronized read of
          // shared memory may; no Rust reference to the shared bytes is
          // ever made.
          unsafe { ptr::copy_nonoverlapping(from, to, length) }
        })?;
      }
      Ok(copy)
    });
    let copy = report(env, outcome)?;
    // SAFETY: `copy` is a handle made in this environment during this call.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), copy) })
  }

  /// Copies from `byteOffset` into all of `target`; returns the byte count.
  #[napi(ts_args_type = "target: Uint8Array, byteOffset: number")]
  pub fn read_into(&self, env: &Env, target: Unknown<'_>, byte_offset: f64) -> napi::Result<u32> {
    report(
      env,
      self.copy_view(env, target, byte_offset, Direction::OutOfMapping),
    )
  }

  /// Copies all of `source` to `byteOffset`; returns the byte count.
  #[napi(ts_args_type = "source: Uint8Array, byteOffset: number")]
  pub fn write(&self, env: &Env, source: Unknown<'_>, byte_offset: f64) -> napi::Result<u32> {
    report(
      env,
      self.copy_view(env, source, byte_offset, Direction::IntoMapping),
    )
  }

  #[napi]
  pub fn atomic_load(&self, env: &Env, byte_offset: f64) -> napi::Result<i32> {
    // Acquire plus a SeqCst fence rather than a SeqCst load: the mapping
    // may be read-only, where only plain atomic loads are allowed.
    let value = report(
      env,
      self.atomic(byte_offset, ProtFlags::PROT_READ, |word| {
        word.load(Ordering::Acquire)
      }),
    )?;
    std::sync::atomic::fence(Ordering::SeqCst);
    Ok(value as i32)
  }

  #[napi]
  pub fn atomic_store(&self, env: &Env, byte_offset: f64, value: i32) -> napi::Result<i32> {
    let needed = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    report(
      env,
      self.atomic(byte_offset, needed, |word| {
        word.store(value as u32, Ordering::SeqCst)
      }),
    )?;
    Ok(value)
  }

  /// Adds `delta` (wrapping, as Atomics.add); returns the old value.
  #[napi]
  pub fn atomic_add(&self, env: &Env, byte_offset: f64, delta: i32) -> napi::Result<i32> {
    let needed = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    let old = report(
      env,
      self.atomic(byte_offset, needed, |word| {
        word.fetch_add(delta as u32, Ordering::SeqCst)
      }),
    )?;
    Ok(old as i32)
  }

  /// Stores `replacement` if the word holds `expected`; returns the old value.
  #[napi]
  pub fn atomic_compare_exchange(
    &self,
    env: &Env,
    byte_offset: f64,
    expected: i32,
    replacement: i32,
  ) -> napi::Result<i32> {
    let needed = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    let old = report(
      env,
      self.atomic(byte_offset, needed, |word| {
        word
          .compare_exchange(
            expected as u32,
            replacement as u32,
            Ordering::SeqCst,
            Ordering::SeqCst,
          )
          .unwrap_or_else(|old| old)
      }),
    )?;
    Ok(old as i32)
  }

  #[napi]
  pub fn wait(
    &self,
    env: &Env,
    byte_offset: f64,
    value: i32,
    timeout_ms: f64,
  ) -> napi::Result<u32> {
    let word = report(env, self.word(byte_offset, ProtFlags::PROT_READ))?;
    let raw = env.raw();
    report(
      env,
      word::wait_on(&word, value, timeout_ms, &mut || env_alive(raw)),
    )
  }

  #[napi(
    ts_args_type = "byteOffset: number, value: number, timeoutMs: number, settle: (result: number | Error) => void",
    ts_return_type = "number | PendingWait"
  )]
  pub fn wait_async(
    &self,
    env: &Env,
    byte_offset: f64,
    value: i32,
    timeout_ms: f64,
    settle: Settle,
  ) -> napi::Result<Started> {
    let word = report(env, self.word(byte_offset, ProtFlags::PROT_READ))?;
    report(
      env,
      wait_async_on(env, word, value, timeout_ms, settle, true),
    )
  }

  #[napi]
  pub fn notify(&self, env: &Env, byte_offset: f64, count: f64) -> napi::Result<u32> {
    let word = report(env, self.word(byte_offset, ProtFlags::PROT_READ))?;
    Ok(word::notify_on(&word, count))
  }

  /// Unmaps (once no pending wait holds the mapping); later calls do nothing.
  #[napi]
  pub fn close(&mut self, env: Env) {
    if let Some(mapping) = self.mapping.take() {
      account(env.raw(), -(mapping.length() as i64));
    }
  }
}
