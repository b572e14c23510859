//! Whether a process still lives, told apart from a later process that
//! reused its id: its id and a mark of when it started, which a process
//! that reuses the id will not share. A zombie (dead, not yet reaped)
//! counts as dead. Used where the system gives shared memory objects no
//! byte-range locks (macOS, FreeBSD), to hold a channel's ends by process
//! instead (see `ends`). One file per system.
//!
//! Only evidence of death counts as death: a process the system will not
//! describe to us (another user's, with EPERM; too few descriptors to read
//! /proc) counts as alive unless kill(pid, 0) says there is no such process.
//! Mistaking a live holder for a dead one would hand its end to a second
//! holder; the opposite mistake only keeps an end busy.

use std::sync::OnceLock;

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

/// A process as a channel's header records it: its id in the high 32
/// bits, the low 32 bits of its start mark in the low ones. Never 0 for a
/// live process (ids start at 1).
pub type Holder = u64;

/// What the system says of a process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
  /// A living process that started at this mark.
  Alive(u64),
  /// No such process, or only its zombie.
  Dead,
  /// The system would not say (permissions, resources).
  Unknown,
}

/// What is known of process `pid`.
pub fn life(pid: u32) -> Life {
  match platform::life(pid) {
    Life::Unknown if !exists(pid) => Life::Dead,
    known => known,
  }
}

/// Whether any process, of any user, has the id `pid` (a zombie counts).
fn exists(pid: u32) -> bool {
  let Ok(pid) = nix::libc::pid_t::try_from(pid) else {
    return false;
  };
  if pid <= 0 {
    return false;
  }
  // SAFETY: signal 0 sends nothing; kill only checks that the process
  // exists and may be signalled. EPERM means it exists (another user's).
  let result = unsafe { nix::libc::kill(pid, 0) };
  result == 0 || nix::errno::Errno::last() != nix::errno::Errno::ESRCH
}

fn holder(pid: u32, mark: u64) -> Holder {
  (u64::from(pid) << 32) | (mark & 0xffff_ffff)
}

/// This process's holder word, found once (its id and start never change).
pub fn this_process() -> Option<Holder> {
  static ME: OnceLock<Holder> = OnceLock::new();
  if let Some(me) = ME.get() {
    return Some(*me);
  }
  let pid = std::process::id();
  match platform::life(pid) {
    Life::Alive(mark) => Some(*ME.get_or_init(|| holder(pid, mark))),
    _ => None,
  }
}

/// Whether the process a holder word names may still live: its id names a
/// living process that started at the same mark, or one the system will
/// not describe.
pub fn is_alive(word: Holder) -> bool {
  let pid = (word >> 32) as u32;
  if pid == 0 {
    return false;
  }
  match life(pid) {
    Life::Alive(mark) => holder(pid, mark) == word,
    Life::Dead => false,
    Life::Unknown => true,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn this_process_lives_and_a_made_up_one_does_not() {
    let me = this_process().expect("this process has a start mark");
    assert!(is_alive(me));
    // The same id with another start mark: a process that reused the id.
    assert!(!is_alive(me ^ 1));
    assert!(!is_alive(0));
    assert!(!is_alive(u64::from(u32::MAX - 3) << 32));
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_zombie_is_dead() {
    let mut child = std::process::Command::new("true")
      .spawn()
      .expect("spawn true");
    let pid = child.id();
    // Not reaped yet: wait until it has exited (its state turns Z).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while life(pid) != Life::Dead && std::time::Instant::now() < deadline {
      std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(life(pid), Life::Dead);
    child.wait().unwrap();
  }
}
