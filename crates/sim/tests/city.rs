//! City runs: the shipped SUMO trace and synthetic mobility through every role, with the
//! modelled service.

mod common;

use edgeshift_control::Strategy;
use edgeshift_sim::SimConfig;
use edgeshift_sim::city::{CityReport, run};
use edgeshift_world::{City, Mobility};
use proptest::prelude::*;

/// The SUMO sample shipped in the repository.
const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sumo/fcd.xml.gz");

/// The JSON record without its two wall-clock fields (the only ones a seed does not fix).
fn reproducible(r: &CityReport) -> String {
    let mut v = serde_json::to_value(r).expect("serializes");
    if let Some(list) = v.get_mut("strategies").and_then(|s| s.as_array_mut()) {
        for s in list {
            if let Some(o) = s.as_object_mut() {
                o.remove("wall_s");
                o.remove("ue_s_per_wall_s");
            }
        }
    }
    serde_json::to_string(&v).expect("serializes")
}

/// Twelve synthetic UEs for 40 s in the Manhattan grid, 8 MiB each.
fn small_manhattan() -> City {
    City {
        ues: Some(12),
        duration_s: Some(40.0),
        state_bytes: 8 << 20,
        ..City::new(Mobility::Manhattan)
    }
}

#[test]
fn every_strategy_runs_the_sumo_trace_without_a_violation() {
    let city = City {
        ues: Some(25),
        duration_s: Some(90.0),
        state_bytes: 32 << 20,
        ..City::new(Mobility::Sumo(TRACE.into()))
    };
    let report = run(&city, &Strategy::ALL, 1, 2).expect("runs");
    assert_eq!(report.ues, 25);
    assert_eq!(report.strategies.len(), 5);
    for r in &report.strategies {
        assert_eq!(
            r.invariant_violations, 0,
            "{}: {:?}",
            r.strategy, r.violations
        );
        assert!(r.final_state_matches_twin, "{}", r.strategy);
        assert_eq!(r.inputs_sent, r.inputs_applied_once, "{}", r.strategy);
        assert!(
            r.handovers > 10,
            "{}: {} handovers",
            r.strategy,
            r.handovers
        );
        assert!(r.server_load_peak >= 1);
    }
    let by = |s: &str| {
        report
            .strategies
            .iter()
            .find(|r| r.strategy == s)
            .expect("every strategy ran")
    };
    assert_eq!(by("stay").relocations, 0);
    assert!(by("cold").relocations > 0);
    // Only the shadow strategies hold shadows over time.
    assert!(by("shadow").shadow_resource_s_per_ue_h > by("cold").shadow_resource_s_per_ue_h);
    // A cold move of 32 MiB at 1 Gbit/s cannot hide; a ready shadow can.
    assert_eq!(by("cold").hidden_share, Some(0.0));
    assert!(by("shadow").hidden_share.is_some_and(|h| h > 0.0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// The same seed gives the same record, byte for byte (wall-clock fields aside),
    /// whatever the number of threads: two strategies on one thread or side by side, and
    /// one strategy with its run's two sides on one thread or two.
    #[test]
    fn the_same_seed_gives_the_same_record(seed in 1u64..1_000_000) {
        let city = City {
            seed,
            ..small_manhattan()
        };
        let strategies = [Strategy::Shadow, Strategy::Precopy];
        let a = run(&city, &strategies, seed, 1).expect("runs");
        let b = run(&city, &strategies, seed, 2).expect("runs");
        prop_assert_eq!(reproducible(&a), reproducible(&b));
        let one = run(&city, &[Strategy::Shadow], seed, 1).expect("runs");
        let two = run(&city, &[Strategy::Shadow], seed, 2).expect("runs");
        prop_assert_eq!(reproducible(&one), reproducible(&two));
        for r in &a.strategies {
            prop_assert_eq!(r.invariant_violations, 0, "{:?}", r.violations);
        }
    }
}

/// The modelled service moves in the time the in-memory one of the same size takes: the
/// simulator gives its state messages the link time of what they stand for.
#[test]
fn a_modelled_state_moves_as_slowly_as_real_bytes() {
    let added = |service: &str, strategy: Strategy| {
        let mut cfg = SimConfig::new(strategy, 1);
        cfg.service = Some(service.into());
        cfg.state_bytes = Some(16 << 20);
        let (r, _) = common::sim(common::builtin("fig4"), cfg);
        assert_eq!(r.invariant_violations, 0, "{service}: {:?}", r.violations);
        assert!(r.final_state_matches_twin);
        (r.added_interruption_ms.max, r.shadow_bytes)
    };
    for strategy in [Strategy::Cold, Strategy::Shadow] {
        let (mem, mem_bytes) = added("mem", strategy);
        let (model, model_bytes) = added("model", strategy);
        assert!(
            (mem - model).abs() < 1.0,
            "{strategy}: mem adds {mem} ms, model {model} ms"
        );
        let ratio = model_bytes as f64 / mem_bytes as f64;
        assert!((0.95..1.05).contains(&ratio), "{strategy}: bytes {ratio}");
    }
    // Cold copies 16 MiB at 1 Gbit/s (134 ms, of which the radio gap hides about 50).
    assert!(added("model", Strategy::Cold).0 > 50.0);
}

/// Replay sync in batches (`--replay-batch-ms`): the shadows still hide the moves, and
/// every input is still applied exactly once.
#[test]
fn batched_replay_sync_keeps_every_invariant() {
    let city = City {
        replay_batch_ms: 100,
        ..small_manhattan()
    };
    assert_eq!(city.scenario().expect("builds").edge.replay_batch_ms, 100);
    let report = run(&city, &[Strategy::Shadow], 1, 1).expect("runs");
    let r = &report.strategies[0];
    assert_eq!(r.invariant_violations, 0, "{:?}", r.violations);
    assert!(r.final_state_matches_twin);
    assert_eq!(r.inputs_sent, r.inputs_applied_once);
    assert!(r.relocations > 0);
    assert!(
        r.hidden_share.is_some_and(|h| h > 0.9),
        "{:?}",
        r.hidden_share
    );
}

/// Inputs in runs (the city default) against one message per input, on the same seed and
/// mobility: the same inputs, each applied exactly once, the same handovers, and the
/// moves hidden as well.
#[test]
fn input_runs_keep_what_one_message_per_input_gives() {
    let record = |input_run_ms| {
        let city = City {
            input_run_ms,
            ..small_manhattan()
        };
        let report = run(&city, &[Strategy::Shadow], 1, 1).expect("runs");
        report.strategies[0].clone()
    };
    let (runs, single) = (record(City::DEFAULT_INPUT_RUN_MS), record(0));
    for r in [&runs, &single] {
        assert_eq!(r.invariant_violations, 0, "{:?}", r.violations);
        assert!(r.final_state_matches_twin);
        assert_eq!(r.inputs_sent, r.inputs_applied_once);
    }
    assert_eq!(runs.inputs_sent, single.inputs_sent);
    assert_eq!(runs.handovers, single.handovers);
    assert!(runs.relocations > 0);
    assert_eq!(runs.hidden_share, single.hidden_share);
}
