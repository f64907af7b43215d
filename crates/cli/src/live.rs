//! The live subcommands: the daemons and the real-socket demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use edgeshift_live::config::Deployment;
use edgeshift_live::daemon::{Daemon, Kind, Options};
use edgeshift_live::demo::{self, DemoConfig};
use edgeshift_live::journal::Journal;
use tokio::sync::watch;

/// Flags every daemon takes.
#[derive(clap::Args)]
pub(crate) struct Common {
    /// The deployment file (see examples/deployment.toml).
    #[arg(long)]
    config: PathBuf,
    /// Listen here instead of the configured address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve Prometheus metrics here (GET /metrics).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Append journal records (JSON lines) to this file.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Cut this daemon's links as the fault says (partition:A-B@T+D, loss:A-B@T+D:P;
    /// repeatable; the demo passes its --fault flags on).
    #[arg(long = "fault", hide = true)]
    faults: Vec<edgeshift_world::fault::Fault>,
    /// The start of the run the faults' times count from (Unix nanoseconds).
    #[arg(long, hide = true, default_value_t = 0)]
    fault_origin: u64,
}

#[derive(clap::Args)]
pub(crate) struct CertsArgs {
    /// The deployment file.
    #[arg(long)]
    config: PathBuf,
    /// Where to write ca.pem, ca.key and each daemon's NAME.pem and NAME.key (and
    /// etcd.pem, etcd.key for https:// etcd endpoints).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn certs(a: &CertsArgs) -> anyhow::Result<bool> {
    let (dep, _) = Deployment::load(&a.config)?;
    let files = edgeshift_live::certs::write_all(&dep, &a.out)?;
    for f in &files {
        println!("{}", f.display());
    }
    println!(
        "\nAdd to {}:\n\n[tls]\nca = {:?}\ndir = {:?}\n\nKeep ca.key offline; each daemon needs ca.pem and its own .pem and .key.",
        a.config.display(),
        a.out.join("ca.pem").display().to_string(),
        a.out.display().to_string()
    );
    Ok(true)
}

#[derive(clap::Args)]
pub(crate) struct ControlArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    api: ApiArgs,
    /// Registry database (redb) instead of the configured one.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Run as replica N (1-based) of `[control] replicas` (or, with --region, of that
    /// region's replicas), with the registry in etcd: campaigns for the leadership of its
    /// group and acts only while it leads.
    #[arg(long)]
    replica: Option<u32>,
    /// The etcd client URLs this replica uses instead of `[control] etcd`
    /// (comma-separated), e.g. the members of its own site.
    #[arg(long, value_delimiter = ',', requires = "replica")]
    etcd: Vec<String>,
    /// Run the control node of region N (its `[[region]]` in the deployment) instead of
    /// region 0's `[control]`; with --replica, one of its replicas.
    #[arg(long)]
    region: Option<u32>,
}

#[derive(clap::Args)]
pub(crate) struct EdgeArgs {
    #[command(flatten)]
    common: Common,
    /// ME server id.
    #[arg(long)]
    id: u32,
    /// Run the control node inside this daemon (the deployment must say
    /// `[control] on_edge = <id>`).
    #[arg(long)]
    with_control: bool,
    /// Registry database of the hosted control node.
    #[arg(long)]
    db: Option<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
}

/// The MEC APIs of a daemon that hosts the control node.
#[derive(clap::Args)]
pub(crate) struct ApiArgs {
    /// Serve the ETSI MEC 021/012 APIs and the dashboard here (docs/api.md), instead of
    /// the deployment's `[control] api`.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// A bearer token the API accepts, besides the deployment's `[control] api_tokens`
    /// (repeatable; or in EDGESHIFT_API_TOKEN, which `ps` does not show).
    #[arg(
        long = "api-token",
        env = "EDGESHIFT_API_TOKEN",
        hide_env_values = true
    )]
    api_tokens: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct RanArgs {
    #[command(flatten)]
    common: Common,
    /// The RAN agent's name in the deployment.
    #[arg(long)]
    name: String,
}

