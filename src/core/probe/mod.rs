//! Reading a word that another process may have cut away, without dying.
//!
//! A peer that shrinks an object under our mapping leaves the pages past
//! its new end unbacked: a load there raises SIGBUS, which by default ends
//! the process. Every load the waits make before (or between) their trips
//! into the kernel goes through `load`, which turns that SIGBUS into an
//! answer, so such a wait fails with EFAULT as a sleeping one does.
//!
//! How: the load is the first instruction of a function written in
//! assembly (`load_word`). A SIGBUS handler, installed once, looks at the
//! faulting thread's program counter; when it is that instruction, it
//! moves it to `load_failed`, which returns a value no 32-bit load can
//! give, and the thread carries on. Any other SIGBUS goes to whatever
//! handled it before (by default: the process ends, as without us). The
//! handler touches nothing but the interrupted context, so it is
//! async-signal-safe. One file per OS says where its context keeps the
//! program counter.
//!
//! What it cannot cover: a handler installed after ours (a JavaScript
//! `process.on('SIGBUS')`, which Node documents as unsafe anyway) replaces
//! it, and the load is then a SIGBUS as before. Under Valgrind the
//! program counter a handler sees is not always the faulting instruction
//! (its translation runs `load_word` inside its caller's block), so there
//! the load is a SIGBUS as before too. Only SIGBUS is handled: Linux and
//! FreeBSD raise it for a page past the end of a shared memory object;
//! macOS cannot shrink one.

use std::ffi::c_int;
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;

use nix::libc;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

#[cfg(target_os = "freebsd")]
use freebsd as platform;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
use macos as platform;

/// The word's page is gone: the object shrank under the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageGone;

/// What `load_failed` returns: more than any 32-bit value.
const FAILED: u64 = u64::MAX;

// Loads the 32-bit word at `address` with acquire ordering (x86 loads are
// acquire; `ldar` on arm64) into the low half of the return register, the
// upper half zero. The load must stay the first instruction: the handler
// recognises a fault by that address.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
unsafe extern "C" fn load_word(address: *const u32) -> u64 {
  core::arch::naked_asm!("mov eax, dword ptr [rdi]", "ret")
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
unsafe extern "C" fn load_word(address: *const u32) -> u64 {
  core::arch::naked_asm!("ldar w0, [x0]", "ret")
}

// Where a faulted `load_word` resumes: nothing of its frame is on the
// stack (the load was its first instruction), so returning from here
// returns to `load_word`'s caller.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
unsafe extern "C" fn load_failed() -> u64 {
  core::arch::naked_asm!("mov rax, -1", "ret")
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
unsafe extern "C" fn load_failed() -> u64 {
  core::arch::naked_asm!("mov x0, #-1", "ret")
}

/// The SIGBUS disposition found when ours was installed; `None` until then
/// (and if installing failed, in which case `load` is a plain load).
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the handler, once per process.
fn install() {
  static INSTALLED: OnceLock<()> = OnceLock::new();
  INSTALLED.get_or_init(|| {
    // SAFETY: sigaction reads `ours` and writes `previous`, two live
    // locals; `previous` is recorded before ours takes over, so the
    // handler always finds what to hand other faults to.
    unsafe {
      let mut previous: libc::sigaction = std::mem::zeroed();
      if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
        return;
      }
      let _ = PREVIOUS.set(previous);
      let mut ours: libc::sigaction = std::mem::zeroed();
      ours.sa_sigaction = on_sigbus as *const () as usize;
      ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
      libc::sigemptyset(&mut ours.sa_mask);
      libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut());
    }
  });
}

extern "C" fn on_sigbus(signal: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  // SAFETY: the kernel passes a valid ucontext_t for a handler installed
  // with SA_SIGINFO; `program_counter` points into it.
  let pc = unsafe { platform::program_counter(context) };
  // SAFETY: `pc` points at the interrupted thread's saved program counter,
  // live for the handler's run; writing it redirects that thread when the
  // handler returns. Only a fault at `load_word`'s single load is
  // redirected, and `load_failed` returns as `load_word` would.
  unsafe {
    if *pc == load_word as *const () as usize {
      *pc = load_failed as *const () as usize;
      return;
    }
  }
  pass_on(signal, info, context);
}

