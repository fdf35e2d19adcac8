//! Typed subscription streams that unsubscribe when dropped.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

use super::fanout::{self, Recv};

use super::Client;
use crate::core::{Event, State};
use crate::protocol::{
    Channel, DashboardMetrics, DraftSynced, Notification, PitchStats, Presence, ServerFrame,
    ServerMessage, UploadProgress, UserTyping,
};

/// A stream item that says the consumer fell behind and `missed` events were skipped.
///
/// Events are fanned out through a bounded buffer so that a stalled consumer cannot stall
/// the connection (and its heartbeat); instead of dropping silently, the stream says how
/// many it skipped. Refetch state over HTTP when this happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missed {missed} events: the consumer was too slow")]
pub struct Lagged {
    /// How many events were skipped.
    pub missed: u64,
}

/// The driver's fan-out of events: a subscription looks at each event in place, so one it
/// skips costs no copy.
pub(super) type Fanout = fanout::Receiver;

/// Poll `events` until `pick` accepts one; lag is reported, never swallowed.
pub(super) fn poll_pick<T>(
    events: &mut Fanout,
    cx: &mut Context<'_>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Poll<Option<Result<T, Lagged>>> {
    let mut item = None;
    let polled = events.poll_pick(cx, &mut |event| {
        item = pick(event);
        item.is_some()
    });
    polled.map(|recv| match recv? {
        Recv::Event(()) => item.map(Ok),
        Recv::Lagged(missed) => Some(Err(Lagged { missed })),
    })
}

/// The next event of `events` by value: moved out of the queue when no other reader needs
/// it (a stream that reads every event is usually the only one), cloned otherwise.
fn poll_take(events: &mut Fanout, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Lagged>>> {
    events.poll_take(cx).map(|recv| {
        Some(match recv? {
            Recv::Event(event) => Ok(event),
            Recv::Lagged(missed) => Err(Lagged { missed }),
        })
    })
}

/// A payload that a [`Subscription`] yields: picked out of the server messages of its channel.
pub trait ChannelMessage: Sized + Send + 'static {
    /// The payload of `message`, if it is of this type.
    fn extract(message: &ServerMessage) -> Option<Self>;
}

impl ChannelMessage for ServerMessage {
    fn extract(message: &ServerMessage) -> Option<Self> {
        Some(message.clone())
    }
}

macro_rules! channel_message {
    ($($ty:ty => $variant:ident $(. $field:ident)?),* $(,)?) => {$(
        impl ChannelMessage for $ty {
            fn extract(message: &ServerMessage) -> Option<Self> {
                match message {
                    ServerMessage::$variant(m) => Some(m$(.$field)?.clone()),
                    _ => None,
                }
            }
        }
    )*};
}

channel_message! {
    Notification => Notification,
    DashboardMetrics => DashboardUpdate.metrics,
    PitchStats => PitchStatsUpdate,
    Presence => PresenceUpdate,
    UserTyping => UserTyping,
    UploadProgress => UploadProgress,
    DraftSynced => DraftSync,
}

/// A hold on one [`Channel`] without a stream of its own ([`Client::join`]): the channel's
/// messages arrive on [`Client::events`], for apps that route every event from one place
/// (the JS bindings' dispatcher). Dropping it unsubscribes (when no other handle holds the
/// same channel).
#[must_use = "dropping the guard unsubscribes"]
pub struct ChannelGuard {
    channel: Channel,
    client: Client,
}

impl ChannelGuard {
    /// Only for a channel the core has just counted for this guard.
    pub(super) fn new(channel: Channel, client: Client) -> Self {
        ChannelGuard { channel, client }
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        self.client.release_channel(self.channel.clone());
    }
}

impl std::fmt::Debug for ChannelGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelGuard")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// A live subscription to one [`Channel`], yielding its messages as `T`.
///
/// Dropping it unsubscribes (when no other handle holds the same channel). Items are
/// `Err(Lagged)` when the consumer fell behind.
pub struct Subscription<T> {
    guard: ChannelGuard,
    events: Fanout,
    _payload: PhantomData<fn() -> T>,
}

impl<T: ChannelMessage> Subscription<T> {
    /// `events` must have been subscribed before `guard`'s channel was counted.
    pub(super) fn new(guard: ChannelGuard, events: Fanout) -> Self {
        Subscription {
            guard,
            events,
            _payload: PhantomData,
        }
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        self.guard.channel()
    }

    /// The next payload (`None` when the client is gone). Same as `StreamExt::next`.
    pub async fn recv(&mut self) -> Option<Result<T, Lagged>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

fn frame_payload<T: ChannelMessage>(channel: &Channel, frame: &ServerFrame) -> Option<T> {
    (frame.message.channel().as_ref() == Some(channel))
        .then(|| T::extract(&frame.message))
        .flatten()
}

impl<T: ChannelMessage> Stream for Subscription<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let channel = &this.guard.channel;
        poll_pick(&mut this.events, cx, |event| match event {
            Event::Message(frame) => frame_payload(channel, frame),
            _ => None,
        })
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.guard.channel)
            .finish_non_exhaustive()
    }
}

/// Every event of the client (state changes, messages, acks, drafts...), for apps that
/// route events themselves. Items are `Err(Lagged)` when the consumer fell behind.
pub struct EventStream {
    events: Fanout,
}

impl EventStream {
    pub(super) fn new(client: &Client) -> Self {
        EventStream {
            events: client.shared.events.subscribe(),
        }
    }

    /// The next event (`None` when the client is gone).
    pub async fn recv(&mut self) -> Option<Result<Event, Lagged>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// What `look` makes of the next event, which it sees in place: the event is never
    /// copied, however many other readers the client has (`recv` copies it while another
    /// reader has yet to take it). `None` when the client is gone; `look` is not called for
    /// a lag, and is called once for an event.
    ///
    /// `look` runs under the lock of the client's event queue: it must not call the
    /// client, and should only take what it needs out of the event. (An `FnMut`, not an
    /// `FnOnce`: what it holds is dropped by the caller after the lock, never under it.)
    pub async fn recv_with<T>(
        &mut self,
        mut look: impl FnMut(&Event) -> T,
    ) -> Option<Result<T, Lagged>> {
        std::future::poll_fn(|cx| poll_pick(&mut self.events, cx, |event| Some(look(event)))).await
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_take(&mut self.events, cx)
    }
}

/// The connection state: the current one first, then every change (a consumer slower than
/// the changes skips the ones in between; the latest is never missed, and none is given
/// twice).
pub struct StateStream {
    states: fanout::Subscriber,
    /// The version of the last state given.
    seen: u64,
    /// The state when the stream was opened, until it is read.
    first: Option<State>,
}

impl StateStream {
    pub(super) fn new(states: &fanout::Subscriber) -> Self {
        let (state, seen) = states.state();
        StateStream {
            states: states.clone(),
            seen,
            first: Some(state),
        }
    }

    /// The next state (`None` when the client is gone).
    pub async fn recv(&mut self) -> Option<State> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for StateStream {
    type Item = State;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<State>> {
        if let Some(state) = self.first.take() {
            return Poll::Ready(Some(state));
        }
        let this = &mut *self;
        this.states.poll_state(&mut this.seen, cx)
    }
}
