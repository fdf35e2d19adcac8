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
