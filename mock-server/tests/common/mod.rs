//! Shared helpers: start a server, connect real WebSocket clients, read frames with a
//! generous timeout, and speak plain HTTP/1.1 over a TcpStream.

#![allow(dead_code)] // each test binary uses its own subset

pub mod raw;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pitchey_mock_server::{RunningServer, ServerConfig, start};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// A client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for a frame that should come. Only ever a limit, never an assertion.
pub const WAIT: Duration = Duration::from_secs(5);

pub async fn server() -> RunningServer {
    server_with(|_| {}).await
}

pub async fn server_with(f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig::for_tests();
    f(&mut config);
    start(config).await.expect("server starts")
}

/// Connect as `user` and return the socket and the `connected` frame.
pub async fn connect(server: &RunningServer, user: u64) -> (Ws, Value) {
    connect_token(server, &server.token(user)).await
}

pub async fn connect_token(server: &RunningServer, token: &str) -> (Ws, Value) {
    let url = format!("{}?token={}", server.ws_url(), token);
    connect_url(&url).await
}

pub async fn connect_url(url: &str) -> (Ws, Value) {
    let (mut ws, _) = connect_async(url).await.expect("websocket connects");
    let first = next_frame(&mut ws).await;
    assert_eq!(first["type"], "connected", "first frame: {first}");
    (ws, first)
}

/// Try to connect; the HTTP status of a refused upgrade.
pub async fn refused_status(request: impl IntoClientRequest + Unpin) -> u16 {
    match connect_async(request).await {
        Ok(_) => panic!("connection was accepted"),
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The next text frame as JSON (panics on timeout, close, or a non-text frame).
pub async fn next_frame(ws: &mut Ws) -> Value {
    next_frame_within(ws, WAIT).await
}

pub async fn next_frame_within(ws: &mut Ws, wait: Duration) -> Value {
    loop {
        let msg = tokio::time::timeout(wait, ws.next())
            .await
            .expect("a frame within the timeout")
            .expect("connection still open")
            .expect("no websocket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Skip frames until one of type `kind`.
pub async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = next_frame(ws).await;
        if f["type"] == kind {
            return f;
        }
    }
}

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// Read until the close frame; returns (code, reason) and the text frames seen before it.
pub async fn expect_close(ws: &mut Ws) -> (u16, String, Vec<Value>) {
    let mut frames = Vec::new();
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close within the timeout");
        match msg {
            Some(Ok(Message::Text(t))) => {
                frames.push(serde_json::from_str(t.as_str()).expect("JSON frame"))
            }
            Some(Ok(Message::Close(c))) => {
                // Keep polling so that tungstenite flushes its close reply and the server's
                // close handshake completes at once.
                let _ =
                    tokio::time::timeout(WAIT, async { while ws.next().await.is_some() {} }).await;
                return match c {
                    Some(c) => (u16::from(c.code), c.reason.to_string(), frames),
                    None => (1005, String::new(), frames),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("error before close: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

/// A barrier: ping and collect every frame that arrives before the pong. Used to show that
/// nothing unexpected was delivered.
pub async fn frames_before_pong(ws: &mut Ws) -> Vec<Value> {
    send(ws, json!({"type": "ping", "data": {"ts": 424242}})).await;
    let mut seen = Vec::new();
    loop {
        let f = next_frame(ws).await;
        if f["type"] == "pong" && f["data"]["ts"] == 424242 {
            return seen;
        }
        seen.push(f);
    }
}

/// A plain HTTP/1.1 request; returns the status and the JSON body (`Null` when not JSON).
pub async fn http(
    server: &RunningServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("tcp connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.local_addr(),
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream
        .write_all(req.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response within the timeout")
        .expect("read response");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// `POST /api/ws/notify` for `user` with a small notification titled `title`.
/// `GET /api/ws/stats` as an admin (panics on a non-200 answer).
pub async fn admin_stats(server: &RunningServer) -> Value {
    let (status, stats) = http(
        server,
        "GET",
        "/api/ws/stats",
        Some(&server.admin_token(1)),
        None,
    )
    .await;
    assert_eq!(status, 200, "stats: {stats}");
    stats
}

pub async fn notify(server: &RunningServer, user: u64, title: &str) -> Value {
    let (status, body) = http(
        server,
        "POST",
        "/api/ws/notify",
        Some(&server.token(1000)),
        Some(json!({"userId": user, "notification": {"type": "message", "title": title, "message": "hi"}})),
    )
    .await;
    assert_eq!(status, 200, "notify: {body}");
    body
}

/// Start the real server binary with `args` and `env` (stdout piped, stderr dropped) and
/// return it with its address, read from the banner's `WebSocket: ws://ADDR/ws` line.
pub async fn spawn_binary(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pitchey-mock-server"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let addr = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let found = lines.find_map(|l| {
            l.trim()
                .strip_prefix("WebSocket: ws://")
                .and_then(|r| r.split_once('/'))
                .map(|(addr, _)| addr.to_owned())
        });
        // Keep draining so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        found
    })
    .await
    .expect("banner reader")
    .expect("banner with the address");
    (child, addr.parse().expect("a socket address"))
}
