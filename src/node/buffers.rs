//! The one external ArrayBuffer over each mapping, and the end of its life.
//!
//! A mapping leaves the registry (see `registry.rs`) by the first of:
//! - an explicit `munmap`, which detaches the ArrayBuffer first;
//! - the ArrayBuffer's finalizer, which Node runs once V8 has freed the
//!   buffer's memory (its "backing store"), wherever it ended up.
//!
//! Leaving the registry is not the end of the address range. Detaching
//! stops JavaScript, not Node's own native code: operations started on a
//! buffer keep its raw address and use it later. From Node's source:
//! - thread-pool jobs (`crypto.randomFill`, `zlib`, `fs.read`/`fs.write`
//!   into a buffer) take the address when they start and write or read it
//!   on another thread when they run; their request objects keep the
//!   JavaScript buffer (the view, so its ArrayBuffer) alive until the
//!   callback, for instance through the callback's closure or the
//!   request's `buffer` property;
//! - a socket write that cannot go out at once queues the address in
//!   libuv, and the write request keeps the buffer object alive until the
//!   write completes;
//! - `ArrayBuffer.prototype.transfer()` moves the backing store (not the
//!   object) to a new ArrayBuffer, which may be posted to another thread.
//!
//! So a range stays reserved (`mapping::Claims`) while the ArrayBuffer
//! object exists (claimed at an explicit unmap, released when the detached
//! object is collected) and while its backing store exists (claimed when
//! the buffer is made, released by the finalizer). Whatever of that
//! outlives the `Mapping` sees a private placeholder instead of the shared
//! pages, never another mapping.
//!
//! One exception needs more: when a worker's environment is torn down,
//! Node detaches and finalizes every external buffer the worker made, also
//! one whose backing store `transfer()` moved and `postMessage` sent to
//! another thread, where it is still in use. Node's own cleanup runs
//! before any hook of ours, so the facade looks first, from the worker's
//! `exit` event (`pin_moved`): a mapping whose ArrayBuffer object is
//! detached, though we never unmapped it, keeps its range, still
//! shared, until the process ends. `worker.terminate()` emits no `exit`
//! in the worker, so that case stays open there; the facade also refuses
//! `transfer()` of a mapping in the realm that loaded posix-shm.
//!
//! napi-rs's external-buffer helpers are not used: where the runtime
//! refuses external buffers they fall back to a private copy, which would
//! silently stop the sharing. We call Node-API directly and report that.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::sys;

use crate::core::failure::{Failure, Outcome};
use crate::core::mapping::{Claim, Claims, Mapping};
use crate::core::registry::{self, Entry, Holder};
use crate::node::convert::check;

/// `POSIX_SHM_NO_EXTERNAL_BUFFERS=1`: behave as if the runtime refused
/// external buffers, so that mode can be tested in plain Node and chosen
/// anywhere. Read from the C environment when the addon loads (for callers
/// of the binding itself), and set by the facade through `refuse` when
/// JavaScript's `process.env` has it: in Bun, a variable set from
/// JavaScript never reaches the C environment.
static REFUSE_EXTERNAL_BUFFERS: AtomicBool = AtomicBool::new(false);

#[napi_derive::module_init]
fn read_environment() {
  if std::env::var_os("POSIX_SHM_NO_EXTERNAL_BUFFERS").is_some_and(|v| v == "1") {
    refuse();
  }
}

/// Turns external buffers off for the rest of the process; never back on,
/// since mappings already handed out in copy mode stay so.
pub fn refuse() {
  REFUSE_EXTERNAL_BUFFERS.store(true, Ordering::Relaxed);
}

pub fn allowed() -> bool {
  !REFUSE_EXTERNAL_BUFFERS.load(Ordering::Relaxed)
}

/// Makes the one buffer over `mapping` with `make`, which is given the
/// memory (address and length), the store claim to hand its finalizer,
/// and where to put the buffer. The claim keeps the range reserved until
/// that finalizer takes it back and releases it, so the buffer never
/// outlives its memory, on any thread it reaches. If no buffer is made, no
/// finalizer will run: the claim is taken back here, and the runtime's
/// refusal of external memory is `refused`.
fn make_buffer(
  mapping: &mut Mapping,
  refused: Failure,
  call: &'static str,
  make: impl FnOnce(*mut c_void, usize, *mut c_void, &mut sys::napi_value) -> sys::napi_status,
) -> Outcome<sys::napi_value> {
  let claims = Claims::new(mapping, &[Claim::Store]);
  mapping.share_range(Arc::clone(&claims));
  let store_claim = Arc::into_raw(Arc::clone(&claims));
  let mut buffer = ptr::null_mut();
  let status = make(
    mapping.address().as_ptr(),
    mapping.length(),
    store_claim as *mut c_void,
    &mut buffer,
  );
  if status != sys::Status::napi_ok {
    // SAFETY: `store_claim` came from `Arc::into_raw` above, and with no
    // buffer made no finalizer has it.
    drop(unsafe { Arc::from_raw(store_claim) });
    claims.release(Claim::Store);
    if status == sys::Status::napi_no_external_buffers_allowed {
      return Err(refused);
    }
    check(status, call)?;
  }
  Ok(buffer)
}

