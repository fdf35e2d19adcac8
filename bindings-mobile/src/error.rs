//! The error the app switches on: one flat enum, mapped from the core's errors.

use pitchey_realtime::client::ClientError;
use pitchey_realtime::core::{ConfigError, SendError, SendFailure, State};

/// Why a call failed. In Kotlin it is thrown as `PitcheyException` (one subclass per
/// variant); in Swift it is an `Error` enum.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum PitcheyError {
    /// The outbox is full: nothing was queued. Retry after some messages are acked.
    #[error("outbox full ({capacity} messages)")]
    QueueFull {
        /// The configured capacity.
        capacity: u64,
    },
    /// The message encodes to more bytes than the server accepts.
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        size: u64,
        /// The limit (the configured one, or the size the server refused before).
        max: u64,
    },
    /// The server refused every token the client had, and the token provider had no
    /// other (state `AuthFailed`).
    #[error("unauthorized{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Unauthorized {
        /// What the server said, if anything.
        reason: Option<String>,
    },
    /// The connection stopped for good while waiting (disconnected, closed, or
    /// `backoff_max_attempts` reached). `state` says which.
    #[error("connection stopped: {state}")]
    Closed {
        /// The state, as text.
        state: String,
    },
    /// The server rejected the message with an `error` frame.
    #[error("message {id} rejected by the server: {code} ({reason})")]
    Rejected {
        /// The message id.
        id: String,
        /// The server's error code (`forbidden`, `not_found`, ...).
        code: String,
        /// The server's explanation.
        reason: String,
    },
    /// A durable message will not be delivered for another reason (too many attempts,
    /// expired, refused as too large by the server, draft conflict).
    #[error("message {id} failed: {reason}")]
    SendFailed {
        /// The message id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The endpoint URL does not parse or is not `ws://` or `wss://`.
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// What is wrong.
        reason: String,
    },
    /// A JSON string given by the app does not parse.
    #[error("invalid JSON: {reason}")]
    InvalidJson {
        /// The parser's message.
        reason: String,
    },
    /// This message type is sent by the client itself (`ping`, `subscribe`, ...).
    #[error("`{kind}` is sent by the client itself: {hint}")]
    NotSendable {
        /// The type.
        kind: String,
        /// What to call instead.
        hint: String,
    },
    /// `send_confirmed` on an ephemeral message type, which is never acked.
    #[error("`{kind}` is ephemeral and never acked; use send")]
    NotDurable {
        /// The type.
        kind: String,
    },
    /// Too many channels subscribed.
    #[error("subscription limit of {max} channels reached")]
    TooManySubscriptions {
        /// The limit.
        max: u64,
    },
    /// The draft is not open (or was closed).
    #[error("draft `{draft_id}` is not open")]
    UnknownDraft {
        /// The draft.
        draft_id: String,
    },
    /// `resolve_*` on a draft without a pending conflict.
    #[error("draft `{draft_id}` has no conflict to resolve")]
    NoConflict {
        /// The draft.
        draft_id: String,
    },
    /// While waiting for an ack, too many events went by to be sure it was not missed;
    /// the message is still queued.
    #[error("lost track of {id} after {missed} events; it is still queued")]
    Unconfirmed {
        /// The message id.
        id: String,
        /// Events skipped.
        missed: u64,
    },
    /// The persisted outbox could not be read or written.
    #[error("persistence: {reason}")]
    Persistence {
        /// What failed.
        reason: String,
    },
    /// The builder was already used: build a new one.
    #[error("this builder already built a client")]
    AlreadyBuilt,
    /// The client's background task is gone.
    #[error("the client has stopped")]
    ClientGone,
    /// The platform failed (runtime, entropy) or an error this version does not name.
    #[error("{reason}")]
    Platform {
        /// What failed.
        reason: String,
    },
}

