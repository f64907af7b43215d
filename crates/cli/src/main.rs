//! `edgeshift`: the command-line front of the workspace.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use edgeshift_control::Strategy;
use edgeshift_proto::SyncMode;
use edgeshift_sim::city::{CityReport, WorldRun};
use edgeshift_sim::{Report, Scenario, SimConfig, Swarm, TraceEntry};

/// mimalloc instead of the system allocator: a city run makes and frees a few small
/// buffers per input, and glibc's allocator was a third of its time (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check;
mod city;
mod delta;
mod fuzz;
mod isolation;
mod live;
mod scale;
mod store_bench;
mod summary;

#[derive(Parser)]
#[command(
    name = "edgeshift",
    version,
    about = "Moves stateful mobile-edge services between edge servers, hidden inside the radio handover"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario in the deterministic simulator.
    Sim(SimArgs),
    /// The patent's topology live on 127.0.0.1: control, three edge daemons, a RAN agent
    /// and UEs on real sockets, with the arena WebAssembly service.
    Demo(live::DemoArgs),
    /// The patent's FIG. 4 in the simulator: shadow vs cold side by side, with a timeline.
    SimDemo(DemoArgs),
    /// Run the ME control node.
    Control(live::ControlArgs),
    /// Run an edge daemon (one ME server).
    Edge(live::EdgeArgs),
    /// Run a RAN agent (base stations with their radio model).
    Ran(live::RanArgs),
    /// Run a UE client; prints its final check and fails if the state differs from the twin.
    Ue(live::UeArgs),
    /// Make the mutual-TLS certificates of a deployment: a CA and one certificate per
    /// daemon, naming the nodes it hosts (and etcd's, for https:// etcd endpoints).
    Certs(live::CertsArgs),
    /// Benchmarks (numbers, not tests).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Run the radio model alone and score every handover prediction against the truth.
    Predict(PredictArgs),
    /// Check a WebAssembly service before deploying it: the ABI, snapshot and restore on a
    /// fresh engine, replay, deltas; and its profile (fuel, state, dirtied bytes, sync mode).
    CheckModule(check::CheckArgs),
}

#[derive(clap::Args)]
struct PredictArgs {
    /// sumo:FILE (a SUMO FCD trace, gzip or XML), rwp, gauss-markov or manhattan.
    #[arg(long, default_value = "sumo:data/sumo/fcd.xml.gz")]
    mobility: String,
    /// hex (a hexagonal grid over the UEs' area) or a file of sites (`x y` per line).
    #[arg(long, default_value = "hex")]
    layout: String,
    /// Inter-site distance of the hex grid (m).
    #[arg(long, default_value_t = 500.0)]
    isd: f64,
    /// Carrier frequency (GHz), 3GPP TR 38.901 UMa.
    #[arg(long, default_value_t = 3.5)]
    freq_ghz: f64,
    /// Shadow fading σ (dB).
    #[arg(long, default_value_t = 6.0)]
    shadowing_db: f64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// trend (A3-margin trend), kalman (position Kalman filter through the radio map),
    /// markov (kalman blended with a cell-sequence model each cell learns from its handovers)
    /// learned (kalman with the handover points, position and heading, each cell learns)
    /// or roads (kalman matched to the road network, the roads ahead walked through the
    /// radio map; needs --roads, or manhattan mobility).
    #[arg(long, default_value = "trend")]
    predictor: String,
    /// The road network of --predictor roads: a SUMO .net.xml (gzip or XML).
    #[arg(long)]
    roads: Option<PathBuf>,
    /// UEs of a synthetic model.
    #[arg(long, default_value_t = 50)]
    ues: u32,
    /// Duration of a synthetic model (s).
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Relocate a WebAssembly `armap` service of each size by each strategy over one
    /// emulated link: real compute, emulated wire.
    Relocation(RelocationArgs),
    /// The simulator's wall time per simulated UE-second as the number of UEs grows.
    Scale(scale::ScaleArgs),
    /// Mutation fuzzing of the frame codec, scenario and deployment parsers (10 million
    /// executions per target by default); fails on any panic.
    Fuzz(fuzz::FuzzArgs),
    /// A normal service's answer time on a server that also hosts a runaway guest.
    Isolation(isolation::IsolationArgs),
    /// What one delta-sync tick costs as the state grows and a little of it changes.
    Delta(delta::DeltaArgs),
    /// Registry changes per second of one control leader on redb and on etcd, and how
    /// long each holds the event loop.
    ControlStore(store_bench::StoreArgs),
}

