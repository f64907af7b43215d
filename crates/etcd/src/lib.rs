//! A small client for etcd v3, the Raft-replicated key-value store the control plane
//! coordinates through (`docs/control-plane.md`).
//!
//! It speaks etcd's JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`, `/v3/lease/grant`,
//! …, served on the client port of every etcd since 3.4) over the HTTP client the
//! project already has, so it needs no gRPC stack and no `protoc` at build time. It covers
//! what leader election and a fenced registry need: reads, puts, deletes, compare-and-swap
//! transactions, and leases.
//!
//! ```no_run
//! # async fn demo() -> Result<(), edgeshift_etcd::EtcdError> {
//! use edgeshift_etcd::{Client, Compare, Op, Txn};
//! let etcd = Client::new(&["http://127.0.0.1:2379".into()])?;
//! let lease = etcd.grant(2).await?;
//! // Take the key only if nobody holds it.
//! let won = etcd
//!     .txn(Txn {
//!         compare: vec![Compare::created(b"/leader", 0)],
//!         success: vec![Op::put(b"/leader", b"me", Some(lease.id))],
//!         failure: vec![Op::get(b"/leader")],
//!     })
//!     .await?
//!     .succeeded;
//! # let _ = won; Ok(()) }
//! ```
//!
//! [`Client::with_tls`] talks to a cluster that serves `https://` and checks client
//! certificates, with a `rustls` client setup (the deployment's CA and a node's
//! certificate).
//!
//! Every call goes to the endpoint that answered last; a connection failure moves on to
//! the next one, so a cluster member that dies costs one timeout, not the client.

mod client;
mod error;
pub mod local;
mod port;
mod wire;

pub use client::{Client, KeyValue, Lease, Txn, TxnResult};
pub use error::EtcdError;
pub use local::{LocalEtcd, LocalTls};
pub use port::loopback_port;
pub use wire::{Compare, Op};
