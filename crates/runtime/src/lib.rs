//! Relocatable WebAssembly services for edgeshift ME servers.
//!
//! [`WasmFactory`] implements the edge's `ServiceFactory`: it checks a module against
//! guest ABI v1 (`docs/service-abi.md`), exports its mutable globals so they travel with
//! the state, compiles it once per content hash with wasmtime (NaN canonicalisation and
//! deterministic relaxed SIMD on, fuel metering for runaway guests, a memory cap per
//! instance), and instantiates [`WasmService`]s. A service's state is its linear memory
//! plus its mutable globals; snapshots, deltas (the 4 KiB chunks written since the last
//! one: every store marks its chunk in a dirty map, `track.rs`) and the xxh3-128 checksum
//! all cover both.
//!
//! ```no_run
//! use edgeshift_edge::{EdgeConfig, EdgeServer};
//! use edgeshift_proto::{Instant, ServerId};
//! use edgeshift_runtime::{Limits, WasmFactory};
//!
//! let factory = WasmFactory::new(Limits::default()).expect("engine");
//! let server = EdgeServer::new(EdgeConfig::new(ServerId(1)), Box::new(factory), Instant::ZERO);
//! ```
#![forbid(unsafe_code)]

mod error;
mod factory;
mod instrument;
mod limits;
pub mod samples;
mod service;
mod state;
mod track;
mod twin;

pub use error::ModuleError;
pub use factory::{MemoryPool, WASM_KIND, WasmFactory};
pub use limits::{DEFAULT_FUEL_PER_INPUT, Limits};
pub use service::WasmService;
pub use twin::{TwinError, twin_checksum};