#[derive(clap::Args)]
struct RelocationArgs {
    /// State sizes in MiB.
    #[arg(long, value_delimiter = ',', default_value = "1,64,512")]
    sizes: Vec<u32>,
    /// Link bandwidth in Gbit/s (0: unlimited).
    #[arg(long, default_value_t = 1.0)]
    gbit: f64,
    /// Link round-trip time in ms.
    #[arg(long, default_value_t = 2.0)]
    rtt_ms: f64,
    /// Strategies to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "cold,precopy,shadow-replay,shadow-delta,shadow-optimistic"
    )]
    strategies: Vec<String>,
    /// Where the target's linear memory comes from: `fresh` (from the kernel, a page
    /// fault per 4 KiB written) or `warm` (a pooled memory the target server made resident
    /// at start, as a daemon with `warm_mib` does). Each is measured, side by side.
    #[arg(long, value_delimiter = ',', default_value = "fresh,warm")]
    target_memory: Vec<String>,
    /// Your own WebAssembly service instead of armap (its state is its own: --sizes is
    /// ignored).
    #[arg(long)]
    module: Option<PathBuf>,
    /// The module's configuration: the bytes given to its es_init.
    #[arg(long, requires = "module")]
    module_config: Option<PathBuf>,
    /// Write the JSON record here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SimArgs {
    /// Built-in scenario (fig4, corridor, regions, turnback, samecell, mispredict, demo) or a TOML file;
    /// with --runs, `all` runs every built-in.
    #[arg(long, default_value = "fig4")]
    scenario: String,
    /// stay, cold, precopy, shadow or shadow-jit; with --mobility also `all`.
    #[arg(long, default_value = "shadow")]
    strategy: String,
    /// A city instead of a scenario: sumo:FILE (every vehicle of a SUMO FCD trace is a
    /// UE), manhattan, rwp or gauss-markov, through every role on a hex layout, with the
    /// modelled service (see docs/simulation.md).
    #[arg(long, conflicts_with_all = ["scenario", "runs", "swarm", "module", "service", "trace"])]
    mobility: Option<edgeshift_world::Mobility>,
    #[command(flatten)]
    city: city::CityArgs,
    /// Seed of every random draw; the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Service state size in MiB (default: the scenario's, 1 MiB in the built-ins).
    #[arg(long)]
    state_mib: Option<u64>,
    /// The service: mem (in-memory reference), or the WebAssembly samples counter, arena,
    /// armap (default: the scenario's).
    #[arg(long)]
    service: Option<String>,
    /// Keep shadows in sync by state deltas instead of replaying inputs.
    #[arg(long)]
    delta_sync: bool,
    /// Make-before-break handovers (3GPP DAPS): UEs keep their source link until they
    /// have joined the target (the scenario's `handover.daps`).
    #[arg(long, conflicts_with = "mobility")]
    daps: bool,
    /// Optimistic activation: the cells route to the target at the trigger and its ready
    /// shadow goes live tentatively, committed by the source's 2004 (the scenario's
    /// `edge.optimistic`).
    #[arg(long, conflicts_with = "mobility")]
    optimistic: bool,
    /// Your own WebAssembly service (.wasm or .wat, guest ABI v1: docs/service-abi.md)
    /// instead of the scenario's; checked before the run starts.
    #[arg(long, conflicts_with_all = ["service", "state_mib"])]
    module: Option<PathBuf>,
    /// The module's configuration: the bytes given to its es_init.
    #[arg(long, requires = "module")]
    module_config: Option<PathBuf>,
    /// Write the JSON record here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report here (one self-contained file: table, interruption CDF, cost,
    /// map, server load).
    #[arg(long, conflicts_with = "runs")]
    html: Option<PathBuf>,
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Print the message trace.
    #[arg(long)]
    trace: bool,
    /// With --trace: also the service traffic (inputs, answers, probes).
    #[arg(long, requires = "trace")]
    traffic: bool,
    /// Let the seed also pick faults and model knobs (loss, shadowing, speed, sync).
    #[arg(long)]
    swarm: bool,
    /// Run this many seeds from --seed on, every strategy each (implies --swarm);
    /// prints failing seeds with the command that reproduces them.
    #[arg(long)]
    runs: Option<u64>,
    /// Threads for --runs and --mobility (default: one per core): a city's strategies
    /// side by side, and with twice as many threads as strategies each run's radio side
    /// and server side on a thread each; the results are the same whatever the number.
    #[arg(long)]
    jobs: Option<usize>,
    /// Inject a fault (repeatable): kill:NODE@T, restart:NODE@T, stop:NODE@T+D,
    /// partition:A-B@T+D, loss:A-B@T+D:P; nodes meN, cellN (or ranN), control
    /// (control_rN: region N's); times like 5.5s or 800ms.
    #[arg(long = "fault")]
    faults: Vec<edgeshift_world::fault::Fault>,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Service state size in MiB.
    #[arg(long, default_value_t = 64)]
    state_mib: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the shadow run's JSON record here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report of both runs here (as `edgeshift sim --html`).
    #[arg(long)]
    html: Option<PathBuf>,
}

