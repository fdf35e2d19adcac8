//! The objects Swift and Kotlin use: [`ClientBuilder`], [`Client`], [`Draft`],
//! [`SubscriptionHandle`], and the two interfaces the app implements,
//! [`TokenProvider`] and [`EventListener`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use pitchey_realtime::client::{
    Client as CoreClient, ClientBuilder as CoreBuilder, Draft as CoreDraft, DraftConfig, Lagged,
};
use pitchey_realtime::core::{self, Resolution};
use pitchey_realtime::protocol::{ClientFrame, ClientMessage, PitchView};
use pitchey_realtime::transport::native;
use tokio::task::AbortHandle;

use crate::clock::DeviceTimer;
use crate::error::PitcheyError;
use crate::persist::{self, Persister};
use crate::runtime::{self, RuntimeSpawn, run};
use crate::types::{
    ClientEvent, ClientMetrics, ClientOptions, ConnectionState, DraftOptions, DraftState,
    PresenceStatus, default_client_options, parse_json,
};

/// Where fresh tokens come from, implemented by the app (e.g. a refresh call to its
/// backend). Called on a background thread when the server refuses the current token;
/// it may block. `None` means no token can be had: the client stops with `AuthFailed`.
#[uniffi::export(with_foreign)]
pub trait TokenProvider: Send + Sync {
    /// A fresh token, or `None`.
    fn fetch_token(&self) -> Option<String>;
}

/// Receives the events of one subscription, implemented by the app. Called on the
/// library's own threads, one event at a time and in order: return quickly (hand the
/// event to the UI thread or a channel).
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: ClientEvent);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data: keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct BuilderState {
    url: String,
    token: Option<String>,
    provider: Option<Arc<dyn TokenProvider>>,
    options: ClientOptions,
    persistence_dir: Option<PathBuf>,
    timer: Option<DeviceTimer>,
}

/// Builds a [`Client`]: `ClientBuilder(url).token(jwt).build()`.
#[derive(uniffi::Object)]
pub struct ClientBuilder {
    state: Mutex<Option<BuilderState>>,
}

impl ClientBuilder {
    fn with(self: Arc<Self>, f: impl FnOnce(&mut BuilderState)) -> Arc<Self> {
        if let Some(state) = lock(&self.state).as_mut() {
            f(state);
        }
        self
    }

    /// Use another timer (tests use one whose clock can jump). Rust only.
    pub fn timer(self: Arc<Self>, timer: DeviceTimer) -> Arc<Self> {
        self.with(|s| s.timer = Some(timer))
    }
}

#[uniffi::export]
impl ClientBuilder {
    /// Start building a client for the endpoint `url` (e.g. `wss://api.pitchey.com/ws`).
    #[uniffi::constructor]
    pub fn new(url: String) -> Arc<Self> {
        Arc::new(ClientBuilder {
            state: Mutex::new(Some(BuilderState {
                url,
                token: None,
                provider: None,
                options: default_client_options(),
                persistence_dir: None,
                timer: None,
            })),
        })
    }

    /// The token to connect with.
    pub fn token(self: Arc<Self>, token: String) -> Arc<Self> {
        self.with(|s| s.token = Some(token))
    }

    /// Asked for a fresh token when the server refuses one.
    pub fn token_provider(self: Arc<Self>, provider: Arc<dyn TokenProvider>) -> Arc<Self> {
        self.with(|s| s.provider = Some(provider))
    }

    /// Queue size, backoff, heartbeat and timeouts.
    pub fn options(self: Arc<Self>, options: ClientOptions) -> Arc<Self> {
        self.with(|s| s.options = options)
    }

    /// Keep the outbox and the last `seq` in this directory (created if missing), so that
    /// a killed app loses no queued message and sends none twice: what a previous client
    /// left there is restored by `build`.
    pub fn persistence_dir(self: Arc<Self>, path: String) -> Arc<Self> {
        self.with(|s| s.persistence_dir = Some(PathBuf::from(path)))
    }

