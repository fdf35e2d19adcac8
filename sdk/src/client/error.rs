use crate::core::text::{decimal, fill};
use crate::core::{ConfigError, MessageId, SendError, SendFailure, SnapshotError, State};

/// Errors of the async [`Client`](super::Client).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.message())]
#[non_exhaustive]
pub enum ClientError {
    /// The core refused the request (queue full, too large, ...). Nothing was queued.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The configuration cannot work (e.g. a URL that is not `ws://` or `wss://`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A snapshot could not be restored; nothing of it was.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The server rejected the message, or it could not be delivered.
    Failed(MessageId, SendFailure),
    /// The connection stopped for good (auth failed, closed, or disconnected) while waiting.
    Stopped(State),
    /// The driver task is gone (its runtime shut down).
    DriverGone,
    /// The platform could not provide what the client needs (e.g. no source of entropy).
    Platform(String),
    /// [`Client::send_confirmed`](super::Client::send_confirmed) was given an ephemeral
    /// message (`typing`, `presence_update`): those are never acked. Use `send`.
    NotDurable(String),
    /// While waiting for the ack of `id`, too many events went by to be sure it was not
    /// missed; the message itself is still queued and will be delivered.
    Unconfirmed {
        /// The queued message.
        id: MessageId,
        /// Events skipped.
        missed: u64,
    },
}

impl ClientError {
    /// What went wrong, in words (what `Display` writes; see `core::text`).
    pub fn message(&self) -> String {
        match self {
            ClientError::Send(e) => e.message(),
            ClientError::Config(e) => e.message(),
            ClientError::Snapshot(e) => e.message(),
            ClientError::Failed(id, why) => {
                fill("message {} failed: {}", &[id.as_str(), &why.message()])
            }
            ClientError::Stopped(state) => fill("connection stopped: {}", &[&state.describe()]),
            ClientError::DriverGone => String::from("the client's driver task has stopped"),
            ClientError::Platform(why) => fill("platform: {}", &[why]),
            ClientError::NotDurable(kind) => {
                fill("`{}` is ephemeral and never acked; use send", &[kind])
            }
            ClientError::Unconfirmed { id, missed } => fill(
                "lost track of {} after missing {} events; it is still queued",
                &[id.as_str(), &decimal(*missed)],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::SendFailure;
    use crate::protocol::{Channel, ErrorCode, ErrorData, ProtocolError};

    /// Every message as a user reads it (`Display`, built without `core::fmt`).
    #[test]
    fn messages_read_as_written() {
        let id = MessageId::new("c-1");
        let cases: Vec<(String, &str)> = vec![
            (
                ClientError::Send(SendError::QueueFull { capacity: 100 }).to_string(),
                "outbox full (100 messages)",
            ),
            (
                SendError::TooLarge {
                    size: 70_000,
                    max: 65_536,
                }
                .to_string(),
                "message of 70000 bytes exceeds the 65536-byte limit",
            ),
            (
                SendError::NotSendable {
                    kind: "ping".into(),
                    hint: "use ping()".into(),
                }
                .to_string(),
                "`ping` is sent by the core itself; use ping()",
            ),
            (
                SendError::RefusedBefore {
                    size: 9,
                    refused: 8,
                }
                .to_string(),
                "message of 9 bytes is at least the 8 bytes the server refused",
            ),
            (
                ClientError::Config(ConfigError::UnsupportedScheme("http".into())).to_string(),
                "endpoint URL scheme must be ws or wss, not `http`",
            ),
            (
                ClientError::Snapshot(SnapshotError::UnknownFormat(7)).to_string(),
                "snapshot format 7 is newer than this SDK's (1)",
            ),
            (
                SnapshotError::NoRoom { saved: 3, free: 1 }.to_string(),
                "3 saved messages do not fit in the outbox (1 free)",
            ),
            (
                ClientError::Failed(
                    id.clone(),
                    SendFailure::Rejected(ErrorData {
                        code: ErrorCode::RateLimited,
                        message: "slow down".into(),
                        retry_after_ms: None,
                        id: None,
                    }),
                )
                .to_string(),
                "message c-1 failed: rejected by the server: rate_limited (slow down)",
            ),
            (
                SendFailure::RefusedTooLarge { size: 5 }.to_string(),
                "the server closed with 4009: 5 bytes is too large",
            ),
            (
                ClientError::Stopped(State::Reconnecting {
                    attempt: 3,
                    delay: Duration::from_millis(1500),
                })
                .to_string(),
                "connection stopped: reconnecting (attempt 3 in 1500 ms)",
            ),
            (
                ClientError::Unconfirmed { id, missed: 12 }.to_string(),
                "lost track of c-1 after missing 12 events; it is still queued",
            ),
            (Channel::Pitch(42).to_string(), "pitch:42"),
            (Channel::Draft("d-1".into()).to_string(), "draft:d-1"),
            (
                "pitch:x".parse::<Channel>().unwrap_err().to_string(),
                "unknown channel `pitch:x` (expected notifications, dashboard, uploads, pitch:N, presence:N, conversation:N or draft:ID)",
            ),
            (
                ProtocolError::InvalidData {
                    kind: "ack".into(),
                    message: "missing field `id`".into(),
                }
                .to_string(),
                "invalid data for `ack`: missing field `id`",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
