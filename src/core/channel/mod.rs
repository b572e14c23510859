//! A channel: one sending end and one receiving end over a ring of bytes
//! in one shared memory object, as CHANNEL-LAYOUT.md lays it out.
//!
//! A `Channel` is one handle on such an object: its own descriptor (a
//! fresh open file description on Linux, so its locks are its own), the
//! mapping, and which ends it holds. It takes an end the first time it
//! sends or receives, and gives it up when dropped.
//!
//! The steady state makes no system call: the sender publishes `head`, the
//! receiver `tail`, and either wakes the other only when that one says it
//! sleeps. Everything read from the object (counts, record headers) is
//! checked (`layout`) before it is used: a peer may have scribbled on it.
//!
//! A handle is used from one thread at a time (the node layer keeps it on
//! its JavaScript thread), hence the `Cell`s.

pub mod ends;
pub mod layout;
mod life;

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::mman::ProtFlags;

use crate::core::descriptor;
use crate::core::failure::{Failure, Outcome};
use crate::core::mapping::Mapping;
use crate::core::owner;
use crate::core::probe;
use crate::core::wait::{self, Waited};
use crate::core::word::Word;
use ends::{End, Identity};
use layout::*;

/// How long an end spins, looking for work, before it sleeps in the
/// kernel: a peer that answers within this is seen without a trip through
/// the scheduler (tens of microseconds each way).
const SPIN: Duration = Duration::from_micros(50);

/// The longest a sleeping end sleeps before it looks again: at the ring
/// (a peer that cannot fence may have missed its wake-up, see
/// CHANNEL-LAYOUT.md), at its peer's life, and at its own environment's.
pub const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// How often a sender that is never blocked asks whether its receiver
/// still lives.
const LIFE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// How long `attach` waits for a creator to finish the header.
const CREATOR_GRACE: Duration = Duration::from_secs(1);

/// The next message, found by `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
  /// A message: its payload's place in the mapping and length, and the
  /// count `tail` takes once it is consumed.
  Message { at: usize, length: usize, next: u64 },
  /// Nothing came before the deadline.
  TimedOut,
  /// The sender ended the channel and every message has been received.
  Ended,
}

pub struct Channel {
  /// Closed in `drop` before its number is released from `owner`, so that
  /// nothing can close the number in between.
  fd: ManuallyDrop<OwnedFd>,
  /// What `fd` refers to, so a number closed behind the channel's back
  /// and reused is not closed again (see `owner::Identity`).
  descriptor: owner::Identity,
  identity: Identity,
  mapping: Arc<Mapping>,
  capacity: u64,
  holds_sender: Cell<bool>,
  holds_receiver: Cell<bool>,
  /// The sender's own `head`, and the `tail` it last read.
  head: Cell<u64>,
  tail_seen: Cell<u64>,
  /// The receiver's own `tail`, and the `head` it last read.
  tail: Cell<u64>,
  head_seen: Cell<u64>,
  /// When a look at the other end's life last found it alive, by this
  /// handle's end (sender, receiver).
  life_checked: [Cell<Option<Instant>>; 2],
}

impl Channel {
  /// Makes a channel of `capacity` bytes (see `layout::capacity_for`) in
  /// the empty object behind `fd`, which the caller just created (see
  /// `reopen` for `fresh`).
  pub fn create(fd: RawFd, capacity: u64, fresh: bool) -> Outcome<Channel> {
    let fd = reopen(fd, fresh)?;
    // Sizing an object that has contents would shrink it under whoever
    // maps it (SIGBUS on their next touch) or rewrite a live channel's
    // header: only an empty one, just created, is ours to size.
    let existing = descriptor::object_size(fd.as_raw_fd())?;
    if existing != 0 {
      return Err(Failure::InvalidValue(format!(
        "The object behind the descriptor must be empty (just created) to make a channel in it; it has {existing} bytes"
      )));
    }
    let size = HEADER_BYTES + capacity;
    descriptor::truncate(fd.as_raw_fd(), size as i64)?;
    let mapping = map(&fd, size)?;
    let id = new_id();
    let channel = Channel::new(fd, mapping, capacity, id)?;
    Channel::guarded(&channel.mapping, || {
      channel.u64_at(ID_AT).store(id, Ordering::Relaxed);
      channel.u32_at(VERSION_AT).store(VERSION, Ordering::Relaxed);
      channel
        .u32_at(HEADER_BYTES_AT)
        .store(HEADER_BYTES as u32, Ordering::Relaxed);
      channel
        .u64_at(CAPACITY_AT)
        .store(capacity, Ordering::Relaxed);
      // Last, with release ordering: an end that sees the magic sees the rest.
      channel.u64_at(MAGIC_AT).store(MAGIC, Ordering::Release);
      Ok(())
    })?;
    Ok(channel)
  }