/// Wraps `mapping` in one external ArrayBuffer and hands its ownership to
/// the registry. On any failure the mapping is dropped, so unmapped.
pub fn hand_out(env: sys::napi_env, mut mapping: Mapping) -> Outcome<sys::napi_value> {
  let refused = Failure::NoExternalBuffers;
  let call = "napi_create_external_arraybuffer";
  let array_buffer = make_buffer(
    &mut mapping,
    refused,
    call,
    |data, length, claim, result| {
      // SAFETY: see `make_buffer`: the memory stays reserved until the
      // finalizer, which takes back `claim`, has run.
      unsafe {
        sys::napi_create_external_arraybuffer(
          env,
          data,
          length,
          Some(finalize_store),
          claim,
          result,
        )
      }
    },
  )?;
  // No `account` here: V8 counts every ArrayBuffer's length as external
  // memory itself (its array-buffer sweeper reports it when the buffer is
  // set up and takes it back when the buffer is freed or detached). A
  // second report doubled the pressure, and for a large mapping it made
  // the very call that mapped it run a synchronous full collection:
  // milliseconds for 256 MiB, where the system calls take microseconds.
  let mut reference = ptr::null_mut();
  // SAFETY: `array_buffer` was just made in `env`; the out-pointer is a
  // live local. A weak reference (count 0) does not keep it alive. If it
  // cannot be made, teardown cannot look, and keeps the range instead.
  let status = unsafe { sys::napi_create_reference(env, array_buffer, 0, &mut reference) };
  if status != sys::Status::napi_ok {
    reference = ptr::null_mut();
  }
  registry::adopt(Entry {
    mapping: Arc::new(mapping),
    holder: Holder {
      env: env as usize,
      reference: reference as usize,
    },
  });
  Ok(array_buffer)
}

/// Node-API's maker of a SharedArrayBuffer over external memory, whose
/// finalizer may run on any thread.
type CreateExternalSharedArrayBuffer = unsafe extern "C" fn(
  sys::napi_env,
  *mut c_void,
  usize,
  Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
  *mut c_void,
  *mut sys::napi_value,
) -> sys::napi_status;

/// `node_api_create_external_sharedarraybuffer`, looked up at run time:
/// Node 22.23.3+, 24.16+, 26.1+ and Bun export it; Node 20 does not, and an
/// addon that linked it would fail to load there.
fn shared_buffer_maker() -> Option<CreateExternalSharedArrayBuffer> {
  static MAKER: std::sync::OnceLock<Option<CreateExternalSharedArrayBuffer>> =
    std::sync::OnceLock::new();
  *MAKER.get_or_init(|| {
    // SAFETY: dlsym reads the NUL-terminated name and searches the symbols
    // already loaded; it does not load or run anything.
    let symbol = unsafe {
      nix::libc::dlsym(
        nix::libc::RTLD_DEFAULT,
        c"node_api_create_external_sharedarraybuffer".as_ptr(),
      )
    };
    // SAFETY: the symbol of that name is the Node-API function declared in
    // js_native_api.h with exactly this signature (NAPI_CDECL is the C
    // calling convention on every platform we build for).
    (!symbol.is_null()).then(|| unsafe {
      std::mem::transmute::<*mut c_void, CreateExternalSharedArrayBuffer>(symbol)
    })
  })
}

/// Whether `hand_out_shared` can work in this process.
pub fn shared_allowed() -> bool {
  allowed() && shared_buffer_maker().is_some()
}

