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
//! The predictor here is the A3-margin trend predictor; its interface (candidates with
//! likelihoods, ETA with uncertainty) is what 1002 carries.
#![forbid(unsafe_code)]

mod config;
mod kalman;
mod predict;
mod sequence;
mod station;

pub use config::{PredictorConfig, PredictorKind, RanConfig};
pub use kalman::RadioMap;
pub use station::{BaseStation, MeasurementReport, RanEvent, TTT_VALUES_MS, is_standard_ttt};
