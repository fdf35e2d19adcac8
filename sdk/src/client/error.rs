use crate::core::{ConfigError, MessageId, SendError, SendFailure, SnapshotError, State};

/// Errors of the async [`Client`](super::Client).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    #[error("message {0} failed: {1}")]
    Failed(MessageId, SendFailure),
    /// The connection stopped for good (auth failed, closed, or disconnected) while waiting.
    #[error("connection stopped: {0}")]
    Stopped(State),
    /// The driver task is gone (its runtime shut down).
    #[error("the client's driver task has stopped")]
    DriverGone,
    /// The platform could not provide what the client needs (e.g. no source of entropy).
    #[error("platform: {0}")]
    Platform(String),
    /// [`Client::send_confirmed`](super::Client::send_confirmed) was given an ephemeral
    /// message (`typing`, `presence_update`): those are never acked. Use `send`.
    #[error("`{0}` is ephemeral and never acked; use send")]
    NotDurable(String),
    /// While waiting for the ack of `id`, too many events went by to be sure it was not
    /// missed; the message itself is still queued and will be delivered.
    #[error("lost track of {id} after missing {missed} events; it is still queued")]
    Unconfirmed {
        /// The queued message.
        id: MessageId,
        /// Events skipped.
        missed: u64,
    },
}
