//! Swarm testing: a seed also picks the fault and model knobs of a run (radio loss,
//! duplication and reordering, clock skew between nodes, shadowing, speed, sync batching,
//! sync mode, a server outage, guest work lent out as jobs that take time, a lossy link of
//! the control plane), so many seeds explore many worlds. The
//! knobs are a pure function of the seed: `edgeshift sim --swarm --seed N` reproduces run N.

use std::fmt;
use std::time::Duration;

use edgeshift_world::fault::{Fault, FaultKind};

use edgeshift_proto::SyncMode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Scenario, SimConfig};

/// The knobs one seed picks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Swarm {
    /// Loss of service traffic on the radio.
    pub radio_loss: f64,
    /// Shadow fading (dB).
    pub shadowing_db: f64,
    /// Factor on every UE's speed.
    pub speed_factor: f64,
    /// Replay sync batching (ms).
    pub replay_batch_ms: u64,
    /// Shadow sync mode.
    pub sync: SyncMode,
    /// Backhaul bandwidth (Gbit/s).
    pub backhaul_gbit: f64,
    /// Duplicated, reordered radio traffic and skewed clocks.
    pub faults: crate::Faults,
    /// A server outage, if the seed picked one.
    pub outage: Option<Outage>,
    /// Guest work lent out as jobs taking this long per input (`None`: run in the calls).
    pub compute: Option<Duration>,
    /// A lossy link between a server and the control node or another server.
    pub lossy: Option<LossyLink>,
}

/// A link of the control plane that loses messages for a while (`loss:A-B@T+D:P`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossyLink {
    /// Which server (an index, modulo the scenario's servers).
    pub server: usize,
    /// The other end: the control node (`None`), or another server (an offset).
    pub peer: Option<usize>,
    /// When, as a share of the run's input phase.
    pub at: f64,
    /// How long (s).
    pub dur: f64,
    /// Loss probability.
    pub p: f64,
}

/// A server outage a seed picks; [`Swarm::apply`] turns it into a [`Fault`] on one of the
/// scenario's servers at a time within its run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outage {
    /// What happens.
    pub kind: OutageKind,
    /// Which server (an index, modulo the scenario's servers).
    pub server: usize,
    /// Another server, for partitions between two.
    pub peer: usize,
    /// When, as a share of the run's input phase.
    pub at: f64,
    /// How long it lasts (s).
    pub dur: f64,
}

/// The kinds of [`Outage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutageKind {
    /// The server crashes for good.
    Kill,
    /// The server crashes and restarts empty `dur` later.
    KillRestart,
    /// The server is stopped for `dur`.
    Stop,
    /// The server is cut from the control node for `dur`.
    CutFromControl,
    /// The server is cut from another server for `dur`.
    CutFromPeer,
}

