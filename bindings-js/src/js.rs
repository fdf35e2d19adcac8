//! The classes exported to JavaScript (wasm32 only): `Client` and `Draft`.
//!
//! Each `Client` runs the SDK's client task (`spawn_local`) plus one dispatcher task that
//! reads the SDK's event stream, has the `on(...)`, `subscribe(...)` and `draft.on(...)`
//! handlers called (they are kept in JS, `src/handlers.js`; a subscription is a channel
//! guard of the SDK, `Client::join`, plus a handler; neither it nor a draft has a task of
//! its own) and, with `persistKey`, saves the SDK's snapshot to `localStorage` whenever its
//! persist revision changes.
//!
//! Nothing here decides anything about the protocol: requests go to the SDK as they are,
//! and results come back converted by [`crate::convert`].

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use futures_util::future::{FutureExt, LocalBoxFuture};
use js_sys::{Array, Function, Promise, Reflect};
use pitchey_realtime::client::{
    ChannelGuard, Client as SdkClient, ClientBuilder, ClientError, Draft as SdkDraft, DraftConfig,
    EventStream, Lagged, Validator,
};
use pitchey_realtime::core::{Event, Snapshot};
use pitchey_realtime::protocol::jsvalue::ToTree;
use pitchey_realtime::protocol::{
    Channel, ClientMessage, Message as _, PitchView, PresenceStatus, jsvalue,
};
use pitchey_realtime::transport::web::{LifecycleGuard, watch_lifecycle};
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise, spawn_local};

use crate::convert::{self, client_error_info, error_info};
use crate::types::{ClientOptions, DraftOpenOptions, ErrorInfo, RealtimeErrorName as N};

// ---------------------------------------------------------------------------------------
// Helpers: values and errors across the boundary.
// ---------------------------------------------------------------------------------------

/// A Rust value as a plain JS value (objects, not `Map`s; numbers, not `BigInt`s).
fn to_js<T: ToTree + ?Sized>(value: &T) -> JsValue {
    jsvalue::write_js(value)
}

/// A JS value as JSON (`undefined` is `null`).
fn from_js(value: JsValue) -> Result<Value, JsValue> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    jsvalue::read_js(value).map_err(|e| js_error(&error_info(N::InvalidArgument, e.message())))
}

/// An `Error` whose `name` and `code` say which (see `RealtimeError` in the `.d.ts`).
fn js_error(info: &ErrorInfo) -> JsValue {
    let error = js_sys::Error::new(&info.message);
    error.set_name(info.name.as_str());
    let object: &JsValue = error.as_ref();
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(object, &JsValue::from_str(key), &value);
    };
    set("code", JsValue::from_str(info.code.as_str()));
    if let Some(id) = &info.id {
        set("id", JsValue::from_str(id));
    }
    if let Some(code) = &info.server_code {
        set("serverCode", JsValue::from_str(code));
    }
    if let Some(channel) = &info.channel {
        set("channel", JsValue::from_str(channel));
    }
    error.into()
}

fn client_error(e: &ClientError) -> JsValue {
    js_error(&client_error_info(e))
}

fn invalid(message: impl Into<String>) -> JsValue {
    js_error(&error_info(N::InvalidArgument, message))
}

/// `object[key]` if it is a function.
fn get_function(object: &JsValue, key: &str) -> Option<Function> {
    Reflect::get(object, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.dyn_into::<Function>().ok())
}

/// A JS number as an id (`pitchId`, `conversationId`): finite, whole, non-negative.
fn id_arg(n: f64, what: &str) -> Result<u64, JsValue> {
    convert::version(n).ok_or_else(|| invalid([what, " must be a whole number >= 0"].concat()))
}

/// A JS function that runs `f` on its first call and does nothing after.
fn once_fn(f: impl FnOnce() + 'static) -> Function {
    let mut f = Some(f);
    Closure::<dyn FnMut()>::new(move || {
        if let Some(f) = f.take() {
            f();
        }
    })
    .into_js_value()
    .unchecked_into()
}

/// Every task and promise goes through these two with a boxed future, so that
/// wasm-bindgen-futures' task and promise code is compiled once, not once per method.
fn spawn_task(f: LocalBoxFuture<'static, ()>) {
    spawn_local(f);
}

