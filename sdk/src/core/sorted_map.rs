//! A map kept as a sorted `Vec`: the core's maps hold few entries (a client's
//! subscriptions, its open drafts, the seqs ahead of a gap), and each `BTreeMap` instance
//! cost several KB of the browser package. Same order and lookups as a `BTreeMap`.

use std::borrow::Borrow;

/// A sorted map of few entries (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Insert or replace; the old value if there was one.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`, inserted with `make` first if it is missing.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The greatest key.
    pub(crate) fn last_key(&self) -> Option<&K> {
        self.entries.last().map(|(k, _)| k)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::SortedMap;

    proptest! {
        /// Any sequence of inserts and removes leaves the same entries, in the same order,
        /// as a `BTreeMap`, and every call answers alike.
        #[test]
        fn behaves_as_a_btreemap(ops in proptest::collection::vec((any::<bool>(), 0u8..32, any::<u16>()), 0..200)) {
            let mut ours = SortedMap::default();
            let mut std_map = BTreeMap::new();
            for (insert, k, v) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(k, v), std_map.insert(k, v));
                } else {
                    prop_assert_eq!(ours.remove(&k), std_map.remove(&k));
                }
                prop_assert_eq!(ours.get(&k), std_map.get(&k));
                prop_assert_eq!(ours.contains_key(&k), std_map.contains_key(&k));
                prop_assert_eq!(ours.len(), std_map.len());
                prop_assert_eq!(ours.last_key(), std_map.keys().next_back());
            }
            prop_assert!(ours.iter().eq(std_map.iter()));
            *ours.get_or_insert_with(7, || 1) += 1;
            *std_map.entry(7).or_insert(1) += 1;
            prop_assert!(ours.keys().eq(std_map.keys()));
            prop_assert!(ours.values().eq(std_map.values()));
        }
    }
}
