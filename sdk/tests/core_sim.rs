//! Scenario tests of the sans-IO core against the simulated peer, in virtual time: one
//! behaviour per test, each with a script of faults and app calls.

mod sim;

use std::time::Duration;

use pitchey_realtime::core::{
    Action, Config, ConflictStrategy, Connection, DraftOptions, Event, Input, Instant, Resolution,
    SendError, SendFailure, State,
};
use pitchey_realtime::protocol::{Channel, ClientMessage, Feature, PitchView, Typing};
use serde_json::json;
use sim::{Op, PeerConfig, Sim};

fn config() -> Config {
    Config::new("ws://sim/ws")
}

fn all_delivered_once(sim: &Sim) {
    for id in &sim.accepted {
        assert_eq!(sim.applied_count(id), 1, "{id}");
    }
}

#[test]
fn connects_sends_and_gets_acks() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 1);
    sim.run_for(1_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert!(sim.conn.supports(Feature::Ack));
    sim.at(0, Op::SendDurable { n: 3 });
    sim.run_for(1_000);
    assert_eq!(sim.acked.len(), 3);
    all_delivered_once(&sim);
    assert_eq!(sim.conn.metrics().queue_depth, 0);
}

#[test]
fn nothing_lost_across_drops_and_restarts() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 2);
    sim.at(500, Op::SendDurable { n: 10 });
    sim.at(520, Op::DropLink);
    sim.at(700, Op::SendDurable { n: 10 });
    sim.at(5_000, Op::Restart { down_ms: 3_000 });
    sim.at(5_010, Op::SendDurable { n: 10 });
    sim.run_for(60_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.acked.len(), 30);
    all_delivered_once(&sim);
    assert!(sim.conn.metrics().reconnects >= 2);
    assert!(sim.conn.metrics().last_disconnect.is_some());
}

#[test]
fn token_expiry_asks_for_a_token_and_reconnects() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 3);
    sim.run_for(1_000);
    sim.at(0, Op::ExpireToken { answer_ms: 2_000 });
    sim.at(10, Op::SendDurable { n: 5 });
    sim.run_for(1_000);
    assert!(matches!(sim.conn.state(), State::AwaitingToken));
    assert_eq!(sim.token_needed, 1);
    sim.run_for(5_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    all_delivered_once(&sim);
}

#[test]
fn no_token_in_time_is_auth_failed_without_retries() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 4);
    sim.run_for(1_000);
    sim.token_answer_ms = None;
    sim.at(0, Op::ExpireToken { answer_ms: 0 });
    sim.token_answer_ms = None;
    sim.run_for(1_000);
    // `ExpireToken` set an answer; take it back: this app has no token to give.
    sim.token_answer_ms = None;
    sim.run_for(40_000);
    let connects = sim.connects;
    assert!(
        matches!(
            sim.conn.state(),
            State::AuthFailed { .. } | State::Connected
        ),
        "{:?}",
        sim.conn.state()
    );
    sim.run_for(600_000);
    assert_eq!(sim.connects, connects, "no retries while auth-failed");
}

#[test]
fn auth_failed_after_timeout_then_set_token_reconnects() {
    let mut c = Connection::new(config().with_token("bad"), 7, Instant::ZERO);
    c.connect(Instant::ZERO).expect("ws url");
    assert!(matches!(c.poll_action(), Some(Action::Connect { .. })));
    c.handle(
        c.current_attempt(),
        Input::Closed {
            code: 4001,
            reason: "expired".into(),
        },
        Instant::from_millis(50),
    );
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::TokenNeeded));
    let deadline = c.poll_timeout().expect("token deadline");
    assert_eq!(deadline, Instant::from_millis(30_050));
    c.handle_timeout(deadline);
    assert!(matches!(c.state(), State::AuthFailed { .. }));
    assert_eq!(c.poll_timeout(), None, "nothing to wake up for");
    assert!(c.poll_action().is_none());
    c.set_token("good", Instant::from_millis(60_000));
    match c.poll_action() {
        Some(Action::Connect { url, token, .. }) => {
            assert_eq!(token, "good");
            assert!(url.ends_with("?token=good"));
        }
        other => panic!("expected connect, got {other:?}"),
    }
}

