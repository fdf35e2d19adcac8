//! Property tests of the sans-IO core: thousands of random fault schedules in virtual time.
//!
//! Each case is a random schedule of faults (dropped links, silent deaths, server restarts
//! that lose what was in flight, refused connects, token expiry answered late or not at all,
//! forced rate limits, explicit disconnects, a server that loses acks) interleaved with app
//! traffic (bursts of durable sends, typing, presence, subscriptions, draft edits under one
//! of the four conflict strategies) and server pushes and edits from another session, over
//! five virtual minutes against a full or a seed-compatible peer, followed by ten minutes of
//! healthy network.
//!
//! Checked at every step by the harness (`sim/mod.rs`): every backoff delay within
//! `BackoffConfig::max_delay` and no attempt before it; no timer still due after
//! `handle_timeout` (no busy loop); no message acked twice. Checked per case below:
//! - every durable message `send` accepted is applied by the server exactly once (it
//!   de-duplicates by id) or reported failed; on a seed server at most once (no acks, so a
//!   message written into a dying socket can be lost: that is the seed protocol);
//! - the server applied them in send order (messages it refused with `rate_limited` and
//!   applied later excepted, bounded by the in-flight window);
//! - the server's own token bucket was never overdrawn;
//! - timer wake-ups per virtual second stay small; outbox depth within capacity; in-flight
//!   within the window; every refused send came with an event;
//! - after healing: connected, outbox empty, subscriptions restored on the server, every
//!   server push seen once or `ContinuityLost` emitted, the draft converged with the server
//!   (same content and version, nothing dirty, saving or in conflict).
//!
//! A second property feeds arbitrary frames (valid, hostile, garbage) and app calls in any
//! order: no panic, no busy loop, bounded outbox.
//!
//! `SIM_CASES` overrides the number of schedules (default 2000).

mod sim;

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use pitchey_realtime::core::{
    Action, Config, ConflictStrategy, DraftOptions, Input, Instant, Resolution, State,
};
use pitchey_realtime::protocol::{Channel, ClientFrame, ClientMessage, PitchView, Typing};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use serde_json::json;
use sim::{Op, PeerConfig, SIM_DRAFT, Sim};

const ACTIVE_MS: u64 = 300_000;
const HEAL_MS: u64 = 600_000;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::DropLink),
        1 => Just(Op::Blackhole),
        1 => (0u64..10_000).prop_map(|down_ms| Op::Restart { down_ms }),
        1 => (0u64..20_000).prop_map(|ms| Op::RefuseConnects { ms }),
        1 => (0u64..45_000).prop_map(|answer_ms| Op::ExpireToken { answer_ms }),
        1 => (1_000u64..5_000).prop_map(|retry_after_ms| Op::ForceRateLimit { retry_after_ms }),
        6 => (1u32..40).prop_map(|n| Op::SendDurable { n }),
        1 => (100u32..160).prop_map(|n| Op::SendDurable { n }),
        2 => (1u64..4).prop_map(|conversation| Op::Typing { conversation }),
        1 => Just(Op::Presence),
        1 => (1u64..5).prop_map(|pitch| Op::Subscribe { pitch }),
        1 => (1u64..5).prop_map(|pitch| Op::Unsubscribe { pitch }),
        3 => Just(Op::ServerPush),
        1 => (0u64..20_000).prop_map(|ms| Op::DisconnectFor { ms }),
        3 => (0u8..3, 0u32..1_000, prop::bool::weighted(0.9))
            .prop_map(|(field, value, valid)| Op::LocalDraftField { field, value, valid }),
        2 => (0u8..3, 0u32..1_000).prop_map(|(field, value)| Op::RemoteDraftField { field, value }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    seed_peer: bool,
    latency: (u64, u64),
    capacity: usize,
    strategy: ConflictStrategy,
    ack_loss: f64,
    schedule: Vec<(u64, Op)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        prop::bool::weighted(0.25),
        prop_oneof![Just((0, 5)), Just((5, 80)), Just((50, 300))],
        prop_oneof![Just(100usize), Just(20usize)],
        prop_oneof![
            Just(ConflictStrategy::Local),
            Just(ConflictStrategy::Remote),
            Just(ConflictStrategy::Merge),
            Just(ConflictStrategy::Ask),
        ],
        prop_oneof![4 => Just(0.0), 1 => Just(0.2)],
        prop::collection::vec((0..ACTIVE_MS, op()), 0..40),
    )
        .prop_map(
            |(seed, seed_peer, latency, capacity, strategy, ack_loss, schedule)| Case {
                seed,
                seed_peer,
                latency,
                capacity,
                strategy,
                ack_loss,
                schedule,
            },
        )
}

