//! Drafts: versions, conflicts, isolation between users, broadcast to other sessions, and
//! ack de-duplication.

mod common;

use common::*;
use serde_json::json;

fn save(id: &str, draft: &str, content: serde_json::Value, base: Option<u64>) -> serde_json::Value {
    let mut data = json!({"draftId": draft, "draftType": "pitch", "content": content});
    if let Some(b) = base {
        data["baseVersion"] = json!(b);
    }
    json!({"type": "draft_sync", "id": id, "data": data})
}

#[tokio::test]
async fn accepted_save_is_acked_with_the_version_and_sent_to_other_sessions() {
    let server = server().await;
    let (mut laptop, laptop_hello) = connect(&server, 7).await;
    let (mut phone, _) = connect(&server, 7).await;
    send(
        &mut laptop,
        save("c-9", "pitch_42", json!({"title": "Night Train"}), Some(0)),
    )
    .await;
    assert_eq!(
        next_frame(&mut laptop).await,
        json!({"type": "ack", "data": {"id": "c-9", "version": 1}})
    );
    let synced = next_frame(&mut phone).await;
    assert_eq!(synced["type"], "draft_sync");
    assert_eq!(synced["data"]["draftId"], "pitch_42");
    assert_eq!(synced["data"]["draftType"], "pitch");
    assert_eq!(synced["data"]["content"], json!({"title": "Night Train"}));
    assert_eq!(synced["data"]["version"], 1);
    assert_eq!(
        synced["data"]["sessionId"],
        laptop_hello["data"]["sessionId"]
    );
    assert!(synced["data"]["updatedAt"].is_string());
    assert!(
        synced.get("seq").is_none(),
        "only to other sessions, so not numbered"
    );
    // Not echoed to the saving session.
    assert!(frames_before_pong(&mut laptop).await.is_empty());
    // The phone saves on top of version 1.
    send(
        &mut phone,
        save(
            "p-1",
            "pitch_42",
            json!({"title": "Night Train (v2)"}),
            Some(1),
        ),
    )
    .await;
    assert_eq!(next_frame(&mut phone).await["data"]["version"], 2);
    assert_eq!(next_frame(&mut laptop).await["data"]["version"], 2);
}

#[tokio::test]
async fn stale_base_gets_draft_conflict_with_the_server_version() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(&mut ws, save("a", "d", json!({"v": 1}), Some(0))).await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 1);
    send(&mut ws, save("b", "d", json!({"v": 2}), Some(1))).await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 2);
    send(&mut ws, save("c", "d", json!({"v": "stale"}), Some(1))).await;
    let c = next_frame(&mut ws).await;
    assert_eq!(
        c,
        json!({"type": "draft_conflict", "id": "c", "data": {
        "draftId": "d", "baseVersion": 1, "serverVersion": 2, "serverContent": {"v": 2}}})
    );
    // Resolving on top of the server version works.
    send(&mut ws, save("c2", "d", json!({"v": "merged"}), Some(2))).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "ack", "data": {"id": "c2", "version": 3}})
    );
    // A new draft saved on a base that does not exist conflicts with version 0.
    send(&mut ws, save("n", "new", json!({}), Some(5))).await;
    let c = next_frame(&mut ws).await;
    assert_eq!(c["data"]["serverVersion"], 0);
    assert_eq!(c["data"]["serverContent"], json!(null));
}

#[tokio::test]
async fn save_without_base_version_is_last_write_wins() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    send(&mut ws, save("a", "d", json!({"v": 1}), None)).await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 1);
    send(&mut ws, save("b", "d", json!({"v": 2}), None)).await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 2);
}

#[tokio::test]
async fn users_never_see_each_others_drafts() {
    let server = server().await;
    let (mut ada, _) = connect(&server, 1).await;
    let (mut grace, _) = connect(&server, 2).await;
    send(
        &mut ada,
        save("a", "pitch_42", json!({"secret": "ada's"}), Some(0)),
    )
    .await;
    assert_eq!(next_frame(&mut ada).await["data"]["version"], 1);
    // Same draft id, other user: a separate draft, starting at version 1.
    send(
        &mut grace,
        save("g", "pitch_42", json!({"mine": true}), Some(0)),
    )
    .await;
    assert_eq!(next_frame(&mut grace).await["data"]["version"], 1);
    // And a stale save by grace shows grace's content, never ada's.
    send(&mut grace, save("g2", "pitch_42", json!({}), Some(0))).await;
    let c = next_frame(&mut grace).await;
    assert_eq!(c["data"]["serverContent"], json!({"mine": true}));
    assert!(frames_before_pong(&mut ada).await.is_empty());
    assert!(frames_before_pong(&mut grace).await.is_empty());
}

#[tokio::test]
async fn repeated_id_is_acked_again_but_applied_once() {
    let server = server().await;
    let (mut ws, _) = connect(&server, 7).await;
    let (mut other, _) = connect(&server, 7).await;
    let msg = save("c-once", "d", json!({"v": 1}), Some(0));
    send(&mut ws, msg.clone()).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "ack", "data": {"id": "c-once", "version": 1}})
    );
    assert_eq!(next_frame(&mut other).await["type"], "draft_sync");
    // The same message again (a client re-sending after a lost ack): same ack, no new version.
    send(&mut ws, msg.clone()).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "ack", "data": {"id": "c-once", "version": 1}})
    );
    // Also from another session of the same user (re-sent after a reconnect).
    drop(ws);
    let (mut again, _) = connect(&server, 7).await;
    send(&mut again, msg).await;
    assert_eq!(
        next_frame(&mut again).await,
        json!({"type": "ack", "data": {"id": "c-once", "version": 1}})
    );
    assert!(
        frames_before_pong(&mut other).await.is_empty(),
        "no second draft_sync"
    );
    // The next real save is version 2.
    send(&mut again, save("c-next", "d", json!({"v": 2}), Some(1))).await;
    assert_eq!(next_frame(&mut again).await["data"]["version"], 2);
}

#[tokio::test]
async fn repeated_pitch_view_is_counted_once() {
    let server = server().await;
    let (mut fan, _) = connect(&server, 2).await;
    send(
        &mut fan,
        json!({"type": "subscribe", "id": "s", "data": {"channel": "pitch:9"}}),
    )
    .await;
    assert_eq!(next_frame(&mut fan).await["type"], "ack");
    let (mut viewer, _) = connect(&server, 3).await;
    let view = json!({"type": "pitch_view", "id": "v-1", "data": {"pitchId": 9}});
    send(&mut viewer, view.clone()).await;
    send(&mut viewer, view).await;
    assert_eq!(next_frame(&mut viewer).await["type"], "ack");
    assert_eq!(next_frame(&mut viewer).await["type"], "ack");
    assert_eq!(next_frame(&mut fan).await["data"]["viewCount"], 1);
    assert!(frames_before_pong(&mut fan).await.is_empty());
}

#[tokio::test]
async fn dedup_window_expires() {
    let server = server_with(|c| c.dedup_window_ms = 0).await;
    let (mut ws, _) = connect(&server, 7).await;
    let msg = save("same", "d", json!({}), None);
    send(&mut ws, msg.clone()).await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    send(&mut ws, msg).await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 2);
}
