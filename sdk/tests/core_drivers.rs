//! The core as browser and mobile drivers really drive it: late events of old sockets,
//! transports that cannot see HTTP statuses, writes that fail, servers without our
//! additions, clocks that jump, pages that reload. One behaviour per test, driven step by
//! step with virtual time.

use std::time::Duration;

use pitchey_realtime::core::{
    Action, AttemptId, Config, Connection, DraftOptions, Event, Input, Instant, SendError,
    SendFailure, Snapshot, SnapshotError, State,
};
use pitchey_realtime::protocol::{
    Channel, ClientFrame, ClientMessage, ErrorCode, PitchView, ServerFrame, ServerMessage, Typing,
};
use serde_json::{Value, json};

const ALL: &[&str] = &["ack", "seq", "resume", "subscribe", "draft_conflict"];

/// A connection and the driver's view of it: virtual time, and the frames written.
struct Drive {
    c: Connection,
    now: Instant,
    /// Every `Action::Connect` seen: (attempt, token).
    connects: Vec<(AttemptId, String)>,
    /// Attempts the core asked to close.
    closed: Vec<AttemptId>,
    /// Frames written, in order, over all sockets.
    written: Vec<String>,
    events: Vec<Event>,
    /// Confirm writes (a healthy transport); off to model writes that never complete.
    confirm: bool,
}

impl Drive {
    fn new(config: Config) -> Self {
        Drive::with_seed(config, 7)
    }

    fn with_seed(config: Config, seed: u64) -> Self {
        let now = Instant::from_millis(1_000);
        Drive {
            c: Connection::new(config, seed, now),
            now,
            connects: Vec::new(),
            closed: Vec::new(),
            written: Vec::new(),
            events: Vec::new(),
            confirm: true,
        }
    }

