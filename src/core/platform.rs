//! Every platform's limits and quirks of POSIX shared memory, in one place.
//!
//! One [`Quirks`] table per system, each field with the source it comes
//! from. All three tables are defined on every system, so the rules below
//! (pure functions over a table) are unit-tested on the host for each of
//! them; [`HERE`] is the table of the system being built for. Only the
//! Linux table has been exercised by running code: the macOS and FreeBSD
//! paths are type-checked here, never run.
//!
//! Sources: Linux, `mm/shmem.c` (objects are tmpfs files in `/dev/shm`)
//! and glibc `sysdeps/posix/shm-directory.c` (the name becomes a file name);
//! macOS, xnu `bsd/kern/posix_shm.c`; FreeBSD, `sys/kern/uipc_shm.c` and
//! `shm_open(2)`.

use nix::errno::Errno;

use crate::core::failure::Failure;

/// What `st_nlink` from `fstat` means for a shared memory object.
// Only one variant is built outside the tests (see `Quirks::nlink`).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nlink {
  /// A link count: 1 while the name exists, 0 once unlinked or for an
  /// object that never had one (Linux: a file in `/dev/shm`, or a memfd).
  Links,
  /// Always 0: `fstat` does not fill it in (macOS).
  Zero,
  /// A reference count of the object (FreeBSD), which says nothing about
  /// whether a name reaches it.
  References,
}

/// One system's limits and quirks of POSIX shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
  /// The system's name, for messages.
  pub os: &'static str,
  /// The longest name, in bytes (UTF-8, without the terminating NUL).
  pub name_max: usize,
  /// Whether `name_max` counts the leading '/'.
  pub name_max_counts_slash: bool,
  /// `ftruncate` sizes an object once only; a second call is EINVAL.
  pub truncate_once: bool,
  /// `shm_open` with `O_TRUNC` of an object that has a size is EINVAL.
  pub o_trunc_of_sized_refused: bool,
  /// `fstat` reports the size rounded up to a whole page.
  // Read by `reported_size`, which only the tests call: growing uses the
  // size as fstat reports it, rounded or not.
  #[cfg_attr(not(test), allow(dead_code))]
  pub size_rounded_to_page: bool,
  /// `posix_fallocate` works on a shared memory object.
  pub fallocate: bool,
  /// `fchmod` works on a shared memory object.
  pub fchmod: bool,
  /// `fchown` works on a shared memory object.
  pub fchown: bool,
  /// What `st_nlink` means. Nothing reads it (`fstat` passes st_nlink
  /// on as it is); it is here so the difference is written down.
  #[cfg_attr(not(test), allow(dead_code))]
  pub nlink: Nlink,
}

// The three tables below are compiled on every system so the tests see
// all three; outside the tests only `HERE` is read.

/// Linux: glibc's `shm_open` opens `/dev/shm/<name>`, a tmpfs file
/// (`mm/shmem.c`), so it behaves as a file does.
#[cfg_attr(not(test), allow(dead_code))]
pub const LINUX: Quirks = Quirks {
  os: "Linux",
  // NAME_MAX (255) for the file name in /dev/shm, which is the name
  // without its slash (glibc `shm-directory.c`).
  name_max: 255,
  name_max_counts_slash: false,
  // shmem_setattr: a tmpfs file can be resized any number of times.
  truncate_once: false,
  // O_TRUNC of a tmpfs file empties it.
  o_trunc_of_sized_refused: false,
  // i_size is exactly what ftruncate set.
  size_rounded_to_page: false,
  // shmem_fallocate.
  fallocate: true,
  // A file: chmod and chown as any other.
  fchmod: true,
  fchown: true,
  nlink: Nlink::Links,
};

