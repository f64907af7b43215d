//! The world a run plays in, shared by the simulator (`edgeshift-sim`) and the live
//! daemons (`edgeshift-live`) so that a scenario means the same thing in virtual and real
//! time:
//!
//! - [`Scenario`]: topology (cells, ME servers), radio model, handover parameters, links,
//!   the service and the UE routes, from TOML (built-ins embedded: [`BUILTIN`]);
//! - the configuration of every role built from it ([`Scenario::edge_config`],
//!   [`Scenario::ran_config`], [`Scenario::control_config`], [`Scenario::ue_config`],
//!   [`service_spec`]);
//! - the radio side both drivers play: positions along routes ([`radio::position`]), mean
//!   and measured RSRP ([`Scenario::measure`], of the cells [`Nearby`] a UE), how a
//!   handover's radio gap ends ([`Join`]);
//! - [`Node`]: any role behind one `Role` implementation, with a [`Command`] for inputs
//!   that are not messages;
//! - [`City`]: a scenario built from mobility (a SUMO trace or a synthetic model) on a hex
//!   layout, for city runs with the modelled service.
//!
//! ```no_run
//! use edgeshift_control::Strategy;
//! use edgeshift_proto::{CellId, SyncMode};
//! use edgeshift_world::Scenario;
//!
//! let s = Scenario::load("fig4").expect("built-in");
//! let control = s.control_config(Strategy::Shadow, SyncMode::Replay);
//! let cell = s.ran_config(CellId(1));
//! let spec = s.service_spec(None, None).expect("known service");
//! # let _ = (control, cell, spec);
//! ```
#![forbid(unsafe_code)]

pub mod city;
mod crowd;
pub mod fault;
mod module;
mod nearby;
mod node;
pub mod radio;
mod roles;
pub mod scenario;

pub use city::{City, CityError, Mobility};
pub use module::ModuleSource;
pub use nearby::Nearby;
pub use node::{Command, Node, NodeEvent, WrongNode};
pub use roles::{Join, service_spec};
pub use scenario::{BUILTIN, Scenario, ScenarioError};

/// Why a scenario's service cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// The service is not one this build knows.
    #[error("unknown service {0:?} (expected mem, counter, arena or armap)")]
    UnknownService(String),
    /// A module or configuration file cannot be read.
    #[error("cannot read {path}: {source}")]
    ModuleFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime refuses the module, or its `es_init` the configuration.
    #[error("service module {path} refused: {reason}")]
    Module {
        /// The module file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}
