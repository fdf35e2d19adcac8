//! [`Connection`]: the state machine that ties every part of the core together.

use serde_json::Value;

use super::{
    Action, Config, DraftOptions, DraftState, Event, Input, Instant, MessageId, Metrics,
    Resolution, SendError, State,
};
use crate::protocol::{Channel, ClientMessage};

/// One logical client connection to a `pitchey-v1` server, across any number of sockets.
///
/// See the [module docs](super) for how to drive it.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
}

impl Connection {
    /// A connection in [`State::Idle`]. Nothing happens until [`Connection::connect`].
    pub fn new(config: Config, now: Instant) -> Self {
        let _ = now;
        Connection {
            config,
            state: State::Idle,
        }
    }

    /// Start connecting (from `Idle`, `Closed`, `AuthFailed`, or to skip a reconnect
    /// delay). Emits [`Action::Connect`], or [`Event::TokenNeeded`] when there is no token.
    /// No effect while `Connecting` or `Connected`.
    pub fn connect(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// Close for good (until [`Connection::connect`]): emits [`Action::Close`] if a socket
    /// is open or opening; state [`State::Closed`]. The outbox and subscriptions are kept
    /// and resume on the next `connect`.
    pub fn disconnect(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// A fresh token from the app's provider. Used for every later connection attempt;
    /// in `AwaitingToken` or `AuthFailed` it starts reconnecting.
    pub fn set_token(&mut self, token: impl Into<String>, now: Instant) {
        let _ = (token.into(), now);
        todo!()
    }

    /// The app has no token to give (signed out): stop with [`State::AuthFailed`] now
    /// instead of waiting for [`Config::token_timeout`].
    pub fn token_unavailable(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// Feed what the transport reported.
    pub fn handle(&mut self, input: Input, now: Instant) {
        let _ = (input, now);
        todo!()
    }

    /// Run the timers that are due at `now`. Harmless to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// When [`Connection::handle_timeout`] must be called next; `None`: only an input or
    /// an app call can change anything.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }

    /// The next event for the app.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// Queue a message for the server.
    ///
    /// Durable kinds (`pitch_view`, `draft_sync`, unknown types) get a client id, wait in
    /// order and stay until acked; ephemeral kinds (`typing`, `presence_update`) replace any
    /// pending message with the same key. Messages sent while offline go out on (re)connect.
    /// `ping`, `pong`, `subscribe`, `unsubscribe` and `resume` are refused
    /// ([`SendError::NotSendable`]): the core sends them itself.
    ///
    /// The returned id is on the wire for durable messages and comes back in
    /// [`Event::Acked`] or [`Event::SendFailed`]; ephemeral messages get no event.
    pub fn send(&mut self, msg: ClientMessage, now: Instant) -> Result<MessageId, SendError> {
        let _ = (msg, now);
        todo!()
    }

    /// Subscribe to a channel, now (servers with the `subscribe` feature) and after every
    /// reconnect. On a server without `subscribe` this only records the channel (the seed
    /// delivers everything). Subscribing twice is a no-op.
    pub fn subscribe(&mut self, channel: Channel, now: Instant) -> Result<(), SendError> {
        let _ = (channel, now);
        todo!()
    }

    /// Unsubscribe from a channel (no-op if not subscribed).
    pub fn unsubscribe(&mut self, channel: &Channel, now: Instant) {
        let _ = (channel, now);
        todo!()
    }

    /// The channels currently subscribed.
    pub fn subscriptions(&self) -> impl Iterator<Item = &Channel> + '_ {
        std::iter::empty()
    }

    /// The lifecycle state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The server's `connected` data of the current connection, if connected.
    pub fn session(&self) -> Option<&crate::protocol::Connected> {
        todo!()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> Metrics {
        todo!()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Start tracking a draft with its `initial` content (not dirty) and the server
    /// version it came from. Re-opening an open draft replaces its options only.
    pub fn draft_open(
        &mut self,
        draft_id: impl Into<String>,
        draft_type: Option<String>,
        initial: Value,
        base_version: Option<u64>,
        options: DraftOptions,
    ) {
        let _ = (draft_id.into(), draft_type, initial, base_version, options);
        todo!()
    }

    /// Stop tracking a draft. A save already queued still goes out.
    pub fn draft_close(&mut self, draft_id: &str) {
        let _ = draft_id;
        todo!()
    }

    /// New local content (marks the draft dirty). `valid` is the app's validator verdict:
    /// only valid content is auto-saved. The auto-save fires
    /// [`DraftOptions::auto_save_interval`] after the draft became dirty.
    pub fn draft_update(
        &mut self,
        draft_id: &str,
        content: Value,
        valid: bool,
        now: Instant,
    ) -> Result<(), SendError> {
        let _ = (draft_id, content, valid, now);
        todo!()
    }

    /// Save now instead of waiting for the auto-save (if dirty, valid, and no save or
    /// conflict is pending; otherwise nothing to do).
    pub fn draft_save_now(&mut self, draft_id: &str, now: Instant) -> Result<(), SendError> {
        let _ = (draft_id, now);
        todo!()
    }

    /// Settle a conflict reported by [`Event::DraftConflict`].
    pub fn draft_resolve(
        &mut self,
        draft_id: &str,
        resolution: Resolution,
        now: Instant,
    ) -> Result<(), SendError> {
        let _ = (draft_id, resolution, now);
        todo!()
    }

    /// The state of an open draft.
    pub fn draft_state(&self, draft_id: &str) -> Option<&DraftState> {
        let _ = draft_id;
        todo!()
    }
}
