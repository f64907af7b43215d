//! The source side.

use std::collections::{BTreeMap, VecDeque};

use super::EdgeServer;
use super::timers::Timer;
use super::traffic::Held;
use crate::event::EdgeEvent;
use crate::instance::Instance;
use edgeshift_proto::{
    CatchUp, Instant, NodeId, RelocateConfirm, RelocateRequest, RelocationDone, RelocationMode,
    ServerId, ServiceId, SyncBody, SyncMode, Verdict,
};

/// A shadow this (source) server keeps in sync.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) mode: SyncMode,
    pub(super) ready: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Outgoing {
    pub(super) target: ServerId,
    pub(super) epoch: u64,
    pub(super) mode: RelocationMode,
    pub(super) rounds: u32,
    /// When the source last heard from the target (or froze), for the confirm watchdog.
    pub(super) heard_at: Option<Instant>,
    /// 2004s sent without an answer.
    pub(super) unanswered: u32,
}

pub(super) struct Live {
    pub(super) inst: Instance,
    pub(super) frozen: bool,
    pub(super) held: Vec<Held>,
    pub(super) links: BTreeMap<ServerId, Link>,
    pub(super) log: VecDeque<edgeshift_proto::InputRecord>,
    pub(super) batch: Vec<edgeshift_proto::InputRecord>,
    pub(super) out: Option<Outgoing>,
}

impl EdgeServer {
    pub(super) fn relocate_out(
        &mut self,
        now: Instant,
        from: NodeId,
        service: ServiceId,
        target: ServerId,
        mode: RelocationMode,
        epoch: u64,
    ) {
        let Some(live) = self.live.get_mut(&service) else {
            if !self.moved.contains_key(&service) {
                self.violation(
                    from,
                    format!("relocate of {service}, which is not live here"),
                );
            }
            return;
        };
        if live.out.is_some() || target == self.cfg.id {
            return;
        }
        self.events.push_back(EdgeEvent::RelocationTriggered {
            service,
            target,
            mode,
        });
        live.links.retain(|s, _| *s == target);
        self.planned.retain(|(s, _), _| *s != service);
        live.out = Some(Outgoing {
            target,
            epoch,
            mode,
            rounds: 0,
            heard_at: None,
            unanswered: 0,
        });
        let has_shadow = live.links.contains_key(&target);
        match mode {
            RelocationMode::Hot if has_shadow => self.freeze(service),
            RelocationMode::Hot | RelocationMode::Cold => {
                // Stop first so the snapshot is final: the copy is the whole critical path.
                self.freeze_quiet(service);
                self.start_shadow(now, service, target, SyncMode::Replay);
                self.request(service);
            }
            RelocationMode::Precopy => {
                if has_shadow {
                    self.precopy_step(service);
                } else {
                    self.start_shadow(now, service, target, SyncMode::Delta);
                }
            }
        }
    }

    pub(super) fn freeze_quiet(&mut self, service: ServiceId) {
        if let Some(live) = self.live.get_mut(&service) {
            live.frozen = true;
            // Unsent replay batches are not flushed: the catch-up at 2005 covers them.
            live.batch.clear();
            let last_seq = live.inst.last_seq;
            self.events
                .push_back(EdgeEvent::Frozen { service, last_seq });
        }
    }

    pub(super) fn request(&mut self, service: ServiceId) {
        let Some(live) = self.live.get(&service) else {
            return;
        };
        let Some(out) = live.out else { return };
        let transfer_pending = live.links.get(&out.target).is_some_and(|l| !l.ready);
        let req = RelocateRequest {
            service,
            source: self.cfg.id,
            last_seq: live.inst.last_seq,
            digest: live.inst.digest,
            epoch: out.epoch,
            transfer_pending,
            state_checksum: (live.inst.svc.state_len() <= self.cfg.audit_max_bytes)
                .then(|| live.inst.svc.checksum()),
            // The whole answer cache: an answer the radio lost before the handover may be
            // retransmitted for seconds (seed 24 of `turnback --swarm` needed 65).
            answers: live.inst.recent_answers(self.cfg.answer_cache),
        };
        self.send(out.target, req);
    }

    pub(super) fn freeze(&mut self, service: ServiceId) {
        self.freeze_quiet(service);
        self.request(service);
    }

    pub(super) fn precopy_step(&mut self, service: ServiceId) {
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Some(out) = live.out.as_mut() else { return };
        if live.frozen || out.mode != RelocationMode::Precopy {
            return;
        }
        if live.inst.svc.dirty_bytes() <= self.cfg.precopy_threshold
            || out.rounds >= self.cfg.precopy_max_rounds
        {
            self.freeze(service);
        } else {
            out.rounds += 1;
            self.send_delta_round(service);
        }
    }

