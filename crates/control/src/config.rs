//! Configuration of the control node: strategy, topology, latencies, policy knobs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use edgeshift_proto::{CellId, RegionId, RelocationMode, ServerId, SyncMode};

/// How services follow their users. All strategies run through the same roles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Never move.
    Stay,
    /// Stop and copy at handover execution.
    Cold,
    /// Iterative copy from handover execution on, stop for the last delta.
    Precopy,
    /// Shadows at every candidate server from the prediction on (the seed's method).
    Shadow,
    /// Shadows only at candidates at least this likely, started as late as size and link allow.
    ShadowJit {
        /// Likelihood threshold.
        threshold: f32,
    },
}

impl Strategy {
    /// Every strategy with default parameters.
    pub const ALL: [Self; 5] = [
        Self::Stay,
        Self::Cold,
        Self::Precopy,
        Self::Shadow,
        Self::ShadowJit { threshold: 0.3 },
    ];

    /// Whether the strategy prepares shadows on predictions.
    #[must_use]
    pub fn uses_shadows(self) -> bool {
        matches!(self, Self::Shadow | Self::ShadowJit { .. })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stay => "stay",
            Self::Cold => "cold",
            Self::Precopy => "precopy",
            Self::Shadow => "shadow",
            Self::ShadowJit { .. } => "shadow-jit",
        })
    }
}

/// Unknown strategy name.
#[derive(Debug, thiserror::Error)]
#[error("unknown strategy {0:?} (expected stay, cold, precopy, shadow or shadow-jit)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "stay" => Self::Stay,
            "cold" => Self::Cold,
            "precopy" => Self::Precopy,
            "shadow" => Self::Shadow,
            "shadow-jit" => Self::ShadowJit { threshold: 0.3 },
            other => return Err(UnknownStrategy(other.to_owned())),
        })
    }
}

/// Everything the control node knows about the network.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// The relocation strategy.
    pub strategy: Strategy,
    /// Which ME server serves each cell (many cells to one server).
    pub topology: BTreeMap<CellId, ServerId>,
    /// One-way latency from a cell to its own ME server.
    pub access_latency: Duration,
    /// One-way backhaul latency between servers (symmetric; missing pairs use `default_backhaul`).
    pub backhaul: BTreeMap<(ServerId, ServerId), Duration>,
    /// Backhaul latency for pairs not in the matrix.
    pub default_backhaul: Duration,
    /// Bandwidth between servers, for timing late shadows.
    pub link_bits_per_s: f64,
    /// Shadows start this much earlier than strictly needed (shadow-jit).
    pub jit_margin: Duration,
    /// Sync mode for shadows.
    pub sync: SyncMode,
    /// Shadows are dropped when no handover came this long after its predicted time.
    pub shadow_ttl: Duration,
    /// A shadow-jit plan the predictions stop naming is kept this long before it is
    /// dropped (and dropped at once if its start comes first): candidate lists flicker.
    pub stale_grace: Duration,
    /// A shadow already requested is kept this long once no prediction names it (the
    /// next cell's predictions often name it again, and a shadow discarded and asked for
    /// again costs a whole state transfer).
    pub shadow_keep: Duration,
    /// A relocation keeps the other ready replay shadows and the old host's instance as
    /// shadows of the new host, which takes over their sync (1003 adopt): a UE that moves
    /// on to another candidate a moment later, or turns back, finds a ready shadow. Off,
    /// they are discarded (the seed's "the other shadows are discarded").
    pub follow_shadows: bool,
    /// Optimistic activation (with the servers' own `optimistic`): a hot relocation onto
    /// a ready replay shadow switches the cells' routes at the trigger, so the UE's
    /// traffic reaches the target, live tentatively from its 1006, without passing the
    /// source; a relocation that fails routes them back.
    pub optimistic: bool,
    /// A handover back to the previous cell within this time is a ping-pong.
    pub pingpong_window: Duration,
    /// Servers above this load hand services to less loaded ones (`None`: off).
    pub load_threshold: Option<f32>,
    /// Period of the load-balancing check.
    pub load_check_interval: Duration,
    /// A server that sent no heartbeat (3006) for this long is declared dead and its
    /// services fail over to their shadows (`None`: servers are never declared dead).
    /// Must exceed the servers' lease, so that a server cut off from the control node has
    /// stopped serving first.
    pub server_timeout: Option<Duration>,
    /// How a shadow strategy moves a service to a server with no shadow (a handover
    /// nobody predicted): `Precopy` (the default) serves on at the source, the new cell
    /// relaying over the backhaul, while the state is copied, and switches when little is
    /// left; `Cold` stops and copies, the seed's fallback.
    pub reactive: RelocationMode,
    /// The region this node controls: it serves the cells of this region and heartbeats
    /// the servers of this region (region 0 in a deployment without regions).
    pub region: RegionId,
    /// The region of each cell; cells not listed are in region 0. A server is in the region
    /// of the cells it serves. `topology` lists every cell of every region: a service
    /// prepared or moved across a border is commanded by the region that holds it.
    pub regions: BTreeMap<CellId, RegionId>,
}

impl ControlConfig {
    /// Defaults for a topology.
    #[must_use]
    pub fn new(strategy: Strategy, topology: BTreeMap<CellId, ServerId>) -> Self {
        Self {
            strategy,
            topology,
            access_latency: Duration::from_millis(1),
            backhaul: BTreeMap::new(),
            default_backhaul: Duration::from_millis(5),
            link_bits_per_s: 1e9,
            jit_margin: Duration::from_millis(300),
            sync: SyncMode::Replay,
            shadow_ttl: Duration::from_secs(5),
            stale_grace: Duration::from_secs(2),
            shadow_keep: Duration::from_secs(8),
            follow_shadows: true,
            optimistic: false,
            pingpong_window: Duration::from_secs(1),
            load_threshold: None,
            load_check_interval: Duration::from_secs(1),
            server_timeout: None,
            reactive: RelocationMode::Precopy,
            region: RegionId(0),
            regions: BTreeMap::new(),
        }
    }

    /// The region of a cell.
    #[must_use]
    pub fn region_of(&self, cell: CellId) -> RegionId {
        self.regions.get(&cell).copied().unwrap_or(RegionId(0))
    }

    /// One-way backhaul latency between two servers.
    #[must_use]
    pub fn backhaul(&self, a: ServerId, b: ServerId) -> Duration {
        if a == b {
            return Duration::ZERO;
        }
        let key = if a < b { (a, b) } else { (b, a) };
        self.backhaul
            .get(&key)
            .copied()
            .unwrap_or(self.default_backhaul)
    }

    /// Round trip from a UE in `cell` to a service on `server`, over the cell's own server.
    #[must_use]
    pub fn round_trip(&self, cell: CellId, server: ServerId) -> Option<Duration> {
        let local = *self.topology.get(&cell)?;
        Some(2 * (self.access_latency + self.backhaul(local, server)))
    }
}

/// How long the control node waits for a server's heartbeats before declaring it dead,
/// for a server lease of `lease`: half as long again, so that the server has stopped
/// serving first even when its last heartbeat took a while to arrive.
#[must_use]
pub fn server_timeout_for(lease: Duration) -> Duration {
    lease + lease / 2
}
