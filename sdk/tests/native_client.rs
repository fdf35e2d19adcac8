//! The native client against the real reference server over loopback sockets.
//!
//! Every test starts its own `pitchey-mock-server` on port 0. Timeouts only bound how long
//! a test waits for something that must happen; nothing asserts on timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use pitchey_mock_server::{RunningServer, ServerConfig, start};
use pitchey_realtime::client::ChannelMessage as _;
use pitchey_realtime::client::{
    Client, ClientError, Draft, DraftConfig, DraftEvents, Lagged, Subscription,
};
use pitchey_realtime::core::{
    ConflictStrategy, DraftOptions, Event, Resolution, SendError, SendFailure, State,
};
use pitchey_realtime::protocol::{
    Channel, ClientMessage, DraftSynced, Notification, PitchView, Presence, PresenceStatus,
    ServerFrame, ServerMessage, SetPresence, UploadStatus,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn server_with(f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig::for_tests();
    f(&mut config);
    start(config).await.expect("server starts")
}

async fn server() -> RunningServer {
    server_with(|_| {}).await
}

fn client_for(server: &RunningServer, user: u64) -> Client {
    Client::builder(server.ws_url())
        .token(server.token(user))
        .build()
        .expect("client builds")
}

async fn connected_client(server: &RunningServer, user: u64) -> Client {
    let client = client_for(server, user);
    client.connect().expect("driver running");
    timeout(WAIT, client.connected())
        .await
        .expect("connects in time")
        .expect("connects");
    client
}

/// The next item of a subscription, within the wait limit.
async fn next<T: pitchey_realtime::client::ChannelMessage>(sub: &mut Subscription<T>) -> T {
    timeout(WAIT, sub.next())
        .await
        .expect("an item within the wait limit")
        .expect("stream open")
        .expect("not lagged")
}

/// Wait for the first event of `events` (a client's or a draft's) that `pick` accepts.
/// Make the stream before the action whose event it waits for, so that the event cannot
/// slip past.
async fn event<R>(
    events: &mut (impl futures_util::Stream<Item = Result<Event, Lagged>> + Unpin),
    mut pick: impl FnMut(&Event) -> Option<R>,
) -> R {
    timeout(WAIT, async {
        loop {
            let event = events
                .next()
                .await
                .expect("client alive")
                .expect("not lagged");
            if let Some(r) = pick(&event) {
                return r;
            }
        }
    })
    .await
    .expect("the event within the wait limit")
}

/// A minimal HTTP/1.1 request with a bearer token, over a plain TcpStream.
async fn http(
    server: &RunningServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let addr = server.local_addr();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("http connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("http write");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("http read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let json = response
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

async fn post(server: &RunningServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    http(server, "POST", path, token, Some(body)).await
}

/// Inject a fault for `user` through the server's admin endpoint.
async fn fault(server: &RunningServer, fault: &str, user: u64) {
    let (status, body) = post(
        server,
        &format!("/api/ws/faults/{fault}"),
        &server.admin_token(999),
        json!({"userId": user}),
    )
    .await;
    assert_eq!(status, 200, "fault {fault}: {body}");
}

#[tokio::test]
async fn receives_every_seed_message_type() {
    let server = server().await;
    let alice = connected_client(&server, 1).await; // creator
    let bob = connected_client(&server, 2).await; // investor

    // notification (POST /api/ws/notify)
    let mut notifications = alice.notifications().unwrap();
    let (status, _) = post(
        &server,
        "/api/ws/notify",
        &server.token(2),
        json!({"userId":1,"notification":{"type":"message","title":"Hi","message":"from bob"}}),
    )
    .await;
    assert_eq!(status, 200);
    let n = next(&mut notifications).await;
    assert_eq!((n.kind.as_str(), n.title.as_str()), ("message", "Hi"));

    // upload_progress (POST /api/ws/upload-progress)
    let mut uploads = alice.uploads().unwrap();
    let (status, _) = post(
        &server,
        "/api/ws/upload-progress",
        &server.token(1),
        json!({"uploadId":"u-1","fileName":"deck.pdf","progress":42,"status":"uploading"}),
    )
    .await;
    assert_eq!(status, 200);
    let u = next(&mut uploads).await;
    assert_eq!(
        (u.upload_id.as_str(), u.status),
        ("u-1", UploadStatus::Uploading)
    );

    // pitch_view -> pitch_stats_update to subscribers of the pitch
    let mut stats = alice.pitch_stats(42).unwrap();
    bob.report_pitch_view(42).unwrap();
    let s = loop {
        let s = next(&mut stats).await;
        if s.view_count >= 1 {
            break s;
        }
    };
    assert_eq!(s.pitch_id, 42);
    assert!(s.recent_viewers.iter().any(|v| v.user_id == 2), "{s:?}");

    // presence_update to subscribers of presence:2
    let mut presence = alice.presence(2).unwrap();
    bob.set_presence(PresenceStatus::Away).unwrap();
    let p = loop {
        let p = next(&mut presence).await;
        if p.status == PresenceStatus::Away {
            break p;
        }
    };
    assert_eq!(p.user_id, 2);

    // user_typing to subscribers of the conversation, never back to the typist
    let mut typing = alice.typing(12).unwrap();
    let mut own_typing = bob.typing(12).unwrap();
    bob.set_typing(12, true).unwrap();
    let t = next(&mut typing).await;
    assert_eq!((t.user_id, t.is_typing), (2, true));
    assert!(
        timeout(Duration::from_millis(300), own_typing.next())
            .await
            .is_err(),
        "typist got its own typing"
    );

    // dashboard_update: a follow changes the creator's metrics
    let mut dashboard = alice.dashboard().unwrap();
    let (status, _) = post(
        &server,
        "/api/ws/follow",
        &server.token(2),
        json!({"userId":1}),
    )
    .await;
    assert_eq!(status, 200);
    let d = next(&mut dashboard).await;
    assert_eq!(d.followers, 1);

    // draft_sync from another session of the same user
    let alice2 = connected_client(&server, 1).await;
    let draft = alice
        .draft(
            "pitch_42",
            DraftConfig {
                draft_type: Some("pitch".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let mut alice2_drafts = alice2
        .subscribe::<DraftSynced>(Channel::Draft("pitch_42".into()))
        .unwrap();
    draft.update(json!({"title":"Night Train"})).unwrap();
    draft.save().unwrap();
    let synced = next(&mut alice2_drafts).await;
    assert_eq!(synced.content, json!({"title":"Night Train"}));
    assert_eq!(synced.version, Some(1));
    server.shutdown().await;
}

#[tokio::test]
async fn outbox_survives_a_server_restart_and_nothing_is_lost() {
    let first = server().await;
    let addr = first.local_addr();
    let secret = first.config().jwt_secret.clone();
    let client = connected_client(&first, 7).await;
    let mut events = client.events();
    first.shutdown().await;
    event(&mut events, |e| {
        matches!(e, Event::StateChanged(State::Reconnecting { .. })).then_some(())
    })
    .await;

    // Offline: these wait in the outbox.
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(client.report_pitch_view(9).expect("queued while offline"));
    }
    assert_eq!(client.metrics().unwrap().queue_depth, 20);

    // The server comes back on the same port, with the same secret.
    let second = server_with(|c| {
        c.bind = addr;
        c.jwt_secret = secret;
    })
    .await;
    let watcher = connected_client(&second, 8).await;
    let mut stats = watcher.pitch_stats(9).unwrap();

    // Every queued view gets acked...
    let mut acked = std::collections::HashSet::new();
    let mut events = client.events();
    timeout(WAIT, async {
        while acked.len() < ids.len() {
            if let Some(Ok(Event::Acked(id))) = events.recv().await {
                acked.insert(id);
            }
        }
    })
    .await
    .expect("all queued messages acked after the restart");
    assert!(ids.iter().all(|id| acked.contains(id)));
    // ... and applied once each: the view count reaches exactly 20.
    timeout(WAIT, async {
        loop {
            if next(&mut stats).await.view_count == 20 {
                break;
            }
        }
    })
    .await
    .expect("view count reaches 20");
    assert_eq!(client.metrics().unwrap().queue_depth, 0);
    let m = client.metrics().unwrap();
    assert!(m.reconnects >= 1, "{m:?}");
    second.shutdown().await;
}

#[tokio::test]
async fn expired_token_is_refreshed_through_the_provider() {
    let server = server().await;
    let fresh = server.token(5);
    let asked = Arc::new(AtomicUsize::new(0));
    let asked_in = asked.clone();
    let client = Client::builder(server.ws_url())
        .token(server.token_with_ttl(5, Duration::ZERO))
        .token_provider(move || {
            asked_in.fetch_add(1, Ordering::SeqCst);
            let token = fresh.clone();
            async move { Some(token) }
        })
        .build()
        .expect("client builds");
    client.connect().unwrap();
    timeout(WAIT, client.connected())
        .await
        .expect("in time")
        .expect("connects with the fresh token");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn no_token_from_the_provider_means_auth_failed_not_a_retry_loop() {
    let server = server().await;
    let asked = Arc::new(AtomicUsize::new(0));
    let asked_in = asked.clone();
    let client = Client::builder(server.ws_url())
        .token("not-a-jwt")
        .token_provider(move || {
            asked_in.fetch_add(1, Ordering::SeqCst);
            async { None }
        })
        .build()
        .expect("client builds");
    client.connect().unwrap();
    let err = timeout(WAIT, client.connected())
        .await
        .expect("settles in time")
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Stopped(State::AuthFailed { .. })),
        "{err:?}"
    );
    // It stays stopped: no hot loop of attempts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(client.state(), State::AuthFailed { .. }));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert!(client.metrics().unwrap().connect_attempts <= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn full_queue_is_an_error_and_an_event_never_a_silent_drop() {
    let server = server().await;
    let client = Client::builder(server.ws_url())
        .token(server.token(3))
        .configure(|c| c.outbox_capacity = 5)
        .build()
        .expect("client builds");
    // Not connected: everything waits in the outbox.
    let mut events = client.events();
    for _ in 0..5 {
        client.report_pitch_view(1).expect("room in the queue");
    }
    let err = client.report_pitch_view(1).unwrap_err();
    assert_eq!(err, ClientError::Send(SendError::QueueFull { capacity: 5 }));
    let saw_event = timeout(WAIT, async {
        loop {
            if let Some(Ok(Event::QueueFull)) = events.recv().await {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(saw_event, "QueueFull event");
    // The five accepted ones are delivered once connected.
    client.connect().unwrap();
    let mut acks = 0;
    timeout(WAIT, async {
        while acks < 5 {
            if let Some(Ok(Event::Acked(_))) = events.recv().await {
                acks += 1;
            }
        }
    })
    .await
    .expect("the five queued messages are acked");
    server.shutdown().await;
}

#[tokio::test]
async fn a_burst_is_paced_under_the_servers_rate_limit() {
    // A small, fast bucket so that pacing shows in a short test: 20 burst, 100/s refill.
    let server = server_with(|c| {
        c.rate_limit.max_messages = 20;
        c.rate_limit.refill_rate = 100.0;
    })
    .await;
    let client = Client::builder(server.ws_url())
        .token(server.token(4))
        .configure(|c| c.outbox_capacity = 200)
        .build()
        .expect("client builds");
    client.connect().unwrap();
    client.connected().await.unwrap();
    let mut events = client.events();
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(client.report_pitch_view(i % 3).expect("queued"));
    }
    let mut acked = 0;
    timeout(Duration::from_secs(30), async {
        while acked < ids.len() {
            match events.recv().await {
                Some(Ok(Event::Acked(_))) => acked += 1,
                Some(Ok(Event::Message(f))) => {
                    if let ServerMessage::Error(e) = &f.message {
                        panic!("server error during the burst: {e:?}");
                    }
                }
                Some(Ok(Event::SendFailed(id, why))) => panic!("{id} failed: {why}"),
                _ => {}
            }
        }
    })
    .await
    .expect("all 200 acked");
    server.shutdown().await;
}

async fn draft_pair(
    server: &RunningServer,
    strategy: ConflictStrategy,
) -> (
    Client,
    Client,
    pitchey_realtime::client::Draft,
    pitchey_realtime::client::Draft,
) {
    let a = connected_client(server, 11).await;
    let b = connected_client(server, 11).await;
    let options = DraftOptions::default()
        .with_strategy(strategy)
        .with_auto_save_interval(Duration::from_secs(3600));
    let base = json!({"title":"Night Train","logline":"A heist","budget":1});
    let config = DraftConfig {
        draft_type: Some("pitch".into()),
        initial: base,
        base_version: Some(0),
        options,
        validator: None,
    };
    let da = a.draft("pitch_1", config.clone()).unwrap();
    let db = b.draft("pitch_1", config).unwrap();
    (a, b, da, db)
}

fn saved_at_least(v: u64) -> impl FnMut(&Event) -> Option<()> {
    move |e| matches!(e, Event::DraftSaved { version: Some(got), .. } if *got >= v).then_some(())
}

/// Both sessions start from version 0. `b` edits (dirty, unsaved); meanwhile `a` saves v1,
/// which reaches `b` as a `draft_sync` on top of its unsaved edit; then `b` saves on its
/// stale base. Returns `b`'s draft events, made before any of this.
async fn conflicting_edits(
    a: &Client,
    da: &Draft,
    db: &Draft,
    local: Value,
    remote: Value,
) -> DraftEvents {
    let b_events = db.events();
    let mut a_events = a.events();
    db.update(local).unwrap();
    da.update(remote).unwrap();
    da.save().unwrap();
    event(&mut a_events, saved_at_least(1)).await;
    // A save while a conflict is pending may be refused; the strategy decides then.
    let _ = db.save();
    b_events
}

#[tokio::test]
async fn draft_conflict_strategy_local_keeps_the_local_edit() {
    let server = server().await;
    let (a, _b, da, db) = draft_pair(&server, ConflictStrategy::Local).await;
    let mut events =
        conflicting_edits(&a, &da, &db, json!({"title":"B"}), json!({"title":"A"})).await;
    event(&mut events, saved_at_least(2)).await;
    let state = db.state().unwrap();
    assert_eq!(state.content, json!({"title":"B"}));
    assert!(state.base_version >= Some(2), "{state:?}");
    // And the other session converges on it.
    let mut a_events = da.events();
    let converged = timeout(WAIT, async {
        loop {
            if da.state().unwrap().content == json!({"title":"B"}) {
                return;
            }
            let _ = a_events.recv().await;
        }
    })
    .await;
    assert!(converged.is_ok(), "a sees b's content");
    server.shutdown().await;
}

#[tokio::test]
async fn draft_conflict_strategy_remote_adopts_the_server_version() {
    let server = server().await;
    let (a, _b, da, db) = draft_pair(&server, ConflictStrategy::Remote).await;
    let mut events =
        conflicting_edits(&a, &da, &db, json!({"title":"B"}), json!({"title":"A"})).await;
    event(&mut events, |e| {
        matches!(e, Event::DraftUpdated { .. }).then_some(())
    })
    .await;
    let state = db.state().unwrap();
    assert_eq!(state.content, json!({"title":"A"}));
    assert!(!state.dirty);
    assert_eq!(state.base_version, Some(1));
    server.shutdown().await;
}

#[tokio::test]
async fn draft_conflict_strategy_merge_keeps_both_sides_fields() {
    let server = server().await;
    let (a, _b, da, db) = draft_pair(&server, ConflictStrategy::Merge).await;
    let mut events = conflicting_edits(
        &a,
        &da,
        &db,
        json!({"title":"Night Train","logline":"A heist on rails","budget":1}),
        json!({"title":"Night Train","logline":"A heist","budget":2}),
    )
    .await;
    event(&mut events, saved_at_least(2)).await;
    assert_eq!(
        db.state().unwrap().content,
        json!({"title":"Night Train","logline":"A heist on rails","budget":2})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn draft_conflict_merge_of_the_same_field_falls_back_to_ask() {
    let server = server().await;
    let (a, _b, da, db) = draft_pair(&server, ConflictStrategy::Merge).await;
    let mut events =
        conflicting_edits(&a, &da, &db, json!({"title":"B"}), json!({"title":"A"})).await;
    let (local, remote) = event(&mut events, |e| match e {
        Event::DraftConflict { local, remote, .. } => Some((local.clone(), remote.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (local, remote),
        (json!({"title":"B"}), json!({"title":"A"}))
    );
    db.resolve_with_remote().unwrap();
    let state = db.state().unwrap();
    assert_eq!(state.content, json!({"title":"A"}));
    assert!(state.conflict.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn draft_conflict_strategy_ask_lets_the_app_choose() {
    let server = server().await;
    let (a, _b, da, db) = draft_pair(&server, ConflictStrategy::Ask).await;
    let mut events =
        conflicting_edits(&a, &da, &db, json!({"title":"B"}), json!({"title":"A"})).await;
    let (base, local, remote) = event(&mut events, |e| match e {
        Event::DraftConflict {
            base,
            local,
            remote,
            ..
        } => Some((base.clone(), local.clone(), remote.clone())),
        _ => None,
    })
    .await;
    assert_eq!(base["title"], "Night Train");
    assert_eq!(
        (local, remote),
        (json!({"title":"B"}), json!({"title":"A"}))
    );
    assert!(db.state().unwrap().conflict.is_some());
    db.resolve(Resolution::Content(json!({"title":"A+B"})))
        .unwrap();
    event(&mut events, saved_at_least(2)).await;
    assert_eq!(db.state().unwrap().content, json!({"title":"A+B"}));
    server.shutdown().await;
}

#[tokio::test]
async fn falls_back_gracefully_against_a_seed_compatible_server() {
    let server = server_with(|c| c.seed_compatible = true).await;
    let alice = connected_client(&server, 1).await;
    let bob = connected_client(&server, 2).await;

    // No `ack` feature: a durable send is done once written.
    let id = bob
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 5 }))
        .await
        .expect("done once written");
    assert!(!id.as_str().is_empty());

    // No `subscribe` feature: the seed delivers stats to everyone; the subscription
    // still filters them by pitch.
    let mut stats = alice.pitch_stats(6).unwrap();
    bob.report_pitch_view(6).unwrap();
    let s = next(&mut stats).await;
    assert_eq!(s.pitch_id, 6);

    // Notifications arrive as in the seed.
    let mut notifications = alice.notifications().unwrap();
    post(
        &server,
        "/api/ws/notify",
        &server.token(2),
        json!({"userId":1,"notification":{"type":"follow","title":"New follower","message":"bob"}}),
    )
    .await;
    assert_eq!(next(&mut notifications).await.kind, "follow");

    // Drafts are last-write-wins: a save goes through without conflict handling.
    let draft = alice.draft("d", DraftConfig::default()).unwrap();
    let mut draft_events = draft.events();
    draft.update(json!({"x":1})).unwrap();
    draft.save().unwrap();
    event(&mut draft_events, |e| {
        matches!(e, Event::DraftSaved { .. }).then_some(())
    })
    .await;
    // Nothing went wrong on the wire.
    let m = alice.metrics().unwrap();
    assert_eq!(m.invalid_frames, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes_only_when_the_last_handle_goes() {
    let server = server().await;
    let alice = connected_client(&server, 1).await;
    let bob = connected_client(&server, 2).await;
    let mut first = alice.pitch_stats(77).unwrap();
    let second = alice.pitch_stats(77).unwrap();
    drop(second);
    bob.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 77 }))
        .await
        .unwrap();
    loop {
        if next(&mut first).await.view_count >= 1 {
            break;
        }
    }
    drop(first);
    // The server handles alice's frames in order: once this is acked, so is the unsubscribe.
    alice
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 1000 }))
        .await
        .unwrap();
    let mut events = alice.events();
    bob.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 77 }))
        .await
        .unwrap();
    let stats_for_77 = timeout(Duration::from_millis(500), async {
        loop {
            match events.recv().await {
                Some(Ok(Event::Message(f))) if f.message.channel() == Some(Channel::Pitch(77)) => {
                    return;
                }
                None => std::future::pending::<()>().await,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        stats_for_77.is_err(),
        "stats still arrive after the last handle was dropped"
    );
    server.shutdown().await;
}

/// The next message of `channel` on `events`, if one comes within `wait`.
async fn channel_message(
    events: &mut pitchey_realtime::client::EventStream,
    channel: Channel,
    wait: Duration,
) -> Option<ServerMessage> {
    timeout(wait, async {
        loop {
            match events.recv().await {
                Some(Ok(Event::Message(f))) if f.message.channel() == Some(channel.clone()) => {
                    return f.message;
                }
                None => std::future::pending::<()>().await,
                _ => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn a_joined_channel_arrives_on_the_event_stream_until_its_guard_drops() {
    let server = server().await;
    let alice = connected_client(&server, 1).await;
    let bob = connected_client(&server, 2).await;
    let mut events = alice.events();
    let guard = alice.join(Channel::Pitch(78)).unwrap();
    assert_eq!(guard.channel(), &Channel::Pitch(78));
    // Acked in order after the subscribe: the server has it by then.
    alice
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 1001 }))
        .await
        .unwrap();
    bob.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 78 }))
        .await
        .unwrap();
    match channel_message(&mut events, Channel::Pitch(78), WAIT).await {
        Some(ServerMessage::PitchStatsUpdate(s)) => assert_eq!(s.view_count, 1),
        other => panic!("expected the stats of pitch 78, got {other:?}"),
    }

    drop(guard);
    alice
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 1002 }))
        .await
        .unwrap();
    bob.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 78 }))
        .await
        .unwrap();
    assert!(
        channel_message(&mut events, Channel::Pitch(78), Duration::from_millis(500))
            .await
            .is_none(),
        "stats still arrive after the guard was dropped"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_a_guard_keeps_a_subscription_of_the_same_channel() {
    let server = server().await;
    let alice = connected_client(&server, 1).await;
    let bob = connected_client(&server, 2).await;
    let mut stats = alice.pitch_stats(79).unwrap();
    drop(alice.join(Channel::Pitch(79)).unwrap());
    // Acked in order after the guard's release: an unsubscribe would have been applied.
    alice
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 1003 }))
        .await
        .unwrap();
    bob.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 79 }))
        .await
        .unwrap();
    loop {
        if next(&mut stats).await.view_count >= 1 {
            break;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_tracked_send_is_queued_before_a_close_that_follows_it() {
    let server = server().await;
    let alice = connected_client(&server, 1).await;
    // Queued at once: the close right after delivers it before closing.
    let confirmation = alice
        .send_tracked(ClientMessage::PitchView(PitchView { pitch_id: 80 }))
        .unwrap();
    let id = confirmation.id().clone();
    alice.close(WAIT).await.unwrap();
    assert_eq!(confirmation.wait().await.unwrap(), id);
    assert_eq!(alice.metrics().unwrap().queue_depth, 0);

    // A close right after `connect()`, before the client's task has run: the core is
    // connecting, not idle, so the close waits for the message instead of returning.
    let bob = client_for(&server, 2);
    bob.connect().unwrap();
    let view = bob
        .send_tracked(ClientMessage::PitchView(PitchView { pitch_id: 81 }))
        .unwrap();
    timeout(WAIT, bob.close(WAIT)).await.unwrap().unwrap();
    assert_eq!(
        bob.metrics().unwrap().queue_depth,
        0,
        "closed with the view delivered"
    );
    assert!(view.wait().await.is_ok());
    // Ephemeral messages are never acked: refused, not queued.
    assert!(matches!(
        alice.send_tracked(ClientMessage::SetPresence(SetPresence {
            status: PresenceStatus::Away
        })),
        Err(ClientError::NotDurable(_))
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_graceful_server_shutdown_makes_the_client_reconnect() {
    let server = server().await;
    let addr = server.local_addr();
    let secret = server.config().jwt_secret.clone();
    let client = connected_client(&server, 9).await;
    let mut events = client.events();
    server.shutdown().await;
    let saw_disconnected = timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(Ok(Event::Message(f)))
                    if matches!(f.message, ServerMessage::Disconnected(_)) =>
                {
                    return true;
                }
                Some(Ok(Event::StateChanged(State::Reconnecting { .. }))) => return false,
                None => return false,
                _ => {}
            }
        }
    })
    .await
    .expect("in time");
    assert!(
        saw_disconnected,
        "the app sees the server's disconnected frame"
    );
    let _again = server_with(|c| {
        c.bind = addr;
        c.jwt_secret = secret;
    })
    .await;
    timeout(WAIT, client.connected())
        .await
        .expect("reconnects in time")
        .unwrap();
}

#[test]
fn channel_message_extracts_only_its_type() {
    let frame =
        ServerFrame::decode(r#"{"type":"presence_update","data":{"userId":3,"status":"online"}}"#)
            .unwrap();
    assert!(Presence::extract(&frame.message).is_some());
    assert!(Notification::extract(&frame.message).is_none());
}

#[tokio::test]
async fn a_dropped_link_resumes_and_nothing_pushed_meanwhile_is_missed() {
    let server = server().await;
    // A quiet client: nothing numbered has reached it before the drop, so only the
    // server's `connected.lastSeq` baseline lets it resume.
    let client = connected_client(&server, 21).await;
    let mut notifications = client.notifications().unwrap();
    let mut events = client.events();
    fault(&server, "drop", 21).await;
    for i in 0..3 {
        post(
            &server,
            "/api/ws/notify",
            &server.token(1),
            json!({"userId":21,"notification":{"type":"message","title":format!("m{i}"),"message":""}}),
        )
        .await;
    }
    let mut titles = Vec::new();
    for _ in 0..3 {
        titles.push(next(&mut notifications).await.title);
    }
    titles.sort();
    assert_eq!(titles, ["m0", "m1", "m2"]);
    // Exactly once each, and the app was not told to refetch.
    assert!(
        timeout(Duration::from_millis(300), notifications.next())
            .await
            .is_err(),
        "a duplicate"
    );
    while let Ok(Some(Ok(e))) = timeout(Duration::from_millis(50), events.recv()).await {
        assert_ne!(e, Event::ContinuityLost);
    }
    assert!(client.metrics().unwrap().reconnects >= 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_expired_mid_session_is_refreshed_and_the_session_goes_on() {
    let server = server().await;
    let asked = Arc::new(AtomicUsize::new(0));
    let asked_in = asked.clone();
    let secret = server.config().jwt_secret.clone();
    let client = Client::builder(server.ws_url())
        .token(server.token(22))
        .token_provider(move || {
            asked_in.fetch_add(1, Ordering::SeqCst);
            let secret = secret.clone();
            async move {
                // A token minted after the expiry (the server refuses only older ones;
                // `iat` has one-second resolution).
                tokio::time::sleep(Duration::from_millis(1100)).await;
                pitchey_mock_server::auth::mint_token(&secret, 22, false, Duration::from_secs(3600))
                    .ok()
            }
        })
        .build()
        .expect("client builds");
    client.connect().unwrap();
    client.connected().await.unwrap();
    let mut events = client.events();
    fault(&server, "expire-token", 22).await;
    event(&mut events, |e| {
        matches!(e, Event::TokenNeeded).then_some(())
    })
    .await;
    event(&mut events, |e| {
        matches!(e, Event::StateChanged(State::Connected)).then_some(())
    })
    .await;
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    client
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 3 }))
        .await
        .unwrap();
    server.shutdown().await;
}

async fn presence_of(server: &RunningServer, user: u64) -> Value {
    let path = format!("/api/ws/presence/{user}");
    http(server, "GET", &path, &server.token(1), None).await.1
}

#[tokio::test]
async fn presence_is_restored_on_the_server_after_a_reconnect() {
    let server = server().await;
    let alice = connected_client(&server, 23).await;
    alice.set_presence(PresenceStatus::Away).unwrap();
    let away = timeout(WAIT, async {
        while presence_of(&server, 23).await["status"] != "away" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(away.is_ok(), "away set");
    let mut events = alice.events();
    fault(&server, "drop", 23).await;
    event(&mut events, |e| {
        matches!(e, Event::StateChanged(State::Connected)).then_some(())
    })
    .await;
    let restored = timeout(WAIT, async {
        loop {
            let p = presence_of(&server, 23).await;
            if p["status"] == "away" && alice.metrics().unwrap().queue_depth == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        restored.is_ok(),
        "the server shows the app's status again, not `online`"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn send_confirmed_refuses_what_is_never_acked_instead_of_hanging() {
    let server = server().await;
    let client = connected_client(&server, 25).await;
    let err = client
        .send_confirmed(ClientMessage::SetPresence(
            pitchey_realtime::protocol::SetPresence {
                status: PresenceStatus::Away,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::NotDurable("presence_update".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn a_draft_save_sent_without_a_draft_handle_fails_on_conflict_instead_of_hanging() {
    // A `draft_sync` sent with `send` (no open `Draft`) on a stale base: the server answers
    // `draft_conflict` and never acks, so the conflict must settle the message.
    let server = server().await;
    let client = connected_client(&server, 27).await;
    let save = |base| {
        ClientMessage::DraftSync(pitchey_realtime::protocol::DraftSave {
            draft_id: "raw".into(),
            draft_type: None,
            content: json!({"base": base}),
            base_version: Some(base),
        })
    };
    client
        .send_confirmed(save(0))
        .await
        .expect("first save acked");
    let err = timeout(WAIT, client.send_confirmed(save(0)))
        .await
        .expect("answered, not left waiting for an ack")
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Failed(_, SendFailure::DraftConflict)),
        "{err:?}"
    );
    assert_eq!(client.metrics().unwrap().queue_depth, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn connected_after_a_disconnect_and_a_new_connect_waits_for_the_new_link() {
    let server = server().await;
    let client = connected_client(&server, 26).await;
    client.disconnect().unwrap();
    // `connect` only posts; `connected` must not answer from the stale `Closed`.
    client.connect().unwrap();
    timeout(WAIT, client.connected())
        .await
        .expect("in time")
        .expect("connected again");
    server.shutdown().await;
}

#[tokio::test]
async fn recv_with_looks_at_the_events_in_place_and_reports_a_lag_without_a_look() {
    let server = server().await;
    let client = Client::builder(server.ws_url())
        .token(server.token(4))
        .event_buffer(2)
        .build()
        .expect("client builds");
    let mut looker = client.events();
    let mut taker = client.events();
    client.connect().expect("driver running");
    let taken = timeout(WAIT, taker.recv())
        .await
        .expect("an event in time")
        .expect("open")
        .expect("not lagged");
    let seen = timeout(WAIT, looker.recv_with(|e| e.clone()))
        .await
        .expect("an event in time")
        .expect("open")
        .expect("not lagged");
    assert_eq!(seen, taken, "both readers get the first event");

    // Neither reads while more events than the buffer holds go by.
    for _ in 0..3 {
        client.report_pitch_view(1).expect("queued");
    }
    timeout(WAIT, async {
        while client.metrics().expect("running").queue_depth > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("all acked in time");
    let mut looks = 0;
    let lag = timeout(WAIT, looker.recv_with(|_| looks += 1))
        .await
        .expect("in time")
        .expect("open");
    assert!(
        matches!(lag, Err(Lagged { missed }) if missed > 0),
        "{lag:?}"
    );
    assert_eq!(looks, 0, "a lag is not an event to look at");
    // After the lag: the events still kept, the same for both readers.
    let lag = timeout(WAIT, taker.recv())
        .await
        .expect("in time")
        .expect("open");
    assert!(matches!(lag, Err(Lagged { .. })), "{lag:?}");
    let taken = timeout(WAIT, taker.recv())
        .await
        .expect("in time")
        .expect("open");
    let seen = timeout(WAIT, looker.recv_with(|e| e.clone()))
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(seen.expect("an event"), taken.expect("an event"));
    server.shutdown().await;
}
