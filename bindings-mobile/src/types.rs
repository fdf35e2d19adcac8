//! Mirror records and enums: the shapes Swift and Kotlin see, converted from the core's.
//!
//! Payloads the protocol leaves open (notification `data`, draft content, unknown frames,
//! dashboard metrics this version does not name) cross as JSON strings.

use std::time::Duration;

use pitchey_realtime::core::{self, Event, State};
use pitchey_realtime::protocol::{self, ServerFrame, ServerMessage};
use serde_json::Value;

use crate::error::{PitcheyError, to_u64};

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// JSON text of a value (`null` for nothing).
pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

/// Parse JSON given by the app.
pub(crate) fn parse_json(text: &str) -> Result<Value, PitcheyError> {
    serde_json::from_str(text).map_err(|e| PitcheyError::InvalidJson {
        reason: e.to_string(),
    })
}

/// Options of a client; start from [`default_client_options`] and change what you need.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClientOptions {
    /// How many messages the outbox holds (default 100); more is `QueueFull`.
    pub outbox_capacity: u32,
    /// Retry at once after the first failure (default true).
    pub backoff_first_retry_immediate: bool,
    /// Upper bound of the first delayed retry, ms (default 500).
    pub backoff_initial_ms: u64,
    /// Growth of the bound per retry (default 2).
    pub backoff_multiplier: f64,
    /// Cap of the bound, ms (default 30 000).
    pub backoff_max_ms: u64,
    /// Stop (state `Closed`) after this many failed attempts in a row; none: never.
    pub backoff_max_attempts: Option<u32>,
    /// Ping interval until the server announces its own, ms (default 30 000).
    pub heartbeat_interval_ms: u64,
    /// How long after a ping silence means a dead link, ms (default 10 000).
    pub heartbeat_timeout_ms: u64,
    /// How long one connection attempt may take, ms (default 10 000).
    pub connect_timeout_ms: u64,
    /// How long to wait for the token provider, ms (default 30 000).
    pub token_timeout_ms: u64,
    /// Events buffered per slow listener before it gets `Lagged` (default 256).
    pub event_buffer: u32,
}

/// The defaults of [`ClientOptions`] (the core's).
#[uniffi::export]
pub fn default_client_options() -> ClientOptions {
    let c = core::Config::new("");
    ClientOptions {
        outbox_capacity: u32::try_from(c.outbox_capacity).unwrap_or(u32::MAX),
        backoff_first_retry_immediate: c.backoff.first_retry_immediate,
        backoff_initial_ms: ms(c.backoff.initial),
        backoff_multiplier: c.backoff.multiplier,
        backoff_max_ms: ms(c.backoff.max),
        backoff_max_attempts: c.backoff.max_attempts,
        heartbeat_interval_ms: ms(c.heartbeat_interval),
        heartbeat_timeout_ms: ms(c.heartbeat_timeout),
        connect_timeout_ms: ms(c.connect_timeout),
        token_timeout_ms: ms(c.token_timeout),
        event_buffer: 256,
    }
}

impl ClientOptions {
    /// Write these options into the core's configuration.
    pub(crate) fn apply(&self, c: &mut core::Config) {
        c.outbox_capacity = self.outbox_capacity as usize;
        c.backoff.first_retry_immediate = self.backoff_first_retry_immediate;
        c.backoff.initial = Duration::from_millis(self.backoff_initial_ms);
        if self.backoff_multiplier.is_finite() && self.backoff_multiplier >= 1.0 {
            c.backoff.multiplier = self.backoff_multiplier;
        }
        c.backoff.max = Duration::from_millis(self.backoff_max_ms);
        c.backoff.max_attempts = self.backoff_max_attempts;
        c.heartbeat_interval = Duration::from_millis(self.heartbeat_interval_ms);
        c.heartbeat_timeout = Duration::from_millis(self.heartbeat_timeout_ms);
        c.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        c.token_timeout = Duration::from_millis(self.token_timeout_ms);
    }
}

/// The connection's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Built, `connect` not called yet.
    Idle,
    /// An attempt is under way.
    Connecting,
    /// Messages flow.
    Connected,
    /// The link was lost; attempt `attempt` starts `delay_ms` after this state began.
    Reconnecting {
        /// The attempt about to be made (from 1).
        attempt: u32,
        /// Delay before it, ms.
        delay_ms: u64,
    },
    /// Waiting for the token provider.
    AwaitingToken,
    /// No valid token could be had: stopped until `connect`.
    AuthFailed {
        /// What the server said.
        reason: Option<String>,
    },
    /// Stopped by `disconnect`, `on_background`, a final close, or too many attempts.
    Closed,
    /// A state this version does not name.
    Other {
        /// Its description.
        description: String,
    },
}

