//! Fault injection (admin): drop connections, force rate limits, delay frames, expire a
//! user's tokens, refuse connects.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use pitchey_mock_server::RunningServer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn fault(server: &RunningServer, name: &str, body: Value) -> Value {
    let path = format!("/api/ws/faults/{name}");
    let (status, resp) = http(
        server,
        "POST",
        &path,
        Some(&server.admin_token(99)),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{name}: {resp}");
    resp
}

/// The connection ends without a close frame.
async fn expect_dropped(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("ends within the timeout")
        {
            None | Some(Err(_)) => return,
            Some(Ok(Message::Close(c))) => panic!("got a close frame {c:?}"),
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn faults_are_admin_only() {
    let server = server().await;
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/faults/drop",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/faults/drop",
        Some(&server.token(1)),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/faults/nope",
        Some(&server.admin_token(1)),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn drop_ends_one_users_connections_without_a_close_frame() {
    let server = server().await;
    let (mut victim, _) = connect(&server, 1).await;
    let (mut bystander, _) = connect(&server, 2).await;
    let resp = fault(&server, "drop", json!({"userId": 1})).await;
    assert_eq!(resp["sessions"], 1);
    expect_dropped(&mut victim).await;
    assert!(frames_before_pong(&mut bystander).await.is_empty());
    // Everyone.
    fault(&server, "drop", json!({})).await;
    expect_dropped(&mut bystander).await;
}

#[tokio::test]
async fn forced_rate_limit_refuses_messages_for_a_while() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 1).await;
    fault(&server, "rate-limit", json!({"userId": 1, "ms": 60000})).await;
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "rate_limited");
    assert!(e["data"]["retryAfterMs"].as_u64().unwrap() > 1000);
    send(
        &mut ws,
        json!({"type": "typing", "id": "t", "data": {"conversationId": 1, "isTyping": true}}),
    )
    .await;
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "rate_limited");
    assert_eq!(e["data"]["id"], "t");
    // Short: over once it has passed.
    let (mut short, _) = connect(&server, 2).await;
    fault(&server, "rate-limit", json!({"userId": 2, "ms": 1})).await;
    assert_eq!(next_frame(&mut short).await["data"]["code"], "rate_limited");
    tokio::time::sleep(Duration::from_millis(20)).await;
    send(
        &mut short,
        json!({"type": "typing", "id": "t", "data": {"conversationId": 1, "isTyping": true}}),
    )
    .await;
    assert_eq!(next_frame(&mut short).await["type"], "ack");
}

#[tokio::test]
async fn delay_holds_frames_back() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 1).await;
    fault(&server, "delay", json!({"userId": 1, "ms": 300})).await;
    let t0 = std::time::Instant::now();
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
    // A lower bound only: the delay is at least what was asked.
    assert!(t0.elapsed() >= Duration::from_millis(300));
    fault(&server, "delay", json!({"userId": 1, "ms": 0})).await;
}

#[tokio::test]
async fn expire_token_closes_with_4001_and_refuses_the_old_token() {
    let server = server().await;
    let old = server.token(1);
    let (mut ws, _) = connect_token(&server, &old).await;
    let resp = fault(&server, "expire-token", json!({"userId": 1})).await;
    assert_eq!(resp["sessions"], 1);
    let (code, _, frames) = expect_close(&mut ws).await;
    assert_eq!(code, 4001);
    assert_eq!(frames[0]["data"]["code"], "unauthorized");
    let url = format!("{}?token={}", server.ws_url(), old);
    assert_eq!(refused_status(url).await, 401);
    let (status, _) = http(&server, "GET", "/api/ws/following-online", Some(&old), None).await;
    assert_eq!(status, 401);
    // Other users are unaffected.
    let (_other, _) = connect(&server, 2).await;
    // Tokens issued after the expiry (iat in a later second) work again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_ws, connected) = connect(&server, 1).await;
    assert_eq!(connected["data"]["userId"], 1);
}

#[tokio::test]
async fn refuse_connects_gives_503_for_a_while() {
    let server = server().await;
    fault(&server, "refuse-connects", json!({"ms": 60000})).await;
    let url = format!("{}?token={}", server.ws_url(), server.token(1));
    assert_eq!(refused_status(url).await, 503);
    let server = self::server().await;
    fault(&server, "refuse-connects", json!({"ms": 1})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_ws, _) = connect(&server, 1).await;
}
