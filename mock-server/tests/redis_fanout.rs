//! Several instances through Redis: a real `redis-server` on a free loopback port, two server
//! instances sharing it, a client on each. Every cross-instance feature, then Redis restarted
//! under running instances.
//!
//! `redis-server` must be installed (`scripts/test.sh` installs it); without it these tests
//! fail with a message saying so, rather than pass without testing anything.

mod common;

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pitchey_mock_server::{RunningServer, ServerConfig, start};
use serde_json::{Value, json};

/// A `redis-server` child process, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Redis {
    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `redis-server` ({e}): these tests need it installed \
                     (`apt-get install -y redis-server`; scripts/test.sh installs it)"
                )
            });
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two instances on one Redis, with one secret so that a token works on either.
async fn pair(redis: &Redis) -> (RunningServer, RunningServer) {
    let secret = "redis-fanout-test-secret".to_owned();
    let mk = || {
        let mut c = ServerConfig::for_tests();
        c.jwt_secret = secret.clone();
        c.redis_url = Some(redis.url());
        c
    };
    let a = start(mk()).await.expect("instance A starts");
    let b = start(mk()).await.expect("instance B starts");
    wait_redis(&a, "up").await;
    wait_redis(&b, "up").await;
    (a, b)
}

async fn redis_status(server: &RunningServer) -> String {
    let (status, body) = http(
        server,
        "GET",
        "/api/ws/stats",
        Some(&server.admin_token(999)),
        None,
    )
    .await;
    assert_eq!(status, 200, "stats: {body}");
    body["redis"].as_str().unwrap_or_default().to_owned()
}

