//! Who is online, away or offline, since when, and who follows whom.

use std::collections::{BTreeSet, HashMap};

use pitchey_realtime::protocol::{Presence, PresenceStatus};

use crate::time::iso_from_unix;

/// Presence statuses and the follow graph.
#[derive(Debug, Default)]
pub struct PresenceBook {
    status: HashMap<u64, (PresenceStatus, u64)>,
    /// followee -> followers
    followers: HashMap<u64, BTreeSet<u64>>,
    /// follower -> followees
    following: HashMap<u64, BTreeSet<u64>>,
}

impl PresenceBook {
    /// Set `user`'s status at Unix time `now`; returns the presence to announce, or `None`
    /// when nothing changed.
    pub fn set(&mut self, user: u64, status: PresenceStatus, now: u64) -> Option<Presence> {
        let previous = self.status.insert(user, (status, now));
        let changed = previous.is_none_or(|(s, _)| s != status);
        changed.then(|| self.get(user))
    }

    /// `user`'s presence; a user never seen is offline with no `lastSeen`.
    pub fn get(&self, user: u64) -> Presence {
        match self.status.get(&user) {
            Some((status, seen)) => Presence {
                user_id: user,
                status: *status,
                last_seen: Some(iso_from_unix(*seen)),
            },
            None => Presence {
                user_id: user,
                status: PresenceStatus::Offline,
                last_seen: None,
            },
        }
    }

    /// Whether `user` is online or away.
    pub fn is_connected(&self, user: u64) -> bool {
        self.status
            .get(&user)
            .is_some_and(|(s, _)| *s != PresenceStatus::Offline)
    }

    /// `follower` follows `followee`; false when it already did.
    pub fn follow(&mut self, follower: u64, followee: u64) -> bool {
        self.following.entry(follower).or_default().insert(followee);
        self.followers.entry(followee).or_default().insert(follower)
    }

    /// Every (follower, followee) pair.
    pub fn follows(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.following
            .iter()
            .flat_map(|(f, set)| set.iter().map(move |e| (*f, *e)))
    }

    /// Who follows `user`.
    pub fn followers_of(&self, user: u64) -> impl Iterator<Item = u64> + '_ {
        self.followers.get(&user).into_iter().flatten().copied()
    }

    /// How many follow `user`.
    pub fn follower_count(&self, user: u64) -> u64 {
        self.followers.get(&user).map_or(0, |s| s.len() as u64)
    }

    /// The users `user` follows that are online or away.
    pub fn following_online(&self, user: u64) -> Vec<Presence> {
        self.following
            .get(&user)
            .into_iter()
            .flatten()
            .filter(|u| self.is_connected(**u))
            .map(|u| self.get(*u))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_changes_and_following_online() {
        let mut b = PresenceBook::default();
        assert_eq!(b.get(3).status, PresenceStatus::Offline);
        assert!(b.set(3, PresenceStatus::Online, 10).is_some());
        assert!(b.set(3, PresenceStatus::Online, 11).is_none());
        assert!(b.follow(7, 3));
        assert!(!b.follow(7, 3));
        b.follow(7, 4);
        let online = b.following_online(7);
        assert_eq!(online.len(), 1);
        assert_eq!(online[0].user_id, 3);
        assert_eq!(b.followers_of(3).collect::<Vec<_>>(), vec![7]);
    }
}
