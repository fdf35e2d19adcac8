//! The async client: one facade over the sans-IO [`core`](crate::core) for every runtime.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use pitchey_realtime::client::Client;
//!
//! # async fn demo() -> Result<(), pitchey_realtime::client::ClientError> {
//! let client = Client::builder("ws://127.0.0.1:8001/ws").token("<jwt>").build()?;
//! client.connect()?;
//! let mut notifications = client.notifications()?;
//! client.report_pitch_view(42)?;
//! while let Some(Ok(n)) = notifications.next().await {
//!     println!("{}: {}", n.title, n.message);
//! }
//! # Ok(()) }
//! ```
//!
//! Calls that only hand work to the client (`connect`, `send`, `subscribe`, `metrics`, the
//! draft calls...) are plain functions: they run on the core under its lock and return at
//! once. What waits is `async`: [`Client::connected`], [`Client::close`],
//! [`Client::send_confirmed`] and the streams.
//!
//! One task per client owns the socket and the core. A [`Client`] is a cheap handle to it:
//! clone it freely; when the last handle, subscription, channel guard and draft are
//! dropped, the task closes the socket and ends.
//!
//! Everything here is runtime-agnostic: the task, its timer and its socket come from the
//! three traits of [`platform`] ([`ClientBuilder::build_with`]). [`ClientBuilder::build`]
//! picks tokio (feature `native`) or the browser (feature `web`, on `wasm32`). Events and
//! state reach the app through the client's own fan-out queue (`fanout.rs`), which needs
//! no runtime.

mod confirmation;
mod draft;
mod driver;
mod error;
mod fanout;
pub mod platform;
mod subscription;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use confirmation::Confirmation;
pub use draft::{Draft, DraftConfig, DraftEvents, Validator};
pub use error::ClientError;
pub use subscription::{
    ChannelGuard, ChannelMessage, EventStream, Lagged, StateStream, Subscription,
};

use crate::core::{
    Config, Connection, Instant, MessageId, Metrics, Snapshot, SnapshotError, State,
};
use crate::protocol::{
    Channel, ClientMessage, DashboardMetrics, Message as _, Notification, PitchStats, PitchView,
    Presence, PresenceStatus, SetPresence, Typing, UploadProgress, UserTyping,
};
use driver::{Platform, Shared};
use platform::{BoxFuture, Connect, MaybeSend, MaybeSync, Spawn, Timer};

/// An async source of fresh tokens, asked when the server refuses the current one
/// (close 4001, HTTP 401, or attempts that keep closing before `connected`). `None` means
/// no token can be had: the client stops with [`State::AuthFailed`] instead of retrying.
#[cfg(not(target_arch = "wasm32"))]
pub type TokenProvider = dyn Fn() -> BoxFuture<'static, Option<String>> + Send + Sync;
/// An async source of fresh tokens, asked when the server refuses the current one
/// (close 4001, HTTP 401, or attempts that keep closing before `connected`). `None` means
/// no token can be had: the client stops with [`State::AuthFailed`] instead of retrying.
#[cfg(target_arch = "wasm32")]
pub type TokenProvider = dyn Fn() -> BoxFuture<'static, Option<String>>;

/// Builds a [`Client`].
pub struct ClientBuilder {
    config: Config,
    token_provider: Option<Arc<TokenProvider>>,
    event_buffer: usize,
    snapshot: Option<Snapshot>,
}

impl ClientBuilder {
    /// The token to connect with.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.token = Some(token.into());
        self
    }

    /// Where fresh tokens come from when the server refuses one (e.g. a refresh call).
    pub fn token_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + MaybeSend + MaybeSync + 'static,
        Fut: Future<Output = Option<String>> + MaybeSend + 'static,
    {
        self.token_provider = Some(Arc::new(move || Box::pin(provider())));
        self
    }

    /// Start from what [`Client::export`] saved before a reload or a restart: queued
    /// messages go out under their old ids (no duplicates) and the first connection
    /// resumes from the saved `seq`.
    pub fn restore(mut self, snapshot: Snapshot) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// Adjust the core's configuration (queue size, backoff, heartbeat, rate limit...).
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// How many events are buffered for each slow subscriber before it sees
    /// [`Lagged`] (default 256).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events.max(1);
        self
    }

    /// Spawn the client's task with the given platform pieces (see [`platform`]).
    /// `rng_seed` must be real entropy (see [`Connection::new`]).
    // On wasm32 the pieces are not `Send`: a page has one thread, and the `Arc` only shares
    // them between the task and the handles on it.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build_with(
        self,
        spawn: impl Spawn,
        timer: impl Timer,
        connect: impl Connect,
        rng_seed: u64,
    ) -> Result<Client, ClientError> {
        let platform = Arc::new(Platform {
            spawn: Box::new(spawn),
            timer: Arc::new(timer),
            connect: Box::new(connect),
        });
        let now = platform.timer.now();
        let mut conn = Connection::new(self.config, rng_seed, now);
        if let Some(snapshot) = self.snapshot {
            conn.restore(snapshot, now)?;
        }
        let (shared, driver) = driver::new(
            conn,
            platform.clone(),
            self.event_buffer,
            self.token_provider,
        );
        platform.spawn.spawn(Box::pin(driver.run()));
        Ok(Client {
            shared: shared.clone(),
            _handles: Arc::new(Handles(shared)),
        })
    }
}

