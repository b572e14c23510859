//! Linux: where a signal's context keeps the program counter.

use nix::libc;

/// # Safety
/// `context` must be the ucontext_t a SA_SIGINFO handler was given.
pub unsafe fn program_counter(context: *mut libc::c_void) -> *mut usize {
  let context = context.cast::<libc::ucontext_t>();
  #[cfg(target_arch = "x86_64")]
  // SAFETY: the caller vouches for `context`; gregs holds RIP at REG_RIP.
  return unsafe {
    std::ptr::addr_of_mut!((*context).uc_mcontext.gregs[libc::REG_RIP as usize]).cast::<usize>()
  };
  #[cfg(target_arch = "aarch64")]
  // SAFETY: the caller vouches for `context`.
  return unsafe { std::ptr::addr_of_mut!((*context).uc_mcontext.pc).cast::<usize>() };
}
