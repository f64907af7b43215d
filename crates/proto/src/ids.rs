//! Typed identifiers. Each is a small integer with a readable `Display` form used in
//! traces, logs and JSON reports (`ue1`, `cell3`, `me2`, `svc1`, `control`, `control_r2`).

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
id_type!(
    /// A region: a set of cells and ME servers with its own control node (group). A
    /// deployment without regions is region 0.
    RegionId, "r"
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
    /// The ME control node of a region.
    Control(RegionId),
}

impl NodeId {
    /// The control node of region 0: the only one of a deployment without regions.
    pub const CONTROL: Self = Self::Control(RegionId(0));

    /// Whether this is a control node (of any region).
    #[must_use]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Control(_))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ue(id) => id.fmt(f),
            Self::Cell(id) => id.fmt(f),
            Self::Server(id) => id.fmt(f),
            Self::Control(RegionId(0)) => f.write_str("control"),
            Self::Control(r) => write!(f, "control_{r}"),
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
