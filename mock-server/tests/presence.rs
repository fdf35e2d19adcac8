//! Presence: online/away/offline to followers, the presence endpoints, follows.

mod common;

use common::*;
use serde_json::json;

async fn follow(server: &pitchey_mock_server::RunningServer, follower: u64, followee: u64) {
    let (status, body) = http(
        server,
        "POST",
        "/api/ws/follow",
        Some(&server.admin_token(999)),
        Some(json!({"followerId": follower, "userId": followee})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn followers_see_online_away_and_offline() {
    let server = server().await;
    follow(&server, 1, 3).await;
    let (mut follower, _) = connect(&server, 1).await;
    let (mut stranger, _) = connect(&server, 2).await;
    let (mut ada, _) = connect(&server, 3).await;
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["userId"], 3);
    assert_eq!(p["data"]["status"], "online");
    assert!(p["data"]["lastSeen"].as_str().is_some());
    assert!(p.get("seq").is_none(), "presence is ephemeral");

    send(
        &mut ada,
        json!({"type": "presence_update", "id": "p1", "data": {"status": "away"}}),
    )
    .await;
    // (ada first gets the follow notification and dashboard queued while she was offline)
    assert_eq!(
        next_of_type(&mut ada, "ack").await,
        json!({"type": "ack", "data": {"id": "p1"}})
    );
    let p = next_frame(&mut follower).await;
    assert_eq!(p["data"]["status"], "away");

    let (status, body) = http(
        &server,
        "GET",
        "/api/ws/presence/3",
        Some(&server.token(2)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "away");
    assert_eq!(body["userId"], 3);

    drop(ada);
    let p = next_frame(&mut follower).await;
    assert_eq!(p["data"]["status"], "offline");
    assert!(frames_before_pong(&mut stranger).await.is_empty());
}

#[tokio::test]
async fn following_online_lists_followed_users_that_are_connected() {
    let server = server().await;
    follow(&server, 1, 3).await;
    follow(&server, 1, 4).await;
    let (_three, _) = connect(&server, 3).await;
    let (status, body) = http(
        &server,
        "GET",
        "/api/ws/following-online",
        Some(&server.token(1)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 1);
    assert_eq!(body["users"][0]["userId"], 3);
    assert_eq!(body["users"][0]["status"], "online");
    let (status, _) = http(&server, "GET", "/api/ws/following-online", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn presence_of_an_unknown_user_is_offline_and_bad_ids_are_400() {
    let server = server().await;
    let (status, body) = http(
        &server,
        "GET",
        "/api/ws/presence/555",
        Some(&server.token(1)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"userId": 555, "status": "offline"}));
    let (status, _) = http(
        &server,
        "GET",
        "/api/ws/presence/abc",
        Some(&server.token(1)),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = http(&server, "GET", "/api/ws/presence/1", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn follow_for_oneself_or_as_admin_notifies_the_followee() {
    let server = server().await;
    let (mut creator, _) = connect(&server, 5).await;
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/follow",
        Some(&server.token(6)),
        Some(json!({"userId": 5})),
    )
    .await;
    assert_eq!(status, 200);
    let n = next_frame(&mut creator).await;
    assert_eq!(n["type"], "notification");
    assert_eq!(n["data"]["type"], "follow");
    assert_eq!(n["data"]["data"]["followerId"], 6);
    let d = next_frame(&mut creator).await;
    assert_eq!(d["type"], "dashboard_update");
    assert_eq!(d["data"]["metrics"]["followers"], 1);
    // Making someone else follow needs admin.
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/follow",
        Some(&server.token(6)),
        Some(json!({"userId": 5, "followerId": 8})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/follow",
        None,
        Some(json!({"userId": 5})),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn subscribing_to_presence_gives_current_state_and_updates() {
    let server = server().await;
    let (mut watcher, _) = connect(&server, 1).await;
    send(
        &mut watcher,
        json!({"type": "subscribe", "id": "s1", "data": {"channel": "presence:3"}}),
    )
    .await;
    assert_eq!(next_frame(&mut watcher).await["type"], "ack");
    let p = next_frame(&mut watcher).await;
    assert_eq!(p["data"], json!({"userId": 3, "status": "offline"}));
    let (_three, _) = connect(&server, 3).await;
    assert_eq!(next_frame(&mut watcher).await["data"]["status"], "online");
}
