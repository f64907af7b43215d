//! Events and counters of the control node.

use edgeshift_proto::{
    CancelReason, Candidate, CellId, Instant, NodeId, RadioReport, RegionId, RelocationMode,
    ServerId, ServiceId, Timing, UeId,
};

/// What the control node did, for drivers, metrics and checkers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ControlEvent {
    /// A cell predicted a handover (1002); empty `candidates`: the prediction was
    /// withdrawn.
    HandoverPredicted {
        /// The UE.
        ue: UeId,
        /// Its serving cell.
        source: CellId,
        /// Candidate cells, most likely first.
        candidates: Vec<Candidate>,
        /// When the handover is expected.
        timing: Option<Timing>,
    },
    /// A cell executes a handover (1005).
    HandoverExecuting {
        /// The UE.
        ue: UeId,
        /// Its serving cell.
        source: CellId,
        /// The target cell.
        target: CellId,
        /// When the handover command goes out.
        at: Instant,
    },
    /// The target cell reported the handover complete (3004).
    HandoverCompleted {
        /// The UE.
        ue: UeId,
        /// The cell it left.
        source: CellId,
        /// The cell serving it now.
        target: CellId,
    },
    /// A cell's radio report of a UE (3005).
    RadioMeasured(RadioReport),
    /// A shadow is complete (3032).
    ShadowReady {
        /// The service.
        service: ServiceId,
        /// The server holding the shadow.
        server: ServerId,
    },
    /// A service was deployed (3030) and its live instance started (3031).
    ServiceDeployed {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// The UE's cell.
        cell: CellId,
        /// The server hosting it.
        server: ServerId,
    },
    /// 1003 sent.
    ShadowsRequested {
        /// The service.
        service: ServiceId,
        /// Servers getting a shadow.
        servers: Vec<ServerId>,
    },
    /// A late shadow was planned (shadow-jit).
    ShadowPlanned {
        /// The service.
        service: ServiceId,
        /// Its future server.
        server: ServerId,
        /// When the 1003 goes out.
        at: Instant,
    },
    /// Shadows dropped (1006 discard).
    ShadowsDiscarded {
        /// The service.
        service: ServiceId,
        /// Servers that drop theirs.
        servers: Vec<ServerId>,
    },
    /// A relocation will be triggered at `at`.
    RelocationScheduled {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// Where from.
        source: ServerId,
        /// Where to.
        target: ServerId,
        /// How.
        mode: RelocationMode,
        /// When the 1006 goes out.
        at: Instant,
    },
    /// 1006 sent.
    RelocationTriggered {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// Where from.
        source: ServerId,
        /// How.
        mode: RelocationMode,
        /// When the handover executes.
        at: Instant,
        /// Where to.
        target: ServerId,
    },
    /// The target confirmed; the registry and routes follow.
    RelocationCompleted {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// Old host.
        from: ServerId,
        /// New host.
        to: ServerId,
    },
    /// The target refused; the service stays.
    RelocationFailed {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// The host it stays on.
        source: ServerId,
        /// The target that refused.
        target: ServerId,
    },
    /// A server refused a shadow (3037): it would not fit its memory budget.
    ShadowRefused {
        /// The service.
        service: ServiceId,
        /// The server.
        server: ServerId,
        /// Its reason.
        reason: String,
    },
    /// A server's heartbeats stopped for longer than its lease: it is dead or cut off, and
    /// its services fail over to their shadows.
    ServerDown {
        /// The server.
        server: ServerId,
    },
    /// A server's heartbeats came back (after it was declared dead, or restarted).
    ServerUp {
        /// The server.
        server: ServerId,
        /// Whether it restarted (a new incarnation, its instances gone).
        restarted: bool,
    },
    /// Failover: a shadow of a service whose host died is promoted to live.
    FailoverStarted {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// The dead host.
        from: ServerId,
        /// The server whose shadow goes live.
        to: ServerId,
    },
    /// A service's host died and no shadow could take over: the service is lost unless
    /// the host comes back with it.
    ServiceLost {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// The host that died.
        server: ServerId,
    },
    /// Handover between cells of the same server: nothing to move.
    SkippedSameServer {
        /// The service.
        service: ServiceId,
    },
    /// The current host still meets the latency budget from the new cell.
    SkippedWithinBudget {
        /// The service.
        service: ServiceId,
    },
    /// The target cell was not among the predicted candidates.
    Mispredicted {
        /// The service.
        service: ServiceId,
        /// The actual target cell.
        target: CellId,
    },
    /// Handover back to the previous cell within the ping-pong window.
    PingPong {
        /// The UE.
        ue: UeId,
    },
    /// A service moves for load balancing.
    LoadBalancing {
        /// The service.
        service: ServiceId,
        /// From the overloaded server.
        from: ServerId,
        /// To.
        to: ServerId,
    },
    /// A prepared handover was cancelled.
    HandoverCancelled {
        /// The UE.
        ue: UeId,
        /// Its (still) serving cell.
        source: CellId,
        /// The target that was tried.
        target: CellId,
        /// Why.
        reason: CancelReason,
    },
    /// The service's user is in a cell of another region now: its entry, with any
    /// relocation in flight, went to that region's control node (3050).
    ServiceHandedOff {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// The region that holds it now.
        to: RegionId,
    },
    /// Another region's control node handed a service to this one (3050).
    ServiceAdopted {
        /// The service.
        service: ServiceId,
        /// Its user.
        ue: UeId,
        /// The region it came from.
        from: RegionId,
    },
    /// A peer sent something that does not fit; it was ignored.
    ProtocolViolation {
        /// Sender.
        from: NodeId,
        /// What.
        what: String,
    },
    /// The new host of a service took over the sync of the ready shadows its relocation
    /// kept (1003 adopt).
    ShadowsAdopted {
        /// The service.
        service: ServiceId,
        /// Its new host, now their source.
        host: ServerId,
        /// Servers whose shadows it syncs.
        servers: Vec<ServerId>,
    },
}

