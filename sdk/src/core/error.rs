//! The error type of the core's public methods.

/// Why `send`, `subscribe` or a draft method refused a request. Nothing is queued when one
/// of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
        hint: &'static str,
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
}
