//! Snapshot format v1: the registry as plain data (ids as integers, times as nanoseconds
//! since the common epoch), each service with its relocation state and its timers.
//!
//! Frozen once released: `tests/data/snapshot-v1.bin` must keep decoding to the same
//! snapshot. A change of any type here is a new version (a `v2` module, an upgrade from
//! v1, and [`super::CURRENT`] raised), never an edit.

use serde::{Deserialize, Serialize};

/// The whole registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// In service order.
    pub(crate) services: Vec<Service>,
    /// In server order.
    pub(crate) loads: Vec<Load>,
    pub(crate) stats: Stats,
    /// When the next load-balancing check is due.
    pub(crate) load_check: Option<u64>,
}

/// One service's entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Service {
    pub(crate) id: u32,
    pub(crate) ue: u32,
    pub(crate) cell: u32,
    pub(crate) previous_cell: Option<u32>,
    pub(crate) host: u32,
    pub(crate) epoch: u64,
    pub(crate) spec: Spec,
    pub(crate) state_bytes: u64,
    /// Servers with a shadow, in order.
    pub(crate) shadows: Vec<u32>,
    /// Servers with a planned shadow, in order.
    pub(crate) planned: Vec<u32>,
    /// Candidate cells of the last prediction.
    pub(crate) predicted: Vec<u32>,
    pub(crate) last_handover: Option<Handover>,
    pub(crate) relocation: Option<Relocation>,
    /// When the 1006 of the scheduled relocation goes out.
    pub(crate) trigger_at: Option<u64>,
    /// When each planned shadow is requested, in server order.
    pub(crate) jit_starts: Vec<JitStart>,
    /// When the shadows go if no handover comes.
    pub(crate) shadow_expiry: Option<u64>,
}

/// Code and context of a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub(crate) code: Code,
    pub(crate) config: Vec<u8>,
    pub(crate) latency_budget_ms: u32,
}

/// A service's code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Code {
    Inline { kind: String, bytes: Vec<u8> },
    Hash(u128),
}

/// The last handover of a service's UE.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Handover {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) at: u64,
}

/// How a relocation moves the state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Mode {
    Hot,
    Cold,
    Precopy,
}

/// A relocation under way (see the node's `Relocation`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Relocation {
    Scheduled {
        target: u32,
        mode: Mode,
        epoch: u64,
        at: u64,
    },
    AwaitingShadow {
        target: u32,
        epoch: u64,
        since: u64,
    },
    Triggered {
        target: u32,
        mode: Mode,
        epoch: u64,
        at: u64,
    },
}

/// A planned shadow's start.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct JitStart {
    pub(crate) server: u32,
    pub(crate) at: u64,
}

/// A server's last reported (or booked) load.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Load {
    pub(crate) server: u32,
    pub(crate) load: f32,
    pub(crate) services: u32,
}

/// The node's counters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stats {
    pub(crate) predictions: u64,
    pub(crate) shadows_requested: u64,
    pub(crate) handovers: u64,
    pub(crate) relocations_triggered: u64,
    pub(crate) relocations_completed: u64,
    pub(crate) relocations_failed: u64,
    pub(crate) skipped_same_server: u64,
    pub(crate) skipped_within_budget: u64,
    pub(crate) mispredicted: u64,
    pub(crate) reactive: u64,
    pub(crate) pingpongs: u64,
    pub(crate) cancelled: u64,
    pub(crate) load_balanced: u64,
}