/// See [`spawn_task`].
fn to_promise(f: LocalBoxFuture<'static, Result<JsValue, JsValue>>) -> Promise {
    future_to_promise(f)
}

/// A promise already settled with `result`: for the calls that never wait (the SDK applies
/// them at once), which keep a promise in their signature so that callers `await` them
/// all alike.
fn settled(result: Result<JsValue, JsValue>) -> Promise {
    match result {
        Ok(value) => Promise::resolve(&value),
        Err(e) => Promise::reject(&e),
    }
}

/// [`settled`] for the SDK's calls that return nothing.
fn done(result: Result<(), ClientError>) -> Promise {
    settled(
        result
            .map(|()| JsValue::UNDEFINED)
            .map_err(|e| client_error(&e)),
    )
}

// ---------------------------------------------------------------------------------------
// Handlers registered with `on`.
// ---------------------------------------------------------------------------------------

// The handler registry lives in JS (`src/handlers.js`): the `.wasm` registers a handler
// (and keeps a subscription's channel guard) and says which keys an event goes to; keeping,
// removing and calling the handlers is done in JS.
#[wasm_bindgen(module = "/src/handlers.js")]
extern "C" {
    /// A new registry (one per client).
    #[wasm_bindgen(js_name = newHandlers)]
    fn new_handlers() -> JsValue;
    /// Register `f` under `key`; returns its remover, which calls `on_remove` once.
    #[wasm_bindgen(js_name = addHandler)]
    fn add_handler(
        handlers: &JsValue,
        key: &str,
        owner: f64,
        f: Function,
        on_remove: Option<Function>,
    ) -> Function;
    /// Whether any handler is registered under `key`.
    fn listens(handlers: &JsValue, key: &str) -> bool;
    /// Remove every handler `owner` registered.
    #[wasm_bindgen(js_name = removeOwner)]
    fn remove_owner(handlers: &JsValue, owner: f64);
    /// Call the handlers of each `[name, key, payload]` triple in `calls`.
    #[wasm_bindgen(js_name = emitAll)]
    fn emit_all(handlers: &JsValue, calls: &Array);
    /// A remover that removes nothing.
    fn noop() -> Function;
}

/// Add a call of the handlers under `key` (named `name` in a handler's error report) with
/// the payload `make` builds (`None`: no call), if any handler is there: no payload is made
/// for nobody.
fn add_call(
    handlers: &JsValue,
    calls: &Array,
    name: &str,
    key: &str,
    make: impl FnOnce() -> Option<JsValue>,
) {
    if listens(handlers, key)
        && let Some(payload) = make()
    {
        calls.push(&JsValue::from_str(name));
        calls.push(&JsValue::from_str(key));
        calls.push(&payload);
    }
}

/// The key of the `on(kind)` handlers.
fn kind_key(kind: &str) -> String {
    ["k", kind].concat()
}

// ---------------------------------------------------------------------------------------
// Persistence (`persistKey`).
// ---------------------------------------------------------------------------------------

struct Persist {
    key: String,
    storage: web_sys::Storage,
    /// The persist revision last written.
    saved: Cell<Option<u64>>,
}

impl Persist {
    fn new(key: String) -> Result<Self, JsValue> {
        let storage = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .ok_or_else(|| invalid("persistKey needs window.localStorage"))?;
        Ok(Persist {
            key,
            storage,
            saved: Cell::new(None),
        })
    }

    fn load(&self) -> Option<Snapshot> {
        let text = self.storage.get_item(&self.key).ok().flatten()?;
        match Snapshot::from_json(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                // Concatenated: `{:?}` of the key linked `str`'s Debug escaping.
                let text = [
                    "@pitchey/realtime: ignoring localStorage[\"",
                    &self.key,
                    "\"]: ",
                    &e.message(),
                ]
                .concat();
                web_sys::console::warn_1(&JsValue::from_str(&text));
                None
            }
        }
    }

    /// Save the client's snapshot if it changed since the last save.
    fn save(&self, client: &SdkClient) {
        let Ok(revision) = client.persist_revision() else {
            return;
        };
        if self.saved.get() == Some(revision) {
            return;
        }
        let Ok(snapshot) = client.export() else {
            return;
        };
        let written = if snapshot.is_empty() {
            self.storage.remove_item(&self.key)
        } else {
            self.storage.set_item(&self.key, &snapshot.to_json())
        };
        match written {
            Ok(()) => self.saved.set(Some(revision)),
            Err(e) => web_sys::console::warn_2(
                &JsValue::from_str("@pitchey/realtime: could not write localStorage"),
                &e,
            ),
        }
    }
}