    /// Build the client (it does not connect until `connect`). Fails with `InvalidUrl`
    /// only at `connect`; here with `Persistence` if the saved outbox cannot be read, and
    /// with `AlreadyBuilt` on a second call.
    pub fn build(&self) -> Result<Arc<Client>, PitcheyError> {
        let state = lock(&self.state).take().ok_or(PitcheyError::AlreadyBuilt)?;
        let handle = runtime::handle()?;
        let options = state.options.clone();
        let mut builder: CoreBuilder = CoreClient::builder(state.url)
            .configure(|c| options.apply(c))
            .event_buffer(options.event_buffer as usize);
        if let Some(token) = state.token {
            builder = builder.token(token);
        }
        if let Some(provider) = state.provider {
            let blocking = handle.clone();
            builder = builder.token_provider(move || {
                let provider = provider.clone();
                let task = blocking.spawn_blocking(move || provider.fetch_token());
                async move {
                    match task.await {
                        Ok(token) => token,
                        Err(e) => {
                            tracing::warn!(error = %e, "the token provider failed");
                            None
                        }
                    }
                }
            });
        }
        let persister = match state.persistence_dir {
            Some(dir) => {
                let (persister, snapshot) = Persister::open(&dir)?;
                if let Some(snapshot) = snapshot {
                    builder = builder.restore(snapshot);
                }
                Some(Arc::new(persister))
            }
            None => None,
        };
        let timer = state.timer.unwrap_or_default();
        let inner = builder.build_with(
            RuntimeSpawn(handle.clone()),
            timer,
            native::Connector,
            native::entropy(),
        )?;
        let watcher = persister.as_ref().map(|p| {
            handle
                .spawn(persist::watch(p.clone(), inner.clone()))
                .abort_handle()
        });
        Ok(Arc::new(Client {
            inner,
            persister,
            watcher,
        }))
    }
}

