//! One service instance (live or shadow): the service, its position in the input log,
//! inputs waiting for their predecessors, and the answers the UE may still ask for.
//!
//! Each UE input says below which number the UE has every answer
//! ([`Instance::ue_has_answers_below`]); the answers from there on are kept (up to the
//! cache size) and travel with the service at a relocation or a transfer, however old
//! they are: an answer the radio lost is re-sent whenever the UE asks again.
//!
//! The service itself may be lent to a [`Job`](crate::Job) ([`Instance::lend`]) and
//! taken back with what it computed ([`Instance::take_back`]); meanwhile [`Instance::svc`]
//! is `None` and the cached state size stands in for it.

use std::collections::BTreeMap;

use edgeshift_proto::{CellId, DeltaChunk, StateDelta, UeId};

use crate::digest;
use crate::job::Step;
use crate::seqlog::SeqLog;
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
    /// `None` while lent to a job.
    svc: Option<Box<dyn Service>>,
    /// State size as of the last time the service was here.
    state_len: u64,
    /// What the state stands for ([`Service::footprint`]), as of then.
    footprint: u64,
    pub(crate) last_seq: u64,
    pub(crate) digest: u128,
    pub(crate) pending: BTreeMap<u64, PendingInput>,
    /// Answers to applied inputs, in sequence order, from `answered_below` on.
    answers: SeqLog,
    answer_cap: usize,
    /// The UE has the answers to every input below this one.
    answered_below: u64,
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
            state_len: svc.state_len(),
            footprint: svc.footprint(),
            svc: Some(svc),
            last_seq,
            digest,
            pending: BTreeMap::new(),
            answers: SeqLog::default(),
            answer_cap,
            answered_below: 0,
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

    /// The service, unless it is lent to a job.
    pub(crate) fn svc(&self) -> Option<&dyn Service> {
        self.svc.as_deref()
    }

    /// The service, mutably, unless it is lent to a job.
    pub(crate) fn svc_mut(&mut self) -> Option<&mut (dyn Service + 'static)> {
        self.svc.as_deref_mut()
    }

    /// State size (as of the last time the service was here, while it is lent).
    pub(crate) fn state_len(&self) -> u64 {
        self.state_len
    }

    /// Bytes the state stands for in memory and on links (as of the last time the service
    /// was here, while it is lent).
    pub(crate) fn footprint(&self) -> u64 {
        self.footprint
    }

    /// xxh3-128 of the state; `None` while the service is lent.
    pub(crate) fn checksum(&self) -> Option<u128> {
        self.svc().map(Service::checksum)
    }

    /// The highest input number offered so far (applied or pending).
    pub(crate) fn offered(&self) -> u64 {
        self.pending
            .last_key_value()
            .map_or(self.last_seq, |(s, _)| (*s).max(self.last_seq))
    }

    /// Whether inputs wait behind a gap: the first pending one does not follow the last
    /// applied one.
    pub(crate) fn waits_behind_gap(&self) -> bool {
        self.pending
            .first_key_value()
            .is_some_and(|(s, _)| *s > self.last_seq + 1)
    }

    /// Lends the service with the pending inputs that directly follow the last applied
    /// one, up to input `upto`; `None` when it is already lent or no input is in order.
    pub(crate) fn lend(&mut self, upto: u64) -> Option<(Box<dyn Service>, Vec<Step>)> {
        self.svc.as_ref()?;
        let mut steps = Vec::new();
        let mut next = self.last_seq + 1;
        while next <= upto
            && let Some(p) = self.pending.remove(&next)
        {
            steps.push(Step {
                seq: next,
                payload: p.payload,
                via: p.via,
            });
            next += 1;
        }
        if steps.is_empty() {
            return None;
        }
        self.svc.take().map(|svc| (svc, steps))
    }

    /// Takes the service back with the results of the steps it ran (in order, from the
    /// first); steps it did not run go back to the pending inputs. Pending copies of inputs
    /// now applied (retransmissions that came meanwhile) are dropped; those the UE sent
    /// come back as `rerun` with their cell, to be answered from the cache.
    pub(crate) fn take_back(
        &mut self,
        svc: Box<dyn Service>,
        steps: Vec<Step>,
        results: Vec<Result<Vec<u8>, ServiceError>>,
    ) -> (Vec<Applied>, Vec<(u64, CellId)>) {
        self.state_len = svc.state_len();
        self.footprint = svc.footprint();
        self.svc = Some(svc);
        let mut done = Vec::with_capacity(steps.len());
        let mut results = results.into_iter();
        for step in steps {
            let Some(result) = results.next() else {
                self.offer(step.seq, step.payload, step.via);
                continue;
            };
            let (answer, error) = match result {
                Ok(a) => (a, None),
                // A trap is deterministic: every replica fails alike, the input is consumed.
                Err(e) => (Vec::new(), Some(e)),
            };
            self.digest = digest::chain(self.digest, step.seq, &step.payload);
            self.last_seq = step.seq;
            if self.answer_cap > 0 && step.seq >= self.answered_below {
                if self.answers.len() == self.answer_cap {
                    self.answers.pop_front();
                }
                self.answers.push_back(step.seq, &answer);
            }
            done.push(Applied {
                seq: step.seq,
                payload: step.payload,
                via: step.via,
                answer,
                error,
            });
        }
        let ahead = self.pending.split_off(&(self.last_seq + 1));
        let rerun = std::mem::replace(&mut self.pending, ahead)
            .into_iter()
            .filter_map(|(seq, p)| p.via.map(|v| (seq, v)))
            .collect();
        (done, rerun)
    }

    /// The UE says it has the answers to every input below `below`: forget them.
    pub(crate) fn ue_has_answers_below(&mut self, below: u64) {
        if below <= self.answered_below {
            return; // an older input, overtaken
        }
        self.answered_below = below;
        self.answers.drop_below(below);
    }

    /// The answers the UE may still ask for, oldest first: what a relocation or a transfer
    /// hands on.
    pub(crate) fn owed_answers(&self) -> Vec<edgeshift_proto::Answer> {
        self.answers
            .iter()
            .map(|(seq, a)| edgeshift_proto::Answer {
                seq,
                payload: a.to_vec(),
            })
            .collect()
    }

    /// Takes over answers computed elsewhere for inputs this instance holds but did not apply.
    pub(crate) fn adopt_answers(&mut self, answers: &[edgeshift_proto::Answer]) {
        for a in answers {
            if a.seq <= self.last_seq
                && a.seq >= self.answered_below
                && self.answer(a.seq).is_none()
            {
                self.answers.insert(a.seq, &a.payload);
            }
        }
        while self.answers.len() > self.answer_cap {
            self.answers.pop_front();
        }
    }

    /// The cached answer to an already applied input.
    pub(crate) fn answer(&self, seq: u64) -> Option<&[u8]> {
        self.answers.get(seq)
    }

    /// Applies a delta and verifies the result; stale deltas are skipped.
    pub(crate) fn apply_delta(&mut self, d: &StateDelta) -> Result<(), String> {
        if d.seq < self.last_seq {
            return Ok(());
        }
        let Some(svc) = self.svc.as_deref_mut() else {
            return Err(format!("delta to seq {} while the service is busy", d.seq));
        };
        svc.apply_delta(d.len, &d.chunks)
            .map_err(|e| e.to_string())?;
        self.state_len = svc.state_len();
        self.footprint = svc.footprint();
        let got = svc.checksum();
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
        self.svc().is_some_and(|s| s.dirty_bytes() > 0) || self.last_seq > self.delta_seq
    }

    /// Builds a delta of everything changed since the previous one; `None` while the
    /// service is lent.
    pub(crate) fn take_delta(&mut self) -> Option<StateDelta> {
        let svc = self.svc.as_deref_mut()?;
        let (len, chunks): (u64, Vec<DeltaChunk>) = svc.take_delta();
        let (chunk_size, checksum) = (svc.chunk_size(), svc.checksum());
        let since = self.delta_seq;
        self.delta_seq = self.last_seq;
        let answers = self
            .answers
            .after(since)
            .map(|(seq, a)| edgeshift_proto::Answer {
                seq,
                payload: a.to_vec(),
            })
            .collect();
        Some(StateDelta {
            seq: self.last_seq,
            digest: self.digest,
            len,
            chunk_size,
            chunks,
            checksum,
            answers,
        })
    }
}