  /// Opens the channel in the object behind `fd`, waiting up to a second
  /// for a creator that has not finished its header (see `reopen` for
  /// `fresh`).
  pub fn attach(fd: RawFd, fresh: bool) -> Outcome<Channel> {
    let fd = reopen(fd, fresh)?;
    let give_up = Instant::now() + CREATOR_GRACE;
    let (fixed, size) = loop {
      let size = descriptor::object_size(fd.as_raw_fd())?;
      if size >= HEADER_BYTES {
        let header = map(&fd, HEADER_BYTES)?;
        let fixed = Channel::guarded(&header, || Ok(read_fixed(&header)))?;
        if fixed.magic != 0 {
          break (fixed, size);
        }
      }
      if Instant::now() >= give_up {
        return Err(Failure::NotAChannel(format!(
          "the object ({size} bytes) holds no channel header, and none appeared within {} ms",
          CREATOR_GRACE.as_millis()
        )));
      }
      std::thread::sleep(Duration::from_millis(2));
    };
    let capacity = check_fixed(fixed, size)?;
    let mapping = map(&fd, HEADER_BYTES + capacity)?;
    Channel::new(fd, mapping, capacity, fixed.id)
  }

  /// `id` is the channel's, from its header: with the inode it names the
  /// channel in this process's table of ends (`ends`). The inode alone
  /// would not do: macOS reports 0 for every shared memory object.
  fn new(fd: OwnedFd, mapping: Mapping, capacity: u64, id: u64) -> Outcome<Channel> {
    let stat = nix::sys::stat::fstat(fd.as_fd()).map_err(Failure::sys("fstat"))?;
    // The cast widens platform integer types to one width.
    #[allow(clippy::unnecessary_cast)]
    let identity = (id, stat.st_ino as u64);
    // From here on the number is ours to close: JavaScript's shmClose of
    // it is refused (see `owner`).
    let descriptor = owner::Identity::of_stat(&stat);
    owner::reserve(fd.as_raw_fd())?;
    Ok(Channel {
      fd: ManuallyDrop::new(fd),
      descriptor,
      identity,
      mapping: Arc::new(mapping),
      capacity,
      holds_sender: Cell::new(false),
      holds_receiver: Cell::new(false),
      head: Cell::new(0),
      tail_seen: Cell::new(0),
      tail: Cell::new(0),
      head_seen: Cell::new(0),
      life_checked: [Cell::new(None), Cell::new(None)],
    })
  }

  pub fn capacity(&self) -> u64 {
    self.capacity
  }

  /// The descriptor, for passing the channel to another process.
  pub fn fd(&self) -> RawFd {
    self.fd.as_raw_fd()
  }

  /// Runs `body`, guarding what it touches of the channel's memory (see
  /// `Mapping::guarded`): if a peer shrank the object under the channel,
  /// the call fails with `Shrunk`, and so does every call after it,
  /// instead of ending the process with SIGBUS.
  pub fn guarded<T>(mapping: &Mapping, body: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    let start = mapping.address().as_ptr().cast::<u8>();
    mapping.guarded(start, mapping.length(), body)?
  }

  pub fn mapping(&self) -> &Arc<Mapping> {
    &self.mapping
  }

  pub fn holds(&self, end: End) -> bool {
    match end {
      End::Sender => self.holds_sender.get(),
      End::Receiver => self.holds_receiver.get(),
    }
  }

  fn u64_at(&self, at: usize) -> &AtomicU64 {
    debug_assert!(at.is_multiple_of(8) && at + 8 <= HEADER_BYTES as usize);
    // SAFETY: every offset passed is a header field's (layout.rs), 8-aligned
    // and inside the header page, which the mapping (page-aligned, read and
    // write) covers for as long as `self` lives. Other processes change it
    // concurrently, which is what atomics are for.
    unsafe { &*self.base().add(at).cast::<AtomicU64>() }
  }

  fn u32_at(&self, at: usize) -> &AtomicU32 {
    debug_assert!(at.is_multiple_of(4) && at + 4 <= HEADER_BYTES as usize);
    // SAFETY: as in `u64_at`, for a 4-aligned field.
    unsafe { &*self.base().add(at).cast::<AtomicU32>() }
  }

  fn base(&self) -> *mut u8 {
    self.mapping.address().as_ptr().cast()
  }

  /// The address of the ring's byte at offset `offset` (< capacity).
  pub fn ring_address(&self, offset: u64) -> usize {
    debug_assert!(offset <= self.capacity);
    self.base() as usize + (HEADER_BYTES + offset) as usize
  }

  /// The sleeping word of `end`, as a word JavaScript's asynchronous waits
  /// can watch (it keeps the mapping alive while they do).
  pub fn sleeping_word(&self, end: End) -> Outcome<Word> {
    Word::new(
      Arc::clone(&self.mapping),
      sleeping_at(end),
      ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
    )
  }

