//! The discrete-event engine: one heap of events keyed by (time, sequence number), the
//! roles, the network, the radio and the checkers. A seed fixes the whole run.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use edgeshift_control::{ControlNode, Strategy};
use edgeshift_edge::{EdgeEvent, EdgeServer};
use edgeshift_proto::{
    CellId, Deploy, Instant, Message, NodeId, Role, ServerId, ServiceId, ServiceSpec, SyncMode,
    Transmit, UeId, codec,
};
use edgeshift_ran::{BaseStation, RanEvent};
use edgeshift_runtime::{Limits, ModuleError, WasmFactory};
use edgeshift_ue::{HandoverGap, UeClient, UeEvent};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::check::Checker;
use crate::link::Network;
use crate::radio::{Pos, position};
use crate::report::{Percentiles, RelocationRecord, Report};
use crate::scenario::Scenario;
use crate::setup::Join;
use edgeshift_radio::measure::UeMeasurer;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The service is not one the simulator knows.
    #[error("unknown service {0:?} (expected mem, counter, arena or armap)")]
    UnknownService(String),
    /// The WebAssembly engine could not start.
    #[error("WebAssembly runtime: {0}")]
    Runtime(ModuleError),
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Relocation strategy.
    pub strategy: Strategy,
    /// Seed of every random draw.
    pub seed: u64,
    /// Overrides the scenario's service state size.
    pub state_bytes: Option<u64>,
    /// Overrides the scenario's service (`mem`, `counter`, `arena`, `armap`).
    pub service: Option<String>,
    /// Sync mode of shadows.
    pub sync: SyncMode,
    /// Keep service traffic (inputs, answers, probes) in the trace too.
    pub trace_traffic: bool,
}

