//! The error type of the core's public methods.

/// Why `send`, `subscribe` or a draft method refused a request. Nothing is queued when one
/// of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The outbox holds `Config::outbox_capacity` messages already. Also emitted as
    /// [`Event::QueueFull`](super::Event::QueueFull). Retry after some are acked.
    #[error("outbox full ({capacity} messages)")]
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The encoded frame is larger than `Config::max_message_bytes`.
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// This message type is managed by the core (`ping`, `pong`, `subscribe`,
    /// `unsubscribe`, `resume`); use the dedicated method instead.
    #[error("`{kind}` is sent by the core itself; {hint}")]
    NotSendable {
        /// The wire type.
        kind: String,
        /// What to use instead.
        hint: String,
    },
    /// Too many channels subscribed.
    #[error("subscription limit of {max} channels reached")]
    TooManySubscriptions {
        /// `Config::max_subscriptions`.
        max: usize,
    },
    /// No draft with this id is open (`draft_open` first).
    #[error("draft `{0}` is not open")]
    UnknownDraft(String),
    /// `draft_resolve` on a draft that has no pending conflict.
    #[error("draft `{0}` has no conflict to resolve")]
    NoConflict(String),
    /// The draft's content failed validation; it is kept but not saved.
    #[error("draft `{0}` content is not valid; not saved")]
    InvalidDraft(String),
    /// The server closed with 4009 for a frame of `refused` bytes on this connection, so a
    /// frame of `size` bytes would be refused too.
    #[error("message of {size} bytes is at least the {refused} bytes the server refused")]
    RefusedBefore {
        /// Encoded size.
        size: usize,
        /// The smallest size the server refused.
        refused: usize,
    },
}

/// Why [`Connection::connect`](super::Connection::connect) cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `Config::url` does not parse as a URL.
    #[error("invalid endpoint URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// The URL's scheme is not `ws` or `wss`.
    #[error("endpoint URL scheme must be ws or wss, not `{0}`")]
    UnsupportedScheme(String),
}
