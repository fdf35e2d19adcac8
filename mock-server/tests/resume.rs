//! `seq` and `resume`: a reconnecting client gets what it missed.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn resume_replays_what_was_delivered_to_other_sessions_while_away() {
    let server = server().await;
    let (mut phone, _) = connect(&server, 7).await;
    let (mut laptop, _) = connect(&server, 7).await;
    notify(&server, 7, "one").await;
    let one = next_frame(&mut laptop).await;
    assert_eq!(one["seq"], 1);
    assert_eq!(next_frame(&mut phone).await["seq"], 1);
    // The laptop drops; the phone keeps the user online, so nothing is queued.
    drop(laptop);
    notify(&server, 7, "two").await;
    notify(&server, 7, "three").await;
    assert_eq!(next_frame(&mut phone).await["seq"], 2);
    assert_eq!(next_frame(&mut phone).await["seq"], 3);
    let (mut laptop, _) = connect(&server, 7).await;
    send(
        &mut laptop,
        json!({"type": "resume", "id": "r", "data": {"lastSeq": 1}}),
    )
    .await;
    // The answer: a `connected` saying the resume is honoured in full, then what was missed.
    let answer = next_frame(&mut laptop).await;
    assert_eq!(answer["type"], "connected");
    assert_eq!(answer["data"]["resumed"], true);
    let two = next_frame(&mut laptop).await;
    assert_eq!(
        (two["seq"].clone(), two["data"]["title"].clone()),
        (json!(2), json!("two"))
    );
    assert_eq!(next_frame(&mut laptop).await["seq"], 3);
    assert_eq!(
        next_frame(&mut laptop).await,
        json!({"type": "ack", "data": {"id": "r"}})
    );
    // Live messages continue after.
    notify(&server, 7, "four").await;
    assert_eq!(next_frame(&mut laptop).await["seq"], 4);
}

#[tokio::test]
async fn resume_does_not_repeat_the_offline_queue() {
    let server = server().await;
    let (ws, _) = connect(&server, 7).await;
    drop(ws);
    // Wait until the server saw the user leave, so the next ones are queued.
    loop {
        let (_, p) = http(
            &server,
            "GET",
            "/api/ws/presence/7",
            Some(&server.token(1)),
            None,
        )
        .await;
        if p["status"] == "offline" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    notify(&server, 7, "a").await;
    notify(&server, 7, "b").await;
    let (mut ws, _) = connect(&server, 7).await;
    assert_eq!(next_frame(&mut ws).await["seq"], 1);
    assert_eq!(next_frame(&mut ws).await["seq"], 2);
    send(
        &mut ws,
        json!({"type": "resume", "id": "r", "data": {"lastSeq": 0}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["data"]["resumed"], true);
    assert_eq!(next_frame(&mut ws).await["type"], "ack");
}

#[tokio::test]
async fn resume_older_than_the_log_answers_resumed_false_then_replays_what_is_left() {
    let server = server_with(|c| c.replay_log_cap = 2).await;
    let (mut phone, _) = connect(&server, 7).await;
    for t in ["1", "2", "3", "4"] {
        notify(&server, 7, t).await;
        next_frame(&mut phone).await;
    }
    let (mut laptop, _) = connect(&server, 7).await;
    // Everything up to seq 4 happened before this session connected.
    send(
        &mut laptop,
        json!({"type": "resume", "id": "r", "data": {"lastSeq": 1}}),
    )
    .await;
    let answer = next_frame(&mut laptop).await;
    assert_eq!(answer["type"], "connected");
    assert_eq!(answer["data"]["resumed"], false);
    // What is left is still sent.
    assert_eq!(next_frame(&mut laptop).await["seq"], 3);
    assert_eq!(next_frame(&mut laptop).await["seq"], 4);
    assert_eq!(next_frame(&mut laptop).await["type"], "ack");
}

#[tokio::test]
async fn resume_from_the_future_answers_resumed_false() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(&mut ws, json!({"type": "resume", "data": {"lastSeq": 99}})).await;
    let answer = next_frame(&mut ws).await;
    assert_eq!(answer["type"], "connected");
    assert_eq!(answer["data"]["resumed"], false);
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn last_seq_on_the_url_resumes_at_connect() {
    let server = server().await;
    let (mut phone, _) = connect(&server, 7).await;
    for t in ["1", "2", "3"] {
        notify(&server, 7, t).await;
        next_frame(&mut phone).await;
    }
    let url = format!("{}?token={}&lastSeq=1", server.ws_url(), server.token(7));
    let (mut laptop, connected) = connect_url(&url).await;
    assert_eq!(connected["data"]["resumed"], true);
    assert_eq!(next_frame(&mut laptop).await["seq"], 2);
    assert_eq!(next_frame(&mut laptop).await["seq"], 3);
    assert!(frames_before_pong(&mut laptop).await.is_empty());

    let url = format!("{}?token={}&lastSeq=50", server.ws_url(), server.token(7));
    let (mut ws, connected) = connect_url(&url).await;
    assert_eq!(connected["data"]["resumed"], false);
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn every_session_sees_every_seq_without_gaps() {
    let server = server().await;
    let (mut a, _) = connect(&server, 7).await;
    let (mut b, _) = connect(&server, 7).await;
    notify(&server, 7, "1").await;
    // A draft saved by `a` reaches `b` without a seq, so neither sees a gap.
    send(
        &mut a,
        json!({"type": "draft_sync", "id": "d", "data": {"draftId": "x", "content": {}, "baseVersion": 0}}),
    )
    .await;
    notify(&server, 7, "2").await;
    for ws in [&mut a, &mut b] {
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            let f = next_frame(ws).await;
            match f["type"].as_str() {
                Some("notification") => seqs.push(f["seq"].as_u64().unwrap()),
                _ => assert!(f.get("seq").is_none(), "{f}"),
            }
        }
        assert_eq!(seqs, vec![1, 2]);
    }
}
