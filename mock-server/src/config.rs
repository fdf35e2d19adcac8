//! Server configuration: defaults from the seed, overridable by the seed's `WS_*` environment
//! variables and by the command line.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use pitchey_realtime::protocol::RateLimit;
use rand::Rng;

/// The JWT secret the binary uses with `--demo` when `JWT_SECRET` is unset, so that the
/// `token` subcommand and the banner agree. Public by design: never use it beyond a laptop.
pub const DEMO_JWT_SECRET: &str = "pitchey-mock-server-demo-secret-not-for-production";

/// Everything the server can be tuned by. All fields are public so that tests build exactly
/// the server they need; start from [`ServerConfig::for_tests`] or [`ServerConfig::default`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// HS256 secret for JWTs.
    pub jwt_secret: String,
    /// Behave like the seed backend: no `ack`, `seq`, `resume`, `subscribe`, `draft_conflict`,
    /// an empty feature list.
    pub seed_compatible: bool,
    /// Seed demo users and emit realistic traffic.
    pub demo: bool,
    /// Serve `POST /api/dev/token` (unauthenticated token minting; the binary enables it with `--demo`).
    pub dev_tokens: bool,
    /// Interval between demo events.
    pub demo_interval: Duration,
    /// Heartbeat interval announced to clients (`WS_HEARTBEAT_INTERVAL`, ms).
    pub heartbeat_ms: u64,
    /// A session that sends nothing for this long is closed (`WS_SESSION_TIMEOUT`, ms).
    pub session_timeout_ms: u64,
    /// Whether the per-connection rate limit applies (`WS_RATE_LIMIT_ENABLED`).
    pub rate_limit_enabled: bool,
    /// The per-connection rate limit (`WS_RATE_LIMIT_MAX_MESSAGES`, `WS_RATE_LIMIT_WINDOW_MS`,
    /// `WS_RATE_LIMIT_REFILL_RATE`).
    pub rate_limit: RateLimit,
    /// After this many refused messages in a row the connection is closed with 4008
    /// (`WS_RATE_LIMIT_CLOSE_AFTER`).
    pub rate_limit_close_after: u32,
    /// Largest accepted text frame / message in bytes (`WS_MAX_FRAME_BYTES`, default 64 KiB).
    pub max_frame_bytes: usize,
    /// WebSocket read buffer per connection (`WS_READ_BUFFER_BYTES`, default 512 B). Every idle
    /// connection holds one; client frames are small, and a larger one grows the buffer to its
    /// size (read `read_buffer_bytes` at a time).
    pub read_buffer_bytes: usize,
    /// Messages kept per offline user; the oldest are dropped beyond it (`WS_OFFLINE_QUEUE_CAP`;
    /// `WS_MESSAGE_QUEUE_ENABLED=false` sets it to 0).
    pub offline_queue_cap: usize,
    /// Durable messages kept per user for `resume` (`WS_REPLAY_LOG_CAP`).
    pub replay_log_cap: usize,
    /// How long a client message `id` is remembered for de-duplication (`WS_DEDUP_WINDOW_MS`).
    pub dedup_window_ms: u64,
    /// Frames waiting to be written to one session; a session that falls this far behind is
    /// dropped rather than let the server's memory grow.
    pub session_outbox_cap: usize,
    /// How long a closing session waits for the client's close frame.
    pub close_grace: Duration,
    /// A write to a client that takes longer than this ends the session (a client that stopped
    /// reading must not hold a task forever).
    pub write_timeout: Duration,
    /// Keep durable state (seqs, replay logs, offline queues, drafts, de-dup ids) in an
    /// embedded store in this directory (`--data-dir`, `WS_DATA_DIR`); in memory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Fan messages out to other instances through Redis Pub/Sub and keep presence, follows,
    /// pitch counts, seqs and offline queues of users offline everywhere in Redis
    /// (`--redis-url`, `REDIS_URL`, e.g. `redis://127.0.0.1:6379`); one process when `None`.
    pub redis_url: Option<String>,
    /// With Redis: how long this instance's liveness key lives without a refresh (it is
    /// refreshed every third of it). Sessions of an instance whose key expired (killed,
    /// frozen, cut off) count as gone on every other instance (`WS_INSTANCE_TTL_MS`).
    pub instance_ttl_ms: u64,
    /// Serve `/metrics` without a token (`--public-metrics`); otherwise it needs an admin token.
    pub public_metrics: bool,
    /// Origins allowed to make credentialed cross-origin requests (`--cors-origin`). Any
    /// other origin may call the HTTP endpoints without credentials.
    pub cors_origins: Vec<String>,
    /// What one client may make the server hold or do (see [`crate::limits`]).
    pub limits: crate::limits::Limits,
}

