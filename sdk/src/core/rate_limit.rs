//! A token bucket mirroring the server's rate limit, so the client never trips it.
//!
//! Integer arithmetic in millionths of a token, refilled per whole elapsed millisecond:
//! the mirror never runs ahead of a server computing the same bucket exactly (it rounds
//! refill down), and it is deterministic on every platform.
//!
//! The server takes a token when a frame *arrives*, the client when it *sends*. A later
//! take is usually harmless, except when the server's bucket sits full while the client's
//! is refilling: the refill the server could not store is refill the client counted, so
//! the client can be ahead by up to `refill_rate * one-way latency` (the property tests
//! found this). The client therefore keeps a reserve of that many tokens, for a latency
//! allowance of `Config::rate_limit_latency_allowance` (1 s: 2 tokens of 120 by default),
//! capped at a quarter of the bucket.

use std::time::Duration;

use super::Instant;
use crate::protocol::RateLimit;

const UNIT: u64 = 1_000_000;

/// The client's copy of the server's bucket, plus a pause after a `rate_limited` error.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    capacity: u64,
    /// Refill in millionths of a token per millisecond (`refill_rate` tokens/s * 1000).
    per_ms: u64,
    tokens: u64,
    /// Never spent: covers the refill a full server bucket loses while frames travel.
    reserve: u64,
    /// Latency the reserve covers.
    allowance: Duration,
    /// The refill is computed up to here.
    last: Instant,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    /// A full bucket with `limit`, keeping a reserve for `allowance` of one-way latency.
    pub(crate) fn new(limit: RateLimit, allowance: Duration, now: Instant) -> Self {
        let mut r = RateLimiter {
            capacity: 0,
            per_ms: 0,
            tokens: 0,
            reserve: 0,
            allowance,
            last: now,
            paused_until: None,
        };
        r.set_limit(limit, now);
        r.tokens = r.capacity;
        r
    }

    /// Adopt the limit the server announced, keeping the tokens already spent (a server
    /// whose bucket spans connections must not be tripped right after a reconnect).
    pub(crate) fn set_limit(&mut self, limit: RateLimit, now: Instant) {
        self.refill(now);
        let spent = self.capacity.saturating_sub(self.tokens);
        self.capacity = u64::from(limit.max_messages.max(1)) * UNIT;
        let per_ms = (limit.refill_rate.max(0.0) * 1_000.0).floor();
        self.per_ms = if per_ms.is_finite() { per_ms as u64 } else { 0 };
        // Keep what was spent, not what was left: a server announcing a bigger bucket
        // than our default must not be used as if its bucket were as small as ours.
        self.tokens = self.capacity.saturating_sub(spent);
        let allowance_ms = super::time::millis(self.allowance);
        // Never more than a quarter of the bucket (and at least one token usable): against
        // a fast-refilling server, `refill * allowance` would otherwise hold back almost
        // the whole bucket and throttle the client to one frame per refill tick (the load
        // generator found this). The rare overshoot that leaves is met by `rate_limited`,
        // which pauses and re-sends.
        self.reserve = super::time::mul_saturating(allowance_ms, self.per_ms)
            .min(self.capacity / 4)
            .min(self.capacity - UNIT);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let ms = super::time::millis(elapsed);
        if ms == 0 {
            return;
        }
        self.tokens = self
            .tokens
            .saturating_add(super::time::mul_saturating(ms, self.per_ms))
            .min(self.capacity);
        // Advance by whole milliseconds so sub-millisecond remainders are not lost.
        self.last += Duration::from_millis(ms);
    }

    /// Take one token if one is there and sending is not paused.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        if self.is_paused(now) {
            return false;
        }
        self.refill(now);
        if self.tokens >= UNIT + self.reserve {
            self.tokens -= UNIT;
            true
        } else {
            false
        }
    }

    /// True while a server-ordered pause lasts.
    pub(crate) fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| now < t)
    }

    /// Stop sending until `until` (a `rate_limited` error's `retryAfterMs`).
    pub(crate) fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
    }

    /// When a token can next be taken; `None` if never (refill rate zero and empty).
    pub(crate) fn next_available(&self) -> Option<Instant> {
        let ready = if self.tokens >= UNIT + self.reserve {
            Some(self.last)
        } else if self.per_ms == 0 {
            None
        } else {
            let need = UNIT + self.reserve - self.tokens;
            Some(self.last + Duration::from_millis(need.div_ceil(self.per_ms)))
        };
        match (ready, self.paused_until) {
            (Some(r), Some(p)) => Some(r.max(p)),
            (r, _) => r,
        }
    }

    /// Whole tokens left at `now` (the reserve included).
    pub(crate) fn tokens_left(&self, now: Instant) -> u32 {
        let mut copy = self.clone();
        copy.refill(now);
        u32::try_from(copy.tokens / UNIT).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u32, rate: f64) -> RateLimit {
        RateLimit {
            max_messages: max,
            window_ms: 60_000,
            refill_rate: rate,
        }
    }

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::ZERO;
        let mut r = RateLimiter::new(limit(3, 2.0), Duration::ZERO, t0);
        assert!(r.try_take(t0) && r.try_take(t0) && r.try_take(t0));
        assert!(!r.try_take(t0));
        // 2 per second: one token after 500 ms.
        assert_eq!(r.next_available(), Some(Instant::from_millis(500)));
        assert!(!r.try_take(Instant::from_millis(499)));
        assert!(r.try_take(Instant::from_millis(500)));
        assert_eq!(r.tokens_left(Instant::from_millis(100_000)), 3);
    }

    #[test]
    fn pause_blocks_and_reports_its_end() {
        let t0 = Instant::ZERO;
        let mut r = RateLimiter::new(limit(10, 2.0), Duration::ZERO, t0);
        r.pause_until(Instant::from_millis(1_500));
        assert!(!r.try_take(Instant::from_millis(1_000)));
        assert_eq!(r.next_available(), Some(Instant::from_millis(1_500)));
        assert!(r.try_take(Instant::from_millis(1_500)));
    }

    #[test]
    fn new_limit_keeps_spent_tokens() {
        let t0 = Instant::ZERO;
        let mut r = RateLimiter::new(limit(120, 2.0), Duration::ZERO, t0);
        for _ in 0..100 {
            assert!(r.try_take(t0));
        }
        // A bigger bucket: the 100 spent stay spent, the rest is usable at once.
        r.set_limit(limit(1_000, 1.0), t0);
        assert_eq!(r.tokens_left(t0), 900);
        // A smaller one than what was spent: nothing left until it refills.
        r.set_limit(limit(50, 1.0), t0);
        assert_eq!(r.tokens_left(t0), 0);
    }

    #[test]
    fn reserve_covers_the_latency_allowance() {
        let t0 = Instant::ZERO;
        let mut r = RateLimiter::new(limit(10, 2.0), Duration::from_secs(1), t0);
        let mut sent = 0;
        while r.try_take(t0) {
            sent += 1;
        }
        assert_eq!(sent, 8, "2 tokens (1 s at 2/s) kept in reserve");
        assert_eq!(r.next_available(), Some(Instant::from_millis(500)));
        // A huge allowance holds back at most a quarter of the bucket...
        let mut r = RateLimiter::new(limit(100, 2.0), Duration::from_secs(3_600), t0);
        let mut sent = 0;
        while r.try_take(t0) {
            sent += 1;
        }
        assert_eq!(sent, 75);
        // ... and a one-token bucket stays usable.
        let mut r = RateLimiter::new(limit(1, 2.0), Duration::from_secs(3_600), t0);
        assert!(r.try_take(t0));
    }

    #[test]
    fn a_fast_refilling_server_does_not_throttle_to_one_frame_per_tick() {
        // 1e6 burst, 1e6/s: `refill * allowance` alone would reserve the whole bucket.
        let t0 = Instant::ZERO;
        let mut r = RateLimiter::new(limit(1_000_000, 1_000_000.0), Duration::from_secs(1), t0);
        for _ in 0..10_000 {
            assert!(r.try_take(t0));
        }
    }

    #[test]
    fn zero_refill_never_wakes() {
        let t0 = Instant::ZERO;
        let mut r = RateLimiter::new(limit(1, 0.0), Duration::ZERO, t0);
        assert!(r.try_take(t0));
        assert_eq!(r.next_available(), None);
    }
}
