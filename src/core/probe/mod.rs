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
//! Copies and atomics that native code makes on a mapping whose peer may
//! shrink it (copy mode's reads and writes, say) run inside `guarded`
//! instead: the handler, finding the faulting address inside the range
//! the faulting thread declared, puts a private zero page there (so the
//! access completes, reading zeros, its writes landing nowhere shared) and
//! the call learns that the range was cut. The mapping then no longer
//! shows the object at that page, so its owner must refuse it from then on.
//!
//! What it cannot cover: a handler installed after ours (a JavaScript
//! `process.on('SIGBUS')`, which Node documents as unsafe anyway) replaces
//! it, and the load is then a SIGBUS as before. Valgrind by default hands
//! a handler the state of a translated block, not of the faulting
//! instruction (it runs `load_word` inside its caller's block), so there
//! the load is a SIGBUS and a resumed copy goes astray, unless it runs
//! with `--vex-guest-chase=no --px-default=allregs-at-mem-access`, as
//! `.ci/run` and `scripts/sanitize-ava.sh` do. Only SIGBUS is handled: Linux and
//! FreeBSD raise it for a page past the end of a shared memory object;
//! macOS cannot shrink one.

use std::ffi::c_int;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
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
/// Set once SIGBUS was found reset to the default after ours took over:
/// whatever `PREVIOUS` names was undone with it (libuv's handler, say), and
/// other faults go to the default from then on.
static PREVIOUS_UNDONE: AtomicBool = AtomicBool::new(false);

/// Installs the handler, once per process.
fn install() {
  static INSTALLED: OnceLock<()> = OnceLock::new();
  INSTALLED.get_or_init(|| {
    // SAFETY: sysconf only reads a system value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    PAGE_SIZE.store(usize::try_from(page).unwrap_or(0), Ordering::Relaxed);
    // SAFETY: sigaction writes `previous`, a live local; it is recorded
    // before ours takes over, so the handler always finds what to hand
    // other faults to.
    unsafe {
      let mut previous: libc::sigaction = std::mem::zeroed();
      if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
        return;
      }
      let _ = PREVIOUS.set(previous);
    }
    take_over();
  });
}

/// Makes `on_sigbus` the SIGBUS disposition.
fn take_over() {
  // SAFETY: sigaction reads `ours`, a live local; all zeroes is a valid
  // sigaction, and the fields that matter are set before the call.
  unsafe {
    let mut ours: libc::sigaction = std::mem::zeroed();
    ours.sa_sigaction = on_sigbus as *const () as usize;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    libc::sigemptyset(&mut ours.sa_mask);
    libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut());
  }
}

/// Puts the handler back if it was installed and SIGBUS has since been
/// reset to the default disposition, as Node does when the last
/// `process.on('SIGBUS')` listener is removed (libuv restores the default
/// when it stops watching a signal). The handler ours found first, if any,
/// is undone too: other faults go to the default from then on. A handler
/// someone else installed is left alone.
pub fn reinstall_if_reset() {
  if PREVIOUS.get().is_none() {
    return;
  }
  // SAFETY: sigaction with no new action only writes `current`, a live
  // local.
  let current = unsafe {
    let mut current: libc::sigaction = std::mem::zeroed();
    if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut current) != 0 {
      return;
    }
    current
  };
  if current.sa_sigaction == libc::SIG_DFL {
    // Before ours is back: a fault in between ends the process either way.
    PREVIOUS_UNDONE.store(true, Ordering::SeqCst);
    take_over();
  }
}

/// Whether the kernel raised this SIGBUS for an access the thread made
/// (one of the access codes), rather than someone sending it with `kill`
/// or `sigqueue`: a sent one can land while the thread is at `load_word`,
/// and must still end the process, not fail a wait.
fn raised_by_access(info: *const libc::siginfo_t) -> bool {
  // SAFETY: `info` is the kernel's siginfo_t for this SIGBUS, or null.
  let code = unsafe { info.as_ref().map_or(0, |info| info.si_code) };
  matches!(code, libc::BUS_ADRALN | libc::BUS_ADRERR | libc::BUS_OBJERR)
}

