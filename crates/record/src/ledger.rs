//! One service's inputs as the checker counts them: how often the serving instance applied
//! each, and the UE's input-log digest after each.
//!
//! A city run has millions of inputs per hour, so with a window the ledger keeps the dense
//! record of only the newest inputs. An input that leaves the window applied exactly once
//! becomes a count; runs of inputs that leave it never applied (a service that is not
//! served) become ranges, and the rare input applied more often (already flagged) stays in
//! a sparse map. Counting is therefore exact however old the input; only the digest of a
//! state older than the window can no longer be checked ([`Ledger::digest`] is `None`
//! there, and the checker calls that a violation).

use std::collections::{BTreeMap, VecDeque};

use edgeshift_edge::digest;

/// Counts and digests of one service's inputs (see the module docs).
#[derive(Debug)]
pub(crate) struct Ledger {
    /// Inputs `1..=dropped` left the dense record.
    dropped: u64,
    /// Applications of inputs `dropped + 1 ..`, in order.
    applied: VecDeque<u8>,
    /// Digest after inputs `dropped ..`, in order (after input 0: the genesis digest).
    digests: VecDeque<u128>,
    /// Inputs that left the dense record applied exactly once...
    once_below: u64,
    /// ... never, as ranges (first → last): a service lost for good, its UE sending into
    /// the void, adds to one range instead of an entry per input...
    never_below: BTreeMap<u64, u64>,
    /// ... and more than once.
    odd_below: BTreeMap<u64, u8>,
    /// Digests kept densely, at most (`None`: all); one more than the inputs.
    window: Option<usize>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new(None)
    }
}

/// The serving instance applied an input the UE never created.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NeverSent;

impl Ledger {
    /// A ledger keeping the digests of the newest `window` inputs densely (`None`: every
    /// input).
    pub(crate) fn new(window: Option<usize>) -> Self {
        Self {
            dropped: 0,
            applied: VecDeque::new(),
            digests: VecDeque::from([digest::GENESIS]),
            once_below: 0,
            never_below: BTreeMap::new(),
            odd_below: BTreeMap::new(),
            window: window.map(|w| w.max(2)),
        }
    }

    /// Keeps the digests of the newest `window` inputs densely from now on (`None`: all).
    pub(crate) fn set_window(&mut self, window: Option<usize>) {
        self.window = window.map(|w| w.max(2));
    }

    /// Inputs the UE created.
    pub(crate) fn sent(&self) -> u64 {
        self.dropped + self.applied.len() as u64
    }

    /// Inputs applied exactly once.
    pub(crate) fn once(&self) -> u64 {
        self.once_below + self.applied.iter().filter(|c| **c == 1).count() as u64
    }

    /// The UE created input `seq` (the next one) with `payload`; `false` if out of order.
    pub(crate) fn create(&mut self, seq: u64, payload: &[u8]) -> bool {
        if seq != self.sent() + 1 {
            return false;
        }
        let prev = self.digests.back().copied().unwrap_or(digest::GENESIS);
        if let Some(w) = self.window {
            // Room first: pushing past `w` would double the deques' capacity.
            while self.digests.len() >= w
                && let Some(count) = self.applied.pop_front()
            {
                self.digests.pop_front();
                self.dropped += 1;
                self.set_below(self.dropped, count);
            }
        }
        self.digests.push_back(digest::chain(prev, seq, payload));
        self.applied.push_back(0);
        true
    }

    /// One more application of `seq`; its count now.
    pub(crate) fn count(&mut self, seq: u64) -> Result<u8, NeverSent> {
        self.adjust(seq, |c| c.saturating_add(1))
    }

    /// One application of `seq` fewer (it was undone).
    pub(crate) fn uncount(&mut self, seq: u64) {
        let _ = self.adjust(seq, |c| c.saturating_sub(1));
    }

    /// The digest after inputs `1..=seq`, if the ledger still has it (after none: the
    /// genesis digest, always).
    pub(crate) fn digest(&self, seq: u64) -> Option<u128> {
        if seq == 0 {
            return Some(digest::GENESIS);
        }
        let i = usize::try_from(seq.checked_sub(self.dropped)?).ok()?;
        self.digests.get(i).copied()
    }

