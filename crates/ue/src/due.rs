//! [`DueHeap`]: when the UE's unanswered inputs are due to be sent again, as a min-heap of
//! `(deadline, number)` with lazy deletion.
//!
//! Every input has a retransmission deadline from its send until its answer. A timer table
//! (two tree maps) paid four tree operations per input for that, most of them to cancel
//! a deadline that was never reached. Here the caller keeps each input's current deadline
//! (its `current` function) and the heap only orders them: arming pushes, cancelling does
//! nothing, and entries whose deadline is no longer current are dropped when they reach
//! the top. After [`DueHeap::settle`] the top is current, so [`DueHeap::next`] is the
//! earliest deadline, and inputs fall due in `(deadline, number)` order, as the table did.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use edgeshift_proto::Instant;

/// Deadlines by input number (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct DueHeap {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl DueHeap {
    /// `seq` is due at `at` (the caller now holds `at` as its deadline).
    pub(crate) fn push(&mut self, seq: u64, at: Instant) {
        self.heap.push(Reverse((at, seq)));
    }

    /// Drops entries from the top until the top is current (`current(seq)` is the deadline
    /// `seq` has now, `None` if it has none); rebuilds the heap from `all` when stale
    /// entries are most of it, so that inputs answered out of order cannot grow it.
    pub(crate) fn settle(
        &mut self,
        current: impl Fn(u64) -> Option<Instant>,
        all: impl FnOnce() -> Vec<(u64, Instant)>,
        held: usize,
    ) {
        while let Some(&Reverse((at, seq))) = self.heap.peek() {
            if current(seq) == Some(at) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 64 && self.heap.len() > 4 * held {
            self.heap = all()
                .into_iter()
                .map(|(seq, at)| Reverse((at, seq)))
                .collect();
        }
    }

    /// The earliest deadline (after [`DueHeap::settle`]).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest current entry if it is due at `now`, taken off the heap; the caller
    /// clears its deadline (a copy of the same entry, pushed again later, is then stale).
    pub(crate) fn pop_due(
        &mut self,
        now: Instant,
        current: impl Fn(u64) -> Option<Instant>,
    ) -> Option<u64> {
        while let Some(&Reverse((at, seq))) = self.heap.peek() {
            if current(seq) != Some(at) {
                self.heap.pop();
                continue;
            }
            if at > now {
                return None;
            }
            self.heap.pop();
            return Some(seq);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeshift_proto::TimerTable;

    use super::*;

    /// Deadlines kept by the caller, as the UE keeps them in its unanswered inputs.
    #[derive(Default)]
    struct Caller {
        due: DueHeap,
        deadlines: BTreeMap<u64, Instant>,
    }

    impl Caller {
        fn set(&mut self, seq: u64, at: Instant) {
            self.deadlines.insert(seq, at);
            self.due.push(seq, at);
            self.settle();
        }

        fn cancel(&mut self, seq: u64) {
            self.deadlines.remove(&seq);
            self.settle();
        }

        fn settle(&mut self) {
            let d = &self.deadlines;
            self.due.settle(
                |s| d.get(&s).copied(),
                || d.iter().map(|(s, at)| (*s, *at)).collect(),
                d.len(),
            );
        }

        fn pop_due(&mut self, now: Instant) -> Option<u64> {
            let d = &self.deadlines;
            let seq = self.due.pop_due(now, |s| d.get(&s).copied())?;
            self.deadlines.remove(&seq);
            self.settle();
            Some(seq)
        }
    }

    #[test]
    fn falls_due_as_a_timer_table_does() {
        let mut next = crate::xorshift(0x2545_F491_4F6C_DD1Du64);
        let (mut heap, mut table) = (Caller::default(), TimerTable::new());
        let mut now = 0u64;
        for _ in 0..50_000 {
            let seq = next() % 200;
            match next() % 5 {
                0 | 1 => {
                    // Few distinct deadlines, so that ties and re-arming at an old
                    // deadline happen.
                    let at = Instant::from_millis(now + next() % 40);
                    heap.set(seq, at);
                    table.set(seq, at);
                }
                2 => {
                    heap.cancel(seq);
                    table.cancel(seq);
                }
                3 => {
                    now += next() % 10;
                    let now = Instant::from_millis(now);
                    loop {
                        let want = table.pop_due(now).map(|(_, k)| k);
                        assert_eq!(heap.pop_due(now), want);
                        if want.is_none() {
                            break;
                        }
                    }
                }
                _ => {}
            }
            assert_eq!(heap.due.next(), table.next_deadline());
        }
        // Mostly stale entries are rebuilt away.
        assert!(heap.due.heap.len() <= 64.max(4 * heap.deadlines.len()));
    }
}
