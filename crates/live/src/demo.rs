//! `edgeshift demo`: the patent's topology on 127.0.0.1 — three cells in a RAN agent,
//! three edge daemons, a control node and UEs — each on its own sockets, in this process
//! or as separate processes. Links are emulated from the scenario (radio, access,
//! backhaul latency and bandwidth) so that one machine behaves like a small network.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edgeshift_edge::EdgeEvent;
use edgeshift_net::{Clock, LinkEmulation};
use edgeshift_proto::{NodeId, UeId};
use edgeshift_record::Observation;
use edgeshift_world::Scenario;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{
    ConfigError, ControlDaemon, Deployment, EdgeDaemon, Emulation, RanDaemon, RegionDaemon,
    UeDaemon,
};
use crate::daemon::{Daemon, DaemonError, Kind, Options};
use crate::journal::{Journal, Record, read_journal};
use crate::report::LiveRun;

mod inject;

use inject::{Action, Children, Daemons};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A daemon failed to start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The demo's certificates could not be made.
    #[error(transparent)]
    Certs(#[from] crate::certs::CertsError),
    /// A process or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Scenario name or file.
    pub scenario: String,
    /// Strategy.
    pub strategy: String,
    /// Service kind.
    pub service: String,
    /// A WebAssembly module of the user's instead of `service`.
    pub module: Option<PathBuf>,
    /// The module's configuration file.
    pub module_config: Option<PathBuf>,
    /// UE 1 takes its inputs from the application that connects here instead of
    /// generating them (in-process demo).
    pub app_listen: Option<SocketAddr>,
    /// How long UE 1 waits for that application before giving up.
    pub app_wait: Duration,
    /// State size (MiB); default: the scenario's.
    pub state_mib: Option<u64>,
    /// UEs along the route.
    pub ues: u32,
    /// Seconds the UEs send inputs; default: the scenario's.
    pub duration_s: Option<f64>,
    /// Seed.
    pub seed: u64,
    /// Run each daemon as its own OS process (this executable).
    pub processes: Option<PathBuf>,
    /// Emulate the scenario's link latencies and bandwidths.
    pub emulate: bool,
    /// Print progress lines while running.
    pub progress: bool,
    /// Serve the ETSI MEC APIs and the dashboard here.
    pub api: Option<SocketAddr>,
    /// The bearer token of the API.
    pub api_token: String,
    /// Wait this long between starting the API and starting the UEs, so that clients can
    /// subscribe first.
    pub start_after: Duration,
    /// Faults to inject (`--fault`), timed from the start of the run.
    pub faults: Vec<edgeshift_world::fault::Fault>,
    /// Make-before-break handovers (the scenario's `handover.daps`).
    pub daps: bool,
    /// Optimistic activation (the scenario's `edge.optimistic`).
    pub optimistic: bool,
    /// Control replicas electing a leader in etcd (more than one needs `etcd`).
    pub control_replicas: u32,
    /// MiB of WebAssembly memory each edge keeps warm for incoming state (`warm_mib`).
    pub warm_mib: u64,
    /// The registry in etcd: these client URLs, or (empty) a local three-member cluster
    /// the demo starts; `None`: one control node with its registry in redb.
    pub etcd: Option<Vec<String>>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            scenario: "demo".into(),
            strategy: "shadow".into(),
            service: "arena".into(),
            module: None,
            module_config: None,
            app_listen: None,
            app_wait: Duration::from_secs(30),
            state_mib: None,
            ues: 1,
            duration_s: None,
            seed: 1,
            processes: None,
            emulate: true,
            progress: true,
            api: None,
            api_token: String::new(),
            start_after: Duration::ZERO,
            faults: Vec::new(),
            daps: false,
            optimistic: false,
            control_replicas: 1,
            warm_mib: 0,
            etcd: None,
        }
    }
}

fn emulation(s: &Scenario, on: bool) -> Emulation {
    if !on {
        return Emulation::default();
    }
    let l = &s.links;
    let link = |ms: f64, gbit: f64| LinkEmulation {
        latency_ms: ms,
        gbit,
        ..LinkEmulation::default()
    };
    Emulation {
        control: link(l.control_ms, 0.0),
        edge: link(l.backhaul_ms, l.backhaul_gbit),
        ran: link(l.access_ms, 0.0),
        ue: LinkEmulation {
            radio_loss: l.radio_loss,
            ..link(l.radio_ms, l.radio_mbit / 1e3)
        },
    }
}

