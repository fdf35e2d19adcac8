use crate::core::{MessageId, SendError, SendFailure, State};

/// Errors of the async [`Client`](super::Client).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The core refused the request (queue full, too large, ...). Nothing was queued.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The server rejected the message, or it could not be delivered.
    #[error("message {0} failed: {1}")]
    Failed(MessageId, SendFailure),
    /// The connection stopped for good (auth failed, closed, or disconnected) while waiting.
    #[error("connection stopped: {0:?}")]
    Stopped(State),
    /// The driver task is gone (its runtime shut down).
    #[error("the client's driver task has stopped")]
    DriverGone,
    /// This stream fell behind and missed events: see [`Lagged`](super::Lagged).
    #[error("missed {0} events: the consumer was too slow")]
    Lagged(u64),
}
