//! Reading a plain callback's arguments and making its return value, with
//! the same Node-API calls napi-rs would make but none of its per-call
//! bookkeeping (see `entries`). Each argument type says what TypeScript
//! type it is, so the typings are made from the same declarations.

use std::ffi::{c_void, CStr};
use std::os::fd::RawFd;
use std::ptr;

use napi::sys;
use nix::errno::Errno;

use crate::core::args;
use crate::core::failure::{Failure, Outcome};
use crate::core::word::{self, Word};

/// A Node-API status as an outcome: anything but ok is a `NodeApi` failure.
pub fn check(status: sys::napi_status, call: &'static str) -> Outcome<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(Failure::NodeApi { status, call })
  }
}

/// The arguments of a call, `N` of them; missing ones are `undefined`.
pub fn arguments<const N: usize>(
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

/// One argument of an entry: how it is read, and its TypeScript type.
pub trait Arg: Sized {
  const TS: &'static str;
  /// May be left out (TypeScript `name?: type`).
  const OPTIONAL: bool = false;
  /// Reads the argument `name` from `value` (undefined if left out).
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self>;
}

/// Node-API's reader of one kind of number (`napi_get_value_double`, ...).
type NumberReader<T> = unsafe fn(sys::napi_env, sys::napi_value, *mut T) -> sys::napi_status;

/// A JavaScript number read by `reader`. Anything else is refused with a
/// TypeError coded ERR_INVALID_ARG_VALUE, like our other argument errors;
/// only direct calls to the binding see it, as the facade checks first.
fn number_as<T: Default>(
  env: sys::napi_env,
  value: sys::napi_value,
  reader: NumberReader<T>,
  name: &str,
) -> Outcome<T> {
  let mut number = T::default();
  // SAFETY: `reader` is one of Node-API's napi_get_value_* functions, which
  // read the handle `value` (valid for this call) and write only `number`,
  // a live local of the type it expects.
  let status = unsafe { reader(env, value, &mut number) };
  match status {
    sys::Status::napi_ok => Ok(number),
    sys::Status::napi_number_expected => Err(Failure::InvalidValue(format!(
      "The argument '{name}' must be a number"
    ))),
    status => check(status, "napi_get_value_*").map(|()| number),
  }
}

/// Any number, as `f64`, so that NaN, infinities, fractions and values
/// past 2^53 reach the checks in `core::args` rather than being converted.
impl Arg for f64 {
  const TS: &'static str = "number";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<f64> {
    number_as(env, value, sys::napi_get_value_double, name)
  }
}

/// A number as `Atomics` reads a value: converted to a 32-bit integer.
impl Arg for i32 {
  const TS: &'static str = "number";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<i32> {
    number_as(env, value, sys::napi_get_value_int32, name)
  }
}

fn kind_of(env: sys::napi_env, value: sys::napi_value) -> Outcome<sys::napi_valuetype> {
  let mut kind = sys::ValueType::napi_undefined;
  // SAFETY: `value` is a handle valid for this call; `kind` a live local.
  let status = unsafe { sys::napi_typeof(env, value, &mut kind) };
  check(status, "napi_typeof")?;
  Ok(kind)
}

/// A boolean that may be left out (undefined or null).
impl Arg for Option<bool> {
  const TS: &'static str = "boolean";
  const OPTIONAL: bool = true;
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    let kind = kind_of(env, value)?;
    if kind == sys::ValueType::napi_undefined || kind == sys::ValueType::napi_null {
      return Ok(None);
    }
    let mut answer = false;
    // SAFETY: `value` is a handle valid for this call; `answer` a live local.
    let status = unsafe { sys::napi_get_value_bool(env, value, &mut answer) };
    if status == sys::Status::napi_boolean_expected {
      return Err(Failure::InvalidValue(format!(
        "The argument '{name}' must be a boolean"
      )));
    }
    check(status, "napi_get_value_bool")?;
    Ok(Some(answer))
  }
}

/// A descriptor number, checked as `core::args::fd` checks it.
pub struct Fd(pub RawFd);

impl Arg for Fd {
  const TS: &'static str = "number";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Fd> {
    args::fd(f64::read(env, value, name)?).map(Fd)
  }
}

