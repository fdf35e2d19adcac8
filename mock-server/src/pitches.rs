//! Pitch view counts, unique viewers, recent viewers and owners.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use pitchey_realtime::protocol::{PitchStats, RecentViewer};

/// How many recent viewers a `pitch_stats_update` lists.
const RECENT_VIEWERS: usize = 10;

#[derive(Debug, Default)]
struct PitchRecord {
    owner: Option<u64>,
    views: u64,
    viewers: HashSet<u64>,
    /// Unique viewers counted elsewhere (shared stats from Redis), at least.
    unique_floor: u64,
    /// Newest first.
    recent: VecDeque<RecentViewer>,
    /// When it was last viewed here or through Redis (`None`: never).
    last_active: Option<Instant>,
}

/// Live statistics of every pitch seen so far.
#[derive(Debug, Default)]
pub struct PitchBook {
    pitches: HashMap<u64, PitchRecord>,
}

impl PitchBook {
    /// Record a view; returns the new stats and the pitch owner, if known.
    pub fn record_view(
        &mut self,
        pitch_id: u64,
        viewer: u64,
        username: Option<String>,
        viewed_at: String,
    ) -> (PitchStats, Option<u64>) {
        let rec = self.pitches.entry(pitch_id).or_default();
        rec.last_active = Some(Instant::now());
        rec.views += 1;
        rec.viewers.insert(viewer);
        // One entry per viewer: a repeat view moves them to the front.
        rec.recent.retain(|v| v.user_id != viewer);
        rec.recent.push_front(RecentViewer {
            user_id: viewer,
            username,
            viewed_at,
        });
        rec.recent.truncate(RECENT_VIEWERS);
        let owner = rec.owner;
        (self.stats_of(pitch_id), owner)
    }

    /// Add views that came from elsewhere (the demo's starting numbers).
    pub fn add_views(&mut self, pitch_id: u64, views: u64) {
        self.pitches.entry(pitch_id).or_default().views += views;
    }

    /// Set who owns a pitch (their dashboard counts its views).
    pub fn set_owner(&mut self, pitch_id: u64, owner: u64) {
        self.pitches.entry(pitch_id).or_default().owner = Some(owner);
    }

    /// Who owns a pitch, if known.
    pub fn owner(&self, pitch_id: u64) -> Option<u64> {
        self.pitches.get(&pitch_id).and_then(|r| r.owner)
    }

    /// Take stats counted across instances (through Redis): counts never go down.
    pub fn apply_shared(&mut self, stats: &PitchStats) {
        let rec = self.pitches.entry(stats.pitch_id).or_default();
        rec.last_active = Some(Instant::now());
        rec.views = rec.views.max(stats.view_count);
        rec.unique_floor = rec.unique_floor.max(stats.unique_viewers);
        rec.recent = stats.recent_viewers.iter().cloned().collect();
    }

    /// Current stats of a pitch, if it was ever seen.
    pub fn stats(&self, pitch_id: u64) -> Option<PitchStats> {
        self.pitches
            .contains_key(&pitch_id)
            .then(|| self.stats_of(pitch_id))
    }

    fn stats_of(&self, pitch_id: u64) -> PitchStats {
        let rec = self.pitches.get(&pitch_id);
        PitchStats {
            pitch_id,
            view_count: rec.map_or(0, |r| r.views),
            unique_viewers: rec.map_or(0, |r| (r.viewers.len() as u64).max(r.unique_floor)),
            recent_viewers: rec.map_or_else(Vec::new, |r| r.recent.iter().cloned().collect()),
        }
    }

    /// Forget the stats of pitches nobody owns that were not viewed within `idle` of `now`
    /// and that `watched` says nobody subscribes to: any client can name any pitch id, and
    /// each one named would otherwise be kept for good. Returns how many were freed.
    pub fn free_idle(
        &mut self,
        now: Instant,
        idle: Duration,
        watched: impl Fn(u64) -> bool,
    ) -> usize {
        let before = self.pitches.len();
        self.pitches.retain(|id, r| {
            r.owner.is_some()
                || watched(*id)
                || r.last_active
                    .is_some_and(|t| now.saturating_duration_since(t) < idle)
        });
        before - self.pitches.len()
    }

    /// (pitches owned, views across them) for `owner`'s dashboard.
    pub fn owner_totals(&self, owner: u64) -> (u64, u64) {
        self.pitches
            .values()
            .filter(|r| r.owner == Some(owner))
            .fold((0, 0), |(n, v), r| (n + 1, v + r.views))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_uniques_recent_and_owner_totals() {
        let mut b = PitchBook::default();
        b.set_owner(42, 1);
        b.add_views(42, 10);
        b.record_view(42, 3, None, "t1".into());
        b.record_view(42, 4, None, "t2".into());
        let (s, owner) = b.record_view(42, 3, None, "t3".into());
        assert_eq!(owner, Some(1));
        assert_eq!(s.view_count, 13);
        assert_eq!(s.unique_viewers, 2);
        assert_eq!(s.recent_viewers[0].user_id, 3);
        assert_eq!(s.recent_viewers.len(), 2);
        assert_eq!(b.owner_totals(1), (1, 13));
        assert!(b.stats(99).is_none());
    }

    #[test]
    fn idle_unowned_unwatched_pitches_are_freed() {
        let mut b = PitchBook::default();
        b.set_owner(1, 9);
        b.record_view(1, 3, None, "t".into());
        b.record_view(2, 3, None, "t".into());
        b.record_view(3, 3, None, "t".into());
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(b.free_idle(later, Duration::from_secs(5), |id| id == 3), 1);
        assert!(b.stats(1).is_some() && b.stats(2).is_none() && b.stats(3).is_some());
        assert_eq!(
            b.free_idle(Instant::now(), Duration::from_secs(5), |_| false),
            0
        );
    }
}
