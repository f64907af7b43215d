//! Two regions, each with its own control node, driven by hand: the handoff of a service
//! whose user crosses the border, the relay of what reaches the region it left, and the
//! liveness of servers shared between the regions.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeshift_control::{ControlConfig, ControlEvent, ControlNode, Strategy};
use edgeshift_proto::*;

const R0: NodeId = NodeId::Control(RegionId(0));
const R1: NodeId = NodeId::Control(RegionId(1));

/// Cells 1, 2 on servers 1, 2 in region 0; cells 3, 4 on servers 3, 4 in region 1.
fn config(region: u32) -> ControlConfig {
    let topology = (1..=4).map(|i| (CellId(i), ServerId(i))).collect();
    let mut cfg = ControlConfig::new(Strategy::Shadow, topology);
    cfg.region = RegionId(region);
    cfg.regions = (1..=4)
        .map(|i| (CellId(i), RegionId(u32::from(i > 2))))
        .collect();
    cfg.server_timeout = Some(Duration::from_millis(1500));
    cfg
}

fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

/// 1005: `ue` hands over from `source` to `target`, announced for `at_ms`.
fn execution(ue: u32, source: u32, target: u32, at_ms: u64) -> HandoverExecution {
    HandoverExecution {
        ue: UeId(ue),
        source: CellId(source),
        target: CellId(target),
        timing: Timing::at(ms(at_ms)),
    }
}

/// 1002 from cell 2: ue1 likely to cell 3 at `eta_ms`.
fn towards_cell_3(eta_ms: u64) -> HandoverPrediction {
    HandoverPrediction {
        ue: UeId(1),
        source: CellId(2),
        candidates: vec![Candidate {
            cell: CellId(3),
            likelihood: 0.9,
        }],
        timing: Some(Timing::at(ms(eta_ms))),
    }
}

/// 3032: svc1's shadow at server 3 is ready.
fn ready_at_3(seq: u64) -> ShadowReady {
    ShadowReady {
        service: ServiceId(1),
        server: ServerId(3),
        seq,
        adoption: false,
    }
}

/// 3030: `service` for `ue` in `cell`.
fn deploy(service: u32, ue: u32, cell: u32) -> Deploy {
    Deploy {
        service: ServiceId(service),
        ue: UeId(ue),
        cell: CellId(cell),
        spec: ServiceSpec {
            code: CodeRef::Hash(1),
            config: vec![],
            latency_budget_ms: 0,
        },
    }
}

struct Pair {
    r0: ControlNode,
    r1: ControlNode,
    events: Vec<(NodeId, ControlEvent)>,
    /// Every control-to-control message: from, to, message.
    log: Vec<(NodeId, NodeId, Message)>,
}

impl Pair {
    /// Both nodes, with svc1 of ue1 deployed in cell 2 (server 2, region 0).
    fn new() -> Self {
        let mut p = Self {
            r0: ControlNode::new(config(0), Instant::ZERO),
            r1: ControlNode::new(config(1), Instant::ZERO),
            events: Vec::new(),
            log: Vec::new(),
        };
        // Sent to the wrong region's node on purpose: it passes it on.
        let out = p.send(ms(0), UeId(1).into(), R1, deploy(1, 1, 2).into());
        assert!(
            out.iter()
                .any(|t| t.to == ServerId(2).into() && t.msg.type_code() == 3031)
        );
        assert!(p.r0.service(ServiceId(1)).is_some());
        assert!(p.r1.service(ServiceId(1)).is_none());
        p
    }

    fn node(&mut self, id: NodeId) -> &mut ControlNode {
        if id == R0 { &mut self.r0 } else { &mut self.r1 }
    }

    /// Delivers one message and then every control-to-control message it causes, in
    /// order; returns what went to other nodes.
    fn send(&mut self, now: Instant, from: NodeId, to: NodeId, msg: Message) -> Vec<Transmit> {
        let mut queue = vec![(from, to, msg)];
        let mut out = Vec::new();
        while !queue.is_empty() {
            let (from, to, msg) = queue.remove(0);
            let n = self.node(to);
            n.handle_message(now, from, msg);
            let sent: Vec<Transmit> = std::iter::from_fn(|| n.poll_transmit()).collect();
            let events: Vec<ControlEvent> = std::iter::from_fn(|| n.poll_event()).collect();
            self.events.extend(events.into_iter().map(|e| (to, e)));
            for t in sent {
                if t.to.is_control() {
                    self.log.push((to, t.to, t.msg.clone()));
                    queue.push((to, t.to, t.msg));
                } else {
                    out.push(t);
                }
            }
        }
        out
    }

