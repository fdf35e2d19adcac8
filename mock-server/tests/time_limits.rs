//! Time a client can make the server wait: the request head deadline, the shutdown grace,
//! and keepalive pings.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Read until the server closes the connection; how long that took (panics after `limit`).
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open past {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_connection_without_a_request_head_in_time_is_closed() {
    let server = server_with(|c| c.limits.header_timeout_secs = 1).await;
    let mut silent = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let mut trickle = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    trickle
        .write_all(b"GET /api/ws/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_within(&mut silent, Duration::from_secs(4)).await;
    closed_within(&mut trickle, Duration::from_secs(4)).await;
    // A prompt request is answered as ever.
    let (status, _) = http(&server, "GET", "/api/ws/health", None, None).await;
    assert_eq!(status, 200);
    let stats = admin_stats(&server).await;
    assert!(
        stats["limits"]["headerTimeouts"].as_u64().unwrap() >= 2,
        "{stats}"
    );
}

#[tokio::test]
async fn sigterm_exits_within_the_shutdown_grace_whatever_clients_do() {
    let (mut child, addr) = spawn_binary(
        &["--port", "0", "--shutdown-grace-secs", "2"],
        &[("JWT_SECRET", "grace-test"), ("RUST_LOG", "warn")],
    )
    .await;
    let token =
        pitchey_mock_server::mint_token("grace-test", 7, false, Duration::from_secs(60)).unwrap();
    // A request whose body never comes, a request head that trickles, and a WebSocket
    // client that reads nothing (so never answers the close).
    let mut body = tokio::net::TcpStream::connect(addr).await.unwrap();
    body.write_all(
        format!(
            "POST /api/ws/notify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"userId\":"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = tokio::net::TcpStream::connect(addr).await.unwrap();
    head.write_all(b"GET /api/ws/health HTTP/1.1\r\n")
        .await
        .unwrap();
    let _deaf = common::raw::open(addr, &token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let took = start.elapsed();
    assert!(exit.success(), "exit status {exit}");
    assert!(took < Duration::from_millis(3500), "shutdown took {took:?}");
}

#[tokio::test]
async fn a_listen_only_client_that_answers_pings_outlives_the_session_timeout() {
    let server = server_with(|c| {
        c.heartbeat_ms = 200;
        c.session_timeout_ms = 700;
    })
    .await;
    let (mut ws, _) = connect(&server, 7).await;
    let until = Instant::now() + Duration::from_millis(2000);
    let mut pings = 0;
    while let Ok(msg) = tokio::time::timeout_at(until.into(), ws.next()).await {
        // tungstenite answers each ping with a pong as it reads, as browsers do.
        match msg {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 5, "pings {pings}");
    send(&mut ws, json!({"type": "ping", "data": {"ts": 1}})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn a_peer_that_misses_two_pings_is_closed() {
    let server = server_with(|c| {
        c.heartbeat_ms = 200;
        c.session_timeout_ms = 30_000;
    })
    .await;
    let mut deaf = common::raw::open(server.local_addr(), &server.token(7)).await;
    let start = Instant::now();
    let code = tokio::time::timeout(Duration::from_secs(5), common::raw::close_code(&mut deaf))
        .await
        .expect("closed in time");
    assert_eq!(code, Some(1001));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["pingsUnanswered"], 1);
}
