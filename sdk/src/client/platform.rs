//! What the [`Client`](super::Client) needs from its host: three small traits.
//!
//! The client's behaviour (the driver loop over the core, token refresh, write timeouts,
//! ack matching, subscriptions, drafts) is written once, over these traits, with nothing
//! but `std` futures and runtime-free channels. Each platform supplies them:
//!
//! | trait | tokio (`transport::native`) | browser (`transport::web`) |
//! | --- | --- | --- |
//! | [`Spawn`] | `tokio::spawn` | `wasm_bindgen_futures::spawn_local` |
//! | [`Timer`] | `tokio::time::sleep`, `std::time::Instant` | `gloo-timers`, `performance.now()` |
//! | [`Connect`] / [`Socket`] | tokio-tungstenite | `web_sys::WebSocket` |
//!
//! An impl holds no rule of the protocol: it reports what happened ([`SocketEvent`],
//! [`ConnectError`]) and the core decides.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;

use crate::core::{FrameText, Input, Instant};

/// `Send` on native targets, nothing on `wasm32` (browser futures and JS values are not
/// `Send`, and a browser page has one thread).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` on native targets, nothing on `wasm32` (browser futures and JS values are not
/// `Send`, and a browser page has one thread).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` on native targets, nothing on `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` on native targets, nothing on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed future: `Send` on native targets, not on `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future: `Send` on native targets, not on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs the client's background task.
pub trait Spawn: MaybeSend + MaybeSync + 'static {
    /// Run `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
}

/// The clock and the timer.
pub trait Timer: MaybeSend + MaybeSync + 'static {
    /// Monotonic time, as the core's [`Instant`] from an origin of the timer's choosing.
    /// On platforms whose monotonic clock stops while the device sleeps, prefer one that
    /// does not (Linux/Android `CLOCK_BOOTTIME`, iOS `mach_continuous_time`); the core
    /// handles a clock that jumps forward.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch (pings carry them).
    fn epoch_ms(&self) -> u64;
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Opens sockets.
pub trait Connect: MaybeSend + MaybeSync + 'static {
    /// Open a WebSocket to `url` (it carries `?token=`) with subprotocol `pitchey-v1`;
    /// native transports may also send `Authorization: Bearer {token}`. Completes when
    /// the socket is open (the server's `connected` frame comes through the socket).
    fn connect(
        &self,
        url: &str,
        token: &str,
    ) -> BoxFuture<'static, Result<Box<dyn Socket>, ConnectError>>;
}

/// An open WebSocket: a stream of [`SocketEvent`]s plus writes and a close.
///
/// The stream must be cancel-safe: the driver polls it alongside other sources, and an
/// event must not be lost because another source woke the driver first. When it ends
/// without a [`SocketEvent::Closed`], the driver reports a close 1006.
pub trait Socket: Stream<Item = SocketEvent> + Unpin + MaybeSend {
    /// Write `frames` as text frames, in order; complete when the transport took them
    /// all (an `Err` says the socket is broken; frames not taken are sent again on the
    /// next socket). Each frame is shared with the core's outbox: a transport that can
    /// write from a shared buffer should not copy it.
    fn send(&mut self, frames: Vec<FrameText>) -> BoxFuture<'_, Result<(), String>>;
    /// Close with `code` and `reason`, best effort.
    fn close(&mut self, code: u16, reason: String) -> BoxFuture<'_, ()>;
}

/// What an open socket reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// A text frame.
    Text(String),
    /// The peer closed (1006 when no close frame came).
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The socket failed without a close.
    Failed(String),
}

impl SocketEvent {
    pub(super) fn into_input(self) -> Input {
        match self {
            SocketEvent::Text(text) => Input::Text(text),
            SocketEvent::Closed { code, reason } => Input::Closed { code, reason },
            SocketEvent::Failed(reason) => Input::Failed { reason },
        }
    }
}

/// Why a connection attempt did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server answered the upgrade with this HTTP status (native transports).
    #[error("server refused the WebSocket upgrade with HTTP {status}")]
    Refused {
        /// The status.
        status: u16,
    },
    /// The socket closed before it opened: all a browser sees of a refused upgrade (and of
    /// a server that is down).
    #[error("closed before opening: {code} {reason}")]
    Closed {
        /// Close code (1006 in browsers).
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The network failed (refused TCP connection, DNS, TLS) or the request was invalid.
    #[error("connection failed: {0}")]
    Failed(String),
}

impl ConnectError {
    pub(super) fn into_input(self) -> Input {
        match self {
            ConnectError::Refused { status } => Input::Refused { status },
            ConnectError::Closed { code, reason } => Input::Closed { code, reason },
            ConnectError::Failed(reason) => Input::Failed { reason },
        }
    }
}
