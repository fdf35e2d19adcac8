//! The JavaScript shapes of everything that crosses the boundary, as Rust types with
//! `#[derive(Tsify)]`: their TypeScript declarations are generated into the package's
//! `.d.ts`.
//!
//! Two kinds live here:
//! - **Wire mirrors** (`Notification`, `PitchStats`, ...): the `data` of server messages.
//!   At run time the SDK's own `protocol` types are serialized (they are the wire format);
//!   these mirrors only describe them to TypeScript. The tests at the bottom check each
//!   mirror against the SDK type (same JSON both ways, no unknown field), so a field added
//!   to the protocol fails the build's tests until it is added here.
//! - **Binding shapes** (`ClientOptions`, `Metrics`, `DraftState`, `StateInfo`, ...): made
//!   or read by this crate at run time, so their declarations cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tsify::Tsify;

// ---------------------------------------------------------------------------------------
// Wire mirrors (server -> client `data` payloads).
// ---------------------------------------------------------------------------------------

/// `notification` data.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    /// Notification id.
    pub id: String,
    /// `follow`, `pitch_view`, `message`, `system`, `upload`, or another kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Kind-specific payload.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[tsify(optional, type = "unknown")]
    pub data: Value,
    /// ISO-8601 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub created_at: Option<String>,
    /// Whether the user has read it.
    pub read: bool,
}

/// `dashboard_update` data's `metrics` (what `on("dashboard_update")` receives). Metrics
/// this version does not name are passed through as extra properties.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DashboardMetrics {
    /// Views across all pitches.
    pub total_views: u64,
    /// Followers.
    pub followers: u64,
    /// Pitches published.
    pub pitches: u64,
    /// Investors who expressed interest.
    pub investor_interest: u64,
}

/// `pitch_stats_update` data: live view stats of one pitch.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PitchStats {
    /// The pitch.
    pub pitch_id: u64,
    /// Total views.
    pub view_count: u64,
    /// Distinct viewers.
    pub unique_viewers: u64,
    /// The latest viewers, newest first.
    pub recent_viewers: Vec<RecentViewer>,
}

/// One entry of [`PitchStats::recent_viewers`].
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecentViewer {
    /// The viewer.
    pub user_id: u64,
    /// Their username, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub username: Option<String>,
    /// ISO-8601 time of the view.
    pub viewed_at: String,
}

/// A user's presence status.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Connected and active.
    Online,
    /// Connected but idle.
    Away,
    /// Not connected.
    Offline,
}

/// `presence_update` data from the server: another user's status.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Presence {
    /// Whose presence.
    pub user_id: u64,
    /// Their status.
    pub status: PresenceStatus,
    /// ISO-8601 time they were last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub last_seen: Option<String>,
}

/// `user_typing` data: someone started or stopped typing in a conversation.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserTyping {
    /// The conversation.
    pub conversation_id: u64,
    /// Who is typing.
    pub user_id: u64,
    /// Their username, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub username: Option<String>,
    /// Started (true) or stopped (false) typing.
    pub is_typing: bool,
}

/// Upload status.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// In progress.
    Uploading,
    /// Done.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled by the user.
    Cancelled,
}

/// `upload_progress` data.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadProgress {
    /// Upload id.
    pub upload_id: String,
    /// File name.
    pub file_name: String,
    /// Percent done, 0 to 100.
    pub progress: f64,
    /// Bytes sent so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub bytes_uploaded: Option<u64>,
    /// File size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub total_bytes: Option<u64>,
    /// Status.
    pub status: UploadStatus,
}

/// `draft_sync` data from the server: a draft saved by another session of the user.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftSynced {
    /// Draft id.
    pub draft_id: String,
    /// Draft kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub draft_type: Option<String>,
    /// The saved content.
    #[tsify(type = "any")]
    pub content: Value,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub version: Option<u64>,
    /// ISO-8601 save time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub updated_at: Option<String>,
    /// The session that saved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub session_id: Option<String>,
}

