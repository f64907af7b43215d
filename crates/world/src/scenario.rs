//! Scenarios: topology, radio, links, service and UE routes, read from TOML.
//!
//! The built-in scenarios ([`BUILTIN`]: `fig4`, `corridor`, `regions`, `turnback`,
//! `samecell`, `mispredict`, `demo`) are TOML files embedded in the binary; a
//! user scenario has the same format (see `crates/world/scenarios/fig4.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

mod ranges;

/// Why a scenario could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Not a built-in name and not a readable file.
    #[error(
        "{path:?} is not a built-in scenario (fig4, corridor, regions, turnback, samecell, mispredict, demo) and cannot be read as a file: {source}"
    )]
    Io {
        /// The path tried.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse.
    #[error("scenario {name} is not valid: {source}")]
    Parse {
        /// Scenario name or path.
        name: String,
        /// The parser's message, with line and column.
        source: Box<toml::de::Error>,
    },
    /// The scenario parsed but does not make sense.
    #[error("scenario {name}: {what}")]
    Invalid {
        /// Scenario name.
        name: String,
        /// What is wrong.
        what: String,
    },
}

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Simulated time during which UEs send inputs (seconds).
    pub duration_s: f64,
    /// Time after `duration_s` to let everything settle before the final checks.
    #[serde(default = "default_drain")]
    pub drain_s: f64,
    /// Radio model.
    #[serde(default)]
    pub radio: Radio,
    /// Handover parameters.
    #[serde(default)]
    pub handover: Handover,
    /// Link latencies, bandwidths and loss.
    #[serde(default)]
    pub links: Links,
    /// The service every UE uses.
    #[serde(default)]
    pub service: Service,
    /// ME server settings.
    #[serde(default)]
    pub edge: Edge,
    /// Control-node settings.
    #[serde(default)]
    pub control: Control,
    /// UEs tick at phases of their own instead of all at the same instants, as phones
    /// do: each makes its inputs from an offset derived from its seed (within a
    /// measurement period), and the UEs are measured in groups, one each millisecond of
    /// the measurement period. Off: every UE's first input one period after the start,
    /// every UE measured at once.
    #[serde(default)]
    pub ue_phases: bool,
    /// ME servers.
    #[serde(rename = "server")]
    pub servers: Vec<ServerDef>,
    /// Cells.
    #[serde(rename = "cell")]
    pub cells: Vec<CellDef>,
    /// UEs.
    #[serde(rename = "ue")]
    pub ues: Vec<UeDef>,
}

fn default_drain() -> f64 {
    3.0
}

/// The path-loss model of a scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathLossModel {
    /// 3GPP TR 38.901 urban macro (NLOS), at `freq_ghz`.
    #[default]
    Uma,
    /// 3GPP TR 38.901 urban micro street canyon (NLOS), at `freq_ghz`.
    Umi,
    /// `pl_1km_db + 10 · pl_exponent · log10(d / 1 km)`.
    LogDistance,
}

/// Path loss (3GPP TR 38.901 by default) with AR(1) shadowing along the path.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Radio {
    /// Path-loss model: `uma` (default), `umi` or `log-distance`.
    pub model: PathLossModel,
    /// Carrier frequency of the 38.901 models (GHz).
    pub freq_ghz: f64,
    /// Transmit power per cell (dBm).
    pub tx_dbm: f64,
    /// Path loss at 1 km (dB), log-distance only.
    pub pl_1km_db: f64,
    /// Path-loss exponent (dB per decade × 1/10), log-distance only.
    pub pl_exponent: f64,
    /// Shadow-fading standard deviation (dB).
    pub shadowing_db: f64,
    /// Shadowing decorrelation distance (m).
    pub decorrelation_m: f64,
    /// Measurement period (ms).
    pub meas_period_ms: u64,
    /// L3 filter coefficient k (a = 2^(-k/4)).
    pub l3_k: u32,
    /// A UE measures the cells within this distance (m) and its serving cell; 0: every
    /// cell. City runs measure within twice the inter-site distance, so a measurement
    /// costs the same however large the city (see [`crate::Nearby`]).
    pub measure_radius_m: f64,
    /// Whether cells predict handovers (off: no 1002 at all).
    pub predict: bool,
    /// Which predictor the cells run (`docs/prediction.md`).
    pub predictor: PredictorName,
    /// The road network of the `roads` predictor (city runs set it from a SUMO network
    /// or the Manhattan grid; a scenario file cannot).
    #[serde(skip)]
    pub roads: Option<std::sync::Arc<edgeshift_radio::roads::RoadNet>>,
}

