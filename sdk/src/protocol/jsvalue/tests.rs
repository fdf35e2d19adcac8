//! The tree reader and writer against `serde_json` on the protocol's test vectors (the
//! fuzz seeds of `client_decode` / `server_decode`, which cover every message type): the
//! browser's path must decode and encode every frame as the native path does.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::{JsonSink, Sink, write_tree};
use crate::core::Snapshot;
use crate::protocol::{
    ClientFrame, ClientMessage, Frame, Message, ProtocolError, ServerFrame, ServerMessage,
};

/// Every number as a float, so that `1` and `1.0` compare equal (JS cannot tell them apart).
fn numbers_as_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => JsonSink::number(n.as_f64().unwrap_or(f64::NAN)),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

/// True when every number reads the same as a JS number: integers up to 2^53, and floats
/// that are not whole (a whole float like `2.0` is an integer in JS).
fn js_exact(v: &Value) -> bool {
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u <= 1 << 53,
            (_, Some(i), _) => i.unsigned_abs() <= 1 << 53,
            (_, _, Some(f)) => f.fract() != 0.0,
            _ => false,
        },
        Value::Array(items) => items.iter().all(js_exact),
        Value::Object(map) => map.values().all(js_exact),
        _ => true,
    }
}

fn seeds(target: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| std::fs::read(entry.expect("dir entry").path()).ok())
        .filter_map(|bytes| String::from_utf8(bytes).ok())
        .collect();
    seeds.sort();
    assert!(seeds.len() > 10, "too few seeds in {}", dir.display());
    seeds
}

/// Which way a decode went: the error's kind (not its words, which differ by design).
fn outcome<M: Message + std::fmt::Debug>(r: &Result<Frame<M>, ProtocolError>) -> String {
    match r {
        Ok(_) => String::from("ok"),
        Err(ProtocolError::Malformed(_)) => String::from("malformed"),
        Err(ProtocolError::InvalidData { kind, .. }) => format!("invalid data of {kind}"),
    }
}

/// One frame of every type each way (PROTOCOL.md), on top of the seeds.
const SERVER: &[&str] = &[
    r#"{"type":"connected","data":{"sessionId":"s-1","userId":"7","protocol":"pitchey-v1","heartbeatMs":30000,"rateLimit":{"maxMessages":120,"windowMs":60000,"refillRate":2.5},"features":["ack","seq"],"resumed":true,"lastSeq":9}}"#,
    r#"{"type":"ping","data":{"ts":1763900000000}}"#,
    r#"{"type":"pong"}"#,
    r#"{"type":"ack","data":{"id":"c-1","version":3}}"#,
    r#"{"type":"error","data":{"code":"rate_limited","message":"slow down","retryAfterMs":500,"id":"c-2"}}"#,
    r#"{"type":"notification","data":{"id":"n-1","type":"follow","title":"Hi","message":"m","data":{"x":[1,2.5,null,true]},"createdAt":"2025-01-01T00:00:00Z","read":false},"seq":4}"#,
    r#"{"type":"dashboard_update","data":{"metrics":{"totalViews":5,"followers":2,"pitches":1,"investorInterest":0,"extra":7.5}}}"#,
    r#"{"type":"pitch_stats_update","data":{"pitchId":42,"viewCount":10,"uniqueViewers":3,"recentViewers":[{"userId":1,"username":"a","viewedAt":"t"}]}}"#,
    r#"{"type":"presence_update","data":{"userId":7,"status":"away","lastSeen":"t"}}"#,
    r#"{"type":"user_typing","data":{"conversationId":3,"userId":7,"username":"u","isTyping":true}}"#,
    r#"{"type":"typing","data":{"conversationId":3,"userId":7,"isTyping":false}}"#,
    r#"{"type":"draft_sync","data":{"draftId":"pitch_1","draftType":"pitch","content":{"t":"x"},"version":2,"updatedAt":"t","sessionId":"s"},"seq":5}"#,
    r#"{"type":"draft_conflict","data":{"draftId":"pitch_1","baseVersion":1,"serverVersion":2,"serverContent":"c"}}"#,
    r#"{"type":"upload_progress","data":{"uploadId":"u1","fileName":"a.mp4","progress":12.5,"bytesUploaded":10,"totalBytes":80,"status":"uploading"}}"#,
    r#"{"type":"disconnected","data":{"reason":"bye"}}"#,
    r#"{"type":"shiny_new","data":[1,"two",{"three":3.5}]}"#,
    r#"{"type":"upload_progress","data":{"uploadId":"u1","fileName":"a","progress":1,"status":"paused"}}"#,
    r#"{"type":"presence_update","data":{"userId":-1,"status":"online"}}"#,
    r#"{"type":"ack","data":{"id":"c-1","version":null},"id":null,"seq":null}"#,
    r#"{"type":"ping","data":null}"#,
];

