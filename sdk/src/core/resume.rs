//! Tracking the server's per-user `seq`: duplicates, gaps, and what to resume from.

use std::time::Duration;

use super::Instant;
use super::sorted_map::SortedMap;

/// More out-of-order frames than this waiting for a gap to fill: the gap is real.
const MAX_AHEAD: usize = 256;

/// What to do with a received frame's `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    /// New: pass it on.
    Fresh,
    /// Seen already (a resume replay overlapping what we had): drop it.
    Duplicate,
    /// The server's counter started over (it lost its state): continuity is lost, and the
    /// frame is fresh.
    Restarted,
    /// New, but so far ahead of a gap that the gap was given up (continuity lost).
    GapAbandoned,
}

#[derive(Debug, Default)]
pub(crate) struct SeqTracker {
    /// Every seq up to here was seen (or given up on).
    last: Option<u64>,
    /// Seen seqs above `last + 1`, waiting for the gap below them to fill.
    ahead: SortedMap<u64, ()>,
    gap_since: Option<Instant>,
}

impl SeqTracker {
    /// The `lastSeq` to resume from: every seq up to it was seen, so the server's replay
    /// fills any gap above it (frames we already have are dropped as duplicates).
    pub(crate) fn last(&self) -> Option<u64> {
        self.last
    }

    /// Forget everything: the next seq seen is the new baseline.
    pub(crate) fn reset(&mut self) {
        *self = SeqTracker::default();
    }

    /// Take the server's announced baseline (`connected.lastSeq`) when nothing was seen
    /// yet: every seq up to it is behind us.
    pub(crate) fn set_baseline(&mut self, last: u64) {
        if self.last.is_none() && self.ahead.is_empty() {
            self.last = Some(last);
        }
    }

    pub(crate) fn on_seq(&mut self, seq: u64, now: Instant) -> SeqVerdict {
        let Some(last) = self.last else {
            self.last = Some(seq);
            return SeqVerdict::Fresh;
        };
        if seq <= last || self.ahead.contains_key(&seq) {
            // Seq 1 below what we had: a server that lost its counters, not a replay.
            if seq == 1 && last > 1 {
                self.reset();
                self.last = Some(1);
                return SeqVerdict::Restarted;
            }
            return SeqVerdict::Duplicate;
        }
        // Checked: a hostile server could send `u64::MAX`.
        if last.checked_add(1) == Some(seq) {
            let mut top = seq;
            while top
                .checked_add(1)
                .is_some_and(|next| self.ahead.remove(&next).is_some())
            {
                top += 1;
            }
            self.last = Some(top);
            if self.ahead.is_empty() {
                self.gap_since = None;
            }
        } else {
            if self.ahead.len() >= MAX_AHEAD {
                // A gap this wide will not fill frame by frame: it is given up now, so
                // memory stays bounded, and the caller reports the loss.
                self.close_gaps();
                self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
                return SeqVerdict::GapAbandoned;
            }
            self.ahead.insert(seq, ());
            self.gap_since.get_or_insert(now);
        }
        SeqVerdict::Fresh
    }

    /// Start an open gap's wait again (the link came back: the resume gets its full time).
    pub(crate) fn restart_gap_wait(&mut self, now: Instant) {
        if self.gap_since.is_some() {
            self.gap_since = Some(now);
        }
    }

