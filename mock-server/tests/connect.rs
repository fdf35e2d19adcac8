//! Connecting: the `connected` frame, heartbeat, session timeout, health.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn connected_frame_announces_session_limits_and_features() {
    let server = server().await;
    let (_ws, connected) = connect(&server, 7).await;
    let d = &connected["data"];
    assert_eq!(d["userId"], 7);
    assert!(d["sessionId"].as_str().is_some_and(|s| s.starts_with("s-")));
    assert_eq!(d["protocol"], "pitchey-v1");
    assert_eq!(d["heartbeatMs"], 30000);
    assert_eq!(
        d["rateLimit"],
        json!({"maxMessages": 120, "windowMs": 60000, "refillRate": 2.0})
    );
    assert_eq!(
        d["features"],
        json!(["ack", "seq", "resume", "subscribe", "draft_conflict"])
    );
    assert_eq!(d["resumed"], false);
}

#[tokio::test]
async fn connected_decodes_with_the_sdk_types() {
    use pitchey_realtime::protocol::{Feature, ServerFrame, ServerMessage};
    let server = server().await;
    let (_ws, connected) = connect(&server, 7).await;
    let frame = ServerFrame::decode(&connected.to_string()).unwrap();
    let ServerMessage::Connected(c) = frame.message else {
        panic!("not connected: {connected}");
    };
    assert!(Feature::ALL.iter().all(|f| c.supports(*f)));
}

#[tokio::test]
async fn ping_gets_pong_with_the_same_ts_and_an_ack_when_it_has_an_id() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "ping", "data": {"ts": 1763900000000u64}}),
    )
    .await;
    let pong = next_frame(&mut ws).await;
    assert_eq!(
        pong,
        json!({"type": "pong", "data": {"ts": 1763900000000u64}})
    );
    send(&mut ws, json!({"type": "ping", "id": "c-1"})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "ack", "data": {"id": "c-1"}})
    );
}

#[tokio::test]
async fn silent_session_is_closed_after_the_timeout() {
    let server = server_with(|c| c.session_timeout_ms = 300).await;
    let (mut quiet, _) = connect(&server, 1).await;
    let (code, reason, frames) = expect_close(&mut quiet).await;
    assert_eq!(code, 1001);
    assert_eq!(reason, "session timeout");
    assert_eq!(frames[0]["type"], "disconnected");
}

#[tokio::test]
async fn a_session_that_pings_is_kept() {
    let server = server_with(|c| c.session_timeout_ms = 1000).await;
    let (mut chatty, _) = connect(&server, 2).await;
    // 12 pings 100 ms apart span longer than the timeout.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&mut chatty, json!({"type": "ping"})).await;
        assert_eq!(next_frame(&mut chatty).await["type"], "pong");
    }
}

#[tokio::test]
async fn subprotocol_is_echoed() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = server().await;
    let mut req = format!("{}?token={}", server.ws_url(), server.token(1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "pitchey-v1".parse().unwrap());
    let (_ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "pitchey-v1");
}
