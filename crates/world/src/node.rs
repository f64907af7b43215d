//! [`Node`]: any role behind one [`Role`] implementation, so that a driver hosts a mix of
//! base stations, ME servers, the control node and UEs without its own dispatch. Inputs
//! that are not messages or timeouts (a UE joining a cell, a measurement report reaching
//! its base station) arrive as a [`Command`].
//!
//! ```no_run
//! use edgeshift_proto::{CellId, Instant, Role, ServiceId, UeId};
//! use edgeshift_ue::{UeClient, UeConfig};
//! use edgeshift_world::{Command, Node};
//!
//! let mut ue = Node::from(UeClient::new(UeConfig::new(UeId(1), ServiceId(1), 7), Instant::ZERO));
//! ue.handle_command(Instant::ZERO, Command::Attach(CellId(1))).expect("a UE attaches");
//! while let Some(t) = ue.poll_transmit() { /* send t.msg to t.to */ }
//! while let Some(e) = ue.poll_event() { /* observe e */ }
//! let _wake_at = ue.poll_timeout();
//! ```

use edgeshift_control::{ControlEvent, ControlNode};
use edgeshift_edge::{EdgeEvent, EdgeServer};
use edgeshift_proto::{CellId, Instant, Message, NodeId, Role, Transmit};
use edgeshift_ran::{BaseStation, MeasurementReport, RanEvent};
use edgeshift_ue::{UeClient, UeEvent};

/// A role of any kind.
// UEs are nearly every node of a city run and stay inline (a box each would add an
// allocation and a pointer chase per event); the few large ones (cells, servers, control
// nodes) are boxed, so every node is the size of a UE, not of a base station.
#[allow(clippy::large_enum_variant)]
pub enum Node {
    /// A base station.
    Cell(Box<BaseStation>),
    /// An ME server.
    Server(Box<EdgeServer>),
    /// The control node.
    Control(Box<ControlNode>),
    /// A UE client.
    Ue(UeClient),
}

/// An event of a [`Node`], tagged with its role.
#[derive(Debug)]
pub enum NodeEvent {
    /// From a base station.
    Ran(RanEvent),
    /// From an ME server.
    Edge(EdgeEvent),
    /// From the control node.
    Control(ControlEvent),
    /// From a UE.
    Ue(UeEvent),
}

/// An input of a [`Node`] that is neither a message nor a timeout.
#[derive(Clone, Debug)]
pub enum Command {
    /// A UE joins `cell` (at start, or at the end of a handover's radio gap).
    Attach(CellId),
    /// A UE whose handover failed re-establishes at `cell`.
    Reestablish(CellId),
    /// A base station receives a UE's measurement report.
    Measurement(MeasurementReport),
}

/// A [`Command`] sent to a role it is not for.
#[derive(Debug, thiserror::Error)]
#[error("{command} is not an input of {node}")]
pub struct WrongNode {
    /// The command.
    pub command: &'static str,
    /// The node it was sent to.
    pub node: NodeId,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.id())
    }
}

impl From<BaseStation> for Node {
    fn from(r: BaseStation) -> Self {
        Self::Cell(Box::new(r))
    }
}
impl From<EdgeServer> for Node {
    fn from(r: EdgeServer) -> Self {
        Self::Server(Box::new(r))
    }
}
impl From<ControlNode> for Node {
    fn from(r: ControlNode) -> Self {
        Self::Control(Box::new(r))
    }
}
impl From<UeClient> for Node {
    fn from(r: UeClient) -> Self {
        Self::Ue(r)
    }
}

impl Node {
    /// Feeds a [`Command`].
    ///
    /// # Errors
    /// [`WrongNode`] when the command is not for this kind of role (nothing changes).
    pub fn handle_command(&mut self, now: Instant, cmd: Command) -> Result<(), WrongNode> {
        match (self, cmd) {
            (Self::Ue(u), Command::Attach(cell)) => u.handle_attach(now, cell),
            (Self::Ue(u), Command::Reestablish(cell)) => u.handle_reestablish(now, cell),
            (Self::Cell(c), Command::Measurement(r)) => c.handle_measurement(now, &r),
            (node, cmd) => {
                return Err(WrongNode {
                    command: match cmd {
                        Command::Attach(_) => "attach",
                        Command::Reestablish(_) => "re-establishment",
                        Command::Measurement(_) => "a measurement report",
                    },
                    node: node.id(),
                });
            }
        }
        Ok(())
    }

    /// The base station, if this is one.
    #[must_use]
    pub fn as_cell(&self) -> Option<&BaseStation> {
        match self {
            Self::Cell(c) => Some(c),
            _ => None,
        }
    }

    /// The ME server, if this is one.
    #[must_use]
    pub fn as_server(&self) -> Option<&EdgeServer> {
        match self {
            Self::Server(s) => Some(s),
            _ => None,
        }
    }

    /// The ME server, mutably, if this is one.
    pub fn as_server_mut(&mut self) -> Option<&mut EdgeServer> {
        match self {
            Self::Server(s) => Some(s),
            _ => None,
        }
    }

    /// The control node, if this is one.
    #[must_use]
    pub fn as_control(&self) -> Option<&ControlNode> {
        match self {
            Self::Control(c) => Some(c),
            _ => None,
        }
    }

    /// The UE, if this is one.
    #[must_use]
    pub fn as_ue(&self) -> Option<&UeClient> {
        match self {
            Self::Ue(u) => Some(u),
            _ => None,
        }
    }
}

impl Role for Node {
    type Event = NodeEvent;

    fn id(&self) -> NodeId {
        match self {
            Self::Cell(r) => r.id(),
            Self::Server(r) => r.id(),
            Self::Control(r) => r.id(),
            Self::Ue(r) => r.id(),
        }
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        match self {
            Self::Cell(r) => r.handle_message(now, from, msg),
            Self::Server(r) => r.handle_message(now, from, msg),
            Self::Control(r) => r.handle_message(now, from, msg),
            Self::Ue(r) => r.handle_message(now, from, msg),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Cell(r) => r.handle_timeout(now),
            Self::Server(r) => r.handle_timeout(now),
            Self::Control(r) => r.handle_timeout(now),
            Self::Ue(r) => r.handle_timeout(now),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Self::Cell(r) => r.poll_transmit(),
            Self::Server(r) => r.poll_transmit(),
            Self::Control(r) => r.poll_transmit(),
            Self::Ue(r) => r.poll_transmit(),
        }
    }

    fn poll_event(&mut self) -> Option<NodeEvent> {
        match self {
            Self::Cell(r) => r.poll_event().map(NodeEvent::Ran),
            Self::Server(r) => r.poll_event().map(NodeEvent::Edge),
            Self::Control(r) => r.poll_event().map(NodeEvent::Control),
            Self::Ue(r) => r.poll_event().map(NodeEvent::Ue),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Cell(r) => r.poll_timeout(),
            Self::Server(r) => r.poll_timeout(),
            Self::Control(r) => r.poll_timeout(),
            Self::Ue(r) => r.poll_timeout(),
        }
    }
}