/// `draft_conflict` data: a save was made on a stale base version.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftConflictData {
    /// Draft id.
    pub draft_id: String,
    /// The base version the client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub base_version: Option<u64>,
    /// The server's current version.
    pub server_version: u64,
    /// The server's current content.
    #[tsify(type = "any")]
    pub server_content: Value,
}

/// `error` data of a server `error` frame.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerErrorData {
    /// Machine-readable code (`rate_limited`, `forbidden`, `not_found`, ...).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// With `rate_limited`: how long to wait before sending again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub retry_after_ms: Option<u64>,
    /// The id of the client message this error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub id: Option<String>,
}

/// `disconnected` data: the server is closing this connection.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Disconnected {
    /// Why.
    pub reason: String,
}

/// A whole server frame, as `on("message")` receives every one.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerFrame {
    /// The message type (`notification`, `dashboard_update`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload (see the types above).
    #[serde(default)]
    #[tsify(type = "unknown")]
    pub data: Value,
    /// Sender-made id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub id: Option<String>,
    /// Per-user sequence number of a durable server message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub seq: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Binding shapes.
// ---------------------------------------------------------------------------------------

/// Skips an option that only JavaScript can hold (a function): the binding reads it from
/// the options object itself.
fn js_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| None)
}

/// Reconnect backoff (exponential with full jitter).
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackoffOptions {
    /// Upper bound of the first delayed retry, in ms (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub initial_ms: Option<f64>,
    /// Cap of the delay, in ms (default 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub max_ms: Option<f64>,
    /// Growth per retry (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub multiplier: Option<f64>,
}

/// `new Client(options)`.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientOptions {
    /// The endpoint, `ws://` or `wss://` (e.g. `wss://api.pitchey.com/ws`).
    pub url: String,
    /// The JWT to connect with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional, type = "string | null")]
    pub token: Option<String>,
    /// Asked for a fresh token when the server refuses the current one; `null` means none
    /// can be had (the status becomes `auth_failed`). Read by the binding directly.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "js_only"
    )]
    #[tsify(optional, type = "() => Promise<string | null> | string | null")]
    pub token_provider: Option<()>,
    /// Reconnect backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub backoff: Option<BackoffOptions>,
    /// How many messages may wait in the outbox (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub queue_size: Option<f64>,
    /// Heartbeat interval until the server announces its own, in ms (default 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub heartbeat_ms: Option<f64>,
    /// A `localStorage` key: when set, queued messages and the last `seq` are saved there
    /// whenever they change and restored by the next `new Client` (the seed's
    /// `enableLocalStorage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub persist_key: Option<String>,
}

/// How a draft settles a conflict with a newer server version.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConflictResolution {
    /// Keep the local content, saved on top of the server's version.
    Local,
    /// Take the server's content.
    Remote,
    /// Three-way merge of JSON objects; clashing fields fall back to `ask`.
    Merge,
    /// Report a conflict (`hasConflict`) and wait for `resolveWithLocal/Remote`.
    #[default]
    Ask,
}

/// `client.openDraft(draftId, options)`.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DraftOpenOptions {
    /// Draft kind, e.g. `pitch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub draft_type: Option<String>,
    /// The content loaded from the server (not dirty).
    #[serde(default)]
    #[tsify(optional, type = "any")]
    pub initial: Value,
    /// The version of `initial`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub base_version: Option<f64>,
    /// Auto-save interval in ms (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub auto_save_interval_ms: Option<f64>,
    /// Conflict strategy (default `ask`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub conflict_resolution: Option<ConflictResolution>,
    /// The app's content check: content it rejects is kept but not saved. Read by the
    /// binding directly.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "js_only"
    )]
    #[tsify(optional, type = "(content: any) => boolean")]
    pub validate: Option<()>,
}

/// The connection's lifecycle state, as `client.status`.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Created; `connect()` not called yet.
    Idle,
    /// An attempt is under way.
    Connecting,
    /// Messages flow.
    Connected,
    /// The link was lost; retrying after a delay.
    Reconnecting,
    /// The token was refused; waiting for the token provider.
    AwaitingToken,
    /// No valid token could be had; no retries until `connect()`.
    AuthFailed,
    /// Closed by `disconnect()`/`close()` or for good by the server.
    Closed,
}

