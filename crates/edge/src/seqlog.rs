//! [`SeqLog`]: byte strings by sequence number, oldest first, in one buffer.
//!
//! A live instance keeps the inputs it applied (for catch-ups) and every instance the
//! answers its UE may still ask for. Kept as a `Vec<u8>` each, that is an allocation per
//! input per instance and scattered memory, which a city run with thousands of services
//! paid for in allocator time and cache misses. Here the bytes go to one growing buffer,
//! entries name their place in it, and the buffer is compacted when most of it is dead.

use std::collections::VecDeque;

/// Compaction waits until this many bytes are dead (and more are dead than alive).
const COMPACT_AFTER: usize = 4096;

/// Byte strings by sequence number, ascending.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeqLog {
    /// Sequence number, start in `data`, length.
    entries: VecDeque<(u64, usize, u32)>,
    data: Vec<u8>,
    /// Bytes of `data` that entries still name.
    live: usize,
}

impl SeqLog {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn front_seq(&self) -> Option<u64> {
        self.entries.front().map(|e| e.0)
    }

    /// Appends `bytes` as `seq`, which must be above every number held (else it goes in
    /// its place, as [`SeqLog::insert`] does).
    pub(crate) fn push_back(&mut self, seq: u64, bytes: &[u8]) {
        if self.entries.back().is_some_and(|e| e.0 >= seq) {
            self.insert(seq, bytes);
            return;
        }
        let (start, len) = self.store(bytes);
        self.entries.push_back((seq, start, len));
    }

    /// Puts `bytes` in as `seq` where its number belongs, replacing one held as `seq`.
    pub(crate) fn insert(&mut self, seq: u64, bytes: &[u8]) {
        let (start, len) = self.store(bytes);
        let at = self.entries.partition_point(|e| e.0 < seq);
        match self.entries.get_mut(at) {
            Some(e) if e.0 == seq => {
                self.live -= e.2 as usize;
                *e = (seq, start, len);
            }
            _ => self.entries.insert(at, (seq, start, len)),
        }
        self.compact_if_mostly_dead();
    }

