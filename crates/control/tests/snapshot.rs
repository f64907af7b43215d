//! The control node's persisted snapshot: the legacy header-less form (v0, a fixture the
//! node wrote before snapshots had versions) restores and carries on, and the current
//! version's bytes stay as released; and the liveness rules a restored node must keep
//! (failover, releases of replaced instances, leases withheld while one still serves).

use std::path::PathBuf;

use edgeshift_control::{ControlConfig, ControlEvent, ControlNode, ControlSnapshot, Strategy};
use edgeshift_proto::*;

fn config() -> ControlConfig {
    let topology = (1..=8)
        .map(|c| (CellId(c), ServerId(c.div_ceil(2))))
        .collect();
    let mut cfg = ControlConfig::new(Strategy::ShadowJit { threshold: 0.3 }, topology);
    cfg.load_threshold = Some(0.8);
    // The fixtures were written when unpredicted handovers always moved cold.
    cfg.reactive = RelocationMode::Cold;
    // ... and when a relocation discarded the other shadows and the old instance.
    cfg.follow_shadows = false;
    cfg
}

fn deploy(n: &mut ControlNode, service: u32, cell: u32, budget_ms: u32, code: CodeRef) {
    let spec = ServiceSpec {
        code,
        config: vec![7, 0, service as u8],
        latency_budget_ms: budget_ms,
    };
    let m = Deploy {
        service: ServiceId(service),
        ue: UeId(100 + service),
        cell: CellId(cell),
        spec,
    };
    n.handle_message(Instant::ZERO, NodeId::CONTROL, m.into());
}

fn predict(
    n: &mut ControlNode,
    now: Instant,
    service: u32,
    source: u32,
    cells: &[(u32, f32)],
    eta: Instant,
) {
    let candidates = cells
        .iter()
        .map(|(c, l)| Candidate {
            cell: CellId(*c),
            likelihood: *l,
        })
        .collect();
    let m = HandoverPrediction {
        ue: UeId(100 + service),
        source: CellId(source),
        candidates,
        // No spread: the fixtures were written when shadow-jit ignored it.
        timing: Some(Timing::at(eta)),
    };
    n.handle_message(now, CellId(source).into(), m.into());
}

fn load(n: &mut ControlNode, now: Instant, server: u32, load: f32, services: &[(u32, u64)]) {
    let m = LoadReport {
        server: ServerId(server),
        load,
        hosted: services.len() as u32,
        services: services.iter().map(|(s, b)| (ServiceId(*s), *b)).collect(),
    };
    n.handle_message(now, ServerId(server).into(), m.into());
}

fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

