//! What goes in ([`Input`]) and what comes out ([`Action`], [`Event`]) of the core.

use std::fmt;

use serde_json::Value;

use super::State;
use crate::protocol::{ErrorData, ServerFrame};

/// Something the transport reports to the core, for the socket of the latest
/// [`Action::Connect`]. Inputs from sockets of earlier `Connect`s must be dropped by the
/// driver (after [`Action::Close`] the core has already accounted for that socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The WebSocket handshake completed.
    Opened,
    /// A text frame arrived.
    Text(String),
    /// The socket closed with a close frame. A handshake refused with HTTP 401 should be
    /// reported as `Closed { code: 4001, .. }`, one refused with 403 as `code: 4003`.
    Closed {
        /// The close code (1006 when the browser gives no code).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The attempt failed or the socket errored without a close frame.
    Failed {
        /// What the transport said.
        reason: String,
    },
}

/// Something the driver must do, in order.
///
/// Its `Debug` output hides the token (in `token` and in the URL), so actions can be logged.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a WebSocket to `url` (it already carries `?token=`; subprotocol `pitchey-v1`).
    /// Native drivers may also send `Authorization: Bearer {token}`.
    Connect {
        /// The endpoint with the token as query parameter.
        url: String,
        /// The token, for drivers that prefer the header.
        token: String,
    },
    /// Write one text frame on the open socket.
    Send(String),
    /// Close the socket (or abort the attempt) with this code and reason, then forget it:
    /// report no `Closed`/`Failed` for it.
    Close {
        /// Close code (1000).
        code: u16,
        /// Close reason.
        reason: String,
    },
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Connect { url, .. } => {
                // The core appends the token as the last `token=` parameter: everything
                // after it goes (a `csrftoken=` earlier in the URL must not be taken for it).
                let shown = match url.rfind("token=") {
                    Some(i) => format!("{}token=<redacted>", &url[..i]),
                    None => url.clone(),
                };
                f.debug_struct("Connect")
                    .field("url", &shown)
                    .field("token", &"<redacted>")
                    .finish()
            }
            Action::Send(text) => f.debug_tuple("Send").field(text).finish(),
            Action::Close { code, reason } => f
                .debug_struct("Close")
                .field("code", code)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// A client-made message id (`c-<session prefix>-<counter>`), unique per `Connection`.
/// Durable messages carry it on the wire so the server can ack and de-duplicate them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) String);

impl MessageId {
    /// The id as on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.0
    }
}

/// Why a durable message will not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The server answered with an `error` frame for this id (other than `rate_limited`,
    /// which the core handles by waiting and re-sending).
    Rejected(ErrorData),
    /// Written `Config::max_send_attempts` times without an ack.
    TooManyAttempts,
    /// The content encodes to a frame over `Config::max_message_bytes`; edit it smaller.
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A draft save the server refused because its base version was stale; the draft's
    /// conflict strategy takes over (see [`Event::DraftConflict`]).
    DraftConflict,
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Rejected(e) => {
                write!(f, "rejected by the server: {} ({})", e.code, e.message)
            }
            SendFailure::TooManyAttempts => f.write_str("sent too many times without an ack"),
            SendFailure::TooLarge { size, max } => {
                write!(f, "{size} bytes exceed the {max}-byte frame limit")
            }
            SendFailure::DraftConflict => f.write_str("draft save on a stale version"),
        }
    }
}

/// How the app resolves a draft conflict (after [`Event::DraftConflict`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Keep the local content, saved on top of the server's version.
    Local,
    /// Take the server's content.
    Remote,
    /// Save this content (e.g. a manual merge) on top of the server's version.
    Content(Value),
}

/// Something the app may want to know. Poll with [`Connection::poll_event`].
///
/// [`Connection::poll_event`]: super::Connection::poll_event
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The lifecycle state changed.
    StateChanged(State),
    /// A server frame for the app: every decoded frame except heartbeats, acks, and errors
    /// the core consumed itself (`rate_limited`, or those reported as [`Event::SendFailed`]).
    /// Frames whose `seq` was already seen are dropped before this point.
    Message(ServerFrame),
    /// A durable message is done: acked by the server, or, on a server without the `ack`
    /// feature, written to the socket.
    Acked(MessageId),
    /// A durable message will not be delivered.
    SendFailed(MessageId, SendFailure),
    /// `send` (or an auto-save) found the outbox full; the caller got
    /// [`SendError::QueueFull`](super::SendError::QueueFull).
    QueueFull,
    /// The server rejected the token: call [`Connection::set_token`] with a fresh one
    /// (or [`Connection::token_unavailable`]).
    ///
    /// [`Connection::set_token`]: super::Connection::set_token
    /// [`Connection::token_unavailable`]: super::Connection::token_unavailable
    TokenNeeded,
    /// Server messages may have been missed (the server could not resume, offers no
    /// resume, or a `seq` gap was seen): refetch what the UI shows.
    ContinuityLost,
    /// A draft save was acked (or written, without `ack`).
    DraftSaved {
        /// The draft.
        draft_id: String,
        /// Its new version, when the server versions drafts.
        version: Option<u64>,
    },
    /// The draft's content changed from outside the app's `draft_update`: adopted from
    /// another session, merged, or resolved. Show `content`.
    DraftUpdated {
        /// The draft.
        draft_id: String,
        /// The content now held by the core.
        content: Value,
        /// The server version it is based on.
        version: Option<u64>,
    },
    /// A conflict the strategy could not settle: resolve with
    /// [`Connection::draft_resolve`](super::Connection::draft_resolve).
    DraftConflict {
        /// The draft.
        draft_id: String,
        /// The content both sides started from.
        base: Value,
        /// The local content.
        local: Value,
        /// The server's content.
        remote: Value,
        /// The server's version.
        remote_version: Option<u64>,
    },
    /// A draft save failed for good (rejected by the server, or too many attempts). The
    /// draft stays dirty and is retried at the next auto-save or `draft_save_now`.
    DraftSaveFailed {
        /// The draft.
        draft_id: String,
        /// Why.
        reason: SendFailure,
    },
}
