//! The server's durable state behind one trait: per-user `seq` counters and replay logs,
//! offline queues, drafts and the de-duplication window.
//!
//! [`MemoryStore`] is the default; [`crate::persist::DiskStore`] (`--data-dir`) keeps the same
//! state in an embedded database across restarts. Everything a client was promised (an acked
//! draft, a queued notification, a `seq` it may resume from) goes through here, and nothing
//! else does. Writes become durable at [`Store::commit`], which the hub calls before anything
//! that promises them leaves the server.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use crate::drafts::Draft;
pub use crate::group_commit::Durability;
pub use crate::store_error::{CommitStats, StoreError};

pub use crate::frame_text::{FrameText, SharedBody};

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
    /// How many drafts `user` has.
    fn draft_count(&self, user: u64) -> usize;
    /// If `user` already had a message with this `id` applied within the window, what it answered.
    fn seen(&mut self, user: u64, id: &str, now: Instant) -> Option<Applied>;
    /// Remember that `user`'s message `id` was applied.
    fn remember(&mut self, user: u64, id: &str, applied: Applied, now: Instant);
    /// The next notification number (ids `n-1`, `n-2`, ...): kept here so that a restarted
    /// server does not hand out an id that a queued notification already carries.
    fn next_notification(&mut self) -> u64;
    /// Frames queued per user, for users with any.
    fn queue_depths(&self) -> Vec<(u64, usize)>;
    /// Start making every write so far durable (for a disk store: committed and synced, in a
    /// group with other commits). Called before anything that promises a write leaves the
    /// server (an ack, an HTTP answer, a frame carrying a new `seq`), which then waits on the
    /// returned [`Durability`], outside the hub's lock. On error nothing may be promised;
    /// writes not yet durable are retried by the next group.
    fn commit(&mut self) -> Durability;
    /// `memory` or `disk`, for stats.
    fn kind(&self) -> &'static str;
    /// Commits made so far (all zero for a store that needs none).
    fn commit_stats(&self) -> CommitStats;
    /// Frames dropped for the byte caps so far.
    fn evictions(&self) -> Evictions;
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
    /// Bytes per replay log and per offline queue (beside the frame counts).
    pub user_queue_bytes: usize,
}

/// Frames the store let go of to stay within its byte caps (the count caps and the de-dup
/// window are the normal course of things and not counted here).
#[derive(Debug, Default, Clone, Copy)]
pub struct Evictions {
    /// Replay-log frames dropped for `user_queue_bytes`.
    pub log_bytes: u64,
    /// Offline-queue frames dropped for `user_queue_bytes`.
    pub queue_bytes: u64,
    /// De-dup ids forgotten within their window for the per-user cap.
    pub dedup_ids: u64,
}

/// Frames in arrival order with their total size, so that both caps drop the oldest first.
#[derive(Debug)]
struct Frames<T> {
    items: VecDeque<T>,
    bytes: usize,
}