/// See [`SERVER`].
const CLIENT: &[&str] = &[
    r#"{"type":"ping","data":{"ts":1}}"#,
    r#"{"type":"pong","data":{}}"#,
    r#"{"type":"pitch_view","data":{"pitchId":42},"id":"c-1"}"#,
    r#"{"type":"presence_update","data":{"status":"offline"}}"#,
    r#"{"type":"typing","data":{"conversationId":3,"isTyping":true}}"#,
    r#"{"type":"user_typing","data":{"conversationId":3,"isTyping":false}}"#,
    r#"{"type":"draft_sync","data":{"draftId":"d","draftType":"pitch","content":[1,{"a":null}],"baseVersion":4},"id":"c-2"}"#,
    r#"{"type":"subscribe","data":{"channel":"pitch:42"}}"#,
    r#"{"type":"unsubscribe","data":{"channel":"presence:7"}}"#,
    r#"{"type":"resume","data":{"lastSeq":41}}"#,
    r#"{"type":"subscribe","data":{"channel":"nowhere:1"}}"#,
    r#"{"type":"pitch_view","data":{"pitchId":"42"}}"#,
];

/// Decode every seed and vector both ways, compare, and encode what decoded both ways;
/// returns the types that decoded.
fn check<M>(target: &str, vectors: &[&str]) -> BTreeSet<String>
where
    M: Message + std::fmt::Debug + PartialEq + Clone,
    Frame<M>: serde::Serialize,
{
    let mut kinds = BTreeSet::new();
    let texts = seeds(target)
        .into_iter()
        .chain(vectors.iter().map(|s| s.to_string()));
    for text in texts {
        let Ok(tree) = serde_json::from_str::<Value>(&text) else {
            continue; // not JSON: JSON.parse refuses it before the reader runs
        };
        if !js_exact(&tree) {
            continue;
        }
        let native = Frame::<M>::decode(&text);
        let browser = Frame::<M>::decode_tree(tree);
        assert_eq!(
            outcome(&native),
            outcome(&browser),
            "{text}\n{native:?}\n{browser:?}"
        );
        let (Ok(native), Ok(browser)) = (native, browser) else {
            continue;
        };
        kinds.insert(native.message.kind().to_owned());
        // Same frame (numbers compared as JS sees them).
        let as_json = |f: &Frame<M>| numbers_as_floats(serde_json::to_value(f).expect("encodes"));
        assert_eq!(as_json(&native), as_json(&browser), "{text}");
        // The writer gives what serde_json gives.
        let written = write_tree::<JsonSink, _>(&native);
        assert_eq!(written, as_json(&native), "{text}");
    }
    kinds
}

/// Every known type of `M` (from its own table), so that a type added to the protocol
/// without a vector fails here.
fn every_kind<M: Message>(frames: &[&str]) -> BTreeSet<String> {
    frames
        .iter()
        .filter_map(|t| Frame::<M>::decode(t).ok())
        .map(|f| f.message.kind().to_owned())
        .collect()
}

#[test]
fn server_frames_decode_and_encode_as_serde_json_does() {
    let kinds = check::<ServerMessage>("server_decode", SERVER);
    let expected = every_kind::<ServerMessage>(SERVER);
    assert!(expected.len() >= 15, "{expected:?}");
    assert!(kinds.is_superset(&expected), "{kinds:?}");
}

