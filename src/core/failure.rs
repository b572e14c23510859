//! Everything a call can fail with, as plain data. The boundary
//! (`node::throw`) turns each into the error JavaScript sees; nothing here
//! knows how.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Everything a native entry can fail with.
#[derive(Debug)]
pub enum Failure {
  /// A system call failed with this errno.
  Sys { errno: Errno, syscall: &'static str },
  /// A system call failed, or was not made because it would fail, for a
  /// reason of the platform's (see `platform`) that `detail` explains.
  Platform {
    errno: Errno,
    syscall: &'static str,
    detail: String,
  },
  /// A failure concerning the object named `path` (its `path` property).
  At { path: String, failure: Box<Failure> },
  /// A number outside what the call accepts: `RangeError`, `ERR_OUT_OF_RANGE`.
  OutOfRange(String),
  /// A value of the right type but not usable: `TypeError`, `ERR_INVALID_ARG_VALUE`.
  InvalidValue(String),
  /// The runtime refuses external ArrayBuffers (Electron 21 and later), or
  /// `POSIX_SHM_NO_EXTERNAL_BUFFERS=1` asked us to behave as if it did.
  NoExternalBuffers,
  /// The runtime has no way to make a SharedArrayBuffer over our memory
  /// (`node_api_create_external_sharedarraybuffer`), or refuses external
  /// buffers altogether.
  NoSharedBuffers,
  /// posix-shm holds `ours` mappings, all it may (see `mapping::BUDGET`),
  /// a share of the system's cap `system` where there is one.
  MappingBudget { ours: usize, system: Option<usize> },
  /// Memory for a copy of this many bytes, a length the caller chose,
  /// could not be had: `RangeError`, `ERR_MEMORY_ALLOCATION_FAILED` (an
  /// allocation failure must never abort the process).
  Allocation(usize),
  /// The descriptor already belongs to an owner (a `SharedMemory`), which
  /// will close it: owning it twice would close it twice.
  FdOwned(RawFd),
  /// Another process shrank the object under a mapping: a page the call
  /// needed is gone (see `Mapping::guarded`).
  Shrunk,
  /// The object (a "channel") was closed; nothing can be done with it.
  Closed(&'static str),
  /// The object holds no channel this posix-shm can read (no header, or
  /// a layout version it does not know); why.
  NotAChannel(String),
  /// A channel's header or ring holds numbers no honest end writes (a peer
  /// scribbled on it); what was found.
  ChannelCorrupt(String),
  /// Another handle, here or in another process, holds this end
  /// ("sending" or "receiving") of the channel.
  ChannelBusy(&'static str),
  /// The sending end was ended: nothing more may be sent.
  ChannelEnded,
  /// The process holding the other end ("sending" or "receiving") died.
  PeerGone(&'static str),
  /// A call into the JavaScript runtime failed where it should not (its
  /// status number); the boundary's own failures travel in this type too,
  /// so that one `?` serves both layers. Reported, never unwrapped.
  NodeApi { status: i32, call: &'static str },
}

pub type Outcome<T> = std::result::Result<T, Failure>;

impl Failure {
  pub fn sys(syscall: &'static str) -> impl FnOnce(Errno) -> Failure {
    move |errno| Failure::Sys { errno, syscall }
  }

  /// This failure, about the object named `path`.
  pub fn at(self, path: &str) -> Failure {
    Failure::At {
      path: path.to_owned(),
      failure: Box::new(self),
    }
  }
}