/// The handover predictors a scenario can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredictorName {
    /// The A3-margin trend (RSRP only).
    #[default]
    Trend,
    /// A Kalman track of the reported position through the radio map, merged with the
    /// trend (a 38.901 radio model only).
    Kalman,
    /// `kalman` blended with the cell-sequence model each cell learns from its handovers.
    Markov,
    /// `kalman` with the handover points (position, heading, target) each cell learns
    /// from its own handovers: the targets ahead on the UE's road, seconds before its
    /// radio shows them.
    Learned,
    /// `kalman` matched to the road network: the roads ahead, with the turns each cell
    /// sees taken, walked through the radio map (city runs with a road network only).
    Roads,
}

impl std::str::FromStr for PredictorName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trend" => Ok(Self::Trend),
            "kalman" => Ok(Self::Kalman),
            "markov" => Ok(Self::Markov),
            "learned" => Ok(Self::Learned),
            "roads" => Ok(Self::Roads),
            other => Err(format!(
                "unknown predictor {other:?} (trend, kalman, markov, learned, roads)"
            )),
        }
    }
}

impl Default for Radio {
    fn default() -> Self {
        Self {
            model: PathLossModel::Uma,
            freq_ghz: 3.5,
            tx_dbm: 46.0,
            pl_1km_db: 128.1,
            pl_exponent: 3.76,
            shadowing_db: 0.0,
            decorrelation_m: 50.0,
            meas_period_ms: 200,
            l3_k: 4,
            measure_radius_m: 0.0,
            predict: true,
            predictor: PredictorName::Trend,
            roads: None,
        }
    }
}

/// Handover trigger and execution times.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Handover {
    /// A3 offset (dB).
    pub a3_offset_db: f64,
    /// Hysteresis (dB).
    pub hysteresis_db: f64,
    /// Time to trigger (ms).
    pub ttt_ms: u64,
    /// Lead of the announced execution time (ms): the source cell announces the 2003 this
    /// long after A3 held, longer than the X2 preparation (2001 + 2002, 10 to 30 ms).
    pub prep_ms: u64,
    /// UE RRC processing after 2003 (ms).
    pub rrc_processing_ms: f64,
    /// Fixed part of the interruption (ms).
    pub interruption_ms: f64,
    /// Mean of the exponential extra interruption (ms).
    pub interruption_exp_mean_ms: f64,
    /// The target's joining timer (ms): an interruption longer than this fails the
    /// handover, and the UE re-establishes at its source cell.
    pub joining_timeout_ms: u64,
    /// RRC re-establishment after a failed handover (ms), from the timer's expiry.
    pub reestablish_ms: f64,
    /// UEs a cell admits.
    pub capacity: u32,
    /// Make-before-break handovers (3GPP DAPS): the UE keeps its source link until it has
    /// joined the target, so the radio gap is about zero.
    pub daps: bool,
}

impl Default for Handover {
    fn default() -> Self {
        Self {
            a3_offset_db: 3.0,
            hysteresis_db: 1.0,
            ttt_ms: 320,
            prep_ms: 40,
            rrc_processing_ms: 10.0,
            interruption_ms: 30.0,
            interruption_exp_mean_ms: 10.0,
            joining_timeout_ms: 200,
            reestablish_ms: 100.0,
            capacity: 1000,
            daps: false,
        }
    }
}

