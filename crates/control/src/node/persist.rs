//! The node to and from a [`ControlSnapshot`]: its state converted, field by field, into
//! the current snapshot schema (`snapshot::v2`, which wraps v1's service entry) and back.

use std::collections::{BTreeMap, BTreeSet};

use edgeshift_proto::{
    CellId, CodeRef, Instant, RegionId, RelocateAction, RelocationMode, ServerId, ServiceHandoff,
    ServiceId, ServiceSpec, UeId,
};

use super::relocation::Relocation;
use super::{ControlNode, ServiceEntry, Timer};
use crate::config::ControlConfig;
use crate::event::ControlStats;
use crate::snapshot::{ControlSnapshot, v1, v2, v3};

/// Silence timeouts a server gets to be heard by a restored node.
const RESTORE_GRACE: u32 = 3;

impl ControlNode {
    /// The registry, the in-flight relocations and the timers, for a store to keep. A node
    /// restored from it with [`ControlNode::restore`] carries on where this one was.
    #[must_use]
    pub fn snapshot(&self) -> ControlSnapshot {
        // One pass over the timers sorts them by service.
        let mut timers: BTreeMap<ServiceId, ServiceTimers> = BTreeMap::new();
        for (at, timer) in self.timers.iter() {
            let at = at.as_nanos();
            match timer {
                Timer::Trigger(s) => timers.entry(s).or_default().trigger_at = Some(at),
                Timer::JitStart(s, server) => {
                    let jit = v1::JitStart {
                        server: server.0,
                        at,
                    };
                    timers.entry(s).or_default().jit_starts.push(jit);
                }
                Timer::ShadowExpiry(s) => timers.entry(s).or_default().shadow_expiry = Some(at),
                // The peers are kept; their silence is timed afresh from the restore.
                Timer::LoadCheck
                | Timer::ServerSilent(_)
                | Timer::Handoff(_)
                | Timer::StaleCheck(_)
                | Timer::Retrigger(..) => {}
            }
        }
        let ids = |set: &BTreeSet<ServerId>| set.iter().map(|s| s.0).collect();
        let services = self
            .services
            .iter()
            .map(|(id, e)| v2::Service {
                base: service_to_v1(*id, e, timers.remove(id).unwrap_or_default()),
                ready: ids(&e.ready),
                orphaned: e.orphaned,
            })
            .collect();
        let loads = self
            .loads
            .iter()
            .map(|(server, (load, services))| v1::Load {
                server: server.0,
                load: *load,
                services: *services,
            })
            .collect();
        let base = v2::Snapshot {
            services,
            loads,
            stats: stats_to_v1(self.stats),
            load_check: self.timers.get(&Timer::LoadCheck).map(Instant::as_nanos),
            peers: self
                .peers
                .iter()
                .map(|(s, p)| v2::Peer {
                    server: s.0,
                    incarnation: p.incarnation,
                    down: p.down,
                })
                .collect(),
            superseded: self.superseded.iter().map(|(s, v)| (s.0, v.0)).collect(),
            called_off: self
                .called_off
                .iter()
                .map(|(s, v, e)| (s.0, v.0, *e))
                .collect(),
        };
        ControlSnapshot(v3::Snapshot {
            base,
            generations: self
                .services
                .iter()
                .filter(|(_, e)| e.generation > 0)
                .map(|(s, e)| (s.0, e.generation))
                .collect(),
            moved: self
                .moved
                .iter()
                .map(|(s, (region, generation, ue))| v3::Moved {
                    service: s.0,
                    ue: ue.0,
                    region: region.0,
                    generation: *generation,
                })
                .collect(),
            outgoing: self
                .outgoing
                .iter()
                .map(|(s, (region, h))| v3::Outgoing {
                    service: s.0,
                    ue: h.ue.0,
                    region: region.0,
                    generation: h.generation,
                    record: h.record.clone(),
                })
                .collect(),
            rejoin_orders: self
                .rejoin_orders
                .iter()
                .flat_map(|(server, orders)| {
                    orders.iter().filter_map(|(service, action)| {
                        let order = match *action {
                            RelocateAction::Release { host, epoch } => v3::Order::Release {
                                host: host.0,
                                epoch,
                            },
                            RelocateAction::Abort { epoch } => v3::Order::Abort { epoch },
                            RelocateAction::Resume { epoch } => v3::Order::Resume { epoch },
                            // Only releases, aborts and resumes wait for a server.
                            _ => return None,
                        };
                        Some(v3::RejoinOrder {
                            server: server.0,
                            service: service.0,
                            order,
                        })
                    })
                })
                .collect(),
        })
    }

