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
