//! UE traffic (3010 inputs, 3016 runs of them, 3012 probes) for any service this server
//! knows. A run is handled input by input, as its 3010s would be, with one job after the
//! last; with `EdgeConfig::output_runs` the answers of one job go back as 3017s.
//!
//! A serving live instance applies inputs in sequence order, answers the UE and forwards
//! what it applied to its replay shadows. A frozen instance and a shadow hold the traffic
//! ([`Held`]) until it is clear who serves it, except that a frozen instance whose target
//! holds a ready shadow passes it on there at once; a service that moved out has its stale
//! traffic forwarded to the new host (also when the old instance stayed as a shadow of
//! it: traffic on the old route is not early, it is late). Driven by the role's message
//! dispatch, and by the source and shadow sides when they release or pass on what they
//! held.

use std::collections::BTreeSet;

use super::EdgeServer;
use super::links::sync_to;
use super::source::Source;
use crate::event::EdgeEvent;
use edgeshift_proto::{
    Answer, CellId, InputRun, NodeId, OutputRun, Probe, ProbeReply, ResendFrom, ServerId,
    ServiceId, ServiceInput, ServiceOutput, SyncBody, SyncMode, UeId,
};

/// A promoted instance asks the UE for missing inputs at most this often per gap.
const NUDGE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// At most this many forwarded inputs and probes are remembered per moved-out service.
const FORWARDED_MEMORY: usize = 4096;

/// Where a service that left this server went, and what of its traffic this server
/// forwarded there (to tell a ring of stale pointers from a retransmission).
#[derive(Debug)]
pub(super) struct Moved {
    pub(super) to: ServerId,
    forwarded: BTreeSet<Sent>,
}

impl Moved {
    pub(super) fn to(to: ServerId) -> Self {
        Self {
            to,
            forwarded: BTreeSet::new(),
        }
    }
}

/// A forwarded input (by its number) or probe (by its nonce).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Sent {
    Input(u64),
    Probe(u64),
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(seq) => write!(f, "input {seq}"),
            Self::Probe(nonce) => write!(f, "probe {nonce}"),
        }
    }
}

/// UE traffic held while an instance cannot serve (frozen source, shadow not yet live).
#[derive(Clone, Debug)]
pub(super) enum Held {
    Input(ServiceInput),
    Probe(Probe),
}

impl Held {
    /// The cell it came through.
    pub(super) fn via(&self) -> CellId {
        match self {
            Self::Input(m) => m.via,
            Self::Probe(m) => m.via,
        }
    }

    /// What tells it from other traffic of its service.
    pub(super) fn key(&self) -> Sent {
        match self {
            Self::Input(m) => Sent::Input(m.input.seq),
            Self::Probe(m) => Sent::Probe(m.nonce),
        }
    }
}

impl EdgeServer {
    /// 3010 from a cell (or forwarded by the previous host).
    pub(super) fn on_input(&mut self, from: NodeId, m: ServiceInput) {
        if self.looping(from, m.service, Sent::Input(m.input.seq)) {
            return;
        }
        if let Err(Held::Input(m)) = self.pass_on(m.service, from, Held::Input(m)) {
            self.input(from, m, true);
        }
    }

    /// 3016 from a cell: each input as its own 3010, with one job and one check for a
    /// gap after the last, so that the run is applied, answered and synced together.
    pub(super) fn on_input_run(&mut self, from: NodeId, m: InputRun) {
        let (service, ue, via) = (m.service, m.ue, m.via);
        let mut offered = false;
        for m in m.unroll() {
            if self.looping(from, service, Sent::Input(m.input.seq)) {
                continue;
            }
            if let Err(Held::Input(m)) = self.pass_on(service, from, Held::Input(m)) {
                offered |= self.offer(from, m, true);
            }
        }
        if offered {
            self.kick(service);
            self.nudge(service, ue, via);
        }
    }