impl<T> Default for Frames<T> {
    fn default() -> Self {
        Frames {
            items: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<T> Frames<T> {
    /// Make room for one more frame of `size` bytes within `cap` frames and `byte_cap` bytes;
    /// returns the dropped frames and how many went for the bytes alone. A frame larger
    /// than `byte_cap` on its own still goes in, alone: it was already accepted as a frame.
    fn make_room(
        &mut self,
        size: usize,
        cap: usize,
        byte_cap: usize,
        len: impl Fn(&T) -> usize,
    ) -> (Vec<T>, u64) {
        let mut gone = Vec::new();
        let mut for_bytes = 0;
        while let Some(front) = self.items.front() {
            let over_count = self.items.len() >= cap;
            let over_bytes = self.bytes + size > byte_cap;
            if !over_count && !over_bytes {
                break;
            }
            self.bytes -= len(front);
            if !over_count {
                for_bytes += 1;
            }
            if let Some(f) = self.items.pop_front() {
                gone.push(f);
            }
        }
        (gone, for_bytes)
    }
}

/// Everything in memory: lost when the process exits.
#[derive(Debug)]
pub struct MemoryStore {
    limits: StoreLimits,
    seqs: HashMap<u64, u64>,
    logs: HashMap<u64, Frames<LoggedFrame>>,
    queues: HashMap<u64, Frames<QueuedFrame>>,
    evictions: Evictions,
    drafts: HashMap<(u64, String), Draft>,
    draft_counts: HashMap<u64, usize>,
    dedup: HashMap<u64, DedupWindow>,
    notifications: u64,
}

/// Ids in arrival order, so that expiry and the cap drop the oldest first.
#[derive(Debug, Default)]
struct DedupWindow {
    order: VecDeque<(Instant, String)>,
    applied: HashMap<String, Applied>,
}

impl DedupWindow {
    /// Forget ids past the window or beyond the cap; returns them.
    fn expire(&mut self, now: Instant, window: Duration, cap: usize) -> (Vec<String>, u64) {
        let mut gone = Vec::new();
        let mut for_cap = 0;
        while let Some((at, id)) = self.order.front() {
            let in_window = now.saturating_duration_since(*at) <= window;
            if in_window && self.order.len() <= cap {
                break;
            }
            if in_window {
                for_cap += 1;
            }
            self.applied.remove(id);
            if let Some((_, id)) = self.order.pop_front() {
                gone.push(id);
            }
        }
        (gone, for_cap)
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
            draft_counts: HashMap::new(),
            dedup: HashMap::new(),
            notifications: 0,
            evictions: Evictions::default(),
        }
    }

    /// The limits it was made with.
    pub(crate) fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// Set `user`'s last seq (loading a durable store).
    pub(crate) fn restore_seq(&mut self, user: u64, seq: u64) {
        self.seqs.insert(user, seq);
    }

    /// Set the last notification number (loading a durable store).
    pub(crate) fn restore_notifications(&mut self, n: u64) {
        self.notifications = n;
    }

    /// [`Store::log_append`]; returns the seqs that fell off the log.
    pub(crate) fn log_append_evicting(&mut self, user: u64, frame: LoggedFrame) -> Vec<u64> {
        if self.limits.replay_log_cap == 0 {
            return vec![frame.seq];
        }
        let log = self.logs.entry(user).or_default();
        let size = frame.text.len();
        let (gone, for_bytes) = log.make_room(
            size,
            self.limits.replay_log_cap,
            self.limits.user_queue_bytes,
            |f| f.text.len(),
        );
        self.evictions.log_bytes += for_bytes;
        log.bytes += size;
        log.items.push_back(frame);
        gone.into_iter().map(|f| f.seq).collect()
    }

    /// [`Store::seen`]; also returns the ids it forgot.
    pub(crate) fn seen_evicting(
        &mut self,
        user: u64,
        id: &str,
        now: Instant,
    ) -> (Option<Applied>, Vec<String>) {
        let Some(w) = self.dedup.get_mut(&user) else {
            return (None, Vec::new());
        };
        let (gone, for_cap) = w.expire(now, self.limits.dedup_window, self.limits.dedup_cap);
        self.evictions.dedup_ids += for_cap;
        (w.applied.get(id).copied(), gone)
    }

    /// [`Store::remember`]; returns the ids it forgot to make room (possibly `id` itself,
    /// when `now` is already past the window).
    pub(crate) fn remember_evicting(
        &mut self,
        user: u64,
        id: &str,
        applied: Applied,
        now: Instant,
    ) -> Vec<String> {
        let w = self.dedup.entry(user).or_default();
        if w.applied.insert(id.to_owned(), applied).is_none() {
            w.order.push_back((now, id.to_owned()));
        }
        let (gone, for_cap) = w.expire(now, self.limits.dedup_window, self.limits.dedup_cap);
        self.evictions.dedup_ids += for_cap;
        gone
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
        self.log_append_evicting(user, frame);
    }

    fn log_oldest(&self, user: u64) -> Option<u64> {
        self.logs.get(&user)?.items.front().map(|f| f.seq)
    }

    fn log_range(&self, user: u64, after: u64, upto: u64) -> Vec<LoggedFrame> {
        self.logs
            .get(&user)
            .into_iter()
            .flat_map(|l| l.items.iter())
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
        let size = frame.text.len();
        let (gone, for_bytes) =
            queue.make_room(size, cap, self.limits.user_queue_bytes, |f| f.text.len());
        self.evictions.queue_bytes += for_bytes;
        queue.bytes += size;
        queue.items.push_back(frame);
        gone.len()
    }

    fn queue_take(&mut self, user: u64) -> Vec<QueuedFrame> {
        self.queues
            .remove(&user)
            .map(|q| Vec::from(q.items))
            .unwrap_or_default()
    }

    fn queue_depth(&self) -> usize {
        self.queues.values().map(|q| q.items.len()).sum()
    }

    fn draft(&self, user: u64, draft_id: &str) -> Option<Draft> {
        self.drafts.get(&(user, draft_id.to_owned())).cloned()
    }

    fn put_draft(&mut self, user: u64, draft_id: &str, draft: Draft) {
        if self
            .drafts
            .insert((user, draft_id.to_owned()), draft)
            .is_none()
        {
            *self.draft_counts.entry(user).or_default() += 1;
        }
    }

    fn draft_count(&self, user: u64) -> usize {
        self.draft_counts.get(&user).copied().unwrap_or(0)
    }

    fn seen(&mut self, user: u64, id: &str, now: Instant) -> Option<Applied> {
        self.seen_evicting(user, id, now).0
    }

    fn remember(&mut self, user: u64, id: &str, applied: Applied, now: Instant) {
        self.remember_evicting(user, id, applied, now);
    }

    fn next_notification(&mut self) -> u64 {
        self.notifications += 1;
        self.notifications
    }

    fn queue_depths(&self) -> Vec<(u64, usize)> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.items.is_empty())
            .map(|(u, q)| (*u, q.items.len()))
            .collect()
    }

    fn commit(&mut self) -> Durability {
        Durability::default()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn commit_stats(&self) -> CommitStats {
        CommitStats::default()
    }

    fn evictions(&self) -> Evictions {
        self.evictions
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
            user_queue_bytes: 1 << 20,
        })
    }

    fn text(s: &str) -> FrameText {
        FrameText::from(s)
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
    fn byte_cap_drops_the_oldest_of_log_and_queue() {
        let mut s = MemoryStore::new(StoreLimits {
            offline_queue_cap: 100,
            replay_log_cap: 100,
            dedup_window: Duration::from_secs(10),
            dedup_cap: 2,
            user_queue_bytes: 10,
        });
        for (i, t) in ["aaaa", "bbbb", "cccc"].into_iter().enumerate() {
            let seq = i as u64 + 1;
            s.log_append(1, LoggedFrame { seq, text: text(t) });
            s.queue_push(
                1,
                QueuedFrame {
                    seq: Some(seq),
                    text: text(t),
                },
            );
        }
        assert_eq!(s.log_oldest(1), Some(2));
        let got: Vec<_> = s.queue_take(1).into_iter().map(|f| f.seq).collect();
        assert_eq!(got, vec![Some(2), Some(3)]);
        let e = s.evictions();
        assert_eq!((e.log_bytes, e.queue_bytes), (1, 1));
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
