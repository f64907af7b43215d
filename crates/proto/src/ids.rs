//! Typed identifiers. Each is a small integer with a readable `Display` form used in
//! traces, logs and JSON reports (`ue1`, `cell3`, `me2`, `svc1`).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A terminal (user equipment).
    UeId, "ue"
);
id_type!(
    /// A radio cell, served by one base station.
    CellId, "cell"
);
id_type!(
    /// A mobile-edge server.
    ServerId, "me"
);
id_type!(
    /// One stateful service session (one per UE).
    ServiceId, "svc"
);

/// Any addressable node of the system; messages travel between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeId {
    /// A terminal.
    Ue(UeId),
    /// A base station (one cell each).
    Cell(CellId),
    /// A mobile-edge server.
    Server(ServerId),
    /// The ME control node.
    Control,
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ue(id) => id.fmt(f),
            Self::Cell(id) => id.fmt(f),
            Self::Server(id) => id.fmt(f),
            Self::Control => f.write_str("control"),
        }
    }
}

impl From<UeId> for NodeId {
    fn from(id: UeId) -> Self {
        Self::Ue(id)
    }
}
impl From<CellId> for NodeId {
    fn from(id: CellId) -> Self {
        Self::Cell(id)
    }
}
impl From<ServerId> for NodeId {
    fn from(id: ServerId) -> Self {
        Self::Server(id)
    }
}
