//! Scenarios from mobility: a city instead of a hand-written route.
//!
//! [`City::scenario`] lays a hexagonal grid of cells over the area the UEs cover, gives
//! each ME server about `cells_per_server` neighbouring cells, and puts every UE of a SUMO
//! trace (or `ues` synthetic ones: Manhattan grid, random waypoint, Gauss–Markov) on its
//! own timed track. Every UE uses the modelled service (`edgeshift_edge::ModelService`),
//! whose state is accounted by size, so that thousands of UEs fit in memory.

use std::path::PathBuf;
use std::sync::Arc;

use edgeshift_radio::layout::{bounds, hex_grid};
use edgeshift_radio::mobility::{GaussMarkov, Manhattan, Mobility as Model, RandomWaypoint};
use edgeshift_radio::roads::RoadNet;
use edgeshift_radio::sumo::{FcdError, FcdTrace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::{
    CellDef, Control, Edge, Handover, Links, PredictorName, Radio, Scenario, ScenarioError,
    ServerDef, Service, UeDef,
};

/// Where the UEs come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Mobility {
    /// A SUMO floating-car-data trace (`--fcd-output`, XML or gzip): every vehicle is a UE.
    Sumo(PathBuf),
    /// Manhattan grid: 200 m blocks, 12 m/s, turns at crossings.
    Manhattan,
    /// Random waypoint: 2 to 15 m/s, 2 s pauses.
    RandomWaypoint,
    /// Gauss–Markov: memory 0.85, mean 12 m/s.
    GaussMarkov,
}

impl std::str::FromStr for Mobility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("sumo:") {
            return Ok(Self::Sumo(PathBuf::from(path)));
        }
        match s {
            "manhattan" => Ok(Self::Manhattan),
            "rwp" => Ok(Self::RandomWaypoint),
            "gauss-markov" => Ok(Self::GaussMarkov),
            other => Err(format!(
                "unknown mobility {other:?} (sumo:FILE, manhattan, rwp, gauss-markov)"
            )),
        }
    }
}

impl std::fmt::Display for Mobility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sumo(p) => write!(f, "sumo:{}", p.display()),
            Self::Manhattan => f.write_str("manhattan"),
            Self::RandomWaypoint => f.write_str("rwp"),
            Self::GaussMarkov => f.write_str("gauss-markov"),
        }
    }
}

/// A city run's world.
#[derive(Clone, Debug)]
pub struct City {
    /// Where the UEs come from.
    pub mobility: Mobility,
    /// UEs: synthetic ones to make, or the first this many of a trace (`None`: 50
    /// synthetic, every vehicle of a trace).
    pub ues: Option<u32>,
    /// Seconds to run (`None`: 600 s synthetic, the whole trace).
    pub duration_s: Option<f64>,
    /// Inter-site distance of the hexagonal grid (m).
    pub isd_m: f64,
    /// Cells per ME server (neighbouring cells share one).
    pub cells_per_server: u32,
    /// State of each UE's service (bytes it stands for).
    pub state_bytes: u64,
    /// Bytes each input writes.
    pub dirty_bytes_per_input: u64,
    /// Backhaul between ME servers (Gbit/s).
    pub backhaul_gbit: f64,
    /// Shadow fading σ (dB).
    pub shadowing_db: f64,
    /// Seed of the synthetic mobility.
    pub seed: u64,
    /// The cells' handover predictor.
    pub predictor: PredictorName,
    /// The road network (a SUMO `.net.xml`) of the `roads` predictor; Manhattan mobility
    /// has its grid without one.
    pub roads: Option<PathBuf>,
    /// Least likelihood of a server for a shadow-jit shadow.
    pub jit_threshold: f32,
    /// A source sends its replay shadows the inputs it applied in batches of this long
    /// (ms; 0: each input at once); the batch goes out at a freeze in any case.
    pub replay_batch_ms: u64,
    /// Each UE sends the inputs of this long as one message, and its server answers them
    /// with one (ms; 0: one message per input and answer).
    pub input_run_ms: u64,
}

impl City {
    /// Inputs per message of a city's UEs: 200 ms, ten inputs at 50 per second. A city
    /// has thousands of UEs; a message per input would be most of its cost.
    pub const DEFAULT_INPUT_RUN_MS: u64 = 200;

