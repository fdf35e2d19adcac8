//! The error type of the core's public methods.
//!
//! Their messages are made by `message()` without `core::fmt` (see `core::text`), and
//! `Display` writes them.

use super::text::{decimal, fill};

/// Why `send`, `subscribe` or a draft method refused a request. Nothing is queued when one
/// of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
#[non_exhaustive]
pub enum SendError {
    /// The outbox holds `Config::outbox_capacity` messages already. Also emitted as
    /// [`Event::QueueFull`](super::Event::QueueFull). Retry after some are acked.
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The encoded frame is larger than `Config::max_message_bytes`.
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// This message type is managed by the core (`ping`, `pong`, `subscribe`,
    /// `unsubscribe`, `resume`); use the dedicated method instead.
    NotSendable {
        /// The wire type.
        kind: String,
        /// What to use instead.
        hint: String,
    },
    /// Too many channels subscribed.
    TooManySubscriptions {
        /// `Config::max_subscriptions`.
        max: usize,
    },
    /// No draft with this id is open (`draft_open` first).
    UnknownDraft(String),
    /// `draft_resolve` on a draft that has no pending conflict.
    NoConflict(String),
    /// The draft's content failed validation; it is kept but not saved.
    InvalidDraft(String),
    /// The server closed with 4009 for a frame of `refused` bytes on this connection, so a
    /// frame of `size` bytes would be refused too.
    RefusedBefore {
        /// Encoded size.
        size: usize,
        /// The smallest size the server refused.
        refused: usize,
    },
}

/// Why [`Connection::connect`](super::Connection::connect) cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
#[non_exhaustive]
pub enum ConfigError {
    /// `Config::url` does not parse as a URL.
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// The URL's scheme is not `ws` or `wss`.
    UnsupportedScheme(String),
}

impl SendError {
    /// What went wrong, in words (what `Display` writes).
    pub fn message(&self) -> String {
        let n = |v: &usize| decimal(*v as u64);
        match self {
            SendError::QueueFull { capacity } => fill("outbox full ({} messages)", &[&n(capacity)]),
            SendError::TooLarge { size, max } => fill(
                "message of {} bytes exceeds the {}-byte limit",
                &[&n(size), &n(max)],
            ),
            SendError::NotSendable { kind, hint } => {
                fill("`{}` is sent by the core itself; {}", &[kind, hint])
            }
            SendError::TooManySubscriptions { max } => {
                fill("subscription limit of {} channels reached", &[&n(max)])
            }
            SendError::UnknownDraft(id) => fill("draft `{}` is not open", &[id]),
            SendError::NoConflict(id) => fill("draft `{}` has no conflict to resolve", &[id]),
            SendError::InvalidDraft(id) => {
                fill("draft `{}` content is not valid; not saved", &[id])
            }
            SendError::RefusedBefore { size, refused } => fill(
                "message of {} bytes is at least the {} bytes the server refused",
                &[&n(size), &n(refused)],
            ),
        }
    }
}

impl ConfigError {
    /// What went wrong, in words (what `Display` writes).
    pub fn message(&self) -> String {
        match self {
            ConfigError::InvalidUrl { url, reason } => {
                fill("invalid endpoint URL `{}`: {}", &[url, reason])
            }
            ConfigError::UnsupportedScheme(scheme) => {
                fill("endpoint URL scheme must be ws or wss, not `{}`", &[scheme])
            }
        }
    }
}
