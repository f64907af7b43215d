//! `edgeshift predict`: the radio model alone, every prediction compared with what really
//! happened.
//!
//! UEs move (a SUMO trace or a synthetic model) through a cell layout; every L1 period each
//! UE measures every cell (38.901 path loss, correlated shadowing, L3 filter) and its
//! serving cell — the real `ran` role — runs A3 and the predictor and hands over by X2. The
//! report scores the 1002s each cell sent against the handovers that followed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use edgeshift_proto::{
    CellId, HandoverConfirm, HandoverPrediction, HandoverRequest, Instant, Message, NodeId, Role,
    UeId,
};
use edgeshift_radio::layout::{Site, bounds, hex_grid};
use edgeshift_radio::measure::{MeasureConfig, UeMeasurer};
use edgeshift_radio::mobility::{GaussMarkov, Manhattan, Mobility, RandomWaypoint};
use edgeshift_radio::pathloss::{Environment, ThreeGpp, rsrp_dbm};
use edgeshift_radio::roads::RoadNet;
use edgeshift_radio::sumo::{FcdError, FcdTrace};
use edgeshift_ran::{BaseStation, MeasurementReport, PredictorKind, RadioMap, RanConfig};
use edgeshift_record::Percentiles;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Where UEs come from.
#[derive(Clone, Debug)]
pub enum MobilitySource {
    /// A SUMO FCD trace file (every vehicle is a UE).
    Sumo(String),
    /// A trace already loaded.
    Trace(FcdTrace),
    /// Random waypoint, Gauss–Markov or Manhattan grid in a 2 km square.
    Synthetic {
        /// `rwp`, `gauss-markov` or `manhattan`.
        model: String,
        /// Number of UEs.
        ues: u32,
        /// Duration (s).
        duration_s: f64,
    },
}

/// Options of a prediction run.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    /// Mobility.
    pub mobility: MobilitySource,
    /// Inter-site distance of the hex grid (m).
    pub isd_m: f64,
    /// Explicit sites instead of the hex grid.
    pub sites: Option<Vec<Site>>,
    /// Carrier (GHz).
    pub freq_ghz: f64,
    /// Shadow fading σ (dB).
    pub shadowing_db: f64,
    /// Seed.
    pub seed: u64,
    /// `trend`, `kalman`, `markov` (Kalman blended with the cell-sequence model) or
    /// `learned` (Kalman with the handover points each cell learns) or `roads` (Kalman
    /// matched to `roads`, the roads ahead walked through the radio map).
    pub predictor: String,
    /// The road network of `roads` (`None` with Manhattan mobility: its grid).
    pub roads: Option<Arc<RoadNet>>,
}

/// Why a prediction run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// The trace did not load.
    #[error(transparent)]
    Trace(#[from] FcdError),
    /// Unknown predictor.
    #[error("unknown predictor {0:?} (trend, kalman, markov, learned, roads)")]
    Predictor(String),
    /// The road predictor without a road network.
    #[error("--predictor roads needs a road network (--roads FILE.net.xml), or manhattan mobility")]
    NoRoads,
    /// Unknown mobility model.
    #[error("unknown mobility {0:?} (sumo:FILE, rwp, gauss-markov, manhattan)")]
    Mobility(String),
}

/// One row of the likelihood reliability table.
#[derive(Clone, Debug, Serialize)]
pub struct Reliability {
    /// Lower edge of the likelihood bin.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Candidates predicted in the bin.
    pub predicted: u64,
    /// How many of them became the target.
    pub hit_rate: f64,
}

/// The prediction report.
#[derive(Clone, Debug, Serialize)]
pub struct PredictReport {
    /// Handovers that happened.
    pub handovers: u64,
    /// Share whose standing prediction at execution named the target first.
    pub top1_accuracy: f64,
    /// Share whose standing prediction at execution contained the target.
    pub topk_accuracy: f64,
    /// Share with the target first in the prediction standing 2 s before execution.
    pub top1_accuracy_2s: f64,
    /// Median lead (s): how long before execution the target was continuously predicted.
    pub lead_s_p50: f64,
    /// For each lead L (s): share of handovers predicted at least L ahead.
    pub predicted_ahead_share: BTreeMap<String, f64>,
    /// Mean absolute error of the predicted handover time (ms), standing prediction.
    pub eta_mae_ms: f64,
    /// Mean signed error (ms): positive means predicted too late.
    pub eta_bias_ms: f64,
    /// 90th percentile of the absolute error (ms).
    pub eta_p90_ms: f64,
    /// Likelihood calibration.
    pub reliability: Vec<Reliability>,
    /// Handovers per UE per minute.
    pub handover_rate_per_ue_min: f64,
    /// Share of handovers back to the previous cell within 1 s of arriving.
    pub pingpong_rate: f64,
    /// UEs simulated.
    pub ues: u64,
    /// Cells in the layout.
    pub cells: u64,
}

