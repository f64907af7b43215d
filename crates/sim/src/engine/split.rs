//! A run in two logical processes ([`SimConfig::split`](super::SimConfig::split)): the
//! radio side (UEs, cells, the radio, every random draw of a run without faults) and the
//! server side (ME servers, control nodes), each with its own event queue.
//!
//! They advance in windows as long as the shortest link between them (conservative
//! parallel discrete-event simulation with that latency as lookahead): a window starts at
//! the earliest pending event of either side, and nothing one side sends in it can reach
//! the other before it ends. So each side runs its window alone, the server side on a
//! thread of its own when there are two; at the window's end the messages between them
//! are handed over in the order they were sent. The server side also keeps the recorder:
//! at the start of each window it merges both sides' observations of the window before
//! by time (the radio side's first at one instant), so the checkers see every event once
//! and in time order. The windows depend only on the events, so the record is the same
//! on one thread or two.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use edgeshift_proto::{Instant, NodeId};
use edgeshift_record::{LoadSample, Observation, Recorder, Report};

use super::{Ev, GRACE, SETTLE, Sim, Storm, TraceEntry};

/// The two sides of a split run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// UEs and cells.
    Radio,
    /// ME servers and control nodes.
    Servers,
}

impl Side {
    pub(super) fn of(id: NodeId) -> Self {
        match id {
            NodeId::Ue(_) | NodeId::Cell(_) => Self::Radio,
            NodeId::Server(_) | NodeId::Control(_) => Self::Servers,
        }
    }
}

/// What one side of a split run holds for the other and for the recorder until its
/// window ends.
pub(super) struct Part {
    pub(super) side: Side,
    /// Events for the other side, in the order they were scheduled.
    pub(super) outbox: Vec<(Instant, Ev)>,
    /// Observations, in the order they were made.
    pub(super) seen: Vec<Observation>,
}

/// The server side's orders for one window: merge `seen` (the radio side's observations
/// since the last orders) and its own into the recorder, say whether it then sees a
/// relocation in flight if `ask`, take `inbox` and run every event due before `limit`.
struct Go {
    limit: Instant,
    inbox: Vec<(Instant, Ev)>,
    seen: Vec<Observation>,
    ask: bool,
}

/// What the server side hands back at a window's end.
struct Done {
    outbox: Vec<(Instant, Ev)>,
    /// Its earliest pending event.
    next: Option<Instant>,
    /// The time of its last event.
    last: Instant,
    stormed: bool,
    /// The recorder, with everything merged so far, saw a relocation in flight (asked
    /// only).
    in_flight: bool,
}

/// The server side, on this thread or another.
trait Peer {
    fn start(&mut self, go: Go);
    /// `None`: the server side is gone (its thread panicked); nothing may be started
    /// after that.
    fn done(&mut self) -> Option<Done>;
}

struct Inline {
    sim: Sim,
    storm: Storm,
    go: Option<Go>,
}

impl Peer for Inline {
    fn start(&mut self, go: Go) {
        self.go = Some(go);
    }

    fn done(&mut self) -> Option<Done> {
        let go = self.go.take()?;
        Some(serve(&mut self.sim, &mut self.storm, go))
    }
}

/// The server side on a thread of its own, handed its orders and results through two
/// slots: both sides spin for them, as a window takes only tens of microseconds and a
/// sleeping thread would take about as long to wake.
struct Threaded<'a> {
    go: &'a Slot<Option<Go>>,
    done: &'a Slot<Option<Done>>,
}

impl Drop for Threaded<'_> {
    /// Ends the server side's loop, also when the radio side panics (the thread scope
    /// would otherwise wait for it for ever).
    fn drop(&mut self) {
        self.go.put(None);
    }
}

impl Peer for Threaded<'_> {
    fn start(&mut self, go: Go) {
        self.go.put(Some(go));
    }

    fn done(&mut self) -> Option<Done> {
        self.done.take()
    }
}