#[derive(clap::Args)]
pub(crate) struct UeArgs {
    #[command(flatten)]
    common: Common,
    /// UE id.
    #[arg(long)]
    id: u32,
    /// Take the inputs from the application that connects here (docs/app-protocol.md)
    /// instead of generating them; the run ends when it closes its connection.
    #[arg(long)]
    app_listen: Option<SocketAddr>,
    /// Seconds to wait for that application before giving up.
    #[arg(long, default_value_t = 30.0)]
    app_wait: f64,
    /// Write the UE's final check (JSON) here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Scenario (built-in name or file).
    #[arg(long, default_value = "demo")]
    scenario: String,
    /// stay, cold, precopy, shadow or shadow-jit.
    #[arg(long, default_value = "shadow")]
    strategy: String,
    /// mem, counter, arena or armap.
    #[arg(long, default_value = "arena")]
    service: String,
    /// Your own WebAssembly service (.wasm or .wat, guest ABI v1) instead of --service;
    /// checked before anything starts.
    #[arg(long, conflicts_with_all = ["service", "state_mib"])]
    module: Option<PathBuf>,
    /// The module's configuration: the bytes given to its es_init.
    #[arg(long, requires = "module")]
    module_config: Option<PathBuf>,
    /// UE 1 takes its inputs from the application that connects here
    /// (docs/app-protocol.md); it starts moving once connected and the run ends when the
    /// application closes its connection.
    #[arg(long)]
    app_listen: Option<SocketAddr>,
    /// Seconds UE 1 waits for its application before giving up.
    #[arg(long, default_value_t = 30.0)]
    app_wait: f64,
    /// Service state in MiB (default: the scenario's, 16 for the demo).
    #[arg(long)]
    state_mib: Option<u64>,
    /// UEs along the route.
    #[arg(long, default_value_t = 1)]
    ues: u32,
    /// Seconds the UEs send inputs (default: the scenario's).
    #[arg(long)]
    duration: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run each daemon as its own OS process instead of all in this one.
    #[arg(long)]
    processes: bool,
    /// Make-before-break handovers (3GPP DAPS): the UEs keep their source link until
    /// they have joined the target.
    #[arg(long)]
    daps: bool,
    /// Optimistic activation: the cells route to the target at the trigger, and its ready
    /// shadow goes live tentatively until the source's 2004 commits it.
    #[arg(long)]
    optimistic: bool,
    /// Do not emulate the scenario's link latencies and bandwidths.
    #[arg(long)]
    no_emulation: bool,
    /// MiB of WebAssembly memory each edge keeps warm for incoming state (`warm_mib` of
    /// a deployment's [[edge]]): restores up to that size skip the page faults.
    #[arg(long, default_value_t = 0)]
    warm_mib: u64,
    /// Only the final account, no progress lines.
    #[arg(long)]
    quiet: bool,
    /// Write the run's JSON record (as `edgeshift sim --json`) here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the run's HTML report (as `edgeshift sim --html`) here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Serve the ETSI MEC APIs and the dashboard here (docs/api.md).
    #[arg(long)]
    api: Option<SocketAddr>,
    /// The API's bearer token (default: a random one, printed; or in EDGESHIFT_API_TOKEN,
    /// which `ps` does not show).
    #[arg(long, env = "EDGESHIFT_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Seconds between starting the API and the UEs starting to move, so that clients
    /// can subscribe first.
    #[arg(long, requires = "api", default_value_t = 0.0)]
    start_after: f64,
    /// Inject a fault (repeatable): kill:NODE@T (with --processes a real SIGKILL),
    /// restart:NODE@T, stop:NODE@T+D (--processes), partition:A-B@T+D, loss:A-B@T+D:P.
    /// Daemons: control (control1, control2, … with replicas), me1, me2, me3, ran1;
    /// times from the start, like 5.5s.
    #[arg(long = "fault")]
    faults: Vec<edgeshift_world::fault::Fault>,
    /// Run this many control replicas that elect a leader in etcd (needs --store etcd).
    #[arg(long, default_value_t = 1)]
    control_replicas: u32,
    /// Where the control registry lives: redb (one control node) or etcd (a local
    /// three-member etcd the demo starts, or the one of --etcd).
    #[arg(long, default_value = "redb")]
    store: String,
    /// An etcd cluster to use instead of starting one (client URLs, comma-separated).
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A stop signal that turns true on SIGINT or SIGTERM.
fn stop_on_signals() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
        tx.send_replace(true);
    });
    Ok(rx)
}

/// 128 bits from the operating system, as 32 hex digits.
fn random_token() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom for the API token")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Where a UE's application connects, and how long it waits for it.
type App = Option<(SocketAddr, std::time::Duration)>;

fn app_of(addr: Option<SocketAddr>, wait_s: f64) -> anyhow::Result<App> {
    anyhow::ensure!(
        wait_s.is_finite() && (0.0..=86_400.0).contains(&wait_s),
        "--app-wait must be 0 to 86400 s, not {wait_s}"
    );
    Ok(addr.map(|a| (a, std::time::Duration::from_secs_f64(wait_s))))
}