/// Totals over all cases, to show the schedules exercise what they claim to.
#[derive(Debug, Default)]
struct Totals {
    accepted: usize,
    acked: usize,
    failed: usize,
    queue_full: u32,
    connects: u32,
    forced_rejections: u32,
    continuity_lost: u32,
    token_needed: u32,
    max_wakeups: u32,
    seed_cases: u32,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.accepted += o.accepted;
        self.acked += o.acked;
        self.failed += o.failed;
        self.queue_full += o.queue_full;
        self.connects += o.connects;
        self.forced_rejections += o.forced_rejections;
        self.continuity_lost += o.continuity_lost;
        self.token_needed += o.token_needed;
        self.max_wakeups = self.max_wakeups.max(o.max_wakeups);
        self.seed_cases += o.seed_cases;
    }
}

fn run(case: &Case, totals: &RefCell<Totals>) -> Result<(), TestCaseError> {
    let mut peer = if case.seed_peer {
        PeerConfig::seed()
    } else {
        PeerConfig::full()
    };
    peer.latency_ms = case.latency;
    peer.ack_loss = case.ack_loss;
    let mut config = Config::new("ws://sim/ws");
    config.outbox_capacity = case.capacity;
    let window = config.in_flight_window;
    let mut sim = Sim::new(config, peer, case.seed);
    sim.auto_resolve = true;
    sim.refetch_on_continuity_lost = true;
    sim.conn.draft_open(
        SIM_DRAFT,
        Some("pitch".into()),
        json!({}),
        None,
        DraftOptions::default().with_strategy(case.strategy),
    );
    for (at, op) in &case.schedule {
        sim.at(*at, op.clone());
    }
    sim.run_for(ACTIVE_MS);
    sim.heal_and_run(HEAL_MS);
    {
        let mut t = totals.borrow_mut();
        t.accepted += sim.accepted.len();
        t.acked += sim.acked.len();
        t.failed += sim.failed.len();
        t.queue_full += sim.queue_full_events;
        t.connects += sim.connects;
        t.forced_rejections += sim.forced_rejections;
        t.continuity_lost += sim.continuity_lost;
        t.token_needed += sim.token_needed;
        t.max_wakeups = t
            .max_wakeups
            .max(sim.wakeups.values().copied().max().unwrap_or(0));
        t.seed_cases += u32::from(case.seed_peer);
    }

    // The network is healthy again: connected, and everything accepted went out.
    prop_assert_eq!(sim.conn.state(), &State::Connected);
    prop_assert_eq!(sim.conn.metrics().queue_depth, 0, "outbox drained");

    // Exactly once in effect, or reported failed.
    for id in &sim.accepted {
        let n = sim.applied_count(id);
        prop_assert!(n <= 1, "{} applied {} times", id, n);
        if !case.seed_peer {
            prop_assert!(
                n == 1 || sim.failed.contains(id),
                "{} neither delivered nor reported failed",
                id
            );
        }
        prop_assert!(sim.acked.contains(id) || sim.failed.contains(id));
    }
    // Nothing applied that was not sent (ids are unique per connection).
    let accepted: HashSet<&str> = sim.accepted.iter().map(|i| i.as_str()).collect();
    for id in &sim.applied {
        prop_assert!(accepted.contains(id.as_str()), "unknown id {}", id);
    }
    // Order kept: the server applied them in send order. One exception, by design: a
    // message the server refused with `rate_limited` is re-sent after the pause, so a later
    // message already in flight (and accepted because the server's limit had lifted by
    // the time it arrived) lands before it. Those re-sent messages are left out of the
    // check; how far they moved is bounded by the in-flight window.
    let pos: std::collections::HashMap<&str, usize> = sim
        .accepted
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let order: Vec<usize> = sim
        .applied
        .iter()
        .filter(|id| !sim.rate_rejected.contains(*id))
        .map(|id| pos[id.as_str()])
        .collect();
    prop_assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "order broken: {:?}",
        order
    );
    for (applied_at, id) in sim.applied.iter().enumerate() {
        if sim.rate_rejected.contains(id) {
            let sent_at = pos[id.as_str()];
            prop_assert!(
                applied_at <= sent_at + window,
                "{} moved {} places",
                id,
                applied_at.saturating_sub(sent_at)
            );
        }
    }

    // The server's rate limit was never exceeded.
    prop_assert_eq!(sim.violations, 0, "server bucket overdrawn");

    // No busy loop: timer wake-ups per virtual second stay small.
    let max_wakeups = sim.wakeups.values().copied().max().unwrap_or(0);
    prop_assert!(max_wakeups <= 25, "{} wake-ups in one second", max_wakeups);

    // Memory bounded by the queue size; the in-flight window respected.
    prop_assert!(sim.max_queue_depth <= case.capacity);
    prop_assert!(sim.max_in_flight <= window);

    // Nothing dropped silently: every refused send was an error plus an event.
    // (Auto-saves that found the outbox full add events of their own and retry later.)
    prop_assert!(sim.send_errors <= sim.queue_full_events);

    if !case.seed_peer {
        // Server pushes: never shown twice; any that went missing was announced.
        let mut seen = HashSet::new();
        for s in &sim.seqs_seen {
            prop_assert!(seen.insert(*s), "seq {} delivered twice", s);
        }
        let missing = sim.pushed.iter().filter(|s| !seen.contains(s)).count();
        prop_assert!(
            missing == 0 || sim.continuity_lost > 0,
            "{} pushes lost without ContinuityLost",
            missing
        );
        // The draft converged with the server: same content and version, nothing pending.
        let st = sim.conn.draft_state(SIM_DRAFT).expect("draft open");
        prop_assert!(st.conflict.is_none() && !st.dirty && !st.saving, "{:?}", st);
        if let Some((version, content)) = sim.server_draft(SIM_DRAFT) {
            prop_assert_eq!(&st.content, content, "draft content diverged");
            prop_assert_eq!(st.base_version, Some(*version), "draft version diverged");
        }
        // Subscriptions restored on the live connection.
        for ch in sim.conn.subscriptions() {
            prop_assert!(
                sim.server_subscribed(&ch.to_string()),
                "{} not resubscribed",
                ch
            );
        }
    }
    Ok(())
}