/// Save once the current JS task ends: a burst of sends in one task is written once (the
/// later saves find the revision already written).
fn schedule_save(client: &SdkClient, persist: &Option<Rc<Persist>>) {
    if let Some(p) = persist {
        let (client, p) = (client.clone(), p.clone());
        spawn_task(async move { p.save(&client) }.boxed_local());
    }
}

/// Save now, if persisting.
fn save_now(client: &SdkClient, persist: &Option<Rc<Persist>>) {
    if let Some(p) = persist {
        p.save(client);
    }
}

// ---------------------------------------------------------------------------------------
// Client.
// ---------------------------------------------------------------------------------------

struct Inner {
    client: SdkClient,
    /// The JS registry of handlers (`src/handlers.js`).
    handlers: JsValue,
    /// The channel guards of the `subscribe` handlers, by number: a handler's remover
    /// drops its guard (the channel is left when no other handle holds it).
    guards: RefCell<Vec<(u64, ChannelGuard)>>,
    /// The last number given to a guard or a `Draft` (its handlers' owner; the `on` and
    /// `subscribe` handlers have owner 0, which no `Draft` gets).
    last_number: Cell<u64>,
    persist: Option<Rc<Persist>>,
    _lifecycle: LifecycleGuard,
}

impl Inner {
    fn next_number(&self) -> u64 {
        let n = self.last_number.get().saturating_add(1);
        self.last_number.set(n);
        n
    }
}

/// A real-time connection to Pitchey (see the package README).
#[wasm_bindgen]
pub struct Client {
    inner: Rc<Inner>,
}

fn make_builder(
    options: &ClientOptions,
    token_provider: Option<Function>,
) -> Result<ClientBuilder, JsValue> {
    let mut builder = SdkClient::builder(options.url.clone());
    if let Some(token) = &options.token {
        builder = builder.token(token.clone());
    }
    let mut bad = None;
    builder = builder.configure(|config| {
        bad = convert::apply_options(options, config).err();
    });
    if let Some(info) = bad {
        return Err(js_error(&info));
    }
    if let Some(provider) = token_provider {
        builder = builder.token_provider(move || {
            let provider = provider.clone();
            async move {
                let returned = provider.call0(&JsValue::NULL).ok()?;
                let token: JsValue = JsFuture::from(Promise::resolve(&returned)).await.ok()?;
                token.as_string()
            }
        });
    }
    Ok(builder)
}

/// The handler calls `event` makes, as `[name, key, payload, ...]`, prepared while the SDK
/// shows it in place (so the event is never copied); `handlers.js` takes every handler
/// list of the event before calling any.
fn calls(handlers: &JsValue, event: &Event) -> Array {
    let calls = Array::new();
    for (kind, payload) in convert::deliveries(event) {
        add_call(handlers, &calls, kind, &kind_key(kind), || {
            Some(to_js(&payload))
        });
    }
    if let Some(id) = event.draft_id() {
        add_call(handlers, &calls, "draft", &["d", id].concat(), || {
            convert::draft_event(event).map(|e| to_js(&e))
        });
    }
    if let Event::Message(frame) = event
        && let Some(channel) = frame.message.channel()
    {
        let name = channel.name();
        add_call(handlers, &calls, &name, &["c", &name].concat(), || {
            Some(to_js(&convert::message_payload(&frame.message)))
        });
    }
    calls
}