    /// Sends `h` on to the target of a frozen instance that passes its traffic on (see
    /// [`Frozen::passes_on`](super::source::Frozen)), keeping a copy; gives it back if
    /// this server handles it itself. Not what the target gave back (a shadow that was
    /// dropped or refused), nor while the lease is lost: the relocation may have been
    /// called off meanwhile, and the traffic waits here for the answer.
    pub(super) fn pass_on(
        &mut self,
        service: ServiceId,
        from: NodeId,
        h: Held,
    ) -> Result<(), Held> {
        let fenced = self.fenced_for(service);
        let Some(Source::Frozen(f)) = self.live.get_mut(&service).map(|l| &mut l.state) else {
            return Err(h);
        };
        if !f.passes_on || from == NodeId::Server(f.target) || fenced {
            return Err(h);
        }
        let to = f.target;
        f.passed.push(h.clone());
        self.forward_held(to, vec![h]);
        Ok(())
    }

    /// Whether traffic of `service` that `from`, another server, forwarded here is going
    /// round in a ring: it comes from the server this one forwards to, or this server
    /// forwarded it already. Stale forwarding pointers can form such a ring (servers
    /// that each took another for the service's successor after a relocation the control
    /// node gave up on); passed on, it would circle for ever. It is dropped and counted,
    /// and the UE's retransmission finds the instance once the cells learn its route.
    pub(super) fn looping(&mut self, from: NodeId, service: ServiceId, sent: Sent) -> bool {
        let NodeId::Server(sender) = from else {
            return false;
        };
        let here = self.live.contains_key(&service) || self.holds_for_shadow(service, from);
        let ring = self
            .moved
            .get(&service)
            .is_some_and(|m| m.to == sender || m.forwarded.contains(&sent));
        if here || !ring {
            return false;
        }
        self.violation(
            from,
            format!("{sent} for {service} came round a ring of forwarding servers"),
        );
        true
    }

    /// An input from `from`, new (`arrived`: its cell is where the UE is now) or released
    /// from a hold.
    fn input(&mut self, from: NodeId, m: ServiceInput, arrived: bool) {
        let (service, ue, via) = (m.service, m.ue, m.via);
        if self.offer(from, m, arrived) {
            self.kick(service);
            self.nudge(service, ue, via);
        }
    }

    /// [`Self::input`] up to the job: whether it gave a serving live instance a new input
    /// to apply (the caller kicks the instance and looks for a gap).
    fn offer(&mut self, from: NodeId, m: ServiceInput, arrived: bool) -> bool {
        let service = m.service;
        let fenced = self.fenced_for(service);
        if let Some(live) = self.live.get_mut(&service) {
            live.inst.ue_has_answers_below(m.answered_below);
            if let Source::Frozen(f) = &mut live.state {
                f.hold(Held::Input(m));
                return false;
            }
            if fenced {
                self.hold_fenced(service, Held::Input(m));
                return false;
            }
            let via = m.via;
            if arrived {
                live.last_via = Some(via);
            }
            if !live.inst.offer(m.input.seq, m.input.payload, Some(m.via)) {
                // A retransmission: the answer was lost, send it again.
                if let Some(a) = live.inst.answer(m.input.seq).map(<[u8]>::to_vec) {
                    let out = ServiceOutput {
                        ue: m.ue,
                        service,
                        via: m.via,
                        seq: m.input.seq,
                        payload: a,
                    };
                    self.send(m.via, out);
                }
                return false;
            }
            return true;
        } else if self.holds_for_shadow(service, from)
            && let Some(sh) = self.shadows.get_mut(&service)
        {
            sh.held.push(Held::Input(m));
        } else if let Some(to) = self.forward(service, Sent::Input(m.input.seq)) {
            self.send(to, m);
        } else {
            self.violation(
                NodeId::Cell(m.via),
                format!("input {} for unknown {service}", m.input.seq),
            );
        }
        false
    }