#[test]
fn random_fault_schedules_keep_every_invariant() {
    let cases: u32 = std::env::var("SIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    // The cases are independent: spread them over the machine's cores, each thread with
    // its own generator seed (proptest shrinks a failure within its thread).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let started = std::time::Instant::now();
    let outcomes: Vec<(Result<(), String>, Totals)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                scope.spawn(move || {
                    let share = cases / threads + u32::from(i < cases % threads);
                    let config = ProptestConfig {
                        cases: share,
                        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
                        ..ProptestConfig::default()
                    };
                    let mut seed = [0u8; 32];
                    seed[..4].copy_from_slice(&(i + 1).to_le_bytes());
                    let rng = proptest::test_runner::TestRng::from_seed(
                        proptest::test_runner::RngAlgorithm::ChaCha,
                        &seed,
                    );
                    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config, rng);
                    let totals = RefCell::new(Totals::default());
                    let result = runner
                        .run(&case(), |c| run(&c, &totals))
                        .map_err(|e| e.to_string());
                    (result, totals.into_inner())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut totals = Totals::default();
    for (_, t) in &outcomes {
        totals.add(t);
    }
    eprintln!(
        "core_props: {cases} fault schedules ({} virtual minutes each) on {threads} threads in {:.2?}\n{:#?}",
        (ACTIVE_MS + HEAL_MS) / 60_000,
        elapsed,
        totals
    );
    for (result, _) in outcomes {
        if let Err(e) = result {
            panic!("{e}");
        }
    }
    let _ = Duration::ZERO;
}

/// One step of an arbitrary (hostile or buggy) peer and app.
#[derive(Debug, Clone)]
enum Step {
    Opened,
    Frame(u8, u64, u64, usize),
    Garbage(String),
    Closed(u16),
    Failed,
    Timeout(u16),
    Send(u8),
    Subscribe(u8),
    DraftEdit(u8, bool),
    SetToken,
    Connect,
    Disconnect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Opened),
        8 => (0u8..14, any::<u64>(), 0u64..100, any::<usize>())
            .prop_map(|(k, a, b, i)| Step::Frame(k, a, b, i)),
        1 => ".{0,40}".prop_map(Step::Garbage),
        1 => prop_oneof![
            Just(1000u16), Just(1001), Just(1006), Just(4001), Just(4003), Just(4008),
            Just(4009), any::<u16>()
        ]
        .prop_map(Step::Closed),
        1 => Just(Step::Failed),
        4 => any::<u16>().prop_map(Step::Timeout),
        3 => (0u8..4).prop_map(Step::Send),
        1 => (0u8..4).prop_map(Step::Subscribe),
        1 => (0u8..3, any::<bool>()).prop_map(|(f, v)| Step::DraftEdit(f, v)),
        1 => Just(Step::SetToken),
        1 => Just(Step::Connect),
        1 => Just(Step::Disconnect),
    ]
}