  /// Takes `end` if this handle does not hold it yet.
  fn hold(&self, end: End) -> Outcome<()> {
    if self.holds(end) {
      return Ok(());
    }
    ends::take(self.fd(), self.identity, end, self.u64_at(end.holder_at()))?;
    let counts = self.read_counts();
    if let Err(failure) = counts {
      ends::give_up(self.fd(), self.identity, end, self.u64_at(end.holder_at()));
      return Err(failure);
    }
    let (head, tail) = counts?;
    self.u32_at(end.state_at()).store(1, Ordering::SeqCst);
    match end {
      End::Sender => {
        self.head.set(head);
        self.tail_seen.set(tail);
        self.holds_sender.set(true);
      }
      End::Receiver => {
        self.tail.set(tail);
        self.head_seen.set(head);
        self.holds_receiver.set(true);
      }
    }
    Ok(())
  }

  fn read_counts(&self) -> Outcome<(u64, u64)> {
    let head = self.u64_at(HEAD_AT).load(Ordering::Acquire);
    let tail = self.u64_at(TAIL_AT).load(Ordering::Acquire);
    check_counts(self.capacity, head, tail)?;
    Ok((head, tail))
  }

  /// Takes the sending end now (the first send would), so that a handle
  /// can claim its role before it has anything to send.
  #[cfg(test)]
  pub fn take(&self, end: End) -> Outcome<()> {
    self.hold(end)
  }

  /// Sends `length` bytes from `data`, waiting while the ring is full until
  /// `deadline` (None: forever); false if it passed. `alive` is asked
  /// between two sleeps whether the caller's environment still runs.
  ///
  /// # Safety
  /// `data .. data + length` must be readable for the whole call. It may
  /// overlap the ring (a view of it); it is copied with memmove.
  pub unsafe fn send(
    &self,
    data: *const u8,
    length: usize,
    deadline: Deadline,
    alive: &mut dyn FnMut() -> bool,
  ) -> Outcome<bool> {
    let largest = largest_message(self.capacity);
    if length as u64 > largest {
      return Err(Failure::OutOfRange(format!(
        "The value of \"data.byteLength\" is out of range. It must be <= {largest} (the ring's capacity less 8). Received {length}"
      )));
    }
    self.hold(End::Sender)?;
    if self.u32_at(ENDED_AT).load(Ordering::Acquire) != 0 {
      return Err(Failure::ChannelEnded);
    }
    let record = record_bytes(length as u64);
    let mut head = self.head.get();
    let (padding, _) = placement(self.capacity, head, record);
    if padding > 0 {
      // Padding is published on its own: together with a large record it
      // could need more than the whole ring, and never fit.
      if !self.make_room(head, padding, deadline, alive)? {
        return Ok(false);
      }
      self.write_record_header(head, 0, KIND_PADDING);
      head += padding;
      self.publish(head);
    }
    if !self.make_room(head, record, deadline, alive)? {
      return Ok(false);
    }
    self.write_record_header(head, length as u32, KIND_MESSAGE);
    let payload = self.ring_address(head % self.capacity + RECORD_HEADER) as *mut u8;
    // SAFETY: `make_room` made sure the receiver is done with these bytes,
    // and `placement` that the record ends at or before the ring's end; the
    // caller vouches for `data`. memmove, since `data` may be a view of the
    // ring itself.
    unsafe { std::ptr::copy(data, payload, length) };
    self.publish(head + record);
    Ok(true)
  }

  /// Waits until `needed` bytes are free after `head`; false if `deadline`
  /// passed first.
  fn make_room(
    &self,
    head: u64,
    needed: u64,
    deadline: Deadline,
    alive: &mut dyn FnMut() -> bool,
  ) -> Outcome<bool> {
    if self.has_room(head, needed)? {
      self.check_receiver_now_and_then()?;
      return Ok(true);
    }
    self.wait_for(End::Sender, deadline, alive, &mut || {
      self.has_room(head, needed)
    })
  }

  /// Publishes everything written up to count `head`, and wakes the
  /// receiver if it sleeps.
  fn publish(&self, head: u64) {
    self.head.set(head);
    self.u64_at(HEAD_AT).store(head, Ordering::SeqCst);
    self.wake(End::Receiver);
  }

  fn write_record_header(&self, at: u64, length: u32, kind: u32) {
    let offset = at % self.capacity;
    let record = self.ring_address(offset) as *mut u32;
    // SAFETY: `offset` is a multiple of 8 below the capacity (every count
    // is a multiple of 8, checked when the end was taken and kept so), so
    // the 8 bytes lie in the ring, aligned; the receiver does not read them
    // until `head` passes them.
    unsafe {
      record.write(length.to_le());
      record.add(1).write(kind.to_le());
    }
  }

