//! The values handed to JS (`on` payloads, `metrics()`, `draft.state()`, errors) written
//! by hand ([`ToTree`], the SDK's tree writer) instead of through serde's `Serialize`
//! derives. Same names and optional fields as the types' `#[serde(...)]` attributes (which
//! also generate the `.d.ts`); the tests below compare each with `serde_json::to_value`.

use pitchey_realtime::core::DraftConflictInfo;
use pitchey_realtime::protocol::jsvalue::{ObjWriter, Sink, ToTree};

use crate::convert::{Payload, status_str};
use crate::types::{
    ConnectionStatus, DraftEvent, ErrorInfo, LaggedInfo, Metrics, RealtimeErrorName, SendFailed,
    StateInfo, SubscriptionInfo,
};

impl ToTree for Payload<'_> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        // `#[serde(untagged)]`: each variant as its content.
        match self {
            Payload::State(s) => s.to_tree::<K>(),
            Payload::Data(d) => d.to_tree::<K>(),
            Payload::Metrics(m) => m.to_tree::<K>(),
            Payload::Frame(f) => f.to_tree::<K>(),
            Payload::Error(e) => e.to_tree::<K>(),
            Payload::SendFailed(s) => s.to_tree::<K>(),
            Payload::Id(id) => K::string(id),
            Payload::Subscription(s) => s.to_tree::<K>(),
            Payload::Lagged(l) => l.to_tree::<K>(),
            Payload::Null => K::null(),
        }
    }
}

impl ToTree for ConnectionStatus {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(status_str(*self))
    }
}

impl ToTree for RealtimeErrorName {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(self.as_str())
    }
}

impl ToTree for StateInfo {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("status", &self.status)
            .opt("attempt", &self.attempt)
            .opt("delayMs", &self.delay_ms)
            .opt("reason", &self.reason);
        o.end()
    }
}

impl ToTree for Metrics {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("queueDepth", &self.queue_depth)
            .field("inFlight", &self.in_flight)
            .field("tokensLeft", &self.tokens_left)
            .opt("rttMs", &self.rtt_ms)
            .opt("srttMs", &self.srtt_ms)
            .field("reconnects", &self.reconnects)
            .field("connectAttempts", &self.connect_attempts)
            .opt("lastDisconnect", &self.last_disconnect)
            .field("framesSent", &self.frames_sent)
            .field("framesReceived", &self.frames_received)
            .field("duplicatesDropped", &self.duplicates_dropped)
            .field("invalidFrames", &self.invalid_frames);
        o.end()
    }
}

/// `draft.state()`: the shape of [`DraftState`](crate::types::DraftState), written straight
/// from the core's state while the SDK lends it (`Draft::read_state`): no copy of the
/// contents, and no mirror struct built only to be written.
// Used by `js.rs` (wasm32 only) and the tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) struct DraftStateView<'a> {
    /// The core's state of the draft.
    pub(crate) state: &'a pitchey_realtime::core::DraftState,
    /// `state.last_saved` as ms since the Unix epoch.
    pub(crate) last_saved: Option<f64>,
}

/// A conflict, as [`DraftConflict`](crate::types::DraftConflict).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ConflictView<'a>(&'a DraftConflictInfo);

impl ToTree for ConflictView<'_> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("base", &self.0.base)
            .field("local", &self.0.local)
            .field("remote", &self.0.remote)
            .opt("remoteVersion", &self.0.remote_version);
        o.end()
    }
}

impl ToTree for DraftStateView<'_> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let s = self.state;
        let mut o = ObjWriter::<K>::default();
        o.field("draftId", &s.draft_id)
            .opt("draftType", &s.draft_type)
            .field("content", &s.content)
            .opt("baseVersion", &s.base_version)
            .field("isDirty", &s.dirty)
            .field("isValid", &s.valid)
            .field("isSaving", &s.saving)
            .opt("conflict", &s.conflict.as_ref().map(ConflictView))
            .opt("lastSaved", &self.last_saved);
        o.end()
    }
}

impl ToTree for DraftEvent {
    fn to_tree<K: Sink>(&self) -> K::Node {
        // `#[serde(tag = "type")]`: the variant's name first, then its fields.
        let mut o = ObjWriter::<K>::default();
        match self {
            DraftEvent::Saved { version } => {
                o.field("type", "saved").opt("version", version);
            }
            DraftEvent::Updated { content, version } => {
                o.field("type", "updated")
                    .field("content", content)
                    .opt("version", version);
            }
            DraftEvent::Conflict {
                base,
                local,
                remote,
                remote_version,
            } => {
                o.field("type", "conflict")
                    .field("base", base)
                    .field("local", local)
                    .field("remote", remote)
                    .opt("remoteVersion", remote_version);
            }
            DraftEvent::SaveFailed { name, message } => {
                o.field("type", "save_failed")
                    .field("name", name)
                    .field("message", message);
            }
        }
        o.end()
    }
}

impl ToTree for ErrorInfo {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("name", &self.name)
            .field("code", &self.code)
            .field("message", &self.message)
            .opt("id", &self.id)
            .opt("serverCode", &self.server_code)
            .opt("channel", &self.channel);
        o.end()
    }
}

impl ToTree for SendFailed {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("id", &self.id).field("error", &self.error);
        o.end()
    }
}

