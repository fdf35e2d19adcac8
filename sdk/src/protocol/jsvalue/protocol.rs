//! [`FromTree`] for every protocol payload and the snapshot: what the browser decodes with.
//! Field names and defaults as the types' `#[serde(...)]` attributes say (`protocol/types.rs`,
//! `core/snapshot.rs`); the host tests compare both readers on every test vector.

use serde_json::Value;

use super::read::{Field, FromTree, invalid_type, read_into, read_struct, variant};
use super::{Error, Node, Source};
use crate::core::{SavedMessage, Snapshot};
use crate::from_tree_struct;
use crate::protocol::types::*;
use crate::protocol::{Channel, ErrorCode};

from_tree_struct!(RateLimit "struct RateLimit" {
    max_messages: "maxMessages" required,
    window_ms: "windowMs" required,
    refill_rate: "refillRate" required,
});
from_tree_struct!(Heartbeat "struct Heartbeat" { ts: "ts" default });
from_tree_struct!(Ack "struct Ack" { id: "id" required, version: "version" default });
from_tree_struct!(ErrorData "struct ErrorData" {
    code: "code" required,
    message: "message" default,
    retry_after_ms: "retryAfterMs" default,
    id: "id" default,
});
from_tree_struct!(Notification "struct Notification" {
    id: "id" required,
    kind: "type" required,
    title: "title" required,
    message: "message" default,
    data: "data" default,
    created_at: "createdAt" default,
    read: "read" default,
});
from_tree_struct!(DashboardUpdate "struct DashboardUpdate" { metrics: "metrics" required });
from_tree_struct!(PitchView "struct PitchView" { pitch_id: "pitchId" required });
from_tree_struct!(PitchStats "struct PitchStats" {
    pitch_id: "pitchId" required,
    view_count: "viewCount" required,
    unique_viewers: "uniqueViewers" default,
    recent_viewers: "recentViewers" default,
});
from_tree_struct!(RecentViewer "struct RecentViewer" {
    user_id: "userId" required,
    username: "username" default,
    viewed_at: "viewedAt" required,
});
from_tree_struct!(SetPresence "struct SetPresence" { status: "status" required });
from_tree_struct!(Presence "struct Presence" {
    user_id: "userId" required,
    status: "status" required,
    last_seen: "lastSeen" default,
});
from_tree_struct!(Typing "struct Typing" {
    conversation_id: "conversationId" required,
    is_typing: "isTyping" required,
});
from_tree_struct!(UserTyping "struct UserTyping" {
    conversation_id: "conversationId" required,
    user_id: "userId" required,
    username: "username" default,
    is_typing: "isTyping" required,
});
from_tree_struct!(UploadProgress "struct UploadProgress" {
    upload_id: "uploadId" required,
    file_name: "fileName" required,
    progress: "progress" required,
    bytes_uploaded: "bytesUploaded" default,
    total_bytes: "totalBytes" default,
    status: "status" required,
});
from_tree_struct!(DraftSave "struct DraftSave" {
    draft_id: "draftId" required,
    draft_type: "draftType" default,
    content: "content" required,
    base_version: "baseVersion" default,
});
from_tree_struct!(DraftSynced "struct DraftSynced" {
    draft_id: "draftId" required,
    draft_type: "draftType" default,
    content: "content" required,
    version: "version" default,
    updated_at: "updatedAt" default,
    session_id: "sessionId" default,
});
from_tree_struct!(DraftConflict "struct DraftConflict" {
    draft_id: "draftId" required,
    base_version: "baseVersion" default,
    server_version: "serverVersion" required,
    server_content: "serverContent" required,
});
from_tree_struct!(ChannelRef "struct ChannelRef" { channel: "channel" required });
from_tree_struct!(Resume "struct Resume" { last_seq: "lastSeq" required });
from_tree_struct!(Disconnected "struct Disconnected" { reason: "reason" default });
from_tree_struct!(Snapshot "struct Snapshot" {
    format: "format" required,
    messages: "messages" required,
    last_seq: "lastSeq" default,
});
from_tree_struct!(SavedMessage "struct SavedMessage" {
    id: "id" required,
    frame: "frame" required,
    draft_id: "draftId" default,
    expires_at_epoch_ms: "expiresAtEpochMs" default,
});