  /// Whether `needed` bytes are free after `head`, reading the receiver's
  /// `tail` only when the last one read says there are not.
  fn has_room(&self, head: u64, needed: u64) -> Outcome<bool> {
    if self.capacity - (head - self.tail_seen.get()) >= needed {
      return Ok(true);
    }
    // SeqCst: this is the second half of a sleeping sender's announcement
    // (store its word, then load the tail), see CHANNEL-LAYOUT.md.
    let tail = self.u64_at(TAIL_AT).load(Ordering::SeqCst);
    check_counts(self.capacity, head, tail)?;
    if tail < self.tail_seen.get() {
      return Err(Failure::ChannelCorrupt(format!(
        "tail went back from {} to {tail}",
        self.tail_seen.get()
      )));
    }
    self.tail_seen.set(tail);
    Ok(self.capacity - (head - tail) >= needed)
  }

  /// A sender that never blocks still learns, within a fraction of a
  /// second, that its receiver died.
  fn check_receiver_now_and_then(&self) -> Outcome<()> {
    if self.peer_gone_lately(End::Sender)? {
      return Err(Failure::PeerGone(End::Receiver.name()));
    }
    Ok(())
  }

  /// `peer_gone`, but at most one system call per `LIFE_CHECK_EVERY`: a
  /// peer found alive that recently counts as alive. Polls and waits that
  /// come and go quickly (an asynchronous round trip) then cost no call.
  fn peer_gone_lately(&self, mine: End) -> Outcome<bool> {
    let checked = &self.life_checked[mine as usize];
    let now = Instant::now();
    if checked
      .get()
      .is_some_and(|then| now.duration_since(then) < LIFE_CHECK_EVERY)
    {
      return Ok(false);
    }
    let gone = self.peer_gone(mine)?;
    checked.set((!gone).then_some(now));
    Ok(gone)
  }

  /// Clears the states of the ends this handle holds, before it is
  /// dropped: an explicit close, after which the peer waits for a new
  /// holder instead of hearing that this one is gone.
  pub fn leave(&self) {
    for end in [End::Sender, End::Receiver] {
      if self.holds(end) {
        self.u32_at(end.state_at()).store(0, Ordering::SeqCst);
      }
    }
  }

  /// Marks the sending end ended: the receiver gets every message sent so
  /// far, then `Next::Ended`.
  pub fn end(&self) -> Outcome<()> {
    self.hold(End::Sender)?;
    self.u32_at(ENDED_AT).store(1, Ordering::SeqCst);
    self.wake(End::Receiver);
    Ok(())
  }

  /// Finds the next message, waiting until `deadline`; it stays in the
  /// ring until `consume`. Padding records are consumed on the way.
  pub fn next(&self, deadline: Deadline, alive: &mut dyn FnMut() -> bool) -> Outcome<Next> {
    self.hold(End::Receiver)?;
    loop {
      let tail = self.tail.get();
      match self.published_after(tail)? {
        Some(Record::Padding { next }) => self.consume(next),
        Some(Record::Message {
          offset,
          length,
          next,
        }) => {
          return Ok(Next::Message {
            at: self.ring_address(offset),
            length: length as usize,
            next,
          })
        }
        None => {
          if self.u32_at(ENDED_AT).load(Ordering::Acquire) != 0 {
            // `ended` is stored after the last head: look once more.
            if self.published_after(tail)?.is_none() {
              return Ok(Next::Ended);
            }
          } else if !self.wait_for(End::Receiver, deadline, alive, &mut || self.has_data(tail))? {
            return Ok(Next::TimedOut);
          }
        }
      }
    }
  }

  /// The message after count `tail` (which the caller advances itself,
  /// past the messages of a batch it has not consumed yet), if the sender
  /// has published one: its place, length, and the count after it. Padding
  /// is skipped without being consumed. For a batch, which gives the ring
  /// back once, at its end (`consume`).
  pub fn following(&self, tail: u64) -> Outcome<Option<(usize, usize, u64)>> {
    let mut tail = tail;
    loop {
      match self.published_after(tail)? {
        None => return Ok(None),
        Some(Record::Padding { next }) => tail = next,
        Some(Record::Message {
          offset,
          length,
          next,
        }) => return Ok(Some((self.ring_address(offset), length as usize, next))),
      }
    }
  }

