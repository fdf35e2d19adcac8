//! The confirmation of one durable message: queued at once, awaited later.

use super::{ClientError, EventStream, Lagged};
use crate::core::{Event, MessageId, State};

/// A durable message that [`Client::send_tracked`](super::Client::send_tracked) queued:
/// [`Confirmation::wait`] resolves once the server acked it.
///
/// The message is queued when the `Confirmation` is made, so calls keep their order (a
/// `close` right after a `send_tracked` delivers the message first); only the wait is
/// `async`. Dropping it stops waiting, not the message.
#[must_use = "dropping it only stops waiting; the message is still sent"]
pub struct Confirmation {
    id: MessageId,
    /// Opened before the message was queued, so its ack cannot slip past.
    events: EventStream,
}

impl Confirmation {
    pub(super) fn new(id: MessageId, events: EventStream) -> Self {
        Confirmation { id, events }
    }

    /// The message's id.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Wait for the server's ack (on a server without acks: for the write). Fails if the
    /// message will not be delivered, if the client stops first, or if this waiter fell
    /// so far behind the client's events that it cannot tell ([`ClientError::Unconfirmed`]).
    pub async fn wait(mut self) -> Result<MessageId, ClientError> {
        loop {
            match self.events.recv().await {
                Some(Ok(Event::Acked(acked))) if acked == self.id => return Ok(self.id),
                Some(Ok(Event::SendFailed(failed, why))) if failed == self.id => {
                    return Err(ClientError::Failed(failed, why));
                }
                Some(Ok(Event::StateChanged(
                    stopped @ (State::AuthFailed { .. } | State::Closed),
                ))) => {
                    return Err(ClientError::Stopped(stopped));
                }
                Some(Ok(_)) => {}
                Some(Err(Lagged { missed })) => {
                    return Err(ClientError::Unconfirmed {
                        id: self.id,
                        missed,
                    });
                }
                None => return Err(ClientError::DriverGone),
            }
        }
    }
}

impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmation")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
