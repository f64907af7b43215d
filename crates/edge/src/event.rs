//! What an [`crate::EdgeServer`] reports to its driver.

use edgeshift_proto::{Instant, NodeId, RelocationMode, ServerId, ServiceId};

/// An observable event of an ME server (serializable: live daemons journal them).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum EdgeEvent {
    /// A live instance was created from a deploy.
    Instantiated {
        /// The service.
        service: ServiceId,
    },
    /// An instance applied an input.
    Applied {
        /// The service.
        service: ServiceId,
        /// The input.
        seq: u64,
        /// Whether the instance is the live one.
        live: bool,
    },
    /// An instance answered the UE.
    Answered {
        /// The service.
        service: ServiceId,
        /// The input answered (0 for probes).
        seq: u64,
        /// Whether the instance is the live one (must always be true).
        live: bool,
    },
    /// A shadow started to arrive.
    ShadowCreated {
        /// The service.
        service: ServiceId,
        /// The live instance's server.
        source: ServerId,
    },
    /// A shadow is complete and verified.
    ShadowReady {
        /// The service.
        service: ServiceId,
        /// Last input in the shadow.
        seq: u64,
    },
    /// A shadow was dropped.
    ShadowDiscarded {
        /// The service.
        service: ServiceId,
        /// When it was created.
        created_at: Instant,
    },
    /// A 1006 reached the source.
    RelocationTriggered {
        /// The service.
        service: ServiceId,
        /// Where it goes.
        target: ServerId,
        /// How.
        mode: RelocationMode,
    },
    /// The source stopped serving; it holds new inputs until the target confirms.
    Frozen {
        /// The service.
        service: ServiceId,
        /// Last input applied.
        last_seq: u64,
    },
    /// A shadow became the live instance.
    Activated {
        /// The service.
        service: ServiceId,
        /// The previous host.
        from: ServerId,
        /// Last input reflected in the state.
        last_seq: u64,
        /// Input-log digest at `last_seq`.
        digest: u128,
        /// Whether the shadow was valid at the first 2004 check.
        first_try: bool,
        /// State size in bytes.
        state_bytes: u64,
        /// When the shadow was created.
        shadow_created_at: Instant,
    },
    /// Optimistic activation: at its 1006, a ready shadow went live, tentatively. It
    /// applies and answers the UE's traffic, and the source's sync, until the 2004
    /// commits it (then [`EdgeEvent::Activated`]) or it is rolled back
    /// ([`EdgeEvent::TentativeDropped`]).
    Tentative {
        /// The service.
        service: ServiceId,
        /// The source of the relocation.
        from: ServerId,
        /// Last input reflected in the state.
        last_seq: u64,
    },
    /// A tentative instance was rolled back: it is gone, and every UE input it applied
    /// went to `to`, which applies it again.
    TentativeDropped {
        /// The service.
        service: ServiceId,
        /// Where its traffic went (the source, or the host the control node named).
        to: ServerId,
        /// Why.
        reason: String,
    },
    /// The source released its instance after the target confirmed.
    RelocatedOut {
        /// The service.
        service: ServiceId,
        /// The new host.
        to: ServerId,
    },
    /// A relocation failed; the source is live again.
    RelocationFailed {
        /// The service.
        service: ServiceId,
        /// The target that refused.
        target: ServerId,
        /// Why.
        reason: String,
    },
    /// The server lost its lease (no answered heartbeat for the lease's duration): these
    /// instances stop serving and hold the UE's traffic.
    Fenced {
        /// The live instances that stopped.
        services: Vec<ServiceId>,
    },
    /// The lease came back: these instances serve again.
    Unfenced {
        /// The live instances that serve again.
        services: Vec<ServiceId>,
    },
    /// Failover: the live instance's server was declared dead and this shadow became the
    /// live instance as it stood (the UE resends what it lacks).
    Promoted {
        /// The service.
        service: ServiceId,
        /// The dead server.
        from: ServerId,
        /// Last input reflected in the state.
        last_seq: u64,
        /// Input-log digest at `last_seq`.
        digest: u128,
        /// Route epoch of the new live instance.
        epoch: u64,
    },
    /// The control node said an instance here was superseded by one at `to`; it is gone
    /// and the traffic it held went there.
    Released {
        /// The service.
        service: ServiceId,
        /// The server with the live instance.
        to: ServerId,
    },
    /// A shadow was refused: it would not fit the server's memory budget.
    ShadowRefused {
        /// The service.
        service: ServiceId,
        /// Why.
        reason: String,
    },
    /// The service failed on an input; the input counts as consumed.
    ServiceError {
        /// The service.
        service: ServiceId,
        /// What happened.
        error: String,
    },
    /// A peer sent something that does not fit the protocol state; it was ignored.
    ProtocolViolation {
        /// The sender.
        from: NodeId,
        /// What was wrong.
        what: String,
    },
}