  /// The record at count `tail`, checked, if the sender has published it
  /// (reading `head` again only when the last one read is used up).
  fn published_after(&self, tail: u64) -> Outcome<Option<Record>> {
    let mut head = self.head_seen.get();
    if head == tail {
      head = self.u64_at(HEAD_AT).load(Ordering::Acquire);
      if head == tail {
        return Ok(None);
      }
      check_counts(self.capacity, head, tail)?;
      if head < self.head_seen.get() {
        return Err(Failure::ChannelCorrupt(format!(
          "head went back from {} to {head}",
          self.head_seen.get()
        )));
      }
      self.head_seen.set(head);
    }
    let offset = tail % self.capacity;
    let header = self.ring_address(offset) as *const u32;
    // SAFETY: `offset` is 8-aligned and below the capacity, so the record's
    // 8-byte header lies inside the ring; the sender published it
    // (head > tail). A hostile peer may still change the numbers under us:
    // they are only checked and used as read here.
    let (length, kind) = unsafe {
      (
        u32::from_le(header.read_volatile()),
        u32::from_le(header.add(1).read_volatile()),
      )
    };
    check_record(self.capacity, head, tail, length, kind).map(Some)
  }

  fn has_data(&self, tail: u64) -> Outcome<bool> {
    Ok(
      self.u64_at(HEAD_AT).load(Ordering::SeqCst) != tail
        || self.u32_at(ENDED_AT).load(Ordering::SeqCst) != 0,
    )
  }

  /// Gives the ring space up to count `next` back to the sender.
  pub fn consume(&self, next: u64) {
    self.tail.set(next);
    self.u64_at(TAIL_AT).store(next, Ordering::SeqCst);
    self.wake(End::Sender);
  }

  /// Wakes `end` if it says it sleeps.
  fn wake(&self, end: End) {
    let word = self.u32_at(sleeping_at(end));
    if word.load(Ordering::SeqCst) != 0 {
      word.store(0, Ordering::SeqCst);
      wait::notify(word, u32::MAX);
    }
  }

  /// Whether the other end's holder died: its state says held, and nobody
  /// holds its lock.
  pub fn peer_gone(&self, mine: End) -> Outcome<bool> {
    let theirs = mine.other();
    let state = self.u32_at(theirs.state_at());
    if state.load(Ordering::SeqCst) == 0 {
      return Ok(false);
    }
    if ends::is_held(
      self.fd(),
      self.identity,
      theirs,
      self.u64_at(theirs.holder_at()),
    )? {
      return Ok(false);
    }
    // Nobody holds the end: its holder died, or closed between the two
    // looks (a holder clears the state before it lets go). Only a state
    // still set means death, unless a new holder took the end meanwhile
    // (it takes the lock, then sets the state): a last look at the lock.
    if state.load(Ordering::SeqCst) == 0 {
      return Ok(false);
    }
    Ok(!ends::is_held(
      self.fd(),
      self.identity,
      theirs,
      self.u64_at(theirs.holder_at()),
    )?)
  }

  /// Announces that `end` is about to sleep and looks once more: `Ready`
  /// if there is work after all (the announcement withdrawn), `Gone` if
  /// the peer died, else `Sleep`, and the caller may sleep while the
  /// sleeping word holds 1 (asynchronously, say).
  pub fn prepare_sleep(&self, end: End) -> Outcome<Prepared> {
    self.hold(end)?;
    // Looked at before the announcement (none is made when there is work
    // already) and after it (the second half of the sleeper's fence).
    let has_work = || -> Outcome<bool> {
      match end {
        End::Receiver => self.has_data(self.tail.get()),
        // The room the caller last lacked is unknown here: any progress of
        // the receiver is worth a look.
        End::Sender => Ok(self.u64_at(TAIL_AT).load(Ordering::SeqCst) != self.tail_seen.get()),
      }
    };
    if has_work()? {
      return Ok(Prepared::Ready);
    }
    self.u32_at(sleeping_at(end)).store(1, Ordering::SeqCst);
    // As in `wait_for`, an announcement is never withdrawn here: the
    // waker clears the word.
    if has_work()? {
      return Ok(Prepared::Ready);
    }
    if self.peer_gone_lately(end)? {
      return Ok(Prepared::Gone);
    }
    if probe::cut_here() {
      return Err(Failure::Shrunk);
    }
    Ok(Prepared::Sleep)
  }

