//! Configuration of a base station.

use std::time::Duration;

use edgeshift_proto::{CellId, NodeId};

/// Handover trigger and predictor settings of one cell.
#[derive(Clone, Debug)]
pub struct RanConfig {
    /// This cell.
    pub cell: CellId,
    /// A3 offset in dB.
    pub a3_offset_db: f64,
    /// A3 hysteresis in dB.
    pub hysteresis_db: f64,
    /// Time to trigger.
    pub time_to_trigger: Duration,
    /// Event A5 instead of A3: the serving cell below the first threshold (dBm) and a
    /// neighbour above the second, each with the hysteresis.
    pub a5: Option<(f64, f64)>,
    /// A handover back to the cell the UE came from within this time is a ping-pong.
    pub pingpong_window: Duration,
    /// Lead of the announced handover time (1005) before the 2003 goes out.
    pub prep_time: Duration,
    /// UEs this cell admits.
    pub capacity: u32,
    /// Target side: a UE admitted by 2002 that has not sent 2006 within this long failed
    /// its handover (ns-3's joining timeout).
    pub joining_timeout: Duration,
    /// Source side: a UE commanded to leave (2003) whose context the target has not
    /// released (3001) within this long is dropped (ns-3's leaving timeout).
    pub leaving_timeout: Duration,
    /// Report each attached UE's radio measurements to the control node (3005) at most
    /// this often, for the MEC 012 measurement reports it serves; `None`: never.
    pub radio_report_period: Option<Duration>,
    /// Handover prediction.
    pub predictor: PredictorConfig,
    /// The control node of this cell's region: predictions, handovers, reports and route
    /// queries go there.
    pub control: NodeId,
    /// Make-before-break handovers (3GPP DAPS): the source keeps relaying a leaving UE's
    /// downlink until the target has joined it (3001), not only its uplink.
    pub daps: bool,
}

/// Settings of the handover predictor.
#[derive(Clone, Debug)]
pub struct PredictorConfig {
    /// Predict at all (off: no 1002 is ever sent).
    pub enabled: bool,
    /// Reports used for the trend fit.
    pub window: usize,
    /// How far ahead a handover may be predicted.
    pub horizon: Duration,
    /// Smallest margin slope (dB/s) that counts as approaching.
    pub min_slope_db_s: f64,
    /// Neighbours further than this below the A3 threshold (dB) are not candidates yet.
    pub min_margin_db: f64,
    /// A prediction is re-sent at least this often while it stands.
    pub refresh: Duration,
    /// A prediction whose ETA moved by more than this is re-sent.
    pub eta_change: Duration,
    /// The prediction is withdrawn after no candidate was seen for this long.
    pub withdraw_after: Duration,
    /// Which predictor.
    pub kind: PredictorKind,
    /// Blend in the cell-sequence model learned from this cell's own handovers (where UEs
    /// from each origin went next, after how long), and predict from it alone when the
    /// radio does not see a candidate yet.
    pub sequence: bool,
    /// Smallest probability of the most likely next cell for a prediction from the
    /// sequence model alone.
    pub sequence_min_top: f64,
    /// Wrap the predictor with the handover points the cell learns from its own
    /// handovers (position, heading, target: [`crate::PointsPredictor`]); needs positions
    /// in the reports.
    pub points: bool,
}

/// Builds a custom predictor from the cell's predictor settings.
pub type PredictorFactory =
    std::sync::Arc<dyn Fn(&PredictorConfig) -> Box<dyn crate::Predictor> + Send + Sync>;

/// The predictors a cell can run.
#[derive(Clone, Default)]
pub enum PredictorKind {
    /// Least-squares trend of each neighbour's A3 margin (needs only RSRP).
    #[default]
    Trend,
    /// Constant-velocity Kalman filter on the reported position, extrapolated through the
    /// radio map (needs positions in the reports); falls back to the trend predictor while
    /// the A3 condition already holds or no position is known.
    Kalman(crate::kalman::RadioMap),
    /// The Kalman track matched to a road network, the roads ahead walked through the
    /// radio map ([`crate::RoadPredictor`]); the Kalman predictor off the roads.
    Roads(
        crate::kalman::RadioMap,
        std::sync::Arc<edgeshift_radio::roads::RoadNet>,
    ),
    /// Any [`Predictor`](crate::Predictor), built once per cell.
    Custom(PredictorFactory),
}

impl std::fmt::Debug for PredictorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Trend => f.write_str("Trend"),
            Self::Kalman(map) => f.debug_tuple("Kalman").field(map).finish(),
            Self::Roads(map, net) => f.debug_tuple("Roads").field(map).field(net).finish(),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl PredictorConfig {
    /// The predictor these settings describe (wrapped in the sequence model when
    /// `sequence` is set).
    #[must_use]
    pub fn build(&self) -> Box<dyn crate::Predictor> {
        let base: Box<dyn crate::Predictor> = match &self.kind {
            PredictorKind::Trend => Box::new(crate::TrendPredictor::new(self.clone())),
            PredictorKind::Kalman(map) => {
                Box::new(crate::KalmanPredictor::new(self.clone(), map.clone()))
            }
            PredictorKind::Roads(map, net) => Box::new(crate::RoadPredictor::new(
                self.clone(),
                map.clone(),
                net.clone(),
            )),
            PredictorKind::Custom(make) => make(self),
        };
        let base = if self.sequence {
            Box::new(crate::SequencePredictor::new(
                base,
                self.horizon,
                self.sequence_min_top,
            ))
        } else {
            base
        };
        if self.points {
            Box::new(crate::PointsPredictor::new(base, self.horizon))
        } else {
            base
        }
    }
}

impl RanConfig {
    /// Defaults: A3 offset 3 dB, hysteresis 1 dB, TTT 320 ms, 20 ms preparation lead.
    #[must_use]
    pub fn new(cell: CellId) -> Self {
        Self {
            cell,
            a3_offset_db: 3.0,
            hysteresis_db: 1.0,
            time_to_trigger: Duration::from_millis(320),
            a5: None,
            pingpong_window: Duration::from_secs(1),
            prep_time: Duration::from_millis(20),
            capacity: 1000,
            joining_timeout: Duration::from_millis(200),
            leaving_timeout: Duration::from_millis(500),
            radio_report_period: None,
            predictor: PredictorConfig::default(),
            control: NodeId::CONTROL,
            daps: false,
        }
    }
}

impl Default for PredictorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: 10,
            horizon: Duration::from_secs(10),
            min_slope_db_s: 0.3,
            min_margin_db: -12.0,
            refresh: Duration::from_secs(2),
            eta_change: Duration::from_millis(500),
            withdraw_after: Duration::from_secs(1),
            kind: PredictorKind::Trend,
            sequence: false,
            sequence_min_top: 0.6,
            points: false,
        }
    }
}
