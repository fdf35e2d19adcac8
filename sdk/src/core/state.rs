//! The connection's lifecycle state.

use std::time::Duration;

use super::text::{decimal, fill};

/// Where the connection is in its lifecycle.
///
/// ```text
///  Idle --connect--> Connecting --`connected` frame--> Connected
///                      ^   |                              |
///        timer/set_token   | failed, closed, timeout      | closed, failed, heartbeat lost
///                      |   v                              v
///                    Reconnecting { attempt, delay } <--+
///  refused token -> AwaitingToken --set_token--> Reconnecting
///                      | timeout, token_unavailable, fresh token refused too
///                      v
///                  AuthFailed { reason }   disconnect() from anywhere -> Closed
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Created, `connect` not called yet.
    Idle,
    /// A connection attempt is under way: waiting for the transport to open and then for
    /// the server's `connected` frame.
    Connecting,
    /// The server sent `connected`; messages flow.
    Connected,
    /// The link was lost; attempt number `attempt` (1-based) starts `delay` after the
    /// state change (a UI can show "reconnecting in 3 s").
    Reconnecting {
        /// The attempt about to be made, counting from 1 after each stable connection.
        attempt: u32,
        /// How long until it is made, from when this state was entered.
        delay: Duration,
    },
    /// The token was refused (close 4001 or HTTP 401). [`Event::TokenNeeded`]
    /// was emitted; [`Connection::set_token`] reconnects; nothing happens until then or
    /// [`Config::token_timeout`](super::Config::token_timeout) (then `AuthFailed`). This
    /// state is an addition to the design's list: it makes the wait for the app's token
    /// provider visible instead of hiding it in `Reconnecting`.
    ///
    /// [`Event::TokenNeeded`]: super::Event::TokenNeeded
    /// [`Connection::set_token`]: super::Connection::set_token
    AwaitingToken,
    /// No valid token could be had: no more retries until `set_token` or `connect`.
    AuthFailed {
        /// What the server said when it refused (a close reason or an `error` frame's
        /// message), when it said anything.
        reason: Option<String>,
    },
    /// Closed by `disconnect`, by a final close code (4003), or after
    /// `BackoffConfig::max_attempts`: final until `connect`.
    Closed,
}

impl State {
    /// True in `Connected`.
    pub fn is_connected(&self) -> bool {
        matches!(self, State::Connected)
    }

    /// True when the core will not try to connect by itself (`Idle`, `AuthFailed`, `Closed`).
    pub fn is_stopped(&self) -> bool {
        matches!(self, State::Idle | State::AuthFailed { .. } | State::Closed)
    }

    /// The state in words (what `Display` writes; see `core::text`).
    pub fn describe(&self) -> String {
        match self {
            State::Idle => String::from("idle"),
            State::Connecting => String::from("connecting"),
            State::Connected => String::from("connected"),
            State::Reconnecting { attempt, delay } => {
                let ms = super::time::millis(*delay);
                fill(
                    "reconnecting (attempt {} in {} ms)",
                    &[&decimal(u64::from(*attempt)), &decimal(ms)],
                )
            }
            State::AwaitingToken => String::from("waiting for a fresh token"),
            State::AuthFailed { reason: Some(r) } => fill("authentication failed: {}", &[r]),
            State::AuthFailed { reason: None } => String::from("authentication failed"),
            State::Closed => String::from("closed"),
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
