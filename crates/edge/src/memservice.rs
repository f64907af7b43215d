//! The in-memory reference service (kind `"mem"`): a byte array of configurable size that
//! each input scrambles at a few places depending on the input *and* the current state,
//! so that order and exactly-once application both show in the checksum.

use edgeshift_proto::{CodeRef, DeltaChunk, ServiceSpec};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128};

use crate::model::{MODEL_CODE, MODEL_KIND, ModelConfig, ModelService};
use crate::service::{Service, ServiceError, ServiceFactory};

/// Runtime kind of the reference service.
pub const MEM_KIND: &str = "mem";
/// Its "program code": the reference service is compiled in, the bytes name its version.
pub const MEM_CODE: &[u8] = b"edgeshift-mem-service-v1";
/// Delta chunk size.
pub const CHUNK: usize = 4096;

/// Configuration of a [`MemService`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemConfig {
    /// State size in bytes (at least 64).
    pub state_bytes: u64,
    /// Places written per input.
    pub writes_per_input: u32,
}

impl MemConfig {
    /// Largest accepted state (4 GiB).
    pub const MAX_STATE: u64 = 4 << 30;

    /// Encodes the config for [`ServiceSpec::config`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// A spec deploying the reference service with this config.
    #[must_use]
    pub fn spec(&self, latency_budget_ms: u32) -> ServiceSpec {
        builtin_spec(MEM_KIND, MEM_CODE, self.encode(), latency_budget_ms)
    }
}

/// A spec deploying a built-in service: its kind and compiled-in code, its config.
pub(crate) fn builtin_spec(
    kind: &str,
    code: &[u8],
    config: Vec<u8>,
    latency_budget_ms: u32,
) -> ServiceSpec {
    ServiceSpec {
        code: CodeRef::Inline {
            kind: kind.into(),
            bytes: code.to_vec(),
        },
        config,
        latency_budget_ms,
    }
}

/// The config of a built-in service `name`d in errors, if `code` is `expected`.
fn builtin_config<C: serde::de::DeserializeOwned>(
    name: &str,
    expected: &[u8],
    code: &[u8],
    config: &[u8],
) -> Result<C, ServiceError> {
    if code != expected {
        return Err(ServiceError::InvalidCode(format!(
            "not the {name} service's code"
        )));
    }
    postcard::from_bytes(config).map_err(|e| ServiceError::InvalidConfig(e.to_string()))
}

/// The reference service.
#[derive(Debug)]
pub struct MemService {
    state: Vec<u8>,
    writes: u32,
    dirty: Vec<bool>,
    dirty_count: usize,
}

impl MemService {
    /// A fresh instance.
    ///
    /// # Errors
    /// A state size below 64 bytes or above [`MemConfig::MAX_STATE`].
    pub fn new(cfg: MemConfig) -> Result<Self, ServiceError> {
        if !(64..=MemConfig::MAX_STATE).contains(&cfg.state_bytes) {
            return Err(ServiceError::InvalidConfig(format!(
                "state_bytes {} outside 64..={}",
                cfg.state_bytes,
                MemConfig::MAX_STATE
            )));
        }
        let len = usize::try_from(cfg.state_bytes)
            .map_err(|e| ServiceError::InvalidConfig(e.to_string()))?;
        Ok(Self {
            state: vec![0; len],
            writes: cfg.writes_per_input.max(1),
            dirty: vec![false; len.div_ceil(CHUNK)],
            dirty_count: 0,
        })
    }

    fn mark(&mut self, off: usize) {
        let c = off / CHUNK;
        if !self.dirty[c] {
            self.dirty[c] = true;
            self.dirty_count += 1;
        }
    }

    fn resize_dirty(&mut self) {
        self.dirty = vec![false; self.state.len().div_ceil(CHUNK)];
        self.dirty_count = 0;
    }
}