impl From<SendError> for PitcheyError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::QueueFull { capacity } => PitcheyError::QueueFull {
                capacity: to_u64(capacity),
            },
            SendError::TooLarge { size, max } => PitcheyError::TooLarge {
                size: to_u64(size),
                max: to_u64(max),
            },
            SendError::RefusedBefore { size, refused } => PitcheyError::TooLarge {
                size: to_u64(size),
                max: to_u64(refused),
            },
            SendError::NotSendable { kind, hint } => PitcheyError::NotSendable { kind, hint },
            SendError::TooManySubscriptions { max } => {
                PitcheyError::TooManySubscriptions { max: to_u64(max) }
            }
            SendError::UnknownDraft(draft_id) => PitcheyError::UnknownDraft { draft_id },
            SendError::NoConflict(draft_id) => PitcheyError::NoConflict { draft_id },
            other => PitcheyError::Platform {
                reason: other.to_string(),
            },
        }
    }
}

impl From<ClientError> for PitcheyError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Send(e) => e.into(),
            ClientError::Config(e) => PitcheyError::InvalidUrl {
                reason: match e {
                    ConfigError::InvalidUrl { url, reason } => format!("`{url}`: {reason}"),
                    other => other.to_string(),
                },
            },
            ClientError::Snapshot(e) => PitcheyError::Persistence {
                reason: e.to_string(),
            },
            ClientError::Failed(id, failure) => from_failure(id.to_string(), failure),
            ClientError::Stopped(State::AuthFailed { reason }) => {
                PitcheyError::Unauthorized { reason }
            }
            ClientError::Stopped(state) => PitcheyError::Closed {
                state: state.to_string(),
            },
            ClientError::DriverGone => PitcheyError::ClientGone,
            ClientError::NotDurable(kind) => PitcheyError::NotDurable { kind },
            ClientError::Unconfirmed { id, missed } => PitcheyError::Unconfirmed {
                id: id.to_string(),
                missed,
            },
            other => PitcheyError::Platform {
                reason: other.to_string(),
            },
        }
    }
}

/// A durable message's failure as an error.
pub(crate) fn from_failure(id: String, failure: SendFailure) -> PitcheyError {
    match failure {
        SendFailure::Rejected(data) => PitcheyError::Rejected {
            id,
            code: data.code.as_str().to_owned(),
            reason: data.message,
        },
        SendFailure::TooLarge { size, max } => PitcheyError::TooLarge {
            size: to_u64(size),
            max: to_u64(max),
        },
        other => PitcheyError::SendFailed {
            id,
            reason: other.to_string(),
        },
    }
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitchey_realtime::core::MessageId;
    use pitchey_realtime::protocol::{ErrorCode, ErrorData};

    #[test]
    fn core_errors_map_to_the_variants_an_app_switches_on() {
        let e: PitcheyError = ClientError::Send(SendError::QueueFull { capacity: 3 }).into();
        assert_eq!(e, PitcheyError::QueueFull { capacity: 3 });
        let e: PitcheyError = ClientError::Stopped(State::AuthFailed { reason: None }).into();
        assert_eq!(e, PitcheyError::Unauthorized { reason: None });
        let e: PitcheyError = ClientError::Stopped(State::Closed).into();
        assert!(matches!(e, PitcheyError::Closed { .. }));
        let e: PitcheyError = ClientError::DriverGone.into();
        assert_eq!(e, PitcheyError::ClientGone);
        let rejected = SendFailure::Rejected(ErrorData {
            code: ErrorCode::Forbidden,
            message: "no".into(),
            retry_after_ms: None,
            id: None,
        });
        let e: PitcheyError = ClientError::Failed(MessageId::new("c-1"), rejected).into();
        assert_eq!(
            e,
            PitcheyError::Rejected {
                id: "c-1".into(),
                code: "forbidden".into(),
                reason: "no".into()
            }
        );
        let e: PitcheyError =
            ClientError::Config(ConfigError::UnsupportedScheme("http".into())).into();
        assert!(matches!(e, PitcheyError::InvalidUrl { .. }));
    }
}
