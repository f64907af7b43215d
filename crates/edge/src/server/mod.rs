//! The [`EdgeServer`] role.
//!
//! One server plays every part of the relocation protocol at once, for different services:
//!
//! - source of the instances live here: `source.rs` (serving, precopy, frozen until the
//!   2005, moved out) and `links.rs` (the 1004 transfers and the sync that keep their
//!   shadows current);
//! - host of shadows of instances live elsewhere: `shadow.rs` (awaiting, receiving, ready
//!   or failed) and `shadow/check.rs` (checked against the 2004, activated);
//! - relay of UE traffic: `traffic.rs` (served, held, or forwarded to the new host);
//! - guest work, run here or lent to the driver as jobs, and what waits for a busy
//!   service meanwhile: `jobs.rs`;
//! - its timers: `timers.rs`.
//!
//! This module holds the server itself, its code store and the [`Role`] entry points. The
//! driver calls them; each dispatches on the message (or fires the due timers) and ends by
//! restarting the confirm watchdogs of the sources that changed. Time only comes in as
//! `now`; nothing reads a clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use edgeshift_proto::{
    CellId, CodeRef, Instant, Instantiate, LoadReport, Message, NodeId, Relocate, RelocateAction,
    RelocationMode, Role, ServerId, ServiceId, ServiceSpec, SyncMode, TimerTable, Transmit,
};

use crate::config::EdgeConfig;
use crate::digest;
use crate::event::EdgeEvent;
use crate::instance::{Instance, Meta};
use crate::job::Job;
use crate::service::{ServiceError, ServiceFactory};

/// How long a discarded shadow's id is remembered, to ignore its late sync.
const DISCARD_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);

mod budget;
mod failover;
mod jobs;
mod lease;
mod links;
mod shadow;
mod source;
mod stream;
mod tentative;
#[cfg(test)]
mod testkit;
mod timers;
mod traffic;

use shadow::Shadow;
use source::Live;
use timers::Timer;
use traffic::{Held, Sent};

/// A read-only view of a live instance, for drivers and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveView {
    /// Last input applied.
    pub last_seq: u64,
    /// Input-log digest.
    pub digest: u128,
    /// xxh3-128 of the whole state (`None` while a job holds the service).
    pub checksum: Option<u128>,
    /// State size.
    pub state_bytes: u64,
    /// Whether the instance is frozen for a relocation.
    pub frozen: bool,
}

