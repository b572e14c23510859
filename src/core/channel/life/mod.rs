//! Whether a process still lives, told apart from a later process that
//! reused its id: its id and a mark of when it started, which a process
//! that reuses the id will not share. A zombie (dead, not yet reaped)
//! counts as dead. Used where the system gives shared memory objects no
//! byte-range locks (macOS), to hold a channel's ends by process instead
//! (see `ends`). One file per system.

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

/// The holder word of a living process `pid`, or None if there is none
/// (or only its zombie).
pub fn holder_of(pid: u32) -> Option<Holder> {
  platform::start_mark(pid).map(|mark| (u64::from(pid) << 32) | (mark & 0xffff_ffff))
}

/// This process's holder word.
pub fn this_process() -> Option<Holder> {
  holder_of(std::process::id())
}

/// Whether the process a holder word names still lives: its id names a
/// living process that started at the same mark.
pub fn is_alive(holder: Holder) -> bool {
  let pid = (holder >> 32) as u32;
  pid != 0 && holder_of(pid) == Some(holder)
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
    while holder_of(pid).is_some() && std::time::Instant::now() < deadline {
      std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(holder_of(pid), None);
    child.wait().unwrap();
  }
}
