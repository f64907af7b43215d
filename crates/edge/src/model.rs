//! The modelled service (kind `"model"`): a state accounted by size, for runs with
//! thousands of UEs that cannot hold 128 MiB each.
//!
//! The service stands for `state_bytes` of state. What it holds is a 32-byte record: the
//! xxh3 digest chained over every input applied, the number applied, and the size it
//! stands for. So the exactly-once and twin checks still see every input, in order, while
//! a shadow costs a few hundred bytes of memory.
//!
//! The size shows where it costs:
//! - [`Service::footprint`] is `state_bytes`: the control node plans shadow transfers
//!   with it, and a server's memory budget counts it;
//! - each input dirties `dirty_bytes_per_input` bytes, in 4 KiB chunks at places drawn from
//!   the digest (so repeated writes to a chunk coalesce, as a real working set does);
//!   [`Service::dirty_bytes`] and pre-copy convergence see them;
//! - on the wire a state transfer carries the record, and a delta carries the record plus
//!   one empty marker chunk per modelled dirty chunk. A driver that models link time
//!   (the simulator) adds what the record stands for with [`ModelConfig::wire_extra`].

use edgeshift_proto::{CodeRef, DeltaChunk, Message, ServiceSpec, SyncBody};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128, xxh3_128_with_seed};

use crate::memservice::{CHUNK, MemConfig, builtin_spec};
use crate::service::{Service, ServiceError};

/// Runtime kind of the modelled service.
pub const MODEL_KIND: &str = "model";
/// Its "program code": compiled in, the bytes name its version.
pub const MODEL_CODE: &[u8] = b"edgeshift-model-service-v1";
/// Bytes the service really holds: digest (16), inputs applied (8), size stood for (8).
const RECORD: usize = 32;

/// Configuration of a [`ModelService`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The state size it stands for (bytes, 4 KiB to 4 GiB).
    pub state_bytes: u64,
    /// Bytes each input writes.
    pub dirty_bytes_per_input: u64,
}

impl ModelConfig {
    /// Largest size stood for: as the in-memory service's.
    pub const MAX_STATE: u64 = MemConfig::MAX_STATE;

    /// Encodes the config for [`ServiceSpec::config`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// A spec deploying the modelled service with this config.
    #[must_use]
    pub fn spec(&self, latency_budget_ms: u32) -> ServiceSpec {
        builtin_spec(MODEL_KIND, MODEL_CODE, self.encode(), latency_budget_ms)
    }

    /// The config of `spec` if it deploys the modelled service.
    #[must_use]
    pub fn of(spec: &ServiceSpec) -> Option<Self> {
        match &spec.code {
            CodeRef::Inline { kind, bytes } if kind == MODEL_KIND && bytes == MODEL_CODE => {
                postcard::from_bytes(&spec.config).ok()
            }
            _ => None,
        }
    }

    fn check(&self) -> Result<(), ServiceError> {
        if !(CHUNK as u64..=Self::MAX_STATE).contains(&self.state_bytes) {
            return Err(ServiceError::InvalidConfig(format!(
                "state_bytes {} outside {CHUNK}..={}",
                self.state_bytes,
                Self::MAX_STATE
            )));
        }
        if self.dirty_bytes_per_input > self.state_bytes {
            return Err(ServiceError::InvalidConfig(format!(
                "dirty_bytes_per_input {} exceeds state_bytes {}",
                self.dirty_bytes_per_input, self.state_bytes
            )));
        }
        Ok(())
    }

    fn chunks(&self) -> u64 {
        self.state_bytes.div_ceil(CHUNK as u64)
    }

    /// Bytes a state message of a service deployed with this config stands for beyond its
    /// frame: the whole state on a transfer's first chunk, a chunk per marker of a delta.
    /// Inputs (replay sync) are real and add nothing.
    #[must_use]
    pub fn wire_extra(&self, msg: &Message) -> u64 {
        let delta = |body: &SyncBody| match body {
            SyncBody::Delta(d) => {
                let markers = d
                    .chunks
                    .iter()
                    .filter(|c| c.index > 0 && c.data.is_empty())
                    .count();
                (markers as u64).saturating_mul(CHUNK as u64)
            }
            SyncBody::Inputs(_) => 0,
        };
        match msg {
            Message::ShadowTransfer(t) if t.offset == 0 => {
                self.state_bytes.saturating_sub(t.total_len)
            }
            Message::ShadowSync(s) => delta(&s.body),
            Message::CatchUp(c) => delta(&c.body),
            _ => 0,
        }
    }
}

