//! The source side: a live instance here, and its relocation to another server.
//!
//! [`Source`] is where a live instance stands: serving, iterating a precopy, or frozen
//! until the target answers the 2004. A 1006 naming this server as source starts a
//! relocation ([`EdgeServer::relocate_out`]); 3032 and 3036 from the target drive a
//! precopy ([`EdgeServer::precopy_step`]); the target's 2005 ends it
//! ([`EdgeServer::on_confirm`]); the confirm watchdog, a timer per frozen instance, asks
//! again or gives up. Keeping the shadows in sync is in `links.rs`, serving the UE in
//! `traffic.rs`.

use std::collections::BTreeMap;

use edgeshift_proto::{
    CatchUp, InputRecord, Instant, NodeId, RelocateConfirm, RelocateRequest, RelocationMode,
    ServerId, ServiceId, ServiceInput, SyncBody, SyncMode, Verdict,
};

use super::EdgeServer;
use super::links::{Link, forget_plans, sync_to};
use super::shadow::{Shadow, ShadowState};
use super::tentative::Tentative;
use super::timers::Timer;
use super::traffic::{Held, Moved};
use crate::event::EdgeEvent;
use crate::instance::Instance;
use crate::seqlog::SeqLog;

/// A live instance hosted here.
pub(super) struct Live {
    pub(super) inst: Instance,
    /// Where the instance stands in a relocation out of here.
    pub(super) state: Source,
    /// Shadows kept in sync, by server. Once a relocation starts, only its target's.
    pub(super) links: BTreeMap<ServerId, Link>,
    /// The latest applied inputs (`EdgeConfig::input_log` of them), for catch-up.
    pub(super) log: SeqLog,
    /// Applied inputs not yet sent to the replay shadows (replay batching); empty while
    /// frozen.
    pub(super) batch: Vec<InputRecord>,
    /// Route epoch the instance went live under; a 1006 release for an older epoch is
    /// not about it.
    pub(super) epoch: u64,
    /// Promoted from a shadow that may lack inputs the dead source had applied: inputs
    /// past a gap make it ask the UE to resend (at most once per `NUDGE_EVERY`).
    pub(super) promoted: bool,
    /// When it last asked.
    pub(super) nudged: Option<Instant>,
    /// Since when inputs have waited behind a gap (any instance asks the UE once the gap
    /// has lasted `NUDGE_EVERY`: inputs lost on their way, not reordered).
    pub(super) gap_since: Option<Instant>,
    /// The cell the latest input came through: where the UE is, as far as this server
    /// knows. Answers go there, not to the cell each input came through: after a long
    /// hold the UE has moved on, and answers sent after it would be lost.
    pub(super) last_via: Option<edgeshift_proto::CellId>,
    /// Live before its relocation's 2004 came (optimistic activation), until it commits
    /// or rolls back.
    pub(super) tentative: Option<Tentative>,
}

/// Where a live instance stands in a relocation out of this server.
pub(super) enum Source {
    /// Serving the UE; no relocation under way.
    Serving,
    /// A precopy relocation: still serving while delta rounds bring the target's shadow
    /// close, until little enough is dirty or the rounds run out.
    Precopy {
        target: ServerId,
        epoch: u64,
        /// Delta rounds sent so far.
        rounds: u32,
        /// A step came while the lease was lost and waits for its return.
        stalled: bool,
    },
    /// Stopped for a relocation: the 2004 went out and UE traffic waits for the 2005 (here,
    /// or at a target with a ready shadow, see [`Frozen::passes_on`]).
    Frozen(Frozen),
}

/// A live instance stopped until its relocation's target confirms.
pub(super) struct Frozen {
    pub(super) target: ServerId,
    /// Route epoch of the relocation (from its 1006).
    pub(super) epoch: u64,
    /// How the state moves (a precopy catches up with a delta).
    pub(super) mode: RelocationMode,
    /// 2004s sent without an answer.
    pub(super) unanswered: u32,
    /// UE traffic that arrived since the freeze, in order.
    pub(super) held: Vec<Held>,
    /// The target holds a ready shadow: UE traffic goes on to it at once, behind the 2004,
    /// and waits there for the activation instead of here for the 2005 (one backhaul
    /// round trip less for an input that meets the freeze).
    pub(super) passes_on: bool,
    /// What went on to the target, kept until the 2005: should the relocation fail, the
    /// source serves it (whether or not the target gives it back).
    pub(super) passed: Vec<Held>,
}

