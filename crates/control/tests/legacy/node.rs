//! A frozen copy of the control node as it was before its relocation states became types
//! and its timers a `TimerTable` (crates/control/src/node.rs at 7ca1f1d, less the
//! snapshot). `tests/equivalence.rs` drives it side by side with the real node. Delete
//! both when the node's behaviour changes on purpose.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use edgeshift_proto::{
    CellId, Deploy, HandoverCancel, HandoverExecution, HandoverPrediction, Instant, Instantiate,
    LoadReport, Message, NodeId, PrepareShadow, Relocate, RelocateAction, RelocationDone,
    RelocationMode, Role, Route, RouteUpdate, ServerId, ServiceId, ServiceSpec, ShadowReady,
    Timing, Transmit, UeId,
};

use edgeshift_control::{ControlConfig, ControlEvent, ControlStats, Strategy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Trigger(ServiceId),
    JitStart(ServiceId, ServerId),
    ShadowExpiry(ServiceId),
    LoadCheck,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    target: ServerId,
    mode: RelocationMode,
    epoch: u64,
    at: Instant,
    triggered: bool,
    /// Load balancing: trigger as soon as the shadow is ready.
    on_ready: bool,
}

/// What the registry knows about one service.
#[derive(Clone, Debug)]
pub(crate) struct ServiceEntry {
    /// Its user.
    pub(crate) ue: UeId,
    /// The user's serving cell, as last reported.
    pub(crate) cell: CellId,
    /// The cell before the last handover.
    pub(crate) previous_cell: Option<CellId>,
    /// Server hosting the live instance.
    pub(crate) host: ServerId,
    /// Route epoch.
    pub(crate) epoch: u64,
    /// Code and context.
    pub(crate) spec: ServiceSpec,
    /// Last reported state size.
    pub(crate) state_bytes: u64,
    /// Servers holding (or receiving) a shadow.
    pub(crate) shadows: BTreeSet<ServerId>,
    planned: BTreeSet<ServerId>,
    predicted: Vec<CellId>,
    last_handover: Option<(CellId, CellId, Instant)>,
    pending: Option<Pending>,
}

/// The ME control node.
#[derive(Debug)]
pub(crate) struct ControlNode {
    cfg: ControlConfig,
    services: BTreeMap<ServiceId, ServiceEntry>,
    by_ue: BTreeMap<UeId, ServiceId>,
    loads: BTreeMap<ServerId, (f32, u32)>,
    stats: ControlStats,
    timers: BTreeSet<(Instant, Timer)>,
    out: VecDeque<Transmit>,
    events: VecDeque<ControlEvent>,
}

