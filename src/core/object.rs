//! Named shared memory objects: `shm_open`, `shm_unlink`, and the anonymous
//! open (the Lisp original's `shm-open*`), which makes an object that never
//! has a name where the system allows it: `memfd_create` on Linux,
//! `SHM_ANON` on FreeBSD. macOS has neither, and creates under a random
//! name that it unlinks at once; for that moment a process of the same
//! user that guesses or lists the name could open it.

use std::os::fd::{OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;

use crate::core::args;
use crate::core::constants::{open_flags_allowed, permissions_allowed};
use crate::core::failure::{Failure, Outcome};
use crate::core::platform;

/// Open flags from a JavaScript number: only those `shm_open` accepts
/// from us, and never truncate with read-only.
pub fn open_flags(value: f64) -> Outcome<OFlag> {
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

/// Permission bits from a JavaScript number: rwx for user, group, other.
pub fn permissions(value: f64) -> Outcome<Mode> {
  let bits = args::bits_within(value, permissions_allowed(), "permissions")?;
  Ok(Mode::from_bits_truncate(bits as nix::libc::mode_t))
}

/// The facade normalizes names first; this refuses, for direct callers,
/// what would not name one object: no leading '/', nothing after it, '.'
/// or '..' (glibc would open /dev/shm itself or /dev), or a second '/'.
/// A name past the platform's length limit (`platform::name_fits`) is
/// ENAMETOOLONG from both `shm_open` and `shm_unlink` everywhere, before
/// the system call: glibc says ENAMETOOLONG only just past NAME_MAX and
/// EINVAL beyond, macOS's shm_unlink says EINVAL.
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
  if !platform::name_fits(&platform::HERE, name) {
    return Err(Failure::Sys {
      errno: Errno::ENAMETOOLONG,
      syscall,
    });
  }
  Ok(())
}

/// Opens (or creates) the object `name`.
pub fn open_named(name: &str, flags: OFlag, mode: Mode) -> Outcome<OwnedFd> {
  check_name(name, "shm_open")?;
  shm_open(name, flags, mode).map_err(|errno| {
    let truncating = flags.contains(OFlag::O_TRUNC);
    platform::explain(&platform::HERE, errno, "shm_open", truncating)
  })
}

/// Removes the name `name`.
pub fn unlink_named(name: &str) -> Outcome<()> {
  check_name(name, "shm_unlink")?;
  shm_unlink(name).map_err(Failure::sys("shm_unlink"))
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
#[cfg_attr(any(target_os = "linux", target_os = "freebsd"), allow(dead_code))]
fn open_by_random_name(flags: OFlag, mode: Mode, attempts: u32) -> Outcome<OwnedFd> {
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

/// An object that no name reaches, only the returned descriptor (and
/// whoever it is passed to). `sealable`: Linux only, see `seal`.
#[cfg(target_os = "linux")]
pub fn open_anonymous(
  flags: OFlag,
  mode: Mode,
  _attempts: u32,
  sealable: bool,
) -> Outcome<OwnedFd> {
  use nix::sys::memfd::{memfd_create, MFdFlags};
  let mut memfd_flags = MFdFlags::MFD_CLOEXEC;
  if sealable {
    memfd_flags |= MFdFlags::MFD_ALLOW_SEALING;
  }
  // The name shows only in /proc/<pid>/maps and fd links; nothing opens by it.
  let fd = memfd_create(c"posix-shm", memfd_flags).map_err(Failure::sys("memfd_create"))?;
  // shm_open applies the umask to the mode it creates with; do the same.
  nix::sys::stat::fchmod(&fd, mode & !current_umask()).map_err(Failure::sys("fchmod"))?;
  if flags.contains(OFlag::O_RDWR) {
    return Ok(fd);
  }
  // A memfd is always opened read-write; reopening it through /proc gives
  // a read-only descriptor to the same object.
  let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
  nix::fcntl::open(
    path.as_str(),
    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
    Mode::empty(),
  )
  .map_err(Failure::sys("open"))
}

/// The process's umask, read without changing it (Linux 4.7 and later
/// report it in /proc/self/status); 022 where it cannot be read.
#[cfg(target_os = "linux")]
fn current_umask() -> Mode {
  let bits = std::fs::read_to_string("/proc/self/status")
    .ok()
    .and_then(|status| {
      let line = status.lines().find(|line| line.starts_with("Umask:"))?;
      nix::libc::mode_t::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
    })
    .unwrap_or(0o022);
  Mode::from_bits_truncate(bits)
}

#[cfg(target_os = "freebsd")]
pub fn open_anonymous(
  flags: OFlag,
  mode: Mode,
  _attempts: u32,
  _sealable: bool,
) -> Outcome<OwnedFd> {
  use std::os::fd::FromRawFd;
  // SAFETY: SHM_ANON is the documented sentinel path for an anonymous
  // object; shm_open reads nothing through it. The returned number is a
  // new descriptor that nothing else owns.
  let fd = unsafe {
    nix::libc::shm_open(
      nix::libc::SHM_ANON,
      (flags | OFlag::O_CLOEXEC).bits(),
      mode.bits(),
    )
  };
  if fd < 0 {
    return Err(Failure::Sys {
      errno: Errno::last(),
      syscall: "shm_open",
    });
  }
  // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
  Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub fn open_anonymous(
  flags: OFlag,
  mode: Mode,
  attempts: u32,
  _sealable: bool,
) -> Outcome<OwnedFd> {
  open_by_random_name(flags, mode, attempts)
}

/// Seals the size of the object behind `fd`, made by `open_anonymous`
/// with `sealable`: from then on nobody, in any process, can shrink or grow
/// it (EPERM), or add or remove a seal. A peer that receives the
/// descriptor can then never shrink it under this process's mapping.
#[cfg(target_os = "linux")]
pub fn seal(fd: RawFd) -> Outcome<()> {
  use crate::core::descriptor::with_fd;
  use nix::fcntl::{fcntl, FcntlArg, SealFlag};
  let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
  with_fd(fd, |fd| fcntl(fd, FcntlArg::F_ADD_SEALS(seals)))
    .map(drop)
    .map_err(Failure::sys("fcntl"))
}

#[cfg(not(target_os = "linux"))]
pub fn seal(_fd: RawFd) -> Outcome<()> {
  Err(Failure::Sys {
    errno: Errno::ENOTSUP,
    syscall: "fcntl",
  })
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
  fn names_past_this_platforms_limit_are_too_long_for_open_and_unlink() {
    let limit = platform::HERE.name_max - usize::from(platform::HERE.name_max_counts_slash);
    let longest = format!("/{}", "n".repeat(limit));
    let too_long = format!("/{}", "n".repeat(limit + 1));
    for syscall in ["shm_open", "shm_unlink"] {
      assert!(check_name(&longest, syscall).is_ok());
      assert!(matches!(
        check_name(&too_long, syscall),
        Err(Failure::Sys { errno: Errno::ENAMETOOLONG, syscall: s }) if s == syscall
      ));
    }
  }

  #[test]
  fn random_names_are_distinct_and_fit_macos() {
    let a = random_name().unwrap();
    let b = random_name().unwrap();
    assert_ne!(a, b);
    assert!(platform::name_fits(&platform::MACOS, &a), "{a}");
    assert!(a.starts_with("/psm_"));
  }

  #[test]
  fn objects_by_random_name_leave_no_name() {
    let fd = open_by_random_name(OFlag::O_RDWR, Mode::S_IRUSR | Mode::S_IWUSR, 3).unwrap();
    nix::unistd::ftruncate(&fd, 4096).unwrap();
    // Only a link count says whether a name reaches the object: on macOS
    // st_nlink is always 0, on FreeBSD it counts references.
    if platform::HERE.nlink == platform::Nlink::Links {
      assert_eq!(nix::sys::stat::fstat(&fd).unwrap().st_nlink, 0);
    }
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_sealed_anonymous_object_can_be_neither_shrunk_nor_grown() {
    let fd = open_anonymous(OFlag::O_RDWR, Mode::S_IRUSR | Mode::S_IWUSR, 1, true).unwrap();
    nix::unistd::ftruncate(&fd, 8192).unwrap();
    seal(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    assert_eq!(nix::unistd::ftruncate(&fd, 4096), Err(Errno::EPERM));
    assert_eq!(nix::unistd::ftruncate(&fd, 16384), Err(Errno::EPERM));
    assert_eq!(nix::sys::stat::fstat(&fd).unwrap().st_size, 8192);
    // Not sealable: sealing is refused, and the size stays free.
    let plain = open_anonymous(OFlag::O_RDWR, Mode::S_IRUSR | Mode::S_IWUSR, 1, false).unwrap();
    assert_eq!(
      seal(std::os::fd::AsRawFd::as_raw_fd(&plain)).map_err(|f| format!("{f:?}")),
      Err(format!(
        "{:?}",
        Failure::Sys {
          errno: Errno::EPERM,
          syscall: "fcntl"
        }
      ))
    );
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_read_only_anonymous_object_is_read_only() {
    let fd = open_anonymous(OFlag::O_RDONLY, Mode::S_IRUSR | Mode::S_IWUSR, 1, false).unwrap();
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_eq!(
      OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE,
      OFlag::O_RDONLY
    );
  }
}
