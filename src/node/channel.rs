//! Channels as JavaScript holds them: a handle (a type-tagged external
//! that owns one `core::channel::Channel`), the bytes of views passed in,
//! the zero-copy view of a received message, and the asynchronous wait of
//! an end (napi-rs, for its threadsafe function). The entries themselves
//! are declared in `entries`.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use napi::bindgen_prelude::{Either, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::core::channel::ends::End;
use crate::core::channel::{Channel, Deadline, Next, Prepared};
use crate::core::failure::{Failure, Outcome};
use crate::core::mapping::Mapping;
use crate::core::wait::{self, Waited};
use crate::core::word;
use crate::node::convert::{check, Arg, Bytes, Returned};
use crate::node::throw::report;
use crate::node::wait::{wait_async_on, Settle, Started};

/// Marks externals that are channel handles, so a handle of anything else
/// (another addon's, our own descriptor owners, or a channel of another
/// posix-shm version loaded in the same process, whose `Handle` may differ)
/// is refused, not read. The version is hashed into the tag.
static TAG: sys::napi_type_tag = sys::napi_type_tag {
  lower: 0x7073_686d_6368_616e,
  upper: fnv1a(env!("CARGO_PKG_VERSION").as_bytes()),
};

/// FNV-1a, 64 bits, at compile time.
const fn fnv1a(bytes: &[u8]) -> u64 {
  let mut hash = 0xcbf2_9ce4_8422_2325_u64;
  let mut i = 0;
  while i < bytes.len() {
    hash ^= bytes[i] as u64;
    hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    i += 1;
  }
  hash
}

/// What a handle owns: the channel until it is closed, and the message
/// lent out as a view, if any.
pub struct Handle {
  channel: RefCell<Option<Channel>>,
  view: Cell<Option<LentView>>,
}

/// A message lent as an ArrayBuffer over the ring: a weak reference to
/// that buffer (to detach it) and the count `tail` takes once it is given
/// back.
#[derive(Clone, Copy)]
struct LentView {
  buffer: sys::napi_ref,
  next: u64,
}

impl Handle {
  /// The open channel, or ERR_SHM_CLOSED.
  pub fn open(&self) -> Outcome<std::cell::Ref<'_, Channel>> {
    std::cell::Ref::filter_map(self.channel.borrow(), Option::as_ref)
      .map_err(|_| Failure::Closed("channel"))
  }

  /// Runs `body` (an entry's work on this channel) with its accesses to
  /// the channel's memory guarded (see `Channel::guarded`); on a closed
  /// handle, as it is, for `body` to say so. The channel is not borrowed
  /// meanwhile: `body` borrows it itself, and `close` takes it.
  pub fn guarded<T>(&self, body: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    let mapping = match self.open() {
      Ok(channel) => Arc::clone(channel.mapping()),
      Err(_) => return body(),
    };
    Channel::guarded(&mapping, body)
  }
}

/// Wraps `channel` in a new handle whose collection closes it.
pub fn new_handle(env: sys::napi_env, channel: Channel) -> Outcome<sys::napi_value> {
  let handle = Box::into_raw(Box::new(Handle {
    channel: RefCell::new(Some(channel)),
    view: Cell::new(None),
  }));
  let mut value = ptr::null_mut();
  // SAFETY: `handle` is a live Box pointer; the finalizer takes it back
  // exactly once, when the external is collected or its environment ends.
  let status = unsafe {
    sys::napi_create_external(
      env,
      handle.cast(),
      Some(finalize_handle),
      ptr::null_mut(),
      &mut value,
    )
  };
  if let Err(failure) = check(status, "napi_create_external") {
    // SAFETY: no external was made, so nothing else has `handle`.
    drop(unsafe { Box::from_raw(handle) });
    return Err(failure);
  }
  // SAFETY: `value` was just made in `env`; TAG lives for the program.
  let status = unsafe { sys::napi_type_tag_object(env, value, &TAG) };
  // Untagged, the handle is refused by every entry; it is still freed by
  // its finalizer.
  check(status, "napi_type_tag_object")?;
  Ok(value)
}