impl SimConfig {
    /// A run of `strategy` with `seed`.
    #[must_use]
    pub fn new(strategy: Strategy, seed: u64) -> Self {
        Self {
            strategy,
            seed,
            state_bytes: None,
            service: None,
            sync: SyncMode::Replay,
            trace_traffic: false,
        }
    }
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEntry {
    /// A message was delivered.
    Msg {
        /// Arrival time.
        at: Instant,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Type code.
        code: u16,
        /// Type name.
        name: &'static str,
        /// Encoded size.
        bytes: usize,
    },
    /// A role reported an event.
    Event {
        /// When.
        at: Instant,
        /// Which node.
        node: NodeId,
        /// The event, rendered.
        what: String,
    },
}

impl TraceEntry {
    /// When it happened.
    #[must_use]
    pub fn at(&self) -> Instant {
        match self {
            Self::Msg { at, .. } | Self::Event { at, .. } => *at,
        }
    }
}

enum Node {
    Cell(BaseStation),
    Server(EdgeServer),
    Control(ControlNode),
    Ue(UeClient),
}

enum Ev {
    Deliver {
        from: NodeId,
        to: NodeId,
        frame: Vec<u8>,
    },
    Wake(NodeId),
    Measure,
    Attach {
        ue: UeId,
        cell: CellId,
    },
    Reestablish {
        ue: UeId,
        cell: CellId,
    },
}

struct Item {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Reloc {
    service: ServiceId,
    from: ServerId,
    to: ServerId,
    triggered_at: Option<Instant>,
    frozen_at: Option<Instant>,
    activated_at: Instant,
    state_bytes: u64,
    first_try: bool,
}

/// A simulation run. Build with [`Sim::new`], run with [`Sim::run`].
pub struct Sim {
    scenario: Scenario,
    cfg: SimConfig,
    spec: ServiceSpec,
    now: Instant,
    end: Instant,
    seq: u64,
    heap: BinaryHeap<Item>,
    nodes: BTreeMap<NodeId, Node>,
    wake_at: BTreeMap<NodeId, Instant>,
    net: Network,
    rng: ChaCha8Rng,
    radios: BTreeMap<UeId, UeMeasurer>,
    checker: Checker,
    trace: Vec<TraceEntry>,
    payloads: BTreeMap<ServiceId, Vec<Vec<u8>>>,
    triggered: BTreeMap<ServiceId, Instant>,
    frozen: BTreeMap<ServiceId, Instant>,
    relocs: Vec<Reloc>,
    shadow_open: BTreeMap<(ServerId, ServiceId), Instant>,
    shadow_seconds: f64,
    shadow_bytes: u64,
    notes: Vec<String>,
}

fn drain<R: Role>(r: &mut R) -> (Vec<Transmit>, Vec<R::Event>, Option<Instant>) {
    let tx = std::iter::from_fn(|| r.poll_transmit()).collect();
    let ev = std::iter::from_fn(|| r.poll_event()).collect();
    (tx, ev, r.poll_timeout())
}

impl Sim {
    /// Sets up every role of `scenario` at time zero.
    ///
    /// # Errors
    /// An unknown service, or a WebAssembly engine that cannot start on this host.
    pub fn new(scenario: Scenario, cfg: SimConfig) -> Result<Self, SimError> {
        let s = &scenario;
        let spec = s.service_spec(cfg.service.as_deref(), cfg.state_bytes)?;
        let end = Instant::from_secs_f64(s.duration_s + s.drain_s);
        let mut nodes = BTreeMap::new();
        for sv in &s.servers {
            let factory = WasmFactory::new(Limits::default()).map_err(SimError::Runtime)?;
            let server = EdgeServer::new(
                s.edge_config(ServerId(sv.id)),
                Box::new(factory),
                Instant::ZERO,
            );
            nodes.insert(NodeId::Server(ServerId(sv.id)), Node::Server(server));
        }
        for c in &s.cells {
            let station = BaseStation::new(s.ran_config(CellId(c.id)));
            nodes.insert(NodeId::Cell(CellId(c.id)), Node::Cell(station));
        }
        let cc = s.control_config(cfg.strategy, cfg.sync);
        nodes.insert(
            NodeId::Control,
            Node::Control(ControlNode::new(cc, Instant::ZERO)),
        );
        let stop = Instant::from_secs_f64(s.duration_s);
        for u in &s.ues {
            let mut uc = s.ue_config(u, cfg.seed);
            uc.stop_at = Some(stop);
            nodes.insert(
                NodeId::Ue(UeId(u.id)),
                Node::Ue(UeClient::new(uc, Instant::ZERO)),
            );
        }
        let net = Network::new(s);
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut sim = Self {
            spec,
            now: Instant::ZERO,
            end,
            seq: 0,
            heap: BinaryHeap::new(),
            nodes,
            wake_at: BTreeMap::new(),
            net,
            rng,
            radios: BTreeMap::new(),
            checker: Checker::default(),
            trace: Vec::new(),
            payloads: BTreeMap::new(),
            triggered: BTreeMap::new(),
            frozen: BTreeMap::new(),
            relocs: Vec::new(),
            shadow_open: BTreeMap::new(),
            shadow_seconds: 0.0,
            shadow_bytes: 0,
            notes: Vec::new(),
            scenario,
            cfg,
        };
        sim.start();
        Ok(sim)
    }

    /// Checksum of a twin that applied the UE's inputs in order and never moved.
    fn twin_checksum(&self, service: ServiceId) -> Result<u128, String> {
        crate::twin_checksum(
            &self.spec,
            self.payloads.get(&service).into_iter().flatten(),
        )
    }

    fn start(&mut self) {
        let ues: Vec<(u32, Pos)> = self
            .scenario
            .ues
            .iter()
            .map(|u| (u.id, position(&u.waypoints, u.speed_mps, u.start_s, 0.0)))
            .collect();
        let spec = self.spec.clone();
        for (id, pos) in ues {
            let ue = UeId(id);
            let rsrp = self.rsrp(ue, pos);
            let Some(&(cell, _)) = rsrp.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
                continue;
            };
            if let Some(Node::Ue(u)) = self.nodes.get_mut(&NodeId::Ue(ue)) {
                u.handle_attach(Instant::ZERO, cell);
            }
            let deploy = Deploy {
                service: ServiceId(id),
                ue,
                cell,
                spec: spec.clone(),
            };
            self.deliver_now(NodeId::Control, NodeId::Control, deploy.into());
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.flush(id);
        }
        let period = Duration::from_millis(self.scenario.radio.meas_period_ms.max(1));
        self.push(Instant::ZERO + period, Ev::Measure);
    }

