//! The registry: one [`ServiceEntry`] per deployed service, found by service, by UE and
//! by host; deploys; what the topology says about cells, servers and latency.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgeshift_proto::{
    CellId, Deploy, Instant, Instantiate, NodeId, Route, RouteUpdate, ServerId, ServiceId,
    ServiceSpec, UeId,
};

use super::ControlNode;
use super::relocation::Relocation;
use crate::event::ControlEvent;

/// What the registry knows about one service.
#[derive(Clone, Debug)]
pub struct ServiceEntry {
    /// Its user.
    pub ue: UeId,
    /// The user's serving cell, as last reported.
    pub cell: CellId,
    /// The cell before the last handover.
    pub previous_cell: Option<CellId>,
    /// Server hosting the live instance.
    pub host: ServerId,
    /// Route epoch.
    pub epoch: u64,
    /// Code and context.
    pub spec: ServiceSpec,
    /// Last reported state size.
    pub state_bytes: u64,
    /// Servers holding (or receiving) a shadow.
    pub shadows: BTreeSet<ServerId>,
    /// Those of `shadows` that reported theirs complete (3032): the failover candidates.
    pub(crate) ready: BTreeSet<ServerId>,
    /// Those of `shadows` a relocation kept, until their new host confirms it syncs them
    /// (3032): never promoted meanwhile, and a prediction naming them does not stop their
    /// stale clock. Not persisted: after a restore they are shadows not ready, like one
    /// whose transfer is under way.
    pub(crate) adopting: BTreeSet<ServerId>,
    /// The host was declared dead and the live instance may be gone with it (until a
    /// failover lands, or the host comes back from a partition with it).
    pub(crate) orphaned: bool,
    /// Servers whose shadow is planned for later (a `JitStart` timer each).
    pub(crate) planned: BTreeSet<ServerId>,
    /// Candidate cells of the last prediction.
    pub(crate) predicted: Vec<CellId>,
    /// Source, target and time of the last handover (ping-pong detection).
    pub(crate) last_handover: Option<(CellId, CellId, Instant)>,
    /// The relocation under way, if any; while there is one, predictions and handovers
    /// only update the cell.
    pub(crate) relocation: Option<Relocation>,
    /// How many times the service changed region (see the `region` module).
    pub(crate) generation: u64,
    /// Shadows and plans the latest predictions no longer name, since when: they go after
    /// [`crate::ControlConfig::shadow_keep`] (a shadow) or
    /// [`crate::ControlConfig::stale_grace`] (a plan). Not persisted: after a restore or
    /// a handoff the `ShadowExpiry` set with them discards them, or the next prediction
    /// that does not name them starts their clocks again.
    pub(crate) stale_since: BTreeMap<ServerId, Instant>,
    /// The host came back from a restart (its instance gone) while a move away was open:
    /// if the move fails, the service fails over (not persisted).
    pub(crate) emptied: bool,
}

impl ControlNode {
    pub(super) fn server_of(&self, cell: CellId) -> Option<ServerId> {
        self.cfg.topology.get(&cell).copied()
    }

    pub(super) fn within_budget(&self, cell: CellId, host: ServerId, budget_ms: u32) -> bool {
        budget_ms > 0
            && self
                .cfg
                .round_trip(cell, host)
                .is_some_and(|rtt| rtt <= Duration::from_millis(u64::from(budget_ms)))
    }

    pub(super) fn transfer_time(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 8.0 / self.cfg.link_bits_per_s.max(1.0))
    }

    /// Adds an entry and indexes it (the last service of a UE is the one its messages reach).
    pub(super) fn register(&mut self, service: ServiceId, entry: ServiceEntry) {
        let (ue, host) = (entry.ue, entry.host);
        if let Some(old) = self.services.insert(service, entry) {
            self.by_host.remove(&(old.host, service));
        }
        self.by_host.insert((host, service));
        self.by_ue.insert(ue, service);
    }

    /// Moves a service to a new host in the entry and in the host index.
    pub(super) fn set_host(&mut self, service: ServiceId, host: ServerId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        self.by_host.remove(&(e.host, service));
        e.host = host;
        self.by_host.insert((host, service));
    }

    /// Services hosted by `server`, in service order.
    pub(super) fn hosted_by(&self, server: ServerId) -> impl Iterator<Item = ServiceId> + '_ {
        self.by_host
            .range((server, ServiceId(u32::MIN))..=(server, ServiceId(u32::MAX)))
            .map(|(_, s)| *s)
    }

    pub(super) fn on_deploy(&mut self, from: NodeId, m: Deploy) {
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
            ready: BTreeSet::new(),
            adopting: BTreeSet::new(),
            orphaned: false,
            planned: BTreeSet::new(),
            predicted: Vec::new(),
            last_handover: None,
            relocation: None,
            generation: 0,
            stale_since: BTreeMap::new(),
            emptied: false,
        };
        self.register(m.service, entry);
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
        self.emit(ControlEvent::ServiceDeployed {
            service: m.service,
            ue: m.ue,
            cell: m.cell,
            server: host,
        });
    }
}