    pub(super) fn on_confirm(&mut self, now: Instant, from: NodeId, m: RelocateConfirm) {
        let service = m.service;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Some(out) = live.out else {
            self.violation(from, format!("2005 for {service} without a relocation"));
            return;
        };
        if out.target != m.target || !live.frozen {
            self.violation(
                from,
                format!("unexpected 2005 for {service} from {}", m.target),
            );
            return;
        }
        // The target is alive and working on it: the watchdog starts over.
        if let Some(o) = live.out.as_mut() {
            o.heard_at = None;
            o.unanswered = 0;
        }
        match m.verdict {
            Verdict::Valid => {
                let Some(live) = self.live.remove(&service) else {
                    return;
                };
                self.moved.insert(service, out.target);
                for h in live.held {
                    match h {
                        Held::Input(i) => self.send(out.target, i),
                        Held::Probe(p) => self.send(out.target, p),
                    }
                }
                self.events.push_back(EdgeEvent::RelocatedOut {
                    service,
                    to: out.target,
                });
                self.load_report();
            }
            Verdict::NeedFrom(k) => {
                let source = self.cfg.id;
                let covered =
                    live.log.front().is_some_and(|r| r.seq <= k + 1) || k == live.inst.last_seq;
                // Delta-synced shadows (and precopy) catch up with the changed chunks, as
                // their sync does; replay shadows with the inputs they missed.
                let delta_link = live
                    .links
                    .get(&out.target)
                    .is_some_and(|l| l.mode == SyncMode::Delta);
                if out.mode == RelocationMode::Precopy || delta_link {
                    let delta = live.inst.take_delta();
                    self.send(
                        out.target,
                        CatchUp {
                            service,
                            source,
                            body: SyncBody::Delta(delta),
                        },
                    );
                } else if covered {
                    let inputs = live.log.iter().filter(|r| r.seq > k).cloned().collect();
                    self.send(
                        out.target,
                        CatchUp {
                            service,
                            source,
                            body: SyncBody::Inputs(inputs),
                        },
                    );
                } else {
                    self.start_shadow(now, service, out.target, SyncMode::Replay);
                }
            }
            Verdict::NeedFull => {
                let mode = live
                    .links
                    .get(&out.target)
                    .map_or(SyncMode::Replay, |l| l.mode);
                self.start_shadow(now, service, out.target, mode);
            }
            Verdict::Reject(reason) => self.abandon(service, reason),
        }
    }

    /// The relocation failed: the source serves again, held traffic first.
    pub(super) fn abandon(&mut self, service: ServiceId, reason: String) {
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Some(out) = live.out.take() else { return };
        live.frozen = false;
        live.links.remove(&out.target);
        let held = std::mem::take(&mut live.held);
        self.events.push_back(EdgeEvent::RelocationFailed {
            service,
            target: out.target,
            reason,
        });
        let done = RelocationDone {
            service,
            from: self.cfg.id,
            to: out.target,
            ok: false,
            epoch: out.epoch,
        };
        self.send(NodeId::Control, done);
        self.release_held(held);
    }

    /// Arms the confirm watchdog of every frozen source that has not armed it yet.
    pub(super) fn watch_confirms(&mut self, now: Instant) {
        let mut arm = Vec::new();
        for (service, live) in &mut self.live {
            if !live.frozen {
                continue;
            }
            let state = live.inst.svc.state_len() as f64;
            let Some(out) = live.out.as_mut() else {
                continue;
            };
            if out.heard_at.is_none() {
                out.heard_at = Some(now);
                let transfer =
                    std::time::Duration::from_secs_f64(state / self.cfg.confirm_rate_bytes_s);
                arm.push((now + self.cfg.confirm_timeout + transfer, *service));
            }
        }
        for (at, service) in arm {
            self.timers.set(Timer::Confirm(service), at);
        }
    }

    pub(super) fn on_confirm_timeout(&mut self, service: ServiceId) {
        let attempts = self.cfg.confirm_attempts;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Some(out) = live.out.as_mut().filter(|_| live.frozen) else {
            return;
        };
        out.unanswered += 1;
        out.heard_at = None;
        if out.unanswered >= attempts {
            let reason = format!(
                "{} did not confirm after {} requests",
                out.target, out.unanswered
            );
            self.abandon(service, reason);
        } else {
            // A lost or late 2005, or a restarted target: ask again (a live target
            // confirms again; an empty one asks for the state).
            self.request(service);
        }
    }
}

impl Live {
    /// Servers holding a shadow synced in `mode`.
    pub(super) fn links_in(&self, mode: SyncMode) -> Vec<ServerId> {
        self.links
            .iter()
            .filter(|(_, l)| l.mode == mode)
            .map(|(s, _)| *s)
            .collect()
    }

    pub(super) fn new(inst: Instance) -> Self {
        Self {
            inst,
            frozen: false,
            held: Vec::new(),
            links: BTreeMap::new(),
            log: VecDeque::new(),
            batch: Vec::new(),
            out: None,
        }
    }
}
