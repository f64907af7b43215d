//! Faults in the `demo` scenario (UE from cell 1 towards cells 2 and 3; shadows at me3
//! from 4.3 s and me2 from 5.1 s; handover to cell 3 at 7.84 s): crashed, restarted,
//! stopped and partitioned nodes; and, at the end, a region's control node restarted in
//! `regions`. Every run keeps every invariant (each input applied once, one live
//! instance, the final state equal to the never-moved twin); each test also checks that
//! the fault did what it says, so that a fault that silently missed its target cannot
//! pass.

mod common;

use common::*;
use edgeshift_control::Strategy;
use edgeshift_sim::{Report, SimConfig, TraceEntry};
use edgeshift_world::fault::Fault;

fn with_faults(strategy: Strategy, faults: &[&str]) -> (Report, Vec<TraceEntry>) {
    let mut cfg = SimConfig::new(strategy, 1);
    cfg.outages = faults
        .iter()
        .map(|f| f.parse::<Fault>().expect("fault spec"))
        .collect();
    let (report, trace) = sim(builtin("demo"), cfg);
    assert_eq!(
        report.invariant_violations, 0,
        "{faults:?} {strategy}: {:#?}",
        report.violations
    );
    assert!(report.final_state_matches_twin, "{faults:?} {strategy}");
    assert_eq!(report.services_lost, 0, "{faults:?} {strategy}");
    assert_eq!(report.inputs_sent, report.inputs_applied_once);
    (report, trace)
}

fn has(trace: &[TraceEntry], node: &str, prefix: &str) -> bool {
    events(trace)
        .iter()
        .any(|(n, w)| n == node && w.starts_with(prefix))
}

#[test]
fn a_killed_source_continues_from_its_shadow() {
    let (report, trace) = with_faults(Strategy::Shadow, &["kill:me1@5.5s"]);
    assert!(has(&trace, "control", "ServerDown { server: ServerId(1)"));
    // Promoted at a shadow, then relocated on to me3 at the handover.
    let promoted = events(&trace)
        .iter()
        .any(|(n, w)| n.starts_with("me") && w.starts_with("Promoted"));
    assert!(promoted);
    assert!(report.relocations >= 1);
    // Shadow-jit has not made its shadows yet at 5.5 s: the service is lost, and the run
    // says so instead of breaking an invariant.
    let mut cfg = SimConfig::new(Strategy::ShadowJit { threshold: 0.3 }, 1);
    cfg.outages = vec!["kill:me1@5.5s".parse().expect("spec")];
    let (report, _) = sim(builtin("demo"), cfg);
    assert_eq!((report.services_lost, report.invariant_violations), (1, 0));
}

#[test]
fn a_target_killed_before_the_handover_leaves_the_service_at_the_source() {
    let (_, trace) = with_faults(Strategy::Shadow, &["kill:me3@7.6s"]);
    assert!(has(&trace, "control", "ServerDown { server: ServerId(3)"));
    // The frozen source is told to resume well before its five 2004s would run out.
    assert!(has(&trace, "me1", "RelocationFailed"));
    let resumed_at = trace
        .iter()
        .find_map(|e| match e {
            TraceEntry::Event { at, node, what }
                if node.to_string() == "me1" && what.starts_with("RelocationFailed") =>
            {
                Some(at.as_secs_f64())
            }
            _ => None,
        })
        .expect("resumed");
    assert!(resumed_at < 10.0, "resumed at {resumed_at} s");
}

#[test]
fn a_target_silent_after_going_live_is_the_host_its_source_says() {
    // me3 goes live at 7.843 s, then its link to the control node loses everything for
    // 3 s (TCP retransmits): declared dead, the relocation is called off, but me1 had
    // handed over already and says so. The service waits at me3 (reported lost meanwhile,
    // no shadow is left), serves on when me3 is back, and is lost for good when me3 dies.
    let mut cfg = SimConfig::new(Strategy::Shadow, 1);
    cfg.outages = ["loss:me3-control@7.8s+3s:0.99", "kill:me3@12s"]
        .iter()
        .map(|f| f.parse::<Fault>().expect("fault spec"))
        .collect();
    let (report, trace) = sim(builtin("demo"), cfg);
    assert!(has(&trace, "control", "ServerDown { server: ServerId(3)"));
    assert!(has(
        &trace,
        "control",
        "RelocationCompleted { service: ServiceId(1), ue: UeId(1), from: ServerId(1), to: ServerId(3)"
    ));
    assert!(!has(&trace, "control", "ProtocolViolation"));
    assert!(!has(&trace, "me1", "RelocationFailed"));
    assert_eq!(report.services_lost, 1);
    assert_eq!(report.invariant_violations, 0, "{:#?}", report.violations);
    // Back before anything else happens, it serves every input.
    let (_, trace) = with_faults(Strategy::Shadow, &["loss:me3-control@7.8s+3s:0.99"]);
    assert!(has(
        &trace,
        "control",
        "ServerUp { server: ServerId(3), restarted: false"
    ));
}

#[test]
fn a_restarted_base_station_learns_its_ue_again() {
    let (_, trace) = with_faults(Strategy::Shadow, &["kill:ran1@5s", "restart:ran1@6s"]);
    let m = messages(&trace);
    find(&m, 0, 3021, "cell1", "control");
    assert!(has(&trace, "cell1", "UeAttached"));
}

#[test]
fn a_partition_between_source_and_target_makes_no_second_live_instance() {
    for strategy in Strategy::ALL {
        with_faults(strategy, &["partition:me1-me3@7s+3s"]);
    }
    // Cut after the 2004 reached the target: the 2005 is lost, the target went live; the
    // control node settles it with an abort and a release, never a resumed source.
    let (_, trace) = with_faults(Strategy::Shadow, &["partition:me1-me3@7.843s+3s"]);
    assert!(has(&trace, "me3", "Activated"));
    assert!(!has(&trace, "me1", "RelocationFailed"));
}

