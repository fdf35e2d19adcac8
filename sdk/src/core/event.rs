//! What goes in ([`Input`]) and what comes out ([`Action`], [`Event`]) of the core.

use std::fmt;

use serde_json::Value;

use super::text::{decimal, fill};
use super::{FrameText, State};
use crate::protocol::{Channel, ErrorCode, ErrorData, ServerFrame};

/// Which connection attempt a transport input belongs to: every [`Action::Connect`] starts a
/// new one, and the driver names it on every [`Input`] of that socket.
///
/// A browser fires `onclose` for a socket after `ws.close()` was called and a new attempt
/// began; the core ignores inputs of any attempt but the current one, so such a late event
/// cannot tear down the new socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Something the transport reports to the core about the socket of one attempt
/// (see [`Connection::handle`](super::Connection::handle)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The WebSocket handshake completed.
    Opened,
    /// A text frame arrived.
    Text(String),
    /// The transport wrote this many more [`Action::Send`] frames of the attempt, in the
    /// order they were asked for. A frame counts as delivered to a server without acks only
    /// once its write is confirmed: frames not confirmed when the socket dies are sent
    /// again on the next one.
    Written(usize),
    /// The socket closed with a close frame (1006 when the browser gives no code).
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The server answered the upgrade with this HTTP status instead of 101 (native
    /// drivers see it; browsers cannot). 401 is a refused token, 403 a refused user.
    Refused {
        /// The HTTP status.
        status: u16,
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
    /// Drop any socket of an earlier attempt and open a WebSocket to `url` (it already
    /// carries `?token=`; subprotocol `pitchey-v1`). Native drivers may also send
    /// `Authorization: Bearer {token}`. Every input of this socket names `attempt`.
    Connect {
        /// The attempt this socket belongs to.
        attempt: AttemptId,
        /// The endpoint with the token as query parameter.
        url: String,
        /// The token, for drivers that prefer the header.
        token: String,
    },
    /// Write one text frame on the socket of the current attempt, then report
    /// [`Input::Written`] once the transport took it. The text is shared with the outbox
    /// (a clone is a pointer copy).
    Send(FrameText),
    /// Close the socket of `attempt` (or abort it) with this code and reason. Inputs that
    /// still arrive for it are ignored by the core.
    Close {
        /// The attempt whose socket to close.
        attempt: AttemptId,
        /// Close code (1000).
        code: u16,
        /// Close reason.
        reason: String,
    },
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Connect { attempt, url, .. } => {
                // The core sets the token as the last query parameter: everything after
                // the last `token=` goes (a `csrftoken=` earlier must not be taken for it).
                let shown = match url.rfind("token=") {
                    Some(i) => format!("{}token=<redacted>", &url[..i]),
                    None => url.clone(),
                };
                f.debug_struct("Connect")
                    .field("attempt", attempt)
                    .field("url", &shown)
                    .field("token", &"<redacted>")
                    .finish()
            }
            Action::Send(text) => f.debug_tuple("Send").field(text).finish(),
            Action::Close {
                attempt,
                code,
                reason,
            } => f
                .debug_struct("Close")
                .field("attempt", attempt)
                .field("code", code)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// A client-made message id (`c-<random prefix>-<counter>`), unique per `Connection`.
/// Durable messages carry it on the wire so the server can ack and de-duplicate them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) String);

impl MessageId {
    /// An id as it appears on the wire (e.g. one a binding kept across a call boundary).
    pub fn new(id: impl Into<String>) -> Self {
        MessageId(id.into())
    }

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
#[non_exhaustive]
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
    /// The server closed the connection with 4009 (message too large) while this, the
    /// largest frame in flight, was being read: it is not sent again. Later messages of at
    /// least this size are refused by `send` on this connection.
    RefusedTooLarge {
        /// Encoded size in bytes.
        size: usize,
    },
    /// The message's expiry (see [`Connection::send_with_expiry`]) passed before it could
    /// be written; it was not sent late.
    ///
    /// [`Connection::send_with_expiry`]: super::Connection::send_with_expiry
    Expired,
}

impl SendFailure {
    /// Why, in words (what `Display` writes; see `core::text`).
    pub fn message(&self) -> String {
        let n = |v: &usize| decimal(*v as u64);
        match self {
            SendFailure::Rejected(e) => fill(
                "rejected by the server: {} ({})",
                &[e.code.as_str(), &e.message],
            ),
            SendFailure::TooManyAttempts => String::from("sent too many times without an ack"),
            SendFailure::TooLarge { size, max } => fill(
                "{} bytes exceed the {}-byte frame limit",
                &[&n(size), &n(max)],
            ),
            SendFailure::DraftConflict => String::from("draft save on a stale version"),
            SendFailure::RefusedTooLarge { size } => fill(
                "the server closed with 4009: {} bytes is too large",
                &[&n(size)],
            ),
            SendFailure::Expired => String::from("expired before it could be sent"),
        }
    }
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
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
    /// feature, written to the socket and the write confirmed by the transport
    /// ([`Input::Written`]).
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
    /// The server answered a `subscribe` with an `error` carrying its id: the channel is
    /// no longer subscribed and is not asked for again after a reconnect.
    SubscriptionFailed {
        /// The channel.
        channel: Channel,
        /// The server's error code (e.g. `forbidden`, `not_found`).
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server confirmed a subscription (its ack; on a server without acks or without
    /// `subscribe`, once the request was written or the connection came up).
    SubscriptionActive {
        /// The channel.
        channel: Channel,
    },
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

impl Event {
    /// The draft this event is about, for the draft events (saved, updated, conflict, save
    /// failed); `None` for the others.
    pub fn draft_id(&self) -> Option<&str> {
        match self {
            Event::DraftSaved { draft_id, .. }
            | Event::DraftUpdated { draft_id, .. }
            | Event::DraftConflict { draft_id, .. }
            | Event::DraftSaveFailed { draft_id, .. } => Some(draft_id),
            _ => None,
        }
    }
}
