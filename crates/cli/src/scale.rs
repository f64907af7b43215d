//! `edgeshift bench scale`: how the simulator's cost per simulated UE-second grows with the
//! number of UEs (a crowd on one scenario's route, same density of events per UE). Prints
//! figures; it asserts nothing.

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
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
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
    println!(
        "simulator cost per UE-second: scenario {}, strategy {}, {} s of inputs, starts spread over {} s",
        a.scenario, a.strategy, a.duration, a.spread
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
        let ue_s: f64 = s
            .ues
            .iter()
            .map(|u| (a.duration - u.start_s).clamp(0.0, a.duration))
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        let t0 = Instant::now();
        let (report, _) = edgeshift_sim::run(s, SimConfig::new(a.strategy, a.seed))?;
        let wall = t0.elapsed().as_secs_f64();
        let per = wall / ue_s * 1e6;
        let base = *first.get_or_insert(per);
        ok &= report.invariant_violations == 0;
        println!(
            "{n:>7} {wall:>10.2} {ue_s:>12.0} {:>14.0} {per:>14.1} {:>9.2}x {:>11}",
            ue_s / wall,
            per / base,
            report.invariant_violations
        );
    }
    Ok(ok)
}