  /// Waits until `ready` says yes (true) or `deadline` passes (false):
  /// spins for `SPIN`, then sleeps on `end`'s sleeping word in slices of
  /// at most `SLEEP_SLICE`, looking at the peer's life before each.
  fn wait_for(
    &self,
    end: End,
    deadline: Deadline,
    alive: &mut dyn FnMut() -> bool,
    ready: &mut dyn FnMut() -> Outcome<bool>,
  ) -> Outcome<bool> {
    if deadline.is_none_or(|d| d > Instant::now()) {
      let spin_until = Instant::now() + SPIN;
      let mut turns: u32 = 0;
      loop {
        if ready()? {
          return Ok(true);
        }
        std::hint::spin_loop();
        turns = turns.wrapping_add(1);
        if turns.is_multiple_of(64) {
          let now = Instant::now();
          if now >= spin_until || deadline.is_some_and(|d| now >= d) {
            break;
          }
        }
      }
    }
    let word = self.u32_at(sleeping_at(end));
    loop {
      // Past the deadline: one last look, without announcing a sleep.
      if deadline.is_some_and(|d| Instant::now() >= d) {
        if ready()? {
          return Ok(true);
        }
        if self.peer_gone_lately(end)? {
          return Err(Failure::PeerGone(end.other().name()));
        }
        return Ok(false);
      }
      // Once announced, the word stays 1 until the waker clears it, even
      // when this wait ends without sleeping: an asynchronous wait of this
      // end may sleep on it too, and clearing it here would hide that one
      // from the waker. A 1 nobody sleeps on costs the waker one futex call.
      word.store(1, Ordering::SeqCst);
      if ready()? {
        return Ok(true);
      }
      if self.peer_gone(end)? {
        if ready()? {
          return Ok(true);
        }
        return Err(Failure::PeerGone(end.other().name()));
      }
      // Past a cut (see `guarded`) the words read are a stand-in's, which
      // no one will change.
      if probe::cut_here() {
        return Err(Failure::Shrunk);
      }
      let now = Instant::now();
      let slice_end = now + SLEEP_SLICE;
      let until = deadline.map_or(slice_end, |d| d.min(slice_end));
      // Asleep, this thread holds no guard slot (see `probe::unguarded`).
      if let Waited::Failed(errno, syscall) =
        probe::unguarded(|| wait::sleep(word, 1, Some(until), SLEEP_SLICE, &mut || true))
      {
        return Err(Failure::Sys { errno, syscall });
      }
      if !alive() {
        return Err(Failure::Sys {
          errno: nix::errno::Errno::ECANCELED,
          syscall: "futex",
        });
      }
    }
  }
}

impl Drop for Channel {
  /// A handle dropped without `leave` (collected, or torn down with its
  /// worker or process) gives its ends up with their states still set:
  /// to the peer it is gone, as a holder that died, and the peer hears
  /// ERR_SHM_PEER_GONE once it has received everything.
  fn drop(&mut self) {
    let number = self.fd();
    // JavaScript may have closed our number (fs.closeSync) and an open may
    // have reused it: then our locks went with our descriptor, and the
    // number is left alone, neither unlocked (-1 fails with EBADF) nor
    // closed.
    let ours = self.descriptor.is_of(self.fd.as_fd());
    let fd = if ours { number } else { -1 };
    // Held by process, giving up an end writes the header: guarded, as a
    // peer may have shrunk the object. Not through `Channel::guarded`,
    // which refuses a mapping cut before: the ends must be given up all
    // the same (the lock, this process's table, and our id where the
    // header page is still the object's; a stand-in page takes the write
    // harmlessly).
    let start = self.mapping.address().as_ptr().cast::<u8>();
    let _ = probe::guarded(start, self.mapping.length(), true, || {
      for end in [End::Sender, End::Receiver] {
        if self.holds(end) {
          ends::give_up(fd, self.identity, end, self.u64_at(end.holder_at()));
        }
      }
    });
    // SAFETY: `fd` is taken once, here, and never used after.
    let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
    if ours {
      drop(fd);
    } else {
      let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
    }
    owner::unreserve(number);
    // The mapping's last holder (this, or a lent view) unmaps it.
  }
}

/// When a wait gives up: None waits forever.
pub type Deadline = Option<Instant>;

/// What `prepare_sleep` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
  Ready,
  Gone,
  Sleep,
}

fn sleeping_at(end: End) -> usize {
  match end {
    End::Sender => SENDER_SLEEPING_AT,
    End::Receiver => RECEIVER_SLEEPING_AT,
  }
}

/// A random id for a new channel (see `Channel::new`); a fixed pattern if
/// the system's source fails, which only weakens telling two channels of
/// one process apart on macOS.
fn new_id() -> u64 {
  let mut bytes = [0u8; 8];
  match getrandom::fill(&mut bytes) {
    Ok(()) => u64::from_ne_bytes(bytes),
    Err(_) => 0x5a5a_5a5a_5a5a_5a5a ^ u64::from(std::process::id()),
  }
}

fn read_fixed(header: &Mapping) -> Fixed {
  let base: *const u8 = header.address().as_ptr().cast();
  // SAFETY: the header mapping is one page, readable, page-aligned; the
  // fields lie inside it at their natural alignment. The magic is read
  // first with acquire ordering, pairing with the creator's release store.
  unsafe {
    Fixed {
      magic: (*base.add(MAGIC_AT).cast::<AtomicU64>()).load(Ordering::Acquire),
      version: (*base.add(VERSION_AT).cast::<AtomicU32>()).load(Ordering::Relaxed),
      header_bytes: (*base.add(HEADER_BYTES_AT).cast::<AtomicU32>()).load(Ordering::Relaxed),
      capacity: (*base.add(CAPACITY_AT).cast::<AtomicU64>()).load(Ordering::Relaxed),
      id: (*base.add(ID_AT).cast::<AtomicU64>()).load(Ordering::Relaxed),
    }
  }
}

