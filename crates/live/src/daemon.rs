//! Starting a daemon: [`Daemon::bind`] opens its sockets and builds its roles from the
//! deployment; [`Daemon::run`] drives them until the stop signal (or, for a UE, until its
//! run is over). Binding first lets a launcher learn ephemeral ports before anyone talks.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use edgeshift_control::ControlNode;
use edgeshift_edge::EdgeServer;
use edgeshift_mec::{Api, ApiConfig, CellInfo, Feed, MecError, Topology};
use edgeshift_net::{Clock, LinkEmulation, NetError, Transport};
use edgeshift_proto::{CellId, NodeId, RegionId, ServerId, SyncMode, UeId};
use edgeshift_ran::BaseStation;
use edgeshift_runtime::{Limits, ModuleError, WasmFactory};
use edgeshift_ue::UeClient;
use edgeshift_world::{Node, Scenario, WorldError};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::app_gateway::AppGateway;
use crate::config::{ConfigError, Deployment};
use crate::host::{Agent, Host, NoAgent, Nodes};
use crate::journal::{Journal, UeSummary};
use crate::metrics::{self, Metrics};
use crate::radio_agent::RadioAgent;
use crate::store::{ControlStore, StoreError};
use crate::ue_agent::UeAgent;

/// Why a daemon cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The deployment is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket could not be opened.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The registry database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The WebAssembly engine cannot start.
    #[error("WebAssembly runtime: {0}")]
    Runtime(#[from] ModuleError),
    /// The service is unknown.
    #[error(transparent)]
    Service(#[from] WorldError),
    /// The metrics endpoint could not be opened.
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The application gateway could not listen.
    #[error("application gateway {addr}: {source}")]
    AppListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The deployment says nothing about TLS.
    #[error(
        "the deployment has no [tls] section: make certificates with `edgeshift certs \
         --config FILE --out DIR` and set [tls] ca = \"DIR/ca.pem\", dir = \"DIR\" \
         (or, for a trial on a closed machine, [tls] insecure = true)"
    )]
    NoTls,
    /// The MEC API could not start.
    #[error("MEC API: {0}")]
    Api(#[from] MecError),
    /// The daemon asked for is not in the deployment.
    #[error("{0} is not in the deployment")]
    NotDeployed(String),
    /// `--with-control` on an edge the deployment does not host the control node on.
    #[error(
        "--with-control: the deployment says the control node listens at {0}; set \
         [control] on_edge = <this edge's id> (and drop listen) so every daemon finds it"
    )]
    ControlElsewhere(SocketAddr),
}

/// How often a RAN agent reports each UE's measurements to the control node (as
/// AdvantEDGE's RNIS reports them).
const RADIO_REPORT_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Which daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The control node.
    Control,
    /// Replica `n` (1-based) of the replicated control group of `region` (`replica.rs`):
    /// the region's control node while it leads.
    Replica {
        /// The region: 0 for `[control] replicas`, N for `[[region]] id = N`'s.
        region: u32,
        /// Its number in that list of replicas.
        n: u32,
    },
    /// The control node of region `id` (a `[[region]]` of the deployment).
    Region {
        /// The region, 1 or more.
        id: u32,
    },
    /// An edge daemon (ME server `id`), possibly hosting the control node.
    Edge {
        /// ME server id.
        id: u32,
        /// Host the control node too.
        with_control: bool,
    },
    /// A RAN agent.
    Ran {
        /// Its name in the deployment.
        name: String,
    },
    /// A UE client.
    Ue {
        /// UE id.
        id: u32,
    },
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Control => f.write_str("control"),
            Self::Replica { region: 0, n } => write!(f, "control replica {n}"),
            Self::Replica { region, n } => write!(f, "region {region} control replica {n}"),
            Self::Region { id } => write!(f, "control of region {id}"),
            Self::Edge { id, .. } => write!(f, "edge me{id}"),
            Self::Ran { name } => write!(f, "ran {name}"),
            Self::Ue { id } => write!(f, "ue{id}"),
        }
    }
}

