//! The demo's crash-like faults, done by the launcher at their time: `kill` (a child
//! process gets SIGKILL; a daemon in this process has its sockets torn down and its task
//! aborted), `restart` (the daemon starts afresh on the same address), `stop` (SIGSTOP,
//! then SIGCONT). Partitions and lossy links are cut inside the daemons (see
//! [`crate::faults`]). Each fault done is journaled as a `Fault` event, and a killed ME
//! server as [`Observation::Crashed`], so that the record knows it stopped serving.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edgeshift_net::Clock;
use edgeshift_proto::{Instant, NodeId, ServerId};
use edgeshift_record::Observation;
use edgeshift_world::fault::{Fault, FaultKind};
use tracing::{info, warn};

use crate::journal::Record;

/// What the launcher does to a daemon.
pub(super) enum Action {
    /// Crash it.
    Kill,
    /// Start it again.
    Restart,
    /// Freeze it for this long.
    Stop(Duration),
}

/// A launcher's hands on its daemons: the in-process demo and the one with child
/// processes each implement it.
pub(super) trait Daemons {
    /// Does `action` to the daemon named `name`; returns false if it could not.
    fn act<'a>(
        &'a mut self,
        name: &'a str,
        action: Action,
    ) -> Pin<Box<dyn Future<Output = bool> + 'a>>;
}

/// The crash-like faults, in time order.
pub(super) fn crash_faults(faults: &[Fault]) -> Vec<Fault> {
    let mut v: Vec<Fault> = faults
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FaultKind::Kill | FaultKind::Restart | FaultKind::Stop { .. }
            )
        })
        .cloned()
        .collect();
    v.sort_by_key(|f| f.at);
    v
}

/// Every fault as a journal event at the time it was done (link faults at their start,
/// done by the daemons themselves).
fn fault_event(at: Instant, f: &Fault) -> Record {
    Record::Event {
        at: at.as_nanos(),
        node: f.node.clone(),
        what: format!("Fault {{ {f} }}"),
    }
}

/// Runs the faults against `daemons` from `origin` on, adding what it did to `out` as it
/// goes (the run may end before the last fault is due).
pub(super) async fn inject(
    faults: Vec<Fault>,
    clock: Clock,
    origin: Instant,
    mut daemons: impl Daemons,
    out: Arc<Mutex<Vec<Record>>>,
) {
    let push = |r: Record| out.lock().unwrap_or_else(PoisonError::into_inner).push(r);
    let mut links: Vec<Fault> = faults
        .iter()
        .filter(|f| matches!(f.kind, FaultKind::Partition { .. } | FaultKind::Loss { .. }))
        .cloned()
        .collect();
    links.sort_by_key(|f| f.at);
    for f in &links {
        push(fault_event(origin + f.at, f));
    }
    for f in crash_faults(&faults) {
        tokio::time::sleep_until(clock.deadline(origin + f.at)).await;
        let action = match f.kind {
            FaultKind::Kill => Action::Kill,
            FaultKind::Restart => Action::Restart,
            FaultKind::Stop { dur } => Action::Stop(dur),
            FaultKind::Partition { .. } | FaultKind::Loss { .. } => continue,
        };
        let at = clock.now();
        if !daemons.act(&f.node, action).await {
            warn!(fault = %f, "could not inject");
            continue;
        }
        info!(fault = %f, "injected");
        push(fault_event(at, &f));
        if matches!(f.kind, FaultKind::Kill)
            && let Some(id) = f.node.strip_prefix("me").and_then(|n| n.parse().ok())
        {
            push(Record::Obs(Observation::Crashed {
                at,
                node: NodeId::Server(ServerId(id)),
            }));
        }
    }
}

/// Starts the daemon named by the first argument, in its `n`th restart (0: the first
/// start).
pub(super) type Spawn = Box<dyn FnMut(&str, u32) -> Option<tokio::process::Child> + Send>;

/// Child processes by daemon name, with how to start each again.
pub(super) struct Children {
    /// Running children.
    pub(super) running: BTreeMap<String, tokio::process::Child>,
    /// The command that starts each daemon (its journal path is changed per restart).
    pub(super) spawn: Spawn,
    /// Restarts so far, per daemon.
    pub(super) restarts: BTreeMap<String, u32>,
}

async fn signal(pid: u32, sig: &str) -> bool {
    tokio::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .await
        .is_ok_and(|s| s.success())
}

impl Daemons for &mut Children {
    fn act<'a>(
        &'a mut self,
        name: &'a str,
        action: Action,
    ) -> Pin<Box<dyn Future<Output = bool> + 'a>> {
        Box::pin(async move {
            match action {
                Action::Kill => match self.running.get_mut(name) {
                    Some(c) => {
                        let ok = c.start_kill().is_ok();
                        let _ = c.wait().await;
                        ok
                    }
                    None => false,
                },
                Action::Restart => {
                    let n = self.restarts.entry(name.to_owned()).or_insert(0);
                    *n += 1;
                    let n = *n;
                    match (self.spawn)(name, n) {
                        Some(c) => {
                            if let Some(mut old) = self.running.insert(name.to_owned(), c) {
                                let _ = old.start_kill();
                            }
                            true
                        }
                        None => false,
                    }
                }
                Action::Stop(dur) => {
                    let Some(pid) = self.running.get(name).and_then(tokio::process::Child::id)
                    else {
                        return false;
                    };
                    if !signal(pid, "-STOP").await {
                        return false;
                    }
                    // Continued on its own, so that later faults keep their times.
                    tokio::spawn(async move {
                        tokio::time::sleep(dur).await;
                        signal(pid, "-CONT").await
                    });
                    true
                }
            }
        })
    }
}