extern "C" fn on_sigbus(signal: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  if !raised_by_access(info) {
    pass_on(signal, info, context);
    return;
  }
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
  // SAFETY: `info` is the kernel's siginfo_t for this SIGBUS (or null).
  let address = unsafe { info.as_ref().map_or(0, |info| info.si_addr() as usize) };
  if repair(address) {
    return;
  }
  pass_on(signal, info, context);
}

/// A range that one thread is accessing inside `guarded`; `thread` is 0
/// while the slot is free. Only the thread that claimed a slot writes it,
/// and only that thread's signal handler acts on it. One cache line each,
/// so threads guarding at once do not share one.
#[repr(align(64))]
struct Guard {
  thread: AtomicUsize,
  /// Which `guarded` call this is, so that it finds its slot again after
  /// `unguarded` moved it.
  call: AtomicUsize,
  start: AtomicUsize,
  end: AtomicUsize,
  writable: AtomicBool,
  cut: AtomicBool,
}

impl Guard {
  const fn free() -> Guard {
    Guard {
      thread: AtomicUsize::new(0),
      call: AtomicUsize::new(0),
      start: AtomicUsize::new(0),
      end: AtomicUsize::new(0),
      writable: AtomicBool::new(false),
      cut: AtomicBool::new(false),
    }
  }
}

/// More than the threads that can be inside an access at once (the main
/// thread, workers, libuv's pool); a thread that finds none free yields
/// until one is. A call asleep holds none (see `unguarded`), so the
/// holders are all busy copying and soon let go.
const GUARDS: usize = 256;
static GUARD_SLOTS: [Guard; GUARDS] = [const { Guard::free() }; GUARDS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The calling thread, as a number that is never 0. pthread_self reads
/// the thread pointer: no call, safe in a signal handler.
fn this_thread() -> usize {
  // SAFETY: pthread_self takes no arguments and cannot fail.
  let thread = unsafe { libc::pthread_self() } as usize;
  thread.max(1)
}

/// In the handler: if the calling thread guards a range holding `address`,
/// puts a private zero page at `address`'s page and records the cut.
fn repair(address: usize) -> bool {
  let page = PAGE_SIZE.load(Ordering::Relaxed);
  if address == 0 || page == 0 {
    return false;
  }
  let me = this_thread();
  // Every range this thread guards that holds the address: a guarded call
  // made inside another must learn of the cut as well as the outer one.
  let holding = || {
    GUARD_SLOTS.iter().filter(move |guard| {
      guard.thread.load(Ordering::Relaxed) == me
        && (guard.start.load(Ordering::Relaxed)..guard.end.load(Ordering::Relaxed))
          .contains(&address)
    })
  };
  let Some(first) = holding().next() else {
    return false;
  };
  let protections = if first.writable.load(Ordering::Relaxed) {
    libc::PROT_READ | libc::PROT_WRITE
  } else {
    libc::PROT_READ
  };
  // SAFETY: the page lies in a mapping the guarded caller holds (it
  // declared the range), so replacing it unmaps nothing of anyone else's;
  // mmap is a plain system call, safe in a signal handler.
  let placed = unsafe {
    libc::mmap(
      (address & !(page - 1)) as *mut libc::c_void,
      page,
      protections,
      libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
      -1,
      0,
    )
  };
  if placed == libc::MAP_FAILED {
    return false;
  }
  holding().for_each(|guard| guard.cut.store(true, Ordering::Relaxed));
  true
}

/// Whether a guarded call running on this thread has met a cut page so
/// far. A call that would sleep until the memory changes asks first: past
/// a cut it would be watching a private stand-in page that no one writes.
pub fn cut_here() -> bool {
  let me = this_thread();
  GUARD_SLOTS
    .iter()
    .any(|guard| guard.thread.load(Ordering::Relaxed) == me && guard.cut.load(Ordering::Relaxed))
}

/// The range `start .. start + length` was cut: a page of it was gone and
/// is now private (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut;

/// Runs `access`, which touches memory of a mapping the caller holds
/// (`start .. start + length`; `writable` if the mapping allows writing).
/// If a page of that range is gone (a peer shrank the object), the access
/// still completes, over a private zero page put in its place, and the
/// result is `Cut`: the mapping is no longer the object's at that page.
pub fn guarded<T>(
  start: *const u8,
  length: usize,
  writable: bool,
  access: impl FnOnce() -> T,
) -> Result<T, Cut> {
  install();
  static CALLS: AtomicUsize = AtomicUsize::new(1);
  let call = CALLS.fetch_add(1, Ordering::Relaxed);
  let me = this_thread();
  let guard = claim(me);
  guard.call.store(call, Ordering::Relaxed);
  guard.start.store(start as usize, Ordering::Relaxed);
  guard
    .end
    .store((start as usize).saturating_add(length), Ordering::Relaxed);
  guard.writable.store(writable, Ordering::Relaxed);
  guard.cut.store(false, Ordering::Relaxed);
  // The handler runs on this thread: what it needs is in place before the
  // access, and read after it, as long as the compiler keeps the order.
  compiler_fence(Ordering::SeqCst);
  let result = access();
  compiler_fence(Ordering::SeqCst);
  // Where it was claimed, unless `unguarded` inside `access` moved it; then
  // found by its call (`unguarded` always gives it back, so it is there).
  let ours = |guard: &&Guard| {
    guard.thread.load(Ordering::Relaxed) == me && guard.call.load(Ordering::Relaxed) == call
  };
  let cut = Some(guard)
    .filter(ours)
    .or_else(|| GUARD_SLOTS.iter().find(ours))
    .is_some_and(|guard| {
      let cut = guard.cut.load(Ordering::Relaxed);
      guard.thread.store(0, Ordering::Release);
      cut
    });
  if cut {
    Err(Cut)
  } else {
    Ok(result)
  }
}

/// A free slot, claimed for thread `me`.
fn claim(me: usize) -> &'static Guard {
  // Each thread starts looking at its own place (thread pointers are
  // spread apart), so threads seldom contend for one slot.
  let first = (me >> 12) % GUARDS;
  loop {
    let free = (0..GUARDS)
      .map(|i| &GUARD_SLOTS[(first + i) % GUARDS])
      .find(|guard| {
        guard
          .thread
          .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
          .is_ok()
      });
    match free {
      Some(guard) => return guard,
      None => std::thread::yield_now(),
    }
  }
}