/// What `on("state")` receives.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateInfo {
    /// The status.
    pub status: ConnectionStatus,
    /// With `reconnecting`: the attempt about to be made (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub attempt: Option<u32>,
    /// With `reconnecting`: the delay before it, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub delay_ms: Option<f64>,
    /// With `auth_failed`: what the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub reason: Option<String>,
}

/// `await client.metrics()`: numbers for a status bar or a debug panel.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Messages in the outbox (the seed's `queueSize`).
    pub queue_depth: f64,
    /// Durable messages written and awaiting their ack.
    pub in_flight: f64,
    /// Tokens left in the mirror of the server's rate-limit bucket.
    pub tokens_left: f64,
    /// Latest heartbeat round-trip time in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub rtt_ms: Option<f64>,
    /// Smoothed round-trip time in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub srtt_ms: Option<f64>,
    /// Connections established after the first one.
    pub reconnects: f64,
    /// Connection attempts in total.
    pub connect_attempts: f64,
    /// Why the last connection ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub last_disconnect: Option<String>,
    /// Frames written.
    pub frames_sent: f64,
    /// Text frames received.
    pub frames_received: f64,
    /// Received frames dropped as duplicates.
    pub duplicates_dropped: f64,
    /// Received frames that could not be decoded.
    pub invalid_frames: f64,
}

/// A conflict waiting for `resolveWithLocal()` / `resolveWithRemote()`.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DraftConflict {
    /// The content both sides started from.
    #[tsify(type = "any")]
    pub base: Value,
    /// The local content.
    #[tsify(type = "any")]
    pub local: Value,
    /// The server's content.
    #[tsify(type = "any")]
    pub remote: Value,
    /// The server's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub remote_version: Option<u64>,
}

/// `await draft.state()`: the seed's `useDraftSync` state.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DraftState {
    /// Draft id.
    pub draft_id: String,
    /// Draft kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub draft_type: Option<String>,
    /// The current local content.
    #[tsify(type = "any")]
    pub content: Value,
    /// The server version the content is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub base_version: Option<u64>,
    /// Local edits not yet saved.
    pub is_dirty: bool,
    /// What `validate` said about the content.
    pub is_valid: bool,
    /// A save is queued or in flight.
    pub is_saving: bool,
    /// A conflict waiting for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub conflict: Option<DraftConflict>,
    /// When the last save was acked, in ms since the Unix epoch (`new Date(lastSaved)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub last_saved: Option<f64>,
}

/// What `draft.on(handler)` receives.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DraftEvent {
    /// A save was acked.
    Saved {
        /// The new version, when the server versions drafts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[tsify(optional)]
        version: Option<u64>,
    },
    /// The content changed from outside `update` (another session, a merge, a
    /// resolution): show `content`.
    Updated {
        /// The content now.
        #[tsify(type = "any")]
        content: Value,
        /// Its server version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[tsify(optional)]
        version: Option<u64>,
    },
    /// A conflict the strategy could not settle.
    Conflict {
        /// The content both sides started from.
        #[tsify(type = "any")]
        base: Value,
        /// The local content.
        #[tsify(type = "any")]
        local: Value,
        /// The server's content.
        #[tsify(type = "any")]
        remote: Value,
        /// The server's version.
        #[serde(
            default,
            rename = "remoteVersion",
            skip_serializing_if = "Option::is_none"
        )]
        #[tsify(optional)]
        remote_version: Option<u64>,
    },
    /// A save failed for good; the draft stays dirty and is retried.
    SaveFailed {
        /// The error's name (see `RealtimeErrorName`).
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// The `name` (and `code`) of every error the package rejects with or reports.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealtimeErrorName {
    /// The outbox is full (`queueSize`); retry after some messages are acked.
    QueueFull,
    /// The message is over the frame limit, or the server refused one of its size.
    TooLarge,
    /// The server refused the message as unauthorized.
    Unauthorized,
    /// No valid token could be had: the connection stopped.
    AuthFailed,
    /// The connection stopped for good (closed, disconnected) or the client is gone.
    Closed,
    /// The server rejected the message (`serverCode` says why).
    Rejected,
    /// The URL is not a `ws://` or `wss://` URL.
    InvalidUrl,
    /// An argument or option from JavaScript has the wrong shape.
    InvalidArgument,
    /// The message type is sent by the SDK itself (`ping`, `subscribe`, ...).
    NotSendable,
    /// The message type is ephemeral (`typing`, `presence_update`) and never acked.
    NotDurable,
    /// Too many channels subscribed.
    TooManySubscriptions,
    /// The draft is not open (closed already).
    UnknownDraft,
    /// `resolveWith*` on a draft without a conflict.
    NoConflict,
    /// The draft's content failed `validate`; it is kept but not saved.
    InvalidDraft,
    /// A draft save was made on a stale version.
    DraftConflict,
    /// Sent too many times without an ack.
    TooManyAttempts,
    /// The message expired before it could be sent.
    Expired,
    /// Too many events went by to be sure the ack was not missed; the message is still
    /// queued and will be delivered.
    Unconfirmed,
    /// The saved state in `localStorage` could not be restored.
    InvalidSnapshot,
    /// The browser lacks something the client needs (e.g. `crypto.getRandomValues`).
    Platform,
    /// An error this version does not name.
    Unknown,
}