struct Tracked {
    history: Vec<(Instant, HandoverPrediction)>,
}

/// Lead times (s) of `predicted_ahead_share`; 1.1 s is what a 128 MiB state needs on 1 Gbit/s.
pub const LEADS: [f64; 8] = [0.5, 1.0, 1.1, 2.0, 3.0, 5.0, 8.0, 10.0];

/// Runs the radio model and scores the predictions.
///
/// # Errors
/// See [`PredictError`].
pub fn run(cfg: &PredictConfig) -> Result<PredictReport, PredictError> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let period = 0.2;
    // UE positions over time, as closures of time.
    let (tracks, duration) = ue_tracks(cfg, &mut rng)?;
    let bounds = bounds_of(&tracks, duration);
    let sites = cfg
        .sites
        .clone()
        .unwrap_or_else(|| hex_grid(bounds, cfg.isd_m));
    let model = ThreeGpp::new(Environment::UMa, cfg.freq_ghz);
    let mcfg = MeasureConfig {
        shadowing_db: cfg.shadowing_db,
        decorrelation_m: model.decorrelation_m(false),
        ..MeasureConfig::default()
    };
    let radio_map = || {
        RadioMap::new(
            sites.iter().map(|s| (CellId(s.id), [s.x, s.y])).collect(),
            46.0,
            50,
            model,
            mcfg.decorrelation_m,
        )
    };
    let map = || PredictorKind::Kalman(radio_map());
    // `markov`: the Kalman predictor blended with the cell-sequence model.
    let (kind, sequence, points) = match cfg.predictor.as_str() {
        "trend" => (PredictorKind::Trend, false, false),
        "kalman" => (map(), false, false),
        "markov" => (map(), true, false),
        "learned" => (map(), false, true),
        "roads" => {
            let net = match (&cfg.roads, &cfg.mobility) {
                (Some(net), _) => net.clone(),
                (None, MobilitySource::Synthetic { model, .. }) if model == "manhattan" => {
                    Arc::new(RoadNet::grid([0.0, 0.0, 2000.0, 2000.0], 200.0, 12.0))
                }
                _ => return Err(PredictError::NoRoads),
            };
            (PredictorKind::Roads(radio_map(), net), false, false)
        }
        other => return Err(PredictError::Predictor(other.to_owned())),
    };
    let mut cells: BTreeMap<CellId, BaseStation> = sites
        .iter()
        .map(|s| {
            let mut rc = RanConfig::new(CellId(s.id));
            rc.predictor.kind = kind.clone();
            rc.predictor.sequence = sequence;
            rc.predictor.points = points;
            (CellId(s.id), BaseStation::new(rc))
        })
        .collect();
    let mut serving: BTreeMap<UeId, CellId> = BTreeMap::new();
    let mut measurers: BTreeMap<UeId, UeMeasurer> = BTreeMap::new();
    let mut tracked: BTreeMap<(UeId, CellId), Tracked> = BTreeMap::new();
    let mut handovers: Vec<HoRecord> = Vec::new();
    let mut last_ho: BTreeMap<UeId, (CellId, Instant)> = BTreeMap::new();
    let mut pingpongs = 0u64;
    let mut ue_seconds = 0.0;
    let mut clocks = CellClocks::default();
    let steps = (duration / period) as u64;
    for step in 1..=steps {
        let t = step as f64 * period;
        let now = Instant::from_secs_f64(t);
        for (i, track) in tracks.iter().enumerate() {
            let ue = UeId(i as u32 + 1);
            let Some(pos) = track(t) else { continue };
            ue_seconds += period;
            let mean: Vec<(u32, f64)> = sites
                .iter()
                .map(|s| {
                    let d = ((s.x - pos[0]).powi(2) + (s.y - pos[1]).powi(2)).sqrt();
                    (s.id, rsrp_dbm(46.0, 50, model.nlos(d)))
                })
                .collect();
            let m = measurers
                .entry(ue)
                .or_default()
                .measure(&mcfg, pos, &mean, &mut rng);
            let cell = match serving.get(&ue) {
                Some(c) => *c,
                None => {
                    let best = m
                        .iter()
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .map_or(CellId(1), |c| CellId(c.0));
                    if let Some(bs) = cells.get_mut(&best) {
                        bs.handle_attach(clocks.at(best, now), ue);
                    }
                    serving.insert(ue, best);
                    best
                }
            };
            let Some(&(_, serving_dbm)) = m.iter().find(|(c, _)| *c == cell.0) else {
                continue;
            };
            let report = MeasurementReport {
                ue,
                serving_dbm,
                neighbours: m
                    .iter()
                    .filter(|(c, _)| *c != cell.0)
                    .map(|(c, v)| (CellId(*c), *v))
                    .collect(),
                position: Some(pos),
            };
            let Some(bs) = cells.get_mut(&cell) else {
                continue;
            };
            bs.handle_measurement(clocks.at(cell, now), &report);
            let out: Vec<_> = std::iter::from_fn(|| bs.poll_transmit()).collect();
            while bs.poll_event().is_some() {}
            let mut request = None;
            let mut execute_at = None;
            for tx in out {
                match tx.msg {
                    Message::HandoverRequest(r) => request = Some(r),
                    Message::HandoverPrediction(p) => {
                        tracked
                            .entry((ue, cell))
                            .or_insert(Tracked {
                                history: Vec::new(),
                            })
                            .history
                            .push((now, p));
                    }
                    Message::HandoverExecution(h) => {
                        execute_at = Some(h.timing.resolve(now));
                        let tr = tracked.get(&(ue, cell));
                        let earlier = now - std::time::Duration::from_secs(2);
                        handovers.push(HoRecord {
                            at: now,
                            target: h.target,
                            standing: tr.and_then(|tr| standing_at(tr, now)).cloned(),
                            top1_2s: tr
                                .and_then(|tr| standing_at(tr, earlier))
                                .is_some_and(|p| p.candidates[0].cell == h.target),
                            lead_s: lead_of(tr, h.target, now),
                        });
                        if let Some((prev, at)) = last_ho.get(&ue)
                            && *prev == h.target
                            && now.saturating_duration_since(*at).as_secs_f64() <= 1.0
                        {
                            pingpongs += 1;
                        }
                        last_ho.insert(ue, (cell, now));
                        tracked.remove(&(ue, cell));
                        serving.insert(ue, h.target);
                    }
                    _ => {}
                }
            }
            if let Some(r) = request {
                x2(
                    &mut cells,
                    &mut clocks,
                    ue,
                    cell,
                    r,
                    now,
                    execute_at.unwrap_or(now),
                );
            }
        }
    }
    Ok(score(
        &handovers,
        pingpongs,
        ue_seconds,
        tracks.len() as u64,
        sites.len() as u64,
    ))
}

