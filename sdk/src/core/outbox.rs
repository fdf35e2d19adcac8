//! The offline queue: durable messages in order until acked, ephemeral ones coalesced.

use crate::protocol::ClientMessage;
use std::time::Duration;

use super::{FrameText, Instant, MessageId};

/// What an ephemeral message replaces: only the latest value per key matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EphemeralKey {
    /// `typing` in one conversation.
    Typing(u64),
    /// The user's own `presence_update`.
    Presence,
}

impl EphemeralKey {
    /// The key of an ephemeral message; `None` for a durable one.
    pub(crate) fn of(msg: &ClientMessage) -> Option<Self> {
        match msg {
            ClientMessage::Typing(t) => Some(EphemeralKey::Typing(t.conversation_id)),
            ClientMessage::SetPresence(_) => Some(EphemeralKey::Presence),
            _ => None,
        }
    }
}

/// Whether [`Connection::send`](super::Connection::send) treats `msg` as durable: it gets
/// an id on the wire, stays queued until acked, and ends in `Event::Acked` or
/// `Event::SendFailed`. Ephemeral messages (`typing`, `presence_update`) get neither.
pub fn is_durable(msg: &ClientMessage) -> bool {
    EphemeralKey::of(msg).is_none()
}

/// Why an app may not send `msg` itself, for the frames only the core writes (the
/// heartbeat, subscriptions, the resume): they are never queued by a send nor restored
/// from a snapshot.
pub(crate) fn core_only(msg: &ClientMessage) -> Option<&'static str> {
    match msg {
        ClientMessage::Ping(_) | ClientMessage::Pong(_) => Some("the core runs the heartbeat"),
        ClientMessage::Subscribe(_) | ClientMessage::Unsubscribe(_) => {
            Some("use Connection::subscribe / unsubscribe")
        }
        ClientMessage::Resume(_) => Some("the core resumes after every reconnect"),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Waiting to be written on the current connection.
    Queued,
    /// Written on the current connection at this time, waiting for its ack.
    InFlight(Instant),
}

/// A durable message.
#[derive(Debug, Clone)]
pub(crate) struct Durable {
    pub(crate) id: MessageId,
    /// The encoded frame, with `id`: the allocation every write of it shares.
    pub(crate) text: FrameText,
    /// Set for a draft save, so the ack reaches the draft.
    pub(crate) draft_id: Option<String>,
    status: Status,
    /// Times written, over all connections.
    pub(crate) attempts: u32,
    /// Not to be written after this instant ([`Connection::send_with_expiry`]).
    ///
    /// [`Connection::send_with_expiry`]: super::Connection::send_with_expiry
    pub(crate) expires_at: Option<Instant>,
}