impl RealtimeErrorName {
    /// The name as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            RealtimeErrorName::QueueFull => "QueueFull",
            RealtimeErrorName::TooLarge => "TooLarge",
            RealtimeErrorName::Unauthorized => "Unauthorized",
            RealtimeErrorName::AuthFailed => "AuthFailed",
            RealtimeErrorName::Closed => "Closed",
            RealtimeErrorName::Rejected => "Rejected",
            RealtimeErrorName::InvalidUrl => "InvalidUrl",
            RealtimeErrorName::InvalidArgument => "InvalidArgument",
            RealtimeErrorName::NotSendable => "NotSendable",
            RealtimeErrorName::NotDurable => "NotDurable",
            RealtimeErrorName::TooManySubscriptions => "TooManySubscriptions",
            RealtimeErrorName::UnknownDraft => "UnknownDraft",
            RealtimeErrorName::NoConflict => "NoConflict",
            RealtimeErrorName::InvalidDraft => "InvalidDraft",
            RealtimeErrorName::DraftConflict => "DraftConflict",
            RealtimeErrorName::TooManyAttempts => "TooManyAttempts",
            RealtimeErrorName::Expired => "Expired",
            RealtimeErrorName::Unconfirmed => "Unconfirmed",
            RealtimeErrorName::InvalidSnapshot => "InvalidSnapshot",
            RealtimeErrorName::Platform => "Platform",
            RealtimeErrorName::Unknown => "Unknown",
        }
    }
}

/// An error as data (what `on("error")` receives; promises reject with a `RealtimeError`
/// carrying the same fields).
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// Which error.
    pub name: RealtimeErrorName,
    /// The same as `name` (for code that switches on `code`).
    pub code: RealtimeErrorName,
    /// What went wrong.
    pub message: String,
    /// The message id it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub id: Option<String>,
    /// With `Rejected`/`Unauthorized`: the server's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub server_code: Option<String>,
    /// With `channel` errors: the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub channel: Option<String>,
}

/// What `on("send_failed")` receives: a durable message will not be delivered.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SendFailed {
    /// The message id.
    pub id: String,
    /// Why.
    pub error: ErrorInfo,
}

/// What `on("subscription_active")` / `on("subscription_failed")` receive.
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionInfo {
    /// The channel (`pitch:42`, ...).
    pub channel: String,
    /// With `subscription_failed`: the server's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub code: Option<String>,
    /// With `subscription_failed`: the server's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    pub message: Option<String>,
}

/// What `on("lagged")` receives: the listener fell behind and events were skipped
/// (refetch what the UI shows).
#[derive(Tsify, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LaggedInfo {
    /// How many events were skipped.
    pub missed: f64,
}

