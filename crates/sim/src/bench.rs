//! `edgeshift bench relocation`: one service moved between two ME servers by every
//! strategy, in one run, on the same emulated link.
//!
//! The clock is a hybrid: every role call is timed with the real clock (snapshots,
//! hashing, encoding, restores are real work on real WebAssembly memory) and the node is
//! busy for that long; every message then crosses an emulated link (serialisation at the
//! link rate, plus latency). The result is what a deployment with that link would see,
//! measured on this machine's CPU.

use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use edgeshift_edge::{EdgeConfig, EdgeEvent, EdgeServer};
use edgeshift_proto::{
    Bytes, CellId, InputRecord, Instant, Instantiate, Lane, Message, NodeId, PrepareShadow,
    Relocate, RelocateAction, RelocationMode, Role, ServerId, ServiceId, ServiceInput, ServiceSpec,
    SyncMode, Timing, UeId, codec,
};
use edgeshift_runtime::{Limits, WasmFactory, samples};
use serde::Serialize;

use crate::SimError;

/// The emulated link between the two servers.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BenchLink {
    /// Bandwidth (Gbit/s); 0 means unlimited.
    pub gbit_s: f64,
    /// Round-trip time (ms).
    pub rtt_ms: f64,
}

/// Where the target's linear memory comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetMemory {
    /// Fresh from the kernel: a page fault on the first write to each 4 KiB page.
    Fresh,
    /// A pooled memory kept resident: the target server pre-warmed one slot as large as
    /// the memory limit at start (as `warm_mib` in a deployment's `[[edge]]` does), not
    /// sized for this state, as a daemon that expects incoming state would.
    Warm,
}

impl TargetMemory {
    /// Both, in the order the benchmark measures them.
    pub const ALL: [Self; 2] = [Self::Fresh, Self::Warm];

    /// `fresh` or `warm`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Warm => "warm",
        }
    }
}

/// One measured relocation.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// State size (MiB, as configured).
    pub size_mib: u32,
    /// `cold`, `precopy`, `shadow-replay`, `shadow-delta` or `shadow-optimistic` (replay,
    /// with the target live tentatively from its own 1006: `docs/architecture.md`).
    pub strategy: String,
    /// Where the target's memory came from.
    pub target_memory: TargetMemory,
    /// 1006 received at the source → target live.
    pub critical_path_ms: f64,
    /// Source frozen → target live: the time the service cannot answer.
    pub downtime_ms: f64,
    /// Bytes sent between the 1006 and activation.
    pub critical_bytes: u64,
    /// State bytes sent in all (shadow preparation included).
    pub total_bytes: u64,
    /// Whether the target's state equals the source's at the freeze.
    pub checksum_ok: bool,
    /// Actual state size in bytes.
    pub state_bytes: u64,
    /// State bytes per second of critical path, in GB/s (10⁹ bytes): how fast the state
    /// moves as the user sees it (0 if the critical path took no time).
    pub throughput_gbyte_s: f64,
    /// Most 1004 bytes made but not yet taken in by the target at any one time: what the
    /// transfer holds beside the two instances (a streamed one, about the window).
    pub peak_in_flight_bytes: u64,
}

/// The whole benchmark record.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The link.
    pub link: BenchLink,
    /// Each size × strategy.
    pub results: Vec<BenchResult>,
}

/// Strategies the benchmark compares.
pub const BENCH_STRATEGIES: [&str; 5] = [
    "cold",
    "precopy",
    "shadow-replay",
    "shadow-delta",
    "shadow-optimistic",
];