impl Durable {
    /// A message never written.
    pub(crate) fn new(id: MessageId, text: FrameText, draft_id: Option<String>) -> Self {
        Durable {
            id,
            text,
            draft_id,
            status: Status::Queued,
            attempts: 0,
            expires_at: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Ephemeral {
    key: EphemeralKey,
    text: FrameText,
    queued_at: Instant,
}

/// The outbox. Capacity counts durable and ephemeral messages together.
#[derive(Debug)]
pub(crate) struct Outbox {
    capacity: usize,
    /// A `Vec`: acks remove from anywhere, and at most `capacity` (100) entries.
    durable: Vec<Durable>,
    /// A `Vec`: at most one entry per key (presence, a few conversations).
    ephemeral: Vec<Ephemeral>,
    /// Bumped whenever the set of durable messages changes (for persistence).
    revision: u64,
    /// Durable messages in `Status::InFlight`, kept as they change: asked on every flush.
    in_flight: usize,
}

/// The outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// What to write next.
#[derive(Debug)]
pub(crate) enum Next {
    Ephemeral,
    Durable(MessageId),
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            capacity,
            durable: Vec::new(),
            ephemeral: Vec::new(),
            revision: 0,
            in_flight: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.durable.len() + self.ephemeral.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        debug_assert_eq!(
            self.in_flight,
            self.durable
                .iter()
                .filter(|d| matches!(d.status, Status::InFlight(_)))
                .count(),
            "in-flight count out of step"
        );
        self.in_flight
    }

    /// Set `d`'s status, keeping the in-flight count.
    fn set_status(in_flight: &mut usize, d: &mut Durable, status: Status) {
        let was = matches!(d.status, Status::InFlight(_));
        let is = matches!(status, Status::InFlight(_));
        d.status = status;
        match (was, is) {
            (false, true) => *in_flight += 1,
            (true, false) => *in_flight -= 1,
            _ => {}
        }
    }

    pub(crate) fn push_durable(
        &mut self,
        id: MessageId,
        text: FrameText,
        draft_id: Option<String>,
    ) -> Result<(), Full> {
        if self.len() >= self.capacity {
            return Err(Full);
        }
        self.durable.push(Durable::new(id, text, draft_id));
        self.revision += 1;
        Ok(())
    }

    /// Queue an ephemeral message, replacing a pending one with the same key.
    pub(crate) fn push_ephemeral(
        &mut self,
        key: EphemeralKey,
        text: FrameText,
        now: Instant,
    ) -> Result<(), Full> {
        if let Some(e) = self.ephemeral.iter_mut().find(|e| e.key == key) {
            e.text = text;
            e.queued_at = now;
            return Ok(());
        }
        if self.len() >= self.capacity {
            return Err(Full);
        }
        self.ephemeral.push(Ephemeral {
            key,
            text,
            queued_at: now,
        });
        Ok(())
    }

    /// Replace the frame of a durable message that was never written (a newer draft
    /// content supersedes an unsent save). False if it was written already: the server
    /// may have applied it under this id, so it must not change.
    pub(crate) fn replace_unsent(&mut self, id: &MessageId, text: FrameText) -> bool {
        match self.durable.iter_mut().find(|d| &d.id == id) {
            Some(d) if d.attempts == 0 => {
                d.text = text;
                self.revision += 1;
                true
            }
            _ => false,
        }
    }

    /// Drop typing messages older than `ttl`: a late "is typing" is worse than none.
    pub(crate) fn drop_stale(&mut self, now: Instant, ttl: Duration) {
        self.ephemeral.retain(|e| match e.key {
            EphemeralKey::Typing(_) => now.saturating_duration_since(e.queued_at) < ttl,
            EphemeralKey::Presence => true,
        });
    }

    /// The next message to write: ephemeral first (they are small, latest-state and
    /// go stale), then the oldest queued durable one if fewer than `window` are in flight.
    pub(crate) fn peek_next(&self, window: usize) -> Option<Next> {
        if !self.ephemeral.is_empty() {
            return Some(Next::Ephemeral);
        }
        if self.in_flight() >= window {
            return None;
        }
        self.durable
            .iter()
            .find(|d| d.status == Status::Queued)
            .map(|d| Next::Durable(d.id.clone()))
    }

    /// True when `peek_next` would give something.
    pub(crate) fn has_sendable(&self, window: usize) -> bool {
        !self.ephemeral.is_empty()
            || (self.in_flight() < window
                && self.durable.iter().any(|d| d.status == Status::Queued))
    }

    pub(crate) fn pop_ephemeral(&mut self) -> Option<FrameText> {
        if self.ephemeral.is_empty() {
            return None;
        }
        Some(self.ephemeral.remove(0).text)
    }

    /// Mark a durable message written; returns its frame (shared, not copied) and attempt
    /// count.
    pub(crate) fn mark_written(
        &mut self,
        id: &MessageId,
        now: Instant,
    ) -> Option<(FrameText, u32)> {
        let d = self.durable.iter_mut().find(|d| &d.id == id)?;
        Self::set_status(&mut self.in_flight, d, Status::InFlight(now));
        d.attempts = d.attempts.saturating_add(1);
        Some((d.text.clone(), d.attempts))
    }

    pub(crate) fn attempts(&self, id: &MessageId) -> Option<u32> {
        self.durable
            .iter()
            .find(|d| &d.id == id)
            .map(|d| d.attempts)
    }

    /// Remove a durable message (acked, failed, or superseded).
    pub(crate) fn remove(&mut self, id: &str) -> Option<Durable> {
        let i = self.durable.iter().position(|d| d.id.as_str() == id)?;
        self.revision += 1;
        let d = self.durable.remove(i);
        if matches!(d.status, Status::InFlight(_)) {
            self.in_flight -= 1;
        }
        Some(d)
    }

    /// Whether a durable message with this id is queued.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.durable.iter().any(|d| d.id.as_str() == id)
    }

    /// The durable messages, oldest first.
    pub(crate) fn durable_iter(&self) -> impl Iterator<Item = &Durable> + '_ {
        self.durable.iter()
    }

    /// Put restored messages ahead of everything queued (they were sent first).
    pub(crate) fn restore_front(&mut self, messages: Vec<Durable>) {
        self.durable.splice(0..0, messages);
        self.revision += 1;
    }

    /// See the field.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// A written message must be written again: the server refused it for rate without
    /// looking at it, so that write does not count as an attempt.
    pub(crate) fn requeue_refused(&mut self, id: &str) -> bool {
        match self.durable.iter_mut().find(|d| d.id.as_str() == id) {
            Some(d) => {
                Self::set_status(&mut self.in_flight, d, Status::Queued);
                d.attempts = d.attempts.saturating_sub(1);
                true
            }
            None => false,
        }
    }

    /// Durable messages queued or in flight.
    pub(crate) fn durable_len(&self) -> usize {
        self.durable.len()
    }

    /// Give a queued message an expiry.
    pub(crate) fn set_expiry(&mut self, id: &MessageId, at: Instant) {
        if let Some(d) = self.durable.iter_mut().find(|d| &d.id == id) {
            d.expires_at = Some(at);
        }
    }

