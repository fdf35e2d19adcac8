//! The driver task: owns the core, the socket and the timer, and does what the core asks.
//! Written once for every platform over the traits of [`platform`](super::platform); no
//! protocol decision is made here.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, StreamExt};

use super::platform::{BoxFuture, Connect, ConnectError, Socket, SocketEvent, Spawn, Timer};
use super::{TokenProvider, fanout};
use crate::core::{Action, AttemptId, Connection, Event, FrameText, Input, Instant};

/// How long one write may block the driver. A server that stops reading fills the TCP
/// buffer and would otherwise stall the loop, and with it the heartbeat that is there to
/// notice exactly that; a stalled write is a failed link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most inbound frames taken from the socket per wake-up. Frames that are already
/// buffered are handled together, so the writes they allow go out in one flush and the
/// app is woken once for all their events instead of once per frame; the cap keeps a
/// flood of frames from starving the timer and the app's calls.
const MAX_INBOUND_BATCH: usize = 64;

/// What the client handles and the driver task share: the core itself, behind a lock.
///
/// App calls run on the caller's task, under the lock, and return at once (no round trip
/// through the driver task, no allocation per call); they then nudge the driver, which
/// performs the actions and publishes the events. A burst of calls costs one nudge: the
/// flag stays set until the driver has taken the work.
pub(super) struct Shared {
    core: Mutex<Connection>,
    /// Work for the driver (actions, events, a new timer) may be waiting.
    nudged: AtomicBool,
    driver: AtomicWaker,
    /// Every `Client` handle is gone: the driver closes the socket and ends.
    handles_gone: AtomicBool,
    /// The driver task has ended (its runtime shut down, or every handle gone).
    driver_gone: AtomicBool,
    pub(super) timer: Arc<dyn Timer>,
    /// Makes event readers; holds the state last published too.
    pub(super) events: fanout::Subscriber,
}

/// Lock, ignoring poisoning: a panic in an app callback must not wedge the connection.
fn lock(core: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Run `f` on the core now, then nudge the driver. `None` once the driver has ended.
    pub(super) fn with_core<R>(&self, f: impl FnOnce(&mut Connection, Instant) -> R) -> Option<R> {
        if self.driver_gone.load(Ordering::Acquire) {
            return None;
        }
        let r = {
            let mut conn = lock(&self.core);
            f(&mut conn, self.timer.now())
        };
        self.nudge();
        Some(r)
    }

    /// Read the core without waking the driver.
    pub(super) fn read_core<R>(&self, f: impl FnOnce(&Connection) -> R) -> Option<R> {
        if self.driver_gone.load(Ordering::Acquire) {
            return None;
        }
        Some(f(&lock(&self.core)))
    }

    fn nudge(&self) {
        if !self.nudged.swap(true, Ordering::AcqRel) {
            self.driver.wake();
        }
    }

    /// The last `Client` handle was dropped.
    pub(super) fn release(&self) {
        self.handles_gone.store(true, Ordering::Release);
        self.driver.wake();
    }
}

/// The platform's pieces, shared by the driver and the client handles.
pub(super) struct Platform {
    pub(super) spawn: Box<dyn Spawn>,
    pub(super) timer: Arc<dyn Timer>,
    pub(super) connect: Box<dyn Connect>,
}

type Connecting = BoxFuture<'static, Result<Box<dyn Socket>, ConnectError>>;

/// What woke the driver up.
enum Wake {
    Nudged,
    HandlesGone,
    Opened(AttemptId, Result<Box<dyn Socket>, ConnectError>),
    /// The socket of this attempt has an event (`None`: its end).
    Socket(AttemptId, Option<SocketEvent>),
    Timer,
}

pub(super) struct Driver {
    pub(super) shared: Arc<Shared>,
    pub(super) platform: Arc<Platform>,
    pub(super) events: fanout::Sender,
    pub(super) token_provider: Option<Arc<TokenProvider>>,
}

/// The socket or attempt in progress, with the attempt it belongs to.
#[derive(Default)]
struct Link {
    socket: Option<(AttemptId, Box<dyn Socket>)>,
    connecting: Option<(AttemptId, Connecting)>,
}

/// Marks the driver ended however its future ends (finished, or dropped by its runtime).
struct Ended(Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.driver_gone.store(true, Ordering::Release);
    }
}