struct Ev {
    at: Instant,
    seq: u64,
    from: NodeId,
    to: NodeId,
    frame: Vec<u8>,
    /// Its length if it is a 1004 (a state transfer): counted against the stream window
    /// until the target has taken it in.
    streamed: u64,
}
impl PartialEq for Ev {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ev {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Two servers, a link and the hybrid clock.
struct Bench {
    servers: BTreeMap<ServerId, EdgeServer>,
    busy: BTreeMap<ServerId, Instant>,
    heap: BinaryHeap<Ev>,
    seq: u64,
    link: BenchLink,
    free_at: BTreeMap<(NodeId, NodeId, Lane), Instant>,
    now: Instant,
    /// Events with the start and end of the call that produced them.
    events: Vec<(Instant, Instant, ServerId, EdgeEvent)>,
    sent: Vec<(Instant, usize, bool)>,
    /// State bytes a server has made for another that the other has not yet taken in.
    in_flight: BTreeMap<(ServerId, NodeId), u64>,
    /// The most `in_flight` ever held between two servers.
    peak_in_flight: u64,
}

/// State bytes a streamed transfer keeps in flight, as the live daemon does
/// (`edgeshift-live`'s `STREAM_WINDOW`): the source reads the next chunks while the target
/// restores the first, and neither holds the whole state twice over. Room comes back when
/// the target has taken a chunk in (the live daemon's comes back when its socket takes
/// it, and TCP's own window then bounds what is on the wire): on a link whose
/// rate times one-way delay exceeds the window (10 Gbit/s with more than about 27 ms of
/// RTT) the window, not the link, sets a stream's pace, as TCP's window would with the default
/// socket buffers.
const STREAM_WINDOW: u64 = 16 << 20;

const SERVICE: ServiceId = ServiceId(1);
const SRC: ServerId = ServerId(1);
const DST: ServerId = ServerId(2);

impl Bench {
    fn new(link: BenchLink, memory: TargetMemory, optimistic: bool) -> Result<Self, SimError> {
        let mut servers = BTreeMap::new();
        for id in [SRC, DST] {
            let mut cfg = EdgeConfig::new(id);
            cfg.optimistic = optimistic;
            cfg.load_report_interval = Duration::from_secs(3600);
            let limits = Limits::default();
            let f = if id == DST && memory == TargetMemory::Warm {
                WasmFactory::warmed(limits, 8, limits.max_memory)
            } else {
                WasmFactory::new(limits)
            }
            .map_err(SimError::Runtime)?;
            servers.insert(id, EdgeServer::new(cfg, Box::new(f), Instant::ZERO));
        }
        Ok(Self {
            servers,
            busy: BTreeMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            link,
            free_at: BTreeMap::new(),
            now: Instant::ZERO,
            events: Vec::new(),
            sent: Vec::new(),
            in_flight: BTreeMap::new(),
            peak_in_flight: 0,
        })
    }

    /// Runs one role call on `id` at `at`, charging its real duration.
    fn call(&mut self, id: ServerId, at: Instant, f: impl FnOnce(&mut EdgeServer, Instant)) {
        let start = at.max(self.busy.get(&id).copied().unwrap_or(Instant::ZERO));
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        let wall = std::time::Instant::now();
        f(server, start);
        // Each message leaves when it is made and encoded. A transfer streamed out of a
        // frozen instance goes chunk by chunk while its window has room, and the target
        // restores the first while the source reads the next (two servers, two cores).
        let mut in_flight = std::mem::take(&mut self.in_flight);
        let mut out = Vec::new();
        while let Some(t) = server.poll_transmit_paced(|to| {
            in_flight.get(&(id, to.into())).copied().unwrap_or(0) < STREAM_WINDOW
        }) {
            let frame = codec::encode(&t.msg);
            let streamed = match (&t.msg, &frame) {
                (Message::ShadowTransfer(_), Ok(f)) => f.len() as u64,
                _ => 0,
            };
            let held = in_flight.entry((id, t.to)).or_default();
            *held += streamed;
            self.peak_in_flight = self.peak_in_flight.max(*held);
            out.push((
                start + wall.elapsed(),
                t.to,
                t.msg.lane(),
                t.msg.is_state_transfer(),
                frame,
                streamed,
            ));
        }
        self.in_flight = in_flight;
        let mut evs = Vec::new();
        while let Some(e) = server.poll_event() {
            evs.push(e);
        }
        let done = start + wall.elapsed();
        self.busy.insert(id, done);
        for e in evs {
            self.events.push((start, done, id, e));
        }
        for (made, to, lane, state, frame, streamed) in out {
            let Ok(frame) = frame else { continue };
            self.sent.push((made, frame.len(), state));
            if let NodeId::Server(s) = to {
                let at = self.schedule(made, id.into(), to, lane, frame.len());
                self.seq += 1;
                self.heap.push(Ev {
                    at,
                    seq: self.seq,
                    from: id.into(),
                    to: s.into(),
                    frame,
                    streamed,
                });
            }
        }
    }

    fn schedule(
        &mut self,
        now: Instant,
        a: NodeId,
        b: NodeId,
        lane: Lane,
        bytes: usize,
    ) -> Instant {
        let free = self.free_at.entry((a, b, lane)).or_insert(now);
        let latency = Duration::from_secs_f64(self.link.rtt_ms / 2e3);
        crate::link::fifo_arrival(free, now, bytes, self.link.gbit_s * 1e9, latency)
    }

