//! The [`EdgeServer`] role.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use edgeshift_proto::{
    CatchUp, CodeRef, Instant, Instantiate, LoadReport, Message, NodeId, Probe, ProbeReply,
    Relocate, RelocateAction, RelocateConfirm, RelocateRequest, RelocationDone, RelocationMode,
    Role, ServerId, ServiceId, ServiceInput, ServiceOutput, ServiceSpec, ShadowReady, ShadowSync,
    ShadowTransfer, StateDelta, SyncAck, SyncBody, SyncMode, Transmit, Verdict,
};

use crate::config::EdgeConfig;
use crate::digest;
use crate::event::EdgeEvent;
use crate::instance::{Instance, Meta};
use crate::service::{ServiceError, ServiceFactory};
use xxhash_rust::xxh3::Xxh3;

/// How long a discarded shadow's id is remembered, to ignore its late sync.
const DISCARD_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    LoadReport,
    DeltaTick(ServiceId),
    ReplayFlush(ServiceId),
    StartShadow(ServiceId, ServerId),
    Confirm(ServiceId),
}

/// UE traffic held while an instance cannot serve (frozen source, shadow not yet live).
#[derive(Clone, Debug)]
enum Held {
    Input(ServiceInput),
    Probe(Probe),
}

/// A shadow this (source) server keeps in sync.
#[derive(Clone, Copy, Debug)]
struct Link {
    mode: SyncMode,
    ready: bool,
}

#[derive(Clone, Copy, Debug)]
struct Outgoing {
    target: ServerId,
    epoch: u64,
    mode: RelocationMode,
    rounds: u32,
    /// When the source last heard from the target (or froze), for the confirm watchdog.
    heard_at: Option<Instant>,
    /// 2004s sent without an answer.
    unanswered: u32,
}

struct Live {
    inst: Instance,
    frozen: bool,
    held: Vec<Held>,
    links: BTreeMap<ServerId, Link>,
    log: VecDeque<edgeshift_proto::InputRecord>,
    batch: Vec<edgeshift_proto::InputRecord>,
    out: Option<Outgoing>,
}

struct Receiving {
    transfer: u32,
    meta: Meta,
    /// The shadow instance, created at the first chunk; chunks are written straight in.
    svc: Box<dyn crate::Service>,
    seq: u64,
    digest: u128,
    total_len: u64,
    received: u64,
    /// xxh3-128 of the bytes received so far, in order.
    hasher: Box<Xxh3>,
}

enum Body {
    /// Nothing received yet (or a full resync was asked for).
    Awaiting,
    Receiving(Receiving),
    Ready(Instance),
    /// The shadow cannot be hosted here.
    Failed(String),
}

struct Shadow {
    source: ServerId,
    created_at: Instant,
    body: Body,
    /// Inputs that arrived before the state did.
    early: BTreeMap<u64, Vec<u8>>,
    deltas: Vec<StateDelta>,
    request: Option<RelocateRequest>,
    first_try: Option<bool>,
    asked: Option<Verdict>,
    held: Vec<Held>,
}

impl Shadow {
    fn new(source: ServerId, now: Instant) -> Self {
        Self {
            source,
            created_at: now,
            body: Body::Awaiting,
            early: BTreeMap::new(),
            deltas: Vec::new(),
            request: None,
            first_try: None,
            asked: None,
            held: Vec::new(),
        }
    }
}

/// A read-only view of a live instance, for drivers and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveView {
    /// Last input applied.
    pub last_seq: u64,
    /// Input-log digest.
    pub digest: u128,
    /// xxh3-128 of the whole state.
    pub checksum: u128,
    /// State size.
    pub state_bytes: u64,
    /// Whether the instance is frozen for a relocation.
    pub frozen: bool,
}