impl Frozen {
    /// Everything the freeze took in, for a source that serves again: what it passed on,
    /// then what it held.
    pub(super) fn traffic(self) -> Vec<Held> {
        let mut all = self.passed;
        all.extend(self.held);
        all
    }

    /// Passes nothing on from now on, and holds again what went on: the target's shadow
    /// is not ready after all.
    fn stop_passing_on(&mut self) {
        self.passes_on = false;
        let held = std::mem::take(&mut self.held);
        self.held = std::mem::take(&mut self.passed);
        self.held.extend(held);
    }

    /// Holds `h`, unless it is a copy of what went on (given back by the target).
    pub(super) fn hold(&mut self, h: Held) {
        let key = h.key();
        if !self.passed.iter().any(|p| p.key() == key) {
            self.held.push(h);
        }
    }
}

impl Source {
    /// The target of the relocation under way, if any.
    pub(super) fn target(&self) -> Option<ServerId> {
        match self {
            Self::Serving => None,
            Self::Precopy { target, .. } => Some(*target),
            Self::Frozen(f) => Some(f.target),
        }
    }

    pub(super) fn is_frozen(&self) -> bool {
        matches!(self, Self::Frozen(_))
    }

    /// Stops for a relocation to `target`.
    fn freeze(&mut self, target: ServerId, epoch: u64, mode: RelocationMode) {
        *self = Self::Frozen(Frozen {
            target,
            epoch,
            mode,
            unanswered: 0,
            held: Vec::new(),
            passes_on: false,
            passed: Vec::new(),
        });
    }

