//! What one client may make the server hold or do: the limits (flags of the binary, each with
//! a default a well-behaved client never reaches) and the counters of refusals that
//! `/api/ws/stats` reports under `limits`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// The limits. Every one is a flag of the binary (see `--help`); the flags' defaults are
/// the defaults here.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Largest HTTP request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Bytes kept per user in the replay log, and again in the offline queue (beside their
    /// frame counts); the oldest frames go first.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub user_queue_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // One source for the defaults: the flags'.
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            limits: Limits,
        }
        <Defaults as clap::Parser>::parse_from(["pitchey-mock-server"]).limits
    }
}

/// Refusals by limit, for `/api/ws/stats` (`limits`) and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct LimitCounters {
    /// HTTP requests refused with 413.
    pub body_too_large: AtomicU64,
}

impl LimitCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as the `limits` object of `/api/ws/stats`.
    pub(crate) fn snapshot(&self, store: crate::store::Evictions) -> Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "bodyTooLarge": get(&self.body_too_large),
            "replayLogBytesEvicted": store.log_bytes,
            "offlineQueueBytesEvicted": store.queue_bytes,
        })
    }
}