    /// The earliest expiry of a message not in flight.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.durable
            .iter()
            .filter(|d| d.status == Status::Queued)
            .filter_map(|d| d.expires_at)
            .min()
    }

    /// Remove one message whose expiry has passed and that is not in flight (one in
    /// flight may still be acked; it is not written again once it expired).
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Durable> {
        let i = self
            .durable
            .iter()
            .position(|d| d.status == Status::Queued && d.expires_at.is_some_and(|t| now >= t))?;
        self.revision += 1;
        Some(self.durable.remove(i))
    }

    /// The largest durable message written at least once and not acked, with its size.
    pub(crate) fn largest_attempted(&self) -> Option<(MessageId, usize)> {
        self.durable
            .iter()
            .filter(|d| d.attempts > 0)
            .max_by_key(|d| d.text.len())
            .map(|d| (d.id.clone(), d.text.len()))
    }

    /// When the oldest unacked message will have waited `timeout` for its ack.
    pub(crate) fn ack_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.durable
            .iter()
            .filter_map(|d| match d.status {
                Status::InFlight(at) => Some(at + timeout),
                Status::Queued => None,
            })
            .min()
    }

    /// Messages written `timeout` ago and still not acked are written again (the server
    /// lost the frame or its ack; it de-duplicates by id). Returns how many.
    pub(crate) fn requeue_overdue(&mut self, now: Instant, timeout: Duration) -> usize {
        let mut n = 0;
        for d in &mut self.durable {
            if let Status::InFlight(at) = d.status
                && now >= at + timeout
            {
                Self::set_status(&mut self.in_flight, d, Status::Queued);
                n += 1;
            }
        }
        n
    }

    /// The connection is gone: everything not acked is written again on the next one.
    pub(crate) fn requeue_all(&mut self) {
        for d in &mut self.durable {
            d.status = Status::Queued;
        }
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> MessageId {
        MessageId(format!("c-t-{n}"))
    }

    #[test]
    fn durable_in_order_with_window() {
        let mut o = Outbox::new(10);
        for n in 0..4 {
            o.push_durable(id(n), format!("m{n}").into(), None).unwrap();
        }
        let mut written = vec![];
        while let Some(Next::Durable(i)) = o.peek_next(2) {
            o.mark_written(&i, Instant::ZERO);
            written.push(i);
        }
        assert_eq!(written, vec![id(0), id(1)]);
        assert!(o.remove(id(0).as_str()).is_some());
        assert!(matches!(o.peek_next(2), Some(Next::Durable(i)) if i == id(2)));
        o.requeue_all();
        assert!(matches!(o.peek_next(2), Some(Next::Durable(i)) if i == id(1)));
    }

    #[test]
    fn overdue_messages_are_written_again() {
        let mut o = Outbox::new(10);
        o.push_durable(id(1), "a".into(), None).unwrap();
        o.push_durable(id(2), "b".into(), None).unwrap();
        o.mark_written(&id(1), Instant::from_millis(0));
        o.mark_written(&id(2), Instant::from_millis(5_000));
        let t = Duration::from_secs(30);
        assert_eq!(o.ack_deadline(t), Some(Instant::from_millis(30_000)));
        assert_eq!(o.requeue_overdue(Instant::from_millis(30_000), t), 1);
        assert!(matches!(o.peek_next(10), Some(Next::Durable(i)) if i == id(1)));
        assert_eq!(o.ack_deadline(t), Some(Instant::from_millis(35_000)));
    }

    #[test]
    fn full_is_an_error_and_ephemeral_coalesce() {
        let t = Instant::ZERO;
        let mut o = Outbox::new(2);
        o.push_ephemeral(EphemeralKey::Typing(1), "a".into(), t)
            .unwrap();
        o.push_ephemeral(EphemeralKey::Typing(1), "b".into(), t)
            .unwrap();
        assert_eq!(o.len(), 1);
        o.push_durable(id(1), "x".into(), None).unwrap();
        assert_eq!(o.push_durable(id(2), "y".into(), None), Err(Full));
        assert_eq!(
            o.push_ephemeral(EphemeralKey::Presence, "p".into(), t),
            Err(Full)
        );
        // Replacing an existing key needs no room.
        o.push_ephemeral(EphemeralKey::Typing(1), "c".into(), t)
            .unwrap();
        assert_eq!(o.pop_ephemeral().as_deref(), Some("c"));
    }

    #[test]
    fn stale_typing_dropped_presence_kept() {
        let mut o = Outbox::new(5);
        o.push_ephemeral(EphemeralKey::Typing(1), "t".into(), Instant::ZERO)
            .unwrap();
        o.push_ephemeral(EphemeralKey::Presence, "p".into(), Instant::ZERO)
            .unwrap();
        o.drop_stale(Instant::from_millis(10_000), Duration::from_secs(3));
        assert_eq!(o.pop_ephemeral().as_deref(), Some("p"));
        assert!(o.pop_ephemeral().is_none());
    }

    #[test]
    fn only_unsent_messages_are_replaced() {
        let mut o = Outbox::new(5);
        o.push_durable(id(1), "v1".into(), None).unwrap();
        assert!(o.replace_unsent(&id(1), "v2".into()));
        assert_eq!(
            o.mark_written(&id(1), Instant::ZERO)
                .map(|(t, _)| t)
                .as_deref(),
            Some("v2")
        );
        o.requeue_all();
        assert!(!o.replace_unsent(&id(1), "v3".into()));
    }
}
