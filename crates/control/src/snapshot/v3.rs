//! Snapshot format v3: v2 plus what a control node keeps about the other regions: each
//! service's handoff generation, where the services it handed over went, the handoffs not
//! acknowledged yet (sent again after a restart), and the orders owed to its servers for
//! services that left or belong to other regions. A node of a deployment without regions
//! writes these empty.
//!
//! Frozen once released: `tests/data/snapshot-v3.bin` must keep decoding to the same
//! snapshot. A change is a new version, never an edit.

use serde::{Deserialize, Serialize};

use super::v2;

/// The whole registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) base: v2::Snapshot,
    /// (service, generation) of the services here that changed region, in service order.
    pub(crate) generations: Vec<(u32, u64)>,
    /// Services handed to another region, in service order.
    pub(crate) moved: Vec<Moved>,
    /// Handoffs not acknowledged yet, in service order.
    pub(crate) outgoing: Vec<Outgoing>,
    /// Orders owed to this region's servers when they come back, in server order.
    pub(crate) rejoin_orders: Vec<RejoinOrder>,
}

/// A service handed to another region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Moved {
    pub(crate) service: u32,
    pub(crate) ue: u32,
    pub(crate) region: u32,
    pub(crate) generation: u64,
}

/// A 3050 not acknowledged yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outgoing {
    pub(crate) service: u32,
    pub(crate) ue: u32,
    pub(crate) region: u32,
    pub(crate) generation: u64,
    /// The 3050's record, as sent.
    pub(crate) record: Vec<u8>,
}

/// An order a server gets when it comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RejoinOrder {
    pub(crate) server: u32,
    pub(crate) service: u32,
    pub(crate) order: Order,
}

/// The orders that wait for a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Order {
    /// Drop the instance; the live one is at `host` under `epoch`.
    Release { host: u32, epoch: u64 },
    /// Do not go live with the relocation of `epoch`.
    Abort { epoch: u64 },
    /// Serve on: a 1006 of `epoch` or older still waiting is off (added last, so that
    /// older snapshots read the same).
    Resume { epoch: u64 },
}

impl From<v2::Snapshot> for Snapshot {
    /// v2 knew no regions.
    fn from(base: v2::Snapshot) -> Self {
        Self {
            base,
            generations: Vec::new(),
            moved: Vec::new(),
            outgoing: Vec::new(),
            rejoin_orders: Vec::new(),
        }
    }
}