fn map(fd: &OwnedFd, length: u64) -> Outcome<Mapping> {
  let length = usize::try_from(length)
    .ok()
    .and_then(NonZeroUsize::new)
    .ok_or_else(|| Failure::OutOfRange(format!("a channel of {length} bytes cannot be mapped")))?;
  Mapping::map_shared(
    fd.as_fd(),
    length,
    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
    0,
  )
}

/// A descriptor of the handle's own for the object behind `fd`.
///
/// Where ends are held by lock (Linux), the handle needs an open file
/// description no other process shares, or a process that passed `fd`
/// would hold its ends through ours. A `fresh` descriptor (the caller just
/// opened it and closes its copy next) is one, and a duplicate of it
/// serves; any other is opened afresh through /proc/self/fd, and refused
/// where /proc is missing. Where ends are held by process, a duplicate
/// always serves.
fn reopen(fd: RawFd, fresh: bool) -> Outcome<OwnedFd> {
  let stat =
    descriptor::with_fd(fd, |fd| nix::sys::stat::fstat(fd)).map_err(Failure::sys("fstat"))?;
  #[cfg(target_os = "linux")]
  if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
    return Err(Failure::NotAChannel(
      "the descriptor is not a shared memory object or a file".into(),
    ));
  }
  if descriptor::is_read_only(fd)? {
    return Err(Failure::InvalidValue(
      "The descriptor was opened read-only; a channel's ends write to it".into(),
    ));
  }
  #[cfg(target_os = "linux")]
  if !fresh && ends::holding() == ends::Holding::Locks {
    return open_afresh(fd, &stat);
  }
  #[cfg(not(target_os = "linux"))]
  let _ = (stat, fresh);
  let copy = descriptor::duplicate(fd)?;
  // SAFETY: `duplicate` returned a new descriptor that nothing else owns.
  Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The object behind `fd` (whose fstat is `stat`), opened again through