/// Counters of the control node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControlStats {
    /// 1002 received with candidates.
    pub predictions: u64,
    /// Shadows requested (one per server).
    pub shadows_requested: u64,
    /// 1005 received.
    pub handovers: u64,
    /// Relocations triggered.
    pub relocations_triggered: u64,
    /// Relocations confirmed.
    pub relocations_completed: u64,
    /// Relocations refused by the target.
    pub relocations_failed: u64,
    /// Handovers that stayed on the same server.
    pub skipped_same_server: u64,
    /// Handovers where the host still met the latency budget.
    pub skipped_within_budget: u64,
    /// Handovers to a cell outside the predicted candidates (that needed a move).
    pub mispredicted: u64,
    /// Relocations done without a shadow at the target (reactive fallback).
    pub reactive: u64,
    /// Ping-pong handovers.
    pub pingpongs: u64,
    /// Cancelled handovers.
    pub cancelled: u64,
    /// Load-balancing moves started.
    pub load_balanced: u64,
}

/// The counters of several control nodes (the regions of a deployment) together.
impl std::ops::AddAssign for ControlStats {
    fn add_assign(&mut self, o: Self) {
        self.predictions += o.predictions;
        self.shadows_requested += o.shadows_requested;
        self.handovers += o.handovers;
        self.relocations_triggered += o.relocations_triggered;
        self.relocations_completed += o.relocations_completed;
        self.relocations_failed += o.relocations_failed;
        self.skipped_same_server += o.skipped_same_server;
        self.skipped_within_budget += o.skipped_within_budget;
        self.mispredicted += o.mispredicted;
        self.reactive += o.reactive;
        self.pingpongs += o.pingpongs;
        self.cancelled += o.cancelled;
        self.load_balanced += o.load_balanced;
    }
}
