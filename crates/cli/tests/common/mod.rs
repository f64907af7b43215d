//! Helpers shared by the command-line tests.
#![allow(dead_code, unreachable_pub)]

use std::process::Command;

/// Runs the `edgeshift` binary; whether it succeeded, and its stdout and stderr.
pub fn edgeshift(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgeshift"))
        .args(args)
        .output()
        .expect("run edgeshift");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The JSON record a run wrote to `path`, which is removed.
pub fn take_json(path: &std::path::Path) -> serde_json::Value {
    let v = serde_json::from_str(&std::fs::read_to_string(path).expect("json written"))
        .expect("valid json");
    let _ = std::fs::remove_file(path);
    v
}