impl ControlNode {
    /// A control node with an empty registry.
    #[must_use]
    pub(crate) fn new(cfg: ControlConfig, now: Instant) -> Self {
        let mut timers = BTreeSet::new();
        if cfg.load_threshold.is_some() {
            timers.insert((now + cfg.load_check_interval, Timer::LoadCheck));
        }
        Self {
            cfg,
            services: BTreeMap::new(),
            by_ue: BTreeMap::new(),
            loads: BTreeMap::new(),
            stats: ControlStats::default(),
            timers,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Counters so far.
    #[must_use]
    pub(crate) fn stats(&self) -> ControlStats {
        self.stats
    }

    /// The registry entry of a service.
    #[must_use]
    pub(crate) fn service(&self, service: ServiceId) -> Option<&ServiceEntry> {
        self.services.get(&service)
    }

    /// The configuration.
    #[must_use]
    pub(crate) fn config(&self) -> &ControlConfig {
        &self.cfg
    }

    fn send(&mut self, to: impl Into<NodeId>, msg: impl Into<Message>) {
        self.out.push_back(Transmit {
            to: to.into(),
            msg: msg.into(),
        });
    }

    fn emit(&mut self, e: ControlEvent) {
        self.events.push_back(e);
    }

    fn server_of(&self, cell: CellId) -> Option<ServerId> {
        self.cfg.topology.get(&cell).copied()
    }

    fn within_budget(&self, cell: CellId, host: ServerId, budget_ms: u32) -> bool {
        budget_ms > 0
            && self
                .cfg
                .round_trip(cell, host)
                .is_some_and(|rtt| rtt <= Duration::from_millis(u64::from(budget_ms)))
    }

    fn transfer_time(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 8.0 / self.cfg.link_bits_per_s.max(1.0))
    }

    fn on_deploy(&mut self, from: NodeId, m: Deploy) {
        let Some(host) = self.server_of(m.cell) else {
            self.emit(ControlEvent::ProtocolViolation {
                from,
                what: format!("deploy in {}, which has no ME server", m.cell),
            });
            return;
        };
        if self.services.contains_key(&m.service) {
            return;
        }
        let entry = ServiceEntry {
            ue: m.ue,
            cell: m.cell,
            previous_cell: None,
            host,
            epoch: 1,
            spec: m.spec.clone(),
            state_bytes: 0,
            shadows: BTreeSet::new(),
            planned: BTreeSet::new(),
            predicted: Vec::new(),
            last_handover: None,
            pending: None,
        };
        self.services.insert(m.service, entry);
        self.by_ue.insert(m.ue, m.service);
        self.send(
            host,
            Instantiate {
                service: m.service,
                ue: m.ue,
                spec: m.spec,
            },
        );
        let route = Route {
            service: m.service,
            server: host,
            epoch: 1,
        };
        self.send(m.cell, RouteUpdate { ue: m.ue, route });
    }

    fn request_shadows(&mut self, service: ServiceId, servers: Vec<ServerId>) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let servers: Vec<ServerId> = servers
            .into_iter()
            .filter(|s| *s != e.host && e.shadows.insert(*s))
            .collect();
        if servers.is_empty() {
            return;
        }
        let msg = PrepareShadow {
            service,
            ue: e.ue,
            source: e.host,
            candidates: servers.clone(),
            sync: self.cfg.sync,
            start: Timing::at(Instant::ZERO),
        };
        let host = e.host;
        self.stats.shadows_requested += servers.len() as u64;
        self.send(host, msg.clone());
        for s in &servers {
            self.send(*s, msg.clone());
        }
        self.emit(ControlEvent::ShadowsRequested { service, servers });
    }