/// A real-time connection. Every method may be called from any thread; `async` ones are
/// `suspend` functions in Kotlin and `async` in Swift.
#[derive(uniffi::Object)]
pub struct Client {
    inner: CoreClient,
    persister: Option<Arc<Persister>>,
    watcher: Option<AbortHandle>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

/// Write the snapshot if it changed (nothing without a persistence directory).
async fn persist(
    persister: &Option<Arc<Persister>>,
    client: &CoreClient,
) -> Result<(), PitcheyError> {
    match persister {
        Some(p) => p.sync(client).await,
        None => Ok(()),
    }
}

/// Queue `message`, persist, and return its id.
async fn send_and_persist(
    client: CoreClient,
    persister: Option<Arc<Persister>>,
    message: ClientMessage,
    confirmed: bool,
) -> Result<String, PitcheyError> {
    let id = if confirmed {
        // Persist as soon as it is queued, not only after the ack.
        let mut events = client.events();
        let id = client.send(message)?;
        persist(&persister, &client).await?;
        wait_for_ack(&client, &mut events, &id).await?;
        id
    } else {
        client.send(message)?
    };
    persist(&persister, &client).await?;
    Ok(id.to_string())
}

async fn wait_for_ack(
    _client: &CoreClient,
    events: &mut pitchey_realtime::client::EventStream,
    id: &core::MessageId,
) -> Result<(), PitcheyError> {
    use pitchey_realtime::core::{Event, State};
    loop {
        match events.recv().await {
            Some(Ok(Event::Acked(acked))) if &acked == id => return Ok(()),
            Some(Ok(Event::SendFailed(failed, why))) if &failed == id => {
                return Err(crate::error::from_failure(failed.to_string(), why));
            }
            Some(Ok(Event::StateChanged(State::AuthFailed { reason }))) => {
                return Err(PitcheyError::Unauthorized { reason });
            }
            Some(Ok(Event::StateChanged(State::Closed))) => {
                return Err(PitcheyError::Closed {
                    state: State::Closed.to_string(),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(Lagged { missed })) => {
                return Err(PitcheyError::Unconfirmed {
                    id: id.to_string(),
                    missed,
                });
            }
            None => return Err(PitcheyError::ClientGone),
        }
    }
}

/// A message of type `kind` with `data` given as JSON, decoded as the protocol does.
fn message_from_json(kind: &str, data_json: &str) -> Result<ClientMessage, PitcheyError> {
    let data = parse_json(data_json)?;
    let frame = serde_json::json!({ "type": kind, "data": data }).to_string();
    ClientFrame::decode(&frame)
        .map(|f| f.message)
        .map_err(|e| PitcheyError::InvalidJson {
            reason: e.to_string(),
        })
}

impl Client {
    fn parts(&self) -> (CoreClient, Option<Arc<Persister>>) {
        (self.inner.clone(), self.persister.clone())
    }

    /// The core client (Rust only; for tests and Rust apps sharing the connection).
    pub fn core(&self) -> &CoreClient {
        &self.inner
    }
}

#[uniffi::export]
impl Client {
    /// Start connecting, and keep reconnecting until `disconnect`. Returns at once; wait
    /// with `connected()` or watch `subscribe_state`. Fails with `InvalidUrl`.
    pub async fn connect(&self) -> Result<(), PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.connect()?) }).await
    }

    /// Wait until connected. Fails with `Unauthorized` or `Closed` if the connection stops
    /// for good first. Cancel the coroutine/task to stop waiting.
    pub async fn connected(&self) -> Result<(), PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.connected().await?) }).await
    }

    /// Close with 1000 and stop reconnecting until the next `connect`; queued messages stay.
    pub async fn disconnect(&self) -> Result<(), PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.disconnect()?) }).await
    }

    /// Deliver what is queued for at most `timeout_ms`, then close; what could not be
    /// delivered stays queued (and persisted).
    pub async fn close(&self, timeout_ms: u64) -> Result<(), PitcheyError> {
        let (client, persister) = self.parts();
        run(async move {
            client.close(Duration::from_millis(timeout_ms)).await?;
            persist(&persister, &client).await
        })
        .await
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        (&self.inner.state()).into()
    }

    /// Give the client a fresh token (when there is no token provider).
    pub fn set_token(&self, token: String) -> Result<(), PitcheyError> {
        Ok(self.inner.set_token(token)?)
    }

    /// Queue a message of type `kind` with `data_json` as its data; returns its id.
    /// Durable types (`pitch_view`, `draft_sync`, unknown types) are kept until acked.
    pub async fn send(&self, kind: String, data_json: String) -> Result<String, PitcheyError> {
        let (client, persister) = self.parts();
        run(async move {
            let message = message_from_json(&kind, &data_json)?;
            send_and_persist(client, persister, message, false).await
        })
        .await
    }

    /// Like `send`, but waits until the server acks the message. Refuses ephemeral
    /// types (`NotDurable`).
    pub async fn send_confirmed(
        &self,
        kind: String,
        data_json: String,
    ) -> Result<String, PitcheyError> {
        let (client, persister) = self.parts();
        run(async move {
            let message = message_from_json(&kind, &data_json)?;
            if !core::is_durable(&message) {
                return Err(PitcheyError::NotDurable { kind });
            }
            send_and_persist(client, persister, message, true).await
        })
        .await
    }

    /// Report that the user viewed a pitch (durable); returns the message id at once.
    pub async fn report_pitch_view(&self, pitch_id: u64) -> Result<String, PitcheyError> {
        let (client, persister) = self.parts();
        let message = ClientMessage::PitchView(PitchView { pitch_id });
        run(send_and_persist(client, persister, message, false)).await
    }

    /// Report a pitch view and wait until the server acks it; returns the message id.
    pub async fn report_pitch_view_confirmed(&self, pitch_id: u64) -> Result<String, PitcheyError> {
        let (client, persister) = self.parts();
        let message = ClientMessage::PitchView(PitchView { pitch_id });
        run(send_and_persist(client, persister, message, true)).await
    }

    /// Set the user's own presence (only the latest is sent).
    pub async fn set_presence(&self, status: PresenceStatus) -> Result<(), PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.set_presence(status.into())?) }).await
    }

    /// Say the user started or stopped typing in a conversation.
    pub async fn set_typing(
        &self,
        conversation_id: u64,
        is_typing: bool,
    ) -> Result<(), PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.set_typing(conversation_id, is_typing)?) }).await
    }

    /// Queue depth, round-trip time, reconnects...
    pub async fn metrics(&self) -> Result<ClientMetrics, PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.metrics()?.into()) }).await
    }

    /// The outbox and last `seq` as JSON, for apps that store it themselves.
    pub async fn export_json(&self) -> Result<String, PitcheyError> {
        let client = self.inner.clone();
        run(async move { Ok(client.export()?.to_json()) }).await
    }

    /// Write the persisted outbox now if it changed (it is also written after every send
    /// and event).
    pub async fn persist_now(&self) -> Result<(), PitcheyError> {
        let (client, persister) = self.parts();
        run(async move { persist(&persister, &client).await }).await
    }

    /// The app came to the foreground: reconnect at once after `on_background`, else
    /// check the link with a ping and retry a pending reconnect now. Deadlines that passed
    /// while the phone slept are acted on at once.
    pub fn on_foreground(&self) -> Result<(), PitcheyError> {
        Ok(self.inner.resume()?)
    }

    /// The app went to the background: close cleanly and stop reconnecting, keeping the
    /// queue (sends still queue, and are persisted) until `on_foreground`.
    pub fn on_background(&self) -> Result<(), PitcheyError> {
        Ok(self.inner.suspend()?)
    }

    /// The network changed. `true`: reconnect now instead of after the backoff delay
    /// (an `on_background` or `disconnect` is not undone). `false`: nothing to do, the
    /// heartbeat and backoff handle a lost network.
    pub fn on_network_available(&self, available: bool) -> Result<(), PitcheyError> {
        if available {
            self.inner.wake()?;
        }
        Ok(())
    }

    /// The user's notifications.
    pub async fn subscribe_notifications(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let client = self.inner.clone();
        let sub = run(async move { Ok(client.notifications()?) }).await?;
        listen(sub, listener, |n| ClientEvent::NotificationReceived {
            notification: (&n).into(),
        })
    }

    /// The user's dashboard metrics.
    pub async fn subscribe_dashboard(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let client = self.inner.clone();
        let sub = run(async move { Ok(client.dashboard()?) }).await?;
        listen(sub, listener, |m| ClientEvent::DashboardUpdated {
            metrics: (&m).into(),
        })
    }

    /// The user's upload progress.
    pub async fn subscribe_uploads(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let client = self.inner.clone();
        let sub = run(async move { Ok(client.uploads()?) }).await?;
        listen(sub, listener, |u| ClientEvent::UploadProgressed {
            progress: (&u).into(),
        })
    }

    /// Live view stats of one pitch.
    pub async fn subscribe_pitch_stats(
        &self,
        pitch_id: u64,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let client = self.inner.clone();
        let sub = run(async move { Ok(client.pitch_stats(pitch_id)?) }).await?;
        listen(sub, listener, |s| ClientEvent::PitchStatsUpdated {
            stats: (&s).into(),
        })
    }

    /// Presence changes of one user.
    pub async fn subscribe_presence(
        &self,
        user_id: u64,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let client = self.inner.clone();
        let sub = run(async move { Ok(client.presence(user_id)?) }).await?;
        listen(sub, listener, |p| ClientEvent::PresenceChanged {
            presence: crate::types::Presence {
                user_id: p.user_id,
                status: p.status.into(),
                last_seen: p.last_seen,
            },
        })
    }

    /// Typing indicators of one conversation.
    pub async fn subscribe_typing(
        &self,
        conversation_id: u64,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let client = self.inner.clone();
        let sub = run(async move { Ok(client.typing(conversation_id)?) }).await?;
        listen(sub, listener, |t| ClientEvent::TypingChanged {
            typing: crate::types::UserTyping {
                conversation_id: t.conversation_id,
                user_id: t.user_id,
                username: t.username,
                is_typing: t.is_typing,
            },
        })
    }

    /// The connection state: the current one first, then every change (`StateChanged`); a
    /// listener slower than the changes gets the latest, not each one in between.
    pub fn subscribe_state(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        let states = self.inner.state_changes().map(Ok::<_, Lagged>);
        listen(states, listener, |s| ClientEvent::StateChanged {
            state: (&s).into(),
        })
    }

    /// Every event of the client (state, messages, acks, failures, drafts...).
    pub fn subscribe_events(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        listen(self.inner.events(), listener, |e| (&e).into())
    }

    /// Open an auto-synced draft.
    pub async fn open_draft(
        &self,
        draft_id: String,
        options: DraftOptions,
    ) -> Result<Arc<Draft>, PitcheyError> {
        let (client, persister) = self.parts();
        let initial = parse_json(&options.initial_json)?;
        let config = DraftConfig {
            draft_type: options.draft_type,
            initial,
            base_version: options.base_version,
            options: core::DraftOptions::default()
                .with_strategy(options.strategy.into())
                .with_auto_save_interval(Duration::from_millis(options.auto_save_interval_ms)),
            validator: None,
        };
        let draft = run(async move { Ok(client.draft(draft_id, config)?) }).await?;
        if let Some(p) = &persister {
            p.open_drafts.fetch_add(1, Ordering::Relaxed);
            p.wake.notify_one();
        }
        Ok(Arc::new(Draft {
            inner: Arc::new(draft),
            client: self.inner.clone(),
            persister,
        }))
    }
}