    /// Serves again after a failed relocation; returns what the freeze held.
    fn thaw(&mut self) -> Option<Frozen> {
        match std::mem::replace(self, Self::Serving) {
            Self::Frozen(f) => Some(f),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Live {
    pub(super) fn new(inst: Instance, epoch: u64) -> Self {
        Self {
            inst,
            state: Source::Serving,
            links: BTreeMap::new(),
            log: SeqLog::default(),
            batch: Vec::new(),
            epoch,
            promoted: false,
            nudged: None,
            gap_since: None,
            last_via: None,
            tentative: None,
        }
    }

    /// Servers holding a shadow synced in `mode`.
    pub(super) fn links_in(&self, mode: SyncMode) -> Vec<ServerId> {
        self.links
            .iter()
            .filter(|(_, l)| l.mode == mode)
            .map(|(s, _)| *s)
            .collect()
    }
}

impl EdgeServer {
    /// A 1006 naming this server as source: `service` moves to `target`.
    pub(super) fn relocate_out(
        &mut self,
        now: Instant,
        from: NodeId,
        service: ServiceId,
        target: ServerId,
        mode: RelocationMode,
        epoch: u64,
    ) {
        if self.fenced_results.contains_key(&service) {
            // Inputs applied after the lease ran out wait for it with their answers: the
            // state holding them leaves only then (`unfence_one` comes back here).
            self.deferred.push((from, service, target, mode, epoch));
            return;
        }
        let Some(live) = self.live.get_mut(&service) else {
            if !self.moved.contains_key(&service) {
                self.violation(
                    from,
                    format!("relocate of {service}, which is not live here"),
                );
            }
            return;
        };
        // A relocation under way (or a repeated 1006) is not restarted; a tentative
        // instance moves only once its own relocation committed.
        if !matches!(live.state, Source::Serving)
            || target == self.cfg.id
            || live.tentative.is_some()
        {
            return;
        }
        self.events.push_back(EdgeEvent::RelocationTriggered {
            service,
            target,
            mode,
        });
        forget_plans(&mut self.planned, service);
        let has_shadow = live.links.contains_key(&target);
        let ready = live.links.get(&target).is_some_and(|l| l.ready);
        match mode {
            RelocationMode::Hot if has_shadow => {
                self.freeze(service, target, epoch, mode);
                self.request(service);
                if ready {
                    self.start_passing_on(service);
                }
            }
            RelocationMode::Hot | RelocationMode::Cold => {
                // Stop first so the snapshot is final: the copy is the whole critical path.
                self.freeze(service, target, epoch, mode);
                self.start_shadow(now, service, target, SyncMode::Replay);
                self.request(service);
            }
            RelocationMode::Precopy => {
                // NOTE: onto a replay shadow with more than the threshold dirty, the round
                // sends nothing (no delta link), so no 3036 drives the next step, and no
                // watchdog runs before the freeze: the relocation stalls. The control node
                // never asks for that today (precopy prepares no shadows).
                live.state = Source::Precopy {
                    target,
                    epoch,
                    rounds: 0,
                    stalled: false,
                };
                if has_shadow {
                    self.precopy_step(service);
                } else {
                    self.start_shadow(now, service, target, SyncMode::Delta);
                }
            }
        }
    }

    fn freeze(&mut self, service: ServiceId, target: ServerId, epoch: u64, mode: RelocationMode) {
        if let Some(live) = self.live.get_mut(&service) {
            live.state.freeze(target, epoch, mode);
            // UE inputs not yet applied (they came after the 1006, while a job ran) are
            // held like those that come from now on: they follow the instance.
            let later = live.inst.pending.split_off(&(live.inst.last_seq + 1));
            if let Source::Frozen(f) = &mut live.state {
                for (seq, p) in later {
                    match p.via {
                        Some(via) => f.held.push(Held::Input(ServiceInput {
                            ue: live.inst.meta.ue,
                            service,
                            via,
                            input: InputRecord {
                                seq,
                                payload: p.payload,
                            },
                            answered_below: 0,
                        })),
                        None => {
                            live.inst.pending.insert(seq, p);
                        }
                    }
                }
            }
            self.unwatched.insert(service);
            // The other shadows stop here, at the state the target goes live with: they
            // get the last batch, so that the new host can take over their sync (the
            // control node keeps the ready ones). The target's catch-up at 2005 covers it.
            let batch = std::mem::take(&mut live.batch);
            if !batch.is_empty() {
                let others: Vec<ServerId> = live
                    .links_in(SyncMode::Replay)
                    .into_iter()
                    .filter(|s| *s != target)
                    .collect();
                sync_to(
                    &mut self.out,
                    self.cfg.id,
                    service,
                    &others,
                    &SyncBody::Inputs(batch),
                );
            }
            live.links.retain(|s, _| *s == target);
            let last_seq = live.inst.last_seq;
            self.events
                .push_back(EdgeEvent::Frozen { service, last_seq });
            // Adoptions still being agreed are off: the service is on its way out.
            self.forget_adoptions(service, None);
        }
    }

    /// From now on the frozen instance passes UE traffic on to its target, which holds a
    /// ready shadow; what it held so far goes first, behind the 2004 just sent.
    fn start_passing_on(&mut self, service: ServiceId) {
        let Some(Source::Frozen(f)) = self.live.get_mut(&service).map(|l| &mut l.state) else {
            return;
        };
        f.passes_on = true;
        let target = f.target;
        let held = std::mem::take(&mut f.held);
        f.passed.clone_from(&held);
        self.forward_held(target, held);
    }

    /// Sends (or repeats) the 2004 of a frozen instance.
    pub(super) fn request(&mut self, service: ServiceId) {
        let Some(live) = self.live.get(&service) else {
            return;
        };
        let Source::Frozen(f) = &live.state else {
            return;
        };
        let transfer_pending = live.links.get(&f.target).is_some_and(|l| !l.ready);
        let req = RelocateRequest {
            service,
            source: self.cfg.id,
            last_seq: live.inst.last_seq,
            digest: live.inst.digest,
            epoch: f.epoch,
            transfer_pending,
            state_checksum: if live.inst.state_len() <= self.cfg.audit_max_bytes {
                live.inst.checksum()
            } else {
                None
            },
            // The whole answer cache: an answer the radio lost before the handover may be
            // retransmitted for seconds (seed 24 of `turnback --swarm` needed 65).
            answers: live.inst.owed_answers(),
        };
        let target = f.target;
        self.send(target, req);
    }

    /// A precopy heard from its target: another delta round, or freeze for the last one.
    pub(super) fn precopy_step(&mut self, service: ServiceId) {
        let stall = self.fenced_for(service) || self.fenced_results.contains_key(&service);
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Source::Precopy {
            target,
            epoch,
            rounds,
            stalled,
        } = &mut live.state
        else {
            return;
        };
        *stalled = stall;
        if stall {
            // Without the lease no state leaves, and answers kept for it must go out
            // before a freeze: the lease's return takes the step (`unfence_one`).
            return;
        }
        if live
            .inst
            .svc()
            .is_none_or(|s| s.dirty_bytes() <= self.cfg.precopy_threshold)
            || *rounds >= self.cfg.precopy_max_rounds
        {
            let (target, epoch) = (*target, *epoch);
            self.freeze(service, target, epoch, RelocationMode::Precopy);
            self.request(service);
        } else {
            *rounds += 1;
            self.send_delta_round(service);
        }
    }

    /// 2005: the target's verdict on its shadow.
    pub(super) fn on_confirm(&mut self, now: Instant, from: NodeId, m: RelocateConfirm) {
        let service = m.service;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let f = match &mut live.state {
            Source::Serving => {
                self.violation(from, format!("2005 for {service} without a relocation"));
                return;
            }
            Source::Frozen(f) if f.target == m.target => f,
            Source::Precopy { .. } | Source::Frozen(_) => {
                self.violation(
                    from,
                    format!("unexpected 2005 for {service} from {}", m.target),
                );
                return;
            }
        };
        // The target is alive and working on it: the watchdog starts over.
        f.unanswered = 0;
        self.unwatched.insert(service);
        let (target, mode) = (f.target, f.mode);
        match m.verdict {
            Verdict::Valid => {
                let Some(live) = self.live.remove(&service) else {
                    return;
                };
                self.moved.insert(service, Moved::to(target));
                if let Source::Frozen(f) = live.state {
                    self.forward_held(target, f.held);
                }
                self.events.push_back(EdgeEvent::RelocatedOut {
                    service,
                    to: target,
                });
                self.keep_as_shadow(now, service, target, live.inst);
                self.load_report(Some(service));
            }
            Verdict::NeedFrom(k) => {
                let source = self.cfg.id;
                // Saturating: a peer's NeedFrom(u64::MAX) must not panic.
                let covered = live
                    .log
                    .front_seq()
                    .is_some_and(|s| s <= k.saturating_add(1))
                    || k == live.inst.last_seq;
                // Delta-synced shadows (and precopy) catch up with the changed chunks, as
                // their sync does; replay shadows with the inputs they missed.
                let delta_link = live
                    .links
                    .get(&target)
                    .is_some_and(|l| l.mode == SyncMode::Delta);
                if (mode == RelocationMode::Precopy || delta_link)
                    && let Some(delta) = live.inst.take_delta()
                {
                    self.send(
                        target,
                        CatchUp {
                            service,
                            source,
                            body: SyncBody::Delta(delta),
                        },
                    );
                } else if covered {
                    let inputs = live.log.records_after(k);
                    self.send(
                        target,
                        CatchUp {
                            service,
                            source,
                            body: SyncBody::Inputs(inputs),
                        },
                    );
                } else {
                    // A whole copy replaces the target's instance, with what went on to it.
                    f.stop_passing_on();
                    self.start_shadow(now, service, target, SyncMode::Replay);
                }
            }
            Verdict::NeedFull => {
                // A target that lost its shadow (a restart) may have lost what went on to
                // it too: it is held here again, and goes with the rest after the 2005.
                f.stop_passing_on();
                let mode = live.links.get(&target).map_or(SyncMode::Replay, |l| l.mode);
                self.start_shadow(now, service, target, mode);
            }
            Verdict::Reject(reason) => self.abandon(service, reason),
        }
    }

    /// The instance that moved out stays as a shadow of its new host: frozen, it holds
    /// the very state the target went live with, so a UE that turns back finds it ready.
    /// The control node has the new host adopt it (1003 adopt), or discards it. An
    /// instance lent to a job has no service to keep.
    pub(super) fn keep_as_shadow(
        &mut self,
        now: Instant,
        service: ServiceId,
        to: ServerId,
        inst: Instance,
    ) {
        if inst.svc().is_none() {
            return;
        }
        self.discarded.cancel(service);
        let mut sh = Shadow::new(to, now);
        let seq = inst.last_seq;
        sh.state = ShadowState::Ready(inst);
        self.shadows.insert(service, sh);
        self.events.push_back(EdgeEvent::ShadowCreated {
            service,
            source: to,
        });
        self.events
            .push_back(EdgeEvent::ShadowReady { service, seq });
    }

    /// The relocation failed: the source serves again, held traffic first, and tells
    /// the control node. Without a lease it stays frozen until the lease returns: the
    /// control node may have replaced the instance meanwhile (then a release comes first).
    pub(super) fn abandon(&mut self, service: ServiceId, reason: String) {
        if self.fenced_for(service) {
            if self.live.get(&service).is_some_and(|l| l.state.is_frozen()) {
                self.abandoned.insert(service, reason);
            }
            return;
        }
        if let Some(f) = self.thaw(service, reason) {
            self.report_done(service, self.cfg.id, f.target, f.epoch, false);
            self.release_held(f.traffic());
        }
    }

    /// A frozen instance serves again; returns what the freeze held, for the caller to
    /// serve.
    pub(super) fn thaw(&mut self, service: ServiceId, reason: String) -> Option<Frozen> {
        let live = self.live.get_mut(&service)?;
        let f = live.state.thaw()?;
        live.links.remove(&f.target);
        self.forget_adoptions(service, None);
        self.unflushed.insert(service);
        self.events.push_back(EdgeEvent::RelocationFailed {
            service,
            target: f.target,
            reason,
        });
        Some(f)
    }

    /// (Re)starts the confirm watchdog of the sources that froze, heard from their
    /// target or repeated their 2004 during this call; runs at the end of every call.
    pub(super) fn watch_confirms(&mut self, now: Instant) {
        for service in std::mem::take(&mut self.unwatched) {
            let Some(live) = self.live.get(&service) else {
                continue;
            };
            if !live.state.is_frozen() {
                continue;
            }
            let state = live.inst.footprint() as f64;
            // A rate that is not positive (a bad configuration) adds no transfer time,
            // rather than a panic or an endless wait.
            let secs = state / self.cfg.confirm_rate_bytes_s;
            let transfer = std::time::Duration::try_from_secs_f64(secs).unwrap_or_default();
            self.timers.set(
                Timer::Confirm(service),
                now + self.cfg.confirm_timeout + transfer,
            );
        }
    }

    /// The confirm watchdog of a frozen source expired.
    pub(super) fn on_confirm_timeout(&mut self, service: ServiceId) {
        let attempts = self.cfg.confirm_attempts;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let Source::Frozen(f) = &mut live.state else {
            return;
        };
        f.unanswered += 1;
        if f.unanswered >= attempts && self.cfg.lease.is_some() {
            // The target may have gone live and only its 2005 be lost: serving again here
            // could make two live instances. The control node asks the target and answers
            // with a resume or a release; until then the instance stays frozen.
            let (target, epoch) = (f.target, f.epoch);
            self.report_done(service, self.cfg.id, target, epoch, false);
            return;
        }
        self.unwatched.insert(service);
        if f.unanswered >= attempts {
            let reason = format!(
                "{} did not confirm after {} requests",
                f.target, f.unanswered
            );
            self.abandon(service, reason);
        } else {
            // A transfer still unconfirmed after its allowance was lost (a partition, a
            // restarted target): send it again, or the target waits for it forever.
            let target = f.target;
            if let Some(mode) = live.links.get(&target).filter(|l| !l.ready).map(|l| l.mode) {
                self.start_shadow(self.now, service, target, mode);
            }
            // A lost or late 2005, or a restarted target: ask again (a live target
            // confirms again; an empty one asks for the state).
            self.request(service);
        }
    }
}

#[cfg(test)]
mod tests;