    /// Run the core's actions like a driver would; returns the frames written now.
    fn pump(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let mut n = 0;
            while let Some(a) = self.c.poll_action() {
                match a {
                    Action::Connect { attempt, token, .. } => self.connects.push((attempt, token)),
                    Action::Send(text) => {
                        out.push(text.to_string());
                        self.written.push(text.into());
                        n += 1;
                    }
                    Action::Close { attempt, .. } => self.closed.push(attempt),
                }
            }
            while let Some(e) = self.c.poll_event() {
                self.events.push(e);
            }
            if n == 0 || !self.confirm {
                return out;
            }
            let attempt = self.c.current_attempt();
            self.c.handle(attempt, Input::Written(n), self.now);
        }
    }

    fn input(&mut self, input: Input) -> Vec<String> {
        let attempt = self.c.current_attempt();
        self.c.handle(attempt, input, self.now);
        self.pump()
    }

    fn text(&mut self, frame: &str) -> Vec<String> {
        self.input(Input::Text(frame.to_owned()))
    }

    fn start(&mut self) {
        self.c.connect(self.now).expect("ws url");
        self.pump();
    }

    /// Open the current attempt and greet it as a server with `features` would.
    fn greet(&mut self, features: &[&str]) -> Vec<String> {
        self.input(Input::Opened);
        let features: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
        self.text(&format!(
            r#"{{"type":"connected","data":{{"sessionId":"s","userId":7,"features":[{}]}}}}"#,
            features.join(",")
        ))
    }

    fn advance(&mut self, ms: u64) -> Vec<String> {
        self.now += Duration::from_millis(ms);
        self.c.handle_timeout(self.now);
        self.pump()
    }

    /// Advance to the next timer, at most `max_ms` ahead.
    fn run(&mut self, max_ms: u64) -> Vec<String> {
        let end = self.now + Duration::from_millis(max_ms);
        let mut out = Vec::new();
        while let Some(t) = self.c.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.c.handle_timeout(self.now);
            out.extend(self.pump());
        }
        self.now = self.now.max(end);
        out
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn send_view(&mut self, pitch: u64) -> pitchey_realtime::core::MessageId {
        let id = self
            .c
            .send(
                ClientMessage::PitchView(PitchView { pitch_id: pitch }),
                self.now,
            )
            .expect("queued");
        self.pump();
        id
    }

    fn ack(&mut self, id: &str) -> Vec<String> {
        self.text(&format!(r#"{{"type":"ack","data":{{"id":"{id}"}}}}"#))
    }
}

fn id_of(frame: &str) -> String {
    ClientFrame::decode(frame)
        .expect("client frame")
        .id
        .expect("has an id")
}

fn kind_of(frame: &str) -> String {
    serde_json::from_str::<Value>(frame).expect("json")["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn config() -> Config {
    Config::new("ws://h/ws").with_token("t")
}

// ----- 1. late events of an old socket ---------------------------------------------------

#[test]
fn a_late_close_of_an_abandoned_socket_does_not_abort_the_new_attempt() {
    let mut d = Drive::new(config());
    d.start();
    let first = d.connects[0].0;
    d.input(Input::Opened);
    // The server never greets: the attempt times out (10 s), the core closes it and
    // retries at once.
    d.run(10_000);
    assert!(d.closed.contains(&first));
    let (second, _) = *d.connects.last().expect("a new attempt");
    assert_ne!(first, second);
    assert_eq!(d.c.state(), &State::Connecting);
    // The browser now fires `onclose` (and a stray message) for the first socket.
    d.c.handle(
        first,
        Input::Closed {
            code: 1006,
            reason: String::new(),
        },
        d.now,
    );
    d.c.handle(first, Input::Text("{\"type\":\"ping\"}".into()), d.now);
    assert!(d.pump().is_empty());
    assert_eq!(d.c.state(), &State::Connecting, "the new attempt goes on");
    assert_eq!(d.closed, vec![first], "the new socket was not closed");
    d.greet(ALL);
    assert_eq!(d.c.state(), &State::Connected);
}

// ----- 2. ids --------------------------------------------------------------------------

#[test]
fn ids_come_from_the_drivers_entropy_and_replay_the_same_on_every_target() {
    let id = |seed: u64| {
        let mut d = Drive::with_seed(config(), seed);
        d.send_view(1).as_str().to_owned()
    };
    // Two clients of one user must not make the same ids (the server would drop one).
    assert_ne!(id(1), id(2));
    assert_eq!(id(1), id(1), "a fixed seed replays");
    // Pcg32: this value holds on wasm32 and on 64-bit targets alike (SmallRng did not).
    assert_eq!(id(1), "c-6ac2023654352d7f-1");
}

// ----- 3. a refused token the transport cannot see ------------------------------------

fn close_early(d: &mut Drive, reason: &str) {
    d.input(Input::Closed {
        code: 1006,
        reason: reason.into(),
    });
}

#[test]
fn attempts_closing_before_connected_ask_for_a_fresh_token_then_give_up_on_it() {
    let mut d = Drive::new(config());
    d.start();
    close_early(&mut d, "");
    d.run(1_000);
    close_early(&mut d, "invalid token");
    assert!(d.take_events().contains(&Event::TokenNeeded));
    assert!(
        matches!(d.c.state(), State::Reconnecting { .. } | State::Connecting),
        "asking does not stop the retries: {:?}",
        d.c.state()
    );
    d.c.set_token("fresh", d.now);
    d.run(5_000);
    assert_eq!(d.connects.last().map(|c| c.1.as_str()), Some("fresh"));
    close_early(&mut d, "");
    d.run(2_000);
    close_early(&mut d, "");
    assert_eq!(
        d.c.state(),
        &State::AuthFailed {
            reason: Some("invalid token".into())
        },
        "the fresh token failed the same way: the server's reason is reported"
    );
    let attempts = d.connects.len();
    d.run(600_000);
    assert_eq!(d.connects.len(), attempts, "no retries after AuthFailed");
}

#[test]
fn a_suspected_token_without_an_answer_keeps_retrying_with_it() {
    // Without a token provider, or against a server that is merely down (which a browser
    // cannot tell from a refused token), the client must neither stall nor stop.
    let mut d = Drive::new(config());
    d.start();
    for _ in 0..10 {
        close_early(&mut d, "");
        d.run(31_000);
    }
    let needed = d
        .take_events()
        .iter()
        .filter(|e| **e == Event::TokenNeeded)
        .count();
    assert_eq!(needed, 1, "asked once");
    assert!(
        matches!(d.c.state(), State::Connecting | State::Reconnecting { .. }),
        "{:?}",
        d.c.state()
    );
    assert!(d.connects.len() > 10, "kept retrying");
    assert!(d.connects.iter().all(|c| c.1 == "t"));
    // The server is back: the old token was fine after all.
    d.run(31_000);
    if !matches!(d.c.state(), State::Connecting) {
        d.c.connect(d.now).expect("ws url");
        d.pump();
    }
    d.greet(ALL);
    assert_eq!(d.c.state(), &State::Connected);
}

#[test]
fn network_failures_do_not_count_against_the_token() {
    let mut d = Drive::new(config());
    d.start();
    for _ in 0..6 {
        d.input(Input::Failed {
            reason: "connection refused".into(),
        });
        d.run(60_000);
    }
    assert!(!d.take_events().contains(&Event::TokenNeeded));
}

#[test]
fn http_401_on_the_upgrade_is_a_refused_token() {
    let mut d = Drive::new(config());
    d.start();
    d.input(Input::Refused { status: 401 });
    assert_eq!(d.c.state(), &State::AwaitingToken);
    let mut d = Drive::new(config());
    d.start();
    d.input(Input::Refused { status: 403 });
    assert_eq!(d.c.state(), &State::Closed);
}

// ----- 4. acked only once the write is confirmed ----------------------------------------

#[test]
fn without_acks_a_message_is_done_only_when_its_write_is_confirmed() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(&[]); // a seed server: no acks
    d.confirm = false;
    let a = d.send_view(1);
    let b = d.send_view(2);
    assert_eq!(d.written.len(), 2);
    assert!(
        !d.take_events().iter().any(|e| matches!(e, Event::Acked(_))),
        "handed to the transport is not delivered"
    );
    // The write fails: the socket is gone with both frames.
    d.input(Input::Failed {
        reason: "broken pipe".into(),
    });
    d.confirm = true;
    d.run(2_000);
    let resent = d.greet(&[]);
    assert_eq!(
        resent.iter().map(|f| id_of(f)).collect::<Vec<_>>(),
        vec![a.to_string(), b.to_string()],
        "both go again, in order"
    );
    let acked: Vec<_> = d
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Acked(id) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(acked, vec![a, b]);
}

// ----- 5. refused subscriptions ------------------------------------------------------------

#[test]
fn a_refused_subscription_is_reported_and_not_asked_again() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.c.subscribe(Channel::Pitch(9), d.now).expect("subscribe");
    let sub = d.pump().pop().expect("subscribe written");
    assert_eq!(kind_of(&sub), "subscribe");
    d.text(&format!(
        r#"{{"type":"error","data":{{"code":"forbidden","message":"not your pitch","id":"{}"}}}}"#,
        id_of(&sub)
    ));
    assert!(d.take_events().contains(&Event::SubscriptionFailed {
        channel: Channel::Pitch(9),
        code: ErrorCode::Forbidden,
        message: "not your pitch".into(),
    }));
    d.input(Input::Closed {
        code: 1001,
        reason: "restart".into(),
    });
    d.run(2_000);
    let after = d.greet(ALL);
    assert!(
        !after.iter().any(|f| kind_of(f) == "subscribe"),
        "{after:?}"
    );
}

