//! Drafts: local content, the server version it is based on, auto-save and conflicts.

use serde_json::Value;
use tracing::{debug, warn};

use super::merge::three_way;
use super::sorted_map::SortedMap;
use super::{
    ConflictStrategy, Connection, DraftOptions, Event, FrameText, Instant, MessageId, Resolution,
    SendError, SendFailure,
};
use crate::protocol::{ClientFrame, ClientMessage, DraftConflict, DraftSave, DraftSynced};

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

/// The core's bookkeeping for one draft.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) state: DraftState,
    /// The outbox id of the save in progress.
    saving_id: Option<MessageId>,
    /// The content of that save (the new base once acked).
    saving_content: Option<Value>,
    next_save_at: Option<Instant>,
    /// A newer server version seen while our save was in flight: looked at again once the
    /// save is settled (its ack may show it was applied first, making this one newer).
    pending_remote: Option<DraftSynced>,
    /// How many app handles have it open: the last `close` stops tracking it.
    holders: usize,
}

/// Every open draft.
#[derive(Debug, Default)]
pub(crate) struct Drafts {
    map: SortedMap<String, Draft>,
}

/// The shortest wait before retrying an auto-save the outbox refused.
const MIN_SAVE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Drafts {
    /// The draft whose save in progress is `id`, with that save cleared; `None` if the
    /// draft was closed or `id` is not its current save (a superseded one).
    fn settle(&mut self, draft_id: &str, id: &MessageId) -> Option<&mut Draft> {
        let d = self.map.get_mut(draft_id)?;
        if d.saving_id.as_ref() != Some(id) {
            return None;
        }
        d.saving_id = None;
        d.state.saving = false;
        Some(d)
    }

    /// An open draft, or the error the app gets for an id it never opened.
    fn open_mut(&mut self, draft_id: &str) -> Result<&mut Draft, SendError> {
        self.map
            .get_mut(draft_id)
            .ok_or_else(|| SendError::UnknownDraft(draft_id.to_owned()))
    }

    pub(crate) fn open(
        &mut self,
        draft_id: String,
        draft_type: Option<String>,
        initial: Value,
        base_version: Option<u64>,
        options: DraftOptions,
    ) {
        if let Some(d) = self.map.get_mut(&draft_id) {
            // Another handle on an open draft: it shares the live state (its `initial`
            // would be older than what is being edited) and the options of the first
            // holder, which is still editing under them.
            let _ = options;
            d.holders += 1;
            return;
        }
        let state = DraftState {
            draft_id: draft_id.clone(),
            draft_type,
            base_content: initial.clone(),
            content: initial,
            base_version,
            dirty: false,
            valid: true,
            saving: false,
            conflict: None,
            last_saved: None,
            options,
        };
        self.map.insert(
            draft_id,
            Draft {
                state,
                saving_id: None,
                saving_content: None,
                next_save_at: None,
                pending_remote: None,
                holders: 1,
            },
        );
    }

    pub(crate) fn close(&mut self, draft_id: &str) {
        if let Some(d) = self.map.get_mut(draft_id) {
            d.holders -= 1;
            if d.holders == 0 {
                self.map.remove(draft_id);
            }
        }
    }

    pub(crate) fn get(&self, draft_id: &str) -> Option<&Draft> {
        self.map.get(draft_id)
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.map.values().filter_map(|d| d.next_save_at).min()
    }
}

/// Draft handling of [`Connection`]: kept here so connection.rs stays about the link.
impl Connection {
    pub(super) fn draft_update_inner(
        &mut self,
        draft_id: &str,
        content: Value,
        valid: bool,
        now: Instant,
    ) -> Result<(), SendError> {
        let d = self.drafts.open_mut(draft_id)?;
        d.state.content = content;
        d.state.valid = valid;
        d.state.dirty = true;
        if d.next_save_at.is_none() {
            d.next_save_at = Some(now + d.state.options.auto_save_interval);
        }
        if d.saving_id.is_some() {
            // A save still unsent (offline) is superseded at once: one entry per draft.
            self.draft_save(draft_id, false, now)?;
            if let Some(d) = self.drafts.map.get_mut(draft_id)
                && d.state.dirty
                && d.next_save_at.is_none()
            {
                d.next_save_at = Some(now + d.state.options.auto_save_interval);
            }
        }
        Ok(())
    }