#[test]
fn a_provider_returning_rejected_tokens_ends_in_auth_failed() {
    let mut c = Connection::new(config().with_token("bad"), 7, Instant::ZERO);
    c.connect(Instant::ZERO).expect("ws url");
    let mut now = Instant::ZERO;
    let mut connects = 0;
    for _ in 0..50 {
        let mut busy = false;
        while let Some(a) = c.poll_action() {
            busy = true;
            if matches!(a, Action::Connect { .. }) {
                connects += 1;
                // The server refuses every token this provider has.
                now += Duration::from_millis(10);
                c.handle(
                    c.current_attempt(),
                    Input::Closed {
                        code: 4001,
                        reason: String::new(),
                    },
                    now,
                );
            }
        }
        while let Some(e) = c.poll_event() {
            busy = true;
            if e == Event::TokenNeeded {
                c.set_token("still-bad", now);
            }
        }
        if !busy && let Some(t) = c.poll_timeout() {
            now = now.max(t);
            c.handle_timeout(now);
        }
    }
    assert!(matches!(c.state(), State::AuthFailed { .. }));
    assert_eq!(connects, 3, "max_auth_failures attempts, then stop");
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn forbidden_is_final() {
    let mut c = Connection::new(config().with_token("t"), 7, Instant::ZERO);
    c.connect(Instant::ZERO).expect("ws url");
    c.handle(
        c.current_attempt(),
        Input::Closed {
            code: 4003,
            reason: "forbidden".into(),
        },
        Instant::from_millis(10),
    );
    assert_eq!(c.state(), &State::Closed);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn full_queue_is_an_error_and_an_event() {
    let mut cfg = config();
    cfg.outbox_capacity = 5;
    let mut sim = Sim::new(cfg, PeerConfig::full(), 5);
    sim.at(0, Op::RefuseConnects { ms: 20_000 });
    sim.run_for(100);
    let mut results = vec![];
    for n in 0..7 {
        results.push(
            sim.conn
                .send(ClientMessage::PitchView(PitchView { pitch_id: n }), sim.now),
        );
    }
    assert!(results[..5].iter().all(Result::is_ok));
    assert_eq!(results[5], Err(SendError::QueueFull { capacity: 5 }));
    sim.pump();
    assert_eq!(sim.queue_full_events, 2);
    assert_eq!(sim.conn.metrics().queue_depth, 5);
    sim.run_for(120_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.applied.len(), 5);
}

#[test]
fn a_burst_of_200_is_paced_under_the_server_limit() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 6);
    sim.run_for(1_000);
    let start = sim.now;
    // 200 > capacity 100: send in two halves as the app would after acks.
    sim.at(0, Op::SendDurable { n: 100 });
    sim.run_for(1_000);
    sim.at(0, Op::SendDurable { n: 100 });
    sim.run_for(120_000);
    assert_eq!(sim.violations, 0);
    assert_eq!(sim.applied.len(), 200);
    all_delivered_once(&sim);
    // 118 usable tokens at once, then 2 per second.
    let last_ack = sim
        .events
        .iter()
        .rev()
        .find(|(_, e)| matches!(e, Event::Acked(_)))
        .map(|(t, _)| *t)
        .expect("acks");
    assert!(
        last_ack - start >= Duration::from_secs(39),
        "{:?}",
        last_ack - start
    );
    assert!(
        last_ack - start <= Duration::from_secs(45),
        "{:?}",
        last_ack - start
    );
}

#[test]
fn rate_limited_pauses_and_resends() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 7);
    sim.run_for(1_000);
    sim.at(
        0,
        Op::ForceRateLimit {
            retry_after_ms: 3_000,
        },
    );
    sim.at(1, Op::SendDurable { n: 3 });
    sim.run_for(1_000);
    assert!(sim.forced_rejections >= 1);
    assert_eq!(
        sim.applied.len(),
        0,
        "nothing goes through during the pause"
    );
    sim.run_for(5_000);
    assert_eq!(sim.applied.len(), 3);
    all_delivered_once(&sim);
    assert_eq!(sim.violations, 0);
}

#[test]
fn lost_acks_are_retried_then_reported() {
    let mut peer = PeerConfig::full();
    peer.ack_loss = 1.0;
    let mut sim = Sim::new(config(), peer, 15);
    sim.run_for(1_000);
    sim.at(0, Op::SendDurable { n: 2 });
    sim.run_for(60_000);
    // Written again after each ack timeout, applied once.
    assert_eq!(sim.applied.len(), 2);
    assert!(sim.received_ids >= 4, "{}", sim.received_ids);
    assert!(sim.failed.is_empty());
    sim.run_for(600_000);
    // After `max_send_attempts` writes, reported failed: never silently pending.
    assert_eq!(sim.failed.len(), 2);
    assert_eq!(sim.conn.metrics().queue_depth, 0);
    all_delivered_once(&sim);
}