    fn adjust(&mut self, seq: u64, f: impl FnOnce(u8) -> u8) -> Result<u8, NeverSent> {
        if seq == 0 || seq > self.sent() {
            return Err(NeverSent);
        }
        if seq > self.dropped {
            let i = usize::try_from(seq - self.dropped - 1).map_err(|_| NeverSent)?;
            let c = self.applied.get_mut(i).ok_or(NeverSent)?;
            *c = f(*c);
            return Ok(*c);
        }
        let before = if let Some(c) = self.odd_below.remove(&seq) {
            c
        } else if let Some((first, last)) = self.never_range(seq) {
            // Split the range around `seq`.
            self.never_below.remove(&first);
            if first < seq {
                self.never_below.insert(first, seq - 1);
            }
            if seq < last {
                self.never_below.insert(seq + 1, last);
            }
            0
        } else {
            self.once_below -= 1;
            1
        };
        let after = f(before);
        self.set_below(seq, after);
        Ok(after)
    }

    /// The range of never-applied inputs below the window that holds `seq`.
    fn never_range(&self, seq: u64) -> Option<(u64, u64)> {
        let (&first, &last) = self.never_below.range(..=seq).next_back()?;
        (seq <= last).then_some((first, last))
    }

    fn set_below(&mut self, seq: u64, count: u8) {
        match count {
            1 => self.once_below += 1,
            0 => {
                // Join the range just below and the one just above, if any.
                let below = self
                    .never_below
                    .range(..seq)
                    .next_back()
                    .filter(|(_, last)| last.checked_add(1) == Some(seq))
                    .map(|(first, _)| *first);
                let above = seq.checked_add(1).and_then(|n| self.never_below.remove(&n));
                let first = below.unwrap_or(seq);
                self.never_below.insert(first, above.unwrap_or(seq));
            }
            _ => {
                self.odd_below.insert(seq, count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same inputs and applications in a windowed and an unbounded ledger.
    fn both(window: usize) -> [Ledger; 2] {
        [Ledger::new(Some(window)), Ledger::new(None)]
    }

    #[test]
    fn counts_stay_exact_past_the_window_and_digests_go() {
        for l in &mut both(4) {
            for seq in 1..=10 {
                assert!(l.create(seq, &[seq as u8]));
                if seq != 3 {
                    assert_eq!(l.count(seq), Ok(1));
                }
            }
            // Input 2 applied again long after it left the window; input 3 late.
            assert_eq!(l.count(2), Ok(2));
            assert_eq!(l.count(3), Ok(1));
            // Undone and applied again: once.
            l.uncount(1);
            assert_eq!(l.count(1), Ok(1));
            assert_eq!((l.sent(), l.once()), (10, 9));
            assert_eq!(l.count(11), Err(NeverSent));
            assert_eq!(l.count(0), Err(NeverSent));
        }
        let [mut windowed, mut full] = both(4);
        for seq in 1..=10 {
            windowed.create(seq, &[1]);
            full.create(seq, &[1]);
        }
        assert_eq!(windowed.digest(10), full.digest(10));
        // Four digests kept: after inputs 7 to 10.
        assert_eq!(windowed.digest(7), full.digest(7));
        assert_eq!(windowed.digest(6), None);
        assert_eq!(full.digest(0), Some(digest::GENESIS));
        assert_eq!(windowed.digest(0), Some(digest::GENESIS));
        assert_eq!(windowed.digest(11), None);
    }

    #[test]
    fn inputs_never_applied_past_the_window_are_one_range() {
        let mut l = Ledger::new(Some(4));
        for seq in 1..=1000 {
            assert!(l.create(seq, b"x"));
        }
        // Nothing applied (a service lost for good): one range, not 997 entries.
        assert_eq!(l.never_below.len(), 1);
        assert!(l.odd_below.is_empty());
        // Applied late: the range splits around it, and joins again when undone.
        assert_eq!(l.count(500), Ok(1));
        assert_eq!(l.never_below.len(), 2);
        assert_eq!((l.sent(), l.once()), (1000, 1));
        assert_eq!(l.count(500), Ok(2));
        assert_eq!(l.never_below.len(), 2);
        l.uncount(500);
        l.uncount(500);
        assert_eq!(l.never_below.len(), 1);
        assert_eq!(l.count(1), Ok(1));
        assert_eq!(l.count(997), Ok(1));
        assert_eq!(l.never_below.len(), 1);
        assert_eq!((l.sent(), l.once()), (1000, 2));
    }

    #[test]
    fn creation_out_of_order_is_refused() {
        let mut l = Ledger::new(Some(2));
        assert!(!l.create(2, b"x"));
        assert!(l.create(1, b"x"));
        assert!(!l.create(1, b"x"));
    }
}
