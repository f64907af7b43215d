//! The [`ControlNode`] role: its state, the [`Role`] entry points and the timers.
//!
//! The policy lives in the child modules, each an `impl ControlNode` block:
//! - `registry`: the service entries, deploys, the cell → server topology;
//! - `shadows`: predictions (1002) into shadows, requested at once or planned (shadow-jit),
//!   discarded when stale or expired;
//! - `relocation`: an in-flight relocation as a typed state, 1005 → 1006 → 3033;
//! - `balance`: load reports and moving services off overloaded servers;
//! - `persist`: the node to and from a [`ControlSnapshot`];
//! - `region`: handing services to the control nodes of other regions.
//!
//! Every per-message cost is `O(log n)` in the number of services: entries are found by
//! service, UE or host, and timers by key in one [`TimerTable`].

mod balance;
mod liveness;
mod persist;
mod region;
mod registry;
mod relocation;
mod shadows;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::RangeInclusive;

use edgeshift_proto::{
    Instant, Message, NodeId, RegionId, Relocate, RelocateAction, Role, ServerId, ServiceHandoff,
    ServiceId, TimerTable, Timing, Transmit, UeId,
};

use crate::config::ControlConfig;
use crate::event::{ControlEvent, ControlStats};

pub use registry::ServiceEntry;

#[cfg(doc)]
use crate::ControlSnapshot;

/// A timer of the node.
///
/// The derived order decides which of the timers due at the same instant fires first:
/// variant, then service, then server, as the node has always fired them (simulation
/// records depend on it). It also makes the `JitStart` timers of one service one key range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The 1006 of a scheduled relocation goes out (the announced handover time).
    Trigger(ServiceId),
    /// A planned (late) shadow is requested.
    JitStart(ServiceId, ServerId),
    /// No handover came after the predicted time: the shadows go.
    ShadowExpiry(ServiceId),
    /// The periodic load-balancing check.
    LoadCheck,
    /// A server's heartbeats stopped: it is declared dead.
    ServerSilent(ServerId),
    /// A handoff to another region was not acknowledged yet.
    Handoff(ServiceId),
    /// A shadow or plan the predictions stopped naming may be past its grace.
    StaleCheck(ServiceId),
    /// An optimistic relocation (epoch, attempt) still open: its 1006 goes out again.
    Retrigger(ServiceId, u64, u8),
}

impl Timer {
    /// Every `JitStart` of `service`.
    fn jit_starts(service: ServiceId) -> RangeInclusive<Self> {
        Self::JitStart(service, ServerId(u32::MIN))..=Self::JitStart(service, ServerId(u32::MAX))
    }
}

/// The ME control node.
#[derive(Debug)]
pub struct ControlNode {
    cfg: ControlConfig,
    /// This region's servers, in order (the configuration never changes).
    servers: Vec<ServerId>,
    /// The region of every server of the topology.
    server_region: BTreeMap<ServerId, RegionId>,
    /// The other regions of the deployment.
    others: Vec<RegionId>,
    services: BTreeMap<ServiceId, ServiceEntry>,
    by_ue: BTreeMap<UeId, ServiceId>,
    /// Services by host, so load balancing looks at one server's services only.
    by_host: BTreeSet<(ServerId, ServiceId)>,
    loads: BTreeMap<ServerId, (f32, u32)>,
    /// Heartbeating servers: their incarnation, and whether they were declared dead.
    peers: BTreeMap<ServerId, liveness::Peer>,
    /// Instances that a failover replaced while their server was cut off: released when
    /// it comes back.
    superseded: BTreeSet<(ServerId, ServiceId)>,
    /// Relocations called off because their target died, by target, service and epoch:
    /// aborted when the target comes back, before it may go live with a stale 2004.
    called_off: BTreeSet<(ServerId, ServiceId, u64)>,
    /// Orders for this region's servers from other regions (or for services that left),
    /// given when the server comes back.
    rejoin_orders: BTreeMap<ServerId, Vec<(ServiceId, RelocateAction)>>,
    /// Relocations a restored node found triggered, by server and service: the previous
    /// node may have died before their 1006 left, so each server involved gets it again
    /// with its first heartbeat (a repeated 1006 is harmless).
    unconfirmed: BTreeSet<(ServerId, ServiceId)>,

    /// Services handed to another region: where, the handoff's generation, the UE.
    moved: BTreeMap<ServiceId, (RegionId, u64, UeId)>,
    /// The same by UE.
    moved_ue: BTreeMap<UeId, RegionId>,
    /// Handoffs not acknowledged yet.
    outgoing: BTreeMap<ServiceId, (RegionId, ServiceHandoff)>,
    /// Messages about UEs whose service has not arrived yet (a handoff on its way).
    held: BTreeMap<UeId, VecDeque<(Instant, NodeId, Message)>>,
    stats: ControlStats,
    /// When each backhaul link (source, target) finishes the shadow transfers this node
    /// asked for, as far as it can tell (soft state: shadow-jit starts a transfer early
    /// by what is queued before it).
    link_busy: BTreeMap<(ServerId, ServerId), Instant>,
    timers: TimerTable<Timer>,
    out: VecDeque<Transmit>,
    events: VecDeque<ControlEvent>,
}

