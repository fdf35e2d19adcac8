//! Typing indicators, pitch views and live stats, dashboard metrics.

mod common;

use common::*;
use serde_json::json;

async fn subscribe(ws: &mut Ws, channel: &str) {
    send(
        ws,
        json!({"type": "subscribe", "id": format!("sub-{channel}"), "data": {"channel": channel}}),
    )
    .await;
    let ack = next_frame(ws).await;
    assert_eq!(
        ack,
        json!({"type": "ack", "data": {"id": format!("sub-{channel}")}})
    );
}

#[tokio::test]
async fn typing_goes_to_conversation_subscribers_but_not_the_typist() {
    let server = server().await;
    let (mut typist, _) = connect(&server, 3).await;
    let (mut listener, _) = connect(&server, 1).await;
    let (mut elsewhere, _) = connect(&server, 2).await;
    subscribe(&mut typist, "conversation:12").await;
    subscribe(&mut listener, "conversation:12").await;
    subscribe(&mut elsewhere, "conversation:13").await;
    send(
        &mut typist,
        json!({"type": "typing", "data": {"conversationId": 12, "isTyping": true}}),
    )
    .await;
    let t = next_frame(&mut listener).await;
    assert_eq!(t["type"], "user_typing");
    assert_eq!(t["data"]["conversationId"], 12);
    assert_eq!(t["data"]["userId"], 3);
    assert_eq!(t["data"]["isTyping"], true);
    // The seed's server-side name is accepted from clients too.
    send(
        &mut typist,
        json!({"type": "user_typing", "data": {"conversationId": 12, "isTyping": false}}),
    )
    .await;
    assert_eq!(next_frame(&mut listener).await["data"]["isTyping"], false);
    assert!(frames_before_pong(&mut typist).await.is_empty());
    assert!(frames_before_pong(&mut elsewhere).await.is_empty());
    // After unsubscribing, nothing more.
    send(
        &mut listener,
        json!({"type": "unsubscribe", "id": "u", "data": {"channel": "conversation:12"}}),
    )
    .await;
    assert_eq!(next_frame(&mut listener).await["type"], "ack");
    send(
        &mut typist,
        json!({"type": "typing", "data": {"conversationId": 12, "isTyping": true}}),
    )
    .await;
    assert!(frames_before_pong(&mut typist).await.is_empty());
    assert!(frames_before_pong(&mut listener).await.is_empty());
}

#[tokio::test]
async fn pitch_views_update_subscribers_and_the_owners_dashboard() {
    let server = server().await;
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/pitches",
        Some(&server.admin_token(99)),
        Some(json!({"pitchId": 42, "ownerId": 1, "views": 100})),
    )
    .await;
    assert_eq!(status, 200);
    let (mut owner, _) = connect(&server, 1).await;
    let (mut fan, _) = connect(&server, 2).await;
    let (mut viewer, _) = connect(&server, 3).await;
    subscribe(&mut fan, "pitch:42").await;
    // Subscribing answers with the current stats.
    let s = next_frame(&mut fan).await;
    assert_eq!(s["type"], "pitch_stats_update");
    assert_eq!(s["data"]["viewCount"], 100);

    send(
        &mut viewer,
        json!({"type": "pitch_view", "id": "v1", "data": {"pitchId": 42}}),
    )
    .await;
    assert_eq!(
        next_frame(&mut viewer).await,
        json!({"type": "ack", "data": {"id": "v1"}})
    );
    let s = next_frame(&mut fan).await;
    assert_eq!(s["type"], "pitch_stats_update");
    assert_eq!(s["data"]["pitchId"], 42);
    assert_eq!(s["data"]["viewCount"], 101);
    assert_eq!(s["data"]["uniqueViewers"], 1);
    assert_eq!(s["data"]["recentViewers"][0]["userId"], 3);
    let d = next_frame(&mut owner).await;
    assert_eq!(d["type"], "dashboard_update");
    assert_eq!(d["data"]["metrics"]["totalViews"], 101);
    assert_eq!(d["data"]["metrics"]["pitches"], 1);
    assert!(d["seq"].is_u64());
    let (status, body) = http(
        &server,
        "GET",
        "/api/ws/dashboard",
        Some(&server.token(1)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["metrics"]["totalViews"], 101);
    // Non-subscribers (the viewer) get no stats.
    assert!(frames_before_pong(&mut viewer).await.is_empty());
}

#[tokio::test]
async fn pitch_owner_endpoint_is_admin_only() {
    let server = server().await;
    let body = json!({"pitchId": 1, "ownerId": 1});
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/pitches",
        Some(&server.token(1)),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(&server, "POST", "/api/ws/pitches", None, Some(body)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_channel_is_invalid_message() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 1).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "data": {"channel": "pitch:abc"}}),
    )
    .await;
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "invalid_message");
    assert_eq!(e["data"]["id"], "s");
}