/// The dispatcher: every SDK event to the `on` handlers, each channel message to the
/// handlers of its channel (`subscribe`), each draft event to its draft's handlers
/// (`draft.on`), and a save after each. A payload is made only if a handler listens for
/// it, once for all the handlers of one kind or one channel (they share the object, as
/// the handlers of one `on` kind always did).
///
/// It holds the client weakly: once the JS `Client` and its `Draft`s (which hold it too)
/// are freed, there is no handler to call, and the SDK client's last handle is gone, so
/// its driver closes the socket and ends, which ends this stream too.
async fn dispatch(mut events: EventStream, client: Weak<Inner>) {
    loop {
        let item = events
            .recv_with(|event| {
                let inner = client.upgrade()?;
                let calls = calls(&inner.handlers, event);
                Some((inner, calls))
            })
            .await;
        let (inner, calls) = match item {
            Some(Ok(Some(found))) => found,
            Some(Err(Lagged { missed })) => {
                let Some(inner) = client.upgrade() else {
                    return;
                };
                let calls = Array::new();
                let (kind, payload) = convert::lagged(missed);
                add_call(&inner.handlers, &calls, kind, &kind_key(kind), || {
                    Some(to_js(&payload))
                });
                (inner, calls)
            }
            // The stream ended, or the client is gone.
            None | Some(Ok(None)) => return,
        };
        emit_all(&inner.handlers, &calls);
        save_now(&inner.client, &inner.persist);
    }
}

