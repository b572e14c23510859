//! The flag and permission values of the platform this binary was built
//! for. They differ between Linux, macOS and FreeBSD (`O_CREAT` is 0o100 on
//! Linux and 0x200 on macOS), so the facade reads them from here instead of
//! keeping a table of its own.

use std::sync::LazyLock;

use napi_derive::napi;
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
fn mode_bits(mode: Mode) -> u32 {
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

#[napi(object)]
pub struct PlatformConstants {
  pub o_rdonly: u32,
  pub o_rdwr: u32,
  pub o_creat: u32,
  pub o_excl: u32,
  pub o_trunc: u32,
  pub prot_none: u32,
  pub prot_read: u32,
  pub prot_write: u32,
  pub prot_exec: u32,
  pub s_irusr: u32,
  pub s_iwusr: u32,
  pub s_ixusr: u32,
  pub s_irwxu: u32,
  pub s_irgrp: u32,
  pub s_iwgrp: u32,
  pub s_ixgrp: u32,
  pub s_irwxg: u32,
  pub s_iroth: u32,
  pub s_iwoth: u32,
  pub s_ixoth: u32,
  pub s_irwxo: u32,
  pub page_size: f64,
}

/// The running platform's values of every flag the API accepts.
#[napi]
pub fn platform_constants() -> PlatformConstants {
  let mode = mode_bits;
  PlatformConstants {
    o_rdonly: OFlag::O_RDONLY.bits() as u32,
    o_rdwr: OFlag::O_RDWR.bits() as u32,
    o_creat: OFlag::O_CREAT.bits() as u32,
    o_excl: OFlag::O_EXCL.bits() as u32,
    o_trunc: OFlag::O_TRUNC.bits() as u32,
    prot_none: ProtFlags::PROT_NONE.bits() as u32,
    prot_read: ProtFlags::PROT_READ.bits() as u32,
    prot_write: ProtFlags::PROT_WRITE.bits() as u32,
    prot_exec: ProtFlags::PROT_EXEC.bits() as u32,
    s_irusr: mode(Mode::S_IRUSR),
    s_iwusr: mode(Mode::S_IWUSR),
    s_ixusr: mode(Mode::S_IXUSR),
    s_irwxu: mode(Mode::S_IRWXU),
    s_irgrp: mode(Mode::S_IRGRP),
    s_iwgrp: mode(Mode::S_IWGRP),
    s_ixgrp: mode(Mode::S_IXGRP),
    s_irwxg: mode(Mode::S_IRWXG),
    s_iroth: mode(Mode::S_IROTH),
    s_iwoth: mode(Mode::S_IWOTH),
    s_ixoth: mode(Mode::S_IXOTH),
    s_irwxo: mode(Mode::S_IRWXO),
    page_size: page_size() as f64,
  }
}