#[test]
fn client_frames_decode_and_encode_as_serde_json_does() {
    let kinds = check::<ClientMessage>("client_decode", CLIENT);
    let expected = every_kind::<ClientMessage>(CLIENT);
    assert!(expected.len() >= 9, "{expected:?}");
    assert!(kinds.is_superset(&expected), "{kinds:?}");
}

#[test]
fn errors_name_the_field_but_not_the_value() {
    let tree: Value = serde_json::json!({"type": "ack", "data": {"version": 3}});
    let err = ServerFrame::decode_tree(tree).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::InvalidData {
            kind: "ack".into(),
            message: "missing field `id`".into()
        }
    );
    let tree: Value = serde_json::json!({"type": "pitch_view", "data": {"pitchId": 2.5}});
    let err = ClientFrame::decode_tree(tree).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::InvalidData {
            kind: "pitch_view".into(),
            message: "invalid type: floating point, expected u64".into()
        }
    );
    let err = ServerFrame::decode_tree(serde_json::json!([1])).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
    let err = ServerFrame::decode_tree(serde_json::json!({"data": {}})).unwrap_err();
    assert_eq!(err, ProtocolError::Malformed("missing field `type`".into()));
}

/// A tree that keeps the order of its objects' properties, as JS objects do
/// (`serde_json::Value` here sorts its keys): for which property is read first.
enum Ordered {
    Str(&'static str),
    Num(f64),
    Obj(Vec<(&'static str, Ordered)>),
}

impl super::Source for Ordered {
    fn node(self) -> super::Node<Self> {
        match self {
            Ordered::Str(s) => super::Node::Str(s.to_owned()),
            Ordered::Num(n) => super::Node::Number(n),
            Ordered::Obj(props) => {
                super::Node::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }
        }
    }
}

#[test]
fn of_two_bad_fields_the_first_in_the_object_is_the_error_as_serde_reads_the_text() {
    use crate::protocol::types::UploadProgress;
    // `progress` comes first in the object, `fileName` first in the struct and in key order.
    let text = r#"{"uploadId":"u","progress":"x","fileName":7,"status":"failed"}"#;
    let tree = Ordered::Obj(vec![
        ("uploadId", Ordered::Str("u")),
        ("progress", Ordered::Str("x")),
        ("fileName", Ordered::Num(7.0)),
        ("status", Ordered::Str("failed")),
    ]);
    let by_hand = super::read::read_tree::<UploadProgress, _>(tree).unwrap_err();
    assert_eq!(by_hand.message(), "invalid type: string, expected f64");
    let by_serde = serde_json::from_str::<UploadProgress>(text)
        .unwrap_err()
        .to_string();
    assert!(by_serde.contains("expected f64"), "{by_serde}");
    // A required field that is absent is reported after the bad values, as serde does.
    let tree = Ordered::Obj(vec![("status", Ordered::Num(5.0))]);
    let by_hand = super::read::read_tree::<UploadProgress, _>(tree).unwrap_err();
    assert_eq!(
        by_hand.message(),
        "invalid type: integer, expected a variant name"
    );
    let tree = Ordered::Obj(vec![("status", Ordered::Str("failed"))]);
    let by_hand = super::read::read_tree::<UploadProgress, _>(tree).unwrap_err();
    assert_eq!(by_hand.message(), "missing field `uploadId`");
}

#[test]
fn a_snapshot_round_trips() {
    let text = r#"{"format":1,"lastSeq":41,"messages":[{"id":"c-1","frame":"{\"type\":\"pitch_view\",\"data\":{\"pitchId\":42},\"id\":\"c-1\"}"}]}"#;
    let native: Snapshot = serde_json::from_str(text).expect("snapshot");
    let tree: Value = serde_json::from_str(text).expect("json");
    let browser: Snapshot = super::read::read_tree(tree).expect("reads");
    assert_eq!(native, browser);
    let written = write_tree::<JsonSink, _>(&browser);
    assert_eq!(
        written,
        numbers_as_floats(serde_json::to_value(&native).expect("encodes"))
    );
}