#[test]
fn a_silent_link_is_detected_by_the_heartbeat() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 8);
    sim.run_for(35_000);
    assert!(
        sim.conn.metrics().rtt.is_some(),
        "rtt measured by the first ping"
    );
    let before = sim.connects;
    sim.at(0, Op::Blackhole);
    sim.at(10, Op::SendDurable { n: 2 });
    // Next ping at ~61 s, dead 10 s later.
    sim.run_for(45_000);
    assert!(sim.connects > before, "reconnected");
    assert!(
        sim.conn
            .metrics()
            .last_disconnect
            .is_some_and(|r| r.contains("heartbeat"))
    );
    sim.run_for(5_000);
    all_delivered_once(&sim);
}

#[test]
fn seed_server_without_features() {
    let mut sim = Sim::new(config(), PeerConfig::seed(), 9);
    sim.run_for(1_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    sim.conn
        .subscribe(Channel::Pitch(42), sim.now)
        .expect("subscribe");
    sim.at(0, Op::SendDurable { n: 5 });
    sim.run_for(1_000);
    // Done once written: acked without an ack frame.
    assert_eq!(sim.acked.len(), 5);
    assert_eq!(
        sim.subscribe_frames, 0,
        "no subscribe frames to a seed server"
    );
    sim.at(0, Op::DropLink);
    sim.run_for(5_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.continuity_lost, 1, "no resume: the app must refetch");
    assert_eq!(sim.resume_frames, 0);
    // Written messages are not re-sent: a seed server would apply them twice.
    assert_eq!(sim.applied.len(), 5);
    all_delivered_once(&sim);
}

#[test]
fn a_quiet_client_resumes_from_the_servers_baseline() {
    // Nothing numbered arrives before the link drops: the client still knows where it
    // stands from `connected.lastSeq`, resumes, and gets what it missed without a refetch.
    let mut sim = Sim::new(config(), PeerConfig::full(), 11);
    sim.run_for(1_000);
    sim.at(0, Op::DropLink);
    sim.at(10, Op::ServerPush);
    sim.at(20, Op::ServerPush);
    sim.run_for(10_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.continuity_lost, 0, "baseline known: no refetch needed");
    let mut seqs = sim.seqs_seen.clone();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn resume_fills_what_was_missed_without_duplicates() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 10);
    sim.run_for(1_000);
    sim.at(0, Op::ServerPush);
    sim.at(100, Op::ServerPush);
    sim.at(200, Op::DropLink);
    sim.at(210, Op::ServerPush);
    sim.at(220, Op::ServerPush);
    sim.run_for(10_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.resume_frames, 1);
    assert_eq!(sim.continuity_lost, 0);
    let mut seqs = sim.seqs_seen.clone();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}

#[test]
fn own_draft_saves_leave_seq_gaps_that_are_not_losses() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 16);
    sim.run_for(1_000);
    sim.conn
        .draft_open("d", None, json!({}), None, DraftOptions::default());
    sim.at(0, Op::ServerPush);
    sim.run_for(500);
    sim.conn
        .draft_update("d", json!({"a": 1}), true, sim.now)
        .expect("open");
    sim.conn.draft_save_now("d", sim.now).expect("save");
    sim.pump();
    sim.run_for(500);
    // The server numbered the echo of our save for our other sessions and skipped it here.
    sim.at(0, Op::ServerPush);
    sim.run_for(10_000);
    assert_eq!(sim.seqs_seen, vec![1, 3]);
    assert_eq!(
        sim.continuity_lost, 0,
        "a gap the server explains is no loss"
    );
    assert!(sim.resume_frames >= 1, "the gap was checked with a resume");
}

