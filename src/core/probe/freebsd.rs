//! FreeBSD (x86_64, the one FreeBSD target we build): where a signal's
//! context keeps the program counter.

use nix::libc;

/// # Safety
/// `context` must be the ucontext_t a SA_SIGINFO handler was given.
pub unsafe fn program_counter(context: *mut libc::c_void) -> *mut usize {
  let context = context.cast::<libc::ucontext_t>();
  // SAFETY: the caller vouches for `context`.
  unsafe { std::ptr::addr_of_mut!((*context).uc_mcontext.mc_rip).cast::<usize>() }
}
