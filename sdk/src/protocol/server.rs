use super::Channel;
use super::frame::message_enum;
use super::types::*;

message_enum! {
    /// A message from the server to a client.
    pub enum ServerMessage {
        /// `connected`: the first frame of every connection.
        Connected(Connected) = "connected",
        /// `ping`: server heartbeat; answer with `pong`.
        Ping(Heartbeat) = "ping",
        /// `pong`: answer to a client `ping`.
        Pong(Heartbeat) = "pong",
        /// `ack` (addition): a client message with an `id` was applied.
        Ack(Ack) = "ack",
        /// `error`.
        Error(ErrorData) = "error",
        /// `notification`.
        Notification(Notification) = "notification",
        /// `dashboard_update`.
        DashboardUpdate(DashboardUpdate) = "dashboard_update",
        /// `pitch_stats_update`.
        PitchStatsUpdate(PitchStats) = "pitch_stats_update",
        /// `presence_update`: another user's status changed.
        PresenceUpdate(Presence) = "presence_update",
        /// `user_typing` (the frontend guide's name `typing` is accepted too).
        UserTyping(UserTyping) = "user_typing" | "typing",
        /// `draft_sync`: a draft saved by another session of this user.
        DraftSync(DraftSynced) = "draft_sync",
        /// `draft_conflict` (addition): a save was made on a stale base version.
        DraftConflict(DraftConflict) = "draft_conflict",
        /// `upload_progress`.
        UploadProgress(UploadProgress) = "upload_progress",
        /// `disconnected`: the server is closing this connection.
        Disconnected(Disconnected) = "disconnected",
    }
}

impl ServerMessage {
    /// The channel this message belongs to, so that a client can route it to the
    /// subscriptions of that channel. `None` for connection-level frames (`connected`,
    /// `ping`, `ack`, `error`, ...) and unknown types.
    pub fn channel(&self) -> Option<Channel> {
        match self {
            ServerMessage::Notification(_) => Some(Channel::Notifications),
            ServerMessage::DashboardUpdate(_) => Some(Channel::Dashboard),
            ServerMessage::UploadProgress(_) => Some(Channel::Uploads),
            ServerMessage::PitchStatsUpdate(s) => Some(Channel::Pitch(s.pitch_id)),
            ServerMessage::PresenceUpdate(p) => Some(Channel::Presence(p.user_id)),
            ServerMessage::UserTyping(t) => Some(Channel::Conversation(t.conversation_id)),
            ServerMessage::DraftSync(d) => Some(Channel::Draft(d.draft_id.clone())),
            ServerMessage::DraftConflict(d) => Some(Channel::Draft(d.draft_id.clone())),
            _ => None,
        }
    }
}