    /// Save a dirty, valid draft without a conflict. `forced`: the app asked, so report
    /// why nothing was saved.
    pub(super) fn draft_save(
        &mut self,
        draft_id: &str,
        forced: bool,
        now: Instant,
    ) -> Result<(), SendError> {
        let d = self.drafts.open_mut(draft_id)?;
        d.next_save_at = None;
        if !d.state.dirty || d.state.conflict.is_some() {
            return Ok(());
        }
        if !d.state.valid {
            return if forced {
                Err(SendError::InvalidDraft(draft_id.to_owned()))
            } else {
                Ok(())
            };
        }
        let content = d.state.content.clone();
        let msg = ClientMessage::DraftSync(DraftSave {
            draft_id: draft_id.to_owned(),
            draft_type: d.state.draft_type.clone(),
            content: content.clone(),
            base_version: d.state.base_version,
        });
        if let Some(id) = d.saving_id.clone() {
            let text = FrameText::from(ClientFrame::new(msg).with_id(id.as_str()).encode());
            if let Err(e) = self.check_size(&text) {
                return self.draft_too_large(draft_id, e, forced);
            }
            if self.outbox.replace_unsent(&id, text)
                && let Some(d) = self.drafts.map.get_mut(draft_id)
            {
                d.saving_content = Some(content);
                d.state.dirty = false;
            }
            // Otherwise the save is on the wire: the next one follows its ack.
            return Ok(());
        }
        // A zero interval must not turn a full outbox into a busy retry loop.
        let retry_in = d.state.options.auto_save_interval.max(MIN_SAVE_RETRY);
        match self.enqueue(msg, Some(draft_id.to_owned()), now) {
            Ok(id) => {
                if let Some(d) = self.drafts.map.get_mut(draft_id) {
                    d.saving_id = Some(id);
                    d.saving_content = Some(content);
                    d.state.dirty = false;
                    d.state.saving = true;
                }
                Ok(())
            }
            Err(e @ (SendError::TooLarge { .. } | SendError::RefusedBefore { .. })) => {
                self.draft_too_large(draft_id, e, forced)
            }
            Err(e) => {
                // Keep the edits; try again later (the outbox drains as acks come).
                if let Some(d) = self.drafts.map.get_mut(draft_id) {
                    d.next_save_at = Some(now + retry_in);
                }
                if forced { Err(e) } else { Ok(()) }
            }
        }
    }

    /// Content over the frame limit cannot be saved until the app edits it: say so once
    /// (an event, and the error for an explicit save) instead of retrying forever.
    fn draft_too_large(
        &mut self,
        draft_id: &str,
        error: SendError,
        forced: bool,
    ) -> Result<(), SendError> {
        warn!(draft = draft_id, %error, "draft too large to save");
        let reason = match error {
            SendError::RefusedBefore { size, .. } => SendFailure::RefusedTooLarge { size },
            SendError::TooLarge { size, max } => SendFailure::TooLarge { size, max },
            _ => SendFailure::TooLarge {
                size: 0,
                max: self.config.max_message_bytes,
            },
        };
        self.events.push_back(Event::DraftSaveFailed {
            draft_id: draft_id.to_owned(),
            reason,
        });
        if forced { Err(error) } else { Ok(()) }
    }

    pub(super) fn drafts_on_timeout(&mut self, now: Instant) {
        let due: Vec<String> = self
            .drafts
            .map
            .iter()
            .filter(|(_, d)| d.next_save_at.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            if let Err(e) = self.draft_save(&id, false, now) {
                debug!(draft = %id, error = %e, "auto-save skipped");
            }
        }
    }

    /// The save `id` of `draft_id` is done (acked, or written to a server without acks).
    pub(super) fn draft_on_saved(
        &mut self,
        draft_id: &str,
        id: &MessageId,
        version: Option<u64>,
        now: Instant,
    ) {
        let Some(d) = self.drafts.settle(draft_id, id) else {
            return;
        };
        if let Some(v) = version {
            d.state.base_version = Some(v);
        }
        if let Some(c) = d.saving_content.take() {
            d.state.base_content = c;
        }
        d.state.last_saved = Some(now);
        if d.state.dirty && d.next_save_at.is_none() {
            d.next_save_at = Some(now + d.state.options.auto_save_interval);
        }
        self.events.push_back(Event::DraftSaved {
            draft_id: draft_id.to_owned(),
            version,
        });
        self.draft_take_pending_remote(draft_id, now);
    }