/// Wait (reconnect backoff is capped at 5 s) until the instance reports `want`.
async fn wait_redis(server: &RunningServer, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = redis_status(server).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis status {got}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /metrics` as text.
async fn metrics_text(server: &RunningServer) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("tcp connect");
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
        server.local_addr(),
        server.admin_token(999)
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("metrics in time")
        .expect("read metrics");
    String::from_utf8_lossy(&raw).into_owned()
}

async fn subscribe(ws: &mut Ws, channel: &str, id: &str) {
    send(
        ws,
        json!({"type": "subscribe", "id": id, "data": {"channel": channel}}),
    )
    .await;
    loop {
        let f = next_frame(ws).await;
        if f["type"] == "ack" && f["data"]["id"] == id {
            return;
        }
    }
}

/// Publications reach other instances asynchronously: a short grace before checking that
/// nothing else arrived.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

#[tokio::test]
async fn redis_server_is_installed() {
    let out = Command::new("redis-server").arg("--version").output();
    assert!(
        out.is_ok_and(|o| o.status.success()),
        "`redis-server` is not installed: `apt-get install -y redis-server` (scripts/test.sh does it)"
    );
}

#[tokio::test]
async fn notifications_and_announcements_cross_instances_once_with_shared_seqs() {
    let redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let (mut on_b, _) = connect(&b, 7).await;
    let (mut other_on_a, _) = connect(&a, 8).await;

    // Sent through A, the user is on B.
    let body = notify(&a, 7, "from A").await;
    assert_eq!(body["queued"], false, "{body}");
    let n = next_of_type(&mut on_b, "notification").await;
    assert_eq!(n["data"]["title"], "from A");
    assert_eq!(n["seq"], 1);
    // Through B next: numbered by Redis, so the seq follows on, never repeats.
    notify(&b, 7, "from B").await;
    let n = next_of_type(&mut on_b, "notification").await;
    assert_eq!(n["data"]["title"], "from B");
    assert_eq!(n["seq"], 2);

    // A second session of the same user on A: both sessions get each frame once, same seq.
    let (mut on_a, _) = connect(&a, 7).await;
    notify(&b, 7, "to both").await;
    for ws in [&mut on_a, &mut on_b] {
        let n = next_of_type(ws, "notification").await;
        assert_eq!(n["data"]["title"], "to both");
        assert_eq!(n["seq"], 3);
    }
    settle().await;
    for ws in [&mut on_a, &mut on_b] {
        let extra = frames_before_pong(ws).await;
        assert!(of_type(&extra, "notification").is_empty(), "{extra:?}");
    }

    // Announcement through A reaches users on both instances, once each.
    let (status, body) = http(
        &a,
        "POST",
        "/api/ws/announce",
        Some(&a.admin_token(999)),
        Some(json!({"title": "maintenance", "message": "at noon"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for ws in [&mut on_a, &mut on_b, &mut other_on_a] {
        let n = next_of_type(ws, "notification").await;
        assert_eq!(n["data"]["type"], "system");
        assert_eq!(n["data"]["title"], "maintenance");
    }
    settle().await;
    for ws in [&mut on_a, &mut on_b, &mut other_on_a] {
        let extra = frames_before_pong(ws).await;
        assert!(of_type(&extra, "notification").is_empty(), "{extra:?}");
    }

    // A user offline everywhere: queued in Redis through A, delivered on connecting to B.
    notify(&a, 11, "while away").await;
    settle().await;
    let (mut late, connected) = connect(&b, 11).await;
    let n = next_of_type(&mut late, "notification").await;
    assert_eq!(n["data"]["title"], "while away");
    assert_eq!(n["seq"], 1);
    assert_eq!(connected["data"]["lastSeq"], 0, "{connected}");

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn presence_and_following_online_are_shared() {
    let redis = Redis::start();
    let (a, b) = pair(&redis).await;
    // 8 follows 7, told to A; 8 is connected to B.
    let (status, body) = http(
        &a,
        "POST",
        "/api/ws/follow",
        Some(&a.token(8)),
        Some(json!({"userId": 7})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (mut follower, _) = connect(&b, 8).await;
    settle().await;

    let (mut seven_a, _) = connect(&a, 7).await;
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["userId"], 7);
    assert_eq!(p["data"]["status"], "online");
    // B answers from Redis, not from its own sessions (7 has none on B).
    let (_, body) = http(&b, "GET", "/api/ws/presence/7", Some(&b.token(8)), None).await;
    assert_eq!(body["status"], "online", "{body}");
    let (_, body) = http(
        &b,
        "GET",
        "/api/ws/following-online",
        Some(&b.token(8)),
        None,
    )
    .await;
    assert_eq!(body["count"], 1, "{body}");
    assert_eq!(body["users"][0]["userId"], 7, "{body}");

    // A status set on A.
    send(
        &mut seven_a,
        json!({"type": "presence_update", "data": {"status": "away"}}),
    )
    .await;
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["status"], "away");

    // 7 also on B, then leaves A: still connected somewhere, so no `offline`.
    let (mut seven_b, _) = connect(&b, 7).await;
    seven_a.close(None).await.expect("close");
    drop(seven_a);
    settle().await;
    let extra = frames_before_pong(&mut follower).await;
    assert!(of_type(&extra, "presence_update").is_empty(), "{extra:?}");
    let (_, body) = http(&a, "GET", "/api/ws/presence/7", Some(&a.token(8)), None).await;
    assert_ne!(body["status"], "offline", "{body}");

    // Gone from B too: offline everywhere.
    seven_b.close(None).await.expect("close");
    drop(seven_b);
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["status"], "offline");
    let (_, body) = http(&a, "GET", "/api/ws/presence/7", Some(&a.token(8)), None).await;
    assert_eq!(body["status"], "offline", "{body}");
    let (_, body) = http(
        &a,
        "GET",
        "/api/ws/following-online",
        Some(&a.token(8)),
        None,
    )
    .await;
    assert_eq!(body["count"], 0, "{body}");

    // An instance shutting down takes its users with it.
    let (_seven_again, _) = connect(&a, 7).await;
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["status"], "online");
    a.shutdown().await;
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["status"], "offline");
    let (_, body) = http(&b, "GET", "/api/ws/presence/7", Some(&b.token(8)), None).await;
    assert_eq!(body["status"], "offline", "{body}");
    b.shutdown().await;
}

#[tokio::test]
async fn typing_pitch_stats_and_drafts_cross_instances() {
    let redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let (mut typist, _) = connect(&a, 7).await;
    let (mut reader, _) = connect(&b, 8).await;

    // Typing on A, subscriber on B.
    subscribe(&mut reader, "conversation:5", "s1").await;
    send(
        &mut typist,
        json!({"type": "typing", "data": {"conversationId": 5, "isTyping": true}}),
    )
    .await;
    let t = next_of_type(&mut reader, "user_typing").await;
    assert_eq!(t["data"]["userId"], 7);
    assert_eq!(t["data"]["isTyping"], true);

    // Views on both instances, one shared count; the subscriber on B sees each.
    subscribe(&mut reader, "pitch:42", "s2").await;
    send(
        &mut typist,
        json!({"type": "pitch_view", "data": {"pitchId": 42}}),
    )
    .await;
    let s = next_of_type(&mut reader, "pitch_stats_update").await;
    assert_eq!(s["data"]["pitchId"], 42);
    assert_eq!(s["data"]["viewCount"], 1);
    send(
        &mut reader,
        json!({"type": "pitch_view", "data": {"pitchId": 42}}),
    )
    .await;
    let s = next_of_type(&mut reader, "pitch_stats_update").await;
    assert_eq!(s["data"]["viewCount"], 2);
    assert_eq!(s["data"]["uniqueViewers"], 2);
    assert_eq!(s["data"]["recentViewers"][0]["userId"], 8);
    // A subscriber on A gets the shared count on subscribing.
    settle().await;
    subscribe(&mut typist, "pitch:42", "s3").await;
    let s = next_of_type(&mut typist, "pitch_stats_update").await;
    assert_eq!(s["data"]["viewCount"], 2);

    // Drafts: a save on A reaches the user's session on B, and B can build on it.
    let (mut draft_b, _) = connect(&b, 7).await;
    send(
        &mut typist,
        json!({"type": "draft_sync", "id": "d-1", "data": {"draftId": "p1", "content": {"t": "one"}, "baseVersion": 0}}),
    )
    .await;
    let ack = next_of_type(&mut typist, "ack").await;
    assert_eq!(ack["data"]["version"], 1, "{ack}");
    let d = next_of_type(&mut draft_b, "draft_sync").await;
    assert_eq!(d["data"]["version"], 1);
    assert_eq!(d["data"]["content"]["t"], "one");
    send(
        &mut draft_b,
        json!({"type": "draft_sync", "id": "d-2", "data": {"draftId": "p1", "content": {"t": "two"}, "baseVersion": 1}}),
    )
    .await;
    let ack = next_of_type(&mut draft_b, "ack").await;
    assert_eq!(ack["data"]["version"], 2, "{ack}");
    let d = next_of_type(&mut typist, "draft_sync").await;
    assert_eq!(d["data"]["version"], 2);
    // The saving session does not get its own save back; another user never sees it.
    settle().await;
    for ws in [&mut draft_b, &mut reader] {
        let extra = frames_before_pong(ws).await;
        assert!(of_type(&extra, "draft_sync").is_empty(), "{extra:?}");
    }

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn redis_restart_keeps_local_delivery_and_cross_instance_comes_back() {
    let mut redis = Redis::start();
    let port = redis.port;
    let (a, b) = pair(&redis).await;
    let (mut on_a, _) = connect(&a, 7).await;
    let (mut on_b, _) = connect(&b, 8).await;
    let (mut watcher_a, _) = connect(&a, 9).await;
    subscribe(&mut watcher_a, "conversation:3", "w1").await;

    notify(&a, 8, "before").await;
    let n = next_of_type(&mut on_b, "notification").await;
    assert_eq!(n["data"]["title"], "before");
    assert_eq!(n["seq"], 1);

    redis.stop();
    wait_redis(&a, "down").await;
    wait_redis(&b, "down").await;
    assert!(metrics_text(&a).await.contains("pitchey_ws_redis_up 0"));

    // During the outage: sessions stay open and local delivery works.
    let body = notify(&a, 7, "during").await;
    assert_eq!(body["sessions"], 1, "{body}");
    let n = next_of_type(&mut on_a, "notification").await;
    assert_eq!(n["data"]["title"], "during");
    assert_eq!(n["seq"], 1);
    send(
        &mut on_a,
        json!({"type": "typing", "data": {"conversationId": 3, "isTyping": true}}),
    )
    .await;
    let t = next_of_type(&mut watcher_a, "user_typing").await;
    assert_eq!(t["data"]["userId"], 7);
    // Nothing crosses while Redis is away, and nothing is delivered twice after.
    notify(&a, 8, "lost in the outage").await;

    let _redis = Redis::start_on(port);
    wait_redis(&a, "up").await;
    wait_redis(&b, "up").await;
    assert!(metrics_text(&a).await.contains("pitchey_ws_redis_up 1"));

    // Cross-instance delivery is back; Redis restarted empty, and the seq still moves on.
    notify(&a, 8, "after").await;
    let n = next_of_type(&mut on_b, "notification").await;
    assert_eq!(n["data"]["title"], "after");
    assert!(n["seq"].as_u64().unwrap_or(0) >= 2, "{n}");
    notify(&b, 7, "after, the other way").await;
    let n = next_of_type(&mut on_a, "notification").await;
    assert_eq!(n["data"]["title"], "after, the other way");
    assert_eq!(n["seq"], 2, "{n}");
    // Presence re-asserted after the restart: 7 is online in the fresh Redis.
    let (_, body) = http(&b, "GET", "/api/ws/presence/7", Some(&b.token(8)), None).await;
    assert_eq!(body["status"], "online", "{body}");
    settle().await;
    let extra = frames_before_pong(&mut on_a).await;
    assert!(of_type(&extra, "notification").is_empty(), "{extra:?}");

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_bad_url_stops_the_start_and_an_absent_redis_does_not() {
    let mut config = ServerConfig::for_tests();
    config.redis_url = Some("not a redis url".into());
    let err = start(config).await.err().expect("a bad URL is refused");
    assert!(err.to_string().contains("Redis URL"), "{err}");

    // Nothing listens on this port: the instance starts, says `down`, and serves its own.
    let mut config = ServerConfig::for_tests();
    config.redis_url = Some(format!("redis://127.0.0.1:{}/", free_port()));
    let server = start(config).await.expect("starts without Redis");
    assert_eq!(redis_status(&server).await, "down");
    let (mut ws, _) = connect(&server, 7).await;
    notify(&server, 7, "alone").await;
    let n = next_of_type(&mut ws, "notification").await;
    assert_eq!(n["data"]["title"], "alone");
    assert_eq!(n["seq"], 1);
    server.shutdown().await;
}

/// Read `ws` until the answer to message `id` (an `ack` or a `draft_conflict`), keeping the
/// `draft_sync` frames seen on the way.
async fn draft_answer(ws: &mut Ws, id: &str, synced: &mut Vec<Value>) -> Value {
    loop {
        let f = next_frame(ws).await;
        match f["type"].as_str() {
            Some("ack") if f["data"]["id"] == id => return f,
            Some("draft_conflict") if f["id"] == id => return f,
            Some("draft_sync") => synced.push(f),
            _ => {}
        }
    }
}

fn save(id: &str, base: u64, content: Value) -> Value {
    json!({"type": "draft_sync", "id": id,
           "data": {"draftId": "deck", "draftType": "pitch", "content": content, "baseVersion": base}})
}

#[tokio::test]
async fn concurrent_draft_saves_on_two_instances_accept_exactly_one() {
    const ROUNDS: u64 = 50;
    let mut redis = Redis::start();
    let (a, b) = pair(&redis).await;
    let (mut on_a, _) = connect(&a, 7).await;
    let (mut on_b, _) = connect(&b, 7).await;
    let (mut synced_a, mut synced_b) = (Vec::new(), Vec::new());
    let mut last_acked: Option<(String, u64, Value)> = None;
    let (mut won_a, mut won_b) = (0, 0);
    for round in 0..ROUNDS {
        // Both saves are on the wire before either answer is read.
        let (id_a, id_b) = (format!("a-{round}"), format!("b-{round}"));
        let (content_a, content_b) = (
            json!({"by": "a", "round": round}),
            json!({"by": "b", "round": round}),
        );
        let (save_a, save_b) = (
            save(&id_a, round, content_a.clone()),
            save(&id_b, round, content_b.clone()),
        );
        // Written concurrently, and in turn first: neither instance is always ahead.
        if round % 2 == 0 {
            tokio::join!(send(&mut on_a, save_a), send(&mut on_b, save_b));
        } else {
            tokio::join!(send(&mut on_b, save_b), send(&mut on_a, save_a));
        }
        let answer_a = draft_answer(&mut on_a, &id_a, &mut synced_a).await;
        let answer_b = draft_answer(&mut on_b, &id_b, &mut synced_b).await;
        let (winner, loser, id, content) =
            match (answer_a["type"].as_str(), answer_b["type"].as_str()) {
                (Some("ack"), Some("draft_conflict")) => {
                    won_a += 1;
                    (answer_a, answer_b, id_a, content_a)
                }
                (Some("draft_conflict"), Some("ack")) => {
                    won_b += 1;
                    (answer_b, answer_a, id_b, content_b)
                }
                _ => panic!(
                    "round {round}: exactly one save must be accepted: {answer_a} / {answer_b}"
                ),
            };
        assert_eq!(winner["data"]["version"], round + 1, "{winner}");
        // The conflict carries the accepted save, so the client can merge on top of it.
        assert_eq!(loser["data"]["serverVersion"], round + 1, "{loser}");
        assert_eq!(loser["data"]["serverContent"], content, "{loser}");
        last_acked = Some((id, round + 1, content));
    }
    let Some((last_id, last_version, last_content)) = last_acked else {
        panic!("no save acked");
    };
    settle().await;
    synced_a.extend(frames_before_pong(&mut on_a).await);
    synced_b.extend(frames_before_pong(&mut on_b).await);
    // Each accepted save reached the other instance's session, once.
    let synced_count = |v: &[Value]| of_type(v, "draft_sync").len();
    assert_eq!(synced_count(&synced_a), won_b, "draft_sync on A");
    assert_eq!(synced_count(&synced_b), won_a, "draft_sync on B");
    eprintln!("{ROUNDS} rounds: {won_a} won on A, {won_b} on B; {ROUNDS} conflicts");

    // The last accepted id again, on the instance that did not accept it: the same ack, and
    // not applied twice (no new version, no draft_sync).
    let (repeat_on, other) = if last_id.starts_with('a') {
        (&mut on_b, &mut on_a)
    } else {
        (&mut on_a, &mut on_b)
    };
    send(
        repeat_on,
        save(&last_id, last_version - 1, json!({"repeat": true})),
    )
    .await;
    let ack = draft_answer(repeat_on, &last_id, &mut Vec::new()).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["data"]["version"], last_version, "{ack}");
    settle().await;
    let extra = frames_before_pong(other).await;
    assert!(of_type(&extra, "draft_sync").is_empty(), "{extra:?}");

    // Through Redis, then on each instance's own copy (Redis gone): the last acked save.
    send(&mut on_a, save("probe-redis", 0, json!(null))).await;
    let c = draft_answer(&mut on_a, "probe-redis", &mut Vec::new()).await;
    assert_eq!(c["type"], "draft_conflict", "{c}");
    assert_eq!(c["data"]["serverVersion"], last_version, "{c}");
    assert_eq!(c["data"]["serverContent"], last_content, "{c}");
    redis.stop();
    wait_redis(&a, "down").await;
    wait_redis(&b, "down").await;
    for (name, ws) in [("A", &mut on_a), ("B", &mut on_b)] {
        let id = format!("probe-{name}");
        send(ws, save(&id, 0, json!(null))).await;
        let c = draft_answer(ws, &id, &mut Vec::new()).await;
        assert_eq!(c["type"], "draft_conflict", "{name}: {c}");
        assert_eq!(c["data"]["serverVersion"], last_version, "{name}: {c}");
        assert_eq!(c["data"]["serverContent"], last_content, "{name}: {c}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

const SECRET: &str = "redis-fanout-test-secret";

/// The real binary on a free port with `--redis-url` and a liveness TTL of `ttl_ms`; returns
/// it and its address (read from the banner).
async fn spawn_instance(redis: &Redis, ttl_ms: u64) -> (Child, std::net::SocketAddr) {
    let url = redis.url();
    let ttl = ttl_ms.to_string();
    spawn_binary(
        &["--port", "0", "--redis-url", &url],
        &[
            ("JWT_SECRET", SECRET),
            ("RUST_LOG", "warn"),
            ("WS_INSTANCE_TTL_MS", &ttl),
        ],
    )
    .await
}

#[tokio::test]
async fn users_of_a_killed_instance_go_offline_after_its_liveness_ttl() {
    const TTL_MS: u64 = 1000;
    let redis = Redis::start();
    let (mut child, addr) = spawn_instance(&redis, TTL_MS).await;
    let mut config = ServerConfig::for_tests();
    config.jwt_secret = SECRET.to_owned();
    config.redis_url = Some(redis.url());
    config.instance_ttl_ms = TTL_MS;
    let b = start(config).await.expect("instance B starts");
    wait_redis(&b, "up").await;

    let (status, body) = http(
        &b,
        "POST",
        "/api/ws/follow",
        Some(&b.token(8)),
        Some(json!({"userId": 7})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (mut follower, _) = connect(&b, 8).await;
    settle().await;
    // The binary's link to Redis is up before its banner (start waits for it).
    let url = format!("ws://{addr}/ws?token={}", b.token(7));
    let (_seven, _) = connect_url(&url).await;
    let p = next_of_type(&mut follower, "presence_update").await;
    assert_eq!(p["data"]["userId"], 7);
    assert_eq!(p["data"]["status"], "online");

    // SIGKILL: no shutdown code runs, nothing leaves Redis.
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let killed = Instant::now();
    let p = next_of_type(&mut follower, "presence_update").await;
    let took = killed.elapsed();
    assert_eq!(p["data"]["userId"], 7, "{p}");
    assert_eq!(p["data"]["status"], "offline", "{p}");
    assert!(p["data"]["lastSeen"].is_string(), "{p}");
    assert!(
        took < Duration::from_millis(4 * TTL_MS),
        "offline after {took:?}"
    );
    let (_, body) = http(&b, "GET", "/api/ws/presence/7", Some(&b.token(8)), None).await;
    assert_eq!(body["status"], "offline", "{body}");
    assert!(body["lastSeen"].is_string(), "{body}");
    let (_, body) = http(
        &b,
        "GET",
        "/api/ws/following-online",
        Some(&b.token(8)),
        None,
    )
    .await;
    assert_eq!(body["count"], 0, "{body}");
    eprintln!("offline {took:?} after kill -9 (TTL {TTL_MS} ms)");
    b.shutdown().await;
}

/// Queue ten notifications of about 400 bytes for offline user 7; returns what the user gets
/// on connecting (the queue), its `connected`, whether a resume from 0 is honoured, and the
/// server's stats.
async fn queue_ten_and_connect(server: &RunningServer, redis: Option<&Redis>) -> QueuedRun {
    for i in 0..10 {
        let title = format!("n{i}-{}", "y".repeat(300));
        let (status, _) = http(
            server,
            "POST",
            "/api/ws/notify",
            Some(&server.admin_token(1)),
            Some(json!({"userId": 7, "notification": {"type": "message", "title": title, "message": ""}})),
        )
        .await;
        assert_eq!(status, 200);
    }
    if let Some(redis) = redis {
        // The link runs the scripts after answering: wait until the last one queued.
        let deadline = Instant::now() + WAIT;
        loop {
            let out = Command::new("redis-cli")
                .args([
                    "-p",
                    &redis.port.to_string(),
                    "LINDEX",
                    "pitchey:queue:7",
                    "-1",
                ])
                .output()
                .expect("redis-cli runs");
            if String::from_utf8_lossy(&out.stdout).contains("n9-") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the last notification was not queued"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (mut ws, connected) = connect(server, 7).await;
    let queued = frames_before_pong(&mut ws).await;
    send(
        &mut ws,
        json!({"type": "resume", "id": "r", "data": {"lastSeq": 0}}),
    )
    .await;
    let again = next_of_type(&mut ws, "connected").await;
    QueuedRun {
        queued,
        connected,
        resumed: again["data"]["resumed"].clone(),
        stats: admin_stats(server).await,
    }
}

struct QueuedRun {
    queued: Vec<Value>,
    connected: Value,
    resumed: Value,
    stats: Value,
}

#[tokio::test]
async fn the_redis_offline_queue_keeps_user_queue_bytes_like_memory_and_reports_the_loss() {
    let cap = |c: &mut ServerConfig| c.limits.user_queue_bytes = 2000;
    let memory = server_with(cap).await;
    let in_memory = queue_ten_and_connect(&memory, None).await;

    let redis = Redis::start();
    let mut config = ServerConfig::for_tests();
    cap(&mut config);
    config.redis_url = Some(redis.url());
    let shared = start(config).await.expect("instance starts");
    wait_redis(&shared, "up").await;
    let in_redis = queue_ten_and_connect(&shared, Some(&redis)).await;

    // Only the newest fit, the same ones as in memory, oldest dropped first.
    let titles = |r: &QueuedRun| -> Vec<String> {
        r.queued
            .iter()
            .map(|f| f["data"]["title"].as_str().unwrap_or("?")[..3].to_owned())
            .collect()
    };
    assert!(
        in_redis.queued.len() < 10 && !in_redis.queued.is_empty(),
        "{:?}",
        titles(&in_redis)
    );
    assert_eq!(titles(&in_redis), titles(&in_memory));
    assert_eq!(in_redis.queued.last().unwrap()["seq"], 10);
    // Continuity loss is reported the same way: the baseline is the seq before the first
    // kept frame, and a resume from before it is not honoured.
    let first_kept = in_redis.queued[0]["seq"].as_u64().unwrap();
    assert_eq!(in_redis.connected["data"]["lastSeq"], first_kept - 1);
    assert_eq!(
        in_redis.connected["data"]["lastSeq"],
        in_memory.connected["data"]["lastSeq"]
    );
    assert_eq!(in_redis.resumed, false);
    assert_eq!(in_memory.resumed, false);
    let dropped = (10 - in_redis.queued.len()) as u64;
    assert_eq!(
        in_redis.stats["offlineDropped"], dropped,
        "{}",
        in_redis.stats
    );
    assert_eq!(
        in_redis.stats["limits"]["offlineQueueBytesEvicted"],
        in_memory.stats["limits"]["offlineQueueBytesEvicted"],
        "{}",
        in_redis.stats
    );
    assert_eq!(
        in_redis.stats["limits"]["offlineQueueBytesEvicted"],
        dropped
    );
}