/// Runs `sleep` with the calling thread's guards set aside and claims them
/// again after (perhaps in other slots), as they were. For a guarded call
/// that sleeps in the kernel: asleep, it would hold slots that busy
/// threads need, and with enough sleepers (blocked channel receives in
/// hundreds of workers) nobody could guard at all. `sleep` must touch the
/// mapping only through `load` and the kernel.
pub fn unguarded<T>(sleep: impl FnOnce() -> T) -> T {
  let me = this_thread();
  let mut set_aside = Vec::new();
  for guard in GUARD_SLOTS.iter() {
    if guard.thread.load(Ordering::Relaxed) == me {
      set_aside.push((
        guard.call.load(Ordering::Relaxed),
        guard.start.load(Ordering::Relaxed),
        guard.end.load(Ordering::Relaxed),
        guard.writable.load(Ordering::Relaxed),
        guard.cut.load(Ordering::Relaxed),
      ));
      guard.thread.store(0, Ordering::Release);
    }
  }
  let result = sleep();
  for (call, start, end, writable, cut) in set_aside {
    let guard = claim(me);
    guard.call.store(call, Ordering::Relaxed);
    guard.start.store(start, Ordering::Relaxed);
    guard.end.store(end, Ordering::Relaxed);
    guard.writable.store(writable, Ordering::Relaxed);
    guard.cut.store(cut, Ordering::Relaxed);
  }
  compiler_fence(Ordering::SeqCst);
  result
}

