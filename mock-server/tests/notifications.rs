//! Notifications live and through the offline queue; announcements; upload progress.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn notify_reaches_every_session_of_the_user_with_a_seq() {
    let server = server().await;
    let (mut a, _) = connect(&server, 7).await;
    let (mut b, _) = connect(&server, 7).await;
    let (mut other, _) = connect(&server, 8).await;
    let resp = notify(&server, 7, "Hello").await;
    assert_eq!(resp["delivered"], true);
    assert_eq!(resp["sessions"], 2);
    for ws in [&mut a, &mut b] {
        let n = next_frame(ws).await;
        assert_eq!(n["type"], "notification");
        assert_eq!(n["seq"], 1);
        assert_eq!(n["data"]["title"], "Hello");
        assert_eq!(n["data"]["type"], "message");
        assert_eq!(n["data"]["read"], false);
        assert!(
            n["data"]["id"]
                .as_str()
                .is_some_and(|s| s.starts_with("n-"))
        );
        assert!(
            n["data"]["createdAt"]
                .as_str()
                .is_some_and(|s| s.ends_with('Z'))
        );
    }
    assert!(frames_before_pong(&mut other).await.is_empty());
}

#[tokio::test]
async fn notify_needs_a_valid_token_and_a_valid_body() {
    let server = server().await;
    let body = json!({"userId": 7, "notification": {"type": "system", "title": "x"}});
    let (status, _) = http(&server, "POST", "/api/ws/notify", None, Some(body.clone())).await;
    assert_eq!(status, 401);
    let (status, err) = http(
        &server,
        "POST",
        "/api/ws/notify",
        Some(&server.token(1)),
        Some(json!({"userId": "seven"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_request");
}

#[tokio::test]
async fn offline_user_gets_queued_messages_in_order_on_connect() {
    let server = server().await;
    for i in 0..3 {
        let resp = notify(&server, 7, &format!("n{i}")).await;
        assert_eq!(resp["delivered"], false);
        assert_eq!(resp["queued"], true);
    }
    let (mut ws, _) = connect(&server, 7).await;
    for i in 0..3 {
        let n = next_frame(&mut ws).await;
        assert_eq!(n["data"]["title"], format!("n{i}"));
        assert_eq!(n["seq"], i + 1);
    }
    // Delivered once: a second connection gets nothing more.
    assert!(frames_before_pong(&mut ws).await.is_empty());
    let (mut again, _) = connect(&server, 7).await;
    assert!(frames_before_pong(&mut again).await.is_empty());
}

#[tokio::test]
async fn offline_queue_is_capped_dropping_the_oldest_and_counting_them() {
    let server = server_with(|c| c.offline_queue_cap = 3).await;
    for i in 0..5 {
        notify(&server, 7, &format!("n{i}")).await;
    }
    let stats = admin_stats(&server).await;
    assert_eq!(stats["offlineDropped"], 2);
    assert_eq!(stats["offlineQueued"], 3);
    let (mut ws, _) = connect(&server, 7).await;
    for i in 2..5 {
        assert_eq!(next_frame(&mut ws).await["data"]["title"], format!("n{i}"));
    }
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn announce_is_admin_only_and_reaches_every_connected_user() {
    let server = server().await;
    let (mut a, _) = connect(&server, 1).await;
    let (mut b, _) = connect(&server, 2).await;
    let body = json!({"title": "Maintenance", "message": "at 22:00 UTC"});
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/announce",
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 401);
    let (status, err) = http(
        &server,
        "POST",
        "/api/ws/announce",
        Some(&server.token(1)),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(err["error"], "forbidden");
    let (status, resp) = http(
        &server,
        "POST",
        "/api/ws/announce",
        Some(&server.admin_token(99)),
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(resp["users"], 2);
    for ws in [&mut a, &mut b] {
        let n = next_frame(ws).await;
        assert_eq!(n["type"], "notification");
        assert_eq!(n["data"]["type"], "system");
        assert_eq!(n["data"]["title"], "Maintenance");
        assert_eq!(n["data"]["message"], "at 22:00 UTC");
    }
}

#[tokio::test]
async fn upload_progress_goes_to_the_caller() {
    let server = server().await;
    let (mut me, _) = connect(&server, 7).await;
    let (mut other, _) = connect(&server, 8).await;
    let data = json!({"uploadId": "u-77", "fileName": "deck.pdf", "progress": 42.0,
        "bytesUploaded": 4404019, "totalBytes": 10485760, "status": "uploading"});
    let (status, resp) = http(
        &server,
        "POST",
        "/api/ws/upload-progress",
        Some(&server.token(7)),
        Some(data.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(resp["delivered"], true);
    let f = next_frame(&mut me).await;
    assert_eq!(f["type"], "upload_progress");
    assert_eq!(f["data"], data);
    assert!(f["seq"].is_u64());
    assert!(frames_before_pong(&mut other).await.is_empty());
    // Someone else's upload: admin only.
    let mut for_other = data.clone();
    for_other["userId"] = json!(8);
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/upload-progress",
        Some(&server.token(7)),
        Some(for_other.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/upload-progress",
        Some(&server.admin_token(1)),
        Some(for_other),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(next_frame(&mut other).await["type"], "upload_progress");
    let (status, _) = http(&server, "POST", "/api/ws/upload-progress", None, Some(data)).await;
    assert_eq!(status, 401);
}