impl ControlNode {
    /// A control node with an empty registry.
    #[must_use]
    pub fn new(cfg: ControlConfig, now: Instant) -> Self {
        let mut timers = TimerTable::new();
        if cfg.load_threshold.is_some() {
            timers.set(Timer::LoadCheck, now + cfg.load_check_interval);
        }
        let server_region: BTreeMap<ServerId, RegionId> = cfg
            .topology
            .iter()
            .map(|(cell, server)| (*server, cfg.region_of(*cell)))
            .collect();
        let servers: Vec<ServerId> = server_region
            .iter()
            .filter(|(_, r)| **r == cfg.region)
            .map(|(s, _)| *s)
            .collect();
        let mut others: Vec<RegionId> = cfg.regions.values().copied().collect();
        others.push(RegionId(0));
        others.sort_unstable();
        others.dedup();
        others.retain(|r| *r != cfg.region);
        if cfg.regions.is_empty() {
            others.clear();
        }
        Self {
            servers,
            server_region,
            others,
            cfg,
            services: BTreeMap::new(),
            by_ue: BTreeMap::new(),
            by_host: BTreeSet::new(),
            loads: BTreeMap::new(),
            peers: BTreeMap::new(),
            superseded: BTreeSet::new(),
            called_off: BTreeSet::new(),
            rejoin_orders: BTreeMap::new(),
            unconfirmed: BTreeSet::new(),
            moved: BTreeMap::new(),
            moved_ue: BTreeMap::new(),
            outgoing: BTreeMap::new(),
            held: BTreeMap::new(),
            stats: ControlStats::default(),
            link_busy: BTreeMap::new(),
            timers,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> ControlStats {
        self.stats
    }

    /// Every service in the registry.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &ServiceEntry)> {
        self.services.iter().map(|(s, e)| (*s, e))
    }

    /// The registry entry of a service.
    #[must_use]
    pub fn service(&self, service: ServiceId) -> Option<&ServiceEntry> {
        self.services.get(&service)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ControlConfig {
        &self.cfg
    }

    fn send(&mut self, to: impl Into<NodeId>, msg: impl Into<Message>) {
        self.out.push_back(Transmit {
            to: to.into(),
            msg: msg.into(),
        });
    }

    /// A 1006 to one server, to act on when it arrives (no announced time): the orders
    /// after faults (promote, release, resume, abort).
    fn order(&mut self, to: ServerId, service: ServiceId, action: RelocateAction) {
        let msg = Relocate {
            service,
            action,
            timing: Timing::at(Instant::ZERO),
        };
        self.send(to, msg);
    }

    fn emit(&mut self, e: ControlEvent) {
        self.events.push_back(e);
    }

    /// This node's address.
    fn id_of(&self) -> NodeId {
        NodeId::Control(self.cfg.region)
    }

    /// One message, after any relay or hold (see the `region` module).
    fn dispatch(&mut self, now: Instant, from: NodeId, msg: Message) {
        match msg {
            Message::Deploy(m) => self.on_deploy(from, m),
            Message::HandoverPrediction(m) => self.on_prediction(now, m),
            Message::HandoverExecution(m) => self.on_execution(now, m),
            Message::HandoverCancel(m) => self.on_cancel(now, m),
            Message::HandoverComplete(m) => self.emit(ControlEvent::HandoverCompleted {
                ue: m.ue,
                source: m.source,
                target: m.target,
            }),
            Message::RadioReport(m) => self.emit(ControlEvent::RadioMeasured(m)),
            Message::RelocationDone(m) => self.on_done(now, from, m),
            Message::ShadowReady(m) => self.on_shadow_ready(m),
            Message::LoadReport(m) => self.on_load(m),
            Message::Heartbeat(m) => self.on_heartbeat(now, m),
            Message::RouteQuery(m) => self.on_route_query(m),
            Message::ShadowRefused(m) => self.on_shadow_refused(m),
            Message::ServiceHandoff(m) => self.on_handoff(now, from, m),
            Message::HandoffAck(m) => self.on_handoff_ack(m),
            Message::ServerStatus(m) => self.on_server_status(now, m),
            Message::RejoinOrder(m) => self.on_rejoin_order(m),
            Message::Relayed(m) => self.on_relayed(now, from, m),
            other => self.emit(ControlEvent::ProtocolViolation {
                from,
                what: format!("{} is not for the control node", other.name()),
            }),
        }
    }
}

impl Role for ControlNode {
    type Event = ControlEvent;

    fn id(&self) -> NodeId {
        self.id_of()
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        if !edgeshift_proto::may_send(from, self.id_of(), &msg) {
            self.emit(ControlEvent::ProtocolViolation {
                from,
                what: edgeshift_proto::refusal(from, &msg),
            });
            return;
        }
        self.route(now, from, msg, 0);
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Trigger(service) => self.trigger(service),
                Timer::JitStart(service, server) => self.on_jit_start(now, service, server),
                Timer::ShadowExpiry(service) => self.on_shadow_expiry(service),
                Timer::LoadCheck => {
                    self.balance(now);
                    self.timers
                        .set(Timer::LoadCheck, now + self.cfg.load_check_interval);
                }
                Timer::ServerSilent(server) => self.server_down(now, server),
                Timer::Handoff(service) => self.on_handoff_retry(now, service),
                Timer::StaleCheck(service) => self.drop_stale(now, service),
                Timer::Retrigger(service, epoch, attempt) => {
                    self.retrigger(now, service, epoch, attempt);
                }
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<ControlEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
}
