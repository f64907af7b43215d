//! How a scenario configures each role. The simulator and the live daemons build their
//! roles with these, so a scenario means the same thing in virtual and in real time.
//! Also the radio side of a scenario that both drivers play: mean and measured RSRP of
//! every cell at a position, and how a handover's radio gap ends ([`Join`]).

use std::time::Duration;

use edgeshift_control::{ControlConfig, Strategy, server_timeout_for};
use edgeshift_edge::{EdgeConfig, LeaseConfig, MEM_KIND, MODEL_KIND, MemConfig, ModelConfig};
use edgeshift_proto::{CellId, NodeId, RegionId, ServerId, ServiceId, ServiceSpec, SyncMode, UeId};
use edgeshift_radio::measure::{MeasureConfig, UeMeasurer};
use edgeshift_radio::pathloss::{Environment, ThreeGpp};
use edgeshift_ran::{PredictorConfig, PredictorKind, RadioMap, RanConfig};
use edgeshift_runtime::{Limits, samples};
use edgeshift_ue::UeConfig;
use rand::Rng;

use crate::radio::{PathLoss, Pos};
use crate::scenario::{CellDef, PathLossModel, PredictorName, Scenario, UeDef};
use crate::{ModuleSource, Nearby, WorldError};

/// The deploy spec of a service kind with about `state_bytes` of state.
///
/// # Errors
/// [`WorldError::UnknownService`] for a kind that is neither `mem` nor a runtime sample.
pub fn service_spec(
    kind: &str,
    state_bytes: u64,
    writes: u32,
    budget: u32,
) -> Result<ServiceSpec, WorldError> {
    if kind == MEM_KIND {
        return Ok(MemConfig {
            state_bytes,
            writes_per_input: writes,
        }
        .spec(budget));
    }
    let mib = u32::try_from(state_bytes.div_ceil(1 << 20).clamp(1, 1024)).unwrap_or(1024);
    samples::spec(kind, mib, budget).ok_or_else(|| WorldError::UnknownService(kind.to_owned()))
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1e3)
}

impl Scenario {
    /// The deploy spec of this scenario's service, with optional overrides of its kind
    /// and state size. A `service.module` of the scenario is read and checked here (a
    /// `kind` override replaces it).
    ///
    /// # Errors
    /// See [`service_spec`] and [`ModuleSource::load`].
    pub fn service_spec(
        &self,
        kind: Option<&str>,
        state_bytes: Option<u64>,
    ) -> Result<ServiceSpec, WorldError> {
        let s = &self.service;
        if let (Some(module), None) = (&s.module, kind) {
            return Ok(ModuleSource::load(module, s.config.as_deref())?.spec(s.latency_budget_ms));
        }
        let (kind, bytes) = (
            kind.unwrap_or(&s.kind),
            state_bytes.unwrap_or(s.state_bytes),
        );
        if kind == MODEL_KIND {
            return Ok(ModelConfig {
                state_bytes: bytes,
                dirty_bytes_per_input: s.dirty_bytes_per_input.min(bytes),
            }
            .spec(s.latency_budget_ms));
        }
        service_spec(kind, bytes, s.writes_per_input, s.latency_budget_ms)
    }

