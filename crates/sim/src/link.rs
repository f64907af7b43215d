//! The network between nodes: per directed pair and lane, a FIFO with latency and
//! bandwidth (messages serialise one after another), and random loss on the radio for
//! service traffic. Links between nodes behave like TCP: ordered, no loss; a lossy-link
//! fault delays a message by retransmissions and what follows waits behind it.

use std::collections::{BTreeMap, HashMap};

use edgeshift_record::FixedState;
use std::time::Duration;

use edgeshift_proto::{CellId, Instant, Lane, NodeId, ServerId};

use edgeshift_world::Scenario;

/// Latency and bandwidth of one link.
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec {
    /// One-way latency.
    pub latency: Duration,
    /// Bits per second.
    pub bits_per_s: f64,
    /// Loss probability for service traffic.
    pub loss: f64,
}

/// The link model of a scenario.
#[derive(Debug)]
pub struct Network {
    specs: Specs,
    /// Per link: when it is free to serialise the next message, and its last arrival
    /// (jitter never reorders a link). One map, so that a message costs one lookup.
    links: HashMap<(NodeId, NodeId, Lane), LinkState, FixedState>,
}

#[derive(Debug)]
struct LinkState {
    free_at: Instant,
    last_arrival: Instant,
}

#[derive(Clone, Debug)]
struct Specs {
    radio: LinkSpec,
    access: Duration,
    backhaul: LinkSpec,
    x2: Duration,
    x2_jitter: Duration,
    control: Duration,
    topology: BTreeMap<CellId, ServerId>,
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1e3)
}

impl Network {
    /// The network of a scenario.
    #[must_use]
    pub fn new(s: &Scenario) -> Self {
        let l = &s.links;
        Self {
            specs: Specs {
                radio: LinkSpec {
                    latency: ms(l.radio_ms),
                    bits_per_s: l.radio_mbit * 1e6,
                    loss: l.radio_loss,
                },
                access: ms(l.access_ms),
                backhaul: LinkSpec {
                    latency: ms(l.backhaul_ms),
                    bits_per_s: l.backhaul_gbit * 1e9,
                    loss: 0.0,
                },
                x2: ms(l.x2_ms),
                x2_jitter: ms(l.x2_jitter_ms),
                control: ms(l.control_ms),
                topology: s
                    .cells
                    .iter()
                    .map(|c| (CellId(c.id), ServerId(c.server)))
                    .collect(),
            },
            links: HashMap::default(),
        }
    }

    /// The shortest latency between the radio side (UEs, cells) and the server side (ME
    /// servers, control nodes) of the network: nothing sent across arrives sooner.
    #[must_use]
    pub fn cross_latency(&self) -> Duration {
        let s = &self.specs;
        s.access.min(s.control).min(s.radio.latency)
    }

    /// Moves the state of the links whose sender `sends` picks into a network of its own
    /// (a split run's other side).
    #[must_use]
    pub fn split_off(&mut self, sends: impl Fn(NodeId) -> bool) -> Self {
        let (theirs, ours) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|((a, _, _), _)| sends(*a));
        self.links = ours;
        Self {
            specs: self.specs.clone(),
            links: theirs,
        }
    }

    /// The link between two nodes.
    #[must_use]
    pub fn spec(&self, a: NodeId, b: NodeId) -> LinkSpec {
        let s = &self.specs;
        let fast = |latency| LinkSpec {
            latency,
            bits_per_s: 10e9,
            loss: 0.0,
        };
        match (a, b) {
            (NodeId::Ue(_), _) | (_, NodeId::Ue(_)) => s.radio,
            (NodeId::Control(_), _) | (_, NodeId::Control(_)) => fast(s.control),
            (NodeId::Cell(_), NodeId::Cell(_)) => fast(s.x2),
            (NodeId::Server(_), NodeId::Server(_)) => s.backhaul,
            (NodeId::Cell(c), NodeId::Server(v)) | (NodeId::Server(v), NodeId::Cell(c)) => {
                let own = s.topology.get(&c).copied();
                if own == Some(v) {
                    fast(s.access)
                } else {
                    fast(s.access + s.backhaul.latency)
                }
            }
        }
    }

    /// When a message of `bytes` sent now from `a` to `b` on `lane` arrives. `u` in
    /// [0, 1) draws the X2 jitter of cell-to-cell messages (ignored elsewhere);
    /// `retransmitted` is the time TCP spent resending it on a lossy link. A link never
    /// reorders: what follows a late message waits for it, as in a TCP stream.
    pub fn schedule(
        &mut self,
        now: Instant,
        (a, b, lane): (NodeId, NodeId, Lane),
        bytes: usize,
        u: f64,
        retransmitted: Duration,
    ) -> Instant {
        let spec = self.spec(a, b);
        let link = self.links.entry((a, b, lane)).or_insert(LinkState {
            free_at: now,
            last_arrival: Instant::ZERO,
        });
        let mut at = fifo_arrival(&mut link.free_at, now, bytes, spec.bits_per_s, spec.latency);
        if is_x2(a, b) {
            at += self.specs.x2_jitter.mul_f64(u.clamp(0.0, 1.0));
        }
        at += retransmitted;
        at = at.max(link.last_arrival);
        link.last_arrival = at;
        at
    }
}

/// One FIFO link direction: a message of `bytes` sent at `now` leaves when the previous
/// one has been serialised (`free`), takes `bytes / rate` to serialise (no limit for a rate
/// of zero or less), then `latency` to arrive. Updates `free`; returns the arrival time.
/// Whether a message from `a` to `b` crosses X2 (cell to cell).
#[must_use]
pub fn is_x2(a: NodeId, b: NodeId) -> bool {
    matches!((a, b), (NodeId::Cell(_), NodeId::Cell(_)))
}

pub(crate) fn fifo_arrival(
    free: &mut Instant,
    now: Instant,
    bytes: usize,
    bits_per_s: f64,
    latency: Duration,
) -> Instant {
    let depart = (*free).max(now);
    let tx = if bits_per_s > 0.0 {
        Duration::from_secs_f64(bytes as f64 * 8.0 / bits_per_s)
    } else {
        Duration::ZERO
    };
    *free = depart + tx;
    depart + tx + latency
}
