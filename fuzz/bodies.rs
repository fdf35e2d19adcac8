//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*` (cargo fuzz, nightly)
//! and `sdk/tests/fuzz_bodies.rs` (stable: seeds plus proptest inputs through the same
//! code). Each one panics when a property breaks; a clean return is a pass.
//!
//! Inputs that hold several frames separate them with `\n` (a frame's JSON never needs a
//! raw newline).

#![allow(dead_code)] // each includer uses its own subset

use std::sync::OnceLock;
use std::time::Duration;

use pitchey_mock_server::ServerConfig;
use pitchey_mock_server::fuzzing::SessionHarness;
use pitchey_realtime::core::{Action, Config, Connection, DraftOptions, Input, Instant};
use pitchey_realtime::protocol::{ClientFrame, ClientMessage, PitchView, RawFrame, ServerFrame};

/// At most this many frames per input: longer inputs add time, not new paths.
const MAX_FRAMES: usize = 64;

/// Client side: the SDK decoding one server frame. Never panics; whatever decodes encodes
/// to a frame that decodes to the same value (so the SDK can log and re-send what it read).
pub fn client_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = ServerFrame::decode(text) {
        let encoded = frame.encode();
        let again = ServerFrame::decode(&encoded)
            .unwrap_or_else(|e| panic!("re-encoded {encoded} does not decode: {e}"));
        assert_eq!(again, frame, "round trip of {text}");
    }
}

/// Client side, in place: the sans-IO core connected to a server that then sends these
/// frames (with a draft open and messages in flight, so that acks, errors, conflicts and
/// seqs have something to act on). Never panics, and its outbox never grows past its
/// capacity.
pub fn client_core(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = Config::new("ws://127.0.0.1:9/ws").with_token("t");
    let capacity = config.outbox_capacity;
    let mut now = Instant::ZERO;
    let mut conn = Connection::new(config, 7, now);
    conn.draft_open(
        "d1",
        None,
        serde_json::json!({"a": 1}),
        Some(1),
        DraftOptions::default(),
    );
    let _ = conn.connect(now);
    let mut attempt = None;
    drain(&mut conn, &mut attempt, now);
    let Some(current) = attempt else {
        panic!("connect gave no Connect action");
    };
    conn.handle(current, Input::Opened, now);
    conn.handle(
        current,
        Input::Text(
            r#"{"type":"connected","data":{"sessionId":"s-1","userId":1,"heartbeatMs":30000,"features":["ack","seq","resume","subscribe","draft_conflict"],"lastSeq":0}}"#
                .into(),
        ),
        now,
    );
    for pitch_id in 0..3 {
        let _ = conn.send(ClientMessage::PitchView(PitchView { pitch_id }), now);
    }
    let _ = conn.draft_update("d1", serde_json::json!({"a": 2}), true, now);
    let _ = conn.draft_save_now("d1", now);
    drain(&mut conn, &mut attempt, now);
    for line in text.split('\n').take(MAX_FRAMES) {
        now += Duration::from_millis(250);
        let current = attempt.unwrap_or(current);
        conn.handle(current, Input::Text(line.to_owned()), now);
        conn.handle_timeout(now);
        drain(&mut conn, &mut attempt, now);
        assert!(
            conn.metrics().queue_depth <= capacity,
            "outbox over capacity"
        );
    }
}

/// Take every action and event; confirm writes as a transport would.
fn drain(
    conn: &mut Connection,
    attempt: &mut Option<pitchey_realtime::core::AttemptId>,
    now: Instant,
) {
    loop {
        let mut progressed = false;
        while let Some(action) = conn.poll_action() {
            progressed = true;
            match action {
                Action::Connect { attempt: a, .. } => *attempt = Some(a),
                Action::Send(_) => {
                    if let Some(a) = *attempt {
                        conn.handle(a, Input::Written(1), now);
                    }
                }
                Action::Close { .. } => {}
            }
        }
        while conn.poll_event().is_some() {
            progressed = true;
        }
        if !progressed {
            return;
        }
    }
}

/// Server side: the server reading one client frame, as `session.rs` does: the envelope
/// first (for the id and the rate limit), then `data` by type. Never panics; whatever
/// decodes round-trips.
pub fn server_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(raw) = serde_json::from_str::<RawFrame<'_>>(text) else {
        return;
    };
    if let Ok(frame) = ClientFrame::from_raw(raw) {
        let encoded = frame.encode();
        let again = ClientFrame::decode(&encoded)
            .unwrap_or_else(|e| panic!("re-encoded {encoded} does not decode: {e}"));
        assert_eq!(again, frame, "round trip of {text}");
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    })
}

/// Server side, the frame handler: a fresh in-memory server, one session of user 1 (plus
/// a second session of user 1 and one of user 2), and these frames handled in order as
/// the session's loop handles them. Never panics, and every frame the server writes, to
/// this session or routed to the others, decodes with the SDK (the server never sends
/// what its own clients cannot read).
pub fn server_handler(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    runtime().block_on(async {
        let mut config = ServerConfig::for_tests();
        // A small bucket, so that the rate-limit refusals and the 4008 close are reached.
        config.rate_limit.max_messages = 24;
        config.rate_limit_close_after = 8;
        let mut session = SessionHarness::new(config);
        for line in text.split('\n').take(MAX_FRAMES) {
            let handled = session.handle(line).await;
            for frame in handled.answered.iter().chain(&handled.routed) {
                if let Err(e) = ServerFrame::decode(frame) {
                    panic!("the server wrote {frame}, which the SDK cannot read: {e}");
                }
            }
            if handled.closed.is_some() {
                break;
            }
        }
    });
}
