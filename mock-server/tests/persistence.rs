//! `--data-dir`: the real binary is killed with SIGKILL while clients write, started again on
//! the same directory, and everything it acknowledged is still there: queued notifications,
//! draft versions, the replay log a client resumes from. A corrupt store stops the start.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use pitchey_mock_server::mint_token;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_pitchey-mock-server");
const SECRET: &str = "persistence-test-secret";

fn token(user: u64, admin: bool) -> String {
    mint_token(SECRET, user, admin, Duration::from_secs(3600)).unwrap()
}

/// The binary on a free port with `--data-dir dir`; returns it and its address (read from
/// the banner).
async fn spawn(dir: &Path) -> (Child, SocketAddr) {
    spawn_with(dir, &[]).await
}

/// [`spawn`] with more command-line arguments.
async fn spawn_with(dir: &Path, more: &[&str]) -> (Child, SocketAddr) {
    let dir = dir.to_str().expect("a UTF-8 temp dir");
    let mut args = vec!["--port", "0", "--data-dir", dir];
    args.extend_from_slice(more);
    spawn_binary(
        &args,
        &[
            ("JWT_SECRET", SECRET),
            ("RUST_LOG", "warn"),
            // The test writes as fast as it can; the rate limit is not what is tested here.
            ("WS_RATE_LIMIT_ENABLED", "false"),
            ("WS_OFFLINE_QUEUE_CAP", "100000"),
            ("WS_REPLAY_LOG_CAP", "100000"),
        ],
    )
    .await
}