/// macOS: xnu `bsd/kern/posix_shm.c`.
#[cfg_attr(not(test), allow(dead_code))]
pub const MACOS: Quirks = Quirks {
  os: "macOS",
  // PSHMNAMLEN is 31, and the name is opaque: its leading '/' counts.
  // shm_open says ENAMETOOLONG past it, shm_unlink EINVAL.
  name_max: 31,
  name_max_counts_slash: true,
  // pshm_truncate: EINVAL once the object has PSHM_ALLOCATED.
  truncate_once: true,
  // shm_open_existing with O_TRUNC of an allocated object: EINVAL.
  o_trunc_of_sized_refused: true,
  // pshm_truncate stores the size rounded to the page (mach_vm_round_page)
  // and pshm_stat reports that.
  size_rounded_to_page: true,
  // macOS has no posix_fallocate at all.
  fallocate: false,
  // pshmops has no chmod or chown entry.
  fchmod: false,
  fchown: false,
  // pshm_stat fills only mode, uid, gid and size.
  nlink: Nlink::Zero,
};

/// FreeBSD: `sys/kern/uipc_shm.c`.
#[cfg_attr(not(test), allow(dead_code))]
pub const FREEBSD: Quirks = Quirks {
  os: "FreeBSD",
  // kern_shm_open2 copies the path with copyinstr into MAXPATHLEN (1024)
  // bytes including the NUL, slash and all (less the jail's root path
  // inside a jail, where the kernel's own ENAMETOOLONG comes sooner).
  name_max: 1023,
  name_max_counts_slash: true,
  // shm_dotruncate: any number of times.
  truncate_once: false,
  // O_TRUNC empties it (shm_dotruncate to 0).
  o_trunc_of_sized_refused: false,
  // shm_size is exactly what was set.
  size_rounded_to_page: false,
  // .fo_fallocate = shm_fallocate (grows the object as needed).
  fallocate: true,
  // .fo_chmod = shm_chmod, .fo_chown = shm_chown.
  fchmod: true,
  fchown: true,
  // shm_stat: st_nlink is shm_refs.
  nlink: Nlink::References,
};

/// The table of the system being built for.
#[cfg(target_os = "linux")]
pub const HERE: Quirks = LINUX;
#[cfg(target_os = "macos")]
pub const HERE: Quirks = MACOS;
#[cfg(target_os = "freebsd")]
pub const HERE: Quirks = FREEBSD;
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
compile_error!("posix-shm knows the shared memory quirks of Linux, macOS and FreeBSD only");

/// Whether `name` (with its leading '/') is within the system's length
/// limit.
pub fn name_fits(quirks: &Quirks, name: &str) -> bool {
  let counted = if quirks.name_max_counts_slash {
    name.len()
  } else {
    name.strip_prefix('/').unwrap_or(name).len()
  };
  counted <= quirks.name_max
}

/// What growing an object of `current` bytes (as `fstat` reports it) to
/// at least `wanted` bytes takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grow {
  /// It is big enough already.
  Nothing,
  /// ftruncate to `wanted`.
  Truncate,
  /// It has a size, too small, and cannot be sized again (macOS).
  Refused,
}

/// How to grow an object of `current` bytes to `wanted`, never shrinking
/// it. Where `fstat` rounds up to a page, `current` is the rounded size,
/// which is what can be mapped.
pub fn needs_truncate(quirks: &Quirks, current: i64, wanted: i64) -> Grow {
  if current >= wanted {
    Grow::Nothing
  } else if quirks.truncate_once && current > 0 {
    Grow::Refused
  } else {
    Grow::Truncate
  }
}

/// The size `fstat` reports for an object sized to `size` bytes, with
/// pages of `page` bytes.
#[cfg_attr(not(test), allow(dead_code))]
pub fn reported_size(quirks: &Quirks, size: u64, page: u64) -> u64 {
  if quirks.size_rounded_to_page && page > 0 {
    size.div_ceil(page) * page
  } else {
    size
  }
}

