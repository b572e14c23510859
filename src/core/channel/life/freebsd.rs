//! FreeBSD: sysctl kern.proc.pid.<pid>, its state and its start time.

use nix::libc;

use super::Life;

pub fn life(pid: u32) -> Life {
  let mut name = [
    libc::CTL_KERN,
    libc::KERN_PROC,
    libc::KERN_PROC_PID,
    pid as libc::c_int,
  ];
  let mut info = std::mem::MaybeUninit::<libc::kinfo_proc>::zeroed();
  let mut size = std::mem::size_of::<libc::kinfo_proc>();
  // SAFETY: `name` and `info` are live locals of the lengths given; the
  // kernel writes at most `size` bytes into `info` and the length into
  // `size`.
  let status = unsafe {
    libc::sysctl(
      name.as_mut_ptr(),
      name.len() as libc::c_uint,
      info.as_mut_ptr().cast(),
      &mut size,
      std::ptr::null(),
      0,
    )
  };
  if status != 0 || size != std::mem::size_of::<libc::kinfo_proc>() {
    return Life::Unknown;
  }
  // SAFETY: the kernel filled the whole struct (checked just above), and
  // it was zeroed before.
  let info = unsafe { info.assume_init() };
  if info.ki_stat == libc::SZOMB {
    return Life::Dead;
  }
  let start = info.ki_start;
  Life::Alive(
    (start.tv_sec as u64)
      .wrapping_mul(1_000_000)
      .wrapping_add(start.tv_usec as u64),
  )
}
