use super::frame::message_enum;
use super::types::*;

message_enum! {
    /// A message from a client to the server.
    pub enum ClientMessage {
        /// `ping`: application heartbeat (browsers cannot send ping frames).
        Ping(Heartbeat) = "ping",
        /// `pong`: answer to a server `ping`.
        Pong(Heartbeat) = "pong",
        /// `pitch_view`: the user viewed a pitch.
        PitchView(PitchView) = "pitch_view",
        /// `presence_update`: set the user's own status.
        SetPresence(SetPresence) = "presence_update",
        /// `typing` (the seed's server name `user_typing` is accepted too).
        Typing(Typing) = "typing" | "user_typing",
        /// `draft_sync`: save a draft.
        DraftSync(DraftSave) = "draft_sync",
        /// `subscribe` (addition).
        Subscribe(ChannelRef) = "subscribe",
        /// `unsubscribe` (addition).
        Unsubscribe(ChannelRef) = "unsubscribe",
        /// `resume` (addition): send what I missed after `lastSeq`.
        Resume(Resume) = "resume",
    }
}