async fn daemon(
    common: Common,
    kind: Kind,
    db: Option<PathBuf>,
    api: Option<ApiArgs>,
) -> anyhow::Result<Daemon> {
    daemon_with_app(common, kind, db, None, api).await
}

async fn daemon_with_app(
    common: Common,
    kind: Kind,
    db: Option<PathBuf>,
    app: App,
    api: Option<ApiArgs>,
) -> anyhow::Result<Daemon> {
    let (dep, scenario) = Deployment::load(&common.config)?;
    let mut opts = options(common)?;
    opts.db = db;
    if let Some((addr, wait)) = app {
        opts.app_listen = Some(addr);
        opts.app_wait = wait;
    }
    if let Some(a) = api {
        opts.api = a.api;
        opts.api_tokens = a.api_tokens;
    }
    Ok(Daemon::bind(&dep, Arc::new(scenario), kind, opts).await?)
}

/// The daemon options every daemon takes from its common flags.
fn options(common: Common) -> anyhow::Result<Options> {
    let journal = match &common.journal {
        Some(p) => Journal::file(p).with_context(|| format!("opening journal {}", p.display()))?,
        None => Journal::off(),
    };
    Ok(Options {
        listen: common.listen,
        metrics: common.metrics,
        journal,
        faults: common.faults,
        fault_origin: edgeshift_proto::Instant(common.fault_origin),
        ..Options::default()
    })
}

fn serve(
    common: Common,
    kind: Kind,
    db: Option<PathBuf>,
    api: Option<ApiArgs>,
) -> anyhow::Result<bool> {
    runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        let d = daemon(common, kind, db, api).await?;
        d.run(stop).await;
        Ok(true)
    })
}

pub(crate) fn control(a: ControlArgs) -> anyhow::Result<bool> {
    let region = a.region.unwrap_or(0);
    if region != 0 {
        anyhow::ensure!(
            a.api.api.is_none() && a.api.api_tokens.is_empty(),
            "--api, --api-token: the MEC APIs are served by region 0's control node \
             ([control]), not by region {region}'s"
        );
    }
    let Some(n) = a.replica else {
        if region != 0 {
            return serve(a.common, Kind::Region { id: region }, a.db, None);
        }
        return serve(a.common, Kind::Control, a.db, Some(a.api));
    };
    runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        let (mut dep, scenario) = Deployment::load(&a.common.config)?;
        if !a.etcd.is_empty() {
            dep.control.etcd = a.etcd;
        }
        anyhow::ensure!(
            dep.control.store == edgeshift_live::config::RegistryKind::Etcd,
            "--replica needs [control] store = \"etcd\" and replicas in {}",
            a.common.config.display()
        );
        let opts = options(a.common)?;
        // A signal resigns (the stop); only SIGKILL leaves the lease to expire.
        let (_crash, crash) = watch::channel(false);
        edgeshift_live::replica::run(&dep, Arc::new(scenario), region, n, opts, stop, crash)
            .await?;
        Ok(true)
    })
}

pub(crate) fn edge(a: EdgeArgs) -> anyhow::Result<bool> {
    let kind = Kind::Edge {
        id: a.id,
        with_control: a.with_control,
    };
    serve(a.common, kind, a.db, Some(a.api))
}

pub(crate) fn ran(a: RanArgs) -> anyhow::Result<bool> {
    serve(a.common, Kind::Ran { name: a.name }, None, None)
}

