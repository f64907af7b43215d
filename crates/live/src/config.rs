//! The deployment file: one TOML file describes a whole edgeshift installation, and each
//! daemon picks its own part (`edgeshift edge --config F --id 2`). The radio side (cells,
//! positions, ME server of each cell, radio and handover parameters, UE routes, service)
//! comes from a scenario, built-in or a file, exactly as the simulator reads it.
//!
//! ```toml
//! scenario = "fig4"            # or a path to a scenario TOML
//! strategy = "shadow"          # stay | cold | precopy | shadow | shadow-jit
//!
//! [control]
//! listen = "10.0.0.10:7000"    # or: on_edge = 1 (runs inside that edge daemon)
//! metrics = "10.0.0.10:9100"
//! db = "/var/lib/edgeshift/control.redb"
//! # Or replicated control nodes on etcd (`edgeshift control --replica N`):
//! # replicas = ["10.0.0.10:7000", "10.0.0.11:7000", "10.0.0.12:7000"]
//! # store = "etcd"
//! # etcd = ["http://10.0.0.10:2379", "http://10.0.0.11:2379", "http://10.0.0.12:2379"]
//! # (https:// URLs: TLS with client certificates; the members' certificate comes from the
//! # deployment's CA, `edgeshift certs` writes it as etcd.pem when store = "etcd")
//!
//! [[edge]]
//! id = 1
//! listen = "10.0.0.11:7001"
//! # warm_mib = 512             # WebAssembly memory kept resident for incoming state
//!
//! [[ran]]
//! name = "ran1"
//! cells = [1, 2, 3]
//! listen = "10.0.0.20:7100"
//!
//! [[ue]]
//! id = 1
//! listen = "10.0.0.30:7200"
//!
//! # A scenario whose cells are split into regions (`region = N` on its cells) runs one
//! # control node per region: [control] is region 0's, and each other region has its own
//! # (`edgeshift control --config F --region 1`).
//! # [[region]]
//! # id = 1
//! # listen = "10.0.1.10:7000"
//! # db = "/var/lib/edgeshift/control_r1.redb"
//! # With store = "etcd", each region is a replicated group too, on the same etcd under
//! # its own prefix (`edgeshift control --config F --region 1 --replica N`):
//! # replicas = ["10.0.1.10:7000", "10.0.1.11:7000", "10.0.1.12:7000"]
//! ```
//!
//! See `examples/deployment.toml` for every key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use edgeshift_control::Strategy;
use edgeshift_net::{AddressBook, LinkEmulation};
use edgeshift_proto::{CellId, NodeId, RegionId, ServerId, UeId};
use edgeshift_world::{ModuleSource, Scenario, ScenarioError};
use serde::Deserialize;

/// Why a deployment cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a deployment.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why (with line and column).
        source: toml::de::Error,
    },
    /// The scenario could not be loaded.
    #[error("scenario: {0}")]
    Scenario(#[from] ScenarioError),
    /// The strategy name is unknown.
    #[error("{0}")]
    Strategy(#[from] edgeshift_control::UnknownStrategy),
    /// The deployment does not fit its scenario.
    #[error("deployment: {0}")]
    Invalid(String),
    /// The service module is refused or unreadable.
    #[error(transparent)]
    Module(#[from] edgeshift_world::WorldError),
}

/// Where the control node runs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlDaemon {
    /// Its listening address (unless it runs inside an edge daemon).
    pub listen: Option<SocketAddr>,
    /// Run inside the edge daemon of this ME server (`edgeshift edge --with-control`).
    pub on_edge: Option<u32>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// The registry database (redb); without it a restart forgets every service.
    pub db: Option<PathBuf>,
    /// Serve the ETSI MEC APIs and the dashboard here (`docs/api.md`).
    pub api: Option<SocketAddr>,
    /// Bearer tokens the API accepts.
    #[serde(default)]
    pub api_tokens: Vec<String>,
    /// The API's address as clients reach it (`http://host:port`), when `api` is a
    /// wildcard or behind a proxy.
    pub api_url: Option<String>,
    /// Replicated control nodes: where each replica listens while it leads
    /// (`edgeshift control --replica N` takes the Nth); needs `store = "etcd"`.
    #[serde(default)]
    pub replicas: Vec<SocketAddr>,
    /// Where the registry lives: `redb` (the default, the file `db`) or `etcd`.
    #[serde(default)]
    pub store: RegistryKind,
    /// The etcd cluster's client URLs, with `store = "etcd"`: `http://host:port`, or
    /// `https://host:port` for TLS (the members' certificate from the deployment's CA;
    /// each control node shows its own certificate to them).
    #[serde(default)]
    pub etcd: Vec<String>,
    /// The key prefix of this control group in etcd (default `/edgeshift/control`).
    pub etcd_prefix: Option<String>,
    /// Seconds of the leader's etcd lease (default 2): a standby takes over within about
    /// two of them after the leader dies.
    pub lease_s: Option<u64>,
}

/// Where the control registry lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// An embedded redb file (one control node).
    #[default]
    Redb,
    /// etcd, with replicated control nodes.
    Etcd,
}