/// Deliver `stream`'s items to `listener` on the runtime until the handle is cancelled.
fn listen<S, T>(
    stream: S,
    listener: Arc<dyn EventListener>,
    map: impl Fn(T) -> ClientEvent + Send + 'static,
) -> Result<Arc<SubscriptionHandle>, PitcheyError>
where
    S: Stream<Item = Result<T, Lagged>> + Send + Unpin + 'static,
    T: Send + 'static,
{
    let cancelled = Arc::new(AtomicBool::new(false));
    let stop = cancelled.clone();
    let mut stream = stream;
    let task = runtime::handle()?.spawn(async move {
        while let Some(item) = stream.next().await {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let event = match item {
                Ok(item) => map(item),
                Err(Lagged { missed }) => ClientEvent::Lagged { missed },
            };
            listener.on_event(event);
        }
    });
    Ok(Arc::new(SubscriptionHandle {
        cancelled,
        task: Mutex::new(Some(task.abort_handle())),
    }))
}

/// A live subscription. `cancel()` (or dropping it: `close()` in Kotlin, releasing it in
/// Swift) stops the listener and unsubscribes from the channel when no other handle
/// holds it. Subscriptions survive reconnects without being registered again.
#[derive(uniffi::Object)]
pub struct SubscriptionHandle {
    cancelled: Arc<AtomicBool>,
    task: Mutex<Option<AbortHandle>>,
}