pub(crate) fn ue(a: UeArgs) -> anyhow::Result<bool> {
    let id = a.id;
    let json = a.json.clone();
    let app = app_of(a.app_listen, a.app_wait)?;
    let summary = runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        let d = daemon_with_app(a.common, Kind::Ue { id }, None, app, None).await?;
        anyhow::Ok(d.run(stop).await)
    })?;
    let Some(s) = summary else {
        anyhow::bail!("ue{id} stopped before its run was over");
    };
    let text = serde_json::to_string_pretty(&s)?;
    println!("{text}");
    if let Some(p) = json {
        std::fs::write(&p, text + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    anyhow::ensure!(
        s.final_state_matches_twin,
        "ue{id}: the live state does not match the never-moved twin"
    );
    Ok(true)
}

pub(crate) fn run_demo(a: DemoArgs) -> anyhow::Result<bool> {
    anyhow::ensure!((1..=64).contains(&a.ues), "--ues must be 1 to 64");
    if let Some(m) = a.state_mib {
        anyhow::ensure!((1..=1024).contains(&m), "--state-mib must be 1 to 1024");
    }
    let processes = if a.processes {
        Some(std::env::current_exe().context("locating this executable")?)
    } else {
        None
    };
    let app = app_of(a.app_listen, a.app_wait)?;
    anyhow::ensure!(
        a.start_after.is_finite() && (0.0..=3600.0).contains(&a.start_after),
        "--start-after must be 0 to 3600 s, not {}",
        a.start_after
    );
    let api_token = match &a.api_token {
        Some(t) => {
            anyhow::ensure!(
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()),
                "--api-token must be printable ASCII without spaces"
            );
            t.clone()
        }
        None => random_token()?,
    };
    let cfg = DemoConfig {
        scenario: a.scenario,
        strategy: a.strategy,
        service: a.service,
        module: a.module,
        module_config: a.module_config,
        app_listen: app.map(|x| x.0),
        app_wait: app.map_or(std::time::Duration::from_secs(30), |x| x.1),
        state_mib: a.state_mib,
        ues: a.ues,
        duration_s: a.duration,
        seed: a.seed,
        processes,
        emulate: !a.no_emulation,
        progress: !a.quiet,
        api: a.api,
        api_token,
        start_after: std::time::Duration::from_secs_f64(a.start_after),
        faults: a.faults,
        daps: a.daps,
        optimistic: a.optimistic,
        control_replicas: a.control_replicas,
        warm_mib: a.warm_mib,
        etcd: match a.store.as_str() {
            "redb" => {
                anyhow::ensure!(a.etcd.is_empty(), "--etcd needs --store etcd");
                None
            }
            "etcd" => Some(a.etcd),
            other => anyhow::bail!("--store {other:?}: expected redb or etcd"),
        },
    };
    cfg.strategy
        .parse::<edgeshift_control::Strategy>()
        .map_err(anyhow::Error::from)?;
    let mut scenario = edgeshift_world::Scenario::load(&cfg.scenario)?;
    scenario.add_ues(a.ues.max(1));
    let controls = scenario.controls().len();
    println!(
        "edgeshift demo: {} cells, {} ME servers, {} and {} UE(s) on 127.0.0.1 ({}), \
         {} service, strategy {}\n",
        scenario.cells.len(),
        scenario.servers.len(),
        match (controls, cfg.etcd.is_some()) {
            (1, false) => "a control node".to_owned(),
            (1, true) => format!("{} control replicas on etcd", cfg.control_replicas),
            (n, false) => format!("{n} control nodes (one per region)"),
            (n, true) => format!(
                "{n} control groups of {} replicas on etcd (one per region)",
                cfg.control_replicas
            ),
        },
        scenario.ues.len(),
        if cfg.processes.is_some() {
            "one process per daemon"
        } else {
            "one process, each role on its own sockets"
        },
        cfg.module.as_ref().map_or_else(
            || cfg.service.clone(),
            |m| format!("module {}", m.display())
        ),
        cfg.strategy
    );
    let started = std::time::Instant::now();
    let run = runtime()?.block_on(demo::run(&cfg))?;
    let wall_s = started.elapsed().as_secs_f64();
    let report = run.report();
    println!("\n{}", run.render(3));
    println!(
        "handovers {} | relocations {} | added interruption p50 {:.1} ms, max {:.1} ms | \
         longest wait for an answer {:.1} ms | shadow {:.1} MiB, {:.1} shadow-seconds | \
         final state matches twin: {}",
        report.handovers,
        report.relocations,
        report.added_interruption_ms.p50,
        report.added_interruption_ms.max,
        report.longest_answer_wait_ms,
        report.shadow_bytes as f64 / f64::from(1u32 << 20),
        report.shadow_seconds,
        report.final_state_matches_twin
    );
    if let Some(path) = &a.json {
        crate::write_json(path, &report)?;
    }
    if let Some(path) = &a.html {
        if let Some(d) = cfg.duration_s {
            scenario.duration_s = d;
        }
        if let Some(m) = cfg.state_mib {
            scenario.service.state_bytes = m << 20;
        }
        let servers = scenario
            .servers
            .iter()
            .map(|s| edgeshift_proto::ServerId(s.id));
        let run = edgeshift_sim::city::WorldRun {
            report: report.clone(),
            loads: run.loads(servers),
            wall_s,
        };
        let label = format!("live demo: {} ({})", cfg.scenario, cfg.strategy);
        crate::write_html(path, label, cfg.seed, scenario, vec![run])?;
    }
    for v in &report.violations {
        println!("  violation: {}", v.what);
    }
    Ok(report.invariant_violations == 0 && report.final_state_matches_twin)
}