    /// One measurement of every cell by `ue` at `pos`: filtered RSRP (dBm) per cell.
    fn rsrp(&mut self, ue: UeId, pos: Pos) -> Vec<(CellId, f64)> {
        let m = self.radios.entry(ue).or_default();
        self.scenario.measure(m, pos, &mut self.rng)
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Item {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn deliver_now(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let now = self.now;
        match self.nodes.get_mut(&to) {
            Some(Node::Cell(r)) => r.handle_message(now, from, msg),
            Some(Node::Server(r)) => r.handle_message(now, from, msg),
            Some(Node::Control(r)) => r.handle_message(now, from, msg),
            Some(Node::Ue(r)) => r.handle_message(now, from, msg),
            None => {}
        }
        self.flush(to);
    }

    /// Runs to the end and returns the report.
    #[must_use]
    pub fn run(mut self) -> (Report, Vec<TraceEntry>) {
        while let Some(item) = self.heap.pop() {
            if item.at > self.end {
                break;
            }
            self.now = item.at;
            self.step(item.ev);
        }
        self.now = self.end;
        self.finish()
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, frame } => match codec::decode_exact(&frame) {
                Ok(msg) => {
                    let traffic = msg.is_service_traffic() || matches!(msg, Message::LoadReport(_));
                    if !traffic || self.cfg.trace_traffic {
                        self.trace.push(TraceEntry::Msg {
                            at: self.now,
                            from,
                            to,
                            code: msg.type_code(),
                            name: msg.name(),
                            bytes: frame.len(),
                        });
                    }
                    self.deliver_now(from, to, msg);
                }
                Err(e) => self.checker.violation(
                    self.now,
                    format!("frame from {from} to {to} does not decode: {e}"),
                ),
            },
            Ev::Wake(id) => {
                if self.wake_at.get(&id) != Some(&self.now) {
                    return; // Superseded by an earlier or later wake.
                }
                self.wake_at.remove(&id);
                let now = self.now;
                match self.nodes.get_mut(&id) {
                    Some(Node::Cell(r)) => r.handle_timeout(now),
                    Some(Node::Server(r)) => r.handle_timeout(now),
                    Some(Node::Control(r)) => r.handle_timeout(now),
                    Some(Node::Ue(r)) => r.handle_timeout(now),
                    None => {}
                }
                self.flush(id);
            }
            Ev::Measure => self.measure(),
            Ev::Attach { ue, cell } => {
                if let Some(Node::Ue(u)) = self.nodes.get_mut(&NodeId::Ue(ue)) {
                    u.handle_attach(self.now, cell);
                }
                self.flush(NodeId::Ue(ue));
            }
            Ev::Reestablish { ue, cell } => {
                if let Some(Node::Ue(u)) = self.nodes.get_mut(&NodeId::Ue(ue)) {
                    u.handle_reestablish(self.now, cell);
                }
                self.flush(NodeId::Ue(ue));
            }
        }
    }

    fn measure(&mut self) {
        let t = self.now.as_secs_f64();
        let ues: Vec<(UeId, Pos)> = self
            .scenario
            .ues
            .iter()
            .map(|u| {
                (
                    UeId(u.id),
                    position(&u.waypoints, u.speed_mps, u.start_s, t),
                )
            })
            .collect();
        for (ue, pos) in ues {
            let rsrp = self.rsrp(ue, pos);
            let serving = match self.nodes.get(&NodeId::Ue(ue)) {
                Some(Node::Ue(u)) => u.serving(),
                _ => None,
            };
            let Some(cell) = serving else { continue };
            let Some(report) = crate::measurement_report(ue, cell, &rsrp, pos) else {
                continue;
            };
            if let Some(Node::Cell(c)) = self.nodes.get_mut(&NodeId::Cell(cell)) {
                c.handle_measurement(self.now, &report);
            }
            self.flush(NodeId::Cell(cell));
        }
        let period = Duration::from_millis(self.scenario.radio.meas_period_ms.max(1));
        if self.now + period <= self.end {
            self.push(self.now + period, Ev::Measure);
        }
    }