impl ToTree for SubscriptionInfo {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("channel", &self.channel)
            .opt("code", &self.code)
            .opt("message", &self.message);
        o.end()
    }
}

impl ToTree for LaggedInfo {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("missed", &self.missed);
        o.end()
    }
}

#[cfg(test)]
mod tests {
    use pitchey_realtime::protocol::jsvalue::{JsonSink, write_tree};
    use pitchey_realtime::protocol::{Data, Frame, ServerMessage};
    use serde::Serialize;
    use serde_json::{Value, json};

    use super::*;
    use crate::types::{DraftConflict, DraftState};

    /// Every number as a float (JS has one number type).
    fn floats(v: Value) -> Value {
        match v {
            Value::Number(n) => JsonSink::number(n.as_f64().unwrap_or(f64::NAN)),
            Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
            Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, floats(v))).collect()),
            other => other,
        }
    }

    fn same<T: ToTree + Serialize>(value: &T) {
        let by_serde = floats(serde_json::to_value(value).expect("serializes"));
        let by_hand = write_tree::<JsonSink, _>(value);
        assert_eq!(by_serde, by_hand);
    }

    fn error(id: Option<&str>) -> ErrorInfo {
        ErrorInfo {
            name: RealtimeErrorName::QueueFull,
            code: RealtimeErrorName::QueueFull,
            message: "full".into(),
            id: id.map(Into::into),
            server_code: id.map(|_| "rate_limited".into()),
            channel: None,
        }
    }

    #[test]
    fn writers_write_what_serde_writes() {
        for status in [
            ConnectionStatus::Idle,
            ConnectionStatus::Connecting,
            ConnectionStatus::Connected,
            ConnectionStatus::Reconnecting,
            ConnectionStatus::AwaitingToken,
            ConnectionStatus::AuthFailed,
            ConnectionStatus::Closed,
        ] {
            same(&StateInfo {
                status,
                attempt: Some(2),
                delay_ms: Some(12.5),
                reason: None,
            });
        }
        same(&error(None));
        same(&error(Some("c-1")));
        same(&SendFailed {
            id: "c-2".into(),
            error: error(Some("c-2")),
        });
        same(&SubscriptionInfo {
            channel: "pitch:1".into(),
            code: Some("forbidden".into()),
            message: None,
        });
        same(&LaggedInfo { missed: 3.0 });
        same(&Metrics {
            rtt_ms: Some(4.5),
            last_disconnect: Some("x".into()),
            queue_depth: 2.0,
            ..Metrics::default()
        });
        same(&Metrics::default());
        // `draft.state()` writes the core's state as the `DraftState` type says.
        let core_state =
            |conflict, draft_type: Option<&str>, base_version| pitchey_realtime::core::DraftState {
                draft_id: "d".into(),
                draft_type: draft_type.map(Into::into),
                content: json!({"t": "x", "n": null}),
                base_version,
                base_content: json!("not shown"),
                dirty: true,
                valid: false,
                saving: true,
                conflict,
                last_saved: None,
                options: Default::default(),
            };
        let info = DraftConflictInfo {
            base: json!({"a": 1}),
            local: json!([1, 2.5]),
            remote: Value::Null,
            remote_version: Some(4),
        };
        let unversioned = DraftConflictInfo {
            remote_version: None,
            ..info.clone()
        };
        for (conflict, draft_type, last_saved, base_version) in [
            (Some(info), None, Some(1.5e12), Some(3)),
            (Some(unversioned), None, None, None),
            (None, Some("pitch"), None, Some(3)),
        ] {
            let state = core_state(conflict, draft_type, base_version);
            let mirror = DraftState {
                draft_id: state.draft_id.clone(),
                draft_type: state.draft_type.clone(),
                content: state.content.clone(),
                base_version: state.base_version,
                is_dirty: state.dirty,
                is_valid: state.valid,
                is_saving: state.saving,
                conflict: state.conflict.as_ref().map(|k| DraftConflict {
                    base: k.base.clone(),
                    local: k.local.clone(),
                    remote: k.remote.clone(),
                    remote_version: k.remote_version,
                }),
                last_saved,
            };
            let by_serde = floats(serde_json::to_value(&mirror).expect("serializes"));
            let view = DraftStateView {
                state: &state,
                last_saved,
            };
            assert_eq!(write_tree::<JsonSink, _>(&view), by_serde);
        }
        for event in [
            DraftEvent::Saved { version: Some(2) },
            DraftEvent::Saved { version: None },
            DraftEvent::Updated {
                content: json!("c"),
                version: Some(1),
            },
            DraftEvent::Conflict {
                base: json!(1),
                local: json!(2),
                remote: json!(3),
                remote_version: None,
            },
            DraftEvent::SaveFailed {
                name: "Expired".into(),
                message: "m".into(),
            },
        ] {
            same(&event);
        }
        let frame = Frame::<ServerMessage>::decode(
            r#"{"type":"pitch_stats_update","data":{"pitchId":4,"viewCount":9},"seq":3}"#,
        )
        .expect("frame");
        for payload in [
            Payload::Frame(&frame),
            Payload::Data(Data(&frame.message)),
            Payload::Id("c-3"),
            Payload::Null,
            Payload::Error(error(None)),
        ] {
            same(&payload);
        }
    }
}