#[test]
fn an_acked_subscription_is_reported_active() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.c.subscribe(Channel::Dashboard, d.now).expect("subscribe");
    let sub = d.pump().pop().expect("subscribe written");
    d.ack(&id_of(&sub));
    assert!(d.take_events().contains(&Event::SubscriptionActive {
        channel: Channel::Dashboard
    }));
}

// ----- 6. order under the rate limit ------------------------------------------------------

#[test]
fn rate_limited_control_frames_keep_their_order() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.c.subscribe(Channel::Pitch(1), d.now).expect("subscribe");
    let sub = d.pump();
    d.c.unsubscribe(&Channel::Pitch(1), d.now);
    let unsub = d.pump();
    assert_eq!((sub.len(), unsub.len()), (1, 1));
    for frame in [&sub[0], &unsub[0]] {
        d.text(&format!(
            r#"{{"type":"error","data":{{"code":"rate_limited","message":"slow down","retryAfterMs":500,"id":"{}"}}}}"#,
            id_of(frame)
        ));
    }
    let again = d.run(1_000);
    let kinds: Vec<String> = again.iter().map(|f| kind_of(f)).collect();
    assert_eq!(kinds, vec!["subscribe", "unsubscribe"], "not swapped");
}

// ----- 7. close codes --------------------------------------------------------------------