    fn flush(&mut self, id: NodeId) {
        let (tx, timeout) = match self.nodes.get_mut(&id) {
            Some(Node::Cell(r)) => {
                let (tx, ev, t) = drain(r);
                for e in ev {
                    self.on_ran(id, e);
                }
                (tx, t)
            }
            Some(Node::Server(r)) => {
                let (tx, ev, t) = drain(r);
                let server = r.server_id();
                for e in ev {
                    self.on_edge(server, e);
                }
                (tx, t)
            }
            Some(Node::Control(r)) => {
                let (tx, ev, t) = drain(r);
                for e in ev {
                    self.trace.push(TraceEntry::Event {
                        at: self.now,
                        node: id,
                        what: format!("{e:?}"),
                    });
                }
                (tx, t)
            }
            Some(Node::Ue(r)) => {
                let (tx, ev, t) = drain(r);
                let ue = r.ue_id();
                for e in ev {
                    self.on_ue(ue, e);
                }
                (tx, t)
            }
            None => return,
        };
        for t in tx {
            self.send(id, t);
        }
        if let Some(t) = timeout {
            let t = t.max(self.now);
            if self.wake_at.get(&id) != Some(&t) {
                self.wake_at.insert(id, t);
                self.push(t, Ev::Wake(id));
            }
        } else {
            self.wake_at.remove(&id);
        }
    }

    fn send(&mut self, from: NodeId, t: Transmit) {
        if !self.nodes.contains_key(&t.to) {
            self.checker.violation(
                self.now,
                format!("{from} sent {} to unknown node {}", t.msg.name(), t.to),
            );
            return;
        }
        let frame = match codec::encode(&t.msg) {
            Ok(f) => f,
            Err(e) => {
                self.checker.violation(
                    self.now,
                    format!("{from} sent an unencodable {}: {e}", t.msg.name()),
                );
                return;
            }
        };
        if t.msg.is_state_transfer() {
            self.shadow_bytes += frame.len() as u64;
        }
        let radio = matches!(from, NodeId::Ue(_)) || matches!(t.to, NodeId::Ue(_));
        if radio && t.msg.is_service_traffic() {
            let loss = self.net.spec(from, t.to).loss;
            if loss > 0.0 && self.rng.random::<f64>() < loss {
                return;
            }
        }
        // Only X2 messages draw (their jitter), so other draws keep their order.
        let u = if crate::link::is_x2(from, t.to) {
            self.rng.random::<f64>()
        } else {
            0.0
        };
        let at = self
            .net
            .schedule(self.now, from, t.to, t.msg.lane(), frame.len(), u);
        self.push(
            at,
            Ev::Deliver {
                from,
                to: t.to,
                frame,
            },
        );
    }

    fn on_ran(&mut self, id: NodeId, e: RanEvent) {
        if !matches!(e, RanEvent::TrafficDropped { .. }) {
            self.trace.push(TraceEntry::Event {
                at: self.now,
                node: id,
                what: format!("{e:?}"),
            });
        }
    }

