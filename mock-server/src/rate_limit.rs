//! The per-connection token bucket (seed defaults: 120 messages, refill 2 per second).

use std::time::{Duration, Instant};

use pitchey_realtime::protocol::RateLimit;

/// A token bucket: `capacity` messages in a burst, `refill_per_sec` tokens added back per second.
///
/// Time is passed in, so that the bucket is tested without sleeping.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    capacity: f64,
    tokens: f64,
    refill_per_sec: f64,
    last: Instant,
    /// Messages refused in a row; reset by the first message let through.
    refused_in_a_row: u32,
}

/// A message the bucket refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// How long until one token is back.
    pub retry_after: Duration,
    /// Messages refused in a row, this one included (used to detect persistent abuse).
    pub refused_in_a_row: u32,
}

impl RateLimiter {
    /// A full bucket sized by `limit`.
    pub fn new(limit: &RateLimit, now: Instant) -> Self {
        let capacity = f64::from(limit.max_messages.max(1));
        RateLimiter {
            capacity,
            tokens: capacity,
            refill_per_sec: limit.refill_rate.max(0.0),
            last: now,
            refused_in_a_row: 0,
        }
    }

    /// Take one token for a message arriving at `now`.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Limited> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            return Ok(());
        }
        self.refused_in_a_row = self.refused_in_a_row.saturating_add(1);
        let retry_after = if self.refill_per_sec > 0.0 {
            Duration::from_secs_f64((1.0 - self.tokens) / self.refill_per_sec)
        } else {
            // No refill: the bucket never recovers; tell the client to wait a long while.
            Duration::from_secs(3600)
        };
        Err(Limited {
            // Round up so that a client waiting exactly this long finds a token.
            retry_after: retry_after.max(Duration::from_millis(1)),
            refused_in_a_row: self.refused_in_a_row,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u32, refill: f64) -> RateLimit {
        RateLimit {
            max_messages: max,
            window_ms: 60_000,
            refill_rate: refill,
        }
    }

    #[test]
    fn burst_then_refused_then_refilled() {
        let t0 = Instant::now();
        let mut b = RateLimiter::new(&limit(3, 2.0), t0);
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let refused = b.try_take(t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(b.try_take(t0).unwrap_err().refused_in_a_row, 2);
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn never_exceeds_capacity() {
        let t0 = Instant::now();
        let mut b = RateLimiter::new(&limit(2, 100.0), t0);
        let later = t0 + Duration::from_secs(60);
        assert!(b.try_take(later).is_ok());
        assert!(b.try_take(later).is_ok());
        assert!(b.try_take(later).is_err());
    }
}
