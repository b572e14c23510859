//! Checks on the numbers that reach the native layer.
//!
//! The facade validates every argument before calling in, with friendlier
//! messages; these checks exist so that the binding, called directly with
//! anything at all, still never hands a nonsense value to a system call.
//! JavaScript numbers arrive as `f64` so that NaN, infinities, fractions and
//! values past 2^53 are seen here rather than silently converted.

use std::os::fd::RawFd;

use crate::core::failure::{Failure, Outcome};

/// The largest integer a JavaScript number holds exactly: 2^53 - 1.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// An integer in `min..=max`, or a RangeError naming `what`.
pub fn integer_in(value: f64, what: &str, min: f64, max: f64) -> Outcome<f64> {
  if value.is_finite() && value.fract() == 0.0 && value >= min && value <= max {
    Ok(value)
  } else {
    Err(Failure::OutOfRange(format!(
      "The value of \"{what}\" is out of range. It must be an integer >= {min} and <= {max}. Received {value}"
    )))
  }
}

/// A file descriptor number: an integer from 0 to 2^31 - 1.
pub fn fd(value: f64) -> Outcome<RawFd> {
  integer_in(value, "fd", 0.0, f64::from(i32::MAX)).map(|v| v as RawFd)
}

/// A byte count or offset: an integer from 0 to 2^53 - 1.
pub fn byte_count(value: f64, what: &str) -> Outcome<u64> {
  integer_in(value, what, 0.0, MAX_SAFE_INTEGER).map(|v| v as u64)
}

/// A set of flag bits that must lie within `allowed`.
pub fn bits_within(value: f64, allowed: u32, what: &str) -> Outcome<u32> {
  let bits = integer_in(value, what, 0.0, f64::from(u32::MAX))? as u32;
  if bits & !allowed != 0 {
    return Err(Failure::InvalidValue(format!(
      "The argument '{what}' has bits outside {allowed:#o}. Received {bits:#o}"
    )));
  }
  Ok(bits)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn integers_outside_the_exact_range_are_refused() {
    for bad in [f64::NAN, f64::INFINITY, -1.0, 0.5, MAX_SAFE_INTEGER + 1.0] {
      assert!(byte_count(bad, "length").is_err(), "{bad} accepted");
    }
    assert_eq!(
      byte_count(MAX_SAFE_INTEGER, "length").unwrap(),
      (1u64 << 53) - 1
    );
  }

  #[test]
  fn fds_must_fit_an_int() {
    assert!(fd(-1.0).is_err());
    assert!(fd(2_147_483_648.0).is_err());
    assert_eq!(fd(7.0).unwrap(), 7);
  }

  #[test]
  fn bits_outside_the_mask_are_refused() {
    assert!(bits_within(0o1000 as f64, 0o777, "mode").is_err());
    assert_eq!(bits_within(0o640 as f64, 0o777, "mode").unwrap(), 0o640);
  }
}