#[test]
fn close_4009_drops_the_refused_frame_and_reports_it() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    let big = json!({"blob": "x".repeat(20_000)});
    let id =
        d.c.send(
            ClientMessage::Unknown {
                kind: "chat".into(),
                data: big.clone(),
            },
            d.now,
        )
        .expect("under the client's limit");
    d.pump();
    d.input(Input::Closed {
        code: 4009,
        reason: "message too large".into(),
    });
    let failed = d.take_events().into_iter().find_map(|e| match e {
        Event::SendFailed(i, SendFailure::RefusedTooLarge { size }) if i == id => Some(size),
        _ => None,
    });
    assert!(failed.is_some_and(|s| s > 20_000));
    d.run(2_000);
    let after = d.greet(ALL);
    assert!(
        after.iter().all(|f| !f.contains(id.as_str())),
        "not sent again"
    );
    let again = d.c.send(
        ClientMessage::Unknown {
            kind: "chat".into(),
            data: big,
        },
        d.now,
    );
    assert!(
        matches!(again, Err(SendError::RefusedBefore { .. })),
        "{again:?}"
    );
}

#[test]
fn close_4008_backs_off() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.input(Input::Closed {
        code: 4008,
        reason: "rate abuse".into(),
    });
    match d.c.state() {
        State::Reconnecting { delay, .. } => assert!(*delay >= Duration::from_secs(2)),
        other => panic!("expected a delayed reconnect, got {other:?}"),
    }
    assert_eq!(d.connects.len(), 1, "no immediate reconnect");
}

#[test]
fn rate_limited_refusals_are_not_send_attempts() {
    let mut cfg = config();
    cfg.max_send_attempts = 2;
    let mut d = Drive::new(cfg);
    d.start();
    d.greet(ALL);
    let id = d.send_view(1);
    for _ in 0..5 {
        let frame = d
            .written
            .iter()
            .rev()
            .find(|f| f.contains(id.as_str()))
            .cloned()
            .expect("written");
        d.text(&format!(
            r#"{{"type":"error","data":{{"code":"rate_limited","message":"","retryAfterMs":100,"id":"{}"}}}}"#,
            id_of(&frame)
        ));
        d.run(200);
    }
    assert!(
        !d.take_events()
            .iter()
            .any(|e| matches!(e, Event::SendFailed(..))),
        "five refusals for rate are not five attempts"
    );
    d.ack(id.as_str());
    assert!(d.take_events().contains(&Event::Acked(id)));
}

// ----- 8. what a seed server sends --------------------------------------------------------

#[test]
fn a_connected_frame_without_session_id_or_with_a_string_user_id_is_accepted() {
    for greeting in [
        r#"{"type":"connected","data":{"userId":"7"}}"#,
        r#"{"type":"connected","data":{}}"#,
        r#"{"type":"connected","data":{"userId":"a1b2-uuid","sessionId":12}}"#,
    ] {
        let mut d = Drive::new(config());
        d.start();
        d.input(Input::Opened);
        d.text(greeting);
        assert_eq!(d.c.state(), &State::Connected, "{greeting}");
    }
}

// ----- 9. bounds ---------------------------------------------------------------------------

#[test]
fn one_server_restart_is_one_continuity_lost() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    for seq in 1..=40 {
        d.text(&format!(
            r#"{{"type":"notification","seq":{seq},"data":{{"id":"n{seq}","type":"t","title":"x","message":"m"}}}}"#
        ));
    }
    d.take_events();
    // The server restarts without its log: its count starts over.
    d.input(Input::Closed {
        code: 1001,
        reason: "restart".into(),
    });
    d.run(2_000);
    d.input(Input::Opened);
    let frames = d.text(
        r#"{"type":"connected","data":{"sessionId":"s2","userId":7,"lastSeq":0,"features":["ack","seq","resume","subscribe"]}}"#,
    );
    for seq in 1..=3 {
        d.text(&format!(
            r#"{{"type":"notification","seq":{seq},"data":{{"id":"m{seq}","type":"t","title":"x","message":"m"}}}}"#
        ));
    }
    let lost = d
        .take_events()
        .iter()
        .filter(|e| **e == Event::ContinuityLost)
        .count();
    assert_eq!(lost, 1);
    assert!(
        frames.iter().all(|f| kind_of(f) != "resume"),
        "nothing to resume from"
    );
}