/// Overrides of the deployment file, from flags.
#[derive(Clone, Debug)]
pub struct Options {
    /// Listening address.
    pub listen: Option<SocketAddr>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Registry database (control).
    pub db: Option<PathBuf>,
    /// Where records go.
    pub journal: Journal,
    /// The common clock.
    pub clock: Clock,
    /// A UE takes its inputs from the application that connects here
    /// (`docs/app-protocol.md`) instead of generating them.
    pub app_listen: Option<SocketAddr>,
    /// How long such a UE waits for its application before it gives up.
    pub app_wait: std::time::Duration,
    /// Serve the MEC APIs here (a daemon hosting the control node), instead of the
    /// configured `[control] api`.
    pub api: Option<SocketAddr>,
    /// Bearer tokens for the API, besides the configured ones.
    pub api_tokens: Vec<String>,
    /// Feed this running API instead of starting one (the in-process demo shares one API
    /// between its daemons, so that it also sees the UEs' handover gaps).
    pub feed: Option<Feed>,
    /// This TLS identity instead of the deployment's `[tls]` files (the demo's in-memory
    /// certificates).
    pub tls: Option<edgeshift_net::Tls>,
    /// Partitions and lossy links to inject (`demo --fault`), timed from `fault_origin`.
    pub faults: Vec<edgeshift_world::fault::Fault>,
    /// The run's start on the common clock (unix nanoseconds), for `faults`.
    pub fault_origin: edgeshift_proto::Instant,
    /// Where nodes listen beyond the deployment file (a launcher with ephemeral ports).
    pub peers: Vec<(NodeId, SocketAddr)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: None,
            metrics: None,
            db: None,
            journal: Journal::off(),
            clock: Clock::system(),
            app_listen: None,
            app_wait: std::time::Duration::from_secs(30),
            api: None,
            api_tokens: Vec::new(),
            feed: None,
            tls: None,
            faults: Vec::new(),
            fault_origin: edgeshift_proto::Instant::ZERO,
            peers: Vec::new(),
        }
    }
}

/// A daemon with its sockets open, ready to run.
pub struct Daemon {
    kind: Kind,
    host: Host,
    transport: Transport,
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("kind", &self.kind)
            .field("addr", &self.transport.local_addr())
            .finish_non_exhaustive()
    }
}

/// What the MEC API knows of a deployment before anything happens: cells with their
/// positions and servers, the edge daemons' addresses, the UEs and their services.
#[must_use]
pub fn topology(dep: &Deployment, s: &Scenario) -> Topology {
    Topology {
        scenario: s.name.clone(),
        strategy: dep.strategy.clone(),
        cells: s
            .cells
            .iter()
            .map(|c| CellInfo {
                id: CellId(c.id),
                x: c.x,
                y: c.y,
                server: ServerId(c.server),
            })
            .collect(),
        servers: s
            .servers
            .iter()
            .map(|sv| (ServerId(sv.id), dep.edge(sv.id).map(|e| e.listen)))
            .collect(),
        ues: s
            .ues
            .iter()
            .map(|u| (UeId(u.id), edgeshift_proto::ServiceId(u.id)))
            .collect(),
    }
}

/// Starts the MEC API of a deployment at `listen`.
///
/// # Errors
/// [`MecError`] when it cannot bind or has no token.
pub async fn start_api(
    dep: &Deployment,
    s: &Scenario,
    listen: SocketAddr,
    tokens: Vec<String>,
    clock: Clock,
) -> Result<Api, MecError> {
    let cfg = ApiConfig {
        listen,
        tokens,
        topology: topology(dep, s),
        limits: edgeshift_mec::Limits::default(),
        public_url: dep.control.api_url.clone(),
    };
    Api::start(cfg, Arc::new(move || clock.now())).await
}

/// The daemon's TLS identity: given, from the `[tls]` files, or none with a loud warning
/// when the deployment says `insecure = true`.
pub(crate) fn tls_of(
    dep: &Deployment,
    kind: &Kind,
    given: Option<edgeshift_net::Tls>,
) -> Result<Option<edgeshift_net::Tls>, DaemonError> {
    if given.is_some() {
        return Ok(given);
    }
    let Some(t) = &dep.tls else {
        return Err(DaemonError::NoTls);
    };
    if t.insecure {
        warn!(
            daemon = %kind,
            "PLAINTEXT: [tls] insecure = true; any process that reaches this daemon's port \
             can claim to be any node"
        );
        return Ok(None);
    }
    let (Some(ca), Some(dir)) = (&t.ca, &t.dir) else {
        return Err(
            ConfigError::Invalid("[tls] needs ca and dir (or insecure = true)".into()).into(),
        );
    };
    let name = crate::certs::cert_name(kind);
    let tls = edgeshift_net::Tls::from_files(
        ca,
        &dir.join(format!("{name}.pem")),
        &dir.join(format!("{name}.key")),
    )?;
    Ok(Some(tls))
}

