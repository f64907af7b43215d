//! The JSON record of a run (`edgeshift sim --json`, `edgeshift demo --json`).

use serde::Serialize;

use crate::check::Violation;

/// Percentiles of the added interruption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (all zero when empty).
    #[must_use]
    pub fn of(v: &[f64]) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        Self {
            p50: Self::rank(&s, 0.50),
            p99: Self::rank(&s, 0.99),
            max: s[s.len() - 1],
        }
    }

    /// The nearest-rank `p` quantile (0 < p ≤ 1) of `sorted` (ascending); 0 when empty.
    /// Every percentile of every report (`sim`, `demo`, `predict`, `bench`) is this one.
    #[must_use]
    pub fn rank(sorted: &[f64], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i]
    }
}

/// One relocation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelocationRecord {
    /// When the target went live (seconds in the run's time reference).
    pub at_s: f64,
    /// The UE.
    pub ue: String,
    /// The service.
    pub service: String,
    /// Old host.
    pub from: String,
    /// New host.
    pub to: String,
    /// State size.
    pub state_bytes: u64,
    /// Radio gap of the handover it followed (0 without a handover).
    pub radio_gap_ms: f64,
    /// Service gap seen by the UE (detach to first answer minus the normal round trip;
    /// without a handover: the time the service was frozen).
    pub service_gap_ms: f64,
    /// Service gap minus radio gap, never negative.
    pub added_ms: f64,
    /// 1006 at the source to the target live.
    pub critical_path_ms: f64,
    /// Whether the target's shadow passed the first 2004 check.
    pub checksum_valid_first_try: bool,
}

/// The whole record of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Strategy.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Completed handovers.
    pub handovers: u64,
    /// Handovers that failed (target not joined in time; the UE re-established).
    pub handover_failures: u64,
    /// Completed relocations.
    pub relocations: u64,
    /// Handovers that stayed on the same ME server.
    pub relocations_skipped_same_server: u64,
    /// Handovers where the current host still met the latency budget.
    pub relocations_skipped_within_budget: u64,
    /// Handovers whose target was not a predicted candidate.
    pub mispredicted: u64,
    /// Relocations that had to copy because no shadow was there.
    pub reactive_fallbacks: u64,
    /// Cancelled handovers.
    pub handovers_cancelled: u64,
    /// Ping-pong handovers.
    pub pingpongs: u64,
    /// Broken invariants (0 on a correct run).
    pub invariant_violations: u64,
    /// Inputs the UEs sent.
    pub inputs_sent: u64,
    /// Inputs applied exactly once to the live state.
    pub inputs_applied_once: u64,
    /// Whether every final state equals its never-moved twin (services lost excepted).
    pub final_state_matches_twin: bool,
    /// Services whose host died with no ready shadow to take over (not violations: the
    /// run injected the crash; see `docs/simulation.md`).
    pub services_lost: u64,
    /// The longest any answered input waited for its answer (ms), over every UE: the worst
    /// the user saw, a failover included.
    pub longest_answer_wait_ms: f64,
    /// Interruption added beyond the radio gap, over all handovers.
    pub added_interruption_ms: Percentiles,
    /// Bytes of shadow transfers, syncs and catch-ups.
    pub shadow_bytes: u64,
    /// Total lifetime of shadows (seconds).
    pub shadow_seconds: f64,
    /// Each relocation.
    pub relocation_records: Vec<RelocationRecord>,
    /// The violations themselves.
    pub violations: Vec<Violation>,
    /// Input the roles ignored because it did not fit the protocol (not invariant
    /// violations: a late duplicate, a message for a state that has moved on).
    pub protocol_notes: Vec<Note>,
}

/// Input a role ignored, as it reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Note {
    /// Time (seconds in the run's time reference).
    pub at_s: f64,
    /// The role.
    pub node: String,
    /// What it said.
    pub what: String,
}
