//! `/api/ws/stats` and `/metrics`: messages in and out per type, sessions per user, queue
//! depths, rate-limit hits, auth failures, dropped offline messages, the store, Redis status.

mod common;

use common::*;
use pitchey_mock_server::RunningServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn stats(server: &RunningServer) -> Value {
    let (status, body) = http(
        server,
        "GET",
        "/api/ws/stats",
        Some(&server.admin_token(999)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn metrics_text(server: &RunningServer) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Authorization: Bearer {}\r\n\r\n",
                server.admin_token(999)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    raw
}

/// The value of one series line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn per_type_counters_move_when_messages_flow() {
    let server = server_with(|c| c.offline_queue_cap = 2).await;
    let (mut a, _) = connect(&server, 7).await;
    let (mut b, _) = connect(&server, 7).await;
    send(&mut a, json!({"type": "ping", "data": {"ts": 1}})).await;
    assert_eq!(next_frame(&mut a).await["type"], "pong");
    for i in 0..3 {
        send(
            &mut a,
            json!({"type": "draft_sync", "id": format!("d{i}"),
                   "data": {"draftId": "x", "content": {"i": i}, "baseVersion": i}}),
        )
        .await;
        assert_eq!(next_frame(&mut a).await["type"], "ack");
        assert_eq!(next_frame(&mut b).await["type"], "draft_sync");
    }
    send(&mut a, json!({"type": "no_such_type"})).await;
    send_text(&mut a, "{not json").await;
    for _ in 0..2 {
        assert_eq!(next_frame(&mut a).await["type"], "error");
    }
    // Three notifications for offline user 8 with room for two: one dropped, two queued.
    for i in 0..3 {
        notify(&server, 8, &format!("n{i}")).await;
    }
    // An auth failure.
    let (status, _) = http(&server, "GET", "/api/ws/stats", Some("bad"), None).await;
    assert_eq!(status, 401);

    let s = stats(&server).await;
    assert_eq!(s["messagesInByType"]["ping"], 1, "{s}");
    assert_eq!(s["messagesInByType"]["draft_sync"], 3);
    assert_eq!(s["messagesInByType"]["unknown"], 1);
    assert_eq!(s["messagesInByType"]["invalid"], 1);
    assert_eq!(s["messagesOutByType"]["pong"], 1);
    assert_eq!(s["messagesOutByType"]["ack"], 3);
    assert_eq!(s["messagesOutByType"]["draft_sync"], 3);
    assert_eq!(s["messagesOutByType"]["error"], 2);
    assert_eq!(s["messagesOutByType"]["connected"], 2);
    assert_eq!(s["sessionsPerUser"]["7"], 2);
    assert_eq!(s["offlineQueued"], 2);
    assert_eq!(s["offlineQueueDepths"]["8"], 2);
    assert_eq!(s["offlineDropped"], 1);
    assert_eq!(s["authFailures"], 1);
    assert_eq!(s["store"]["kind"], "memory");
    assert_eq!(s["redis"], "disabled");
    assert!(s["outboxQueued"].is_u64());

    let m = metrics_text(&server).await;
    let get = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("{series} in\n{m}"));
    assert_eq!(
        get(r#"pitchey_ws_messages_in_by_type_total{type="draft_sync"}"#),
        3.0
    );
    assert_eq!(
        get(r#"pitchey_ws_messages_in_by_type_total{type="unknown"}"#),
        1.0
    );
    assert_eq!(
        get(r#"pitchey_ws_messages_out_by_type_total{type="ack"}"#),
        3.0
    );
    // Aggregates only: no series per user id.
    assert!(!m.contains("user=\""), "{m}");
    assert_eq!(get("pitchey_ws_max_user_sessions"), 2.0);
    assert_eq!(get("pitchey_ws_offline_queue_users"), 1.0);
    assert_eq!(get("pitchey_ws_offline_dropped_total"), 1.0);
    assert_eq!(get("pitchey_ws_auth_failures_total"), 1.0);
    assert_eq!(get("pitchey_ws_redis_enabled"), 0.0);
    assert_eq!(get("pitchey_ws_redis_up"), 0.0);
    assert_eq!(get("pitchey_ws_store_durable"), 0.0);
    assert!(m.contains("# TYPE pitchey_ws_messages_in_by_type_total counter"));

    // They keep moving.
    send(&mut b, json!({"type": "ping", "data": {"ts": 2}})).await;
    assert_eq!(next_frame(&mut b).await["type"], "pong");
    let s = stats(&server).await;
    assert_eq!(s["messagesInByType"]["ping"], 2);
    assert_eq!(s["messagesOutByType"]["pong"], 2);
    let m = metrics_text(&server).await;
    assert_eq!(
        sample(&m, r#"pitchey_ws_messages_in_by_type_total{type="ping"}"#),
        Some(2.0)
    );
}

#[tokio::test]
async fn rate_limit_hits_are_counted_by_type_too() {
    let server = server_with(|c| {
        c.rate_limit.max_messages = 1;
        c.rate_limit.refill_rate = 0.001;
    })
    .await;
    let (mut ws, _) = connect(&server, 7).await;
    for _ in 0..3 {
        send(
            &mut ws,
            json!({"type": "typing", "data": {"conversationId": 1, "isTyping": true}}),
        )
        .await;
    }
    // The first passes (no answer without an id), the other two are refused.
    for _ in 0..2 {
        assert_eq!(next_frame(&mut ws).await["data"]["code"], "rate_limited");
    }
    let s = stats(&server).await;
    assert_eq!(s["rateLimited"], 2, "{s}");
    assert_eq!(s["messagesInByType"]["typing"], 3);
    let m = metrics_text(&server).await;
    assert_eq!(sample(&m, "pitchey_ws_rate_limited_total"), Some(2.0));
}

#[tokio::test]
async fn stats_show_the_disk_store_and_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let server = server_with(|c| c.data_dir = Some(path)).await;
    notify(&server, 8, "queued").await;
    let s = stats(&server).await;
    assert_eq!(s["store"]["kind"], "disk", "{s}");
    assert!(s["store"]["commits"].as_u64().unwrap() >= 1);
    assert_eq!(s["store"]["commitFailures"], 0);
    let m = metrics_text(&server).await;
    assert_eq!(sample(&m, "pitchey_ws_store_durable"), Some(1.0));
    assert!(sample(&m, "pitchey_ws_store_commits_total").unwrap() >= 1.0);
    server.shutdown().await;
}