/// Each base station's own time. The X2 exchange runs ahead of the measurement loop (a
/// cell's 2003 waits for the announced time); a cell's later inputs are fed at its own
/// time, so that no role ever sees time run backwards (the `Role` contract).
#[derive(Default)]
struct CellClocks(BTreeMap<CellId, Instant>);

impl CellClocks {
    /// The time to feed `cell` an input that happens at `now`.
    fn at(&mut self, cell: CellId, now: Instant) -> Instant {
        let t = self.0.entry(cell).or_insert(now);
        *t = (*t).max(now);
        *t
    }
}

/// Runs the X2 handover between the `ran` roles with no network delay: the 2001 the source
/// sent, then 2002, 2003 (at the announced time `execute_at`: the cells' timers run up to
/// it, no further, so no joining or leaving timer fires before the 2006 that settles it),
/// 2006 and the context release.
fn x2(
    cells: &mut BTreeMap<CellId, BaseStation>,
    clocks: &mut CellClocks,
    ue: UeId,
    from: CellId,
    request: HandoverRequest,
    now: Instant,
    execute_at: Instant,
) {
    let horizon = execute_at;
    let mut queue: Vec<(NodeId, NodeId, Message)> =
        vec![(from.into(), request.target.into(), request.into())];
    // Each step is one hop of a fixed five-message exchange; the bound only guards a bug.
    for _ in 0..16 {
        let Some((sender, dest, msg)) = queue.pop() else {
            break;
        };
        match (dest, msg) {
            (NodeId::Cell(c), m) => {
                let Some(bs) = cells.get_mut(&c) else {
                    continue;
                };
                let mut at = clocks.at(c, now);
                bs.handle_message(at, sender, m);
                loop {
                    while let Some(t) = bs.poll_transmit() {
                        queue.push((c.into(), t.to, t.msg));
                    }
                    while bs.poll_event().is_some() {}
                    match bs.poll_timeout() {
                        Some(t) if t <= horizon => {
                            at = clocks.at(c, t);
                            bs.handle_timeout(at);
                        }
                        _ => break,
                    }
                }
            }
            (NodeId::Ue(_), Message::HandoverCommand(cmd)) => {
                let confirm = HandoverConfirm { ue, source: from };
                queue.push((ue.into(), cmd.target.into(), confirm.into()));
            }
            _ => {}
        }
    }
}

