//! A deterministic discrete-event simulator that runs every edgeshift role (base
//! stations, ME servers, the control node, UEs) in virtual time, over links with latency,
//! bandwidth and loss, with a radio and mobility model that produces measurement reports,
//! and the invariant checkers of `edgeshift-record` watching every event.
//!
//! A seed fixes the whole run: `Sim::new(scenario, SimConfig::new(strategy, seed)).run()`
//! gives the same [`Report`] and trace every time. Every message is encoded and decoded
//! with the wire codec on its way, so the codec is exercised by every run.
//!
//! City runs ([`city::run`]) put a mobility trace's UEs through the same engine, one run
//! per strategy; [`html::render`] draws their report.
#![forbid(unsafe_code)]

pub mod bench;
pub mod city;
pub mod delta_tick;
mod engine;
pub mod html;
pub mod isolation;
pub mod link;
pub mod module_check;
pub mod predict;
mod queue;
mod swarm;

pub use edgeshift_record::{LoadSample, LoadTracker, Percentiles, RelocationRecord, Report};
pub use edgeshift_runtime::DEFAULT_FUEL_PER_INPUT;
pub use edgeshift_world::{BUILTIN, Scenario, ScenarioError};
pub use engine::{Faults, Sim, SimConfig, SimError, TraceEntry};
pub use swarm::{LossyLink, Outage, OutageKind, Swarm};

/// Runs `scenario` once and returns its report and trace.
///
/// # Errors
/// See [`Sim::new`].
pub fn run(scenario: Scenario, cfg: SimConfig) -> Result<(Report, Vec<TraceEntry>), SimError> {
    Ok(Sim::new(scenario, cfg)?.run())
}

/// A digest of a trace, to compare runs for determinism.
#[must_use]
pub fn trace_digest(trace: &[TraceEntry]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for e in trace {
        h.update(format!("{e:?}").as_bytes());
    }
    h.digest128()
}