    /// Forgets the oldest entry.
    pub(crate) fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.live -= e.2 as usize;
            self.compact_if_mostly_dead();
        }
    }

    /// Forgets every entry numbered below `seq`.
    pub(crate) fn drop_below(&mut self, seq: u64) {
        while self.front_seq().is_some_and(|s| s < seq) {
            self.pop_front();
        }
    }

    /// The bytes held as `seq`.
    pub(crate) fn get(&self, seq: u64) -> Option<&[u8]> {
        let at = self.entries.partition_point(|e| e.0 < seq);
        self.entries
            .get(at)
            .filter(|e| e.0 == seq)
            .map(|e| self.bytes(*e))
    }

    /// Every entry numbered above `seq`, oldest first.
    pub(crate) fn after(&self, seq: u64) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let at = self.entries.partition_point(|e| e.0 <= seq);
        self.entries.range(at..).map(|e| (e.0, self.bytes(*e)))
    }

    /// The entries numbered above `seq` as inputs (a catch-up, a new shadow's sync).
    pub(crate) fn records_after(&self, seq: u64) -> Vec<edgeshift_proto::InputRecord> {
        self.after(seq)
            .map(|(seq, payload)| edgeshift_proto::InputRecord {
                seq,
                payload: payload.to_vec(),
            })
            .collect()
    }

    /// Every entry, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.entries.iter().map(|e| (e.0, self.bytes(*e)))
    }

    fn bytes(&self, (_, start, len): (u64, usize, u32)) -> &[u8] {
        self.data
            .get(start..start + len as usize)
            .unwrap_or_default()
    }

    /// Appends `bytes` to the buffer: where they start, and their length (nothing held
    /// comes near 4 GiB: inputs and answers fit in a frame).
    fn store(&mut self, bytes: &[u8]) -> (usize, u32) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if self.data.len() + len as usize > self.data.capacity()
            && (self.data.len() - self.live) * 4 >= self.data.len()
        {
            // Full, and a quarter of it dead: a first-in, first-out log stays at about
            // one and a half times what it holds instead of doubling.
            self.compact((self.live + len as usize) * 3 / 2);
        }
        let start = self.data.len();
        self.data.extend_from_slice(&bytes[..len as usize]);
        self.live += len as usize;
        (start, len)
    }

    /// After entries went: a log that is mostly dead bytes compacts (and gives its buffer
    /// back down to what it holds once that is under a quarter of it, see
    /// [`SeqLog::compact`]).
    fn compact_if_mostly_dead(&mut self) {
        let dead = self.data.len() - self.live;
        if dead >= COMPACT_AFTER && dead >= self.live {
            self.compact(self.live);
        }
    }

    /// Moves the live bytes to the front of a buffer of at least `capacity`, in entry
    /// order. In place when the entries lie in the buffer in their own order (a first-in,
    /// first-out log's always do) and the buffer is large enough: a log in its steady state
    /// then keeps one buffer instead of allocating, and the allocator faulting in, a new
    /// one at every compaction. A buffer more than four times what it needs is shrunk.
    fn compact(&mut self, capacity: usize) {
        let capacity = capacity.max(self.live);
        let in_order = self
            .entries
            .iter()
            .zip(self.entries.iter().skip(1))
            .all(|(a, b)| a.1 + a.2 as usize <= b.1)
            && self
                .entries
                .back()
                .is_none_or(|e| e.1 + e.2 as usize <= self.data.len());
        if in_order && capacity <= self.data.capacity() {
            let mut end = 0;
            for e in &mut self.entries {
                let len = e.2 as usize;
                self.data.copy_within(e.1..e.1 + len, end);
                e.1 = end;
                end += len;
            }
            self.data.truncate(end);
            if self.data.capacity() > 4 * capacity.max(COMPACT_AFTER) {
                self.data.shrink_to(capacity);
            }
            return;
        }
        let mut data = Vec::with_capacity(capacity);
        for e in &mut self.entries {
            let start = data.len();
            data.extend_from_slice(self.data.get(e.1..e.1 + e.2 as usize).unwrap_or_default());
            e.1 = start;
        }
        self.data = data;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Random pushes, inserts and drops against a map of vectors, through compactions.
    #[test]
    fn holds_what_a_map_of_vectors_holds() {
        let mut log = SeqLog::default();
        let mut map: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut h = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            h
        };
        let mut top = 0u64;
        for round in 0..20_000u64 {
            let r = next();
            let bytes: Vec<u8> = (0..r % 90).map(|i| (i ^ round) as u8).collect();
            match r % 10 {
                0..=5 => {
                    top += 1 + r % 3;
                    log.push_back(top, &bytes);
                    map.insert(top, bytes);
                }
                6 => {
                    let seq = next() % (top + 2);
                    log.insert(seq, &bytes);
                    map.insert(seq, bytes);
                }
                7 | 8 => {
                    log.pop_front();
                    map.pop_first();
                }
                _ => {
                    let below = map.keys().next().map_or(0, |k| k + next() % 5);
                    log.drop_below(below);
                    map.retain(|k, _| *k >= below);
                }
            }
            if round % 97 == 0 {
                let all: Vec<(u64, Vec<u8>)> = log.iter().map(|(s, b)| (s, b.to_vec())).collect();
                let want: Vec<(u64, Vec<u8>)> = map.iter().map(|(s, b)| (*s, b.clone())).collect();
                assert_eq!(all, want, "round {round}");
                let probe = next() % (top + 2);
                assert_eq!(log.get(probe), map.get(&probe).map(Vec::as_slice));
                let after: Vec<u64> = log.after(probe).map(|(s, _)| s).collect();
                let want: Vec<u64> = map.range(probe + 1..).map(|(s, _)| *s).collect();
                assert_eq!(after, want);
                assert_eq!(log.len(), map.len());
                assert_eq!(log.front_seq(), map.keys().next().copied());
                // The buffer is compacted: never mostly dead beyond the slack.
                assert!(log.data.len() - log.live < COMPACT_AFTER.max(log.live) + 90);
            }
        }
    }

    /// A first-in, first-out log (an input log at its cap) keeps its buffer: compactions
    /// move bytes within it instead of allocating.
    #[test]
    fn a_fifo_log_in_its_steady_state_keeps_one_buffer() {
        let mut log = SeqLog::default();
        let mut buffers = std::collections::HashSet::new();
        for seq in 1..=20_000u64 {
            let bytes = [u8::try_from(seq % 251).unwrap_or(0); 24];
            log.push_back(seq, &bytes);
            if log.len() > 1024 {
                log.pop_front();
            }
            if seq > 5_000 {
                buffers.insert(log.data.as_ptr() as usize);
            }
            assert_eq!(log.get(seq), Some(&bytes[..]));
        }
        assert_eq!(buffers.len(), 1, "the steady state reallocated");
        let first = log.front_seq();
        assert_eq!(first, Some(20_000 - 1023));
        assert_eq!(log.iter().count(), 1024);
    }
}
