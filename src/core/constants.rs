//! The flag and permission values of the platform this binary was built
//! for, and which of them the API accepts. They differ between Linux, macOS
//! and FreeBSD (`O_CREAT` is 0o100 on Linux and 0x200 on macOS), so the
//! facade reads them from here (`node::constants`) instead of keeping a
//! table of its own.

use std::sync::LazyLock;

use nix::fcntl::OFlag;
use nix::sys::mman::ProtFlags;
use nix::sys::stat::Mode;
use nix::unistd::{sysconf, SysconfVar};

/// Open flags `shm_open` accepts from us.
pub fn open_flags_allowed() -> u32 {
  (OFlag::O_RDONLY | OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_TRUNC).bits() as u32
}

/// Protections `mmap` accepts from us.
pub fn protections_allowed() -> u32 {
  (ProtFlags::PROT_READ | ProtFlags::PROT_WRITE | ProtFlags::PROT_EXEC).bits() as u32
}

/// Permission bits a shared memory object may be given: rwx for user,
/// group and other. Set-id and sticky bits mean nothing for shm objects.
pub fn permissions_allowed() -> u32 {
  mode_bits(Mode::S_IRWXU | Mode::S_IRWXG | Mode::S_IRWXO)
}

/// `mode_t` is 32 bits on Linux and FreeBSD but 16 on macOS, where this
/// cast widens.
#[allow(clippy::useless_conversion)]
pub fn mode_bits(mode: Mode) -> u32 {
  u32::from(mode.bits())
}

/// The size of a page, which `mmap` offsets must be a multiple of.
pub fn page_size() -> u64 {
  // Asked once: every mmap checks its offset against it.
  static PAGE_SIZE: LazyLock<u64> = LazyLock::new(|| {
    // sysconf(_SC_PAGESIZE) cannot fail on any platform we build for; 4096
    // is only a fallback so this never panics.
    match sysconf(SysconfVar::PAGE_SIZE) {
      Ok(Some(size)) if size > 0 => size as u64,
      _ => 4096,
    }
  });
  *PAGE_SIZE
}
