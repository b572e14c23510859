//! Calls on a descriptor that JavaScript holds as a plain number: close,
//! ftruncate, fstat, fchmod, fchown, sizing. JavaScript owns these
//! descriptors (as it owns the numbers `fs.openSync` returns), so here they
//! are only borrowed for the length of one call.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{Gid, Uid};

use crate::core::failure::{Failure, Outcome};
use crate::core::platform::{self, Grow};

/// Lends a descriptor number from JavaScript to `call`, for one system call.
pub fn with_fd<T>(fd: RawFd, call: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
  // SAFETY: `BorrowedFd` asks that the number stay an open descriptor while
  // borrowed, and the borrow cannot leave `call`. If JavaScript closed it
  // (or never opened it) the kernel answers EBADF; if the number was reused
  // the call acts on that descriptor, exactly as `fs.fstatSync(n)` would.
  // Neither case touches memory.
  call(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Sets the size of the object behind `fd` to exactly `length` bytes.
pub fn truncate(fd: RawFd, length: i64) -> Outcome<()> {
  with_fd(fd, |fd| nix::unistd::ftruncate(fd, length))
    .map_err(|errno| platform::explain(&platform::HERE, errno, "ftruncate", false))
}

/// What `fstat` reports, with numbers as Node's `fs.Stats` gives them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
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

pub fn stats(fd: RawFd) -> Outcome<Stats> {
  let stat = with_fd(fd, |fd| fstat(fd)).map_err(Failure::sys("fstat"))?;
  // The casts widen platform integer types (which differ in width and sign
  // between Linux, macOS and FreeBSD) to what JavaScript numbers hold.
  #[allow(clippy::unnecessary_cast)]
  Ok(Stats {
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

pub fn change_mode(fd: RawFd, mode: Mode) -> Outcome<()> {
  if let Some(failure) = platform::unsupported(&platform::HERE, "fchmod") {
    return Err(failure);
  }
  with_fd(fd, |fd| nix::sys::stat::fchmod(fd, mode)).map_err(Failure::sys("fchmod"))
}

/// None leaves the owner or group unchanged.
pub fn change_owner(fd: RawFd, uid: Option<Uid>, gid: Option<Gid>) -> Outcome<()> {
  if let Some(failure) = platform::unsupported(&platform::HERE, "fchown") {
    return Err(failure);
  }
  with_fd(fd, |fd| nix::unistd::fchown(fd, uid, gid)).map_err(Failure::sys("fchown"))
}

/// Reserves the object's pages from 0 to `length`, growing it to `length`
/// if it is smaller, so a full `/dev/shm` fails here with ENOSPC instead of
/// raising SIGBUS on first touch. Returns false where the platform has no
/// such call for shared memory (`platform::Quirks::fallocate`: macOS has
/// no posix_fallocate), having done nothing.
pub fn allocate(fd: RawFd, length: i64) -> Outcome<bool> {
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
pub fn grow(fd: RawFd, length: i64) -> Outcome<i64> {
  with_fd(fd, |fd| grow_locked(fd, length))
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
fn grow_locked(fd: BorrowedFd<'_>, length: i64) -> Outcome<i64> {
  let locked = lock_exclusive(fd);
  let outcome = (|| {
    let size = fstat(fd).map_err(Failure::sys("fstat"))?.st_size;
    match platform::needs_truncate(&platform::HERE, size, length) {
      Grow::Nothing => {}
      Grow::Truncate => nix::unistd::ftruncate(fd, length)
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
pub fn is_read_only(fd: RawFd) -> Outcome<bool> {
  let flags = with_fd(fd, |fd| fcntl(fd, FcntlArg::F_GETFL)).map_err(Failure::sys("fcntl"))?;
  Ok(OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_RDONLY)
}

/// A duplicate of `fd` (F_DUPFD_CLOEXEC), for `SharedMemory.fromFd` given a
/// descriptor another owner holds.
pub fn duplicate(fd: RawFd) -> Outcome<RawFd> {
  with_fd(fd, |fd| fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0))).map_err(Failure::sys("fcntl"))
}