    /// The limits the server's guests run under (the service's fuel per input).
    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            fuel_per_input: self.service.fuel_per_input,
            ..Limits::default()
        }
    }

    /// The configuration of ME server `id` in its `incarnation` (1 at the first start,
    /// one more at each restart).
    #[must_use]
    pub fn edge_config(&self, id: ServerId, incarnation: u64) -> EdgeConfig {
        let mut ec = EdgeConfig::new(id);
        ec.capacity = self.edge.capacity;
        ec.delta_interval = Duration::from_millis(self.edge.delta_interval_ms.max(1));
        ec.replay_batch = Duration::from_millis(self.edge.replay_batch_ms);
        ec.output_runs = self.service.input_run_ms > 0;
        ec.memory_budget = (self.edge.memory_mib > 0).then_some(self.edge.memory_mib << 20);
        ec.control = NodeId::Control(self.region_of_server(id));
        ec.optimistic = self.edge.optimistic;
        if self.edge.lease_ms > 0 {
            let mut lease = LeaseConfig::new(incarnation);
            lease.duration = Duration::from_millis(self.edge.lease_ms);
            lease.heartbeat = lease.duration / 5;
            ec.lease = Some(lease);
        }
        ec
    }

    /// The configuration of the base station of `cell`.
    #[must_use]
    pub fn ran_config(&self, cell: CellId) -> RanConfig {
        let h = &self.handover;
        let mut rc = RanConfig::new(cell);
        rc.control = NodeId::Control(self.region_of_cell(cell));
        rc.a3_offset_db = h.a3_offset_db;
        rc.hysteresis_db = h.hysteresis_db;
        rc.time_to_trigger = Duration::from_millis(h.ttt_ms);
        rc.prep_time = Duration::from_millis(h.prep_ms);
        rc.joining_timeout = Duration::from_millis(h.joining_timeout_ms);
        rc.daps = h.daps;
        rc.capacity = self
            .cells
            .iter()
            .find(|c| c.id == cell.0)
            .and_then(|c| c.capacity)
            .unwrap_or(h.capacity);
        rc.predictor = PredictorConfig {
            enabled: self.radio.predict,
            ..PredictorConfig::default()
        };
        let env = match self.radio.model {
            PathLossModel::Umi => Some(Environment::UMi),
            PathLossModel::Uma => Some(Environment::UMa),
            PathLossModel::LogDistance => None,
        };
        if let (
            PredictorName::Kalman
            | PredictorName::Markov
            | PredictorName::Learned
            | PredictorName::Roads,
            Some(env),
        ) = (self.radio.predictor, env)
        {
            let map = RadioMap::new(
                self.cells
                    .iter()
                    .map(|c| (CellId(c.id), [c.x, c.y]))
                    .collect(),
                // The scenarios' RSRP is transmit power minus path loss, with no
                // per-resource-element share: the map adds back what it subtracts.
                self.radio.tx_dbm + 10.0 * (12.0f64 * 50.0).log10(),
                50,
                ThreeGpp::new(env, self.radio.freq_ghz),
                self.radio.decorrelation_m,
            );
            rc.predictor.kind = match (&self.radio.roads, self.radio.predictor) {
                (Some(net), PredictorName::Roads) => PredictorKind::Roads(map, net.clone()),
                _ => PredictorKind::Kalman(map),
            };
            rc.predictor.sequence = self.radio.predictor == PredictorName::Markov;
            rc.predictor.points = self.radio.predictor == PredictorName::Learned;
        }
        rc
    }

    /// The region of a cell.
    #[must_use]
    pub fn region_of_cell(&self, cell: CellId) -> RegionId {
        RegionId(
            self.cells
                .iter()
                .find(|c| c.id == cell.0)
                .map_or(0, |c| c.region),
        )
    }

    /// The region of a server (of its cells).
    #[must_use]
    pub fn region_of_server(&self, server: ServerId) -> RegionId {
        RegionId(
            self.cells
                .iter()
                .find(|c| c.server == server.0)
                .map_or(0, |c| c.region),
        )
    }

    /// Every region's control node, in order (`control` alone without regions).
    #[must_use]
    pub fn controls(&self) -> Vec<NodeId> {
        let mut r: Vec<u32> = self.cells.iter().map(|c| c.region).collect();
        r.push(0);
        r.sort_unstable();
        r.dedup();
        r.into_iter()
            .map(|r| NodeId::Control(RegionId(r)))
            .collect()
    }

    /// The configuration of region `region`'s control node for `strategy` and shadow
    /// `sync` mode.
    #[must_use]
    pub fn region_control_config(
        &self,
        region: RegionId,
        strategy: Strategy,
        sync: SyncMode,
    ) -> ControlConfig {
        let mut cc = self.control_config(strategy, sync);
        cc.region = region;
        if self.cells.iter().any(|c| c.region != 0) {
            cc.regions = self
                .cells
                .iter()
                .map(|c| (CellId(c.id), RegionId(c.region)))
                .collect();
        }
        cc
    }

    /// The control node's configuration for `strategy` and shadow `sync` mode.
    #[must_use]
    pub fn control_config(&self, mut strategy: Strategy, sync: SyncMode) -> ControlConfig {
        let topology = self
            .cells
            .iter()
            .map(|c| (CellId(c.id), ServerId(c.server)))
            .collect();
        if let Strategy::ShadowJit { threshold } = &mut strategy {
            *threshold = self.control.jit_threshold;
        }
        let mut cc = ControlConfig::new(strategy, topology);
        cc.access_latency = ms(self.links.access_ms);
        cc.default_backhaul = ms(self.links.backhaul_ms);
        cc.link_bits_per_s = self.links.backhaul_gbit * 1e9;
        cc.jit_margin = Duration::from_millis(self.control.jit_margin_ms);
        cc.load_threshold = self.control.load_threshold;
        cc.sync = sync;
        cc.optimistic = self.edge.optimistic;
        cc.server_timeout = (self.edge.lease_ms > 0)
            .then(|| server_timeout_for(Duration::from_millis(self.edge.lease_ms)));
        cc
    }

    /// The client configuration of `ue` (its service has the UE's id), without an end.
    #[must_use]
    pub fn ue_config(&self, ue: &UeDef, seed: u64) -> UeConfig {
        let mut uc = UeConfig::new(
            UeId(ue.id),
            ServiceId(ue.id),
            seed ^ u64::from(ue.id).rotate_left(32),
        );
        uc.input_period = Duration::from_millis(self.service.input_period_ms);
        uc.input_run = Duration::from_millis(self.service.input_run_ms);
        uc.payload_len = self.service.payload_bytes;
        if self.ue_phases {
            // Within a measurement period, so that the phase does not depend on the runs.
            let span = Duration::from_millis(self.radio.meas_period_ms.max(1)).as_nanos();
            let phase = u64::try_from(u128::from(splitmix(uc.seed)) % span.max(1)).unwrap_or(0);
            uc.phase = Duration::from_nanos(phase);
        }
        uc.daps = self.handover.daps;
        uc
    }

    /// Cell positions.
    #[must_use]
    pub fn cell_positions(&self) -> Vec<(CellId, Pos)> {
        self.cells
            .iter()
            .map(|c| (CellId(c.id), [c.x, c.y]))
            .collect()
    }

    /// Mean received power (dBm) of each cell at `pos`, without fading.
    #[must_use]
    pub fn mean_rsrp(&self, pos: Pos) -> Vec<(CellId, f64)> {
        let loss = PathLoss::of(&self.radio);
        self.cells
            .iter()
            .map(|c| (CellId(c.id), self.level(&loss, c, pos)))
            .collect()
    }

    /// Mean received power (dBm) of `cell` at `pos`.
    fn level(&self, loss: &PathLoss, cell: &CellDef, pos: Pos) -> f64 {
        let d = ((cell.x - pos[0]).powi(2) + (cell.y - pos[1]).powi(2)).sqrt();
        self.radio.tx_dbm - loss.db(d)
    }

    /// The cell a UE at `pos` camps on first: the strongest mean signal.
    #[must_use]
    pub fn best_cell(&self, pos: Pos) -> Option<CellId> {
        self.mean_rsrp(pos)
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
    }

    /// The cells its UEs measure, for [`Self::measure`]: build it once per run.
    #[must_use]
    pub fn nearby(&self) -> Nearby {
        Nearby::new(&self.cells, self.radio.measure_radius_m)
    }

    /// One L1 measurement by a UE at `pos` served by `serving`, of the cells it measures
    /// (`near`, from [`Self::nearby`]: those within `radio.measure_radius_m` and the
    /// serving cell, or every cell), through its measurer (shadow fading, error,
    /// quantisation, L3 filter): filtered RSRP (dBm) per cell, in the scenario's order.
    pub fn measure<R: Rng>(
        &self,
        near: &Nearby,
        measurer: &mut UeMeasurer,
        pos: Pos,
        serving: Option<CellId>,
        rng: &mut R,
    ) -> Vec<(CellId, f64)> {
        let r = &self.radio;
        let cfg = MeasureConfig {
            shadowing_db: r.shadowing_db,
            decorrelation_m: r.decorrelation_m,
            l3_k: r.l3_k,
            ..MeasureConfig::default()
        };
        let loss = PathLoss::of(r);
        let mean: Vec<(u32, f64)> = near
            .at(&self.cells, pos, serving)
            .into_iter()
            .filter_map(|i| self.cells.get(i as usize))
            .map(|c| (c.id, self.level(&loss, c, pos)))
            .collect();
        measurer
            .measure(&cfg, pos, &mean, rng)
            .into_iter()
            .map(|(c, v)| (CellId(c), v))
            .collect()
    }

    /// How one handover ends: the UE joins the target after RRC processing plus the
    /// interruption time (with its exponential tail when configured), or, when that
    /// interruption outlasts the target's joining timer, the handover fails and the UE
    /// re-establishes at its source after the timer and the re-establishment time.
    pub fn handover_join<R: Rng>(&self, rng: &mut R) -> Join {
        use rand_distr::{Distribution, Exp};
        let h = &self.handover;
        let extra = if h.interruption_exp_mean_ms > 0.0 {
            Exp::new(1.0 / h.interruption_exp_mean_ms).map_or(0.0, |d| d.sample(rng))
        } else {
            0.0
        };
        let interruption = h.interruption_ms + extra;
        let timeout = h.joining_timeout_ms as f64;
        if interruption > timeout {
            Join::Reestablish(ms(h.rrc_processing_ms + timeout + h.reestablish_ms))
        } else {
            Join::Target(ms(h.rrc_processing_ms + interruption))
        }
    }
}

/// The end of a handover's radio gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// The UE joins the target this long after the 2003.
    Target(Duration),
    /// The handover fails; the UE is back at its source cell this long after the 2003.
    Reestablish(Duration),
}

/// A well-mixed function of `x` (SplitMix64's finaliser): a UE's input phase from its
/// seed, without a draw from the run's generator.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