/// The failure for growing an object of `current` bytes to `wanted` where
/// the platform sizes an object only once.
pub fn grow_refused(quirks: &Quirks, current: i64, wanted: i64) -> Failure {
  Failure::Platform {
    errno: Errno::EINVAL,
    syscall: "ftruncate",
    detail: format!(
      "{} sizes a shared memory object only once: it has {current} bytes, fewer than the {wanted} asked for, \
       and cannot be grown",
      quirks.os
    ),
  }
}

/// Why `syscall` failed with `errno`, where the platform's rules explain
/// it better than the errno does: an EINVAL from `ftruncate` of a sized
/// object, or from `shm_open` with `O_TRUNC` (`truncating`), on macOS.
pub fn explain(quirks: &Quirks, errno: Errno, syscall: &'static str, truncating: bool) -> Failure {
  let detail = match (errno, syscall) {
    (Errno::EINVAL, "ftruncate") if quirks.truncate_once => Some(format!(
      "{} sizes a shared memory object only once; this one may have a size already",
      quirks.os
    )),
    (Errno::EINVAL, "shm_open") if truncating && quirks.o_trunc_of_sized_refused => Some(format!(
      "{} refuses truncate (O_TRUNC) of a shared memory object that has a size",
      quirks.os
    )),
    _ => None,
  };
  match detail {
    Some(detail) => Failure::Platform {
      errno,
      syscall,
      detail,
    },
    None => Failure::Sys { errno, syscall },
  }
}