impl From<&State> for ConnectionState {
    fn from(s: &State) -> Self {
        match s {
            State::Idle => ConnectionState::Idle,
            State::Connecting => ConnectionState::Connecting,
            State::Connected => ConnectionState::Connected,
            State::Reconnecting { attempt, delay } => ConnectionState::Reconnecting {
                attempt: *attempt,
                delay_ms: ms(*delay),
            },
            State::AwaitingToken => ConnectionState::AwaitingToken,
            State::AuthFailed { reason } => ConnectionState::AuthFailed {
                reason: reason.clone(),
            },
            State::Closed => ConnectionState::Closed,
            other => ConnectionState::Other {
                description: other.to_string(),
            },
        }
    }
}

/// A notification.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Notification {
    /// Notification id.
    pub id: String,
    /// `follow`, `pitch_view`, `message`, `system`, `upload`, or another kind.
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Kind-specific payload, as JSON (`null` when absent).
    pub data_json: String,
    /// ISO-8601 creation time.
    pub created_at: Option<String>,
    /// Whether the user has read it.
    pub read: bool,
}

impl From<&protocol::Notification> for Notification {
    fn from(n: &protocol::Notification) -> Self {
        Notification {
            id: n.id.clone(),
            kind: n.kind.clone(),
            title: n.title.clone(),
            message: n.message.clone(),
            data_json: json_text(&n.data),
            created_at: n.created_at.clone(),
            read: n.read,
        }
    }
}

/// A creator's dashboard metrics.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DashboardMetrics {
    /// Views across all pitches.
    pub total_views: u64,
    /// Followers.
    pub followers: u64,
    /// Pitches published.
    pub pitches: u64,
    /// Investors who expressed interest.
    pub investor_interest: u64,
    /// Metrics this version does not name, as a JSON object.
    pub other_json: String,
}

impl From<&protocol::DashboardMetrics> for DashboardMetrics {
    fn from(m: &protocol::DashboardMetrics) -> Self {
        DashboardMetrics {
            total_views: m.total_views,
            followers: m.followers,
            pitches: m.pitches,
            investor_interest: m.investor_interest,
            other_json: Value::Object(m.other.clone()).to_string(),
        }
    }
}

/// One recent viewer of a pitch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecentViewer {
    /// The viewer.
    pub user_id: u64,
    /// Their username, if known.
    pub username: Option<String>,
    /// ISO-8601 time of the view.
    pub viewed_at: String,
}

/// Live view stats of a pitch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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

impl From<&protocol::PitchStats> for PitchStats {
    fn from(s: &protocol::PitchStats) -> Self {
        PitchStats {
            pitch_id: s.pitch_id,
            view_count: s.view_count,
            unique_viewers: s.unique_viewers,
            recent_viewers: s
                .recent_viewers
                .iter()
                .map(|v| RecentViewer {
                    user_id: v.user_id,
                    username: v.username.clone(),
                    viewed_at: v.viewed_at.clone(),
                })
                .collect(),
        }
    }
}

/// A user's presence status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PresenceStatus {
    /// Connected and active.
    Online,
    /// Connected but idle.
    Away,
    /// Not connected.
    Offline,
}

impl From<protocol::PresenceStatus> for PresenceStatus {
    fn from(s: protocol::PresenceStatus) -> Self {
        match s {
            protocol::PresenceStatus::Online => PresenceStatus::Online,
            protocol::PresenceStatus::Away => PresenceStatus::Away,
            protocol::PresenceStatus::Offline => PresenceStatus::Offline,
        }
    }
}

impl From<PresenceStatus> for protocol::PresenceStatus {
    fn from(s: PresenceStatus) -> Self {
        match s {
            PresenceStatus::Online => protocol::PresenceStatus::Online,
            PresenceStatus::Away => protocol::PresenceStatus::Away,
            PresenceStatus::Offline => protocol::PresenceStatus::Offline,
        }
    }
}