/// Link model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Links {
    /// UE ↔ cell one-way latency (ms).
    pub radio_ms: f64,
    /// Loss probability of service traffic on the radio.
    pub radio_loss: f64,
    /// UE ↔ cell bandwidth (Mbit/s).
    pub radio_mbit: f64,
    /// Cell ↔ its own ME server one-way latency (ms).
    pub access_ms: f64,
    /// ME server ↔ ME server one-way latency (ms).
    pub backhaul_ms: f64,
    /// ME server ↔ ME server bandwidth (Gbit/s).
    pub backhaul_gbit: f64,
    /// Cell ↔ cell (X2) one-way latency (ms).
    pub x2_ms: f64,
    /// Extra X2 latency drawn uniformly from 0 to this per message (ms): with the
    /// defaults a handover preparation (2001 + 2002) takes 10 to 30 ms.
    pub x2_jitter_ms: f64,
    /// Control node ↔ anyone one-way latency (ms).
    pub control_ms: f64,
}

impl Default for Links {
    fn default() -> Self {
        Self {
            radio_ms: 1.0,
            radio_loss: 0.0,
            radio_mbit: 100.0,
            access_ms: 1.0,
            backhaul_ms: 1.0,
            backhaul_gbit: 1.0,
            x2_ms: 5.0,
            x2_jitter_ms: 10.0,
            control_ms: 2.0,
        }
    }
}

/// The service every UE uses, and the UE traffic.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// `mem` (the in-memory reference service), `model` (a state accounted by size, for
    /// thousands of UEs) or a WebAssembly sample: `counter`, `arena`, `armap`.
    pub kind: String,
    /// State size (bytes).
    pub state_bytes: u64,
    /// Places written per input.
    pub writes_per_input: u32,
    /// Bytes each input writes (at most the state), for the modelled service (kind
    /// `model`, whose state is accounted by size: see `edgeshift_edge::ModelService`).
    pub dirty_bytes_per_input: u64,
    /// Round-trip latency budget (ms); 0: always follow the UE.
    pub latency_budget_ms: u32,
    /// Time between inputs (ms).
    pub input_period_ms: u64,
    /// The UEs send their inputs in runs of this long, one message per run, and servers
    /// answer a run with one message (ms; 0: each input and answer on its own). See
    /// `edgeshift_ue::UeConfig::input_run`.
    pub input_run_ms: u64,
    /// Bytes per input.
    pub payload_bytes: usize,
    /// A WebAssembly module of your own (`.wasm` or `.wat`, relative to the scenario file)
    /// instead of `kind`.
    pub module: Option<PathBuf>,
    /// The module's configuration file (the bytes given to `es_init`), relative to the
    /// scenario file.
    pub config: Option<PathBuf>,
    /// WebAssembly fuel per input: the time slice one input may hold its server for (see
    /// `edgeshift_runtime::Limits::fuel_per_input`).
    pub fuel_per_input: u64,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            kind: "mem".into(),
            state_bytes: 1 << 20,
            writes_per_input: 8,
            dirty_bytes_per_input: 16 << 10,
            latency_budget_ms: 0,
            input_period_ms: 20,
            input_run_ms: 0,
            payload_bytes: 32,
            module: None,
            config: None,
            fuel_per_input: edgeshift_runtime::DEFAULT_FUEL_PER_INPUT,
        }
    }
}

/// ME server settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Edge {
    /// Replay sync batches inputs this long (ms; 0: forward each at once).
    pub replay_batch_ms: u64,
    /// Period of delta sync (ms).
    pub delta_interval_ms: u64,
    /// Live instances per server.
    pub capacity: u32,
    /// A server serves only while the control node answers its heartbeats, for this long
    /// after the last answered one (ms; 0: no heartbeats, no failover). The control node
    /// declares a server dead after 1.5 times as long.
    pub lease_ms: u64,
    /// State a server may hold for live instances and shadows together (MiB; 0: no
    /// limit). A shadow that does not fit is refused, and the move it was for does not
    /// happen (the service stays where it is).
    pub memory_mib: u64,
    /// Optimistic activation: a hot relocation onto a ready replay shadow routes the UE's
    /// traffic to the target at the trigger, and the target goes live tentatively at its
    /// 1006, committing when the source's 2004 matches (rolled back otherwise).
    pub optimistic: bool,
}

impl Default for Edge {
    fn default() -> Self {
        Self {
            replay_batch_ms: 0,
            delta_interval_ms: 50,
            capacity: 100,
            lease_ms: 1000,
            memory_mib: 0,
            optimistic: false,
        }
    }
}