    pub(super) fn draft_on_failed(
        &mut self,
        draft_id: &str,
        id: &MessageId,
        reason: SendFailure,
        now: Instant,
    ) {
        let Some(d) = self.drafts.settle(draft_id, id) else {
            return;
        };
        d.saving_content = None;
        // The content was not saved: it is still an edit. Not re-armed, so a permanently
        // rejected draft does not loop; the next edit or `draft_save_now` retries.
        d.state.dirty = true;
        self.events.push_back(Event::DraftSaveFailed {
            draft_id: draft_id.to_owned(),
            reason,
        });
        self.draft_take_pending_remote(draft_id, now);
    }

    /// The server refused our save: its base was stale.
    /// `id`: the refused save's id, when the server puts it on the conflict.
    pub(super) fn draft_on_conflict(&mut self, c: DraftConflict, id: Option<&str>, now: Instant) {
        self.fail_unowned_save(id);
        let Some(d) = self.drafts.map.get_mut(&c.draft_id) else {
            return;
        };
        if let (Some(id), Some(saving)) = (id, &d.saving_id)
            && id != saving.as_str()
        {
            // About an earlier save, already settled: the current one gets its own answer.
            return;
        }
        if let Some(id) = d.saving_id.take() {
            d.saving_content = None;
            d.state.saving = false;
            d.state.dirty = true;
            if let Some(entry) = self.outbox.remove(id.as_str()) {
                self.events
                    .push_back(Event::SendFailed(entry.id, SendFailure::DraftConflict));
            }
        } else if d.state.base_version.is_some_and(|b| c.server_version <= b) {
            return;
        }
        if d.pending_remote
            .as_ref()
            .is_some_and(|p| p.version.is_none_or(|v| v <= c.server_version))
        {
            d.pending_remote = None;
        }
        self.draft_apply_remote(&c.draft_id, c.server_content, Some(c.server_version), now);
        self.draft_take_pending_remote(&c.draft_id, now);
    }

    /// A conflict about a queued save that no open draft is waiting for (one sent with
    /// `send`, or of a draft closed since) is that save's answer: the server will never
    /// ack it, so it fails now instead of being re-sent until it runs out of attempts.
    fn fail_unowned_save(&mut self, id: Option<&str>) {
        let Some(id) = id else { return };
        let owned = self.outbox.durable_iter().any(|e| {
            e.id.as_str() == id
                && e.draft_id
                    .as_ref()
                    .is_some_and(|d| self.drafts.map.contains_key(d))
        });
        if !owned && let Some(entry) = self.outbox.remove(id) {
            self.fail_durable(entry, SendFailure::DraftConflict);
        }
    }

    /// Another session saved the draft (or the app fetched the server's version).
    pub(super) fn draft_on_remote(&mut self, s: DraftSynced, now: Instant) {
        // A versioned server sends versions with `draft_sync`; a seed server does not,
        // and then the last write wins.
        let versioned = s.version.is_some();
        let Some(d) = self.drafts.map.get_mut(&s.draft_id) else {
            return;
        };
        if let (Some(v), Some(b)) = (s.version, d.state.base_version)
            && v <= b
        {
            return;
        }
        if let Some(conflict) = &mut d.state.conflict {
            // Still waiting for the app: show it the newest remote.
            conflict.remote = s.content.clone();
            conflict.remote_version = s.version;
            let event = conflict_event(&s.draft_id, conflict);
            self.events.push_back(event);
            return;
        }
        if !d.state.dirty && d.saving_id.is_none() {
            d.state.content = s.content.clone();
            d.state.base_content = s.content.clone();
            d.state.base_version = s.version.or(d.state.base_version);
            self.events.push_back(Event::DraftUpdated {
                draft_id: s.draft_id,
                content: s.content,
                version: d.state.base_version,
            });
            return;
        }
        if !versioned {
            // Last write wins, and our pending edits are the last write.
            return;
        }
        if d.saving_id.is_some() {
            // The server answers our save with a conflict, or took it first and this
            // version is newer: decide when the save is settled.
            if d.pending_remote
                .as_ref()
                .is_none_or(|p| p.version < s.version)
            {
                d.pending_remote = Some(s);
            }
            return;
        }
        self.draft_apply_remote(&s.draft_id, s.content, s.version, now);
    }

