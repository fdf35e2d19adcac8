//! Bad input gets an error and the connection stays open; binary and oversized frames are
//! refused; the server and other sessions are untouched.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn expect_error(ws: &mut Ws, code: &str) -> serde_json::Value {
    let f = next_frame(ws).await;
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(f["data"]["code"], code, "{f}");
    f
}

#[tokio::test]
async fn malformed_json_is_invalid_message_and_the_connection_stays() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send_text(&mut ws, "{not json").await;
    expect_error(&mut ws, "invalid_message").await;
    send_text(&mut ws, "[1,2,3]").await;
    expect_error(&mut ws, "invalid_message").await;
    send_text(&mut ws, r#"{"data":{}}"#).await; // no type
    expect_error(&mut ws, "invalid_message").await;
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn wrong_field_type_is_invalid_message_with_the_id() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "pitch_view", "id": "c-5", "data": {"pitchId": "abc"}}),
    )
    .await;
    let e = expect_error(&mut ws, "invalid_message").await;
    assert_eq!(e["data"]["id"], "c-5");
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("pitch_view")
    );
    send(
        &mut ws,
        json!({"type": "presence_update", "data": {"status": "sleeping"}}),
    )
    .await;
    expect_error(&mut ws, "invalid_message").await;
    send(&mut ws, json!({"type": "draft_sync", "data": {}})).await;
    expect_error(&mut ws, "invalid_message").await;
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn unknown_type_is_unknown_type() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "teleport", "id": "c-9", "data": {"to": "mars"}}),
    )
    .await;
    let e = expect_error(&mut ws, "unknown_type").await;
    assert_eq!(e["data"]["id"], "c-9");
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn binary_frames_are_refused_and_the_connection_stays() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(&mut ws, "invalid_message").await;
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn oversized_frame_closes_that_session_only() {
    let server = server_with(|c| c.max_frame_bytes = 1024).await;
    let (mut bystander, _) = connect(&server, 1).await;
    let (mut ws, _) = connect(&server, 2).await;
    // Just under the limit is fine.
    let fits = json!({"type": "typing", "data": {"conversationId": 1, "isTyping": true, "pad": "x".repeat(900)}});
    send(&mut ws, fits).await;
    assert!(frames_before_pong(&mut ws).await.is_empty());
    let big = json!({"type": "ping", "data": {"pad": "x".repeat(4096)}});
    send(&mut ws, big).await;
    let (code, _, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1009);
    // The server and the other session are fine.
    assert!(frames_before_pong(&mut bystander).await.is_empty());
    let (status, health) = http(&server, "GET", "/api/ws/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let (mut again, _) = connect(&server, 2).await;
    assert!(frames_before_pong(&mut again).await.is_empty());
}

#[tokio::test]
async fn bad_input_is_counted_in_stats() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send_text(&mut ws, "nope").await;
    expect_error(&mut ws, "invalid_message").await;
    let stats = admin_stats(&server).await;
    assert_eq!(stats["invalidMessages"], 1);
}

#[tokio::test]
async fn default_limit_is_64_kib() {
    let server = server().await;
    assert_eq!(server.config().max_frame_bytes, 64 * 1024);
    let (mut ws, _) = connect(&server, 1).await;
    let fits = json!({"type": "ping", "data": {"pad": "x".repeat(60 * 1024)}});
    send(&mut ws, fits).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
    let big = json!({"type": "ping", "data": {"pad": "x".repeat(65 * 1024)}});
    send(&mut ws, big).await;
    let (code, _, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1009);
}
