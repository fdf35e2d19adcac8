use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A subscription channel (`subscribe` addition).
///
/// A user's own `notifications`, `dashboard`, `uploads` and drafts are delivered without
/// subscribing, as in the seed; subscribing to them is accepted and harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Channel {
    /// `notifications`: the user's own notifications.
    Notifications,
    /// `dashboard`: the user's own dashboard metrics.
    Dashboard,
    /// `uploads`: the user's own upload progress.
    Uploads,
    /// `pitch:{id}`: live stats of one pitch.
    Pitch(u64),
    /// `presence:{userId}`: presence changes of one user.
    Presence(u64),
    /// `conversation:{id}`: typing indicators in one conversation.
    Conversation(u64),
    /// `draft:{id}`: one of the user's drafts.
    Draft(String),
}

/// A channel name that is not one of [`Channel`]'s forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ChannelParseError(pub String);

impl ChannelParseError {
    /// What is wrong, in words (what `Display` writes, without `core::fmt`).
    pub fn message(&self) -> String {
        [
            "unknown channel `",
            &self.0,
            "` (expected notifications, dashboard, uploads, pitch:N, presence:N, conversation:N or draft:ID)",
        ]
        .concat()
    }
}

impl FromStr for Channel {
    type Err = ChannelParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ChannelParseError(s.to_owned());
        let num = |v: &str| v.parse::<u64>().map_err(|_| err());
        // The first `:` by a byte scan, not `split_once(':')`, whose `memchr` would be in
        // the browser package for this one search.
        let split = s
            .bytes()
            .position(|b| b == b':')
            .and_then(|i| s.split_at_checked(i))
            .map(|(kind, rest)| (kind, rest.get(1..).unwrap_or_default()));
        match split {
            None => match s {
                "notifications" => Ok(Channel::Notifications),
                "dashboard" => Ok(Channel::Dashboard),
                "uploads" => Ok(Channel::Uploads),
                _ => Err(err()),
            },
            Some(("pitch", v)) => num(v).map(Channel::Pitch),
            Some(("presence", v)) => num(v).map(Channel::Presence),
            Some(("conversation", v)) => num(v).map(Channel::Conversation),
            Some(("draft", v)) if !v.is_empty() => Ok(Channel::Draft(v.to_owned())),
            Some(_) => Err(err()),
        }
    }
}

impl Channel {
    /// The channel's wire name, e.g. `pitch:42` (what `Display` writes, without
    /// `core::fmt`).
    pub fn name(&self) -> String {
        let (prefix, id) = match self {
            Channel::Notifications => return String::from("notifications"),
            Channel::Dashboard => return String::from("dashboard"),
            Channel::Uploads => return String::from("uploads"),
            Channel::Pitch(id) => ("pitch:", crate::core::text::decimal(*id)),
            Channel::Presence(id) => ("presence:", crate::core::text::decimal(*id)),
            Channel::Conversation(id) => ("conversation:", crate::core::text::decimal(*id)),
            Channel::Draft(id) => ("draft:", id.clone()),
        };
        [prefix, &id].concat()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl TryFrom<String> for Channel {
    type Error = ChannelParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Channel> for String {
    fn from(c: Channel) -> Self {
        c.name()
    }
}
