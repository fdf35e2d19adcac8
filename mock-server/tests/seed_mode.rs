//! Seed-compatible mode: every addition off, as the seed's backend behaves.

mod common;

use common::*;
use serde_json::json;

async fn seed_server() -> pitchey_mock_server::RunningServer {
    server_with(|c| c.seed_compatible = true).await
}

#[tokio::test]
async fn connected_has_no_additions() {
    let server = seed_server().await;
    let (_ws, connected) = connect(&server, 7).await;
    let d = &connected["data"];
    assert_eq!(d["features"], json!([]));
    assert!(d.get("rateLimit").is_none());
    assert!(d.get("resumed").is_none());
    assert_eq!(d["userId"], 7);
    assert_eq!(d["heartbeatMs"], 30000);
}

#[tokio::test]
async fn no_acks_no_seq_and_additions_are_unknown_types() {
    let server = seed_server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "ping", "id": "c-1", "data": {"ts": 5}}),
    )
    .await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "pong", "data": {"ts": 5}})
    );
    for (kind, data) in [
        ("subscribe", json!({"channel": "pitch:1"})),
        ("unsubscribe", json!({"channel": "pitch:1"})),
        ("resume", json!({"lastSeq": 0})),
    ] {
        send(&mut ws, json!({"type": kind, "data": data})).await;
        let e = next_frame(&mut ws).await;
        assert_eq!(e["data"]["code"], "unknown_type", "{kind}");
    }
    notify(&server, 7, "hi").await;
    let n = next_frame(&mut ws).await;
    assert_eq!(n["type"], "notification");
    assert!(n.get("seq").is_none());
    send(
        &mut ws,
        json!({"type": "pitch_view", "id": "v", "data": {"pitchId": 1}}),
    )
    .await;
    // Stats go to everyone (no subscriptions in the seed) and there is no ack.
    assert_eq!(next_frame(&mut ws).await["type"], "pitch_stats_update");
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn drafts_are_last_write_wins_without_versions() {
    let server = seed_server().await;
    let (mut a, _) = connect(&server, 7).await;
    let (mut b, _) = connect(&server, 7).await;
    for (i, base) in [(1, 0), (2, 0)] {
        send(
            &mut a,
            json!({"type": "draft_sync", "id": format!("d{i}"),
            "data": {"draftId": "x", "content": {"n": i}, "baseVersion": base}}),
        )
        .await;
        let s = next_frame(&mut b).await;
        assert_eq!(s["type"], "draft_sync");
        assert_eq!(s["data"]["content"]["n"], i);
        assert!(s["data"].get("version").is_none());
        assert!(s.get("seq").is_none());
    }
    assert!(
        frames_before_pong(&mut a).await.is_empty(),
        "no ack, no conflict"
    );
}

#[tokio::test]
async fn typing_goes_to_every_other_user() {
    let server = seed_server().await;
    let (mut typist, _) = connect(&server, 1).await;
    let (mut other, _) = connect(&server, 2).await;
    send(
        &mut typist,
        json!({"type": "typing", "data": {"conversationId": 12, "isTyping": true}}),
    )
    .await;
    let t = next_frame(&mut other).await;
    assert_eq!(t["type"], "user_typing");
    assert_eq!(t["data"]["userId"], 1);
    assert!(frames_before_pong(&mut typist).await.is_empty());
}

#[tokio::test]
async fn rate_limited_has_no_retry_after() {
    let server = server_with(|c| {
        c.seed_compatible = true;
        c.rate_limit.max_messages = 1;
        c.rate_limit.refill_rate = 0.01;
    })
    .await;
    let (mut ws, _) = connect(&server, 7).await;
    for _ in 0..2 {
        send(
            &mut ws,
            json!({"type": "typing", "data": {"conversationId": 1, "isTyping": true}}),
        )
        .await;
    }
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "rate_limited");
    assert!(e["data"].get("retryAfterMs").is_none());
}

#[tokio::test]
async fn offline_queue_still_works() {
    let server = seed_server().await;
    notify(&server, 7, "queued").await;
    let (mut ws, _) = connect(&server, 7).await;
    assert_eq!(next_frame(&mut ws).await["data"]["title"], "queued");
}
