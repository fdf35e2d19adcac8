//! The subscribed channels, and the control frames (`subscribe`, `unsubscribe`, `resume`,
//! `pong`) waiting to be written on the current connection.

use super::sorted_map::SortedMap;
use crate::protocol::Channel;

/// A frame the core makes itself. Written before app messages, and counted by the rate
/// limiter like everything but `ping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    Pong(Option<u64>),
    Resume(u64),
    Subscribe(Channel),
    Unsubscribe(Channel),
}

#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    /// Each channel with how many holders want it (one per app handle): several
    /// components watching one pitch share one server subscription.
    channels: SortedMap<Channel, usize>,
    /// Control frames for the current connection, oldest first. A `Vec`: a few entries
    /// (at most one per channel), and one queue type fewer in the browser package.
    pub(crate) pending: Vec<Control>,
}

impl Subscriptions {
    pub(crate) fn channels(&self) -> impl Iterator<Item = &Channel> + '_ {
        self.channels.keys()
    }

    /// Whether `channel` is subscribed.
    pub(crate) fn contains(&self, channel: &Channel) -> bool {
        self.channels.contains_key(channel)
    }

    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }

    /// Count one more holder of `channel`; true if it is new. With `live`, a new channel's
    /// frame is queued (or a pending unsubscribe of it, not yet seen by the server, cancelled).
    pub(crate) fn add(&mut self, channel: Channel, live: bool) -> bool {
        let holders = self.channels.get_or_insert_with(channel.clone(), || 0);
        *holders += 1;
        if *holders > 1 {
            return false;
        }
        if live {
            let cancel = Control::Unsubscribe(channel.clone());
            if let Some(i) = self.pending.iter().position(|c| *c == cancel) {
                self.pending.remove(i);
            } else {
                self.pending.push(Control::Subscribe(channel));
            }
        }
        true
    }

    /// One holder of `channel` fewer; the last one forgets it and, with `live`, tells the
    /// server (or cancels a pending subscribe). True if the channel is gone.
    pub(crate) fn remove(&mut self, channel: &Channel, live: bool) -> bool {
        match self.channels.get_mut(channel) {
            None => return false,
            Some(holders) if *holders > 1 => {
                *holders -= 1;
                return false;
            }
            Some(_) => {
                self.channels.remove(channel);
            }
        }
        if live {
            let cancel = Control::Subscribe(channel.clone());
            if let Some(i) = self.pending.iter().position(|c| *c == cancel) {
                self.pending.remove(i);
            } else {
                self.pending.push(Control::Unsubscribe(channel.clone()));
            }
        }
        true
    }

    /// Forget `channel` whatever its holders (the server refused it), with anything pending
    /// for it. `retried` is how many pending frames at the front are retries (refused by a
    /// rate limit, written again first); returns how many are left of them, so that the
    /// next retry goes right behind them and not behind a newer frame.
    pub(crate) fn forget(&mut self, channel: &Channel, retried: usize) -> usize {
        self.channels.remove(channel);
        let of_channel = |c: &Control| matches!(c, Control::Subscribe(ch) | Control::Unsubscribe(ch) if ch == channel);
        let retried = retried.min(self.pending.len());
        let dropped = self.pending[..retried]
            .iter()
            .filter(|c| of_channel(c))
            .count();
        self.pending.retain(|c| !of_channel(c));
        retried - dropped
    }

    /// A new connection: drop what was pending for the old one, then queue `resume`
    /// (if any) and every subscription (if the server supports them).
    pub(crate) fn on_connected(&mut self, resume: Option<u64>, subscribe: bool) {
        self.pending.clear();
        if let Some(last_seq) = resume {
            self.pending.push(Control::Resume(last_seq));
        }
        if subscribe {
            for c in self.channels.keys() {
                self.pending.push(Control::Subscribe(c.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubscribes_everything_after_resume() {
        let mut s = Subscriptions::default();
        s.add(Channel::Pitch(42), false);
        s.add(Channel::Dashboard, false);
        assert!(s.pending.is_empty());
        s.on_connected(Some(9), true);
        assert_eq!(
            s.pending,
            vec![
                Control::Resume(9),
                Control::Subscribe(Channel::Dashboard),
                Control::Subscribe(Channel::Pitch(42)),
            ]
        );
    }

    #[test]
    fn forgetting_a_channel_keeps_the_count_of_retries_in_front() {
        let mut s = Subscriptions {
            pending: vec![
                Control::Subscribe(Channel::Pitch(1)),
                Control::Subscribe(Channel::Pitch(2)),
                Control::Unsubscribe(Channel::Pitch(3)),
            ],
            ..Subscriptions::default()
        };
        // The first two are retries; the channel of the first is refused for good.
        assert_eq!(s.forget(&Channel::Pitch(1), 2), 1);
        assert_eq!(
            s.pending,
            vec![
                Control::Subscribe(Channel::Pitch(2)),
                Control::Unsubscribe(Channel::Pitch(3)),
            ]
        );
        // A count past the queue is clamped; a channel with nothing pending drops nothing.
        assert_eq!(s.forget(&Channel::Pitch(9), 5), 2);
    }

    #[test]
    fn pending_opposites_cancel() {
        let mut s = Subscriptions::default();
        assert!(s.add(Channel::Pitch(1), true));
        assert!(s.remove(&Channel::Pitch(1), true));
        assert!(s.pending.is_empty());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn holders_are_counted_and_only_the_last_release_unsubscribes() {
        let mut s = Subscriptions::default();
        assert!(s.add(Channel::Pitch(1), true));
        assert!(!s.add(Channel::Pitch(1), true), "second holder: no frame");
        s.pending.clear(); // the subscribe went out
        assert!(!s.remove(&Channel::Pitch(1), true), "one holder left");
        assert!(s.pending.is_empty());
        assert!(s.contains(&Channel::Pitch(1)));
        assert!(s.remove(&Channel::Pitch(1), true));
        assert_eq!(s.pending, vec![Control::Unsubscribe(Channel::Pitch(1))]);
        assert!(
            !s.remove(&Channel::Pitch(1), true),
            "releasing more is a no-op"
        );
    }
}
