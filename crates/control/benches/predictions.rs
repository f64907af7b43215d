//! How many handover predictions (1002) a control node handles per second, and how long one
//! message takes, as the registry grows.
//!
//! `cargo bench -p edgeshift-control --bench predictions [-- shadow|shadow-jit|cold ...]`
//!
//! A 40 × 25 grid of 1,000 cells, five neighbouring cells per ME server (200 servers). Each
//! UE has one service and sends one 1002 every 2 s of virtual time (staggered), predicting
//! the cell ahead of it and two side cells; 5 % of them withdraw instead. In 15 % of the
//! cycles the UE hands over (1005, 40 ms ahead; 85 % to the predicted cell). The bench plays
//! the ME servers: 3032 300 ms after each 1003, 3033 100 ms after each 1006, and one load
//! report per server every second. The node is driven through the [`Role`] API alone, with
//! `handle_timeout` whenever `poll_timeout` comes due; each message and each timeout is timed
//! with its draining of `poll_transmit` / `poll_event` / `poll_timeout`. One warm-up cycle,
//! then at least two cycles and 200,000 predictions are measured (bounded by a wall-clock
//! budget per size, `EDGESHIFT_BENCH_BUDGET_S`, default 20 s).

use std::collections::BTreeMap;
use std::time::Duration;

use edgeshift_control::{ControlConfig, ControlNode, Strategy};
use edgeshift_proto::{
    Candidate, CellId, CodeRef, Deploy, HandoverExecution, HandoverPrediction, Instant, LoadReport,
    Message, NodeId, RelocateAction, RelocationDone, Role, ServerId, ServiceId, ServiceSpec,
    ShadowReady, Timing, Transmit, UeId,
};

const COLS: u32 = 40;
const ROWS: u32 = 25;
const CELLS_PER_SERVER: u32 = 5;
const PERIOD: Duration = Duration::from_secs(2);
const SIZES: [u32; 3] = [1_000, 10_000, 100_000];
const MIN_PREDICTIONS: u64 = 200_000;

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn server_of(cell: u32) -> u32 {
    let (row, col) = (cell / COLS, cell % COLS);
    row * (COLS / CELLS_PER_SERVER) + col / CELLS_PER_SERVER
}

/// The cell one step from `cell` in direction `dir` (0 east, 1 north, 2 west, 3 south),
/// turning back at the edge of the grid.
fn step(cell: u32, dir: u32) -> u32 {
    let (row, col) = (cell / COLS, cell % COLS);
    let (r, c) = match dir % 4 {
        0 if col + 1 < COLS => (row, col + 1),
        0 => (row, col - 1),
        1 if row + 1 < ROWS => (row + 1, col),
        1 => (row - 1, col),
        2 if col > 0 => (row, col - 1),
        2 => (row, col + 1),
        _ if row > 0 => (row - 1, col),
        _ => (row + 1, col),
    };
    r * COLS + c
}

#[derive(Clone, Copy)]
struct Ue {
    cell: u32,
    dir: u32,
}

#[derive(Clone)]
enum Input {
    /// The UE's next 1002 (and maybe its 1005), rescheduled every period.
    Cycle(u32),
    Execution(u32, u32, Instant),
    /// Boxed: messages are large next to the other inputs.
    Message(NodeId, Box<Message>),
    /// A server's periodic load report.
    Load(u32),
}

#[derive(Default)]
struct Samples {
    predictions: u64,
    executions: u64,
    others: u64,
    timeouts: u64,
    node_time: Duration,
    prediction_time: Duration,
    /// Every message and every timeout.
    per_event_ns: Vec<u64>,
    per_prediction_ns: Vec<u64>,
}

struct Bench {
    node: ControlNode,
    ues: Vec<Ue>,
    hosts: Vec<u32>,
    queue: BTreeMap<(Instant, u64), Input>,
    seq: u64,
    rng: Rng,
    out: Vec<Transmit>,
    events: u64,
}

impl Bench {
    fn new(services: u32, strategy: Strategy) -> Self {
        let topology = (0..COLS * ROWS)
            .map(|c| (CellId(c), ServerId(server_of(c))))
            .collect();
        let cfg = ControlConfig::new(strategy, topology);
        let mut b = Self {
            node: ControlNode::new(cfg, Instant::ZERO),
            ues: Vec::new(),
            hosts: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            rng: Rng(0x5eed_0000 + u64::from(services)),
            out: Vec::new(),
            events: 0,
        };
        let stagger = PERIOD.as_nanos() as u64 / u64::from(services);
        for u in 0..services {
            let cell = b.rng.below(COLS * ROWS);
            let dir = b.rng.below(4);
            b.ues.push(Ue { cell, dir });
            b.hosts.push(server_of(cell));
            let spec = ServiceSpec {
                code: CodeRef::Hash(1),
                config: Vec::new(),
                latency_budget_ms: 10,
            };
            let deploy = Deploy {
                service: ServiceId(u),
                ue: UeId(u),
                cell: CellId(cell),
                spec,
            };
            b.node
                .handle_message(Instant::ZERO, NodeId::CONTROL, deploy.into());
            b.at(Instant(1 + u64::from(u) * stagger), Input::Cycle(u));
        }
        for s in 0..COLS * ROWS / CELLS_PER_SERVER {
            let offset = Duration::from_millis(u64::from(s) * 5);
            b.at(Instant::ZERO + offset, Input::Load(s));
        }
        while b.node.poll_transmit().is_some() {}
        while b.node.poll_event().is_some() {}
        b
    }