impl Default for ServerConfig {
    /// The seed's defaults on 127.0.0.1:8001, with a freshly generated secret.
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8001)),
            jwt_secret: random_secret(),
            seed_compatible: false,
            demo: false,
            dev_tokens: false,
            demo_interval: Duration::from_millis(2500),
            heartbeat_ms: 30_000,
            session_timeout_ms: 300_000,
            rate_limit_enabled: true,
            rate_limit: RateLimit::default(),
            rate_limit_close_after: 50,
            max_frame_bytes: 64 * 1024,
            read_buffer_bytes: 512,
            offline_queue_cap: 100,
            replay_log_cap: 1000,
            dedup_window_ms: 300_000,
            session_outbox_cap: 1024,
            close_grace: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            data_dir: None,
            redis_url: None,
            // The heartbeat interval: a dead instance's users go offline about as late as a
            // silent client's would.
            instance_ttl_ms: 30_000,
            public_metrics: false,
            cors_origins: Vec::new(),
            limits: crate::limits::Limits::default(),
        }
    }
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable holds something that does not parse.
    #[error("environment variable {name}={value:?} is not a valid {expected}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should have been.
        expected: &'static str,
    },
}

impl ServerConfig {
    /// For tests: `127.0.0.1:0`, a random secret, seed defaults otherwise, no demo.
    pub fn for_tests() -> Self {
        ServerConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            close_grace: Duration::from_millis(500),
            ..ServerConfig::default()
        }
    }

    /// Defaults overridden by the seed's environment variables (`WS_RATE_LIMIT_ENABLED`,
    /// `WS_RATE_LIMIT_MAX_MESSAGES`, `WS_RATE_LIMIT_WINDOW_MS`, `WS_RATE_LIMIT_REFILL_RATE`,
    /// `WS_HEARTBEAT_INTERVAL`, `WS_SESSION_TIMEOUT`, `WS_MESSAGE_QUEUE_ENABLED`) and ours
    /// (`WS_RATE_LIMIT_CLOSE_AFTER`, `WS_MAX_FRAME_BYTES`, `WS_READ_BUFFER_BYTES`,
    /// `WS_OFFLINE_QUEUE_CAP`, `WS_REPLAY_LOG_CAP`, `WS_DEDUP_WINDOW_MS`, `WS_DATA_DIR`, `WS_INSTANCE_TTL_MS`), and
    /// `JWT_SECRET`.
    ///
    /// When `JWT_SECRET` is unset the secret is generated: tokens then only come from the
    /// server itself (its banner, [`crate::RunningServer::token`]). The binary warns about it.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ServerConfig::from_env`] over any lookup function (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = ServerConfig::default();
        // Unset: the generated secret of the default stays. Whoever runs the server says so
        // (the binary warns, or uses the demo secret with --demo): not here, where the
        // warning would contradict what the caller does next.
        if let Some(secret) = get("JWT_SECRET").filter(|s| !s.is_empty()) {
            c.jwt_secret = secret;
        }
        if let Some(v) = parse::<bool>(&get, "WS_RATE_LIMIT_ENABLED", "boolean")? {
            c.rate_limit_enabled = v;
        }
        if let Some(v) = parse(&get, "WS_RATE_LIMIT_MAX_MESSAGES", "whole number")? {
            c.rate_limit.max_messages = v;
        }
        if let Some(v) = parse(&get, "WS_RATE_LIMIT_WINDOW_MS", "whole number")? {
            c.rate_limit.window_ms = v;
        }
        if let Some(v) = parse(&get, "WS_RATE_LIMIT_REFILL_RATE", "number")? {
            c.rate_limit.refill_rate = v;
        }
        if let Some(v) = parse(&get, "WS_RATE_LIMIT_CLOSE_AFTER", "whole number")? {
            c.rate_limit_close_after = v;
        }
        if let Some(v) = parse(&get, "WS_HEARTBEAT_INTERVAL", "whole number")? {
            c.heartbeat_ms = v;
        }
        if let Some(v) = parse(&get, "WS_SESSION_TIMEOUT", "whole number")? {
            c.session_timeout_ms = v;
        }
        if let Some(v) = parse(&get, "WS_MAX_FRAME_BYTES", "whole number")? {
            c.max_frame_bytes = v;
        }
        if let Some(v) = parse(&get, "WS_READ_BUFFER_BYTES", "whole number")? {
            c.read_buffer_bytes = v;
        }
        if let Some(v) = parse(&get, "WS_OFFLINE_QUEUE_CAP", "whole number")? {
            c.offline_queue_cap = v;
        }
        if let Some(false) = parse::<bool>(&get, "WS_MESSAGE_QUEUE_ENABLED", "boolean")? {
            c.offline_queue_cap = 0;
        }
        if let Some(v) = parse(&get, "WS_REPLAY_LOG_CAP", "whole number")? {
            c.replay_log_cap = v;
        }
        if let Some(v) = parse(&get, "WS_DEDUP_WINDOW_MS", "whole number")? {
            c.dedup_window_ms = v;
        }
        if let Some(v) = parse(&get, "WS_INSTANCE_TTL_MS", "whole number")? {
            c.instance_ttl_ms = v;
        }
        if let Some(dir) = get("WS_DATA_DIR").filter(|d| !d.trim().is_empty()) {
            c.data_dir = Some(PathBuf::from(dir));
        }
        if let Some(url) = get("REDIS_URL").filter(|u| !u.trim().is_empty()) {
            c.redis_url = Some(url);
        }
        Ok(c)
    }

    /// Whether `POST /api/dev/token` is served: with `dev_tokens` and only while the secret
    /// is the public [`DEMO_JWT_SECRET`]. Anyone may call it, so with an operator's secret it
    /// would hand out that secret's tokens to everyone.
    pub fn dev_tokens_enabled(&self) -> bool {
        self.dev_tokens && self.jwt_secret == DEMO_JWT_SECRET
    }

    /// The session timeout as a duration.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match get(name) {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::InvalidEnv {
                name,
                value,
                expected,
            }),
    }
}

/// 32 random bytes as hex: a secret good for one run.
pub(crate) fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_defaults() {
        let env: HashMap<&str, &str> = [
            ("JWT_SECRET", "s3cret"),
            ("WS_RATE_LIMIT_MAX_MESSAGES", "10"),
            ("WS_RATE_LIMIT_REFILL_RATE", "0.5"),
            ("WS_SESSION_TIMEOUT", "1000"),
            ("WS_MESSAGE_QUEUE_ENABLED", "false"),
            ("WS_INSTANCE_TTL_MS", "1500"),
        ]
        .into();
        let c = ServerConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.jwt_secret, "s3cret");
        assert_eq!(c.rate_limit.max_messages, 10);
        assert_eq!(c.rate_limit.refill_rate, 0.5);
        assert_eq!(c.session_timeout_ms, 1000);
        assert_eq!(c.offline_queue_cap, 0);
        assert_eq!(c.heartbeat_ms, 30_000);
        assert_eq!(c.instance_ttl_ms, 1500);
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = ServerConfig::from_lookup(|k| {
            (k == "WS_HEARTBEAT_INTERVAL").then(|| "soon".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("WS_HEARTBEAT_INTERVAL"));
    }
}