/// A server frame of kind `k` built from arbitrary numbers; `ids` are ids the client sent.
fn frame(k: u8, a: u64, b: u64, i: usize, ids: &[String]) -> String {
    let id = if ids.is_empty() {
        json!("c-x-1")
    } else {
        json!(ids[i % ids.len()])
    };
    let features = ["ack", "seq", "resume", "subscribe", "draft_conflict"];
    let on: Vec<&str> = features
        .iter()
        .enumerate()
        .filter(|(n, _)| a >> n & 1 == 1)
        .map(|(_, f)| *f)
        .collect();
    let v = match k {
        0 => json!({"type": "connected", "data": {"sessionId": "s", "userId": 1,
            "heartbeatMs": a % 5 * (b + 1) * 1_000 / 3, "features": on,
            "rateLimit": {"maxMessages": b, "windowMs": a, "refillRate": (b % 4) as f64 * 0.7},
            "resumed": a.is_multiple_of(3)}}),
        1 => json!({"type": "ping", "data": {"ts": a}}),
        2 => json!({"type": "pong", "data": {"ts": a}}),
        3 => json!({"type": "ack", "data": {"id": id, "version": b}}),
        4 => json!({"type": "error", "data": {"code": "rate_limited", "message": "",
            "retryAfterMs": a, "id": id}}),
        5 => json!({"type": "error", "data": {"code": "invalid_message", "message": "", "id": id}}),
        6 => json!({"type": "notification", "seq": a % 20 + b, "data": {"id": "n", "type": "t",
            "title": "x"}}),
        7 => json!({"type": "draft_conflict", "data": {"draftId": "d1", "serverVersion": b,
            "serverContent": {"f0": a}}}),
        8 => json!({"type": "draft_sync", "seq": b, "data": {"draftId": "d1",
            "content": {"f1": a}, "version": b}}),
        9 => json!({"type": "draft_sync", "data": {"draftId": "d1", "content": a}}),
        10 => json!({"type": "disconnected", "data": {"reason": "bye"}}),
        11 => json!({"type": "mystery", "seq": a, "data": [1, 2]}),
        12 => json!({"type": "ack", "data": {"id": a.to_string()}}),
        _ => json!({"type": "connected", "data": {"sessionId": 5}}),
    };
    v.to_string()
}