/// An ME server: hosts live instances and shadows and runs the relocation protocol.
pub struct EdgeServer {
    cfg: EdgeConfig,
    factory: Box<dyn ServiceFactory>,
    /// Program code seen here, by hash: (kind, bytes).
    code: BTreeMap<u128, (String, Vec<u8>)>,
    /// Code already sent inline to a server; later transfers name it by hash.
    code_sent: BTreeSet<(ServerId, u128)>,
    live: BTreeMap<ServiceId, Live>,
    shadows: BTreeMap<ServiceId, Shadow>,
    /// Where services relocated out of here went; stale traffic is forwarded there.
    moved: BTreeMap<ServiceId, traffic::Moved>,
    /// The control node that last commanded this server about a service: its reports
    /// about the service go there (a service prepared across a region border is
    /// commanded by the other region's node).
    commanders: BTreeMap<ServiceId, NodeId>,
    /// Shadows dropped here, each until it is forgotten ([`DISCARD_MEMORY`] later); sync
    /// still in flight for them is ignored.
    discarded: TimerTable<ServiceId>,
    /// Shadow starts a 1003 asked for later, with their sync mode.
    planned: BTreeMap<(ServiceId, ServerId), SyncMode>,
    /// Adoptions a 1003 `adopt` announced, waiting for the shadow's 3032 (`links.rs`),
    /// since when.
    adopting: BTreeMap<(ServiceId, ServerId), Instant>,
    /// 3032 adoption offers that came before their 1003: the shadow's last input, and
    /// since when.
    adopt_offers: BTreeMap<(ServiceId, ServerId), (u64, Instant)>,
    timers: TimerTable<Timer>,
    /// Frozen sources whose confirm watchdog (re)starts at the end of this call.
    unwatched: BTreeSet<ServiceId>,
    /// Services that may have got a replay shadow, or resumed serving, since the last
    /// timeout: they get their replay flush timer at the next one.
    unflushed: BTreeSet<ServiceId>,
    out: VecDeque<Transmit>,
    /// Transfers streamed out of frozen instances, in the order they started.
    streams: VecDeque<stream::Stream>,
    events: VecDeque<EdgeEvent>,
    /// Id of the next 1004 transfer.
    next_transfer: u32,
    /// The lease, if the server runs with heartbeats.
    lease: Option<lease::Lease>,
    /// UE traffic for live instances held while the lease is lost.
    fenced_held: BTreeMap<ServiceId, Vec<Held>>,
    /// The time of the call being handled (the driver's `now`, never a clock read).
    now: Instant,
    /// The highest route epoch seen per service: a 2004 of an older relocation is stale.
    epochs: BTreeMap<ServiceId, u64>,
    /// The latest relocation epoch per service the control node called off here (an
    /// abort): a 2004 of it that comes later is refused, whatever order the links keep.
    called_off: BTreeMap<ServiceId, u64>,
    /// Last use of each cached code (a counter, not a time), for eviction.
    code_used: BTreeMap<u128, u64>,
    code_clock: u64,
    /// 1006 relocations that came while fenced: (sender, service, target, mode, epoch).
    deferred: Vec<(NodeId, ServiceId, ServerId, RelocationMode, u64)>,
    /// 1006 promotions that came while fenced, by service: their epochs.
    deferred_promotions: BTreeMap<ServiceId, u64>,
    /// The job out per busy service (its id).
    busy: BTreeMap<ServiceId, u64>,
    /// What waits for each busy service, in arrival order.
    /// Each with the highest input offered when it came (applied before it is acted on).
    waiting: BTreeMap<ServiceId, VecDeque<(u64, jobs::Waiting)>>,
    /// Jobs for the driver (offload only).
    jobs: VecDeque<Job>,
    next_job: u64,
    /// When this server was created: tells its jobs from an earlier server's.
    born: Instant,
    /// Relocations that failed while the lease was lost, by source instance: given up
    /// when it returns, if the instance is still here (`source.rs`, `abandon`).
    abandoned: BTreeMap<ServiceId, String>,
    /// What jobs of live instances applied while the lease was lost, unseen until it
    /// returns: (applied inputs, retransmissions to answer).
    #[allow(clippy::type_complexity)]
    fenced_results: BTreeMap<ServiceId, (Vec<crate::instance::Applied>, Vec<(u64, CellId)>)>,
}

