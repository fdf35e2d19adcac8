//! What one user can make the server hold: every limit refuses clearly and is counted in
//! `/api/ws/stats` under `limits`.

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn http_body_over_64_kib_is_413_with_a_json_error() {
    let server = server().await;
    let big = "x".repeat(70 * 1024);
    let body =
        json!({"userId": 7, "notification": {"type": "message", "title": big, "message": ""}});
    let (status, answer) = http(
        &server,
        "POST",
        "/api/ws/notify",
        Some(&server.token(1)),
        Some(body),
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "too_large");

    // Chunked, so that no Content-Length gives it away.
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let chunk = format!(
        r#"{{"userId":7,"notification":{{"type":"message","title":"{big}","message":""}}}}"#
    );
    let req = format!(
        "POST /api/ws/notify HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        server.token(1),
        chunk.len()
    );
    let _ = tcp.write_all(req.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw)).await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("too_large"), "{raw}");

    // A small body still works.
    notify(&server, 7, "small").await;
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["bodyTooLarge"], 2, "{stats}");
}

#[tokio::test]
async fn queue_and_replay_log_are_capped_in_bytes_and_resume_says_continuity_was_lost() {
    let server = server_with(|c| c.limits.user_queue_bytes = 2000).await;
    // Ten notifications of about 400 bytes to an offline user: only the newest fit.
    for i in 0..10 {
        let title = format!("n{i}-{}", "y".repeat(300));
        let (status, _) = http(
            &server,
            "POST",
            "/api/ws/notify",
            Some(&server.admin_token(1)),
            Some(json!({"userId": 7, "notification": {"type": "message", "title": title, "message": ""}})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (mut ws, connected) = connect(&server, 7).await;
    let queued = frames_before_pong(&mut ws).await;
    assert!(queued.len() < 10 && !queued.is_empty(), "{}", queued.len());
    let last = queued.last().unwrap();
    assert!(last["data"]["title"].as_str().unwrap().starts_with("n9-"));
    assert_eq!(last["seq"], 10);
    assert!(connected["data"]["lastSeq"].as_u64().unwrap() > 0);
    // Resuming from the start: the log lost the oldest frames too.
    send(
        &mut ws,
        json!({"type": "resume", "id": "r", "data": {"lastSeq": 0}}),
    )
    .await;
    let again = next_of_type(&mut ws, "connected").await;
    assert_eq!(again["data"]["resumed"], false);
    let stats = admin_stats(&server).await;
    assert!(
        stats["limits"]["offlineQueueBytesEvicted"]
            .as_u64()
            .unwrap()
            > 0,
        "{stats}"
    );
    assert!(
        stats["limits"]["replayLogBytesEvicted"].as_u64().unwrap() > 0,
        "{stats}"
    );
}

fn draft(id: &str, draft: &str, base: u64) -> serde_json::Value {
    json!({"type": "draft_sync", "id": id, "data": {"draftId": draft, "content": {"t": id}, "baseVersion": base}})
}

#[tokio::test]
async fn a_draft_beyond_max_drafts_per_user_is_limit_exceeded_and_existing_ones_still_save() {
    let server = server_with(|c| c.limits.max_drafts_per_user = 2).await;
    let (mut ws, _) = connect(&server, 7).await;
    for (i, d) in ["a", "b"].iter().enumerate() {
        send(&mut ws, draft(&format!("c-{i}"), d, 0)).await;
        assert_eq!(next_frame(&mut ws).await["type"], "ack");
    }
    send(&mut ws, draft("c-new", "c", 0)).await;
    let e = next_frame(&mut ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["data"]["code"], "limit_exceeded");
    assert_eq!(e["data"]["id"], "c-new");
    // Saving an existing draft still works; other users have their own allowance.
    send(&mut ws, draft("c-again", "a", 1)).await;
    assert_eq!(
        next_frame(&mut ws).await["data"],
        json!({"id": "c-again", "version": 2})
    );
    let (mut other, _) = connect(&server, 8).await;
    send(&mut other, draft("o-1", "c", 0)).await;
    assert_eq!(next_frame(&mut other).await["type"], "ack");
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["draftsRefused"], 1);
}

#[tokio::test]
async fn an_id_over_64_bytes_is_invalid_message_and_not_remembered() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    let long = "i".repeat(65);
    let view = json!({"type": "pitch_view", "id": long, "data": {"pitchId": 5}});
    send(&mut ws, view.clone()).await;
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "invalid_message", "{e}");
    // Refused again, not acked as a repeat: nothing was remembered.
    send(&mut ws, view).await;
    assert_eq!(next_frame(&mut ws).await["data"]["code"], "invalid_message");
    // 64 bytes is fine.
    send(
        &mut ws,
        json!({"type": "pitch_view", "id": "i".repeat(64), "data": {"pitchId": 5}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["idsTooLong"], 2);
}

#[tokio::test]
async fn dedup_memory_is_bounded_per_user_oldest_forgotten_first() {
    let server = server_with(|c| c.limits.dedup_ids = 2).await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "data": {"channel": "pitch:5"}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
    for id in ["a", "b", "c", "a"] {
        send(
            &mut ws,
            json!({"type": "pitch_view", "id": id, "data": {"pitchId": 5}}),
        )
        .await;
    }
    // "a" was forgotten for "c", so its repeat counts again: 4 views, 4 stats updates.
    let mut views = 0;
    for _ in 0..8 {
        let f = next_frame(&mut ws).await;
        if f["type"] == "pitch_stats_update" {
            views = f["data"]["viewCount"].as_u64().unwrap();
        }
    }
    assert_eq!(views, 4);
    let stats = admin_stats(&server).await;
    assert!(
        stats["limits"]["dedupIdsForgotten"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

#[tokio::test]
async fn a_ping_flood_past_its_own_budget_closes_with_4008() {
    // The message budget is tiny: pings stay outside it.
    let server = server_with(|c| c.rate_limit.max_messages = 3).await;
    let (mut ws, _) = connect(&server, 7).await;
    for _ in 0..20 {
        send(&mut ws, json!({"type": "ping"})).await;
    }
    for _ in 0..20 {
        assert_eq!(next_frame(&mut ws).await["type"], "pong");
    }
    let (mut flood, _) = connect(&server, 8).await;
    for _ in 0..100 {
        send(&mut flood, json!({"type": "ping"})).await;
    }
    let (code, reason, _) = expect_close(&mut flood).await;
    assert_eq!((code, reason.as_str()), (4008, "ping flood"));
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["pingFloods"], 1);
}

#[tokio::test]
async fn subscriptions_past_max_subscriptions_get_limit_exceeded_with_the_id() {
    let server = server_with(|c| c.limits.max_subscriptions = 2).await;
    let (mut ws, _) = connect(&server, 7).await;
    for (i, ch) in ["conversation:1", "conversation:2", "conversation:2"]
        .iter()
        .enumerate()
    {
        send(
            &mut ws,
            json!({"type": "subscribe", "id": format!("s-{i}"), "data": {"channel": ch}}),
        )
        .await;
        assert_eq!(next_frame(&mut ws).await["type"], "ack");
    }
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s-x", "data": {"channel": "conversation:3"}}),
    )
    .await;
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "limit_exceeded", "{e}");
    assert_eq!(e["data"]["id"], "s-x");
    // Room again after an unsubscribe.
    send(
        &mut ws,
        json!({"type": "unsubscribe", "id": "u", "data": {"channel": "conversation:1"}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s-y", "data": {"channel": "conversation:3"}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["subscriptionsRefused"], 1);
}

#[tokio::test]
async fn stats_of_idle_unwatched_pitches_are_freed() {
    let server = server_with(|c| c.limits.pitch_idle_secs = 1).await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "pitch_view", "data": {"pitchId": 77}}),
    )
    .await;
    assert!(frames_before_pong(&mut ws).await.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    // The next view anywhere looks for idle pitches.
    send(
        &mut ws,
        json!({"type": "pitch_view", "data": {"pitchId": 78}}),
    )
    .await;
    assert!(frames_before_pong(&mut ws).await.is_empty());
    // Pitch 77 is gone: subscribing gets the ack and no stats.
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "data": {"channel": "pitch:77"}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
    assert!(frames_before_pong(&mut ws).await.is_empty());
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "t", "data": {"channel": "pitch:78"}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
    assert_eq!(next_frame(&mut ws).await["type"], "pitch_stats_update");
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["pitchesFreed"], 1);
}

#[tokio::test]
async fn sessions_past_max_sessions_per_user_get_429_and_closing_one_frees_a_slot() {
    let server = server_with(|c| c.limits.max_sessions_per_user = 2).await;
    let (a, _) = connect(&server, 7).await;
    let (_b, _) = connect(&server, 7).await;
    let url = format!("{}?token={}", server.ws_url(), server.token(7));
    assert_eq!(refused_status(url.as_str()).await, 429);
    // Another user is not affected.
    let (_c, _) = connect(&server, 8).await;
    drop(a);
    // The slot comes back once the server sees the connection end.
    let mut connected = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(url.as_str()).await.is_ok() {
            connected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(connected);
    let stats = admin_stats(&server).await;
    assert!(stats["limits"]["sessionsRefused"].as_u64().unwrap() >= 1);
}