fn lead_of(tr: Option<&Tracked>, target: CellId, now: Instant) -> f64 {
    let Some(tr) = tr else { return 0.0 };
    // Walk back while the standing prediction contains the target.
    let mut since: Option<Instant> = None;
    for (at, p) in tr.history.iter().rev() {
        if p.candidates.iter().any(|c| c.cell == target) {
            since = Some(*at);
        } else {
            break;
        }
    }
    since.map_or(0.0, |s| now.saturating_duration_since(s).as_secs_f64())
}

fn standing_at(tr: &Tracked, at: Instant) -> Option<&HandoverPrediction> {
    tr.history
        .iter()
        .rev()
        .find(|(t, _)| *t <= at)
        .map(|(_, p)| p)
        .filter(|p| !p.candidates.is_empty())
}

/// One handover and how it was predicted.
struct HoRecord {
    at: Instant,
    target: CellId,
    /// The prediction standing when the handover executed.
    standing: Option<HandoverPrediction>,
    /// Whether the prediction standing 2 s earlier named the target first.
    top1_2s: bool,
    /// How long the target had been continuously predicted.
    lead_s: f64,
}

fn score(hos: &[HoRecord], pingpongs: u64, ue_seconds: f64, ues: u64, cells: u64) -> PredictReport {
    let n = hos.len().max(1) as f64;
    let top1 = hos
        .iter()
        .filter(|h| {
            h.standing
                .as_ref()
                .is_some_and(|p| p.candidates[0].cell == h.target)
        })
        .count() as f64
        / n;
    let topk = hos
        .iter()
        .filter(|h| {
            h.standing
                .as_ref()
                .is_some_and(|p| p.candidates.iter().any(|c| c.cell == h.target))
        })
        .count() as f64
        / n;
    let mut leads: Vec<f64> = hos.iter().map(|h| h.lead_s).collect();
    leads.sort_by(f64::total_cmp);
    let lead_p50 = Percentiles::rank(&leads, 0.5);
    let ahead = LEADS
        .iter()
        .map(|l| {
            (
                format!("{l}"),
                leads.iter().filter(|x| **x >= *l).count() as f64 / n,
            )
        })
        .collect();
    let mut errs: Vec<f64> = hos
        .iter()
        .filter_map(|h| {
            let p = h.standing.as_ref()?;
            let eta = p.timing?.resolve(h.at);
            Some((eta.as_nanos() as f64 - h.at.as_nanos() as f64) / 1e6)
        })
        .collect();
    let m = errs.len().max(1) as f64;
    let mae = errs.iter().map(|e| e.abs()).sum::<f64>() / m;
    let bias = errs.iter().sum::<f64>() / m;
    errs.iter_mut().for_each(|e| *e = e.abs());
    errs.sort_by(f64::total_cmp);
    let p90 = Percentiles::rank(&errs, 0.9);
    let mut bins = [(0u64, 0u64); 5];
    for h in hos {
        if let Some(p) = &h.standing {
            for c in &p.candidates {
                let b = ((f64::from(c.likelihood) * 5.0) as usize).min(4);
                bins[b].0 += 1;
                bins[b].1 += u64::from(c.cell == h.target);
            }
        }
    }
    let reliability = bins
        .iter()
        .enumerate()
        .map(|(i, (p, hit))| Reliability {
            from: i as f64 / 5.0,
            to: (i + 1) as f64 / 5.0,
            predicted: *p,
            hit_rate: if *p > 0 { *hit as f64 / *p as f64 } else { 0.0 },
        })
        .collect();
    PredictReport {
        handovers: hos.len() as u64,
        top1_accuracy: top1,
        topk_accuracy: topk,
        top1_accuracy_2s: hos.iter().filter(|h| h.top1_2s).count() as f64 / n,
        lead_s_p50: lead_p50,
        predicted_ahead_share: ahead,
        eta_mae_ms: mae,
        eta_bias_ms: bias,
        eta_p90_ms: p90,
        reliability,
        handover_rate_per_ue_min: hos.len() as f64 / (ue_seconds / 60.0).max(1e-9),
        pingpong_rate: pingpongs as f64 / n,
        ues,
        cells,
    }
}