/// The modelled service.
#[derive(Debug)]
pub struct ModelService {
    cfg: ModelConfig,
    digest: u128,
    applied: u64,
    /// Modelled chunks (index ≥ 1) written since the last delta.
    dirty: ChunkSet,
    /// Whether the record (chunk 0) changed since the last delta.
    record_dirty: bool,
    /// A restore in progress.
    incoming: Option<[u8; RECORD]>,
}

/// The modelled chunks written since the last delta: one bit per chunk, grown to the
/// highest one written (at most 4 KiB for 128 MiB of state). A tree set did this before,
/// at a node allocation every few inserts and a search per insert (8 % of a city run's
/// samples); this iterates in the same ascending order.
#[derive(Clone, Debug, Default)]
struct ChunkSet {
    words: Vec<u64>,
    len: u64,
}

impl ChunkSet {
    fn insert(&mut self, index: u64) {
        let (w, bit) = (
            usize::try_from(index / 64).unwrap_or(usize::MAX),
            index % 64,
        );
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let mask = 1u64 << bit;
        if self.words[w] & mask == 0 {
            self.words[w] |= mask;
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.words.fill(0);
        self.len = 0;
    }

    /// The chunks, lowest first (indices beyond `u32` are never drawn: the state is at
    /// most 4 GiB, a million chunks).
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, word)| {
            let mut rest = *word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                u32::try_from(w * 64).ok().map(|base| base + bit)
            })
        })
    }
}

impl ModelService {
    /// A fresh instance.
    ///
    /// # Errors
    /// A size outside 4 KiB..=4 GiB, or more dirtied per input than the state.
    pub fn new(cfg: ModelConfig) -> Result<Self, ServiceError> {
        cfg.check()?;
        Ok(Self {
            cfg,
            digest: 0,
            applied: 0,
            dirty: ChunkSet::default(),
            record_dirty: false,
            incoming: None,
        })
    }

    fn record(&self) -> [u8; RECORD] {
        let mut r = [0; RECORD];
        r[..16].copy_from_slice(&self.digest.to_le_bytes());
        r[16..24].copy_from_slice(&self.applied.to_le_bytes());
        r[24..].copy_from_slice(&self.cfg.state_bytes.to_le_bytes());
        r
    }

    fn set_record(&mut self, r: &[u8]) -> Result<(), ServiceError> {
        let field = |a: usize, b: usize| r.get(a..b).unwrap_or_default();
        let (Ok(digest), Ok(applied), Ok(size)) = (
            <[u8; 16]>::try_from(field(0, 16)),
            <[u8; 8]>::try_from(field(16, 24)),
            <[u8; 8]>::try_from(field(24, 32)),
        ) else {
            return Err(ServiceError::BadState(format!(
                "a modelled state is {RECORD} bytes, not {}",
                r.len()
            )));
        };
        let size = u64::from_le_bytes(size);
        if size != self.cfg.state_bytes {
            return Err(ServiceError::BadState(format!(
                "the state stands for {size} bytes, this service for {}",
                self.cfg.state_bytes
            )));
        }
        self.digest = u128::from_le_bytes(digest);
        self.applied = u64::from_le_bytes(applied);
        Ok(())
    }
}

