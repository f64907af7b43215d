//! The discrete-event engine: one queue of events keyed by (time, sequence number), the
//! roles, the network, the radio and the checkers. A seed fixes the whole run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use edgeshift_control::{ControlNode, Strategy};
use edgeshift_edge::{EdgeEvent, EdgeServer, ModelConfig};
use edgeshift_proto::{
    CellId, Deploy, Instant, Message, NodeId, RegionId, Role, ServerId, ServiceId, ServiceSpec,
    SyncMode, Transmit, UeId, codec,
};
use edgeshift_radio::measure::UeMeasurer;
use edgeshift_ran::{BaseStation, RanEvent};
use edgeshift_record::{
    FixedState, LiveState, LoadSample, Observation, Recorder, Report, RunMeta, UeFinal,
};
use edgeshift_runtime::{ModuleError, WasmFactory};
use edgeshift_ue::{UeClient, UeEvent};
use edgeshift_world::radio::Pos;
use edgeshift_world::{Command, Join, ModuleSource, Nearby, Node, NodeEvent, Scenario, WorldError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::link::Network;
use crate::queue::EventQueue;
use edgeshift_world::fault::{Fault, FaultKind};

mod split;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The service is not one the simulator knows.
    #[error(transparent)]
    Service(#[from] WorldError),
    /// The WebAssembly engine could not start.
    #[error("WebAssembly runtime: {0}")]
    Runtime(ModuleError),
    /// A fault names a node the scenario does not have, or one the simulator cannot
    /// restart.
    #[error("fault {0}")]
    Fault(String),
    /// The isolation benchmark's normal service did not answer this input.
    #[error("the normal service did not answer input {0}")]
    Isolation(u64),
    /// A benchmark cannot run as asked.
    #[error("{0}")]
    Bench(String),
    /// A city could not be built.
    #[error(transparent)]
    City(#[from] edgeshift_world::CityError),
    /// A benchmark was asked for a strategy it does not know.
    #[error("unknown strategy {0:?} (expected cold, precopy, shadow-replay or shadow-delta)")]
    UnknownStrategy(String),
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
    /// A WebAssembly module of the user's instead of the scenario's service (overrides
    /// `service` and `state_bytes`).
    pub module: Option<ModuleSource>,
    /// Faults beyond the scenario's links.
    pub faults: Faults,
    /// Node crashes, restarts, stops, partitions and lossy links at given times (node
    /// names `me<N>`, `cell<N>` or `ran<N>`, `control`).
    pub outages: Vec<Fault>,
    /// Servers lend guest work out as jobs (as the live daemons do), each taking this long
    /// per input in virtual time; `None`: guests run inside the servers' calls.
    pub compute: Option<Duration>,
    /// Keep the trace of messages and events (off for long runs with many UEs).
    pub keep_trace: bool,
    /// Sample each server's live instances and shadows every simulated second.
    pub sample_load: bool,
    /// Where the run publishes how far it got (simulated nanoseconds), for a progress bar.
    pub progress: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The checker keeps only each service's newest this many inputs densely, so that a
    /// long run's memory does not grow with its length (counts stay exact; a state older
    /// than that cannot be digest-checked, and is a violation). `None`: every input.
    pub check_window: Option<usize>,
    /// Run the radio side (UEs, cells) and the server side (ME servers, control nodes) as
    /// two logical processes that advance in windows of the shortest link between them,
    /// on `threads` threads. The record does not depend on `threads`, but ties between
    /// the sides' events at one instant are ordered differently than in one process. Runs
    /// with a trace, injected faults, outages or lent-out jobs stay in one process.
    pub split: bool,
    /// Threads of a split run (1 or 2).
    pub threads: usize,
}

/// Faults a run injects (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability that a UE's service message on the radio arrives twice.
    pub radio_dup: f64,
    /// A UE's service messages on the radio are delayed by up to this much more (ms),
    /// drawn per message, so that they may overtake each other.
    pub radio_reorder_ms: f64,
    /// Each node's clock runs ahead of the common reference by a constant drawn from 0 to
    /// this (ms): roles see their own time, timing information crosses between clocks.
    pub clock_skew_ms: f64,
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
            module: None,
            faults: Faults::default(),
            outages: Vec::new(),
            compute: None,
            keep_trace: true,
            sample_load: false,
            progress: None,
            check_window: None,
            split: false,
            threads: 1,
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

enum Ev {
    Deliver {
        from: NodeId,
        to: NodeId,
        frame: Vec<u8>,
    },
    Wake(NodeId),
    /// The UEs of a measurement group are measured (see [`Sim::groups`]).
    Measure(u32),
    /// Boxed: it is rare, and the heap's items stay small.
    Command(NodeId, Box<Command>),
    /// Outage `i` of the configuration starts.
    Outage(usize),
    /// A server's job (in `Sim::jobs`) is done.
    JobDone(NodeId, u64),
    /// The server side of a split run samples its load (the radio side's `Measure`
    /// does it in one process).
    Sample,
}

/// Longest a run goes on past its end for relocations in flight to land, and for answers
/// still on their way (a server working off a backlog).
const SETTLE: Duration = Duration::from_secs(30);

/// How long a run that had to settle goes on once it has: a few UE retransmissions.
const GRACE: Duration = Duration::from_secs(2);

/// More events than this per UE within one simulated second is a message storm: a normal
/// run has about a thousand (inputs, answers, measurements, syncs). Traffic that circles
/// between nodes would otherwise keep a run going for ever without its clock advancing;
/// it stops with a violation instead.
const STORM_EVENTS_PER_UE_S: u64 = 100_000;

/// Counts a run's events per simulated second, to stop a message storm.
struct Storm {
    /// Events allowed per simulated second.
    budget: u64,
    second: u64,
    events: u64,
    /// The kinds of the second half of a storm's events, for its account.
    kinds: BTreeMap<String, u64>,
}

impl Storm {
    fn new(s: &Scenario) -> Self {
        let ues = u64::try_from(s.ues.len().max(1)).unwrap_or(u64::MAX);
        Self {
            budget: STORM_EVENTS_PER_UE_S.saturating_mul(ues),
            second: 0,
            events: 0,
            kinds: BTreeMap::new(),
        }
    }

    /// Half the budget, for each side of a split run.
    fn halved(mut self) -> Self {
        self.budget /= 2;
        self
    }

    /// Counts `ev`, due at `at`: the violation's text if it is one too many.
    fn count(&mut self, at: Instant, ev: &Ev) -> Option<String> {
        let second = at.as_nanos() / 1_000_000_000;
        if second != self.second {
            (self.second, self.events) = (second, 1);
            self.kinds.clear();
            return None;
        }
        self.events += 1;
        if self.events > self.budget / 2 {
            *self.kinds.entry(ev.kind()).or_default() += 1;
        }
        (self.events > self.budget)
            .then(|| storm_account(self.budget, second, std::mem::take(&mut self.kinds)))
    }
}

/// What a run's record says it is.
fn run_meta(scenario: &Scenario, cfg: &SimConfig) -> RunMeta {
    RunMeta {
        scenario: scenario.name.clone(),
        strategy: cfg.strategy.to_string(),
        seed: cfg.seed,
        origin: Instant::ZERO,
    }
}

/// The violation of a run stopped by a message storm, with the commonest events of its
/// second half.
fn storm_account(storm: u64, second: u64, kinds: BTreeMap<String, u64>) -> String {
    let mut top: Vec<(String, u64)> = kinds.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let most: Vec<String> = top
        .iter()
        .take(4)
        .map(|(k, n)| format!("{k} x{n}"))
        .collect();
    format!(
        "message storm: more than {storm} events in simulated second {second} (the last half \
         mostly {})",
        most.join(", ")
    )
}

/// A simulation run. Build with [`Sim::new`], run with [`Sim::run`].
pub struct Sim {
    scenario: Arc<Scenario>,
    cfg: SimConfig,
    spec: ServiceSpec,
    now: Instant,
    end: Instant,
    queue: EventQueue<Ev>,
    // Looked up on every event; iterated only where order cannot matter (summing the
    // control nodes' counters at the end): `ids` keeps the order.
    nodes: HashMap<NodeId, Node, FixedState>,
    ids: Vec<NodeId>,
    wake_at: HashMap<NodeId, Instant, FixedState>,
    net: Network,
    rng: ChaCha8Rng,
    radios: HashMap<UeId, UeMeasurer, FixedState>,
    /// The cells each UE measures.
    near: Nearby,
    recorder: Recorder,
    trace: Vec<TraceEntry>,
    /// How far each node's clock runs ahead (ns); absent: none.
    skew: HashMap<NodeId, u64, FixedState>,
    /// Draws of the injected faults, apart from `rng` so that a run without faults draws
    /// as it always did.
    fault_rng: ChaCha8Rng,
    /// Nodes killed and not restarted: they get nothing.
    down: std::collections::HashSet<NodeId, FixedState>,
    /// Nodes stopped until then: what reaches them waits.
    stopped: HashMap<NodeId, Instant, FixedState>,
    /// Each server's incarnation (restarts count up).
    incarnations: HashMap<ServerId, u64, FixedState>,
    /// The partitions and lossy links of the outages, resolved to nodes once.
    cuts: Vec<Cut>,
    /// Jobs servers lent out (with `SimConfig::compute`), run at once and handed back when
    /// their time is up, by key.
    jobs: BTreeMap<u64, (NodeId, edgeshift_edge::Job)>,
    next_job: u64,
    /// The modelled service's config, when the run deploys it: its state messages take
    /// the link time of the bytes they stand for.
    model: Option<ModelConfig>,
    loads: Vec<LoadSample>,
    /// What `flush` drains a node into, kept to spare an allocation per message.
    scratch: (Vec<Transmit>, Vec<NodeEvent>),
    /// The side this is of a split run (see [`SimConfig::split`]).
    part: Option<split::Part>,
}

/// A link fault between two nodes: messages either way are lost with probability `p`
/// from `from` until `until`.
struct Cut {
    a: NodeId,
    b: NodeId,
    from: Instant,
    until: Instant,
    p: f64,
}

impl Ev {
    /// The node an event is for (none: the radio's measurement tick, an outage).
    fn target(&self) -> Option<NodeId> {
        match self {
            Self::Deliver { to, .. } => Some(*to),
            Self::Wake(id) | Self::Command(id, _) | Self::JobDone(id, _) => Some(*id),
            Self::Measure(_) | Self::Outage(_) | Self::Sample => None,
        }
    }

    /// What kind of event this is, for the account of a message storm: "3010 me3->me4",
    /// "wake ue1".
    fn kind(&self) -> String {
        match self {
            Self::Deliver { from, to, frame } => match codec::decode_header(frame) {
                Ok((code, _)) => format!("{code} {from}->{to}"),
                Err(_) => format!("frame {from}->{to}"),
            },
            Self::Wake(id) => format!("wake {id}"),
            Self::Command(id, _) => format!("command {id}"),
            Self::JobDone(id, _) => format!("job {id}"),
            Self::Measure(_) => "measure".into(),
            Self::Outage(_) => "outage".into(),
            Self::Sample => "sample".into(),
        }
    }
}

impl Sim {
    /// Sets up every role of `scenario` at time zero.
    ///
    /// # Errors
    /// An unknown service, or a WebAssembly engine that cannot start on this host.
    pub fn new(scenario: Scenario, cfg: SimConfig) -> Result<Self, SimError> {
        let s = &scenario;
        let spec = match &cfg.module {
            Some(m) => m.spec(s.service.latency_budget_ms),
            None => s.service_spec(cfg.service.as_deref(), cfg.state_bytes)?,
        };
        let mut nodes = BTreeMap::new();
        for sv in &s.servers {
            let factory = WasmFactory::new(s.limits()).map_err(SimError::Runtime)?;
            let mut ec = s.edge_config(ServerId(sv.id), 1);
            ec.offload = cfg.compute.is_some();
            let server = EdgeServer::new(ec, Box::new(factory), Instant::ZERO);
            nodes.insert(NodeId::Server(ServerId(sv.id)), Node::from(server));
        }
        for c in &s.cells {
            let station = BaseStation::new(s.ran_config(CellId(c.id)));
            nodes.insert(NodeId::Cell(CellId(c.id)), Node::from(station));
        }
        for control in s.controls() {
            let NodeId::Control(region) = control else {
                continue;
            };
            let cc = s.region_control_config(region, cfg.strategy, cfg.sync);
            nodes.insert(control, ControlNode::new(cc, Instant::ZERO).into());
        }
        let stop = Instant::from_secs_f64(s.duration_s);
        for u in &s.ues {
            let mut uc = s.ue_config(u, cfg.seed);
            uc.stop_at = Some(stop);
            nodes.insert(
                NodeId::Ue(UeId(u.id)),
                UeClient::new(uc, Instant::ZERO).into(),
            );
        }
        let net = Network::new(s);
        let meta = run_meta(&scenario, &cfg);
        let ues = s.ues.iter().map(|u| (UeId(u.id), ServiceId(u.id)));
        let mut recorder = Recorder::new(meta, ues);
        if let Some(w) = cfg.check_window {
            recorder = recorder.with_check_window(w);
        }
        let ids = nodes.keys().copied().collect();
        let mut sim = Self::bare(
            Arc::new(scenario),
            cfg,
            spec,
            (nodes.into_iter().collect(), ids),
            net,
            recorder,
        );
        sim.plan_outages()?;
        if sim.cfg.faults.clock_skew_ms > 0.0 {
            let max = sim.cfg.faults.clock_skew_ms;
            for id in sim.ids.clone() {
                let ms: f64 = sim.fault_rng.random_range(0.0..max);
                sim.skew.insert(id, (ms * 1e6) as u64);
            }
        }
        sim.start();
        Ok(sim)
    }

    /// A run at time zero of `nodes` (and every node's id, in order), nothing scheduled.
    fn bare(
        scenario: Arc<Scenario>,
        cfg: SimConfig,
        spec: ServiceSpec,
        (nodes, ids): (HashMap<NodeId, Node, FixedState>, Vec<NodeId>),
        net: Network,
        recorder: Recorder,
    ) -> Self {
        let end = Instant::from_secs_f64(scenario.duration_s + scenario.drain_s);
        Self {
            model: ModelConfig::of(&spec),
            spec,
            now: Instant::ZERO,
            end,
            queue: EventQueue::default(),
            ids,
            nodes,
            wake_at: HashMap::default(),
            net,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            radios: HashMap::default(),
            near: scenario.nearby(),
            recorder,
            trace: Vec::new(),
            skew: HashMap::default(),
            fault_rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xFA17_5000_0000_0000),
            down: std::collections::HashSet::default(),
            stopped: HashMap::default(),
            incarnations: HashMap::default(),
            cuts: Vec::new(),
            jobs: BTreeMap::new(),
            next_job: 0,
            loads: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
            part: None,
            scenario,
            cfg,
        }
    }

    /// Checksum of a twin that applied the UE's inputs in order and never moved.
    /// The UE's inputs are regenerated from its seed rather than kept: thousands of UEs
    /// would otherwise hold every payload of the run.
    fn twin_checksum(&self, ue: UeId, service: ServiceId) -> Result<u128, String> {
        let Some(u) = self.nodes.get(&NodeId::Ue(ue)).and_then(Node::as_ue) else {
            return Err(format!("{ue} is not in the run"));
        };
        let (seed, len) = (u.config().seed, u.config().payload_len);
        let (sent, _) = self.recorder.checker().counts(service);
        let inputs = (1..=sent).map(|seq| UeClient::payload(seed, seq, len));
        edgeshift_runtime::twin_checksum(&self.spec, self.scenario.limits(), inputs)
            .map_err(|e| e.to_string())
    }

    fn start(&mut self) {
        let ues: Vec<(u32, Pos)> = self
            .scenario
            .ues
            .iter()
            .map(|u| (u.id, u.position(0.0)))
            .collect();
        let spec = self.spec.clone();
        for (id, pos) in ues {
            let ue = UeId(id);
            let rsrp = self.rsrp(ue, pos, None);
            // A UE beyond the measurement radius of every cell camps on the nearest.
            let strongest = rsrp.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|c| c.0);
            let Some(cell) = strongest.or_else(|| self.scenario.best_cell(pos)) else {
                continue;
            };
            self.command(NodeId::Ue(ue), Command::Attach(cell));
            let deploy = Deploy {
                service: ServiceId(id),
                ue,
                cell,
                spec: spec.clone(),
            };
            let control = NodeId::Control(self.scenario.region_of_cell(cell));
            self.deliver_now(control, control, deploy.into());
        }
        let ids = self.ids.clone();
        for id in ids {
            self.flush(id);
        }
        let period = Duration::from_millis(self.scenario.radio.meas_period_ms.max(1));
        for g in 0..self.groups() {
            let at = Instant::ZERO + period + Duration::from_millis(u64::from(g));
            self.push(at, Ev::Measure(g));
        }
    }

    /// Measurement groups: UE `i` (in the scenario's order) is measured with group
    /// `i % groups`, a millisecond after the group before it. One group without
    /// [`Scenario::ue_phases`]: every UE at once.
    fn groups(&self) -> u32 {
        if !self.scenario.ue_phases {
            return 1;
        }
        let g = self
            .scenario
            .radio
            .meas_period_ms
            .min(self.scenario.ues.len() as u64);
        u32::try_from(g.max(1)).unwrap_or(1)
    }

    /// One measurement by `ue` at `pos` of the cells it measures (see
    /// [`Scenario::measure`]): filtered RSRP (dBm) per cell.
    fn rsrp(&mut self, ue: UeId, pos: Pos, serving: Option<CellId>) -> Vec<(CellId, f64)> {
        let m = self.radios.entry(ue).or_default();
        self.scenario
            .measure(&self.near, m, pos, serving, &mut self.rng)
    }

    /// Schedules `ev`; in a split run, an event for the other side goes to it at the
    /// window's end.
    fn push(&mut self, at: Instant, ev: Ev) {
        if let Some(p) = &mut self.part
            && let Some(to) = ev.target()
            && split::Side::of(to) != p.side
        {
            p.outbox.push((at, ev));
            return;
        }
        self.queue.push(at, ev);
    }

    /// Records `o`; in a split run, it waits to be merged with the other side's.
    fn observe(&mut self, o: Observation) {
        match &mut self.part {
            Some(p) => p.seen.push(o),
            None => self.recorder.observe(o),
        }
    }

    /// Whether `id` is a node of the run (in a split run, of either side: `ids` is
    /// sorted).
    fn knows(&self, id: NodeId) -> bool {
        self.nodes.contains_key(&id) || self.part.is_some() && self.ids.binary_search(&id).is_ok()
    }

    /// The time on `id`'s own clock.
    fn local(&self, id: NodeId) -> Instant {
        Instant(self.now.0 + self.skew.get(&id).copied().unwrap_or(0))
    }

    fn deliver_now(&mut self, from: NodeId, to: NodeId, msg: Message) {
        if self.down.contains(&to) {
            return;
        }
        let now = self.local(to);
        if let Some(r) = self.nodes.get_mut(&to) {
            r.handle_message(now, from, msg);
        }
        self.flush(to);
    }

    /// Feeds a command to `to` (without flushing it).
    fn command(&mut self, to: NodeId, cmd: Command) {
        // A crashed or stopped node gets no radio input (measurements, attaches).
        if self.down.contains(&to) || self.stopped.get(&to).is_some_and(|u| self.now < *u) {
            return;
        }
        let now = self.local(to);
        if let Some(r) = self.nodes.get_mut(&to)
            && let Err(e) = r.handle_command(now, cmd)
        {
            self.observe(Observation::Violation {
                at: self.now,
                what: e.to_string(),
            });
        }
    }

    /// Runs to the end and returns the report. A relocation still in flight at the end may
    /// land, and answers still owed may come, within 30 s more (`SETTLE`): the run's
    /// horizon is not a lost service.
    #[must_use]
    pub fn run(self) -> (Report, Vec<TraceEntry>) {
        let (report, trace, _) = self.run_sampled();
        (report, trace)
    }

    /// [`Sim::run`], with the servers' load over time (empty without
    /// [`SimConfig::sample_load`]).
    #[must_use]
    pub fn run_sampled(mut self) -> (Report, Vec<TraceEntry>, Vec<LoadSample>) {
        if let Some(lookahead) = self.split_lookahead() {
            return split::run(self, lookahead);
        }
        let mut end = self.end;
        let mut graced = false;
        let mut storm = Storm::new(&self.scenario);
        while let Some((at, ev)) = self.queue.pop() {
            if let Some(what) = storm.count(at, &ev) {
                self.observe(Observation::Violation { at, what });
                break;
            }
            if at > end {
                if end == self.end && self.unsettled() {
                    end = self.end + SETTLE;
                }
                if at > end {
                    break;
                }
            }
            self.now = at;
            self.step(ev);
            if !graced && end > self.end && self.now >= self.end && !self.unsettled() {
                // Settled: the UEs get the answers they are still retransmitting for.
                graced = true;
                end = end.min(self.now + GRACE);
            }
        }
        self.now = self.now.max(self.end);
        let loads = std::mem::take(&mut self.loads);
        let (report, trace) = self.finish();
        (report, trace, loads)
    }

    /// How far a split run's sides may run ahead of each other (the shortest link between
    /// them), if this run splits (see [`SimConfig::split`]).
    fn split_lookahead(&self) -> Option<Duration> {
        let c = &self.cfg;
        let alone = !c.split
            || c.keep_trace
            || !c.outages.is_empty()
            || c.faults != Faults::default()
            || c.compute.is_some()
            || !self.skew.is_empty();
        let lookahead = self.net.cross_latency();
        (!alone && lookahead > Duration::ZERO).then_some(lookahead)
    }

    /// A trace entry, made only when the trace is kept.
    fn note(&mut self, entry: impl FnOnce(Instant) -> TraceEntry) {
        if self.cfg.keep_trace {
            self.trace.push(entry(self.now));
        }
    }

    /// Each server's live instances and shadows, once per simulated second.
    fn sample_load(&mut self) {
        let t_s = self.now.as_nanos() / 1_000_000_000;
        if !self.cfg.sample_load || self.loads.last().is_some_and(|l| l.t_s >= t_s) {
            return;
        }
        let mut live = Vec::new();
        let mut shadows = Vec::new();
        for id in &self.ids {
            if let (NodeId::Server(_), Some(e)) = (id, self.nodes.get(id).and_then(Node::as_server))
            {
                live.push(u32::try_from(e.live_services().count()).unwrap_or(u32::MAX));
                shadows.push(u32::try_from(e.shadow_services().count()).unwrap_or(u32::MAX));
            }
        }
        self.loads.push(LoadSample { t_s, live, shadows });
    }

    /// Whether a deployed service has no single live instance (a relocation in flight),
    /// or a UE still waits for answers: "never answered" means never, not "not by the
    /// horizon" (a server that was cut off works off its backlog after the end).
    fn unsettled(&self) -> bool {
        self.in_flight() || self.waiting()
    }

    /// Whether the recorder sees a relocation in flight.
    fn in_flight(&self) -> bool {
        self.recorder.relocating()
            || self
                .scenario
                .ues
                .iter()
                .any(|u| self.recorder.checker().in_flight(ServiceId(u.id)))
    }

    /// Whether a UE of this run (or side) waits for answers.
    fn waiting(&self) -> bool {
        self.nodes
            .values()
            .filter_map(Node::as_ue)
            .any(|u| u.unanswered() > 0)
    }

    fn step(&mut self, ev: Ev) {
        if let Some(to) = ev.target()
            && let Some(&until) = self.stopped.get(&to)
        {
            if self.now < until {
                // A stopped node: what reaches it waits, in order, until it runs again.
                if let Ev::Wake(id) = ev {
                    if self.wake_at.get(&id) == Some(&self.now) {
                        self.wake_at.insert(id, until);
                        self.push(until, Ev::Wake(id));
                    }
                } else {
                    self.push(until, ev);
                }
                return;
            }
            self.stopped.remove(&to);
        }
        match ev {
            Ev::Deliver { from, to, frame } => match codec::decode_exact(&frame) {
                Ok(msg) => {
                    let traffic = msg.is_service_traffic()
                        || matches!(
                            msg,
                            Message::LoadReport(_)
                                | Message::Heartbeat(_)
                                | Message::HeartbeatAck(_)
                        );
                    if !traffic || self.cfg.trace_traffic {
                        self.note(|at| TraceEntry::Msg {
                            at,
                            from,
                            to,
                            code: msg.type_code(),
                            name: msg.name(),
                            bytes: frame.len(),
                        });
                    }
                    self.deliver_now(from, to, msg);
                }
                Err(e) => self.observe(Observation::Violation {
                    at: self.now,
                    what: format!("frame from {from} to {to} does not decode: {e}"),
                }),
            },
            Ev::Wake(id) => {
                if self.wake_at.get(&id) != Some(&self.now) {
                    return; // Superseded by an earlier or later wake.
                }
                self.wake_at.remove(&id);
                let now = self.local(id);
                if let Some(r) = self.nodes.get_mut(&id) {
                    r.handle_timeout(now);
                }
                self.flush(id);
            }
            Ev::Measure(g) => self.measure(g),
            Ev::Command(to, cmd) => {
                self.command(to, *cmd);
                self.flush(to);
            }
            Ev::Outage(i) => self.outage(i),
            Ev::JobDone(id, key) => self.job_done(id, key),
            Ev::Sample => {
                self.sample_load();
                self.push_next(Ev::Sample);
            }
        }
    }

    /// Lends `id`'s new jobs out: each runs now and comes back `compute` per input later.
    fn take_jobs(&mut self, id: NodeId) {
        let Some(per_input) = self.cfg.compute else {
            return;
        };
        while let Some(mut job) = self
            .nodes
            .get_mut(&id)
            .and_then(Node::as_server_mut)
            .and_then(EdgeServer::poll_job)
        {
            job.run();
            let key = self.next_job;
            self.next_job += 1;
            let n = u32::try_from(job.len()).unwrap_or(u32::MAX);
            self.push(self.now + per_input * n, Ev::JobDone(id, key));
            self.jobs.insert(key, (id, job));
        }
    }

    fn job_done(&mut self, id: NodeId, key: u64) {
        let Some((_, job)) = self.jobs.remove(&key) else {
            return; // Its server crashed meanwhile.
        };
        let now = self.local(id);
        if let Some(s) = self.nodes.get_mut(&id).and_then(Node::as_server_mut) {
            s.handle_job_done(now, job);
        }
        self.flush(id);
    }

    /// Hands back every job still out, in order, so that the final checks see settled
    /// instances.
    fn finish_jobs(&mut self) {
        while let Some((key, id)) = self.jobs.first_key_value().map(|(k, (id, _))| (*k, *id)) {
            self.job_done(id, key);
        }
    }

    fn measure(&mut self, group: u32) {
        if group == 0 {
            if self.part.is_none() {
                self.sample_load();
            }
            if let Some(p) = &self.cfg.progress {
                p.store(self.now.as_nanos(), std::sync::atomic::Ordering::Relaxed);
            }
        }
        let t = self.now.as_secs_f64();
        let ues: Vec<(UeId, Pos)> = self
            .scenario
            .ues
            .iter()
            .skip(group as usize)
            .step_by(self.groups() as usize)
            .map(|u| (UeId(u.id), u.position(t)))
            .collect();
        for (ue, pos) in ues {
            let serving = self
                .nodes
                .get(&NodeId::Ue(ue))
                .and_then(Node::as_ue)
                .and_then(UeClient::serving);
            let rsrp = self.rsrp(ue, pos, serving);
            let Some(cell) = serving else { continue };
            let Some(report) = edgeshift_ran::measurement_report(ue, cell, &rsrp, pos) else {
                continue;
            };
            if self.nodes.contains_key(&NodeId::Cell(cell)) {
                self.command(NodeId::Cell(cell), Command::Measurement(report));
            }
            self.flush(NodeId::Cell(cell));
        }
        self.push_next(Ev::Measure(group));
    }

    /// Schedules `ev` one measurement period on, within the run.
    fn push_next(&mut self, ev: Ev) {
        let period = Duration::from_millis(self.scenario.radio.meas_period_ms.max(1));
        if self.now + period <= self.end {
            self.push(self.now + period, ev);
        }
    }

    fn flush(&mut self, id: NodeId) {
        let Some(r) = self.nodes.get_mut(&id) else {
            return;
        };
        let (mut tx, mut ev) = std::mem::take(&mut self.scratch);
        tx.extend(std::iter::from_fn(|| r.poll_transmit()));
        ev.extend(std::iter::from_fn(|| r.poll_event()));
        let timeout = r.poll_timeout();
        for e in ev.drain(..) {
            match e {
                NodeEvent::Ran(e) => self.on_ran(id, e),
                NodeEvent::Edge(e) => {
                    if let NodeId::Server(server) = id {
                        self.on_edge(server, e);
                    }
                }
                NodeEvent::Control(e) => {
                    if let Some(o) = Observation::control(self.now, &e) {
                        self.observe(o);
                    }
                    self.note(|at| TraceEntry::Event {
                        at,
                        node: id,
                        what: format!("{e:?}"),
                    });
                }
                NodeEvent::Ue(e) => {
                    if let NodeId::Ue(ue) = id {
                        self.on_ue(ue, e);
                    }
                }
            }
        }
        for t in tx.drain(..) {
            self.send(id, t);
        }
        self.scratch = (tx, ev);
        if let Some(t) = timeout {
            // The node asked on its own clock.
            let skew = self.skew.get(&id).copied().unwrap_or(0);
            let t = Instant(t.0.saturating_sub(skew)).max(self.now);
            if self.wake_at.get(&id) != Some(&t) {
                self.wake_at.insert(id, t);
                self.push(t, Ev::Wake(id));
            }
        } else {
            self.wake_at.remove(&id);
        }
        self.take_jobs(id);
    }

    fn send(&mut self, from: NodeId, t: Transmit) {
        let Some(retransmitted) = self.link_fate(from, t.to) else {
            return;
        };
        if !self.knows(t.to) {
            self.observe(Observation::Violation {
                at: self.now,
                what: format!("{from} sent {} to unknown node {}", t.msg.name(), t.to),
            });
            return;
        }
        let frame = match codec::encode(&t.msg) {
            Ok(f) => f,
            Err(e) => {
                self.observe(Observation::Violation {
                    at: self.now,
                    what: format!("{from} sent an unencodable {}: {e}", t.msg.name()),
                });
                return;
            }
        };
        // What the frame stands for on the link (more than itself for a modelled state).
        let wire = frame.len() as u64 + self.model.map_or(0, |m| m.wire_extra(&t.msg));
        if t.msg.is_state_transfer() {
            self.observe(Observation::StateSent {
                at: self.now,
                bytes: wire,
            });
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
        let mut at = self.net.schedule(
            self.now,
            (from, t.to, t.msg.lane()),
            usize::try_from(wire).unwrap_or(usize::MAX),
            u,
            retransmitted,
        );
        let f = self.cfg.faults;
        if radio && t.msg.is_service_traffic() {
            // The radio reorders and duplicates what the link model keeps in order.
            if f.radio_reorder_ms > 0.0 {
                let extra = self.fault_rng.random_range(0.0..f.radio_reorder_ms);
                at += Duration::from_secs_f64(extra / 1e3);
            }
            if f.radio_dup > 0.0 && self.fault_rng.random::<f64>() < f.radio_dup {
                let later = self.fault_rng.random_range(0.0..5.0);
                self.push(
                    at + Duration::from_secs_f64(later / 1e3),
                    Ev::Deliver {
                        from,
                        to: t.to,
                        frame: frame.clone(),
                    },
                );
            }
        }
        self.push(
            at,
            Ev::Deliver {
                from,
                to: t.to,
                frame,
            },
        );
    }

    /// A fault's node name as the simulator calls it (`ran<N>` is cell N's station).
    fn node_of(&self, name: &str) -> Result<NodeId, SimError> {
        let id = |p: &str| name.strip_prefix(p).and_then(|n| n.parse::<u32>().ok());
        let node = if name == "control" {
            Some(NodeId::CONTROL)
        } else if let Some(n) = id("control_r") {
            Some(NodeId::Control(RegionId(n)))
        } else if let Some(n) = id("me") {
            Some(NodeId::Server(ServerId(n)))
        } else if let Some(n) = id("cell") {
            Some(NodeId::Cell(CellId(n)))
        } else {
            id("ue").map(|n| NodeId::Ue(UeId(n)))
        };
        node.filter(|n| self.nodes.contains_key(n))
            .ok_or_else(|| SimError::Fault(format!("names {name:?}, which is not in the scenario")))
    }

    /// Checks the outages, names their nodes as [`NodeId`] prints them (`ran<N>` is
    /// `cell<N>`) and schedules their starts.
    fn plan_outages(&mut self) -> Result<(), SimError> {
        let norm = |s: &mut String| {
            if let Some(n) = s.strip_prefix("ran") {
                *s = format!("cell{n}");
            }
        };
        for f in &mut self.cfg.outages {
            norm(&mut f.node);
            if let FaultKind::Partition { peer, .. } | FaultKind::Loss { peer, .. } = &mut f.kind {
                norm(peer);
            }
        }
        for (i, f) in self.cfg.outages.clone().iter().enumerate() {
            for n in f.nodes() {
                let node = self.node_of(n)?;
                let crash = matches!(
                    f.kind,
                    FaultKind::Kill | FaultKind::Restart | FaultKind::Stop { .. }
                );
                if crash && matches!(node, NodeId::Ue(_)) {
                    return Err(SimError::Fault(format!(
                        "{f}: UEs are not killed, restarted or stopped (their end of run is the record)"
                    )));
                }
            }
            if let FaultKind::Partition { peer, dur } | FaultKind::Loss { peer, dur, .. } = &f.kind
            {
                let p = match f.kind {
                    FaultKind::Loss { p, .. } => p,
                    _ => 1.0,
                };
                self.cuts.push(Cut {
                    a: self.node_of(&f.node)?,
                    b: self.node_of(peer)?,
                    from: Instant::ZERO + f.at,
                    until: Instant::ZERO + f.at + *dur,
                    p,
                });
            }
            self.push(Instant::ZERO + f.at, Ev::Outage(i));
        }
        Ok(())
    }

    /// Outage `i` starts: a crash, a restart or a stop (links are cut in [`Sim::cut`]).
    fn outage(&mut self, i: usize) {
        let Some(f) = self.cfg.outages.get(i).cloned() else {
            return;
        };
        let Ok(node) = self.node_of(&f.node) else {
            return;
        };
        self.note(|at| TraceEntry::Event {
            at,
            node,
            what: format!("Fault {{ {f} }}"),
        });
        match f.kind {
            FaultKind::Kill => {
                if self.down.insert(node) {
                    self.wake_at.remove(&node);
                    self.jobs.retain(|_, (n, _)| *n != node);
                    self.observe(Observation::Crashed { at: self.now, node });
                }
            }
            FaultKind::Restart => {
                self.jobs.retain(|_, (n, _)| *n != node);
                if !self.down.remove(&node) {
                    // A restart without a kill is a crash and a start at once.
                    self.observe(Observation::Crashed { at: self.now, node });
                }
                let now = self.local(node);
                let fresh: Option<Node> = match node {
                    NodeId::Server(id) => {
                        let inc = self.incarnations.entry(id).or_insert(1);
                        *inc += 1;
                        let mut cfg = self.scenario.edge_config(id, *inc);
                        cfg.offload = self.cfg.compute.is_some();
                        WasmFactory::new(self.scenario.limits())
                            .ok()
                            .map(|f| Node::from(EdgeServer::new(cfg, Box::new(f), now)))
                    }
                    NodeId::Cell(c) => {
                        Some(Node::from(BaseStation::new(self.scenario.ran_config(c))))
                    }
                    NodeId::Control(region) => {
                        let cc = self.scenario.region_control_config(
                            region,
                            self.cfg.strategy,
                            self.cfg.sync,
                        );
                        // The control daemon writes its registry after every change
                        // (redb): it comes back with what it had when it died.
                        let saved = self
                            .nodes
                            .get(&node)
                            .and_then(Node::as_control)
                            .map(ControlNode::snapshot);
                        Some(match saved {
                            Some(snap) => ControlNode::restore(cc, snap, now).into(),
                            None => ControlNode::new(cc, now).into(),
                        })
                    }
                    NodeId::Ue(_) => None,
                };
                if let Some(n) = fresh {
                    self.nodes.insert(node, n);
                }
                self.flush(node);
            }
            FaultKind::Stop { dur } => {
                self.stopped.insert(node, self.now + dur);
            }
            FaultKind::Partition { .. } | FaultKind::Loss { .. } => {}
        }
    }

    /// Whether a message from `from` to `to` is lost to a partition or a lossy link now.
    /// What the link faults do to a message sent now from `from` to `to`: `None` lost,
    /// else the retransmission delay TCP adds ([`edgeshift_world::fault::tcp_delivery`]).
    fn link_fate(&mut self, from: NodeId, to: NodeId) -> Option<Duration> {
        let pair = |c: &Cut| (c.a == from && c.b == to) || (c.a == to && c.b == from);
        if !self.cuts.iter().any(|c| pair(c) && self.now < c.until) {
            return Some(Duration::ZERO);
        }
        let cuts: Vec<&Cut> = self.cuts.iter().filter(|c| pair(c)).collect();
        let p_at = |t: Duration| {
            let at = Instant::ZERO + t;
            edgeshift_world::fault::combined_loss(
                cuts.iter()
                    .filter(|c| at >= c.from && at < c.until)
                    .map(|c| c.p),
            )
        };
        let rng = &mut self.fault_rng;
        edgeshift_world::fault::tcp_delivery(
            p_at,
            Duration::from_nanos(self.now.as_nanos()),
            || rng.random::<f64>(),
        )
    }

    fn on_ran(&mut self, id: NodeId, e: RanEvent) {
        if let Some(o) = Observation::ran(self.now, id, &e) {
            self.observe(o);
        }
        if !matches!(e, RanEvent::TrafficDropped { .. }) {
            self.note(|at| TraceEntry::Event {
                at,
                node: id,
                what: format!("{e:?}"),
            });
        }
    }

    fn on_ue(&mut self, ue: UeId, e: UeEvent) {
        let service = ServiceId(ue.0);
        let (detached, attached) = match &e {
            UeEvent::Detached { target } => (Some(*target), None),
            UeEvent::Attached { cell } => (None, Some(*cell)),
            _ => (None, None),
        };
        if let Some(o) = Observation::ue_owned(self.now, ue, service, e) {
            self.observe(o);
        }
        if let Some(target) = detached {
            let source = self
                .nodes
                .get(&NodeId::Ue(ue))
                .and_then(Node::as_ue)
                .and_then(|u| u.gaps().last().map(|g| g.from));
            let node = NodeId::Ue(ue);
            match (self.scenario.handover_join(&mut self.rng), source) {
                (Join::Reestablish(after), Some(cell)) => {
                    self.push(
                        self.now + after,
                        Ev::Command(node, Box::new(Command::Reestablish(cell))),
                    );
                }
                (Join::Target(after), _) | (Join::Reestablish(after), None) => {
                    self.push(
                        self.now + after,
                        Ev::Command(node, Box::new(Command::Attach(target))),
                    );
                }
            }
            self.note(|at| TraceEntry::Event {
                at,
                node: ue.into(),
                what: format!("Detached {{ target: {target} }}"),
            });
        }
        if let Some(cell) = attached {
            self.note(|at| TraceEntry::Event {
                at,
                node: ue.into(),
                what: format!("Attached {{ cell: {cell} }}"),
            });
        }
    }

    fn on_edge(&mut self, server: ServerId, e: EdgeEvent) {
        let quiet = matches!(e, EdgeEvent::Applied { .. } | EdgeEvent::Answered { .. });
        if !quiet {
            self.note(|at| TraceEntry::Event {
                at,
                node: server.into(),
                what: format!("{e:?}"),
            });
        }
        self.observe(Observation::edge(self.now, server, e));
    }

    /// Each UE's end of run (its live instance read off the server the events say serves
    /// it, its never-moved twin), the control node's counters, then the report.
    fn finish(mut self) -> (Report, Vec<TraceEntry>) {
        self.finish_jobs();
        let mut controls = self.nodes.values().filter_map(Node::as_control);
        if let Some(first) = controls.next() {
            let mut stats = first.stats();
            for c in controls {
                stats += c.stats();
            }
            self.observe(Observation::ControlStats {
                at: self.now,
                stats,
            });
        }
        let ues: Vec<UeId> = self.scenario.ues.iter().map(|u| UeId(u.id)).collect();
        for ue in ues {
            let service = ServiceId(ue.0);
            let Some(u) = self.nodes.get(&NodeId::Ue(ue)).and_then(Node::as_ue) else {
                continue;
            };
            let (unanswered, gaps) = (u.unanswered() as u64, u.gaps().to_vec());
            let longest_wait_ms = u.longest_wait().as_secs_f64() * 1e3;
            let live = self
                .recorder
                .serving(service)
                .and_then(|s| self.nodes.get(&NodeId::Server(s)))
                .and_then(Node::as_server)
                .and_then(|e| e.live_view(service))
                .map(|v| LiveState {
                    last_seq: v.last_seq,
                    checksum: v.checksum,
                });
            let twin = self.twin_checksum(ue, service);
            self.observe(Observation::UeFinal(UeFinal {
                at: self.now,
                ue,
                service,
                unanswered,
                gaps,
                live,
                twin,
                longest_wait_ms,
            }));
        }
        (self.recorder.finish(self.now), self.trace)
    }
}
