//! Three-way merge of JSON documents, used by the `merge` draft strategy.
//!
//! Objects merge field by field, recursively: a field changed on one side only takes that
//! side's value (a removal is a change); a field changed on both sides to the same value
//! takes it; a field changed on both sides differently is a conflict. Anything that is
//! not an object on both sides (arrays, strings, numbers) is one value: changed on one
//! side wins, changed on both differently conflicts. Arrays are not merged element-wise:
//! for a pitch form (title, logline, a list of genres) that would invent content.

use serde_json::{Map, Value};

/// The fields both sides changed differently, as JSON-pointer-like paths (`/a/b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConflict {
    /// Conflicting paths; `""` is the whole document.
    pub paths: Vec<String>,
}

/// Merge `local` and `remote`, both edited from `base`.
pub fn three_way(base: &Value, local: &Value, remote: &Value) -> Result<Value, MergeConflict> {
    let mut paths = Vec::new();
    let merged = merge_value(Some(base), Some(local), Some(remote), "", &mut paths);
    if paths.is_empty() {
        Ok(merged.unwrap_or(Value::Null))
    } else {
        Err(MergeConflict { paths })
    }
}

fn merge_value(
    base: Option<&Value>,
    local: Option<&Value>,
    remote: Option<&Value>,
    path: &str,
    conflicts: &mut Vec<String>,
) -> Option<Value> {
    if local == remote {
        return local.cloned();
    }
    if local == base {
        return remote.cloned();
    }
    if remote == base {
        return local.cloned();
    }
    match (local, remote) {
        (Some(Value::Object(l)), Some(Value::Object(r))) => {
            let empty = Map::new();
            let b = match base {
                Some(Value::Object(b)) => b,
                _ => &empty,
            };
            Some(Value::Object(merge_objects(b, l, r, path, conflicts)))
        }
        _ => {
            conflicts.push(path.to_owned());
            local.cloned()
        }
    }
}

fn merge_objects(
    base: &Map<String, Value>,
    local: &Map<String, Value>,
    remote: &Map<String, Value>,
    path: &str,
    conflicts: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    // Local key order first, then keys only the remote has: stable output for the UI.
    let keys = local
        .keys()
        .chain(remote.keys().filter(|k| !local.contains_key(*k)))
        .chain(
            base.keys()
                .filter(|k| !local.contains_key(*k) && !remote.contains_key(*k)),
        );
    for key in keys {
        let sub = [path, "/", key].concat();
        if let Some(v) = merge_value(
            base.get(key),
            local.get(key),
            remote.get(key),
            &sub,
            conflicts,
        ) {
            out.insert(key.clone(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_sided_changes_win() {
        let base = json!({"title": "A", "logline": "x", "genre": "drama"});
        let local = json!({"title": "A2", "logline": "x", "genre": "drama"});
        let remote = json!({"title": "A", "logline": "y", "genre": "drama", "budget": 5});
        assert_eq!(
            three_way(&base, &local, &remote),
            Ok(json!({"title": "A2", "logline": "y", "genre": "drama", "budget": 5}))
        );
    }

    #[test]
    fn removal_is_a_change() {
        let base = json!({"a": 1, "b": 2});
        let local = json!({"a": 1});
        let remote = json!({"a": 3, "b": 2});
        assert_eq!(three_way(&base, &local, &remote), Ok(json!({"a": 3})));
    }

    #[test]
    fn both_sides_same_change_is_fine() {
        let base = json!({"a": 1});
        assert_eq!(
            three_way(&base, &json!({"a": 2}), &json!({"a": 2})),
            Ok(json!({"a": 2}))
        );
    }

    #[test]
    fn both_sides_different_is_a_conflict_with_paths() {
        let base = json!({"a": {"x": 1, "y": 1}, "b": 1});
        let local = json!({"a": {"x": 2, "y": 1}, "b": 2});
        let remote = json!({"a": {"x": 3, "y": 5}, "b": 1});
        assert_eq!(
            three_way(&base, &local, &remote),
            Err(MergeConflict {
                paths: vec!["/a/x".into()]
            })
        );
    }

    #[test]
    fn non_objects_are_atomic() {
        let base = json!(["a"]);
        assert!(three_way(&base, &json!(["a", "b"]), &json!(["a", "c"])).is_err());
        assert_eq!(
            three_way(&base, &json!(["a", "b"]), &json!(["a"])),
            Ok(json!(["a", "b"]))
        );
        // A null base (new draft) with two different objects merges by field.
        assert_eq!(
            three_way(&Value::Null, &json!({"a": 1}), &json!({"b": 2})),
            Ok(json!({"a": 1, "b": 2}))
        );
    }
}