impl Service for MemService {
    fn step(&mut self, seq: u64, input: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let len = self.state.len();
        // The first 8 bytes count inputs; the rest is scrambled.
        let count =
            u64::from_le_bytes(self.state[..8].try_into().unwrap_or_default()).wrapping_add(1);
        self.state[..8].copy_from_slice(&count.to_le_bytes());
        self.mark(0);
        let mut h = xxh3_64_with_seed(input, seq ^ count.rotate_left(17));
        for _ in 0..self.writes {
            let off = 8 + (h % (len as u64 - 16)) as usize;
            let old = u64::from_le_bytes(self.state[off..off + 8].try_into().unwrap_or_default());
            let new = old.rotate_left(7) ^ h;
            self.state[off..off + 8].copy_from_slice(&new.to_le_bytes());
            self.mark(off);
            self.mark(off + 7);
            h = xxh3_64_with_seed(&new.to_le_bytes(), h);
        }
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&h.to_le_bytes());
        Ok(out)
    }

    fn read_state(&self, offset: u64, out: &mut [u8]) {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.state.len());
        let end = (start + out.len()).min(self.state.len());
        out[..end - start].copy_from_slice(&self.state[start..end]);
    }

    fn begin_restore(&mut self, total_len: u64) -> Result<(), ServiceError> {
        if !(64..=MemConfig::MAX_STATE).contains(&total_len) {
            return Err(ServiceError::BadState(format!(
                "snapshot of {total_len} bytes is outside 64..={}",
                MemConfig::MAX_STATE
            )));
        }
        let len = usize::try_from(total_len).map_err(|e| ServiceError::BadState(e.to_string()))?;
        self.state.resize(len, 0);
        Ok(())
    }

    fn restore_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), ServiceError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start
            .checked_add(data.len())
            .filter(|e| *e <= self.state.len());
        let Some(end) = end else {
            return Err(ServiceError::BadState(format!(
                "piece at {offset} of {} bytes exceeds the state",
                data.len()
            )));
        };
        self.state[start..end].copy_from_slice(data);
        Ok(())
    }

    fn finish_restore(&mut self) -> Result<(), ServiceError> {
        self.resize_dirty();
        Ok(())
    }

    fn take_delta(&mut self) -> (u64, Vec<DeltaChunk>) {
        let mut chunks = Vec::with_capacity(self.dirty_count);
        for (i, d) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(d) {
                let end = ((i + 1) * CHUNK).min(self.state.len());
                chunks.push(DeltaChunk {
                    index: i as u32,
                    data: self.state[i * CHUNK..end].to_vec(),
                });
            }
        }
        self.dirty_count = 0;
        (self.state.len() as u64, chunks)
    }

    fn dirty_bytes(&self) -> u64 {
        (self.dirty_count * CHUNK) as u64
    }

    fn apply_delta(&mut self, len: u64, chunks: &[DeltaChunk]) -> Result<(), ServiceError> {
        if len != self.state.len() as u64 {
            return Err(ServiceError::BadState(format!(
                "delta for {len} bytes, state has {}",
                self.state.len()
            )));
        }
        for c in chunks {
            let start = c.index as usize * CHUNK;
            let end = start + c.data.len();
            if c.data.len() > CHUNK || end > self.state.len() {
                return Err(ServiceError::BadState(format!(
                    "chunk {} does not fit",
                    c.index
                )));
            }
            self.state[start..end].copy_from_slice(&c.data);
        }
        Ok(())
    }

    fn checksum(&self) -> u128 {
        xxh3_128(&self.state)
    }

    fn state_len(&self) -> u64 {
        self.state.len() as u64
    }

    fn chunk_size(&self) -> u32 {
        CHUNK as u32
    }
}

/// A factory that knows the built-in services only: the in-memory reference service and
/// the modelled one. Other runtimes wrap it.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemFactory;

impl ServiceFactory for MemFactory {
    fn instantiate(
        &mut self,
        kind: &str,
        code: &[u8],
        config: &[u8],
    ) -> Result<Box<dyn Service>, ServiceError> {
        match kind {
            MODEL_KIND => {
                let cfg: ModelConfig = builtin_config("modelled", MODEL_CODE, code, config)?;
                Ok(Box::new(ModelService::new(cfg)?))
            }
            MEM_KIND => {
                let cfg: MemConfig = builtin_config("reference", MEM_CODE, code, config)?;
                Ok(Box::new(MemService::new(cfg)?))
            }
            other => Err(ServiceError::UnknownKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(bytes: u64) -> MemService {
        MemService::new(MemConfig {
            state_bytes: bytes,
            writes_per_input: 4,
        })
        .expect("valid config")
    }

    #[test]
    fn order_matters_and_replay_is_deterministic() {
        let (mut a, mut b, mut c) = (svc(1 << 16), svc(1 << 16), svc(1 << 16));
        for seq in 1..=100u64 {
            let input = seq.to_le_bytes();
            assert_eq!(a.step(seq, &input), b.step(seq, &input));
        }
        assert_eq!(a.checksum(), b.checksum());
        c.step(2, &2u64.to_le_bytes()).expect("step");
        c.step(1, &1u64.to_le_bytes()).expect("step");
        let mut d = svc(1 << 16);
        d.step(1, &1u64.to_le_bytes()).expect("step");
        d.step(2, &2u64.to_le_bytes()).expect("step");
        assert_ne!(c.checksum(), d.checksum());
    }

    #[test]
    fn delta_brings_a_twin_up_to_date() {
        let (mut a, mut b) = (svc(100_000), svc(100_000));
        b.restore(&a.snapshot()).expect("restore");
        a.take_delta();
        for seq in 1..=50u64 {
            a.step(seq, b"x").expect("step");
        }
        assert!(a.dirty_bytes() > 0);
        let (len, chunks) = a.take_delta();
        b.apply_delta(len, &chunks).expect("apply");
        assert_eq!(a.checksum(), b.checksum());
        assert_eq!(a.dirty_bytes(), 0);
        assert!(b.apply_delta(len + 1, &chunks).is_err());
    }

    #[test]
    fn factory_rejects_bad_code_and_config() {
        let mut f = MemFactory;
        assert!(matches!(
            f.instantiate("wasm", MEM_CODE, &[]),
            Err(ServiceError::UnknownKind(_))
        ));
        assert!(matches!(
            f.instantiate(MEM_KIND, b"junk", &[]),
            Err(ServiceError::InvalidCode(_))
        ));
        assert!(matches!(
            f.instantiate(MEM_KIND, MEM_CODE, &[0xff; 3]),
            Err(ServiceError::InvalidConfig(_))
        ));
        let tiny = MemConfig {
            state_bytes: 8,
            writes_per_input: 1,
        }
        .encode();
        assert!(matches!(
            f.instantiate(MEM_KIND, MEM_CODE, &tiny),
            Err(ServiceError::InvalidConfig(_))
        ));
    }
}