    fn on_ue(&mut self, ue: UeId, e: UeEvent) {
        match e {
            UeEvent::Generated { seq, payload } => {
                let service = ServiceId(ue.0);
                self.checker.on_generated(self.now, service, seq, &payload);
                self.payloads.entry(service).or_default().push(payload);
            }
            UeEvent::Detached { target } => {
                let source = match self.nodes.get(&NodeId::Ue(ue)) {
                    Some(Node::Ue(u)) => u.gaps().last().map(|g| g.from),
                    _ => None,
                };
                match (self.scenario.handover_join(&mut self.rng), source) {
                    (Join::Reestablish(after), Some(cell)) => {
                        self.push(self.now + after, Ev::Reestablish { ue, cell });
                    }
                    (Join::Target(after), _) | (Join::Reestablish(after), None) => {
                        self.push(self.now + after, Ev::Attach { ue, cell: target });
                    }
                }
                self.trace.push(TraceEntry::Event {
                    at: self.now,
                    node: ue.into(),
                    what: format!("Detached {{ target: {target} }}"),
                });
            }
            UeEvent::Attached { cell } => {
                self.trace.push(TraceEntry::Event {
                    at: self.now,
                    node: ue.into(),
                    what: format!("Attached {{ cell: {cell} }}"),
                });
            }
            UeEvent::Unexpected { name } => self.notes.push(format!("{ue} got unexpected {name}")),
            _ => {}
        }
    }

    fn on_edge(&mut self, server: ServerId, e: EdgeEvent) {
        self.checker.on_edge(self.now, server, &e);
        let quiet = matches!(e, EdgeEvent::Applied { .. } | EdgeEvent::Answered { .. });
        match &e {
            EdgeEvent::RelocationTriggered { service, .. } => {
                self.triggered.insert(*service, self.now);
            }
            EdgeEvent::Frozen { service, .. } => {
                self.frozen.insert(*service, self.now);
            }
            EdgeEvent::ShadowCreated { service, .. } => {
                self.shadow_open.insert((server, *service), self.now);
            }
            EdgeEvent::ShadowDiscarded {
                service,
                created_at,
            } => {
                self.shadow_open.remove(&(server, *service));
                self.shadow_seconds += self
                    .now
                    .saturating_duration_since(*created_at)
                    .as_secs_f64();
            }
            EdgeEvent::Activated {
                service,
                from,
                state_bytes,
                first_try,
                shadow_created_at,
                ..
            } => {
                self.shadow_open.remove(&(server, *service));
                self.shadow_seconds += self
                    .now
                    .saturating_duration_since(*shadow_created_at)
                    .as_secs_f64();
                self.relocs.push(Reloc {
                    service: *service,
                    from: *from,
                    to: server,
                    triggered_at: self.triggered.remove(service),
                    frozen_at: self.frozen.remove(service),
                    activated_at: self.now,
                    state_bytes: *state_bytes,
                    first_try: *first_try,
                });
            }
            EdgeEvent::RelocationFailed { service, .. } => {
                self.triggered.remove(service);
                self.frozen.remove(service);
            }
            EdgeEvent::ProtocolViolation { what, .. } => {
                self.notes.push(format!("{server}: {what}"))
            }
            _ => {}
        }
        if !quiet {
            self.trace.push(TraceEntry::Event {
                at: self.now,
                node: server.into(),
                what: format!("{e:?}"),
            });
        }
    }

