//! macOS: where a signal's context keeps the program counter (the thread
//! state that `uc_mcontext` points to).

use nix::libc;

/// # Safety
/// `context` must be the ucontext_t a SA_SIGINFO handler was given.
pub unsafe fn program_counter(context: *mut libc::c_void) -> *mut usize {
  let context = context.cast::<libc::ucontext_t>();
  #[cfg(target_arch = "x86_64")]
  // SAFETY: the caller vouches for `context`, whose uc_mcontext points at
  // the saved machine state.
  return unsafe { std::ptr::addr_of_mut!((*(*context).uc_mcontext).__ss.__rip).cast::<usize>() };
  #[cfg(target_arch = "aarch64")]
  // SAFETY: as above.
  return unsafe { std::ptr::addr_of_mut!((*(*context).uc_mcontext).__ss.__pc).cast::<usize>() };
}