/// The event map of `client.on(type, handler)`, the channel names of `subscribe`, and the
/// error class, which no Rust type describes.
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TS_EVENTS: &'static str = r#"
/** Payloads of `client.on(type, handler)`, by event type. */
export interface ClientEventMap {
  /** A notification for the user. */
  notification: Notification;
  /** New dashboard metrics (extra, unnamed metrics are passed through). */
  dashboard_update: DashboardMetrics & Record<string, unknown>;
  /** Live stats of a pitch (subscribe to `pitch:ID`). */
  pitch_stats_update: PitchStats;
  /** Another user's presence (subscribe to `presence:ID`). */
  presence_update: Presence;
  /** Someone typing in a conversation (subscribe to `conversation:ID`). */
  user_typing: UserTyping;
  /** Upload progress. */
  upload_progress: UploadProgress;
  /** A draft saved by another session. */
  draft_sync: DraftSynced;
  /** A draft save on a stale version. */
  draft_conflict: DraftConflictData;
  /** The server is closing the connection. */
  disconnected: Disconnected;
  /** Every server frame, whatever its type. */
  message: ServerFrame;
  /** The connection state changed. */
  state: StateInfo;
  /** Server error frames, failed sends and refused subscriptions. */
  error: ErrorInfo;
  /** A durable message was acked; the payload is its id. */
  acked: string;
  /** A durable message will not be delivered. */
  send_failed: SendFailed;
  /** A send found the outbox full. */
  queue_full: undefined;
  /** Messages may have been missed: refetch what the UI shows. */
  continuity_lost: undefined;
  /** The token was refused and no tokenProvider is set: call `setToken`. */
  token_needed: undefined;
  /** The server confirmed a subscription. */
  subscription_active: SubscriptionInfo;
  /** The server refused a subscription; it is not asked for again. */
  subscription_failed: SubscriptionInfo;
  /** This client's listeners fell behind: events were skipped. */
  lagged: LaggedInfo;
}

/** Every event type of `client.on`. */
export type ClientEventType = keyof ClientEventMap;

/** A channel of `client.subscribe`. */
export type ChannelName =
  | "notifications"
  | "dashboard"
  | "uploads"
  | `pitch:${number}`
  | `presence:${number}`
  | `conversation:${number}`
  | `draft:${string}`;

/** What a promise of this package rejects with: an `Error` whose `name` and `code` say which. */
export interface RealtimeError extends Error {
  name: RealtimeErrorName;
  code: RealtimeErrorName;
  /** The message id it is about, if any. */
  id?: string;
  /** With `Rejected`/`Unauthorized`: the server's error code. */
  serverCode?: string;
}

export interface Client {
  /**
   * Listen to one event type; returns the function that stops listening.
   * Message types (`notification`, ...) get the message's `data`; see `ClientEventMap`.
   */
  on<K extends keyof ClientEventMap>(type: K, handler: (payload: ClientEventMap[K]) => void): () => void;
  /** Listen to a message type this version does not name (its `data`). */
  on(type: string, handler: (payload: unknown) => void): () => void;
  /**
   * Subscribe to a channel; the handler gets the `data` of its messages. Returns the unsubscribe
   * function; the server is told once the last handler of the channel is gone. The handlers of
   * one channel get the same object: treat it as read-only.
   */
  subscribe(channel: `pitch:${number}`, handler: (stats: PitchStats) => void): () => void;
  subscribe(channel: `presence:${number}`, handler: (presence: Presence) => void): () => void;
  subscribe(channel: `conversation:${number}`, handler: (typing: UserTyping) => void): () => void;
  subscribe(channel: "notifications", handler: (notification: Notification) => void): () => void;
  subscribe(channel: "dashboard", handler: (metrics: DashboardMetrics & Record<string, unknown>) => void): () => void;
  subscribe(channel: "uploads", handler: (upload: UploadProgress) => void): () => void;
  subscribe(channel: `draft:${string}`, handler: (draft: DraftSynced | DraftConflictData) => void): () => void;
  subscribe(channel: ChannelName, handler: (payload: unknown) => void): () => void;
}
"#;