#[wasm_bindgen]
impl Client {
    /// A client for `options.url`. It does not connect until `connect()`. With
    /// `persistKey`, messages queued before a reload are restored (same ids).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<Client, JsValue> {
        let parsed: ClientOptions = jsvalue::read_js(options.clone())
            .map_err(|e| invalid(["invalid options: ", e.message()].concat()))?;
        let provider = get_function(&options, "tokenProvider");
        let persist = match &parsed.persist_key {
            Some(key) => Some(Rc::new(Persist::new(key.clone())?)),
            None => None,
        };
        let mut snapshot = persist.as_ref().and_then(|p| p.load());
        // One build, or a second without the saved messages if they cannot be restored.
        let client = loop {
            let builder = make_builder(&parsed, provider.clone())?;
            let restoring = snapshot.take();
            let retry = restoring.is_some();
            let builder = match restoring {
                Some(saved) => builder.restore(saved),
                None => builder,
            };
            match builder.build() {
                Ok(c) => break c,
                Err(ClientError::Snapshot(e)) if retry => {
                    web_sys::console::warn_1(&JsValue::from_str(
                        &[
                            "@pitchey/realtime: saved messages not restored: ",
                            &e.message(),
                        ]
                        .concat(),
                    ));
                }
                Err(e) => return Err(client_error(&e)),
            }
        };
        // The stream is opened here, not at the task's first poll: the client's own task
        // may publish (a `connect()` right after `new Client`) before that.
        let events = client.events();
        let lifecycle = watch_lifecycle(&client);
        // The task only queues here (it first runs after this call returns, and then
        // waits for an event), so the client exists by the time it upgrades its `Weak`.
        let inner = Rc::new_cyclic(|weak| {
            spawn_task(dispatch(events, weak.clone()).boxed_local());
            Inner {
                client,
                handlers: new_handlers(),
                guards: RefCell::default(),
                last_number: Cell::new(0),
                persist,
                _lifecycle: lifecycle,
            }
        });
        Ok(Client { inner })
    }

    /// Start connecting, and keep reconnecting until `disconnect()`. Resolves once the
    /// attempt has started (watch `status` / `on("state")`); rejects with `InvalidUrl`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(&self) -> Promise {
        done(self.inner.client.connect())
    }

    /// Close the connection and stop reconnecting until the next `connect()`. Queued
    /// messages stay queued.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn disconnect(&self) -> Promise {
        done(self.inner.client.disconnect())
    }

    /// Deliver what is queued for at most `timeoutMs`, then close. What could not be
    /// delivered stays queued (and saved, with `persistKey`).
    #[wasm_bindgen(js_name = close, unchecked_return_type = "Promise<void>")]
    pub fn close_js(&self, #[wasm_bindgen(js_name = timeoutMs)] timeout_ms: f64) -> Promise {
        let timeout = convert::duration_ms(timeout_ms);
        let Some(timeout) = timeout else {
            return Promise::reject(&invalid("timeoutMs must be a number >= 0"));
        };
        let persist = self.inner.persist.clone();
        let c = self.inner.client.clone();
        to_promise(
            async move {
                c.close(timeout).await.map_err(|e| client_error(&e))?;
                save_now(&c, &persist);
                Ok(JsValue::UNDEFINED)
            }
            .boxed_local(),
        )
    }

    /// Reconnect now instead of after the backoff delay (done by itself on `online` and
    /// when the page becomes visible).
    pub fn wake(&self) -> Result<(), JsValue> {
        self.inner.client.wake().map_err(|e| client_error(&e))
    }

    /// Give the client a fresh token (after `token_needed`, without a `tokenProvider`).
    #[wasm_bindgen(js_name = setToken)]
    pub fn set_token(&self, token: String) -> Result<(), JsValue> {
        self.inner
            .client
            .set_token(token)
            .map_err(|e| client_error(&e))
    }

    /// Send a durable message; resolves with its id once the server acked it.
    /// Queued now (so later calls, `close()` included, come after it), confirmed later: the
    /// `Confirmation` reads the events from its send on, so no earlier event settles it.
    fn send_confirmed(&self, message: ClientMessage) -> Promise {
        let confirmation = match self.inner.client.send_tracked(message) {
            Ok(c) => c,
            Err(e) => return Promise::reject(&client_error(&e)),
        };
        schedule_save(&self.inner.client, &self.inner.persist);
        to_promise(
            async move {
                let id = confirmation.wait().await.map_err(|e| client_error(&e))?;
                Ok(JsValue::from_str(id.as_str()))
            }
            .boxed_local(),
        )
    }

    /// Report that the user viewed a pitch; resolves with the message id once acked.
    /// Rejects with `QueueFull` at once when the outbox is full.
    #[wasm_bindgen(js_name = sendPitchView, unchecked_return_type = "Promise<string>")]
    pub fn send_pitch_view(&self, #[wasm_bindgen(js_name = pitchId)] pitch_id: f64) -> Promise {
        match id_arg(pitch_id, "pitchId") {
            Ok(pitch_id) => self.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id })),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Send a durable message of any type (`data` is its payload); resolves with its id
    /// once acked. Ephemeral types (`typing`, `presence_update`) reject with `NotDurable`:
    /// use `setTyping` / `setPresence`.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn send(&self, #[wasm_bindgen(js_name = type)] kind: String, data: JsValue) -> Promise {
        // The SDK reads the JS value itself (no round trip through JSON text).
        let message = ClientMessage::decode_js(&kind, data).map_err(|e| invalid(e.message()));
        match message {
            Ok(message) => self.send_confirmed(message),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Set the user's own presence (only the latest is sent).
    #[wasm_bindgen(js_name = setPresence, unchecked_return_type = "Promise<void>")]
    pub fn set_presence(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PresenceStatus")] status: JsValue,
    ) -> Promise {
        match jsvalue::read_js::<PresenceStatus>(status) {
            Ok(status) => done(self.inner.client.set_presence(status)),
            Err(_) => Promise::reject(&invalid("status must be online, away or offline")),
        }
    }

    /// Say the user started or stopped typing in a conversation (only the latest is sent,
    /// and dropped if it cannot be sent within a few seconds).
    #[wasm_bindgen(js_name = setTyping, unchecked_return_type = "Promise<void>")]
    pub fn set_typing(
        &self,
        #[wasm_bindgen(js_name = conversationId)] conversation_id: f64,
        #[wasm_bindgen(js_name = isTyping)] is_typing: bool,
    ) -> Promise {
        match id_arg(conversation_id, "conversationId") {
            Ok(id) => done(self.inner.client.set_typing(id, is_typing)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Listen to one event type (see `ClientEventMap`); returns the function that stops.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, kind: String, handler: Function) -> Function {
        add_handler(&self.inner.handlers, &kind_key(&kind), 0.0, handler, None)
    }

    /// Subscribe to a channel (`pitch:42`, `presence:7`, `conversation:3`, ...); `handler`
    /// gets the `data` of its messages. Returns the function that unsubscribes. Throws for a
    /// channel name that does not parse; a subscription the client refuses (too many
    /// channels) is an `error` event.
    #[wasm_bindgen(skip_typescript)]
    pub fn subscribe(&self, channel: String, handler: Function) -> Result<Function, JsValue> {
        let channel: Channel = channel
            .parse()
            .map_err(|e: pitchey_realtime::protocol::ChannelParseError| invalid(e.message()))?;
        let name = channel.name();
        match self.inner.client.join(channel) {
            Ok(guard) => {
                let number = self.inner.next_number();
                self.inner.guards.borrow_mut().push((number, guard));
                let inner = Rc::downgrade(&self.inner);
                let leave = once_fn(move || {
                    if let Some(inner) = inner.upgrade() {
                        let removed = {
                            let mut guards = inner.guards.borrow_mut();
                            let at = guards.iter().position(|(n, _)| *n == number);
                            at.map(|at| guards.remove(at))
                        };
                        // Dropped outside the borrow: the guard unsubscribes on drop.
                        drop(removed);
                    }
                });
                let key = ["c", &name].concat();
                Ok(add_handler(
                    &self.inner.handlers,
                    &key,
                    0.0,
                    handler,
                    Some(leave),
                ))
            }
            Err(e) => {
                // An `error` event, not a throw: hooks subscribe inside effects, where a
                // throw would unmount the app. Emitted after this call returns, so that a
                // handler added just after `subscribe` still hears it.
                let info = client_error_info(&e);
                let handlers = self.inner.handlers.clone();
                spawn_task(
                    async move {
                        let calls = Array::new();
                        add_call(&handlers, &calls, "error", &kind_key("error"), || {
                            Some(to_js(&info))
                        });
                        emit_all(&handlers, &calls);
                    }
                    .boxed_local(),
                );
                Ok(noop())
            }
        }
    }

    /// The connection state.
    #[wasm_bindgen(getter, unchecked_return_type = "ConnectionStatus")]
    pub fn status(&self) -> String {
        convert::status_str(convert::status(&self.inner.client.state())).to_owned()
    }

    /// Queue depth, round-trip time, reconnects and more.
    #[wasm_bindgen(unchecked_return_type = "Promise<Metrics>")]
    pub fn metrics(&self) -> Promise {
        settled(
            self.inner
                .client
                .metrics()
                .map(|m| to_js(&convert::metrics(&m)))
                .map_err(|e| client_error(&e)),
        )
    }

    /// Open an auto-synced draft (the seed's `useDraftSync`).
    #[wasm_bindgen(js_name = openDraft)]
    pub fn open_draft(
        &self,
        #[wasm_bindgen(js_name = draftId)] draft_id: String,
        #[wasm_bindgen(unchecked_param_type = "DraftOpenOptions")] options: JsValue,
    ) -> Result<Draft, JsValue> {
        Draft::open(self.inner.clone(), draft_id, options)
    }
}

// ---------------------------------------------------------------------------------------
// Draft.
// ---------------------------------------------------------------------------------------

/// An open, auto-synced draft (`client.openDraft`).
#[wasm_bindgen]
pub struct Draft {
    id: String,
    client: Rc<Inner>,
    /// `None` once closed.
    open: RefCell<Option<SdkDraft>>,
    /// Tells this object's `draft.on` handlers apart in the client's registry.
    owner: u64,
}

impl Draft {
    fn open(client: Rc<Inner>, id: String, options: JsValue) -> Result<Draft, JsValue> {
        let parsed: DraftOpenOptions = if options.is_undefined() || options.is_null() {
            DraftOpenOptions::default()
        } else {
            jsvalue::read_js(options.clone())
                .map_err(|e| invalid(["invalid draft options: ", e.message()].concat()))?
        };
        let draft_options = convert::draft_options(&parsed).map_err(|e| js_error(&e))?;
        let base_version = match parsed.base_version {
            Some(v) => Some(convert::version(v).ok_or_else(|| invalid("invalid baseVersion"))?),
            None => None,
        };
        #[allow(clippy::arc_with_non_send_sync)] // the SDK's Validator on wasm32 is not Send
        let validator: Option<Validator> = get_function(&options, "validate").map(|f| {
            Arc::new(move |content: &Value| {
                f.call1(&JsValue::NULL, &to_js(content))
                    .is_ok_and(|r| r.is_truthy())
            }) as Validator
        });
        let config = DraftConfig {
            draft_type: parsed.draft_type,
            initial: parsed.initial,
            base_version,
            options: draft_options,
            validator,
        };
        let draft = client
            .client
            .draft(id.clone(), config)
            .map_err(|e| client_error(&e))?;
        // `draft.on` handlers are in the client's registry, under this number.
        let owner = client.next_number();
        Ok(Draft {
            id,
            client,
            open: RefCell::new(Some(draft)),
            owner,
        })
    }

    /// Remove this object's `draft.on` handlers (a later draft of the same id starts
    /// without them).
    fn forget_handlers(&self) {
        remove_owner(&self.client.handlers, self.owner as f64);
    }

    /// Run `f` on the open draft; its result as a settled promise.
    fn with(&self, f: impl FnOnce(&SdkDraft) -> Result<JsValue, ClientError>) -> Promise {
        let open = self.open.borrow();
        let Some(draft) = open.as_ref() else {
            let message = ["draft `", &self.id, "` is closed"].concat();
            return Promise::reject(&js_error(&error_info(N::UnknownDraft, message)));
        };
        settled(f(draft).map_err(|e| client_error(&e)))
    }

    /// [`Draft::with`] for the calls that change what is persisted.
    fn with_saved(&self, f: impl FnOnce(&SdkDraft) -> Result<(), ClientError>) -> Promise {
        let promise = self.with(|d| f(d).map(|()| JsValue::UNDEFINED));
        save_now(&self.client.client, &self.client.persist);
        promise
    }
}

#[wasm_bindgen]
impl Draft {
    /// The draft id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// New local content: marks the draft dirty; the next auto-save sends it if
    /// `validate` accepts it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "any")] content: JsValue,
    ) -> Promise {
        match from_js(content) {
            Ok(content) => self.with_saved(|d| d.update(content)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Save now instead of waiting for the auto-save.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn save(&self) -> Promise {
        self.with_saved(|d| d.save())
    }

    /// Settle a conflict by keeping the local content.
    #[wasm_bindgen(js_name = resolveWithLocal, unchecked_return_type = "Promise<void>")]
    pub fn resolve_with_local(&self) -> Promise {
        self.with(|d| d.resolve_with_local().map(|()| JsValue::UNDEFINED))
    }

    /// Settle a conflict by taking the server's content.
    #[wasm_bindgen(js_name = resolveWithRemote, unchecked_return_type = "Promise<void>")]
    pub fn resolve_with_remote(&self) -> Promise {
        self.with(|d| d.resolve_with_remote().map(|()| JsValue::UNDEFINED))
    }

    /// Content, dirty, saving, conflict, last saved.
    #[wasm_bindgen(unchecked_return_type = "Promise<DraftState>")]
    pub fn state(&self) -> Promise {
        let client = &self.client.client;
        let now_epoch = js_sys::Date::now();
        let now = client.now();
        self.with(|d| {
            // Written while the SDK lends the state (under the client's lock): no copy of
            // the content. Writing makes plain objects and arrays only; a page that made
            // `Object.prototype` setters call the client would stop the module (the lock is
            // not re-entrant).
            d.read_state(|state| {
                let last_saved = state
                    .last_saved
                    .map(|at| now_epoch - convert::millis(now.saturating_duration_since(at)));
                to_js(&crate::writers::DraftStateView { state, last_saved })
            })
        })
    }

    /// Listen to this draft's events (saved, updated, conflict, save failed); returns the
    /// function that stops.
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: DraftEvent) => void")] handler: Function,
    ) -> Function {
        if self.open.borrow().is_none() {
            // A closed draft has no events to hear.
            return noop();
        }
        let key = ["d", &self.id].concat();
        add_handler(
            &self.client.handlers,
            &key,
            self.owner as f64,
            handler,
            None,
        )
    }

    /// Stop tracking the draft (a save already queued still goes out).
    pub fn close(&self) {
        self.open.borrow_mut().take();
        self.forget_handlers();
    }
}

impl Drop for Draft {
    /// Freed from JS (`free()` or garbage collection): its handlers go with it.
    fn drop(&mut self) {
        self.forget_handlers();
    }
}
