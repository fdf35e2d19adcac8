//! Configuration of a [`Connection`](super::Connection) and of each draft.

use std::time::Duration;

use crate::protocol::RateLimit;

/// Everything a [`Connection`](super::Connection) needs to know up front.
///
/// Build with [`Config::new`] and adjust the public fields; every field has a default taken
/// from the seed or the design document.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The WebSocket endpoint, e.g. `wss://api.pitchey.com/ws`. The core appends `?token=`.
    pub url: String,
    /// The JWT to connect with. `None`: the core asks for one with
    /// [`Event::TokenNeeded`](super::Event::TokenNeeded) on `connect`.
    pub token: Option<String>,
    /// Reconnect policy.
    pub backoff: BackoffConfig,
    /// How many messages the outbox holds (durable plus coalesced ephemeral). Seed: 100.
    pub outbox_capacity: usize,
    /// How many durable messages may be written and not yet acked at once.
    pub in_flight_window: usize,
    /// Largest encoded frame `send` accepts, in bytes (the reference server refuses
    /// frames over 64 KiB and closes with 4009; refusing early avoids a reconnect loop).
    pub max_message_bytes: usize,
    /// Heartbeat interval until the server announces its `heartbeatMs`. Seed: 30 s.
    pub heartbeat_interval: Duration,
    /// After a `ping`, how long to wait for any frame before declaring the link dead.
    pub heartbeat_timeout: Duration,
    /// How long a connection attempt may take, from `Action::Connect` to the server's
    /// `connected` frame.
    pub connect_timeout: Duration,
    /// After `Event::TokenNeeded`, how long to wait for [`Connection::set_token`]
    /// before the state becomes `AuthFailed`.
    ///
    /// [`Connection::set_token`]: super::Connection::set_token
    pub token_timeout: Duration,
    /// Consecutive 4001 closes (each after a fresh token) before giving up with
    /// `AuthFailed`: a token provider that keeps returning a rejected token must not make
    /// the client hammer the server.
    pub max_auth_failures: u32,
    /// Consecutive attempts that end before the server's `connected` frame after which the
    /// token is suspected (default 2): a browser cannot see the HTTP 401 of a refused
    /// upgrade, only a close. The core then asks for a fresh token and goes on retrying
    /// meanwhile (a server that is down looks the same); a fresh token that fails the same
    /// way is reported as `AuthFailed`.
    pub suspect_token_after: u32,
    /// A `typing` message not written within this time is dropped instead of sent late.
    pub typing_ttl: Duration,
    /// The rate limit assumed until the server announces its own on `connected`.
    pub rate_limit: RateLimit,
    /// A durable message written this long ago without an ack is written again on the same
    /// connection (the server de-duplicates by id), so a lost ack cannot stall the
    /// in-flight window for the rest of a connection the heartbeat keeps alive.
    pub ack_timeout: Duration,
    /// One-way latency the rate-limit mirror allows for: it keeps `refill_rate` times this
    /// many tokens unspent, because a server bucket that sits full while our frames travel
    /// loses refill the client has counted. Default 1 s (2 tokens at the seed's 2/s).
    pub rate_limit_latency_allowance: Duration,
    /// A durable message written this many times without an ack is reported failed
    /// ([`SendFailure::TooManyAttempts`](super::SendFailure::TooManyAttempts)) instead of
    /// being re-sent forever.
    pub max_send_attempts: u32,
    /// How long an out-of-order `seq` gap may stay open before it counts as lost
    /// continuity (replayed frames may arrive after newer queued ones).
    pub seq_gap_timeout: Duration,
    /// How many channels may be subscribed at once.
    pub max_subscriptions: usize,
}

