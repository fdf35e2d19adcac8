//! The connection's lifecycle state.

use super::Instant;

/// Where the connection is in its lifecycle.
///
/// ```text
///  Idle --connect--> Connecting --`connected` frame--> Connected
///                      ^   |                              |
///        timer/set_token   | failed, closed, timeout      | closed, failed, heartbeat lost
///                      |   v                              v
///                    Reconnecting { attempt, next_at } <--+
///  close 4001 -> AwaitingToken --set_token--> Reconnecting
///                      | timeout, token_unavailable, too many 4001s
///                      v
///                  AuthFailed            disconnect() from anywhere -> Closed
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Created, `connect` not called yet.
    Idle,
    /// A connection attempt is under way: waiting for the transport to open and then for
    /// the server's `connected` frame.
    Connecting,
    /// The server sent `connected`; messages flow.
    Connected,
    /// The link was lost; attempt number `attempt` (1-based) starts at `next_at`.
    Reconnecting {
        /// The attempt about to be made, counting from 1 after each stable connection.
        attempt: u32,
        /// When it will be made.
        next_at: Instant,
    },
    /// The server rejected the token (close 4001). [`Event::TokenNeeded`] was emitted;
    /// [`Connection::set_token`] reconnects; nothing happens until then or `deadline`
    /// (then `AuthFailed`). This state is an addition to the design's list: it makes the
    /// wait for the app's token provider visible instead of hiding it in `Reconnecting`.
    ///
    /// [`Event::TokenNeeded`]: super::Event::TokenNeeded
    /// [`Connection::set_token`]: super::Connection::set_token
    AwaitingToken {
        /// When the wait ends in `AuthFailed`.
        deadline: Instant,
    },
    /// No valid token could be had: no more retries until `set_token` or `connect`.
    AuthFailed,
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
        matches!(self, State::Idle | State::AuthFailed | State::Closed)
    }
}