/// A node with a registry worth persisting: six services, a completed relocation, late
/// shadows planned (services 1, 2 and 3; service 1's 3032 comes early and changes
/// nothing), an announced relocation waiting for its time, a load-balancing move waiting
/// for its shadow, load reports and the load-check timer. The driver never called
/// `handle_timeout` after 1 s, so service 3's plan is overdue in the snapshot.
fn scenario() -> (ControlNode, Vec<Transmit>, Vec<ControlEvent>) {
    let mut n = ControlNode::new(config(), Instant::ZERO);
    let inline = CodeRef::Inline {
        kind: "mem".into(),
        bytes: b"counter".to_vec(),
    };
    deploy(&mut n, 1, 1, 0, inline);
    for (s, cell) in [(2, 3), (3, 5), (4, 2), (5, 7)] {
        deploy(
            &mut n,
            s,
            cell,
            0,
            CodeRef::Hash(0xfeed_0000 + u128::from(s)),
        );
    }
    deploy(&mut n, 6, 8, 20, CodeRef::Hash(0xbeef));
    // Sizes: service 2 is large, so its shadow starts late (shadow-jit).
    load(&mut n, ms(100), 1, 0.2, &[(1, 4096), (4, 10_000)]);
    load(&mut n, ms(100), 2, 0.3, &[(2, 250_000_000)]);
    load(&mut n, ms(100), 3, 0.1, &[(3, 8192)]);
    let crowd: Vec<(u32, u64)> = std::iter::once((6, 65_536))
        .chain((1000..1009).map(|s| (s, 1)))
        .collect();
    load(&mut n, ms(100), 4, 0.9, &[(5, 2048)]);
    load(&mut n, ms(100), 4, 0.9, &crowd);
    // Service 4 moves from server 1 to server 2 (cold: no prediction), and completes.
    let m = HandoverExecution {
        ue: UeId(104),
        source: CellId(2),
        target: CellId(4),
        timing: Timing::at(ms(240)),
    };
    n.handle_message(ms(200), CellId(2).into(), m.into());
    n.handle_timeout(ms(240));
    let done = RelocationDone {
        service: ServiceId(4),
        from: ServerId(1),
        to: ServerId(2),
        ok: true,
        epoch: 2,
    };
    n.handle_message(ms(300), ServerId(2).into(), done.into());
    // Service 1: an early shadow at server 3, ready.
    predict(&mut n, ms(400), 1, 1, &[(5, 0.7), (3, 0.2)], ms(3000));
    let ready = ShadowReady {
        service: ServiceId(1),
        server: ServerId(3),
        seq: 12,
        adoption: false,
    };
    n.handle_message(ms(600), ServerId(3).into(), ready.into());
    // Service 2: 250 MB over 1 Gbit/s is 2 s, plus the margin: planned for 9.7 - 2.3 s.
    predict(&mut n, ms(500), 2, 3, &[(7, 0.8), (1, 0.1)], ms(9700));
    // Service 3: predicted, then the handover is announced for 1.5 s.
    predict(&mut n, ms(700), 3, 5, &[(2, 0.9)], ms(1500));
    let m = HandoverExecution {
        ue: UeId(103),
        source: CellId(5),
        target: CellId(2),
        timing: Timing::at(ms(1500)),
    };
    n.handle_message(ms(1460), CellId(5).into(), m.into());
    // The load check at 1 s moves service 6 off server 4 through a shadow.
    n.handle_timeout(ms(1000));
    let out = std::iter::from_fn(|| n.poll_transmit()).collect();
    let events = std::iter::from_fn(|| n.poll_event()).collect();
    (n, out, events)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn drain(n: &mut ControlNode) -> (Vec<Transmit>, Vec<ControlEvent>) {
    (
        std::iter::from_fn(|| n.poll_transmit()).collect(),
        std::iter::from_fn(|| n.poll_event()).collect(),
    )
}

/// Feeds the same inputs to both nodes until `end` and checks they say the same; returns
/// what they sent.
fn carry_on(
    a: &mut ControlNode,
    b: &mut ControlNode,
    lb_target: ServerId,
) -> Vec<(Instant, Transmit)> {
    let mut sent = Vec::new();
    let mut inputs: Vec<(Instant, NodeId, Message)> = vec![
        (
            ms(1480),
            lb_target.into(),
            ShadowReady {
                service: ServiceId(6),
                server: lb_target,
                seq: 4,
                adoption: false,
            }
            .into(),
        ),
        (
            ms(1600),
            ServerId(1).into(),
            RelocationDone {
                service: ServiceId(3),
                from: ServerId(3),
                to: ServerId(1),
                ok: true,
                epoch: 2,
            }
            .into(),
        ),
    ];
    inputs.reverse();
    let end = ms(20_000);
    // Both last heard of the world at 1.46 s; time never goes back.
    let mut last = ms(1470);
    loop {
        let timer = a.poll_timeout();
        assert_eq!(timer, b.poll_timeout());
        let input = inputs.last().map(|i| i.0);
        let now = match (timer, input) {
            (Some(t), Some(i)) if t <= i => t,
            (_, Some(i)) => i,
            (Some(t), None) if t <= end => t,
            _ => break,
        }
        .max(last);
        last = now;
        if input == Some(now) && timer.is_none_or(|t| t > now) {
            let Some((_, from, msg)) = inputs.pop() else {
                break;
            };
            a.handle_message(now, from, msg.clone());
            b.handle_message(now, from, msg);
        } else {
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        let (out, events) = drain(a);
        assert_eq!((out.clone(), events), drain(b), "at {now}");
        sent.extend(out.into_iter().map(|t| (now, t)));
    }
    sent
}

#[test]
fn a_v0_snapshot_restores_and_the_node_carries_on_as_the_original_would() {
    let (mut original, _, events) = scenario();
    let lb_target = events
        .iter()
        .find_map(|e| match e {
            ControlEvent::LoadBalancing { to, .. } => Some(*to),
            _ => None,
        })
        .expect("the scenario balances load");
    let bytes = std::fs::read(fixture("snapshot-v0.bin")).expect("the v0 fixture");
    let snap = ControlSnapshot::from_bytes(&bytes).expect("v0 decodes");
    assert_eq!(snap.services(), 6);
    let mut restored = ControlNode::restore(config(), snap, ms(1470));
    // The upgraded registry is the one this build keeps for the same history, but for
    // what v0 did not keep (shadow readiness).
    assert_eq!(restored.snapshot(), original.snapshot().as_v1());
    assert_eq!(restored.poll_timeout(), original.poll_timeout());
    let sent = carry_on(&mut original, &mut restored, lb_target);
    // The announced relocation of service 3 (server 3 to server 1) goes out at 1.5 s.
    let relocate = |t: &(Instant, Transmit)| match &t.1.msg {
        Message::Relocate(Relocate {
            service,
            action:
                RelocateAction::Relocate {
                    source,
                    target,
                    mode,
                    epoch,
                },
            timing,
        }) => Some((
            t.0, t.1.to, *service, *source, *target, *mode, *epoch, *timing,
        )),
        _ => None,
    };
    let relocations: Vec<_> = sent.iter().filter_map(relocate).collect();
    let s3 = |to: u32| {
        (
            ms(1500),
            NodeId::Server(ServerId(to)),
            ServiceId(3),
            ServerId(3),
            ServerId(1),
            RelocationMode::Cold,
            2,
            Timing::at(ms(1500)),
        )
    };
    assert!(
        relocations.contains(&s3(3)) && relocations.contains(&s3(1)),
        "{relocations:?}"
    );
    // The load-balancing move goes hot once the target's shadow is ready.
    assert!(
        relocations
            .iter()
            .any(|r| r.0 == ms(1480) && r.2 == ServiceId(6) && r.5 == RelocationMode::Hot),
        "{relocations:?}"
    );
    // The planned shadow of service 2 is requested at 7.4 s.
    assert!(sent.iter().any(|(at, t)| *at == ms(7400)
        && matches!(&t.msg, Message::PrepareShadow(p) if p.service == ServiceId(2))));
}

#[test]
fn the_v1_format_still_reads_as_released() {
    let (n, _, _) = scenario();
    let released = std::fs::read(fixture("snapshot-v1.bin")).expect("the v1 fixture");
    // v1 kept no shadow readiness and no peers: the rest reads as the original.
    assert_eq!(
        ControlSnapshot::from_bytes(&released).ok(),
        Some(n.snapshot().as_v1()),
        "a released v1 snapshot no longer reads the same"
    );
}

#[test]
fn the_v2_format_still_reads_as_released() {
    let (n, _, _) = scenario();
    let released = std::fs::read(fixture("snapshot-v2.bin")).expect("the v2 fixture");
    assert_eq!(
        ControlSnapshot::from_bytes(&released).ok(),
        Some(n.snapshot()),
        "a released v2 snapshot no longer reads the same"
    );
}

#[test]
fn the_v3_format_stays_as_released() {
    let (n, _, _) = scenario();
    let bytes = n.snapshot().to_bytes().expect("encodes");
    let path = fixture("snapshot-v3.bin");
    if std::env::var_os("EDGESHIFT_WRITE_V3_FIXTURE").is_some() {
        std::fs::write(&path, &bytes).expect("writes the fixture");
    }
    let released = std::fs::read(&path).expect("the v3 fixture");
    assert_eq!(
        ControlSnapshot::from_bytes(&released).ok(),
        Some(n.snapshot()),
        "a released v3 snapshot no longer reads the same: add a version instead"
    );
    assert_eq!(
        bytes, released,
        "v3 is released: a new byte form is a new version"
    );
}

/// Four cells with a server each; a server silent for 1.5 s is declared dead.
fn liveness_config() -> ControlConfig {
    let mut cfg = ControlConfig::new(
        Strategy::Shadow,
        (1..=4).map(|c| (CellId(c), ServerId(c))).collect(),
    );
    cfg.server_timeout = Some(std::time::Duration::from_millis(1500));
    cfg
}

fn beat(n: &mut ControlNode, now: Instant, server: u32) {
    let m = Heartbeat {
        server: ServerId(server),
        incarnation: 7,
        seq: now.as_nanos(),
        live: Vec::new(),
        shadows: Vec::new(),
    };
    n.handle_message(now, ServerId(server).into(), m.into());
}

/// All four servers heard, service 1 live at server 1, its shadow at server 2 ready.
fn with_ready_shadow(cfg: &ControlConfig, eta: Instant) -> ControlNode {
    let mut n = ControlNode::new(cfg.clone(), ms(0));
    for s in 1..=4 {
        beat(&mut n, ms(0), s);
    }
    deploy(&mut n, 1, 1, 0, CodeRef::Hash(9));
    predict(&mut n, ms(100), 1, 1, &[(2, 0.9)], eta);
    let ready = ShadowReady {
        service: ServiceId(1),
        server: ServerId(2),
        seq: 3,
        adoption: false,
    };
    n.handle_message(ms(300), ServerId(2).into(), ready.into());
    n
}

/// Every 200 ms from `from` to `to` (ms): the due timers fire, then servers 2 to 4
/// heartbeat (server 1 stays silent). Returns what the node sent and reported.
fn only_server_1_silent(
    n: &mut ControlNode,
    from: u64,
    to: u64,
) -> (Vec<Transmit>, Vec<ControlEvent>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    for t in (from..=to).step_by(200) {
        while let Some(due) = n.poll_timeout().filter(|d| *d <= ms(t)) {
            n.handle_timeout(due);
        }
        for s in 2..=4 {
            beat(n, ms(t), s);
        }
        let (s, e) = drain(n);
        sent.extend(s);
        events.extend(e);
    }
    (sent, events)
}

#[test]
fn a_restored_node_fails_a_server_that_died_meanwhile_over_to_its_ready_shadow() {
    let cfg = liveness_config();
    let n = with_ready_shadow(&cfg, ms(5000));
    let bytes = n.snapshot().to_bytes().expect("encodes");
    // The control node is away for 2 s; server 1, the host, dies meanwhile.
    let snap = ControlSnapshot::from_bytes(&bytes).expect("decodes");
    let mut restored = ControlNode::restore(cfg, snap, ms(2300));
    drain(&mut restored);
    // Server 1 gets three timeouts from the restore (the servers have to find the
    // restored node first).
    let (sent, events) = only_server_1_silent(&mut restored, 2400, 2300 + 3 * 1500 + 200);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::ServerDown { server } if *server == ServerId(1))),
        "{events:?}"
    );
    assert!(
        sent.iter().any(|t| t.to == NodeId::Server(ServerId(2))
            && matches!(
                &t.msg,
                Message::Relocate(Relocate {
                    action: RelocateAction::Promote { .. },
                    ..
                })
            )),
        "{sent:?}"
    );
}

