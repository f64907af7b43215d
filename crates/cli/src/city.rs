//! `edgeshift sim --mobility M`: a city through every role, one record per strategy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use edgeshift_control::Strategy;
use edgeshift_world::scenario::PredictorName;
use edgeshift_world::{City, Mobility};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::SimArgs;

/// The city knobs of `edgeshift sim --mobility`.
#[derive(clap::Args)]
pub(crate) struct CityArgs {
    /// UEs: synthetic ones to make (default 50), or the first N vehicles of a trace
    /// (default all).
    #[arg(long)]
    ues: Option<u32>,
    /// Seconds to simulate (default: 600 synthetic, the whole trace).
    #[arg(long)]
    duration: Option<f64>,
    /// Inter-site distance of the hexagonal cell grid (m).
    #[arg(long, default_value_t = 500.0)]
    isd: f64,
    /// Neighbouring cells per ME server.
    #[arg(long, default_value_t = 3)]
    cells_per_server: u32,
    /// Backhaul between ME servers (Gbit/s).
    #[arg(long, default_value_t = 1.0)]
    backhaul_gbit: f64,
    /// Shadow fading σ (dB).
    #[arg(long, default_value_t = 6.0)]
    shadowing_db: f64,
    /// KiB each input writes to the modelled state.
    #[arg(long, default_value_t = 16)]
    dirty_kib: u64,
    /// The cells' handover predictor: trend, kalman, markov, learned or roads
    /// (docs/prediction.md). Default: roads with --roads, kalman without.
    #[arg(long)]
    predictor: Option<PredictorName>,
    /// The road network (a SUMO .net.xml, gzip or XML) the roads predictor walks;
    /// manhattan mobility has its grid without it.
    #[arg(long)]
    roads: Option<std::path::PathBuf>,
    /// Least summed likelihood of a server's cells for a shadow-jit shadow there.
    #[arg(long, default_value_t = 0.3)]
    jit_threshold: f32,
    /// A source sends its replay shadows the inputs it applied in batches of this many ms
    /// (0: each input at once); a freeze sends the batch at once.
    #[arg(long, default_value_t = 0)]
    replay_batch_ms: u64,
    /// Each UE sends the inputs of this many ms as one message (a run), and its server
    /// answers a run with one; every input is still numbered, applied and checked on its
    /// own (0: one message per input). Default 200 with --mobility; with --scenario (runs
    /// and swarms) it sets the scenario's `service.input_run_ms`.
    #[arg(long)]
    pub(crate) input_run_ms: Option<u64>,
}

/// A progress bar on stderr over every strategy's simulated time (hidden when stderr is
/// not a terminal).
fn bar(s: &edgeshift_world::Scenario, runs: usize) -> ProgressBar {
    // A run goes on past its end by its drain time (and by up to 30 s to settle).
    let total_s = (s.duration_s + s.drain_s).ceil() as u64 * runs as u64;
    let bar = ProgressBar::with_draw_target(Some(total_s), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(&format!(
        "{{elapsed_precise}} [{{bar:24}}] {{pos}}/{{len}} s simulated ({runs} runs, {} UEs) ETA {{eta}}",
        s.ues.len()
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Runs the city of `a` and prints one line per strategy; false if an invariant broke.
pub(crate) fn run(a: &SimArgs, mobility: Mobility) -> anyhow::Result<bool> {
    let strategies: Vec<Strategy> = if a.strategy == "all" {
        Strategy::ALL.to_vec()
    } else {
        vec![a.strategy.parse()?]
    };
    let c = &a.city;
    let mib = a.state_mib.unwrap_or(128);
    anyhow::ensure!(
        (1..=4096).contains(&mib),
        "--state-mib must be between 1 and 4096, not {mib}"
    );
    let city = City {
        ues: c.ues,
        duration_s: c.duration,
        isd_m: c.isd,
        cells_per_server: c.cells_per_server,
        state_bytes: mib << 20,
        dirty_bytes_per_input: c.dirty_kib.saturating_mul(1024),
        backhaul_gbit: c.backhaul_gbit,
        shadowing_db: c.shadowing_db,
        seed: a.seed,
        predictor: c.predictor.unwrap_or_else(|| {
            if c.roads.is_some() {
                PredictorName::Roads
            } else {
                PredictorName::Kalman
            }
        }),
        roads: c.roads.clone(),
        jit_threshold: c.jit_threshold,
        replay_batch_ms: c.replay_batch_ms,
        input_run_ms: c.input_run_ms.unwrap_or(City::DEFAULT_INPUT_RUN_MS),
        ..City::new(mobility)
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let scenario = city.scenario()?;
    let progress: Vec<Arc<AtomicU64>> = strategies.iter().map(|_| Arc::default()).collect();
    let bar = (!a.quiet).then(|| bar(&scenario, strategies.len()));
    let report = std::thread::scope(|sc| {
        let run = sc.spawn(|| {
            edgeshift_sim::city::run_scenario(&city, scenario, &strategies, a.seed, jobs, &progress)
        });
        if let Some(bar) = &bar {
            while !run.is_finished() {
                let ns: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
                bar.set_position((ns / 1_000_000_000).min(bar.length().unwrap_or(0)));
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        }
        run.join()
            .map_err(|_| anyhow::anyhow!("the simulation thread panicked"))
    })??;
    println!(
        "{}: {} UEs, {} cells, {} ME servers, {:.0} s, {} MiB per service, {} Gbit/s backhaul, seed {}",
        report.mobility,
        report.ues,
        report.cells,
        report.servers,
        report.duration_s,
        mib,
        c.backhaul_gbit,
        a.seed
    );
    println!(
        "{:<11} {:>6} {:>6} {:>7} {:>23} {:>6} {:>6} {:>6} {:>10} {:>13} {:>5} {:>5} {:>9}",
        "strategy",
        "HOs",
        "moves",
        "hidden",
        "added ms p50/p99/max",
        "mispr",
        "HOfail",
        "pingp",
        "shadow GB",
        "MiB·s/UE·h",
        "peak",
        "viol",
        "UE-s/s"
    );
    let mut ok = true;
    for r in &report.strategies {
        ok &= r.invariant_violations == 0 && r.final_state_matches_twin;
        let hidden = r
            .hidden_share
            .map_or_else(|| "-".to_owned(), |h| format!("{:.1}%", h * 100.0));
        let p = &r.added_interruption_ms;
        println!(
            "{:<11} {:>6} {:>6} {:>7} {:>23} {:>6} {:>6} {:>6} {:>10.2} {:>13.0} {:>5} {:>5} {:>9.0}",
            r.strategy,
            r.handovers,
            r.relocations,
            hidden,
            format!("{:.1}/{:.1}/{:.1}", p.p50, p.p99, p.max),
            r.mispredicted,
            r.handover_failures,
            r.pingpongs,
            r.shadow_bytes as f64 / 1e9,
            r.shadow_resource_s_per_ue_h,
            r.server_load_peak,
            r.invariant_violations,
            r.ue_s_per_wall_s
        );
        for v in &r.violations {
            println!("  {v}");
        }
    }
    if let Some(path) = &a.html {
        std::fs::write(path, edgeshift_sim::html::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}
