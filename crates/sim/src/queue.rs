//! [`EventQueue`]: the simulator's pending events in (time, insertion) order.
//!
//! The heap holds only 24-byte keys; the events themselves sit in a slab whose freed slots
//! are reused first. A sift then touches a third of the memory it would with whole events
//! in the heap, which is what the per-event cost of a run with thousands of UEs depends on.
//! The heap is 4-ary: half the levels of a binary heap, and the four children of a node
//! share a cache line or two, so a pop from a heap of a million keys misses the cache
//! about half as often.

use edgeshift_proto::Instant;

/// Children per node of the heap.
const ARITY: usize = 4;

/// Events due at instants, popped earliest first, ties in insertion order.
#[derive(Debug)]
pub(crate) struct EventQueue<E> {
    /// A min-heap of (time, insertion number, slot).
    heap: Vec<(Instant, u64, u32)>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: Vec::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `ev` at `at`.
    pub(crate) fn push(&mut self, at: Instant, ev: E) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(ev);
                s
            }
            None => {
                self.slab.push(Some(ev));
                // More than 4 billion pending events would not fit in memory anyway.
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.sift_up((at, self.seq, slot));
    }

    /// When the earliest event is due.
    pub(crate) fn peek_at(&self) -> Option<Instant> {
        self.heap.first().map(|k| k.0)
    }

    /// Every pending event in queue order, leaving the queue empty.
    pub(crate) fn drain(&mut self) -> Vec<(Instant, E)> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    /// The earliest event and its time.
    pub(crate) fn pop(&mut self) -> Option<(Instant, E)> {
        loop {
            let (at, _, slot) = self.pop_key()?;
            let ev = self.slab.get_mut(slot as usize).and_then(Option::take);
            self.free.push(slot);
            if let Some(ev) = ev {
                return Some((at, ev));
            }
        }
    }

    fn sift_up(&mut self, key: (Instant, u64, u32)) {
        let mut i = self.heap.len();
        self.heap.push(key);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if order(&self.heap[parent]) < order(&key) {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = key;
    }

    /// Takes the least key: the last one moves to the root's place and sinks to where it
    /// belongs.
    fn pop_key(&mut self) -> Option<(Instant, u64, u32)> {
        let last = self.heap.pop()?;
        let Some(&top) = self.heap.first() else {
            return Some(last);
        };
        let n = self.heap.len();
        let mut i = 0;
        loop {
            let first = i * ARITY + 1;
            if first >= n {
                break;
            }
            let end = (first + ARITY).min(n);
            let mut least = first;
            for c in first + 1..end {
                if order(&self.heap[c]) < order(&self.heap[least]) {
                    least = c;
                }
            }
            if order(&last) <= order(&self.heap[least]) {
                break;
            }
            self.heap[i] = self.heap[least];
            i = least;
        }
        self.heap[i] = last;
        Some(top)
    }
}

/// A key's place in the queue: its time, then its insertion number (unique, so no two keys
/// tie).
fn order(k: &(Instant, u64, u32)) -> (Instant, u64) {
    (k.0, k.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let mut q = EventQueue::default();
        let t = Instant::from_millis;
        q.push(t(5), "b");
        q.push(t(1), "a");
        q.push(t(5), "c");
        assert_eq!(q.pop(), Some((t(1), "a")));
        q.push(t(3), "d"); // reuses the freed slot
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(rest, ["d", "b", "c"]);
        assert_eq!(q.pop(), None);
    }

    /// A small deterministic generator (xorshift).
    fn draws(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn pops_in_the_order_of_a_sorted_list_through_mixed_pushes_and_pops() {
        let mut next = draws(0x9E37_79B9_7F4A_7C15);
        let mut q = EventQueue::default();
        // What the queue should hold: (time, insertion number), sorted on demand.
        let mut model: Vec<(u64, u64)> = Vec::new();
        let mut pushed = 0u64;
        for _ in 0..20_000 {
            if next().is_multiple_of(3) {
                model.sort_unstable();
                let want = (!model.is_empty()).then(|| model.remove(0));
                let got = q.pop().map(|(at, n): (Instant, u64)| (at.0, n));
                assert_eq!(got, want);
            } else {
                pushed += 1;
                // Few distinct times, so that ties are common.
                let at = next() % 50;
                q.push(Instant(at), pushed);
                model.push((at, pushed));
            }
        }
        model.sort_unstable();
        let rest: Vec<(u64, u64)> = std::iter::from_fn(|| q.pop())
            .map(|(at, n)| (at.0, n))
            .collect();
        assert_eq!(rest, model);
    }
}
