//! The sans-IO core's cost per durable message: `send`, the write it asks for, and the
//! server's `ack` handled, in virtual time with no I/O. Measured against its peer in the
//! same run: the irreducible work of the same exchange without the core (encode the frame,
//! decode the ack). `cargo bench -p pitchey-realtime --bench core`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pitchey_realtime::core::{Action, Config, Connection, Event, Input, Instant};
use pitchey_realtime::protocol::{ClientFrame, ClientMessage, PitchView, ServerFrame};
use std::hint::black_box;

const CONNECTED: &str = r#"{"type":"connected","data":{"sessionId":"s-1","userId":7,"protocol":"pitchey-v1","heartbeatMs":30000,"rateLimit":{"maxMessages":1000000,"windowMs":60000,"refillRate":1000000},"features":["ack","seq","resume","subscribe","draft_conflict"]}}"#;

/// A core connected to a scripted server with an unlimited rate, at `now`.
fn connected_core(now: Instant) -> Connection {
    let mut config = Config::new("ws://bench/ws").with_token("t");
    config.outbox_capacity = 10_000;
    let mut conn = Connection::new(config, 7, now);
    conn.connect(now).expect("ws url");
    conn.handle(conn.current_attempt(), Input::Opened, now);
    conn.handle(conn.current_attempt(), Input::Text(CONNECTED.into()), now);
    while conn.poll_action().is_some() {}
    while conn.poll_event().is_some() {}
    conn
}

fn ack_for(text: &str) -> Option<String> {
    let frame = ClientFrame::decode(text).ok()?;
    Some(format!(
        r#"{{"type":"ack","data":{{"id":"{}"}}}}"#,
        frame.id?
    ))
}

fn send_and_ack(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_message");
    const BATCH: u64 = 100;
    group.throughput(criterion::Throughput::Elements(BATCH));
    group.bench_function("core", |b| {
        b.iter_batched_ref(
            || connected_core(Instant::from_millis(1)),
            |conn| {
                let mut acked = 0;
                for i in 0..BATCH {
                    // Ten seconds after connecting: the mirrored bucket has refilled to the
                    // server's announced size.
                    let now = Instant::from_millis(10_000 + i);
                    let msg = ClientMessage::PitchView(PitchView { pitch_id: i % 7 });
                    let _ = conn.send(msg, now);
                    while let Some(action) = conn.poll_action() {
                        if let Action::Send(text) = action
                            && let Some(ack) = ack_for(&text)
                        {
                            conn.handle(conn.current_attempt(), Input::Text(ack), now);
                        }
                    }
                    while let Some(event) = conn.poll_event() {
                        acked += u64::from(matches!(event, Event::Acked(_)));
                        black_box(event);
                    }
                }
                // A bench of messages that never went out would measure nothing.
                assert_eq!(acked, BATCH, "every message sent and acked");
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("peer_codec_only", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                let frame =
                    ClientFrame::new(ClientMessage::PitchView(PitchView { pitch_id: i % 7 }))
                        .with_id(format!("c-bench-{i}"));
                let text = frame.encode();
                let ack = ack_for(&text).unwrap_or_default();
                black_box(ServerFrame::decode(&ack).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, send_and_ack);
criterion_main!(benches);