#[test]
fn duplicate_seqs_are_dropped_and_a_refused_resume_is_continuity_lost() {
    let t = Instant::ZERO;
    let mut c = Connection::new(config().with_token("t"), 7, t);
    c.connect(t).expect("ws url");
    let connected = r#"{"type":"connected","data":{"sessionId":"s","userId":1,
        "features":["ack","seq","resume"]}}"#;
    c.handle(c.current_attempt(), Input::Opened, t);
    c.handle(c.current_attempt(), Input::Text(connected.into()), t);
    let note = |seq: u64| {
        format!(
            r#"{{"type":"notification","seq":{seq},"data":{{"id":"n","type":"t","title":"x"}}}}"#
        )
    };
    c.handle(c.current_attempt(), Input::Text(note(5)), t);
    c.handle(c.current_attempt(), Input::Text(note(5)), t);
    c.handle(c.current_attempt(), Input::Text(note(4)), t);
    let messages = std::iter::from_fn(|| c.poll_event())
        .filter(|e| matches!(e, Event::Message(f) if f.seq.is_some()))
        .count();
    assert_eq!(messages, 1);
    assert_eq!(c.metrics().duplicates_dropped, 2);

    // Reconnect: the core resumes from seq 5 and the server cannot.
    c.handle(
        c.current_attempt(),
        Input::Closed {
            code: 1006,
            reason: String::new(),
        },
        t,
    );
    c.handle(c.current_attempt(), Input::Opened, t);
    c.handle(c.current_attempt(), Input::Text(connected.into()), t);
    let resume = std::iter::from_fn(|| c.poll_action())
        .find_map(|a| match a {
            Action::Send(text) if text.contains("\"resume\"") => Some(text),
            _ => None,
        })
        .expect("resume sent");
    assert!(resume.contains("\"lastSeq\":5"), "{resume}");
    let id = pitchey_realtime::protocol::ClientFrame::decode(&resume)
        .expect("frame")
        .id
        .expect("resume has an id");
    while c.poll_event().is_some() {}
    c.handle(c.current_attempt(),
        Input::Text(format!(
            r#"{{"type":"error","data":{{"code":"not_found","message":"resume: gone","id":"{id}"}}}}"#
        )),
        t,
    );
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::ContinuityLost), "{events:?}");
}

#[test]
fn subscriptions_are_restored_after_reconnect() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 11);
    sim.at(0, Op::Subscribe { pitch: 1 });
    sim.at(0, Op::Subscribe { pitch: 2 });
    sim.run_for(2_000);
    assert!(sim.server_subscribed("pitch:1") && sim.server_subscribed("pitch:2"));
    sim.at(0, Op::Unsubscribe { pitch: 2 });
    sim.at(100, Op::Restart { down_ms: 1_000 });
    sim.run_for(10_000);
    assert!(sim.server_subscribed("pitch:1"));
    assert!(!sim.server_subscribed("pitch:2"));
}

#[test]
fn typing_is_coalesced_and_dropped_when_stale() {
    // Retries at most 500 ms apart: the link is back well inside the 3 s typing TTL
    // whatever the jitter draws (the first half of this test needs that; the seed must not).
    let mut cfg = config();
    cfg.backoff.max = std::time::Duration::from_millis(500);
    let mut sim = Sim::new(cfg, PeerConfig::full(), 12);
    sim.at(0, Op::RefuseConnects { ms: 1_500 });
    sim.run_for(10);
    for _ in 0..10 {
        sim.at(0, Op::Typing { conversation: 3 });
    }
    sim.at(0, Op::Presence);
    sim.at(0, Op::Presence);
    sim.run_for(1);
    assert_eq!(sim.conn.metrics().queue_depth, 2, "one per key");
    sim.run_for(10_000);
    assert_eq!(sim.typing_received, 1);
    assert_eq!(sim.presence_received, 1);

    // Offline longer than the typing TTL: the typing is dropped, the presence is not.
    sim.at(0, Op::Restart { down_ms: 20_000 });
    sim.at(5_000, Op::Typing { conversation: 3 });
    sim.at(5_000, Op::Presence);
    sim.run_for(60_000);
    assert_eq!(sim.typing_received, 1);
    assert_eq!(sim.presence_received, 2);
}

#[test]
fn presence_is_said_again_after_a_reconnect() {
    // The server marks a reconnecting user online: the app's `away` must be restored.
    let mut sim = Sim::new(config(), PeerConfig::full(), 14);
    sim.run_for(1_000);
    sim.at(0, Op::Presence);
    sim.run_for(1_000);
    assert_eq!(sim.presence_received, 1);
    sim.at(0, Op::DropLink);
    sim.run_for(10_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.presence_received, 2);
}

