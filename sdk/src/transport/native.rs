//! The native platform (feature `native`): tokio for the task and the timer,
//! tokio-tungstenite over TCP (`ws://`) and, with the default feature `tls`, rustls
//! (`wss://`). Implements the three traits of [`crate::client::platform`]; no rule of
//! the protocol lives here.

use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::platform::{
    BoxFuture, Connect, ConnectError, Socket, SocketEvent, Spawn, Timer,
};
use crate::client::{Client, ClientBuilder, ClientError};
use crate::core::{FrameText, Instant};
use crate::protocol::SUBPROTOCOL;

/// Largest frame we accept from the server. The server's own limit for client frames is
/// 64 KiB; its frames (drafts with content, replays) may be larger, so allow more.
const MAX_INCOMING_BYTES: usize = 1 << 20;

/// Spawns on the current tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSpawn;

impl Spawn for TokioSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
}

/// `std::time::Instant` mapped onto the core's clock, and `tokio::time::sleep`.
///
/// On Linux `std::time::Instant` does not advance while the machine is suspended; a
/// server or desktop process rarely is, and the core copes with a clock that jumps. The
/// mobile bindings bring a clock that counts suspended time.
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    origin: std::time::Instant,
}

impl TokioTimer {
    /// A timer whose origin is now.
    pub fn new() -> Self {
        TokioTimer {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for TokioTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }

    fn epoch_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, crate::core::time::millis)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // tokio caps deadlines it cannot represent at about 30 years: "never" stays never.
        Box::pin(tokio::time::sleep(duration))
    }
}

// `build` lives with the platform it spawns on, so that `client` never names a transport:
// the dependency runs one way, transport -> client.
impl ClientBuilder {
    /// Spawn the client's task on the current tokio runtime (feature `native`). It does
    /// not connect until [`Client::connect`].
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn build(self) -> Result<Client, ClientError> {
        self.build_with(TokioSpawn, TokioTimer::new(), Connector, entropy())
    }
}

/// 64 bits from the OS: `RandomState` keys come from the OS generator, fresh per
/// instance, so no RNG crate with its own entropy plumbing is needed.
pub fn entropy() -> u64 {
    RandomState::new().hash_one(0x5EED_u64)
}

/// Opens tokio-tungstenite sockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connector;

impl Connect for Connector {
    fn connect(
        &self,
        url: &str,
        token: &str,
    ) -> BoxFuture<'static, Result<Box<dyn Socket>, ConnectError>> {
        let (url, token) = (url.to_owned(), token.to_owned());
        Box::pin(async move {
            let socket = connect(&url, &token).await?;
            Ok(Box::new(NativeSocket(socket)) as Box<dyn Socket>)
        })
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open tokio-tungstenite socket.
pub struct NativeSocket(Ws);

impl Stream for NativeSocket {
    type Item = SocketEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SocketEvent>> {
        loop {
            let event = match std::task::ready!(self.0.poll_next_unpin(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(WsMessage::Text(text))) => SocketEvent::Text(text.as_str().to_owned()),
                Some(Ok(WsMessage::Close(frame))) => match frame {
                    Some(f) => SocketEvent::Closed {
                        code: u16::from(f.code),
                        reason: f.reason.as_str().to_owned(),
                    },
                    None => SocketEvent::Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                },
                Some(Ok(WsMessage::Binary(bytes))) => {
                    tracing::warn!(
                        len = bytes.len(),
                        "binary frame ignored: pitchey-v1 is text only"
                    );
                    continue;
                }
                // Control frames are answered by tungstenite itself.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                    continue;
                }
                Some(Err(e)) => SocketEvent::Failed(e.to_string()),
            };
            return Poll::Ready(Some(event));
        }
    }
}

impl Socket for NativeSocket {
    fn send(&mut self, frames: Vec<FrameText>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // Queue them all, then one flush: one syscall for a burst, not one per frame.
            for text in frames {
                // The outbox's own allocation, not a copy of it: the buffer only holds a
                // reference until tungstenite has framed it.
                let text =
                    Utf8Bytes::try_from(Bytes::from_owner(text)).map_err(|e| e.to_string())?;
                self.0
                    .feed(WsMessage::Text(text))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            self.0.flush().await.map_err(|e| e.to_string())
        })
    }

    fn close(&mut self, code: u16, reason: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let frame = CloseFrame {
                code: WsCloseCode::from(code),
                reason: reason.into(),
            };
            let _ = self.0.close(Some(frame)).await;
        })
    }
}

/// Open a WebSocket to `url` with subprotocol `pitchey-v1` and the token as a bearer
/// header (the URL carries it too, for servers that only read the query).
async fn connect(url: &str, token: &str) -> Result<Ws, ConnectError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::Failed(format!("invalid request: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ConnectError::Failed("token is not a valid header value".into()))?;
    headers.insert(header::AUTHORIZATION, bearer);

    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(MAX_INCOMING_BYTES))
        .max_frame_size(Some(MAX_INCOMING_BYTES));
    #[cfg(feature = "tls")]
    let result = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        tls_connector(),
    )
    .await;
    #[cfg(not(feature = "tls"))]
    let result = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await;
    match result {
        Ok((socket, _response)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(ConnectError::Refused {
            status: response.status().as_u16(),
        }),
        Err(e) => Err(ConnectError::Failed(e.to_string())),
    }
}

/// rustls with the `ring` provider and the webpki roots, built once. The provider is
/// passed explicitly: a library must not install a process-wide default behind the
/// app's back.
#[cfg(feature = "tls")]
fn tls_connector() -> Option<tokio_tungstenite::Connector> {
    use std::sync::{Arc, OnceLock};
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(builder) => Some(Arc::new(
                builder.with_root_certificates(roots).with_no_client_auth(),
            )),
            Err(e) => {
                tracing::error!(error = %e, "rustls has no usable protocol version; wss:// disabled");
                None
            }
        }
    });
    config.clone().map(tokio_tungstenite::Connector::Rustls)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wss_urls_are_supported() {
        // Nothing listens on port 1: the attempt must fail on the network, not because
        // `wss://` is unsupported.
        let err = connect("wss://127.0.0.1:1/ws", "t")
            .await
            .map(|_| ())
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.to_lowercase().contains("tls"), "{text}");
        assert!(matches!(err, ConnectError::Failed(_)), "{err:?}");
    }

    #[test]
    fn no_process_wide_crypto_provider_is_installed() {
        assert!(tls_connector().is_some());
        assert!(
            rustls::crypto::CryptoProvider::get_default().is_none(),
            "a library must not install a default provider"
        );
    }

    #[test]
    fn entropy_differs_between_calls() {
        assert_ne!(entropy(), entropy());
    }
}