#[test]
fn pings_carry_epoch_milliseconds() {
    let mut d = Drive::new(config());
    d.c.set_wall_clock(1_763_900_000_000, d.now);
    d.start();
    d.greet(ALL);
    let pings = d.advance(30_000);
    let ping = pings.iter().find(|f| kind_of(f) == "ping").expect("a ping");
    let ts = serde_json::from_str::<Value>(ping).expect("json")["data"]["ts"]
        .as_u64()
        .expect("ts");
    assert_eq!(ts, 1_763_900_030_000);
    // Its pong measures the round trip.
    d.advance(40);
    d.text(&format!(r#"{{"type":"pong","data":{{"ts":{ts}}}}}"#));
    assert_eq!(d.c.metrics().rtt, Some(Duration::from_millis(40)));
}

#[test]
fn a_second_holder_of_a_draft_does_not_change_the_first_ones_options() {
    let mut d = Drive::new(config());
    let ask = DraftOptions::default().with_strategy(pitchey_realtime::core::ConflictStrategy::Ask);
    d.c.draft_open("d1", None, json!({}), Some(1), ask.clone());
    d.c.draft_open("d1", None, json!({}), Some(1), DraftOptions::default());
    assert_eq!(d.c.draft_state("d1").map(|s| s.options.clone()), Some(ask));
}

// ----- time that jumps ---------------------------------------------------------------------

#[test]
fn a_clock_that_jumps_an_hour_is_handled_once() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.c.send(
        ClientMessage::Typing(Typing {
            conversation_id: 3,
            is_typing: true,
        }),
        d.now,
    )
    .expect("typing");
    d.confirm = true;
    // Written at once while connected; queue another while "suspended".
    d.pump();
    // The phone sleeps for an hour with the socket silently dead.
    let frames = d.advance(3_600_000);
    let pings = frames.iter().filter(|f| kind_of(f) == "ping").count();
    assert_eq!(
        pings, 1,
        "one ping, not one per missed interval: {frames:?}"
    );
    // Nothing answers: the heartbeat timeout ends the link and a reconnect follows.
    d.advance(10_000);
    assert!(matches!(
        d.c.state(),
        State::Reconnecting { .. } | State::Connecting
    ));
    // Reconnecting and asleep again: after the jump the retry is made at once.
    d.input(Input::Failed {
        reason: "offline".into(),
    });
    let attempts = d.connects.len();
    d.advance(3_600_000);
    assert_eq!(d.connects.len(), attempts + 1, "one attempt, made at once");
}

#[test]
fn wake_reconnects_now_and_checks_a_live_link() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.c.wake(d.now);
    let frames = d.pump();
    assert!(frames.iter().any(|f| kind_of(f) == "ping"), "{frames:?}");
    d.input(Input::Failed {
        reason: "network changed".into(),
    });
    d.run(1_000);
    d.input(Input::Failed {
        reason: "offline".into(),
    });
    let attempts = d.connects.len();
    assert!(matches!(d.c.state(), State::Reconnecting { delay, .. } if !delay.is_zero()));
    d.c.wake(d.now);
    d.pump();
    assert_eq!(
        d.connects.len(),
        attempts + 1,
        "the online event skips the delay"
    );
    d.c.disconnect(d.now);
    d.c.wake(d.now);
    d.pump();
    assert_eq!(
        d.c.state(),
        &State::Closed,
        "an explicit disconnect stays disconnected"
    );
}

// ----- persistence, expiry, graceful close ---------------------------------------------------