    /// When an open gap is due for a look.
    pub(crate) fn gap_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.gap_since.map(|t| t + timeout)
    }

    /// True when a gap stayed open past `timeout` or grew too wide. The caller resumes (or
    /// gives up with [`SeqTracker::close_gaps`]); the timer starts over meanwhile.
    pub(crate) fn gap_expired(&mut self, now: Instant, timeout: Duration) -> bool {
        let expired = self.gap_since.is_some_and(|t| now >= t + timeout);
        if expired {
            self.gap_since = Some(now);
            return true;
        }
        false
    }

    /// Accept the gaps as they are: the server replayed what it had for us (what it did not
    /// send was not ours, e.g. the echo of our own draft save), or it is lost and the app
    /// was told. Tracking goes on from the highest seq seen.
    pub(crate) fn close_gaps(&mut self) {
        self.last = self.ahead.last_key().copied().or(self.last);
        self.ahead.clear();
        self.gap_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn dedups_and_fills_gaps() {
        let mut s = SeqTracker::default();
        let t = Instant::ZERO;
        assert_eq!(s.on_seq(5, t), SeqVerdict::Fresh);
        assert_eq!(s.on_seq(5, t), SeqVerdict::Duplicate);
        assert_eq!(s.on_seq(7, t), SeqVerdict::Fresh);
        assert_eq!(s.gap_deadline(T), Some(Instant::from_millis(2_000)));
        assert_eq!(s.on_seq(6, t), SeqVerdict::Fresh);
        assert_eq!(s.gap_deadline(T), None);
        assert_eq!(s.last(), Some(7));
        assert_eq!(s.on_seq(7, t), SeqVerdict::Duplicate);
        assert!(!s.gap_expired(Instant::from_millis(10_000), T));
    }

    #[test]
    fn gap_expires_then_closes() {
        let mut s = SeqTracker::default();
        s.on_seq(1, Instant::ZERO);
        s.on_seq(4, Instant::ZERO);
        assert_eq!(s.last(), Some(1), "resume from below the gap");
        assert!(!s.gap_expired(Instant::from_millis(1_999), T));
        assert!(s.gap_expired(Instant::from_millis(2_000), T));
        // The timer started over while the caller resumes.
        assert_eq!(s.gap_deadline(T), Some(Instant::from_millis(4_000)));
        assert_eq!(s.on_seq(2, Instant::ZERO), SeqVerdict::Fresh);
        s.close_gaps();
        assert_eq!(s.last(), Some(4));
        assert_eq!(s.gap_deadline(T), None);
        assert_eq!(s.on_seq(3, Instant::ZERO), SeqVerdict::Duplicate);
        assert_eq!(s.on_seq(5, Instant::ZERO), SeqVerdict::Fresh);
    }

    #[test]
    fn extreme_seqs_do_not_overflow() {
        let mut s = SeqTracker::default();
        assert_eq!(s.on_seq(u64::MAX - 1, Instant::ZERO), SeqVerdict::Fresh);
        assert_eq!(s.on_seq(u64::MAX, Instant::ZERO), SeqVerdict::Fresh);
        assert_eq!(s.on_seq(u64::MAX, Instant::ZERO), SeqVerdict::Duplicate);
    }

    #[test]
    fn a_gap_too_wide_is_given_up_and_memory_stays_bounded() {
        let mut s = SeqTracker::default();
        s.on_seq(1, Instant::ZERO);
        // 2 never comes; everything after it waits, up to the cap.
        for seq in 3..3 + MAX_AHEAD as u64 {
            assert_eq!(s.on_seq(seq, Instant::ZERO), SeqVerdict::Fresh);
        }
        assert_eq!(s.ahead.len(), MAX_AHEAD);
        let next = 3 + MAX_AHEAD as u64;
        assert_eq!(s.on_seq(next, Instant::ZERO), SeqVerdict::GapAbandoned);
        assert!(s.ahead.is_empty());
        assert_eq!(s.last(), Some(next));
        assert_eq!(s.on_seq(next, Instant::ZERO), SeqVerdict::Duplicate);
        assert_eq!(s.gap_deadline(T), None);
    }

    #[test]
    fn counter_restart_is_detected() {
        let mut s = SeqTracker::default();
        s.on_seq(40, Instant::ZERO);
        assert_eq!(s.on_seq(1, Instant::ZERO), SeqVerdict::Restarted);
        assert_eq!(s.on_seq(2, Instant::ZERO), SeqVerdict::Fresh);
    }
}
