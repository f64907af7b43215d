//! [`SeqMap`]: the UE's unanswered inputs by number, in one ring buffer.
//!
//! A UE numbers its inputs 1, 2, 3… and they are answered mostly in order, so the numbers
//! still unanswered are a short window above the oldest one. A slot per number in that
//! window finds, inserts and removes in constant time, where a tree map (what this
//! replaced) paid a node search and, at thousands of UEs, cache misses on every input.

use std::collections::VecDeque;

/// Values by sequence number; numbers are inserted ascending.
#[derive(Clone, Debug)]
pub(crate) struct SeqMap<T> {
    /// The number of the front slot.
    base: u64,
    slots: VecDeque<Option<T>>,
    len: usize,
}

impl<T> Default for SeqMap<T> {
    fn default() -> Self {
        Self {
            base: 0,
            slots: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> SeqMap<T> {
    /// Adds `value` as `seq`, which must be above every number held (a number at or below
    /// the highest is ignored: the UE never reuses one; an empty map takes any). The slots
    /// span from the oldest number held to the newest, so an input left unanswered keeps a
    /// slot for every later number until it is answered.
    pub(crate) fn push(&mut self, seq: u64, value: T) {
        if self.slots.is_empty() {
            self.base = seq;
        }
        let Some(at) = seq
            .checked_sub(self.base)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|at| *at >= self.slots.len())
        else {
            return;
        };
        self.slots.resize_with(at, || None);
        self.slots.push_back(Some(value));
        self.len += 1;
    }

    fn index(&self, seq: u64) -> Option<usize> {
        seq.checked_sub(self.base)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|at| *at < self.slots.len())
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&T> {
        self.slots.get(self.index(seq)?)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let at = self.index(seq)?;
        self.slots.get_mut(at)?.as_mut()
    }

    pub(crate) fn remove(&mut self, seq: u64) -> Option<T> {
        let at = self.index(seq)?;
        let value = self.slots.get_mut(at)?.take()?;
        self.len -= 1;
        // Empty slots at the front go, so the front is always the oldest held.
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The lowest number held.
    pub(crate) fn first(&self) -> Option<u64> {
        self.slots.front().map(|_| self.base)
    }

    /// The numbers held, ascending.
    pub(crate) fn keys(&self) -> Vec<u64> {
        self.held().collect()
    }

    /// The numbers held above `after`, ascending.
    pub(crate) fn keys_after(&self, after: u64) -> Vec<u64> {
        self.held().filter(|seq| *seq > after).collect()
    }

    /// The numbers held with their values, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots
            .iter()
            .zip(self.base..)
            .filter_map(|(v, seq)| v.as_ref().map(|v| (seq, v)))
    }

    fn held(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(seq, _)| seq)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn does_what_a_tree_map_does_for_ascending_inserts() {
        let mut next = crate::xorshift(0x9E37_79B9_7F4A_7C15u64);
        let (mut map, mut tree) = (SeqMap::default(), BTreeMap::new());
        let mut seq = 0u64;
        for _ in 0..20_000 {
            match next() % 4 {
                0 | 1 => {
                    seq += 1 + next() % 3; // gaps happen too
                    map.push(seq, seq * 10);
                    tree.insert(seq, seq * 10);
                }
                2 => {
                    // Mostly the oldest, sometimes any.
                    let pick = if next().is_multiple_of(3) {
                        seq.saturating_sub(next() % 8)
                    } else {
                        tree.keys().next().copied().unwrap_or(0)
                    };
                    assert_eq!(map.remove(pick), tree.remove(&pick));
                }
                _ => {
                    let probe = seq.saturating_sub(next() % 10);
                    assert_eq!(map.get(probe), tree.get(&probe));
                    if let Some(v) = map.get_mut(probe) {
                        *v += 1;
                    }
                    if let Some(v) = tree.get_mut(&probe) {
                        *v += 1;
                    }
                }
            }
            assert_eq!(map.len(), tree.len());
            assert_eq!(map.first(), tree.keys().next().copied());
        }
        let after = seq.saturating_sub(20);
        let want: Vec<u64> = tree.range(after + 1..).map(|(k, _)| *k).collect();
        assert_eq!(map.keys_after(after), want);
        assert_eq!(map.keys(), tree.keys().copied().collect::<Vec<_>>());
        // A number not above the highest is ignored.
        let before = map.len();
        map.push(1, 0);
        assert_eq!(map.len(), before);
    }
}
