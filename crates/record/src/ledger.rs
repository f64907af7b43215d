//! One service's inputs as the checker counts them: how often the serving instance applied
//! each, and the UE's input-log digest after each.
//!
//! A city run has millions of inputs per hour, so with a window the ledger keeps the dense
//! record of only the newest inputs. An input that leaves the window applied exactly once
//! becomes a count; one that leaves it applied any other number of times (not yet, or
//! already flagged) stays in a sparse map. Counting is therefore exact however old the
//! input; only the digest of a state older than the window can no longer be checked
//! ([`Ledger::digest`] is `None` there).

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
    /// ... and those that left it applied any other number of times. Rare while the
    /// service is served; a service lost for good (its UE sending into the void) leaves
    /// one entry per input here, so the window bounds the memory of served services only.
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

    /// The digest after inputs `1..=seq`, if the ledger still has it.
    pub(crate) fn digest(&self, seq: u64) -> Option<u128> {
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
        let before = match self.odd_below.get(&seq) {
            Some(c) => *c,
            None => {
                self.once_below -= 1;
                1
            }
        };
        let after = f(before);
        self.odd_below.remove(&seq);
        self.set_below(seq, after);
        Ok(after)
    }

    fn set_below(&mut self, seq: u64, count: u8) {
        if count == 1 {
            self.once_below += 1;
        } else {
            self.odd_below.insert(seq, count);
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
    }

    #[test]
    fn creation_out_of_order_is_refused() {
        let mut l = Ledger::new(Some(2));
        assert!(!l.create(2, b"x"));
        assert!(l.create(1, b"x"));
        assert!(!l.create(1, b"x"));
    }
}