    /// A promoted instance with inputs waiting behind a gap asks the UE for the missing
    /// ones: they were applied only by the dead source, whose sync never reached the
    /// shadow. Any other instance asks once a gap has lasted [`NUDGE_EVERY`]: the inputs
    /// were lost on their way (sent through a server that died, or a gap a promoted
    /// instance handed on by relocating before it filled), not reordered. At most once per
    /// [`NUDGE_EVERY`]: the UE resends every input it keeps after the one named, so while
    /// the gap fills (each input moving `last_seq` on, with more still waiting behind it)
    /// another request would only make it send them all again.
    fn nudge(&mut self, service: ServiceId, ue: UeId, via: CellId) {
        let now = self.now;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let after = live.inst.last_seq;
        if !live.inst.waits_behind_gap() {
            live.gap_since = None;
            return;
        }
        let since = *live.gap_since.get_or_insert(now);
        if !live.promoted && now < since + NUDGE_EVERY {
            return;
        }
        if live.nudged.is_some_and(|at| now < at + NUDGE_EVERY) {
            return;
        }
        live.nudged = Some(now);
        self.send(
            via,
            ResendFrom {
                ue,
                service,
                via,
                after,
            },
        );
    }

    /// Answers the inputs a job applied and passes them to replay shadows; re-answers
    /// retransmissions (`rerun`) that came while the job ran.
    pub(super) fn applied_live(
        &mut self,
        service: ServiceId,
        applied: Vec<crate::instance::Applied>,
        rerun: Vec<(u64, CellId)>,
    ) {
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let ue = live.inst.meta.ue;
        let here = live.last_via;
        let mut answers = Vec::with_capacity(applied.len());
        let mut forward = Vec::with_capacity(applied.len());
        for a in applied {
            if let Some(t) = live.tentative.as_mut() {
                t.applied(ue, service, a.seq, &a.payload, a.via);
            }
            if self.cfg.input_log > 0 {
                if live.log.len() == self.cfg.input_log {
                    live.log.pop_front();
                }
                live.log.push_back(a.seq, &a.payload);
            }
            forward.push(edgeshift_proto::InputRecord {
                seq: a.seq,
                payload: a.payload,
            });
            self.events.push_back(EdgeEvent::Applied {
                service,
                seq: a.seq,
                live: true,
            });
            if let Some(e) = a.error {
                self.events.push_back(EdgeEvent::ServiceError {
                    service,
                    error: e.to_string(),
                });
            }
            if let Some(via) = a.via {
                answers.push((a.seq, here.unwrap_or(via), a.answer));
            }
        }
        for (seq, via) in rerun {
            if let Some(a) = live.inst.answer(seq) {
                answers.push((seq, here.unwrap_or(via), a.to_vec()));
            }
        }
        let replay = live.links_in(SyncMode::Replay);
        let forward = if replay.is_empty() {
            None
        } else if self.cfg.replay_batch.is_zero() {
            Some(forward)
        } else {
            live.batch.extend(forward);
            None
        };
        for &(seq, ..) in &answers {
            self.events.push_back(EdgeEvent::Answered {
                service,
                seq,
                live: true,
            });
        }
        if self.cfg.output_runs && answers.len() > 1 {
            self.answer_in_runs(ue, service, answers);
        } else {
            for (seq, via, payload) in answers {
                let msg = ServiceOutput {
                    ue,
                    service,
                    via,
                    seq,
                    payload,
                };
                self.send(via, msg);
            }
        }
        if let Some(forward) = forward {
            sync_to(
                &mut self.out,
                self.cfg.id,
                service,
                &replay,
                &SyncBody::Inputs(forward),
            );
        }
        // A tentative instance that waited for these to judge its 2004.
        self.check_tentative(service);
    }