    /// Runs `id`'s timers due at `now`, delivering control-to-control messages.
    fn tick(&mut self, now: Instant, id: NodeId) -> Vec<Transmit> {
        let n = self.node(id);
        n.handle_timeout(now);
        let sent: Vec<Transmit> = std::iter::from_fn(|| n.poll_transmit()).collect();
        let mut out = Vec::new();
        for t in sent {
            if t.to.is_control() {
                out.extend(self.send(now, id, t.to, t.msg));
            } else {
                out.push(t);
            }
        }
        out
    }
}

fn relocates(out: &[Transmit]) -> Vec<(NodeId, u64)> {
    out.iter()
        .filter_map(|t| match &t.msg {
            Message::Relocate(Relocate {
                action: RelocateAction::Relocate { epoch, .. },
                ..
            }) => Some((t.to, *epoch)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_handover_across_the_border_hands_the_service_over_with_its_relocation() {
    let mut p = Pair::new();
    // Region 0 prepares a shadow at server 3, in region 1.
    let out = p.send(ms(1000), CellId(2).into(), R0, towards_cell_3(2000).into());
    assert!(
        out.iter()
            .any(|t| t.to == ServerId(3).into() && t.msg.type_code() == 1003)
    );
    p.send(ms(1500), ServerId(3).into(), R0, ready_at_3(10).into());
    // The 1005 to cell 3: the entry goes to region 1 with the scheduled relocation.
    let out = p.send(
        ms(1900),
        CellId(2).into(),
        R0,
        execution(1, 2, 3, 2000).into(),
    );
    assert!(relocates(&out).is_empty(), "not before the announced time");
    assert!(p.r0.service(ServiceId(1)).is_none());
    let e =
        p.r1.service(ServiceId(1))
            .expect("region 1 holds the service");
    assert_eq!((e.host, e.cell), (ServerId(2), CellId(3)));
    assert!(p.events.iter().any(|(n, e)| *n == R1
        && matches!(
            e,
            ControlEvent::ServiceAdopted {
                from: RegionId(0),
                ..
            }
        )));
    // Region 1 sends the 1006 at the announced time, to the source in region 0 too.
    assert_eq!(p.r1.poll_timeout(), Some(ms(2000)));
    let out = p.tick(ms(2000), R1);
    let rel = relocates(&out);
    assert_eq!(rel.len(), 2);
    assert!(rel.contains(&(ServerId(2).into(), 2)) && rel.contains(&(ServerId(3).into(), 2)));
    // A 3033 that reaches region 0 (a server that last heard from it) is passed on with
    // its sender, and completes the relocation there.
    let done = RelocationDone {
        service: ServiceId(1),
        from: ServerId(2),
        to: ServerId(3),
        ok: true,
        epoch: 2,
    };
    let out = p.send(ms(2050), ServerId(3).into(), R0, done.into());
    assert!(
        out.iter()
            .any(|t| t.to == CellId(3).into() && t.msg.type_code() == 3020)
    );
    let e = p.r1.service(ServiceId(1)).expect("still region 1's");
    assert_eq!((e.host, e.epoch), (ServerId(3), 2));
    assert!(p.events.iter().any(|(n, e)| *n == R1
        && matches!(
            e,
            ControlEvent::RelocationCompleted {
                to: ServerId(3),
                ..
            }
        )));
    // The handoff was acknowledged: region 0 sends nothing more.
    assert!(p.tick(ms(5000), R0).is_empty());
}

#[test]
fn what_reaches_the_new_region_before_the_service_waits_for_it() {
    let mut p = Pair::new();
    // Cell 3 asks for the route before region 0's 1005 arrives (it is held)…
    let query = RouteQuery {
        ue: UeId(1),
        cell: CellId(3),
    };
    let out = p.send(ms(100), CellId(3).into(), R1, query.into());
    assert!(out.is_empty());
    // …and answered when the service arrives.
    let out = p.send(
        ms(120),
        CellId(2).into(),
        R0,
        execution(1, 2, 3, 120).into(),
    );
    assert!(
        out.iter()
            .any(|t| t.to == CellId(3).into() && t.msg.type_code() == 3020),
        "{out:?}"
    );
}

#[test]
fn a_stale_handoff_is_acknowledged_and_ignored() {
    let mut p = Pair::new();
    let exec = |source: u32, target: u32| execution(1, source, target, 0);
    // Across and back: region 0 holds it again, at generation 2.
    p.send(ms(100), CellId(2).into(), R0, exec(2, 3).into());
    p.send(ms(200), CellId(3).into(), R1, exec(3, 2).into());
    assert!(p.r0.service(ServiceId(1)).is_some());
    assert!(p.r1.service(ServiceId(1)).is_none());
    // The first handoff again (a retransmission that took long): acknowledged, ignored.
    let old = p
        .log
        .iter()
        .find_map(|(_, _, m)| match m {
            Message::ServiceHandoff(h) if h.generation == 1 => Some(h.clone()),
            _ => None,
        })
        .expect("a 3050");
    p.r1.handle_message(ms(300), R0, old.into());
    let acks: Vec<Transmit> = std::iter::from_fn(|| p.r1.poll_transmit()).collect();
    assert!(
        p.r1.service(ServiceId(1)).is_none(),
        "it left region 1 later"
    );
    assert!(
        acks.iter()
            .any(|t| matches!(&t.msg, Message::HandoffAck(a) if a.generation == 1))
    );
}

/// Server 2's heartbeat number `seq`, holding nothing.
fn heartbeat_of_2(seq: u64) -> Heartbeat {
    Heartbeat {
        server: ServerId(2),
        seq,
        incarnation: 1,
        live: Vec::new(),
        shadows: Vec::new(),
    }
}

/// svc1 (region 1's since its UE's handover was announced) is hosted at server 2 (region
/// 0) with a ready shadow at server 3 (region 1); server 2 falls silent, region 0 declares
/// it dead and tells region 1, which promotes the shadow. Returns the promotion's epoch.
fn promote_at_3_when_server_2_dies(p: &mut Pair) -> u64 {
    // A ready shadow at server 3 (region 1) of svc1, hosted at server 2 (region 0).
    p.send(ms(100), CellId(2).into(), R0, towards_cell_3(10_000).into());
    p.send(ms(200), ServerId(3).into(), R0, ready_at_3(1).into());
    // The handover to cell 3 is announced for much later: region 1 holds the service,
    // still hosted at server 2, until then.
    p.send(
        ms(300),
        CellId(2).into(),
        R0,
        execution(1, 2, 3, 10_000).into(),
    );
    let e = p.r1.service(ServiceId(1)).expect("region 1's now");
    assert_eq!(e.host, ServerId(2));
    // Server 2 heartbeats region 0, then falls silent: region 0 declares it dead and
    // tells region 1, which promotes the shadow at server 3.
    let hb = heartbeat_of_2(1);
    p.send(ms(400), ServerId(2).into(), R0, hb.into());
    let out = p.tick(ms(1900), R0);
    let promote = out.iter().find_map(|t| match &t.msg {
        Message::Relocate(r) if t.to == ServerId(3).into() => match r.action {
            RelocateAction::Promote { epoch } => Some(epoch),
            _ => None,
        },
        _ => None,
    });
    promote.unwrap_or_else(|| panic!("no promotion at server 3: {out:?}"))
}

#[test]
fn a_dead_server_of_another_region_fails_the_service_over_and_is_released_when_back() {
    let mut p = Pair::new();
    promote_at_3_when_server_2_dies(&mut p);
    // Server 2 comes back from a partition: region 0 releases its old instance first,
    // then answers the heartbeat.
    let hb = heartbeat_of_2(2);
    let out = p.send(ms(3000), ServerId(2).into(), R0, hb.into());
    let codes: Vec<u16> = out
        .iter()
        .filter(|t| t.to == ServerId(2).into())
        .map(|t| t.msg.type_code())
        .collect();
    assert_eq!(codes, [1006, 3007], "{out:?}");
    assert!(matches!(&out[0].msg, Message::Relocate(r)
        if matches!(r.action, RelocateAction::Release { host: ServerId(3), .. })));
}

#[test]
fn a_failed_promotion_leaves_the_service_to_its_old_host_when_back() {
    let mut p = Pair::new();
    let epoch = promote_at_3_when_server_2_dies(&mut p);
    // The shadow was not ready after all: nothing else holds the service.
    let done = RelocationDone {
        service: ServiceId(1),
        from: ServerId(2),
        to: ServerId(3),
        ok: false,
        epoch,
    };
    p.send(ms(2000), ServerId(3).into(), R1, done.into());
    assert!(
        p.events
            .iter()
            .any(|(_, e)| matches!(e, ControlEvent::ServiceLost { .. })),
        "{:?}",
        p.events
    );
    // Back, server 2 serves on: the release the promotion queued is withdrawn, and a 1006
    // it may still hold is called off, before its heartbeat is answered.
    let hb = heartbeat_of_2(2);
    let out = p.send(ms(3000), ServerId(2).into(), R0, hb.into());
    let to_2: Vec<&Message> = out
        .iter()
        .filter(|t| t.to == ServerId(2).into())
        .map(|t| &t.msg)
        .collect();
    assert!(
        matches!(to_2.as_slice(), [Message::Relocate(r), Message::HeartbeatAck(_)]
            if matches!(r.action, RelocateAction::Resume { .. })),
        "{out:?}"
    );
}

#[test]
fn one_region_hands_nothing_over() {
    let topology: BTreeMap<CellId, ServerId> = (1..=2).map(|i| (CellId(i), ServerId(i))).collect();
    let mut n = ControlNode::new(
        ControlConfig::new(Strategy::Shadow, topology),
        Instant::ZERO,
    );
    assert_eq!(Role::id(&n), NodeId::CONTROL);
    // A route query for a UE nobody deployed is dropped, not held for a handoff.
    n.handle_message(
        ms(1),
        CellId(1).into(),
        RouteQuery {
            ue: UeId(9),
            cell: CellId(1),
        }
        .into(),
    );
    assert!(n.poll_transmit().is_none());
}

#[test]
fn a_restarted_node_sends_an_unacknowledged_handoff_again_and_still_relays() {
    let mut p = Pair::new();
    // The 1005 into region 1; the 3050 is lost with the node that sent it.
    p.r0.handle_message(ms(100), CellId(2).into(), execution(1, 2, 3, 100).into());
    let lost: Vec<Transmit> = std::iter::from_fn(|| p.r0.poll_transmit()).collect();
    assert!(lost.iter().any(|t| t.to == R1 && t.msg.type_code() == 3050));
    let bytes = p.r0.snapshot().to_bytes().expect("encodes");
    let snap = edgeshift_control::ControlSnapshot::from_bytes(&bytes).expect("decodes");
    p.r0 = ControlNode::restore(config(0), snap, ms(300));
    // The restored node sends it again at once, and region 1 takes the service.
    p.tick(ms(300), R0);
    assert!(p.r0.service(ServiceId(1)).is_none());
    assert!(p.r1.service(ServiceId(1)).is_some(), "region 1 holds it");
    // What still reaches region 0 about it goes on to region 1.
    let done = RelocationDone {
        service: ServiceId(1),
        from: ServerId(2),
        to: ServerId(3),
        ok: true,
        epoch: 2,
    };
    p.send(ms(400), ServerId(3).into(), R0, done.into());
    assert!(p.log.iter().any(|(from, to, m)| *from == R0
        && *to == R1
        && matches!(m, Message::Relayed(r) if r.origin == NodeId::Server(ServerId(3)))));
}

#[test]
fn reports_of_unknown_ues_wait_in_a_bounded_hold() {
    let mut p = Pair::new();
    let query = |ue: u32| RouteQuery {
        ue: UeId(ue),
        cell: CellId(3),
    };
    // Cell 3 reports 4,096 UEs nobody hands over: they fill the hold…
    for ue in 1000..5096 {
        p.send(ms(0), CellId(3).into(), R1, query(ue).into());
    }
    // …so a report of ue1 a second later is not kept…
    p.send(ms(1000), CellId(3).into(), R1, query(1).into());
    let out = p.send(
        ms(1100),
        CellId(2).into(),
        R0,
        execution(1, 2, 3, 60_000).into(),
    );
    assert!(
        !out.iter()
            .any(|t| t.to == CellId(3).into() && t.msg.type_code() == 3020),
        "{out:?}"
    );
    // …but once the hold's 5 s are over, the old reports go and new ones wait again.
    p.send(ms(6900), UeId(2).into(), R0, deploy(2, 2, 2).into());
    p.send(ms(7000), CellId(3).into(), R1, query(2).into());
    let out = p.send(
        ms(7100),
        CellId(2).into(),
        R0,
        execution(2, 2, 3, 60_000).into(),
    );
    assert!(
        out.iter()
            .any(|t| t.to == CellId(3).into() && t.msg.type_code() == 3020),
        "{out:?}"
    );
}
