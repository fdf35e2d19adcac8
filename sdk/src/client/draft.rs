//! Draft handles: auto-synced documents with conflict resolution.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde_json::Value;

use super::subscription::{Fanout, poll_pick};
use super::{Client, ClientError, Lagged};
use crate::core::{DraftOptions, DraftState, Event, Resolution};

/// The app's check that content is complete enough to save (the seed's `validateContent`).
#[cfg(not(target_arch = "wasm32"))]
pub type Validator = Arc<dyn Fn(&Value) -> bool + Send + Sync>;
/// The app's check that content is complete enough to save (the seed's `validateContent`).
#[cfg(target_arch = "wasm32")]
pub type Validator = Arc<dyn Fn(&Value) -> bool>;

/// An open draft. Edits go through [`Draft::update`]; the core auto-saves dirty, valid
/// content every [`DraftOptions::auto_save_interval`] and resolves conflicts by
/// [`DraftOptions::strategy`]. Dropping the handle stops tracking the draft (a save already
/// queued still goes out).
pub struct Draft {
    id: String,
    client: Client,
    validator: Option<Validator>,
}

impl Draft {
    pub(super) fn new(id: String, client: Client, validator: Option<Validator>) -> Self {
        Draft {
            id,
            client,
            validator,
        }
    }

    /// The draft id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// New local content. Marks the draft dirty; it is saved by the next auto-save if the
    /// validator accepts it.
    pub fn update(&self, content: Value) -> Result<(), ClientError> {
        let valid = self.validator.as_ref().is_none_or(|v| v(&content));
        let id = self.id.clone();
        self.client
            .call(move |conn, now| conn.draft_update(&id, content, valid, now))?
            .map_err(ClientError::from)
    }

    /// Save now instead of waiting for the auto-save.
    pub fn save(&self) -> Result<(), ClientError> {
        let id = self.id.clone();
        self.client
            .call(move |conn, now| conn.draft_save_now(&id, now))?
            .map_err(ClientError::from)
    }

    /// Settle a pending conflict (strategy `ask`, or `merge` that fell back to `ask`).
    pub fn resolve(&self, resolution: Resolution) -> Result<(), ClientError> {
        let id = self.id.clone();
        self.client
            .call(move |conn, now| conn.draft_resolve(&id, resolution, now))?
            .map_err(ClientError::from)
    }

    /// Keep the local content over the server's (the seed's `resolveWithLocal`).
    pub fn resolve_with_local(&self) -> Result<(), ClientError> {
        self.resolve(Resolution::Local)
    }

    /// Adopt the server's content (the seed's `resolveWithRemote`).
    pub fn resolve_with_remote(&self) -> Result<(), ClientError> {
        self.resolve(Resolution::Remote)
    }

    /// A snapshot: content, base version, dirty, saving, conflict, last saved.
    pub fn state(&self) -> Result<DraftState, ClientError> {
        self.read_state(DraftState::clone)
    }

    /// Read the state in place, without copying it: `f` runs under the client's lock, so
    /// it must be quick and must not call the client.
    pub fn read_state<R>(&self, f: impl FnOnce(&DraftState) -> R) -> Result<R, ClientError> {
        self.client
            .shared
            .read_core(|conn| conn.draft_state(&self.id).map(f))
            .ok_or(ClientError::DriverGone)?
            .ok_or_else(|| ClientError::Send(crate::core::SendError::UnknownDraft(self.id.clone())))
    }

    /// This draft's events: saved, updated by another session, conflict, save failed.
    pub fn events(&self) -> DraftEvents {
        DraftEvents {
            id: self.id.clone(),
            events: self.client.shared.events.subscribe(),
        }
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        let id = std::mem::take(&mut self.id);
        // If the driver is gone there is nothing left to close.
        let _ = self.client.call(move |conn, _| conn.draft_close(&id));
    }
}

/// The events of one draft; see [`Draft::events`].
pub struct DraftEvents {
    id: String,
    events: Fanout,
}

impl DraftEvents {
    /// The next event of this draft (`None` when the client is gone).
    pub async fn recv(&mut self) -> Option<Result<Event, Lagged>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for DraftEvents {
    type Item = Result<Event, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let id = this.id.as_str();
        poll_pick(&mut this.events, cx, |event| {
            (event.draft_id() == Some(id)).then(|| Event::clone(event))
        })
    }
}

/// Options for [`Client::draft`](super::Client::draft).
#[derive(Clone, Default)]
pub struct DraftConfig {
    /// Draft kind, e.g. `pitch`.
    pub draft_type: Option<String>,
    /// The content loaded from the server (not dirty).
    pub initial: Value,
    /// The version of `initial`, if known.
    pub base_version: Option<u64>,
    /// Auto-save interval and conflict strategy.
    pub options: DraftOptions,
    /// The app's content check; content it rejects is kept but not saved.
    pub validator: Option<Validator>,
}

impl std::fmt::Debug for DraftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DraftConfig")
            .field("draft_type", &self.draft_type)
            .field("base_version", &self.base_version)
            .field("options", &self.options)
            .field("validator", &self.validator.is_some())
            .finish_non_exhaustive()
    }
}