/// The failure for `fchmod` or `fchown` where the platform has no such
/// operation on shared memory, before any system call; `None` where it has.
pub fn unsupported(quirks: &Quirks, syscall: &'static str) -> Option<Failure> {
  let supported = match syscall {
    "fchmod" => quirks.fchmod,
    "fchown" => quirks.fchown,
    _ => true,
  };
  (!supported).then(|| Failure::Platform {
    errno: Errno::ENOTSUP,
    syscall,
    detail: format!(
      "{} does not support {syscall} on shared memory objects",
      quirks.os
    ),
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  const ALL: [Quirks; 3] = [LINUX, MACOS, FREEBSD];

  fn name(bytes_after_slash: usize) -> String {
    format!("/{}", "a".repeat(bytes_after_slash))
  }

  #[test]
  fn here_is_the_build_systems_table() {
    #[cfg(target_os = "linux")]
    assert_eq!(HERE, LINUX);
    #[cfg(target_os = "macos")]
    assert_eq!(HERE, MACOS);
    #[cfg(target_os = "freebsd")]
    assert_eq!(HERE, FREEBSD);
  }

  #[test]
  fn name_limits() {
    // macOS: 31 bytes with the slash.
    assert!(name_fits(&MACOS, &name(30)));
    assert!(!name_fits(&MACOS, &name(31)));
    // Linux: 255 bytes after the slash.
    assert!(name_fits(&LINUX, &name(255)));
    assert!(!name_fits(&LINUX, &name(256)));
    // FreeBSD: 1023 bytes with the slash.
    assert!(name_fits(&FREEBSD, &name(1022)));
    assert!(!name_fits(&FREEBSD, &name(1023)));
    // Bytes, not characters: 'é' is two bytes in UTF-8.
    assert!(name_fits(&MACOS, &format!("/{}", "é".repeat(15))));
    assert!(!name_fits(&MACOS, &format!("/{}é", "é".repeat(15))));
  }

  #[test]
  fn growing_never_shrinks_anywhere() {
    for quirks in ALL {
      assert_eq!(needs_truncate(&quirks, 8192, 4096), Grow::Nothing);
      assert_eq!(needs_truncate(&quirks, 4096, 4096), Grow::Nothing);
      assert_eq!(needs_truncate(&quirks, 0, 4096), Grow::Truncate);
      assert_eq!(needs_truncate(&quirks, 0, 0), Grow::Nothing);
    }
  }

  #[test]
  fn a_sized_object_grows_except_on_macos() {
    assert_eq!(needs_truncate(&LINUX, 4096, 8192), Grow::Truncate);
    assert_eq!(needs_truncate(&FREEBSD, 4096, 8192), Grow::Truncate);
    assert_eq!(needs_truncate(&MACOS, 16384, 32768), Grow::Refused);
    let Failure::Platform {
      errno,
      syscall,
      detail,
    } = grow_refused(&MACOS, 16384, 32768)
    else {
      panic!("not a platform failure");
    };
    assert_eq!((errno, syscall), (Errno::EINVAL, "ftruncate"));
    assert!(detail.contains("macOS") && detail.contains("16384") && detail.contains("32768"));
  }

  #[test]
  fn macos_rounds_sizes_to_a_page_and_growing_sees_that() {
    assert_eq!(reported_size(&MACOS, 100, 16384), 16384);
    assert_eq!(reported_size(&MACOS, 16384, 16384), 16384);
    assert_eq!(reported_size(&MACOS, 16385, 16384), 32768);
    assert_eq!(reported_size(&LINUX, 100, 4096), 100);
    assert_eq!(reported_size(&FREEBSD, 100, 4096), 100);
    // Created with 100 bytes by someone else: 16 KiB can be had as it is.
    let current = reported_size(&MACOS, 100, 16384) as i64;
    assert_eq!(needs_truncate(&MACOS, current, 16384), Grow::Nothing);
    assert_eq!(needs_truncate(&MACOS, current, 16385), Grow::Refused);
  }

  #[test]
  fn fallocate_everywhere_but_macos() {
    assert_eq!(ALL.map(|quirks| quirks.fallocate), [true, false, true]);
  }

  #[test]
  fn fchmod_and_fchown_are_refused_on_macos_only() {
    for call in ["fchmod", "fchown"] {
      assert!(unsupported(&LINUX, call).is_none());
      assert!(unsupported(&FREEBSD, call).is_none());
      let Some(Failure::Platform {
        errno,
        syscall,
        detail,
      }) = unsupported(&MACOS, call)
      else {
        panic!("{call} not refused on macOS");
      };
      assert_eq!((errno, syscall), (Errno::ENOTSUP, call));
      assert!(detail.contains("does not support"), "{detail}");
    }
  }

  #[test]
  fn macos_einvals_are_explained_and_others_left_alone() {
    assert!(matches!(
      explain(&MACOS, Errno::EINVAL, "ftruncate", false),
      Failure::Platform {
        errno: Errno::EINVAL,
        ..
      }
    ));
    assert!(matches!(
      explain(&MACOS, Errno::EINVAL, "shm_open", true),
      Failure::Platform {
        errno: Errno::EINVAL,
        ..
      }
    ));
    // Not truncating: an EINVAL from shm_open is something else.
    assert!(matches!(
      explain(&MACOS, Errno::EINVAL, "shm_open", false),
      Failure::Sys {
        errno: Errno::EINVAL,
        syscall: "shm_open"
      }
    ));
    for quirks in [LINUX, FREEBSD] {
      assert!(matches!(
        explain(&quirks, Errno::EINVAL, "ftruncate", false),
        Failure::Sys {
          errno: Errno::EINVAL,
          syscall: "ftruncate"
        }
      ));
      assert!(matches!(
        explain(&quirks, Errno::EINVAL, "shm_open", true),
        Failure::Sys {
          errno: Errno::EINVAL,
          syscall: "shm_open"
        }
      ));
    }
    assert!(matches!(
      explain(&MACOS, Errno::ENOSPC, "ftruncate", false),
      Failure::Sys {
        errno: Errno::ENOSPC,
        ..
      }
    ));
  }

  #[test]
  fn nlink_means_something_different_on_each() {
    assert_eq!(LINUX.nlink, Nlink::Links);
    assert_eq!(MACOS.nlink, Nlink::Zero);
    assert_eq!(FREEBSD.nlink, Nlink::References);
  }
}