/// Counts the `Client` handles: the last one dropped stops the driver.
struct Handles(Arc<Shared>);

impl Drop for Handles {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A handle to a real-time connection. Cheap to clone; see the [module docs](self).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _handles: Arc<Handles>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.shared.events.state().0)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Start building a client for the endpoint `url` (e.g. `wss://api.pitchey.com/ws`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            config: Config::new(url),
            token_provider: None,
            event_buffer: 256,
            snapshot: None,
        }
    }

    /// Run `f` on the core now (on the caller's thread, under the core's lock) and return
    /// its result; the driver is then woken to do what it asked. This is why every call
    /// that only queues work returns at once and is not `async`.
    pub(super) fn call<R>(
        &self,
        f: impl FnOnce(&mut Connection, Instant) -> R,
    ) -> Result<R, ClientError> {
        self.shared.with_core(f).ok_or(ClientError::DriverGone)
    }

    /// Start connecting (and keep reconnecting until [`Client::disconnect`]). Returns at
    /// once; watch [`Client::state_changes`] or await [`Client::connected`]. Fails at
    /// once for a URL that is not `ws://` or `wss://`.
    pub fn connect(&self) -> Result<(), ClientError> {
        self.call(|conn, now| conn.connect(now))??;
        Ok(())
    }

    /// Wait until the state is [`State::Connected`]. Fails if the connection stops for good
    /// first ([`State::AuthFailed`] or [`State::Closed`]). Calls made before this one
    /// (`connect`, `set_token`) are taken into account.
    pub async fn connected(&self) -> Result<(), ClientError> {
        self.until_state(|state| match state {
            State::Connected => Some(Ok(())),
            State::AuthFailed { .. } | State::Closed => {
                Some(Err(ClientError::Stopped(state.clone())))
            }
            _ => None,
        })
        .await?
    }

    /// Wait until `settled` returns a value for the core's state, asked again at every
    /// state change the driver publishes. The core, not the published state, is asked: the
    /// driver publishes a change later, and a `connect()` it has not seen yet must count.
    /// The published version is taken before the core is first asked, so no change falls
    /// between.
    async fn until_state<T>(
        &self,
        mut settled: impl FnMut(&State) -> Option<T>,
    ) -> Result<T, ClientError> {
        let states = &self.shared.events;
        let (_, mut seen) = states.state();
        loop {
            let state = self
                .shared
                .read_core(|conn| conn.state().clone())
                .ok_or(ClientError::DriverGone)?;
            if let Some(value) = settled(&state) {
                return Ok(value);
            }
            std::future::poll_fn(|cx| states.poll_state(&mut seen, cx))
                .await
                .ok_or(ClientError::DriverGone)?;
        }
    }

    /// Close the connection with 1000 and stop reconnecting, until the next `connect`.
    /// Messages still in the outbox stay there and go out after the next `connect`.
    pub fn disconnect(&self) -> Result<(), ClientError> {
        self.call(|conn, now| conn.disconnect(now))
    }

    /// Deliver what is queued (for at most `timeout`), then close with 1000 and stop
    /// reconnecting. Returns once closed; what could not be delivered stays queued (see
    /// [`Client::export`]).
    pub async fn close(&self, timeout: Duration) -> Result<(), ClientError> {
        self.call(move |conn, now| conn.close_gracefully(timeout, now))?;
        self.until_state(|state| state.is_stopped().then_some(()))
            .await
    }

    /// The network came back or the app came to the foreground: reconnect now instead of
    /// after the backoff delay, and check a connected link with a ping. An explicit
    /// [`Client::disconnect`] stays disconnected.
    pub fn wake(&self) -> Result<(), ClientError> {
        self.call(|conn, now| conn.wake(now))
    }

    /// The app went to the background: close cleanly, keep the queue, do not reconnect
    /// until [`Client::resume`] (an explicit [`Client::disconnect`] is not undone by it).
    pub fn suspend(&self) -> Result<(), ClientError> {
        self.call(|conn, now| conn.suspend(now))
    }

    /// Back in the foreground: reconnect at once after [`Client::suspend`], else as
    /// [`Client::wake`].
    pub fn resume(&self) -> Result<(), ClientError> {
        self.call(|conn, now| conn.resume(now))
    }

    /// What must survive a reload or a restart (queued messages and the last `seq`);
    /// give it to [`ClientBuilder::restore`].
    pub fn export(&self) -> Result<Snapshot, ClientError> {
        self.call(|conn, _| conn.export())
    }

    /// Put back a [`Snapshot`] into a running client (before `connect`, ideally).
    pub fn restore(&self, snapshot: Snapshot) -> Result<usize, ClientError> {
        let r: Result<usize, SnapshotError> =
            self.call(move |conn, now| conn.restore(snapshot, now))?;
        Ok(r?)
    }

    /// Changes whenever [`Client::export`] may return something new.
    pub fn persist_revision(&self) -> Result<u64, ClientError> {
        self.call(|conn, _| conn.persist_revision())
    }

    /// Give the client a fresh token (e.g. after [`Event::TokenNeeded`](crate::core::Event::TokenNeeded) when no
    /// [`ClientBuilder::token_provider`] is set).
    pub fn set_token(&self, token: impl Into<String>) -> Result<(), ClientError> {
        let token = token.into();
        self.call(move |conn, now| conn.set_token(token, now))
    }

    /// Queue a message. Durable messages (`pitch_view`, `draft_sync`, unknown types) wait
    /// in the outbox, survive reconnects and are re-sent until acked; ephemeral ones
    /// (`typing`, `presence_update`) keep only their latest value. Returns at once.
    pub fn send(&self, message: ClientMessage) -> Result<MessageId, ClientError> {
        self.call(move |conn, now| conn.send(message, now))?
            .map_err(ClientError::from)
    }

    /// [`Client::send`] for a message worthless after `ttl`: if it cannot be written in
    /// time it is reported failed ([`SendFailure::Expired`]) instead of being sent late.
    ///
    /// [`SendFailure::Expired`]: crate::core::SendFailure::Expired
    pub fn send_expiring(
        &self,
        message: ClientMessage,
        ttl: Duration,
    ) -> Result<MessageId, ClientError> {
        self.call(move |conn, now| conn.send_with_expiry(message, now + ttl, now))?
            .map_err(ClientError::from)
    }

    /// Queue a durable message and wait until the server acks it (or, on a server
    /// without acks, until it is written). Fails with [`ClientError::Failed`] if the server
    /// rejects it, with [`ClientError::Stopped`] if the connection stops for good first
    /// (the message stays queued for the next `connect`), and refuses ephemeral messages
    /// ([`ClientError::NotDurable`]), which are never acked.
    pub async fn send_confirmed(&self, message: ClientMessage) -> Result<MessageId, ClientError> {
        self.send_tracked(message)?.wait().await
    }

    /// Queue a durable message now and get its [`Confirmation`], to await soon: what
    /// [`Client::send_confirmed`] does, with the queueing done before the first `await`
    /// (calls made after it are applied after it). The confirmation reads the client's
    /// events from the send on; left unawaited while more than the event buffer (256
    /// by default) passes, it reports [`ClientError::Unconfirmed`].
    pub fn send_tracked(&self, message: ClientMessage) -> Result<Confirmation, ClientError> {
        if !crate::core::is_durable(&message) {
            return Err(ClientError::NotDurable(message.kind().to_owned()));
        }
        // Listen before sending so the ack cannot slip past.
        let events = self.events();
        let id = self.send(message)?;
        Ok(Confirmation::new(id, events))
    }

    /// Report that the user viewed a pitch (durable).
    pub fn report_pitch_view(&self, pitch_id: u64) -> Result<MessageId, ClientError> {
        self.send(ClientMessage::PitchView(PitchView { pitch_id }))
    }

    /// Set the user's own presence status (ephemeral: only the latest is sent).
    pub fn set_presence(&self, status: PresenceStatus) -> Result<(), ClientError> {
        self.send(ClientMessage::SetPresence(SetPresence { status }))
            .map(drop)
    }

    /// Say the user started or stopped typing in a conversation (ephemeral).
    pub fn set_typing(&self, conversation_id: u64, is_typing: bool) -> Result<(), ClientError> {
        self.send(ClientMessage::Typing(Typing {
            conversation_id,
            is_typing,
        }))
        .map(drop)
    }

    /// Subscribe to a channel; the handle yields its messages as `T` and unsubscribes
    /// when dropped (once no other handle holds the channel). Re-subscribed after every
    /// reconnect.
    pub fn subscribe<T: ChannelMessage>(
        &self,
        channel: Channel,
    ) -> Result<Subscription<T>, ClientError> {
        // Listen first so that nothing sent right after the subscribe is missed.
        let events = self.shared.events.subscribe();
        Ok(Subscription::new(self.join(channel)?, events))
    }

    /// Subscribe to a channel without a stream of its own: its messages arrive on
    /// [`Client::events`] with every other event, for apps that route events from one
    /// place. The guard unsubscribes when dropped (once no other handle holds the
    /// channel). Re-subscribed after every reconnect, like [`Client::subscribe`].
    ///
    /// Open the [`EventStream`] first: one opened after `join` can miss the channel's
    /// first messages. A stream that falls behind reports what it skipped as
    /// [`Lagged`], channel messages included.
    pub fn join(&self, channel: Channel) -> Result<ChannelGuard, ClientError> {
        let counted = channel.clone();
        self.call(move |conn, now| conn.subscribe(counted, now))
            .and_then(|r| r.map_err(ClientError::from))?;
        Ok(ChannelGuard::new(channel, self.clone()))
    }

    fn release_channel(&self, channel: Channel) {
        // The core counts holders; if the driver is gone there is nothing to release.
        let _ = self.call(move |conn, now| conn.unsubscribe(&channel, now));
    }

    /// The user's notifications.
    pub fn notifications(&self) -> Result<Subscription<Notification>, ClientError> {
        self.subscribe(Channel::Notifications)
    }

    /// The user's live dashboard metrics.
    pub fn dashboard(&self) -> Result<Subscription<DashboardMetrics>, ClientError> {
        self.subscribe(Channel::Dashboard)
    }

    /// The user's upload progress.
    pub fn uploads(&self) -> Result<Subscription<UploadProgress>, ClientError> {
        self.subscribe(Channel::Uploads)
    }

    /// Live view stats of one pitch.
    pub fn pitch_stats(&self, pitch_id: u64) -> Result<Subscription<PitchStats>, ClientError> {
        self.subscribe(Channel::Pitch(pitch_id))
    }

    /// Presence changes of one user.
    pub fn presence(&self, user_id: u64) -> Result<Subscription<Presence>, ClientError> {
        self.subscribe(Channel::Presence(user_id))
    }

    /// Typing indicators in one conversation.
    pub fn typing(&self, conversation_id: u64) -> Result<Subscription<UserTyping>, ClientError> {
        self.subscribe(Channel::Conversation(conversation_id))
    }

    /// Open an auto-synced draft.
    pub fn draft(
        &self,
        draft_id: impl Into<String>,
        config: DraftConfig,
    ) -> Result<Draft, ClientError> {
        let id = draft_id.into();
        let DraftConfig {
            draft_type,
            initial,
            base_version,
            options,
            validator,
        } = config;
        let open_id = id.clone();
        self.call(move |conn, _| {
            conn.draft_open(open_id, draft_type, initial, base_version, options)
        })?;
        Ok(Draft::new(id, self.clone(), validator))
    }

    /// Every event of the client, for apps that route events themselves.
    pub fn events(&self) -> EventStream {
        EventStream::new(self)
    }

    /// The current connection state.
    pub fn state(&self) -> State {
        self.shared.events.state().0
    }

    /// The connection state now and at every change (a stream; the current state first).
    pub fn state_changes(&self) -> StateStream {
        StateStream::new(&self.shared.events)
    }

    /// Queue depth, tokens left, round-trip time, reconnects and more.
    pub fn metrics(&self) -> Result<Metrics, ClientError> {
        self.call(|conn, _| conn.metrics())
    }

    /// The platform's clock (for expiries and timestamps in the core's time).
    pub fn now(&self) -> Instant {
        self.shared.timer.now()
    }
}
