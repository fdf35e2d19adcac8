//! Chaos: SDK clients and the real server binary, through a TCP proxy that cuts connections
//! and delays bytes, while the server is restarted twice on its `--data-dir` (once with
//! SIGTERM, once with SIGKILL).
//!
//! Each of `CHAOS_CLIENTS` native SDK clients (one user each) sends `CHAOS_MESSAGES` durable
//! `draft_sync` saves to its draft, message `k` saved on base version `k`, and receives
//! `CHAOS_NOTIFICATIONS` notifications posted over HTTP meanwhile. The server accepts a save
//! only on the current version, and every accepted save adds exactly one version. So when
//! every save is acked and the draft ends at version `CHAOS_MESSAGES` with the last content,
//! every save was applied exactly once and in the order sent: a lost save, a save applied
//! twice or out of order would have been answered with `draft_conflict` (which the client
//! reports as a failed send), or left the version elsewhere. Notifications are checked by
//! their server ids: each one the server created reaches its client exactly once.
//!
//! It lives with the server's tests because it needs the server binary (to SIGKILL it);
//! the clients are `pitchey-realtime`'s. It prints its counts on stderr. Knobs (environment,
//! defaults in brackets): `CHAOS_CLIENTS` [20], `CHAOS_MESSAGES` [1000] per client,
//! `CHAOS_NOTIFICATIONS` [100] per client (at most the replay log's 1000),
//! `CHAOS_CUT_MIN_MS` / `CHAOS_CUT_MAX_MS` [50 / 500]: after each pause drawn between them the
//! proxy resets one live connection picked at random, `CHAOS_DELAY_MAX_MS` [10]: each chunk
//! of bytes is held back up to this long, in order, `CHAOS_DEADLINE_SECS` [300]. E.g.
//! `CHAOS_CLIENTS=50 CHAOS_NOTIFICATIONS=500 cargo test -p pitchey-mock-server --test chaos
//! -- --nocapture`.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pitchey_mock_server::mint_token;
use pitchey_realtime::client::{Client, ClientError};
use pitchey_realtime::core::{Event, MessageId, SendError, SendFailure};
use pitchey_realtime::protocol::{ClientMessage, DraftSave};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

const SECRET: &str = "chaos-test-secret";
const DRAFT: &str = "chaos";

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    clients: u64,
    messages: u64,
    notifications: u64,
    cut_min: Duration,
    cut_max: Duration,
    delay_max: Duration,
    deadline: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let s = Settings {
            clients: env_u64("CHAOS_CLIENTS", 20),
            messages: env_u64("CHAOS_MESSAGES", 1000),
            notifications: env_u64("CHAOS_NOTIFICATIONS", 100),
            cut_min: Duration::from_millis(env_u64("CHAOS_CUT_MIN_MS", 50)),
            cut_max: Duration::from_millis(env_u64("CHAOS_CUT_MAX_MS", 500)),
            delay_max: Duration::from_millis(env_u64("CHAOS_DELAY_MAX_MS", 10)),
            deadline: Duration::from_secs(env_u64("CHAOS_DEADLINE_SECS", 300)),
        };
        assert!(s.clients > 0 && s.messages > 0, "{s:?}");
        assert!(s.cut_min <= s.cut_max, "{s:?}");
        // Beyond the replay log a client that was away could not get them all back.
        assert!(s.notifications <= 1000, "{s:?}");
        s
    }
}

fn token(user: u64) -> String {
    mint_token(SECRET, user, false, Duration::from_secs(3600)).expect("token")
}

// ---- the server binary ------------------------------------------------------------------

async fn start_server(dir: &Path) -> (Child, SocketAddr) {
    let dir = dir.to_str().expect("a UTF-8 temp dir");
    common::spawn_binary(
        &["--port", "0", "--data-dir", dir],
        &[
            ("JWT_SECRET", SECRET),
            ("RUST_LOG", "error"),
            // A bucket the clients never empty: the rate limit is not what is tested here,
            // and the clients pace themselves to what the server announces.
            ("WS_RATE_LIMIT_MAX_MESSAGES", "1000000"),
            ("WS_RATE_LIMIT_REFILL_RATE", "1000000"),
        ],
    )
    .await
}