#[cfg(test)]
mod tests {
    //! Each wire mirror against the SDK's protocol type: a fully populated SDK value
    //! serializes to JSON that the mirror reads without unknown fields and writes back the
    //! same.
    use super::*;
    use pitchey_realtime::protocol as p;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    fn same<S: Serialize, M: Serialize + DeserializeOwned>(sdk: &S) {
        let wire = serde_json::to_value(sdk).unwrap();
        let mirror: M = serde_json::from_value(wire.clone())
            .unwrap_or_else(|e| panic!("mirror does not read {wire}: {e}"));
        assert_eq!(serde_json::to_value(&mirror).unwrap(), wire);
    }

    #[test]
    fn wire_mirrors_match_the_protocol() {
        same::<_, Notification>(&p::Notification {
            id: "n1".into(),
            kind: "follow".into(),
            title: "t".into(),
            message: "m".into(),
            data: json!({"a": 1}),
            created_at: Some("2024-01-01T00:00:00Z".into()),
            read: true,
        });
        same::<_, PitchStats>(&p::PitchStats {
            pitch_id: 4,
            view_count: 9,
            unique_viewers: 3,
            recent_viewers: vec![p::RecentViewer {
                user_id: 2,
                username: Some("ada".into()),
                viewed_at: "2024-01-01T00:00:00Z".into(),
            }],
        });
        same::<_, Presence>(&p::Presence {
            user_id: 1,
            status: p::PresenceStatus::Away,
            last_seen: Some("x".into()),
        });
        same::<_, UserTyping>(&p::UserTyping {
            conversation_id: 1,
            user_id: 2,
            username: Some("g".into()),
            is_typing: true,
        });
        same::<_, UploadProgress>(&p::UploadProgress {
            upload_id: "u".into(),
            file_name: "f".into(),
            progress: 50.5,
            bytes_uploaded: Some(1),
            total_bytes: Some(2),
            status: p::UploadStatus::Cancelled,
        });
        same::<_, DraftSynced>(&p::DraftSynced {
            draft_id: "d".into(),
            draft_type: Some("pitch".into()),
            content: json!({"title": "x"}),
            version: Some(3),
            updated_at: Some("t".into()),
            session_id: Some("s".into()),
        });
        same::<_, DraftConflictData>(&p::DraftConflict {
            draft_id: "d".into(),
            base_version: Some(1),
            server_version: 2,
            server_content: json!({}),
        });
        same::<_, ServerErrorData>(&p::ErrorData {
            code: p::ErrorCode::RateLimited,
            message: "slow".into(),
            retry_after_ms: Some(10),
            id: Some("c-1".into()),
        });
        same::<_, Disconnected>(&p::Disconnected { reason: "r".into() });
        let mut metrics = p::DashboardMetrics {
            total_views: 1,
            followers: 2,
            pitches: 3,
            investor_interest: 4,
            ..Default::default()
        };
        same::<_, DashboardMetrics>(&metrics);
        metrics.other.insert("extra".into(), json!(5));
        let wire = serde_json::to_value(&metrics).unwrap();
        assert_eq!(wire["extra"], 5, "extra metrics are passed through");
        let frame = p::ServerFrame::decode(r#"{"type":"notification","data":{"id":"n","type":"k","title":"t","message":"","read":false},"seq":3}"#).unwrap();
        same::<_, ServerFrame>(&frame);
    }

    #[test]
    fn statuses_and_enums_match() {
        for s in [
            p::PresenceStatus::Online,
            p::PresenceStatus::Away,
            p::PresenceStatus::Offline,
        ] {
            same::<_, PresenceStatus>(&s);
        }
        for s in [
            p::UploadStatus::Uploading,
            p::UploadStatus::Completed,
            p::UploadStatus::Failed,
            p::UploadStatus::Cancelled,
        ] {
            same::<_, UploadStatus>(&s);
        }
    }

    #[test]
    fn error_names_serialize_as_their_str() {
        for n in [
            RealtimeErrorName::QueueFull,
            RealtimeErrorName::InvalidUrl,
            RealtimeErrorName::Unknown,
        ] {
            assert_eq!(serde_json::to_value(n).unwrap(), json!(n.as_str()));
        }
    }
}