impl Swarm {
    /// The knobs of `seed`.
    #[must_use]
    pub fn from_seed(seed: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5157_4152_4d00_0000);
        Self {
            radio_loss: [0.0, 0.0, 0.01, 0.05, 0.2][r.random_range(0..5)],
            shadowing_db: [0.0, 3.0, 6.0, 8.0][r.random_range(0..4)],
            speed_factor: r.random_range(0.5..2.0),
            replay_batch_ms: [0, 0, 20, 100, 500][r.random_range(0..5)],
            sync: if r.random_bool(0.3) {
                SyncMode::Delta
            } else {
                SyncMode::Replay
            },
            backhaul_gbit: [0.1, 1.0, 10.0][r.random_range(0..3)],
            // Drawn last, so that the knobs above stay what each seed always drew.
            faults: crate::Faults {
                radio_dup: [0.0, 0.0, 0.01, 0.05][r.random_range(0..4)],
                radio_reorder_ms: [0.0, 0.0, 5.0, 20.0][r.random_range(0..4)],
                clock_skew_ms: [0.0, 0.0, 1.0, 5.0, 20.0][r.random_range(0..5)],
            },
            // Drawn after everything above, for the same reason.
            outage: {
                let kind = [
                    None,
                    None,
                    None,
                    Some(OutageKind::Kill),
                    Some(OutageKind::KillRestart),
                    Some(OutageKind::Stop),
                    Some(OutageKind::CutFromControl),
                    Some(OutageKind::CutFromPeer),
                ][r.random_range(0..8)];
                let (server, peer) = (r.random_range(0..64), r.random_range(1..64));
                let (at, dur) = (r.random_range(0.2..0.8), r.random_range(0.3..4.0));
                kind.map(|kind| Outage {
                    kind,
                    server,
                    peer,
                    at,
                    dur,
                })
            },
            // Last again. Up to half the 20 ms between two inputs of a UE.
            compute: [None, None, Some(200), Some(2_000), Some(10_000)][r.random_range(0..5)]
                .map(Duration::from_micros),
            // Last again: one seed in three.
            lossy: {
                let on = r.random_range(0..3) == 0;
                let (server, peer) = (r.random_range(0..64), r.random_range(0..64));
                let to_control = r.random_bool(0.5);
                let (at, dur) = (r.random_range(0.1..0.8), r.random_range(0.5..5.0));
                let p = [0.1, 0.3, 0.6][r.random_range(0..3)];
                on.then_some(LossyLink {
                    server,
                    peer: (!to_control).then_some(peer),
                    at,
                    dur,
                    p,
                })
            },
        }
    }

    /// The outage as a fault of `s`, if the seed picked one (and `s` has the servers it
    /// needs).
    #[must_use]
    pub fn fault(&self, s: &Scenario) -> Option<Fault> {
        let o = self.outage?;
        let node = server_name(s, o.server)?;
        let at = Duration::from_secs_f64(o.at * s.duration_s.max(0.0));
        let dur = Duration::from_secs_f64(o.dur);
        let kind = match o.kind {
            OutageKind::Kill | OutageKind::KillRestart => FaultKind::Kill,
            OutageKind::Stop => FaultKind::Stop { dur },
            OutageKind::CutFromControl => FaultKind::Partition {
                peer: control_name(s, o.server)?,
                dur,
            },
            OutageKind::CutFromPeer => FaultKind::Partition {
                peer: other_server(s, o.server, o.peer)?,
                dur,
            },
        };
        Some(Fault { node, at, kind })
    }

    /// The lossy link as a fault of `s`, if the seed picked one (and `s` has the servers
    /// it needs).
    #[must_use]
    pub fn lossy_fault(&self, s: &Scenario) -> Option<Fault> {
        let l = self.lossy?;
        let node = server_name(s, l.server)?;
        let peer = match l.peer {
            None => control_name(s, l.server)?,
            Some(k) => other_server(s, l.server, k)?,
        };
        Some(Fault {
            node,
            at: Duration::from_secs_f64(l.at * s.duration_s.max(0.0)),
            kind: FaultKind::Loss {
                peer,
                dur: Duration::from_secs_f64(l.dur),
                p: l.p,
            },
        })
    }

    /// Applies the knobs.
    pub fn apply(&self, s: &mut Scenario, cfg: &mut SimConfig) {
        s.links.radio_loss = self.radio_loss;
        s.links.backhaul_gbit = self.backhaul_gbit;
        s.radio.shadowing_db = self.shadowing_db;
        s.edge.replay_batch_ms = self.replay_batch_ms;
        for u in &mut s.ues {
            u.speed_mps *= self.speed_factor;
        }
        cfg.sync = self.sync;
        cfg.faults = self.faults;
        cfg.compute = self.compute;
        if let Some(f) = self.lossy_fault(s) {
            cfg.outages.push(f);
        }
        if let Some(f) = self.fault(s) {
            if self
                .outage
                .is_some_and(|o| o.kind == OutageKind::KillRestart)
            {
                let restart = Fault {
                    node: f.node.clone(),
                    at: f.at + Duration::from_secs_f64(self.outage.map_or(1.0, |o| o.dur)),
                    kind: FaultKind::Restart,
                };
                cfg.outages.push(f);
                cfg.outages.push(restart);
            } else {
                cfg.outages.push(f);
            }
        }
    }
}

/// The fault name of server `i` (modulo the scenario's servers), if it has any.
fn server_name(s: &Scenario, i: usize) -> Option<String> {
    let n = s.servers.len();
    (n > 0).then(|| format!("me{}", s.servers[i % n].id))
}

/// The control node of server `i`'s region, as faults name it.
fn control_name(s: &Scenario, i: usize) -> Option<String> {
    let n = s.servers.len();
    (n > 0).then(|| {
        let server = edgeshift_proto::ServerId(s.servers[i % n].id);
        edgeshift_proto::NodeId::Control(s.region_of_server(server)).to_string()
    })
}

/// A server other than server `i`, picked by `k`; none with fewer than two servers.
fn other_server(s: &Scenario, i: usize, k: usize) -> Option<String> {
    let n = s.servers.len();
    (n >= 2).then(|| server_name(s, i + k % (n - 1) + 1))?
}

impl fmt::Display for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "radio loss {:.2}, shadowing {} dB, speed x{:.2}, replay batch {} ms, {:?} sync, backhaul {} Gbit/s, radio dup {:.2}, reorder {} ms, clock skew {} ms",
            self.radio_loss,
            self.shadowing_db,
            self.speed_factor,
            self.replay_batch_ms,
            self.sync,
            self.backhaul_gbit,
            self.faults.radio_dup,
            self.faults.radio_reorder_ms,
            self.faults.clock_skew_ms
        )?;
        if let Some(o) = self.outage {
            write!(
                f,
                ", outage {:?} of server #{} at {:.0}% for {:.1} s",
                o.kind,
                o.server,
                o.at * 100.0,
                o.dur
            )?;
        }
        if let Some(c) = self.compute {
            write!(
                f,
                ", guest jobs of {:.1} ms per input",
                c.as_secs_f64() * 1e3
            )?;
        }
        if let Some(l) = self.lossy {
            let to = if l.peer.is_some() {
                "a peer"
            } else {
                "control"
            };
            write!(
                f,
                ", server #{} to {to} loses {:.0}% at {:.0}% for {:.1} s",
                l.server,
                l.p * 100.0,
                l.at * 100.0,
                l.dur
            )?;
        }
        Ok(())
    }
}
