//! Who holds each end of a channel. Across processes an end is a
//! byte-range lock on the object (see CHANNEL-LAYOUT.md, "Holding an end"):
//! the kernel drops it when the holder's descriptor closes, and so when its
//! process dies, before anyone reaps it; no process id is involved, so a
//! reused one cannot be mistaken for the holder. Where the system gives
//! shared memory objects no byte-range locks (macOS, FreeBSD), the end's holder
//! word names the holding process instead, by id and start mark (`life`),
//! and a holder that has died or become a zombie holds nothing. Within this process a
//! table says which ends our own handles hold, because two handles whose
//! descriptors share one open file description (a dup) hold each other's
//! locks as far as the kernel can tell, and off Linux locks belong to the
//! process, not the descriptor.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::{LazyLock, Mutex, MutexGuard};

use nix::errno::Errno;

use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::{RECEIVER_HOLDER_AT, RECEIVER_STATE_AT, SENDER_HOLDER_AT, SENDER_STATE_AT};
use super::life;
use crate::core::failure::{Failure, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
  Sender,
  Receiver,
}

impl End {
  pub fn other(self) -> End {
    match self {
      End::Sender => End::Receiver,
      End::Receiver => End::Sender,
    }
  }

  /// Where the end's state word lies; its first byte is also the byte
  /// locked to hold the end.
  pub fn state_at(self) -> usize {
    match self {
      End::Sender => SENDER_STATE_AT,
      End::Receiver => RECEIVER_STATE_AT,
    }
  }

  /// Where the end's holder word lies (used where ends are held by
  /// process, see `Holding`).
  pub fn holder_at(self) -> usize {
    match self {
      End::Sender => SENDER_HOLDER_AT,
      End::Receiver => RECEIVER_HOLDER_AT,
    }
  }

  pub fn name(self) -> &'static str {
    match self {
      End::Sender => "sending",
      End::Receiver => "receiving",
    }
  }
}

/// How ends are held across processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
  /// A byte-range lock (Linux).
  Locks,
  /// The holder word names the process (macOS and FreeBSD, whose kernels
  /// refuse byte-range locks on anything but vnodes: fcntl F_SETLK on a
  /// shared memory object is EBADF there, in XNU's and FreeBSD's
  /// kern_descrip.c). `POSIX_SHM_CHANNEL_ENDS=process` picks it on Linux,
  /// so that the tests run it there; every process using a channel must
  /// then pick it too.
  Processes,
}

/// How this process holds ends, chosen once.
pub fn holding() -> Holding {
  static CHOSEN: LazyLock<Holding> = LazyLock::new(|| {
    if cfg!(any(target_os = "macos", target_os = "freebsd"))
      || std::env::var_os("POSIX_SHM_CHANNEL_ENDS").is_some_and(|v| v == "process")
    {
      Holding::Processes
    } else {
      Holding::Locks
    }
  });
  *CHOSEN
}

/// An object, as fstat names it: device and inode.
pub type Identity = (u64, u64);

static HELD_HERE: LazyLock<Mutex<HashSet<(Identity, End)>>> = LazyLock::new(Mutex::default);

fn held_here() -> MutexGuard<'static, HashSet<(Identity, End)>> {
  HELD_HERE
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a handle of this process holds `end` of the object.
pub fn is_held_here(identity: Identity, end: End) -> bool {
  held_here().contains(&(identity, end))
}

#[cfg(target_os = "linux")]
const SET_LOCK: nix::libc::c_int = nix::libc::F_OFD_SETLK;
#[cfg(target_os = "linux")]
const GET_LOCK: nix::libc::c_int = nix::libc::F_OFD_GETLK;
#[cfg(not(target_os = "linux"))]
const SET_LOCK: nix::libc::c_int = nix::libc::F_SETLK;
#[cfg(not(target_os = "linux"))]
const GET_LOCK: nix::libc::c_int = nix::libc::F_GETLK;

// The lock types are c_int on Linux and c_short on macOS and FreeBSD.
#[allow(clippy::unnecessary_cast)]
const WRITE_LOCK: i32 = nix::libc::F_WRLCK as i32;
#[allow(clippy::unnecessary_cast)]
const UNLOCKED: i32 = nix::libc::F_UNLCK as i32;