/// Stop the server: SIGTERM (graceful: `disconnected`, close 1001, final commit) or
/// SIGKILL (nothing runs).
async fn stop_server(mut child: Child, graceful: bool) {
    if graceful {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    } else {
        child.kill().expect("SIGKILL");
    }
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("waiter")
        .expect("the server exits");
}

// ---- the proxy --------------------------------------------------------------------------

#[derive(Default)]
struct Proxy {
    /// Where the server listens now (it gets a new port on every start).
    upstream: Mutex<Option<SocketAddr>>,
    /// Live connections, by number: sending on one cuts it.
    live: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    accepted: AtomicU64,
    cuts: AtomicU64,
    stop_cutting: AtomicBool,
}

impl Proxy {
    fn set_upstream(&self, addr: Option<SocketAddr>) {
        *self.upstream.lock().unwrap() = addr;
    }

    fn upstream(&self) -> Option<SocketAddr> {
        *self.upstream.lock().unwrap()
    }
}

async fn run_proxy(listener: TcpListener, proxy: Arc<Proxy>, delay_max: Duration) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let n = proxy.accepted.fetch_add(1, Ordering::Relaxed);
        let (cut, cut_rx) = oneshot::channel();
        proxy.live.lock().unwrap().insert(n, cut);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            serve_connection(client, &proxy, cut_rx, delay_max).await;
            proxy.live.lock().unwrap().remove(&n);
        });
    }
}

async fn serve_connection(
    mut client: TcpStream,
    proxy: &Proxy,
    cut: oneshot::Receiver<()>,
    delay_max: Duration,
) {
    // Server down (between a stop and the next start): the client sees a refused link.
    let server = match proxy.upstream() {
        Some(addr) => TcpStream::connect(addr).await.ok(),
        None => None,
    };
    let Some(mut server) = server else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let cut_now = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        tokio::select! {
            r = cut => r.is_ok(),
            _ = async {
                tokio::join!(
                    pump(&mut cr, &mut sw, delay_max),
                    pump(&mut sr, &mut cw, delay_max)
                )
            } => false,
        }
    };
    if cut_now {
        // A reset, not a FIN: both ends lose whatever was in flight, mid-frame or not.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// Copy bytes one way, each chunk held back up to `delay_max` (order is kept).
async fn pump(src: &mut ReadHalf<'_>, dst: &mut WriteHalf<'_>, delay_max: Duration) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = rand::rng().random_range(Duration::ZERO..=delay_max);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if dst.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = dst.shutdown().await;
}

/// Cut one live connection, picked at random, after every pause in `[min, max]`.
async fn run_cutter(proxy: Arc<Proxy>, min: Duration, max: Duration) {
    while !proxy.stop_cutting.load(Ordering::Relaxed) {
        let pause = rand::rng().random_range(min..=max);
        tokio::time::sleep(pause).await;
        let victim = {
            let mut live = proxy.live.lock().unwrap();
            let keys: Vec<u64> = live.keys().copied().collect();
            if keys.is_empty() {
                None
            } else {
                let k = keys[rand::rng().random_range(0..keys.len())];
                live.remove(&k)
            }
        };
        if let Some(cut) = victim
            && cut.send(()).is_ok()
        {
            proxy.cuts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---- notifications over HTTP ------------------------------------------------------------

enum Posted {
    Created(Value),
    /// Refused or never reached the server: not applied.
    NotApplied,
    /// The request may have been applied, but no answer came (the server died).
    Unknown,
}

async fn post_notify(addr: SocketAddr, user: u64, title: &str) -> Posted {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Posted::NotApplied;
    };
    let body = json!({"userId": user, "notification": {"type": "message", "title": title, "message": "chaos"}})
        .to_string();
    let req = format!(
        "POST /api/ws/notify HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        // An admin's token: the server gives user tokens a per-minute notify budget.
        mint_token(SECRET, 1_000_000, true, Duration::from_secs(3600)).expect("token"),
        body.len()
    );
    if stream.write_all(req.as_bytes()).await.is_err() {
        return Posted::Unknown;
    }
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    if !matches!(read, Ok(Ok(_))) {
        return Posted::Unknown;
    }
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Posted::Unknown;
    };
    match head.split_whitespace().nth(1) {
        Some("200") => Posted::Created(serde_json::from_str(body).expect("JSON answer")),
        // 503 while shutting down, 500 when the store failed: nothing was done.
        Some(_) => Posted::NotApplied,
        None => Posted::Unknown,
    }
}

/// What the test knows about one user's notifications.
#[derive(Default)]
struct Notes {
    /// Ids of notifications the server answered for.
    created: HashSet<String>,
    /// Titles of requests that may or may not have been applied.
    unknown: HashSet<String>,
    /// (id, title) in the order the client received them.
    received: Vec<(String, String)>,
}

// ---- clients ----------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    acked: Mutex<HashSet<MessageId>>,
    failed: Mutex<Vec<(MessageId, SendFailure)>>,
    continuity_lost: AtomicU64,
    lagged: AtomicU64,
    /// Woken on every ack: a sender waiting for room in the queue tries again.
    room: Notify,
}

