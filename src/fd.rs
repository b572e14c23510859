//! Calls on a descriptor that JavaScript holds as a plain number: close,
//! ftruncate, fstat, fchmod, fchown. JavaScript owns these descriptors (as
//! it owns the numbers `fs.openSync` returns), so here they are only
//! borrowed for the length of one call.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use napi::{sys, Env};
use napi_derive::napi;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode};
use nix::unistd::{fchown, ftruncate, Gid, Uid};

use crate::args;
use crate::constants::permissions_allowed;
use crate::errors::{report, Failure, Outcome};
use crate::external::check;
use crate::fast_calls;
use crate::platform::{self, Grow};

/// Lends a descriptor number from JavaScript to `call`, for one system call.
pub fn with_fd<T>(fd: RawFd, call: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
  // SAFETY: `BorrowedFd` asks that the number stay an open descriptor while
  // borrowed, and the borrow cannot leave `call`. If JavaScript closed it
  // (or never opened it) the kernel answers EBADF; if the number was reused
  // the call acts on that descriptor, exactly as `fs.fstatSync(n)` would.
  // Neither case touches memory.
  call(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// A length for ftruncate: a number up to 2^53 - 1, or a bigint up to
/// 2^63 - 1 (a number needs no BigInt made for it).
fn file_length(env: sys::napi_env, value: sys::napi_value) -> Outcome<i64> {
  let mut kind = sys::ValueType::napi_undefined;
  // SAFETY: `value` is a handle valid for this call; `kind` a live local.
  let status = unsafe { sys::napi_typeof(env, value, &mut kind) };
  check(status, "napi_typeof")?;
  if kind == sys::ValueType::napi_number {
    let length = args::byte_count(fast_calls::number(env, value, "length")?, "length")?;
    return Ok(length as i64);
  }
  if kind != sys::ValueType::napi_bigint {
    return Err(Failure::InvalidValue(
      "The argument 'length' must be a number or a bigint".into(),
    ));
  }
  let mut length = 0i64;
  let mut lossless = false;
  // SAFETY: `value` is a bigint handle valid for this call; both
  // out-pointers point at live locals.
  let status = unsafe { sys::napi_get_value_bigint_int64(env, value, &mut length, &mut lossless) };
  check(status, "napi_get_value_bigint_int64")?;
  if !lossless || length < 0 {
    return Err(Failure::OutOfRange(format!(
      "The value of \"length\" is out of range. It must be >= 0 and <= {}",
      i64::MAX
    )));
  }
  Ok(length)
}

/// `shmFtruncate(fd, length)`: sets the size of the object behind `fd` to
/// exactly `length` bytes. A plain callback: see `fast_calls`.
pub unsafe extern "C" fn shm_ftruncate(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[fd, length]| {
    let fd = fast_calls::fd(env, fd)?;
    let length = file_length(env, length)?;
    with_fd(fd, |fd| ftruncate(fd, length))
      .map_err(|errno| platform::explain(&platform::HERE, errno, "ftruncate", false))
  })
}

/// What `fstat` reports, with numbers as Node's `fs.Stats` gives them.
#[napi(object)]
pub struct ShmStats {
  pub size: f64,
  pub mode: u32,
  pub uid: u32,
  pub gid: u32,
  pub ino: f64,
  pub dev: f64,
  pub nlink: f64,
  pub atime_ms: f64,
  pub mtime_ms: f64,
  pub ctime_ms: f64,
}

fn millis(seconds: i64, nanoseconds: i64) -> f64 {
  seconds as f64 * 1000.0 + nanoseconds as f64 / 1_000_000.0
}

/// The size of the object behind `fd`, for the checks before mapping.
pub fn object_size(fd: RawFd) -> Outcome<u64> {
  let stat = with_fd(fd, |fd| fstat(fd)).map_err(Failure::sys("fstat"))?;
  Ok(stat.st_size.max(0) as u64)
}

#[napi]
pub fn shm_fstat(env: Env, fd: f64) -> napi::Result<ShmStats> {
  let outcome =
    args::fd(fd).and_then(|fd| with_fd(fd, |fd| fstat(fd)).map_err(Failure::sys("fstat")));
  let stat = report(&env, outcome)?;
  // The casts widen platform integer types (which differ in width and sign
  // between Linux, macOS and FreeBSD) to what JavaScript numbers hold.
  #[allow(clippy::unnecessary_cast)]
  Ok(ShmStats {
    size: stat.st_size as f64,
    mode: stat.st_mode as u32,
    uid: stat.st_uid as u32,
    gid: stat.st_gid as u32,
    ino: stat.st_ino as f64,
    dev: stat.st_dev as f64,
    nlink: stat.st_nlink as f64,
    atime_ms: millis(stat.st_atime as i64, stat.st_atime_nsec as i64),
    mtime_ms: millis(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
    ctime_ms: millis(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
  })
}

#[napi]
pub fn shm_fchmod(env: Env, fd: f64, mode: f64) -> napi::Result<()> {
  let outcome = (|| {
    let fd = args::fd(fd)?;
    let mode = args::bits_within(mode, permissions_allowed(), "permissions")?;
    let mode = Mode::from_bits_truncate(mode as nix::libc::mode_t);
    if let Some(failure) = platform::unsupported(&platform::HERE, "fchmod") {
      return Err(failure);
    }
    with_fd(fd, |fd| fchmod(fd, mode)).map_err(Failure::sys("fchmod"))
  })();
  report(&env, outcome)
}

/// An owner or group id: -1 leaves it unchanged, as with `fs.fchownSync`.
fn id_arg(value: f64, what: &str) -> Outcome<Option<u32>> {
  let id = args::integer_in(value, what, -1.0, f64::from(u32::MAX - 1))?;
  Ok((id >= 0.0).then_some(id as u32))
}

#[napi]
pub fn shm_fchown(env: Env, fd: f64, uid: f64, gid: f64) -> napi::Result<()> {
  let outcome = (|| {
    let fd = args::fd(fd)?;
    let uid = id_arg(uid, "uid")?.map(Uid::from_raw);
    let gid = id_arg(gid, "gid")?.map(Gid::from_raw);
    if let Some(failure) = platform::unsupported(&platform::HERE, "fchown") {
      return Err(failure);
    }
    with_fd(fd, |fd| fchown(fd, uid, gid)).map_err(Failure::sys("fchown"))
  })();
  report(&env, outcome)
}

/// Reserves the object's pages from 0 to `length`, growing it to `length`
/// if it is smaller, so a full `/dev/shm` fails here with ENOSPC instead of
/// raising SIGBUS on first touch. Returns false where the platform has no
/// such call for shared memory (`platform::Quirks::fallocate`: macOS has
/// no posix_fallocate), having done nothing.
#[napi]
pub fn shm_allocate(env: Env, fd: f64, length: f64) -> napi::Result<bool> {
  let outcome = (|| {
    let fd = args::fd(fd)?;
    let length = args::byte_count(length, "length")?;
    allocate(fd, length as i64)
  })();
  report(&env, outcome)
}

fn allocate(fd: RawFd, length: i64) -> Outcome<bool> {
  if !platform::HERE.fallocate {
    return Ok(false);
  }
  if length > 0 {
    fallocate(fd, length)?;
  }
  Ok(true)
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn fallocate(fd: RawFd, length: i64) -> Outcome<()> {
  with_fd(fd, |fd| nix::fcntl::posix_fallocate(fd, 0, length))
    .map_err(Failure::sys("posix_fallocate"))
}

/// Not reached: the table says no posix_fallocate here.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn fallocate(_fd: RawFd, _length: i64) -> Outcome<()> {
  Err(Failure::Sys {
    errno: nix::errno::Errno::ENOTSUP,
    syscall: "posix_fallocate",
  })
}

/// Grows the object behind `fd` to `length` bytes if it is smaller, and
/// never shrinks it, also when other processes grow it at the same time:
/// a shrink under another process's mapping would kill it with SIGBUS on
/// its next touch past the new end. Returns the size it found.
#[napi]
pub fn shm_grow(env: Env, fd: f64, length: f64) -> napi::Result<f64> {
  let outcome = (|| {
    let fd = args::fd(fd)?;
    let length = args::byte_count(length, "length")?;
    with_fd(fd, |fd| grow(fd, length as i64))
  })();
  report(&env, outcome).map(|size| size as f64)
}

/// fstat, then ftruncate if smaller, under an exclusive `flock` on the
/// object, which every posix-shm process that grows it takes: between one
/// process's fstat and its ftruncate, no other can grow it (and be shrunk
/// back). A process that grows it without posix-shm is not held back.
/// posix-shm holds the lock for two system calls; someone else may hold it
/// for good (`flock /dev/shm/x node app.js` locks the very object), so the
/// wait for it is bounded (`LOCK_PATIENCE`), and past that, or where the
/// object cannot be locked, the two calls run unguarded. Where an object
/// can be sized only once (macOS), one that has a smaller size is refused
/// with an EINVAL that says so (`platform::needs_truncate`).
fn grow(fd: BorrowedFd<'_>, length: i64) -> Outcome<i64> {
  let locked = lock_exclusive(fd);
  let outcome = (|| {
    let size = fstat(fd).map_err(Failure::sys("fstat"))?.st_size;
    match platform::needs_truncate(&platform::HERE, size, length) {
      Grow::Nothing => {}
      Grow::Truncate => ftruncate(fd, length)
        .map_err(|errno| platform::explain(&platform::HERE, errno, "ftruncate", false))?,
      Grow::Refused => return Err(platform::grow_refused(&platform::HERE, size, length)),
    }
    Ok(size)
  })();
  if locked {
    // SAFETY: as in `lock_exclusive`; unlocking a lock we hold.
    unsafe { nix::libc::flock(fd.as_raw_fd(), nix::libc::LOCK_UN) };
  }
  outcome
}

/// How long `grow` waits for another holder of the object's lock.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes an exclusive `flock` on `fd` without blocking, retrying for at
/// most `LOCK_PATIENCE`; whether it got it.
fn lock_exclusive(fd: BorrowedFd<'_>) -> bool {
  let start = std::time::Instant::now();
  let mut tries: u32 = 0;
  loop {
    // SAFETY: flock takes a descriptor number (borrowed, open for this
    // call) and an operation; it touches no memory of ours.
    let result =
      unsafe { nix::libc::flock(fd.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
    if result == 0 {
      return true;
    }
    match nix::errno::Errno::last() {
      nix::errno::Errno::EINTR => continue,
      nix::errno::Errno::EWOULDBLOCK if start.elapsed() < LOCK_PATIENCE => {
        // Another posix-shm process is between its fstat and ftruncate:
        // microseconds, unless the scheduler took its core away.
        tries += 1;
        if tries < 64 {
          std::thread::yield_now();
        } else {
          std::thread::sleep(std::time::Duration::from_micros(200));
        }
      }
      _ => return false,
    }
  }
}

/// Whether `fd` was opened read-only (its access mode is O_RDONLY).
#[napi]
pub fn shm_is_read_only(env: Env, fd: f64) -> napi::Result<bool> {
  let outcome = args::fd(fd).and_then(|fd| {
    let flags = with_fd(fd, |fd| fcntl(fd, FcntlArg::F_GETFL)).map_err(Failure::sys("fcntl"))?;
    Ok(OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_RDONLY)
  });
  report(&env, outcome)
}

/// A duplicate of `fd` (F_DUPFD_CLOEXEC), for `SharedMemory.fromFd` given a
/// descriptor another owner holds.
#[napi]
pub fn shm_duplicate(env: Env, fd: f64) -> napi::Result<i32> {
  let outcome = args::fd(fd).and_then(|fd| {
    with_fd(fd, |fd| fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0))).map_err(Failure::sys("fcntl"))
  });
  report(&env, outcome)
}
