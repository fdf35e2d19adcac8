//! A new session's first frames (offline queue, replay) come from the store, and may be
//! younger than its last commit: they must not be written before that commit is durable, or
//! a crash hands their `seq` and notification id out again (the chaos test saw one
//! notification id twice after a kill -9).

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use pitchey_realtime::protocol::NewNotification;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::auth::mint_token;
use crate::config::ServerConfig;
use crate::group_commit::{Durability, GroupCommit};
use crate::hub::Hub;
use crate::store::{
    Applied, CommitStats, Evictions, LoggedFrame, MemoryStore, QueuedFrame, Store, StoreLimits,
};

/// A memory store whose commits wait for the test to let them through.
struct GatedStore {
    mem: MemoryStore,
    writer: GroupCommit<()>,
    last: Durability,
}

impl GatedStore {
    fn new(gate: std_mpsc::Receiver<()>, limits: StoreLimits) -> Self {
        let writer = GroupCommit::start("gated".into(), move |_: &[()]| {
            gate.recv().map_err(|e| e.to_string())
        });
        GatedStore {
            mem: MemoryStore::new(limits),
            writer,
            last: Durability::default(),
        }
    }
}

impl Store for GatedStore {
    fn next_seq(&mut self, user: u64) -> u64 {
        self.mem.next_seq(user)
    }
    fn last_seq(&self, user: u64) -> u64 {
        self.mem.last_seq(user)
    }
    fn log_append(&mut self, user: u64, frame: LoggedFrame) {
        self.mem.log_append(user, frame)
    }
    fn log_oldest(&self, user: u64) -> Option<u64> {
        self.mem.log_oldest(user)
    }
    fn log_range(&self, user: u64, after: u64, upto: u64) -> Vec<LoggedFrame> {
        self.mem.log_range(user, after, upto)
    }
    fn queue_push(&mut self, user: u64, frame: QueuedFrame) -> usize {
        self.mem.queue_push(user, frame)
    }
    fn queue_take(&mut self, user: u64) -> Vec<QueuedFrame> {
        self.mem.queue_take(user)
    }
    fn queue_depth(&self) -> usize {
        self.mem.queue_depth()
    }
    fn draft(&self, user: u64, draft_id: &str) -> Option<crate::drafts::Draft> {
        self.mem.draft(user, draft_id)
    }
    fn put_draft(&mut self, user: u64, draft_id: &str, draft: crate::drafts::Draft) {
        self.mem.put_draft(user, draft_id, draft)
    }
    fn draft_count(&self, user: u64) -> usize {
        self.mem.draft_count(user)
    }
    fn seen(&mut self, user: u64, id: &str, now: std::time::Instant) -> Option<Applied> {
        self.mem.seen(user, id, now)
    }
    fn remember(&mut self, user: u64, id: &str, applied: Applied, now: std::time::Instant) {
        self.mem.remember(user, id, applied, now)
    }
    fn next_notification(&mut self) -> u64 {
        self.mem.next_notification()
    }
    fn queue_depths(&self) -> Vec<(u64, usize)> {
        self.mem.queue_depths()
    }
    fn commit(&mut self) -> Durability {
        // Every call is a commit of its own: what came before it is covered by it.
        self.last = self.writer.submit(vec![()]);
        self.last.clone()
    }
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn commit_stats(&self) -> CommitStats {
        self.writer.stats()
    }
    fn evictions(&self) -> Evictions {
        self.mem.evictions()
    }
}

/// The next text frame as JSON, or `None` when none comes within `wait`.
async fn frame_within<S>(ws: &mut S, wait: Duration) -> Option<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Text(t)))) => {
                return Some(serde_json::from_str(&t).expect("frames are JSON"));
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("connection ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn queued_notification_waits_for_its_commit_before_a_new_session_gets_it() {
    let (open, gate) = std_mpsc::channel();
    let config = ServerConfig::for_tests();
    let hub = Arc::new(Hub::new(
        config.clone(),
        Box::new(GatedStore::new(gate, crate::store_limits(&config))),
    ));
    let listener = TcpListener::bind(config.bind).await.expect("binds");
    let addr = listener.local_addr().expect("address");
    let (_stop, stop_rx) = watch::channel(false);
    let (_deadline, deadline_rx) = watch::channel(None);
    let app = crate::http::router(hub.clone());
    tokio::spawn(crate::serve::serve(
        listener,
        app,
        hub.clone(),
        stop_rx,
        deadline_rx,
    ));

    // User 7 is offline: the notification is numbered, logged and queued; its commit waits.
    let user = 7;
    let (n, _) = hub
        .notify(
            user,
            NewNotification {
                kind: "message".into(),
                title: "t".into(),
                message: String::new(),
                data: Value::Null,
            },
        )
        .expect("notify");
    let token =
        mint_token(&config.jwt_secret, user, false, Duration::from_secs(60)).expect("token");
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws?token={token}"))
        .await
        .expect("connects");

    // Not durable: nothing that carries its seq or id may be written yet.
    let mut early = Vec::new();
    while let Some(f) = frame_within(&mut ws, Duration::from_millis(300)).await {
        early.push(f);
    }
    assert!(
        early.iter().all(|f| f["type"] != "notification"),
        "written before its commit: {early:?}"
    );

    // Every commit let through: the notification arrives, once.
    std::thread::spawn(move || while open.send(()).is_ok() {});
    let mut got = early;
    while let Some(f) = frame_within(&mut ws, Duration::from_secs(2)).await {
        got.push(f);
    }
    let ids: Vec<&Value> = got
        .iter()
        .filter(|f| f["type"] == "notification")
        .map(|f| &f["data"]["id"])
        .collect();
    assert_eq!(ids, vec![&Value::from(n.id.clone())], "frames: {got:?}");
}