#[test]
fn a_fresh_token_set_before_the_old_one_is_refused_is_kept() {
    // The app refreshes its token while connected; then the server closes the socket of
    // the old token with 4001. The fresh token is used at once: no TokenNeeded, no wait.
    let t = Instant::from_millis(1);
    let mut c = Connection::new(config().with_token("old"), 7, t);
    c.connect(t).expect("ws url");
    c.handle(c.current_attempt(), Input::Opened, t);
    c.handle(
        c.current_attempt(),
        Input::Text(r#"{"type":"connected","data":{"sessionId":"s","userId":7}}"#.into()),
        t,
    );
    c.set_token("fresh", t);
    while c.poll_action().is_some() {}
    while c.poll_event().is_some() {}
    c.handle(
        c.current_attempt(),
        Input::Closed {
            code: 4001,
            reason: "token expired".into(),
        },
        t,
    );
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(!events.contains(&Event::TokenNeeded), "{events:?}");
    let connect = std::iter::from_fn(|| c.poll_action()).find_map(|a| match a {
        Action::Connect { token, .. } => Some(token),
        _ => None,
    });
    assert_eq!(
        connect.as_deref(),
        Some("fresh"),
        "first retry is immediate, with the fresh token"
    );
}

#[test]
fn disconnect_is_final_until_connect() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 13);
    sim.run_for(1_000);
    sim.conn.disconnect(sim.now);
    sim.pump();
    assert_eq!(sim.conn.state(), &State::Closed);
    let connects = sim.connects;
    sim.at(0, Op::SendDurable { n: 3 });
    sim.run_for(600_000);
    assert_eq!(sim.connects, connects);
    assert_eq!(sim.applied.len(), 0);
    sim.conn.connect(sim.now).expect("ws url");
    sim.pump();
    sim.run_for(2_000);
    assert_eq!(sim.applied.len(), 3, "queued while closed, sent on connect");
}

#[test]
fn backoff_grows_within_bounds_and_resets_after_a_stable_connection() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 14);
    sim.run_for(1_000);
    sim.at(0, Op::Restart { down_ms: 120_000 });
    sim.run_for(200_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    let attempts: Vec<u32> = sim
        .states
        .iter()
        .filter_map(|(_, s)| match s {
            State::Reconnecting { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert!(attempts.len() >= 6, "{attempts:?}");
    assert!(
        attempts.windows(2).all(|w| w[1] == w[0] + 1),
        "{attempts:?}"
    );
    // Within 2 min of refusals, attempts are far apart: no hot loop.
    assert!(sim.connects < 30, "{} connects", sim.connects);
    // Stable for longer than reset_after: the next loss retries immediately again.
    sim.run_for(15_000);
    sim.states.clear();
    sim.at(0, Op::DropLink);
    sim.run_for(1_000);
    assert!(
        sim.states
            .iter()
            .any(|(_, s)| matches!(s, State::Reconnecting { attempt: 1, .. }))
    );
}

// ----- drafts ------------------------------------------------------------------------------

fn draft_sim(strategy: ConflictStrategy, peer: PeerConfig) -> Sim {
    let mut sim = Sim::new(config(), peer, 20);
    sim.run_for(1_000);
    sim.conn.draft_open(
        "pitch_42",
        Some("pitch".into()),
        json!({"title": "Night Train", "logline": "a"}),
        None,
        DraftOptions::default().with_strategy(strategy),
    );
    sim
}

fn update(sim: &mut Sim, content: serde_json::Value, valid: bool) {
    sim.conn
        .draft_update("pitch_42", content, valid, sim.now)
        .expect("draft open");
    sim.pump();
}

#[test]
fn a_draft_too_large_to_send_is_reported_once_not_retried_forever() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::full());
    let huge = "x".repeat(sim.conn.config().max_message_bytes);
    update(&mut sim, json!({ "title": huge }), true);
    sim.run_for(60_000); // twelve auto-save intervals
    let failures = sim
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::DraftSaveFailed {
                    reason: SendFailure::TooLarge { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(failures, 1, "reported once");
    assert!(sim.server_draft("pitch_42").is_none());
    assert!(matches!(
        sim.conn.draft_save_now("pitch_42", sim.now),
        Err(SendError::TooLarge { .. })
    ));
    // The edits are kept: a smaller version saves.
    assert!(sim.conn.draft_state("pitch_42").is_some_and(|d| d.dirty));
    update(&mut sim, json!({"title": "short"}), true);
    sim.run_for(10_000);
    assert!(sim.server_draft("pitch_42").is_some());
}

#[test]
fn draft_auto_saves_when_dirty_and_valid() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::full());
    update(&mut sim, json!({"title": ""}), false);
    sim.run_for(10_000);
    assert!(
        sim.server_draft("pitch_42").is_none(),
        "invalid content not saved"
    );
    assert_eq!(
        sim.conn.draft_save_now("pitch_42", sim.now),
        Err(SendError::InvalidDraft("pitch_42".into()))
    );
    update(&mut sim, json!({"title": "Night Train 2"}), true);
    sim.run_for(4_000);
    assert!(
        sim.server_draft("pitch_42").is_none(),
        "not before the interval"
    );
    assert!(sim.conn.draft_state("pitch_42").expect("open").dirty);
    sim.run_for(2_000);
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(1, json!({"title": "Night Train 2"})))
    );
    let st = sim.conn.draft_state("pitch_42").expect("open");
    assert_eq!(st.base_version, Some(1));
    assert!(!st.dirty && !st.saving && st.last_saved.is_some());
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::DraftSaved {
            version: Some(1),
            ..
        }
    )));
}

