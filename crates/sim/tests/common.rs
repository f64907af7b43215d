//! Helpers shared by the scenario tests.
#![allow(dead_code, unreachable_pub)]

use edgeshift_control::Strategy;
use edgeshift_sim::{Report, Scenario, SimConfig, TraceEntry};

/// Runs a built-in scenario (or TOML text) and asserts the invariants held.
pub fn run_ok(scenario: Scenario, strategy: Strategy, seed: u64) -> (Report, Vec<TraceEntry>) {
    let (report, trace) = sim(scenario, SimConfig::new(strategy, seed));
    assert_eq!(
        report.invariant_violations, 0,
        "violations: {:#?}",
        report.violations
    );
    assert!(report.final_state_matches_twin);
    assert_eq!(report.inputs_sent, report.inputs_applied_once);
    assert!(report.inputs_sent > 0);
    (report, trace)
}

/// Runs a scenario.
pub fn sim(scenario: Scenario, cfg: SimConfig) -> (Report, Vec<TraceEntry>) {
    edgeshift_sim::run(scenario, cfg).expect("the simulator starts")
}

/// A built-in scenario.
pub fn builtin(name: &str) -> Scenario {
    Scenario::load(name).expect("built-in scenario")
}

/// Messages of the trace as (code, from, to).
pub fn messages(trace: &[TraceEntry]) -> Vec<(u16, String, String)> {
    trace
        .iter()
        .filter_map(|e| match e {
            TraceEntry::Msg { code, from, to, .. } => {
                Some((*code, from.to_string(), to.to_string()))
            }
            TraceEntry::Event { .. } => None,
        })
        .collect()
}

/// Events of the trace as (node, text).
pub fn events(trace: &[TraceEntry]) -> Vec<(String, String)> {
    trace
        .iter()
        .filter_map(|e| match e {
            TraceEntry::Event { node, what, .. } => Some((node.to_string(), what.clone())),
            TraceEntry::Msg { .. } => None,
        })
        .collect()
}

/// Index of the first message matching, after `from_index`.
pub fn find(
    msgs: &[(u16, String, String)],
    from_index: usize,
    code: u16,
    from: &str,
    to: &str,
) -> usize {
    msgs.iter()
        .enumerate()
        .skip(from_index)
        .find(|(_, m)| m.0 == code && m.1 == from && m.2 == to)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no {code} {from} -> {to} after message {from_index}"))
}
