//! The delivery path: `announce` answers once its frames are written, frames written in
//! batches keep their order, and a client's pipelined durable messages share group commits
//! and are acked in order.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn announce(server: &pitchey_mock_server::RunningServer, title: &str) -> Value {
    let (status, resp) = http(
        server,
        "POST",
        "/api/ws/announce",
        Some(&server.admin_token(99)),
        Some(json!({"title": title, "message": "m"})),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    resp
}

#[tokio::test]
async fn announce_answers_once_the_previous_announcement_is_written() {
    let server = server().await;
    let (mut a, _) = connect(&server, 1).await;
    let (mut a2, _) = connect(&server, 1).await;
    let (mut b, _) = connect(&server, 2).await;
    // One session writes slowly: the next announcement's answer waits for its write.
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/faults/delay",
        Some(&server.admin_token(99)),
        Some(json!({"userId": 2, "ms": 400})),
    )
    .await;
    assert_eq!(status, 200);
    let t0 = Instant::now();
    let first = announce(&server, "hello").await;
    assert_eq!(first["users"], 2, "{first}");
    assert_eq!(first["sessions"], 3, "{first}");
    let second = announce(&server, "again").await;
    let took = t0.elapsed();
    assert_eq!(second["sessions"], 3, "{second}");
    assert_eq!(second["paced"], true, "{second}");
    assert!(
        took >= Duration::from_millis(400),
        "answered after {took:?}, before the delayed session wrote the first announcement"
    );
    for ws in [&mut a, &mut a2, &mut b] {
        for title in ["hello", "again"] {
            let n = next_frame(ws).await;
            assert_eq!(n["type"], "notification");
            assert_eq!(n["data"]["title"], title);
        }
    }
}

#[tokio::test]
async fn announcement_frames_are_numbered_per_user_and_replayed() {
    let server = server().await;
    let (mut a, _) = connect(&server, 1).await;
    let (mut b, _) = connect(&server, 2).await;
    // User 2 gets a private notification first: its seqs run ahead of user 1's.
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/notify",
        Some(&server.admin_token(99)),
        Some(json!({"userId": 2, "notification": {"type": "message", "title": "private"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(next_frame(&mut b).await["seq"], 1);
    for title in ["one", "two"] {
        announce(&server, title).await;
    }
    let mut seen = Vec::new();
    for (ws, first) in [(&mut a, 1), (&mut b, 2)] {
        for (i, title) in ["one", "two"].into_iter().enumerate() {
            let n = next_frame(ws).await;
            assert_eq!(n["data"]["title"], title);
            assert_eq!(n["seq"], first + i as u64);
            seen.push(n["data"]["id"].clone());
        }
    }
    // Same notification id for every user: one announcement.
    assert_eq!(seen[0], seen[2]);
    // A new session resuming from 0 is replayed the logged frames, numbered as sent.
    let url = format!("{}?token={}&lastSeq=0", server.ws_url(), server.token(1));
    let (mut again, _) = connect_url(&url).await;
    for (seq, title) in [(1, "one"), (2, "two")] {
        let n = next_frame(&mut again).await;
        assert_eq!(
            (n["seq"].as_u64(), n["data"]["title"].as_str()),
            (Some(seq), Some(title))
        );
    }
}

#[tokio::test]
async fn frames_written_in_batches_keep_their_order() {
    let server = server_with(|c| c.rate_limit_enabled = false).await;
    let (mut ws, _) = connect(&server, 1).await;
    // Pipelined: the answers and announcements pile up and go out in batches.
    const N: usize = 300;
    for i in 0..N {
        let frame = json!({"type": "ping", "id": format!("p{i}")}).to_string();
        ws.feed(Message::text(frame)).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut next_ack = 0;
    let mut pongs = 0;
    while next_ack < N {
        let f = next_frame(&mut ws).await;
        match f["type"].as_str() {
            Some("pong") => {
                // Each pong comes right before its own ack.
                assert_eq!(pongs, next_ack, "pong out of order");
                pongs += 1;
            }
            Some("ack") => {
                assert_eq!(f["data"]["id"], format!("p{next_ack}"), "ack out of order");
                next_ack += 1;
            }
            other => panic!("unexpected frame {other:?}: {f}"),
        }
    }
}

#[tokio::test]
async fn pipelined_durable_saves_share_group_commits_and_are_acked_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = server_with(|c| {
        c.data_dir = Some(path);
        c.rate_limit_enabled = false;
    })
    .await;
    let (mut ws, _) = connect(&server, 1).await;
    let commits_before = stats(&server).await["store"]["commits"].as_u64().unwrap();
    const N: u64 = 60;
    for i in 0..N {
        let frame = json!({
            "type": "draft_sync",
            "id": format!("d{i}"),
            "data": {"draftId": "doc", "content": {"n": i}, "baseVersion": i},
        });
        ws.feed(Message::text(frame.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..N {
        let f = next_frame(&mut ws).await;
        assert_eq!(f["type"], "ack", "{f}");
        assert_eq!(f["data"]["id"], format!("d{i}"), "acks in the order sent");
        assert_eq!(f["data"]["version"], i + 1);
    }
    let commits = stats(&server).await["store"]["commits"].as_u64().unwrap() - commits_before;
    // One message at a time would take one commit each: the session read on while earlier
    // acks waited, so later saves joined the groups in progress.
    assert!(
        commits < N / 2,
        "{commits} commits for {N} pipelined saves: not grouped"
    );
}

async fn stats(server: &pitchey_mock_server::RunningServer) -> Value {
    let (status, s) = http(
        server,
        "GET",
        "/api/ws/stats",
        Some(&server.admin_token(99)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    s
}