#[test]
fn a_restored_node_still_releases_an_instance_a_failover_replaced() {
    let cfg = liveness_config();
    let mut n = with_ready_shadow(&cfg, ms(9000));
    // Server 1 goes silent (cut off, not dead): its service fails over to server 2.
    let (sent, _) = only_server_1_silent(&mut n, 200, 2000);
    let epoch = sent
        .iter()
        .find_map(|t| match &t.msg {
            Message::Relocate(Relocate {
                action: RelocateAction::Promote { epoch },
                ..
            }) => Some(*epoch),
            _ => None,
        })
        .expect("a promotion");
    let done = RelocationDone {
        service: ServiceId(1),
        from: ServerId(1),
        to: ServerId(2),
        ok: true,
        epoch,
    };
    n.handle_message(ms(2100), ServerId(2).into(), done.into());
    drain(&mut n);
    // The control node restarts (or a standby takes over) before server 1 comes back.
    let snap =
        ControlSnapshot::from_bytes(&n.snapshot().to_bytes().expect("encodes")).expect("decodes");
    let mut restored = ControlNode::restore(cfg, snap, ms(2500));
    drain(&mut restored);
    beat(&mut restored, ms(2600), 1);
    let (sent, _) = drain(&mut restored);
    let to_1: Vec<&Message> = sent
        .iter()
        .filter(|t| t.to == NodeId::Server(ServerId(1)))
        .map(|t| &t.msg)
        .collect();
    assert!(
        matches!(
            to_1.first(),
            Some(Message::Relocate(Relocate {
                action: RelocateAction::Release {
                    host: ServerId(2),
                    ..
                },
                ..
            }))
        ),
        "server 1 must drop its replaced instance before it serves again: {to_1:?}"
    );
    assert!(
        matches!(to_1.last(), Some(Message::HeartbeatAck(_))),
        "{to_1:?}"
    );
}

