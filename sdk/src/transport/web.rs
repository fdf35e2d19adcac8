//! The browser platform (feature `web`, `wasm32-unknown-unknown`): `spawn_local` for the
//! task, `performance.now()` and `setTimeout` (gloo-timers) for the clock and the timer,
//! `crypto.getRandomValues` for the RNG seed, and the browser's `WebSocket`. Implements the
//! three traits of [`crate::client::platform`]; no rule of the protocol lives here.
//!
//! Works in a page and in a (dedicated or shared) worker: every browser object is taken from
//! `globalThis`, never from `window`.
//!
//! A browser hides why a WebSocket did not open: a refused upgrade (401, 503), a server that
//! is down and a network failure all look the same, a close 1006 before `open`. The
//! [`Connector`] reports exactly that ([`ConnectError::Closed`]) and the core decides what
//! it means (e.g. several in a row before `connected` may be a refused token).
//!
//! [`watch_lifecycle`] connects the page's `online` and `visibilitychange` events to
//! [`Client::wake`], so that a laptop coming back online or a tab coming to the foreground
//! reconnects at once instead of after the backoff delay.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::Stream;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, JsValue};
use web_sys::{BinaryType, CloseEvent, Event, EventTarget, MessageEvent, WebSocket};

use crate::client::platform::{
    BoxFuture, Connect, ConnectError, Socket, SocketEvent, Spawn, Timer,
};
use crate::client::{Client, ClientBuilder, ClientError};
use crate::core::{FrameText, Instant};
use crate::protocol::SUBPROTOCOL;

/// The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days); longer ones fire
/// at once in every browser, so longer sleeps are made of several of these.
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// The longest close reason a browser accepts, in UTF-8 bytes (longer ones throw).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Spawns on the browser's microtask queue (`wasm_bindgen_futures::spawn_local`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalSpawn;

impl Spawn for LocalSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // As a local future: the bindings spawn theirs as such, and one instance of
        // `spawn_local` serves both.
        let task: futures_util::future::LocalBoxFuture<'static, ()> = task;
        wasm_bindgen_futures::spawn_local(task);
    }
}

/// `performance.now()` mapped onto the core's clock (origin: when the timer was made),
/// `Date.now()` for the wall clock, and `setTimeout` (gloo-timers) for sleeps.
///
/// `performance.now()` is monotonic; whether it advances while the device sleeps depends
/// on the browser and the OS. The core copes with a clock that jumps either way. Without a
/// `performance` object (no known browser) the timer falls back to `Date.now()`.
#[derive(Debug, Clone)]
pub struct BrowserTimer {
    performance: Option<web_sys::Performance>,
    /// The clock reading (ms) that is the core's [`Instant::ZERO`].
    origin_ms: f64,
}

impl BrowserTimer {
    /// A timer whose origin is now.
    pub fn new() -> Self {
        let performance = global_property::<web_sys::Performance>("performance");
        let origin_ms = read_clock(performance.as_ref());
        BrowserTimer {
            performance,
            origin_ms,
        }
    }
}

impl Default for BrowserTimer {
    fn default() -> Self {
        Self::new()
    }
}

/// Milliseconds from `performance.now()`, or from `Date.now()` without one.
fn read_clock(performance: Option<&web_sys::Performance>) -> f64 {
    match performance {
        Some(p) => p.now(),
        None => js_sys::Date::now(),
    }
}

/// Fractional milliseconds as a [`Duration`]: negative, NaN and infinite readings are zero
/// (`as` casts from `f64` saturate and send NaN to 0).
fn millis_to_duration(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::from_micros((ms * 1_000.0) as u64)
    } else {
        Duration::ZERO
    }
}

impl Timer for BrowserTimer {
    fn now(&self) -> Instant {
        let elapsed = read_clock(self.performance.as_ref()) - self.origin_ms;
        Instant::from_duration(millis_to_duration(elapsed))
    }

