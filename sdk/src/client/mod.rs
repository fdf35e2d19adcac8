//! The async client for tokio (feature `native`): a thin driver over the sans-IO
//! [`core`](crate::core).
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use pitchey_realtime::client::Client;
//!
//! # async fn demo() -> Result<(), pitchey_realtime::client::ClientError> {
//! let client = Client::builder("ws://127.0.0.1:8001/ws").token("<jwt>").build();
//! client.connect()?;
//! let mut notifications = client.notifications().await?;
//! client.report_pitch_view(42).await?;
//! while let Some(Ok(n)) = notifications.next().await {
//!     println!("{}: {}", n.title, n.message);
//! }
//! # Ok(()) }
//! ```
//!
//! One task per client (spawned by [`ClientBuilder::build`]) owns the socket and the core.
//! A [`Client`] is a cheap handle to it: clone it freely; when the last handle,
//! subscription and draft are dropped, the task closes the socket and ends.

mod draft;
mod driver;
mod error;
mod subscription;

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use draft::{Draft, DraftConfig, DraftEvents, Validator};
pub use error::ClientError;
pub use subscription::{ChannelMessage, EventStream, Lagged, Subscription};

use crate::core::{Config, Connection, Event, Instant, MessageId, Metrics, State};
use crate::protocol::{
    Channel, ClientMessage, DashboardMetrics, Message as _, Notification, PitchStats, PitchView,
    Presence, PresenceStatus, SetPresence, Typing, UploadProgress, UserTyping,
};
use driver::{Call, Clock, Core, Driver};

/// An async source of fresh tokens, asked when the server refuses the current one
/// (close 4001 or HTTP 401). `None` means no token can be had: the client stops with
/// [`State::AuthFailed`] instead of retrying.
pub type TokenProvider =
    dyn Fn() -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync;

/// Builds a [`Client`].
pub struct ClientBuilder {
    config: Config,
    token_provider: Option<Arc<TokenProvider>>,
    event_buffer: usize,
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
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.token_provider = Some(Arc::new(move || Box::pin(provider())));
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

    /// Spawn the client's task on the current tokio runtime. It does not connect until
    /// [`Client::connect`].
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn build(self) -> Client {
        let clock = Clock::new();
        let conn = Connection::new(self.config, clock.now());
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(self.event_buffer);
        let (state_tx, state) = watch::channel(conn.state().clone());
        let driver = Driver {
            core: Core { conn },
            clock,
            calls,
            calls_tx: calls_tx.downgrade(),
            events: events.clone(),
            state: state_tx,
            token_provider: self.token_provider,
        };
        tokio::spawn(driver.run());
        Client {
            shared: Arc::new(Shared {
                calls: calls_tx,
                events,
                state,
            }),
        }
    }
}

struct Shared {
    calls: mpsc::UnboundedSender<Call>,
    events: broadcast::Sender<Arc<Event>>,
    state: watch::Receiver<State>,
}

