//! One service instance (live or shadow): the service, its position in the input log,
//! inputs waiting for their predecessors, and recent answers.

use std::collections::{BTreeMap, VecDeque};

use edgeshift_proto::{CellId, DeltaChunk, StateDelta, UeId};

use crate::digest;
use crate::service::{Service, ServiceError};

/// Inputs held out of order beyond this many are dropped (the UE retransmits them).
const MAX_PENDING: usize = 65_536;

/// Static facts about a service, needed to re-create it elsewhere.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) ue: UeId,
    pub(crate) code_hash: u128,
    pub(crate) config: Vec<u8>,
    pub(crate) latency_budget_ms: u32,
}

/// An input not yet applied; `via` is set for UE traffic that must be answered.
#[derive(Clone, Debug)]
pub(crate) struct PendingInput {
    pub(crate) payload: Vec<u8>,
    pub(crate) via: Option<CellId>,
}

pub(crate) struct Instance {
    pub(crate) meta: Meta,
    pub(crate) svc: Box<dyn Service>,
    pub(crate) last_seq: u64,
    pub(crate) digest: u128,
    pub(crate) pending: BTreeMap<u64, PendingInput>,
    answers: VecDeque<(u64, Vec<u8>)>,
    answer_cap: usize,
    /// Last input reflected in the previous delta taken (its answers went with it).
    delta_seq: u64,
}

/// One applied input, as reported back to the server.
pub(crate) struct Applied {
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
    pub(crate) via: Option<CellId>,
    pub(crate) answer: Vec<u8>,
    pub(crate) error: Option<ServiceError>,
}

impl Instance {
    pub(crate) fn new(
        meta: Meta,
        svc: Box<dyn Service>,
        last_seq: u64,
        digest: u128,
        answer_cap: usize,
    ) -> Self {
        Self {
            meta,
            svc,
            last_seq,
            digest,
            pending: BTreeMap::new(),
            answers: VecDeque::new(),
            answer_cap,
            delta_seq: last_seq,
        }
    }

    /// Queues an input; returns false if it was already applied.
    pub(crate) fn offer(&mut self, seq: u64, payload: Vec<u8>, via: Option<CellId>) -> bool {
        if seq <= self.last_seq {
            return false;
        }
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&seq) {
            return true;
        }
        let entry = self
            .pending
            .entry(seq)
            .or_insert(PendingInput { payload, via: None });
        // Keep the relaying cell if any copy of the input came from the UE.
        entry.via = entry.via.or(via);
        true
    }

    /// Applies every pending input that directly follows the last applied one.
    pub(crate) fn drain(&mut self) -> Vec<Applied> {
        let mut done = Vec::new();
        while let Some(p) = self.pending.remove(&(self.last_seq + 1)) {
            let seq = self.last_seq + 1;
            let (answer, error) = match self.svc.step(seq, &p.payload) {
                Ok(a) => (a, None),
                // A trap is deterministic: every replica fails alike, the input is consumed.
                Err(e) => (Vec::new(), Some(e)),
            };
            self.digest = digest::chain(self.digest, seq, &p.payload);
            self.last_seq = seq;
            if self.answer_cap > 0 {
                if self.answers.len() == self.answer_cap {
                    self.answers.pop_front();
                }
                self.answers.push_back((seq, answer.clone()));
            }
            done.push(Applied {
                seq,
                payload: p.payload,
                via: p.via,
                answer,
                error,
            });
        }
        done
    }

    /// The `n` most recent answers, oldest first.
    pub(crate) fn recent_answers(&self, n: usize) -> Vec<edgeshift_proto::Answer> {
        self.answers
            .iter()
            .skip(self.answers.len().saturating_sub(n))
            .map(|(seq, a)| edgeshift_proto::Answer {
                seq: *seq,
                payload: a.clone(),
            })
            .collect()
    }

    /// Takes over answers computed elsewhere for inputs this instance holds but did not apply.
    pub(crate) fn adopt_answers(&mut self, answers: &[edgeshift_proto::Answer]) {
        for a in answers {
            if a.seq <= self.last_seq && self.answer(a.seq).is_none() {
                let at = self.answers.partition_point(|(s, _)| *s < a.seq);
                self.answers.insert(at, (a.seq, a.payload.clone()));
            }
        }
        while self.answers.len() > self.answer_cap {
            self.answers.pop_front();
        }
    }

    /// The cached answer to an already applied input.
    pub(crate) fn answer(&self, seq: u64) -> Option<&[u8]> {
        self.answers
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, a)| a.as_slice())
    }

    /// Applies a delta and verifies the result; stale deltas are skipped.
    pub(crate) fn apply_delta(&mut self, d: &StateDelta) -> Result<(), String> {
        if d.seq < self.last_seq {
            return Ok(());
        }
        self.svc
            .apply_delta(d.len, &d.chunks)
            .map_err(|e| e.to_string())?;
        let got = self.svc.checksum();
        if got != d.checksum {
            return Err(format!("delta to seq {} failed its checksum", d.seq));
        }
        self.last_seq = d.seq;
        self.digest = d.digest;
        self.pending = self.pending.split_off(&(d.seq + 1));
        self.adopt_answers(&d.answers);
        Ok(())
    }

    /// Whether a delta would carry anything: changed state, or answers to inputs applied
    /// since the previous one (inputs that changed nothing still have answers).
    pub(crate) fn delta_pending(&self) -> bool {
        self.svc.dirty_bytes() > 0 || self.last_seq > self.delta_seq
    }

    /// Builds a delta of everything changed since the previous one.
    pub(crate) fn take_delta(&mut self) -> StateDelta {
        let (len, chunks): (u64, Vec<DeltaChunk>) = self.svc.take_delta();
        let since = self.delta_seq;
        self.delta_seq = self.last_seq;
        let answers = self
            .answers
            .iter()
            .filter(|(s, _)| *s > since)
            .map(|(seq, a)| edgeshift_proto::Answer {
                seq: *seq,
                payload: a.clone(),
            })
            .collect();
        StateDelta {
            seq: self.last_seq,
            digest: self.digest,
            len,
            chunk_size: self.svc.chunk_size(),
            chunks,
            checksum: self.svc.checksum(),
            answers,
        }
    }
}
