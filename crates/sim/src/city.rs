//! City runs: every UE of a mobility trace (or many synthetic ones) through the real
//! roles, each strategy on the same seed and mobility, summed up per strategy.
//!
//! `run(&city, &strategies, seed, jobs)` builds the world once
//! ([`edgeshift_world::City::scenario`]), runs the simulator once per strategy (on up to
//! `jobs` threads; the result does not depend on them) and returns a [`CityReport`]. Every
//! run keeps every invariant checker on; the trace is not kept.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant as WallClock;

use edgeshift_control::Strategy;
use edgeshift_record::{Percentiles, Report};
use edgeshift_world::{City, Scenario};
use serde::Serialize;

use edgeshift_record::LoadSample;

use crate::engine::{Sim, SimConfig, SimError};

/// Inputs per service the checker keeps densely in a city run: 4 Ki, 82 s at 50 inputs
/// per second, far longer than any relocation or failover takes (a state activated older
/// than that is a violation, not a silent pass), so that a run holds about 70 KB per UE
/// there instead of 3 MB an hour.
const CHECK_WINDOW: usize = 4 * 1024;

/// The record of one strategy (see `docs/simulation.md` for every field).
#[derive(Clone, Debug, Serialize)]
pub struct CityRecord {
    /// The strategy.
    pub strategy: String,
    /// Completed handovers.
    pub handovers: u64,
    /// Handovers that changed the serving server and were not skipped: relocations done.
    pub relocations: u64,
    /// Share of relocations whose added interruption at the UE was at most 1 ms (`null`
    /// without relocations).
    pub hidden_share: Option<f64>,
    /// Interruption added beyond the radio gap, over all handovers (ms).
    pub added_interruption_ms: Percentiles,
    /// Handovers whose target was not a predicted candidate.
    pub mispredicted: u64,
    /// Relocations that found no shadow at their target and copied while the source
    /// served on.
    pub reactive_fallbacks: u64,
    /// Handovers whose target was not joined in time.
    pub handover_failures: u64,
    /// Handovers back to the previous cell within a second.
    pub pingpongs: u64,
    /// Bytes of shadow transfers, syncs and catch-ups (what the modelled state stands for).
    pub shadow_bytes: u64,
    /// Shadow memory held over time per UE-hour: Σ shadow lifetime × state size, in
    /// MiB·s, divided by the UE-hours simulated.
    pub shadow_resource_s_per_ue_h: f64,
    /// The most live instances one server hosted at once (sampled every second).
    pub server_load_peak: u32,
    /// Broken invariants (0 on a correct run).
    pub invariant_violations: u64,
    /// Whether every final state equals its never-moved twin.
    pub final_state_matches_twin: bool,
    /// Inputs the UEs sent, and how many the live instances applied exactly once.
    pub inputs_sent: u64,
    /// See `inputs_sent`.
    pub inputs_applied_once: u64,
    /// UEs.
    pub ues: u64,
    /// UE-seconds simulated (UEs × duration).
    pub simulated_ue_s: f64,
    /// Wall-clock time of this strategy's run (s; the only field that differs between two
    /// runs of the same seed).
    pub wall_s: f64,
    /// Simulated UE-seconds per wall-clock second (as `wall_s`, not reproducible).
    pub ue_s_per_wall_s: f64,
    /// The first violations, if any.
    pub violations: Vec<String>,
}

/// A city run (or any run of one world, [`CityReport::from_runs`]): the world and one
/// record per strategy.
#[derive(Clone, Debug, Serialize)]
pub struct CityReport {
    /// Where the UEs came from.
    pub mobility: String,
    /// Seed.
    pub seed: u64,
    /// UEs.
    pub ues: u64,
    /// Cells of the hexagonal layout.
    pub cells: u64,
    /// ME servers.
    pub servers: u64,
    /// Simulated seconds.
    pub duration_s: f64,
    /// State each service stands for (MiB).
    pub state_mib: f64,
    /// Backhaul between servers (Gbit/s).
    pub backhaul_gbit: f64,
    /// One record per strategy, in the order asked.
    pub strategies: Vec<CityRecord>,
    /// Each server's live instances and shadows over time, per strategy (not in the JSON
    /// record; the HTML report draws it).
    #[serde(skip)]
    pub loads: Vec<Vec<LoadSample>>,
    /// Each strategy's full simulator report (not in the JSON record).
    #[serde(skip)]
    pub reports: Vec<Report>,
    /// The world (not in the JSON record).
    #[serde(skip)]
    pub scenario: Option<Scenario>,
}

/// Runs `strategies` on the world of `city` with `seed`, on up to `jobs` threads.
///
/// # Errors
/// The world could not be built, or the simulator could not start.
pub fn run(
    city: &City,
    strategies: &[Strategy],
    seed: u64,
    jobs: usize,
) -> Result<CityReport, SimError> {
    let scenario = city.scenario()?;
    run_scenario(city, scenario, strategies, seed, jobs, &[])
}

