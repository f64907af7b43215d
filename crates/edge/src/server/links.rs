//! The source keeping its instances' shadows current.
//!
//! A 1003 (or a relocation) starts a shadow at a server: [`EdgeServer::start_shadow`] sends
//! the state in 1004 chunks (read at once, or streamed out of a frozen instance:
//! `stream.rs`) and records a [`Link`]. Replay links then get every applied
//! input (`traffic.rs`, batched by the replay flush timer), delta links the changed chunks
//! at every delta tick. The shadow's 3032 and 3036 come back here: they drive a precopy
//! (`source.rs`), and a 3036 reporting a corrupt delta starts the shadow over.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use edgeshift_proto::{
    CodeRef, Instant, NodeId, ServerId, ServiceId, ServiceSpec, ShadowReady, ShadowRefused,
    ShadowSync, SyncAck, SyncBody, SyncMode, Transmit,
};

use super::EdgeServer;
use super::shadow::ShadowState;
use super::source::Source;
use super::stream::Stream;
use super::timers::Timer;

/// An adopted shadow this many inputs behind, or more, gets the whole state instead; so
/// does one behind what the input log still holds (`EdgeConfig::input_log`, 1,024 inputs
/// by default, is the tighter bound unless raised).
const ADOPT_LOG: usize = 4096;

/// How long an adoption offer (3032) waits for the host's 1003 `adopt`, or the 1003 for
/// the offer: both are sent at once, a link delay apart.
const ADOPT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A shadow this (source) server keeps in sync.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) mode: SyncMode,
    /// The shadow reported complete (3032); until then a 2004 tells the target to wait
    /// for the transfer.
    pub(super) ready: bool,
}

impl EdgeServer {
    /// 1003: shadows of `service` at the candidates, now or at the planned start.
    pub(super) fn on_prepare(&mut self, now: Instant, m: edgeshift_proto::PrepareShadow) {
        if m.source != self.cfg.id {
            // A candidate learns everything else from the 1004 itself. But the inputs
            // the source syncs travel on the control lane and overtake the copy: a
            // shadow of the service discarded here a moment ago must not drop them as
            // late sync of the old one, or the new copy waits for them for ever.
            if m.candidates.contains(&self.cfg.id) {
                self.discarded.cancel(m.service);
                if m.adopt {
                    self.offer_for_adoption(m.service, m.source);
                }
            }
            return;
        }
        let Some(live) = self.live.get(&m.service) else {
            return;
        };
        if !matches!(live.state, Source::Serving) || self.fenced_for(m.service) {
            // Without the lease, no state leaves: it may hold inputs whose answers wait
            // for the lease, or belong to an instance replaced meanwhile.
            return;
        }
        let linked: BTreeSet<ServerId> = live.links.keys().copied().collect();
        if m.adopt {
            self.forget_old_adoptions(now);
            for c in m.candidates {
                if c == self.cfg.id || linked.contains(&c) {
                    continue;
                }
                match self.adopt_offers.remove(&(m.service, c)) {
                    Some((seq, _)) => self.adopt(now, m.service, c, seq),
                    None => {
                        self.adopting.insert((m.service, c), now);
                    }
                }
            }
            return;
        }
        // NOTE: links made in this loop do not count, so a candidate listed twice gets two
        // transfers.
        let start = m.start.resolve(now);
        for c in m.candidates {
            if c == self.cfg.id || linked.contains(&c) {
                continue;
            }
            if start <= now {
                self.start_shadow(now, m.service, c, m.sync);
            } else {
                self.planned.insert((m.service, c), m.sync);
                self.timers
                    .set(Timer::StartShadow(m.service, c, start), start);
            }
        }
    }

    /// A 1003 `adopt` naming this server as a candidate: the instance moved and kept its
    /// shadow here. If it is ready, it takes the new host as its source and tells the host
    /// where it stands (3032), and the host takes over its sync from there. If not, the
    /// control node is told (3037) and forgets it: nothing may count it ready.
    fn offer_for_adoption(&mut self, service: ServiceId, host: ServerId) {
        let me = self.cfg.id;
        let seq = match self.shadows.get_mut(&service) {
            Some(sh) => match &sh.state {
                ShadowState::Ready(inst) => {
                    sh.source = host;
                    Some(inst.last_seq)
                }
                _ => None,
            },
            None => None,
        };
        let Some(seq) = seq else {
            let refused = ShadowRefused {
                service,
                server: me,
                reason: "no ready shadow to adopt".into(),
            };
            self.send(self.commander(service), refused);
            return;
        };
        if let Some(mv) = self.moved.get_mut(&service) {
            // Late traffic on an old route goes to the host, not to a hold.
            mv.to = host;
        }
        let ready = ShadowReady {
            service,
            server: me,
            seq,
            adoption: true,
        };
        self.send(host, ready);
    }

