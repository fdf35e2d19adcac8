//! The per-connection token bucket.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_burst_over_120_gets_rate_limited_with_retry_after() {
    // Seed limits; only the abuse cut-off is raised so that the 80 refusals do not close.
    let server = server_with(|c| c.rate_limit_close_after = 1000).await;
    let (mut ws, _) = connect(&server, 7).await;
    for i in 0..200 {
        send(&mut ws, json!({"type": "typing", "id": format!("c-{i}"), "data": {"conversationId": 1, "isTyping": true}})).await;
    }
    let (mut acks, mut limited) = (0, 0);
    for _ in 0..200 {
        let f = next_frame(&mut ws).await;
        match f["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => {
                assert_eq!(f["data"]["code"], "rate_limited");
                assert!(f["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0));
                assert!(f["data"]["id"].as_str().is_some());
                limited += 1;
            }
            _ => panic!("unexpected {f}"),
        }
    }
    // The refill (2/s) may let a few more through during the burst; 80 more would take 40 s.
    assert!(acks >= 120, "acks {acks}");
    assert!(limited >= 1, "limited {limited}");
    assert_eq!(acks + limited, 200);
    // Still connected: pings are never limited.
    assert!(frames_before_pong(&mut ws).await.is_empty());
}

#[tokio::test]
async fn refused_messages_are_not_processed() {
    let server = server_with(|c| {
        c.rate_limit.max_messages = 2;
        c.rate_limit.refill_rate = 0.01;
    })
    .await;
    let (mut ws, _) = connect(&server, 7).await;
    for i in 0..3 {
        send(&mut ws, json!({"type": "draft_sync", "id": format!("d-{i}"), "data": {"draftId": "a", "content": {"n": i}}})).await;
    }
    assert_eq!(
        next_frame(&mut ws).await["data"],
        json!({"id": "d-0", "version": 1})
    );
    assert_eq!(
        next_frame(&mut ws).await["data"],
        json!({"id": "d-1", "version": 2})
    );
    let e = next_frame(&mut ws).await;
    assert_eq!(e["data"]["code"], "rate_limited");
    assert_eq!(e["data"]["id"], "d-2");
    // A second session of the same user has its own bucket and sees version 2 as current.
    let (mut other, _) = connect(&server, 7).await;
    send(&mut other, json!({"type": "draft_sync", "id": "x", "data": {"draftId": "a", "content": {}, "baseVersion": 2}})).await;
    assert_eq!(
        next_frame(&mut other).await["data"],
        json!({"id": "x", "version": 3})
    );
}

#[tokio::test]
async fn pings_do_not_count() {
    let server = server_with(|c| c.rate_limit.max_messages = 3).await;
    let (mut ws, _) = connect(&server, 7).await;
    for _ in 0..20 {
        send(&mut ws, json!({"type": "ping"})).await;
    }
    for _ in 0..20 {
        assert_eq!(next_frame(&mut ws).await["type"], "pong");
    }
}

#[tokio::test]
async fn persistent_abuse_closes_with_4008() {
    let server = server_with(|c| {
        c.rate_limit.max_messages = 3;
        c.rate_limit.refill_rate = 0.01;
        c.rate_limit_close_after = 5;
    })
    .await;
    let (mut ws, _) = connect(&server, 7).await;
    for _ in 0..20 {
        send(
            &mut ws,
            json!({"type": "typing", "data": {"conversationId": 1, "isTyping": true}}),
        )
        .await;
    }
    let (code, _, frames) = expect_close(&mut ws).await;
    assert_eq!(code, 4008);
    let limited = frames
        .iter()
        .filter(|f| f["data"]["code"] == "rate_limited")
        .count();
    assert_eq!(limited, 5);
    let stats = admin_stats(&server).await;
    assert_eq!(stats["rateLimited"], 5);
}