/// A length for ftruncate: a number up to 2^53 - 1, or a bigint up to
/// 2^63 - 1 (a number needs no BigInt made for it).
pub struct FileLength(pub i64);

impl Arg for FileLength {
  const TS: &'static str = "number | bigint";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    let kind = kind_of(env, value)?;
    if kind == sys::ValueType::napi_number {
      let length = args::byte_count(f64::read(env, value, name)?, name)?;
      return Ok(FileLength(length as i64));
    }
    if kind != sys::ValueType::napi_bigint {
      return Err(Failure::InvalidValue(format!(
        "The argument '{name}' must be a number or a bigint"
      )));
    }
    let mut length = 0i64;
    let mut lossless = false;
    // SAFETY: `value` is a bigint handle valid for this call; both
    // out-pointers point at live locals.
    let status =
      unsafe { sys::napi_get_value_bigint_int64(env, value, &mut length, &mut lossless) };
    check(status, "napi_get_value_bigint_int64")?;
    if !lossless || length < 0 {
      return Err(Failure::OutOfRange(format!(
        "The value of \"{name}\" is out of range. It must be >= 0 and <= {}",
        i64::MAX
      )));
    }
    Ok(FileLength(length))
  }
}

/// Room on the stack for a name's UTF-8 and its NUL. Shared memory names
/// are at most 255 bytes on Linux and 31 on macOS, so every name that can
/// work is read without a heap allocation; a longer one is read to the
/// heap only to be named in its ENAMETOOLONG error.
const LONGEST_NAME: usize = 511;

/// A name, as UTF-8 (a lone surrogate becomes U+FFFD, as napi-rs reads
/// it; the facade refuses those first).
pub struct Name {
  bytes: [u8; LONGEST_NAME + 1],
  length: usize,
  /// The whole name, if it is longer than `LONGEST_NAME` bytes (empty if
  /// even that could not be had).
  too_long: Option<String>,
}

impl Name {
  /// The name, or ENAMETOOLONG from `syscall` (as the system would answer)
  /// about it if it was too long to read.
  pub fn text(&self, syscall: &'static str) -> Outcome<&str> {
    if let Some(name) = &self.too_long {
      let failure = Failure::Sys {
        errno: Errno::ENAMETOOLONG,
        syscall,
      };
      return Err(if name.is_empty() {
        failure
      } else {
        failure.at(name)
      });
    }
    // Node-API writes UTF-8, so this cannot fail; it is checked rather
    // than assumed so that nothing here can panic or read past what was
    // written.
    std::str::from_utf8(&self.bytes[..self.length])
      .map_err(|_| Failure::InvalidValue("The argument 'name' could not be read as UTF-8".into()))
  }
}

/// Reads the string `value` of `length` UTF-8 bytes into `buffer`, which
/// has room for them and a NUL; returns how many bytes were written.
fn read_string(
  env: sys::napi_env,
  value: sys::napi_value,
  buffer: &mut [u8],
  length: usize,
) -> Outcome<usize> {
  debug_assert!(buffer.len() > length);
  let mut written = 0usize;
  // SAFETY: `buffer` is live and writable for `buffer.len()` bytes, and
  // Node-API writes at most that many (the string's bytes and a NUL) and
  // the count to a live local. The string cannot change since its length
  // was asked (strings are immutable and no JavaScript runs in between).
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
  Ok(written.min(length))
}

impl Arg for Name {
  const TS: &'static str = "string";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Name> {
    let mut length = 0usize;
    // SAFETY: a null buffer asks only for the length, written to a live local.
    let status =
      unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut length) };
    if status == sys::Status::napi_string_expected {
      return Err(Failure::InvalidValue(format!(
        "The argument '{name}' must be a string"
      )));
    }
    check(status, "napi_get_value_string_utf8")?;
    let mut read = Name {
      bytes: [0u8; LONGEST_NAME + 1],
      length: 0,
      too_long: None,
    };
    if length > LONGEST_NAME {
      // Asked for fallibly: a name of any length must end in its error,
      // never in an aborted allocation.
      let mut heap = Vec::new();
      if heap.try_reserve_exact(length + 1).is_err() {
        // Too long even to name in the error: it goes without its path.
        read.too_long = Some(String::new());
        return Ok(read);
      }
      heap.resize(length + 1, 0);
      let written = read_string(env, value, &mut heap, length)?;
      heap.truncate(written);
      // Node-API writes UTF-8: the bytes become the String as they are.
      read.too_long = Some(String::from_utf8(heap).map_err(|_| {
        Failure::InvalidValue(format!("The argument '{name}' could not be read as UTF-8"))
      })?);
      return Ok(read);
    }
    read.length = read_string(env, value, &mut read.bytes, length)?;
    Ok(read)
  }
}