    /// Takes over the sync of a shadow that stands at input `seq` (its 3032 and the 1003
    /// `adopt` both came): the inputs it lacks from the log, or the whole state if the log
    /// does not reach back or the shadow is ahead; then every applied input, as for any
    /// replay shadow. The control node counts it ready only once this is done. A host that
    /// is not serving leaves it unconfirmed (not ready, so never promoted; it goes stale).
    fn adopt(&mut self, now: Instant, service: ServiceId, shadow: ServerId, seq: u64) {
        if self.fenced_for(service) {
            return;
        }
        let me = self.cfg.id;
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        if !matches!(live.state, Source::Serving) || live.links.contains_key(&shadow) {
            return;
        }
        let last = live.inst.last_seq;
        let covered = seq == last
            || (seq < last
                && last - seq <= ADOPT_LOG as u64
                && live.log.front_seq().is_some_and(|s| s <= seq + 1));
        if !covered {
            self.start_shadow(now, service, shadow, SyncMode::Replay);
            return;
        }
        let missing = live.log.records_after(seq);
        live.links.insert(
            shadow,
            Link {
                mode: SyncMode::Replay,
                ready: true,
            },
        );
        self.unflushed.insert(service);
        if !missing.is_empty() {
            sync_to(
                &mut self.out,
                me,
                service,
                &[shadow],
                &SyncBody::Inputs(missing),
            );
        }
        let ready = ShadowReady {
            service,
            server: shadow,
            seq: last,
            adoption: false,
        };
        self.send(self.commander(service), ready);
    }

    /// Sends the whole state to `target` (a new shadow, or one that starts over).
    pub(super) fn start_shadow(
        &mut self,
        now: Instant,
        service: ServiceId,
        target: ServerId,
        mode: SyncMode,
    ) {
        let transfer = self.next_transfer;
        self.next_transfer = self.next_transfer.wrapping_add(1);
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        if live.inst.svc().is_none() {
            return; // Lent to a job: callers wait for it (`jobs.rs`), so never here.
        }
        if mode == SyncMode::Delta && !live.links.values().any(|l| l.mode == SyncMode::Delta) {
            // The first delta shadow: changes before its snapshot are nobody's business.
            if let Some(svc) = live.inst.svc_mut() {
                svc.reset_delta();
            }
        }
        live.links.insert(target, Link { mode, ready: false });
        if mode == SyncMode::Replay {
            self.unflushed.insert(service);
        }
        let inst = &live.inst;
        let code = if self.code_sent.insert((target, inst.meta.code_hash)) {
            match self.code.get(&inst.meta.code_hash) {
                Some((kind, bytes)) => CodeRef::Inline {
                    kind: kind.clone(),
                    bytes: bytes.clone(),
                },
                None => CodeRef::Hash(inst.meta.code_hash),
            }
        } else {
            CodeRef::Hash(inst.meta.code_hash)
        };
        let spec = ServiceSpec {
            code,
            config: inst.meta.config.clone(),
            latency_budget_ms: inst.meta.latency_budget_ms,
        };
        if self.can_stream(service) {
            self.stream_out(service, target, transfer, spec);
        } else {
            self.read_out(service, target, transfer, spec);
        }
        if mode == SyncMode::Delta {
            self.timers
                .set_if_unset(Timer::DeltaTick(service), now + self.cfg.delta_interval);
        }
    }

    /// Queues the whole state of `service` to `target` as 1004 chunks, read at once.
    fn read_out(&mut self, service: ServiceId, target: ServerId, transfer: u32, spec: ServiceSpec) {
        let Some(live) = self.live.get(&service) else {
            return;
        };
        let Some(svc) = live.inst.svc() else {
            return;
        };
        let chunk = self.cfg.transfer_chunk as u64;
        let mut stream = Stream::new(service, &live.inst, svc, target, transfer, spec, chunk);
        // Each chunk is read straight from the instance: all within this call, so the
        // pieces form one consistent snapshot at `seq`. The checksum is hashed on the way
        // (xxh3 streams: the same value as `Service::checksum`, one pass fewer).
        loop {
            let (t, last) = stream.next_chunk(svc, self.cfg.id);
            self.out.push_back(t);
            if last {
                break;
            }
        }
    }

