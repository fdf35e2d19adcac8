//! The subscribed channels, and the control frames (`subscribe`, `unsubscribe`, `resume`,
//! `pong`) waiting to be written on the current connection.

use std::collections::{BTreeSet, VecDeque};

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
    channels: BTreeSet<Channel>,
    /// Control frames for the current connection, oldest first.
    pub(crate) pending: VecDeque<Control>,
}

impl Subscriptions {
    pub(crate) fn channels(&self) -> impl Iterator<Item = &Channel> + '_ {
        self.channels.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }

    /// Record `channel`; true if it is new. With `live`, also queue the frame (or cancel a
    /// pending unsubscribe of it, which the server has not seen yet).
    pub(crate) fn add(&mut self, channel: Channel, live: bool) -> bool {
        if !self.channels.insert(channel.clone()) {
            return false;
        }
        if live {
            let cancel = Control::Unsubscribe(channel.clone());
            if let Some(i) = self.pending.iter().position(|c| *c == cancel) {
                self.pending.remove(i);
            } else {
                self.pending.push_back(Control::Subscribe(channel));
            }
        }
        true
    }

    /// Forget `channel`; with `live`, tell the server (or cancel a pending subscribe).
    pub(crate) fn remove(&mut self, channel: &Channel, live: bool) -> bool {
        if !self.channels.remove(channel) {
            return false;
        }
        if live {
            let cancel = Control::Subscribe(channel.clone());
            if let Some(i) = self.pending.iter().position(|c| *c == cancel) {
                self.pending.remove(i);
            } else {
                self.pending
                    .push_back(Control::Unsubscribe(channel.clone()));
            }
        }
        true
    }

    /// A new connection: drop what was pending for the old one, then queue `resume`
    /// (if any) and every subscription (if the server supports them).
    pub(crate) fn on_connected(&mut self, resume: Option<u64>, subscribe: bool) {
        self.pending.clear();
        if let Some(last_seq) = resume {
            self.pending.push_back(Control::Resume(last_seq));
        }
        if subscribe {
            for c in &self.channels {
                self.pending.push_back(Control::Subscribe(c.clone()));
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
    fn pending_opposites_cancel() {
        let mut s = Subscriptions::default();
        assert!(s.add(Channel::Pitch(1), true));
        assert!(!s.add(Channel::Pitch(1), true));
        assert!(s.remove(&Channel::Pitch(1), true));
        assert!(s.pending.is_empty());
        assert_eq!(s.len(), 0);
    }
}
