//! macOS: proc_pidinfo(PROC_PIDTBSDINFO), its status and its start time.
//! It describes only processes of the caller's own user (EPERM otherwise):
//! another user's holder is then Unknown, so alive while it exists.

use nix::libc;

use super::Life;

pub fn life(pid: u32) -> Life {
  let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
  let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
  // SAFETY: `info` is a live buffer of exactly `size` bytes, which
  // proc_pidinfo fills for PROC_PIDTBSDINFO; it reads nothing else.
  let filled = unsafe {
    libc::proc_pidinfo(
      pid as libc::c_int,
      libc::PROC_PIDTBSDINFO,
      0,
      info.as_mut_ptr().cast(),
      size,
    )
  };
  if filled != size {
    return Life::Unknown;
  }
  // SAFETY: proc_pidinfo filled the whole struct (checked just above),
  // and it was zeroed before: every field is initialised.
  let info = unsafe { info.assume_init() };
  if info.pbi_status == libc::SZOMB {
    return Life::Dead;
  }
  Life::Alive(
    info
      .pbi_start_tvsec
      .wrapping_mul(1_000_000)
      .wrapping_add(info.pbi_start_tvusec),
  )
}
