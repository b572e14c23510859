//! Linux 5.16+: watcher threads that each sleep on up to 127 pending waits
//! at once with `futex_waitv`, plus one private control word that `add`
//! and `Slot::cancel` bump (and wake) to make the watcher look again.
//!
//! `futex_waitv` says which one word woke it. If several of its words are
//! notified at the same instant the others are told nothing: a watcher
//! therefore also settles as "ok" every wait on the woken word with the
//! same expected value, and, whenever the kernel says a value differs
//! (EAGAIN), asks the kernel about each word. A notify that leaves the word
//! unchanged, landing at the same instant as a wake-up for another word of
//! the same watcher, can still go unseen (its waiter sleeps on).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::linux::{self, Many, WaitV, WAITV_MAX};
use super::outcome::Waited;
use super::slot::{lock, Slot, Watched, THREADS};

/// Waits per watcher: the kernel's limit less the control word.
const PER_WATCHER: usize = WAITV_MAX - 1;
/// A watcher arms its call again at least this often: that is how a wait
/// learns that a peer shrank the object under its word (EFAULT).
const RECHECK: Duration = Duration::from_secs(1);
/// A watcher with nothing to watch for this long ends.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
const STACK_SIZE: usize = 64 * 1024;

pub struct Entry {
  pub slot: Arc<Slot>,
  pub word: Box<dyn Watched>,
  pub expected: u32,
  pub deadline: Option<Instant>,
}

struct Watcher {
  control: AtomicU32,
  /// Appended to by `add`; only the watcher's own thread removes, so the
  /// index of an entry in the list it armed stays valid until it looks.
  entries: Mutex<Vec<Entry>>,
  /// How many waits the watcher's current (or next) call sleeps on.
  armed: AtomicUsize,
}

impl Watcher {
  fn kick(&self) {
    self.control.fetch_add(1, Ordering::Release);
    linux::wake_private(&self.control);
  }
}

static WATCHERS: LazyLock<Mutex<Vec<Arc<Watcher>>>> = LazyLock::new(Mutex::default);

fn kicker(watcher: &Arc<Watcher>) -> Box<dyn Fn() + Send + Sync> {
  let weak: Weak<Watcher> = Arc::downgrade(watcher);
  Box::new(move || {
    if let Some(watcher) = weak.upgrade() {
      watcher.kick();
    }
  })
}

/// Hands `entry` to a watcher with room, or to a new one.
pub fn add(entry: Entry) -> std::io::Result<()> {
  let mut watchers = lock(&WATCHERS);
  let slot = Arc::clone(&entry.slot);
  let room = watchers
    .iter()
    .find(|w| lock(&w.entries).len() < PER_WATCHER)
    .cloned();
  let watcher = match room {
    Some(watcher) => {
      lock(&watcher.entries).push(entry);
      watcher
    }
    None => {
      let watcher = Arc::new(Watcher {
        control: AtomicU32::new(0),
        entries: Mutex::new(vec![entry]),
        armed: AtomicUsize::new(0),
      });
      let running = Arc::clone(&watcher);
      std::thread::Builder::new()
        .name("posix-shm-watch".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run(running))?;
      THREADS.fetch_add(1, Ordering::Relaxed);
      watchers.push(Arc::clone(&watcher));
      watcher
    }
  };
  slot.set_kick(kicker(&watcher));
  watcher.kick();
  Ok(())
}

/// What a watcher learnt from its last call.
#[derive(Clone, Copy)]
enum Learnt {
  Nothing,
  /// This entry was woken.
  Woken(usize),
  /// Some value differs, or a page is gone: ask about each word.
  AskEach,
  Failed(Errno),
}

