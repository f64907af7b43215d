//! Optimistic activation, the target's side (`EdgeConfig::optimistic`).
//!
//! The control node sends a hot relocation's 1006 to source and target at once. With a
//! ready replay shadow of that source, the target does not wait for the source's 2004:
//! [`EdgeServer::go_tentative`] makes the shadow a live instance at once, marked with a
//! [`Tentative`] record. It applies and answers the UE's traffic (routed to it from the
//! trigger on, or passed on by the frozen source) and applies the source's last sync
//! without answering it (the source did). The UE numbers its inputs and services are
//! deterministic, so whatever it applies extends the source's input log; a gap waits for
//! the sync like in any instance.
//!
//! The 2004 settles it ([`EdgeServer::check_tentative`]): the source's last input and
//! digest found in the instance's history commit it (`Activated`, 2005 valid); a source
//! ahead of it gets a `NeedFrom` and commits after the catch-up; anything else rolls it
//! back. A rollback ([`EdgeServer::drop_tentative`]: a different digest, an abort, a
//! release, a discard, delta sync, a new copy) drops the instance and gives every UE input
//! it applied to the server that serves instead, which applies it again and answers as it
//! did. The instance never rolls back on its own: a promotion (its source died) commits
//! it, and the control node repeats a 1006 the source may have missed.

use edgeshift_proto::{
    CellId, Instant, RelocateConfirm, RelocateRequest, ServerId, ServiceId, ServiceInput, SyncBody,
    UeId, Verdict,
};

use super::EdgeServer;
use super::shadow::{ReadyShadow, ShadowState};
use super::source::Live;
use super::traffic::{Held, Moved};
use crate::digest;
use crate::event::EdgeEvent;

/// What a tentative instance keeps until its relocation commits or rolls back.
pub(super) struct Tentative {
    /// The relocation's source.
    pub(super) source: ServerId,
    /// When the shadow was created (for the `Activated` record).
    created_at: Instant,
    /// The input the state stood at when it went live, and its digest.
    base: u64,
    base_digest: u128,
    /// The digest after each input applied since, `base + 1` first.
    digests: Vec<u128>,
    /// The UE's inputs applied since (not the source's sync): what a rollback gives back.
    inputs: Vec<ServiceInput>,
    /// The source's 2004, once it came.
    pub(super) request: Option<RelocateRequest>,
    /// A `NeedFrom` went out for the current 2004.
    asked: bool,
    /// One ever did: the shadow was not valid at the first check.
    asked_ever: bool,
}

impl Tentative {
    /// The input-log digest after input `seq`, if the instance went through it.
    fn digest_at(&self, seq: u64) -> Option<u128> {
        if seq == self.base {
            return Some(self.base_digest);
        }
        let i = usize::try_from(seq.checked_sub(self.base.saturating_add(1))?).ok()?;
        self.digests.get(i).copied()
    }

    /// Input `seq` was applied; `via` is the cell of a UE input (the source's sync has
    /// none).
    pub(super) fn applied(
        &mut self,
        ue: UeId,
        service: ServiceId,
        seq: u64,
        payload: &[u8],
        via: Option<CellId>,
    ) {
        let prev = self.digests.last().copied().unwrap_or(self.base_digest);
        self.digests.push(digest::chain(prev, seq, payload));
        if let Some(via) = via {
            self.inputs.push(ServiceInput {
                ue,
                service,
                via,
                input: edgeshift_proto::InputRecord {
                    seq,
                    payload: payload.to_vec(),
                },
                answered_below: 0,
            });
        }
    }
}

