//! `edgeshift check-module`: the checks a guest author runs before deploying a service.

use std::path::PathBuf;

use anyhow::Context as _;
use edgeshift_sim::module_check::{CheckConfig, check_module};

/// Options of `check-module`.
#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The module: WebAssembly binary (.wasm) or text (.wat).
    path: PathBuf,
    /// The service configuration, the bytes given to `es_init` (default: none).
    #[arg(long)]
    module_config: Option<PathBuf>,
    /// Inputs to run.
    #[arg(long, default_value_t = 1000)]
    inputs: u32,
    /// Bytes per input (deterministic pseudo-random content).
    #[arg(long, default_value_t = 64)]
    input_size: usize,
    /// Write the record here (JSON).
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn run(a: &CheckArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (2..=10_000_000).contains(&a.inputs),
        "--inputs must be 2 to 10000000, not {}",
        a.inputs
    );
    anyhow::ensure!(
        a.input_size <= 64 << 20,
        "--input-size must be at most 64 MiB, not {}",
        a.input_size
    );
    let wasm = std::fs::read(&a.path).with_context(|| format!("reading {}", a.path.display()))?;
    let config = match &a.module_config {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        None => Vec::new(),
    };
    let cfg = CheckConfig {
        inputs: a.inputs,
        input_size: a.input_size,
        ..CheckConfig::default()
    };
    let r = check_module(&wasm, &config, &cfg);
    println!(
        "{}: {} inputs of {} bytes",
        a.path.display(),
        r.inputs,
        r.input_size
    );
    for c in &r.checks {
        println!(
            "  [{}] {}: {}",
            if c.ok { " ok " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    if let Some(p) = &r.profile {
        println!(
            "profile: fuel per input p50 {:.0}, p99 {:.0}; {:.1} µs per input (p50) here",
            p.fuel_per_input.p50, p.fuel_per_input.p99, p.exec_us_per_input.p50
        );
        println!(
            "         state {} bytes; {:.0} bytes dirtied per input",
            p.state_bytes, p.dirtied_bytes_per_input
        );
        println!(
            "         shadow sync per input on 1 Gbit/s: replay {:.0} B, {:.2} µs (wire + execution); delta {:.0} B, {:.2} µs -> {} is cheaper",
            p.replay_bytes_per_input,
            p.replay_us_per_input,
            p.delta_bytes_per_input,
            p.delta_us_per_input,
            p.cheaper_sync
        );
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&r)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = r.checks.iter().filter(|c| !c.ok).count();
    anyhow::ensure!(
        failed == 0,
        "{} failed {failed} of {} checks",
        a.path.display(),
        r.checks.len()
    );
    Ok(())
}