    /// A city's UEs measure the cells within this many inter-site distances (and their
    /// serving cell). Those are the nearest two rings of a hexagonal layout: a cell
    /// farther away is at least 20 dB below the cells a UE at a cell border is between,
    /// and a report names only the 8 strongest neighbours.
    pub const MEASURE_RADIUS_ISD: f64 = 2.0;

    /// The defaults of `edgeshift sim --mobility`: 500 m ISD, 3 cells per server, 128 MiB
    /// of state with 16 KiB written per input, 1 Gbit/s backhaul, 6 dB shadowing, the
    /// Kalman predictor (vehicles report their position), inputs in runs of
    /// [`Self::DEFAULT_INPUT_RUN_MS`].
    #[must_use]
    pub fn new(mobility: Mobility) -> Self {
        Self {
            mobility,
            ues: None,
            duration_s: None,
            isd_m: 500.0,
            cells_per_server: 3,
            state_bytes: 128 << 20,
            dirty_bytes_per_input: 16 << 10,
            backhaul_gbit: 1.0,
            shadowing_db: 6.0,
            seed: 1,
            predictor: PredictorName::Kalman,
            roads: None,
            jit_threshold: Control::default().jit_threshold,
            replay_batch_ms: 0,
            input_run_ms: Self::DEFAULT_INPUT_RUN_MS,
        }
    }
}

