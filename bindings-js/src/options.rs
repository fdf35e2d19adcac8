//! The options objects read from JS by hand ([`FromTree`], the SDK's tree reader): serde's
//! visitors for them were the largest part of the `new Client` and `openDraft` exports.
//! Same names and defaults as the types' `#[serde(...)]` attributes; the tests below read
//! each through both and compare.

use pitchey_realtime::protocol::jsvalue::{
    Error, FromTree, Node, Source, fields, or_default, required, variant,
};

use crate::types::{BackoffOptions, ClientOptions, ConflictResolution, DraftOpenOptions};

impl FromTree for ClientOptions {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        // `tokenProvider` is a function: the binding reads it from the object itself.
        const NAMES: &[&str] = &[
            "url",
            "token",
            "backoff",
            "queueSize",
            "heartbeatMs",
            "persistKey",
        ];
        let mut slots: [Option<S>; NAMES.len()] = [const { None }; NAMES.len()];
        fields(node, "struct ClientOptions", NAMES, &mut slots)?;
        let [url, token, backoff, queue_size, heartbeat_ms, persist_key] = slots;
        Ok(ClientOptions {
            url: required(url, "url")?,
            token: or_default(token)?,
            token_provider: None,
            backoff: or_default(backoff)?,
            queue_size: or_default(queue_size)?,
            heartbeat_ms: or_default(heartbeat_ms)?,
            persist_key: or_default(persist_key)?,
        })
    }
}

impl FromTree for BackoffOptions {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        const NAMES: &[&str] = &["initialMs", "maxMs", "multiplier"];
        let mut slots: [Option<S>; NAMES.len()] = [const { None }; NAMES.len()];
        fields(node, "struct BackoffOptions", NAMES, &mut slots)?;
        let [initial_ms, max_ms, multiplier] = slots;
        Ok(BackoffOptions {
            initial_ms: or_default(initial_ms)?,
            max_ms: or_default(max_ms)?,
            multiplier: or_default(multiplier)?,
        })
    }
}

impl FromTree for DraftOpenOptions {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        // `validate` is a function: the binding reads it from the object itself.
        const NAMES: &[&str] = &[
            "draftType",
            "initial",
            "baseVersion",
            "autoSaveIntervalMs",
            "conflictResolution",
        ];
        let mut slots: [Option<S>; NAMES.len()] = [const { None }; NAMES.len()];
        fields(node, "struct DraftOpenOptions", NAMES, &mut slots)?;
        let [draft_type, initial, base_version, auto_save, conflict] = slots;
        Ok(DraftOpenOptions {
            draft_type: or_default(draft_type)?,
            initial: or_default(initial)?,
            base_version: or_default(base_version)?,
            auto_save_interval_ms: or_default(auto_save)?,
            conflict_resolution: or_default(conflict)?,
            validate: None,
        })
    }
}

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