unsafe extern "C" fn finalize_handle(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  // SAFETY: `data` is the Box made in `new_handle`, taken back only here.
  let handle = unsafe { Box::from_raw(data.cast::<Handle>()) };
  if let Some(view) = handle.view.take() {
    // SAFETY: the reference was made in this environment; the buffer it
    // names keeps the mapping alive on its own (see `lend_view`).
    unsafe { sys::napi_delete_reference(env, view.buffer) };
  }
  // The channel drops here: its ends are given up, its descriptor closed.
}

/// A channel handle passed by JavaScript, valid for the call that read it.
pub struct HandleArg(*const Handle);

impl HandleArg {
  pub fn get(&self) -> &Handle {
    // SAFETY: `read` found this pointer in a live external tagged as ours,
    // which the call's arguments keep alive until the call returns; the
    // handle is used on its JavaScript thread only.
    unsafe { &*self.0 }
  }
}

impl Arg for HandleArg {
  const TS: &'static str = "object";
  fn read(env: sys::napi_env, value: sys::napi_value, name: &'static str) -> Outcome<Self> {
    let refused = || {
      Failure::InvalidValue(format!(
        "The argument '{name}' must be a handle returned by channelCreate() or channelAttach()"
      ))
    };
    let mut ours = false;
    // SAFETY: `value` is a handle valid for this call; `ours` a live local.
    // For a value that is not an object Node-API answers napi_object_expected.
    let status = unsafe { sys::napi_check_object_type_tag(env, value, &TAG, &mut ours) };
    if status != sys::Status::napi_ok || !ours {
      return Err(refused());
    }
    let mut data = ptr::null_mut();
    // SAFETY: as above; an object tagged by us is an external we made.
    let status = unsafe { sys::napi_get_value_external(env, value, &mut data) };
    if status != sys::Status::napi_ok || data.is_null() {
      return Err(refused());
    }
    Ok(HandleArg(data.cast()))
  }
}

/// The deadline of a wait of `timeout_ms` starting now (NaN or Infinity:
/// none, as with `Atomics.wait`; 0 or less: now, a poll).
pub fn deadline(timeout_ms: f64) -> Deadline {
  wait::deadline(Instant::now(), word::timeout(timeout_ms))
}

/// What `channelReceiveInto` and `channelReceiveView` return besides a
/// message: nothing before the deadline, or the end of the channel.
pub const TIMED_OUT: f64 = -1.0;
pub const ENDED: f64 = -2.0;
/// A message that does not fit in the target from the offset: this minus
/// its length (nothing taken from the ring).
pub const TOO_LARGE: f64 = -3.0;

/// Gives back the message lent as a view, detaching its buffer first
/// (unless `detach` is false: the facade detaches it itself, or finds it
/// cannot be, and then the view shows whatever the sender writes next).
pub fn give_back_view(
  env: sys::napi_env,
  handle: &Handle,
  channel: &Channel,
  detach: bool,
) -> Outcome<()> {
  let Some(view) = handle.view.take() else {
    return Ok(());
  };
  let mut buffer = ptr::null_mut();
  // SAFETY: the reference was made in this environment and not deleted.
  let status = unsafe { sys::napi_get_reference_value(env, view.buffer, &mut buffer) };
  if detach && status == sys::Status::napi_ok && !buffer.is_null() {
    // SAFETY: `buffer` is the ArrayBuffer we made over the message; after
    // this no JavaScript reaches it.
    let status = unsafe { sys::napi_detach_arraybuffer(env, buffer) };
    if let Err(failure) = check(status, "napi_detach_arraybuffer") {
      handle.view.set(Some(view));
      return Err(failure);
    }
  }
  // SAFETY: as above; deleted once, here.
  unsafe { sys::napi_delete_reference(env, view.buffer) };
  // Giving the bytes back writes the header: guarded, after the view is
  // gone whatever the memory says.
  Channel::guarded(channel.mapping(), || {
    channel.consume(view.next);
    Ok(())
  })
}

