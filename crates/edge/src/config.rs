//! Configuration of an [`crate::EdgeServer`].

use std::time::Duration;

use edgeshift_proto::{NodeId, ServerId};

/// Tunables of one ME server.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// This server.
    pub id: ServerId,
    /// Size of 1004 chunks.
    pub transfer_chunk: usize,
    /// Period of delta sync ticks.
    pub delta_interval: Duration,
    /// Replay sync batches inputs for this long (zero: forward each input at once).
    pub replay_batch: Duration,
    /// Answers to several inputs applied together go to the UE as one 3017 per cell
    /// (off: one 3011 each). For UEs that send their inputs in runs (3016).
    pub output_runs: bool,
    /// Inputs a live instance keeps for catch-ups: a replay shadow lacks only the inputs
    /// still on their way to it, and one that lacks more than the log holds gets the
    /// whole state instead. 1024 is 20 s of inputs at 50 per second; a longer log costs
    /// every live instance memory (100,000 inputs of 32 bytes held 5.6 MB) and a city
    /// run the time to grow it again after every relocation.
    pub input_log: usize,
    /// Answers kept per service to re-answer retransmitted inputs: those the UE has not
    /// confirmed (see `ServiceInput::answered_below`), which a 2004 or a transfer carries to
    /// the next host. Usually a round trip's worth; the bound is for a UE that has gone
    /// silent.
    pub answer_cache: usize,
    /// Live instances this server can host (load 1.0).
    pub capacity: u32,
    /// Period of load reports to the control node.
    pub load_report_interval: Duration,
    /// Precopy stops iterating when the remaining dirty state is at most this size.
    pub precopy_threshold: u64,
    /// Precopy stops after this many rounds.
    pub precopy_max_rounds: u32,
    /// States up to this size also have their memory checksum compared at 2004 (about
    /// 0.05 ms per MiB with xxh3); larger ones rely on the input-log digest alone.
    pub audit_max_bytes: u64,
    /// A frozen source that hears nothing from its target for this long (plus the time
    /// to move the state at `confirm_rate_bytes_s`) sends its 2004 again…
    pub confirm_timeout: Duration,
    /// …and after this many unanswered 2004s gives up: the instance is live again at the
    /// source, the held inputs are served, and the control node hears of the failure.
    pub confirm_attempts: u32,
    /// The slowest state transfer rate the timeout allows for (bytes per second).
    pub confirm_rate_bytes_s: f64,
    /// Heartbeats to the control node and the lease they earn (`None`: the server always
    /// serves, and a frozen source gives up on its own; for protocol tests without a
    /// control node).
    pub lease: Option<LeaseConfig>,
    /// State bytes this server may hold for live instances and shadows together; a
    /// shadow that would exceed it is refused (`None`: no limit).
    pub memory_budget: Option<u64>,
    /// Program code kept for later transfers, in bytes; beyond, the least recently used
    /// code no instance here runs is forgotten (peers send it inline again).
    pub code_cache_bytes: u64,
    /// Lend guest work to the driver as [`Job`](crate::Job)s instead of running it inside
    /// the role's calls: a slow guest then holds up only its own service. The driver must
    /// take jobs with `poll_job` and hand them back with `handle_job_done`.
    pub offload: bool,
    /// Optimistic activation: a ready replay shadow goes live, tentatively, at the target's
    /// 1006 instead of at the source's 2004, and commits when the 2004 matches (see
    /// `docs/architecture.md`). Set with the control node's own `optimistic`.
    pub optimistic: bool,
    /// The control node of this server's region: heartbeats and load reports go there.
    /// Reports about a service (3032, 3033, 3037) go to the control node that last
    /// commanded this server about it, which may be another region's.
    pub control: NodeId,
}

/// The lease that lets a server serve: it sends a 3006 every `heartbeat`, and may serve
/// until `duration` after it sent the last heartbeat the control node answered. The
/// control node declares the server dead only after a longer silence, so a server cut off
/// from it has stopped serving before a shadow elsewhere is promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Period of the heartbeats.
    pub heartbeat: Duration,
    /// How long an answered heartbeat lets the server serve, from when it was sent.
    pub duration: Duration,
    /// Chosen anew at each start of the server (a restart has lost its instances).
    pub incarnation: u64,
}

impl LeaseConfig {
    /// A heartbeat every 200 ms and a one-second lease.
    #[must_use]
    pub fn new(incarnation: u64) -> Self {
        Self {
            heartbeat: Duration::from_millis(200),
            duration: Duration::from_secs(1),
            incarnation,
        }
    }
}

impl EdgeConfig {
    /// Defaults for server `id`.
    #[must_use]
    pub fn new(id: ServerId) -> Self {
        Self {
            id,
            transfer_chunk: 1 << 20,
            delta_interval: Duration::from_millis(50),
            replay_batch: Duration::ZERO,
            output_runs: false,
            input_log: 1024,
            answer_cache: 2048,
            capacity: 100,
            load_report_interval: Duration::from_secs(1),
            precopy_threshold: 256 << 10,
            precopy_max_rounds: 8,
            audit_max_bytes: 16 << 20,
            confirm_timeout: Duration::from_secs(2),
            confirm_attempts: 5,
            confirm_rate_bytes_s: f64::from(32u32 << 20),
            lease: None,
            memory_budget: None,
            code_cache_bytes: 256 << 20,
            offload: false,
            optimistic: false,
            control: NodeId::CONTROL,
        }
    }
}