    fn at(&mut self, t: Instant, input: Input) {
        self.seq += 1;
        self.queue.insert((t, self.seq), input);
    }

    fn predict(&mut self, now: Instant, u: u32) -> Option<Message> {
        let ue = self.ues[u as usize];
        let ahead = step(ue.cell, ue.dir);
        let withdraw = self.rng.chance(0.05);
        if self.rng.chance(0.15) {
            let target = if self.rng.chance(0.85) {
                ahead
            } else {
                step(ue.cell, ue.dir + 1 + self.rng.below(3))
            };
            let when = now + Duration::from_millis(1400);
            self.at(
                when,
                Input::Execution(u, target, when + Duration::from_millis(40)),
            );
        }
        self.at(now + PERIOD, Input::Cycle(u));
        let candidates = if withdraw {
            Vec::new()
        } else {
            vec![
                Candidate {
                    cell: CellId(ahead),
                    likelihood: 0.6,
                },
                Candidate {
                    cell: CellId(step(ue.cell, ue.dir + 1)),
                    likelihood: 0.25,
                },
                Candidate {
                    cell: CellId(step(ue.cell, ue.dir + 3)),
                    likelihood: 0.1,
                },
            ]
        };
        let timing = (!withdraw).then(|| {
            Timing::at_within(
                now + Duration::from_millis(1500),
                Duration::from_millis(300),
            )
        });
        Some(
            HandoverPrediction {
                ue: UeId(u),
                source: CellId(ue.cell),
                candidates,
                timing,
            }
            .into(),
        )
    }

