//! Configuration of an [`crate::EdgeServer`].

use std::time::Duration;

use edgeshift_proto::ServerId;

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
    /// Inputs kept for catch-up.
    pub input_log: usize,
    /// Answers kept to re-answer retransmitted inputs.
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
            input_log: 100_000,
            answer_cache: 256,
            capacity: 100,
            load_report_interval: Duration::from_secs(1),
            precopy_threshold: 256 << 10,
            precopy_max_rounds: 8,
            audit_max_bytes: 16 << 20,
        }
    }
}
