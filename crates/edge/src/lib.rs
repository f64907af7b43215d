//! The ME server role: hosts live service instances and shadow copies, and runs the
//! relocation protocol (1003/1004 shadow transfer, shadow sync, 1006, 2004/2005 validation
//! with catch-up, activation, release).
//!
//! Services implement [`Service`]; a [`ServiceFactory`] turns program code into instances.
//! The crate ships the in-memory reference service ([`MemService`], kind `"mem"`).
//!
//! # Driving an [`EdgeServer`]
//!
//! 1. Create it with [`EdgeServer::new`], giving the current time.
//! 2. Feed every arriving message to [`Role::handle_message`](edgeshift_proto::Role::handle_message).
//! 3. After each call, drain [`Role::poll_transmit`](edgeshift_proto::Role::poll_transmit)
//!    (send each message to its node; 1004 and deltas go on the bulk lane, see
//!    [`edgeshift_proto::Lane`]) and [`Role::poll_event`](edgeshift_proto::Role::poll_event).
//! 4. Call [`Role::handle_timeout`](edgeshift_proto::Role::handle_timeout) when
//!    [`Role::poll_timeout`](edgeshift_proto::Role::poll_timeout) comes due.
//! 5. With [`EdgeConfig::offload`], also take guest work with [`EdgeServer::poll_job`],
//!    run each [`Job`] anywhere (a worker thread) and hand it back with
//!    [`EdgeServer::handle_job_done`]; without, guests run inside the calls above.
//!
//! ```no_run
//! use edgeshift_edge::{EdgeConfig, EdgeServer, MemFactory};
//! use edgeshift_proto::{Instant, Message, NodeId, Role, ServerId};
//!
//! let mut me = EdgeServer::new(EdgeConfig::new(ServerId(1)), Box::new(MemFactory), Instant::ZERO);
//! # let (now, from, msg): (Instant, NodeId, Message) = todo!();
//! me.handle_message(now, from, msg); // 3031, 1003, 1004, 1006, 2004, UE inputs …
//! while let Some(t) = me.poll_transmit() { /* to t.to, on t.msg.lane() */ }
//! while let Some(e) = me.poll_event() { /* observe e */ }
//! if let Some(at) = me.poll_timeout() {
//!     me.handle_timeout(at); // once `at` has come
//! }
//! ```
//!
//! Inside, the server keeps each live instance's relocation as a state (`Serving`,
//! `Precopy`, `Frozen`) and each shadow's copy as one (`Awaiting`, `Receiving`, `Ready`,
//! `Failed`), in `server/source.rs` and `server/shadow.rs`.
//!
//! # Invariants it keeps
//!
//! Only a live, unfrozen instance answers the UE. A source freezes when it sends 2004 and
//! holds new inputs until the target confirms: on `Valid` it forwards them and releases
//! its instance; on `Reject` it resumes serving and applies them. Inputs are applied in
//! sequence order exactly once; retransmissions are re-answered from a cache.
#![forbid(unsafe_code)]

mod config;
pub mod digest;
mod event;
mod instance;
mod job;
mod memservice;
mod model;
mod seqlog;
mod server;
mod service;

pub use config::{EdgeConfig, LeaseConfig};
pub use event::EdgeEvent;
pub use job::Job;
pub use memservice::{CHUNK, MEM_CODE, MEM_KIND, MemConfig, MemFactory, MemService};
pub use model::{MODEL_CODE, MODEL_KIND, ModelConfig, ModelService};
pub use server::{EdgeServer, LiveView};
pub use service::{Service, ServiceError, ServiceFactory};
