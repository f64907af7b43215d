//! Snapshot format v0: what the node wrote before snapshots had a header, postcard of its
//! private structs as they were then. A frozen copy of those structs (with identifiers as
//! the integers they serialize to), read and upgraded to v1; never written.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::v1;

#[derive(Debug, Deserialize)]
pub(crate) struct Snapshot {
    services: BTreeMap<u32, Service>,
    loads: BTreeMap<u32, (f32, u32)>,
    stats: Stats,
    timers: Vec<(u64, Timer)>,
}

#[derive(Debug, Deserialize)]
struct Service {
    ue: u32,
    cell: u32,
    previous_cell: Option<u32>,
    host: u32,
    epoch: u64,
    spec: Spec,
    state_bytes: u64,
    shadows: BTreeSet<u32>,
    planned: BTreeSet<u32>,
    predicted: Vec<u32>,
    last_handover: Option<(u32, u32, u64)>,
    pending: Option<Pending>,
}

#[derive(Debug, Deserialize)]
struct Spec {
    code: Code,
    config: Vec<u8>,
    latency_budget_ms: u32,
}

#[derive(Debug, Deserialize)]
enum Code {
    Inline { kind: String, bytes: Vec<u8> },
    Hash(u128),
}

#[derive(Clone, Copy, Debug, Deserialize)]
enum Mode {
    Hot,
    Cold,
    Precopy,
}

#[derive(Clone, Copy, Debug, Deserialize)]
struct Pending {
    target: u32,
    mode: Mode,
    epoch: u64,
    at: u64,
    triggered: bool,
    on_ready: bool,
}

#[derive(Clone, Copy, Debug, Deserialize)]
enum Timer {
    Trigger(u32),
    JitStart(u32, u32),
    ShadowExpiry(u32),
    LoadCheck,
}

#[derive(Clone, Copy, Debug, Deserialize)]
struct Stats {
    predictions: u64,
    shadows_requested: u64,
    handovers: u64,
    relocations_triggered: u64,
    relocations_completed: u64,
    relocations_failed: u64,
    skipped_same_server: u64,
    skipped_within_budget: u64,
    mispredicted: u64,
    reactive: u64,
    pingpongs: u64,
    cancelled: u64,
    load_balanced: u64,
}

impl From<Mode> for v1::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Hot => Self::Hot,
            Mode::Cold => Self::Cold,
            Mode::Precopy => Self::Precopy,
        }
    }
}

impl From<Pending> for v1::Relocation {
    fn from(p: Pending) -> Self {
        match p {
            Pending {
                triggered: true, ..
            } => Self::Triggered {
                target: p.target,
                mode: p.mode.into(),
                epoch: p.epoch,
                at: p.at,
            },
            // Load balancing: always hot, timed at the decision.
            Pending { on_ready: true, .. } => Self::AwaitingShadow {
                target: p.target,
                epoch: p.epoch,
                since: p.at,
            },
            _ => Self::Scheduled {
                target: p.target,
                mode: p.mode.into(),
                epoch: p.epoch,
                at: p.at,
            },
        }
    }
}

impl From<Snapshot> for v1::Snapshot {
    fn from(old: Snapshot) -> Self {
        let mut services: BTreeMap<u32, v1::Service> = old
            .services
            .into_iter()
            .map(|(id, e)| {
                let code = match e.spec.code {
                    Code::Inline { kind, bytes } => v1::Code::Inline { kind, bytes },
                    Code::Hash(h) => v1::Code::Hash(h),
                };
                let service = v1::Service {
                    id,
                    ue: e.ue,
                    cell: e.cell,
                    previous_cell: e.previous_cell,
                    host: e.host,
                    epoch: e.epoch,
                    spec: v1::Spec {
                        code,
                        config: e.spec.config,
                        latency_budget_ms: e.spec.latency_budget_ms,
                    },
                    state_bytes: e.state_bytes,
                    shadows: e.shadows.into_iter().collect(),
                    planned: e.planned.into_iter().collect(),
                    predicted: e.predicted,
                    last_handover: e.last_handover.map(|(from, to, at)| v1::Handover {
                        from,
                        to,
                        at,
                    }),
                    relocation: e.pending.map(Into::into),
                    trigger_at: None,
                    jit_starts: Vec::new(),
                    shadow_expiry: None,
                };
                (id, service)
            })
            .collect();
        // The one timer list becomes per-service timers. The list was a set: a key could
        // appear twice (a restored node added its own load check to the snapshot's); the
        // earlier deadline is kept. Timers of unknown services had nothing to act on.
        let mut load_check: Option<u64> = None;
        for (at, timer) in old.timers {
            let earliest = |t: &mut Option<u64>| *t = Some(t.map_or(at, |t| t.min(at)));
            match timer {
                Timer::Trigger(s) => {
                    if let Some(e) = services.get_mut(&s) {
                        earliest(&mut e.trigger_at);
                    }
                }
                Timer::JitStart(s, server) => {
                    if let Some(e) = services.get_mut(&s) {
                        match e.jit_starts.iter_mut().find(|j| j.server == server) {
                            Some(j) => j.at = j.at.min(at),
                            None => e.jit_starts.push(v1::JitStart { server, at }),
                        }
                    }
                }
                Timer::ShadowExpiry(s) => {
                    if let Some(e) = services.get_mut(&s) {
                        earliest(&mut e.shadow_expiry);
                    }
                }
                Timer::LoadCheck => earliest(&mut load_check),
            }
        }
        for e in services.values_mut() {
            e.jit_starts.sort_by_key(|j| j.server);
        }
        let s = old.stats;
        Self {
            services: services.into_values().collect(),
            loads: old
                .loads
                .into_iter()
                .map(|(server, (load, services))| v1::Load {
                    server,
                    load,
                    services,
                })
                .collect(),
            stats: v1::Stats {
                predictions: s.predictions,
                shadows_requested: s.shadows_requested,
                handovers: s.handovers,
                relocations_triggered: s.relocations_triggered,
                relocations_completed: s.relocations_completed,
                relocations_failed: s.relocations_failed,
                skipped_same_server: s.skipped_same_server,
                skipped_within_budget: s.skipped_within_budget,
                mispredicted: s.mispredicted,
                reactive: s.reactive,
                pingpongs: s.pingpongs,
                cancelled: s.cancelled,
                load_balanced: s.load_balanced,
            },
            load_check,
        }
    }
}
