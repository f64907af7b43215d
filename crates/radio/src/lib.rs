//! Radio and mobility models for edgeshift's simulator and RAN agent: pure functions and
//! seeded generators, no I/O.
#![forbid(unsafe_code)]

pub mod layout;
pub mod measure;
pub mod mobility;
pub mod pathloss;
pub mod roads;
pub mod sumo;
