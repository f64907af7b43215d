//! The base-station role: serves UEs, runs the A3 handover trigger with hysteresis and
//! time to trigger, predicts handovers earlier (1002), announces execution (1005), runs
//! the X2-style handover (2001 → 2002 → 2003, then 2006 at the target), and relays each
//! UE's service traffic to the ME server that hosts its service.
//!
//! # Driving a [`BaseStation`]
//!
//! 1. [`BaseStation::new`]; [`BaseStation::handle_attach`] for UEs present at start.
//! 2. Feed each L3-filtered [`MeasurementReport`] of an attached UE to
//!    [`BaseStation::handle_measurement`] (every measurement period).
//! 3. Feed messages to [`Role::handle_message`](edgeshift_proto::Role::handle_message);
//!    drain `poll_transmit` / `poll_event`; call `handle_timeout` at `poll_timeout`.
//!
//! Handover prediction is behind the [`Predictor`] trait (candidates with likelihoods, ETA
//! with uncertainty: what 1002 carries); [`PredictorConfig::kind`] picks the A3-margin
//! trend, the Kalman track, the Kalman track on a road network, or a custom one, and
//! [`PredictorConfig::sequence`] blends in the cell-sequence model.
//!
//! ```no_run
//! use edgeshift_proto::{CellId, Instant, Role, UeId};
//! use edgeshift_ran::{BaseStation, RanConfig, measurement_report};
//!
//! let mut cell = BaseStation::new(RanConfig::new(CellId(1)));
//! let now = Instant::ZERO;
//! cell.handle_attach(now, UeId(7));
//! // Every measurement period: the UE's filtered RSRP of every cell, as its report.
//! let rsrp = [(CellId(1), -95.0), (CellId(2), -90.0)];
//! if let Some(report) = measurement_report(UeId(7), CellId(1), &rsrp, [120.0, 0.0]) {
//!     cell.handle_measurement(now, &report);
//! }
//! while let Some(t) = cell.poll_transmit() { /* 1002 to the control node, 2001 over X2 … */ }
//! while let Some(e) = cell.poll_event() { /* observe e */ }
//! let _wake_at = cell.poll_timeout(); // call handle_timeout then
//! ```
#![forbid(unsafe_code)]

mod config;
mod kalman;
mod measurement;
mod points;
mod predict;
mod predictor;
mod roads;
mod sequence;
mod station;

pub use config::{PredictorConfig, PredictorFactory, PredictorKind, RanConfig};
pub use kalman::RadioMap;
pub use measurement::{MAX_REPORTED_NEIGHBOURS, measurement_report};
pub use points::PointsPredictor;
pub use predict::{Margins, Prediction, Sample};
pub use predictor::{KalmanPredictor, Predictor, SequencePredictor, TrendPredictor, UeView};
pub use roads::RoadPredictor;
pub use station::{BaseStation, MeasurementReport, RanEvent, TTT_VALUES_MS, is_standard_ttt};