    /// Raises the route epoch of every service not in a relocation to at least `floor`.
    /// A new leader of replicated control nodes passes its term here (shifted high), so
    /// that whatever it orders outranks what the previous leader ordered and never wrote
    /// down; a relocation in flight keeps the epoch the servers already know it by.
    pub fn raise_epochs(&mut self, floor: u64) {
        for e in self.services.values_mut() {
            if e.relocation.is_none() {
                e.epoch = e.epoch.max(floor);
            }
        }
    }

    /// A node that resumes from `snap` (see [`ControlNode::snapshot`]). Timers that fell due
    /// while it was down fire at the first [`Role::handle_timeout`].
    ///
    /// The load check follows `cfg`: with a load threshold it is due when the snapshot's was
    /// (or one interval from `now` if the snapshot has none); without one, it is off.
    ///
    /// [`Role::handle_timeout`]: edgeshift_proto::Role::handle_timeout
    #[must_use]
    pub fn restore(cfg: ControlConfig, snap: ControlSnapshot, now: Instant) -> Self {
        let v3::Snapshot {
            base: snap,
            generations,
            moved,
            outgoing,
            rejoin_orders,
        } = snap.0;
        let mut node = Self::new(cfg, now);
        // NOTE: the node used to keep the snapshot's load check next to the fresh one, and
        // so checked twice per interval after each restart (the timer table holds one).
        if let Some(at) = snap.load_check
            && node.cfg.load_threshold.is_some()
        {
            node.timers.set(Timer::LoadCheck, Instant(at));
        }
        for s in snap.services {
            node.adopt(s);
        }
        for (id, e) in &node.services {
            if let Some(r @ Relocation::Triggered { .. }) = e.relocation {
                // A promotion goes to its target alone; its host is dead.
                if !e.orphaned {
                    node.unconfirmed.insert((e.host, *id));
                }
                node.unconfirmed.insert((r.target(), *id));
            }
        }
        node.loads = snap
            .loads
            .into_iter()
            .map(|l| (ServerId(l.server), (l.load, l.services)))
            .collect();
        node.stats = stats_from_v1(snap.stats);
        node.superseded = snap
            .superseded
            .into_iter()
            .map(|(s, v)| (ServerId(s), ServiceId(v)))
            .collect();
        node.called_off = snap
            .called_off
            .into_iter()
            .map(|(s, v, e)| (ServerId(s), ServiceId(v), e))
            .collect();
        // Every server heard before must be heard again, or it is declared dead (it may
        // have died while no control node was listening). It gets three timeouts, not one:
        // the servers first have to find this node (a new leader, a restarted process).
        for p in snap.peers {
            let server = ServerId(p.server);
            node.peers.insert(
                server,
                super::liveness::Peer {
                    incarnation: p.incarnation,
                    down: p.down,
                },
            );
            if let (false, Some(timeout)) = (p.down, node.cfg.server_timeout) {
                node.timers
                    .set(Timer::ServerSilent(server), now + timeout * RESTORE_GRACE);
            }
        }
        for (service, generation) in generations {
            if let Some(e) = node.services.get_mut(&ServiceId(service)) {
                e.generation = generation;
            }
        }
        for m in moved {
            node.moved.insert(
                ServiceId(m.service),
                (RegionId(m.region), m.generation, UeId(m.ue)),
            );
            node.moved_ue.insert(UeId(m.ue), RegionId(m.region));
        }
        // Handoffs not acknowledged go again at once.
        for o in outgoing {
            let service = ServiceId(o.service);
            let msg = ServiceHandoff {
                service,
                ue: UeId(o.ue),
                generation: o.generation,
                record: o.record,
            };
            node.outgoing.insert(service, (RegionId(o.region), msg));
            node.timers.set(Timer::Handoff(service), now);
        }
        for r in rejoin_orders {
            let action = match r.order {
                v3::Order::Release { host, epoch } => RelocateAction::Release {
                    host: ServerId(host),
                    epoch,
                },
                v3::Order::Abort { epoch } => RelocateAction::Abort { epoch },
                v3::Order::Resume { epoch } => RelocateAction::Resume { epoch },
            };
            node.rejoin_orders
                .entry(ServerId(r.server))
                .or_default()
                .push((ServiceId(r.service), action));
        }
        node
    }
}

