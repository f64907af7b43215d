//! Split runs (`SimConfig::split`): the radio side and the server side as two logical
//! processes, advancing in windows of the shortest link between them. On one thread or
//! two they give the same record; every invariant holds, in the built-in scenarios as in
//! a city; and the UEs send what they send in one process.

mod common;

use edgeshift_control::Strategy;
use edgeshift_sim::{BUILTIN, Report, SimConfig};

fn run(name: &str, strategy: Strategy, split: Option<usize>) -> Report {
    let mut cfg = SimConfig::new(strategy, 7);
    cfg.keep_trace = false;
    if let Some(threads) = split {
        cfg.split = true;
        cfg.threads = threads;
    }
    common::sim(common::builtin(name), cfg).0
}

#[test]
fn a_split_run_keeps_every_invariant_and_its_record_does_not_depend_on_the_threads() {
    let mut runs = Vec::new();
    for name in BUILTIN {
        runs.push((name, Strategy::ALL[4]));
    }
    for name in ["fig4", "corridor", "mispredict"] {
        for strategy in Strategy::ALL {
            runs.push((name, strategy));
        }
    }
    for (name, strategy) in runs {
        let one = run(name, strategy, Some(1));
        let two = run(name, strategy, Some(2));
        assert_eq!(one, two, "{name} {strategy}: one thread or two");
        assert_eq!(
            one.invariant_violations, 0,
            "{name} {strategy}: {:#?}",
            one.violations
        );
        assert!(one.final_state_matches_twin, "{name} {strategy}");
        assert_eq!(
            one.inputs_sent, one.inputs_applied_once,
            "{name} {strategy}"
        );
        let whole = run(name, strategy, None);
        assert_eq!(one.inputs_sent, whole.inputs_sent, "{name} {strategy}");
        assert_eq!(one.handovers, whole.handovers, "{name} {strategy}");
    }
}

/// What stays in one process: a run with injected faults splits into nothing, so its
/// record is the unsplit one.
#[test]
fn a_run_with_faults_stays_in_one_process() {
    let mut cfg = SimConfig::new(Strategy::Shadow, 3);
    cfg.keep_trace = false;
    cfg.faults.radio_dup = 0.1;
    let whole = common::sim(common::builtin("fig4"), cfg.clone()).0;
    cfg.split = true;
    cfg.threads = 2;
    let asked = common::sim(common::builtin("fig4"), cfg).0;
    assert_eq!(whole, asked);
}