#[test]
fn offline_edits_coalesce_into_one_save() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::full());
    sim.at(0, Op::Restart { down_ms: 30_000 });
    sim.run_for(100);
    for i in 0..5 {
        update(&mut sim, json!({"title": format!("v{i}")}), true);
        sim.run_for(6_000);
    }
    assert_eq!(
        sim.conn.metrics().queue_depth,
        1,
        "one save entry per draft"
    );
    sim.run_for(60_000);
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(1, json!({"title": "v4"})))
    );
}

#[test]
fn remote_edit_of_a_clean_draft_is_adopted() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::full());
    sim.at(
        0,
        Op::RemoteDraftEdit {
            draft: "pitch_42".into(),
            content: json!({"title": "From the laptop"}),
        },
    );
    sim.run_for(1_000);
    let st = sim.conn.draft_state("pitch_42").expect("open");
    assert_eq!(st.content, json!({"title": "From the laptop"}));
    assert_eq!(st.base_version, Some(1));
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::DraftUpdated { .. }))
    );
}

/// Local edit and remote edit race: the local save goes on a stale base.
fn conflict(sim: &mut Sim, local: serde_json::Value, remote: serde_json::Value) {
    sim.at(0, Op::Restart { down_ms: 5_000 });
    sim.run_for(100);
    update(sim, local, true);
    sim.conn
        .draft_save_now("pitch_42", sim.now)
        .expect("save queued");
    // While we are offline, another session saves.
    sim.at(
        0,
        Op::RemoteDraftEdit {
            draft: "pitch_42".into(),
            content: remote,
        },
    );
    sim.run_for(30_000);
}

#[test]
fn draft_strategy_local_saves_on_top_of_the_server_version() {
    let mut sim = draft_sim(ConflictStrategy::Local, PeerConfig::full());
    conflict(
        &mut sim,
        json!({"title": "mine", "logline": "a"}),
        json!({"title": "theirs", "logline": "a"}),
    );
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(2, json!({"title": "mine", "logline": "a"})))
    );
    let st = sim.conn.draft_state("pitch_42").expect("open");
    assert_eq!(st.base_version, Some(2));
    assert!(!st.dirty && st.conflict.is_none());
}

#[test]
fn draft_strategy_remote_adopts_the_server_content() {
    let mut sim = draft_sim(ConflictStrategy::Remote, PeerConfig::full());
    conflict(
        &mut sim,
        json!({"title": "mine"}),
        json!({"title": "theirs"}),
    );
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(1, json!({"title": "theirs"})))
    );
    let st = sim.conn.draft_state("pitch_42").expect("open");
    assert_eq!(st.content, json!({"title": "theirs"}));
    assert!(!st.dirty);
}

#[test]
fn draft_strategy_merge_combines_fields_changed_on_one_side() {
    let mut sim = draft_sim(ConflictStrategy::Merge, PeerConfig::full());
    conflict(
        &mut sim,
        json!({"title": "mine", "logline": "a"}),
        json!({"title": "Night Train", "logline": "theirs"}),
    );
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(2, json!({"title": "mine", "logline": "theirs"})))
    );
}