/// A handle to a real-time connection. Cheap to clone; see the [module docs](self).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &*self.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Start building a client for the endpoint `url` (e.g. `wss://api.pitchey.com/ws`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        let mut config = Config::new(url);
        // Real entropy for jitter and id prefixes without a getrandom dependency.
        config.rng_seed = RandomState::new().hash_one(std::time::SystemTime::now());
        ClientBuilder {
            config,
            token_provider: None,
            event_buffer: 256,
        }
    }

    /// Run `f` on the driver task and return its result.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, Instant) -> R + Send + 'static,
    ) -> Result<R, ClientError> {
        let (tx, rx) = oneshot::channel();
        let call: Call = Box::new(move |core, now| {
            let _ = tx.send(f(core, now));
        });
        self.shared
            .calls
            .send(call)
            .map_err(|_| ClientError::DriverGone)?;
        rx.await.map_err(|_| ClientError::DriverGone)
    }

    /// Run `f` on the driver task without waiting. Errors only if the task is gone.
    fn post(&self, f: impl FnOnce(&mut Core, Instant) + Send + 'static) -> Result<(), ClientError> {
        self.shared
            .calls
            .send(Box::new(f))
            .map_err(|_| ClientError::DriverGone)
    }

    /// Start connecting (and keep reconnecting until [`Client::disconnect`]). Returns at
    /// once; watch [`Client::state_changes`] or await [`Client::connected`].
    pub fn connect(&self) -> Result<(), ClientError> {
        self.post(|core, now| core.conn.connect(now))
    }

    /// Wait until the state is [`State::Connected`]. Fails if the connection stops for good
    /// first ([`State::AuthFailed`] or [`State::Closed`]). Calls made before this one
    /// (`connect`, `set_token`) are taken into account.
    pub async fn connected(&self) -> Result<(), ClientError> {
        let mut changes = self.shared.state.clone();
        loop {
            // Ask the driver, not the watch: a `connect()` posted just before must count.
            changes.mark_unchanged();
            match self.call(|core, _| core.conn.state().clone()).await? {
                State::Connected => return Ok(()),
                stopped @ (State::AuthFailed | State::Closed) => {
                    return Err(ClientError::Stopped(stopped));
                }
                _ => changes
                    .changed()
                    .await
                    .map_err(|_| ClientError::DriverGone)?,
            }
        }
    }

    /// Close the connection with 1000 and stop reconnecting, until the next `connect`.
    /// Messages still in the outbox stay there and go out after the next `connect`.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.call(|core, now| core.conn.disconnect(now)).await
    }

    /// Give the client a fresh token (e.g. after [`Event::TokenNeeded`] when no
    /// [`ClientBuilder::token_provider`] is set).
    pub fn set_token(&self, token: impl Into<String>) -> Result<(), ClientError> {
        let token = token.into();
        self.post(move |core, now| core.conn.set_token(token, now))
    }

    /// Queue a message. Durable messages (`pitch_view`, `draft_sync`, unknown types) wait
    /// in the outbox, survive reconnects and are re-sent until acked; ephemeral ones
    /// (`typing`, `presence_update`) keep only their latest value. Returns at once.
    pub async fn send(&self, message: ClientMessage) -> Result<MessageId, ClientError> {
        self.call(move |core, now| core.conn.send(message, now))
            .await?
            .map_err(ClientError::from)
    }

    /// Queue a durable message and wait until the server acks it (or, on a server
    /// without acks, until it is written). Fails with [`ClientError::Failed`] if the server
    /// rejects it, with [`ClientError::Stopped`] if the connection stops for good first
    /// (the message stays queued for the next `connect`), and refuses ephemeral messages
    /// ([`ClientError::NotDurable`]), which are never acked.
    pub async fn send_confirmed(&self, message: ClientMessage) -> Result<MessageId, ClientError> {
        if !crate::core::is_durable(&message) {
            return Err(ClientError::NotDurable(message.kind().to_owned()));
        }
        // Listen before sending so the ack cannot slip past.
        let mut events = self.events();
        let id = self.send(message).await?;
        loop {
            match events.recv().await {
                Some(Ok(Event::Acked(acked))) if acked == id => return Ok(id),
                Some(Ok(Event::SendFailed(failed, why))) if failed == id => {
                    return Err(ClientError::Failed(failed, why));
                }
                Some(Ok(Event::StateChanged(stopped @ (State::AuthFailed | State::Closed)))) => {
                    return Err(ClientError::Stopped(stopped));
                }
                Some(Ok(_)) => {}
                Some(Err(Lagged { missed })) => {
                    return Err(ClientError::Unconfirmed { id, missed });
                }
                None => return Err(ClientError::DriverGone),
            }
        }
    }

    /// Report that the user viewed a pitch (durable).
    pub async fn report_pitch_view(&self, pitch_id: u64) -> Result<MessageId, ClientError> {
        self.send(ClientMessage::PitchView(PitchView { pitch_id }))
            .await
    }

    /// Set the user's own presence status (ephemeral: only the latest is sent).
    pub async fn set_presence(&self, status: PresenceStatus) -> Result<(), ClientError> {
        self.send(ClientMessage::SetPresence(SetPresence { status }))
            .await
            .map(drop)
    }

    /// Say the user started or stopped typing in a conversation (ephemeral).
    pub async fn set_typing(
        &self,
        conversation_id: u64,
        is_typing: bool,
    ) -> Result<(), ClientError> {
        self.send(ClientMessage::Typing(Typing {
            conversation_id,
            is_typing,
        }))
        .await
        .map(drop)
    }

    /// Subscribe to a channel; the handle yields its messages as `T` and unsubscribes
    /// when dropped (once no other handle holds the channel). Re-subscribed after every
    /// reconnect.
    pub async fn subscribe<T: ChannelMessage>(
        &self,
        channel: Channel,
    ) -> Result<Subscription<T>, ClientError> {
        // Listen first so that nothing sent right after the subscribe is missed, and make
        // the handle before the count goes up: if this future is dropped mid-way, the
        // handle's drop still gives the count back (calls run in order on the driver).
        let events = self.shared.events.subscribe();
        let mut subscription = Subscription::new(channel.clone(), self.clone(), events);
        let result = self
            .call(move |core, now| core.conn.subscribe(channel, now))
            .await
            .and_then(|r| r.map_err(ClientError::from));
        if result.is_err() {
            // Not counted: its drop must not release another handle's count.
            subscription.disarm();
        }
        result.map(|()| subscription)
    }

    fn release_channel(&self, channel: Channel) {
        // The core counts holders; if the driver is gone there is nothing to release.
        let _ = self.post(move |core, now| core.conn.unsubscribe(&channel, now));
    }

    /// The user's notifications.
    pub async fn notifications(&self) -> Result<Subscription<Notification>, ClientError> {
        self.subscribe(Channel::Notifications).await
    }

    /// The user's live dashboard metrics.
    pub async fn dashboard(&self) -> Result<Subscription<DashboardMetrics>, ClientError> {
        self.subscribe(Channel::Dashboard).await
    }

    /// The user's upload progress.
    pub async fn uploads(&self) -> Result<Subscription<UploadProgress>, ClientError> {
        self.subscribe(Channel::Uploads).await
    }

    /// Live view stats of one pitch.
    pub async fn pitch_stats(
        &self,
        pitch_id: u64,
    ) -> Result<Subscription<PitchStats>, ClientError> {
        self.subscribe(Channel::Pitch(pitch_id)).await
    }

    /// Presence changes of one user.
    pub async fn presence(&self, user_id: u64) -> Result<Subscription<Presence>, ClientError> {
        self.subscribe(Channel::Presence(user_id)).await
    }

    /// Typing indicators in one conversation.
    pub async fn typing(
        &self,
        conversation_id: u64,
    ) -> Result<Subscription<UserTyping>, ClientError> {
        self.subscribe(Channel::Conversation(conversation_id)).await
    }

    /// Open an auto-synced draft.
    pub async fn draft(
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
        // Post the open, then make the handle before awaiting: if this future is dropped,
        // the handle's drop still closes what was opened (calls run in order).
        let open_id = id.clone();
        self.post(move |core, _| {
            core.conn
                .draft_open(open_id, draft_type, initial, base_version, options)
        })?;
        let draft = Draft::new(id, self.clone(), validator);
        self.call(|_, _| ()).await?;
        Ok(draft)
    }

    /// Every event of the client, for apps that route events themselves.
    pub fn events(&self) -> EventStream {
        EventStream::new(self)
    }

    /// The current connection state.
    pub fn state(&self) -> State {
        self.shared.state.borrow().clone()
    }

    /// A watch of the connection state (`changed().await`, `borrow()`).
    pub fn state_changes(&self) -> watch::Receiver<State> {
        self.shared.state.clone()
    }

    /// Queue depth, tokens left, round-trip time, reconnects and more.
    pub async fn metrics(&self) -> Result<Metrics, ClientError> {
        self.call(|core, _| core.conn.metrics()).await
    }
}