impl Service for ModelService {
    fn step(&mut self, seq: u64, input: &[u8]) -> Result<Vec<u8>, ServiceError> {
        // The previous digest, then the input; on the stack for the usual small input.
        let mut small = [0u8; 16 + 64];
        let mut large = Vec::new();
        let buf: &[u8] = if let Some(rest) = small.get_mut(16..16 + input.len()) {
            rest.copy_from_slice(input);
            small[..16].copy_from_slice(&self.digest.to_le_bytes());
            &small[..16 + input.len()]
        } else {
            large.reserve_exact(16 + input.len());
            large.extend_from_slice(&self.digest.to_le_bytes());
            large.extend_from_slice(input);
            &large
        };
        self.digest = xxh3_128_with_seed(buf, seq);
        self.applied += 1;
        self.record_dirty = true;
        // The chunks this input writes, drawn from the digest; chunk 0 is the record.
        let chunks = self.cfg.chunks();
        let writes = self.cfg.dirty_bytes_per_input.div_ceil(CHUNK as u64);
        let mut h = self.digest as u64;
        for _ in 0..writes.min(chunks) {
            h = xxh3_64_with_seed(&h.to_le_bytes(), seq);
            if chunks > 1 {
                let index = 1 + h % (chunks - 1);
                self.dirty.insert(index);
            }
        }
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.digest.to_le_bytes());
        Ok(out)
    }

    fn read_state(&self, offset: u64, out: &mut [u8]) {
        let r = self.record();
        let start = usize::try_from(offset).unwrap_or(RECORD).min(RECORD);
        let n = out.len().min(RECORD - start);
        out[..n].copy_from_slice(&r[start..start + n]);
    }

    fn begin_restore(&mut self, total_len: u64) -> Result<(), ServiceError> {
        if total_len != RECORD as u64 {
            return Err(ServiceError::BadState(format!(
                "a modelled state is {RECORD} bytes, not {total_len}"
            )));
        }
        self.incoming = Some([0; RECORD]);
        Ok(())
    }

    fn restore_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), ServiceError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.checked_add(data.len()).filter(|e| *e <= RECORD);
        match (self.incoming.as_mut(), end) {
            (Some(r), Some(end)) => {
                r[start..end].copy_from_slice(data);
                Ok(())
            }
            (None, _) => Err(ServiceError::BadState("a piece without a restore".into())),
            (_, None) => Err(ServiceError::BadState(format!(
                "piece at {offset} of {} bytes exceeds the {RECORD}-byte state",
                data.len()
            ))),
        }
    }

    fn finish_restore(&mut self) -> Result<(), ServiceError> {
        let Some(r) = self.incoming.take() else {
            return Err(ServiceError::BadState("no restore to finish".into()));
        };
        self.set_record(&r)?;
        self.dirty.clear();
        self.record_dirty = false;
        Ok(())
    }

    fn take_delta(&mut self) -> (u64, Vec<DeltaChunk>) {
        let mut chunks = Vec::with_capacity(usize::try_from(self.dirty.len).unwrap_or(0) + 1);
        if std::mem::take(&mut self.record_dirty) {
            chunks.push(DeltaChunk {
                index: 0,
                data: self.record().to_vec(),
            });
        }
        chunks.extend(self.dirty.iter().map(|index| DeltaChunk {
            index,
            data: Vec::new(),
        }));
        self.dirty.clear();
        (RECORD as u64, chunks)
    }

    fn reset_delta(&mut self) {
        self.dirty.clear();
        self.record_dirty = false;
    }

    fn dirty_bytes(&self) -> u64 {
        let chunks = self.dirty.len + u64::from(self.record_dirty);
        (chunks * CHUNK as u64).min(self.cfg.state_bytes)
    }

    fn apply_delta(&mut self, len: u64, chunks: &[DeltaChunk]) -> Result<(), ServiceError> {
        if len != RECORD as u64 {
            return Err(ServiceError::BadState(format!(
                "delta for {len} bytes, a modelled state has {RECORD}"
            )));
        }
        for c in chunks {
            match (c.index, c.data.len()) {
                (0, _) => self.set_record(&c.data)?,
                (i, 0) if u64::from(i) < self.cfg.chunks() => {}
                (i, n) => {
                    return Err(ServiceError::BadState(format!(
                        "modelled chunk {i} with {n} bytes does not fit"
                    )));
                }
            }
        }
        Ok(())
    }

    fn checksum(&self) -> u128 {
        xxh3_128(&self.record())
    }

    fn state_len(&self) -> u64 {
        RECORD as u64
    }

    fn footprint(&self) -> u64 {
        self.cfg.state_bytes
    }

    fn chunk_size(&self) -> u32 {
        CHUNK as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemFactory, ServiceFactory};

    #[test]
    fn the_digest_chains_the_previous_one_and_the_input_whatever_its_length() {
        let cfg = ModelConfig {
            state_bytes: 1 << 20,
            dirty_bytes_per_input: 4096,
        };
        let mut m = ModelService::new(cfg).expect("valid");
        let mut digest = 0u128;
        for (seq, len) in [(1u64, 0usize), (2, 10), (3, 64), (4, 65), (5, 4000)] {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let answer = m.step(seq, &input).expect("applies");
            digest = xxh3_128_with_seed(&[&digest.to_le_bytes()[..], &input].concat(), seq);
            assert_eq!(m.digest, digest, "input {seq} of {len} bytes");
            assert_eq!(answer[8..], digest.to_le_bytes());
        }
    }

    #[test]
    fn the_chunk_set_holds_and_orders_chunks_as_a_tree_set_does() {
        let mut set = ChunkSet::default();
        let mut tree = std::collections::BTreeSet::new();
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3 {
            for _ in 0..500 {
                h = xxh3_64_with_seed(&h.to_le_bytes(), round);
                let index = 1 + h % 40_000;
                set.insert(index);
                tree.insert(u32::try_from(index).expect("small"));
            }
            assert_eq!(set.len, tree.len() as u64);
            assert_eq!(
                set.iter().collect::<Vec<_>>(),
                tree.iter().copied().collect::<Vec<_>>()
            );
            set.clear();
            tree.clear();
            assert_eq!(set.iter().count(), 0);
        }
        set.insert(63);
        set.insert(64);
        set.insert(63);
        assert_eq!(set.iter().collect::<Vec<_>>(), [63, 64]);
        assert_eq!(set.len, 2);
    }

    fn svc() -> ModelService {
        ModelService::new(ModelConfig {
            state_bytes: 128 << 20,
            dirty_bytes_per_input: 16 << 10,
        })
        .expect("valid config")
    }

    #[test]
    fn the_checksum_follows_every_input_in_order() {
        let (mut a, mut b, mut c) = (svc(), svc(), svc());
        for seq in 1..=50u64 {
            let input = seq.to_le_bytes();
            assert_eq!(a.step(seq, &input), b.step(seq, &input));
        }
        assert_eq!(a.checksum(), b.checksum());
        c.step(1, b"two").expect("step");
        c.step(2, b"one").expect("step");
        let mut d = svc();
        d.step(1, b"one").expect("step");
        d.step(2, b"two").expect("step");
        assert_ne!(c.checksum(), d.checksum());
        d.step(3, b"one").expect("step");
        assert_ne!(c.checksum(), d.checksum(), "a twice-applied input shows");
    }

    #[test]
    fn a_shadow_follows_by_snapshot_and_deltas_and_the_wire_counts_the_size() {
        let (mut a, mut b) = (svc(), svc());
        b.restore(&a.snapshot()).expect("restore");
        a.reset_delta();
        for seq in 1..=10u64 {
            a.step(seq, b"input").expect("step");
        }
        // Ten inputs of 16 KiB: about 40 chunks, fewer where they coalesce.
        let dirty = a.dirty_bytes();
        assert!(dirty > 30 * 4096 && dirty <= 41 * 4096, "{dirty}");
        let (len, chunks) = a.take_delta();
        assert_eq!(a.dirty_bytes(), 0);
        b.apply_delta(len, &chunks).expect("apply");
        assert_eq!(a.checksum(), b.checksum());
        let cfg = ModelConfig::of(&a.cfg.spec(0)).expect("a model spec");
        let sync = Message::ShadowSync(edgeshift_proto::ShadowSync {
            service: edgeshift_proto::ServiceId(1),
            source: edgeshift_proto::ServerId(1),
            body: SyncBody::Delta(edgeshift_proto::StateDelta {
                seq: 10,
                digest: 0,
                len,
                chunk_size: 4096,
                chunks,
                checksum: 0,
                answers: Vec::new(),
            }),
        });
        assert_eq!(cfg.wire_extra(&sync) + 4096, dirty);
    }

    #[test]
    fn bad_states_and_configs_are_refused() {
        let mut a = svc();
        assert!(a.restore(&[0; 31]).is_err());
        let mut other = ModelService::new(ModelConfig {
            state_bytes: 1 << 20,
            dirty_bytes_per_input: 0,
        })
        .expect("valid");
        assert!(matches!(
            other.restore(&a.snapshot()),
            Err(ServiceError::BadState(_))
        ));
        let bad = DeltaChunk {
            index: 5,
            data: vec![1],
        };
        assert!(a.apply_delta(RECORD as u64, &[bad]).is_err());
        let mut f = MemFactory;
        let tiny = ModelConfig {
            state_bytes: 100,
            dirty_bytes_per_input: 0,
        };
        assert!(matches!(
            f.instantiate(MODEL_KIND, MODEL_CODE, &tiny.encode()),
            Err(ServiceError::InvalidConfig(_))
        ));
        assert!(matches!(
            f.instantiate(MODEL_KIND, b"junk", &[]),
            Err(ServiceError::InvalidCode(_))
        ));
    }
}
