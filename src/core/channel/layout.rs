//! The channel's layout in shared memory, version 1, as CHANNEL-LAYOUT.md
//! writes it down for peers in other languages: where each header field
//! lies, and the checks that every count and record read from the ring
//! passes before it is used. Everything here is pure arithmetic on numbers
//! a peer could have scribbled, so it is unit-tested on its own.

use crate::core::failure::{Failure, Outcome};

/// The header's size; the ring starts here.
pub const HEADER_BYTES: u64 = 4096;
/// `PSHMCHAN`, read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"PSHMCHAN");
pub const VERSION: u32 = 1;
pub const MIN_CAPACITY: u64 = 4096;
pub const MAX_CAPACITY: u64 = 1 << 30;

pub const MAGIC_AT: usize = 0;
pub const VERSION_AT: usize = 8;
pub const HEADER_BYTES_AT: usize = 12;
pub const CAPACITY_AT: usize = 16;
pub const ID_AT: usize = 24;
pub const HEAD_AT: usize = 64;
pub const ENDED_AT: usize = 72;
pub const SENDER_STATE_AT: usize = 76;
pub const SENDER_HOLDER_AT: usize = 80;
pub const TAIL_AT: usize = 128;
pub const RECEIVER_STATE_AT: usize = 136;
pub const RECEIVER_HOLDER_AT: usize = 144;
pub const RECEIVER_SLEEPING_AT: usize = 192;
pub const SENDER_SLEEPING_AT: usize = 256;

/// A record's own header: length (u32) and kind (u32).
pub const RECORD_HEADER: u64 = 8;
pub const KIND_MESSAGE: u32 = 1;
pub const KIND_PADDING: u32 = 2;

/// The ring's size for a requested capacity: the next power of two, at
/// least `MIN_CAPACITY`; refused past `MAX_CAPACITY`.
pub fn capacity_for(requested: u64) -> Outcome<u64> {
  if requested > MAX_CAPACITY {
    return Err(Failure::OutOfRange(format!(
      "The value of \"capacity\" is out of range. It must be <= {MAX_CAPACITY}. Received {requested}"
    )));
  }
  Ok(requested.max(MIN_CAPACITY).next_power_of_two())
}

/// Whether a capacity read from a header is one version 1 allows.
pub fn capacity_is_valid(capacity: u64) -> bool {
  (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) && capacity.is_power_of_two()
}

/// The largest message a ring of `capacity` bytes can ever hold.
pub fn largest_message(capacity: u64) -> u64 {
  capacity - RECORD_HEADER
}

/// The bytes a message of `length` takes in the ring.
pub fn record_bytes(length: u64) -> u64 {
  RECORD_HEADER + length.div_ceil(8) * 8
}

/// Where a record goes when the sender is at count `head`: the padding
/// needed first (0 if the record fits before the ring's end), and the
/// total of both. The sender publishes padding on its own: both together
/// may need more than the whole ring.
pub fn placement(capacity: u64, head: u64, record: u64) -> (u64, u64) {
  let offset = head % capacity;
  let to_end = capacity - offset;
  let padding = if record > to_end { to_end } else { 0 };
  (padding, padding + record)
}

/// Checks the two counts as a receiver or sender reads them: the tail is
/// never past the head, nor more than a ring behind it, and both are
/// multiples of 8. Counts start at 0 and grow by bytes sent, so they never
/// wrap: a pair that only fits if they did is a scribble.
pub fn check_counts(capacity: u64, head: u64, tail: u64) -> Outcome<()> {
  let fits = head.checked_sub(tail).is_some_and(|used| used <= capacity);
  if !fits || !head.is_multiple_of(8) || !tail.is_multiple_of(8) {
    return Err(corrupt(format!(
      "head {head} and tail {tail} are not counts of one ring of {capacity} bytes"
    )));
  }
  Ok(())
}

/// What the record at count `tail` is, given its header fields as read,
/// once checked against the ring and against what has been published.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Record {
  /// A message of `length` bytes whose payload starts `offset` bytes into
  /// the ring; the record ends at count `next`.
  Message { offset: u64, length: u64, next: u64 },
  /// Padding to the ring's end; the next record is at count `next`.
  Padding { next: u64 },
}

/// Checks the record at count `tail`, whose header reads `length` and
/// `kind`, with the sender at `head` (`check_counts` passed, and
/// `head != tail`).
pub fn check_record(
  capacity: u64,
  head: u64,
  tail: u64,
  length: u32,
  kind: u32,
) -> Outcome<Record> {
  let offset = tail % capacity;
  let available = head - tail;
  match kind {
    KIND_PADDING => {
      let to_end = capacity - offset;
      if length != 0 || to_end > available {
        return Err(corrupt(format!(
          "a padding record at {tail} has length {length} (not 0) or runs past what the sender published ({head})"
        )));
      }
      Ok(Record::Padding {
        next: tail + to_end,
      })
    }
    KIND_MESSAGE => {
      let bytes = record_bytes(u64::from(length));
      if offset + bytes > capacity || bytes > available {
        return Err(corrupt(format!(
          "a message of {length} bytes at {tail} runs past the ring's end or past what the sender published ({head})"
        )));
      }
      Ok(Record::Message {
        offset: offset + RECORD_HEADER,
        length: u64::from(length),
        next: tail + bytes,
      })
    }
    other => Err(corrupt(format!(
      "the record at {tail} has kind {other}, neither a message (1) nor padding (2)"
    ))),
  }
}

