//! Counters by message type, and the Prometheus text for labelled series.
//!
//! Labels only ever come from a bounded set: inbound types are counted under their wire name
//! only once they parsed as a type the protocol knows (`unknown`, `invalid` and `binary`
//! otherwise); outbound types are our own. A cap guards against a bug turning either into
//! an unbounded series anyway.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde_json::Value;

/// Distinct labels kept per counter family; any further one is counted as `other`.
const MAX_LABELS: usize = 64;

/// Message counts per `type`.
#[derive(Debug, Default)]
pub(crate) struct TypeCounters {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl TypeCounters {
    /// Count one message of type `kind`.
    pub(crate) fn bump(&self, kind: &str) {
        // Plain numbers behind the lock: a panic elsewhere cannot leave them inconsistent.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(kind) {
            *n += 1;
        } else if counts.len() < MAX_LABELS {
            counts.insert(kind.to_owned(), 1);
        } else {
            *counts.entry("other".to_owned()).or_default() += 1;
        }
    }

    /// The counts, by type.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The `type` of a frame we encoded (`{"type":"…",…}`, always first), without parsing it.
pub(crate) fn frame_kind(text: &str) -> &str {
    text.strip_prefix(r#"{"type":""#)
        .and_then(|rest| rest.split_once('"'))
        .map_or("other", |(kind, _)| kind)
}

/// Prometheus text for one labelled family: `# HELP`, `# TYPE`, then one line per label.
pub(crate) fn labelled<K: std::fmt::Display, V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (K, V)>,
) {
    let _ = writeln!(out, "# HELP pitchey_ws_{name} {help}");
    let _ = writeln!(out, "# TYPE pitchey_ws_{name} {kind}");
    for (key, value) in series {
        let key = escape(&key.to_string());
        let _ = writeln!(out, "pitchey_ws_{name}{{{label}=\"{key}\"}} {value}");
    }
}

/// Prometheus text for one unlabelled series.
pub(crate) fn single(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(
        out,
        "# HELP pitchey_ws_{name} {help}\n# TYPE pitchey_ws_{name} {kind}\npitchey_ws_{name} {value}"
    );
}

/// The series of `/metrics` beyond the plain counters, from the body of `/api/ws/stats`:
/// messages by type, per-user aggregates, limits, outboxes, the store, Redis.
pub(crate) fn prometheus_details(out: &mut String, stats: &Value) {
    let pairs = |key: &str| -> Vec<(String, u64)> {
        stats[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    labelled(
        out,
        "messages_in_by_type_total",
        "counter",
        "frames received, by type (invalid, unknown, binary for the rest)",
        "type",
        pairs("messagesInByType"),
    );
    labelled(
        out,
        "messages_out_by_type_total",
        "counter",
        "frames written, by type",
        "type",
        pairs("messagesOutByType"),
    );
    // Aggregates only: a series per user id would grow with every user ever seen.
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    single(
        out,
        "max_user_sessions",
        "gauge",
        "most open sessions of any one user",
        pairs("sessionsPerUser")
            .iter()
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0),
    );
    single(
        out,
        "offline_queue_users",
        "gauge",
        "users with frames waiting in an offline queue",
        pairs("offlineQueueDepths")
            .iter()
            .filter(|(_, n)| *n > 0)
            .count(),
    );
    let limits = pairs("limits");
    labelled(
        out,
        "limit_refusals_total",
        "counter",
        "refusals and evictions by limit (see `limits` in /api/ws/stats)",
        "limit",
        limits,
    );
    single(
        out,
        "outbox_queued",
        "gauge",
        "frames handed to sessions and not yet written",
        num(&stats["outboxQueued"]),
    );
    let store = &stats["store"];
    single(
        out,
        "store_durable",
        "gauge",
        "1 when state is kept on disk (--data-dir), 0 in memory",
        u8::from(store["kind"] == "disk"),
    );
    single(
        out,
        "store_commits_total",
        "counter",
        "store transactions committed (each synced to disk)",
        num(&store["commits"]),
    );
    single(
        out,
        "store_commit_seconds_total",
        "counter",
        "time spent committing",
        num(&store["commitMicros"]) as f64 / 1e6,
    );
    single(
        out,
        "store_commit_failures_total",
        "counter",
        "commits that failed (nothing depending on them was acknowledged)",
        num(&store["commitFailures"]),
    );
    // Redis: `disabled` without --redis-url; enabled and up are separate so that a dashboard
    // can tell "not configured" from "down".
    let redis = stats["redis"].as_str().unwrap_or("disabled");
    single(
        out,
        "redis_enabled",
        "gauge",
        "1 when running with --redis-url",
        u8::from(redis != "disabled"),
    );
    single(
        out,
        "redis_up",
        "gauge",
        "1 when the Redis link is connected",
        u8::from(redis == "up"),
    );
}

/// A label value as the text format wants it.
fn escape(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_of_an_encoded_frame() {
        assert_eq!(frame_kind(r#"{"type":"ack","data":{}}"#), "ack");
        assert_eq!(frame_kind("garbage"), "other");
    }

    #[test]
    fn labels_are_capped() {
        let c = TypeCounters::default();
        for i in 0..100 {
            c.bump(&format!("t{i}"));
        }
        c.bump("t0");
        let s = c.snapshot();
        assert_eq!(s.len(), MAX_LABELS + 1);
        assert_eq!(s["t0"], 2);
        assert_eq!(s["other"], 100 - MAX_LABELS as u64);
    }

    #[test]
    fn labelled_series_are_escaped() {
        let mut out = String::new();
        labelled(&mut out, "x_total", "counter", "h", "type", [("a\"b", 1)]);
        assert!(
            out.contains(r#"pitchey_ws_x_total{type="a\"b"} 1"#),
            "{out}"
        );
    }
}