impl EdgeServer {
    /// A server with no services; `factory` turns program code into instances.
    #[must_use]
    pub fn new(cfg: EdgeConfig, factory: Box<dyn ServiceFactory>, now: Instant) -> Self {
        let mut timers = TimerTable::new();
        timers.set(Timer::LoadReport, now + cfg.load_report_interval);
        let lease = cfg.lease.map(|l| lease::Lease::new(l, now));
        if let Some(l) = cfg.lease {
            timers.set(Timer::Heartbeat, now);
            timers.set(Timer::LeaseExpiry, now + l.duration);
        }
        Self {
            cfg,
            factory,
            code: BTreeMap::new(),
            code_sent: BTreeSet::new(),
            live: BTreeMap::new(),
            shadows: BTreeMap::new(),
            moved: BTreeMap::new(),
            commanders: BTreeMap::new(),
            discarded: TimerTable::new(),
            planned: BTreeMap::new(),
            adopting: BTreeMap::new(),
            adopt_offers: BTreeMap::new(),
            timers,
            unwatched: BTreeSet::new(),
            unflushed: BTreeSet::new(),
            out: VecDeque::new(),
            streams: VecDeque::new(),
            events: VecDeque::new(),
            next_transfer: 1,
            lease,
            fenced_held: BTreeMap::new(),
            now,
            epochs: BTreeMap::new(),
            called_off: BTreeMap::new(),
            code_used: BTreeMap::new(),
            code_clock: 0,
            deferred: Vec::new(),
            deferred_promotions: BTreeMap::new(),
            busy: BTreeMap::new(),
            waiting: BTreeMap::new(),
            jobs: VecDeque::new(),
            next_job: 1,
            born: now,
            fenced_results: BTreeMap::new(),
            abandoned: BTreeMap::new(),
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
            checksum: l.inst.checksum(),
            state_bytes: l.inst.footprint(),
            frozen: l.state.is_frozen(),
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

    /// Remembers that `epoch` of `service` exists.
    fn saw_epoch(&mut self, service: ServiceId, epoch: u64) {
        let e = self.epochs.entry(service).or_insert(0);
        *e = (*e).max(epoch);
    }

    fn send(&mut self, to: impl Into<NodeId>, msg: impl Into<Message>) {
        self.out.push_back(Transmit {
            to: to.into(),
            msg: msg.into(),
        });
    }

    /// Where reports about `service` go.
    fn commander(&self, service: ServiceId) -> NodeId {
        self.commanders
            .get(&service)
            .copied()
            .unwrap_or(self.cfg.control)
    }

    fn violation(&mut self, from: NodeId, what: String) {
        self.events
            .push_back(EdgeEvent::ProtocolViolation { from, what });
    }

    /// Reports the load with the size of every live service (`about: None`, the periodic
    /// report) or only of `about` (at once after an event about it).
    fn load_report(&mut self, about: Option<ServiceId>) {
        let size = |(s, l): (&ServiceId, &Live)| (*s, l.inst.footprint());
        let services = match about {
            None => self.live.iter().map(size).collect(),
            Some(s) => self.live.get_key_value(&s).map(size).into_iter().collect(),
        };
        let hosted = u32::try_from(self.live.len()).unwrap_or(u32::MAX);
        let load = self.live.len() as f32 / self.cfg.capacity.max(1) as f32;
        self.send(
            self.cfg.control,
            LoadReport {
                server: self.cfg.id,
                load,
                hosted,
                services,
            },
        );
    }

    // ---- code store and deployment ------------------------------------------------------

    /// The code a spec names, cached here under its hash when it comes inline.
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

    /// A new instance of a spec's service (a live one, or a shadow about to be restored).
    fn create(
        &mut self,
        ue: edgeshift_proto::UeId,
        spec: &ServiceSpec,
    ) -> Result<(Meta, Box<dyn crate::Service>), ServiceError> {
        let (kind, bytes, code_hash) = self.resolve_code(&spec.code)?;
        self.touch_code(code_hash);
        let svc = self.factory.instantiate(&kind, &bytes, &spec.config)?;
        let meta = Meta {
            ue,
            code_hash,
            config: spec.config.clone(),
            latency_budget_ms: spec.latency_budget_ms,
        };
        Ok((meta, svc))
    }

    /// 3031: start a live instance.
    fn on_instantiate(&mut self, from: NodeId, m: Instantiate) {
        if self.live.contains_key(&m.service) {
            return;
        }
        match self.create(m.ue, &m.spec) {
            Ok((meta, svc)) => {
                let inst = Instance::new(meta, svc, 0, digest::GENESIS, self.cfg.answer_cache);
                self.live.insert(m.service, Live::new(inst, 1));
                self.moved.remove(&m.service);
                self.events
                    .push_back(EdgeEvent::Instantiated { service: m.service });
                self.load_report(Some(m.service));
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

    /// 1006: discard shadows, or relocate (acted on by the source; the target learns what
    /// it needs from the 2004).
    fn on_relocate(&mut self, now: Instant, from: NodeId, m: Relocate) {
        match m.action {
            RelocateAction::Discard { servers } => {
                if let Some(live) = self.live.get_mut(&m.service) {
                    for s in &servers {
                        live.links.remove(s);
                        self.planned.remove(&(m.service, *s));
                    }
                }
                for s in &servers {
                    self.forget_adoptions(m.service, Some(*s));
                }
                if servers.contains(&self.cfg.id) {
                    if let Some(source) = self.tentative_source(m.service) {
                        self.drop_tentative(m.service, source, "discarded".into());
                    }
                    self.drop_shadow(now, m.service);
                }
            }
            RelocateAction::Relocate {
                source,
                target,
                mode,
                epoch,
            } => {
                if self.epochs.get(&m.service).is_some_and(|e| epoch < *e) {
                    // From a control node that was deposed (the epochs of a term start
                    // above every earlier term's) or a relocation long replaced.
                    self.violation(
                        from,
                        format!("1006 of epoch {epoch} for {}, which is past", m.service),
                    );
                    if source == self.cfg.id {
                        // Its sender, if it still acts, ends the relocation as failed.
                        self.report_done(m.service, source, target, epoch, false);
                    }
                    return;
                }
                self.saw_epoch(m.service, epoch);
                if source == self.cfg.id {
                    if self.fenced() {
                        // Without a lease the command may be stale (this server may have
                        // been declared dead meanwhile): done when the lease returns, by
                        // which time a release for the instance has come if it was
                        // replaced.
                        self.deferred.push((from, m.service, target, mode, epoch));
                        return;
                    }
                    self.relocate_out(now, from, m.service, target, mode, epoch);
                } else if target == self.cfg.id && mode == RelocationMode::Hot {
                    self.go_tentative(m.service, source, epoch);
                }
            }
            RelocateAction::Promote { epoch } => {
                self.saw_epoch(m.service, epoch);
                if self.fenced() {
                    // As stale as a relocation may be (a server stopped for a while acts
                    // on what waited for it): when the lease returns, by which time the
                    // node's release or abort of this shadow has come if it was called off.
                    self.deferred_promotions.insert(m.service, epoch);
                    return;
                }
                self.promote(m.service, epoch);
            }
            RelocateAction::Release { host, epoch } => {
                self.saw_epoch(m.service, epoch);
                self.release(now, m.service, host, epoch);
            }
            RelocateAction::Resume { epoch } => self.resume(m.service, epoch),
            RelocateAction::Abort { epoch } => self.abort(now, m.service, epoch),
        }
    }
}

impl Role for EdgeServer {
    type Event = EdgeEvent;

    fn id(&self) -> NodeId {
        self.cfg.id.into()
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        self.now = now;
        // Before anything else: a server that was stopped may run on after its lease
        // ended, with the expiry timer still queued behind this message.
        self.on_lease_expiry(now);
        if !edgeshift_proto::may_send(from, self.id(), &msg) {
            self.violation(from, edgeshift_proto::refusal(from, &msg));
            return;
        }
        if from.is_control()
            && let Some(service) = about(&msg)
        {
            self.commanders.insert(service, from);
        }
        self.dispatch(now, from, msg);
        self.watch_confirms(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.run_timers(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.poll_transmit_paced(|_| true)
    }

    fn poll_event(&mut self) -> Option<EdgeEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
}

impl EdgeServer {
    /// Acts on a message from an allowed sender, or keeps it while its service is busy
    /// (UE inputs excepted: they queue in the instance).
    fn dispatch(&mut self, now: Instant, from: NodeId, msg: Message) {
        if let Some(service) = about(&msg)
            && self.busy(service)
        {
            self.wait(service, jobs::Waiting::Message(from, Box::new(msg), false));
            return;
        }
        match msg {
            Message::ServiceInput(m) => self.on_input(from, m),
            Message::InputRun(m) => self.on_input_run(from, m),
            Message::Probe(m) if !self.looping(from, m.service, Sent::Probe(m.nonce)) => {
                if let Err(Held::Probe(m)) = self.pass_on(m.service, from, Held::Probe(m)) {
                    self.on_probe(from, m);
                }
            }
            Message::Probe(_) => {}
            Message::HeartbeatAck(m) if from == self.cfg.control => self.on_heartbeat_ack(now, m),
            Message::HeartbeatAck(_) => self.violation(
                from,
                format!(
                    "3007 from {from}: the lease comes from {}",
                    self.cfg.control
                ),
            ),
            Message::Instantiate(m) => self.on_instantiate(from, m),
            Message::PrepareShadow(m) => self.on_prepare(now, m),
            Message::ShadowTransfer(m) => self.on_transfer(now, from, m),
            Message::ShadowSync(m) => self.on_sync(now, from, m.service, m.body, false),
            Message::CatchUp(m) => self.on_sync(now, from, m.service, m.body, true),
            Message::Relocate(m) => self.on_relocate(now, from, m),
            Message::RelocateRequest(m) => self.on_request(now, m),
            Message::RelocateConfirm(m) => self.on_confirm(now, from, m),
            Message::ShadowReady(m) => self.on_shadow_ready(now, from, m),
            Message::SyncAck(m) => self.on_sync_ack(now, m),
            Message::ShadowRefused(m) => self.on_shadow_refused(m),
            other => self.violation(from, format!("{} is not for an ME server", other.name())),
        }
    }
}

/// The service a message for an ME server is about, for the ones that wait while it is
/// busy: every one but UE inputs and the server's own lease traffic.
fn about(msg: &Message) -> Option<ServiceId> {
    match msg {
        Message::Probe(m) => Some(m.service),
        Message::Instantiate(m) => Some(m.service),
        Message::PrepareShadow(m) => Some(m.service),
        Message::ShadowTransfer(m) => Some(m.service),
        Message::ShadowSync(m) => Some(m.service),
        Message::CatchUp(m) => Some(m.service),
        Message::Relocate(m) => Some(m.service),
        Message::RelocateRequest(m) => Some(m.service),
        Message::RelocateConfirm(m) => Some(m.service),
        Message::ShadowReady(m) => Some(m.service),
        Message::SyncAck(m) => Some(m.service),
        Message::ShadowRefused(m) => Some(m.service),
        _ => None,
    }
}