/// An ME server: hosts live instances and shadows and runs the relocation protocol.
pub struct EdgeServer {
    cfg: EdgeConfig,
    factory: Box<dyn ServiceFactory>,
    code: BTreeMap<u128, (String, Vec<u8>)>,
    code_sent: BTreeSet<(ServerId, u128)>,
    live: BTreeMap<ServiceId, Live>,
    shadows: BTreeMap<ServiceId, Shadow>,
    moved: BTreeMap<ServiceId, ServerId>,
    /// Shadows dropped here; sync still in flight for them is ignored.
    discarded: BTreeMap<ServiceId, Instant>,
    planned: BTreeMap<(ServiceId, ServerId), SyncMode>,
    timers: BTreeSet<(Instant, Timer)>,
    out: VecDeque<Transmit>,
    events: VecDeque<EdgeEvent>,
    next_transfer: u32,
}

impl EdgeServer {
    /// A server with no services; `factory` turns program code into instances.
    #[must_use]
    pub fn new(cfg: EdgeConfig, factory: Box<dyn ServiceFactory>, now: Instant) -> Self {
        let mut timers = BTreeSet::new();
        timers.insert((now + cfg.load_report_interval, Timer::LoadReport));
        Self {
            cfg,
            factory,
            code: BTreeMap::new(),
            code_sent: BTreeSet::new(),
            live: BTreeMap::new(),
            shadows: BTreeMap::new(),
            moved: BTreeMap::new(),
            discarded: BTreeMap::new(),
            planned: BTreeMap::new(),
            timers,
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_transfer: 1,
        }
    }

    /// This server's id.
    #[must_use]
    pub fn server_id(&self) -> ServerId {
        self.cfg.id
    }

    /// The live (or frozen) instance of `service`, if this server hosts it.
    #[must_use]
    pub fn live_view(&self, service: ServiceId) -> Option<LiveView> {
        self.live.get(&service).map(|l| LiveView {
            last_seq: l.inst.last_seq,
            digest: l.inst.digest,
            checksum: l.inst.svc.checksum(),
            state_bytes: l.inst.svc.state_len(),
            frozen: l.frozen,
        })
    }

    /// Services with a live (or frozen) instance here.
    pub fn live_services(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.live.keys().copied()
    }

    /// Services with a shadow here.
    pub fn shadow_services(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.shadows.keys().copied()
    }

    fn send(&mut self, to: impl Into<NodeId>, msg: impl Into<Message>) {
        self.out.push_back(Transmit {
            to: to.into(),
            msg: msg.into(),
        });
    }

    fn violation(&mut self, from: NodeId, what: String) {
        self.events
            .push_back(EdgeEvent::ProtocolViolation { from, what });
    }

    fn load_report(&mut self) {
        let services = self
            .live
            .iter()
            .map(|(s, l)| (*s, l.inst.svc.state_len()))
            .collect();
        let load = self.live.len() as f32 / self.cfg.capacity.max(1) as f32;
        self.send(
            NodeId::Control,
            LoadReport {
                server: self.cfg.id,
                load,
                services,
            },
        );
    }

    // ---- live service traffic -------------------------------------------------------

    fn on_input(&mut self, m: ServiceInput) {
        let service = m.service;
        if let Some(live) = self.live.get_mut(&service) {
            if live.frozen {
                live.held.push(Held::Input(m));
                return;
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
                return;
            }
            self.drain_live(service);
        } else if let Some(sh) = self.shadows.get_mut(&service) {
            sh.held.push(Held::Input(m));
        } else if let Some(&to) = self.moved.get(&service) {
            self.send(to, m);
        } else {
            self.violation(
                NodeId::Cell(m.via),
                format!("input {} for unknown {service}", m.input.seq),
            );
        }
    }