/// Detaches the lent view, if any (see `give_back_view` for `detach`),
/// and gives its bytes back to the sender.
pub fn release(env: sys::napi_env, handle: &Handle, detach: bool) -> Outcome<()> {
  let channel = handle.open()?;
  give_back_view(env, handle, &channel, detach)
}

/// Checks a target offset from JavaScript: an integer inside `target`.
fn target_offset(target: &Bytes, offset: f64) -> Outcome<usize> {
  if !(offset >= 0.0 && offset.fract() == 0.0 && offset <= target.length as f64) {
    return Err(Failure::OutOfRange(format!(
      "The value of \"offset\" is out of range. It must be an integer from 0 to {}. Received {offset}",
      target.length
    )));
  }
  Ok(offset as usize)
}

/// Copies a message of `length` bytes at `at` (in the ring, checked by
/// `next` or `following`) into `target` at `offset`, which has room.
fn copy_out(at: usize, length: usize, target: &Bytes, offset: usize) {
  debug_assert!(length <= target.length - offset);
  // SAFETY: the message lies inside the ring (checked where it was found);
  // `target` is JavaScript memory of at least `offset + length` bytes for
  // this call. memmove: `target` may be a view of the ring itself.
  unsafe { ptr::copy(at as *const u8, target.address.add(offset), length) };
}

/// Receives the next message into `target` from `offset`: its length, or
/// TIMED_OUT, ENDED, or TOO_LARGE minus its length.
pub fn receive_into(
  env: sys::napi_env,
  handle: &Handle,
  target: Bytes,
  offset: f64,
  timeout_ms: f64,
  alive: &mut dyn FnMut() -> bool,
) -> Outcome<f64> {
  let channel = handle.open()?;
  let offset = target_offset(&target, offset)?;
  give_back_view(env, handle, &channel, true)?;
  match channel.next(deadline(timeout_ms), alive)? {
    Next::TimedOut => Ok(TIMED_OUT),
    Next::Ended => Ok(ENDED),
    Next::Message { at, length, next } => {
      if length > target.length - offset {
        return Ok(TOO_LARGE - length as f64);
      }
      copy_out(at, length, &target, offset);
      channel.consume(next);
      Ok(length as f64)
    }
  }
}

/// Receives the next message as `receive_into` does, waiting for it, and
/// then every message already published after it, while they fit in
/// `target` and `lengths` (a Uint32Array) has room for their lengths.
/// Each starts at the next multiple of 8 after the one before (capped at
/// `target`'s end). Gives the ring back once, at the end. Returns how many
/// it received, or the codes of `receive_into` for the first.
pub fn receive_many(
  env: sys::napi_env,
  handle: &Handle,
  target: Bytes,
  offset: f64,
  lengths: Bytes,
  timeout_ms: f64,
  alive: &mut dyn FnMut() -> bool,
) -> Outcome<f64> {
  let channel = handle.open()?;
  let mut offset = target_offset(&target, offset)?;
  let slots = lengths.length / 4;
  if slots == 0 {
    return Err(Failure::OutOfRange(
      "The value of \"lengths\" is out of range. It must have room for one length".into(),
    ));
  }
  give_back_view(env, handle, &channel, true)?;
  let (mut at, mut length, mut next) = match channel.next(deadline(timeout_ms), alive)? {
    Next::TimedOut => return Ok(TIMED_OUT),
    Next::Ended => return Ok(ENDED),
    Next::Message { at, length, next } => (at, length, next),
  };
  if length > target.length - offset {
    return Ok(TOO_LARGE - length as f64);
  }
  let mut count = 0usize;
  loop {
    copy_out(at, length, &target, offset);
    // SAFETY: `count < slots`, so the 4 bytes lie inside `lengths`, which
    // is JavaScript memory for this call; unaligned, as a view may be.
    unsafe {
      (lengths.address as *mut u32)
        .add(count)
        .write_unaligned(length as u32)
    };
    count += 1;
    offset = target.length.min((offset + length).div_ceil(8) * 8);
    if count == slots {
      break;
    }
    match channel.following(next)? {
      Some((following_at, following_length, following_next))
        if following_length <= target.length - offset =>
      {
        // The ring is given back after the loop, up to the last one copied.
        (at, length, next) = (following_at, following_length, following_next);
      }
      _ => break,
    }
  }
  channel.consume(next);
  Ok(count as f64)
}