/// A heartbeat from `server` that says which instances it holds live.
fn beat_live(n: &mut ControlNode, now: Instant, server: u32, live: &[(u32, u64)]) {
    let m = Heartbeat {
        server: ServerId(server),
        incarnation: 7,
        seq: now.as_nanos(),
        live: live
            .iter()
            .map(|&(s, epoch)| Tenure {
                service: ServiceId(s),
                epoch,
            })
            .collect(),
        shadows: Vec::new(),
    };
    n.handle_message(now, ServerId(server).into(), m.into());
}

fn sent_to(sent: &[Transmit], server: u32) -> Vec<&Message> {
    sent.iter()
        .filter(|t| t.to == NodeId::Server(ServerId(server)))
        .map(|t| &t.msg)
        .collect()
}

fn released(msgs: &[&Message]) -> Option<(ServerId, u64)> {
    msgs.iter().find_map(|m| match m {
        Message::Relocate(Relocate {
            action: RelocateAction::Release { host, epoch },
            ..
        }) => Some((*host, *epoch)),
        _ => None,
    })
}

fn acked(msgs: &[&Message]) -> bool {
    msgs.iter().any(|m| matches!(m, Message::HeartbeatAck(_)))
}

#[test]
fn a_server_back_while_its_shadow_is_promoted_gets_no_lease_until_it_lets_go() {
    let cfg = liveness_config();
    let mut n = with_ready_shadow(&cfg, ms(9000));
    let live_epoch = n.service(ServiceId(1)).expect("deployed").epoch;
    // Server 1 falls silent: its shadow at server 2 is promoted (its 3033 not yet in).
    let (sent, _) = only_server_1_silent(&mut n, 200, 2000);
    let promoted = sent.iter().find_map(|t| match &t.msg {
        Message::Relocate(Relocate {
            action: RelocateAction::Promote { epoch },
            ..
        }) => Some(*epoch),
        _ => None,
    });
    let promoted = promoted.expect("a promotion");
    // Server 1 is back still serving before the promotion landed: its instance may be
    // the only one, so it is not released, and gets no lease either.
    beat_live(&mut n, ms(2100), 1, &[(1, live_epoch)]);
    let (sent, _) = drain(&mut n);
    let to_1 = sent_to(&sent, 1);
    assert!(released(&to_1).is_none() && !acked(&to_1), "{to_1:?}");
    // The promotion lands, and whatever release that triggers is lost: each heartbeat
    // that says server 1 still serves is answered with a release naming server 2, never
    // with the lease.
    let done = RelocationDone {
        service: ServiceId(1),
        from: ServerId(1),
        to: ServerId(2),
        ok: true,
        epoch: promoted,
    };
    n.handle_message(ms(2200), ServerId(2).into(), done.into());
    drain(&mut n);
    for t in [2300, 2400] {
        beat_live(&mut n, ms(t), 1, &[(1, live_epoch)]);
        let (sent, _) = drain(&mut n);
        let to_1 = sent_to(&sent, 1);
        assert_eq!(released(&to_1), Some((ServerId(2), promoted)), "{to_1:?}");
        assert!(!acked(&to_1), "{to_1:?}");
    }
    // Once it has let go, its lease runs on.
    beat_live(&mut n, ms(2500), 1, &[]);
    let (sent, _) = drain(&mut n);
    let to_1 = sent_to(&sent, 1);
    assert!(acked(&to_1) && released(&to_1).is_none(), "{to_1:?}");
}