impl EdgeServer {
    /// A 1006 naming this server as the target of a hot relocation from `source`: with
    /// optimistic activation on and a ready shadow of that source, it goes live now,
    /// tentatively. Otherwise (or fenced, or the 2004 came first) nothing happens here
    /// before the 2004.
    pub(super) fn go_tentative(&mut self, service: ServiceId, source: ServerId, epoch: u64) {
        if !self.cfg.optimistic
            || self.fenced_for(service)
            || self.live.contains_key(&service)
            || self.is_called_off(service, epoch)
        {
            return;
        }
        let ready = self.shadows.get(&service).is_some_and(|sh| {
            sh.source == source
                && sh.check.is_none()
                && !sh.delta_synced
                && matches!(sh.state, ShadowState::Ready(_))
        });
        if !ready {
            return;
        }
        let Some(ReadyShadow {
            created_at,
            inst,
            held,
            ..
        }) = self.take_ready(service)
        else {
            return;
        };
        let (last_seq, digest) = (inst.last_seq, inst.digest);
        let mut live = Live::new(inst, epoch);
        live.tentative = Some(Tentative {
            source,
            created_at,
            base: last_seq,
            base_digest: digest,
            digests: Vec::new(),
            inputs: Vec::new(),
            request: None,
            asked: false,
            asked_ever: false,
        });
        self.live.insert(service, live);
        // This server hosts it now (a UE that turned back: it pointed at the source).
        self.moved.remove(&service);
        self.events.push_back(EdgeEvent::Tentative {
            service,
            from: source,
            last_seq,
        });
        self.release_held(held);
        self.load_report(Some(service));
    }

    /// Whether a tentative instance of `service` is here.
    pub(super) fn is_tentative(&self, service: ServiceId) -> bool {
        self.tentative_source(service).is_some()
    }

    /// The relocation source of a tentative instance of `service` here.
    pub(super) fn tentative_source(&self, service: ServiceId) -> Option<ServerId> {
        self.live
            .get(&service)?
            .tentative
            .as_ref()
            .map(|t| t.source)
    }

    /// The 2004 for a tentative instance: kept, and checked.
    pub(super) fn tentative_request(&mut self, m: RelocateRequest) {
        let service = m.service;
        let Some(t) = self
            .live
            .get_mut(&service)
            .and_then(|l| l.tentative.as_mut())
        else {
            return;
        };
        if m.source != t.source {
            let why = format!("2004 for {service} from {}, not its source", m.source);
            self.violation(edgeshift_proto::NodeId::Server(m.source), why);
            return;
        }
        // A repeated 2004 (the answer was lost): answer again.
        t.request = Some(m);
        t.asked = false;
        self.check_tentative(service);
    }

    /// Commits, catches up or rolls back a tentative instance whose 2004 came; runs after
    /// every change to it (applied inputs, a catch-up, the lease back).
    pub(super) fn check_tentative(&mut self, service: ServiceId) {
        // Runs after every batch any live instance applies: the common case first.
        if !self.is_tentative(service) || self.busy(service) || self.fenced_for(service) {
            return; // Judged when the job is back or the lease returns.
        }
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let last_seq = live.inst.last_seq;
        let Some(t) = live.tentative.as_mut() else {
            return;
        };
        let Some(req) = &t.request else {
            return;
        };
        let (source, n) = (t.source, req.last_seq);
        let verdict = if n > last_seq {
            // The source applied inputs this instance has not seen yet (its last sync
            // batch, or inputs the UE sent it just before the freeze).
            if t.asked {
                return;
            }
            t.asked = true;
            t.asked_ever = true;
            Verdict::NeedFrom(last_seq)
        } else {
            // The digest pins the inputs; the audit checksum, when sent, pins the memory
            // (only comparable while the instance stands at the source's input).
            let same_memory = n < last_seq
                || req
                    .state_checksum
                    .is_none_or(|c| Some(c) == live.inst.checksum());
            if t.digest_at(n) == Some(req.digest) && same_memory {
                Verdict::Valid
            } else {
                Verdict::Reject(format!(
                    "the tentative instance of {service} does not hold the source's input {n}"
                ))
            }
        };
        if verdict == Verdict::Valid {
            self.commit_tentative(service);
            return;
        }
        let target = self.cfg.id;
        self.send(
            source,
            RelocateConfirm {
                service,
                target,
                verdict: verdict.clone(),
            },
        );
        if let Verdict::Reject(why) = verdict {
            self.drop_tentative(service, source, why);
        }
    }