from_tree_struct!(Connected "struct Connected" {
    session_id: "sessionId" via set_lenient_string,
    user_id: "userId" via set_lenient_id,
    protocol: "protocol" default,
    heartbeat_ms: "heartbeatMs" default,
    rate_limit: "rateLimit" default,
    features: "features" default,
    resumed: "resumed" default,
    last_seq: "lastSeq" default,
});

/// `sessionId` as `types::lenient::string` reads it (never an error).
fn set_lenient_string<S: Source>(place: &mut String, node: S, _: &mut Option<Error>) {
    *place = lenient_string(node.node());
}

/// `userId` as `types::lenient::id` reads it (never an error).
fn set_lenient_id<S: Source>(place: &mut Option<u64>, node: S, _: &mut Option<Error>) {
    *place = lenient_id(node.node());
}

/// `types::lenient::string`: a string, `""` for `null`, or another value's JSON text.
fn lenient_string<S: Source>(node: Node<S>) -> String {
    match node {
        Node::Str(s) => s,
        Node::Null => String::new(),
        other => Value::from_tree(other)
            .ok()
            .and_then(|v| crate::protocol::json::to_string(&v).ok())
            .unwrap_or_default(),
    }
}

/// `types::lenient::id`: a number or a string of digits; anything else is no id.
fn lenient_id<S: Source>(node: Node<S>) -> Option<u64> {
    match node {
        Node::Str(s) => s.trim_ascii().parse().ok(),
        Node::Number(_) => u64::from_tree(node).ok(),
        _ => None,
    }
}

impl FromTree for DashboardMetrics {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        const FIELDS: &[Field] = &[
            Field::optional("totalViews"),
            Field::optional("followers"),
            Field::optional("pitches"),
            Field::optional("investorInterest"),
        ];
        let mut m = DashboardMetrics::default();
        // `#[serde(flatten)] other`: the metrics this version does not name.
        read_struct(
            node,
            "struct DashboardMetrics",
            FIELDS,
            true,
            &mut |i, key, n, first| {
                let place = match i {
                    0 => &mut m.total_views,
                    1 => &mut m.followers,
                    2 => &mut m.pitches,
                    3 => &mut m.investor_interest,
                    _ => {
                        let mut v = Value::Null;
                        read_into(&mut v, n, first);
                        m.other.insert(key, v);
                        return;
                    }
                };
                read_into(place, n, first);
            },
        )?;
        Ok(m)
    }
}

impl FromTree for PresenceStatus {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        const ALL: [PresenceStatus; 3] = [
            PresenceStatus::Online,
            PresenceStatus::Away,
            PresenceStatus::Offline,
        ];
        Ok(ALL[variant(node, &["online", "away", "offline"])?])
    }
}

impl FromTree for UploadStatus {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        const ALL: [UploadStatus; 4] = [
            UploadStatus::Uploading,
            UploadStatus::Completed,
            UploadStatus::Failed,
            UploadStatus::Cancelled,
        ];
        Ok(ALL[variant(node, &["uploading", "completed", "failed", "cancelled"])?])
    }
}

impl FromTree for ErrorCode {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        String::from_tree(node).map(ErrorCode::from)
    }
}

impl FromTree for Channel {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Str(s) => s
                .parse()
                .map_err(|e: crate::protocol::ChannelParseError| Error::text(&[&e.message()])),
            other => Err(invalid_type(&other, "a string")),
        }
    }
}

// Required fields without a `Default`: what their reader holds until it returns the error
// (never seen by a caller).
impl super::read::Placeholder for ErrorCode {
    fn placeholder() -> Self {
        ErrorCode::InvalidMessage
    }
}
impl super::read::Placeholder for PresenceStatus {
    fn placeholder() -> Self {
        PresenceStatus::Offline
    }
}
impl super::read::Placeholder for UploadStatus {
    fn placeholder() -> Self {
        UploadStatus::Failed
    }
}
impl super::read::Placeholder for Channel {
    fn placeholder() -> Self {
        Channel::Notifications
    }
}
