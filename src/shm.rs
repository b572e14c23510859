//! Named shared memory objects: `shm_open`, `shm_unlink`, and the anonymous
//! open (the Lisp original's `shm-open*`).

use std::os::fd::{IntoRawFd, OwnedFd};

use napi::{sys, Env};
use napi_derive::napi;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;

use crate::args;
use crate::constants::{open_flags_allowed, permissions_allowed};
use crate::errors::{report, Failure, Outcome};
use crate::fast_calls;

fn open_flags(value: f64) -> Outcome<OFlag> {
  let bits = args::bits_within(value, open_flags_allowed(), "openFlags")?;
  let flags = OFlag::from_bits_truncate(bits as nix::libc::c_int);
  // O_RDONLY is 0 on every platform we build for, so "read-only" is the
  // absence of O_RDWR; only O_WRONLY (not in the allowed set) is refused.
  // O_TRUNC with O_RDONLY is undefined in POSIX and truncates on Linux,
  // emptying the object under every peer's mapping (SIGBUS on next touch).
  if flags.contains(OFlag::O_TRUNC) && !flags.contains(OFlag::O_RDWR) {
    return Err(Failure::InvalidValue(
      "The argument 'openFlags' must not combine truncate (O_TRUNC) with read-only: only a read-write open may truncate"
        .into(),
    ));
  }
  Ok(flags)
}

fn permissions(value: f64) -> Outcome<Mode> {
  let bits = args::bits_within(value, permissions_allowed(), "permissions")?;
  Ok(Mode::from_bits_truncate(bits as nix::libc::mode_t))
}

/// The facade normalizes names first; this refuses, for direct callers,
/// what would not name one object: no leading '/', nothing after it, '.'
/// or '..' (glibc would open /dev/shm itself or /dev), or a second '/'.
/// Linux keeps shm objects as files in `/dev/shm`, so a name may be at most
/// NAME_MAX (255) bytes after its slash; glibc reports ENAMETOOLONG only
/// just past that and EINVAL beyond, so we report the limit one way.
fn check_name(name: &str, syscall: &'static str) -> Outcome<()> {
  let rest = name.strip_prefix('/').unwrap_or("");
  if rest.is_empty() || rest == "." || rest == ".." || rest.contains('/') {
    return Err(Failure::InvalidValue(format!(
      "The argument 'name' must be '/' followed by one or more characters other than '/', and not '.' or '..'. Received {name:?}"
    )));
  }
  if rest.contains('\0') {
    return Err(Failure::InvalidValue(
      "The argument 'name' must not contain NUL bytes".into(),
    ));
  }
  if cfg!(target_os = "linux") && rest.len() > nix::libc::NAME_MAX as usize {
    return Err(Failure::Sys {
      errno: Errno::ENAMETOOLONG,
      syscall,
    });
  }
  Ok(())
}

/// `shmOpenNamed(name, openFlags, mode)`: opens (or creates) the object
/// `name` and returns its descriptor, which from then on belongs to
/// JavaScript. A plain callback: see `fast_calls`.
pub unsafe extern "C" fn shm_open_named(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[name, open_flags_bits, mode]| {
    let fd = fast_calls::with_name(env, name, "shm_open", |name| {
      check_name(name, "shm_open")?;
      let flags = open_flags(fast_calls::number(env, open_flags_bits, "openFlags")?)?;
      let mode = permissions(fast_calls::number(env, mode, "permissions")?)?;
      shm_open(name, flags, mode).map_err(Failure::sys("shm_open"))
    })?;
    Ok(fd.into_raw_fd())
  })
}

/// `shmUnlinkNamed(name)`: removes the name. A plain callback.
pub unsafe extern "C" fn shm_unlink_named(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  fast_calls::call(env, info, |[name]| {
    fast_calls::with_name(env, name, "shm_unlink", |name| {
      check_name(name, "shm_unlink")?;
      shm_unlink(name).map_err(Failure::sys("shm_unlink"))
    })
  })
}

/// An unguessable name: 96 bits from the operating system's random source.
/// `/psm_` plus 24 hex digits is 29 bytes, inside macOS's 31-byte limit.
fn random_name() -> Outcome<String> {
  let mut bytes = [0u8; 12];
  getrandom::fill(&mut bytes).map_err(|err| Failure::Sys {
    errno: err
      .raw_os_error()
      .map(Errno::from_raw)
      .unwrap_or(Errno::EIO),
    syscall: "getrandom",
  })?;
  let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
  Ok(format!("/psm_{hex}"))
}

/// Creates an object under a fresh random name and unlinks it at once, so
/// only the returned descriptor reaches it. Only EEXIST is retried, at most
/// `attempts` times; any other failure is reported as it is.
fn open_anonymous(flags: OFlag, mode: Mode, attempts: u32) -> Outcome<OwnedFd> {
  let flags = flags | OFlag::O_CREAT | OFlag::O_EXCL;
  let mut last = Errno::EEXIST;
  for _ in 0..attempts {
    let name = random_name()?;
    match shm_open(name.as_str(), flags, mode) {
      Ok(fd) => {
        // Unlink before anything else so the name is visible for as short
        // a time as possible; if that fails, `fd` is closed on return.
        shm_unlink(name.as_str()).map_err(Failure::sys("shm_unlink"))?;
        return Ok(fd);
      }
      Err(Errno::EEXIST) => last = Errno::EEXIST,
      Err(errno) => {
        return Err(Failure::Sys {
          errno,
          syscall: "shm_open",
        })
      }
    }
  }
  Err(Failure::Sys {
    errno: last,
    syscall: "shm_open",
  })
}

#[napi]
pub fn shm_open_anonymous(
  env: Env,
  open_flags_bits: f64,
  mode: f64,
  attempts: f64,
) -> napi::Result<i32> {
  let outcome = (|| {
    let attempts = args::integer_in(attempts, "attempts", 1.0, f64::from(u32::MAX))? as u32;
    let fd = open_anonymous(open_flags(open_flags_bits)?, permissions(mode)?, attempts)?;
    Ok(fd.into_raw_fd())
  })();
  report(&env, outcome)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn truncating_read_only_is_refused() {
    let read_only_truncate = (OFlag::O_RDONLY | OFlag::O_TRUNC).bits() as f64;
    assert!(matches!(
      open_flags(read_only_truncate),
      Err(Failure::InvalidValue(_))
    ));
    let read_write_truncate = (OFlag::O_RDWR | OFlag::O_TRUNC).bits() as f64;
    assert!(open_flags(read_write_truncate).is_ok());
  }

  #[test]
  fn random_names_are_distinct_and_fit_macos() {
    let a = random_name().unwrap();
    let b = random_name().unwrap();
    assert_ne!(a, b);
    assert!(a.len() <= 31, "{a}");
    assert!(a.starts_with("/psm_"));
  }

  #[test]
  fn anonymous_objects_leave_no_name() {
    let fd = open_anonymous(OFlag::O_RDWR, Mode::S_IRUSR | Mode::S_IWUSR, 3).unwrap();
    nix::unistd::ftruncate(&fd, 4096).unwrap();
    assert_eq!(nix::sys::stat::fstat(&fd).unwrap().st_nlink, 0);
  }
}
