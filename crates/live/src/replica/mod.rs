//! Replicated control nodes on etcd (`[control] store = "etcd"`).
//!
//! Several `edgeshift control --replica N` processes form one control group. They campaign
//! for one leader key in etcd ([`leader`]); the winner loads the registry from etcd
//! ([`registry`]), opens its listener and acts, every registry change a transaction
//! conditioned on its term; the others wait. A leader that loses etcd stops acting before
//! its lease can expire there, closes its connections and campaigns again; a standby that
//! wins carries on from the registry, its route epochs above any of the old term's.
//!
//! A deployment with regions runs one such group per region on the same etcd, each under
//! its own key prefix ([`crate::config::ControlDaemon::region_prefix`]), each electing its
//! own leader: `edgeshift control --region N --replica K`.

pub mod leader;
pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;

use edgeshift_control::ControlNode;
use edgeshift_etcd::Client;
use edgeshift_proto::SyncMode;
use edgeshift_world::Scenario;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{ConfigError, Deployment};
use crate::daemon::{Daemon, DaemonError, Kind, Options};
use crate::journal::Record;
use leader::{Deposed, Elector};
use registry::{EtcdRegistry, EtcdWriter};

/// Route epochs of a term start at `term << TERM_SHIFT`: above every epoch of earlier
/// terms, as long as no service relocates 2³² times in one term.
pub const TERM_SHIFT: u32 = 32;

/// The replicas of region `region`'s control group (region 0: `[control] replicas`).
#[must_use]
pub fn replicas_of(dep: &Deployment, region: u32) -> &[SocketAddr] {
    match region {
        0 => &dep.control.replicas,
        r => dep.region(r).map_or(&[], |d| &d.replicas),
    }
}

/// The address replica `n` (1-based) of region `region`'s control group listens at while
/// it leads.
///
/// # Errors
/// No such replica.
pub fn replica_addr(dep: &Deployment, region: u32, n: u32) -> Result<SocketAddr, DaemonError> {
    let replicas = replicas_of(dep, region);
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| replicas.get(i).copied())
        .ok_or_else(|| {
            let list = match region {
                0 => "[control] replicas".to_owned(),
                r => format!("[[region]] id = {r}'s replicas"),
            };
            DaemonError::NotDeployed(format!(
                "{} ({list} has {})",
                Kind::Replica { region, n },
                replicas.len()
            ))
        })
}

/// The etcd client of replica `kind`: over TLS with its control node's certificate when
/// the endpoints are `https://`.
fn etcd_client(dep: &Deployment, kind: &Kind, opts: &Options) -> Result<Client, DaemonError> {
    let urls = &dep.control.etcd;
    let bad = |e: String| DaemonError::Config(ConfigError::Invalid(format!("[control] etcd: {e}")));
    if !urls.iter().any(|u| u.starts_with("https://")) {
        return Client::new(urls).map_err(|e| bad(e.to_string()));
    }
    let tls = crate::daemon::tls_of(dep, kind, opts.tls.clone())?.ok_or_else(|| {
        bad("https:// needs [tls] certificates (insecure = true has none)".into())
    })?;
    Client::with_tls(urls, tls.client_config()).map_err(|e| bad(e.to_string()))
}

/// Runs replica `n` of region `region`'s control group until `stop` turns true (it then resigns, so a standby need
/// not wait for its lease) or `crash` does (it drops everything at once, as a killed
/// process would, for the in-process demo): campaigns, leads while it can, and
/// campaigns again after stepping down. It journals `Leading` and `SteppedDown` events.
///
/// # Errors
/// A deployment without etcd, an unknown replica, or a listener that cannot be opened.
pub async fn run(
    dep: &Deployment,
    scenario: Arc<Scenario>,
    region: u32,
    n: u32,
    opts: Options,
    mut stop: watch::Receiver<bool>,
    mut crash: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let kind = Kind::Replica { region, n };
    let addr = opts
        .listen
        .map_or_else(|| replica_addr(dep, region, n), Ok)?;
    let etcd = Arc::new(etcd_client(dep, &kind, &opts)?);
    let prefix = dep.control.region_prefix(region);
    let name = crate::faults::fault_name(&kind);
    let elector = Elector::new(
        etcd.clone(),
        &prefix,
        format!("{name}@{addr}"),
        dep.control.lease(),
    );
    let cfg = scenario.region_control_config(
        edgeshift_proto::RegionId(region),
        dep.strategy()?,
        SyncMode::Replay,
    );
    let event = |what: String| {
        opts.journal.record(Record::Event {
            at: opts.clock.now().as_nanos(),
            node: name.clone(),
            what,
        });
    };
    // At startup the lower-numbered replicas go first, so that replica 1 usually leads.
    let head_start = dep.control.lease() / 4 * (n.saturating_sub(1));
    tokio::select! {
        () = tokio::time::sleep(head_start) => {}
        _ = stop.wait_for(|s| *s) => return Ok(()),
        _ = crash.wait_for(|c| *c) => return Ok(()),
    }
    loop {
        let term = tokio::select! {
            t = elector.campaign(&mut stop) => t,
            _ = crash.wait_for(|c| *c) => None,
        };
        let Some(mut term) = term else {
            return Ok(());
        };
        let (registry, snap) =
            match EtcdRegistry::open(etcd.clone(), &prefix, elector.key(), term.revision).await {
                Ok(r) => r,
                Err(e) => {
                    warn!(replica = n, error = %e, "cannot read the registry; stepping down");
                    elector.resign(&term).await;
                    continue;
                }
            };
        let now = opts.clock.now();
        let mut control = match snap {
            Some(s) => {
                info!(
                    replica = n,
                    services = s.services(),
                    term = term.revision,
                    "registry restored from etcd"
                );
                ControlNode::restore(cfg.clone(), s, now)
            }
            None => ControlNode::new(cfg.clone(), now),
        };
        let floor = u64::try_from(term.revision).unwrap_or(0) << TERM_SHIFT;
        control.raise_epochs(floor);
        let (deposed_tx, mut deposed_rx) = watch::channel(false);
        let writer = EtcdWriter::spawn(registry, deposed_tx);
        let mut o = opts.clone();
        o.listen = Some(addr);
        let mut daemon = match Daemon::bind(dep, scenario.clone(), kind.clone(), o).await {
            Ok(d) => d,
            Err(e) => {
                elector.resign(&term).await;
                return Err(e);
            }
        };
        daemon.lead(control, writer);
        event(format!(
            "Leading {{ replica: {n}, term: {} }}",
            term.revision
        ));
        let transport = daemon.transport();
        let (host_stop, host_rx) = watch::channel(false);
        let host = tokio::spawn(daemon.run(host_rx));
        let mut hold_stop = stop.clone();
        let mut crashed = false;
        let why = tokio::select! {
            why = elector.hold(&mut term, &mut hold_stop) => why,
            _ = deposed_rx.wait_for(|d| *d) => Deposed::Expired,
            _ = crash.wait_for(|c| *c) => {
                crashed = true;
                Deposed::Stopped
            }
        };
        // Stop acting at once: drop every connection and the listener, so that peers look
        // for the next leader, then let the host go.
        transport.abort();
        let _ = host_stop.send(true);
        if crashed {
            host.abort();
            return Ok(());
        }
        let _ = host.await;
        if matches!(why, Deposed::Stopped) {
            elector.resign(&term).await;
            return Ok(());
        }
        warn!(replica = n, term = term.revision, reason = %why, "stepped down");
        event(format!(
            "SteppedDown {{ replica: {n}, term: {}, reason: {why:?} }}",
            term.revision
        ));
    }
}