fn free_port() -> Result<SocketAddr, DemoError> {
    edgeshift_etcd::loopback_port().map_err(io("reserving a port"))
}

/// The demo's deployment on loopback; `ports` picks each listening address.
fn deployment(
    cfg: &DemoConfig,
    s: &Scenario,
    mut port: impl FnMut() -> Result<SocketAddr, DemoError>,
) -> Result<Deployment, DemoError> {
    Ok(Deployment {
        scenario: cfg.scenario.clone(),
        ues_along_route: (cfg.ues > 1).then_some(cfg.ues),
        strategy: cfg.strategy.clone(),
        service: cfg.module.is_none().then(|| cfg.service.clone()),
        module: cfg.module.clone(),
        module_config: cfg.module_config.clone(),
        state_mib: cfg.state_mib,
        duration_s: cfg.duration_s,
        daps: cfg.daps,
        optimistic: cfg.optimistic,
        seed: cfg.seed,
        control: match &cfg.etcd {
            None => ControlDaemon {
                listen: Some(port()?),
                ..ControlDaemon::default()
            },
            Some(endpoints) => ControlDaemon {
                // Reserved ports even in one process: a replica listens only once it
                // leads, and everyone must know where to look for it before.
                replicas: (0..cfg.control_replicas.max(1))
                    .map(|_| free_port())
                    .collect::<Result<_, _>>()?,
                store: crate::config::RegistryKind::Etcd,
                etcd: endpoints.clone(),
                ..ControlDaemon::default()
            },
        },
        regions: {
            let mut ids: Vec<u32> = s
                .cells
                .iter()
                .map(|c| c.region)
                .filter(|r| *r != 0)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|id| {
                    Ok(match &cfg.etcd {
                        None => RegionDaemon {
                            id,
                            listen: Some(port()?),
                            replicas: Vec::new(),
                            metrics: None,
                            db: None,
                        },
                        // On etcd every region is a group of replicas, as region 0 is.
                        Some(_) => RegionDaemon {
                            id,
                            listen: None,
                            replicas: (0..cfg.control_replicas.max(1))
                                .map(|_| free_port())
                                .collect::<Result<_, _>>()?,
                            metrics: None,
                            db: None,
                        },
                    })
                })
                .collect::<Result<_, DemoError>>()?
        },
        edges: s
            .servers
            .iter()
            .map(|sv| {
                Ok(EdgeDaemon {
                    id: sv.id,
                    listen: port()?,
                    metrics: None,
                    warm_mib: cfg.warm_mib,
                })
            })
            .collect::<Result<_, DemoError>>()?,
        rans: vec![RanDaemon {
            name: "ran1".into(),
            cells: s.cells.iter().map(|c| c.id).collect(),
            listen: port()?,
            metrics: None,
        }],
        ues: s
            .ues
            .iter()
            .map(|u| {
                Ok(UeDaemon {
                    id: u.id,
                    listen: port()?,
                    metrics: None,
                })
            })
            .collect::<Result<_, DemoError>>()?,
        emulation: emulation(s, cfg.emulate),
        tls: None,
    })
}

fn kinds(dep: &Deployment) -> Vec<Kind> {
    let mut k = if dep.control.replicas.is_empty() {
        vec![Kind::Control]
    } else {
        (1..=dep.control.replicas.len())
            .map(|n| Kind::Replica {
                region: 0,
                n: u32::try_from(n).unwrap_or(u32::MAX),
            })
            .collect()
    };
    for r in &dep.regions {
        if r.listen.is_some() {
            k.push(Kind::Region { id: r.id });
        }
        k.extend((1..=r.replicas.len()).map(|n| Kind::Replica {
            region: r.id,
            n: u32::try_from(n).unwrap_or(u32::MAX),
        }));
    }
    k.extend(dep.edges.iter().map(|e| Kind::Edge {
        id: e.id,
        with_control: false,
    }));
    k.extend(dep.rans.iter().map(|r| Kind::Ran {
        name: r.name.clone(),
    }));
    k.extend(dep.ues.iter().map(|u| Kind::Ue { id: u.id }));
    k
}

