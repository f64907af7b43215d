//! `--fault` end to end: the live demo with daemons killed (a real SIGKILL with
//! `--processes`), restarted and partitioned keeps every input answered once and the
//! live state equal to the twin; the simulator takes the same specs; bad specs are
//! refused with the reason.

mod common;

use common::{edgeshift, take_json};

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "edgeshift-faults-test-{}-{name}",
        std::process::id()
    ))
}

/// Runs the demo with `args`, checks its JSON record is clean, returns its output.
fn clean_demo(name: &str, args: &[&str]) -> String {
    let json = temp(&format!("{name}.json"));
    let mut all = vec![
        "demo",
        "--quiet",
        "--json",
        json.to_str().expect("utf-8 path"),
    ];
    all.extend_from_slice(args);
    let (ok, text) = edgeshift(&all);
    assert!(ok, "{args:?}: {text}");
    let v = take_json(&json);
    assert_eq!(v["invariant_violations"], 0, "{args:?}: {v}");
    assert_eq!(v["final_state_matches_twin"], true, "{args:?}");
    assert_eq!(v["inputs_sent"], v["inputs_applied_once"], "{args:?}");
    assert_eq!(v["services_lost"], 0, "{args:?}");
    assert!(text.contains("-> equal"), "{text}");
    text
}

#[test]
fn a_killed_source_process_continues_from_its_shadow() {
    let text = clean_demo("kill-me1", &["--processes", "--fault", "kill:me1@5.5s"]);
    assert!(text.contains("Fault { kill:me1@5.5s }"), "{text}");
    assert!(
        text.contains("ServerDown { server: ServerId(1) }"),
        "{text}"
    );
    assert!(text.contains("Promoted"), "{text}");
}

#[test]
fn a_restarted_ran_agent_and_a_killed_target_lose_nothing() {
    let text = clean_demo(
        "ran-restart",
        &[
            "--processes",
            "--fault",
            "kill:ran1@5s",
            "--fault",
            "restart:ran1@6s",
        ],
    );
    assert!(text.contains("Fault { restart:ran1@6s }"), "{text}");
    let text = clean_demo("kill-me3", &["--processes", "--fault", "kill:me3@7.6s"]);
    assert!(
        text.contains("ServerDown { server: ServerId(3) }"),
        "{text}"
    );
}

#[test]
fn a_service_crosses_regions_between_processes_while_the_target_region_restarts() {
    // Cell 3 and me3 are region 1's, with their own control node (`control_r1`), killed
    // and restarted just before the handover from cell 1 (region 0) to cell 3.
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/regions-demo.toml");
    let text = clean_demo(
        "regions",
        &[
            "--processes",
            "--scenario",
            scenario.to_str().expect("utf-8 path"),
            "--fault",
            "kill:control_r1@7.6s",
            "--fault",
            "restart:control_r1@7.9s",
        ],
    );
    assert!(text.contains("relocation 1: svc1 me1 -> me3"), "{text}");
    assert!(
        text.contains("1006 Relocate             control_r1 -> me1"),
        "region 1's control node triggers the move: {text}"
    );
    assert!(text.contains("Fault { restart:control_r1@7.9s }"), "{text}");
}

#[test]
fn a_partition_between_servers_makes_no_second_live_instance() {
    // In one process: the daemons cut their own links.
    let text = clean_demo("partition", &["--fault", "partition:me1-me3@7s+3s"]);
    assert!(text.contains("Fault { partition:me1-me3@7s+3s }"), "{text}");
}

#[test]
fn the_simulator_takes_the_same_faults() {
    let (ok, text) = edgeshift(&[
        "sim",
        "--scenario",
        "demo",
        "--fault",
        "kill:me1@5.5s",
        "--fault",
        "partition:me2-control@9s+2s",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("invariants: all held"), "{text}");
}

#[test]
fn a_killed_control_leader_hands_over_to_a_replica_on_etcd() {
    if edgeshift_etcd::local::etcd_binary().is_none() {
        eprintln!("SKIPPED: no etcd binary (apt-get install etcd-server)");
        return;
    }
    // Killed during the demo's shadow sync, before the handover at about 7.8 s.
    let text = clean_demo(
        "kill-control1",
        &[
            "--control-replicas",
            "3",
            "--store",
            "etcd",
            "--fault",
            "kill:control1@5s",
        ],
    );
    assert!(text.contains("control1: Leading"), "{text}");
    assert!(
        text.contains("takeover after control1 was killed: control"),
        "{text}"
    );
    assert!(text.contains("first relocation decided"), "{text}");
    assert!(!text.contains("no relocation happened"), "{text}");
}

#[test]
fn a_service_crosses_regions_on_etcd_while_both_regions_leaders_are_killed() {
    if edgeshift_etcd::local::etcd_binary().is_none() {
        eprintln!("SKIPPED: no etcd binary (apt-get install etcd-server)");
        return;
    }
    // Two control groups of three replicas (separate processes) on one local etcd, each
    // under its own prefix. Both leaders get a SIGKILL during the shadow sync, before the
    // handover from cell 1 (region 0) to cell 3 (region 1, with me3).
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/regions-demo.toml");
    let text = clean_demo(
        "regions-etcd",
        &[
            "--processes",
            "--scenario",
            scenario.to_str().expect("utf-8 path"),
            "--control-replicas",
            "3",
            "--store",
            "etcd",
            "--fault",
            "kill:control_r1_1@5s",
            "--fault",
            "kill:control1@6s",
        ],
    );
    assert!(text.contains("control1: Leading"), "{text}");
    assert!(text.contains("control_r1_1: Leading"), "{text}");
    assert!(
        text.contains("takeover after control_r1_1 was killed: control_r1_"),
        "{text}"
    );
    assert!(
        text.contains("takeover after control1 was killed: control"),
        "{text}"
    );
    assert!(text.contains("relocation 1: svc1 me1 -> me3"), "{text}");
    assert!(
        text.contains("1006 Relocate             control_r1 -> me1"),
        "region 1's new leader triggers the move: {text}"
    );
}

#[test]
fn bad_faults_are_refused_with_the_reason() {
    for (args, why) in [
        (
            vec!["demo", "--fault", "stop:me1@1s+1s"],
            "stop needs --processes",
        ),
        (vec!["demo", "--fault", "kill:me9@1s"], "me9"),
        (vec!["demo", "--fault", "kill:ue1@1s"], "UEs are not killed"),
        (vec!["demo", "--fault", "zap:me1@1s"], "unknown kind"),
        (vec!["sim", "--fault", "kill:me7@1s"], "me7"),
        (
            vec!["demo", "--control-replicas", "3"],
            "needs --store etcd",
        ),
        (vec!["demo", "--store", "zk"], "expected redb or etcd"),
    ] {
        let (ok, text) = edgeshift(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(text.contains(why), "{args:?}: {text}");
    }
}
