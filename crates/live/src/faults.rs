//! Fault injection in live runs (`demo --fault`): which daemon a fault names, and the
//! send filter that makes partitions and lossy links inside each daemon's transport.
//!
//! Daemons are named as in fault specs: `control` (or its replicas `control<K>`),
//! `control_r<N>` for region N's (or its replicas `control_r<N>_<K>`), `me<N>`, the RAN
//! agent's name (`ran1` in the demo), `ue<N>`. Crashes, restarts and stops are the launcher's to do
//! (the demo signals its child processes); links are cut by every daemon on its own
//! sends, both ends of a pair alike, counted from the run's common `origin`. A lossy link
//! holds messages up as TCP's retransmissions would, in order; a partition loses them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeshift_net::{Clock, FaultFilter};
use edgeshift_proto::{Instant, NodeId};
use edgeshift_world::fault::{Fault, FaultKind, combined_loss, tcp_delivery};

use crate::config::{ConfigError, Deployment};
use crate::daemon::Kind;

/// A daemon's name in fault specs.
#[must_use]
pub fn fault_name(kind: &Kind) -> String {
    match kind {
        Kind::Control => "control".into(),
        Kind::Replica { region: 0, n } => format!("control{n}"),
        Kind::Replica { region, n } => format!("control_r{region}_{n}"),
        Kind::Region { id } => format!("control_r{id}"),
        Kind::Edge { id, .. } => format!("me{id}"),
        Kind::Ran { name } => name.clone(),
        Kind::Ue { id } => format!("ue{id}"),
    }
}

/// Which daemon hosts each node of the deployment, by fault name.
fn hosts(dep: &Deployment) -> BTreeMap<NodeId, String> {
    crate::certs::daemons(dep)
        .into_iter()
        .flat_map(|(kind, nodes)| {
            let name = fault_name(&kind);
            nodes.into_iter().map(move |n| (n, name.clone()))
        })
        .collect()
}

/// Checks that every fault names daemons of `dep`, and that the crash-like ones can be
/// done (`processes`: the daemons are separate processes). UEs do not crash: their end of
/// run is the record.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the fault.
pub fn check(dep: &Deployment, faults: &[Fault], processes: bool) -> Result<(), ConfigError> {
    let names: Vec<String> = crate::certs::daemons(dep)
        .iter()
        .map(|(k, _)| fault_name(k))
        .collect();
    for f in faults {
        for n in f.nodes() {
            if !names.iter().any(|x| x == n) {
                return Err(ConfigError::Invalid(format!(
                    "fault {f}: no daemon {n:?} (the demo has {})",
                    dedup(&names).join(", ")
                )));
            }
        }
        let crash = matches!(
            f.kind,
            FaultKind::Kill | FaultKind::Restart | FaultKind::Stop { .. }
        );
        if crash && f.node.starts_with("ue") {
            return Err(ConfigError::Invalid(format!(
                "fault {f}: UEs are not killed, restarted or stopped (their end of run is the record)"
            )));
        }
        if matches!(f.kind, FaultKind::Stop { .. }) && !processes {
            return Err(ConfigError::Invalid(format!(
                "fault {f}: stop needs --processes (a daemon in this process cannot be frozen)"
            )));
        }
    }
    Ok(())
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut v = names.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The send filter of the daemons of `dep` for the link faults among `faults` (none if
/// there are none): what happens to a message from a local node to `to` sent at the
/// run's time `clock.now() - origin` ([`edgeshift_world::fault::tcp_delivery`]: lost in
/// a partition, held up by retransmissions on a lossy link).
#[must_use]
pub fn filter(
    dep: &Deployment,
    faults: &[Fault],
    clock: Clock,
    origin: Instant,
) -> Option<FaultFilter> {
    let links: Vec<Fault> = faults
        .iter()
        .filter(|f| matches!(f.kind, FaultKind::Partition { .. } | FaultKind::Loss { .. }))
        .cloned()
        .collect();
    if links.is_empty() {
        return None;
    }
    let hosts = hosts(dep);
    Some(Arc::new(
        move |from: NodeId, to: NodeId, draw: &mut dyn FnMut() -> f64| {
            let (Some(a), Some(b)) = (hosts.get(&from), hosts.get(&to)) else {
                return Some(Duration::ZERO);
            };
            let p_at = |t: Duration| loss_at(&links, a, b, t);
            let t = clock.now().saturating_duration_since(origin);
            tcp_delivery(p_at, t, draw)
        },
    ))
}

/// The packet loss probability the link faults put between daemons `a` and `b` at `t`.
fn loss_at(links: &[Fault], a: &str, b: &str, t: Duration) -> f64 {
    combined_loss(links.iter().filter_map(|f| f.cuts(a, b, t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeshift_proto::ServerId;

    fn dep() -> Deployment {
        let text = r#"
            scenario = "demo"
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
            listen = "127.0.0.1:7010"
            [[ue]]
            id = 1
            listen = "127.0.0.1:7020"
            [tls]
            insecure = true
        "#;
        Deployment::parse(text, std::path::Path::new("."))
            .expect("deployment")
            .0
    }

    #[test]
    fn faults_must_name_daemons_and_be_doable() {
        let d = dep();
        let f = |s: &str| vec![s.parse::<Fault>().expect("spec")];
        assert!(check(&d, &f("kill:me1@1s"), true).is_ok());
        assert!(check(&d, &f("partition:me1-me3@1s+1s"), false).is_ok());
        let e = check(&d, &f("kill:me7@1s"), true).expect_err("no me7");
        assert!(e.to_string().contains("me7"), "{e}");
        assert!(check(&d, &f("kill:ue1@1s"), true).is_err());
        assert!(check(&d, &f("stop:me1@1s+1s"), false).is_err());
    }

    #[test]
    fn a_partition_loses_and_a_lossy_link_holds_up_while_they_last() {
        let d = dep();
        let origin = Instant::from_secs_f64(0.0);
        let faults = vec!["partition:me1-me3@0s+3600s".parse::<Fault>().expect("spec")];
        let f = filter(&d, &faults, Clock::starting_at(origin), origin).expect("a filter");
        let (me1, me3) = (NodeId::Server(ServerId(1)), NodeId::Server(ServerId(3)));
        let never = &mut || 0.0;
        assert_eq!(f(me1, me3, never), None);
        assert_eq!(f(me3, me1, never), None);
        assert_eq!(f(me1, NodeId::CONTROL, never), Some(Duration::ZERO));
        let lossy = vec![
            "loss:me1-control@0s+3600s:0.25"
                .parse::<Fault>()
                .expect("spec"),
        ];
        let l = filter(&d, &lossy, Clock::starting_at(origin), origin).expect("a filter");
        // Lost once (0.1 < 0.25), then through: one retransmission timeout later.
        let mut draws = [0.1, 0.9].into_iter();
        let held = l(NodeId::CONTROL, me1, &mut || draws.next().unwrap_or(0.9));
        assert_eq!(held, Some(edgeshift_world::fault::RTO_MIN));
        assert_eq!(l(me1, me3, never), Some(Duration::ZERO));
        let later = vec!["partition:me1-me3@3600s+1s".parse::<Fault>().expect("spec")];
        let g = filter(&d, &later, Clock::starting_at(origin), origin).expect("a filter");
        assert_eq!(g(me1, me3, never), Some(Duration::ZERO));
    }
}
