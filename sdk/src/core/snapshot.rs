//! What survives a page reload or a killed app: the durable outbox (with its message ids)
//! and the last `seq` seen. Restored into a new [`Connection`], it sends what was queued
//! under the same ids (so the server drops what it had already applied) and resumes from
//! the same `seq` (so nothing is delivered twice or missed).

use serde::{Deserialize, Serialize};

use super::outbox::Durable;
use super::text::{decimal, fill};
use super::{Connection, Instant, MessageId};
use crate::protocol::ClientFrame;

/// The current snapshot format.
const FORMAT: u32 = 1;

/// A [`Connection`]'s persistent state. Store it as JSON ([`Snapshot::to_json`]) in
/// `localStorage`, a file, or wherever the app keeps data across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Snapshot {
    /// Format version (1).
    pub format: u32,
    /// Durable messages not yet acked, oldest first.
    pub messages: Vec<SavedMessage>,
    /// The last server `seq` seen, to resume from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

/// One queued durable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SavedMessage {
    /// Its client id (on the wire in `frame` too).
    pub id: String,
    /// The encoded frame, exactly as it is written.
    pub frame: String,
    /// The draft it saves, for a `draft_sync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_id: Option<String>,
    /// Its expiry in milliseconds since the Unix epoch, if it has one and the driver gave
    /// the wall clock ([`Connection::set_wall_clock`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_epoch_ms: Option<u64>,
}

/// Why a snapshot could not be read or restored. Nothing is restored when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a snapshot (bad JSON, missing fields).
    Invalid(String),
    /// Written by a newer SDK.
    UnknownFormat(u32),
    /// A saved frame is not a durable client frame carrying its id.
    BadMessage(String),
    /// The outbox cannot hold the saved messages on top of what is queued already. Raise
    /// `Config::outbox_capacity` or restore before sending.
    NoRoom {
        /// Messages in the snapshot that are not queued yet.
        saved: usize,
        /// Free places in the outbox.
        free: usize,
    },
}

impl SnapshotError {
    /// What went wrong, in words (what `Display` writes; see `core::text`).
    pub fn message(&self) -> String {
        let n = |v: &usize| decimal(*v as u64);
        match self {
            SnapshotError::Invalid(why) => fill("not a pitchey snapshot: {}", &[why]),
            SnapshotError::UnknownFormat(format) => fill(
                "snapshot format {} is newer than this SDK's ({})",
                &[&decimal(u64::from(*format)), &decimal(u64::from(FORMAT))],
            ),
            SnapshotError::BadMessage(id) => {
                fill("saved message {} is not a durable frame with its id", &[id])
            }
            SnapshotError::NoRoom { saved, free } => fill(
                "{} saved messages do not fit in the outbox ({} free)",
                &[&n(saved), &n(free)],
            ),
        }
    }
}

impl Snapshot {
    /// As JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        crate::protocol::json::to_string(self).unwrap_or_default()
    }

    /// From JSON written by [`Snapshot::to_json`].
    pub fn from_json(text: &str) -> Result<Self, SnapshotError> {
        let snapshot: Snapshot =
            crate::protocol::json::from_str(text).map_err(SnapshotError::Invalid)?;
        if snapshot.format > FORMAT {
            return Err(SnapshotError::UnknownFormat(snapshot.format));
        }
        Ok(snapshot)
    }

    /// True when there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.last_seq.is_none()
    }
}

impl Connection {
    /// What must survive a restart: the durable outbox and the last `seq`. Cheap enough
    /// to call after every change (see [`Connection::persist_revision`]).
    pub fn export(&self) -> Snapshot {
        Snapshot {
            format: FORMAT,
            messages: self
                .outbox
                .durable_iter()
                .map(|d| SavedMessage {
                    id: d.id.as_str().to_owned(),
                    frame: d.text.as_str().to_owned(),
                    draft_id: d.draft_id.clone(),
                    expires_at_epoch_ms: d.expires_at.and_then(|t| self.epoch_ms_of(t)),
                })
                .collect(),
            last_seq: self.seq.last(),
        }
    }

    /// Put back what [`Connection::export`] saved, before `connect`: the messages go
    /// ahead of anything queued since, under their old ids (any already queued are
    /// skipped), and the first connection resumes from the saved `seq`.
    pub fn restore(&mut self, snapshot: Snapshot, now: Instant) -> Result<usize, SnapshotError> {
        let mut restored = Vec::new();
        for m in snapshot.messages {
            if self.outbox.contains(&m.id) {
                continue;
            }
            let durable = ClientFrame::decode(&m.frame)
                .ok()
                .filter(|f| f.id.as_deref() == Some(m.id.as_str()))
                .is_some_and(|f| {
                    super::is_durable(&f.message) && super::outbox::core_only(&f.message).is_none()
                });
            if !durable {
                return Err(SnapshotError::BadMessage(m.id));
            }
            let mut d = Durable::new(MessageId::new(m.id), m.frame.into(), m.draft_id);
            d.expires_at = m
                .expires_at_epoch_ms
                .map(|ms| self.instant_of_epoch_ms(ms, now));
            restored.push(d);
        }
        let free = self
            .config
            .outbox_capacity
            .saturating_sub(self.outbox.len());
        if restored.len() > free {
            return Err(SnapshotError::NoRoom {
                saved: restored.len(),
                free,
            });
        }
        let n = restored.len();
        self.outbox.restore_front(restored);
        if let Some(last) = snapshot.last_seq {
            self.restore_seq(last);
        }
        self.flush(now);
        Ok(n)
    }

    /// Changes whenever what [`Connection::export`] returns may have changed: a driver
    /// that persists compares it with the revision it last saved.
    pub fn persist_revision(&self) -> u64 {
        self.outbox
            .revision()
            .wrapping_add(self.seq.last().unwrap_or(0).wrapping_mul(0x9E37_79B9))
    }
}