#[test]
fn draft_strategy_merge_falls_back_to_ask_then_resolves_with_content() {
    let mut sim = draft_sim(ConflictStrategy::Merge, PeerConfig::full());
    conflict(
        &mut sim,
        json!({"title": "mine", "logline": "a"}),
        json!({"title": "theirs", "logline": "a"}),
    );
    let ev = sim
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::DraftConflict {
                base,
                local,
                remote,
                remote_version,
                ..
            } => Some((base.clone(), local.clone(), remote.clone(), *remote_version)),
            _ => None,
        })
        .expect("conflict surfaced");
    assert_eq!(ev.0, json!({"title": "Night Train", "logline": "a"}));
    assert_eq!(ev.1["title"], "mine");
    assert_eq!(ev.2["title"], "theirs");
    assert_eq!(ev.3, Some(1));
    assert!(
        sim.conn
            .draft_state("pitch_42")
            .expect("open")
            .conflict
            .is_some()
    );
    sim.conn
        .draft_resolve(
            "pitch_42",
            Resolution::Content(json!({"title": "ours", "logline": "a"})),
            sim.now,
        )
        .expect("resolve");
    sim.pump();
    sim.run_for(2_000);
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(2, json!({"title": "ours", "logline": "a"})))
    );
    assert_eq!(
        sim.conn
            .draft_resolve("pitch_42", Resolution::Local, sim.now),
        Err(SendError::NoConflict("pitch_42".into()))
    );
}

#[test]
fn draft_strategy_ask_resolved_with_remote() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::full());
    conflict(
        &mut sim,
        json!({"title": "mine"}),
        json!({"title": "theirs"}),
    );
    assert!(
        sim.conn
            .draft_state("pitch_42")
            .expect("open")
            .conflict
            .is_some()
    );
    sim.conn
        .draft_resolve("pitch_42", Resolution::Remote, sim.now)
        .expect("resolve");
    sim.pump();
    sim.run_for(10_000);
    let st = sim.conn.draft_state("pitch_42").expect("open");
    assert_eq!(st.content, json!({"title": "theirs"}));
    assert!(!st.dirty && st.conflict.is_none());
    assert_eq!(
        sim.server_draft("pitch_42"),
        Some(&(1, json!({"title": "theirs"})))
    );
}

#[test]
fn drafts_on_a_seed_server_are_last_write_wins() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::seed());
    conflict(
        &mut sim,
        json!({"title": "mine"}),
        json!({"title": "theirs"}),
    );
    assert_eq!(
        sim.server_draft("pitch_42").map(|d| &d.1),
        Some(&json!({"title": "mine"}))
    );
    let st = sim.conn.draft_state("pitch_42").expect("open");
    assert!(st.conflict.is_none() && !st.dirty);
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::DraftSaved { version: None, .. }))
    );
}

#[test]
fn send_refuses_what_the_core_manages_and_oversized_frames() {
    let mut c = Connection::new(config().with_token("t"), 7, Instant::ZERO);
    assert!(matches!(
        c.send(ClientMessage::Ping(Default::default()), Instant::ZERO),
        Err(SendError::NotSendable { .. })
    ));
    let big = ClientMessage::Unknown {
        kind: "chat_message".into(),
        data: json!({"text": "x".repeat(70_000)}),
    };
    assert!(matches!(
        c.send(big, Instant::ZERO),
        Err(SendError::TooLarge { .. })
    ));
    // Typing is ephemeral: an id comes back but it is not in the outbox as durable.
    let t = ClientMessage::Typing(Typing {
        conversation_id: 1,
        is_typing: true,
    });
    assert!(c.send(t, Instant::ZERO).is_ok());
    assert_eq!(c.metrics().queue_depth, 1);
}

#[test]
fn a_draft_opened_twice_stays_open_until_both_close() {
    let mut sim = draft_sim(ConflictStrategy::Ask, PeerConfig::full());
    // A second handle on the same draft (two components editing one pitch).
    sim.conn
        .draft_open("pitch_42", None, json!({}), None, DraftOptions::default());
    sim.conn.draft_close("pitch_42");
    assert!(
        sim.conn.draft_state("pitch_42").is_some(),
        "one holder left"
    );
    assert_eq!(
        sim.conn.draft_state("pitch_42").map(|d| d.content.clone()),
        Some(json!({"title": "Night Train", "logline": "a"})),
        "the second open did not reset the live content"
    );
    sim.conn.draft_close("pitch_42");
    assert!(sim.conn.draft_state("pitch_42").is_none());
}
