//! Drafts: local content, the server version it is based on, auto-save and conflicts.

use serde_json::Value;

use super::{DraftOptions, Instant};

/// A conflict waiting for [`Connection::draft_resolve`](super::Connection::draft_resolve).
#[derive(Debug, Clone, PartialEq)]
pub struct DraftConflictInfo {
    /// The content both sides started from.
    pub base: Value,
    /// The local content when the conflict was found.
    pub local: Value,
    /// The server's content.
    pub remote: Value,
    /// The server's version.
    pub remote_version: Option<u64>,
}

/// What the core knows about one open draft (the seed's `useDraftSync` state).
#[derive(Debug, Clone, PartialEq)]
pub struct DraftState {
    /// Draft id, e.g. `pitch_42`.
    pub draft_id: String,
    /// Draft kind, e.g. `pitch`.
    pub draft_type: Option<String>,
    /// The current local content.
    pub content: Value,
    /// The last server version this content is based on (`None`: never saved, or a
    /// server that does not version drafts).
    pub base_version: Option<u64>,
    /// The content at `base_version` (the base of a three-way merge).
    pub base_content: Value,
    /// Local edits not yet saved.
    pub dirty: bool,
    /// What the app's validator said about `content`.
    pub valid: bool,
    /// A save is in the outbox or in flight.
    pub saving: bool,
    /// A conflict waiting for the app.
    pub conflict: Option<DraftConflictInfo>,
    /// When the last save was acked.
    pub last_saved: Option<Instant>,
    /// The draft's options.
    pub options: DraftOptions,
}
