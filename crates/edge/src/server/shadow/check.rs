//! The 2004 check of a shadow, and its activation.
//!
//! The source's 2004 names the state the shadow must hold. It can come before the copy
//! is complete, so it waits beside the copy as a [`Check`]; [`EdgeServer::validate`] runs
//! after every change to either (a chunk completes the copy, sync or catch-up arrives, the
//! 2004 is repeated) and answers with a 2005 once the copy can be judged: `Valid` (and the
//! shadow becomes the live instance), `NeedFrom` / `NeedFull`, or `Reject`.

use edgeshift_proto::{Instant, NodeId, RelocateConfirm, RelocateRequest, ServiceId, Verdict};

use super::{Shadow, ShadowState};
use crate::event::EdgeEvent;
use crate::server::EdgeServer;
use crate::server::source::Live;

/// A 2004 this shadow answers.
pub(in crate::server) struct Check {
    /// The latest 2004 (a frozen source repeats it when no 2005 comes).
    pub(in crate::server) request: RelocateRequest,
    /// What the shadow last asked the source for (`NeedFrom` / `NeedFull`); not asked
    /// again while the answer is on its way, unless the source repeats its 2004. Never
    /// asked: valid at the first try.
    pub(in crate::server) asked: Option<Verdict>,
}

impl EdgeServer {
    /// 2004: the source froze and asks this shadow to take over.
    pub(in crate::server) fn on_request(&mut self, now: Instant, m: RelocateRequest) {
        let service = m.service;
        if self
            .live
            .get(&service)
            .is_some_and(|l| l.tentative.is_some() && l.epoch == m.epoch)
        {
            self.tentative_request(m);
            return;
        }
        match self.live.get(&service).map(|l| l.epoch) {
            Some(e) if e == m.epoch => {
                // Already active (a repeated 2004): confirm again.
                self.send(
                    m.source,
                    RelocateConfirm {
                        service,
                        target: self.cfg.id,
                        verdict: Verdict::Valid,
                    },
                );
                return;
            }
            Some(e) if e < m.epoch => {
                // An instance here that a failover replaced while this server was away,
                // its release still on the way: the source holds a newer one. Let go of
                // it, then judge the 2004 like any other.
                self.release(now, service, m.source, m.epoch);
            }
            // Older than the instance here: refused below as past.
            _ => {}
        }
        let live_epoch = self.live.get(&service).map(|l| l.epoch);
        if self.epochs.get(&service).is_some_and(|e| m.epoch < *e)
            || live_epoch.is_some_and(|e| m.epoch < e)
            || self.is_called_off(service, m.epoch)
        {
            // A relocation older than one this server has seen (a source that was cut off
            // or stopped, acting on a stale 1006), or one called off: its state is not the
            // live one.
            let why = format!("2004 of epoch {} for {service}, which is past", m.epoch);
            self.violation(NodeId::Server(m.source), why.clone());
            self.send(
                m.source,
                RelocateConfirm {
                    service,
                    target: self.cfg.id,
                    verdict: Verdict::Reject(why),
                },
            );
            return;
        }
        self.saw_epoch(service, m.epoch);
        self.discarded.cancel(service);
        let sh = self
            .shadows
            .entry(service)
            .or_insert_with(|| Shadow::new(m.source, now));
        sh.source = m.source;
        match &mut sh.check {
            // A repeated 2004: the source heard nothing back (the 2005, or the catch-up it
            // asked for, was lost). Answer again.
            Some(check) => {
                check.request = m;
                check.asked = None;
            }
            None => {
                sh.check = Some(Check {
                    request: m,
                    asked: None,
                });
            }
        }
        self.validate(service);
    }

    /// Answers the 2004, if one came and the copy can be judged now.
    pub(in crate::server) fn validate(&mut self, service: ServiceId) {
        if self.busy(service) {
            return; // Judged when the job is back, with its inputs applied.
        }
        let target = self.cfg.id;
        let fenced = self.fenced_for(service);
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Some(check) = &mut sh.check else {
            return;
        };
        let req = &check.request;
        let verdict = match &sh.state {
            ShadowState::Receiving(_) => return,
            ShadowState::Awaiting { .. } if req.transfer_pending => return,
            ShadowState::Awaiting { .. } => Verdict::NeedFull,
            ShadowState::Failed { why, .. } => Verdict::Reject(why.clone()),
            ShadowState::Ready(inst)
                if inst.last_seq == req.last_seq && inst.digest == req.digest =>
            {
                // The digest pins the inputs; the audit checksum, when sent, pins the memory.
                if req
                    .state_checksum
                    .is_none_or(|c| Some(c) == inst.checksum())
                {
                    Verdict::Valid
                } else {
                    Verdict::NeedFull
                }
            }
            ShadowState::Ready(inst) if inst.last_seq < req.last_seq => {
                Verdict::NeedFrom(inst.last_seq)
            }
            ShadowState::Ready(_) => Verdict::NeedFull,
        };
        let source = req.source;
        if verdict == Verdict::Valid && fenced {
            // No lease, no going live: the control node may have called this relocation
            // off meanwhile (it aborts it when this server is back) or the source may
            // still be live. Judged again when the lease returns.
            return;
        }
        match verdict {
            Verdict::Valid => self.activate(service),
            Verdict::Reject(_) => {
                // NOTE: unlike a discard, this does not remember the service as discarded,
                // so sync still in flight creates a new, empty shadow.
                let held = self
                    .shadows
                    .remove(&service)
                    .map(|sh| sh.held)
                    .unwrap_or_default();
                self.send(
                    source,
                    RelocateConfirm {
                        service,
                        target,
                        verdict,
                    },
                );
                // The source serves on: the traffic it passed on (or that came here early)
                // goes back, behind the 2005 that thaws it.
                self.forward_held(source, held);
            }
            v => {
                if check.asked.as_ref() == Some(&v) {
                    // Already asked; the answer is on its way (a lost one is asked again
                    // when the source repeats its 2004).
                    return;
                }
                if v == Verdict::NeedFull {
                    sh.state.restart();
                }
                check.asked = Some(v.clone());
                self.send(
                    source,
                    RelocateConfirm {
                        service,
                        target,
                        verdict: v,
                    },
                );
            }
        }
    }

    /// The shadow passed the check: it becomes the live instance.
    fn activate(&mut self, service: ServiceId) {
        let Some(sh) = self.shadows.remove(&service) else {
            return;
        };
        let Shadow {
            created_at,
            state: ShadowState::Ready(mut inst),
            check: Some(check),
            held,
            ..
        } = sh
        else {
            return;
        };
        let req = check.request;
        inst.adopt_answers(&req.answers);
        let (last_seq, digest, state_bytes) = (inst.last_seq, inst.digest, inst.footprint());
        // O(1) in state size: the instance moves from the shadow table to the live one. Its
        // dirty map may be stale; a later delta shadow starts from a full snapshot, and
        // extra chunks in its first delta are harmless.
        self.live.insert(service, Live::new(inst, req.epoch));
        self.moved.remove(&service);
        self.events.push_back(EdgeEvent::Activated {
            service,
            from: req.source,
            last_seq,
            digest,
            first_try: check.asked.is_none(),
            state_bytes,
            shadow_created_at: created_at,
        });
        let me = self.cfg.id;
        self.send(
            req.source,
            RelocateConfirm {
                service,
                target: me,
                verdict: Verdict::Valid,
            },
        );
        self.report_done(service, req.source, me, req.epoch, true);
        self.release_held(held);
        self.load_report(Some(service));
    }
}
