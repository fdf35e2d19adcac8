//! The native transport: tokio-tungstenite over TCP (`ws://`) and, with the default
//! feature `tls`, rustls (`wss://`).

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::core::Input;
use crate::protocol::{CloseCode, SUBPROTOCOL};

/// An open socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL or token cannot form a request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The server refused the upgrade with this HTTP status.
    #[error("server refused the WebSocket upgrade with HTTP {0}")]
    Refused(StatusCode),
    /// Network or protocol failure.
    #[error("connection failed: {0}")]
    Io(#[from] tokio_tungstenite::tungstenite::Error),
}

impl TransportError {
    /// The core input this failure stands for. A refused upgrade with 401 is an auth
    /// failure, the same as close code 4001 on an open socket, so that the core asks for a
    /// new token instead of retrying with the one the server just refused.
    pub fn into_input(self) -> Input {
        match self {
            TransportError::Refused(StatusCode::UNAUTHORIZED) => Input::Closed {
                code: CloseCode::Unauthorized.code(),
                reason: "HTTP 401 on upgrade".into(),
            },
            TransportError::Refused(StatusCode::FORBIDDEN) => Input::Closed {
                code: CloseCode::Forbidden.code(),
                reason: "HTTP 403 on upgrade".into(),
            },
            other => Input::Failed {
                reason: other.to_string(),
            },
        }
    }
}

/// Largest frame we accept from the server. The server's own limit for client frames is
/// 64 KiB; its frames (drafts with content, replays) may be larger, so allow more.
const MAX_INCOMING_BYTES: usize = 1 << 20;

/// Open a WebSocket to `url` with subprotocol `pitchey-v1` and the token as a bearer
/// header (the URL carries it too, for servers that only read the query).
pub async fn connect(url: &str, token: &str) -> Result<Socket, TransportError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| TransportError::InvalidRequest(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| TransportError::InvalidRequest("token is not a valid header value".into()))?;
    headers.insert(header::AUTHORIZATION, bearer);

    #[cfg(feature = "tls")]
    {
        // rustls needs one process-wide crypto provider; an app may have installed its own
        // already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(MAX_INCOMING_BYTES))
        .max_frame_size(Some(MAX_INCOMING_BYTES));
    match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
        Ok((socket, _response)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(TransportError::Refused(response.status()))
        }
        Err(e) => Err(TransportError::Io(e)),
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wss_urls_are_supported() {
        // Nothing listens on port 1: the attempt must fail on the network, not because
        // `wss://` is unsupported.
        let err = connect("wss://127.0.0.1:1/ws", "t").await.unwrap_err();
        let text = err.to_string();
        assert!(!text.to_lowercase().contains("tls"), "{text}");
        assert!(matches!(err, TransportError::Io(_)), "{err:?}");
    }
}