impl ControlDaemon {
    /// The leader lease of replicated control nodes.
    #[must_use]
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_s.unwrap_or(2))
    }

    /// The key prefix of this control group in etcd.
    #[must_use]
    pub fn etcd_prefix(&self) -> &str {
        self.etcd_prefix.as_deref().unwrap_or("/edgeshift/control")
    }

    /// The key prefix of region `region`'s control group: region 0's is
    /// [`Self::etcd_prefix`], region N's `<that>/region<N>` (the groups share one etcd).
    #[must_use]
    pub fn region_prefix(&self, region: u32) -> String {
        match region {
            0 => self.etcd_prefix().to_owned(),
            r => format!("{}/region{r}", self.etcd_prefix()),
        }
    }
}

/// Where the daemons' certificates are (`edgeshift certs --config FILE --out DIR` makes
/// them), or plaintext.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA certificate (PEM) every daemon trusts.
    pub ca: Option<PathBuf>,
    /// The directory of the daemons' certificates and keys: `<daemon>.pem` and
    /// `<daemon>.key`, with `<daemon>` `control`, `me<id>`, `ran-<name>` or `ue<id>`.
    pub dir: Option<PathBuf>,
    /// Plaintext, unauthenticated connections: any process that reaches a daemon's port can
    /// claim to be any node. Only for trials on a closed machine.
    #[serde(default)]
    pub insecure: bool,
}

/// The control node of a region other than region 0 (`edgeshift control --region N`):
/// it serves the cells of the scenario with `region = N` and their ME servers, and hands
/// services to and from the other regions' control nodes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionDaemon {
    /// The region (as in the scenario's cells), 1 or more.
    pub id: u32,
    /// Listening address of its stand-alone control node (registry in redb).
    pub listen: Option<SocketAddr>,
    /// Or, with `[control] store = "etcd"`: where each replica of the region's control
    /// group listens while it leads (`edgeshift control --region N --replica K` takes the
    /// Kth). The groups of all regions share `[control] etcd`, each under its own prefix.
    #[serde(default)]
    pub replicas: Vec<SocketAddr>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// The region's registry database (redb); without it a restart forgets its services.
    pub db: Option<PathBuf>,
}

impl RegionDaemon {
    /// Where the region's control node is looked for first: its listener, or its first
    /// replica (peers try the others in turn).
    #[must_use]
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.or_else(|| self.replicas.first().copied())
    }
}

/// One edge daemon (one ME server).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeDaemon {
    /// The ME server id (as in the scenario).
    pub id: u32,
    /// Listening address.
    pub listen: SocketAddr,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// MiB of WebAssembly memory kept warm for incoming state (0, the default: none).
    /// One memory this large is made resident at start, and every memory keeps this much
    /// resident after its instance is gone, so a restore up to this size writes at memory
    /// speed instead of taking a page fault per 4 KiB. The price is that much resident
    /// memory per slot ever used, held while idle (`docs/benchmarks.md`).
    #[serde(default)]
    pub warm_mib: u64,
}

/// One RAN agent: the base stations of some cells.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RanDaemon {
    /// Its name.
    pub name: String,
    /// The cells it runs.
    pub cells: Vec<u32>,
    /// Listening address.
    pub listen: SocketAddr,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
}