fn progress_line(r: &Record, start: u64) -> Option<String> {
    let t = |at: u64| at.saturating_sub(start) as f64 / 1e9;
    match r {
        Record::Event { at, node, what } => {
            let short = what.split(" {").next().unwrap_or(what);
            matches!(
                short,
                "Predicted"
                    | "HandoverExecuted"
                    | "RelocationTriggered"
                    | "ShadowReady"
                    | "Attached"
                    | "ShadowsRequested"
                    | "HandoverCancelled"
                    | "Fault"
                    | "ServerDown"
                    | "ServerUp"
                    | "FailoverStarted"
                    | "ServiceLost"
                    | "Promoted"
                    | "Released"
            )
            .then(|| format!("{:>7.2}s  {node}: {what}", t(*at)))
        }
        Record::Obs(Observation::Edge {
            at,
            server,
            event: EdgeEvent::Activated { service, from, .. },
        }) => Some(format!(
            "{:>7.2}s  {server}: {service} is live here (moved from {from})",
            t(at.as_nanos())
        )),
        Record::Ue(u) => Some(format!(
            "         ue{}: finished, {} inputs, twin match {}",
            u.ue, u.inputs_sent, u.final_state_matches_twin
        )),
        _ => None,
    }
}

/// Runs the demo and returns what happened.
///
/// # Errors
/// See [`DemoError`].
pub async fn run(cfg: &DemoConfig) -> Result<LiveRun, DemoError> {
    if cfg.app_listen.is_some() && cfg.processes.is_some() {
        return Err(ConfigError::Invalid(
            "--app-listen works with the demo in one process; with one process per daemon, \
             start `edgeshift ue --app-listen ADDR` yourself"
                .into(),
        )
        .into());
    }
    if let Some(m) = &cfg.module {
        // Refused before any daemon starts, with the reason.
        edgeshift_world::ModuleSource::load(m, cfg.module_config.as_deref())
            .map_err(ConfigError::from)?;
    }
    if cfg.control_replicas != 1 && cfg.etcd.is_none() {
        return Err(ConfigError::Invalid(
            "--control-replicas needs --store etcd: replicas share their registry and elect \
             their leader through etcd"
                .into(),
        )
        .into());
    }
    if !(1..=7).contains(&cfg.control_replicas) {
        return Err(ConfigError::Invalid("--control-replicas must be 1 to 7".into()).into());
    }
    // One CA for the run: the daemons' certificates, and the local etcd's.
    let ca =
        edgeshift_net::pki::Ca::new("edgeshift demo CA").map_err(crate::certs::CertsError::from)?;
    // A local etcd for the run, over TLS, unless one was given; it lives until the run
    // ends.
    let mut cfg = cfg.clone();
    let etcd_dir;
    let _etcd = match &cfg.etcd {
        Some(e) if e.is_empty() => {
            etcd_dir = std::env::temp_dir().join(format!(
                "edgeshift-demo-etcd-{}-{}",
                std::process::id(),
                Clock::system().now().as_nanos()
            ));
            let tls = crate::certs::local_etcd(&ca, &etcd_dir.join("tls"))?;
            let local = edgeshift_etcd::LocalEtcd::start_tls(&etcd_dir, 3, tls)
                .await
                .map_err(|e| {
                    ConfigError::Invalid(format!("--store etcd: {e}; or give --etcd URL"))
                })?;
            info!(endpoints = ?local.endpoints(), "local etcd started");
            cfg.etcd = Some(local.endpoints());
            Some(Guard(local, etcd_dir.clone()))
        }
        _ => None,
    };
    let cfg = &cfg;
    let mut scenario = Scenario::load(&cfg.scenario).map_err(ConfigError::from)?;
    scenario.add_ues(cfg.ues.max(1));
    scenario.handover.daps |= cfg.daps;
    scenario.edge.optimistic |= cfg.optimistic;
    if let Some(d) = cfg.duration_s {
        scenario.duration_s = d;
    }
    let placeholder = || Ok(SocketAddr::from(([127, 0, 0, 1], 0)));
    crate::faults::check(
        &deployment(cfg, &scenario, placeholder)?,
        &cfg.faults,
        cfg.processes.is_some(),
    )?;
    let clock = Clock::system();
    let start = clock.now().as_nanos();
    let mut limit =
        Duration::from_secs_f64(scenario.duration_s + scenario.drain_s + 60.0) + cfg.start_after;
    if cfg.app_listen.is_some() {
        // An application's session lasts as long as it likes; the run ends when it closes.
        limit = cfg.app_wait + Duration::from_secs(7 * 24 * 3600);
    }
    let records = match &cfg.processes {
        None => in_process(cfg, &ca, scenario.clone(), clock, limit).await?,
        Some(exe) => processes(cfg, &ca, &scenario, exe, start, limit).await?,
    };
    Ok(LiveRun::new(
        scenario.name.clone(),
        cfg.strategy.clone(),
        cfg.seed,
        start,
        scenario.ues.iter().map(|u| UeId(u.id)).collect(),
        records,
    ))
}