/// Wraps `mapping` in one SharedArrayBuffer and hands its ownership to the
/// registry. A SharedArrayBuffer cannot be detached, so nothing unmaps it
/// early: the mapping lives until the last thread that holds the buffer
/// lets it go, and its finalizer (`finalize_shared_store`, on any thread)
/// takes it out of the registry. On any failure the mapping is dropped,
/// so unmapped.
pub fn hand_out_shared(env: sys::napi_env, mut mapping: Mapping) -> Outcome<sys::napi_value> {
  let Some(create) = shared_buffer_maker() else {
    return Err(Failure::NoSharedBuffers);
  };
  let refused = Failure::NoSharedBuffers;
  let call = "node_api_create_external_sharedarraybuffer";
  let shared = make_buffer(
    &mut mapping,
    refused,
    call,
    |data, length, claim, result| {
      // SAFETY: `create` is Node-API's function (see `shared_buffer_maker`);
      // as for `make_buffer`, the memory stays reserved until the finalizer,
      // which takes back `claim`, has run, on whatever thread.
      unsafe {
        create(
          env,
          data,
          length,
          Some(finalize_shared_store),
          claim,
          result,
        )
      }
    },
  )?;
  // No holder: nothing JavaScript-side is ever looked at again (no detach,
  // no transfer), and the finalizer may run where no environment is.
  registry::adopt(Entry {
    mapping: Arc::new(mapping),
    holder: Holder::default(),
  });
  Ok(shared)
}

/// Pins each mapping made in `env` whose ArrayBuffer is detached, though
/// we never unmapped it: its memory lives on in an ArrayBuffer
/// elsewhere (moved by `transfer()`, perhaps posted to a thread that
/// outlives this one). The facade calls this as its environment exits, and
/// it must come before Node tears the environment down, which detaches and
/// finalizes every buffer: after that, all look alike.
pub fn pin_moved(env: sys::napi_env) {
  registry::for_each_held_by(env as usize, |entry| {
    if moved_elsewhere(env, entry.holder) {
      if let Some(claims) = entry.mapping.claims() {
        claims.pin();
      }
    }
  });
}

/// Deletes the weak reference an entry holds, from the environment that
/// made it (a reference belongs to one environment; from any other it is
/// left to that environment's teardown).
fn forget_holder(env: sys::napi_env, holder: Holder) {
  if holder.reference != 0 && holder.env == env as usize {
    // SAFETY: the reference was made in this environment by `hand_out`
    // and is deleted only here, once, as its entry leaves the registry.
    unsafe { sys::napi_delete_reference(env, holder.reference as sys::napi_ref) };
  }
}

/// Whether the ArrayBuffer of `holder` is alive and detached, though we
/// never unmapped it: then its backing store lives on in another object.
/// A collected object is not taken as moved: far more often it is a buffer
/// dropped whose finalizer has not run yet, and pinning those would keep
/// every such range for good. (A moved buffer's detached husk that was
/// collected before the exit is the case this misses.)
fn moved_elsewhere(env: sys::napi_env, holder: Holder) -> bool {
  if holder.reference == 0 || holder.env != env as usize {
    return false;
  }
  with_handle_scope(env, |env| {
    let mut object = ptr::null_mut();
    // SAFETY: the reference was made in this environment and is still
    // alive (its entry was in the registry until now); the out-pointer
    // is a live local.
    let status =
      unsafe { sys::napi_get_reference_value(env, holder.reference as sys::napi_ref, &mut object) };
    if status != sys::Status::napi_ok || object.is_null() {
      return false;
    }
    let mut data = ptr::null_mut();
    let mut length = 0usize;
    // SAFETY: `object` is the ArrayBuffer `hand_out` made, through a handle
    // valid in this scope; the out-pointers are live locals.
    let status = unsafe { sys::napi_get_arraybuffer_info(env, object, &mut data, &mut length) };
    status == sys::Status::napi_ok && data.is_null()
  })
  .unwrap_or(false)
}

/// Runs `body` inside a handle scope of its own (finalizers at teardown
/// run where no handle may be made otherwise); None if none can be opened.
fn with_handle_scope<T>(env: sys::napi_env, body: impl FnOnce(sys::napi_env) -> T) -> Option<T> {
  let mut scope = ptr::null_mut();
  // SAFETY: `env` is alive for the caller's callback; the out-pointer is a
  // live local.
  if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
    return None;
  }
  let result = body(env);
  // SAFETY: `scope` was opened just above in this environment, and every
  // handle made inside it is dead now.
  unsafe { sys::napi_close_handle_scope(env, scope) };
  Some(result)
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