fn kill9(child: &mut Child) {
    // Child::kill is SIGKILL on Unix: no shutdown code runs.
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A plain HTTP/1.1 request to `addr`; `None` when the server is gone.
async fn http_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let body = body.to_string();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn notification(n: u64) -> Value {
    json!({"userId": 8, "notification": {"type": "message", "title": format!("t{n}"), "message": "m", "data": {"n": n}}})
}

fn draft_save(n: u64) -> Message {
    Message::text(
        json!({"type": "draft_sync", "id": format!("d-{n}"),
               "data": {"draftId": "deck", "draftType": "pitch", "content": {"n": n}, "baseVersion": n - 1}})
        .to_string(),
    )
}

#[tokio::test]
async fn kill_9_loses_no_acked_message_and_no_draft_version() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path()).await;
    let url = |user: u64, q: &str| format!("ws://{addr}/ws?token={}{q}", token(user, false));

    // User 9 reads notifications 1..=10, then stops reading while 11..=20 are sent: what it
    // has not read it will get by resuming from its last seq after the restart.
    let (mut reader, _) = connect_url(&url(9, "")).await;
    let to9 = |n: u64| json!({"userId": 9, "notification": {"type": "message", "title": format!("r{n}"), "message": "m"}});
    for n in 1..=10 {
        let (status, _) = http_at(addr, "POST", "/api/ws/notify", &token(1, true), to9(n))
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let mut last_seq = 0;
    for _ in 1..=10 {
        let f = next_of_type(&mut reader, "notification").await;
        last_seq = f["seq"].as_u64().unwrap();
    }
    assert_eq!(last_seq, 10);
    for n in 11..=20 {
        let (status, _) = http_at(addr, "POST", "/api/ws/notify", &token(1, true), to9(n))
            .await
            .unwrap();
        assert_eq!(status, 200);
    }

    // Under load: notifications to offline user 8 over HTTP, and draft saves from user 7,
    // pipelined. The server is killed while both are in flight.
    let acked_notes = Arc::new(AtomicU64::new(0));
    let notes = {
        let acked = acked_notes.clone();
        tokio::spawn(async move {
            for n in 1.. {
                match http_at(
                    addr,
                    "POST",
                    "/api/ws/notify",
                    // Admin: a user token may send 60 a minute, this is a flood on purpose.
                    &token(1, true),
                    notification(n),
                )
                .await
                {
                    Some((200, body)) => {
                        assert_eq!(body["queued"], true, "{body}");
                        acked.store(n, Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        })
    };
    let (writer, _) = connect_url(&url(7, "")).await;
    let saves = 100_000;
    let (mut sink, mut stream) = writer.split();
    let sender = tokio::spawn(async move {
        for n in 1..=saves {
            if sink.send(draft_save(n)).await.is_err() {
                return;
            }
        }
    });
    let mut acked_version = 0;
    // Both flows well under way (and still going) when the kill comes.
    while acked_version < 300 || acked_notes.load(Ordering::SeqCst) < 100 {
        let msg = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
        let Some(Ok(Message::Text(t))) = msg else {
            panic!("writer lost before the kill: {msg:?}")
        };
        let f: Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(f["type"], "ack", "{f}");
        acked_version = f["data"]["version"].as_u64().unwrap();
    }
    kill9(&mut child);
    // Acks already on the wire when the server died were sent, so they count too.
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(1), stream.next()).await
    {
        if let Message::Text(t) = msg {
            let f: Value = serde_json::from_str(t.as_str()).unwrap();
            if f["type"] == "ack" {
                acked_version = f["data"]["version"].as_u64().unwrap();
            }
        }
    }
    let _ = sender.await;
    let _ = notes.await;
    let acked_notes = acked_notes.load(Ordering::SeqCst);
    assert!(
        acked_notes > 0,
        "some notifications were acked before the kill"
    );

    let (mut child, addr) = spawn(dir.path()).await;
    let url = |user: u64, q: &str| format!("ws://{addr}/ws?token={}{q}", token(user, false));

    // Offline user 8 gets its queue: every acked notification, in order.
    let (mut ws8, hello) = connect_url(&url(8, "")).await;
    let mut recovered_notes = 0;
    let mut seqs = Vec::new();
    for f in frames_before_pong(&mut ws8).await {
        assert_eq!(f["type"], "notification", "{f}");
        recovered_notes += 1;
        assert_eq!(
            f["data"]["data"]["n"], recovered_notes,
            "in order, none missing"
        );
        seqs.push(f["seq"].as_u64().unwrap());
    }
    // At least what was acked; one more is fine (committed, killed before the answer).
    assert!(
        recovered_notes >= acked_notes && recovered_notes <= acked_notes + 1,
        "acked {acked_notes}, recovered {recovered_notes}"
    );
    assert_eq!(seqs, (1..=recovered_notes).collect::<Vec<_>>());
    assert_eq!(hello["data"]["lastSeq"], 0);

    // User 7's draft is at least at the last acked version, with that version's content.
    let (mut ws7, _) = connect_url(&url(7, "")).await;
    send(
        &mut ws7,
        json!({"type": "draft_sync", "id": "probe", "data": {"draftId": "deck", "content": {}, "baseVersion": 0}}),
    )
    .await;
    let conflict = next_frame(&mut ws7).await;
    assert_eq!(conflict["type"], "draft_conflict", "{conflict}");
    let recovered_version = conflict["data"]["serverVersion"].as_u64().unwrap();
    assert!(
        recovered_version >= acked_version,
        "acked {acked_version}, recovered {recovered_version}"
    );
    assert_eq!(
        conflict["data"]["serverContent"],
        json!({"n": recovered_version})
    );
    // A save acked before the kill is recognised as a duplicate: acked again, not applied.
    ws7.send(draft_save(acked_version)).await.unwrap();
    assert_eq!(
        next_frame(&mut ws7).await,
        json!({"type": "ack", "data": {"id": format!("d-{acked_version}"), "version": acked_version}})
    );

    // User 9 resumes from its last seq: 11..=20 follow, in full.
    let (mut ws9, hello) = connect_url(&url(9, &format!("&lastSeq={last_seq}"))).await;
    assert_eq!(hello["data"]["resumed"], true, "{hello}");
    let missed: Vec<u64> = frames_before_pong(&mut ws9)
        .await
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(missed, (11..=20).collect::<Vec<_>>());
    // New notifications continue the numbering rather than reuse a seq.
    let (status, _) = http_at(addr, "POST", "/api/ws/notify", &token(1, true), to9(21))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(next_of_type(&mut ws9, "notification").await["seq"], 21);
    drop(reader);

    eprintln!(
        "kill -9: notifications to an offline user: {acked_notes} acked, {recovered_notes} recovered; \
         draft saves: {acked_version} acked, version {recovered_version} recovered; \
         resume after restart: {} of 10 missed frames replayed",
        missed.len()
    );
    kill9(&mut child);
}

#[tokio::test]
async fn corrupt_store_stops_the_start_with_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(pitchey_mock_server::persist::STORE_FILE);
    std::fs::write(&file, b"this is not a database\n".repeat(400)).unwrap();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            Command::new(BIN)
                .args(["--port", "0", "--data-dir"])
                .arg(&dir)
                .env("JWT_SECRET", SECRET)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "must not start on a corrupt store");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&file.display().to_string()),
        "the error names the file: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no banner: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn data_dir_in_the_library_keeps_drafts_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let server = server_with(|c| c.data_dir = Some(path.clone())).await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "draft_sync", "id": "a", "data": {"draftId": "x", "content": {"v": 1}, "baseVersion": 0}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 1);
    drop(ws);
    server.shutdown().await;

    let server = server_with(|c| c.data_dir = Some(path.clone())).await;
    let (mut ws, _) = connect(&server, 7).await;
    send(
        &mut ws,
        json!({"type": "draft_sync", "id": "b", "data": {"draftId": "x", "content": {"v": 2}, "baseVersion": 1}}),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await["data"]["version"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_store_in_use_by_another_server_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let first = server_with(|c| c.data_dir = Some(path)).await;
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            Command::new(BIN)
                .args(["--port", "0", "--data-dir"])
                .arg(&dir)
                .env("JWT_SECRET", SECRET)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "two servers on one store");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pitchey.redb"), "{stderr}");
    first.shutdown().await;
}

#[tokio::test]
async fn a_delivered_queue_is_not_delivered_again_after_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let server = server_with(|c| c.data_dir = Some(path.clone())).await;
    notify(&server, 8, "while away").await;
    let (mut ws, _) = connect(&server, 8).await;
    assert_eq!(next_frame(&mut ws).await["data"]["title"], "while away");
    drop(ws);
    server.shutdown().await;

    let server = server_with(|c| c.data_dir = Some(path.clone())).await;
    let (mut ws, hello) = connect(&server, 8).await;
    assert_eq!(hello["data"]["lastSeq"], 1);
    assert!(frames_before_pong(&mut ws).await.is_empty());
    server.shutdown().await;
}