#[test]
fn a_target_live_under_a_called_off_relocation_is_released_to_the_source_that_served_on() {
    let cfg = liveness_config();
    let mut n = with_ready_shadow(&cfg, ms(1000));
    let exec = HandoverExecution {
        ue: UeId(101),
        source: CellId(1),
        target: CellId(2),
        timing: Timing::at(ms(1000)),
    };
    n.handle_message(ms(900), CellId(1).into(), exec.into());
    let mut epoch = None;
    for t in (1000..=1200).step_by(100) {
        while let Some(due) = n.poll_timeout().filter(|d| *d <= ms(t)) {
            n.handle_timeout(due);
        }
        let (sent, _) = drain(&mut n);
        epoch = epoch.or_else(|| {
            sent.iter().find_map(|t| match &t.msg {
                Message::Relocate(Relocate {
                    action: RelocateAction::Relocate { epoch, .. },
                    ..
                }) => Some(*epoch),
                _ => None,
            })
        });
    }
    let epoch = epoch.expect("the 1006 went out");
    // The target went live on the 2004, then fell silent before its 2005 reached the
    // source: declared dead, the relocation is called off and the source resumes.
    for t in (1200..=3400).step_by(200) {
        while let Some(due) = n.poll_timeout().filter(|d| *d <= ms(t)) {
            n.handle_timeout(due);
        }
        for s in [1, 3, 4] {
            beat(&mut n, ms(t), s);
        }
    }
    let (sent, _) = drain(&mut n);
    assert!(
        sent_to(&sent, 1).iter().any(|m| matches!(
            m,
            Message::Relocate(Relocate {
                action: RelocateAction::Resume { .. },
                ..
            })
        )),
        "{sent:?}"
    );
    let resumed = RelocationDone {
        service: ServiceId(1),
        from: ServerId(1),
        to: ServerId(2),
        ok: false,
        epoch,
    };
    n.handle_message(ms(3500), ServerId(1).into(), resumed.into());
    drain(&mut n);
    // Back, it still holds the instance: it is released to the source under a later epoch
    // (its own would not yield), before any answer to its heartbeat.
    beat_live(&mut n, ms(3600), 2, &[(1, epoch)]);
    let (sent, _) = drain(&mut n);
    let to_2 = sent_to(&sent, 2);
    let (host, release) = released(&to_2).expect("a release");
    assert_eq!(host, ServerId(1));
    assert!(release > epoch, "{release} > {epoch}");
    assert!(!acked(&to_2), "{to_2:?}");
}

