//! The tokio driver: owns the socket, the clock and the core, and does what the core asks.
//! No protocol decision is made here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use super::TokenProvider;
use crate::core::{Action, Connection, Event, Input, Instant};
use crate::transport::native::{self, Socket, TransportError};

/// How long one write may block the driver. A server that stops reading fills the TCP
/// buffer and would otherwise stall the loop, and with it the heartbeat that is there to
/// notice exactly that; a stalled write is a failed link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A call into the core, run on the driver task.
pub(super) type Call = Box<dyn FnOnce(&mut Core, Instant) + Send>;

/// What the driver task owns besides the socket.
pub(super) struct Core {
    pub(super) conn: Connection,
}

/// The monotonic clock, mapped onto the core's time.
#[derive(Clone, Copy)]
pub(super) struct Clock(std::time::Instant);

impl Clock {
    pub(super) fn new() -> Self {
        Clock(std::time::Instant::now())
    }
    pub(super) fn now(self) -> Instant {
        Instant::from_duration(self.0.elapsed())
    }
    /// `None` for a deadline too far to represent (a config of `Duration::MAX` = never).
    fn deadline(self, at: Instant) -> Option<tokio::time::Instant> {
        self.0
            .checked_add(at.since_origin())
            .map(tokio::time::Instant::from_std)
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<Socket, TransportError>> + Send>>;

/// What woke the driver up. Lives for one loop turn on the stack, so the socket variant
/// being large costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Call(Option<Call>),
    Opened(Result<Socket, TransportError>),
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Timer,
}

pub(super) struct Driver {
    pub(super) core: Core,
    pub(super) clock: Clock,
    pub(super) calls: mpsc::UnboundedReceiver<Call>,
    /// To post the token provider's answer back to ourselves without keeping the
    /// channel open (the driver ends when every `Client` handle is gone).
    pub(super) calls_tx: mpsc::WeakUnboundedSender<Call>,
    pub(super) events: broadcast::Sender<Arc<Event>>,
    pub(super) state: watch::Sender<crate::core::State>,
    pub(super) token_provider: Option<Arc<TokenProvider>>,
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut socket: Option<Socket> = None;
        let mut connecting: Option<Connecting> = None;
        let mut client_gone = false;
        loop {
            self.perform_actions(&mut socket, &mut connecting).await;
            self.publish_events();
            if client_gone && socket.is_none() && connecting.is_none() {
                break;
            }
            let deadline = self.core.conn.poll_timeout();
            let wake = tokio::select! {
                call = self.calls.recv(), if !client_gone => Wake::Call(call),
                opened = poll_connecting(&mut connecting), if connecting.is_some() => Wake::Opened(opened),
                frame = read_frame(&mut socket), if socket.is_some() => Wake::Frame(frame),
                () = sleep_until(self.clock, deadline) => Wake::Timer,
            };
            let now = self.clock.now();
            match wake {
                Wake::Call(Some(call)) => call(&mut self.core, now),
                Wake::Call(None) => {
                    // Every Client handle is gone: close politely, then stop.
                    client_gone = true;
                    self.core.conn.disconnect(now);
                }
                Wake::Opened(result) => {
                    connecting = None;
                    match result {
                        Ok(s) => {
                            socket = Some(s);
                            self.core.conn.handle(Input::Opened, now);
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "connect attempt failed");
                            self.core.conn.handle(e.into_input(), now);
                        }
                    }
                }
                Wake::Frame(frame) => {
                    if let Some(input) = frame_input(frame) {
                        if matches!(input, Input::Closed { .. } | Input::Failed { .. }) {
                            socket = None;
                        }
                        self.core.conn.handle(input, now);
                    }
                }
                Wake::Timer => self.core.conn.handle_timeout(now),
            }
        }
        tracing::debug!("driver stopped");
    }

    async fn perform_actions(
        &mut self,
        socket: &mut Option<Socket>,
        connecting: &mut Option<Connecting>,
    ) {
        while let Some(action) = self.core.conn.poll_action() {
            match action {
                Action::Connect { url, token } => {
                    // A new attempt supersedes any old socket or attempt.
                    *socket = None;
                    *connecting =
                        Some(Box::pin(async move { native::connect(&url, &token).await }));
                }
                Action::Send(text) => {
                    let Some(ws) = socket.as_mut() else {
                        tracing::warn!(
                            "core asked to send with no open socket; frame dropped by the driver"
                        );
                        continue;
                    };
                    let failure = match timeout(WRITE_TIMEOUT, ws.send(WsMessage::text(text))).await
                    {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some(format!("write stalled for {WRITE_TIMEOUT:?}")),
                    };
                    if let Some(reason) = failure {
                        *socket = None;
                        let now = self.clock.now();
                        self.core.conn.handle(Input::Failed { reason }, now);
                    }
                }
                Action::Close { code, reason } => {
                    *connecting = None;
                    if let Some(mut ws) = socket.take() {
                        let frame = CloseFrame {
                            code: WsCloseCode::from(code),
                            reason: reason.into(),
                        };
                        // Best effort: the peer may already be gone, or not reading.
                        let _ = timeout(WRITE_TIMEOUT, ws.close(Some(frame))).await;
                    }
                }
            }
        }
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.core.conn.poll_event() {
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
        tokio::spawn(async move {
            let token = provider().await;
            let Some(calls) = calls.upgrade() else { return };
            let call: Call = Box::new(move |core, now| match token {
                Some(token) => core.conn.set_token(token, now),
                None => core.conn.token_unavailable(now),
            });
            let _ = calls.send(call);
        });
    }
}

async fn poll_connecting(connecting: &mut Option<Connecting>) -> Result<Socket, TransportError> {
    match connecting {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

async fn read_frame(
    socket: &mut Option<Socket>,
) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(clock: Clock, deadline: Option<Instant>) {
    match deadline {
        Some(at) => match clock.deadline(at) {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Map a socket read to a core input; `None` for frames the core does not care about.
fn frame_input(
    frame: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Input> {
    match frame {
        Some(Ok(WsMessage::Text(text))) => Some(Input::Text(text.as_str().to_owned())),
        Some(Ok(WsMessage::Close(frame))) => Some(match frame {
            Some(f) => Input::Closed {
                code: u16::from(f.code),
                reason: f.reason.as_str().to_owned(),
            },
            None => Input::Closed {
                code: 1005,
                reason: String::new(),
            },
        }),
        Some(Ok(WsMessage::Binary(bytes))) => {
            tracing::warn!(
                len = bytes.len(),
                "binary frame ignored: pitchey-v1 is text only"
            );
            None
        }
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => None,
        Some(Err(e)) => Some(Input::Failed {
            reason: e.to_string(),
        }),
        None => Some(Input::Closed {
            code: 1006,
            reason: "connection closed without a close frame".into(),
        }),
    }
}