fn arbitrary_inputs(steps: &[Step], strategy: ConflictStrategy) -> Result<(), TestCaseError> {
    let mut cfg = Config::new("ws://fuzz/ws").with_token("t");
    cfg.outbox_capacity = 10;
    let capacity = cfg.outbox_capacity;
    let mut c = pitchey_realtime::core::Connection::new(cfg, 7, Instant::ZERO);
    c.draft_open(
        SIM_DRAFT,
        None,
        json!({}),
        None,
        DraftOptions::default().with_strategy(strategy),
    );
    c.connect(Instant::ZERO).expect("ws url");
    let mut now = Instant::ZERO;
    let mut ids: Vec<String> = Vec::new();
    for s in steps {
        match s {
            Step::Opened => c.handle(c.current_attempt(), Input::Opened, now),
            Step::Frame(k, a, b, i) => c.handle(
                c.current_attempt(),
                Input::Text(frame(*k, *a, *b, *i, &ids)),
                now,
            ),
            Step::Garbage(g) => c.handle(c.current_attempt(), Input::Text(g.clone()), now),
            Step::Closed(code) => c.handle(
                c.current_attempt(),
                Input::Closed {
                    code: *code,
                    reason: String::new(),
                },
                now,
            ),
            Step::Failed => c.handle(
                c.current_attempt(),
                Input::Failed {
                    reason: String::new(),
                },
                now,
            ),
            Step::Timeout(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                if let Some(t) = c.poll_timeout()
                    && t <= now
                {
                    c.handle_timeout(now);
                    if let Some(t) = c.poll_timeout() {
                        prop_assert!(t > now, "timer still due after handle_timeout");
                    }
                }
            }
            Step::Send(n) => {
                let msg = match n {
                    0 => ClientMessage::PitchView(PitchView { pitch_id: 1 }),
                    1 => ClientMessage::Typing(Typing {
                        conversation_id: 1,
                        is_typing: true,
                    }),
                    2 => ClientMessage::Unknown {
                        kind: "chat".into(),
                        data: json!({}),
                    },
                    _ => ClientMessage::Ping(Default::default()),
                };
                let _ = c.send(msg, now);
            }
            Step::Subscribe(p) => {
                let _ = c.subscribe(Channel::Pitch(u64::from(*p)), now);
            }
            Step::DraftEdit(f, valid) => {
                let _ = c.draft_update(
                    SIM_DRAFT,
                    json!({ format!("f{f}"): now.as_millis() }),
                    *valid,
                    now,
                );
                let _ = c.draft_resolve(SIM_DRAFT, Resolution::Local, now);
            }
            Step::SetToken => c.set_token("t2", now),
            Step::Connect => c.connect(now).expect("ws url"),
            Step::Disconnect => c.disconnect(now),
        }
        while let Some(a) = c.poll_action() {
            if let Action::Send(text) = a
                && let Ok(f) = ClientFrame::decode(&text)
                && let Some(id) = f.id
            {
                ids.push(id);
            }
        }
        while c.poll_event().is_some() {}
        prop_assert!(c.metrics().queue_depth <= capacity);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    /// Whatever a peer sends and whatever order the app calls in: no panic, no busy loop,
    /// the outbox stays bounded.
    #[test]
    fn arbitrary_inputs_never_panic(
        steps in prop::collection::vec(step(), 0..120),
        strategy in prop_oneof![
            Just(ConflictStrategy::Local),
            Just(ConflictStrategy::Remote),
            Just(ConflictStrategy::Merge),
            Just(ConflictStrategy::Ask),
        ],
    ) {
        arbitrary_inputs(&steps, strategy)?;
    }
}