#[uniffi::export]
impl SubscriptionHandle {
    /// Stop: no event is delivered after this returns (one being delivered on another
    /// thread may finish).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }

    /// False once cancelled or when the client is gone.
    pub fn is_active(&self) -> bool {
        !self.cancelled.load(Ordering::Acquire)
            && lock(&self.task).as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// An auto-synced draft: edit with `update`, it saves by itself every
/// `auto_save_interval_ms`; conflicts are settled by the strategy or by a `resolve_*`.
/// Dropping it stops tracking the draft (a save already queued still goes out).
#[derive(uniffi::Object)]
pub struct Draft {
    inner: Arc<CoreDraft>,
    client: CoreClient,
    persister: Option<Arc<Persister>>,
}

impl Drop for Draft {
    fn drop(&mut self) {
        if let Some(p) = &self.persister {
            p.open_drafts.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Draft {
    async fn call<F, Fut>(&self, f: F) -> Result<(), PitcheyError>
    where
        F: FnOnce(Arc<CoreDraft>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), pitchey_realtime::client::ClientError>>
            + Send
            + 'static,
    {
        let draft = self.inner.clone();
        let (client, persister) = (self.client.clone(), self.persister.clone());
        run(async move {
            f(draft).await?;
            persist(&persister, &client).await
        })
        .await
    }
}

#[uniffi::export]
impl Draft {
    /// The draft id.
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    /// New local content (JSON); saved by the next auto-save.
    pub async fn update(&self, content_json: String) -> Result<(), PitcheyError> {
        let content = parse_json(&content_json)?;
        self.call(move |d| async move { d.update(content) }).await
    }

    /// Save now instead of waiting for the auto-save.
    pub async fn save(&self) -> Result<(), PitcheyError> {
        self.call(|d| async move { d.save() }).await
    }

    /// Settle a conflict by keeping the local content.
    pub async fn resolve_with_local(&self) -> Result<(), PitcheyError> {
        self.call(|d| async move { d.resolve_with_local() }).await
    }

    /// Settle a conflict by taking the server's content.
    pub async fn resolve_with_remote(&self) -> Result<(), PitcheyError> {
        self.call(|d| async move { d.resolve_with_remote() }).await
    }

    /// Settle a conflict with this content (e.g. a manual merge), saved on top of the
    /// server's version.
    pub async fn resolve_with_content(&self, content_json: String) -> Result<(), PitcheyError> {
        let content = parse_json(&content_json)?;
        self.call(move |d| async move { d.resolve(Resolution::Content(content)) })
            .await
    }

    /// Content, version, dirty, saving, conflict.
    pub async fn state(&self) -> Result<DraftState, PitcheyError> {
        let draft = self.inner.clone();
        run(async move { Ok(draft.state()?.into()) }).await
    }

    /// This draft's events: `DraftSaved`, `DraftUpdated`, `DraftConflict`,
    /// `DraftSaveFailed`.
    pub fn subscribe(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<SubscriptionHandle>, PitcheyError> {
        listen(self.inner.events(), listener, |e| (&e).into())
    }
}
