//! Replicated control nodes on etcd (`[control] store = "etcd"`).
//!
//! Several `edgeshift control --replica N` processes form one control group. They campaign
//! for one leader key in etcd ([`leader`]); the winner loads the registry from etcd
//! ([`registry`]), opens its listener and acts, every registry change a transaction
//! conditioned on its term; the others wait. A leader that loses etcd stops acting before
//! its lease can expire there, closes its connections and campaigns again; a standby that
//! wins carries on from the registry, its route epochs above any of the old term's.

pub mod leader;
pub mod registry;