/// /proc/self/fd: a new open file description, read and write.
#[cfg(target_os = "linux")]
fn open_afresh(fd: RawFd, stat: &nix::sys::stat::FileStat) -> Outcome<OwnedFd> {
  let path = format!("/proc/self/fd/{fd}");
  let owned = nix::fcntl::open(
    path.as_str(),
    nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
    nix::sys::stat::Mode::empty(),
  )
  .map_err(|errno| match errno {
    nix::errno::Errno::ENOENT => Failure::Platform {
      errno,
      syscall: "open",
      detail: format!(
        "a channel from a passed descriptor opens it afresh through {path}, and /proc is not mounted"
      ),
    },
    errno => Failure::Sys {
      errno,
      syscall: "open",
    },
  })?;
  // The path could name another object if `fd` was closed and reused
  // between the two calls; the same device and inode say it did not.
  let again = nix::sys::stat::fstat(owned.as_fd()).map_err(Failure::sys("fstat"))?;
  if (again.st_dev, again.st_ino) != (stat.st_dev, stat.st_ino) {
    return Err(Failure::Sys {
      errno: nix::errno::Errno::EBADF,
      syscall: "open",
    });
  }
  Ok(owned)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
  use super::*;
  use std::os::fd::IntoRawFd;

  fn memfd() -> OwnedFd {
    nix::sys::memfd::memfd_create(c"channel-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap()
  }

  fn never_cancelled() -> bool {
    true
  }

  fn receive(channel: &Channel) -> Option<Vec<u8>> {
    match channel
      .next(Some(Instant::now()), &mut never_cancelled)
      .unwrap()
    {
      Next::Message { at, length, next } => {
        // SAFETY: `next` checked the message lies in the ring.
        let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, length) }.to_vec();
        channel.consume(next);
        Some(bytes)
      }
      _ => None,
    }
  }

  #[test]
  fn messages_wrap_around_the_ring_in_order() {
    let fd = memfd();
    let sender = Channel::create(fd.as_raw_fd(), 4096, false).unwrap();
    let receiver = Channel::attach(fd.as_raw_fd(), false).unwrap();
    for round in 0..2000u32 {
      let message: Vec<u8> = (0..(round % 700)).map(|i| (i ^ round) as u8).collect();
      // SAFETY: `message` lives across the call.
      let sent =
        unsafe { sender.send(message.as_ptr(), message.len(), None, &mut never_cancelled) };
      assert!(sent.unwrap());
      assert_eq!(receive(&receiver).unwrap(), message);
    }
    sender.end().unwrap();
    assert_eq!(
      receiver.next(None, &mut never_cancelled).unwrap(),
      Next::Ended
    );
  }

  #[test]
  fn an_end_is_held_once_and_freed_by_drop() {
    let fd = memfd();
    let first = Channel::create(fd.as_raw_fd(), 4096, false).unwrap();
    let second = Channel::attach(fd.as_raw_fd(), false).unwrap();
    first.take(End::Sender).unwrap();
    assert!(matches!(
      second.take(End::Sender),
      Err(Failure::ChannelBusy(_))
    ));
    drop(first);
    second.take(End::Sender).unwrap();
  }

  #[test]
  fn a_full_ring_times_out_and_a_huge_message_is_refused() {
    let fd = memfd();
    let channel = Channel::create(fd.as_raw_fd(), 4096, false).unwrap();
    let block = vec![7u8; 2000];
    let soon = || Some(Instant::now() + Duration::from_millis(5));
    // SAFETY: `block` lives across the calls.
    unsafe {
      assert!(channel
        .send(block.as_ptr(), 2000, soon(), &mut never_cancelled)
        .unwrap());
      assert!(channel
        .send(block.as_ptr(), 2000, soon(), &mut never_cancelled)
        .unwrap());
      assert!(!channel
        .send(block.as_ptr(), 2000, soon(), &mut never_cancelled)
        .unwrap());
      let huge = vec![0u8; 4096];
      assert!(matches!(
        channel.send(huge.as_ptr(), 4096, soon(), &mut never_cancelled),
        Err(Failure::OutOfRange(_))
      ));
    }
  }

  #[test]
  fn the_largest_message_fits_after_a_wrap() {
    let fd = memfd();
    let sender = Channel::create(fd.as_raw_fd(), 4096, false).unwrap();
    let receiver = Channel::attach(fd.as_raw_fd(), false).unwrap();
    let small = [3u8; 100];
    let largest = vec![9u8; 4088];
    let soon = || Some(Instant::now() + Duration::from_millis(5));
    // SAFETY: the messages live across the calls.
    unsafe {
      assert!(sender
        .send(small.as_ptr(), 100, None, &mut never_cancelled)
        .unwrap());
      assert_eq!(receive(&receiver).unwrap(), small);
      // The padding goes out alone; the record waits for the whole ring.
      assert!(!sender
        .send(largest.as_ptr(), 4088, soon(), &mut never_cancelled)
        .unwrap());
      assert_eq!(receive(&receiver), None);
      assert!(sender
        .send(largest.as_ptr(), 4088, soon(), &mut never_cancelled)
        .unwrap());
    }
    assert_eq!(receive(&receiver).unwrap(), largest);
  }

  #[test]
  fn a_scribbled_header_is_an_error_not_a_crash() {
    let fd = memfd();
    let sender = Channel::create(fd.as_raw_fd(), 4096, false).unwrap();
    let receiver = Channel::attach(fd.as_raw_fd(), false).unwrap();
    let message = [1u8; 16];
    // SAFETY: `message` lives across the call.
    unsafe { sender.send(message.as_ptr(), 16, None, &mut never_cancelled) }.unwrap();
    // A length that runs past what was published.
    // SAFETY: the record header is at the ring's start, inside the mapping.
    unsafe { (sender.ring_address(0) as *mut u32).write(1 << 20) };
    assert!(matches!(
      receiver.next(None, &mut never_cancelled),
      Err(Failure::ChannelCorrupt(_))
    ));
    sender.u64_at(HEAD_AT).store(u64::MAX - 7, Ordering::SeqCst);
    assert!(matches!(
      receiver.next(None, &mut never_cancelled),
      Err(Failure::ChannelCorrupt(_))
    ));
  }

  #[test]
  fn a_channel_is_made_only_in_an_empty_object() {
    let fd = memfd();
    nix::unistd::ftruncate(&fd, 65536).unwrap();
    assert!(matches!(
      Channel::create(fd.as_raw_fd(), 4096, false),
      Err(Failure::InvalidValue(_))
    ));
    assert_eq!(descriptor::object_size(fd.as_raw_fd()).unwrap(), 65536);
  }

  #[test]
  fn an_object_that_is_no_channel_is_refused() {
    let fd = memfd();
    nix::unistd::ftruncate(&fd, 8192).unwrap();
    let mapping = map(&fd, 8).unwrap();
    // SAFETY: the mapping is one writable page.
    unsafe { mapping.address().as_ptr().cast::<u64>().write(42) };
    assert!(matches!(
      Channel::attach(fd.as_raw_fd(), false),
      Err(Failure::NotAChannel(_))
    ));
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is ours, taken from `fd` above.
    drop(unsafe { OwnedFd::from_raw_fd(raw) });
  }
}
