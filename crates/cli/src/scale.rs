//! `edgeshift bench scale`: how the simulator's cost per simulated UE-second grows with the
//! number of UEs (a crowd on one scenario's route, the same work per UE: cells and servers
//! admit the whole crowd). Prints figures; it asserts nothing.

use std::time::Instant;

use anyhow::Context as _;
use edgeshift_control::Strategy;
use edgeshift_sim::{Scenario, SimConfig};

/// Options of `bench scale`.
#[derive(clap::Args)]
pub(crate) struct ScaleArgs {
    /// Scenario whose first UE's route the crowd follows.
    #[arg(long, default_value = "corridor")]
    scenario: String,
    /// Crowd sizes to compare.
    #[arg(long, value_delimiter = ',', default_value = "100,400,1600")]
    ues: Vec<u32>,
    /// Seconds during which the UEs send inputs.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds over which the UEs' starts are spread.
    #[arg(long, default_value_t = 10.0)]
    spread: f64,
    /// Strategy.
    #[arg(long, default_value = "shadow")]
    strategy: Strategy,
    /// Service state per UE in KiB (small by default, so that the backhaul is not the
    /// bottleneck and the figure is the simulator's own cost).
    #[arg(long, default_value_t = 64)]
    state_kib: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs per size; the fastest counts (the machine is shared and noisy).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Write the JSON record of the last crowd size given here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

pub(crate) fn run(a: &ScaleArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        a.duration > 0.0 && a.duration <= 3600.0,
        "--duration must be in (0, 3600] s, not {}",
        a.duration
    );
    anyhow::ensure!(
        a.ues.iter().all(|n| (1..=100_000).contains(n)),
        "--ues must be 1 to 100000 each"
    );
    anyhow::ensure!(
        (1..=1 << 20).contains(&a.state_kib),
        "--state-kib must be 1 to 1048576, not {}",
        a.state_kib
    );
    println!(
        "simulator cost per UE-second: scenario {}, strategy {}, {} KiB of state per UE, {} s of inputs, starts spread over {} s, fastest of {} runs",
        a.scenario,
        a.strategy,
        a.state_kib,
        a.duration,
        a.spread,
        a.repeat.max(1)
    );
    println!(
        "{:>7} {:>10} {:>12} {:>14} {:>14} {:>10} {:>11}",
        "ues", "wall s", "UE-s", "UE-s/wall-s", "us/UE-s", "vs first", "violations"
    );
    let mut first = None;
    let mut ok = true;
    for &n in &a.ues {
        let mut s = Scenario::load(&a.scenario).context("loading the scenario")?;
        s.crowd(n, a.spread);
        s.duration_s = a.duration;
        // Room for the whole crowd in every cell and server: admission control would
        // otherwise reject handovers and shadows at large crowds, a different workload.
        s.handover.capacity = n;
        s.edge.capacity = n;
        for c in &mut s.cells {
            c.capacity = None;
        }
        let ue_s: f64 = s
            .ues
            .iter()
            .map(|u| (a.duration - u.start_s).clamp(0.0, a.duration))
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        let mut cfg = SimConfig::new(a.strategy, a.seed);
        cfg.state_bytes = Some(a.state_kib << 10);
        let mut wall = f64::INFINITY;
        let mut last = None;
        for _ in 0..a.repeat.max(1) {
            let t0 = Instant::now();
            let (r, _) = edgeshift_sim::run(s.clone(), cfg.clone())?;
            wall = wall.min(t0.elapsed().as_secs_f64());
            last = Some(r);
        }
        let report = last.context("no run")?;
        let per = wall / ue_s * 1e6;
        let base = *first.get_or_insert(per);
        ok &= report.invariant_violations == 0;
        println!(
            "{n:>7} {wall:>10.2} {ue_s:>12.0} {:>14.0} {per:>14.1} {:>9.2}x {:>11}",
            ue_s / wall,
            per / base,
            report.invariant_violations
        );
        for v in report.violations.iter().take(5) {
            println!("        violation at {:.3} s: {}", v.at_s, v.what);
        }
        if let Some(path) = &a.json {
            let text = serde_json::to_string_pretty(&report)?;
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(ok)
}
