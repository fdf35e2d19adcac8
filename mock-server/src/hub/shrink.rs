//! Maps keyed by live sessions and users give their room back once they are mostly empty.
//!
//! A `HashMap` never shrinks by itself: after 10,000 clients came and went, `sessions`,
//! `by_user`, `subscribers` and `session_slots` would keep room for 10,000 entries (several
//! MiB; BENCHMARKS.md, "Memory after a storm"). What a user keeps on purpose after leaving
//! (presence and its `lastSeen`, seq counters, the replay log) is left alone.

use std::collections::HashMap;
use std::hash::Hash;

/// Below this capacity a map is left as it is: too small to matter.
const MIN_CAPACITY: usize = 64;

/// Shrink `map` to twice its length once it uses a quarter of its capacity or less. The
/// rehash costs O(capacity) and comes after at least 3/4 of that many removals: O(1) per
/// removal, and a map that grows back doubles only once before it is at its old size.
pub(crate) fn shrink_sparse<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    let cap = map.capacity();
    if cap > MIN_CAPACITY && map.len() * 4 <= cap {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::test_support::{small_hub, user};

    #[test]
    fn a_sparse_map_shrinks_and_a_full_one_does_not() {
        let mut m: HashMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
        let full = m.capacity();
        shrink_sparse(&mut m);
        assert_eq!(m.capacity(), full);
        for i in 10..1000 {
            m.remove(&i);
            shrink_sparse(&mut m);
        }
        assert!(m.capacity() < MIN_CAPACITY * 2, "capacity {}", m.capacity());
        assert_eq!(m.len(), 10);
    }

    /// After a storm of users has come and gone, the hub's session maps hold room for the few
    /// still connected, not for the storm; what the protocol needs of the users who left stays.
    #[tokio::test]
    async fn the_hub_gives_back_room_after_users_leave() {
        let hub = small_hub();
        let mut sessions = Vec::new();
        for id in 1..=2000 {
            let slot = hub.reserve_session(id).expect("a free slot");
            let (tx, rx) = crate::outbox::channel(4);
            let reg = hub
                .register(&user(id), tx, None, Vec::new())
                .expect("registered");
            sessions.push((slot, reg.key, rx));
        }
        let stay = sessions.split_off(1990);
        for (slot, key, _rx) in sessions {
            hub.unregister(key);
            drop(slot);
        }
        let st = hub.lock();
        assert_eq!(st.sessions.len(), stay.len());
        for (name, cap) in [
            ("sessions", st.sessions.capacity()),
            ("by_user", st.by_user.capacity()),
            ("session_slots", st.session_slots.capacity()),
        ] {
            assert!(cap < MIN_CAPACITY * 2, "{name} keeps room for {cap}");
        }
        // A user who left is still known offline, with when they were last seen.
        assert!(st.presence.get(1).last_seen.is_some());
    }
}