#[test]
fn a_server_cut_from_the_control_node_is_fenced_then_released() {
    let (_, trace) = with_faults(Strategy::Shadow, &["partition:me1-control@5.5s+3s"]);
    assert!(has(&trace, "me1", "Fenced"));
    assert!(has(&trace, "control", "FailoverStarted"));
    assert!(has(&trace, "me1", "Released"));
}

#[test]
fn a_stopped_server_is_fenced_when_it_runs_again() {
    let (_, trace) = with_faults(Strategy::Shadow, &["stop:me1@5.5s+2s"]);
    assert!(has(&trace, "control", "FailoverStarted"));
    assert!(has(&trace, "me1", "Fenced"));
}

#[test]
fn a_killed_and_restarted_source_rejoins_empty() {
    let (_, trace) = with_faults(Strategy::Shadow, &["kill:me1@5.5s", "restart:me1@6s"]);
    assert!(has(
        &trace,
        "control",
        "ServerUp { server: ServerId(1), restarted: true"
    ));
}

#[test]
fn a_host_killed_with_no_shadow_is_reported_lost_not_as_a_violation() {
    let mut cfg = SimConfig::new(Strategy::Shadow, 1);
    cfg.outages = vec!["kill:me1@2s".parse().expect("spec")];
    let (report, trace) = sim(builtin("demo"), cfg);
    assert!(has(&trace, "control", "ServiceLost"));
    assert_eq!(report.services_lost, 1);
    assert_eq!(report.invariant_violations, 0, "{:#?}", report.violations);
}

#[test]
fn faults_naming_unknown_nodes_are_refused() {
    let mut cfg = SimConfig::new(Strategy::Shadow, 1);
    cfg.outages = vec!["kill:me9@1s".parse().expect("spec")];
    let err = edgeshift_sim::run(builtin("demo"), cfg).expect_err("no me9");
    assert!(err.to_string().contains("me9"), "{err}");
    let mut cfg = SimConfig::new(Strategy::Shadow, 1);
    cfg.outages = vec!["stop:ue1@1s+1s".parse().expect("spec")];
    let err = edgeshift_sim::run(builtin("demo"), cfg).expect_err("UEs are not stopped");
    assert!(err.to_string().contains("UEs are not"), "{err}");
}

#[test]
fn a_shadow_beyond_the_memory_budget_is_refused_and_the_service_stays() {
    // The demo's service holds 16 MiB: a 40 MiB budget takes its shadows, 8 MiB none.
    for (mib, refused) in [(40, false), (8, true)] {
        let mut s = builtin("demo");
        s.edge.memory_mib = mib;
        let (report, trace) = sim(s, SimConfig::new(Strategy::Shadow, 1));
        assert_eq!(report.invariant_violations, 0, "{:#?}", report.violations);
        assert!(report.final_state_matches_twin);
        assert_eq!(
            has(&trace, "control", "ShadowRefused"),
            refused,
            "{mib} MiB"
        );
        assert_eq!(report.relocations == 0, refused, "{mib} MiB");
    }
}

/// The `regions` scenario: region 1's control node dies as region 0 hands it ue1's service
/// (at 44.2 s) and restarts from its registry 0.4 s later; the 3050 is sent again until it
/// is acknowledged, and the service crosses the border with nothing lost.
#[test]
fn a_region_control_node_that_restarts_during_a_handoff_still_takes_the_service() {
    for strategy in [Strategy::Shadow, Strategy::Cold] {
        let mut cfg = SimConfig::new(strategy, 1);
        cfg.outages = ["kill:control_r1@44.1s", "restart:control_r1@44.5s"]
            .iter()
            .map(|f| f.parse::<Fault>().expect("fault spec"))
            .collect();
        let (report, trace) = sim(builtin("regions"), cfg);
        assert_eq!(report.invariant_violations, 0, "{:#?}", report.violations);
        assert!(report.final_state_matches_twin);
        assert!(
            has(
                &trace,
                "control_r1",
                "ServiceAdopted { service: ServiceId(1)"
            ),
            "{strategy}: the restarted node took the service"
        );
        assert_eq!(report.relocations, 8, "{strategy}");
    }
}

/// A checker that keeps only the newest inputs densely (as city runs do) counts exactly
/// as one that keeps them all: through a promotion, whose undone inputs are counted again,
/// and a relocation, the reports are the same. A window shorter than the promoted
/// shadow's lag (it is promoted some 75 inputs behind, after the dead server's lease
/// ran out) cannot check its state, and says so.
#[test]
fn a_windowed_checker_reports_what_a_full_one_does() {
    let run = |window: Option<usize>| {
        let mut cfg = SimConfig::new(Strategy::Shadow, 1);
        cfg.outages = vec!["kill:me1@5.5s".parse().expect("spec")];
        cfg.check_window = window;
        sim(builtin("demo"), cfg)
    };
    let (full, trace) = run(None);
    assert_eq!(full.invariant_violations, 0, "{:?}", full.violations);
    assert!(full.relocations >= 1);
    let promoted = events(&trace)
        .iter()
        .any(|(n, w)| n.starts_with("me") && w.starts_with("Promoted"));
    assert!(promoted);
    assert!(full.inputs_sent > 512, "the windows below drop inputs");
    for window in [256, 512] {
        assert_eq!(run(Some(window)).0, full, "window {window}");
    }
    let short = run(Some(8)).0;
    assert!(!short.violations.is_empty());
    assert!(
        short
            .violations
            .iter()
            .all(|v| v.what.contains("older than the checker's window")),
        "{:?}",
        short.violations
    );
}