impl Config {
    /// Defaults for `url`; set `token` (or answer `TokenNeeded`).
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            token: None,
            backoff: BackoffConfig::default(),
            outbox_capacity: 100,
            in_flight_window: 32,
            max_message_bytes: 64 * 1024,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            token_timeout: Duration::from_secs(30),
            max_auth_failures: 3,
            suspect_token_after: 2,
            typing_ttl: Duration::from_secs(3),
            rate_limit: RateLimit::default(),
            rate_limit_latency_allowance: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(30),
            max_send_attempts: 10,
            seq_gap_timeout: Duration::from_secs(2),
            max_subscriptions: 256,
        }
    }

    /// Set the token (builder style).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// Written out by hand so that the token never reaches a log.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("backoff", &self.backoff)
            .field("outbox_capacity", &self.outbox_capacity)
            .field("in_flight_window", &self.in_flight_window)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("token_timeout", &self.token_timeout)
            .field("max_auth_failures", &self.max_auth_failures)
            .field("suspect_token_after", &self.suspect_token_after)
            .field("typing_ttl", &self.typing_ttl)
            .field("rate_limit", &self.rate_limit)
            .field(
                "rate_limit_latency_allowance",
                &self.rate_limit_latency_allowance,
            )
            .field("ack_timeout", &self.ack_timeout)
            .field("max_send_attempts", &self.max_send_attempts)
            .field("seq_gap_timeout", &self.seq_gap_timeout)
            .field("max_subscriptions", &self.max_subscriptions)
            .finish()
    }
}

/// Reconnect backoff: exponential with full jitter.
///
/// Retry `n` (1-based) waits 0 when `first_retry_immediate` and `n == 1`, otherwise a
/// uniformly random delay in `[0, min(max, initial * multiplier^k)]` where `k` counts the
/// delayed retries before this one.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Retry at once after the first failure (a blip should not cost a delay).
    pub first_retry_immediate: bool,
    /// Upper bound of the first delayed retry. Default 500 ms.
    pub initial: Duration,
    /// Growth per retry. Default 2.
    pub multiplier: f64,
    /// Cap of the upper bound. Default 30 s.
    pub max: Duration,
    /// A connection that stayed up this long resets the retry count. Default 10 s.
    pub reset_after: Duration,
    /// Stop after this many consecutive failed attempts (state `Closed`). `None`: never.
    pub max_attempts: Option<u32>,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            first_retry_immediate: true,
            initial: Duration::from_millis(500),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

/// How a draft resolves a conflict between its local edits and a newer server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConflictStrategy {
    /// Keep the local content: re-send it on top of the server's version.
    Local,
    /// Adopt the server's content, dropping local edits.
    Remote,
    /// Three-way merge of JSON objects against the base; fields changed on both sides
    /// differently fall back to [`ConflictStrategy::Ask`].
    Merge,
    /// Emit [`Event::DraftConflict`](super::Event::DraftConflict) and wait for
    /// [`Connection::draft_resolve`](super::Connection::draft_resolve). The seed's default.
    #[default]
    Ask,
}

/// Per-draft options (the seed's `useDraftSync` options that concern the core).
///
/// Content validation (`validateContent` in the seed) is not a callback here: a pure core
/// cannot hold a JS function or an FFI callback portably (they are not `Send`). The driver
/// runs the app's validator and passes the result as `valid` to
/// [`Connection::draft_update`](super::Connection::draft_update).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DraftOptions {
    /// Save this long after content became dirty, and again on this interval while it
    /// keeps changing. Seed default 5 s.
    pub auto_save_interval: Duration,
    /// Conflict strategy.
    pub strategy: ConflictStrategy,
}

impl Default for DraftOptions {
    fn default() -> Self {
        DraftOptions {
            auto_save_interval: Duration::from_secs(5),
            strategy: ConflictStrategy::Ask,
        }
    }
}

impl DraftOptions {
    /// Set the strategy (builder style).
    pub fn with_strategy(mut self, strategy: ConflictStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Set the auto-save interval (builder style).
    pub fn with_auto_save_interval(mut self, interval: Duration) -> Self {
        self.auto_save_interval = interval;
        self
    }
}