/// The name of the object a call concerns, for its errors' `path`: a
/// string, or left out.
pub struct Path(pub Option<String>);

impl Path {
  /// `failure`, with this path if there is one.
  pub fn on(&self, failure: Failure) -> Failure {
    match &self.0 {
      Some(path) => failure.at(path),
      None => failure,
    }
  }
}

impl Arg for Path {
  const TS: &'static str = "string";
  const OPTIONAL: bool = true;
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Path> {
    let kind = kind_of(env, value)?;
    if kind == sys::ValueType::napi_undefined {
      return Ok(Path(None));
    }
    let read = Name::read(env, value, name)?;
    Ok(Path(match read.too_long {
      Some(path) => (!path.is_empty()).then_some(path),
      None => Some(read.text("")?.to_owned()),
    }))
  }
}

/// Asks Node-API whether `value` is of one kind (`napi_is_arraybuffer`, ...).
pub fn is_kind(
  env: sys::napi_env,
  value: sys::napi_value,
  test: unsafe fn(sys::napi_env, sys::napi_value, *mut bool) -> sys::napi_status,
  call: &'static str,
) -> Outcome<bool> {
  let mut answer = false;
  // SAFETY: `test` is one of Node-API's napi_is_* functions, which read the
  // handle `value` (valid for this call) and write only `answer`, a live local.
  check(unsafe { test(env, value, &mut answer) }, call)?;
  Ok(answer)
}

/// The memory of an ArrayBuffer, or of an Int32Array view (the way to
/// name a SharedArrayBuffer's memory, which Node-API reads only through a
/// view): address 0 for anything else, and for a detached buffer. Whether
/// it is ours is for the registry to say.
pub struct BufferMemory {
  pub address: usize,
  pub length: usize,
}

impl Arg for BufferMemory {
  const TS: &'static str = "ArrayBuffer | Int32Array";
  fn read(env: sys::napi_env, value: sys::napi_value, _name: &'static str) -> Outcome<Self> {
    let mut data = ptr::null_mut();
    let mut length = 0usize;
    if is_kind(env, value, sys::napi_is_arraybuffer, "napi_is_arraybuffer")? {
      // SAFETY: `value` is an ArrayBuffer handle valid for this call; the
      // out-pointers are live locals.
      let status = unsafe { sys::napi_get_arraybuffer_info(env, value, &mut data, &mut length) };
      check(status, "napi_get_arraybuffer_info")?;
    } else if is_kind(env, value, sys::napi_is_typedarray, "napi_is_typedarray")? {
      let (kind, elements, first) = typed_array(env, value)?;
      data = first;
      if kind != sys::TypedarrayType::int32_array {
        data = ptr::null_mut();
      }
      length = elements.saturating_mul(4);
    }
    Ok(BufferMemory {
      address: data as usize,
      length,
    })
  }
}

impl BufferMemory {
  /// The word `byte_offset` bytes into this memory, which must lie in a
  /// live mapping of ours.
  pub fn word(&self, byte_offset: f64) -> Outcome<Word> {
    let byte_offset = args::byte_count(byte_offset, "byteOffset")? as usize;
    word::in_live_mapping(self.address, self.length, byte_offset)
  }
}

/// The ArrayBuffer behind an ArrayBuffer, a typed array or a DataView.
pub struct ArrayBufferOf(pub sys::napi_value);

