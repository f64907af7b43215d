//! The contract every role implements.

use crate::{Instant, Message, NodeId};

/// A message a role wants sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// Destination node.
    pub to: NodeId,
    /// The message.
    pub msg: Message,
}

/// A role's protocol logic as a deterministic state machine. It performs no I/O.
///
/// After any `handle_*` call, drain [`Role::poll_transmit`] and [`Role::poll_event`] until
/// they return `None`, then read [`Role::poll_timeout`] and call [`Role::handle_timeout`]
/// once that time has come. `now` must not go backwards between calls. Role-specific
/// inputs (a radio measurement, an operator command) are inherent methods named
/// `handle_*` as well.
pub trait Role {
    /// What the embedding driver, metrics or simulation checkers observe.
    type Event: std::fmt::Debug;

    /// This role's node id.
    fn id(&self) -> NodeId;

    /// A message arrived from `from`. Bad input never panics; it becomes an event.
    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message);

    /// The time returned by [`Role::poll_timeout`] has come (spurious calls are no-ops).
    fn handle_timeout(&mut self, now: Instant);

    /// Next message to send.
    #[must_use]
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// Next event for the driver.
    #[must_use]
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When [`Role::handle_timeout`] must be called next.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
}
