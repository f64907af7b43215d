//! The edgeshift daemons on real sockets: the same sans-IO roles the simulator runs,
//! driven by a tokio event loop ([`host::Host`]) over the TCP transport of
//! `edgeshift-net`.
//!
//! - [`config::Deployment`] is the one TOML file that describes an installation.
//! - [`daemon`] starts each daemon kind (`control`, `edge`, `ran`, `ue`) from it.
//! - [`demo`] runs the patent's topology on loopback and reports what happened.
//! - [`certs`] makes the mutual-TLS certificates of a deployment.
//! - [`faults`] names daemons in fault specs and cuts links for `demo --fault`.
//!
//! Each daemon journals protocol messages and role events ([`journal`]), exports
//! Prometheus metrics ([`metrics`]), and the control node keeps its registry in redb
//! ([`store`]) so that a restart resumes, or in etcd with replicas that take over from a
//! leader that dies ([`replica`]).
#![forbid(unsafe_code)]

pub mod app_gateway;
pub mod certs;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod faults;
pub mod host;
pub mod journal;
pub mod metrics;
mod observe;
pub mod radio_agent;
pub mod replica;
pub mod report;
pub mod store;
pub mod ue_agent;