impl ControlNode {
    /// One service's entry and timers in the snapshot's record form (a handoff to another
    /// region carries it).
    pub(super) fn record(&self, id: ServiceId) -> Option<v2::Service> {
        let e = self.services.get(&id)?;
        let mut t = ServiceTimers {
            trigger_at: self.timers.get(&Timer::Trigger(id)).map(Instant::as_nanos),
            ..ServiceTimers::default()
        };
        t.shadow_expiry = self
            .timers
            .get(&Timer::ShadowExpiry(id))
            .map(Instant::as_nanos);
        for server in &e.planned {
            if let Some(at) = self.timers.get(&Timer::JitStart(id, *server)) {
                t.jit_starts.push(v1::JitStart {
                    server: server.0,
                    at: at.as_nanos(),
                });
            }
        }
        Some(v2::Service {
            base: service_to_v1(id, e, t),
            ready: e.ready.iter().map(|s| s.0).collect(),
            orphaned: e.orphaned,
        })
    }

    /// Registers a service from its record, with its timers.
    pub(super) fn adopt(&mut self, rec: v2::Service) -> ServiceId {
        let v2::Service {
            base: s,
            ready,
            orphaned,
        } = rec;
        let id = ServiceId(s.id);
        if let Some(at) = s.trigger_at {
            self.timers.set(Timer::Trigger(id), Instant(at));
        }
        for j in &s.jit_starts {
            self.timers
                .set(Timer::JitStart(id, ServerId(j.server)), Instant(j.at));
        }
        if let Some(at) = s.shadow_expiry {
            self.timers.set(Timer::ShadowExpiry(id), Instant(at));
        }
        let mut entry = service_from_v1(s);
        entry.ready = ready.into_iter().map(ServerId).collect();
        entry.orphaned = orphaned;
        self.register(id, entry);
        id
    }
}

/// A service's timers, from the node's one table.
#[derive(Default)]
struct ServiceTimers {
    trigger_at: Option<u64>,
    jit_starts: Vec<v1::JitStart>,
    shadow_expiry: Option<u64>,
}

fn service_to_v1(id: ServiceId, e: &ServiceEntry, timers: ServiceTimers) -> v1::Service {
    let ids = |set: &BTreeSet<ServerId>| set.iter().map(|s| s.0).collect();
    v1::Service {
        id: id.0,
        ue: e.ue.0,
        cell: e.cell.0,
        previous_cell: e.previous_cell.map(|c| c.0),
        host: e.host.0,
        epoch: e.epoch,
        spec: v1::Spec {
            code: match &e.spec.code {
                CodeRef::Inline { kind, bytes } => v1::Code::Inline {
                    kind: kind.clone(),
                    bytes: bytes.clone(),
                },
                CodeRef::Hash(h) => v1::Code::Hash(*h),
            },
            config: e.spec.config.clone(),
            latency_budget_ms: e.spec.latency_budget_ms,
        },
        state_bytes: e.state_bytes,
        shadows: ids(&e.shadows),
        planned: ids(&e.planned),
        predicted: e.predicted.iter().map(|c| c.0).collect(),
        last_handover: e.last_handover.map(|(from, to, at)| v1::Handover {
            from: from.0,
            to: to.0,
            at: at.as_nanos(),
        }),
        relocation: e.relocation.map(relocation_to_v1),
        trigger_at: timers.trigger_at,
        jit_starts: timers.jit_starts,
        shadow_expiry: timers.shadow_expiry,
    }
}

