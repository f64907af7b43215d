//! Snapshot format v2: v1 plus, for each service, the servers whose shadow reported ready
//! and whether its host was declared dead, and the heartbeating servers with their
//! incarnation, and what is owed to servers that are away (releases of the instances a
//! failover replaced, aborts of the relocations called off). A restarted control node,
//! or a replica that just took over, then expects every known server to heartbeat,
//! declares dead those that do not, fails their services over to ready shadows at once,
//! and tells a server that comes back what it must drop.
//!
//! Frozen once released: `tests/data/snapshot-v2.bin` must keep decoding to the same
//! snapshot. A change is a new version, never an edit.

use serde::{Deserialize, Serialize};

use super::v1;

/// The whole registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// In service order.
    pub(crate) services: Vec<Service>,
    /// In server order.
    pub(crate) loads: Vec<v1::Load>,
    pub(crate) stats: v1::Stats,
    /// When the next load-balancing check is due.
    pub(crate) load_check: Option<u64>,
    /// Servers heard from, in order.
    pub(crate) peers: Vec<Peer>,
    /// Instances a failover replaced while their server was away: (server, service).
    pub(crate) superseded: Vec<(u32, u32)>,
    /// Relocations called off because their target died: (target, service, epoch).
    pub(crate) called_off: Vec<(u32, u32, u64)>,
}

/// A server heard from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Peer {
    pub(crate) server: u32,
    pub(crate) incarnation: u64,
    /// Declared dead and not back.
    pub(crate) down: bool,
}

/// One service's entry: v1's, and its failover state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Service {
    pub(crate) base: v1::Service,
    /// Servers whose shadow reported ready (3032), in order.
    pub(crate) ready: Vec<u32>,
    /// The host was declared dead and no failover has landed yet.
    pub(crate) orphaned: bool,
}

impl From<v1::Snapshot> for Snapshot {
    /// v1 kept no readiness: a node restored from it waits for the shadows to report.
    fn from(old: v1::Snapshot) -> Self {
        Self {
            services: old
                .services
                .into_iter()
                .map(|base| Service {
                    base,
                    ready: Vec::new(),
                    orphaned: false,
                })
                .collect(),
            loads: old.loads,
            stats: old.stats,
            load_check: old.load_check,
            peers: Vec::new(),
            superseded: Vec::new(),
            called_off: Vec::new(),
        }
    }
}