    /// Sends the changed chunks to every delta shadow, if anything changed.
    pub(super) fn send_delta_round(&mut self, service: ServiceId) {
        let fenced = self.fenced_for(service);
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let targets = live.links_in(SyncMode::Delta);
        // Fenced, the instance may hold results nobody has seen (`jobs.rs`): no delta of
        // them may reach a shadow that could be promoted meanwhile.
        if targets.is_empty() || !live.inst.delta_pending() || fenced {
            return;
        }
        let Some(delta) = live.inst.take_delta() else {
            return;
        };
        let delta = SyncBody::Delta(delta);
        sync_to(&mut self.out, self.cfg.id, service, &targets, &delta);
    }

    /// 3032: a shadow is complete.
    pub(super) fn on_shadow_ready(&mut self, now: Instant, from: NodeId, m: ShadowReady) {
        if m.adoption {
            self.on_adoption_offer(now, from, m);
            return;
        }
        let Some(live) = self.live.get_mut(&m.service) else {
            return;
        };
        if let Some(l) = live.links.get_mut(&m.server) {
            l.ready = true;
        }
        if live.state.target() == Some(m.server) {
            self.precopy_step(m.service);
        }
    }

    /// 3032 `adoption`: a kept shadow says where it stands, before or after this host's
    /// own 1003 `adopt`. Only a serving instance without a link to it takes it; offers and
    /// expected adoptions are forgotten after [`ADOPT_WAIT`] (the shadow then stays
    /// unconfirmed: never promoted, and it goes stale).
    fn on_adoption_offer(&mut self, now: Instant, from: NodeId, m: ShadowReady) {
        let key = (m.service, m.server);
        let takes = from == NodeId::Server(m.server)
            && self.live.get(&m.service).is_some_and(|l| {
                matches!(l.state, Source::Serving) && !l.links.contains_key(&m.server)
            });
        if !takes {
            return;
        }
        self.forget_old_adoptions(now);
        if self.adopting.remove(&key).is_some() {
            self.adopt(now, m.service, m.server, m.seq);
        } else {
            self.adopt_offers.insert(key, (m.seq, now));
        }
    }

    /// Drops offers and expected adoptions older than [`ADOPT_WAIT`].
    pub(super) fn forget_old_adoptions(&mut self, now: Instant) {
        let fresh = |at: &Instant| *at + ADOPT_WAIT > now;
        self.adopting.retain(|_, at| fresh(at));
        self.adopt_offers.retain(|_, (_, at)| fresh(at));
    }

    /// Drops the offers and expected adoptions of `service` (of `server` only, if given):
    /// the instance stopped serving, or the shadow was discarded.
    pub(super) fn forget_adoptions(&mut self, service: ServiceId, server: Option<ServerId>) {
        let hit = |k: &(ServiceId, ServerId)| k.0 == service && server.is_none_or(|s| k.1 == s);
        self.adopting.retain(|k, _| !hit(k));
        self.adopt_offers.retain(|k, _| !hit(k));
    }

    /// 3036: a shadow applied a delta, or could not.
    pub(super) fn on_sync_ack(&mut self, now: Instant, m: SyncAck) {
        let Some(live) = self.live.get(&m.service) else {
            return;
        };
        let Some(link) = live.links.get(&m.server).copied() else {
            return;
        };
        let (frozen, target) = (live.state.is_frozen(), live.state.target());
        if !m.ok {
            // Corrupt delta or unknown code: start that shadow over, code inline.
            let sent: Vec<_> = self
                .code_sent
                .range((m.server, 0)..=(m.server, u128::MAX))
                .copied()
                .collect();
            for k in sent {
                self.code_sent.remove(&k);
            }
            self.start_shadow(now, m.service, m.server, link.mode);
            if frozen {
                self.request(m.service);
            }
            return;
        }
        if target == Some(m.server) {
            self.precopy_step(m.service);
        }
    }
}

/// Queues one [`ShadowSync`] with `body` for each of `targets`.
pub(super) fn sync_to(
    out: &mut VecDeque<Transmit>,
    source: ServerId,
    service: ServiceId,
    targets: &[ServerId],
    body: &SyncBody,
) {
    for to in targets {
        let msg = ShadowSync {
            service,
            source,
            body: body.clone(),
        };
        out.push_back(Transmit {
            to: (*to).into(),
            msg: msg.into(),
        });
    }
}

/// Drops the planned shadow starts of `service` (their timers stay armed and find nothing
/// to start).
pub(super) fn forget_plans(
    planned: &mut BTreeMap<(ServiceId, ServerId), SyncMode>,
    service: ServiceId,
) {
    let plans: Vec<_> = planned
        .range((service, ServerId(0))..=(service, ServerId(u32::MAX)))
        .map(|(k, _)| *k)
        .collect();
    for k in plans {
        planned.remove(&k);
    }
}