    fn deliver(&mut self, id: ServerId, at: Instant, from: NodeId, msg: Message) {
        self.call(id, at, |s, now| s.handle_message(now, from, msg));
    }

    /// `to` has taken in `bytes` of a transfer `from` streams: the window has room again,
    /// and the source makes its next chunks once the target is done with this one.
    fn took_in(&mut self, from: NodeId, to: NodeId, bytes: u64) {
        let NodeId::Server(src) = from else { return };
        if bytes == 0 {
            return;
        }
        if let Some(n) = self.in_flight.get_mut(&(src, to)) {
            *n = n.saturating_sub(bytes);
        }
        let NodeId::Server(dst) = to else { return };
        let at = self.busy.get(&dst).copied().unwrap_or(self.now);
        if self.servers.get(&src).is_some_and(EdgeServer::streaming) {
            self.call(src, at, |_, _| {});
        }
    }

    /// When the next message or timer is due.
    fn next_time(&self) -> Option<Instant> {
        let timer = self.next_timer().map(|(t, _)| t);
        let msg = self.heap.peek().map(|e| e.at);
        match (timer, msg) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest server timer, no earlier than the server is free.
    fn next_timer(&self) -> Option<(Instant, ServerId)> {
        self.servers
            .iter()
            .filter_map(|(id, s)| {
                s.poll_timeout()
                    .map(|t| (t.max(self.busy.get(id).copied().unwrap_or(t)), *id))
            })
            .min()
    }

    /// Processes messages and timers until `stop` says so or nothing is left.
    fn run_until(&mut self, mut stop: impl FnMut(&Self) -> bool) {
        while !stop(self) {
            let timer = self.next_timer();
            let next_msg = self.heap.peek().map(|e| e.at);
            match (next_msg, timer) {
                (Some(m), Some((t, id))) if t < m => {
                    self.now = t;
                    self.call(id, t, |s, now| s.handle_timeout(now));
                }
                (Some(_), _) => {
                    let Some(ev) = self.heap.pop() else { break };
                    self.now = ev.at;
                    let NodeId::Server(to) = ev.to else { continue };
                    // Decoding is the receiver's work, and charged to it.
                    let (from, frame) = (ev.from, ev.frame);
                    let frame = Bytes::from(frame);
                    self.call(to, ev.at, |s, now| {
                        if let Ok(msg) = codec::decode_shared(&frame) {
                            s.handle_message(now, from, msg);
                        }
                    });
                    self.took_in(from, ev.to, ev.streamed);
                }
                (None, Some((t, id))) => {
                    self.now = t;
                    self.call(id, t, |s, now| s.handle_timeout(now));
                }
                (None, None) => break,
            }
        }
    }

    fn input(&mut self, seq: u64) {
        let at = self.now;
        let msg = ServiceInput {
            ue: UeId(1),
            service: SERVICE,
            via: CellId(1),
            answered_below: 0,
            input: InputRecord {
                seq,
                payload: seq
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .to_le_bytes()
                    .to_vec(),
            },
        };
        self.deliver(SRC, at, NodeId::Cell(CellId(1)), msg.into());
    }

    fn has(&self, id: ServerId, f: impl Fn(&EdgeEvent) -> bool) -> bool {
        self.events.iter().any(|(_, _, s, e)| *s == id && f(e))
    }
}

/// Measures one relocation of an `armap` service of `size_mib` MiB by `strategy`.
///
/// # Errors
/// The runtime could not start, or the strategy is unknown.
pub fn measure(
    size_mib: u32,
    strategy: &str,
    link: BenchLink,
    memory: TargetMemory,
) -> Result<BenchResult, SimError> {
    let spec = samples::spec("armap", size_mib, 0).ok_or_else(|| {
        SimError::Service(edgeshift_world::WorldError::UnknownService("armap".into()))
    })?;
    measure_spec(spec, size_mib, strategy, link, memory)
}

/// Measures one relocation of the service `spec` (a user's module, for instance) by
/// `strategy`; `size_mib` only labels the result.
///
/// # Errors
/// The runtime could not start, or the strategy is unknown.
pub fn measure_spec(
    spec: ServiceSpec,
    size_mib: u32,
    strategy: &str,
    link: BenchLink,
    memory: TargetMemory,
) -> Result<BenchResult, SimError> {
    let mut b = Bench::new(link, memory, strategy == "shadow-optimistic")?;
    b.deliver(
        SRC,
        Instant::ZERO,
        NodeId::CONTROL,
        Instantiate {
            service: SERVICE,
            ue: UeId(1),
            spec,
        }
        .into(),
    );
    let mut seq = 0;
    for _ in 0..100 {
        seq += 1;
        b.input(seq);
    }
    let (mode, sync) = match strategy {
        "cold" => (RelocationMode::Cold, None),
        "precopy" => (RelocationMode::Precopy, None),
        "shadow-replay" => (RelocationMode::Hot, Some(SyncMode::Replay)),
        "shadow-delta" => (RelocationMode::Hot, Some(SyncMode::Delta)),
        "shadow-optimistic" => (RelocationMode::Hot, Some(SyncMode::Replay)),
        other => return Err(SimError::UnknownStrategy(other.to_owned())),
    };
    if let Some(sync) = sync {
        let prepare = PrepareShadow {
            service: SERVICE,
            ue: UeId(1),
            source: SRC,
            candidates: vec![DST],
            sync,
            start: Timing::at(Instant::ZERO),
            adopt: false,
        };
        let at = b.now;
        b.deliver(SRC, at, NodeId::CONTROL, prepare.into());
        b.run_until(|b| b.has(DST, |e| matches!(e, EdgeEvent::ShadowReady { .. })));
        // Steady state: inputs keep flowing to the shadow while the handover approaches.
        for _ in 0..100 {
            seq += 1;
            b.input(seq);
            let until = b.now + Duration::from_millis(20);
            b.run_until(|b| b.next_time().is_none_or(|t| t > until));
            b.now = until;
        }
        let quiet = b.now + Duration::from_millis(100);
        b.run_until(|b| b.next_time().is_none_or(|t| t > quiet));
        b.now = quiet;
    }
    let before = b
        .servers
        .get(&SRC)
        .and_then(|s| s.live_view(SERVICE))
        .map(|v| (v.checksum, v.state_bytes));
    let trigger = Relocate {
        service: SERVICE,
        action: RelocateAction::Relocate {
            source: SRC,
            target: DST,
            mode,
            epoch: 2,
        },
        timing: Timing::at(b.now),
    };
    let t0 = b
        .now
        .max(b.busy.values().copied().max().unwrap_or(Instant::ZERO));
    b.deliver(DST, t0, NodeId::CONTROL, trigger.clone().into());
    b.deliver(SRC, t0, NodeId::CONTROL, trigger.into());
    b.run_until(|b| b.has(DST, |e| matches!(e, EdgeEvent::Activated { .. })));
    // Activation counts when its call ends; the freeze when its call begins. A tentative
    // instance (optimistic activation) serves from its 1006 on: that is when the target is
    // live, and the commit that follows must still come.
    let committed = b
        .events
        .iter()
        .any(|(_, _, s, e)| *s == DST && matches!(e, EdgeEvent::Activated { .. }));
    let activated = b
        .events
        .iter()
        .find(|(_, _, s, e)| {
            *s == DST && matches!(e, EdgeEvent::Activated { .. } | EdgeEvent::Tentative { .. })
        })
        .filter(|_| committed)
        .map(|e| e.1);
    let frozen = b
        .events
        .iter()
        .find(|(_, _, s, e)| *s == SRC && matches!(e, EdgeEvent::Frozen { .. }))
        .map(|e| e.0);
    let after = b
        .servers
        .get(&DST)
        .and_then(|s| s.live_view(SERVICE))
        .map(|v| v.checksum);
    let end = activated.unwrap_or(b.now);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let state_bytes = before.map_or(0, |b| b.1);
    let critical = end.saturating_duration_since(t0).as_secs_f64();
    let throughput_gbyte_s = if critical > 0.0 {
        state_bytes as f64 / critical / 1e9
    } else {
        0.0
    };
    Ok(BenchResult {
        size_mib,
        strategy: strategy.to_owned(),
        target_memory: memory,
        critical_path_ms: ms(end.saturating_duration_since(t0)),
        downtime_ms: ms(end.saturating_duration_since(frozen.unwrap_or(t0))),
        critical_bytes: b
            .sent
            .iter()
            .filter(|(t, _, _)| *t >= t0 && *t <= end)
            .map(|s| s.1 as u64)
            .sum(),
        total_bytes: b.sent.iter().filter(|s| s.2).map(|s| s.1 as u64).sum(),
        checksum_ok: activated.is_some() && before.map(|b| b.0) == after,
        state_bytes,
        throughput_gbyte_s,
        peak_in_flight_bytes: b.peak_in_flight,
    })
}