/// [`run`] on the world `scenario` that `city` built; run `i` publishes how far it got
/// (simulated nanoseconds) in `progress[i]`, if there is one.
///
/// # Errors
/// The simulator could not start.
pub fn run_scenario(
    city: &City,
    scenario: Scenario,
    strategies: &[Strategy],
    seed: u64,
    jobs: usize,
    progress: &[Arc<AtomicU64>],
) -> Result<CityReport, SimError> {
    let runs: Vec<(usize, Strategy)> = strategies.iter().copied().enumerate().collect();
    // The runs first, then each run's two sides, on the threads there are.
    let jobs = jobs.max(1);
    let threads = (jobs / runs.len().max(1)).clamp(1, 2);
    let one =
        |(i, strategy): (usize, Strategy)| -> Result<(Report, Vec<LoadSample>, f64), SimError> {
            let mut cfg = SimConfig::new(strategy, seed);
            cfg.keep_trace = false;
            cfg.sample_load = true;
            cfg.check_window = Some(CHECK_WINDOW);
            cfg.progress = progress.get(i).cloned();
            cfg.split = true;
            cfg.threads = threads;
            let started = WallClock::now();
            let (report, _, loads) = Sim::new(scenario.clone(), cfg)?.run_sampled();
            Ok((report, loads, started.elapsed().as_secs_f64()))
        };
    let results = parallel(&runs, jobs, one)?;
    let runs = results
        .into_iter()
        .map(|(report, loads, wall_s)| WorldRun {
            report,
            loads,
            wall_s,
        })
        .collect();
    Ok(CityReport::from_runs(
        city.mobility.to_string(),
        seed,
        scenario,
        city.state_bytes,
        runs,
    ))
}

/// One strategy's run of a world, as [`CityReport::from_runs`] takes it.
#[derive(Clone, Debug)]
pub struct WorldRun {
    /// The run's report.
    pub report: Report,
    /// What the servers held over time (the simulator's samples, or a live run's from
    /// [`edgeshift_record::LoadTracker`]).
    pub loads: Vec<LoadSample>,
    /// Wall-clock time of the run (s).
    pub wall_s: f64,
}

impl CityReport {
    /// The report of runs of one world, one per strategy: a city, a scenario of the
    /// simulator or a live run. `label` names the world, `state_bytes` is the size of each
    /// service's state in the runs.
    #[must_use]
    pub fn from_runs(
        label: String,
        seed: u64,
        scenario: Scenario,
        state_bytes: u64,
        runs: Vec<WorldRun>,
    ) -> Self {
        let mut out = Self {
            mobility: label,
            seed,
            ues: scenario.ues.len() as u64,
            cells: scenario.cells.len() as u64,
            servers: scenario.servers.len() as u64,
            duration_s: scenario.duration_s,
            state_mib: state_bytes as f64 / f64::from(1 << 20),
            backhaul_gbit: scenario.links.backhaul_gbit,
            strategies: Vec::new(),
            loads: Vec::new(),
            reports: Vec::new(),
            scenario: None,
        };
        for run in runs {
            out.strategies.push(summarize(
                &scenario,
                &run.report,
                &run.loads,
                run.wall_s,
                state_bytes,
            ));
            out.reports.push(run.report);
            out.loads.push(run.loads);
        }
        out.scenario = Some(scenario);
        out
    }
}

/// `f` over `items` on up to `jobs` threads, results in the items' order.
fn parallel<T: Sync + Copy, R: Send, E: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R, E>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|sc| {
        for _ in 0..jobs.min(items.len()) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(*item);
                    *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|s| s.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

fn summarize(
    s: &Scenario,
    r: &Report,
    loads: &[LoadSample],
    wall_s: f64,
    state_bytes: u64,
) -> CityRecord {
    let ues = s.ues.len() as u64;
    let simulated_ue_s = ues as f64 * s.duration_s;
    let hidden = r
        .relocation_records
        .iter()
        .filter(|x| x.added_ms <= 1.0)
        .count();
    let hidden_share = (!r.relocation_records.is_empty())
        .then(|| hidden as f64 / r.relocation_records.len() as f64);
    let mib = state_bytes as f64 / f64::from(1 << 20);
    let ue_h = simulated_ue_s / 3600.0;
    CityRecord {
        strategy: r.strategy.clone(),
        handovers: r.handovers,
        relocations: r.relocations,
        hidden_share,
        added_interruption_ms: r.added_interruption_ms,
        mispredicted: r.mispredicted,
        reactive_fallbacks: r.reactive_fallbacks,
        handover_failures: r.handover_failures,
        pingpongs: r.pingpongs,
        shadow_bytes: r.shadow_bytes,
        shadow_resource_s_per_ue_h: if ue_h > 0.0 {
            r.shadow_seconds * mib / ue_h
        } else {
            0.0
        },
        server_load_peak: loads
            .iter()
            .flat_map(|l| l.live.iter().copied())
            .max()
            .unwrap_or(0),
        invariant_violations: r.invariant_violations,
        final_state_matches_twin: r.final_state_matches_twin,
        inputs_sent: r.inputs_sent,
        inputs_applied_once: r.inputs_applied_once,
        ues,
        simulated_ue_s,
        wall_s,
        ue_s_per_wall_s: if wall_s > 0.0 {
            simulated_ue_s / wall_s
        } else {
            0.0
        },
        violations: r
            .violations
            .iter()
            .take(5)
            .map(|v| format!("{v:?}"))
            .collect(),
    }
}