fn sim_config(
    strategy: Strategy,
    seed: u64,
    state_mib: Option<u64>,
    delta: bool,
) -> anyhow::Result<SimConfig> {
    let mut cfg = SimConfig::new(strategy, seed);
    if let Some(mib) = state_mib {
        anyhow::ensure!(
            (1..=4096).contains(&mib),
            "--state-mib must be between 1 and 4096, not {mib}"
        );
        cfg.state_bytes = Some(mib << 20);
    }
    if delta {
        cfg.sync = SyncMode::Delta;
    }
    Ok(cfg)
}

/// One run of `scenario` with the servers' load sampled: its report, trace, and what the
/// HTML report takes.
fn sampled_run(
    scenario: &Scenario,
    mut cfg: SimConfig,
) -> anyhow::Result<(Report, Vec<TraceEntry>, WorldRun)> {
    cfg.sample_load = true;
    let started = std::time::Instant::now();
    let (report, trace, loads) = edgeshift_sim::Sim::new(scenario.clone(), cfg)?.run_sampled();
    let run = WorldRun {
        report: report.clone(),
        loads,
        wall_s: started.elapsed().as_secs_f64(),
    };
    Ok((report, trace, run))
}

/// Writes the HTML report of `runs` (one per strategy) of the world `scenario`.
pub(crate) fn write_html(
    path: &PathBuf,
    label: String,
    seed: u64,
    scenario: Scenario,
    runs: Vec<WorldRun>,
) -> anyhow::Result<()> {
    // What the relocations moved, where there were any: a module's state is its own, and
    // a modelled one stands for more than it holds.
    let state = runs
        .iter()
        .flat_map(|r| &r.report.relocation_records)
        .map(|r| r.state_bytes)
        .max()
        .unwrap_or(scenario.service.state_bytes);
    let report = CityReport::from_runs(label, seed, scenario, state, runs);
    std::fs::write(path, edgeshift_sim::html::render(&report))
        .with_context(|| format!("writing {}", path.display()))
}