    /// The save is settled: handle a server version that arrived meanwhile.
    fn draft_take_pending_remote(&mut self, draft_id: &str, now: Instant) {
        let Some(d) = self.drafts.map.get_mut(draft_id) else {
            return;
        };
        if d.saving_id.is_some() {
            return;
        }
        if let Some(s) = d.pending_remote.take() {
            self.draft_on_remote(s, now);
        }
    }

    /// Local edits meet a newer server version: resolve by the draft's strategy.
    fn draft_apply_remote(
        &mut self,
        draft_id: &str,
        remote: Value,
        remote_version: Option<u64>,
        now: Instant,
    ) {
        let Some(d) = self.drafts.map.get_mut(draft_id) else {
            return;
        };
        let mut strategy = d.state.options.strategy;
        let mut merged = None;
        if strategy == ConflictStrategy::Merge {
            match three_way(&d.state.base_content, &d.state.content, &remote) {
                Ok(m) => merged = Some(m),
                Err(conflict) => {
                    debug!(draft = draft_id, paths = ?conflict.paths, "merge conflict: asking");
                    strategy = ConflictStrategy::Ask;
                }
            }
        }
        let base_version = remote_version.or(d.state.base_version);
        match strategy {
            ConflictStrategy::Ask => {
                let info = DraftConflictInfo {
                    base: d.state.base_content.clone(),
                    local: d.state.content.clone(),
                    remote,
                    remote_version,
                };
                self.events.push_back(conflict_event(draft_id, &info));
                d.state.conflict = Some(info);
                return;
            }
            ConflictStrategy::Local => {
                d.state.base_version = base_version;
                d.state.base_content = remote;
                d.state.dirty = true;
            }
            ConflictStrategy::Remote => {
                d.state.base_version = base_version;
                d.state.base_content = remote.clone();
                d.state.content = remote;
                d.state.dirty = false;
                self.events.push_back(Event::DraftUpdated {
                    draft_id: draft_id.to_owned(),
                    content: d.state.content.clone(),
                    version: base_version,
                });
            }
            ConflictStrategy::Merge => {
                let merged = merged.unwrap_or_else(|| d.state.content.clone());
                d.state.dirty = merged != remote;
                d.state.base_version = base_version;
                d.state.base_content = remote;
                d.state.content = merged.clone();
                self.events.push_back(Event::DraftUpdated {
                    draft_id: draft_id.to_owned(),
                    content: merged,
                    version: base_version,
                });
            }
        }
        if let Err(e) = self.draft_save(draft_id, false, now) {
            debug!(draft = draft_id, error = %e, "save after conflict deferred");
        }
    }

    pub(super) fn draft_resolve_inner(
        &mut self,
        draft_id: &str,
        resolution: Resolution,
        now: Instant,
    ) -> Result<(), SendError> {
        let d = self.drafts.open_mut(draft_id)?;
        let c = d
            .state
            .conflict
            .take()
            .ok_or_else(|| SendError::NoConflict(draft_id.to_owned()))?;
        d.state.base_version = c.remote_version.or(d.state.base_version);
        d.state.base_content = c.remote.clone();
        let updated = match resolution {
            Resolution::Local => {
                d.state.dirty = true;
                None
            }
            Resolution::Remote => {
                d.state.content = c.remote;
                d.state.dirty = false;
                Some(d.state.content.clone())
            }
            Resolution::Content(v) => {
                d.state.content = v;
                // The app made this content itself: it vouches for it.
                d.state.valid = true;
                d.state.dirty = true;
                Some(d.state.content.clone())
            }
        };
        if let Some(content) = updated {
            self.events.push_back(Event::DraftUpdated {
                draft_id: draft_id.to_owned(),
                content,
                version: d.state.base_version,
            });
        }
        self.draft_save(draft_id, false, now)
    }
}

fn conflict_event(draft_id: &str, c: &DraftConflictInfo) -> Event {
    Event::DraftConflict {
        draft_id: draft_id.to_owned(),
        base: c.base.clone(),
        local: c.local.clone(),
        remote: c.remote.clone(),
        remote_version: c.remote_version,
    }
}