fn lock_request(kind: i32, end: End) -> nix::libc::flock {
  // SAFETY: flock is a plain C struct of integers, for which all zeroes
  // is a valid value (and l_pid must be 0 for open file description locks).
  let mut request: nix::libc::flock = unsafe { std::mem::zeroed() };
  request.l_type = kind as _;
  request.l_whence = nix::libc::SEEK_SET as _;
  request.l_start = end.state_at() as _;
  request.l_len = 1;
  request
}

/// fcntl with a lock request on `fd`.
fn lock_call(
  fd: RawFd,
  command: nix::libc::c_int,
  request: &mut nix::libc::flock,
) -> Result<(), Errno> {
  // SAFETY: `request` is a live, initialised flock for the whole call;
  // a descriptor that is not open is EBADF, nothing worse.
  let result = unsafe { nix::libc::fcntl(fd, command, request as *mut nix::libc::flock) };
  if result == -1 {
    Err(Errno::last())
  } else {
    Ok(())
  }
}

/// Takes `end` of the object behind `fd`, whose holder word for that end
/// is `holder`, for one handle of ours; or `ChannelBusy` if any other
/// handle, here or in another process, holds it.
pub fn take(fd: RawFd, identity: Identity, end: End, holder: &AtomicU64) -> Outcome<()> {
  let mut here = held_here();
  if here.contains(&(identity, end)) {
    return Err(Failure::ChannelBusy(end.name()));
  }
  match holding() {
    Holding::Locks => {
      let mut request = lock_request(WRITE_LOCK, end);
      match lock_call(fd, SET_LOCK, &mut request) {
        Ok(()) => {}
        Err(Errno::EAGAIN | Errno::EACCES) => return Err(Failure::ChannelBusy(end.name())),
        Err(errno) => {
          return Err(Failure::Sys {
            errno,
            syscall: "fcntl",
          })
        }
      }
    }
    Holding::Processes => take_by_process(end, holder)?,
  }
  here.insert((identity, end));
  Ok(())
}

/// Writes this process into `holder`, unless a living process is there.
fn take_by_process(end: End, holder: &AtomicU64) -> Outcome<()> {
  // This process's own description failed (out of descriptors to read
  // /proc, say): an error, not a busy end.
  let me = life::this_process().ok_or(Failure::Sys {
    errno: Errno::EAGAIN,
    syscall: "getpid",
  })?;
  loop {
    let current = holder.load(Ordering::SeqCst);
    // Our own id with no handle of ours holding it (the table said so) is
    // what a handle finalized at teardown may leave: free.
    if current != 0 && current != me && life::is_alive(current) {
      return Err(Failure::ChannelBusy(end.name()));
    }
    if holder
      .compare_exchange(current, me, Ordering::SeqCst, Ordering::SeqCst)
      .is_ok()
    {
      return Ok(());
    }
  }
}

/// Gives `end` up (its holder has already cleared the state word).
pub fn give_up(fd: RawFd, identity: Identity, end: End, holder: &AtomicU64) {
  match holding() {
    Holding::Locks => {
      let mut request = lock_request(UNLOCKED, end);
      // Unlocking a byte we locked cannot fail but on a closed descriptor,
      // and closing the descriptor drops the lock anyway.
      let _ = lock_call(fd, SET_LOCK, &mut request);
    }
    Holding::Processes => {
      if let Some(me) = life::this_process() {
        let _ = holder.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
      }
    }
  }
  held_here().remove(&(identity, end));
}

/// Whether anyone holds `end`: a handle of ours, or anyone the kernel
/// knows to hold its lock (or, held by process, a living process).
pub fn is_held(fd: RawFd, identity: Identity, end: End, holder: &AtomicU64) -> Outcome<bool> {
  if is_held_here(identity, end) {
    return Ok(true);
  }
  match holding() {
    Holding::Locks => {
      let mut request = lock_request(WRITE_LOCK, end);
      lock_call(fd, GET_LOCK, &mut request).map_err(Failure::sys("fcntl"))?;
      Ok(i32::from(request.l_type) != UNLOCKED)
    }
    Holding::Processes => {
      let current = holder.load(Ordering::SeqCst);
      Ok(current != 0 && life::is_alive(current))
    }
  }
}