/// Control-node settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// Likelihood threshold of shadow-jit.
    pub jit_threshold: f32,
    /// Safety margin of shadow-jit (ms).
    pub jit_margin_ms: u64,
    /// Load threshold for load balancing (none: off).
    pub load_threshold: Option<f32>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            jit_threshold: 0.3,
            jit_margin_ms: 300,
            load_threshold: None,
        }
    }
}

/// An ME server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDef {
    /// Its id.
    pub id: u32,
}

/// A cell.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellDef {
    /// Its id.
    pub id: u32,
    /// Position (m).
    pub x: f64,
    /// Position (m).
    pub y: f64,
    /// Its ME server.
    pub server: u32,
    /// UEs it admits (overrides `handover.capacity`).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Its region (each region has its own control node; 0 by default). All cells of one
    /// ME server are in one region.
    #[serde(default)]
    pub region: u32,
}

/// A UE moving along waypoints at a constant speed, or along a timed track.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UeDef {
    /// Its id (also its service's id).
    pub id: u32,
    /// Speed (m/s).
    #[serde(default)]
    pub speed_mps: f64,
    /// Path: the UE starts at the first point and stops at the last.
    #[serde(default)]
    pub waypoints: Vec<[f64; 2]>,
    /// When it starts moving (s).
    #[serde(default)]
    pub start_s: f64,
    /// Timed positions `[t, x, y]` (s, m), in time order (a mobility trace): when given,
    /// they replace `waypoints`, `speed_mps` and `start_s`. The UE waits at the first
    /// position before its first time and stays at the last after its last.
    #[serde(default)]
    pub track: Vec<[f64; 3]>,
}

impl UeDef {
    /// Where the UE is at time `t` (s).
    #[must_use]
    pub fn position(&self, t: f64) -> crate::radio::Pos {
        if self.track.is_empty() {
            return crate::radio::position(&self.waypoints, self.speed_mps, self.start_s, t);
        }
        crate::radio::on_track(&self.track, t)
    }
}

/// Names of the built-in scenarios.
pub const BUILTIN: [&str; 7] = [
    "fig4",
    "corridor",
    "regions",
    "turnback",
    "samecell",
    "mispredict",
    "demo",
];

/// Largest scenario file read (a named pipe or device must not fill the memory).
const MAX_FILE: u64 = 16 << 20;

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    Ok(text)
}

/// The TOML text of a built-in scenario.
#[must_use]
pub fn builtin_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "fig4" => include_str!("../scenarios/fig4.toml"),
        "corridor" => include_str!("../scenarios/corridor.toml"),
        "regions" => include_str!("../scenarios/regions.toml"),
        "turnback" => include_str!("../scenarios/turnback.toml"),
        "samecell" => include_str!("../scenarios/samecell.toml"),
        "mispredict" => include_str!("../scenarios/mispredict.toml"),
        "demo" => include_str!("../scenarios/demo.toml"),
        _ => return None,
    })
}