    fn drain_live(&mut self, service: ServiceId) {
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let applied = live.inst.drain();
        if applied.is_empty() {
            return;
        }
        let ue = live.inst.meta.ue;
        let mut forward = Vec::new();
        for a in applied {
            let rec = edgeshift_proto::InputRecord {
                seq: a.seq,
                payload: a.payload,
            };
            if self.cfg.input_log > 0 {
                if live.log.len() == self.cfg.input_log {
                    live.log.pop_front();
                }
                live.log.push_back(rec.clone());
            }
            forward.push(rec);
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
                self.events.push_back(EdgeEvent::Answered {
                    service,
                    seq: a.seq,
                    live: true,
                });
                self.out.push_back(Transmit {
                    to: via.into(),
                    msg: ServiceOutput {
                        ue,
                        service,
                        via,
                        seq: a.seq,
                        payload: a.answer,
                    }
                    .into(),
                });
            }
        }
        let replay = live.links_in(SyncMode::Replay);
        if replay.is_empty() {
            return;
        }
        if self.cfg.replay_batch.is_zero() {
            sync_to(
                &mut self.out,
                self.cfg.id,
                service,
                &replay,
                &SyncBody::Inputs(forward),
            );
        } else {
            live.batch.extend(forward);
        }
    }

    fn on_probe(&mut self, m: Probe) {
        let service = m.service;
        if let Some(live) = self.live.get_mut(&service) {
            if live.frozen {
                live.held.push(Held::Probe(m));
                return;
            }
            let last_seq = live.inst.last_seq;
            let checksum = m.checksum.then(|| live.inst.svc.checksum());
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
        } else if let Some(sh) = self.shadows.get_mut(&service) {
            sh.held.push(Held::Probe(m));
        } else if let Some(&to) = self.moved.get(&service) {
            self.send(to, m);
        } else {
            self.violation(NodeId::Cell(m.via), format!("probe for unknown {service}"));
        }
    }

    fn release_held(&mut self, held: Vec<Held>) {
        for h in held {
            match h {
                Held::Input(m) => self.on_input(m),
                Held::Probe(m) => self.on_probe(m),
            }
        }
    }

    // ---- deployment -------------------------------------------------------------------

    fn resolve_code(&mut self, code: &CodeRef) -> Result<(String, Vec<u8>, u128), ServiceError> {
        match code {
            CodeRef::Inline { kind, bytes } => {
                let h = code.hash();
                self.code
                    .entry(h)
                    .or_insert_with(|| (kind.clone(), bytes.clone()));
                Ok((kind.clone(), bytes.clone(), h))
            }
            CodeRef::Hash(h) => self
                .code
                .get(h)
                .map(|(k, b)| (k.clone(), b.clone(), *h))
                .ok_or_else(|| {
                    ServiceError::InvalidCode(format!("code {h:032x} is not cached here"))
                }),
        }
    }

    fn create(
        &mut self,
        ue: edgeshift_proto::UeId,
        spec: &ServiceSpec,
    ) -> Result<(Meta, Box<dyn crate::Service>), ServiceError> {
        let (kind, bytes, code_hash) = self.resolve_code(&spec.code)?;
        let svc = self.factory.instantiate(&kind, &bytes, &spec.config)?;
        let meta = Meta {
            ue,
            code_hash,
            config: spec.config.clone(),
            latency_budget_ms: spec.latency_budget_ms,
        };
        Ok((meta, svc))
    }

    fn on_instantiate(&mut self, from: NodeId, m: Instantiate) {
        if self.live.contains_key(&m.service) {
            return;
        }
        match self.create(m.ue, &m.spec) {
            Ok((meta, svc)) => {
                let inst = Instance::new(meta, svc, 0, digest::GENESIS, self.cfg.answer_cache);
                self.live.insert(m.service, Live::new(inst));
                self.moved.remove(&m.service);
                self.events
                    .push_back(EdgeEvent::Instantiated { service: m.service });
                self.load_report();
            }
            Err(e) => {
                self.events.push_back(EdgeEvent::ServiceError {
                    service: m.service,
                    error: e.to_string(),
                });
                self.violation(from, format!("cannot instantiate {}: {e}", m.service));
            }
        }
    }

    // ---- source side: shadows and relocation -------------------------------------------

    fn on_prepare(&mut self, now: Instant, m: edgeshift_proto::PrepareShadow) {
        if m.source != self.cfg.id {
            return; // A candidate learns everything it needs from the 1004 itself.
        }
        let Some(live) = self.live.get(&m.service) else {
            return;
        };
        if live.frozen || live.out.is_some() {
            return;
        }
        let linked: BTreeSet<ServerId> = live.links.keys().copied().collect();
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
                    .insert((start, Timer::StartShadow(m.service, c)));
            }
        }
    }

    fn start_shadow(&mut self, now: Instant, service: ServiceId, target: ServerId, mode: SyncMode) {
        let transfer = self.next_transfer;
        self.next_transfer = self.next_transfer.wrapping_add(1);
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        if mode == SyncMode::Delta && !live.links.values().any(|l| l.mode == SyncMode::Delta) {
            // The first delta shadow: changes before its snapshot are nobody's business.
            let _ = live.inst.svc.take_delta();
        }
        live.links.insert(target, Link { mode, ready: false });
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
        let (ue, seq, digest) = (inst.meta.ue, inst.last_seq, inst.digest);
        let total_len = inst.svc.state_len();
        let chunk = self.cfg.transfer_chunk.max(1) as u64;
        let n = total_len.div_ceil(chunk).max(1);
        let source = self.cfg.id;
        let mut spec = Some(spec);
        // Each chunk is read straight from the instance: all within this call, so the
        // pieces form one consistent snapshot at `seq`. The checksum is hashed on the way
        // (xxh3 streams: the same value as `Service::checksum`, one pass fewer).
        let mut hasher = Xxh3::new();
        for i in 0..n {
            let offset = i * chunk;
            let mut data = vec![0; usize::try_from(chunk.min(total_len - offset)).unwrap_or(0)];
            inst.svc.read_state(offset, &mut data);
            hasher.update(&data);
            let msg = ShadowTransfer {
                service,
                ue,
                source,
                transfer,
                seq,
                digest,
                spec: spec.take(),
                total_len,
                offset,
                data,
                state_checksum: (i + 1 == n).then(|| hasher.digest128()),
            };
            self.out.push_back(Transmit {
                to: target.into(),
                msg: msg.into(),
            });
        }
        if mode == SyncMode::Delta {
            self.arm(now + self.cfg.delta_interval, Timer::DeltaTick(service));
        }
    }

    fn arm(&mut self, at: Instant, timer: Timer) {
        if !self.timers.iter().any(|(_, t)| *t == timer) {
            self.timers.insert((at, timer));
        }
    }

    fn send_delta_round(&mut self, service: ServiceId) {
        let Some(live) = self.live.get_mut(&service) else {
            return;
        };
        let targets = live.links_in(SyncMode::Delta);
        if targets.is_empty() || live.inst.svc.dirty_bytes() == 0 {
            return;
        }
        let delta = SyncBody::Delta(live.inst.take_delta());
        sync_to(&mut self.out, self.cfg.id, service, &targets, &delta);
    }

    fn on_relocate(&mut self, now: Instant, from: NodeId, m: Relocate) {
        match m.action {
            RelocateAction::Discard { servers } => {
                if let Some(live) = self.live.get_mut(&m.service) {
                    for s in &servers {
                        live.links.remove(s);
                        self.planned.remove(&(m.service, *s));
                    }
                }
                if servers.contains(&self.cfg.id) {
                    self.drop_shadow(now, m.service);
                }
            }
            RelocateAction::Relocate {
                source,
                target,
                mode,
                epoch,
            } => {
                if source == self.cfg.id {
                    self.relocate_out(now, from, m.service, target, mode, epoch);
                }
            }
        }
    }

    fn drop_shadow(&mut self, now: Instant, service: ServiceId) {
        // Sync in flight arrives within a few link delays; a minute of memory is plenty.
        self.discarded
            .retain(|_, at| now.saturating_duration_since(*at) < DISCARD_MEMORY);
        self.discarded.insert(service, now);
        if let Some(sh) = self.shadows.remove(&service) {
            self.events.push_back(EdgeEvent::ShadowDiscarded {
                service,
                created_at: sh.created_at,
            });
            // Traffic that reached the shadow early belongs to the live instance.
            for h in sh.held {
                match h {
                    Held::Input(m) => self.send(sh.source, m),
                    Held::Probe(m) => self.send(sh.source, m),
                }
            }
        }
    }

    fn relocate_out(
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

    fn freeze_quiet(&mut self, service: ServiceId) {
        if let Some(live) = self.live.get_mut(&service) {
            live.frozen = true;
            // Unsent replay batches are not flushed: the catch-up at 2005 covers them.
            live.batch.clear();
            let last_seq = live.inst.last_seq;
            self.events
                .push_back(EdgeEvent::Frozen { service, last_seq });
        }
    }

    fn request(&mut self, service: ServiceId) {
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

    fn freeze(&mut self, service: ServiceId) {
        self.freeze_quiet(service);
        self.request(service);
    }

    fn precopy_step(&mut self, service: ServiceId) {
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

    fn on_shadow_ready(&mut self, m: ShadowReady) {
        let Some(live) = self.live.get_mut(&m.service) else {
            return;
        };
        if let Some(l) = live.links.get_mut(&m.server) {
            l.ready = true;
        }
        if live.out.is_some_and(|o| o.target == m.server) {
            self.precopy_step(m.service);
        }
    }

    fn on_sync_ack(&mut self, now: Instant, m: SyncAck) {
        let Some(live) = self.live.get(&m.service) else {
            return;
        };
        let Some(link) = live.links.get(&m.server).copied() else {
            return;
        };
        let (frozen, out) = (live.frozen, live.out);
        if !m.ok {
            // Corrupt delta or unknown code: start that shadow over, code inline.
            self.code_sent.retain(|(s, _)| *s != m.server);
            self.start_shadow(now, m.service, m.server, link.mode);
            if frozen {
                self.request(m.service);
            }
            return;
        }
        if out.is_some_and(|o| o.target == m.server) {
            self.precopy_step(m.service);
        }
    }

    fn on_confirm(&mut self, now: Instant, from: NodeId, m: RelocateConfirm) {
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
    fn abandon(&mut self, service: ServiceId, reason: String) {
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
    fn watch_confirms(&mut self, now: Instant) {
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
            self.timers.retain(|(_, t)| *t != Timer::Confirm(service));
            self.timers.insert((at, Timer::Confirm(service)));
        }
    }

    fn on_confirm_timeout(&mut self, service: ServiceId) {
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

    // ---- target side: receiving, validating, activating ----------------------------------

    fn refuse_transfer(&mut self, service: ServiceId, source: ServerId, why: String) {
        self.violation(NodeId::Server(source), why);
        let server = self.cfg.id;
        self.send(
            source,
            SyncAck {
                service,
                server,
                seq: 0,
                ok: false,
            },
        );
    }

    fn on_transfer(&mut self, now: Instant, from: NodeId, m: ShadowTransfer) {
        let service = m.service;
        if self.live.contains_key(&service) {
            self.violation(from, format!("1004 for {service}, which is live here"));
            return;
        }
        let continues = self
            .shadows
            .get(&service)
            .is_some_and(|sh| matches!(&sh.body, Body::Receiving(r) if r.transfer == m.transfer));
        if !continues {
            if m.offset != 0 {
                return; // A chunk of a transfer that was superseded.
            }
            self.discarded.remove(&service);
            // Instantiate the shadow now, while its state is still on the way (warm restore).
            let fresh = match &m.spec {
                Some(spec) => self.create(m.ue, spec).and_then(|(meta, mut svc)| {
                    svc.begin_restore(m.total_len)?;
                    Ok((meta, svc))
                }),
                None => Err(ServiceError::BadState(
                    "first 1004 chunk carries no code".into(),
                )),
            };
            let created = !self.shadows.contains_key(&service);
            if created {
                self.events.push_back(EdgeEvent::ShadowCreated {
                    service,
                    source: m.source,
                });
            }
            let sh = self
                .shadows
                .entry(service)
                .or_insert_with(|| Shadow::new(m.source, now));
            sh.source = m.source;
            sh.deltas.clear();
            match fresh {
                Ok((meta, svc)) => {
                    sh.body = Body::Receiving(Receiving {
                        transfer: m.transfer,
                        meta,
                        svc,
                        seq: m.seq,
                        digest: m.digest,
                        total_len: m.total_len,
                        received: 0,
                        hasher: Box::new(Xxh3::new()),
                    });
                }
                Err(ServiceError::InvalidCode(why))
                    if matches!(m.spec.as_ref().map(|s| &s.code), Some(CodeRef::Hash(_))) =>
                {
                    // We lost the cached code (restart?): ask again, code inline.
                    sh.body = Body::Awaiting;
                    self.refuse_transfer(service, m.source, why);
                    return;
                }
                Err(e) => {
                    sh.body = Body::Failed(e.to_string());
                    self.validate(now, service);
                    return;
                }
            }
        }
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Body::Receiving(r) = &mut sh.body else {
            return;
        };
        let fits = m.offset == r.received && r.received + m.data.len() as u64 <= r.total_len;
        if let Err(why) = if fits {
            r.svc
                .restore_chunk(m.offset, &m.data)
                .map_err(|e| e.to_string())
        } else {
            Err("out of order".into())
        } {
            sh.body = Body::Awaiting;
            let why = format!(
                "1004 chunk at {} does not fit transfer {}: {why}",
                m.offset, m.transfer
            );
            self.refuse_transfer(service, m.source, why);
            return;
        }
        r.hasher.update(&m.data);
        r.received += m.data.len() as u64;
        if r.received == r.total_len
            && let Some(expected) = m.state_checksum
        {
            self.finish_shadow(now, service, expected);
        }
    }

    fn finish_shadow(&mut self, now: Instant, service: ServiceId, expected: u128) {
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Body::Receiving(mut r) = std::mem::replace(&mut sh.body, Body::Awaiting) else {
            return;
        };
        let source = sh.source;
        if let Err(e) = r.svc.finish_restore() {
            sh.body = Body::Failed(e.to_string());
            self.validate(now, service);
            return;
        }
        // The chunks were written in order and cover the state once: their streamed hash
        // is the state's checksum, without another pass over memory.
        if r.hasher.digest128() != expected {
            self.refuse_transfer(
                service,
                source,
                format!("1004 for {service} failed its checksum"),
            );
            return;
        }
        let mut inst = Instance::new(r.meta, r.svc, r.seq, r.digest, self.cfg.answer_cache);
        for (seq, payload) in std::mem::take(&mut sh.early) {
            inst.offer(seq, payload, None);
        }
        for d in std::mem::take(&mut sh.deltas) {
            if let Err(e) = inst.apply_delta(&d) {
                sh.body = Body::Awaiting;
                self.refuse_transfer(service, source, e);
                return;
            }
        }
        let seq = inst.last_seq;
        sh.body = Body::Ready(inst);
        self.drain_shadow(service);
        let server = self.cfg.id;
        self.send(
            source,
            ShadowReady {
                service,
                server,
                seq,
            },
        );
        self.send(
            NodeId::Control,
            ShadowReady {
                service,
                server,
                seq,
            },
        );
        self.events
            .push_back(EdgeEvent::ShadowReady { service, seq });
        self.validate(now, service);
    }

    fn drain_shadow(&mut self, service: ServiceId) {
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Body::Ready(inst) = &mut sh.body else {
            return;
        };
        for a in inst.drain() {
            self.events.push_back(EdgeEvent::Applied {
                service,
                seq: a.seq,
                live: false,
            });
        }
    }

    fn on_sync(
        &mut self,
        now: Instant,
        from: NodeId,
        service: ServiceId,
        body: SyncBody,
        catch_up: bool,
    ) {
        if self.live.contains_key(&service) {
            self.violation(from, format!("sync for {service}, which is live here"));
            return;
        }
        if self.discarded.contains_key(&service) {
            return; // Sync for a shadow already discarded is normal: it was in flight.
        }
        // Inputs may overtake the 1004 (they travel on the control lane): keep them.
        let sh = self
            .shadows
            .entry(service)
            .or_insert_with(|| Shadow::new(source_of(from), now));
        let source = sh.source;
        match body {
            SyncBody::Inputs(inputs) => match &mut sh.body {
                Body::Ready(inst) => {
                    for i in inputs {
                        inst.offer(i.seq, i.payload, None);
                    }
                    self.drain_shadow(service);
                }
                _ => {
                    for i in inputs {
                        sh.early.insert(i.seq, i.payload);
                    }
                }
            },
            SyncBody::Delta(d) => match &mut sh.body {
                Body::Ready(inst) => {
                    let ok = match inst.apply_delta(&d) {
                        Ok(()) => true,
                        Err(e) => {
                            sh.body = Body::Awaiting;
                            self.violation(from, e);
                            false
                        }
                    };
                    let seq = d.seq;
                    if !catch_up || !ok {
                        self.send(
                            source,
                            SyncAck {
                                service,
                                server: self.cfg.id,
                                seq,
                                ok,
                            },
                        );
                    }
                }
                _ => sh.deltas.push(d),
            },
        }
        self.validate(now, service);
    }

    fn on_request(&mut self, now: Instant, m: RelocateRequest) {
        let service = m.service;
        if self.live.contains_key(&service) {
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
        self.discarded.remove(&service);
        let sh = self
            .shadows
            .entry(service)
            .or_insert_with(|| Shadow::new(m.source, now));
        sh.source = m.source;
        sh.request = Some(m);
        self.validate(now, service);
    }

    fn validate(&mut self, now: Instant, service: ServiceId) {
        let target = self.cfg.id;
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Some(req) = sh.request.clone() else {
            return;
        };
        let verdict = match &sh.body {
            Body::Receiving(_) => return,
            Body::Awaiting if req.transfer_pending => return,
            Body::Awaiting => Verdict::NeedFull,
            Body::Failed(why) => Verdict::Reject(why.clone()),
            Body::Ready(inst) if inst.last_seq == req.last_seq && inst.digest == req.digest => {
                // The digest pins the inputs; the audit checksum, when sent, pins the memory.
                if req.state_checksum.is_none_or(|c| c == inst.svc.checksum()) {
                    Verdict::Valid
                } else {
                    Verdict::NeedFull
                }
            }
            Body::Ready(inst) if inst.last_seq < req.last_seq => Verdict::NeedFrom(inst.last_seq),
            Body::Ready(_) => Verdict::NeedFull,
        };
        sh.first_try.get_or_insert(verdict == Verdict::Valid);
        match verdict {
            Verdict::Valid => self.activate(now, service),
            Verdict::Reject(_) => {
                self.shadows.remove(&service);
                self.send(
                    req.source,
                    RelocateConfirm {
                        service,
                        target,
                        verdict,
                    },
                );
            }
            v => {
                if sh.asked.as_ref() == Some(&v) {
                    return; // Already asked; the answer is on its way.
                }
                if v == Verdict::NeedFull {
                    sh.body = Body::Awaiting;
                }
                sh.asked = Some(v.clone());
                self.send(
                    req.source,
                    RelocateConfirm {
                        service,
                        target,
                        verdict: v,
                    },
                );
            }
        }
    }

    fn activate(&mut self, _now: Instant, service: ServiceId) {
        let Some(sh) = self.shadows.remove(&service) else {
            return;
        };
        let Body::Ready(mut inst) = sh.body else {
            return;
        };
        let Some(req) = sh.request else { return };
        inst.adopt_answers(&req.answers);
        let (last_seq, digest, state_bytes) = (inst.last_seq, inst.digest, inst.svc.state_len());
        // O(1) in state size: the instance moves from the shadow table to the live one. Its
        // dirty map may be stale; a later delta shadow starts from a full snapshot, and
        // extra chunks in its first delta are harmless.
        self.live.insert(service, Live::new(inst));
        self.moved.remove(&service);
        self.events.push_back(EdgeEvent::Activated {
            service,
            from: req.source,
            last_seq,
            digest,
            first_try: sh.first_try.unwrap_or(true),
            state_bytes,
            shadow_created_at: sh.created_at,
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
        self.send(
            NodeId::Control,
            RelocationDone {
                service,
                from: req.source,
                to: me,
                ok: true,
                epoch: req.epoch,
            },
        );
        self.release_held(sh.held);
        self.load_report();
    }
}

/// Queues one [`ShadowSync`] with `body` for each of `targets`.
fn sync_to(
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

fn source_of(from: NodeId) -> ServerId {
    match from {
        NodeId::Server(s) => s,
        _ => ServerId(0),
    }
}

impl Live {
    /// Servers holding a shadow synced in `mode`.
    fn links_in(&self, mode: SyncMode) -> Vec<ServerId> {
        self.links
            .iter()
            .filter(|(_, l)| l.mode == mode)
            .map(|(s, _)| *s)
            .collect()
    }

    fn new(inst: Instance) -> Self {
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

impl Role for EdgeServer {
    type Event = EdgeEvent;

    fn id(&self) -> NodeId {
        self.cfg.id.into()
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        match msg {
            Message::ServiceInput(m) => self.on_input(m),
            Message::Probe(m) => self.on_probe(m),
            Message::Instantiate(m) => self.on_instantiate(from, m),
            Message::PrepareShadow(m) => self.on_prepare(now, m),
            Message::ShadowTransfer(m) => self.on_transfer(now, from, m),
            Message::ShadowSync(m) => self.on_sync(now, from, m.service, m.body, false),
            Message::CatchUp(m) => self.on_sync(now, from, m.service, m.body, true),
            Message::Relocate(m) => self.on_relocate(now, from, m),
            Message::RelocateRequest(m) => self.on_request(now, m),
            Message::RelocateConfirm(m) => self.on_confirm(now, from, m),
            Message::ShadowReady(m) => self.on_shadow_ready(m),
            Message::SyncAck(m) => self.on_sync_ack(now, m),
            other => self.violation(from, format!("{} is not for an ME server", other.name())),
        }
        self.watch_confirms(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::LoadReport => {
                    self.load_report();
                    self.timers
                        .insert((now + self.cfg.load_report_interval, Timer::LoadReport));
                }
                Timer::DeltaTick(service) => {
                    let Some(live) = self.live.get(&service) else {
                        continue;
                    };
                    if live.frozen || !live.links.values().any(|l| l.mode == SyncMode::Delta) {
                        continue;
                    }
                    self.send_delta_round(service);
                    self.timers
                        .insert((now + self.cfg.delta_interval, Timer::DeltaTick(service)));
                }
                Timer::ReplayFlush(service) => {
                    let Some(live) = self.live.get_mut(&service) else {
                        continue;
                    };
                    if !live.batch.is_empty() {
                        let batch = SyncBody::Inputs(std::mem::take(&mut live.batch));
                        let to = live.links_in(SyncMode::Replay);
                        sync_to(&mut self.out, self.cfg.id, service, &to, &batch);
                    }
                    if !live.frozen && !live.links.is_empty() {
                        self.timers
                            .insert((now + self.cfg.replay_batch, Timer::ReplayFlush(service)));
                    }
                }
                Timer::Confirm(service) => self.on_confirm_timeout(service),
                Timer::StartShadow(service, target) => {
                    if let Some(mode) = self.planned.remove(&(service, target)) {
                        let ready = self
                            .live
                            .get(&service)
                            .is_some_and(|l| !l.frozen && l.out.is_none());
                        if ready {
                            self.start_shadow(now, service, target, mode);
                        }
                    }
                }
            }
        }
        // Replay batching runs on a timer per service that has replay shadows.
        if !self.cfg.replay_batch.is_zero() {
            let due: Vec<ServiceId> = self
                .live
                .iter()
                .filter(|(_, l)| !l.frozen && l.links.values().any(|k| k.mode == SyncMode::Replay))
                .map(|(s, _)| *s)
                .collect();
            for s in due {
                self.arm(now + self.cfg.replay_batch, Timer::ReplayFlush(s));
            }
        }
        self.watch_confirms(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<EdgeEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }
}