/// Why a city could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CityError {
    /// The trace did not load.
    #[error(transparent)]
    Trace(#[from] FcdError),
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The scenario built does not validate.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// A UE's timed positions `[t, x, y]`.
type Track = Vec<[f64; 3]>;

/// Sample period of synthetic tracks (s); positions in between are interpolated.
const TRACK_STEP_S: f64 = 1.0;
/// Side of the synthetic area (m).
const AREA_M: f64 = 2000.0;
/// Block length of the Manhattan grid (m).
const BLOCK_M: f64 = 200.0;
/// Speed of Manhattan UEs (m/s).
const SPEED_MPS: f64 = 12.0;

impl City {
    fn check(&self) -> Result<(), CityError> {
        let bad = |what: String| Err(CityError::Invalid(what));
        if !(self.isd_m.is_finite() && (50.0..=20_000.0).contains(&self.isd_m)) {
            return bad(format!("--isd must be 50 to 20000 m, not {}", self.isd_m));
        }
        if !(1..=1000).contains(&self.cells_per_server) {
            return bad(format!(
                "--cells-per-server must be 1 to 1000, not {}",
                self.cells_per_server
            ));
        }
        if !(self.backhaul_gbit.is_finite() && (0.001..=10_000.0).contains(&self.backhaul_gbit)) {
            return bad(format!(
                "--backhaul-gbit must be 0.001 to 10000, not {}",
                self.backhaul_gbit
            ));
        }
        if !(self.shadowing_db.is_finite() && (0.0..=20.0).contains(&self.shadowing_db)) {
            return bad(format!(
                "shadowing must be 0 to 20 dB, not {}",
                self.shadowing_db
            ));
        }
        if let Some(d) = self.duration_s
            && !(d.is_finite() && d > 0.0 && d <= 7.0 * 24.0 * 3600.0)
        {
            return bad(format!(
                "--duration must be above 0 and at most a week, not {d}"
            ));
        }
        if !(self.jit_threshold.is_finite() && (0.0..=1.0).contains(&self.jit_threshold)) {
            return bad(format!(
                "--jit-threshold must be 0 to 1, not {}",
                self.jit_threshold
            ));
        }
        if self.ues == Some(0) {
            return bad("--ues must be at least 1".into());
        }
        Ok(())
    }

    /// Each UE's timed track and the run's duration.
    fn tracks(&self) -> Result<(Vec<Track>, f64), CityError> {
        let synthetic = |model: &Mobility| -> (Vec<Track>, f64) {
            let n = self.ues.unwrap_or(50);
            let duration = self.duration_s.unwrap_or(600.0);
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            let area = [0.0, 0.0, AREA_M, AREA_M];
            let substeps = 5;
            let dt = TRACK_STEP_S / f64::from(substeps);
            let samples = (duration / TRACK_STEP_S).ceil() as u64;
            let tracks = (0..n)
                .map(|i| {
                    let start = [rng.random_range(0.0..AREA_M), rng.random_range(0.0..AREA_M)];
                    let mut m: Box<dyn Model> = match model {
                        Mobility::RandomWaypoint => {
                            Box::new(RandomWaypoint::new(area, (2.0, 15.0), 2.0, start))
                        }
                        Mobility::GaussMarkov => Box::new(GaussMarkov::new(
                            area,
                            0.85,
                            12.0,
                            (2.0, 0.3),
                            start,
                            f64::from(i),
                        )),
                        Mobility::Manhattan | Mobility::Sumo(_) => {
                            Box::new(Manhattan::new(area, BLOCK_M, SPEED_MPS, start))
                        }
                    };
                    let mut track = Vec::with_capacity(samples as usize + 1);
                    let p = m.position();
                    track.push([0.0, p[0], p[1]]);
                    for k in 1..=samples {
                        let mut p = m.position();
                        for _ in 0..substeps {
                            p = m.step(dt, &mut rng);
                        }
                        track.push([k as f64 * TRACK_STEP_S, p[0], p[1]]);
                    }
                    track
                })
                .collect();
            (tracks, duration)
        };
        match &self.mobility {
            Mobility::Sumo(path) => {
                let trace = FcdTrace::load(path)?;
                let take = self.ues.map_or(usize::MAX, |n| n as usize);
                let tracks: Vec<Track> = trace
                    .tracks
                    .values()
                    .filter(|t| !t.is_empty())
                    .take(take)
                    .map(|t| t.iter().map(|s| [s.t, s.x, s.y]).collect())
                    .collect();
                let end = tracks
                    .iter()
                    .filter_map(|t| t.last().map(|s| s[0]))
                    .fold(0.0, f64::max);
                let duration = self.duration_s.map_or(end, |d| d.min(end.max(1.0)));
                Ok((tracks, duration.max(1.0)))
            }
            model => Ok(synthetic(model)),
        }
    }

    /// The scenario: cells, servers, UEs on their tracks, the modelled service.
    ///
    /// # Errors
    /// A value out of range, a trace that does not load, or a scenario that does not
    /// validate.
    pub fn scenario(&self) -> Result<Scenario, CityError> {
        self.check()?;
        let (tracks, duration) = self.tracks()?;
        let positions = tracks.iter().flatten().map(|s| [s[1], s[2]]);
        let Some(b) = bounds(positions) else {
            return Err(CityError::Invalid(format!(
                "{} has no positions",
                self.mobility
            )));
        };
        let roads = match (&self.roads, &self.mobility) {
            (Some(path), _) => Some(Arc::new(RoadNet::load(path)?)),
            (None, Mobility::Manhattan) => Some(Arc::new(RoadNet::grid(
                [0.0, 0.0, AREA_M, AREA_M],
                BLOCK_M,
                SPEED_MPS,
            ))),
            (None, _) => None,
        };
        let sites = hex_grid(b, self.isd_m);
        let servers_of = cluster(&sites, self.isd_m, self.cells_per_server);
        let cells: Vec<CellDef> = sites
            .iter()
            .zip(&servers_of)
            .map(|(s, server)| CellDef {
                id: s.id,
                x: s.x,
                y: s.y,
                server: *server,
                capacity: None,
                region: 0,
            })
            .collect();
        let mut ids: Vec<u32> = servers_of;
        ids.sort_unstable();
        ids.dedup();
        let servers = ids.into_iter().map(|id| ServerDef { id }).collect();
        let ues = tracks
            .into_iter()
            .enumerate()
            .map(|(i, track)| UeDef {
                id: u32::try_from(i + 1).unwrap_or(u32::MAX),
                speed_mps: 0.0,
                waypoints: Vec::new(),
                start_s: 0.0,
                track,
            })
            .collect();
        let s = Scenario {
            name: format!("city:{}", self.mobility),
            description: format!(
                "{} over {} cells ({} m ISD), about {} per ME server",
                self.mobility,
                sites.len(),
                self.isd_m,
                self.cells_per_server
            ),
            duration_s: duration,
            drain_s: 3.0,
            ue_phases: true,
            radio: Radio {
                shadowing_db: self.shadowing_db,
                measure_radius_m: Self::MEASURE_RADIUS_ISD * self.isd_m,
                predictor: self.predictor,
                roads,
                ..Radio::default()
            },
            handover: Handover::default(),
            links: Links {
                backhaul_gbit: self.backhaul_gbit,
                ..Links::default()
            },
            service: Service {
                kind: edgeshift_edge::MODEL_KIND.into(),
                state_bytes: self.state_bytes,
                dirty_bytes_per_input: self.dirty_bytes_per_input.min(self.state_bytes),
                input_run_ms: self.input_run_ms,
                ..Service::default()
            },
            edge: Edge {
                capacity: 1_000_000,
                replay_batch_ms: self.replay_batch_ms,
                ..Edge::default()
            },
            control: Control {
                jit_threshold: self.jit_threshold,
                ..Control::default()
            },
            servers,
            cells,
            ues,
        };
        s.validate()?;
        Ok(s)
    }
}

/// The ME server of each site: square tiles holding about `k` cells each, numbered from 1
/// in the order of the sites (`k` = 1: one server per cell).
fn cluster(sites: &[edgeshift_radio::layout::Site], isd: f64, k: u32) -> Vec<u32> {
    if k <= 1 {
        return (1..=sites.len() as u32).collect();
    }
    // A hexagonal cell covers isd² · √3/2.
    let side = isd * (f64::from(k) * 3f64.sqrt() / 2.0).sqrt();
    let (x0, y0) = sites
        .iter()
        .fold((f64::INFINITY, f64::INFINITY), |(x, y), s| {
            (x.min(s.x), y.min(s.y))
        });
    let mut tiles: std::collections::BTreeMap<(i64, i64), u32> = Default::default();
    sites
        .iter()
        .map(|s| {
            let tile = (
                ((s.x - x0) / side).floor() as i64,
                ((s.y - y0) / side).floor() as i64,
            );
            let next = tiles.len() as u32 + 1;
            *tiles.entry(tile).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synthetic_city_has_cells_servers_and_tracked_ues() {
        let mut c = City::new(Mobility::Manhattan);
        c.ues = Some(20);
        c.duration_s = Some(60.0);
        let s = c.scenario().expect("builds");
        assert_eq!(s.ues.len(), 20);
        assert!(s.ues.iter().all(|u| u.track.len() == 61));
        assert!(s.cells.len() >= 16, "{} cells", s.cells.len());
        // About three cells per server.
        let per = s.cells.len() as f64 / s.servers.len() as f64;
        assert!((1.5..=4.5).contains(&per), "{per} cells per server");
        assert_eq!(s.service.kind, "model");
        // Manhattan UEs stay in the area and move.
        let u = &s.ues[0];
        let (a, b) = (u.position(0.0), u.position(60.0));
        assert!(a != b);
        assert!((0.0..=AREA_M).contains(&b[0]) && (0.0..=AREA_M).contains(&b[1]));
    }

    #[test]
    fn the_road_predictor_walks_the_manhattan_grid_and_needs_roads_elsewhere() {
        let mut c = City::new(Mobility::Manhattan);
        c.ues = Some(2);
        c.duration_s = Some(10.0);
        c.predictor = PredictorName::Roads;
        let s = c.scenario().expect("manhattan has its grid");
        let net = s.radio.roads.as_ref().expect("roads");
        // 11 × 11 crossings 200 m apart, two-way roads between neighbours.
        assert_eq!(net.roads().len(), 2 * 2 * 11 * 10);
        let mut c = City::new(Mobility::GaussMarkov);
        c.ues = Some(2);
        c.duration_s = Some(10.0);
        c.predictor = PredictorName::Roads;
        let e = c.scenario().expect_err("no roads");
        assert!(e.to_string().contains("road network"), "{e}");
        let mut c = City::new(Mobility::Manhattan);
        c.jit_threshold = 1.5;
        assert!(
            c.scenario()
                .expect_err("1.5")
                .to_string()
                .contains("--jit-threshold")
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = City::new(Mobility::Manhattan);
        c.isd_m = f64::NAN;
        assert!(c.scenario().expect_err("NaN").to_string().contains("--isd"));
        let mut c = City::new(Mobility::Manhattan);
        c.ues = Some(0);
        assert!(c.scenario().expect_err("0").to_string().contains("--ues"));
        assert!("walk".parse::<Mobility>().is_err());
        assert_eq!(
            "sumo:a.xml".parse::<Mobility>(),
            Ok(Mobility::Sumo("a.xml".into()))
        );
    }
}
