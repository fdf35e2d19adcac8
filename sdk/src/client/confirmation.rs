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
            // In place: a waiter copies no event, not even the one that settles it.
            let id = &self.id;
            match self.events.recv_with(|event| settle(id, event)).await {
                Some(Ok(Some(Ok(())))) => return Ok(self.id),
                Some(Ok(Some(Err(e)))) => return Err(e),
                Some(Ok(None)) => {}
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

/// What `event` settles about the durable message `id`: `Some(Ok)` once it is acked,
/// `Some(Err)` once it will not be delivered or the client stopped first (it stays queued
/// for the next `connect`), `None` while it is open. Only for events published after the
/// send: an earlier stop says nothing about a message queued after it.
fn settle(id: &MessageId, event: &Event) -> Option<Result<(), ClientError>> {
    match event {
        Event::Acked(acked) if acked == id => Some(Ok(())),
        Event::SendFailed(failed, why) if failed == id => {
            Some(Err(ClientError::Failed(failed.clone(), why.clone())))
        }
        Event::StateChanged(stopped @ (State::AuthFailed { .. } | State::Closed)) => {
            Some(Err(ClientError::Stopped(stopped.clone())))
        }
        _ => None,
    }
}

impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmation")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::SendFailure;

    #[test]
    fn only_its_own_ack_or_failure_or_a_stop_settles_a_message() {
        let id = MessageId("c-1".to_owned());
        let other = MessageId("c-2".to_owned());
        assert!(settle(&id, &Event::Acked(other.clone())).is_none());
        assert!(settle(&id, &Event::SendFailed(other, SendFailure::TooManyAttempts)).is_none());
        assert!(settle(&id, &Event::StateChanged(State::Connecting)).is_none());
        assert!(matches!(
            settle(&id, &Event::Acked(id.clone())),
            Some(Ok(()))
        ));
        assert!(matches!(
            settle(&id, &Event::SendFailed(id.clone(), SendFailure::TooManyAttempts)),
            Some(Err(ClientError::Failed(failed, SendFailure::TooManyAttempts))) if failed == id
        ));
        assert!(matches!(
            settle(&id, &Event::StateChanged(State::Closed)),
            Some(Err(ClientError::Stopped(State::Closed)))
        ));
    }
}