impl Scenario {
    /// A built-in scenario by name, or a TOML file by path.
    ///
    /// # Errors
    /// Unknown name and unreadable file, bad TOML, or an inconsistent scenario.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some(text) = builtin_text(name_or_path) {
            return Self::parse(name_or_path, text);
        }
        let text = read_bounded(Path::new(name_or_path)).map_err(|source| ScenarioError::Io {
            path: name_or_path.to_owned(),
            source,
        })?;
        let mut s = Self::parse(name_or_path, &text)?;
        // A module's paths are relative to the scenario file.
        let dir = Path::new(name_or_path)
            .parent()
            .unwrap_or_else(|| Path::new(""));
        for p in [&mut s.service.module, &mut s.service.config]
            .into_iter()
            .flatten()
        {
            *p = dir.join(&*p);
        }
        Ok(s)
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// Bad TOML or an inconsistent scenario.
    pub fn parse(name: &str, text: &str) -> Result<Self, ScenarioError> {
        let s: Self = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            name: name.to_owned(),
            source: Box::new(e),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks every number by name and the world's consistency, as loading does: for a
    /// scenario changed after it was loaded.
    ///
    /// # Errors
    /// The first value out of its range, or what does not fit together.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |what: String| {
            Err(ScenarioError::Invalid {
                name: self.name.clone(),
                what,
            })
        };
        if let Err(what) = ranges::check(self) {
            return bad(what);
        }
        if self.radio.model != PathLossModel::LogDistance
            && !(0.5..=100.0).contains(&self.radio.freq_ghz)
        {
            return bad(format!(
                "radio.freq_ghz must be 0.5 to 100 GHz for the 38.901 models, not {}",
                self.radio.freq_ghz
            ));
        }
        if self.radio.model == PathLossModel::LogDistance
            && self.radio.predictor != PredictorName::Trend
        {
            return bad(
                "radio.predictor kalman, markov, learned and roads need a 38.901 radio.model (uma or umi)"
                    .into(),
            );
        }
        if self.radio.predictor == PredictorName::Roads && self.radio.roads.is_none() {
            return bad(
                "radio.predictor roads needs a road network (a city run with --roads FILE.net.xml, or manhattan mobility)"
                    .into(),
            );
        }
        if !(self.duration_s > 0.0 && self.duration_s.is_finite()) {
            return bad(format!(
                "duration_s must be positive, not {}",
                self.duration_s
            ));
        }
        if self.cells.is_empty() || self.servers.is_empty() || self.ues.is_empty() {
            return bad("needs at least one server, one cell and one ue".into());
        }
        for c in &self.cells {
            if !self.servers.iter().any(|s| s.id == c.server) {
                return bad(format!(
                    "cell {} names server {}, which is not defined",
                    c.id, c.server
                ));
            }
        }
        let mut ids: Vec<u32> = self.cells.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.cells.len() {
            return bad("cell ids are not unique".into());
        }
        for c in &self.cells {
            if let Some(o) = self
                .cells
                .iter()
                .find(|o| o.server == c.server && o.region != c.region)
            {
                return bad(format!(
                    "server {} serves cell {} in region {} and cell {} in region {}: a server is in one region",
                    c.server, c.id, c.region, o.id, o.region
                ));
            }
        }
        let mut ids: Vec<u32> = self.ues.iter().map(|u| u.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.ues.len() {
            return bad("ue ids are not unique".into());
        }
        for u in &self.ues {
            if u.waypoints.is_empty() && u.track.is_empty() {
                return bad(format!("ue {} has neither waypoints nor a track", u.id));
            }
            if u.track.windows(2).any(|w| w[1][0] < w[0][0]) {
                return bad(format!("ue {}'s track is not in time order", u.id));
            }
            if !(u.speed_mps >= 0.0 && u.speed_mps.is_finite()) {
                return bad(format!("ue {} has speed {}", u.id, u.speed_mps));
            }
        }
        if !(0.0..1.0).contains(&self.links.radio_loss) {
            return bad(format!(
                "radio_loss must be in [0, 1), not {}",
                self.links.radio_loss
            ));
        }
        if self.links.backhaul_gbit <= 0.0 || self.links.radio_mbit <= 0.0 {
            return bad("bandwidths must be positive".into());
        }
        let kind = self.service.kind.as_str();
        if self.service.config.is_some() && self.service.module.is_none() {
            return bad("service.config is the configuration of a service.module; set both".into());
        }
        if self.service.module.is_none()
            && kind != edgeshift_edge::MEM_KIND
            && kind != edgeshift_edge::MODEL_KIND
            && !edgeshift_runtime::samples::NAMES.contains(&kind)
        {
            return bad(format!(
                "unknown service.kind {:?} (mem, model, counter, arena or armap)",
                self.service.kind
            ));
        }
        if kind == edgeshift_edge::MODEL_KIND && self.service.state_bytes < 4096 {
            return bad("a modelled service.state_bytes must be at least 4096".into());
        }
        if self.service.state_bytes < 64 || self.service.input_period_ms == 0 {
            return bad(
                "service.state_bytes must be at least 64 and input_period_ms positive".into(),
            );
        }
        Ok(())
    }
}
