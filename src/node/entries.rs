//! Every plain JavaScript entry of the addon, each declared once: its
//! name, its documentation, its arguments with their types, its return
//! type and its body. From that one declaration `entries!` makes the
//! Node-API callback (arguments read by their types' `Arg::read`, the
//! body's `Failure` thrown through `throw`), the row of `ENTRIES` that
//! registers it on the exports, and its line in the TypeScript typings
//! (`native/entries.d.ts`, which a test keeps equal to this table).
//!
//! The callbacks are plain Node-API callbacks: napi-rs wraps every
//! `#[napi]` function that takes arguments in bookkeeping for borrowed
//! class instances (a thread-local scope, a heap allocation and a lock per
//! call), which was a large share of these calls' cost: 150 of the 440 ns
//! of a `waitInBuffer` that returns 'not-equal', and about a microsecond
//! of the seven calls of a lifecycle cycle. napi-rs remains for what needs
//! its machinery: the copy-mode class `MappedRegion` (`region`) and
//! `waitInBufferAsync` with its threadsafe function (`wait`).
//!
//! Adding an entry is one declaration below, plus its test.

use std::ffi::c_void;
use std::os::fd::IntoRawFd;
use std::ptr;

use napi::bindgen_prelude::Object;
use napi::{sys, JsValue};
use napi_derive::napi;
use nix::unistd::{Gid, Uid};

use crate::core::channel::{layout, Channel};
use crate::core::constants::permissions_allowed;
use crate::core::descriptor::{self, Stats};
use crate::core::failure::{Failure, Outcome};
use crate::core::{args, mapping, object, owner, probe, registry, word};
use crate::node::buffers::{self, account};
use crate::node::channel::{self as channels, HandleArg, ViewOrCode};
use crate::node::convert::{
  self, as_data, check, Arg, ArrayBufferOf, BufferMemory, Bytes, ExternalData, Fd, FileLength,
  Name, NewArrayBuffer, NewHandle, NewSharedArrayBuffer, Path, Returned,
};
use crate::node::records::PlatformConstants;
use crate::node::throw::{self, StateErrorFactory, SystemErrorFactory};
use crate::node::wait::env_alive;

/// One row of the table: what registration and the typings need.
// The documentation and types are read by the typings test alone.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Entry {
  /// The JavaScript name, NUL-terminated.
  pub name: &'static str,
  pub callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
  /// The documentation lines.
  pub doc: &'static [&'static str],
  /// (name, TypeScript type, may be left out) of each argument.
  pub params: &'static [(&'static str, &'static str, bool)],
  /// The TypeScript return type.
  pub returns: &'static str,
}

/// The whole of a plain callback taking `N` arguments: reads them, runs
/// `body`, and hands its outcome to JavaScript (the value, or the failure
/// thrown and a null handle, which Node-API reads as undefined under the
/// pending exception).
fn call<const N: usize, R: Returned>(
  env: sys::napi_env,
  info: sys::napi_callback_info,
  body: impl FnOnce([sys::napi_value; N]) -> Outcome<R>,
) -> sys::napi_value {
  match convert::arguments::<N>(env, info)
    .and_then(body)
    .and_then(|returned| returned.into_js(env))
  {
    Ok(value) => value,
    Err(failure) => {
      throw::throw(env, failure);
      ptr::null_mut()
    }
  }
}