/// Another user's presence.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Presence {
    /// Whose presence.
    pub user_id: u64,
    /// Their status.
    pub status: PresenceStatus,
    /// ISO-8601 time they were last seen.
    pub last_seen: Option<String>,
}

/// Someone typing in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserTyping {
    /// The conversation.
    pub conversation_id: u64,
    /// Who.
    pub user_id: u64,
    /// Their username, if known.
    pub username: Option<String>,
    /// Started (true) or stopped (false).
    pub is_typing: bool,
}

/// Upload status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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

/// Upload progress.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct UploadProgress {
    /// Upload id.
    pub upload_id: String,
    /// File name.
    pub file_name: String,
    /// Percent done, 0 to 100.
    pub progress: f64,
    /// Bytes sent so far.
    pub bytes_uploaded: Option<u64>,
    /// File size.
    pub total_bytes: Option<u64>,
    /// Status.
    pub status: UploadStatus,
}

impl From<&protocol::UploadProgress> for UploadProgress {
    fn from(u: &protocol::UploadProgress) -> Self {
        UploadProgress {
            upload_id: u.upload_id.clone(),
            file_name: u.file_name.clone(),
            progress: u.progress,
            bytes_uploaded: u.bytes_uploaded,
            total_bytes: u.total_bytes,
            status: match u.status {
                protocol::UploadStatus::Uploading => UploadStatus::Uploading,
                protocol::UploadStatus::Completed => UploadStatus::Completed,
                protocol::UploadStatus::Failed => UploadStatus::Failed,
                protocol::UploadStatus::Cancelled => UploadStatus::Cancelled,
            },
        }
    }
}

/// Something that happened, delivered to an [`EventListener`](crate::EventListener).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ClientEvent {
    /// The connection state changed.
    StateChanged {
        /// The new state.
        state: ConnectionState,
    },
    /// A notification.
    NotificationReceived {
        /// It.
        notification: Notification,
    },
    /// The dashboard metrics changed (the whole set).
    DashboardUpdated {
        /// The metrics.
        metrics: DashboardMetrics,
    },
    /// A pitch's view stats changed.
    PitchStatsUpdated {
        /// The stats.
        stats: PitchStats,
    },
    /// A user's presence changed.
    PresenceChanged {
        /// The presence.
        presence: Presence,
    },
    /// Someone started or stopped typing.
    TypingChanged {
        /// Who, where.
        typing: UserTyping,
    },
    /// An upload progressed.
    UploadProgressed {
        /// The progress.
        progress: UploadProgress,
    },
    /// Another server frame (`connected`, `draft_sync`, `disconnected`, unknown types...),
    /// as its JSON text.
    Message {
        /// The wire `type`.
        kind: String,
        /// The whole frame as JSON.
        frame_json: String,
    },
    /// A durable message was acked by the server.
    Acked {
        /// Its id (as returned by `send`).
        id: String,
    },
    /// A durable message will not be delivered.
    SendFailed {
        /// Its id.
        id: String,
        /// Why.
        reason: String,
    },
    /// A send found the outbox full.
    QueueFull,
    /// The server refused the token; the token provider is being asked.
    TokenNeeded,
    /// The server confirmed a subscription.
    SubscriptionActive {
        /// The channel (`pitch:42`, ...).
        channel: String,
    },
    /// The server refused a subscription; it is not asked for again.
    SubscriptionFailed {
        /// The channel.
        channel: String,
        /// The server's code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Messages may have been missed (no resume possible): refetch what the UI shows.
    ContinuityLost,
    /// A draft save was acked.
    DraftSaved {
        /// The draft.
        draft_id: String,
        /// Its new version.
        version: Option<u64>,
    },
    /// The draft's content changed from elsewhere (another session, a merge, a
    /// resolution): show `content_json`.
    DraftUpdated {
        /// The draft.
        draft_id: String,
        /// The content now held, as JSON.
        content_json: String,
        /// The server version it is based on.
        version: Option<u64>,
    },
    /// A conflict the strategy could not settle: call `resolve_with_local`,
    /// `resolve_with_remote` or `resolve_with_content`.
    DraftConflict {
        /// The draft.
        draft_id: String,
        /// The content both sides started from (JSON).
        base_json: String,
        /// The local content (JSON).
        local_json: String,
        /// The server's content (JSON).
        remote_json: String,
        /// The server's version.
        remote_version: Option<u64>,
    },
    /// A draft save failed for good; the draft stays dirty and is retried.
    DraftSaveFailed {
        /// The draft.
        draft_id: String,
        /// Why.
        reason: String,
    },
    /// The listener fell behind and `missed` events were skipped.
    Lagged {
        /// How many.
        missed: u64,
    },
    /// An event this version does not name.
    Other {
        /// Its description.
        description: String,
    },
}