    /// Final checks and the report.
    fn finish(mut self) -> (Report, Vec<TraceEntry>) {
        for (_, created) in std::mem::take(&mut self.shadow_open) {
            self.shadow_seconds += self.now.saturating_duration_since(created).as_secs_f64();
        }
        let mut inputs_sent = 0;
        let mut applied_once = 0;
        let mut twins_match = true;
        let mut gaps: Vec<(UeId, HandoverGap)> = Vec::new();
        let ue_ids: Vec<UeId> = self.scenario.ues.iter().map(|u| UeId(u.id)).collect();
        for ue in ue_ids {
            let service = ServiceId(ue.0);
            let (sent, once) = self.checker.counts(service);
            inputs_sent += sent;
            applied_once += once;
            if let Some(Node::Ue(u)) = self.nodes.get(&NodeId::Ue(ue)) {
                if u.unanswered() > 0 {
                    let what = format!("{ue}: {} inputs never answered", u.unanswered());
                    self.checker.violation(self.now, what);
                }
                gaps.extend(u.gaps().iter().map(|g| (ue, *g)));
            }
            let live = self.checker.serving(service).and_then(|s| {
                match self.nodes.get(&NodeId::Server(s)) {
                    Some(Node::Server(e)) => e.live_view(service),
                    _ => None,
                }
            });
            let Some(live) = live else {
                twins_match = false;
                self.checker.violation(
                    self.now,
                    format!("{service}: no single live instance at the end"),
                );
                continue;
            };
            if live.last_seq != sent {
                let what = format!(
                    "{service}: live state holds input {} of {sent}",
                    live.last_seq
                );
                self.checker.violation(self.now, what);
            }
            let twin = self.twin_checksum(service);
            if twin.as_ref().ok() != Some(&live.checksum) {
                twins_match = false;
                self.checker.violation(
                    self.now,
                    format!("{service}: final state differs from its never-moved twin"),
                );
            }
        }
        let records = self.records(&gaps);
        let added: Vec<f64> = gaps
            .iter()
            .filter_map(|(_, g)| g.added())
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        let handovers = gaps.iter().filter(|(_, g)| g.attached_at.is_some()).count() as u64;
        let handover_failures = gaps.iter().filter(|(_, g)| g.failed).count() as u64;
        let stats = match self.nodes.get(&NodeId::Control) {
            Some(Node::Control(c)) => c.stats(),
            _ => Default::default(),
        };
        let violations = self.checker.violations().to_vec();
        let report = Report {
            scenario: self.scenario.name.clone(),
            strategy: self.cfg.strategy.to_string(),
            seed: self.cfg.seed,
            handovers,
            handover_failures,
            relocations: records.len() as u64,
            relocations_skipped_same_server: stats.skipped_same_server,
            relocations_skipped_within_budget: stats.skipped_within_budget,
            mispredicted: stats.mispredicted,
            reactive_fallbacks: stats.reactive,
            handovers_cancelled: stats.cancelled,
            pingpongs: stats.pingpongs,
            invariant_violations: violations.len() as u64,
            inputs_sent,
            inputs_applied_once: applied_once,
            final_state_matches_twin: twins_match,
            added_interruption_ms: Percentiles::of(&added),
            shadow_bytes: self.shadow_bytes,
            shadow_seconds: self.shadow_seconds,
            relocation_records: records,
            violations,
        };
        (report, self.trace)
    }

    fn records(&self, gaps: &[(UeId, HandoverGap)]) -> Vec<RelocationRecord> {
        let msf = |d: Duration| d.as_secs_f64() * 1e3;
        self.relocs
            .iter()
            .map(|r| {
                let ue = UeId(r.service.0);
                let t0 = r.triggered_at.unwrap_or(r.activated_at);
                let gap = gaps
                    .iter()
                    .filter(|(u, g)| {
                        *u == ue
                            && g.detached_at.as_nanos().abs_diff(t0.as_nanos()) <= 2_000_000_000
                    })
                    .min_by_key(|(_, g)| g.detached_at.as_nanos().abs_diff(t0.as_nanos()))
                    .map(|(_, g)| *g);
                let (radio, service) = match gap {
                    Some(g) => (
                        g.radio_gap().map_or(0.0, msf),
                        g.service_gap().map_or(0.0, msf),
                    ),
                    None => (
                        0.0,
                        r.frozen_at
                            .map_or(0.0, |f| msf(r.activated_at.saturating_duration_since(f))),
                    ),
                };
                RelocationRecord {
                    ue: ue.to_string(),
                    service: r.service.to_string(),
                    from: r.from.to_string(),
                    to: r.to.to_string(),
                    state_bytes: r.state_bytes,
                    radio_gap_ms: radio,
                    service_gap_ms: service,
                    added_ms: (service - radio).max(0.0),
                    critical_path_ms: msf(r.activated_at.saturating_duration_since(t0)),
                    checksum_valid_first_try: r.first_try,
                }
            })
            .collect()
    }

    /// Notes (protocol violations the roles reported, unexpected messages).
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}