fn service_from_v1(s: v1::Service) -> ServiceEntry {
    let servers = |ids: Vec<u32>| ids.into_iter().map(ServerId).collect();
    ServiceEntry {
        ue: UeId(s.ue),
        cell: CellId(s.cell),
        previous_cell: s.previous_cell.map(CellId),
        host: ServerId(s.host),
        epoch: s.epoch,
        spec: ServiceSpec {
            code: match s.spec.code {
                v1::Code::Inline { kind, bytes } => CodeRef::Inline { kind, bytes },
                v1::Code::Hash(h) => CodeRef::Hash(h),
            },
            config: s.spec.config,
            latency_budget_ms: s.spec.latency_budget_ms,
        },
        state_bytes: s.state_bytes,
        shadows: servers(s.shadows),
        // v1 kept no readiness; v2 fills these in (`restore`).
        ready: BTreeSet::new(),
        adopting: BTreeSet::new(),
        orphaned: false,
        planned: servers(s.planned),
        predicted: s.predicted.into_iter().map(CellId).collect(),
        last_handover: s
            .last_handover
            .map(|h| (CellId(h.from), CellId(h.to), Instant(h.at))),
        relocation: s.relocation.map(relocation_from_v1),
        generation: 0,
        stale_since: BTreeMap::new(),
        emptied: false,
    }
}

fn mode_to_v1(m: RelocationMode) -> v1::Mode {
    match m {
        RelocationMode::Hot => v1::Mode::Hot,
        RelocationMode::Cold => v1::Mode::Cold,
        RelocationMode::Precopy => v1::Mode::Precopy,
    }
}

fn mode_from_v1(m: v1::Mode) -> RelocationMode {
    match m {
        v1::Mode::Hot => RelocationMode::Hot,
        v1::Mode::Cold => RelocationMode::Cold,
        v1::Mode::Precopy => RelocationMode::Precopy,
    }
}

fn relocation_to_v1(r: Relocation) -> v1::Relocation {
    match r {
        Relocation::Scheduled {
            target,
            mode,
            epoch,
            at,
        } => v1::Relocation::Scheduled {
            target: target.0,
            mode: mode_to_v1(mode),
            epoch,
            at: at.as_nanos(),
        },
        Relocation::AwaitingShadow {
            target,
            epoch,
            since,
        } => v1::Relocation::AwaitingShadow {
            target: target.0,
            epoch,
            since: since.as_nanos(),
        },
        Relocation::Triggered {
            target,
            mode,
            epoch,
            at,
        } => v1::Relocation::Triggered {
            target: target.0,
            mode: mode_to_v1(mode),
            epoch,
            at: at.as_nanos(),
        },
    }
}

fn relocation_from_v1(r: v1::Relocation) -> Relocation {
    match r {
        v1::Relocation::Scheduled {
            target,
            mode,
            epoch,
            at,
        } => Relocation::Scheduled {
            target: ServerId(target),
            mode: mode_from_v1(mode),
            epoch,
            at: Instant(at),
        },
        v1::Relocation::AwaitingShadow {
            target,
            epoch,
            since,
        } => Relocation::AwaitingShadow {
            target: ServerId(target),
            epoch,
            since: Instant(since),
        },
        v1::Relocation::Triggered {
            target,
            mode,
            epoch,
            at,
        } => Relocation::Triggered {
            target: ServerId(target),
            mode: mode_from_v1(mode),
            epoch,
            at: Instant(at),
        },
    }
}

fn stats_to_v1(s: ControlStats) -> v1::Stats {
    v1::Stats {
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
    }
}

fn stats_from_v1(s: v1::Stats) -> ControlStats {
    ControlStats {
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
    }
}