fn write_json(path: &PathBuf, report: &Report) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn run_sim(a: SimArgs) -> anyhow::Result<bool> {
    if let Some(runs) = a.runs {
        // `--scenario all`: every built-in, one after the other.
        let names: Vec<String> = if a.scenario == "all" {
            edgeshift_sim::BUILTIN
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            vec![a.scenario.clone()]
        };
        let mut ok = true;
        for name in &names {
            let scenario = load_scenario(&a, name)?;
            ok &= run_swarm(&a, name, &scenario, runs)?;
        }
        return Ok(ok);
    }
    if let Some(mobility) = &a.mobility {
        return city::run(&a, mobility.clone());
    }
    let strategy: Strategy = a.strategy.parse().map_err(|e| {
        anyhow::anyhow!(
            "{e}; `--strategy all` is for --mobility runs (--runs sweeps every strategy)"
        )
    })?;
    let mut scenario = load_scenario(&a, &a.scenario)?;
    let mut cfg = sim_config(strategy, a.seed, a.state_mib, a.delta_sync)?;
    cfg.service.clone_from(&a.service);
    cfg.module = module_of(&a)?;
    cfg.outages.clone_from(&a.faults);
    cfg.trace_traffic = a.traffic;
    if a.swarm {
        let knobs = Swarm::from_seed(a.seed);
        println!("swarm knobs of seed {}: {knobs}", a.seed);
        knobs.apply(&mut scenario, &mut cfg);
    }
    let (report, trace) = if let Some(path) = &a.html {
        let label = format!("scenario {} ({strategy})", scenario.name);
        let state = cfg.state_bytes;
        let (report, trace, run) = sampled_run(&scenario, cfg)?;
        if let Some(b) = state {
            scenario.service.state_bytes = b;
        }
        write_html(path, label, a.seed, scenario, vec![run])?;
        (report, trace)
    } else {
        edgeshift_sim::run(scenario, cfg)?
    };
    if a.trace
        && let Err(e) = summary::print_trace(&trace, false)
    {
        // `--trace | head`: the reader has what it wanted.
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(report.invariant_violations == 0);
        }
        return Err(e.into());
    }
    summary::print_report(&report);
    if let Some(path) = &a.json {
        write_json(path, &report)?;
    }
    Ok(report.invariant_violations == 0)
}

/// The module of `--module`, read and checked once for the whole run.
fn module_of(a: &SimArgs) -> anyhow::Result<Option<edgeshift_world::ModuleSource>> {
    a.module
        .as_deref()
        .map(|m| edgeshift_world::ModuleSource::load(m, a.module_config.as_deref()))
        .transpose()
        .map_err(Into::into)
}

/// Scenario `name` with the flags of `sim` that change it (`--daps`, `--optimistic`,
/// `--input-run-ms`), checked again after them.
fn load_scenario(a: &SimArgs, name: &str) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(name)?;
    scenario.handover.daps |= a.daps;
    scenario.edge.optimistic |= a.optimistic;
    if let Some(ms) = a.city.input_run_ms {
        scenario.service.input_run_ms = ms;
        scenario.validate()?;
    }
    Ok(scenario)
}

