//! The record of a run, with one definition of every field for every driver (the
//! simulator, the live demo, `predict`, `bench`):
//!
//! - [`Observation`]: a fact a driver saw (a role event, state bytes sent, a UE's end);
//!   serializable, so live daemons journal them and the demo replays the merged journals;
//! - [`Recorder`]: takes observations in time order, runs the invariant [`Checker`] on
//!   every one, and builds the [`Report`] (the JSON of `--json`);
//! - [`LoadTracker`]: live instances and shadows per server over time, from the events;
//! - [`Percentiles`]: the one percentile definition (nearest rank) of every report.
//!
//! ```
//! use edgeshift_proto::{Instant, ServiceId, UeId};
//! use edgeshift_record::{Observation, Recorder, RunMeta, UeFinal};
//!
//! let meta = RunMeta {
//!     scenario: "none".into(),
//!     strategy: "shadow".into(),
//!     seed: 1,
//!     origin: Instant::ZERO,
//! };
//! let mut rec = Recorder::new(meta, [(UeId(1), ServiceId(1))]);
//! rec.observe(Observation::UeFinal(UeFinal {
//!     at: Instant::from_millis(10),
//!     ue: UeId(1),
//!     service: ServiceId(1),
//!     unanswered: 0,
//!     gaps: Vec::new(),
//!     live: None,
//!     twin: Ok(0),
//!     longest_wait_ms: 0.0,
//! }));
//! let report = rec.finish(Instant::from_millis(10));
//! // No ME server ever reported the service live: that is a broken invariant.
//! assert_eq!(report.invariant_violations, 1);
//! assert!(!report.final_state_matches_twin);
//! ```
#![forbid(unsafe_code)]

pub mod check;
mod ledger;
mod load;
mod observation;
mod recorder;
mod report;

pub use check::{Checker, Violation};

/// A hasher with no per-process random key, for maps that are looked up on every event and
/// never iterated in an order that matters: the same on every run, so simulations stay
/// reproducible. rustc's Fx hash: a multiply and a rotate per word, where SipHash (the
/// standard one, with fixed keys) took a twentieth of a city run's instructions. Not
/// resistant to chosen keys, which the simulator's own ids never are.
pub type FixedState = rustc_hash::FxBuildHasher;
pub use load::{LoadSample, LoadTracker};
pub use observation::{LiveState, Observation, UeFinal};
pub use recorder::{Recorder, RunMeta};
pub use report::{Note, Percentiles, RelocationRecord, Report};