async fn in_process(
    cfg: &DemoConfig,
    ca: &edgeshift_net::pki::Ca,
    scenario: Scenario,
    clock: Clock,
    limit: Duration,
) -> Result<Vec<Record>, DemoError> {
    let any = || Ok(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut dep = deployment(cfg, &scenario, any)?;
    // The RAN agent reports measurements when the deployment has an API.
    dep.control.api = cfg.api;
    // One API for every daemon of this process: it hears the control node and the UEs.
    let feed = match cfg.api {
        Some(addr) => {
            let api =
                crate::daemon::start_api(&dep, &scenario, addr, vec![cfg.api_token.clone()], clock)
                    .await
                    .map_err(DaemonError::from)?;
            announce_api(api.local_addr(), &cfg.api_token, cfg.start_after);
            tokio::time::sleep(cfg.start_after).await;
            Some(api.feed())
        }
        None => None,
    };
    let scenario = Arc::new(scenario);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut daemons = Vec::new();
    let first_ue = scenario.ues.first().map(|u| u.id);
    // Mutual TLS between the daemons, with certificates made for this run.
    let certs = crate::certs::in_memory_with(ca, &dep).map_err(crate::certs::CertsError::from)?;
    let origin = clock.now();
    let make_opts = {
        let (tx, feed, faults) = (tx.clone(), feed.clone(), cfg.faults.clone());
        move |kind: &Kind| Options {
            journal: Journal::channel(tx.clone()),
            clock,
            feed: feed.clone(),
            tls: certs.get(&crate::certs::cert_name(kind)).cloned(),
            faults: faults.clone(),
            fault_origin: origin,
            ..Options::default()
        }
    };
    let mut replicas = Vec::new();
    for kind in kinds(&dep) {
        if let Kind::Replica { region, n } = kind {
            replicas.push((region, n));
            continue;
        }
        let mut opts = make_opts(&kind);
        if matches!(kind, Kind::Ue { id } if Some(id) == first_ue) {
            opts.app_listen = cfg.app_listen;
            opts.app_wait = cfg.app_wait;
        }
        daemons.push(Daemon::bind(&dep, scenario.clone(), kind, opts).await?);
    }
    drop(tx);
    // Ephemeral ports: tell everyone where everyone is before anyone talks.
    let addrs: Vec<(NodeId, SocketAddr)> = daemons
        .iter()
        .flat_map(|d| d.nodes().into_iter().map(move |n| (n, d.local_addr())))
        .collect();
    for d in &daemons {
        for (n, a) in &addrs {
            d.add_peer(*n, *a);
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut running = InProcess {
        slots: BTreeMap::new(),
        dep,
        scenario: scenario.clone(),
        make_opts: Box::new(make_opts),
        addrs,
        stop: stop_rx.clone(),
    };
    for (region, n) in replicas {
        running.start_replica(region, n);
    }
    let mut ues = Vec::new();
    for d in daemons {
        if matches!(d.kind(), Kind::Ue { .. }) {
            ues.push(tokio::spawn(d.run(stop_rx.clone())));
        } else {
            running.start(d);
        }
    }
    let start = clock.now().as_nanos();
    let mut records = Vec::new();
    let collect = async {
        let mut ues_left = ues.len();
        while ues_left > 0 {
            let Some(r) = rx.recv().await else { break };
            if cfg.progress
                && let Some(line) = progress_line(&r, start)
            {
                println!("{line}");
            }
            if matches!(r, Record::Ue(_)) {
                ues_left -= 1;
            }
            records.push(r);
        }
    };
    let injected = Arc::new(std::sync::Mutex::new(Vec::new()));
    let timed_out = {
        let faults = inject::inject(
            cfg.faults.clone(),
            clock,
            origin,
            &mut running,
            injected.clone(),
        );
        let collect = tokio::time::timeout(limit, collect);
        tokio::pin!(collect);
        tokio::select! {
            r = &mut collect => r.is_err(),
            () = faults => collect.await.is_err(),
        }
    };
    stop_tx.send_replace(true);
    for h in ues {
        let _ = h.await;
    }
    for (_, slot) in std::mem::take(&mut running.slots) {
        let _ = slot.handle.await;
    }
    drop(running);
    while let Ok(r) = rx.try_recv() {
        records.push(r);
    }
    records.extend(take(&injected));
    if timed_out {
        // The record still says what happened; the UEs that did not finish show up in it
        // as violations ("never reported the end of its run").
        warn!(?limit, "the UEs did not finish in time");
    }
    Ok(records)
}

/// A local etcd and its data directory, both gone at the end of the run.
struct Guard(edgeshift_etcd::LocalEtcd, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        for i in 0..self.0.endpoints().len() {
            self.0.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn take(v: &std::sync::Mutex<Vec<Record>>) -> Vec<Record> {
    std::mem::take(&mut *v.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// A daemon of the in-process demo, running.
struct Slot {
    kind: Kind,
    addr: SocketAddr,
    /// Tears its sockets down as a crash would.
    crash: Crash,
    handle: tokio::task::JoinHandle<Option<crate::journal::UeSummary>>,
}

enum Crash {
    Transport(edgeshift_net::Transport),
    /// A control replica (its transport changes with each term it leads).
    Replica(watch::Sender<bool>),
}

impl Crash {
    fn now(&self) {
        match self {
            Self::Transport(t) => t.abort(),
            Self::Replica(tx) => {
                tx.send_replace(true);
            }
        }
    }
}

/// The in-process demo's servers (not the UEs), by fault name, and what it takes to start
/// one again.
struct InProcess {
    slots: BTreeMap<String, Slot>,
    dep: Deployment,
    scenario: Arc<Scenario>,
    make_opts: Box<dyn Fn(&Kind) -> Options + Send>,
    addrs: Vec<(NodeId, SocketAddr)>,
    stop: watch::Receiver<bool>,
}

impl InProcess {
    fn start(&mut self, d: Daemon) {
        let kind = d.kind().clone();
        let slot = Slot {
            kind: kind.clone(),
            addr: d.local_addr(),
            crash: Crash::Transport(d.transport()),
            handle: tokio::spawn(d.run(self.stop.clone())),
        };
        self.slots.insert(crate::faults::fault_name(&kind), slot);
    }

    /// Starts replica `n` of region `region`'s control group: it campaigns, and listens
    /// only while it leads.
    fn start_replica(&mut self, region: u32, n: u32) {
        let kind = Kind::Replica { region, n };
        let mut opts = (self.make_opts)(&kind);
        opts.peers.clone_from(&self.addrs);
        let (crash_tx, crash) = watch::channel(false);
        let (dep, scenario, stop) = (self.dep.clone(), self.scenario.clone(), self.stop.clone());
        let handle = tokio::spawn(async move {
            if let Err(e) = crate::replica::run(&dep, scenario, region, n, opts, stop, crash).await
            {
                warn!(region, replica = n, error = %e, "control replica failed");
            }
            None
        });
        let addr = crate::replica::replica_addr(&self.dep, region, n)
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let slot = Slot {
            kind: kind.clone(),
            addr,
            crash: Crash::Replica(crash_tx),
            handle,
        };
        self.slots.insert(crate::faults::fault_name(&kind), slot);
    }
}

impl Daemons for &mut InProcess {
    fn act<'a>(
        &'a mut self,
        name: &'a str,
        action: Action,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + 'a>> {
        Box::pin(async move {
            match action {
                Action::Kill => match self.slots.get(name) {
                    Some(slot) => {
                        // Sockets first, so peers see the connections drop as in a crash.
                        slot.crash.now();
                        if !matches!(slot.crash, Crash::Replica(_)) {
                            slot.handle.abort();
                        }
                        true
                    }
                    None => false,
                },
                Action::Restart => {
                    let Some((kind, addr)) = self.slots.get(name).map(|s| (s.kind.clone(), s.addr))
                    else {
                        return false;
                    };
                    if let Some(old) = self.slots.get(name) {
                        old.crash.now();
                        if !matches!(old.crash, Crash::Replica(_)) {
                            old.handle.abort();
                        }
                    }
                    if let Kind::Replica { region, n } = kind {
                        self.start_replica(region, n);
                        return true;
                    }
                    let mut opts = (self.make_opts)(&kind);
                    opts.listen = Some(addr);
                    match Daemon::bind(&self.dep, self.scenario.clone(), kind, opts).await {
                        Ok(d) => {
                            for (n, a) in &self.addrs {
                                d.add_peer(*n, *a);
                            }
                            self.start(d);
                            true
                        }
                        Err(e) => {
                            warn!(daemon = name, error = %e, "restart failed");
                            false
                        }
                    }
                }
                // Refused before the run (`crate::faults::check`).
                Action::Stop(_) => false,
            }
        })
    }
}

fn announce_api(addr: SocketAddr, token: &str, wait: Duration) {
    println!(
        "MEC APIs (ETSI MEC 021 /amsi/v1, MEC 012 /rni/v2) and dashboard: http://{addr}/?token={token}\n\
         bearer token: {token}\n\
         OpenAPI document: http://{addr}/openapi.json"
    );
    if !wait.is_zero() {
        println!(
            "the UEs start in {:.1} s: subscribe now\n",
            wait.as_secs_f64()
        );
    }
}

/// The deployment as a TOML file for the daemons of a multi-process run.
fn write_deployment(dep: &Deployment, dir: &Path) -> Result<PathBuf, DemoError> {
    use std::fmt::Write as _;
    let mut t = String::new();
    let q = |s: &str| format!("{s:?}");
    // Absolute, so that they do not depend on where the file is written.
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    // A scenario file too (a built-in is a name).
    let scenario = if Path::new(&dep.scenario).is_file() {
        abs(Path::new(&dep.scenario)).display().to_string()
    } else {
        dep.scenario.clone()
    };
    let _ = writeln!(
        t,
        "scenario = {}\nstrategy = {}\nseed = {}",
        q(&scenario),
        q(&dep.strategy),
        dep.seed
    );
    if let Some(s) = &dep.service {
        let _ = writeln!(t, "service = {}", q(s));
    }
    if let Some(m) = &dep.module {
        let _ = writeln!(t, "module = {}", q(&abs(m).display().to_string()));
    }
    if let Some(c) = &dep.module_config {
        let _ = writeln!(t, "module_config = {}", q(&abs(c).display().to_string()));
    }
    if let Some(m) = dep.state_mib {
        let _ = writeln!(t, "state_mib = {m}");
    }
    if let Some(d) = dep.duration_s {
        let _ = writeln!(t, "duration_s = {d:?}");
    }
    if let Some(n) = dep.ues_along_route {
        let _ = writeln!(t, "ues_along_route = {n}");
    }
    if dep.daps {
        let _ = writeln!(t, "daps = true");
    }
    if dep.optimistic {
        let _ = writeln!(t, "optimistic = true");
    }
    let addr = |a: &SocketAddr| q(&a.to_string());
    if let Some(l) = &dep.control.listen {
        let _ = writeln!(t, "\n[control]\nlisten = {}", addr(l));
    }
    if !dep.control.replicas.is_empty() {
        let list = |v: Vec<String>| v.join(", ");
        let _ = writeln!(
            t,
            "\n[control]\nreplicas = [{}]\nstore = \"etcd\"\netcd = [{}]",
            list(dep.control.replicas.iter().map(addr).collect()),
            list(dep.control.etcd.iter().map(|e| q(e)).collect())
        );
    }
    if let Some(a) = &dep.control.api {
        let _ = writeln!(t, "api = {}", addr(a));
        let _ = writeln!(t, "api_tokens = {:?}", dep.control.api_tokens);
    }
    if let Some(db) = &dep.control.db {
        let _ = writeln!(t, "db = {}", q(&db.display().to_string()));
    }
    for e in &dep.edges {
        let _ = writeln!(
            t,
            "\n[[edge]]\nid = {}\nlisten = {}\nwarm_mib = {}",
            e.id,
            addr(&e.listen),
            e.warm_mib
        );
    }
    for r in &dep.rans {
        let _ = writeln!(
            t,
            "\n[[ran]]\nname = {}\ncells = {:?}\nlisten = {}",
            q(&r.name),
            r.cells,
            addr(&r.listen)
        );
    }
    for u in &dep.ues {
        let _ = writeln!(t, "\n[[ue]]\nid = {}\nlisten = {}", u.id, addr(&u.listen));
    }
    for r in &dep.regions {
        let _ = writeln!(t, "\n[[region]]\nid = {}", r.id);
        if let Some(l) = &r.listen {
            let _ = writeln!(t, "listen = {}", addr(l));
        }
        if !r.replicas.is_empty() {
            let list: Vec<String> = r.replicas.iter().map(addr).collect();
            let _ = writeln!(t, "replicas = [{}]", list.join(", "));
        }
    }
    let e = &dep.emulation;
    for (name, l) in [
        ("control", e.control),
        ("edge", e.edge),
        ("ran", e.ran),
        ("ue", e.ue),
    ] {
        let _ = writeln!(
            t,
            "\n[emulation.{name}]\nlatency_ms = {:?}\ngbit = {:?}\nradio_loss = {:?}\nseed = {}",
            l.latency_ms, l.gbit, l.radio_loss, l.seed
        );
    }
    if let Some(tls) = &dep.tls {
        let _ = writeln!(t, "\n[tls]\ninsecure = {}", tls.insecure);
        for (key, p) in [("ca", &tls.ca), ("dir", &tls.dir)] {
            if let Some(p) = p {
                let _ = writeln!(t, "{key} = {}", q(&abs(p).display().to_string()));
            }
        }
    }
    let path = dir.join("deployment.toml");
    std::fs::write(&path, t).map_err(io(format!("writing {}", path.display())))?;
    Ok(path)
}

/// The command line that starts daemon `kind` of the deployment at `config`.
#[must_use]
pub fn daemon_args(kind: &Kind, config: &Path, journal: &Path) -> Vec<String> {
    let mut a = match kind {
        Kind::Control => vec!["control".to_owned()],
        Kind::Replica { region: 0, n } => {
            vec!["control".into(), "--replica".into(), n.to_string()]
        }
        Kind::Replica { region, n } => vec![
            "control".into(),
            "--region".into(),
            region.to_string(),
            "--replica".into(),
            n.to_string(),
        ],
        Kind::Region { id } => vec!["control".into(), "--region".into(), id.to_string()],
        Kind::Edge { id, .. } => vec!["edge".into(), "--id".into(), id.to_string()],
        Kind::Ran { name } => vec!["ran".into(), "--name".into(), name.clone()],
        Kind::Ue { id } => vec!["ue".into(), "--id".into(), id.to_string()],
    };
    a.extend([
        "--config".into(),
        config.display().to_string(),
        "--journal".into(),
        journal.display().to_string(),
    ]);
    a
}

fn journal_name(kind: &Kind) -> String {
    match kind {
        Kind::Control | Kind::Replica { .. } | Kind::Region { .. } => {
            format!("{}.jsonl", crate::faults::fault_name(kind))
        }
        Kind::Edge { id, .. } => format!("edge{id}.jsonl"),
        Kind::Ran { name } => format!("ran-{name}.jsonl"),
        Kind::Ue { id } => format!("ue{id}.jsonl"),
    }
}

async fn processes(
    cfg: &DemoConfig,
    ca: &edgeshift_net::pki::Ca,
    scenario: &Scenario,
    exe: &Path,
    start: u64,
    limit: Duration,
) -> Result<Vec<Record>, DemoError> {
    let dir = std::env::temp_dir().join(format!("edgeshift-demo-{}-{start}", std::process::id()));
    // Only this user may read it: the deployment file holds the API token.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(format!("creating {}", dir.display())))?;
    let mut dep = deployment(cfg, scenario, free_port)?;
    // The parent announces the address, so it picks the port when the user did not.
    let api = match cfg.api {
        Some(a) if a.port() == 0 => Some(SocketAddr::new(a.ip(), free_port()?.port())),
        other => other,
    };
    if let Some(api) = api {
        dep.control.api = Some(api);
        dep.control.api_tokens = vec![cfg.api_token.clone()];
    }
    // Mutual TLS between the daemons, with certificates made for this run.
    let certs = dir.join("certs");
    crate::certs::write_with(ca, &dep, &certs)?;
    dep.tls = Some(crate::config::TlsFiles {
        ca: Some(certs.join("ca.pem")),
        dir: Some(certs),
        insecure: false,
    });
    let config = write_deployment(&dep, &dir)?;
    // Every daemon cuts its own links for the partitions and lossy links.
    let mut fault_args = Vec::new();
    for f in &cfg.faults {
        fault_args.extend(["--fault".to_owned(), f.to_string()]);
    }
    if !cfg.faults.is_empty() {
        fault_args.extend(["--fault-origin".to_owned(), start.to_string()]);
    }
    let spawn = {
        let (exe, config, dir) = (exe.to_owned(), config.clone(), dir.clone());
        let by_name: BTreeMap<String, Kind> = kinds(&dep)
            .into_iter()
            .map(|k| (crate::faults::fault_name(&k), k))
            .collect();
        move |name: &str, restart: u32| -> Option<tokio::process::Child> {
            let kind = by_name.get(name)?;
            let journal = match restart {
                0 => dir.join(journal_name(kind)),
                n => dir.join(format!("{}.restart{n}.jsonl", journal_name(kind))),
            };
            let child = tokio::process::Command::new(&exe)
                .args(daemon_args(kind, &config, &journal))
                .args(&fault_args)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .kill_on_drop(true)
                .spawn();
            match child {
                Ok(c) => {
                    info!(daemon = %kind, pid = c.id(), "started");
                    Some(c)
                }
                Err(e) => {
                    warn!(daemon = %kind, error = %e, "cannot start");
                    None
                }
            }
        }
    };
    let mut children = Children {
        running: BTreeMap::new(),
        spawn: Box::new(spawn),
        restarts: BTreeMap::new(),
    };
    let mut ue_children = Vec::new();
    for kind in kinds(&dep) {
        let name = crate::faults::fault_name(&kind);
        let child = (children.spawn)(&name, 0).ok_or_else(|| {
            io(format!("starting {}", exe.display()))(std::io::Error::other("spawn failed"))
        })?;
        if matches!(kind, Kind::Ue { .. }) {
            ue_children.push(child);
        } else {
            children.running.insert(name, child);
            // Let the servers listen before the UEs come.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if kind == Kind::Control
            && let Some(addr) = api
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            announce_api(addr, &cfg.api_token, cfg.start_after);
            tokio::time::sleep(cfg.start_after).await;
        }
    }
    let injected = Arc::new(std::sync::Mutex::new(Vec::new()));
    let waited = {
        let faults = inject::inject(
            cfg.faults.clone(),
            Clock::system(),
            edgeshift_proto::Instant(start),
            &mut children,
            injected.clone(),
        );
        let wait = tokio::time::timeout(limit, async {
            for c in &mut ue_children {
                let _ = c.wait().await;
            }
        });
        tokio::pin!(wait);
        tokio::select! {
            r = &mut wait => r,
            () = faults => wait.await,
        }
    };
    for c in children.running.values_mut() {
        terminate(c).await;
    }
    if waited.is_err() {
        warn!(
            ?limit,
            "the UEs did not finish in time; their journals are read as they are"
        );
    }
    let mut records = take(&injected);
    let mut journals: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    journals.sort();
    for path in journals {
        match read_journal(&path) {
            Ok(r) => records.extend(r),
            Err(e) => warn!(path = %path.display(), error = %e, "no journal"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(records)
}

/// SIGTERM, then SIGKILL after two seconds.
pub async fn terminate(c: &mut tokio::process::Child) {
    if let Some(pid) = c.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(2), c.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = c.kill().await;
}