    /// Sync from the source: its last batches, or the catch-up a `NeedFrom` asked for.
    pub(super) fn sync_tentative(&mut self, service: ServiceId, source: ServerId, body: SyncBody) {
        match body {
            SyncBody::Inputs(inputs) => {
                if let Some(live) = self.live.get_mut(&service) {
                    for i in inputs {
                        live.inst.offer(i.seq, i.payload, None);
                    }
                }
                // What it applies is judged against the 2004 as it is applied.
                self.kick(service);
            }
            SyncBody::Delta(_) => {
                // A delta cannot go on top of inputs the instance applied itself: optimistic
                // activation is for replay shadows. The source's 2004 finds no shadow here
                // and sends the whole state.
                let why = "delta sync reached a tentative instance".to_string();
                self.drop_tentative(service, source, why);
            }
        }
    }

    /// The 2004 matched: the tentative instance is the live one.
    fn commit_tentative(&mut self, service: ServiceId) {
        let me = self.cfg.id;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Some(t) = live.tentative.take() else {
            return;
        };
        let Some(req) = t.request else {
            return;
        };
        live.inst.adopt_answers(&req.answers);
        let state_bytes = live.inst.footprint();
        self.events.push_back(EdgeEvent::Activated {
            service,
            from: t.source,
            last_seq: req.last_seq,
            digest: req.digest,
            first_try: !t.asked_ever,
            state_bytes,
            shadow_created_at: t.created_at,
        });
        self.send(
            t.source,
            RelocateConfirm {
                service,
                target: me,
                verdict: Verdict::Valid,
            },
        );
        self.report_done(service, t.source, me, req.epoch, true);
    }

    /// Failover: the control node promotes the tentative instance (its source is gone).
    /// Returns whether there was one.
    pub(super) fn promote_tentative(&mut self, service: ServiceId, epoch: u64) -> bool {
        let Some(live) = self.live.get_mut(&service) else {
            return false;
        };
        let Some(t) = live.tentative.take() else {
            return false;
        };
        live.promoted = true;
        live.epoch = epoch;
        let (last_seq, digest) = (live.inst.last_seq, live.inst.digest);
        self.unflushed.insert(service);
        self.events.push_back(EdgeEvent::Promoted {
            service,
            from: t.source,
            last_seq,
            digest,
            epoch,
        });
        self.report_done(service, t.source, self.cfg.id, epoch, true);
        true
    }

    /// Rolls a tentative instance back: it goes, and every UE input it applied or holds
    /// goes to `to` (the source, or the host the control node named), which applies it
    /// again; later traffic follows. Returns whether there was one.
    pub(super) fn drop_tentative(
        &mut self,
        service: ServiceId,
        to: ServerId,
        reason: String,
    ) -> bool {
        if !self.is_tentative(service) {
            return false;
        }
        let Some(mut live) = self.live.remove(&service) else {
            return false;
        };
        let Some(t) = live.tentative.take() else {
            return false;
        };
        let ue = live.inst.meta.ue;
        let mut back: Vec<Held> = t.inputs.into_iter().map(Held::Input).collect();
        let waiting = std::mem::take(&mut live.inst.pending);
        back.extend(waiting.into_iter().filter_map(|(seq, p)| {
            Some(Held::Input(ServiceInput {
                ue,
                service,
                via: p.via?,
                input: edgeshift_proto::InputRecord {
                    seq,
                    payload: p.payload,
                },
                answered_below: 0,
            }))
        }));
        back.extend(self.fenced_held.remove(&service).unwrap_or_default());
        // Their answers wait for a lease that would come too late: `to` answers them.
        self.fenced_results.remove(&service);
        self.forget_adoptions(service, None);
        self.moved.insert(service, Moved::to(to));
        self.events.push_back(EdgeEvent::TentativeDropped {
            service,
            to,
            reason,
        });
        self.forward_held(to, back);
        self.load_report(Some(service));
        true
    }
}

#[cfg(test)]
mod tests;
