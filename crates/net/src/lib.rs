//! The network driver's plumbing: real TCP between nodes, the project's framed codec, one
//! ordered connection per (sender, receiver, lane) so that bulk state never delays control
//! messages, reconnects with backoff, a link emulator, and the clock that maps a process's
//! monotonic time onto the common time reference.
//!
//! Drive it like this:
//!
//! 1. [`Transport::bind`] a listener for the nodes this process hosts, with an
//!    [`AddressBook`] of where the other nodes listen. It returns an [`Inbox`] of
//!    [`Incoming`] messages addressed to the local nodes.
//! 2. Feed each incoming message to its role (`handle_message(clock.now(), from, msg)`),
//!    then send what the role's `poll_transmit` yields with [`Transport::send`].
//! 3. Sleep until the role's `poll_timeout` (mapped with [`Clock::deadline`]).
//! 4. On shutdown, [`Transport::shutdown`] flushes what is queued for a grace period.
//!
//! A peer that sends anything but valid frames, or disconnects mid-frame, is dropped with
//! a logged error; the listener keeps serving everyone else.
#![forbid(unsafe_code)]

mod clock;
mod error;
mod link;
pub mod pki;
mod tls;
mod transport;

pub use clock::Clock;
pub use error::NetError;
pub use link::LinkEmulation;
pub use tls::{Tls, node_name};
pub use transport::{
    AddressBook, FaultFilter, INBOX_CAPACITY, Inbox, Incoming, MAX_BACKLOG, NetStats, Transport,
};