macro_rules! entries {
  ($(
    $(#[doc = $doc:literal])*
    fn $name:ident($env:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty $body:block
  )*) => {
    $(
      #[allow(non_snake_case)]
      unsafe extern "C" fn $name(
        env: sys::napi_env,
        info: sys::napi_callback_info,
      ) -> sys::napi_value {
        const ARITY: usize = <[&str]>::len(&[$(stringify!($arg)),*]);
        call::<ARITY, $ret>(env, info, |argv| {
          #[allow(unused_mut, unused_variables)]
          let mut argv = argv.into_iter();
          #[allow(unused_variables)]
          let $env = env;
          $(
            let $arg = <$ty as Arg>::read(
              env,
              argv.next().unwrap_or(ptr::null_mut()),
              stringify!($arg),
            )?;
          )*
          $body
        })
      }
    )*

    /// Every plain entry, in the order declared.
    pub const ENTRIES: &[Entry] = &[$(
      Entry {
        name: concat!(stringify!($name), "\0"),
        callback: $name,
        doc: &[$($doc),*],
        params: &[$((stringify!($arg), <$ty as Arg>::TS, <$ty as Arg>::OPTIONAL)),*],
        returns: <$ret as Returned>::TS,
      },
    )*];
  };
}

/// An owner or group id: -1 leaves it unchanged, as with `fs.fchownSync`.
fn id_arg(value: f64, what: &str) -> Outcome<Option<u32>> {
  let id = args::integer_in(value, what, -1.0, f64::from(u32::MAX - 1))?;
  Ok((id >= 0.0).then_some(id as u32))
}

/// What an owned descriptor counts for in V8's external memory. Not its
/// size: a hint, so that a program dropping SharedMemory objects without
/// closing them gets a collection (which closes them) every thousand or so,
/// long before it runs out of descriptors.
const FD_PRESSURE: i64 = 64 * 1024;

/// Runs when an `fdOwnerAdopt` handle is collected or its environment torn
/// down. `data` is its key; an explicit close may have come first.
unsafe extern "C" fn close_when_collected(
  env: sys::napi_env,
  data: *mut c_void,
  _hint: *mut c_void,
) {
  match owner::release(data as usize) {
    owner::Released::Nothing => {}
    owner::Released::Gone => account(env, -FD_PRESSURE),
    owner::Released::Ours(fd) => {
      account(env, -FD_PRESSURE);
      // `fd` drops here: OwnedFd closes it.
      drop(fd);
    }
  }
}

entries! {
  /// Registers the facade's error factories for this environment: every
  /// error the binding throws from then on is made by them (see `throw`).
  fn setErrorFactories(env, systemError: SystemErrorFactory, stateError: StateErrorFactory) -> () {
    throw::register(env, systemError, stateError)
  }

  /// shm_open(name, openFlags, mode); returns the descriptor, which from
  /// then on belongs to JavaScript.
  fn shmOpenNamed(env, name: Name, openFlags: f64, mode: f64) -> i32 {
    let text = name.text("shm_open")?;
    let opened = object::open_flags(openFlags).and_then(|flags| {
      object::open_named(text, flags, object::permissions(mode)?)
    });
    opened.map(IntoRawFd::into_raw_fd).map_err(|failure| failure.at(text))
  }

  /// shm_unlink(name).
  fn shmUnlinkNamed(env, name: Name) -> () {
    let text = name.text("shm_unlink")?;
    object::unlink_named(text).map_err(|failure| failure.at(text))
  }

  /// Opens an object that no name reaches (memfd on Linux, SHM_ANON on
  /// FreeBSD, a random name unlinked at once on macOS, tried `attempts`
  /// times); returns the descriptor. `sealable`: Linux only, see shmSeal.
  fn shmOpenAnonymous(env, openFlags: f64, mode: f64, attempts: f64, sealable: Option<bool>) -> i32 {
    let attempts = args::integer_in(attempts, "attempts", 1.0, f64::from(u32::MAX))? as u32;
    let flags = object::open_flags(openFlags)?;
    let mode = object::permissions(mode)?;
    let fd = object::open_anonymous(flags, mode, attempts, sealable.unwrap_or(false))?;
    Ok(fd.into_raw_fd())
  }

  /// Seals the size of an object opened by shmOpenAnonymous with
  /// `sealable`: nobody can shrink or grow it from then on (Linux).
  fn shmSeal(env, fd: Fd) -> () {
    object::seal(fd.0)
  }

  /// ftruncate(fd, length): sets the object's size to exactly `length`.
  fn shmFtruncate(env, fd: Fd, length: FileLength) -> () {
    descriptor::truncate(fd.0, length.0)
  }

  /// close(fd), refused (ERR_SHM_FD_OWNED) for a descriptor a
  /// SharedMemory owns.
  fn shmClose(env, fd: Fd) -> () {
    owner::close_unowned(fd.0)
  }

  /// fstat(fd).
  fn shmFstat(env, fd: Fd) -> Stats {
    descriptor::stats(fd.0)
  }

  /// fchmod(fd, mode).
  fn shmFchmod(env, fd: Fd, mode: f64) -> () {
    let mode = args::bits_within(mode, permissions_allowed(), "permissions")?;
    descriptor::change_mode(fd.0, nix::sys::stat::Mode::from_bits_truncate(mode as nix::libc::mode_t))
  }

  /// fchown(fd, uid, gid); -1 leaves one unchanged.
  fn shmFchown(env, fd: Fd, uid: f64, gid: f64) -> () {
    let uid = id_arg(uid, "uid")?.map(Uid::from_raw);
    let gid = id_arg(gid, "gid")?.map(Gid::from_raw);
    descriptor::change_owner(fd.0, uid, gid)
  }

  /// Reserves the object's pages up to `length` (posix_fallocate), so a
  /// full /dev/shm fails here rather than with SIGBUS on first touch;
  /// false where the platform cannot. `path` names the object in errors.
  fn shmAllocate(env, fd: Fd, length: f64, path: Path) -> bool {
    let length = args::byte_count(length, "length")?;
    descriptor::allocate(fd.0, length as i64).map_err(|failure| path.on(failure))
  }

  /// Grows the object to `length` bytes if it is smaller, never shrinking
  /// it, also against other processes growing it at once; returns the size
  /// it found. `path` names the object in errors.
  fn shmGrow(env, fd: Fd, length: f64, path: Path) -> f64 {
    let length = args::byte_count(length, "length")?;
    let found = descriptor::grow(fd.0, length as i64).map_err(|failure| path.on(failure))?;
    Ok(found as f64)
  }

  /// Whether `fd` was opened read-only.
  fn shmIsReadOnly(env, fd: Fd) -> bool {
    descriptor::is_read_only(fd.0)
  }

  /// A duplicate of `fd` (F_DUPFD_CLOEXEC).
  fn shmDuplicate(env, fd: Fd) -> i32 {
    descriptor::duplicate(fd.0)
  }

  /// Takes ownership of `fd`, which must be open and not already owned
  /// (ERR_SHM_FD_OWNED); returns the handle whose collection closes it.
  fn fdOwnerAdopt(env, fd: Fd) -> NewHandle {
    owner::check_adoptable(fd.0)?;
    let key = owner::next_key();
    let mut handle = ptr::null_mut();
    // SAFETY: the data is an integer the finalizer only looks up, never a
    // pointer; the finalizer matches napi_finalize; `handle` is a live local.
    let status = unsafe {
      sys::napi_create_external(env, as_data(key), Some(close_when_collected), ptr::null_mut(), &mut handle)
    };
    // Nothing is taken until the handle exists: a failure leaves `fd` to
    // the caller, who closes it. If the number was adopted elsewhere
    // meanwhile, the handle finds no entry when collected, and does nothing.
    check(status, "napi_create_external")?;
    owner::adopt(key, fd.0)?;
    account(env, FD_PRESSURE);
    Ok(NewHandle(handle))
  }

  /// Closes the descriptor a handle from fdOwnerAdopt owns; later calls
  /// do nothing, and so does a call once the number was closed behind the
  /// owner's back (it may name another file by then).
  fn fdOwnerClose(env, handle: ExternalData) -> () {
    match owner::release(handle.0) {
      owner::Released::Nothing => Ok(()),
      // Closed behind its owner's back (fs.closeSync): there is nothing
      // of ours to close, and the number may be someone else's now.
      owner::Released::Gone => {
        account(env, -FD_PRESSURE);
        Ok(())
      }
      owner::Released::Ours(fd) => {
        account(env, -FD_PRESSURE);
        owner::close(fd)
      }
    }
  }

  /// Maps `length` bytes of `fd` from `offset`, MAP_SHARED; one
  /// ArrayBuffer over the mapping.
  fn mmapShared(env, length: f64, protections: f64, fd: f64, offset: f64) -> NewArrayBuffer {
    let mapping = mapping::map_checked(length, protections, fd, offset, || {
      // Refused before mapping, not after: nothing to undo.
      if buffers::allowed() { Ok(()) } else { Err(Failure::NoExternalBuffers) }
    })?;
    buffers::hand_out(env, mapping).map(NewArrayBuffer)
  }

  /// Maps like mmapShared, as one SharedArrayBuffer (refused with
  /// ERR_SHM_NO_SHARED_BUFFERS where the runtime cannot make one): it can
  /// be posted to workers without a copy and used with Atomics. It cannot
  /// be detached, so nothing unmaps it early: the range is unmapped once
  /// the last thread holding it lets it go.
  fn mmapSharedBuffer(env, length: f64, protections: f64, fd: f64, offset: f64) -> NewSharedArrayBuffer {
    let mapping = mapping::map_checked(length, protections, fd, offset, || {
      // Refused before mapping, not after: nothing to undo.
      if buffers::shared_allowed() { Ok(()) } else { Err(Failure::NoSharedBuffers) }
    })?;
    buffers::hand_out_shared(env, mapping).map(NewSharedArrayBuffer)
  }

  /// Detaches the ArrayBuffer (given it or a view on it; unless `detach`
  /// is false: the caller does that, default true) and unmaps its memory
  /// once nothing can still use it.
  fn munmapShared(env, mapped: ArrayBufferOf, detach: Option<bool>) -> () {
    buffers::unmap(env, mapped.0, detach.unwrap_or(true))
  }

  /// Waits on a word of a mapping while it holds `value`; 0 ok,
  /// 1 not-equal, 2 timed-out, 3 cancelled (the environment is ending).
  fn waitInBuffer(env, buffer: BufferMemory, byteOffset: f64, value: i32, timeoutMs: f64) -> u32 {
    let word = buffer.word(byteOffset)?;
    word::wait_on(&word, value, timeoutMs, &mut || env_alive(env))
  }

  /// Compares a word of a mapping with `value` through the kernel where it
  /// can (a word whose page is gone is EFAULT, not SIGBUS): 1 differs,
  /// 2 equal.
  fn peekInBuffer(env, buffer: BufferMemory, byteOffset: f64, value: i32) -> u32 {
    let word = buffer.word(byteOffset)?;
    word::peek_on(&word, value)
  }

  /// Wakes up to `count` waiters on a word of a mapping; returns how many
  /// were asleep.
  fn notifyInBuffer(env, buffer: BufferMemory, byteOffset: f64, count: f64) -> u32 {
    let word = buffer.word(byteOffset)?;
    Ok(word::notify_on(&word, count))
  }

  /// Whether mmapShared can hand out zero-copy ArrayBuffers here.
  fn externalBuffersAllowed(env) -> bool {
    Ok(buffers::allowed())
  }

  /// From now on, in the whole process, behave as if the runtime refused
  /// external ArrayBuffers: the facade's route to copy mode, for runtimes
  /// whose `process.env` writes never reach the C environment (Bun).
  fn refuseExternalBuffers(env) -> () {
    buffers::refuse();
    Ok(())
  }

  /// Whether mmapSharedBuffer can hand out SharedArrayBuffers here.
  fn sharedBuffersAllowed(env) -> bool {
    Ok(buffers::shared_allowed())
  }

  /// Throws ERR_SHM_NO_SHARED_BUFFERS unless mmapSharedBuffer can work
  /// here: for callers that refuse before they open anything.
  fn requireSharedBuffers(env) -> () {
    if buffers::shared_allowed() { Ok(()) } else { Err(Failure::NoSharedBuffers) }
  }

  /// The running platform's values of every flag the API accepts.
  fn platformConstants(env) -> PlatformConstants {
    Ok(PlatformConstants)
  }

  /// How many mappings JavaScript holds now (a diagnostic).
  fn liveMappingCount(env) -> u32 {
    Ok(registry::count() as u32)
  }

  /// How many address ranges posix-shm holds now, mappings and the
  /// placeholders of closed mappings that Node may still reach alike: what
  /// counts against the mapping budget (a diagnostic).
  fn reservedRangeCount(env) -> u32 {
    Ok(mapping::reserved() as u32)
  }

  /// Keeps the ranges of this environment's mappings whose ArrayBuffers
  /// were moved elsewhere; the facade calls it as a worker exits.
  fn pinMovedMappings(env) -> () {
    buffers::pin_moved(env);
    Ok(())
  }

  /// Puts back the SIGBUS handler that turns a peer's shrink into an
  /// error, if SIGBUS was reset to the default since it was installed; the
  /// facade calls it when the last 'SIGBUS' listener is removed.
  fn restoreFaultHandler(env) -> () {
    probe::reinstall_if_reset();
    Ok(())
  }

  /// Makes a channel in the new, empty object behind `fd` (which stays
  /// the caller's: the channel opens a descriptor of its own), with a ring
  /// of `capacity` bytes rounded up to a power of two, at least 4096;
  /// `seal` then seals the object's size (Linux, anonymous objects).
  /// Returns the channel's handle, whose collection closes it.
  fn channelCreate(env, fd: Fd, capacity: f64, seal: Option<bool>) -> NewHandle {
    let capacity = layout::capacity_for(args::byte_count(capacity, "capacity")?)?;
    // The facade's descriptor is always one it just opened.
    let channel = Channel::create(fd.0, capacity, true)?;
    if seal == Some(true) {
      object::seal(channel.fd())?;
    }
    channels::new_handle(env, channel).map(NewHandle)
  }

  /// Opens the channel in the object behind `fd` (which stays the
  /// caller's), waiting up to a second for its creator to finish the
  /// header. `fresh`: the caller just opened `fd` itself and closes it next
  /// (else it may be shared with other processes, and the channel opens
  /// the object afresh). Returns the channel's handle.
  fn channelAttach(env, fd: Fd, fresh: Option<bool>) -> NewHandle {
    let channel = Channel::attach(fd.0, fresh.unwrap_or(false))?;
    channels::new_handle(env, channel).map(NewHandle)
  }

  /// The ring's size in bytes.
  fn channelCapacity(env, handle: HandleArg) -> f64 {
    let capacity = handle.get().open()?.capacity();
    Ok(capacity as f64)
  }

  /// The channel's own descriptor, for passing it to another process.
  fn channelFd(env, handle: HandleArg) -> i32 {
    let fd = handle.get().open()?.fd();
    Ok(fd)
  }

  /// Sends `data` (taking the sending end if this handle has not yet),
  /// waiting while the ring is full for at most `timeoutMs` (Infinity:
  /// forever; 0: not at all); false if the ring stayed full. Like every
  /// entry below that touches the channel's memory, it runs guarded: a
  /// peer that shrank the object is ERR_SHM_SHRUNK, not a SIGBUS.
  fn channelSend(env, handle: HandleArg, data: Bytes, timeoutMs: f64) -> bool {
    let handle = handle.get();
    handle.guarded(|| {
      let channel = handle.open()?;
      // SAFETY: `data` is JavaScript memory that stays valid during this
      // call, which runs no JavaScript.
      unsafe {
        channel.send(data.address, data.length, channels::deadline(timeoutMs), &mut || env_alive(env))
      }
    })
  }

  /// Receives the next message (taking the receiving end if this handle
  /// has not yet) into `target` from `offset`, waiting for at most
  /// `timeoutMs`: its length; -1 if none came; -2 once the sender has
  /// ended and every message was received; -3 minus its length if it does
  /// not fit (it stays in the ring). Gives back a lent view first.
  fn channelReceiveInto(env, handle: HandleArg, target: Bytes, offset: f64, timeoutMs: f64) -> f64 {
    let handle = handle.get();
    handle.guarded(|| channels::receive_into(env, handle, target, offset, timeoutMs, &mut || env_alive(env)))
  }

  /// Receives like channelReceiveInto, then every message already
  /// published after the first, while they fit in `target` (each from the
  /// next multiple of 8) and `lengths` (a Uint32Array) has room for their
  /// lengths; returns how many, or channelReceiveInto's codes for the first.
  fn channelReceiveMany(env, handle: HandleArg, target: Bytes, offset: f64, lengths: Bytes, timeoutMs: f64) -> f64 {
    let handle = handle.get();
    handle.guarded(|| channels::receive_many(env, handle, target, offset, lengths, timeoutMs, &mut || env_alive(env)))
  }

  /// Lends the next message as an ArrayBuffer over the ring itself, until
  /// channelRelease or the next receive detaches it; -1 or -2 as
  /// channelReceiveInto. Refused where external buffers are.
  fn channelReceiveView(env, handle: HandleArg, timeoutMs: f64) -> ViewOrCode {
    let handle = handle.get();
    handle.guarded(|| channels::lend_view(env, handle, timeoutMs, &mut || env_alive(env)))
  }

  /// Detaches the lent view, if any (unless `detach` is false: the caller
  /// does that, default true), and gives its message's bytes back to the
  /// sender.
  fn channelRelease(env, handle: HandleArg, detach: Option<bool>) -> () {
    channels::release(env, handle.get(), detach.unwrap_or(true))
  }

  /// Ends the sending end: the receiver gets every message sent so far,
  /// then learns that no more will come.
  fn channelEnd(env, handle: HandleArg) -> () {
    let handle = handle.get();
    handle.guarded(|| handle.open()?.end())
  }

  /// Whether the process holding the other end (`sending`: this handle
  /// sends, so the receiver's) died.
  fn channelPeerGone(env, handle: HandleArg, sending: Option<bool>) -> bool {
    let end = channels::end_of(sending.unwrap_or(false));
    let handle = handle.get();
    handle.guarded(|| handle.open()?.peer_gone(end))
  }

  /// Closes the channel handle: detaches a lent view (`detach` as for
  /// channelRelease), gives up its ends, closes its descriptor. Later
  /// calls do nothing.
  fn channelClose(env, handle: HandleArg, detach: Option<bool>) -> () {
    channels::close(env, handle.get(), detach.unwrap_or(true))
  }

  /// How many threads posix-shm runs for pending waitAsync calls, idle
  /// ones included (a diagnostic).
  fn waiterThreadCount(env) -> u32 {
    Ok(crate::core::wait::pending::thread_count() as u32)
  }

  /// How many pending waitAsync calls watcher threads have handed to the
  /// kernel in their current call (Linux 5.16+; 0 elsewhere): the waits a
  /// notify counts (a diagnostic).
  fn armedWaitCount(env) -> u32 {
    Ok(crate::core::wait::pending::armed_count() as u32)
  }
}

/// Puts every entry of the table on the addon's exports, beside napi-rs's.
#[napi(module_exports)]
pub fn register_entries(exports: Object) -> napi::Result<()> {
  let env = exports.value().env;
  for entry in ENTRIES {
    let name = entry.name;
    let mut function = ptr::null_mut();
    // SAFETY: `name` lives for the program (a literal) and its length
    // leaves out the NUL; the callback matches napi_callback; `function`
    // is a live local. No data pointer is attached.
    let status = unsafe {
      sys::napi_create_function(
        env,
        name.as_ptr().cast(),
        (name.len() - 1) as isize,
        Some(entry.callback),
        ptr::null_mut(),
        &mut function,
      )
    };
    throw::report(
      &napi::Env::from_raw(env),
      check(status, "napi_create_function"),
    )?;
    // SAFETY: `exports` is the module's exports object, valid during
    // registration; `name` is NUL-terminated; `function` was just made.
    let status =
      unsafe { sys::napi_set_named_property(env, exports.raw(), name.as_ptr().cast(), function) };
    throw::report(
      &napi::Env::from_raw(env),
      check(status, "napi_set_named_property"),
    )?;
  }
  Ok(())
}

/// The TypeScript interface of every record an entry returns, made from
/// the records' own fields.
#[cfg(test)]
fn record_typings() -> String {
  use crate::node::convert::Record;
  let mut out = String::new();
  let mut interface = |name: &str, fields: Vec<(&'static std::ffi::CStr, f64)>| {
    out.push_str(&format!("export interface {name} {{\n"));
    for (field, _) in fields {
      out.push_str(&format!("  {}: number\n", field.to_string_lossy()));
    }
    out.push_str("}\n\n");
  };
  interface(Stats::INTERFACE, Stats::default().fields());
  interface(PlatformConstants::INTERFACE, PlatformConstants.fields());
  out
}

/// The text of native/entries.d.ts: the typings of every entry in
/// `ENTRIES`, and of the records they return.
#[cfg(test)]
fn typings() -> String {
  let mut out = String::from(
    "// Made from the entry table in src/node/entries.rs; `npm run build:entries` rewrites it,\n\
     // and `cargo test` fails while it differs from the table.\n\n",
  );
  out.push_str(&record_typings());
  out.push_str("/** The plain Node-API entries of the binding. */\nexport interface Entries {\n");
  for entry in ENTRIES {
    out.push_str("  /**\n");
    for line in entry.doc {
      out.push_str(&format!("   *{}\n", line.trim_end()));
    }
    out.push_str("   */\n");
    let params: Vec<String> = entry
      .params
      .iter()
      .map(|(name, ts, optional)| format!("{name}{}: {ts}", if *optional { "?" } else { "" }))
      .collect();
    out.push_str(&format!(
      "  {}({}): {}\n",
      entry.name.trim_end_matches('\0'),
      params.join(", "),
      entry.returns
    ));
  }
  out.push_str("}\n");
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_committed_typings_are_the_tables() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/native/entries.d.ts");
    let made = typings();
    if std::env::var_os("UPDATE_ENTRY_TYPINGS").is_some() {
      std::fs::write(path, &made).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
      committed == made,
      "native/entries.d.ts differs from the entry table: run `npm run build:entries` and commit it"
    );
  }

  #[test]
  fn every_entry_has_a_unique_name_and_a_doc() {
    let mut names: Vec<&str> = ENTRIES.iter().map(|e| e.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ENTRIES.len());
    assert!(ENTRIES
      .iter()
      .all(|e| !e.doc.is_empty() && e.name.ends_with('\0')));
  }
}