/// Runs when the ArrayBuffer's memory (its backing store) has been freed,
/// or when its environment is torn down. `data` is the mapping's address;
/// `hint` is the store claim that `hand_out` made.
unsafe extern "C" fn finalize_store(env: sys::napi_env, data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the `Arc<Claims>` that `hand_out` leaked for this
  // one finalizer, which Node runs at most once.
  let claims = unsafe { Arc::from_raw(hint as *const Claims) };
  // If no explicit munmap came first, the registry still holds the
  // mapping; the range is ours alone (its store claim was the only one),
  // so it cannot have been given to a newer mapping meanwhile.
  let entry = registry::release_claimed(data as usize, &claims);
  if let Some(entry) = &entry {
    forget_holder(env, entry.holder);
  }
  claims.release(Claim::Store);
  drop(entry);
}

/// Runs once the last thread holding a SharedArrayBuffer of ours has let
/// it go, on whatever thread that happens (a V8 background thread, an
/// exiting worker): no Node-API call here, only the registry and the
/// claims, which are thread-safe. `data` is the mapping's address; `hint`
/// the store claim `hand_out_shared` made.
unsafe extern "C" fn finalize_shared_store(data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the `Arc<Claims>` that `hand_out_shared` leaked for
  // this one finalizer, which Node runs at most once.
  let claims = unsafe { Arc::from_raw(hint as *const Claims) };
  // The registry holds the mapping (a SharedArrayBuffer is never unmapped
  // early), and its range is reserved by this claim alone.
  let entry = registry::release_claimed(data as usize, &claims);
  claims.release(Claim::Store);
  drop(entry);
}

/// Runs when a detached ArrayBuffer object has been collected: no pending
/// operation of Node's can still hold it. `data` is its object claim.
unsafe extern "C" fn finalize_object(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  // SAFETY: `data` is the `Arc<Claims>` that `unmap` leaked for this one
  // finalizer, which Node runs at most once.
  let claims = unsafe { Arc::from_raw(data as *const Claims) };
  claims.release(Claim::Object);
}

/// Detaches `array_buffer` (unless `detach` is false: the facade detaches
/// it itself, or finds it cannot be, see lib/mappings.ts) and unmaps its
/// range, if it is a live mapping of ours; otherwise touches nothing and
/// says so. A buffer left attached shows the placeholder from then on,
/// since its object claim keeps the range until the object is collected.
pub fn unmap(env: sys::napi_env, array_buffer: sys::napi_value, detach: bool) -> Outcome<()> {
  let mut data = ptr::null_mut();
  let mut length = 0usize;
  // SAFETY: `array_buffer` is an ArrayBuffer handle valid for this call;
  // the out-pointers point at live locals.
  let status = unsafe { sys::napi_get_arraybuffer_info(env, array_buffer, &mut data, &mut length) };
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
  // Every mapping in the registry was handed out, so it has claims.
  let Some(claims) = entry.mapping.claims().cloned() else {
    registry::adopt(entry);
    return Err(Failure::NodeApi {
      status: sys::Status::napi_generic_failure,
      call: "munmap (a mapping without claims)",
    });
  };
  // Node's pending operations hold the object, not the backing store
  // (which detaching frees): claim the range until it is collected.
  claims.add(Claim::Object);
  let object_claim = Arc::into_raw(Arc::clone(&claims));
  // SAFETY: `array_buffer` is a valid object handle for this call; the
  // finalizer takes back `object_claim` and reads nothing else.
  let status = unsafe {
    sys::napi_add_finalizer(
      env,
      array_buffer,
      object_claim as *mut c_void,
      Some(finalize_object),
      ptr::null_mut(),
      ptr::null_mut(),
    )
  };
  if let Err(failure) = check(status, "napi_add_finalizer") {
    // SAFETY: no finalizer was registered, so `object_claim` is ours.
    drop(unsafe { Arc::from_raw(object_claim) });
    claims.release(Claim::Object);
    registry::adopt(entry);
    return Err(failure);
  }
  // Detach: once this succeeds no JavaScript value reaches the range.
  let status = if detach {
    // SAFETY: `array_buffer` is a valid ArrayBuffer handle for this call.
    unsafe { sys::napi_detach_arraybuffer(env, array_buffer) }
  } else {
    sys::Status::napi_ok
  };
  if let Err(failure) = check(status, "napi_detach_arraybuffer") {
    // Still reachable: put it back untouched (the object claim ends when
    // the object is collected, as usual).
    registry::adopt(entry);
    return Err(failure);
  }
  forget_holder(env, entry.holder);
  // The shared pages go now (a placeholder takes their place while the
  // claims last), unless a pending wait still holds the mapping.
  drop(entry);
  Ok(())
}
