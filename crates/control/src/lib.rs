//! The ME control node: topology (cell → ME server, many to one), the registry of where
//! every service and its shadows live, per-server load, and the relocation policy.
//!
//! On a handover prediction (1002) it decides whether a relocation will be needed at all
//! (same server, or the current host still meets the service's latency budget from the
//! candidate cell), which candidate servers get a shadow and when (1003). On handover
//! execution (1005) it triggers the relocation at the announced time (1006 to source and
//! target, discard to the other candidates), falling back to a reactive copy when the
//! target has no shadow. It also moves services off overloaded servers through the same
//! shadow mechanism.
//!
//! # Driving a [`ControlNode`]
//!
//! 1. [`ControlNode::new`] with a [`ControlConfig`].
//! 2. Feed messages to [`Role::handle_message`](edgeshift_proto::Role::handle_message)
//!    (deploys, 1002, 1005, cancels, 3032/3033 reports, load reports).
//! 3. Drain `poll_transmit` / `poll_event`; call `handle_timeout` at `poll_timeout`
//!    (1006 goes out on a timer at the announced handover time).
//!
//! ```no_run
//! use std::collections::BTreeMap;
//!
//! use edgeshift_control::{ControlConfig, ControlNode, Strategy};
//! use edgeshift_proto::{CellId, Instant, Message, NodeId, Role, ServerId};
//!
//! let topology = BTreeMap::from([(CellId(1), ServerId(1)), (CellId(2), ServerId(2))]);
//! let cfg = ControlConfig::new(Strategy::Shadow, topology);
//! let mut control = ControlNode::new(cfg, Instant::ZERO);
//! # let (now, from, msg): (Instant, NodeId, Message) = todo!();
//! control.handle_message(now, from, msg); // a 3030 deploy, a 1002 prediction, a 1005 …
//! while let Some(t) = control.poll_transmit() { /* 3031, 1003, 1006 … to t.to */ }
//! while let Some(e) = control.poll_event() { /* observe e */ }
//! if let Some(at) = control.poll_timeout() {
//!     control.handle_timeout(at); // once `at` has come
//! }
//! ```
//!
//! [`ControlNode::snapshot`] and [`ControlNode::restore`] carry the registry across a
//! restart; [`ControlSnapshot`] has a versioned byte form ([`snapshot`]).
#![forbid(unsafe_code)]

mod config;
mod event;
mod node;
pub mod snapshot;

pub use config::{ControlConfig, Strategy, UnknownStrategy, server_timeout_for};
pub use event::{ControlEvent, ControlStats};
pub use node::{ControlNode, ServiceEntry};
pub use snapshot::{ControlSnapshot, SnapshotError};