/// The event for a server frame.
pub(crate) fn frame_event(frame: &ServerFrame) -> ClientEvent {
    match &frame.message {
        ServerMessage::Notification(n) => ClientEvent::NotificationReceived {
            notification: n.into(),
        },
        ServerMessage::DashboardUpdate(d) => ClientEvent::DashboardUpdated {
            metrics: (&d.metrics).into(),
        },
        ServerMessage::PitchStatsUpdate(s) => ClientEvent::PitchStatsUpdated { stats: s.into() },
        ServerMessage::PresenceUpdate(p) => ClientEvent::PresenceChanged {
            presence: Presence {
                user_id: p.user_id,
                status: p.status.into(),
                last_seen: p.last_seen.clone(),
            },
        },
        ServerMessage::UserTyping(t) => ClientEvent::TypingChanged {
            typing: UserTyping {
                conversation_id: t.conversation_id,
                user_id: t.user_id,
                username: t.username.clone(),
                is_typing: t.is_typing,
            },
        },
        ServerMessage::UploadProgress(u) => ClientEvent::UploadProgressed { progress: u.into() },
        other => ClientEvent::Message {
            kind: protocol::Message::kind(other).to_owned(),
            frame_json: frame.encode(),
        },
    }
}

impl From<&Event> for ClientEvent {
    fn from(e: &Event) -> Self {
        match e {
            Event::StateChanged(s) => ClientEvent::StateChanged { state: s.into() },
            Event::Message(frame) => frame_event(frame),
            Event::Acked(id) => ClientEvent::Acked { id: id.to_string() },
            Event::SendFailed(id, why) => ClientEvent::SendFailed {
                id: id.to_string(),
                reason: why.to_string(),
            },
            Event::QueueFull => ClientEvent::QueueFull,
            Event::TokenNeeded => ClientEvent::TokenNeeded,
            Event::SubscriptionActive { channel } => ClientEvent::SubscriptionActive {
                channel: channel.to_string(),
            },
            Event::SubscriptionFailed {
                channel,
                code,
                message,
            } => ClientEvent::SubscriptionFailed {
                channel: channel.to_string(),
                code: code.as_str().to_owned(),
                message: message.clone(),
            },
            Event::ContinuityLost => ClientEvent::ContinuityLost,
            Event::DraftSaved { draft_id, version } => ClientEvent::DraftSaved {
                draft_id: draft_id.clone(),
                version: *version,
            },
            Event::DraftUpdated {
                draft_id,
                content,
                version,
            } => ClientEvent::DraftUpdated {
                draft_id: draft_id.clone(),
                content_json: json_text(content),
                version: *version,
            },
            Event::DraftConflict {
                draft_id,
                base,
                local,
                remote,
                remote_version,
            } => ClientEvent::DraftConflict {
                draft_id: draft_id.clone(),
                base_json: json_text(base),
                local_json: json_text(local),
                remote_json: json_text(remote),
                remote_version: *remote_version,
            },
            Event::DraftSaveFailed { draft_id, reason } => ClientEvent::DraftSaveFailed {
                draft_id: draft_id.clone(),
                reason: reason.to_string(),
            },
            other => ClientEvent::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// Queue depth, round-trip time, reconnects and more.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClientMetrics {
    /// Messages in the outbox.
    pub queue_depth: u64,
    /// Durable messages written and awaiting their ack.
    pub in_flight: u64,
    /// Tokens left in the client's mirror of the server's rate limit.
    pub tokens_left: u32,
    /// Latest heartbeat round trip, ms.
    pub rtt_ms: Option<u64>,
    /// Smoothed round trip, ms.
    pub srtt_ms: Option<u64>,
    /// Connections established after the first.
    pub reconnects: u64,
    /// Connection attempts in total.
    pub connect_attempts: u64,
    /// Why the last connection ended.
    pub last_disconnect: Option<String>,
    /// Frames written.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frames dropped as duplicates.
    pub duplicates_dropped: u64,
}

impl From<core::Metrics> for ClientMetrics {
    fn from(m: core::Metrics) -> Self {
        ClientMetrics {
            queue_depth: to_u64(m.queue_depth),
            in_flight: to_u64(m.in_flight),
            tokens_left: m.tokens_left,
            rtt_ms: m.rtt.map(ms),
            srtt_ms: m.srtt.map(ms),
            reconnects: m.reconnects,
            connect_attempts: m.connect_attempts,
            last_disconnect: m.last_disconnect,
            frames_sent: m.frames_sent,
            frames_received: m.frames_received,
            duplicates_dropped: m.duplicates_dropped,
        }
    }
}

/// How a draft settles a conflict with a newer server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ConflictStrategy {
    /// Keep the local content.
    Local,
    /// Adopt the server's.
    Remote,
    /// Three-way merge of JSON objects; same-field clashes fall back to `Ask`.
    Merge,
    /// Emit `DraftConflict` and wait for a `resolve_*` call.
    Ask,
}

impl From<ConflictStrategy> for core::ConflictStrategy {
    fn from(s: ConflictStrategy) -> Self {
        match s {
            ConflictStrategy::Local => core::ConflictStrategy::Local,
            ConflictStrategy::Remote => core::ConflictStrategy::Remote,
            ConflictStrategy::Merge => core::ConflictStrategy::Merge,
            ConflictStrategy::Ask => core::ConflictStrategy::Ask,
        }
    }
}

/// Options of [`Client::open_draft`](crate::Client::open_draft).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DraftOptions {
    /// Draft kind, e.g. `pitch`.
    pub draft_type: Option<String>,
    /// The content loaded from the server, as JSON (`null` for none).
    pub initial_json: String,
    /// The version of that content, if known.
    pub base_version: Option<u64>,
    /// Auto-save this long after an edit, ms (default 5000).
    pub auto_save_interval_ms: u64,
    /// Conflict strategy (default `Ask`).
    pub strategy: ConflictStrategy,
}