/// One value handed from one thread to another.
struct Slot<T> {
    full: AtomicBool,
    value: Mutex<Option<T>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Self {
            full: AtomicBool::new(false),
            value: Mutex::new(None),
        }
    }

    fn put(&self, v: T) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(v);
        self.full.store(true, Ordering::Release);
    }

    /// Waits for the value: spinning first, then yielding the core.
    fn take(&self) -> T {
        let mut spins = 0u32;
        loop {
            if self.full.swap(false, Ordering::Acquire)
                && let Some(v) = self
                    .value
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
            {
                return v;
            }
            spins = spins.saturating_add(1);
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else if spins < 1 << 16 {
                std::thread::yield_now();
            } else {
                // Long waits (the other side working through a burst, or a busy machine)
                // give the core away.
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// Runs `sim` split in two (see the module's documentation), on `sim.cfg.threads`.
pub(super) fn run(
    mut radio: Sim,
    lookahead: Duration,
) -> (Report, Vec<TraceEntry>, Vec<LoadSample>) {
    let servers = radio.split_off();
    let next = servers.queue.peek_at();
    let storm = Storm::new(&servers.scenario).halved();
    if radio.cfg.threads < 2 {
        let mut peer = Inline {
            sim: servers,
            storm,
            go: None,
        };
        coordinate(&mut radio, next, lookahead, &mut peer);
        return join(radio, peer.sim);
    }
    let (go, done) = (Slot::new(), Slot::new());
    let servers = std::thread::scope(|sc| {
        let worker = sc.spawn(|| {
            let (mut sim, mut storm) = (servers, storm);
            while let Some(orders) = go.take() {
                let served = catch_unwind(AssertUnwindSafe(|| serve(&mut sim, &mut storm, orders)));
                match served {
                    Ok(d) => done.put(Some(d)),
                    Err(panic) => {
                        done.put(None); // The radio side stops waiting, and the run panics.
                        resume_unwind(panic);
                    }
                }
            }
            sim
        });
        let mut peer = Threaded {
            go: &go,
            done: &done,
        };
        coordinate(&mut radio, next, lookahead, &mut peer);
        drop(peer);
        worker.join()
    });
    match servers {
        Ok(servers) => join(radio, servers),
        // The server side's panic is the run's, as it would be in one process.
        Err(panic) => resume_unwind(panic),
    }
}

/// Drives both sides window by window to the run's end, `theirs` being the server side's
/// earliest event. [`SETTLE`] and [`GRACE`] apply as in one process, but are checked at
/// the windows' ends: a run settled within a window gets its grace from that window's
/// last event.
fn coordinate(
    radio: &mut Sim,
    mut theirs: Option<Instant>,
    lookahead: Duration,
    peer: &mut dyn Peer,
) {
    let mut storm = Storm::new(&radio.scenario).halved();
    let (mut end, mut graced) = (radio.end, false);
    let mut to_servers: Vec<(Instant, Ev)> = Vec::new();
    loop {
        let next = [
            radio.queue.peek_at(),
            theirs,
            to_servers.iter().map(|e| e.0).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        if next > end {
            // A window that runs nothing brings the recorder up to date.
            // (`next` already counts what it hands over.)
            let Some(done) = exchange(radio, peer, &mut to_servers) else {
                return;
            };
            if end == radio.end && (done.in_flight || radio.waiting()) {
                end = radio.end + SETTLE;
            }
            if next > end {
                break;
            }
        }
        let limit = (next + lookahead).min(end + Duration::from_nanos(1));
        peer.start(Go {
            limit,
            inbox: std::mem::take(&mut to_servers),
            seen: radio.take_seen(),
            ask: false,
        });
        let stormed = radio.window(limit, &mut storm);
        let Some(done) = peer.done() else { return };
        to_servers = radio.take_outbox(limit);
        radio.hand_over(done.outbox);
        theirs = done.next;
        if stormed || done.stormed {
            break;
        }
        let last = radio.now.max(done.last);
        if !graced && end > radio.end && last >= radio.end && !radio.waiting() {
            // The recorder first brought up to date: a relocation may have started in
            // this very window.
            let Some(done) = exchange(radio, peer, &mut to_servers) else {
                return;
            };
            theirs = done.next;
            if !done.in_flight {
                // Settled: the UEs get the answers they are still retransmitting for.
                graced = true;
                end = end.min(last + GRACE);
            }
        }
    }
    // The last window's observations.
    let _ = exchange(radio, peer, &mut to_servers);
}

/// A window in which neither side runs anything: the server side takes `to_servers`,
/// merges what both sides saw so far and says whether a relocation is in flight.
fn exchange(
    radio: &mut Sim,
    peer: &mut dyn Peer,
    to_servers: &mut Vec<(Instant, Ev)>,
) -> Option<Done> {
    let limit = Instant::ZERO;
    peer.start(Go {
        limit,
        inbox: std::mem::take(to_servers),
        seen: radio.take_seen(),
        ask: true,
    });
    let done = peer.done()?;
    radio.hand_over(done.outbox);
    Some(Done {
        outbox: Vec::new(),
        ..done
    })
}

/// The server side's window.
fn serve(sim: &mut Sim, storm: &mut Storm, go: Go) -> Done {
    let mine = sim.take_seen();
    merge(&mut sim.recorder, go.seen, mine);
    let in_flight = go.ask && sim.in_flight();
    for (at, ev) in go.inbox {
        sim.queue.push(at, ev);
    }
    let stormed = sim.window(go.limit, storm);
    Done {
        outbox: sim.take_outbox(go.limit),
        next: sim.queue.peek_at(),
        last: sim.now,
        stormed,
        in_flight,
    }
}

/// Feeds both sides' observations of a window to `recorder` by time, the radio side's
/// first at one instant (nothing at one instant on one side can have caused anything on
/// the other).
fn merge(recorder: &mut Recorder, radio: Vec<Observation>, servers: Vec<Observation>) {
    let mut servers = servers.into_iter().peekable();
    for o in radio {
        while let Some(s) = servers.next_if(|s| s.at() < o.at()) {
            recorder.observe(s);
        }
        recorder.observe(o);
    }
    servers.for_each(|s| recorder.observe(s));
}

/// One process again: the server side's nodes, recorder and samples join the radio
/// side's, which then ends the run as one process does.
fn join(mut radio: Sim, mut servers: Sim) -> (Report, Vec<TraceEntry>, Vec<LoadSample>) {
    let (seen, theirs) = (radio.take_seen(), servers.take_seen());
    merge(&mut servers.recorder, seen, theirs);
    std::mem::swap(&mut radio.recorder, &mut servers.recorder);
    radio.part = None;
    if servers.rng.get_word_pos() != 0 {
        // Every draw of a run without faults is the radio side's, which is what makes
        // the split run's record independent of the threads.
        radio.observe(Observation::Violation {
            at: servers.now,
            what: "the server side of a split run drew from the radio side's random stream".into(),
        });
    }
    radio.nodes.extend(servers.nodes.drain());
    radio.now = radio.now.max(servers.now).max(radio.end);
    let loads = std::mem::take(&mut servers.loads);
    let (report, trace) = radio.finish();
    (report, trace, loads)
}

impl Sim {
    /// Splits off the server side (see the module's documentation): its nodes, their
    /// wake-ups, links and pending events, and the recorder. Right after [`Sim::new`].
    fn split_off(&mut self) -> Self {
        let servers = |id: NodeId| Side::of(id) == Side::Servers;
        let (theirs, ours) = std::mem::take(&mut self.nodes)
            .into_iter()
            .partition(|(id, _)| servers(*id));
        self.nodes = ours;
        let meta = super::run_meta(&self.scenario, &self.cfg);
        let recorder = std::mem::replace(&mut self.recorder, Recorder::new(meta, []));
        let mut other = Self::bare(
            self.scenario.clone(),
            self.cfg.clone(),
            self.spec.clone(),
            (theirs, self.ids.clone()),
            self.net.split_off(servers),
            recorder,
        );
        other.now = self.now;
        let (theirs, ours) = std::mem::take(&mut self.wake_at)
            .into_iter()
            .partition(|(id, _)| servers(*id));
        (self.wake_at, other.wake_at) = (ours, theirs);
        for (at, ev) in self.queue.drain() {
            if ev.target().is_some_and(servers) {
                other.queue.push(at, ev);
            } else {
                self.queue.push(at, ev);
            }
        }
        if self.cfg.sample_load {
            other.push_next(Ev::Sample);
        }
        self.part = Some(Part::new(Side::Radio));
        other.part = Some(Part::new(Side::Servers));
        other
    }

    /// Runs every event due before `limit`; whether the run stormed.
    fn window(&mut self, limit: Instant, storm: &mut Storm) -> bool {
        while self.queue.peek_at().is_some_and(|at| at < limit) {
            let Some((at, ev)) = self.queue.pop() else {
                break;
            };
            if let Some(what) = storm.count(at, &ev) {
                self.observe(Observation::Violation { at, what });
                return true;
            }
            self.now = at;
            self.step(ev);
        }
        false
    }

    /// This side's observations since the last call.
    fn take_seen(&mut self) -> Vec<Observation> {
        self.part
            .as_mut()
            .map(|p| std::mem::take(&mut p.seen))
            .unwrap_or_default()
    }

    /// The events for the other side of the window that ends at `limit`.
    fn take_outbox(&mut self, limit: Instant) -> Vec<(Instant, Ev)> {
        let out = self
            .part
            .as_mut()
            .map(|p| std::mem::take(&mut p.outbox))
            .unwrap_or_default();
        self.flag_early(&out, limit);
        out
    }

    /// Schedules the other side's `events` (checked by [`Sim::take_outbox`] there).
    fn hand_over(&mut self, events: Vec<(Instant, Ev)>) {
        for (at, ev) in events {
            self.queue.push(at, ev);
        }
    }

    /// A violation for each event sent across that is due within the window it was sent
    /// in: the lookahead would be wrong, and the run's order with it.
    fn flag_early(&mut self, events: &[(Instant, Ev)], limit: Instant) {
        for (at, ev) in events.iter().filter(|e| e.0 < limit) {
            let what = format!(
                "{} due at {at:?} crossed between a split run's sides sooner than the \
                 shortest link",
                ev.kind()
            );
            // Stamped now, so that the side's observations stay in time order.
            let at = self.now;
            self.observe(Observation::Violation { at, what });
        }
    }
}

impl Part {
    fn new(side: Side) -> Self {
        Self {
            side,
            outbox: Vec::new(),
            seen: Vec::new(),
        }
    }
}
