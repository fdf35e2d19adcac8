//! The core's own clock type: a point in time as a duration since an arbitrary origin.
//!
//! The core never reads a clock. Drivers map their clock to [`Instant`] (tokio:
//! `std::time::Instant` minus a start instant; browser: `performance.now()`), and tests use
//! virtual time, so the same state machine runs everywhere and in simulation.

use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time, measured from an origin the driver picks (e.g. when it started).
///
/// Only differences between instants of the same origin mean anything. Held as whole
/// nanoseconds in a `u64` (584 years from the origin, saturating beyond), not as a
/// `Duration`: the core compares and adds instants everywhere, and one 64-bit integer makes
/// that one instruction instead of a seconds-and-nanoseconds pair to carry between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

/// `d` in whole nanoseconds, saturating at `u64::MAX` (`Duration::as_nanos` is a `u128`).
const fn nanos(d: Duration) -> u64 {
    mul_saturating(d.as_secs(), 1_000_000_000).saturating_add(d.subsec_nanos() as u64)
}

/// `a * b`, or `u64::MAX` if it overflows: what `u64::saturating_mul` returns, without its
/// overflow test, which on wasm32 is a call to a 128-bit multiplication routine at every
/// use (a division by a constant `b` is folded away).
pub(crate) const fn mul_saturating(a: u64, b: u64) -> u64 {
    if b != 0 && a > u64::MAX / b {
        u64::MAX
    } else {
        a * b
    }
}

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);

    /// `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(mul_saturating(millis, 1_000_000))
    }

    /// `d` after the origin.
    pub const fn from_duration(d: Duration) -> Self {
        Instant(nanos(d))
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Whole milliseconds since the origin.
    pub fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos(d)))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Whole milliseconds in `d`, saturating at `u64::MAX`. `Duration::as_millis` returns a
/// `u128`, and its division links a 128-bit division routine (about 1.7 KB of the browser
/// package); no delay or instant the SDK meets needs more than 64 bits of milliseconds.
pub fn millis(d: Duration) -> u64 {
    mul_saturating(d.as_secs(), 1_000).saturating_add(u64::from(d.subsec_millis()))
}

/// [`millis`], rounded up to the next whole millisecond.
#[cfg(any(all(feature = "web", target_arch = "wasm32"), test))]
pub fn millis_ceil(d: Duration) -> u64 {
    millis(d).saturating_add(u64::from(!d.subsec_nanos().is_multiple_of(1_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let a = Instant::from_millis(1_000);
        let b = a + Duration::from_millis(500);
        assert_eq!(b.as_millis(), 1_500);
        assert_eq!(b - a, Duration::from_millis(500));
        assert_eq!(a - b, Duration::ZERO);
        assert!(a < b);
    }

    #[test]
    fn instants_keep_every_nanosecond_and_saturate_far_out() {
        let d = Duration::new(3, 999_999_999);
        assert_eq!(Instant::from_duration(d).since_origin(), d);
        assert_eq!(Instant::from_duration(d).as_millis(), 3_999);
        assert_eq!(
            Instant::from_millis(7).since_origin(),
            Duration::from_millis(7)
        );
        // 584 years of nanoseconds: beyond that, later is the same "never".
        let never = Instant::ZERO + Duration::MAX;
        assert_eq!(never, Instant::from_duration(Duration::MAX));
        assert_eq!(never + Duration::from_secs(1), never);
        assert_eq!(Instant::from_millis(u64::MAX), never);
        assert!(never > Instant::from_millis(1 << 40));
        assert_eq!(never - Instant::ZERO, Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn milliseconds_match_std_without_u128() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(999),
            Duration::from_millis(1),
            Duration::from_nanos(1_000_001),
            Duration::from_millis(123_456_789),
            Duration::new(u64::MAX / 1_000, 999_999_999),
        ] {
            let cap = u128::from(u64::MAX);
            assert_eq!(u128::from(millis(d)), d.as_millis().min(cap), "{d:?}");
            let ceil = d.as_nanos().div_ceil(1_000_000).min(cap);
            assert_eq!(u128::from(millis_ceil(d)), ceil, "{d:?}");
        }
        assert_eq!(millis(Duration::MAX), u64::MAX);
        assert_eq!(millis_ceil(Duration::MAX), u64::MAX);
    }
}