/// One UE client.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UeDaemon {
    /// The UE id (as in the scenario; its service has the same id).
    pub id: u32,
    /// Listening address (cells send answers and handover commands here).
    pub listen: SocketAddr,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
}

/// Link emulation of each daemon's outgoing connections (all off by default).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Emulation {
    /// Control node → anyone.
    pub control: LinkEmulation,
    /// ME server → anyone (the backhaul).
    pub edge: LinkEmulation,
    /// Base station → anyone (access and X2).
    pub ran: LinkEmulation,
    /// UE → cell (the radio).
    pub ue: LinkEmulation,
}

/// A whole installation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Scenario name or file: cells, ME servers, radio, UE routes, service.
    pub scenario: String,
    /// Relocation strategy.
    #[serde(default = "default_strategy")]
    pub strategy: String,
    /// Overrides the scenario's service kind (`mem`, `counter`, `arena`, `armap`).
    pub service: Option<String>,
    /// Your own WebAssembly service (`.wasm` or `.wat`, relative to this file) instead of
    /// the scenario's; checked when a daemon starts. (A top-level key: `service` already
    /// names a sample.)
    pub module: Option<PathBuf>,
    /// The module's configuration file (the bytes given to `es_init`), relative to this
    /// file.
    pub module_config: Option<PathBuf>,
    /// Overrides the scenario's state size (MiB).
    pub state_mib: Option<u64>,
    /// Overrides the scenario's run length (s): UEs stop sending then.
    pub duration_s: Option<f64>,
    /// Run this many UEs (2 or more): the scenario's first UE and copies of it along its
    /// route, each starting 0.4 s later and 15 m aside (ids 2, 3, …).
    pub ues_along_route: Option<u32>,
    /// Make-before-break handovers, whatever the scenario says (its `handover.daps`).
    #[serde(default)]
    pub daps: bool,
    /// Optimistic activation, whatever the scenario says (its `edge.optimistic`).
    #[serde(default)]
    pub optimistic: bool,
    /// Seed of the radio model and the UEs' inputs.
    #[serde(default)]
    pub seed: u64,
    /// The control node (of region 0, when the scenario has regions).
    pub control: ControlDaemon,
    /// The control nodes of the scenario's other regions.
    #[serde(rename = "region", default)]
    pub regions: Vec<RegionDaemon>,
    /// Edge daemons.
    #[serde(rename = "edge", default)]
    pub edges: Vec<EdgeDaemon>,
    /// RAN agents.
    #[serde(rename = "ran", default)]
    pub rans: Vec<RanDaemon>,
    /// UE clients.
    #[serde(rename = "ue", default)]
    pub ues: Vec<UeDaemon>,
    /// Link emulation.
    #[serde(default)]
    pub emulation: Emulation,
    /// Mutual TLS between the daemons.
    pub tls: Option<TlsFiles>,
}

fn default_strategy() -> String {
    "shadow".into()
}

