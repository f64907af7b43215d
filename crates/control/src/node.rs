//! The [`ControlNode`] role: its state, the [`Role`] entry points and the timers.
//!
//! The policy lives in the child modules, each an `impl ControlNode` block:
//! - `registry`: the service entries, deploys, the cell → server topology;
//! - `shadows`: predictions (1002) into shadows, requested at once or planned (shadow-jit),
//!   discarded when stale or expired;
//! - `relocation`: an in-flight relocation as a typed state, 1005 → 1006 → 3033;
//! - `balance`: load reports and moving services off overloaded servers;
//! - `persist`: the node to and from a [`ControlSnapshot`].
//!
//! Every per-message cost is `O(log n)` in the number of services: entries are found by
//! service, UE or host, and timers by key in one [`TimerTable`].

mod balance;
mod liveness;
mod persist;
mod registry;
mod relocation;
mod shadows;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::RangeInclusive;

use edgeshift_proto::{
    Instant, Message, NodeId, Relocate, RelocateAction, Role, ServerId, ServiceId, TimerTable,
    Timing, Transmit, UeId,
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
    /// The topology's servers, in order (the configuration never changes).
    servers: Vec<ServerId>,
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
    stats: ControlStats,
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
        let servers: BTreeSet<ServerId> = cfg.topology.values().copied().collect();
        Self {
            servers: servers.into_iter().collect(),
            cfg,
            services: BTreeMap::new(),
            by_ue: BTreeMap::new(),
            by_host: BTreeSet::new(),
            loads: BTreeMap::new(),
            peers: BTreeMap::new(),
            superseded: BTreeSet::new(),
            called_off: BTreeSet::new(),
            stats: ControlStats::default(),
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
}

impl Role for ControlNode {
    type Event = ControlEvent;

    fn id(&self) -> NodeId {
        NodeId::Control
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        if !edgeshift_proto::may_send(from, NodeId::Control, &msg) {
            self.emit(ControlEvent::ProtocolViolation {
                from,
                what: edgeshift_proto::refusal(from, &msg),
            });
            return;
        }
        match msg {
            Message::Deploy(m) => self.on_deploy(from, m),
            Message::HandoverPrediction(m) => self.on_prediction(now, m),
            Message::HandoverExecution(m) => self.on_execution(now, m),
            Message::HandoverCancel(m) => self.on_cancel(m),
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
            other => self.emit(ControlEvent::ProtocolViolation {
                from,
                what: format!("{} is not for the control node", other.name()),
            }),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Trigger(service) => self.trigger(service),
                Timer::JitStart(service, server) => self.on_jit_start(service, server),
                Timer::ShadowExpiry(service) => self.on_shadow_expiry(service),
                Timer::LoadCheck => {
                    self.balance(now);
                    self.timers
                        .set(Timer::LoadCheck, now + self.cfg.load_check_interval);
                }
                Timer::ServerSilent(server) => self.server_down(now, server),
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