    fn discard(&mut self, service: ServiceId, servers: Vec<ServerId>) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        for s in &servers {
            e.shadows.remove(s);
            e.planned.remove(s);
        }
        let servers: Vec<ServerId> = servers.into_iter().filter(|s| *s != e.host).collect();
        if servers.is_empty() {
            return;
        }
        let msg = Relocate {
            service,
            action: RelocateAction::Discard {
                servers: servers.clone(),
            },
            timing: Timing::at(Instant::ZERO),
        };
        let host = e.host;
        self.send(host, msg.clone());
        for s in &servers {
            self.send(*s, msg.clone());
        }
        self.emit(ControlEvent::ShadowsDiscarded { service, servers });
    }

    fn discard_all(&mut self, service: ServiceId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let mut all: Vec<ServerId> = e.shadows.iter().copied().collect();
        all.extend(e.planned.iter().copied());
        all.sort_unstable();
        all.dedup();
        e.planned.clear();
        self.timers
            .retain(|(_, t)| !matches!(t, Timer::JitStart(s, _) if *s == service));
        if !all.is_empty() {
            self.discard(service, all);
        }
    }

    fn on_prediction(&mut self, now: Instant, m: HandoverPrediction) {
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.cell = m.source;
        if e.pending.is_some() {
            return;
        }
        e.predicted = m.candidates.iter().map(|c| c.cell).collect();
        if m.candidates.is_empty() {
            self.discard_all(service);
            return;
        }
        self.stats.predictions += 1;
        if !self.cfg.strategy.uses_shadows() {
            return;
        }
        let (host, budget, bytes) = (e.host, e.spec.latency_budget_ms, e.state_bytes);
        let eta = m.timing.map_or(now, |t| t.resolve(now));
        let mut wanted: Vec<(ServerId, f32)> = Vec::new();
        for c in &m.candidates {
            let Some(server) = self.server_of(c.cell) else {
                continue;
            };
            if server == host || self.within_budget(c.cell, host, budget) {
                continue;
            }
            match wanted.iter_mut().find(|w| w.0 == server) {
                Some(w) => w.1 += c.likelihood,
                None => wanted.push((server, c.likelihood)),
            }
        }
        if let Strategy::ShadowJit { threshold } = self.cfg.strategy {
            wanted.retain(|w| w.1 >= threshold);
        }
        let wanted_set: BTreeSet<ServerId> = wanted.iter().map(|w| w.0).collect();
        let Some(e) = self.services.get(&service) else {
            return;
        };
        let stale: Vec<ServerId> = e
            .shadows
            .union(&e.planned)
            .filter(|s| !wanted_set.contains(s))
            .copied()
            .collect();
        if !stale.is_empty() {
            self.timers.retain(|(_, t)| !matches!(t, Timer::JitStart(s, srv) if *s == service && stale.contains(srv)));
            self.discard(service, stale);
        }
        let mut now_list = Vec::new();
        let start = match self.cfg.strategy {
            Strategy::ShadowJit { .. } => eta - (self.transfer_time(bytes) + self.cfg.jit_margin),
            _ => now,
        };
        for (server, _) in wanted {
            let Some(e) = self.services.get_mut(&service) else {
                return;
            };
            if e.shadows.contains(&server) {
                continue;
            }
            // A newer ETA moves a planned start.
            self.timers
                .retain(|(_, t)| *t != Timer::JitStart(service, server));
            if start <= now {
                e.planned.remove(&server);
                now_list.push(server);
            } else {
                e.planned.insert(server);
                self.timers
                    .insert((start, Timer::JitStart(service, server)));
                self.emit(ControlEvent::ShadowPlanned {
                    service,
                    server,
                    at: start,
                });
            }
        }
        self.request_shadows(service, now_list);
        self.timers
            .retain(|(_, t)| *t != Timer::ShadowExpiry(service));
        self.timers
            .insert((eta + self.cfg.shadow_ttl, Timer::ShadowExpiry(service)));
    }

    fn on_execution(&mut self, now: Instant, m: HandoverExecution) {
        self.stats.handovers += 1;
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(target_server) = self.server_of(m.target) else {
            self.emit(ControlEvent::ProtocolViolation {
                from: m.source.into(),
                what: format!("handover to {}, which has no ME server", m.target),
            });
            return;
        };
        let strategy = self.cfg.strategy;
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        if let Some((from, to, at)) = e.last_handover
            && from == m.target
            && to == m.source
            && now.saturating_duration_since(at) <= self.cfg.pingpong_window
        {
            self.stats.pingpongs += 1;
            self.events.push_back(ControlEvent::PingPong { ue: m.ue });
        }
        e.last_handover = Some((m.source, m.target, now));
        e.previous_cell = Some(m.source);
        e.cell = m.target;
        if e.pending.is_some() {
            return; // A relocation is already under way; the next handover will follow.
        }
        let predicted = e.predicted.contains(&m.target);
        let has_shadow = e.shadows.contains(&target_server);
        let (host, budget) = (e.host, e.spec.latency_budget_ms);
        if target_server == host {
            self.stats.skipped_same_server += 1;
            self.emit(ControlEvent::SkippedSameServer { service });
            self.discard_all(service);
            return;
        }
        if strategy == Strategy::Stay {
            return;
        }
        if self.within_budget(m.target, host, budget) {
            self.stats.skipped_within_budget += 1;
            self.emit(ControlEvent::SkippedWithinBudget { service });
            self.discard_all(service);
            return;
        }
        let mode = match strategy {
            Strategy::Cold => RelocationMode::Cold,
            Strategy::Precopy => RelocationMode::Precopy,
            _ if has_shadow => RelocationMode::Hot,
            _ => {
                self.stats.reactive += 1;
                RelocationMode::Cold
            }
        };
        if strategy.uses_shadows() && !predicted {
            self.stats.mispredicted += 1;
            self.emit(ControlEvent::Mispredicted {
                service,
                target: m.target,
            });
        }
        let at = m.timing.resolve(now).max(now);
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.epoch += 1;
        e.pending = Some(Pending {
            target: target_server,
            mode,
            epoch: e.epoch,
            at,
            triggered: false,
            on_ready: false,
        });
        self.timers
            .retain(|(_, t)| *t != Timer::ShadowExpiry(service));
        self.emit(ControlEvent::RelocationScheduled {
            service,
            target: target_server,
            mode,
            at,
        });
        if at <= now {
            self.trigger(service);
        } else {
            self.timers.insert((at, Timer::Trigger(service)));
        }
    }

    fn trigger(&mut self, service: ServiceId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let Some(p) = e.pending.as_mut() else { return };
        if p.triggered {
            return;
        }
        p.triggered = true;
        let p = *p;
        let host = e.host;
        let others: Vec<ServerId> = e
            .shadows
            .iter()
            .chain(e.planned.iter())
            .copied()
            .filter(|s| *s != p.target)
            .collect();
        e.shadows.retain(|s| *s == p.target);
        e.planned.clear();
        self.timers
            .retain(|(_, t)| !matches!(t, Timer::JitStart(s, _) if *s == service));
        self.stats.relocations_triggered += 1;
        let msg = Relocate {
            service,
            action: RelocateAction::Relocate {
                source: host,
                target: p.target,
                mode: p.mode,
                epoch: p.epoch,
            },
            timing: Timing::at(p.at),
        };
        self.send(host, msg.clone());
        self.send(p.target, msg);
        self.emit(ControlEvent::RelocationTriggered {
            service,
            target: p.target,
        });
        if !others.is_empty() {
            let discard = Relocate {
                service,
                action: RelocateAction::Discard {
                    servers: others.clone(),
                },
                timing: Timing::at(p.at),
            };
            for s in &others {
                self.send(*s, discard.clone());
            }
            self.emit(ControlEvent::ShadowsDiscarded {
                service,
                servers: others,
            });
        }
    }

    fn on_done(&mut self, from: NodeId, m: RelocationDone) {
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        let Some(p) = e.pending else {
            self.events.push_back(ControlEvent::ProtocolViolation {
                from,
                what: format!("3033 for {} without a relocation", m.service),
            });
            return;
        };
        if p.epoch != m.epoch || p.target != m.to {
            return;
        }
        e.pending = None;
        e.shadows.clear();
        if m.ok {
            let from_host = e.host;
            e.host = m.to;
            e.epoch = m.epoch;
            let route = Route {
                service: m.service,
                server: m.to,
                epoch: m.epoch,
            };
            let mut cells = vec![e.cell];
            cells.extend(e.previous_cell);
            cells.sort_unstable();
            cells.dedup();
            let ue = e.ue;
            self.stats.relocations_completed += 1;
            for c in cells {
                self.send(c, RouteUpdate { ue, route });
            }
            self.emit(ControlEvent::RelocationCompleted {
                service: m.service,
                from: from_host,
                to: m.to,
            });
        } else {
            self.stats.relocations_failed += 1;
            self.emit(ControlEvent::RelocationFailed {
                service: m.service,
                target: m.to,
            });
        }
    }

    fn on_cancel(&mut self, m: HandoverCancel) {
        self.stats.cancelled += 1;
        self.events
            .push_back(ControlEvent::HandoverCancelled { ue: m.ue });
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.cell = m.source;
        e.predicted.clear();
        // The UE may be back at a cell whose route predates a relocation that already
        // happened: point it at the live instance.
        let route = Route {
            service,
            server: e.host,
            epoch: e.epoch,
        };
        let ue = m.ue;
        if e.pending.is_some_and(|p| !p.triggered) {
            e.pending = None;
            self.timers.retain(|(_, t)| *t != Timer::Trigger(service));
        }
        if e.pending.is_none() {
            self.discard_all(service);
        }
        self.send(m.source, RouteUpdate { ue, route });
    }

    fn on_shadow_ready(&mut self, m: ShadowReady) {
        let Some(e) = self.services.get(&m.service) else {
            return;
        };
        if e.pending
            .is_some_and(|p| p.on_ready && p.target == m.server && !p.triggered)
        {
            self.trigger(m.service);
        }
    }

    fn on_load(&mut self, m: LoadReport) {
        self.loads
            .insert(m.server, (m.load, m.services.len() as u32));
        for (service, bytes) in m.services {
            if let Some(e) = self.services.get_mut(&service)
                && e.host == m.server
            {
                e.state_bytes = bytes;
            }
        }
    }

    fn load(&self, server: ServerId) -> f32 {
        self.loads.get(&server).map_or(0.0, |l| l.0)
    }

    fn balance(&mut self, now: Instant) {
        let Some(threshold) = self.cfg.load_threshold else {
            return;
        };
        let servers: BTreeSet<ServerId> = self.cfg.topology.values().copied().collect();
        let busy: Vec<(ServerId, f32)> = self
            .loads
            .iter()
            .filter(|(_, (l, n))| *l > threshold && *n > 0)
            .map(|(s, (l, n))| (*s, l / *n as f32))
            .collect();
        for (hot, unit) in busy {
            if self
                .services
                .values()
                .any(|e| e.host == hot && e.pending.is_some())
            {
                continue;
            }
            // Move the smallest idle service to the least loaded server within its budget
            // that stays below the threshold with it (no thrashing back and forth).
            let mut options: Vec<(ServiceId, u64)> = self
                .services
                .iter()
                .filter(|(_, e)| e.host == hot && e.shadows.is_empty() && e.planned.is_empty())
                .map(|(s, e)| (*s, e.state_bytes))
                .collect();
            options.sort_by_key(|o| (o.1, o.0));
            let pick = options.into_iter().find_map(|(service, _)| {
                let e = &self.services[&service];
                servers
                    .iter()
                    .filter(|s| **s != hot && self.load(**s) + unit < threshold)
                    .filter(|s| self.within_budget(e.cell, **s, e.spec.latency_budget_ms))
                    .min_by(|a, b| self.load(**a).total_cmp(&self.load(**b)).then(a.cmp(b)))
                    .map(|to| (service, *to))
            });
            let Some((service, to)) = pick else { continue };
            let Some(e) = self.services.get_mut(&service) else {
                continue;
            };
            e.epoch += 1;
            e.pending = Some(Pending {
                target: to,
                mode: RelocationMode::Hot,
                epoch: e.epoch,
                at: now,
                triggered: false,
                on_ready: true,
            });
            // Book the move now; the next load reports confirm it.
            if let Some(l) = self.loads.get_mut(&hot) {
                *l = (l.0 - unit, l.1.saturating_sub(1));
            }
            let l = self.loads.entry(to).or_insert((0.0, 0));
            *l = (l.0 + unit, l.1 + 1);
            self.stats.load_balanced += 1;
            self.emit(ControlEvent::LoadBalancing {
                service,
                from: hot,
                to,
            });
            self.request_shadows(service, vec![to]);
        }
    }
}