impl Arg for ArrayBufferOf {
  const TS: &'static str = "ArrayBuffer | ArrayBufferView";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    if is_kind(env, value, sys::napi_is_arraybuffer, "napi_is_arraybuffer")? {
      return Ok(ArrayBufferOf(value));
    }
    let mut array_buffer = ptr::null_mut();
    if is_kind(env, value, sys::napi_is_typedarray, "napi_is_typedarray")? {
      // SAFETY: `value` is a typed array handle valid for this call; the
      // one out-pointer we pass points at a live local, the others are
      // null, which Node-API allows for fields the caller skips.
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
      return Ok(ArrayBufferOf(array_buffer));
    }
    Err(Failure::InvalidValue(format!(
      "The argument '{name}' must be an ArrayBuffer returned by mmap() or a view on one"
    )))
  }
}

/// The data of a Node-API external (a handle `fdOwnerAdopt` made).
pub struct ExternalData(pub usize);

impl Arg for ExternalData {
  const TS: &'static str = "object";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    let mut data = ptr::null_mut();
    // SAFETY: `value` is a handle valid for this call; `data` a live local.
    // For anything but an external Node-API answers napi_invalid_arg.
    let status = unsafe { sys::napi_get_value_external(env, value, &mut data) };
    if status == sys::Status::napi_invalid_arg {
      return Err(Failure::InvalidValue(format!(
        "The argument '{name}' must be a handle returned by fdOwnerAdopt()"
      )));
    }
    check(status, "napi_get_value_external")?;
    Ok(ExternalData(data as usize))
  }
}

/// What an entry returns to JavaScript, and its TypeScript type.
pub trait Returned {
  const TS: &'static str;
  fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value>;
}

impl Returned for () {
  const TS: &'static str = "void";
  fn into_js(self, _env: sys::napi_env) -> Outcome<sys::napi_value> {
    // A callback that returns a null handle returns undefined.
    Ok(ptr::null_mut())
  }
}

/// Node-API's maker of one kind of value (`napi_create_int32`, ...).
type Maker<T> = unsafe fn(sys::napi_env, T, *mut sys::napi_value) -> sys::napi_status;

pub fn make<T>(env: sys::napi_env, value: T, maker: Maker<T>) -> Outcome<sys::napi_value> {
  let mut result = ptr::null_mut();
  // SAFETY: `maker` is one of Node-API's napi_create_* / napi_get_boolean
  // functions, which write one handle to `result`, a live local.
  let status = unsafe { maker(env, value, &mut result) };
  check(status, "napi_create_*")?;
  Ok(result)
}

/// A value Node-API makes in one call (`napi_create_int32`, ...).
macro_rules! returned_by_maker {
  ($($type:ty => $ts:literal, $maker:path;)*) => {$(
    impl Returned for $type {
      const TS: &'static str = $ts;
      fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value> {
        make(env, self, $maker)
      }
    }
  )*};
}

returned_by_maker! {
  bool => "boolean", sys::napi_get_boolean;
  i32 => "number", sys::napi_create_int32;
  u32 => "number", sys::napi_create_uint32;
  f64 => "number", sys::napi_create_double;
}

/// A typed array's kind, element count and first byte (its buffer's
/// memory plus its offset), for the length of the call.
pub fn typed_array(
  env: sys::napi_env,
  value: sys::napi_value,
) -> Outcome<(sys::napi_typedarray_type, usize, *mut c_void)> {
  let mut kind = sys::TypedarrayType::int8_array;
  let mut elements = 0usize;
  let mut data = ptr::null_mut();
  // SAFETY: `value` is a typed array handle valid for this call; the
  // out-pointers we pass are live locals, the others null, which Node-API
  // allows for fields the caller skips.
  let status = unsafe {
    sys::napi_get_typedarray_info(
      env,
      value,
      &mut kind,
      &mut elements,
      &mut data,
      ptr::null_mut(),
      ptr::null_mut(),
    )
  };
  check(status, "napi_get_typedarray_info")?;
  Ok((kind, elements, data))
}

/// The bytes of an ArrayBuffer, SharedArrayBuffer or view JavaScript
/// passed, for the length of the call.
pub struct Bytes {
  pub address: *mut u8,
  pub length: usize,
}

