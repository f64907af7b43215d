//! The binary end to end: a run writes the documented JSON; bad input gets a clear error.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{edgeshift, take_json};

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("edgeshift-cli-test-{}-{name}", std::process::id()))
}

#[test]
fn sim_writes_the_json_record() {
    let json = temp("fig4.json");
    let (ok, text) = edgeshift(&[
        "sim",
        "--scenario",
        "fig4",
        "--strategy",
        "shadow",
        "--seed",
        "1",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("invariants: all held"));
    let v = take_json(&json);
    for key in [
        "scenario",
        "strategy",
        "seed",
        "handovers",
        "relocations",
        "relocations_skipped_same_server",
        "mispredicted",
        "invariant_violations",
        "inputs_sent",
        "inputs_applied_once",
        "final_state_matches_twin",
        "added_interruption_ms",
        "shadow_bytes",
        "shadow_seconds",
        "relocation_records",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["relocations"], 1);
    assert_eq!(v["final_state_matches_twin"], true);
    let rec = &v["relocation_records"][0];
    for key in [
        "ue",
        "service",
        "from",
        "to",
        "state_bytes",
        "radio_gap_ms",
        "service_gap_ms",
        "added_ms",
        "critical_path_ms",
        "checksum_valid_first_try",
    ] {
        assert!(rec.get(key).is_some(), "record misses {key}");
    }
    assert_eq!(rec["added_ms"], 0.0);
}

#[test]
fn a_swarm_over_every_built_in_scenario_reports_each() {
    let (ok, text) = edgeshift(&[
        "sim",
        "--scenario",
        "all",
        "--runs",
        "2",
        "--seed",
        "3",
        "--jobs",
        "2",
    ]);
    assert!(ok, "{text}");
    for name in edgeshift_sim::BUILTIN {
        assert!(
            text.contains(&format!("2 seeds x 5 strategies on {name}: 0 failed")),
            "{name}: {text}"
        );
    }
}

#[test]
fn demo_compares_shadow_and_cold() {
    let (ok, text) = edgeshift(&["sim-demo", "--state-mib", "16"]);
    assert!(ok, "{text}");
    assert!(text.contains("2004 RelocateRequest"));
    assert!(text.lines().any(|l| l.starts_with("shadow")));
    assert!(text.lines().any(|l| l.starts_with("cold")));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let (ok, text) = edgeshift(&["sim", "--scenario", "no-such-scenario"]);
    assert!(!ok);
    assert!(text.contains("not a built-in scenario"), "{text}");

    let (ok, text) = edgeshift(&["sim", "--strategy", "teleport"]);
    assert!(!ok);
    assert!(text.contains("unknown strategy"), "{text}");

    let bad = temp("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nduration_s = 10.0\n[[cell]]\nid = 1\nx = \"far\"\n",
    )
    .expect("write");
    let (ok, text) = edgeshift(&["sim", "--scenario", bad.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&bad);
    assert!(!ok);
    assert!(text.contains("line 5"), "{text}");

    let (ok, text) = edgeshift(&["sim", "--state-mib", "0"]);
    assert!(!ok);
    assert!(text.contains("--state-mib"), "{text}");
}

#[test]
fn the_live_demo_relocates_and_matches_the_twin() {
    let json = temp("demo.json");
    let (ok, text) = edgeshift(&[
        "demo",
        "--quiet",
        "--duration",
        "10",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("2004 RelocateRequest"), "{text}");
    assert!(text.contains("-> equal"), "{text}");
    let v = take_json(&json);
    assert_eq!(v["final_state_matches_twin"], true);
    assert!(v["relocations"].as_u64() >= Some(1), "{v}");
    let r = &v["relocation_records"][0];
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some("me1"), Some("me3"))
    );
    assert!(
        r["added_ms"].is_number() && r["radio_gap_ms"].as_f64() > Some(0.0),
        "{r}"
    );
}

#[test]
fn daemons_in_separate_processes_run_make_before_break_handovers() {
    let json = temp("daps.json");
    let (ok, text) = edgeshift(&[
        "demo",
        "--quiet",
        "--processes",
        "--daps",
        "--duration",
        "10",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{text}");
    let v = take_json(&json);
    assert_eq!(v["invariant_violations"], 0, "{v}");
    assert_eq!(v["final_state_matches_twin"], true);
    assert_eq!(v["inputs_sent"], v["inputs_applied_once"], "{v}");
    // The deployment file took `daps` to the UE and RAN processes: the UE kept its source
    // link, so there was no radio gap.
    let r = &v["relocation_records"][0];
    assert_eq!(r["radio_gap_ms"].as_f64(), Some(0.0), "{r}");
    assert!(r["service_gap_ms"].is_number(), "{r}");
}

#[test]
fn daemons_reject_bad_configs_clearly() {
    // Not bad.toml: tests run in parallel and another one writes that.
    let cfg = temp("bad-deployment.toml");
    std::fs::write(
        &cfg,
        "scenario = \"demo\"\n[control]\nlisten = \"127.0.0.1:1\"\n",
    )
    .expect("written");
    let (ok, text) = edgeshift(&[
        "edge",
        "--id",
        "1",
        "--config",
        cfg.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(
        text.contains("scenario server me1 has no [[edge]] entry"),
        "{text}"
    );
    std::fs::write(&cfg, "scenario = \"demo\"\n[control]\nlisten = 5\n").expect("written");
    let (ok, text) = edgeshift(&["control", "--config", cfg.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(text.contains("line 3"), "{text}");
    let _ = std::fs::remove_file(&cfg);
    let (ok, text) = edgeshift(&["control", "--config", "/nonexistent/deployment.toml"]);
    assert!(!ok);
    assert!(
        text.contains("cannot read /nonexistent/deployment.toml"),
        "{text}"
    );
}

const SERVICE: &str = r#"(module
  EXTRA
  (memory (export "memory") 1)
  (global $count (mut i64) (i64.const 0))
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 4096))
  (func (export "es_init") (param $len i32) (result i32) (i32.const 0))
  (func (export "es_input") (param $seq i64) (param $len i32) (result i32)
    BODY
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    (i64.store (i32.const 1024) (global.get $count))
    (i32.const 8)))"#;

fn check_module(name: &str, extra: &str, body: &str) -> (bool, String) {
    let path = temp(name);
    let wat = SERVICE.replace("EXTRA", extra).replace("BODY", body);
    std::fs::write(&path, wat).expect("written");
    let json = temp(&format!("{name}.json"));
    let out = edgeshift(&[
        "check-module",
        path.to_str().expect("utf-8"),
        "--inputs",
        "20",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let record = std::fs::read_to_string(&json).unwrap_or_default();
    let _ = (std::fs::remove_file(&path), std::fs::remove_file(&json));
    if out.0 {
        let v: serde_json::Value = serde_json::from_str(&record).expect("json record");
        assert_eq!(v["ok"], true, "{v}");
    }
    out
}

#[test]
fn check_module_passes_a_good_service_and_names_what_is_wrong_with_bad_ones() {
    let (ok, text) = check_module("good.wat", "", "");
    assert!(ok, "{text}");
    assert!(
        text.contains("replay is cheaper") || text.contains("delta is cheaper"),
        "{text}"
    );

    let (ok, text) = check_module(
        "wasi.wat",
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        "",
    );
    assert!(!ok);
    assert!(
        text.contains("imports wasi_snapshot_preview1.fd_write"),
        "{text}"
    );

    let (ok, text) = check_module("spin.wat", "", "(loop $l (br $l))");
    assert!(!ok);
    assert!(text.contains("input 1") && text.contains("fuel"), "{text}");

    let (ok, text) = check_module(
        "drop.wat",
        r#"(data $d "x") (func (export "drop_it") (data.drop $d))"#,
        "",
    );
    assert!(!ok);
    assert!(text.contains("uses data.drop"), "{text}");
}

/// A service of the test's own: a running hash of every input byte, seeded by its
/// configuration (8 bytes), kept in memory and answered after each input.
const HASHER: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 4096))
  (func (export "es_init") (param $len i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 8)) (then (return (i32.const 1))))
    (i64.store (i32.const 0) (i64.load (i32.const 1024)))
    (i32.const 0))
  (func (export "es_input") (param $seq i64) (param $len i32) (result i32)
    (local $i i32) (local $h i64)
    (local.set $h (i64.load (i32.const 0)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $h (i64.add (i64.mul (local.get $h) (i64.const 31))
        (i64.load8_u (i32.add (i32.const 1024) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.store (i32.const 0) (local.get $h))
    (i64.store (i32.const 1024) (local.get $h))
    (i32.const 8)))"#;

/// A fresh directory holding `hasher.wat` and its configuration `hasher.cfg`.
fn hasher_dir(tag: &str, seed: u64) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeshift-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("hasher.wat"), HASHER).expect("module");
    std::fs::write(dir.join("hasher.cfg"), seed.to_le_bytes()).expect("config");
    dir
}

/// Runs `args` with the hasher module and checks the JSON record it writes: a relocation,
/// no violation, every input applied once, the twin equal.
fn relocates_the_hasher(dir: &std::path::Path, args: &[&str]) {
    let p = |name: &str| dir.join(name).to_str().expect("utf-8").to_owned();
    let (module, config, json) = (p("hasher.wat"), p("hasher.cfg"), p("out.json"));
    let mut all = args.to_vec();
    all.extend([
        "--module",
        &module,
        "--module-config",
        &config,
        "--json",
        &json,
    ]);
    let (ok, text) = edgeshift(&all);
    assert!(ok, "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
    assert_eq!(v["invariant_violations"], 0, "{v}");
    assert_eq!(v["final_state_matches_twin"], true);
    assert!(v["relocations"].as_u64() >= Some(1), "{v}");
    assert_eq!(v["inputs_applied_once"], v["inputs_sent"]);
}

#[test]
fn sim_relocates_a_module_of_the_users_own() {
    let dir = hasher_dir("sim-module", 7);
    let p = |name: &str| dir.join(name).to_str().expect("utf-8").to_owned();
    relocates_the_hasher(&dir, &["sim", "--scenario", "fig4", "--strategy", "shadow"]);

    // The same module named by a scenario file, relative to it.
    let fig4 = include_str!("../../world/scenarios/fig4.toml");
    let scenario = fig4.replace(
        "[service]",
        "[service]\nmodule = \"hasher.wat\"\nconfig = \"hasher.cfg\"",
    );
    assert_ne!(scenario, fig4, "fig4 has a [service] table");
    std::fs::write(dir.join("mine.toml"), scenario).expect("scenario");
    let (ok, text) = edgeshift(&["sim", "--scenario", &p("mine.toml")]);
    assert!(ok, "{text}");

    // And through the relocation benchmark.
    let (ok, text) = edgeshift(&[
        "bench",
        "relocation",
        "--module",
        &p("hasher.wat"),
        "--module-config",
        &p("hasher.cfg"),
        "--strategies",
        "cold,shadow-replay",
    ]);
    assert!(ok && !text.contains("MISMATCH"), "{text}");
    assert!(
        text.contains("module ") && text.contains("shadow-replay"),
        "{text}"
    );

    // Refused before anything starts, with the reason: es_init wants 8 bytes of config.
    std::fs::write(dir.join("short.cfg"), [1u8]).expect("config");
    let (ok, text) = edgeshift(&[
        "sim",
        "--module",
        &p("hasher.wat"),
        "--module-config",
        &p("short.cfg"),
    ]);
    assert!(!ok);
    assert!(
        text.contains("hasher.wat refused") && text.contains("es_init"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_live_demo_relocates_a_module_of_the_users_own() {
    let dir = hasher_dir("demo-module", 11);
    relocates_the_hasher(&dir, &["demo", "--quiet", "--duration", "10"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The hasher's answer after `inputs`, computed independently of the service.
fn hasher_model(seed: u64, inputs: &[Vec<u8>]) -> Vec<[u8; 8]> {
    let mut h = seed;
    inputs
        .iter()
        .map(|i| {
            for b in i {
                h = h.wrapping_mul(31).wrapping_add(u64::from(*b));
            }
            h.to_le_bytes()
        })
        .collect()
}

/// Starts the demo with UE 1 waiting for an application at a free port; returns it, the
/// address and the module's directory.
fn demo_for_an_application(
    tag: &str,
    seed: u64,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::path::PathBuf,
) {
    let dir = hasher_dir(tag, seed);
    let addr = edgeshift_etcd::loopback_port().expect("a free port");
    let p = |name: &str| dir.join(name).to_str().expect("utf-8").to_owned();
    let demo = Command::new(env!("CARGO_BIN_EXE_edgeshift"))
        .args([
            "demo",
            "--quiet",
            "--app-listen",
            &addr.to_string(),
            "--app-wait",
            "60",
        ])
        .args([
            "--module",
            &p("hasher.wat"),
            "--module-config",
            &p("hasher.cfg"),
        ])
        .args(["--json", &p("out.json")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demo starts");
    (demo, addr, dir)
}

/// Waits for the demo and checks its record: `inputs` applied once, a relocation, the twin.
fn demo_record_is_clean(demo: std::process::Child, dir: &std::path::Path, inputs: usize) {
    let out = demo.wait_with_output().expect("demo ends");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).expect("json"))
            .expect("valid");
    assert_eq!(v["invariant_violations"], 0, "{v}");
    assert_eq!(v["final_state_matches_twin"], true);
    assert_eq!(v["inputs_sent"], inputs, "{v}");
    assert_eq!(v["inputs_applied_once"], inputs, "{v}");
    assert!(v["relocations"].as_u64() >= Some(1), "{v}");
}

#[test]
fn an_application_drives_the_live_demo_across_a_relocation_and_gets_every_answer_once_in_order() {
    const INPUTS: usize = 500;
    let (demo, addr, dir) = demo_for_an_application("app", 3);
    let mut app = None;
    for _ in 0..600 {
        if let Ok(c) = edgeshift_app::Client::connect(addr) {
            app = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut app = app.expect("the gateway listens");
    let inputs: Vec<Vec<u8>> = (0..INPUTS)
        .map(|i| format!("input {i} of the application").into_bytes())
        .collect();
    let expected = hasher_model(3, &inputs);
    // Pipelined, 50 inputs a second, answers read as they come.
    let mut got = Vec::new();
    for (n, i) in inputs.iter().enumerate() {
        app.send(i).expect("sent");
        if n >= 4 {
            got.push(app.recv().expect("an answer"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    got.extend(app.finish().expect("the answers still due"));
    assert_eq!(got.len(), INPUTS, "one answer per input");
    for (n, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            g.as_slice(),
            e.as_slice(),
            "answer {n}: lost, duplicated or reordered"
        );
    }
    demo_record_is_clean(demo, &dir, INPUTS);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_python_example_client_drives_the_live_demo() {
    let python = ["python3", "python"].into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        eprintln!("SKIPPED: no Python 3 on this machine (python3 or python)");
        return;
    };
    const INPUTS: usize = 400;
    let (demo, addr, dir) = demo_for_an_application("app-py", 5);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/app_client.py");
    let out = Command::new(python)
        .args([
            script,
            "--addr",
            &addr.to_string(),
            "--inputs",
            &INPUTS.to_string(),
        ])
        .args(["--hasher-seed", "5"])
        .output()
        .expect("the example runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{INPUTS} answers, 0 wrong")),
        "{text}"
    );
    demo_record_is_clean(demo, &dir, INPUTS);
    let _ = std::fs::remove_dir_all(&dir);
}
