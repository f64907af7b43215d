//! The predictor interface. A cell asks its [`Predictor`] after every measurement report
//! of a UE that is not handing over yet; whatever it returns goes out as a 1002 when it
//! differs enough from the last one (or is due for a refresh), and nothing for long
//! enough withdraws the prediction. Predictors are deterministic: no clock, no unseeded
//! randomness; `now` comes in the view.
//!
//! Built in: [`TrendPredictor`] (A3-margin trend), [`KalmanPredictor`] (trend plus a
//! position track through the radio map), and [`SequencePredictor`], which blends any
//! predictor with the cell-sequence model the cell learns from its own handovers. Others
//! plug in with [`PredictorKind::Custom`](crate::PredictorKind::Custom).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use edgeshift_proto::{CellId, Instant, UeId};

use crate::config::PredictorConfig;
use crate::kalman::{RadioMap, Track};
use crate::predict::{self, Prediction, Sample};
use crate::sequence::{self, Sequences};
use crate::station::MeasurementReport;

/// What a cell knows of one UE when it asks for a prediction.
#[derive(Debug)]
pub struct UeView<'a> {
    /// The UE.
    pub ue: UeId,
    /// Now.
    pub now: Instant,
    /// The serving cell.
    pub serving: CellId,
    /// The cell's time to trigger.
    pub time_to_trigger: Duration,
    /// A3 offset plus hysteresis (dB): the margins in `history` are relative to it.
    pub a3_threshold_db: f64,
    /// Recent reports as A3 margins, oldest first.
    pub history: &'a VecDeque<Sample>,
    /// Neighbours whose A3 condition holds, and since when.
    pub a3_since: &'a BTreeMap<CellId, Instant>,
    /// The latest report (RSRP of every cell, position if reported).
    pub last: Option<&'a MeasurementReport>,
    /// The cell the UE came from by handover, and when.
    pub arrived: Option<(CellId, Instant)>,
    /// When it joined this cell.
    pub joined: Option<Instant>,
    pub(crate) track: Option<&'a Track>,
}

/// A handover predictor.
pub trait Predictor: std::fmt::Debug + Send {
    /// The prediction for `ue` now, or `None` if no handover is in sight.
    fn predict(&mut self, ue: &UeView<'_>) -> Option<Prediction>;

    /// This cell handed a UE that had arrived from `from` (`None`: attached here) over to
    /// `to` after `dwell`. Learning predictors keep it.
    fn learn(&mut self, _from: Option<CellId>, _to: CellId, _dwell: Duration) {}

    /// This cell handed `ue` (as it was seen then: position, track) over to `to`.
    /// Predictors that learn where handovers happen keep it.
    fn learn_handover(&mut self, _ue: &UeView<'_>, _to: CellId) {}
}

/// Least-squares trend of each neighbour's A3 margin (needs only RSRP).
#[derive(Clone, Debug)]
pub struct TrendPredictor {
    cfg: PredictorConfig,
}

impl TrendPredictor {
    /// With the settings of `cfg`.
    #[must_use]
    pub fn new(cfg: PredictorConfig) -> Self {
        Self { cfg }
    }
}

impl Predictor for TrendPredictor {
    fn predict(&mut self, ue: &UeView<'_>) -> Option<Prediction> {
        let now = ue.now;
        predict::predict(&self.cfg, ue.time_to_trigger, ue.history, now, |c| {
            ue.a3_since
                .get(&c)
                .map(|s| now.saturating_duration_since(*s))
        })
    }
}

/// Constant-velocity Kalman track of the reported position, walked through the radio map;
/// merged with the trend predictor, which sees the next second better. Falls back to the
/// trend alone while the A3 condition already holds or no position is known.
#[derive(Clone, Debug)]
pub struct KalmanPredictor {
    trend: TrendPredictor,
    map: RadioMap,
}

impl KalmanPredictor {
    /// With the settings of `cfg` and the network's radio map.
    #[must_use]
    pub fn new(cfg: PredictorConfig, map: RadioMap) -> Self {
        Self {
            trend: TrendPredictor::new(cfg),
            map,
        }
    }
}

impl Predictor for KalmanPredictor {
    fn predict(&mut self, ue: &UeView<'_>) -> Option<Prediction> {
        let near = self.trend.predict(ue);
        let (Some(track), Some(last)) = (ue.track, ue.last) else {
            return near;
        };
        if !ue.a3_since.is_empty() {
            return near;
        }
        let far = crate::kalman::predict(
            &self.map,
            self.trend.cfg.horizon,
            ue.time_to_trigger,
            ue.a3_threshold_db,
            track,
            (ue.serving, last.serving_dbm),
            &last.neighbours,
            ue.now,
        );
        predict::merge(near, far)
    }
}

/// Any predictor blended with the cell-sequence model (where UEs from each origin went
/// next, after how long) that the cell learns from its own handovers. Without a radio
/// prediction it predicts from the model alone when the most likely next cell has at
/// least `min_top` probability.
#[derive(Debug)]
pub struct SequencePredictor {
    inner: Box<dyn Predictor>,
    sequences: Sequences,
    horizon: Duration,
    min_top: f64,
}

impl SequencePredictor {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Box<dyn Predictor>, horizon: Duration, min_top: f64) -> Self {
        Self {
            inner,
            sequences: Sequences::default(),
            horizon,
            min_top,
        }
    }
}

impl Predictor for SequencePredictor {
    fn predict(&mut self, ue: &UeView<'_>) -> Option<Prediction> {
        let radio = self.inner.predict(ue);
        let from = ue.arrived.map(|a| a.0);
        let since = ue.arrived.map(|a| a.1).or(ue.joined).unwrap_or(ue.now);
        let prior = self.sequences.prior(from);
        sequence::blend(
            radio,
            prior.as_ref(),
            since,
            ue.now,
            self.horizon,
            self.min_top,
        )
    }

    fn learn(&mut self, from: Option<CellId>, to: CellId, dwell: Duration) {
        self.sequences.learn(from, to, dwell);
        self.inner.learn(from, to, dwell);
    }

    fn learn_handover(&mut self, ue: &UeView<'_>, to: CellId) {
        self.inner.learn_handover(ue, to);
    }
}
