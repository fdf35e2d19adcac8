//! The options objects read from JS by hand ([`FromTree`], the SDK's tree reader): serde's
//! visitors for them were the largest part of the `new Client` and `openDraft` exports.
//! Same names and defaults as the types' `#[serde(...)]` attributes; the tests below read
//! each through both and compare.

use pitchey_realtime::protocol::jsvalue::{
    Error, FromTree, Node, Source, missing, object, read_tree, variant,
};

use crate::types::{BackoffOptions, ClientOptions, ConflictResolution, DraftOpenOptions};

impl FromTree for ClientOptions {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        let mut o = ClientOptions::default();
        let mut url = None;
        for (key, value) in object(node, "struct ClientOptions")? {
            match key.as_str() {
                "url" => url = Some(read_tree(value)?),
                "token" => o.token = read_tree(value)?,
                // A function: the binding reads it from the object itself.
                "tokenProvider" => {}
                "backoff" => o.backoff = read_tree(value)?,
                "queueSize" => o.queue_size = read_tree(value)?,
                "heartbeatMs" => o.heartbeat_ms = read_tree(value)?,
                "persistKey" => o.persist_key = read_tree(value)?,
                _ => {}
            }
        }
        o.url = url.ok_or_else(|| missing("url"))?;
        Ok(o)
    }
}

impl FromTree for BackoffOptions {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        let mut o = BackoffOptions::default();
        for (key, value) in object(node, "struct BackoffOptions")? {
            match key.as_str() {
                "initialMs" => o.initial_ms = read_tree(value)?,
                "maxMs" => o.max_ms = read_tree(value)?,
                "multiplier" => o.multiplier = read_tree(value)?,
                _ => {}
            }
        }
        Ok(o)
    }
}

impl FromTree for DraftOpenOptions {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        let mut o = DraftOpenOptions::default();
        for (key, value) in object(node, "struct DraftOpenOptions")? {
            match key.as_str() {
                "draftType" => o.draft_type = read_tree(value)?,
                "initial" => o.initial = read_tree(value)?,
                "baseVersion" => o.base_version = read_tree(value)?,
                "autoSaveIntervalMs" => o.auto_save_interval_ms = read_tree(value)?,
                "conflictResolution" => o.conflict_resolution = read_tree(value)?,
                // A function: the binding reads it from the object itself.
                "validate" => {}
                _ => {}
            }
        }
        Ok(o)
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