#[test]
fn a_snapshot_with_a_frame_that_is_not_durable_with_its_id_restores_nothing() {
    let good = r#"{"id":"c-1","frame":"{\"type\":\"pitch_view\",\"id\":\"c-1\",\"data\":{\"pitchId\":1}}"}"#;
    let bad = [
        // A frame only the core writes, an ephemeral one, another id, no id, bad data, no JSON.
        ("c-2", r#"{\"type\":\"ping\",\"id\":\"c-2\",\"data\":{}}"#),
        (
            "c-3",
            r#"{\"type\":\"typing\",\"id\":\"c-3\",\"data\":{\"conversationId\":1,\"isTyping\":true}}"#,
        ),
        (
            "c-4",
            r#"{\"type\":\"pitch_view\",\"id\":\"c-5\",\"data\":{\"pitchId\":1}}"#,
        ),
        (
            "c-6",
            r#"{\"type\":\"pitch_view\",\"data\":{\"pitchId\":1}}"#,
        ),
        (
            "c-7",
            r#"{\"type\":\"pitch_view\",\"id\":\"c-7\",\"data\":{\"pitchId\":\"x\"}}"#,
        ),
        ("c-8", "not json"),
    ];
    for (id, frame) in bad {
        let json =
            format!(r#"{{"format":1,"messages":[{good},{{"id":"{id}","frame":"{frame}"}}]}}"#);
        let snapshot = Snapshot::from_json(&json).expect("a snapshot");
        let mut d = Drive::new(config());
        assert_eq!(
            d.c.restore(snapshot, d.now),
            Err(SnapshotError::BadMessage(id.into())),
            "{frame}"
        );
        assert_eq!(d.c.metrics().queue_depth, 0, "nothing restored: {frame}");
    }
    // The good one alone restores.
    let json = format!(r#"{{"format":1,"messages":[{good}]}}"#);
    let mut d = Drive::new(config());
    let snapshot = Snapshot::from_json(&json).expect("a snapshot");
    assert_eq!(d.c.restore(snapshot, d.now), Ok(1));
    assert_eq!(d.c.metrics().queue_depth, 1);
}

#[test]
fn a_reloaded_page_sends_its_queue_under_the_same_ids_and_resumes() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.text(r#"{"type":"notification","seq":12,"data":{"id":"n","type":"t","title":"x","message":"m"}}"#);
    d.input(Input::Closed {
        code: 1006,
        reason: String::new(),
    });
    let ids: Vec<_> = (1..=3).map(|p| d.send_view(p)).collect();
    let saved = d.c.export().to_json();

    // The page reloads: a new connection with new entropy.
    let snapshot = Snapshot::from_json(&saved).expect("snapshot");
    let mut r = Drive::with_seed(config(), 99);
    assert_eq!(r.c.restore(snapshot, r.now), Ok(3));
    r.start();
    let frames = r.greet(ALL);
    let resume = frames
        .iter()
        .find(|f| kind_of(f) == "resume")
        .expect("resume");
    assert!(resume.contains("\"lastSeq\":12"), "{resume}");
    let sent: Vec<String> = frames
        .iter()
        .filter(|f| kind_of(f) == "pitch_view")
        .map(|f| id_of(f))
        .collect();
    assert_eq!(
        sent,
        ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "same ids: the server drops what it already applied"
    );
    assert!(Snapshot::from_json("{\"format\":9}").is_err());
}

#[test]
fn an_expired_message_is_reported_not_sent_late() {
    let mut d = Drive::new(config());
    let id =
        d.c.send_with_expiry(
            ClientMessage::PitchView(PitchView { pitch_id: 1 }),
            d.now + Duration::from_secs(5),
            d.now,
        )
        .expect("queued");
    d.advance(6_000);
    assert!(
        d.take_events()
            .contains(&Event::SendFailed(id, SendFailure::Expired))
    );
    d.start();
    let frames = d.greet(ALL);
    assert!(frames.iter().all(|f| kind_of(f) != "pitch_view"));
}

#[test]
fn a_graceful_close_flushes_then_closes() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    let a = d.send_view(1);
    d.c.close_gracefully(Duration::from_secs(5), d.now);
    d.pump();
    assert!(d.closed.is_empty(), "waits for the ack");
    d.ack(a.as_str());
    assert_eq!(d.closed.len(), 1);
    assert_eq!(d.c.state(), &State::Closed);

    // With no ack in time it closes at the deadline, keeping the message queued.
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.send_view(2);
    d.c.close_gracefully(Duration::from_secs(5), d.now);
    d.advance(5_000);
    assert_eq!(d.c.state(), &State::Closed);
    assert_eq!(d.c.export().messages.len(), 1);
}

#[test]
fn server_frames_decode_for_the_record() {
    // A guard that the typed frames the tests above send parse as the core expects.
    let f = ServerFrame::decode(r#"{"type":"ack","data":{"id":"c-1"}}"#).expect("ack");
    assert!(matches!(f.message, ServerMessage::Ack(_)));
}

#[test]
fn background_closes_and_keeps_the_queue_foreground_reconnects() {
    let mut d = Drive::new(config());
    d.start();
    d.greet(ALL);
    d.confirm = false;
    d.c.suspend(d.now);
    d.pump();
    assert_eq!(d.c.state(), &State::Closed);
    assert_eq!(d.closed.len(), 1, "closed cleanly");
    let id = d.send_view(1);
    d.run(600_000);
    assert_eq!(d.connects.len(), 1, "no reconnect in the background");
    d.confirm = true;
    d.c.resume(d.now);
    d.pump();
    assert_eq!(d.connects.len(), 2, "the foreground reconnects at once");
    let frames = d.greet(ALL);
    assert!(
        frames.iter().any(|f| f.contains(id.as_str())),
        "the queue went out"
    );

    // An app that disconnected stays disconnected through background and foreground.
    d.c.disconnect(d.now);
    d.c.suspend(d.now);
    d.c.resume(d.now);
    d.pump();
    assert_eq!(d.c.state(), &State::Closed);
    assert_eq!(d.connects.len(), 2);
}