    fn epoch_ms(&self) -> u64 {
        let now = js_sys::Date::now();
        if now.is_finite() && now > 0.0 {
            now as u64
        } else {
            0
        }
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // Round up: waking before the deadline would only make the driver sleep again.
        Box::pin(Sleep {
            left_ms: crate::core::time::millis_ceil(duration),
            timeout: None,
            fired: Rc::default(),
        })
    }
}

/// A sleep made of `setTimeout`s of at most [`MAX_TIMEOUT_MS`] (at least one, so that even
/// a zero sleep lets the page's event loop run): gloo-timers' callback `Timeout`, which
/// clears its timeout when dropped, and a flag with a waker that its callback sets
/// (gloo-timers' future form adds a `futures-channel` `oneshot` to each sleep).
/// `Duration::MAX` is about 5.8e11 years of 24.8-day timeouts: it never ends.
struct Sleep {
    /// Milliseconds still to wait once the current timeout fires.
    left_ms: u64,
    timeout: Option<gloo_timers::callback::Timeout>,
    fired: Rc<RefCell<Fired>>,
}

/// Whether the current timeout fired, and the task to wake when it does.
#[derive(Default)]
struct Fired {
    fired: bool,
    waker: Option<Waker>,
}

impl Waited for Fired {
    fn waker(&mut self) -> &mut Option<Waker> {
        &mut self.waker
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.timeout.is_some() {
            let mut fired = this.fired.borrow_mut();
            if !fired.fired {
                fired.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            fired.fired = false;
            drop(fired);
            this.timeout = None;
            if this.left_ms == 0 {
                return Poll::Ready(());
            }
        }
        let step = this.left_ms.min(MAX_TIMEOUT_MS);
        this.left_ms -= step;
        let fired = this.fired.clone();
        this.timeout = Some(gloo_timers::callback::Timeout::new(
            u32::try_from(step).unwrap_or(u32::MAX),
            move || update(&fired, |fired| fired.fired = true),
        ));
        // Not fired yet: no browser callback runs during a poll.
        this.fired.borrow_mut().waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

// `build` lives with the platform it spawns on, so that `client` never names a transport:
// the dependency runs one way, transport -> client.
#[cfg(not(feature = "native"))]
impl ClientBuilder {
    /// Spawn the client's task in the browser (feature `web`, `wasm32`). It does not
    /// connect until [`Client::connect`].
    pub fn build(self) -> Result<Client, ClientError> {
        let seed = entropy()?;
        self.build_with(LocalSpawn, BrowserTimer::new(), Connector, seed)
    }
}

/// 64 bits from `crypto.getRandomValues`, the seed of the core's RNG (backoff jitter,
/// message-id prefixes). Fails with [`ClientError::Platform`] where there is no `crypto`
/// (very old browsers; some non-browser hosts).
pub fn entropy() -> Result<u64, ClientError> {
    let crypto = global_property::<web_sys::Crypto>("crypto")
        .ok_or_else(|| ClientError::Platform("no crypto.getRandomValues in this host".into()))?;
    let mut bytes = [0u8; 8];
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .map_err(|e| ClientError::Platform(["crypto.getRandomValues: ", &js_error(&e)].concat()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// `globalThis[name]` if it is a `T` (checked with `instanceof`).
fn global_property<T: JsCast>(name: &str) -> Option<T> {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.dyn_into::<T>().ok())
}

/// A readable text for a thrown JS value (an `Error`/`DOMException`: `name: message`).
fn js_error(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        let (name, message) = (String::from(e.name()), String::from(e.message()));
        // Joined as `&str`s, like every other text here: one instance of the join code.
        [name.as_str(), ": ", &message].concat()
    } else if let Some(s) = value.as_string() {
        s
    } else {
        // `JSON.stringify`, not `{:?}`: the package's size build empties `Debug` output
        // (`-Zfmt-debug=none`, bindings-js/build.sh).
        js_sys::JSON::stringify(value)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| String::from("a thrown value that is neither an Error nor JSON"))
    }
}

/// Opens browser `WebSocket`s with subprotocol `pitchey-v1`.
///
/// A browser cannot set headers on a WebSocket request: the token travels in the URL's
/// `?token=` only (the core puts it there).
#[derive(Debug, Clone, Copy, Default)]
pub struct Connector;

impl Connect for Connector {
    fn connect(
        &self,
        url: &str,
        _token: &str,
    ) -> BoxFuture<'static, Result<Box<dyn Socket>, ConnectError>> {
        // The constructor runs now (a bad URL fails at once); the future waits for `open`.
        // Dropping the future before that closes the socket (`BrowserSocket`'s drop).
        let opened = BrowserSocket::open(url);
        Box::pin(async move {
            let socket = opened?;
            std::future::poll_fn(|cx| socket.poll_opened(cx)).await?;
            Ok(Box::new(socket) as Box<dyn Socket>)
        })
    }
}

/// The socket's JS event handlers. Kept alive as long as the socket (JS calls into them);
/// detached from it before they are dropped.
///
/// All four take an `Event` (the message and close handlers cast it, as JS gives them a
/// `MessageEvent` and a `CloseEvent`): each closure signature costs the package its own
/// call shims.
struct Handlers {
    on_open: Closure<dyn FnMut(Event)>,
    on_message: Closure<dyn FnMut(Event)>,
    on_close: Closure<dyn FnMut(Event)>,
    on_error: Closure<dyn FnMut(Event)>,
}

impl Handlers {
    fn attach(&self, ws: &WebSocket) {
        ws.set_onopen(Some(self.on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(self.on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(self.on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(self.on_error.as_ref().unchecked_ref()));
    }
}

/// What the socket's JS handlers leave for the driver. A page runs them and the driver on
/// one thread, so a `RefCell` and a waker do what a channel pair would (futures-channel's
/// `oneshot` and `mpsc` were 3 KB of the browser package). Unbounded, like the browser's
/// own buffer of received messages: taking from it is cancel-safe.
#[derive(Default)]
struct Inbox {
    /// How the attempt ended before `open`: set by the first of `open` and `close`.
    opened: Option<Result<(), ConnectError>>,
    /// Events not taken yet, oldest first.
    events: Vec<SocketEvent>,
    /// `close` came: nothing more is added, and the stream ends once `events` is read.
    ended: bool,
    /// The task waiting for any of the above.
    waker: Option<Waker>,
}

impl Waited for Inbox {
    fn waker(&mut self) -> &mut Option<Waker> {
        &mut self.waker
    }
}

/// What a JS callback changes and a task waits on (the socket's [`Inbox`], a sleep's
/// [`Fired`]), with that task's waker.
trait Waited {
    /// The waiting task's waker, if one waits.
    fn waker(&mut self) -> &mut Option<Waker>;
}

/// Change `cell`, then wake its task after the borrow ends: an executor that polls in
/// `wake` itself would otherwise find it borrowed.
fn update<T: Waited>(cell: &RefCell<T>, change: impl FnOnce(&mut T)) {
    let waker = {
        let mut state = cell.borrow_mut();
        change(&mut state);
        state.waker().take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// An open browser `WebSocket`: events come from its handlers through an `Inbox`, writes
/// go straight to `send`.
pub struct BrowserSocket {
    ws: WebSocket,
    inbox: Rc<RefCell<Inbox>>,
    /// Events already taken out of the inbox, to hand out one by one.
    taken: std::vec::IntoIter<SocketEvent>,
    /// `None` once [`Socket::close`] detached them.
    handlers: Option<Handlers>,
}

impl std::fmt::Debug for BrowserSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSocket")
            .field("url", &self.ws.url())
            .field("ready_state", &self.ws.ready_state())
            .finish_non_exhaustive()
    }
}

impl BrowserSocket {
    /// Create the `WebSocket` and its handlers; [`BrowserSocket::poll_opened`] then says
    /// when it opened (`Ok`) or closed first.
    fn open(url: &str) -> Result<Self, ConnectError> {
        let ws = WebSocket::new_with_str(url, SUBPROTOCOL).map_err(|e| {
            ConnectError::Failed(["invalid WebSocket URL: ", &js_error(&e)].concat())
        })?;
        // Binary frames are ignored; as ArrayBuffers they at least cost no Blob.
        ws.set_binary_type(BinaryType::Arraybuffer);

        let inbox = Rc::new(RefCell::new(Inbox::default()));

        let on_open = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                update(&inbox, |inbox| {
                    inbox.opened.get_or_insert(Ok(()));
                });
            })
        };
        let on_message = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                match event.unchecked_into::<MessageEvent>().data().as_string() {
                    Some(text) => update(&inbox, |inbox| {
                        if !inbox.ended {
                            inbox.events.push(SocketEvent::Text(text));
                        }
                    }),
                    None => tracing::warn!("binary frame ignored: pitchey-v1 is text only"),
                }
            })
        };
        let on_close = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                let event = event.unchecked_into::<CloseEvent>();
                let (code, reason) = (event.code(), event.reason());
                update(&inbox, |inbox| {
                    if inbox.ended {
                        return;
                    }
                    if inbox.opened.is_none() {
                        // Closed before it opened: all a browser says of a refused upgrade.
                        inbox.opened = Some(Err(ConnectError::Closed { code, reason }));
                    } else {
                        inbox.events.push(SocketEvent::Closed { code, reason });
                    }
                    // Nothing comes after a close: the stream ends once it is read.
                    inbox.ended = true;
                });
            })
        };
        // `error` carries no detail and is always followed by `close`, which reports.
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            tracing::debug!("WebSocket error event (a close follows)");
        });

        let handlers = Handlers {
            on_open,
            on_message,
            on_close,
            on_error,
        };
        handlers.attach(&ws);
        Ok(BrowserSocket {
            ws,
            inbox,
            taken: Vec::new().into_iter(),
            handlers: Some(handlers),
        })
    }

    /// Ready once the socket opened (`Ok`) or closed before opening.
    fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        let mut inbox = self.inbox.borrow_mut();
        match &inbox.opened {
            Some(Ok(())) => Poll::Ready(Ok(())),
            Some(Err(e)) => Poll::Ready(Err(e.clone())),
            // Detached before it opened (not reachable through `Connector`, which owns
            // the socket until then): it never will.
            None if inbox.ended => Poll::Ready(Err(ConnectError::Failed(
                "the socket went away before opening".into(),
            ))),
            None => {
                inbox.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Detach and drop the handlers: late events of this socket go nowhere, and its
    /// stream ends once what came before is read.
    fn detach(&mut self) {
        if let Some(handlers) = self.handlers.take() {
            self.ws.set_onopen(None);
            self.ws.set_onmessage(None);
            self.ws.set_onclose(None);
            self.ws.set_onerror(None);
            drop(handlers);
            update(&self.inbox, |inbox| inbox.ended = true);
        }
    }
}

impl Stream for BrowserSocket {
    type Item = SocketEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SocketEvent>> {
        let this = &mut *self;
        if let Some(event) = this.taken.next() {
            return Poll::Ready(Some(event));
        }
        let mut inbox = this.inbox.borrow_mut();
        if !inbox.events.is_empty() {
            // All at once: one borrow per batch, and no front removal from a `Vec`.
            this.taken = std::mem::take(&mut inbox.events).into_iter();
            return Poll::Ready(this.taken.next());
        }
        if inbox.ended {
            return Poll::Ready(None);
        }
        inbox.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Socket for BrowserSocket {
    fn send(&mut self, frames: Vec<FrameText>) -> BoxFuture<'_, Result<(), String>> {
        // The browser buffers writes itself (`bufferedAmount`): nothing to await.
        let result = (|| {
            for text in &frames {
                let state = self.ws.ready_state();
                if state != WebSocket::OPEN {
                    return Err(crate::core::text::fill(
                        "socket is not open (readyState {})",
                        &[&crate::core::text::decimal(u64::from(state))],
                    ));
                }
                self.ws.send_with_str(text).map_err(|e| js_error(&e))?;
            }
            Ok(())
        })();
        Box::pin(std::future::ready(result))
    }

    fn close(&mut self, code: u16, reason: String) -> BoxFuture<'_, ()> {
        // Browsers only let a page send 1000 or 3000-4999, with a reason of at most 123
        // bytes; anything else throws. Keep the reason, send 1000 for other codes.
        let allowed = code == 1000 || (3000..=4999).contains(&code);
        let sent_code = if allowed { code } else { 1000 };
        let reason = truncate_utf8(&reason, MAX_CLOSE_REASON_BYTES);
        if let Err(e) = self.ws.close_with_code_and_reason(sent_code, reason) {
            tracing::debug!(error = %js_error(&e), "WebSocket close threw");
            let _ = self.ws.close();
        }
        self.detach();
        Box::pin(std::future::ready(()))
    }
}

impl Drop for BrowserSocket {
    fn drop(&mut self) {
        self.detach();
        let state = self.ws.ready_state();
        if state == WebSocket::CONNECTING || state == WebSocket::OPEN {
            // Nobody listens any more: do not leave the connection open.
            let _ = self.ws.close_with_code_and_reason(1000, "");
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // `get`, not `&s[..end]`: the slice's panic path would link `char` and range
    // formatting; `end` is a char boundary, so it is always `Some`.
    s.get(..end).unwrap_or_default()
}

/// Calls [`Client::wake`] when the browser comes back `online` and when the page becomes
/// visible again (`visibilitychange`); made by [`watch_lifecycle`]. Dropping it removes
/// the listeners.
///
/// It holds a [`Client`] handle: the client's task keeps running while the guard lives.
#[must_use = "the listeners are removed when the guard is dropped"]
pub struct LifecycleGuard {
    listeners: Vec<Listener>,
}

/// Where a listener is registered, for which event, and the callback JS holds.
type Listener = (EventTarget, &'static str, Closure<dyn FnMut(Event)>);

impl std::fmt::Debug for LifecycleGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events: Vec<&str> = self.listeners.iter().map(|(_, name, _)| *name).collect();
        f.debug_struct("LifecycleGuard")
            .field("events", &events)
            .finish()
    }
}

/// Wake `client` (reconnect now, or ping a connected link) when the browser reports that
/// the network is back (`online` on the global scope) and when the page becomes visible
/// (`visibilitychange` on `document`, when there is one: not in workers). Keep the guard as
/// long as the client should be woken.
pub fn watch_lifecycle(client: &Client) -> LifecycleGuard {
    let mut listeners = Vec::new();

    if let Ok(global) = js_sys::global().dyn_into::<EventTarget>() {
        let handle = client.clone();
        let on_online = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            if handle.wake().is_err() {
                tracing::debug!("online: the client's task is gone");
            }
        });
        listeners.push((global, "online", on_online));
    }

    if let Some(document) = global_property::<web_sys::Document>("document") {
        let handle = client.clone();
        let visible_doc = document.clone();
        let on_visible = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            if !visible_doc.hidden() && handle.wake().is_err() {
                tracing::debug!("visibilitychange: the client's task is gone");
            }
        });
        listeners.push((document.into(), "visibilitychange", on_visible));
    }

    listeners.retain(|(target, name, callback)| {
        match target.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(event = *name, error = %js_error(&e), "could not listen");
                false
            }
        }
    });
    LifecycleGuard { listeners }
}

impl Drop for LifecycleGuard {
    fn drop(&mut self) {
        for (target, name, callback) in self.listeners.drain(..) {
            let _ =
                target.remove_event_listener_with_callback(name, callback.as_ref().unchecked_ref());
        }
    }
}