fn beat_shadows(n: &mut ControlNode, now: Instant, server: u32, shadows: &[u32]) {
    let m = Heartbeat {
        server: ServerId(server),
        incarnation: 7,
        seq: now.as_nanos(),
        live: Vec::new(),
        shadows: shadows.iter().map(|s| ServiceId(*s)).collect(),
    };
    n.handle_message(now, ServerId(server).into(), m.into());
}

fn discarded(msgs: &[&Message]) -> Vec<(ServiceId, Vec<ServerId>)> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Relocate(Relocate {
                service,
                action: RelocateAction::Discard { servers },
                ..
            }) => Some((*service, servers.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_shadow_no_plan_names_is_discarded_at_its_servers_next_heartbeat() {
    let cfg = liveness_config();
    // Service 1 live at server 1, its planned shadow ready at server 2.
    let mut n = with_ready_shadow(&cfg, ms(5000));
    drain(&mut n);
    // Server 2's shadow is the plan's: kept. Server 3 holds one of service 1 (a transfer
    // that arrived after its discard), and one of a service this node does not hold
    // (another region's node may have asked for it): left alone.
    beat_shadows(&mut n, ms(400), 2, &[1]);
    beat_shadows(&mut n, ms(400), 3, &[1, 42]);
    let (sent, _) = drain(&mut n);
    assert!(discarded(&sent_to(&sent, 2)).is_empty(), "{sent:?}");
    assert_eq!(
        discarded(&sent_to(&sent, 3)),
        vec![(ServiceId(1), vec![ServerId(3)])]
    );
    // The host stops syncing server 3; both heartbeats are answered.
    assert_eq!(
        discarded(&sent_to(&sent, 1)),
        vec![(ServiceId(1), vec![ServerId(3)])]
    );
    assert!(acked(&sent_to(&sent, 2)) && acked(&sent_to(&sent, 3)));
}
