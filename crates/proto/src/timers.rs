//! [`TimerTable`]: a role's pending timers, one deadline per key.
//!
//! Roles used to keep `BTreeSet<(Instant, Timer)>` and cancel with `retain`, which walks
//! every timer of every service on each message. The table indexes the same entries by key
//! too, so arming, moving and cancelling cost `O(log n)` whatever the number of services,
//! and timers that fall due together still fire in `(deadline, key)` order, exactly as the
//! set did.
//!
//! ```
//! use edgeshift_proto::{Instant, TimerTable};
//! let mut t = TimerTable::new();
//! t.set(("trigger", 7), Instant::from_millis(40));
//! t.set(("expiry", 7), Instant::from_millis(900));
//! t.set(("trigger", 7), Instant::from_millis(50)); // moves it
//! assert_eq!(t.next_deadline(), Some(Instant::from_millis(50)));
//! assert_eq!(t.pop_due(Instant::from_millis(60)), Some((Instant::from_millis(50), ("trigger", 7))));
//! assert_eq!(t.pop_due(Instant::from_millis(60)), None);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;

use crate::Instant;

/// Pending timers keyed by `K`: at most one deadline per key.
#[derive(Clone, Debug)]
pub struct TimerTable<K> {
    by_key: BTreeMap<K, Instant>,
    queue: BTreeSet<(Instant, K)>,
}

impl<K> Default for TimerTable<K> {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
            queue: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy> TimerTable<K> {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `key` at `at`, replacing any deadline it had.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.queue.remove(&(old, key));
        }
        self.queue.insert((at, key));
    }

    /// Arms `key` at `at` unless it is already armed; returns whether it armed it.
    pub fn set_if_unset(&mut self, key: K, at: Instant) -> bool {
        if self.by_key.contains_key(&key) {
            return false;
        }
        self.set(key, at);
        true
    }

    /// Disarms `key`; returns the deadline it had.
    pub fn cancel(&mut self, key: K) -> Option<Instant> {
        let at = self.by_key.remove(&key)?;
        self.queue.remove(&(at, key));
        Some(at)
    }

    /// Disarms every key in `range` (keys that share a prefix, such as all timers of one
    /// service, form a range when the service comes first in the key's order).
    pub fn cancel_range<R: RangeBounds<K>>(&mut self, range: R) {
        let keys: Vec<(K, Instant)> = self.by_key.range(range).map(|(k, at)| (*k, *at)).collect();
        for (k, at) in keys {
            self.by_key.remove(&k);
            self.queue.remove(&(at, k));
        }
    }

    /// Disarms every key for which `drop` says so. Walks the whole table: for rare events
    /// (a restart, a crash), not for every message.
    pub fn cancel_where(&mut self, mut drop: impl FnMut(&K) -> bool) {
        let keys: Vec<K> = self.by_key.keys().filter(|k| drop(k)).copied().collect();
        for k in keys {
            self.cancel(k);
        }
    }

    /// The deadline of `key`, if armed.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<Instant> {
        self.by_key.get(key).copied()
    }

    /// Whether `key` is armed.
    #[must_use]
    pub fn contains(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }

    /// The earliest deadline (what `poll_timeout` returns).
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        let &(at, key) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.pop_first();
        self.by_key.remove(&key);
        Some((at, key))
    }

    /// Every armed timer in firing order.
    pub fn iter(&self) -> impl Iterator<Item = (Instant, K)> + '_ {
        self.queue.iter().copied()
    }

    /// Armed timers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no timer is armed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

impl<K: Ord + Copy> FromIterator<(Instant, K)> for TimerTable<K> {
    fn from_iter<I: IntoIterator<Item = (Instant, K)>>(iter: I) -> Self {
        let mut t = Self::new();
        for (at, k) in iter {
            t.set(k, at);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn fires_in_deadline_then_key_order() {
        let mut t = TimerTable::new();
        t.set(3u32, ms(10));
        t.set(1, ms(10));
        t.set(2, ms(5));
        let fired: Vec<u32> = std::iter::from_fn(|| t.pop_due(ms(10)).map(|(_, k)| k)).collect();
        assert_eq!(fired, vec![2, 1, 3]);
        assert!(t.is_empty());
    }

    #[test]
    fn set_replaces_and_set_if_unset_keeps() {
        let mut t = TimerTable::new();
        t.set(1u32, ms(10));
        assert!(!t.set_if_unset(1, ms(1)));
        assert_eq!(t.get(&1), Some(ms(10)));
        t.set(1, ms(20));
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(ms(20)));
        assert_eq!(t.pop_due(ms(19)), None);
    }

    #[test]
    fn cancel_range_drops_one_prefix_only() {
        let mut t = TimerTable::new();
        for (svc, srv) in [(1u32, 1u32), (1, 2), (2, 1)] {
            t.set((svc, srv), ms(u64::from(svc * 10 + srv)));
        }
        t.cancel_range((1, 0)..=(1, u32::MAX));
        assert_eq!(t.iter().map(|(_, k)| k).collect::<Vec<_>>(), vec![(2, 1)]);
        assert_eq!(t.cancel((2, 1)), Some(ms(21)));
        assert_eq!(t.next_deadline(), None);
    }
}