fn spec_of(dep: &Deployment, s: &Scenario) -> Result<edgeshift_proto::ServiceSpec, WorldError> {
    if let Some(m) = &dep.module {
        let module = edgeshift_world::ModuleSource::load(m, dep.module_config.as_deref())?;
        return Ok(module.spec(s.service.latency_budget_ms));
    }
    s.service_spec(dep.service.as_deref(), dep.state_mib.map(|m| m << 20))
}

impl Daemon {
    /// Opens the sockets of `kind` and builds its roles.
    ///
    /// # Errors
    /// See [`DaemonError`].
    pub async fn bind(
        dep: &Deployment,
        scenario: Arc<Scenario>,
        kind: Kind,
        opts: Options,
    ) -> Result<Self, DaemonError> {
        let now = opts.clock.now();
        let e = &dep.emulation;
        let mut nodes = Nodes::default();
        let mut agent: Box<dyn Agent> = Box::new(NoAgent);
        let mut with_store = None;
        let mut seeded = Vec::new();
        let metrics = Arc::new(Metrics::new());
        let (listen, metrics_cfg, emu): (SocketAddr, Option<SocketAddr>, LinkEmulation) =
            match &kind {
                Kind::Replica { region, .. } => {
                    // `replica::run` gives the address of the replica it runs.
                    let listen = opts.listen.ok_or_else(|| {
                        DaemonError::NotDeployed(format!("{kind} without its address"))
                    })?;
                    let metrics = match region {
                        0 => dep.control.metrics,
                        r => dep.region(*r).and_then(|d| d.metrics),
                    };
                    (listen, metrics, e.control)
                }
                Kind::Control => {
                    let Some(listen) = dep.control.listen.or(opts.listen) else {
                        return Err(DaemonError::NotDeployed(
                            "a stand-alone control node ([control] on_edge is set)".into(),
                        ));
                    };
                    (listen, dep.control.metrics, e.control)
                }
                Kind::Region { id } => {
                    let d = dep
                        .region(*id)
                        .ok_or_else(|| DaemonError::NotDeployed(format!("region {id}")))?;
                    let listen = d.listen.or(opts.listen).ok_or_else(|| {
                        DaemonError::NotDeployed(format!(
                            "a stand-alone control node of region {id} (it has replicas: \
                             --region {id} --replica N)"
                        ))
                    })?;
                    (listen, d.metrics, e.control)
                }
                Kind::Edge { id, .. } => {
                    let d = dep
                        .edge(*id)
                        .ok_or_else(|| DaemonError::NotDeployed(format!("edge me{id}")))?;
                    (d.listen, d.metrics, e.edge)
                }
                Kind::Ran { name } => {
                    let d = dep
                        .ran(name)
                        .ok_or_else(|| DaemonError::NotDeployed(format!("RAN agent {name:?}")))?;
                    (d.listen, d.metrics, e.ran)
                }
                Kind::Ue { id } => {
                    let d = dep
                        .ue(*id)
                        .ok_or_else(|| DaemonError::NotDeployed(format!("ue{id}")))?;
                    (d.listen, d.metrics, e.ue)
                }
            };
        let hosts_control = match &kind {
            Kind::Control | Kind::Replica { .. } | Kind::Region { .. } => true,
            Kind::Edge { id, with_control } => {
                if *with_control && let Some(addr) = dep.control.listen {
                    return Err(DaemonError::ControlElsewhere(addr));
                }
                *with_control || dep.control.on_edge == Some(*id)
            }
            _ => false,
        };
        let region = match &kind {
            Kind::Region { id } | Kind::Replica { region: id, .. } => RegionId(*id),
            _ => RegionId(0),
        };
        if hosts_control {
            let cfg = scenario.region_control_config(region, dep.strategy()?, SyncMode::Replay);
            // Replicas keep the registry in etcd (`replica.rs`), never in a local file.
            let configured = match &kind {
                Kind::Region { id } => dep.region(*id).and_then(|r| r.db.clone()),
                _ => dep.control.db.clone(),
            };
            let db = opts
                .db
                .clone()
                .or(configured)
                .filter(|_| dep.control.store == crate::config::RegistryKind::Redb);
            let mut control = ControlNode::new(cfg.clone(), now);
            if let Some(path) = db {
                let mut store = ControlStore::open(&path)?;
                if let Some(snap) = store.load()? {
                    info!(services = snap.services(), db = %path.display(), "registry restored");
                    control = ControlNode::restore(cfg, snap, now);
                }
                with_store = Some(store);
            }
            seeded = control
                .services()
                .map(|(s, e)| (s, e.ue, e.cell, e.host))
                .collect();
            nodes.insert(NodeId::Control(region), Node::Control(Box::new(control)));
        }
        let mut feed = opts.feed.clone();
        // Only region 0's control node starts the MEC APIs (the in-process demo gives every
        // daemon one shared feed instead).
        if hosts_control
            && region == RegionId(0)
            && feed.is_none()
            && let Some(listen) = opts.api.or(dep.control.api)
        {
            let mut tokens = dep.control.api_tokens.clone();
            tokens.extend(opts.api_tokens.iter().cloned());
            let api = start_api(dep, &scenario, listen, tokens, opts.clock).await?;
            info!(addr = %api.local_addr(), "ETSI MEC APIs (MEC 021 /amsi/v1, MEC 012 /rni/v2) and dashboard at /");
            let f = api.feed();
            f.seed(now, &seeded);
            feed = Some(f);
        }
        match &kind {
            Kind::Control | Kind::Replica { .. } | Kind::Region { .. } => {}
            Kind::Edge { id, .. } => {
                let warm = dep.edge(*id).map_or(0, |e| e.warm_mib);
                let factory = edge_factory(scenario.limits(), warm)?;
                // A new incarnation per start: the control node tells a restart (which lost
                // its instances) from a server that was only cut off.
                let incarnation = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    ^ u64::from(std::process::id()).rotate_left(40);
                let mut cfg = scenario.edge_config(ServerId(*id), incarnation);
                // Guest work runs on the blocking pool (`Host`), never on the event loop.
                cfg.offload = true;
                let server = EdgeServer::new(cfg, Box::new(factory), now);
                nodes.insert(
                    NodeId::Server(ServerId(*id)),
                    Node::Server(Box::new(server)),
                );
            }
            Kind::Ran { name } => {
                let cells: Vec<CellId> = dep
                    .ran(name)
                    .map(|r| r.cells.iter().map(|c| CellId(*c)).collect())
                    .unwrap_or_default();
                for c in &cells {
                    let mut cfg = scenario.ran_config(*c);
                    // Radio reports feed the control node's MEC 012 measurement reports.
                    if dep.control.api.is_some() {
                        cfg.radio_report_period = Some(RADIO_REPORT_PERIOD);
                    }
                    nodes.insert(NodeId::Cell(*c), Node::from(BaseStation::new(cfg)));
                }
                let seed = dep.seed ^ u64::from(cells.first().map_or(0, |c| c.0)).rotate_left(17);
                agent = Box::new(RadioAgent::new(scenario.clone(), cells, seed, now));
            }
            Kind::Ue { id } => {
                let def = scenario
                    .ues
                    .iter()
                    .find(|u| u.id == *id)
                    .ok_or_else(|| DaemonError::NotDeployed(format!("ue{id} route")))?;
                let mut cfg = scenario.ue_config(def, dep.seed);
                let stop_at =
                    now + std::time::Duration::from_secs_f64(scenario.duration_s.max(0.0));
                cfg.stop_at = Some(stop_at);
                let ue_seed = (cfg.seed, cfg.payload_len);
                let mut client = UeClient::new(cfg, now);
                let mut ue_agent = UeAgent::new(
                    UeId(*id),
                    scenario.clone(),
                    spec_of(dep, &scenario)?,
                    ue_seed,
                    stop_at,
                    metrics.clone(),
                    opts.journal.clone(),
                );
                if let Some(addr) = opts.app_listen {
                    let gateway = AppGateway::listen(addr)
                        .await
                        .map_err(|source| DaemonError::AppListen { addr, source })?;
                    client = client.with_app_inputs();
                    ue_agent = ue_agent.with_app(gateway, opts.app_wait);
                }
                nodes.insert(NodeId::Ue(UeId(*id)), Node::Ue(client));
                agent = Box::new(ue_agent);
            }
        }
        let listen = opts.listen.unwrap_or(listen);
        let local: BTreeSet<NodeId> = nodes.ids().collect();
        let tls = tls_of(dep, &kind, opts.tls.clone())?;
        let (transport, inbox) =
            Transport::bind_tls(listen, local.iter().copied(), dep.address_book(), emu, tls)
                .await?;
        for (n, a) in &opts.peers {
            transport.add_peer(*n, *a);
        }
        // Only a group's leading replica listens: connections look for it in turn.
        let groups = std::iter::once((NodeId::CONTROL, &dep.control.replicas)).chain(
            dep.regions
                .iter()
                .map(|r| (NodeId::Control(RegionId(r.id)), &r.replicas)),
        );
        for (node, replicas) in groups {
            if !local.contains(&node) && !replicas.is_empty() {
                transport.add_alternates(node, replicas.clone());
            }
        }
        if let Some(f) = crate::faults::filter(dep, &opts.faults, opts.clock, opts.fault_origin) {
            warn!(daemon = %kind, faults = opts.faults.len(), "injecting link faults");
            // The transport was just made: it has no filter yet.
            let _ = transport.set_fault_filter(f);
        }
        let metrics_addr = match opts.metrics.or(metrics_cfg) {
            Some(addr) => Some(
                metrics::serve(addr, metrics.clone())
                    .await
                    .map_err(|source| DaemonError::Metrics { addr, source })?,
            ),
            None => None,
        };
        info!(daemon = %kind, addr = %transport.local_addr(), nodes = ?local, "listening");
        let mut host = Host::new(
            opts.clock,
            transport.clone(),
            inbox,
            nodes,
            agent,
            opts.journal,
            metrics.clone(),
        );
        if let Some(store) = with_store {
            host = host.with_store(store);
        }
        if let Some(feed) = feed {
            host = host.with_feed(feed);
        }
        Ok(Self {
            kind,
            host,
            transport,
            metrics,
            metrics_addr,
        })
    }

