//! The server's durable state behind one trait: per-user `seq` counters and replay logs,
//! offline queues, drafts and the de-duplication window.
//!
//! Only [`MemoryStore`] exists today. The trait is the seam for an embedded store that keeps
//! this state across restarts: everything a client was promised (an acked draft, a queued
//! notification, a `seq` it may resume from) goes through here, and nothing else does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::drafts::Draft;

/// An encoded text frame, shared by every session it goes to.
pub type FrameText = Arc<str>;

/// A durable frame in a user's replay log.
#[derive(Debug, Clone)]
pub struct LoggedFrame {
    /// Its `seq`.
    pub seq: u64,
    /// The frame as sent.
    pub text: FrameText,
}

/// A frame waiting in an offline queue.
#[derive(Debug, Clone)]
pub struct QueuedFrame {
    /// Its `seq`, when `seq` is on.
    pub seq: Option<u64>,
    /// The frame as it will be sent.
    pub text: FrameText,
}

/// What an applied client message answered, so that a duplicate gets the same ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// For a `draft_sync`: the version it created.
    pub version: Option<u64>,
}

/// Durable per-user state. Methods are synchronous: the hub calls them under its lock, and
/// an embedded store answers from the same thread.
pub trait Store: Send {
    /// Assign the next `seq` for `user` (the first is 1).
    fn next_seq(&mut self, user: u64) -> u64;
    /// The last `seq` assigned to `user` (0: none yet).
    fn last_seq(&self, user: u64) -> u64;
    /// Append a durable frame to `user`'s replay log (bounded: the oldest fall off).
    fn log_append(&mut self, user: u64, frame: LoggedFrame);
    /// The oldest `seq` still in `user`'s replay log.
    fn log_oldest(&self, user: u64) -> Option<u64>;
    /// Logged frames with `after < seq <= upto`, in order.
    fn log_range(&self, user: u64, after: u64, upto: u64) -> Vec<LoggedFrame>;
    /// Queue a frame for an offline user; returns how many old frames were dropped for room.
    fn queue_push(&mut self, user: u64, frame: QueuedFrame) -> usize;
    /// Take everything queued for `user`, oldest first.
    fn queue_take(&mut self, user: u64) -> Vec<QueuedFrame>;
    /// Frames queued across all users.
    fn queue_depth(&self) -> usize;
    /// A user's draft.
    fn draft(&self, user: u64, draft_id: &str) -> Option<Draft>;
    /// Store a user's draft.
    fn put_draft(&mut self, user: u64, draft_id: &str, draft: Draft);
    /// If `user` already had a message with this `id` applied within the window, what it answered.
    fn seen(&mut self, user: u64, id: &str, now: Instant) -> Option<Applied>;
    /// Remember that `user`'s message `id` was applied.
    fn remember(&mut self, user: u64, id: &str, applied: Applied, now: Instant);
}

/// Limits of a [`MemoryStore`].
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Frames per offline queue.
    pub offline_queue_cap: usize,
    /// Frames per replay log.
    pub replay_log_cap: usize,
    /// How long ids are remembered.
    pub dedup_window: Duration,
    /// Ids remembered per user at most.
    pub dedup_cap: usize,
}

/// Everything in memory: lost when the process exits.
#[derive(Debug)]
pub struct MemoryStore {
    limits: StoreLimits,
    seqs: HashMap<u64, u64>,
    logs: HashMap<u64, VecDeque<LoggedFrame>>,
    queues: HashMap<u64, VecDeque<QueuedFrame>>,
    drafts: HashMap<(u64, String), Draft>,
    dedup: HashMap<u64, DedupWindow>,
}

/// Ids in arrival order, so that expiry and the cap drop the oldest first.
#[derive(Debug, Default)]
struct DedupWindow {
    order: VecDeque<(Instant, String)>,
    applied: HashMap<String, Applied>,
}

impl DedupWindow {
    fn expire(&mut self, now: Instant, window: Duration, cap: usize) {
        while let Some((at, id)) = self.order.front() {
            if now.saturating_duration_since(*at) <= window && self.order.len() <= cap {
                break;
            }
            self.applied.remove(id);
            self.order.pop_front();
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        MemoryStore {
            limits,
            seqs: HashMap::new(),
            logs: HashMap::new(),
            queues: HashMap::new(),
            drafts: HashMap::new(),
            dedup: HashMap::new(),
        }
    }
}

impl Store for MemoryStore {
    fn next_seq(&mut self, user: u64) -> u64 {
        let seq = self.seqs.entry(user).or_insert(0);
        *seq += 1;
        *seq
    }