fn save(k: u64) -> ClientMessage {
    ClientMessage::DraftSync(DraftSave {
        draft_id: DRAFT.into(),
        draft_type: None,
        content: json!({ "k": k }),
        base_version: Some(k),
    })
}

/// Send `n` saves in order; a full queue waits for acks to make room.
async fn send_all(client: Client, tally: Arc<Tally>, n: u64) -> Vec<MessageId> {
    let mut ids = Vec::with_capacity(n as usize);
    for k in 0..n {
        loop {
            match client.send(save(k)) {
                Ok(id) => {
                    ids.push(id);
                    break;
                }
                Err(ClientError::Send(SendError::QueueFull { .. })) => {
                    let _ = tokio::time::timeout(Duration::from_millis(50), tally.room.notified())
                        .await;
                }
                Err(e) => panic!("send {k} refused: {e}"),
            }
        }
    }
    ids
}

fn report(line: &str) {
    // Straight to stderr: the counts belong in the CI log even when the test passes
    // (the test harness captures `eprintln!`).
    let _ = writeln!(std::io::stderr(), "chaos: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_through_cuts_delays_and_two_restarts_lose_and_duplicate_nothing() {
    let s = Settings::from_env();
    report(&format!("{s:?}"));
    let began = Instant::now();
    let deadline = began + s.deadline;
    let dir = tempfile::tempdir().unwrap();

    let (mut server, addr) = start_server(dir.path()).await;
    let proxy = Arc::new(Proxy::default());
    proxy.set_upstream(Some(addr));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let proxy_task = tokio::spawn(run_proxy(listener, proxy.clone(), s.delay_max));
    let cutter = tokio::spawn(run_cutter(proxy.clone(), s.cut_min, s.cut_max));

    // ---- clients: listeners first, so no ack or notification can slip past.
    let users: Vec<u64> = (1..=s.clients).collect();
    let mut clients = HashMap::new();
    let mut tallies = HashMap::new();
    let notes: Arc<Mutex<HashMap<u64, Notes>>> = Arc::default();
    let mut readers = Vec::new();
    for &user in &users {
        let client = Client::builder(proxy_url.clone())
            .token(token(user))
            .event_buffer(1 << 16)
            .configure(|c| {
                // Cuts come every few seconds per client: with the default 10 s "stayed up"
                // reset the backoff would climb to its 30 s cap and the run would crawl.
                c.backoff.max = Duration::from_secs(1);
                c.backoff.reset_after = Duration::from_secs(1);
                // A message cut off ten times is the network's fault here, not the message's.
                c.max_send_attempts = 10_000;
            })
            .build()
            .expect("client builds");
        let tally = Arc::new(Tally::default());
        let mut events = client.events();
        let t = tally.clone();
        readers.push(tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                match item {
                    Ok(Event::Acked(id)) => {
                        t.acked.lock().unwrap().insert(id);
                        t.room.notify_waiters();
                    }
                    Ok(Event::SendFailed(id, why)) => t.failed.lock().unwrap().push((id, why)),
                    Ok(Event::ContinuityLost) => {
                        t.continuity_lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        t.lagged.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
        let mut stream = client.notifications().expect("subscribe");
        let (t, notes_in) = (tally.clone(), notes.clone());
        readers.push(tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(n) => notes_in
                        .lock()
                        .unwrap()
                        .entry(user)
                        .or_default()
                        .received
                        .push((n.id, n.title)),
                    Err(_) => {
                        t.lagged.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
        client.connect().expect("connect");
        clients.insert(user, client);
        tallies.insert(user, tally);
    }

    // ---- load: every client's saves, and notifications spread over the run.
    let total = s.clients * s.messages;
    let acked_total = {
        let tallies = tallies.clone();
        move || -> u64 {
            tallies
                .values()
                .map(|t| t.acked.lock().unwrap().len() as u64)
                .sum()
        }
    };
    let senders: HashMap<u64, _> = users
        .iter()
        .map(|&u| {
            let job = send_all(clients[&u].clone(), tallies[&u].clone(), s.messages);
            (u, tokio::spawn(job))
        })
        .collect();
    let server_addr: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(Some(addr)));
    let notifier = {
        let (server_addr, notes, acked_total, users) = (
            server_addr.clone(),
            notes.clone(),
            acked_total.clone(),
            users.clone(),
        );
        tokio::spawn(async move {
            for round in 0..s.notifications {
                // Paced by the saves' progress, so that notifications meet both restarts.
                while acked_total() * s.notifications < round * total {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                for &user in &users {
                    let title = format!("u{user} r{round}");
                    loop {
                        let target = *server_addr.lock().unwrap();
                        let posted = match target {
                            Some(addr) => post_notify(addr, user, &title).await,
                            None => Posted::NotApplied,
                        };
                        match posted {
                            Posted::Created(body) => {
                                let id = body["notification"]["id"]
                                    .as_str()
                                    .expect("notification id")
                                    .to_owned();
                                let mut notes = notes.lock().unwrap();
                                let created = &mut notes.entry(user).or_default().created;
                                assert!(created.insert(id.clone()), "id {id} handed out twice");
                                break;
                            }
                            Posted::NotApplied => {}
                            Posted::Unknown => {
                                let mut notes = notes.lock().unwrap();
                                notes.entry(user).or_default().unknown.insert(title.clone());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };

    // ---- two restarts while all of that runs: at a third and at two thirds of the saves.
    let mut restarts = Vec::new();
    for (i, graceful) in [(1u64, true), (2, false)] {
        while acked_total() * 3 < total * i {
            assert_no_failures(&tallies);
            assert!(
                Instant::now() < deadline,
                "deadline before restart {i}: {} of {total} saves acked",
                acked_total()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let down = Instant::now();
        proxy.set_upstream(None);
        *server_addr.lock().unwrap() = None;
        stop_server(server, graceful).await;
        let (next, addr) = start_server(dir.path()).await;
        server = next;
        proxy.set_upstream(Some(addr));
        *server_addr.lock().unwrap() = Some(addr);
        restarts.push(format!(
            "{} at {} acked, down {} ms",
            if graceful { "SIGTERM" } else { "SIGKILL" },
            acked_total(),
            down.elapsed().as_millis()
        ));
    }

    // ---- every save acked, then every notification received.
    let mut sent_ids = HashMap::new();
    for (user, job) in senders {
        let ids = tokio::time::timeout(deadline - Instant::now(), job)
            .await
            .expect("senders finish before the deadline")
            .expect("sender");
        sent_ids.insert(user, ids);
    }
    while acked_total() < total {
        assert_no_failures(&tallies);
        assert!(
            Instant::now() < deadline,
            "deadline: {} of {total} saves acked",
            acked_total()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let saves_done = began.elapsed();
    tokio::time::timeout(deadline - Instant::now(), notifier)
        .await
        .expect("notifications posted before the deadline")
        .expect("notifier");
    loop {
        let missing: usize = {
            let notes = notes.lock().unwrap();
            notes
                .values()
                .map(|n| {
                    let got: HashSet<&String> = n.received.iter().map(|(id, _)| id).collect();
                    n.created.iter().filter(|id| !got.contains(id)).count()
                })
                .sum()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deadline: {missing} notifications never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Calm: no more cuts; anything delivered twice would show up now.
    proxy.stop_cutting.store(true, Ordering::Relaxed);
    cutter.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // ---- saves: each acked once, none failed, and the server's draft shows exactly
    // `messages` applications in the order sent.
    assert_no_failures(&tallies);
    for (user, ids) in &sent_ids {
        assert_eq!(ids.len() as u64, s.messages);
        let acked = tallies[user].acked.lock().unwrap();
        let unique: HashSet<&MessageId> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "user {user}: ids reused");
        assert!(ids.iter().all(|id| acked.contains(id)), "user {user}");
    }
    let final_addr = addr_of(&server_addr);
    for &user in &users {
        let (version, content) = draft_on_server(final_addr, user).await;
        assert_eq!(
            (version, content),
            (s.messages, json!({ "k": s.messages - 1 })),
            "user {user}: the server's draft"
        );
    }

    // ---- notifications: each one the server created reached its user exactly once.
    let (mut created, mut received, mut unknown, mut unknown_arrived) = (0, 0, 0, 0);
    {
        let notes = notes.lock().unwrap();
        for &user in &users {
            let n = &notes[&user];
            let mut seen = HashSet::new();
            for (id, title) in &n.received {
                assert!(seen.insert(id), "user {user}: notification {id} twice");
                assert!(
                    title.starts_with(&format!("u{user} ")),
                    "user {user} got {title}"
                );
                if !n.created.contains(id) {
                    // Only a request whose answer was lost with the server may add one.
                    assert!(n.unknown.contains(title), "user {user}: unexpected {id}");
                    unknown_arrived += 1;
                }
            }
            created += n.created.len();
            received += n.received.len();
            unknown += n.unknown.len();
        }
    }
    assert_eq!(created as u64, s.clients * s.notifications);

    let (mut reconnects, mut frames_sent, mut duplicates) = (0, 0, 0);
    for client in clients.values() {
        let m = client.metrics().unwrap();
        reconnects += m.reconnects;
        frames_sent += m.frames_sent;
        duplicates += m.duplicates_dropped;
    }
    let lagged: u64 = tallies
        .values()
        .map(|t| t.lagged.load(Ordering::Relaxed))
        .sum();
    let continuity: u64 = tallies
        .values()
        .map(|t| t.continuity_lost.load(Ordering::Relaxed))
        .sum();
    assert_eq!(lagged, 0, "a reader fell behind");
    report(&format!(
        "{} clients x {} saves = {total} acked, each applied once in order (saves done in {:.1} s)",
        s.clients,
        s.messages,
        saves_done.as_secs_f64()
    ));
    report(&format!(
        "notifications: {created} created, {received} received, none twice \
         ({unknown} requests unanswered when the server died, {unknown_arrived} of them applied)"
    ));
    report(&format!(
        "proxy: {} connections, {} cut; restarts: {}",
        proxy.accepted.load(Ordering::Relaxed),
        proxy.cuts.load(Ordering::Relaxed),
        restarts.join("; ")
    ));
    report(&format!(
        "clients: {reconnects} reconnects, {frames_sent} frames written, {duplicates} duplicate \
         frames dropped by seq, {continuity} continuity losses; total {:.1} s",
        began.elapsed().as_secs_f64()
    ));

    for client in clients.values() {
        let _ = client.disconnect();
    }
    proxy_task.abort();
    stop_server(server, true).await;
}

fn addr_of(addr: &Mutex<Option<SocketAddr>>) -> SocketAddr {
    addr.lock().unwrap().expect("server running")
}

fn assert_no_failures(tallies: &HashMap<u64, Arc<Tally>>) {
    for (user, t) in tallies {
        let failed = t.failed.lock().unwrap();
        assert!(failed.is_empty(), "user {user}: sends failed: {failed:?}");
    }
}

/// The server's version and content of `user`'s draft, read the protocol's way: a save on a
/// base no draft has is answered with `draft_conflict` carrying both (and changes nothing).
async fn draft_on_server(addr: SocketAddr, user: u64) -> (u64, Value) {
    let url = format!("ws://{addr}/ws?token={}", token(user));
    let (mut ws, _) = common::connect_url(&url).await;
    common::send(
        &mut ws,
        json!({"type": "draft_sync", "data": {"draftId": DRAFT, "content": null, "baseVersion": u64::MAX}}),
    )
    .await;
    let conflict = common::next_of_type(&mut ws, "draft_conflict").await;
    let version = conflict["data"]["serverVersion"]
        .as_u64()
        .expect("serverVersion");
    (version, conflict["data"]["serverContent"].clone())
}
