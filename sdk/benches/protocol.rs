//! Frame codec speed: typed decode/encode of `pitchey-v1` frames, against the peer every
//! dynamic client pays anyway, an untyped `serde_json::Value` parse/serialize of the same
//! text, measured in the same run. `cargo bench -p pitchey-realtime --bench protocol`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pitchey_realtime::protocol::{ClientFrame, ServerFrame};
use std::hint::black_box;

const FRAMES: &[(&str, &str)] = &[
    (
        "notification",
        r#"{"type":"notification","seq":1188,"data":{"id":"n-553","type":"follow","title":"New follower","message":"Ada followed you","data":{"followerId":3},"createdAt":"2026-11-23T10:15:00Z","read":false}}"#,
    ),
    (
        "pitch_stats_update",
        r#"{"type":"pitch_stats_update","data":{"pitchId":42,"viewCount":1533,"uniqueViewers":610,"recentViewers":[{"userId":3,"username":"ada","viewedAt":"2026-11-23T10:16:00Z"},{"userId":4,"username":"grace","viewedAt":"2026-11-23T10:15:00Z"}]}}"#,
    ),
    (
        "ack",
        r#"{"type":"ack","data":{"id":"c-01J9Z3","version":4}}"#,
    ),
    (
        "draft_sync",
        r#"{"type":"draft_sync","data":{"draftId":"pitch_42","draftType":"pitch","content":{"title":"Night Train","logline":"A heist on rails","budget":1200000,"tags":["thriller","rail"]},"version":4,"updatedAt":"2026-11-23T10:17:00Z","sessionId":"s-8f2c"}}"#,
    ),
];

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, text) in FRAMES {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("typed/{name}"), |b| {
            b.iter(|| ServerFrame::decode(black_box(text)))
        });
        group.bench_function(format!("value/{name}"), |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(text)))
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, text) in FRAMES {
        let frame = ServerFrame::decode(text).expect("fixture decodes");
        let value: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("typed/{name}"), |b| {
            b.iter(|| black_box(&frame).encode())
        });
        group.bench_function(format!("value/{name}"), |b| {
            b.iter(|| serde_json::to_string(black_box(&value)))
        });
    }
    let view = ClientFrame::decode(r#"{"type":"pitch_view","id":"c-3","data":{"pitchId":42}}"#)
        .expect("fixture decodes");
    group.bench_function("typed/client_pitch_view", |b| {
        b.iter(|| black_box(&view).encode())
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
