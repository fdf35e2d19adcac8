//! The driver task: owns the core, the socket and the timer, and does what the core asks.
//! Written once for every platform over the traits of [`platform`](super::platform); no
//! protocol decision is made here.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};

use super::TokenProvider;
use super::platform::{BoxFuture, Connect, ConnectError, Socket, SocketEvent, Spawn, Timer};
use crate::core::{Action, AttemptId, Connection, Event, Input, Instant};

/// How long one write may block the driver. A server that stops reading fills the TCP
/// buffer and would otherwise stall the loop, and with it the heartbeat that is there to
/// notice exactly that; a stalled write is a failed link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A call into the core, run on the driver task.
#[cfg(not(target_arch = "wasm32"))]
pub(super) type Call = Box<dyn FnOnce(&mut Connection, Instant) + Send>;
/// A call into the core, run on the driver task.
#[cfg(target_arch = "wasm32")]
pub(super) type Call = Box<dyn FnOnce(&mut Connection, Instant)>;

/// The platform's pieces, shared by the driver and the client handles.
pub(super) struct Platform {
    pub(super) spawn: Box<dyn Spawn>,
    pub(super) timer: Arc<dyn Timer>,
    pub(super) connect: Box<dyn Connect>,
}

type Connecting = BoxFuture<'static, Result<Box<dyn Socket>, ConnectError>>;

/// What woke the driver up.
enum Wake {
    Call(Option<Call>),
    Opened(AttemptId, Result<Box<dyn Socket>, ConnectError>),
    Socket(AttemptId, Option<SocketEvent>),
    Timer,
}

pub(super) struct Driver {
    pub(super) conn: Connection,
    pub(super) platform: Arc<Platform>,
    pub(super) calls: mpsc::UnboundedReceiver<Call>,
    /// To post the token provider's answer back to ourselves without keeping the
    /// channel open (the driver ends when every `Client` handle is gone).
    pub(super) calls_tx: mpsc::WeakUnboundedSender<Call>,
    pub(super) events: broadcast::Sender<Arc<Event>>,
    pub(super) state: watch::Sender<crate::core::State>,
    pub(super) token_provider: Option<Arc<TokenProvider>>,
}

/// The socket or attempt in progress, with the attempt it belongs to.
#[derive(Default)]
struct Link {
    socket: Option<(AttemptId, Box<dyn Socket>)>,
    connecting: Option<(AttemptId, Connecting)>,
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut link = Link::default();
        let mut client_gone = false;
        // The timer in progress and the deadline it was set for.
        let mut sleep: Option<(Instant, BoxFuture<'static, ()>)> = None;
        let timer = self.platform.timer.clone();
        self.conn.set_wall_clock(timer.epoch_ms(), timer.now());
        loop {
            self.perform_actions(&mut link).await;
            self.publish_events();
            if client_gone && link.socket.is_none() && link.connecting.is_none() {
                break;
            }
            // A timer is re-armed only for an earlier deadline: one that fires before a
            // later deadline just wakes the core early (harmless), and re-arming on every
            // change (each ack moves the ack deadline) would churn the platform's timers.
            match (self.conn.poll_timeout(), &sleep) {
                (Some(at), Some((armed, _))) if *armed <= at => {}
                (Some(at), _) => {
                    let wait = at.saturating_duration_since(timer.now());
                    sleep = Some((at, timer.sleep(wait)));
                }
                (None, _) => sleep = None,
            }
            let wake = poll_fn(|cx| {
                if !client_gone && let Poll::Ready(call) = self.calls.poll_recv(cx) {
                    return Poll::Ready(Wake::Call(call));
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
                Wake::Call(Some(call)) => {
                    call(&mut self.conn, now);
                    // Let the callers this call just answered post their next call, then
                    // take every call queued: a burst of sends becomes one write (one
                    // flush, one syscall) instead of one write per message.
                    yield_once().await;
                    while let Ok(call) = self.calls.try_recv() {
                        call(&mut self.conn, timer.now());
                    }
                }
                Wake::Call(None) => {
                    // Every Client handle is gone: close politely, then stop.
                    client_gone = true;
                    self.conn.disconnect(now);
                }
                Wake::Opened(attempt, result) => {
                    link.connecting = None;
                    match result {
                        Ok(socket) => {
                            link.socket = Some((attempt, socket));
                            self.conn.handle(attempt, Input::Opened, now);
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "connect attempt failed");
                            self.conn.handle(attempt, e.into_input(), now);
                        }
                    }
                }
                Wake::Socket(attempt, event) => {
                    let input = match event {
                        Some(event) => event.into_input(),
                        None => Input::Closed {
                            code: 1006,
                            reason: "connection closed without a close frame".into(),
                        },
                    };
                    if matches!(input, Input::Closed { .. } | Input::Failed { .. }) {
                        link.socket = None;
                    }
                    self.conn.handle(attempt, input, now);
                }
                Wake::Timer => {
                    sleep = None;
                    // Re-read the wall clock: the device may have slept since the last one.
                    self.conn.set_wall_clock(timer.epoch_ms(), now);
                    self.conn.handle_timeout(now);
                }
            }
        }
        tracing::debug!("driver stopped");
    }

    async fn perform_actions(&mut self, link: &mut Link) {
        let mut batch: Vec<String> = Vec::new();
        loop {
            let action = self.conn.poll_action();
            // Consecutive sends go out as one write (one flush, one confirmation).
            if let Some(Action::Send(text)) = action {
                batch.push(text);
                continue;
            }
            if !batch.is_empty() {
                self.write(link, std::mem::take(&mut batch)).await;
            }
            let Some(action) = action else { return };
            match action {
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
                Action::Send(_) => unreachable!("batched above"),
            }
        }
    }

    /// Write `frames` on the current socket and tell the core how it went.
    async fn write(&mut self, link: &mut Link, frames: Vec<String>) {
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
            None => Err(format!("write stalled for {WRITE_TIMEOUT:?}")),
        };
        let now = timer.now();
        match result {
            Ok(()) => self.conn.handle(attempt, Input::Written(n), now),
            Err(reason) => {
                link.socket = None;
                self.conn.handle(attempt, Input::Failed { reason }, now);
            }
        }
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match &event {
                Event::StateChanged(state) => {
                    self.state.send_replace(state.clone());
                }
                Event::TokenNeeded => self.ask_for_token(),
                _ => {}
            }
            // No receiver is fine: nobody is listening.
            let _ = self.events.send(Arc::new(event));
        }
    }

    fn ask_for_token(&self) {
        let Some(provider) = self.token_provider.clone() else {
            // No provider: wait for Client::set_token until the core's token timeout.
            return;
        };
        let calls = self.calls_tx.clone();
        self.platform.spawn.spawn(Box::pin(async move {
            let token = provider().await;
            let Some(calls) = calls.upgrade() else { return };
            let call: Call = Box::new(move |conn, now| match token {
                Some(token) => conn.set_token(token, now),
                None => conn.token_unavailable(now),
            });
            let _ = calls.send(call);
        }));
    }
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

/// Pending once, after asking to be polled again: other tasks of the executor run first.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