    fn load_report(&mut self, now: Instant, s: u32) -> Message {
        self.at(now + Duration::from_secs(1), Input::Load(s));
        let services: Vec<(ServiceId, u64)> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| **h == s)
            .map(|(svc, _)| {
                (
                    ServiceId(svc as u32),
                    1_000_000 + (svc as u64 % 64) * 65_536,
                )
            })
            .collect();
        LoadReport {
            server: ServerId(s),
            load: 0.3,
            hosted: u32::try_from(services.len()).unwrap_or(u32::MAX),
            services,
        }
        .into()
    }

    /// Plays the ME servers: answers 1003 with 3032 and 1006 with 3033.
    fn react(&mut self, now: Instant) {
        let out = std::mem::take(&mut self.out);
        for t in &out {
            match (&t.msg, t.to) {
                (Message::PrepareShadow(p), NodeId::Server(to)) if to != p.source => {
                    let ready = ShadowReady {
                        service: p.service,
                        server: to,
                        seq: 1,
                        adoption: false,
                    };
                    self.at(
                        now + Duration::from_millis(300),
                        Input::Message(to.into(), Box::new(ready.into())),
                    );
                }
                (Message::Relocate(r), NodeId::Server(to)) => {
                    if let RelocateAction::Relocate {
                        source,
                        target,
                        epoch,
                        ..
                    } = r.action
                        && to == target
                    {
                        self.hosts[r.service.0 as usize] = target.0;
                        let done = RelocationDone {
                            service: r.service,
                            from: source,
                            to: target,
                            ok: true,
                            epoch,
                        };
                        self.at(
                            now + Duration::from_millis(100),
                            Input::Message(to.into(), Box::new(done.into())),
                        );
                    }
                }
                _ => {}
            }
        }
        self.out = out;
        self.out.clear();
    }

    #[allow(clippy::disallowed_methods)] // the bench measures wall time; roles never do
    fn timed(&mut self, f: impl FnOnce(&mut ControlNode)) -> Duration {
        let start = std::time::Instant::now();
        f(&mut self.node);
        while let Some(t) = self.node.poll_transmit() {
            self.out.push(t);
        }
        while self.node.poll_event().is_some() {
            self.events += 1;
        }
        std::hint::black_box(self.node.poll_timeout());
        start.elapsed()
    }

    /// Runs until virtual time `end`, sampling into `s`. Returns false when the wall-clock
    /// budget ran out first.
    fn run(&mut self, end: Instant, s: &mut Samples, budget: Duration) -> bool {
        let mut spent = Duration::ZERO;
        loop {
            if spent > budget {
                return false;
            }
            let next_input = self.queue.first_key_value().map(|(k, _)| k.0);
            let next_timer = self.node.poll_timeout();
            if let Some(t) = next_timer
                && next_input.is_none_or(|i| t <= i)
                && t <= end
            {
                let dt = self.timed(|n| n.handle_timeout(t));
                spent += dt;
                s.timeouts += 1;
                s.node_time += dt;
                s.per_event_ns.push(dt.as_nanos() as u64);
                self.react(t);
                continue;
            }
            let Some(((now, _), input)) = self.queue.pop_first() else {
                return true;
            };
            if now > end {
                self.queue.insert((now, 0), input);
                return true;
            }
            let (from, msg, kind) = match input {
                Input::Cycle(u) => match self.predict(now, u) {
                    Some(m) => (NodeId::Cell(CellId(self.ues[u as usize].cell)), m, 0),
                    None => continue,
                },
                Input::Execution(u, target, at) => {
                    let ue = &mut self.ues[u as usize];
                    let source = ue.cell;
                    ue.cell = target;
                    ue.dir = if self.rng.chance(0.7) {
                        ue.dir
                    } else {
                        self.rng.below(4)
                    };
                    let m = HandoverExecution {
                        ue: UeId(u),
                        source: CellId(source),
                        target: CellId(target),
                        timing: Timing::at(at),
                    };
                    (NodeId::Cell(CellId(source)), m.into(), 1)
                }
                Input::Message(from, m) => (from, *m, 2),
                Input::Load(server) => {
                    let m = self.load_report(now, server);
                    (NodeId::Server(ServerId(server)), m, 2)
                }
            };
            let dt = self.timed(|n| n.handle_message(now, from, msg));
            spent += dt;
            let ns = dt.as_nanos() as u64;
            s.per_event_ns.push(ns);
            s.node_time += dt;
            match kind {
                0 => {
                    s.predictions += 1;
                    s.prediction_time += dt;
                    s.per_prediction_ns.push(ns);
                }
                1 => s.executions += 1,
                _ => s.others += 1,
            }
            self.react(now);
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e3
}

fn main() {
    let strategy = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<Strategy>().ok())
        .unwrap_or(Strategy::ShadowJit { threshold: 0.3 });
    let budget = Duration::from_secs(
        std::env::var("EDGESHIFT_BENCH_BUDGET_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    println!(
        "control node, {} cells, {} servers, strategy {strategy}, one 1002 per UE every {} s",
        COLS * ROWS,
        COLS * ROWS / CELLS_PER_SERVER,
        PERIOD.as_secs()
    );
    println!(
        "1002/s: per second of node time in 1002s; under load: per second of all node time \
         (1002s, 1005s, 3032s, 3033s, load reports, timeouts). Latencies per message or \
         timeout, drained, in µs."
    );
    println!(
        "{:>8} {:>7} {:>6} {:>6} {:>8} {:>9} {:>11} {:>7} {:>7} {:>8} {:>9} {:>9}",
        "services",
        "1002",
        "1005",
        "other",
        "timeouts",
        "1002/s",
        "under load",
        "p50",
        "p99",
        "max",
        "1002 p99",
        "1002 max"
    );
    for services in SIZES {
        let mut b = Bench::new(services, strategy);
        let warm = Instant::ZERO + PERIOD;
        let mut s = Samples::default();
        let warmed = b.run(warm, &mut s, budget);
        let finished = warmed && {
            // Measure the warm registry only.
            s = Samples::default();
            let cycles = (MIN_PREDICTIONS / u64::from(services)).max(2);
            b.run(warm + PERIOD * cycles as u32, &mut s, budget)
        };
        s.per_event_ns.sort_unstable();
        s.per_prediction_ns.sort_unstable();
        let rate = |t: Duration| s.predictions as f64 / t.as_secs_f64().max(1e-9);
        println!(
            "{:>8} {:>7} {:>6} {:>6} {:>8} {:>9.0} {:>11.0} {:>7.2} {:>7.2} {:>8.1} {:>9.2} {:>9.1}{}",
            services,
            s.predictions,
            s.executions,
            s.others,
            s.timeouts,
            rate(s.prediction_time),
            rate(s.node_time),
            percentile(&s.per_event_ns, 0.5),
            percentile(&s.per_event_ns, 0.99),
            percentile(&s.per_event_ns, 1.0),
            percentile(&s.per_prediction_ns, 0.99),
            percentile(&s.per_prediction_ns, 1.0),
            if finished {
                String::new()
            } else if warmed {
                "  (wall-clock budget hit while measuring)".to_owned()
            } else {
                "  (wall-clock budget hit during the warm-up cycle: these are its numbers)"
                    .to_owned()
            }
        );
        std::hint::black_box((b.node.stats(), b.events));
    }
}