/// Default [`DraftOptions`]: no type, `null` content, 5 s auto-save, strategy `Ask`.
#[uniffi::export]
pub fn default_draft_options() -> DraftOptions {
    let d = core::DraftOptions::default();
    DraftOptions {
        draft_type: None,
        initial_json: "null".into(),
        base_version: None,
        auto_save_interval_ms: ms(d.auto_save_interval),
        strategy: ConflictStrategy::Ask,
    }
}

/// A draft conflict waiting for a `resolve_*` call.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DraftConflictInfo {
    /// The common base (JSON).
    pub base_json: String,
    /// The local content (JSON).
    pub local_json: String,
    /// The server's content (JSON).
    pub remote_json: String,
    /// The server's version.
    pub remote_version: Option<u64>,
}

/// What the client knows about an open draft.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DraftState {
    /// The draft.
    pub draft_id: String,
    /// The current local content (JSON).
    pub content_json: String,
    /// The server version it is based on.
    pub base_version: Option<u64>,
    /// Local edits not yet saved.
    pub dirty: bool,
    /// A save is queued or in flight.
    pub saving: bool,
    /// A conflict waiting for the app.
    pub conflict: Option<DraftConflictInfo>,
}

impl From<core::DraftState> for DraftState {
    fn from(s: core::DraftState) -> Self {
        DraftState {
            draft_id: s.draft_id,
            content_json: json_text(&s.content),
            base_version: s.base_version,
            dirty: s.dirty,
            saving: s.saving,
            conflict: s.conflict.map(|c| DraftConflictInfo {
                base_json: json_text(&c.base),
                local_json: json_text(&c.local),
                remote_json: json_text(&c.remote),
                remote_version: c.remote_version,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_round_trip_into_the_core_config() {
        let mut c = core::Config::new("ws://x/ws");
        let before = format!("{c:?}");
        default_client_options().apply(&mut c);
        assert_eq!(format!("{c:?}"), before);
    }

    #[test]
    fn unknown_frames_cross_as_json() {
        let frame = ServerFrame::decode(r#"{"type":"weird","data":{"a":1},"seq":4}"#).unwrap();
        match frame_event(&frame) {
            ClientEvent::Message { kind, frame_json } => {
                assert_eq!(kind, "weird");
                let v: Value = serde_json::from_str(&frame_json).unwrap();
                assert_eq!(v["data"]["a"], 1);
                assert_eq!(v["seq"], 4);
            }
            other => panic!("{other:?}"),
        }
    }
}