/// Hands a SIGBUS that is not ours to the disposition that was there before.
fn pass_on(signal: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  let previous = PREVIOUS
    .get()
    .copied()
    .filter(|_| !PREVIOUS_UNDONE.load(Ordering::SeqCst));
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
        if !raised_by_access(info) {
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

  /// A memfd of two pages, mapped shared (unmapped when dropped), so a
  /// test can cut its second page away with `ftruncate`.
  #[cfg(target_os = "linux")]
  struct TwoPages {
    fd: std::os::fd::OwnedFd,
    base: *mut u8,
  }

  #[cfg(target_os = "linux")]
  const PAGE: usize = 4096;

  #[cfg(target_os = "linux")]
  impl TwoPages {
    fn new() -> TwoPages {
      use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
      // SAFETY: memfd_create reads the NUL-terminated name; the descriptor
      // it returns is owned from here on.
      let fd = unsafe {
        OwnedFd::from_raw_fd(libc::memfd_create(
          c"probe-test".as_ptr(),
          libc::MFD_CLOEXEC,
        ))
      };
      nix::unistd::ftruncate(&fd, 2 * PAGE as i64).unwrap();
      // SAFETY: a fresh shared mapping of the memfd, unmapped on drop.
      let base = unsafe {
        libc::mmap(
          std::ptr::null_mut(),
          2 * PAGE,
          libc::PROT_READ | libc::PROT_WRITE,
          libc::MAP_SHARED,
          fd.as_raw_fd(),
          0,
        )
      };
      assert_ne!(base, libc::MAP_FAILED);
      TwoPages {
        fd,
        base: base.cast(),
      }
    }

    fn resize(&self, pages: usize) {
      nix::unistd::ftruncate(&self.fd, (pages * PAGE) as i64).unwrap();
    }

    fn word(&self, page: usize) -> &AtomicU32 {
      // SAFETY: the word starts a page of the two-page mapping, 4-aligned,
      // and lives as long as `self`.
      unsafe { &*(self.base.add(page * PAGE) as *const AtomicU32) }
    }
  }

  #[cfg(target_os = "linux")]
  impl Drop for TwoPages {
    fn drop(&mut self) {
      // SAFETY: unmaps the mapping made in `new`, which nothing else uses.
      unsafe { libc::munmap(self.base.cast(), 2 * PAGE) };
    }
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_page_cut_away_is_page_gone_and_the_rest_still_reads() {
    let pages = TwoPages::new();
    let (first, second) = (pages.word(0), pages.word(1));
    first.store(11, std::sync::atomic::Ordering::Release);
    second.store(22, std::sync::atomic::Ordering::Release);
    assert_eq!(load(second), Ok(22));
    pages.resize(1);
    assert_eq!(load(second), Err(PageGone));
    assert_eq!(load(second), Err(PageGone));
    assert_eq!(load(first), Ok(11));
    pages.resize(2);
    assert_eq!(load(second), Ok(0));
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_guarded_copy_over_a_cut_page_completes_and_says_cut() {
    let pages = TwoPages::new();
    let base = pages.base;
    // SAFETY: both pages are mapped and the object covers them.
    unsafe { std::ptr::write_bytes(base, 7, 2 * PAGE) };
    let mut copy = vec![0u8; 2 * PAGE];
    let target = copy.as_mut_ptr();
    let copy_out = |length: usize| {
      guarded(base, length, true, || {
        // SAFETY: `length` bytes of the mapping into the vector, which
        // holds at least that many.
        unsafe { std::ptr::copy_nonoverlapping(base, target, length) }
      })
    };
    assert_eq!(copy_out(2 * PAGE), Ok(()));
    assert!(copy.iter().all(|b| *b == 7));
    pages.resize(1);
    assert_eq!(copy_out(2 * PAGE), Err(Cut));
    assert!(
      copy[..PAGE].iter().all(|b| *b == 7),
      "the first page is the object's"
    );
    assert!(
      copy[PAGE..].iter().all(|b| *b == 0),
      "the cut page reads as zeros"
    );
    // The first page alone is still fine, and the slot was given back.
    assert_eq!(copy_out(PAGE), Ok(()));
    assert!(GUARD_SLOTS
      .iter()
      .all(|guard| guard.thread.load(Ordering::Relaxed) != this_thread()));
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_guarded_call_inside_another_learns_of_the_cut_as_the_outer_one_does() {
    let pages = TwoPages::new();
    let base = pages.base;
    pages.resize(1);
    let mut inner = Ok(1);
    let outer = guarded(base, 2 * PAGE, true, || {
      inner = guarded(base, 2 * PAGE, true, || {
        // SAFETY: a read of the mapping's second page, which the guard
        // covers.
        unsafe { std::ptr::read_volatile(base.add(PAGE)) }
      });
    });
    assert_eq!(inner, Err(Cut));
    assert_eq!(outer, Err(Cut));
    assert!(GUARD_SLOTS
      .iter()
      .all(|guard| guard.thread.load(Ordering::Relaxed) != this_thread()));
    let inner_alone = guarded(base, 2 * PAGE, true, || {
      // SAFETY: as above; the page is the private stand-in by now.
      unsafe { std::ptr::read_volatile(base.add(PAGE)) }
    });
    assert_eq!(inner_alone, Ok(0), "the stand-in page reads zeros");
  }

  #[test]
  fn calls_asleep_inside_guards_hold_no_slot_so_more_than_all_slots_can_sleep_at_once() {
    // More threads than slots, each asleep (at the barrier) inside a
    // guarded call: held slots would leave the last ones waiting for a
    // slot forever, and the barrier would never open.
    let threads = GUARDS + 44;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let word = [0u8; 64];
    let base = word.as_ptr() as usize;
    let handles: Vec<_> = (0..threads)
      .map(|_| {
        let barrier = std::sync::Arc::clone(&barrier);
        std::thread::Builder::new()
          .stack_size(64 * 1024)
          .spawn(move || {
            guarded(base as *const u8, 64, false, || {
              unguarded(|| barrier.wait());
              this_thread()
            })
          })
          .unwrap()
      })
      .collect();
    for handle in handles {
      let me = handle.join().unwrap().unwrap();
      assert!(GUARD_SLOTS
        .iter()
        .all(|guard| guard.thread.load(Ordering::Relaxed) != me));
    }
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_cut_met_after_a_sleep_is_still_the_guarded_calls() {
    let pages = TwoPages::new();
    let base = pages.base;
    let result = guarded(base, 2 * PAGE, true, || {
      unguarded(|| pages.resize(1));
      // SAFETY: a read of the mapping's second page, which the guard
      // covers.
      unsafe { std::ptr::read_volatile(base.add(PAGE)) }
    });
    assert_eq!(result, Err(Cut));
  }

  /// A SIGBUS sent by someone (SI_USER) while the thread stands at
  /// `load_word` is not taken for a cut page: it goes on to the handler
  /// found before ours, or ends the process. The handler is called
  /// directly with such a signal's info and a context at `load_word`, in a
  /// child process so that a death can be seen.
  #[cfg(target_os = "linux")]
  #[test]
  fn a_sigbus_sent_while_at_the_load_is_not_taken_for_a_cut_page() {
    install();
    // SAFETY: zeroed siginfo_t and ucontext_t are valid values of these
    // plain C structs; the child only calls the handler (which makes
    // async-signal-safe calls) and _exit; the parent reaps it.
    unsafe {
      let mut info: libc::siginfo_t = std::mem::zeroed();
      info.si_signo = libc::SIGBUS;
      info.si_code = libc::SI_USER;
      let mut context: libc::ucontext_t = std::mem::zeroed();
      *platform::program_counter((&raw mut context).cast()) = load_word as *const () as usize;
      let child = libc::fork();
      assert!(child >= 0, "fork failed");
      if child == 0 {
        on_sigbus(libc::SIGBUS, &mut info, (&raw mut context).cast());
        // Still here: the signal went to the handler found before ours
        // (a Rust test binary has std's, which swallows a sent one). It
        // must not have been taken for a fault at the load.
        let at = *platform::program_counter((&raw mut context).cast());
        libc::_exit(if at == load_word as *const () as usize {
          0
        } else {
          1
        });
      }
      let mut status = 0;
      assert_eq!(libc::waitpid(child, &mut status, 0), child);
      let ended_by_sigbus = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS;
      let passed_on = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
      assert!(
        ended_by_sigbus || passed_on,
        "the sent SIGBUS was taken for a cut page (status {status:#x})"
      );
    }
  }
}
