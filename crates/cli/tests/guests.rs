//! The example services in `examples/services/`, written with `edgeshift-guest`, built to
//! WebAssembly and run through `check-module` and the simulator. Skipped, with a message,
//! where the `wasm32-unknown-unknown` target is not installed (`.ci/run` installs it).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::edgeshift;

const EXAMPLES: [(&str, &str); 2] = [
    ("edgeshift-example-world", "edgeshift_example_world"),
    ("edgeshift-example-anchors", "edgeshift_example_anchors"),
];

fn wasm_target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
}

#[test]
fn the_example_services_build_check_and_relocate() {
    if !wasm_target_installed() {
        eprintln!(
            "SKIPPED: the wasm32-unknown-unknown target is not installed \
             (rustup target add wasm32-unknown-unknown)"
        );
        return;
    }
    // Its own target directory: the outer cargo holds the lock of the workspace's.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (package, file) in EXAMPLES {
        let out = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                package,
            ])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "{package}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let wasm = target
            .join("wasm32-unknown-unknown/release")
            .join(format!("{file}.wasm"));
        let wasm = wasm.to_str().expect("utf-8");
        let (ok, text) = edgeshift(&[
            "check-module",
            wasm,
            "--inputs",
            "300",
            "--input-size",
            "12",
        ]);
        assert!(ok, "{package}: {text}");
        let json = target.join(format!("{file}.json"));
        let (ok, text) = edgeshift(&[
            "sim",
            "--scenario",
            "fig4",
            "--module",
            wasm,
            "--json",
            json.to_str().expect("utf-8"),
        ]);
        assert!(ok, "{package}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
        assert_eq!(v["invariant_violations"], 0, "{v}");
        assert_eq!(v["final_state_matches_twin"], true);
        assert!(v["relocations"].as_u64() >= Some(1), "{v}");
    }
}

#[test]
fn a_service_in_c_checks_and_relocates() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("clang") || !have("wasm-ld") {
        eprintln!("SKIPPED: clang and wasm-ld (Debian's clang and lld) are not installed");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-guest");
    std::fs::create_dir_all(&dir).expect("dir");
    let wasm = dir.join("counter.wasm");
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/services/c/counter.c"
    );
    let out = Command::new("clang")
        .args([
            "--target=wasm32",
            "-O2",
            "-nostdlib",
            "-Wl,--no-entry",
            "-o",
        ])
        .arg(&wasm)
        .arg(source)
        .output()
        .expect("clang runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = wasm.to_str().expect("utf-8");
    let config = dir.join("counter.cfg");
    std::fs::write(&config, 9u64.to_le_bytes()).expect("config");
    let config = config.to_str().expect("utf-8");
    let (ok, text) = edgeshift(&["check-module", wasm, "--module-config", config]);
    assert!(ok, "{text}");
    let (ok, text) = edgeshift(&["sim", "--module", wasm, "--module-config", config]);
    assert!(ok && text.contains("invariants: all held"), "{text}");
}
