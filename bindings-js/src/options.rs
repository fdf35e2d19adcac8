//! The options objects read from JS by hand ([`FromTree`], the SDK's tree reader): serde's
//! visitors for them were the largest part of the `new Client` and `openDraft` exports.
//! Same names and defaults as the types' `#[serde(...)]` attributes; the tests below read
//! each through both and compare.

use pitchey_realtime::from_tree_struct;
use pitchey_realtime::protocol::jsvalue::{Error, FromTree, Node, Source, variant};

use crate::types::{BackoffOptions, ClientOptions, ConflictResolution, DraftOpenOptions};

// `tokenProvider` and `validate` are functions: the bindings read them from the object.
from_tree_struct!(ClientOptions "struct ClientOptions" {
    url: "url" required,
    token: "token" default,
    token_provider: "tokenProvider" skip,
    backoff: "backoff" default,
    queue_size: "queueSize" default,
    heartbeat_ms: "heartbeatMs" default,
    persist_key: "persistKey" default,
});

from_tree_struct!(BackoffOptions "struct BackoffOptions" {
    initial_ms: "initialMs" default,
    max_ms: "maxMs" default,
    multiplier: "multiplier" default,
});

from_tree_struct!(DraftOpenOptions "struct DraftOpenOptions" {
    draft_type: "draftType" default,
    initial: "initial" default,
    base_version: "baseVersion" default,
    auto_save_interval_ms: "autoSaveIntervalMs" default,
    conflict_resolution: "conflictResolution" default,
    validate: "validate" skip,
});

impl FromTree for ConflictResolution {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        const ALL: [ConflictResolution; 4] = [
            ConflictResolution::Local,
            ConflictResolution::Remote,
            ConflictResolution::Merge,
            ConflictResolution::Ask,
        ];
        Ok(ALL[variant(node, &["local", "remote", "merge", "ask"])?])
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;
    use pitchey_realtime::protocol::jsvalue::read_tree;

    /// Both readers agree: the same value, or both refuse.
    fn same<T: FromTree + DeserializeOwned + PartialEq + std::fmt::Debug>(v: Value) {
        let by_serde = serde_json::from_value::<T>(v.clone()).ok();
        let by_hand = read_tree::<T, _>(v.clone()).ok();
        assert_eq!(by_serde, by_hand, "{v}");
    }

    #[test]
    fn options_read_as_serde_reads_them() {
        for v in [
            json!({"url": "ws://h/ws"}),
            json!({"url": "ws://h/ws", "token": "t", "tokenProvider": null, "queueSize": 5,
                   "heartbeatMs": 1000.5, "persistKey": "k", "extra": [1],
                   "backoff": {"initialMs": 10, "maxMs": 20, "multiplier": 1.5}}),
            json!({"url": "ws://h/ws", "token": null, "backoff": null}),
            json!({"token": "t"}),
            json!({"url": 5}),
            json!({"url": "u", "backoff": {"initialMs": "x"}}),
            json!("ws://h/ws"),
        ] {
            same::<ClientOptions>(v);
        }
        for v in [
            json!({}),
            json!({"draftType": "pitch", "initial": {"a": [1, 2.5]}, "baseVersion": 3,
                   "autoSaveIntervalMs": 500, "conflictResolution": "merge"}),
            json!({"conflictResolution": "local"}),
            json!({"conflictResolution": "remote", "validate": {}}),
            json!({"conflictResolution": "ask", "initial": null}),
            json!({"conflictResolution": "theirs"}),
            json!({"baseVersion": "3"}),
        ] {
            same::<DraftOpenOptions>(v);
        }
        // Not vacuous: the full object reads.
        let o = read_tree::<ClientOptions, _>(json!({"url": "u", "queueSize": 5})).unwrap();
        assert_eq!((o.url.as_str(), o.queue_size), ("u", Some(5.0)));
    }
}