type Track = Box<dyn Fn(f64) -> Option<[f64; 2]>>;

fn ue_tracks(cfg: &PredictConfig, rng: &mut ChaCha8Rng) -> Result<(Vec<Track>, f64), PredictError> {
    match &cfg.mobility {
        MobilitySource::Sumo(_) | MobilitySource::Trace(_) => {
            let trace = Arc::new(match &cfg.mobility {
                MobilitySource::Sumo(path) => FcdTrace::load(Path::new(path))?,
                MobilitySource::Trace(t) => t.clone(),
                MobilitySource::Synthetic { .. } => FcdTrace::default(),
            });
            let duration = trace
                .tracks
                .values()
                .filter_map(|t| t.last().map(|s| s.t))
                .fold(0.0, f64::max);
            let ids: Vec<String> = trace.tracks.keys().cloned().collect();
            let tracks = ids
                .into_iter()
                .map(|id| {
                    let tr = Arc::clone(&trace);
                    Box::new(move |t: f64| tr.position(&id, t)) as Track
                })
                .collect();
            Ok((tracks, duration))
        }
        MobilitySource::Synthetic {
            model,
            ues,
            duration_s,
        } => {
            let area = [0.0, 0.0, 2000.0, 2000.0];
            let period = 0.2;
            let steps = (*duration_s / period) as usize;
            let mut tracks: Vec<Track> = Vec::new();
            for i in 0..*ues {
                let start = [
                    rand::Rng::random_range(rng, 0.0..2000.0),
                    rand::Rng::random_range(rng, 0.0..2000.0),
                ];
                let mut m: Box<dyn Mobility> = match model.as_str() {
                    "rwp" => Box::new(RandomWaypoint::new(area, (2.0, 15.0), 2.0, start)),
                    "gauss-markov" => Box::new(GaussMarkov::new(
                        area,
                        0.85,
                        12.0,
                        (2.0, 0.3),
                        start,
                        f64::from(i),
                    )),
                    "manhattan" => Box::new(Manhattan::new(area, 200.0, 12.0, start)),
                    other => return Err(PredictError::Mobility(other.to_owned())),
                };
                let path: Vec<[f64; 2]> = (0..=steps).map(|_| m.step(period, rng)).collect();
                tracks.push(Box::new(move |t: f64| {
                    path.get((t / period).round() as usize).copied()
                }));
            }
            Ok((tracks, *duration_s))
        }
    }
}

/// The area the UEs cover, sampled every second over the run.
fn bounds_of(tracks: &[Track], duration: f64) -> [f64; 4] {
    let seconds = 0..=(duration.max(0.0) as u32);
    let positions = tracks
        .iter()
        .flat_map(|tr| seconds.clone().filter_map(|i| tr(f64::from(i))));
    bounds(positions).unwrap_or([0.0, 0.0, 2000.0, 2000.0])
}