/// Build the shared state and the driver for `conn`.
// On wasm32 the platform pieces are not `Send`: a page has one thread.
#[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
pub(super) fn new(
    conn: Connection,
    platform: Arc<Platform>,
    event_buffer: usize,
    token_provider: Option<Arc<TokenProvider>>,
) -> (Arc<Shared>, Driver) {
    let events = fanout::Sender::new(event_buffer, conn.state().clone());
    let shared = Arc::new(Shared {
        core: Mutex::new(conn),
        nudged: AtomicBool::new(false),
        driver: AtomicWaker::new(),
        handles_gone: AtomicBool::new(false),
        driver_gone: AtomicBool::new(false),
        timer: platform.timer.clone(),
        events: events.subscriber(),
    });
    let driver = Driver {
        shared: shared.clone(),
        platform,
        events,
        token_provider,
    };
    (shared, driver)
}

impl Driver {
    fn core(&self) -> MutexGuard<'_, Connection> {
        lock(&self.shared.core)
    }

    pub(super) async fn run(mut self) {
        let _ended = Ended(self.shared.clone());
        let mut link = Link::default();
        let mut closing = false;
        // The timer in progress and the deadline it was set for.
        let mut sleep: Option<(Instant, BoxFuture<'static, ()>)> = None;
        let timer = self.platform.timer.clone();
        {
            let now = timer.now();
            self.core().set_wall_clock(timer.epoch_ms(), now);
        }
        loop {
            // Do what the core asks until it asks nothing more, then tell the app.
            loop {
                let (actions, events) = {
                    let mut core = self.core();
                    // Exact-size: one allocation each, no growing (a `realloc` takes the
                    // allocator's lock).
                    let actions: Vec<Action> = core.drain_actions().collect();
                    let events: Vec<Event> = core.drain_events().collect();
                    (actions, events)
                };
                if actions.is_empty() && events.is_empty() {
                    break;
                }
                self.perform_actions(&mut link, actions).await;
                self.publish_events(events);
            }
            if closing && link.socket.is_none() && link.connecting.is_none() {
                break;
            }
            // A timer is re-armed only for an earlier deadline: one that fires before a
            // later deadline just wakes the core early (harmless), and re-arming on every
            // change (each ack moves the ack deadline) would churn the platform's timers.
            let deadline = self.core().poll_timeout();
            match (deadline, &sleep) {
                (Some(at), Some((armed, _))) if *armed <= at => {}
                (Some(at), _) => {
                    let wait = at.saturating_duration_since(timer.now());
                    sleep = Some((at, timer.sleep(wait)));
                }
                (None, _) => sleep = None,
            }
            let shared = self.shared.clone();
            let wake = poll_fn(|cx| {
                shared.driver.register(cx.waker());
                if !closing && shared.handles_gone.load(Ordering::Acquire) {
                    return Poll::Ready(Wake::HandlesGone);
                }
                if shared.nudged.swap(false, Ordering::AcqRel) {
                    return Poll::Ready(Wake::Nudged);
                }
                if let Some((attempt, opening)) = &mut link.connecting
                    && let Poll::Ready(result) = opening.poll_unpin(cx)
                {
                    return Poll::Ready(Wake::Opened(*attempt, result));
                }
                if let Some((attempt, socket)) = &mut link.socket
                    && let Poll::Ready(event) = socket.poll_next_unpin(cx)
                {
                    return Poll::Ready(Wake::Socket(*attempt, event));
                }
                if let Some((_, wait)) = &mut sleep
                    && wait.poll_unpin(cx).is_ready()
                {
                    return Poll::Ready(Wake::Timer);
                }
                Poll::Pending
            })
            .await;
            let now = timer.now();
            match wake {
                // The app's calls already ran; their actions are taken at the loop's top.
                Wake::Nudged => {}
                Wake::HandlesGone => {
                    // Every Client handle is gone: close politely, then stop.
                    closing = true;
                    self.core().disconnect(now);
                }
                Wake::Opened(attempt, result) => {
                    link.connecting = None;
                    match result {
                        Ok(socket) => {
                            link.socket = Some((attempt, socket));
                            self.core().handle(attempt, Input::Opened, now);
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "connect attempt failed");
                            self.core().handle(attempt, e.into_input(), now);
                        }
                    }
                }
                Wake::Socket(attempt, first) => {
                    // Every frame already there (up to the cap) is handled under one lock;
                    // the writes and events they cause are taken together at the loop's
                    // top. No buffer: each frame goes to the core as it is read.
                    let mut core = lock(&self.shared.core);
                    let mut next = Some(first);
                    let mut taken = 0;
                    while let Some(event) = next.take() {
                        taken += 1;
                        let input = match event {
                            Some(event) => event.into_input(),
                            None => Input::Closed {
                                code: 1006,
                                reason: "connection closed without a close frame".into(),
                            },
                        };
                        // Nothing comes after a close, a failure or the end.
                        let last = matches!(input, Input::Closed { .. } | Input::Failed { .. });
                        if last {
                            link.socket = None;
                        }
                        core.handle(attempt, input, now);
                        if last || taken >= MAX_INBOUND_BATCH {
                            break;
                        }
                        // Without waiting: the waker this leaves behind is replaced when the
                        // loop polls the socket again before it sleeps.
                        next = link
                            .socket
                            .as_mut()
                            .and_then(|(_, socket)| socket.next().now_or_never());
                    }
                }
                Wake::Timer => {
                    sleep = None;
                    // Re-read the wall clock: the device may have slept since the last one.
                    let mut core = self.core();
                    core.set_wall_clock(timer.epoch_ms(), now);
                    core.handle_timeout(now);
                }
            }
        }
        tracing::debug!("driver stopped");
    }

    async fn perform_actions(&mut self, link: &mut Link, actions: Vec<Action>) {
        let mut batch: Vec<FrameText> = Vec::new();
        let mut actions = actions.into_iter().peekable();
        while let Some(action) = actions.next() {
            match action {
                // Consecutive sends go out as one write (one flush, one confirmation).
                Action::Send(text) => {
                    batch.push(text);
                    if !matches!(actions.peek(), Some(Action::Send(_))) {
                        self.write(link, std::mem::take(&mut batch)).await;
                    }
                }
                Action::Connect {
                    attempt,
                    url,
                    token,
                } => {
                    // A new attempt supersedes any old socket or attempt.
                    link.socket = None;
                    link.connecting = Some((attempt, self.platform.connect.connect(&url, &token)));
                }
                Action::Close {
                    attempt,
                    code,
                    reason,
                } => {
                    if link.connecting.as_ref().is_some_and(|(a, _)| *a == attempt) {
                        link.connecting = None;
                    }
                    if let Some((a, mut socket)) = link.socket.take() {
                        if a == attempt {
                            // Best effort, bounded: the peer may be gone or not reading.
                            let timer = self.platform.timer.clone();
                            let close = socket.close(code, reason);
                            let _ = with_timeout(&*timer, close).await;
                        } else {
                            link.socket = Some((a, socket));
                        }
                    }
                }
            }
        }
    }

    /// Write `frames` on the current socket and tell the core how it went.
    async fn write(&mut self, link: &mut Link, frames: Vec<FrameText>) {
        let Some((attempt, socket)) = link.socket.as_mut() else {
            // No socket (it just closed): the core hears of the close next and sends
            // these again on the next one, as they were never confirmed.
            tracing::debug!(frames = frames.len(), "no socket to write on");
            return;
        };
        let attempt = *attempt;
        let n = frames.len();
        let timer = self.platform.timer.clone();
        let result = match with_timeout(&*timer, socket.send(frames)).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(e),
            // Whole seconds, as `{:?}` of the Duration printed them, without linking
            // `core::fmt` into the browser package for it.
            None => Err(write_stalled()),
        };
        let now = timer.now();
        match result {
            Ok(()) => self.core().handle(attempt, Input::Written(n), now),
            Err(reason) => {
                link.socket = None;
                self.core().handle(attempt, Input::Failed { reason }, now);
            }
        }
    }

    fn publish_events(&mut self, events: Vec<Event>) {
        for _ in events.iter().filter(|e| matches!(e, Event::TokenNeeded)) {
            self.ask_for_token();
        }
        // One lock and one wake per reader for the whole batch; no receiver is fine. A
        // state change among them becomes `Client::state`.
        self.events.send_all(events);
    }

    fn ask_for_token(&self) {
        let Some(provider) = self.token_provider.clone() else {
            // No provider: wait for Client::set_token until the core's token timeout.
            return;
        };
        // Weak: a pending provider call must not keep a dropped client alive.
        let shared = Arc::downgrade(&self.shared);
        self.platform.spawn.spawn(Box::pin(async move {
            let token = provider().await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.with_core(move |conn, now| match token {
                Some(token) => conn.set_token(token, now),
                None => conn.token_unavailable(now),
            });
        }));
    }
}

/// The reason given when a write outlives [`WRITE_TIMEOUT`]: "write stalled for 10s".
fn write_stalled() -> String {
    let mut reason = String::from("write stalled for ");
    crate::core::text::push_decimal(&mut reason, WRITE_TIMEOUT.as_secs());
    reason.push('s');
    reason
}

/// `fut`, or `None` after [`WRITE_TIMEOUT`].
async fn with_timeout<T>(timer: &dyn Timer, fut: BoxFuture<'_, T>) -> Option<T> {
    let mut fut = fut;
    // Most writes complete at once (the socket buffer has room): no timer for those.
    let mut expired: Option<BoxFuture<'static, ()>> = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.poll_unpin(cx) {
            return Poll::Ready(Some(v));
        }
        let expired = expired.get_or_insert_with(|| timer.sleep(WRITE_TIMEOUT));
        if expired.poll_unpin(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