/// Many senders at once are committed in groups: killed in the middle of the burst, the
/// server must still have every id it acked (a resent acked id is acked again as a duplicate
/// with its version, never applied a second time or refused as a conflict).
#[tokio::test]
async fn kill_9_during_a_burst_from_many_senders_keeps_every_acked_id() {
    const SENDERS: u64 = 40;
    // Enough that the kill lands mid-burst, few enough that resending every acked id after
    // the restart stays quick (pipelined senders get acks at tens of thousands a second).
    const PER_SENDER: u64 = 10_000;
    // Every acked id is resent after the restart, so every one must be inside the de-dup
    // window: a sender that pipelines gets thousands acked before the kill, past the
    // default cap of 4,096 ids per user (beyond it an id is forgotten by design).
    const DEDUP: &[&str] = &["--dedup-ids", "1000000"];
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_with(dir.path(), DEDUP).await;
    let url = |user: u64| format!("ws://{addr}/ws?token={}", token(user, false));
    let acked: Arc<std::sync::Mutex<Vec<(u64, u64)>>> = Arc::default();
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for user in 100..100 + SENDERS {
        let (ws, _) = connect_url(&url(user)).await;
        let (acked, total) = (acked.clone(), total.clone());
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            tokio::spawn(async move {
                for n in 1..=PER_SENDER {
                    if tx.send(draft_save(n)).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(Message::Text(t))) = rx.next().await {
                let f: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if f["type"] == "ack" {
                    let version = f["data"]["version"].as_u64().unwrap();
                    acked.lock().unwrap().push((user, version));
                    total.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Well into the burst, every sender still going.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while total.load(Ordering::Relaxed) < SENDERS * 20 {
        assert!(std::time::Instant::now() < deadline, "too few acks");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill9(&mut child);
    for t in tasks {
        let _ = t.await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        (acked.len() as u64) < SENDERS * PER_SENDER,
        "the kill came after the burst: every save was acked"
    );

    let (mut child, addr) = spawn_with(dir.path(), DEDUP).await;
    let url = |user: u64| format!("ws://{addr}/ws?token={}", token(user, false));
    for user in 100..100 + SENDERS {
        let versions: Vec<u64> = acked
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, v)| *v)
            .collect();
        let (ws, _) = connect_url(&url(user)).await;
        let (mut tx, mut rx) = ws.split();
        // Save n is acked with version n (each on top of the last).
        for v in &versions {
            tx.send(draft_save(*v)).await.unwrap();
        }
        for v in &versions {
            let f = match tokio::time::timeout(WAIT, rx.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    serde_json::from_str::<Value>(t.as_str()).unwrap()
                }
                other => panic!("user {user}: no answer for d-{v}: {other:?}"),
            };
            assert_eq!(
                f,
                json!({"type": "ack", "data": {"id": format!("d-{v}"), "version": v}}),
                "user {user}: acked id d-{v} lost"
            );
        }
    }
    eprintln!(
        "kill -9 during a burst: {} acks from {SENDERS} senders, every acked id kept",
        acked.len()
    );
    kill9(&mut child);
}