/// What a header's fixed fields say, once read.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Fixed {
  pub magic: u64,
  pub version: u32,
  pub header_bytes: u32,
  pub capacity: u64,
  /// The channel's random id (0 from a creator that writes none).
  pub id: u64,
}

/// The capacity of a channel whose fixed fields read `fixed`, in an
/// object of `size` bytes; or why it is not one. A magic of 0 is asked
/// about separately: the creator may not have finished.
pub fn check_fixed(fixed: Fixed, size: u64) -> Outcome<u64> {
  if fixed.magic != MAGIC {
    return Err(Failure::NotAChannel(
      "the object does not start with a channel's header (magic PSHMCHAN)".into(),
    ));
  }
  if fixed.version != VERSION {
    return Err(Failure::NotAChannel(format!(
      "the channel's layout is version {}, and this posix-shm knows only version {VERSION}",
      fixed.version
    )));
  }
  if u64::from(fixed.header_bytes) != HEADER_BYTES || !capacity_is_valid(fixed.capacity) {
    return Err(corrupt(format!(
      "the header says {} header bytes and a capacity of {}",
      fixed.header_bytes, fixed.capacity
    )));
  }
  if size < HEADER_BYTES + fixed.capacity {
    return Err(corrupt(format!(
      "the object has {size} bytes, fewer than its header and ring need ({})",
      HEADER_BYTES + fixed.capacity
    )));
  }
  Ok(fixed.capacity)
}

fn corrupt(detail: String) -> Failure {
  Failure::ChannelCorrupt(detail)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn capacities_round_up_to_a_power_of_two() {
    assert_eq!(capacity_for(0).unwrap(), 4096);
    assert_eq!(capacity_for(4097).unwrap(), 8192);
    assert_eq!(capacity_for(1 << 30).unwrap(), 1 << 30);
    assert!(capacity_for((1 << 30) + 1).is_err());
    assert!(capacity_is_valid(1 << 20));
    assert!(!capacity_is_valid(3 << 20));
    assert!(!capacity_is_valid(2048));
  }

  #[test]
  fn a_record_that_does_not_fit_before_the_end_is_padded() {
    assert_eq!(record_bytes(0), 8);
    assert_eq!(record_bytes(1), 16);
    assert_eq!(record_bytes(8), 16);
    assert_eq!(placement(4096, 4096 - 16, 16), (0, 16));
    assert_eq!(placement(4096, 4096 - 16, 24), (16, 40));
    assert_eq!(placement(4096, 8192, 4096), (0, 4096));
  }

  #[test]
  fn counts_a_peer_scribbled_on_are_refused() {
    assert!(check_counts(4096, 8, 0).is_ok());
    assert!(check_counts(4096, 4096, 0).is_ok());
    assert!(check_counts(4096, 4104, 0).is_err());
    assert!(check_counts(4096, 0, 8).is_err());
    assert!(check_counts(4096, 9, 0).is_err());
    assert!(check_counts(4096, u64::MAX - 7, 0).is_err());
    // A tail just "past" a wrapped head.
    assert!(check_counts(4096, 0, u64::MAX - 7).is_err());
  }

  #[test]
  fn records_a_peer_scribbled_on_are_refused() {
    assert_eq!(
      check_record(4096, 24, 0, 5, KIND_MESSAGE).unwrap(),
      Record::Message {
        offset: 8,
        length: 5,
        next: 16
      }
    );
    // Past what was published, past the ring's end, an unknown kind.
    assert!(check_record(4096, 8, 0, 5, KIND_MESSAGE).is_err());
    assert!(check_record(4096, 4096, 0, u32::MAX, KIND_MESSAGE).is_err());
    assert!(check_record(4096, 8192 + 8, 4096 + 4088, 8, KIND_MESSAGE).is_err());
    assert!(check_record(4096, 16, 0, 0, 7).is_err());
    assert_eq!(
      check_record(4096, 4096 + 16, 4096 - 8, 0, KIND_PADDING).unwrap(),
      Record::Padding { next: 4096 }
    );
    assert!(check_record(4096, 4096 - 8 + 4, 4096 - 16, 0, KIND_PADDING).is_err());
  }

  #[test]
  fn fixed_fields_are_checked() {
    let good = Fixed {
      magic: MAGIC,
      version: 1,
      header_bytes: 4096,
      capacity: 8192,
      id: 7,
    };
    assert_eq!(check_fixed(good, 4096 + 8192).unwrap(), 8192);
    assert!(matches!(
      check_fixed(Fixed { magic: 1, ..good }, 1 << 20),
      Err(Failure::NotAChannel(_))
    ));
    assert!(matches!(
      check_fixed(Fixed { version: 2, ..good }, 1 << 20),
      Err(Failure::NotAChannel(_))
    ));
    assert!(matches!(
      check_fixed(
        Fixed {
          capacity: 12288,
          ..good
        },
        1 << 20
      ),
      Err(Failure::ChannelCorrupt(_))
    ));
    assert!(matches!(
      check_fixed(good, 8192),
      Err(Failure::ChannelCorrupt(_))
    ));
  }
}