    /// Makes `control` this daemon's control node, its registry in etcd (a replica that
    /// leads).
    pub(crate) fn lead(
        &mut self,
        control: ControlNode,
        writer: crate::replica::registry::EtcdWriter,
    ) {
        self.host.lead(control, writer);
    }

    /// Where it listens.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// The nodes it hosts.
    #[must_use]
    pub fn nodes(&self) -> Vec<NodeId> {
        self.transport.local_nodes().iter().copied().collect()
    }

    /// Its transport, for a launcher that injects a crash ([`Transport::abort`]).
    #[must_use]
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    /// Tells it where `node` listens (launchers with ephemeral ports).
    pub fn add_peer(&self, node: NodeId, addr: SocketAddr) {
        self.transport.add_peer(node, addr);
    }

    /// Its metrics.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The bound metrics endpoint, if any.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Which daemon it is.
    #[must_use]
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Runs until `stop` turns true (a UE: until its run is over). Returns the UE's final
    /// check, if this is a UE.
    pub async fn run(self, stop: watch::Receiver<bool>) -> Option<UeSummary> {
        let kind = self.kind.clone();
        let host = self.host.run(stop).await;
        info!(daemon = %kind, "stopped");
        host.ue_summary()
    }
}

/// Instances one pooled edge holds at once (each has two memories: the guest's and its
/// write-tracking map); one more fails to be created (`ServiceError::Exhausted`).
const POOL_INSTANCES: u32 = 256;

/// The edge's service factory: with `warm_mib`, memories come from a pool that keeps
/// that much resident and one is made resident now.
fn edge_factory(limits: Limits, warm_mib: u64) -> Result<WasmFactory, ModuleError> {
    if warm_mib == 0 {
        return WasmFactory::new(limits);
    }
    let bytes = usize::try_from(warm_mib << 20).unwrap_or(usize::MAX);
    WasmFactory::warmed(limits, POOL_INSTANCES, bytes)
}
