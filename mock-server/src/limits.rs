//! What one client may make the server hold or do: the limits (flags of the binary, each with
//! a default a well-behaved client never reaches) and the counters of refusals that
//! `/api/ws/stats` reports under `limits`.

use std::sync::atomic::{AtomicU64, Ordering};

use pitchey_realtime::protocol::ErrorCode;

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
    /// Drafts per user: a `draft_sync` that would create one more gets `limit_exceeded`
    /// (saving existing drafts still works).
    #[arg(long, default_value_t = 100)]
    pub max_drafts_per_user: usize,
    /// Longest client message `id` in bytes: a longer one is refused (`invalid_message`).
    #[arg(long, default_value_t = 64)]
    pub max_id_bytes: usize,
    /// Message ids remembered per user for de-duplication; the oldest are forgotten first.
    #[arg(long = "dedup-ids", default_value_t = 4096)]
    pub dedup_ids: usize,
    /// Application `ping`s (and WebSocket ping/pong frames) a connection may send in a burst,
    /// outside the message rate limit; a flood past this budget closes with 4008.
    #[arg(long, default_value_t = 20)]
    pub ping_burst: u32,
    /// Pings per second added back to that budget.
    #[arg(long, default_value_t = 10.0)]
    pub ping_rate: f64,
    /// Channels one connection may subscribe to: the next `subscribe` gets `limit_exceeded`.
    #[arg(long, default_value_t = 256)]
    pub max_subscriptions: usize,
    /// Stats of a pitch nobody owns, subscribes to or viewed for this long are freed.
    #[arg(long, default_value_t = 3600)]
    pub pitch_idle_secs: u64,
    /// Open sessions per user: the next upgrade is refused with HTTP 429.
    #[arg(long, default_value_t = 20)]
    pub max_sessions_per_user: usize,
    /// `POST /api/ws/notify` calls per minute per user token (admin tokens are exempt);
    /// more get 429 with `Retry-After`.
    #[arg(long, default_value_t = 60)]
    pub notify_per_minute: u32,
    /// Seconds a connection has to send a complete HTTP request head before it is closed.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a shutdown (SIGTERM, SIGINT) may take, whatever clients do; then the process
    /// exits.
    #[arg(long, default_value_t = 5)]
    pub shutdown_grace_secs: u64,
}

impl Limits {
    /// `shutdown_grace_secs` as a duration.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }
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

/// The `error` code of a message refused for a limit (`limit_exceeded`). The SDK reads it as
/// [`ErrorCode::Other`]: tolerating unknown codes is part of the protocol.
pub fn limit_exceeded() -> ErrorCode {
    ErrorCode::Other("limit_exceeded".into())
}

/// Refusals by limit, for `/api/ws/stats` (`limits`) and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct LimitCounters {
    /// HTTP requests refused with 413.
    pub body_too_large: AtomicU64,
    /// `draft_sync` refused for `max_drafts_per_user`.
    pub drafts_refused: AtomicU64,
    /// Messages refused for an `id` over `max_id_bytes`.
    pub ids_too_long: AtomicU64,
    /// Sessions closed for flooding pings.
    pub ping_floods: AtomicU64,
    /// `subscribe` refused for `max_subscriptions`.
    pub subscriptions_refused: AtomicU64,
    /// Idle pitch stats freed.
    pub pitches_freed: AtomicU64,
    /// Frames the Redis offline queues dropped for `user_queue_bytes` (the local store
    /// counts its own).
    pub redis_queue_bytes: AtomicU64,
    /// Upgrades refused with 429 for `max_sessions_per_user`.
    pub sessions_refused: AtomicU64,
    /// `POST /api/ws/notify` refused with 429.
    pub notify_limited: AtomicU64,
    /// Connections closed for not sending a request head in time.
    pub header_timeouts: AtomicU64,
    /// Sessions closed for not answering two pings.
    pub pings_unanswered: AtomicU64,
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
            "offlineQueueBytesEvicted": store.queue_bytes + get(&self.redis_queue_bytes),
            "draftsRefused": get(&self.drafts_refused),
            "idsTooLong": get(&self.ids_too_long),
            "dedupIdsForgotten": store.dedup_ids,
            "pingFloods": get(&self.ping_floods),
            "subscriptionsRefused": get(&self.subscriptions_refused),
            "pitchesFreed": get(&self.pitches_freed),
            "sessionsRefused": get(&self.sessions_refused),
            "notifyLimited": get(&self.notify_limited),
            "headerTimeouts": get(&self.header_timeouts),
            "pingsUnanswered": get(&self.pings_unanswered),
        })
    }
}
