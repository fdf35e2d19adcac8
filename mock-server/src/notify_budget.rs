//! `POST /api/ws/notify` per user token: at most `--notify-per-minute` notifications a
//! minute (a token bucket of that size, refilled over a minute). Admin tokens are exempt.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pitchey_realtime::protocol::RateLimit;

use crate::rate_limit::RateLimiter;

/// Buckets kept before idle ones are let go (an idle bucket is full again after a minute,
/// so forgetting it changes nothing).
const PRUNE_ABOVE: usize = 1024;

/// One bucket per user that sent notifications recently.
#[derive(Debug)]
pub(crate) struct NotifyBudget {
    per_minute: u32,
    buckets: Mutex<HashMap<u64, (RateLimiter, Instant)>>,
}

impl NotifyBudget {
    pub(crate) fn new(per_minute: u32) -> Self {
        NotifyBudget {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one notification from `user`'s budget; `Err(retry_after)` when it is spent.
    pub(crate) fn take(&self, user: u64) -> Result<(), Duration> {
        let now = Instant::now();
        let limit = RateLimit {
            max_messages: self.per_minute,
            window_ms: 60_000,
            refill_rate: f64::from(self.per_minute) / 60.0,
        };
        // Plain counters behind the lock: a panic elsewhere cannot leave them inconsistent.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, (_, used)| {
                now.saturating_duration_since(*used) < Duration::from_secs(60)
            });
        }
        let (bucket, used) = buckets
            .entry(user)
            .or_insert_with(|| (RateLimiter::new(&limit, now), now));
        *used = now;
        bucket.try_take(now).map_err(|l| l.retry_after)
    }
}
