//! Shared vocabulary of edgeshift: identifiers, time, timing information, every message
//! of the relocation protocol, the versioned wire codec and the [`Role`] contract.
//!
//! Roles exchange typed [`Message`]s; drivers turn them into frames with [`codec::encode`]
//! and back with [`codec::decode`] (see the frame format there).
//!
//! ```
//! use edgeshift_proto::{codec, HandoverConfirm, CellId, Message, UeId};
//! let msg = Message::from(HandoverConfirm { ue: UeId(1), source: CellId(1) });
//! let bytes = codec::encode(&msg).unwrap();
//! assert_eq!(codec::decode_exact(&bytes).unwrap(), msg);
//! ```
#![forbid(unsafe_code)]

mod authority;
pub mod codec;
mod envelope;
pub mod error;
mod ids;
mod message;
mod role;
mod time;
mod timers;
mod timing;

pub use authority::{may_send, refusal};
pub use bytes::Bytes;
pub use envelope::{Lane, Message};
pub use error::DecodeError;
pub use ids::{CellId, NodeId, RegionId, ServerId, ServiceId, UeId};
pub use message::*;
pub use role::{Role, Transmit};
pub use time::{Instant, millis_f64};
pub use timers::TimerTable;
pub use timing::{Timing, TimingClass, When};