impl Deployment {
    /// Reads and checks a deployment file.
    ///
    /// # Errors
    /// An unreadable or invalid file, or one that does not fit its scenario.
    pub fn load(path: &Path) -> Result<(Self, Scenario), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new(""));
        Self::parse_named(&text, dir, &path.display().to_string())
    }

    /// Parses and checks deployment text whose relative paths are relative to `dir`.
    ///
    /// # Errors
    /// Invalid text, or a deployment that does not fit its scenario.
    pub fn parse(text: &str, dir: &Path) -> Result<(Self, Scenario), ConfigError> {
        Self::parse_named(text, dir, "deployment")
    }

    fn parse_named(text: &str, dir: &Path, name: &str) -> Result<(Self, Scenario), ConfigError> {
        let mut dep: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: name.to_owned(),
            source,
        })?;
        // A relative scenario path is relative to the deployment file.
        if dep.scenario.ends_with(".toml") && Path::new(&dep.scenario).is_relative() {
            dep.scenario = dir.join(&dep.scenario).display().to_string();
        }
        // So are the module's files and the certificates.
        let tls = dep.tls.as_mut();
        for p in [&mut dep.module, &mut dep.module_config]
            .into_iter()
            .chain(tls.map(|t| [&mut t.ca, &mut t.dir]).into_iter().flatten())
            .flatten()
        {
            *p = dir.join(&*p);
        }
        let scenario = dep.scenario()?;
        Ok((dep, scenario))
    }

    /// Loads the scenario and checks that this deployment covers it.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn scenario(&self) -> Result<Scenario, ConfigError> {
        self.check_values()?;
        let mut s = Scenario::load(&self.scenario)?;
        if let Some(d) = self.duration_s {
            s.duration_s = d;
        }
        s.handover.daps |= self.daps;
        s.edge.optimistic |= self.optimistic;
        if let Some(n) = self.ues_along_route {
            if !(1..=1000).contains(&n) {
                return Err(ConfigError::Invalid(format!(
                    "ues_along_route must be 1 to 1000, not {n}"
                )));
            }
            s.add_ues(n);
        }
        self.check(&s)?;
        Ok(s)
    }

    /// The strategy.
    ///
    /// # Errors
    /// An unknown name.
    pub fn strategy(&self) -> Result<Strategy, ConfigError> {
        Ok(self.strategy.parse()?)
    }

    /// Every number of the file against its range, and the service name, with the key.
    fn check_values(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(m) = self.state_mib
            && !(1..=1024).contains(&m)
        {
            return bad(format!("state_mib must be 1 to 1024, not {m}"));
        }
        if let Some(d) = self.duration_s
            && !(d.is_finite() && d > 0.0 && d <= 7.0 * 24.0 * 3600.0)
        {
            return bad(format!(
                "duration_s must be above 0 and at most a week (604800), not {d}"
            ));
        }
        if let Some(k) = &self.service {
            let known = k == edgeshift_edge::MEM_KIND
                || edgeshift_runtime::samples::NAMES.contains(&k.as_str());
            if !known {
                return bad(format!(
                    "service {k:?} is not one of mem, {} (or give module = \"your.wasm\")",
                    edgeshift_runtime::samples::NAMES.join(", ")
                ));
            }
        }
        let e = &self.emulation;
        for (name, l) in [
            ("control", e.control),
            ("edge", e.edge),
            ("ran", e.ran),
            ("ue", e.ue),
        ] {
            if !(l.latency_ms.is_finite() && (0.0..=60_000.0).contains(&l.latency_ms)) {
                return bad(format!(
                    "emulation.{name}.latency_ms must be 0 to 60000, not {}",
                    l.latency_ms
                ));
            }
            if !(l.gbit.is_finite() && (0.0..=10_000.0).contains(&l.gbit)) {
                return bad(format!(
                    "emulation.{name}.gbit must be 0 (unlimited) to 10000, not {}",
                    l.gbit
                ));
            }
            if !(l.radio_loss.is_finite() && (0.0..1.0).contains(&l.radio_loss)) {
                return bad(format!(
                    "emulation.{name}.radio_loss must be at least 0 and below 1, not {}",
                    l.radio_loss
                ));
            }
        }
        Ok(())
    }

    fn check(&self, s: &Scenario) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        self.strategy()?;
        self.check_regions(s)?;
        if self.module.is_some() && self.service.is_some() {
            return bad("set either service (a sample) or module (your own), not both".into());
        }
        if self.module_config.is_some() && self.module.is_none() {
            return bad("module_config is the configuration of a module; set both".into());
        }
        if let Some(m) = &self.module {
            // Refused before any daemon starts, with the reason.
            ModuleSource::load(m, self.module_config.as_deref())?;
        }
        let edges: BTreeSet<u32> = self.edges.iter().map(|e| e.id).collect();
        if edges.len() != self.edges.len() {
            return bad("an ME server id appears in two [[edge]] entries".into());
        }
        let max_mib = s.limits().max_memory >> 20;
        if let Some(e) = self.edges.iter().find(|e| e.warm_mib as usize > max_mib) {
            return bad(format!(
                "edge me{}: warm_mib must be 0 to {max_mib} (a guest's memory limit), not {}",
                e.id, e.warm_mib
            ));
        }
        for sv in &s.servers {
            if !edges.contains(&sv.id) {
                return bad(format!("scenario server me{} has no [[edge]] entry", sv.id));
            }
        }
        let mut cells = BTreeSet::new();
        for r in &self.rans {
            for c in &r.cells {
                if !s.cells.iter().any(|d| d.id == *c) {
                    return bad(format!(
                        "RAN agent {} runs cell{c}, which is not in the scenario",
                        r.name
                    ));
                }
                if !cells.insert(*c) {
                    return bad(format!("cell{c} is run by two RAN agents"));
                }
            }
        }
        if let Some(c) = s.cells.iter().find(|c| !cells.contains(&c.id)) {
            return bad(format!(
                "scenario cell{} is not run by any [[ran]] agent",
                c.id
            ));
        }
        for u in &self.ues {
            if !s.ues.iter().any(|d| d.id == u.id) {
                return bad(format!("ue{} has no route in the scenario", u.id));
            }
        }
        let c = &self.control;
        if c.store == RegistryKind::Etcd {
            if c.etcd.is_empty() {
                return bad(
                    "[control] store = \"etcd\" needs etcd = [\"http://host:port\", ...]".into(),
                );
            }
            let scheme = if c.etcd.iter().any(|e| e.starts_with("https://")) {
                "https://"
            } else {
                "http://"
            };
            if let Some(e) = c.etcd.iter().find(|e| !e.starts_with(scheme)) {
                return bad(format!(
                    "[control] etcd: {e:?} is not {scheme}host:port (all http:// or all https://)"
                ));
            }
            if scheme == "https://" && self.tls.as_ref().is_some_and(|t| t.insecure) {
                return bad(
                    "[control] etcd over https:// needs [tls] certificates: the control nodes \
                     show theirs to etcd (insecure = true has none)"
                        .into(),
                );
            }
            if c.on_edge.is_some() {
                return bad(
                    "[control] store = \"etcd\" runs stand-alone replicas, not on_edge".into(),
                );
            }
            if !(1..=5_000).contains(&c.lease_s.unwrap_or(2)) {
                return bad("[control] lease_s must be 1 to 5000 seconds".into());
            }
        }
        if !c.replicas.is_empty() {
            if c.store != RegistryKind::Etcd {
                return bad("[control] replicas need store = \"etcd\"".into());
            }
            if c.listen.is_some() {
                return bad("[control]: give either listen or replicas, not both".into());
            }
            return Ok(());
        }
        match (self.control.listen, self.control.on_edge) {
            (Some(_), Some(_)) => bad("[control]: give either listen or on_edge, not both".into()),
            (None, None) => {
                bad("[control]: needs listen, replicas, or on_edge = <ME server id>".into())
            }
            (None, Some(id)) if !edges.contains(&id) => {
                bad(format!("[control] on_edge = {id}: no such [[edge]]"))
            }
            _ => Ok(()),
        }
    }

    /// One `[[region]]` per region of the scenario beyond region 0, each a stand-alone
    /// control node, like region 0's.
    fn check_regions(&self, s: &Scenario) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let wanted: BTreeSet<u32> = s
            .cells
            .iter()
            .map(|c| c.region)
            .filter(|r| *r != 0)
            .collect();
        let mut given = BTreeSet::new();
        for r in &self.regions {
            if !given.insert(r.id) {
                return bad(format!("region {} has two [[region]] entries", r.id));
            }
            if !wanted.contains(&r.id) {
                return bad(format!(
                    "[[region]] id = {}: scenario {} has no cell in region {} (region 0 is \
                     [control]'s)",
                    r.id, s.name, r.id
                ));
            }
        }
        if let Some(r) = wanted.iter().find(|r| !given.contains(r)) {
            let cell = s.cells.iter().find(|c| c.region == *r).map_or(0, |c| c.id);
            return bad(format!(
                "scenario {}: cell {cell} is in region {r}, which has no [[region]] entry \
                 (id = {r}, listen = \"host:port\")",
                s.name
            ));
        }
        let c = &self.control;
        if wanted.is_empty() {
            return Ok(());
        }
        if c.on_edge.is_some() {
            return bad(
                "regions run their own control nodes: [control] on_edge serves one region \
                 only (give [control] listen, or replicas on etcd)"
                    .into(),
            );
        }
        let etcd = c.store == RegistryKind::Etcd;
        for r in &self.regions {
            let id = r.id;
            match (etcd, r.listen.is_some(), r.replicas.is_empty()) {
                (true, false, false) if r.db.is_none() => {}
                (true, ..) => {
                    return bad(format!(
                        "[[region]] id = {id}: with store = \"etcd\" each region is a group of \
                         replicas on etcd: give replicas = [\"host:port\", ...] (no listen, \
                         no db)"
                    ));
                }
                (false, true, true) => {}
                (false, ..) => {
                    return bad(format!(
                        "[[region]] id = {id}: give listen = \"host:port\" (replicas need \
                         [control] store = \"etcd\")"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `[[region]]` entry of region `id`.
    #[must_use]
    pub fn region(&self, id: u32) -> Option<&RegionDaemon> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Where every node listens.
    #[must_use]
    pub fn address_book(&self) -> AddressBook {
        let mut book = AddressBook::new();
        for e in &self.edges {
            book.insert(NodeId::Server(ServerId(e.id)), e.listen);
        }
        for r in &self.rans {
            for c in &r.cells {
                book.insert(NodeId::Cell(CellId(*c)), r.listen);
            }
        }
        for u in &self.ues {
            book.insert(NodeId::Ue(UeId(u.id)), u.listen);
        }
        let control = self
            .control
            .listen
            .or_else(|| self.control.replicas.first().copied())
            .or_else(|| {
                let id = self.control.on_edge?;
                self.edges.iter().find(|e| e.id == id).map(|e| e.listen)
            });
        if let Some(a) = control {
            book.insert(NodeId::CONTROL, a);
        }
        for r in &self.regions {
            if let Some(a) = r.addr() {
                book.insert(NodeId::Control(RegionId(r.id)), a);
            }
        }
        book
    }

    /// The edge daemon entry of ME server `id`.
    #[must_use]
    pub fn edge(&self, id: u32) -> Option<&EdgeDaemon> {
        self.edges.iter().find(|e| e.id == id)
    }

    /// The RAN agent called `name`.
    #[must_use]
    pub fn ran(&self, name: &str) -> Option<&RanDaemon> {
        self.rans.iter().find(|r| r.name == name)
    }

    /// The UE entry of `id`.
    #[must_use]
    pub fn ue(&self, id: u32) -> Option<&UeDaemon> {
        self.ues.iter().find(|u| u.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
        scenario = "fig4"
        [control]
        listen = "127.0.0.1:7000"
        [[edge]]
        id = 1
        listen = "127.0.0.1:7001"
        [[edge]]
        id = 2
        listen = "127.0.0.1:7002"
        [[edge]]
        id = 3
        listen = "127.0.0.1:7003"
        [[ran]]
        name = "ran1"
        cells = [1, 2, 3]
        listen = "127.0.0.1:7100"
        [[ue]]
        id = 1
        listen = "127.0.0.1:7200"
    "#;

    fn parse(text: &str) -> Result<Scenario, ConfigError> {
        let d: Deployment = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: "test".into(),
            source,
        })?;
        d.scenario()
    }

    #[test]
    fn a_complete_deployment_loads() {
        let d: Deployment = toml::from_str(OK).expect("parses");
        assert!(d.scenario().is_ok());
        let book = d.address_book();
        assert_eq!(book.len(), 1 + 3 + 3 + 1);
        assert_eq!(book[&NodeId::Cell(CellId(3))], d.rans[0].listen);
    }

    #[test]
    fn gaps_and_typos_are_named() {
        let missing = OK.replace("cells = [1, 2, 3]", "cells = [1, 2]");
        let e = parse(&missing).expect_err("cell 3 unserved").to_string();
        assert!(e.contains("cell3"), "{e}");
        let typo = OK.replace("listen = \"127.0.0.1:7000\"", "listn = \"127.0.0.1:7000\"");
        let e = parse(&typo).expect_err("unknown key").to_string();
        assert!(e.contains("listn"), "{e}");
        let both = OK.replace("[control]\n", "[control]\n        on_edge = 1\n");
        assert!(parse(&both).is_err());
        let strat = OK.replace(
            "scenario = \"fig4\"",
            "scenario = \"fig4\"\nstrategy = \"warp\"",
        );
        assert!(parse(&strat).is_err());
    }

    #[test]
    fn warm_memory_is_bounded_by_a_guests_memory_limit() {
        let warm = |mib: &str| {
            OK.replacen(
                "id = 2\n",
                &format!("id = 2\n        warm_mib = {mib}\n"),
                1,
            )
        };
        let d: Deployment = toml::from_str(&warm("512")).expect("parses");
        assert!(d.scenario().is_ok());
        assert_eq!(d.edge(2).map(|e| e.warm_mib), Some(512));
        assert_eq!(d.edge(1).map(|e| e.warm_mib), Some(0));
        let e = parse(&warm("4096"))
            .expect_err("over the limit")
            .to_string();
        assert!(e.contains("me2") && e.contains("warm_mib"), "{e}");
        assert!(parse(&warm("-1")).is_err());
    }

    /// The regions scenario's deployment on loopback, with `extra` appended.
    fn regions_deployment(extra: &str) -> String {
        let mut t =
            String::from("scenario = \"regions\"\n[control]\nlisten = \"127.0.0.1:7000\"\n");
        for id in 1..=5 {
            t += &format!(
                "[[edge]]\nid = {id}\nlisten = \"127.0.0.1:{}\"\n",
                7000 + id
            );
        }
        t += "[[ran]]\nname = \"ran1\"\ncells = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n";
        t += "listen = \"127.0.0.1:7100\"\n";
        t + extra
    }

    #[test]
    fn every_region_has_its_control_node_and_everyone_finds_it() {
        let region = "[[region]]\nid = 1\nlisten = \"127.0.0.1:7500\"\n";
        let d: Deployment = toml::from_str(&regions_deployment(region)).expect("parses");
        assert!(d.scenario().is_ok());
        let book = d.address_book();
        assert_eq!(
            book[&NodeId::Control(RegionId(1))],
            "127.0.0.1:7500".parse().expect("address")
        );
        assert_eq!(
            book[&NodeId::CONTROL],
            "127.0.0.1:7000".parse().expect("address")
        );
    }

    #[test]
    fn on_etcd_every_region_is_a_group_of_replicas_under_its_own_prefix() {
        let etcd = regions_deployment(
            "[[region]]\nid = 1\nreplicas = [\"127.0.0.1:7500\", \"127.0.0.1:7501\"]\n",
        )
        .replace(
            "[control]\nlisten = \"127.0.0.1:7000\"\n",
            "[control]\nreplicas = [\"127.0.0.1:7000\", \"127.0.0.1:7010\"]\nstore = \"etcd\"\n\
             etcd = [\"http://127.0.0.1:2379\"]\n",
        );
        let d: Deployment = toml::from_str(&etcd).expect("parses");
        assert!(d.scenario().is_ok());
        assert_eq!(
            d.address_book()[&NodeId::Control(RegionId(1))],
            "127.0.0.1:7500".parse().expect("address")
        );
        assert_eq!(d.control.region_prefix(0), "/edgeshift/control");
        assert_eq!(d.control.region_prefix(1), "/edgeshift/control/region1");
        // Mixed: a region on its own beside replicated ones, or replicas without etcd.
        let standalone = etcd.replace(
            "replicas = [\"127.0.0.1:7500\", \"127.0.0.1:7501\"]",
            "listen = \"127.0.0.1:7500\"",
        );
        let err = parse(&standalone).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("id = 1") && m.contains("replicas")),
            "{err:?}"
        );
        let no_etcd = regions_deployment("[[region]]\nid = 1\nreplicas = [\"127.0.0.1:7500\"]\n");
        let err = parse(&no_etcd).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("id = 1") && m.contains("store = \"etcd\"")),
            "{err:?}"
        );
    }

    #[test]
    fn a_region_without_its_control_node_is_refused_by_name() {
        let err = parse(&regions_deployment("")).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("cell 5 is in region 1") && m.contains("[[region]]")),
            "{err:?}"
        );
        for (extra, what) in [
            (
                "[[region]]\nid = 2\nlisten = \"127.0.0.1:7500\"\n",
                "no cell in region 2",
            ),
            (
                "[[region]]\nid = 1\nlisten = \"127.0.0.1:7500\"\n\
                 [[region]]\nid = 1\nlisten = \"127.0.0.1:7501\"\n",
                "two [[region]] entries",
            ),
        ] {
            let err = parse(&regions_deployment(extra))
                .err()
                .map(|e| e.to_string());
            assert!(err.as_deref().is_some_and(|m| m.contains(what)), "{err:?}");
        }
        // A one-region scenario needs none.
        assert!(parse(OK).is_ok());
    }

    #[test]
    fn the_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        for name in ["deployment.toml", "with-control.toml"] {
            let (d, s) = Deployment::load(&dir.join(name)).expect(name);
            assert_eq!(s.name, "demo");
            assert!(d.address_book().contains_key(&NodeId::CONTROL), "{name}");
        }
        for name in ["regions.toml", "regions-etcd.toml"] {
            let (d, s) = Deployment::load(&dir.join(name)).expect(name);
            assert_eq!(s.name, "regions-demo");
            assert!(d.address_book().contains_key(&NodeId::Control(RegionId(1))));
        }
    }

    #[test]
    fn every_number_of_the_file_is_range_checked_by_name() {
        let with = |line: &str| format!("{line}\n{OK}");
        for (line, key) in [
            ("state_mib = 4096", "state_mib"),
            ("state_mib = 0", "state_mib"),
            ("duration_s = 1e30", "duration_s"),
            ("duration_s = -1.0", "duration_s"),
            ("duration_s = nan", "duration_s"),
            ("service = \"doom\"", "doom"),
            ("ues_along_route = 0", "ues_along_route"),
        ] {
            let e = parse(&with(line)).expect_err(line).to_string();
            assert!(e.contains(key), "{line}: {e}");
        }
        for (table, line, key) in [
            ("edge", "latency_ms = 1e300", "emulation.edge.latency_ms"),
            ("ue", "radio_loss = 1.0", "emulation.ue.radio_loss"),
            ("control", "gbit = inf", "emulation.control.gbit"),
            ("ran", "latency_ms = -5.0", "emulation.ran.latency_ms"),
        ] {
            let e = parse(&format!("{OK}\n[emulation.{table}]\n{line}\n"))
                .expect_err(line)
                .to_string();
            assert!(e.contains(key), "{line}: {e}");
        }
    }

    #[test]
    fn etcd_endpoints_are_all_http_or_all_https_and_https_needs_certificates() {
        let replicated = |etcd: &str, tls: &str| {
            OK.replace(
                "listen = \"127.0.0.1:7000\"",
                &format!(
                    "replicas = [\"127.0.0.1:7000\", \"127.0.0.1:7005\"]\nstore = \"etcd\"\netcd = {etcd}"
                ),
            ) + tls
        };
        let certs = "\n[tls]\nca = \"ca.pem\"\ndir = \".\"\n";
        let insecure = "\n[tls]\ninsecure = true\n";
        let https = r#"["https://10.0.0.1:2379", "https://etcd2.example:2379"]"#;
        assert!(parse(&replicated(https, certs)).is_ok());
        assert!(parse(&replicated(r#"["http://10.0.0.1:2379"]"#, insecure)).is_ok());
        let mixed = r#"["https://10.0.0.1:2379", "http://10.0.0.2:2379"]"#;
        let e = parse(&replicated(mixed, certs))
            .expect_err("mixed")
            .to_string();
        assert!(e.contains("all http:// or all https://"), "{e}");
        let e = parse(&replicated(https, insecure))
            .expect_err("no certificates")
            .to_string();
        assert!(e.contains("needs [tls] certificates"), "{e}");
        // The members' certificate names the hosts of the URLs.
        let d: Deployment = toml::from_str(&replicated(https, certs)).expect("parses");
        assert_eq!(crate::certs::etcd_hosts(&d), ["10.0.0.1", "etcd2.example"]);
    }
}
