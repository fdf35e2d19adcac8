//! Draft versioning: when a `draft_sync` is accepted and when it is a conflict.

use serde_json::Value;

/// A saved draft, per user and draft id.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Draft kind, e.g. `pitch`.
    pub draft_type: Option<String>,
    /// The content (any JSON).
    pub content: Value,
    /// Version, starting at 1 for the first save.
    pub version: u64,
    /// ISO-8601 time of the last save.
    pub updated_at: String,
}

/// What to do with a save.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftDecision {
    /// Store it as `version`.
    Accept {
        /// The new version.
        version: u64,
    },
    /// The client edited a stale version: answer with the server's draft.
    Conflict {
        /// The server's current version (0: no draft yet).
        server_version: u64,
        /// The server's current content (`null`: no draft yet).
        server_content: Value,
    },
}

/// Decide a save made on top of `base_version` against the `current` draft.
///
/// With `versioned` off (seed-compatible mode) and for saves without a `baseVersion` (seed
/// clients) the last write wins. Otherwise the base must be the current version, 0 meaning
/// "no draft yet".
pub fn decide(
    current: Option<&Draft>,
    base_version: Option<u64>,
    versioned: bool,
) -> DraftDecision {
    let current_version = current.map_or(0, |d| d.version);
    match base_version {
        Some(base) if versioned && base != current_version => DraftDecision::Conflict {
            server_version: current_version,
            server_content: current.map_or(Value::Null, |d| d.content.clone()),
        },
        _ => DraftDecision::Accept {
            version: current_version + 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(version: u64) -> Draft {
        Draft {
            draft_type: None,
            content: json!({"v": version}),
            version,
            updated_at: String::new(),
        }
    }

    #[test]
    fn first_save_on_base_zero_or_none() {
        assert_eq!(
            decide(None, Some(0), true),
            DraftDecision::Accept { version: 1 }
        );
        assert_eq!(
            decide(None, None, true),
            DraftDecision::Accept { version: 1 }
        );
    }

    #[test]
    fn stale_base_conflicts() {
        let d = draft(4);
        assert_eq!(
            decide(Some(&d), Some(4), true),
            DraftDecision::Accept { version: 5 }
        );
        assert_eq!(
            decide(Some(&d), Some(3), true),
            DraftDecision::Conflict {
                server_version: 4,
                server_content: json!({"v": 4})
            }
        );
        assert_eq!(
            decide(None, Some(2), true),
            DraftDecision::Conflict {
                server_version: 0,
                server_content: Value::Null
            }
        );
    }

    #[test]
    fn unversioned_last_write_wins() {
        let d = draft(4);
        assert_eq!(
            decide(Some(&d), Some(1), false),
            DraftDecision::Accept { version: 5 }
        );
        assert_eq!(
            decide(Some(&d), None, true),
            DraftDecision::Accept { version: 5 }
        );
    }
}