    fn last_seq(&self, user: u64) -> u64 {
        self.seqs.get(&user).copied().unwrap_or(0)
    }

    fn log_append(&mut self, user: u64, frame: LoggedFrame) {
        if self.limits.replay_log_cap == 0 {
            return;
        }
        let log = self.logs.entry(user).or_default();
        while log.len() >= self.limits.replay_log_cap {
            log.pop_front();
        }
        log.push_back(frame);
    }

    fn log_oldest(&self, user: u64) -> Option<u64> {
        self.logs.get(&user)?.front().map(|f| f.seq)
    }

    fn log_range(&self, user: u64, after: u64, upto: u64) -> Vec<LoggedFrame> {
        self.logs
            .get(&user)
            .into_iter()
            .flatten()
            .filter(|f| f.seq > after && f.seq <= upto)
            .cloned()
            .collect()
    }

    fn queue_push(&mut self, user: u64, frame: QueuedFrame) -> usize {
        let cap = self.limits.offline_queue_cap;
        if cap == 0 {
            return 1;
        }
        let queue = self.queues.entry(user).or_default();
        let mut dropped = 0;
        while queue.len() >= cap {
            queue.pop_front();
            dropped += 1;
        }
        queue.push_back(frame);
        dropped
    }

    fn queue_take(&mut self, user: u64) -> Vec<QueuedFrame> {
        self.queues.remove(&user).map(Vec::from).unwrap_or_default()
    }

    fn queue_depth(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    fn draft(&self, user: u64, draft_id: &str) -> Option<Draft> {
        self.drafts.get(&(user, draft_id.to_owned())).cloned()
    }

    fn put_draft(&mut self, user: u64, draft_id: &str, draft: Draft) {
        self.drafts.insert((user, draft_id.to_owned()), draft);
    }

    fn seen(&mut self, user: u64, id: &str, now: Instant) -> Option<Applied> {
        let w = self.dedup.get_mut(&user)?;
        w.expire(now, self.limits.dedup_window, self.limits.dedup_cap);
        w.applied.get(id).copied()
    }

    fn remember(&mut self, user: u64, id: &str, applied: Applied, now: Instant) {
        let w = self.dedup.entry(user).or_default();
        if w.applied.insert(id.to_owned(), applied).is_none() {
            w.order.push_back((now, id.to_owned()));
        }
        w.expire(now, self.limits.dedup_window, self.limits.dedup_cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(queue: usize, log: usize) -> MemoryStore {
        MemoryStore::new(StoreLimits {
            offline_queue_cap: queue,
            replay_log_cap: log,
            dedup_window: Duration::from_secs(10),
            dedup_cap: 2,
        })
    }

    fn text(s: &str) -> FrameText {
        Arc::from(s)
    }

    #[test]
    fn queue_drops_oldest_beyond_cap() {
        let mut s = store(2, 0);
        for t in ["a", "b", "c"] {
            s.queue_push(
                1,
                QueuedFrame {
                    seq: None,
                    text: text(t),
                },
            );
        }
        let got: Vec<_> = s.queue_take(1).into_iter().map(|f| f.text).collect();
        assert_eq!(got, vec![text("b"), text("c")]);
        assert!(s.queue_take(1).is_empty());
    }

    #[test]
    fn log_is_bounded_and_ranged() {
        let mut s = store(0, 3);
        for _ in 0..5 {
            let seq = s.next_seq(1);
            s.log_append(
                1,
                LoggedFrame {
                    seq,
                    text: text("x"),
                },
            );
        }
        assert_eq!(s.log_oldest(1), Some(3));
        let seqs: Vec<_> = s.log_range(1, 3, 4).iter().map(|f| f.seq).collect();
        assert_eq!(seqs, vec![4]);
    }

    #[test]
    fn dedup_window_expires_and_caps() {
        let mut s = store(0, 0);
        let t0 = Instant::now();
        let a = Applied { version: Some(2) };
        s.remember(1, "x", a, t0);
        assert_eq!(s.seen(1, "x", t0), Some(a));
        assert_eq!(s.seen(2, "x", t0), None);
        assert_eq!(s.seen(1, "x", t0 + Duration::from_secs(11)), None);
        s.remember(1, "a", a, t0);
        s.remember(1, "b", a, t0);
        s.remember(1, "c", a, t0);
        assert_eq!(s.seen(1, "a", t0), None);
        assert_eq!(s.seen(1, "c", t0), Some(a));
    }
}
