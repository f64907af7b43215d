//! [`Observation`]: one fact a driver saw during a run, as the [`crate::Recorder`] takes it.
//! The simulator feeds them straight in; each live daemon journals them as JSON lines and
//! the demo replays the merged journals, so both produce their record through one code.

use edgeshift_control::{ControlEvent, ControlStats};
use edgeshift_edge::EdgeEvent;
use edgeshift_proto::{Instant, NodeId, ServerId, ServiceId, UeId};
use edgeshift_ran::RanEvent;
use edgeshift_ue::{HandoverGap, UeEvent};
use serde::{Deserialize, Serialize};

/// One fact of a run (times in the run's common time reference).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Observation {
    /// A UE created input `seq` of its service.
    Input {
        /// When.
        at: Instant,
        /// The service.
        service: ServiceId,
        /// Its number.
        seq: u64,
        /// Its content (the exactly-once check chains digests over it).
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// An ME server reported an event.
    Edge {
        /// When.
        at: Instant,
        /// The server.
        server: ServerId,
        /// The event.
        event: EdgeEvent,
    },
    /// A server sent a state transfer, sync or catch-up of this many bytes on the wire
    /// (the frame, header included: `edgeshift_proto::codec::frame_len`).
    StateSent {
        /// When.
        at: Instant,
        /// Frame bytes.
        bytes: u64,
    },
    /// The control node's counters changed.
    ControlStats {
        /// When.
        at: Instant,
        /// The counters.
        stats: ControlStats,
    },
    /// A role reported input that did not fit the protocol (it ignored it).
    Note {
        /// When.
        at: Instant,
        /// The role.
        node: NodeId,
        /// What.
        what: String,
    },
    /// The driver itself saw an invariant break (a frame that does not decode, a message
    /// to an unknown node).
    Violation {
        /// When.
        at: Instant,
        /// What.
        what: String,
    },
    /// A UE finished its run.
    UeFinal(UeFinal),
    /// A service's host died and no shadow could take over (the control node's word).
    ServiceLost {
        /// When.
        at: Instant,
        /// The service.
        service: ServiceId,
        /// The host it was lost with (`None` in records from before it was kept).
        #[serde(default)]
        host: Option<ServerId>,
    },
    /// A node was killed by fault injection (what a crash looks like from outside).
    Crashed {
        /// When.
        at: Instant,
        /// The node.
        node: NodeId,
    },
}

/// The live instance's answer to the UE's final state query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    /// Last input its state holds.
    pub last_seq: u64,
    /// Its state checksum (none if the service could not compute one).
    pub checksum: Option<u128>,
}

/// What a UE knows at the end of its run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UeFinal {
    /// When it finished.
    pub at: Instant,
    /// The UE.
    pub ue: UeId,
    /// Its service.
    pub service: ServiceId,
    /// Inputs it sent and never got an answer to.
    pub unanswered: u64,
    /// Each handover as it saw it.
    pub gaps: Vec<HandoverGap>,
    /// The live instance's state (none: no live instance answered).
    pub live: Option<LiveState>,
    /// Checksum of a never-moved twin that applied the same inputs, or why there is none.
    pub twin: Result<u128, String>,
    /// The longest any answered input waited for its answer, in milliseconds.
    #[serde(default)]
    pub longest_wait_ms: f64,
}

impl Observation {
    /// The observation of an ME server's event.
    #[must_use]
    pub fn edge(at: Instant, server: ServerId, event: EdgeEvent) -> Self {
        Self::Edge { at, server, event }
    }

    /// What the record needs of a UE's event, if anything.
    #[must_use]
    pub fn ue(at: Instant, ue: UeId, service: ServiceId, ev: &UeEvent) -> Option<Self> {
        match ev {
            UeEvent::Generated { seq, payload } => Some(Self::Input {
                at,
                service,
                seq: *seq,
                payload: payload.clone(),
            }),
            UeEvent::Unexpected { name } => Some(Self::Note {
                at,
                node: ue.into(),
                what: format!("got unexpected {name}"),
            }),
            _ => None,
        }
    }

    /// [`Observation::ue`] taking the event: an input's payload moves into the record
    /// instead of being copied (the simulator's way, once per input).
    #[must_use]
    pub fn ue_owned(at: Instant, ue: UeId, service: ServiceId, ev: UeEvent) -> Option<Self> {
        match ev {
            UeEvent::Generated { seq, payload } => Some(Self::Input {
                at,
                service,
                seq,
                payload,
            }),
            other => Self::ue(at, ue, service, &other),
        }
    }

    /// What the record needs of a control node's event, if anything.
    #[must_use]
    pub fn control(at: Instant, ev: &ControlEvent) -> Option<Self> {
        match ev {
            ControlEvent::ProtocolViolation { from, what } => Some(Self::Note {
                at,
                node: NodeId::CONTROL,
                what: format!("from {from}: {what}"),
            }),
            ControlEvent::ServiceLost {
                service, server, ..
            } => Some(Self::ServiceLost {
                at,
                service: *service,
                host: Some(*server),
            }),
            _ => None,
        }
    }

    /// What the record needs of a base station's event, if anything.
    #[must_use]
    pub fn ran(at: Instant, cell: NodeId, ev: &RanEvent) -> Option<Self> {
        match ev {
            RanEvent::ProtocolViolation { from, what } => Some(Self::Note {
                at,
                node: cell,
                what: format!("from {from}: {what}"),
            }),
            _ => None,
        }
    }

    /// When it was observed.
    #[must_use]
    pub fn at(&self) -> Instant {
        match self {
            Self::Input { at, .. }
            | Self::Edge { at, .. }
            | Self::StateSent { at, .. }
            | Self::ControlStats { at, .. }
            | Self::Note { at, .. }
            | Self::Violation { at, .. }
            | Self::Crashed { at, .. }
            | Self::ServiceLost { at, .. } => *at,
            Self::UeFinal(f) => f.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use edgeshift_proto::RelocationMode;

    use super::*;

    #[test]
    fn observations_survive_a_json_journal() {
        let obs = [
            Observation::edge(
                Instant(5),
                ServerId(2),
                EdgeEvent::Activated {
                    service: ServiceId(1),
                    from: ServerId(1),
                    last_seq: 9,
                    digest: u128::MAX - 1,
                    first_try: false,
                    state_bytes: 1 << 30,
                    shadow_created_at: Instant(1),
                },
            ),
            Observation::edge(
                Instant(6),
                ServerId(1),
                EdgeEvent::RelocationTriggered {
                    service: ServiceId(1),
                    target: ServerId(2),
                    mode: RelocationMode::Precopy,
                },
            ),
            Observation::Input {
                at: Instant(7),
                service: ServiceId(1),
                seq: 3,
                payload: vec![0, 255, 7],
            },
            Observation::UeFinal(UeFinal {
                at: Instant(8),
                ue: UeId(1),
                service: ServiceId(1),
                unanswered: 0,
                gaps: Vec::new(),
                live: Some(LiveState {
                    last_seq: 3,
                    checksum: Some(u128::MAX),
                }),
                twin: Err("no twin".into()),
                longest_wait_ms: 1.5,
            }),
        ];
        for o in obs {
            let line = serde_json::to_string(&o).expect("serializes");
            let back: Observation = serde_json::from_str(&line).expect("parses");
            assert_eq!(back, o, "{line}");
        }
    }
}