/// The next message as an ArrayBuffer over the ring itself, lent until
/// the next receive or `give_back_view`; or TIMED_OUT or ENDED.
pub fn lend_view(
  env: sys::napi_env,
  handle: &Handle,
  timeout_ms: f64,
  alive: &mut dyn FnMut() -> bool,
) -> Outcome<ViewOrCode> {
  let channel = handle.open()?;
  if !crate::node::buffers::allowed() {
    return Err(Failure::NoExternalBuffers);
  }
  give_back_view(env, handle, &channel, true)?;
  let (at, length, next) = match channel.next(deadline(timeout_ms), alive)? {
    Next::TimedOut => return Ok(ViewOrCode::Code(TIMED_OUT)),
    Next::Ended => return Ok(ViewOrCode::Code(ENDED)),
    Next::Message { at, length, next } => (at, length, next),
  };
  let mut buffer = ptr::null_mut();
  if length == 0 {
    // SAFETY: a plain empty ArrayBuffer; the out-pointer is a live local.
    let status = unsafe { sys::napi_create_arraybuffer(env, 0, ptr::null_mut(), &mut buffer) };
    check(status, "napi_create_arraybuffer")?;
    channel.consume(next);
    return Ok(ViewOrCode::View(buffer));
  }
  // Two holds on the mapping: one for the backing store (its finalizer),
  // one for the ArrayBuffer object (Node's pending operations hold the
  // object, and a detached object's store may be freed before they end;
  // see `buffers::unmap`). The ring stays mapped until both are gone.
  let store_hold = Arc::into_raw(Arc::clone(channel.mapping()));
  // SAFETY: `at .. at + length` lies inside the mapping, which the store's
  // hold keeps mapped until the finalizer has run.
  let status = unsafe {
    sys::napi_create_external_arraybuffer(
      env,
      at as *mut c_void,
      length,
      Some(release_hold),
      store_hold as *mut c_void,
      &mut buffer,
    )
  };
  if status != sys::Status::napi_ok {
    // SAFETY: no buffer was made, so no finalizer has the hold.
    drop(unsafe { Arc::from_raw(store_hold) });
    if status == sys::Status::napi_no_external_buffers_allowed {
      return Err(Failure::NoExternalBuffers);
    }
    check(status, "napi_create_external_arraybuffer")?;
  }
  let object_hold = Arc::into_raw(Arc::clone(channel.mapping()));
  // SAFETY: `buffer` was just made; the finalizer takes back the hold.
  let status = unsafe {
    sys::napi_add_finalizer(
      env,
      buffer,
      object_hold as *mut c_void,
      Some(release_hold_object),
      ptr::null_mut(),
      ptr::null_mut(),
    )
  };
  if let Err(failure) = check(status, "napi_add_finalizer") {
    // SAFETY: not registered, so the hold is ours.
    drop(unsafe { Arc::from_raw(object_hold) });
    // SAFETY: the buffer, made above and never returned, is detached so
    // nothing reaches the ring through it.
    unsafe { sys::napi_detach_arraybuffer(env, buffer) };
    return Err(failure);
  }
  let mut reference = ptr::null_mut();
  // SAFETY: `buffer` was made in `env`; a weak reference (count 0).
  let status = unsafe { sys::napi_create_reference(env, buffer, 0, &mut reference) };
  if let Err(failure) = check(status, "napi_create_reference") {
    // SAFETY: as above: never returned, so detach it.
    unsafe { sys::napi_detach_arraybuffer(env, buffer) };
    return Err(failure);
  }
  handle.view.set(Some(LentView {
    buffer: reference,
    next,
  }));
  Ok(ViewOrCode::View(buffer))
}