/// Hands a SIGBUS that is not ours to the disposition that was there before.
fn pass_on(signal: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  let previous = PREVIOUS.get().copied();
  match previous {
    Some(previous)
      if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN =>
    {
      // SAFETY: the previous handler was installed for SIGBUS with these
      // flags, so it takes these arguments.
      unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
          let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            std::mem::transmute(previous.sa_sigaction);
          handler(signal, info, context);
        } else {
          let handler: extern "C" fn(c_int) = std::mem::transmute(previous.sa_sigaction);
          handler(signal);
        }
      }
    }
    _ => {
      // SAFETY: sigaction and raise are async-signal-safe; `default` is a
      // live local. With the default restored, a fault raises SIGBUS again
      // when the faulting instruction re-runs on return, and a signal that
      // was sent (no instruction to re-run) is raised anew: the process
      // ends as it would have without this handler.
      unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut default.sa_mask);
        libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
        if info.is_null() || (*info).si_code <= 0 {
          libc::raise(signal);
        }
      }
    }
  }
}

/// The word's value, read with acquire ordering, or `PageGone` if its page
/// was cut away. The word must lie in a mapping the caller holds (a page
/// past the object's end is fine; an unmapped address is not: that is a
/// SIGSEGV, which this does not catch).
pub fn load(word: &AtomicU32) -> Result<u32, PageGone> {
  install();
  // SAFETY: the address is a live, aligned word of a mapping (the
  // reference says so); a missing page is turned into FAILED by the
  // handler above, which `install` has put in place.
  let loaded = unsafe { load_word(word.as_ptr()) };
  if loaded == FAILED {
    Err(PageGone)
  } else {
    Ok(loaded as u32)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn loads_a_word() {
    let word = AtomicU32::new(0xdead_beef);
    assert_eq!(load(&word), Ok(0xdead_beef));
    word.store(7, std::sync::atomic::Ordering::Release);
    assert_eq!(load(&word), Ok(7));
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_page_cut_away_is_page_gone_and_the_rest_still_reads() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let page = 4096usize;
    // SAFETY: memfd_create reads the NUL-terminated name; the descriptor it
    // returns is owned from here on.
    let fd = unsafe {
      OwnedFd::from_raw_fd(libc::memfd_create(
        c"probe-test".as_ptr(),
        libc::MFD_CLOEXEC,
      ))
    };
    nix::unistd::ftruncate(&fd, 2 * page as i64).unwrap();
    // SAFETY: a fresh shared mapping of the memfd, unmapped below.
    let base = unsafe {
      libc::mmap(
        std::ptr::null_mut(),
        2 * page,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        fd.as_raw_fd(),
        0,
      )
    };
    assert_ne!(base, libc::MAP_FAILED);
    // SAFETY: both words lie inside the two-page mapping, 4-aligned.
    let (first, second) = unsafe {
      (
        &*(base as *const AtomicU32),
        &*((base as usize + page) as *const AtomicU32),
      )
    };
    first.store(11, std::sync::atomic::Ordering::Release);
    second.store(22, std::sync::atomic::Ordering::Release);
    assert_eq!(load(second), Ok(22));
    nix::unistd::ftruncate(&fd, page as i64).unwrap();
    assert_eq!(load(second), Err(PageGone));
    assert_eq!(load(second), Err(PageGone));
    assert_eq!(load(first), Ok(11));
    nix::unistd::ftruncate(&fd, 2 * page as i64).unwrap();
    assert_eq!(load(second), Ok(0));
    // SAFETY: unmaps the mapping made above, which nothing else uses.
    unsafe { libc::munmap(base, 2 * page) };
  }
}