    /// Answers as one 3017 per run of answers through the same cell, in order (split at
    /// [`InputRun::MAX_PAYLOAD`] bytes).
    fn answer_in_runs(
        &mut self,
        ue: UeId,
        service: ServiceId,
        answers: Vec<(u64, CellId, Vec<u8>)>,
    ) {
        let mut run: Option<OutputRun> = None;
        let mut bytes = 0;
        for (seq, via, payload) in answers {
            let full = bytes + payload.len() > InputRun::MAX_PAYLOAD;
            if let Some(r) = run.take_if(|r| r.via != via || full) {
                self.send(r.via, r);
                bytes = 0;
            }
            bytes += payload.len();
            run.get_or_insert_with(|| OutputRun {
                ue,
                service,
                via,
                answers: Vec::new(),
            })
            .answers
            .push(Answer { seq, payload });
        }
        if let Some(r) = run {
            self.send(r.via, r);
        }
    }

    /// 3012 from `from`: only a serving live instance answers.
    pub(super) fn on_probe(&mut self, from: NodeId, m: Probe) {
        let service = m.service;
        let fenced = self.fenced_for(service);
        if let Some(live) = self.live.get_mut(&service) {
            if let Source::Frozen(f) = &mut live.state {
                f.hold(Held::Probe(m));
                return;
            }
            if fenced {
                self.hold_fenced(service, Held::Probe(m));
                return;
            }
            let last_seq = live.inst.last_seq;
            let checksum = if m.checksum {
                live.inst.checksum()
            } else {
                None
            };
            self.events.push_back(EdgeEvent::Answered {
                service,
                seq: 0,
                live: true,
            });
            self.send(
                m.via,
                ProbeReply {
                    ue: m.ue,
                    service,
                    via: m.via,
                    nonce: m.nonce,
                    last_seq,
                    checksum,
                },
            );
        } else if self.holds_for_shadow(service, from)
            && let Some(sh) = self.shadows.get_mut(&service)
        {
            sh.held.push(Held::Probe(m));
        } else if let Some(to) = self.forward(service, Sent::Probe(m.nonce)) {
            self.send(to, m);
        } else {
            self.violation(NodeId::Cell(m.via), format!("probe for unknown {service}"));
        }
    }

    /// Whether a shadow here holds the service's traffic from `from` until it is clear who
    /// serves it. A shadow of the host this server forwards to does not: it is the
    /// instance that moved out (or one adopted by its new host), and traffic on the old
    /// route is late, not early. Except what that host sends once its 2004 came: it
    /// froze for a relocation back here (a UE that turned back) and passes its traffic
    /// on, early.
    fn holds_for_shadow(&self, service: ServiceId, from: NodeId) -> bool {
        self.shadows.get(&service).is_some_and(|sh| {
            (from == NodeId::Server(sh.source) && sh.check.is_some())
                || self.moved.get(&service).is_none_or(|mv| mv.to != sh.source)
        })
    }

    /// Where to forward `sent` of a service that moved out, remembering it; `None` if the
    /// service never was here.
    fn forward(&mut self, service: ServiceId, sent: Sent) -> Option<ServerId> {
        let m = self.moved.get_mut(&service)?;
        if m.forwarded.len() >= FORWARDED_MEMORY {
            m.forwarded.pop_first();
        }
        m.forwarded.insert(sent);
        Some(m.to)
    }

    /// Handles held traffic as if it arrived now, in its order; the answers go to the
    /// cell the latest of it came through.
    pub(super) fn release_held(&mut self, held: Vec<Held>) {
        let latest = held.iter().rev().find_map(|h| match h {
            Held::Input(m) => Some((m.service, m.via)),
            Held::Probe(_) => None,
        });
        if let Some((service, via)) = latest
            && let Some(live) = self.live.get_mut(&service)
        {
            live.last_via = Some(via);
        }
        for h in held {
            let from = NodeId::Cell(h.via());
            match h {
                Held::Input(m) => self.input(from, m, false),
                Held::Probe(m) => self.on_probe(from, m),
            }
        }
    }

    /// Sends held traffic on to the instance's new host (or back to the live one).
    pub(super) fn forward_held(&mut self, to: ServerId, held: Vec<Held>) {
        for h in held {
            match h {
                Held::Input(m) => self.send(to, m),
                Held::Probe(m) => self.send(to, m),
            }
        }
    }
}

#[cfg(test)]
mod tests;