/// Runs `runs` swarm seeds of `scenario` from `--seed` on, every strategy each, on
/// `--jobs` threads; prints the failing runs in seed order.
fn run_swarm(a: &SimArgs, name: &str, scenario: &Scenario, runs: u64) -> anyhow::Result<bool> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, PoisonError};
    let module = module_of(a)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, 256);
    let (first, end) = (a.seed, a.seed.saturating_add(runs));
    let next = AtomicU64::new(first);
    let fails: Mutex<Vec<(u64, usize, String)>> = Mutex::new(Vec::new());
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let one_seed = |seed: u64| -> anyhow::Result<()> {
        let knobs = Swarm::from_seed(seed);
        for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
            let mut s = scenario.clone();
            let mut cfg = sim_config(strategy, seed, a.state_mib, a.delta_sync)?;
            cfg.service.clone_from(&a.service);
            cfg.module.clone_from(&module);
            knobs.apply(&mut s, &mut cfg);
            let (report, _) = edgeshift_sim::run(s, cfg)?;
            if report.invariant_violations > 0 || !report.final_state_matches_twin {
                let text = format!(
                    "FAIL seed {seed} {strategy} ({knobs}): {:?}\n  reproduce: edgeshift sim \
                     --scenario {name} --strategy {strategy} --seed {seed} --swarm{}{}{}",
                    report.violations.first(),
                    if scenario.handover.daps {
                        " --daps"
                    } else {
                        ""
                    },
                    if scenario.edge.optimistic {
                        " --optimistic"
                    } else {
                        ""
                    },
                    match scenario.service.input_run_ms {
                        0 => String::new(),
                        ms => format!(" --input-run-ms {ms}"),
                    }
                );
                fails
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((seed, i, text));
            }
        }
        Ok(())
    };
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || seed < first {
                        break;
                    }
                    if let Err(e) = one_seed(seed) {
                        error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(e);
                        next.store(end, Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    let mut fails = fails.into_inner().unwrap_or_else(PoisonError::into_inner);
    fails.sort_by_key(|f| (f.0, f.1));
    for (_, _, text) in &fails {
        println!("{text}");
    }
    println!(
        "{runs} seeds x {} strategies on {name}: {} failed",
        Strategy::ALL.len(),
        fails.len()
    );
    Ok(fails.is_empty())
}

fn run_demo(a: DemoArgs) -> anyhow::Result<bool> {
    let mut ok = true;
    let mut shadow: Option<(Report, Vec<TraceEntry>)> = None;
    println!(
        "edgeshift demo: patent FIG. 4 (3 cells, 3 ME servers, UE from cell 1 toward 2 and 3, target 3)"
    );
    println!(
        "simulated in virtual time; {} MiB service state, seed {}\n",
        a.state_mib, a.seed
    );
    let scenario = Scenario::load("fig4")?;
    let mut runs = Vec::new();
    for strategy in [Strategy::Shadow, Strategy::Cold] {
        let cfg = sim_config(strategy, a.seed, Some(a.state_mib), false)?;
        let (report, trace, run) = sampled_run(&scenario, cfg)?;
        runs.push(run);
        ok &= report.invariant_violations == 0;
        if strategy == Strategy::Shadow {
            summary::print_trace(&trace, true)?;
            println!();
            shadow = Some((report, trace));
        } else {
            summary::print_comparison(shadow.as_ref().map(|s| &s.0), &report);
        }
    }
    if let (Some(path), Some((report, _))) = (&a.json, &shadow) {
        write_json(path, report)?;
    }
    if let Some(path) = &a.html {
        let mut scenario = scenario;
        scenario.service.state_bytes = a.state_mib << 20;
        write_html(path, "sim-demo: fig4".into(), a.seed, scenario, runs)?;
    }
    Ok(ok)
}

fn run_bench(a: RelocationArgs) -> anyhow::Result<bool> {
    use edgeshift_sim::bench::{BenchLink, BenchReport, TargetMemory, measure, measure_spec};
    let module = a
        .module
        .as_deref()
        .map(|m| edgeshift_world::ModuleSource::load(m, a.module_config.as_deref()))
        .transpose()?;
    anyhow::ensure!(
        a.gbit >= 0.0 && a.rtt_ms >= 0.0,
        "--gbit and --rtt-ms must not be negative"
    );
    for s in &a.sizes {
        anyhow::ensure!((1..=1024).contains(s), "sizes are 1 to 1024 MiB, not {s}");
    }
    let memories = a
        .target_memory
        .iter()
        .map(|m| {
            TargetMemory::ALL
                .into_iter()
                .find(|t| t.name() == m)
                .ok_or_else(|| anyhow::anyhow!("--target-memory is fresh or warm, not {m:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let link = BenchLink {
        gbit_s: a.gbit,
        rtt_ms: a.rtt_ms,
    };
    let bw = if a.gbit > 0.0 {
        format!("{} Gbit/s", a.gbit)
    } else {
        "unlimited".to_owned()
    };
    let what = module.as_ref().map_or_else(
        || "an armap WebAssembly service".to_owned(),
        |m| format!("module {}", m.path.display()),
    );
    println!("relocation of {what}, link {bw}, RTT {} ms", a.rtt_ms);
    println!(
        "{:>8} {:<17} {:<7} {:>14} {:>12} {:>16} {:>14} {:>9} {:>9}",
        "MiB",
        "strategy",
        "memory",
        "critical ms",
        "downtime ms",
        "critical bytes",
        "total bytes",
        "GB/s",
        "checksum"
    );
    let mut results = Vec::new();
    // A module has one size, its own (labelled 0 MiB).
    let sizes = if module.is_some() {
        vec![0]
    } else {
        a.sizes.clone()
    };
    for size in &sizes {
        for (strategy, memory) in a
            .strategies
            .iter()
            .flat_map(|s| memories.iter().map(move |m| (s, *m)))
        {
            let r = match &module {
                Some(m) => measure_spec(m.spec(0), 0, strategy, link, memory)?,
                None => measure(*size, strategy, link, memory)?,
            };
            println!(
                "{:>8} {:<17} {:<7} {:>14.3} {:>12.3} {:>16} {:>14} {:>9.2} {:>9}",
                r.size_mib,
                r.strategy,
                r.target_memory.name(),
                r.critical_path_ms,
                r.downtime_ms,
                r.critical_bytes,
                r.total_bytes,
                r.throughput_gbyte_s,
                if r.checksum_ok { "ok" } else { "MISMATCH" }
            );
            results.push(r);
        }
    }
    let ok = results.iter().all(|r| r.checksum_ok);
    let report = BenchReport { link, results };
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}

fn run_predict(a: PredictArgs) -> anyhow::Result<bool> {
    use edgeshift_sim::predict::{MobilitySource, PredictConfig, run};
    anyhow::ensure!(
        a.isd > 0.0 && a.freq_ghz > 0.0 && a.shadowing_db >= 0.0,
        "--isd and --freq-ghz must be positive, --shadowing-db not negative"
    );
    let mobility = match a.mobility.strip_prefix("sumo:") {
        Some(path) => MobilitySource::Sumo(path.to_owned()),
        None => MobilitySource::Synthetic {
            model: a.mobility.clone(),
            ues: a.ues,
            duration_s: a.duration,
        },
    };
    let sites = if a.layout == "hex" {
        None
    } else {
        let text = std::fs::read_to_string(&a.layout)
            .with_context(|| format!("reading sites from {}", a.layout))?;
        Some(
            edgeshift_radio::layout::parse_sites(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.layout))?,
        )
    };
    let cfg = PredictConfig {
        mobility,
        isd_m: a.isd,
        sites,
        freq_ghz: a.freq_ghz,
        shadowing_db: a.shadowing_db,
        seed: a.seed,
        predictor: a.predictor.clone(),
        roads: a
            .roads
            .as_deref()
            .map(edgeshift_radio::roads::RoadNet::load)
            .transpose()?
            .map(std::sync::Arc::new),
    };
    let r = run(&cfg)?;
    println!(
        "{} UEs, {} cells, {} handovers ({:.2} per UE per minute), ping-pong {:.1} %",
        r.ues,
        r.cells,
        r.handovers,
        r.handover_rate_per_ue_min,
        r.pingpong_rate * 100.0
    );
    println!(
        "target named first: {:.1} % at execution, {:.1} % 2 s before; among the candidates: {:.1} %",
        r.top1_accuracy * 100.0,
        r.top1_accuracy_2s * 100.0,
        r.topk_accuracy * 100.0
    );
    println!(
        "lead (target continuously predicted): median {:.2} s",
        r.lead_s_p50
    );
    for l in edgeshift_sim::predict::LEADS {
        let share = r
            .predicted_ahead_share
            .get(&format!("{l}"))
            .copied()
            .unwrap_or(0.0);
        println!(
            "  predicted at least {l:>4} s ahead: {:.1} %",
            share * 100.0
        );
    }
    println!(
        "ETA error: MAE {:.0} ms, bias {:.0} ms, P90 {:.0} ms",
        r.eta_mae_ms, r.eta_bias_ms, r.eta_p90_ms
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let daemon = matches!(
        cli.cmd,
        Cmd::Control(_) | Cmd::Edge(_) | Cmd::Ran(_) | Cmd::Ue(_)
    );
    let default = if daemon { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    let ok = match cli.cmd {
        Cmd::Sim(a) => run_sim(a)?,
        Cmd::Demo(a) => live::run_demo(a)?,
        Cmd::SimDemo(a) => run_demo(a)?,
        Cmd::Control(a) => live::control(a)?,
        Cmd::Edge(a) => live::edge(a)?,
        Cmd::Ran(a) => live::ran(a)?,
        Cmd::Ue(a) => live::ue(a)?,
        Cmd::Bench(BenchCmd::Relocation(a)) => run_bench(a)?,
        Cmd::Bench(BenchCmd::Scale(a)) => scale::run(&a)?,
        Cmd::Bench(BenchCmd::Fuzz(a)) => fuzz::run(&a)?,
        Cmd::Bench(BenchCmd::Isolation(a)) => isolation::run_bench(&a)?,
        Cmd::Bench(BenchCmd::Delta(a)) => delta::run_bench(&a)?,
        Cmd::Bench(BenchCmd::ControlStore(a)) => store_bench::run_bench(&a)?,
        Cmd::Predict(a) => run_predict(a)?,
        Cmd::Certs(a) => live::certs(&a)?,
        Cmd::CheckModule(a) => {
            check::run(&a)?;
            true
        }
    };
    if !ok {
        anyhow::bail!("invariant violations (listed above)");
    }
    Ok(())
}
