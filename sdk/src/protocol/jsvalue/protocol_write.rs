//! [`ToTree`] for every protocol payload, frame and the snapshot: what the browser encodes
//! with. Field names, order and the optional fields left out as the types'
//! `#[serde(...)]` attributes say; the host tests compare each with `serde_json::to_value`.

use super::Sink;
use super::write::{ObjWriter, ToTree};
use crate::core::{SavedMessage, Snapshot};
use crate::protocol::types::*;
use crate::protocol::{Channel, Data, ErrorCode, Frame, Message};

/// A struct's writer: `field` always, `opt` left out when `None`, `value` left out when
/// `null` (`skip_serializing_if = "Value::is_null"`).
macro_rules! to_tree_struct {
    ($ty:ty { $($how:ident $wire:literal => $field:ident),* $(,)? }) => {
        impl ToTree for $ty {
            fn to_tree<K: Sink>(&self) -> K::Node {
                let mut o = ObjWriter::<K>::default();
                $(to_tree_struct!(@$how o $wire self.$field);)*
                o.end()
            }
        }
    };
    (@field $o:ident $wire:literal $v:expr) => { $o.field($wire, &$v); };
    (@opt $o:ident $wire:literal $v:expr) => { $o.opt($wire, &$v); };
    (@value $o:ident $wire:literal $v:expr) => {
        if !$v.is_null() {
            $o.field($wire, &$v);
        }
    };
}

to_tree_struct!(RateLimit {
    field "maxMessages" => max_messages,
    field "windowMs" => window_ms,
    field "refillRate" => refill_rate,
});
to_tree_struct!(Connected {
    field "sessionId" => session_id,
    opt "userId" => user_id,
    opt "protocol" => protocol,
    opt "heartbeatMs" => heartbeat_ms,
    opt "rateLimit" => rate_limit,
    field "features" => features,
    opt "resumed" => resumed,
    opt "lastSeq" => last_seq,
});
to_tree_struct!(Heartbeat { opt "ts" => ts });
to_tree_struct!(Ack { field "id" => id, opt "version" => version });
to_tree_struct!(ErrorData {
    field "code" => code,
    field "message" => message,
    opt "retryAfterMs" => retry_after_ms,
    opt "id" => id,
});
to_tree_struct!(Notification {
    field "id" => id,
    field "type" => kind,
    field "title" => title,
    field "message" => message,
    value "data" => data,
    opt "createdAt" => created_at,
    field "read" => read,
});
to_tree_struct!(DashboardUpdate { field "metrics" => metrics });
to_tree_struct!(PitchView { field "pitchId" => pitch_id });
to_tree_struct!(PitchStats {
    field "pitchId" => pitch_id,
    field "viewCount" => view_count,
    field "uniqueViewers" => unique_viewers,
    field "recentViewers" => recent_viewers,
});
to_tree_struct!(RecentViewer {
    field "userId" => user_id,
    opt "username" => username,
    field "viewedAt" => viewed_at,
});
to_tree_struct!(SetPresence { field "status" => status });
to_tree_struct!(Presence {
    field "userId" => user_id,
    field "status" => status,
    opt "lastSeen" => last_seen,
});
to_tree_struct!(Typing {
    field "conversationId" => conversation_id,
    field "isTyping" => is_typing,
});
to_tree_struct!(UserTyping {
    field "conversationId" => conversation_id,
    field "userId" => user_id,
    opt "username" => username,
    field "isTyping" => is_typing,
});
to_tree_struct!(UploadProgress {
    field "uploadId" => upload_id,
    field "fileName" => file_name,
    field "progress" => progress,
    opt "bytesUploaded" => bytes_uploaded,
    opt "totalBytes" => total_bytes,
    field "status" => status,
});
to_tree_struct!(DraftSave {
    field "draftId" => draft_id,
    opt "draftType" => draft_type,
    field "content" => content,
    opt "baseVersion" => base_version,
});
to_tree_struct!(DraftSynced {
    field "draftId" => draft_id,
    opt "draftType" => draft_type,
    field "content" => content,
    opt "version" => version,
    opt "updatedAt" => updated_at,
    opt "sessionId" => session_id,
});
to_tree_struct!(DraftConflict {
    field "draftId" => draft_id,
    opt "baseVersion" => base_version,
    field "serverVersion" => server_version,
    field "serverContent" => server_content,
});
to_tree_struct!(ChannelRef { field "channel" => channel });
to_tree_struct!(Resume { field "lastSeq" => last_seq });
to_tree_struct!(Disconnected { field "reason" => reason });
to_tree_struct!(Snapshot {
    field "format" => format,
    field "messages" => messages,
    opt "lastSeq" => last_seq,
});
to_tree_struct!(SavedMessage {
    field "id" => id,
    field "frame" => frame,
    opt "draftId" => draft_id,
    opt "expiresAtEpochMs" => expires_at_epoch_ms,
});

impl ToTree for DashboardMetrics {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        o.field("totalViews", &self.total_views)
            .field("followers", &self.followers)
            .field("pitches", &self.pitches)
            .field("investorInterest", &self.investor_interest);
        // `#[serde(flatten)] other`.
        for (k, v) in &self.other {
            o.field(k, v);
        }
        o.end()
    }
}

impl ToTree for PresenceStatus {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        })
    }
}

impl ToTree for UploadStatus {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(match self {
            UploadStatus::Uploading => "uploading",
            UploadStatus::Completed => "completed",
            UploadStatus::Failed => "failed",
            UploadStatus::Cancelled => "cancelled",
        })
    }
}

impl ToTree for ErrorCode {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(self.as_str())
    }
}

impl ToTree for Channel {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(&String::from(self.clone()))
    }
}

impl<M: Message> ToTree for Data<'_, M> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        self.0.data_to_tree::<K>()
    }
}

impl<M: Message> ToTree for Frame<M> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        // As `Frame`'s `Serialize`: type, data, then id and seq when set.
        let mut o = ObjWriter::<K>::default();
        o.field("type", self.message.kind());
        o.node("data", self.message.data_to_tree::<K>());
        o.opt("id", &self.id).opt("seq", &self.seq);
        o.end()
    }
}