impl Arg for Bytes {
  const TS: &'static str = "ArrayBufferView | ArrayBuffer";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    let mut data = ptr::null_mut();
    let mut length = 0usize;
    let mut is = false;
    // SAFETY: (every call in the block) `value` is a handle valid for this
    // call; the out-pointers are live locals or null where Node-API allows it.
    unsafe {
      sys::napi_is_typedarray(env, value, &mut is);
      if is {
        let (kind, elements, first) = typed_array(env, value)?;
        data = first;
        let Some(size) = element_size(kind) else {
          return Err(Failure::InvalidValue(format!(
            "The argument '{name}' is a typed array of a kind (Node-API type {kind}) whose element size is unknown here"
          )));
        };
        length = elements.saturating_mul(size);
      } else {
        sys::napi_is_dataview(env, value, &mut is);
        if is {
          let status = sys::napi_get_dataview_info(
            env,
            value,
            &mut length,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
          );
          check(status, "napi_get_dataview_info")?;
        } else {
          sys::napi_is_arraybuffer(env, value, &mut is);
          if !is {
            return Err(Failure::InvalidValue(format!(
              "The argument '{name}' must be an ArrayBuffer, a SharedArrayBuffer or a view of one"
            )));
          }
          let status = sys::napi_get_arraybuffer_info(env, value, &mut data, &mut length);
          check(status, "napi_get_arraybuffer_info")?;
        }
      }
    }
    if data.is_null() {
      length = 0;
    }
    Ok(Bytes {
      address: data.cast(),
      length,
    })
  }
}

/// `napi_float16_array`, which Node-API reports for a Float16Array where
/// the runtime has them; napi-sys does not name it yet.
const FLOAT16_ARRAY: sys::napi_typedarray_type = 11;

/// The bytes of one element of a typed array of `kind`; None for a kind
/// this build does not know, whose size must not be guessed: too large a
/// guess reads (or, receiving, writes) past the array.
fn element_size(kind: sys::napi_typedarray_type) -> Option<usize> {
  use sys::TypedarrayType as T;
  match kind {
    T::int8_array | T::uint8_array | T::uint8_clamped_array => Some(1),
    T::int16_array | T::uint16_array | FLOAT16_ARRAY => Some(2),
    T::int32_array | T::uint32_array | T::float32_array => Some(4),
    T::float64_array | T::bigint64_array | T::biguint64_array => Some(8),
    _ => None,
  }
}

/// An ArrayBuffer made by the entry.
pub struct NewArrayBuffer(pub sys::napi_value);

impl Returned for NewArrayBuffer {
  const TS: &'static str = "ArrayBuffer";
  fn into_js(self, _env: sys::napi_env) -> Outcome<sys::napi_value> {
    Ok(self.0)
  }
}

/// A SharedArrayBuffer made by the entry.
pub struct NewSharedArrayBuffer(pub sys::napi_value);

impl Returned for NewSharedArrayBuffer {
  const TS: &'static str = "SharedArrayBuffer";
  fn into_js(self, _env: sys::napi_env) -> Outcome<sys::napi_value> {
    Ok(self.0)
  }
}

/// An opaque handle (a Node-API external) made by the entry.
pub struct NewHandle(pub sys::napi_value);

impl Returned for NewHandle {
  const TS: &'static str = "object";
  fn into_js(self, _env: sys::napi_env) -> Outcome<sys::napi_value> {
    Ok(self.0)
  }
}

/// A plain object of numbers, returned as a TypeScript interface of its
/// own: its fields (name and value, in order) are the one source of both.
pub trait Record {
  /// The TypeScript interface's name.
  const INTERFACE: &'static str;
  fn fields(&self) -> Vec<(&'static CStr, f64)>;
}

impl<T: Record> Returned for T {
  const TS: &'static str = T::INTERFACE;
  fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value> {
    let mut object = ptr::null_mut();
    // SAFETY: `object` is a live local that Node-API sets.
    let status = unsafe { sys::napi_create_object(env, &mut object) };
    check(status, "napi_create_object")?;
    for (name, value) in self.fields() {
      let value = make(env, value, sys::napi_create_double)?;
      // SAFETY: `object` was just made; `name` is NUL-terminated and lives
      // for the program; `value` is a handle made in this call.
      let status = unsafe { sys::napi_set_named_property(env, object, name.as_ptr(), value) };
      check(status, "napi_set_named_property")?;
    }
    Ok(object)
  }
}

/// A `c_void` pointer carrying an integer (a key, a serial), never read
/// through.
pub fn as_data(key: usize) -> *mut c_void {
  key as *mut c_void
}