unsafe extern "C" fn release_hold(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the hold made by `Arc::into_raw` in `lend_view`,
  // taken back once, here.
  drop(unsafe { Arc::from_raw(hint as *const Mapping) });
}

unsafe extern "C" fn release_hold_object(
  _env: sys::napi_env,
  data: *mut c_void,
  _hint: *mut c_void,
) {
  // SAFETY: as in `release_hold`, for the object's hold.
  drop(unsafe { Arc::from_raw(data as *const Mapping) });
}

/// A lent view, or one of the codes.
pub enum ViewOrCode {
  View(sys::napi_value),
  Code(f64),
}

impl Returned for ViewOrCode {
  const TS: &'static str = "ArrayBuffer | number";
  fn into_js(self, env: sys::napi_env) -> Outcome<sys::napi_value> {
    match self {
      ViewOrCode::View(buffer) => Ok(buffer),
      ViewOrCode::Code(code) => code.into_js(env),
    }
  }
}

/// Closes the channel: gives back a lent view (detaching it), gives up
/// the ends, closes the descriptor; the ring is unmapped once no view
/// holds it. Later calls do nothing.
pub fn close(env: sys::napi_env, handle: &Handle, detach: bool) -> Outcome<()> {
  // A channel whose object a peer shrank still closes: only the writes to
  // its header are skipped (guarded, they fail with Shrunk).
  if let Ok(channel) = handle.open() {
    match give_back_view(env, handle, &channel, detach) {
      Ok(()) | Err(Failure::Shrunk) => {}
      Err(failure) => return Err(failure),
    }
  }
  let channel = handle.channel.borrow_mut().take();
  if let Some(channel) = &channel {
    let _ = Channel::guarded(channel.mapping(), || {
      channel.leave();
      Ok(())
    });
  }
  drop(channel);
  Ok(())
}

/// Which end a JavaScript boolean names.
pub fn end_of(sending: bool) -> End {
  if sending {
    End::Sender
  } else {
    End::Receiver
  }
}

/// Waits, without a thread of its own, until the end (`sending`: the
/// sender, for room; else the receiver, for data) has something to do:
/// announces that it sleeps, looks once more, and hands the sleep to the
/// watcher threads. `settle` gets 0 when woken, 2 at the timeout; 1 at
/// once (returned) if there is work already. Throws ERR_SHM_PEER_GONE if
/// the other end's holder died.
#[napi(
  ts_args_type = "handle: object, sending: boolean, timeoutMs: number, settle: (result: number | Error) => void",
  ts_return_type = "number | PendingWait"
)]
pub fn channel_wait_async(
  env: &Env,
  handle: Unknown<'_>,
  sending: bool,
  timeout_ms: f64,
  settle: Settle,
) -> napi::Result<Started> {
  let outcome = HandleArg::read(env.raw(), handle.raw(), "handle").and_then(|handle| {
    let handle = handle.get();
    let end = end_of(sending);
    let prepared = handle.guarded(|| handle.open()?.prepare_sleep(end))?;
    match prepared {
      Prepared::Ready => Waited::NotEqual.code().map(Either::A),
      Prepared::Gone => Err(Failure::PeerGone(end.other().name())),
      Prepared::Sleep => {
        // The wait's own looks at the word are safe from a shrink (see
        // `probe`), and the kernel's are EFAULT.
        let word = handle.open()?.sleeping_word(end)?;
        wait_async_on(env, word, 1, timeout_ms, settle, false)
      }
    }
  });
  report(env, outcome)
}
