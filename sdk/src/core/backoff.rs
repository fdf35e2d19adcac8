//! Reconnect delays: exponential growth with full jitter.
//!
//! Not `backon`: its jitter adds a random amount on top of the delay (we want "full
//! jitter", uniform in `[0, bound]`, which spreads a thundering herd of clients after a
//! server restart best) and its RNG is not the config's seeded one. The policy is a few
//! lines; [`BackoffConfig::max_delay`] states its bounds and the tests check them.

use std::time::Duration;

use rand::Rng;
use rand_pcg::Pcg32;

use super::BackoffConfig;

impl BackoffConfig {
    /// The upper bound of the delay before retry number `attempt` (1-based). The actual
    /// delay is uniform in `[0, max_delay(attempt)]`.
    pub fn max_delay(&self, attempt: u32) -> Duration {
        let immediate = u32::from(self.first_retry_immediate);
        if attempt == 0 || attempt <= immediate {
            return Duration::ZERO;
        }
        // Number of delayed retries before this one.
        let k = attempt - 1 - immediate;
        let factor = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(k).unwrap_or(i32::MAX));
        let bound = self.initial.as_secs_f64() * factor;
        if !bound.is_finite() || bound >= self.max.as_secs_f64() {
            self.max
        } else {
            // `bound` is finite, not negative and below `max`: to the nearest nanosecond by
            // a saturating cast (a `max` over 584 years gets at most that) rather than
            // `Duration::try_from_secs_f64`, whose exact conversion is bigger code in the
            // browser package.
            Duration::from_nanos((bound * 1e9 + 0.5) as u64)
        }
    }
}

/// Counts consecutive failed attempts and draws the next delay.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            failures: 0,
        }
    }

    /// Consecutive failures so far (the number of the next retry is this plus one...
    /// after [`Backoff::next_delay`] it is the retry just scheduled).
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Forget past failures (the connection stayed up, or the app asked to connect).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// True when `max_attempts` consecutive attempts have failed.
    pub(crate) fn exhausted(&self) -> bool {
        self.config
            .max_attempts
            .is_some_and(|max| self.failures >= max)
    }

    /// Record one more failure and draw the delay before the next attempt.
    pub(crate) fn next_delay(&mut self, rng: &mut Pcg32) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let bound = self.config.max_delay(self.failures);
        let bound_ms = super::time::millis(bound);
        if bound_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rng.random_range(0..=bound_ms))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn bounds_double_to_the_cap() {
        let c = BackoffConfig::default();
        let ms = |a| c.max_delay(a).as_millis();
        assert_eq!(ms(1), 0);
        assert_eq!(ms(2), 500);
        assert_eq!(ms(3), 1_000);
        assert_eq!(ms(4), 2_000);
        assert_eq!(ms(8), 30_000); // 500 ms * 2^6 = 32 s, capped
        assert_eq!(ms(9), 30_000);
        assert_eq!(ms(1_000), 30_000);
        assert_eq!(ms(u32::MAX), 30_000);
    }

    #[test]
    fn bounds_are_rounded_to_the_nanosecond() {
        let c = BackoffConfig {
            initial: Duration::from_millis(300),
            multiplier: 1.5,
            max: Duration::from_secs(10),
            first_retry_immediate: false,
            ..BackoffConfig::default()
        };
        // 0.3 * 1.5 is 0.44999999999999996 in f64: still 450 ms.
        assert_eq!(c.max_delay(2), Duration::from_millis(450));
        assert_eq!(c.max_delay(3), Duration::from_micros(675_000));
        assert_eq!(c.max_delay(100), Duration::from_secs(10), "capped");
        let huge = BackoffConfig {
            max: Duration::MAX,
            ..c
        };
        // 0.3 s * 1.5^62 is about 2.5e10 s: more than `u64` nanoseconds hold.
        assert_eq!(
            huge.max_delay(63),
            Duration::from_nanos(u64::MAX),
            "saturates"
        );
    }

    #[test]
    fn without_immediate_first_retry() {
        let c = BackoffConfig {
            first_retry_immediate: false,
            ..BackoffConfig::default()
        };
        assert_eq!(c.max_delay(1).as_millis(), 500);
        assert_eq!(c.max_delay(2).as_millis(), 1_000);
    }

    #[test]
    fn delays_stay_within_bounds_and_jitter() {
        let mut rng = Pcg32::seed_from_u64(7);
        let c = BackoffConfig::default();
        let mut b = Backoff::new(c.clone());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = b.next_delay(&mut rng);
            assert!(d <= c.max_delay(b.failures()));
            seen.insert(d);
        }
        assert!(seen.len() > 50, "full jitter spreads delays");
        b.reset();
        assert_eq!(b.next_delay(&mut rng), Duration::ZERO);
    }

    #[test]
    fn max_attempts() {
        let mut rng = Pcg32::seed_from_u64(1);
        let mut b = Backoff::new(BackoffConfig {
            max_attempts: Some(2),
            ..BackoffConfig::default()
        });
        assert!(!b.exhausted());
        b.next_delay(&mut rng);
        b.next_delay(&mut rng);
        assert!(b.exhausted());
    }
}