impl Role for ControlNode {
    type Event = ControlEvent;

    fn id(&self) -> NodeId {
        NodeId::Control
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        match msg {
            Message::Deploy(m) => self.on_deploy(from, m),
            Message::HandoverPrediction(m) => self.on_prediction(now, m),
            Message::HandoverExecution(m) => self.on_execution(now, m),
            Message::HandoverCancel(m) => self.on_cancel(m),
            Message::RelocationDone(m) => self.on_done(from, m),
            Message::ShadowReady(m) => self.on_shadow_ready(m),
            Message::LoadReport(m) => self.on_load(m),
            other => self.emit(ControlEvent::ProtocolViolation {
                from,
                what: format!("{} is not for the control node", other.name()),
            }),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Trigger(service) => self.trigger(service),
                Timer::JitStart(service, server) => {
                    let Some(e) = self.services.get_mut(&service) else {
                        continue;
                    };
                    if e.planned.remove(&server) && e.pending.is_none() {
                        self.request_shadows(service, vec![server]);
                    }
                }
                Timer::ShadowExpiry(service) => {
                    if self
                        .services
                        .get(&service)
                        .is_some_and(|e| e.pending.is_none())
                    {
                        self.discard_all(service);
                    }
                }
                Timer::LoadCheck => {
                    self.balance(now);
                    self.timers
                        .insert((now + self.cfg.load_check_interval, Timer::LoadCheck));
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
        self.timers.first().map(|(t, _)| *t)
    }
}
