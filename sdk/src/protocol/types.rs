//! The `data` payloads of each message type. Field names are camelCase on the wire.
//! Unknown fields are ignored on decode; optional fields are left out on encode.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Channel, ErrorCode};

/// An optional protocol addition, announced by the server in `connected.data.features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `ack` frames for every client message with an `id`.
    Ack,
    /// Per-user `seq` on durable server-to-client messages.
    Seq,
    /// `resume` after a reconnect.
    Resume,
    /// `subscribe` / `unsubscribe`.
    Subscribe,
    /// `draft_conflict` and versioned drafts.
    DraftConflict,
}

impl Feature {
    /// Every feature, in wire order.
    pub const ALL: [Feature; 5] = [
        Feature::Ack,
        Feature::Seq,
        Feature::Resume,
        Feature::Subscribe,
        Feature::DraftConflict,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Ack => "ack",
            Feature::Seq => "seq",
            Feature::Resume => "resume",
            Feature::Subscribe => "subscribe",
            Feature::DraftConflict => "draft_conflict",
        }
    }
}

/// The server's rate limit, announced on `connected` (seed defaults 120 / 60 s / 2 per s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Bucket capacity: messages allowed in a burst.
    pub max_messages: u32,
    /// The window the seed measures the limit over, in milliseconds.
    pub window_ms: u64,
    /// Tokens added back per second.
    pub refill_rate: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            max_messages: 120,
            window_ms: 60_000,
            refill_rate: 2.0,
        }
    }
}

/// `connected`: the server's first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    /// This connection's session id (empty when the server sends none; the seed's may not).
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
    /// The authenticated user, when the server says (a number, or a string of digits).
    #[serde(
        default,
        deserialize_with = "lenient::id",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<u64>,
    /// Protocol name (`pitchey-v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// How often the client should ping, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    /// The server's rate limit (addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Optional additions this server supports; empty for a seed server.
    #[serde(default)]
    pub features: Vec<String>,
    /// True when the server honoured a `resume` for this session (addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
    /// The user's `seq` just before the first frame this connection delivers (addition):
    /// a client that has received no `seq` yet takes it as its baseline, so that it can
    /// `resume` after a reconnect even if nothing numbered arrived in between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

impl Connected {
    /// Whether the server announced `feature`.
    pub fn supports(&self, feature: Feature) -> bool {
        self.features.iter().any(|f| f == feature.as_str())
    }
}

/// `ping` / `pong` data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Sender's timestamp in milliseconds, echoed back in the `pong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
}

/// `ack` data (addition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The client-made id of the acknowledged message.
    pub id: String,
    /// For a `draft_sync`, the draft's new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// `error` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// With `rate_limited`: how long to wait before sending again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The id of the client message this error is about, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `notification` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Notification id.
    pub id: String,
    /// `follow`, `pitch_view`, `message`, `system`, `upload`, or another kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub message: String,
    /// Kind-specific payload.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// ISO-8601 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Whether the user has read it.
    #[serde(default)]
    pub read: bool,
}

/// The notification a caller of `POST /api/ws/notify` provides (the server adds id and time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    /// Notification kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub message: String,
    /// Kind-specific payload.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// `dashboard_update` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardUpdate {
    /// The metrics.
    pub metrics: DashboardMetrics,
}

/// Creator dashboard metrics. Unknown metrics are kept in `other`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardMetrics {
    /// Views across all pitches.
    #[serde(default)]
    pub total_views: u64,
    /// Followers.
    #[serde(default)]
    pub followers: u64,
    /// Pitches published.
    #[serde(default)]
    pub pitches: u64,
    /// Investors who expressed interest.
    #[serde(default)]
    pub investor_interest: u64,
    /// Metrics this version does not name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `pitch_view` data (client reports a view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PitchView {
    /// The pitch viewed.
    pub pitch_id: u64,
}

/// `pitch_stats_update` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PitchStats {
    /// The pitch.
    pub pitch_id: u64,
    /// Total views.
    pub view_count: u64,
    /// Distinct viewers.
    #[serde(default)]
    pub unique_viewers: u64,
    /// The latest viewers, newest first.
    #[serde(default)]
    pub recent_viewers: Vec<RecentViewer>,
}

/// One entry of [`PitchStats::recent_viewers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentViewer {
    /// The viewer.
    pub user_id: u64,
    /// Their username, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// ISO-8601 time of the view.
    pub viewed_at: String,
}

/// A user's presence status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Connected and active.
    Online,
    /// Connected but idle.
    Away,
    /// Not connected.
    Offline,
}

/// `presence_update` from the client: set one's own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPresence {
    /// The new status.
    pub status: PresenceStatus,
}

/// `presence_update` from the server, and the body of `GET /api/ws/presence/{userId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// Whose presence.
    pub user_id: u64,
    /// Their status.
    pub status: PresenceStatus,
    /// ISO-8601 time they were last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// `typing` from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    /// The conversation.
    pub conversation_id: u64,
    /// Started (true) or stopped (false) typing.
    pub is_typing: bool,
}

/// `user_typing` from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserTyping {
    /// The conversation.
    pub conversation_id: u64,
    /// Who is typing.
    pub user_id: u64,
    /// Their username, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Started (true) or stopped (false) typing.
    pub is_typing: bool,
}

/// Upload status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// `upload_progress` data, and the body of `POST /api/ws/upload-progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadProgress {
    /// Upload id.
    pub upload_id: String,
    /// File name.
    pub file_name: String,
    /// Percent done, 0 to 100.
    pub progress: f64,
    /// Bytes sent so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_uploaded: Option<u64>,
    /// File size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// Status.
    pub status: UploadStatus,
}

/// `draft_sync` from the client: save a draft on top of `base_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftSave {
    /// Draft id, e.g. `pitch_42`.
    pub draft_id: String,
    /// Draft kind, e.g. `pitch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_type: Option<String>,
    /// The content (any JSON).
    pub content: Value,
    /// The version this content was edited from; absent from seed clients (last write wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u64>,
}

/// `draft_sync` from the server: a draft saved by another session of the same user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftSynced {
    /// Draft id.
    pub draft_id: String,
    /// Draft kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_type: Option<String>,
    /// The saved content.
    pub content: Value,
    /// Its version (addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// ISO-8601 save time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The session that saved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// `draft_conflict` data (addition): the save was made on a stale base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftConflict {
    /// Draft id.
    pub draft_id: String,
    /// The base version the client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u64>,
    /// The server's current version.
    pub server_version: u64,
    /// The server's current content.
    pub server_content: Value,
}

/// `subscribe` / `unsubscribe` data (addition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    /// The channel.
    pub channel: Channel,
}

/// `resume` data (addition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    /// The last `seq` the client received.
    pub last_seq: u64,
}

/// `disconnected` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    /// Why the server is closing.
    #[serde(default)]
    pub reason: String,
}

/// Decoders for fields that servers other than ours send in other shapes: a client must not
/// refuse a seed server's `connected` because an id is a string.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A string, or a number or `null` taken as its text (`""` for `null`).
    pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Null => String::new(),
            // Its JSON text, as before; through the SDK's codec (no `serde_json` writer
            // in the browser).
            other => crate::protocol::json::to_string(&other).unwrap_or_default(),
        })
    }

    /// A number or a string of digits; anything else (a UUID, `null`) is no id.
    pub(super) fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim_ascii().parse().ok(),
            _ => None,
        })
    }
}