fn run(watcher: Arc<Watcher>) {
  let mut learnt = Learnt::Nothing;
  let mut idle_since: Option<Instant> = None;
  let mut waits: Vec<WaitV> = Vec::with_capacity(WAITV_MAX);
  loop {
    let control = watcher.control.load(Ordering::Acquire);
    let mut finished: Vec<(Entry, Waited)> = Vec::new();
    let wake_at;
    {
      let mut entries = lock(&watcher.entries);
      let now = Instant::now();
      let woken = match learnt {
        Learnt::Woken(index) => entries
          .get(index)
          .map(|e| (e.word.atomic().as_ptr(), e.expected)),
        _ => None,
      };
      let mut index = 0;
      while index < entries.len() {
        let entry = &entries[index];
        let word = entry.word.atomic();
        let outcome = if entry.slot.is_cancelled() {
          Some(Waited::Cancelled)
        } else if woken == Some((word.as_ptr(), entry.expected)) {
          Some(Waited::Ok)
        } else if let Learnt::Failed(errno) = learnt {
          Some(Waited::Failed(errno, "futex_waitv"))
        } else if matches!(learnt, Learnt::AskEach) {
          match super::peek(word, entry.expected) {
            Ok(true) => None,
            Ok(false) => Some(Waited::Ok),
            Err(Waited::Failed(errno, _)) => Some(Waited::Failed(errno, "futex_waitv")),
            Err(other) => Some(other),
          }
        } else {
          None
        };
        let outcome = outcome.or_else(|| {
          entry
            .deadline
            .filter(|d| *d <= now)
            .map(|_| Waited::TimedOut)
        });
        match outcome {
          Some(waited) => finished.push((entries.swap_remove(index), waited)),
          None => index += 1,
        }
      }
      if entries.is_empty() {
        let since = *idle_since.get_or_insert(now);
        if now.duration_since(since) >= IDLE_LIMIT {
          drop(entries);
          if retire(&watcher) {
            return;
          }
          idle_since = None;
          learnt = Learnt::Nothing;
          continue;
        }
        wake_at = since + IDLE_LIMIT;
      } else {
        idle_since = None;
        wake_at = entries
          .iter()
          .filter_map(|e| e.deadline)
          .fold(now + RECHECK, Instant::min);
      }
      waits.clear();
      waits.push(WaitV::private(&watcher.control, control));
      waits.extend(
        entries
          .iter()
          .map(|e| WaitV::shared(e.word.atomic(), e.expected)),
      );
      watcher.armed.store(entries.len(), Ordering::Release);
    }
    for (entry, waited) in finished {
      let Entry { slot, word, .. } = entry;
      drop(word); // the mapping may unmap now
      if waited != Waited::Cancelled {
        slot.settle(waited);
      }
    }
    // SAFETY: every address in `waits` is the control word (owned by
    // `watcher`, alive here) or the word of an entry still in the list;
    // entries leave the list only on this thread, above, and each keeps
    // its mapping mapped while it is there.
    learnt = match unsafe { linux::wait_many(&waits, Some(wake_at)) } {
      Many::Woken(0) | Many::TimedOut | Many::Interrupted => Learnt::Nothing,
      Many::Woken(index) => Learnt::Woken(index - 1),
      // Only the control word moved (a wait was added or cancelled): the
      // next call sees whether any other value differs.
      Many::ValueChanged if watcher.control.load(Ordering::Acquire) != control => Learnt::Nothing,
      Many::ValueChanged | Many::Failed(Errno::EFAULT) => Learnt::AskEach,
      Many::Failed(errno) => Learnt::Failed(errno),
    };
  }
}

/// How many waits the watchers sleep on in the kernel (or are about to):
/// with every watcher asleep, the waits a notify can count.
pub fn armed_count() -> usize {
  lock(&WATCHERS)
    .iter()
    .map(|w| w.armed.load(Ordering::Acquire))
    .sum()
}

/// Takes an idle watcher off the list, unless a wait came in meanwhile.
fn retire(watcher: &Arc<Watcher>) -> bool {
  let mut watchers = lock(&WATCHERS);
  if !lock(&watcher.entries).is_empty() {
    return false;
  }
  watchers.retain(|w| !Arc::ptr_eq(w, watcher));
  THREADS.fetch_sub(1, Ordering::Relaxed);
  true
}
