//! Role-level tests of the control node's policy.

use edgeshift_control::{ControlConfig, ControlNode, ControlSnapshot, Strategy};
use edgeshift_proto::*;

fn node(strategy: Strategy) -> ControlNode {
    node_with(config(strategy))
}

fn config(strategy: Strategy) -> ControlConfig {
    let topology = [
        (CellId(1), ServerId(1)),
        (CellId(2), ServerId(2)),
        (CellId(3), ServerId(3)),
        (CellId(4), ServerId(1)),
    ]
    .into_iter()
    .collect();
    ControlConfig::new(strategy, topology)
}

fn node_with(cfg: ControlConfig) -> ControlNode {
    let mut n = ControlNode::new(cfg, Instant::ZERO);
    deploy(&mut n, 1);
    drain(&mut n);
    n
}

/// Deploys service `id` for UE `id` in cell 1 (server 1).
fn deploy(n: &mut ControlNode, id: u32) {
    let spec = ServiceSpec {
        code: CodeRef::Hash(1),
        config: vec![],
        latency_budget_ms: 0,
    };
    let m = Deploy {
        service: ServiceId(id),
        ue: UeId(id),
        cell: CellId(1),
        spec,
    };
    n.handle_message(Instant::ZERO, NodeId::CONTROL, m.into());
}

fn drain(n: &mut ControlNode) -> Vec<Transmit> {
    std::iter::from_fn(|| n.poll_transmit()).collect()
}

fn predict(n: &mut ControlNode, now: Instant, cells: &[(u32, f32)], eta: Instant) -> Vec<Transmit> {
    let candidates = cells
        .iter()
        .map(|(c, l)| Candidate {
            cell: CellId(*c),
            likelihood: *l,
        })
        .collect();
    let m = HandoverPrediction {
        ue: UeId(1),
        source: CellId(1),
        candidates,
        timing: Some(Timing::at(eta)),
    };
    n.handle_message(now, CellId(1).into(), m.into());
    drain(n)
}

/// Server 1 reports service 1 at 125 MB: a second over the default 1 Gbit/s.
fn state_of_125_mb(n: &mut ControlNode) {
    let report = LoadReport {
        server: ServerId(1),
        load: 0.1,
        hosted: 1,
        services: vec![(ServiceId(1), 125_000_000)],
    };
    n.handle_message(Instant::ZERO, ServerId(1).into(), report.into());
}

fn execute(
    n: &mut ControlNode,
    now: Instant,
    source: u32,
    target: u32,
    at: Instant,
) -> Vec<Transmit> {
    let m = HandoverExecution {
        ue: UeId(1),
        source: CellId(source),
        target: CellId(target),
        timing: Timing::at(at),
    };
    n.handle_message(now, CellId(source).into(), m.into());
    let mut out = drain(n);
    n.handle_timeout(at);
    out.extend(drain(n));
    out
}

fn to(out: &[Transmit], server: u32, code: u16) -> Vec<&Message> {
    out.iter()
        .filter(|t| t.to == NodeId::Server(ServerId(server)) && t.msg.type_code() == code)
        .map(|t| &t.msg)
        .collect()
}

/// The 1006 relocations (not discards) sent to `server`.
fn relocations_to(out: &[Transmit], server: u32) -> Vec<&Message> {
    to(out, server, 1006)
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                Message::Relocate(Relocate {
                    action: RelocateAction::Relocate { .. },
                    ..
                })
            )
        })
        .collect()
}

#[test]
fn candidates_of_the_source_server_get_no_shadow() {
    let mut n = node(Strategy::Shadow);
    let out = predict(
        &mut n,
        Instant::ZERO,
        &[(4, 0.9)],
        Instant::from_millis(3000),
    );
    assert!(
        out.is_empty(),
        "cell 4 is served by the source server: {out:?}"
    );
    let out = execute(
        &mut n,
        Instant::from_millis(2900),
        1,
        4,
        Instant::from_millis(3000),
    );
    assert!(out.iter().all(|t| t.msg.type_code() != 1006));
    assert_eq!(n.stats().skipped_same_server, 1);
}

#[test]
fn a_target_outside_the_candidates_gets_a_reactive_precopy_and_the_others_are_discarded() {
    let mut n = node(Strategy::Shadow);
    let out = predict(
        &mut n,
        Instant::ZERO,
        &[(2, 0.8)],
        Instant::from_millis(3000),
    );
    assert_eq!(to(&out, 1, 1003).len(), 1);
    assert_eq!(to(&out, 2, 1003).len(), 1);
    let out = execute(
        &mut n,
        Instant::from_millis(2900),
        1,
        3,
        Instant::from_millis(3000),
    );
    // The source also gets the discard, to stop syncing server 2 (a precopy serves on).
    assert!(to(&out, 1, 1006).iter().any(|m| matches!(
        m,
        Message::Relocate(Relocate {
            action: RelocateAction::Discard { servers },
            ..
        }) if servers == &[ServerId(2)]
    )));
    let relocate = relocations_to(&out, 1);
    assert!(matches!(
        relocate.as_slice(),
        [Message::Relocate(Relocate {
            action: RelocateAction::Relocate {
                target: ServerId(3),
                // The source serves while it copies (not stop-and-copy).
                mode: RelocationMode::Precopy,
                ..
            },
            ..
        })]
    ));
    assert_eq!(to(&out, 3, 1006).len(), 1);
    assert!(matches!(
        to(&out, 2, 1006).as_slice(),
        [Message::Relocate(Relocate {
            action: RelocateAction::Discard { .. },
            ..
        })]
    ));
    assert_eq!((n.stats().mispredicted, n.stats().reactive), (1, 1));
}

#[test]
fn relocation_is_triggered_at_the_announced_time_not_before() {
    let mut n = node(Strategy::Shadow);
    predict(
        &mut n,
        Instant::ZERO,
        &[(2, 0.5), (3, 0.4)],
        Instant::from_millis(3000),
    );
    let m = HandoverExecution {
        ue: UeId(1),
        source: CellId(1),
        target: CellId(3),
        timing: Timing::at(Instant::from_millis(3000)),
    };
    n.handle_message(Instant::from_millis(2980), CellId(1).into(), m.into());
    assert!(drain(&mut n).iter().all(|t| t.msg.type_code() != 1006));
    assert_eq!(n.poll_timeout(), Some(Instant::from_millis(3000)));
    n.handle_timeout(Instant::from_millis(2999));
    assert!(drain(&mut n).is_empty());
    n.handle_timeout(Instant::from_millis(3000));
    let out = drain(&mut n);
    assert!(matches!(
        relocations_to(&out, 1).as_slice(),
        [Message::Relocate(Relocate {
            action: RelocateAction::Relocate {
                mode: RelocationMode::Hot,
                ..
            },
            ..
        })]
    ));
}

#[test]
fn shadow_jit_prepares_only_likely_candidates_and_as_late_as_the_link_allows() {
    let mut n = node(Strategy::ShadowJit { threshold: 0.3 });
    state_of_125_mb(&mut n);
    // 125 MB over 1 Gbit/s = 1 s, plus the 300 ms margin: start at 10 - 1.3 = 8.7 s.
    let out = predict(
        &mut n,
        Instant::ZERO,
        &[(2, 0.6), (3, 0.1)],
        Instant::from_millis(10_000),
    );
    assert!(out.is_empty());
    assert_eq!(n.poll_timeout(), Some(Instant::from_millis(8700)));
    n.handle_timeout(Instant::from_millis(8700));
    let out = drain(&mut n);
    assert_eq!(to(&out, 2, 1003).len(), 1);
    assert!(to(&out, 3, 1003).is_empty());
}

#[test]
fn withdrawn_predictions_and_cancelled_handovers_release_shadows_after_the_keep() {
    let mut n = node(Strategy::Shadow);
    let ms = Instant::from_millis;
    predict(&mut n, ms(0), &[(2, 0.5), (3, 0.4)], ms(3000));
    // Withdrawn: the shadows stay 8 s (`shadow_keep`) for a prediction to name them again.
    let out = predict(&mut n, ms(500), &[], Instant::ZERO);
    assert!(out.iter().all(|t| t.msg.type_code() != 1006), "{out:?}");
    assert_eq!(n.poll_timeout(), Some(ms(8500)));
    // Server 2 is named again; 3 is not.
    predict(&mut n, ms(600), &[(2, 0.9)], ms(3000));
    let m = HandoverExecution {
        ue: UeId(1),
        source: CellId(1),
        target: CellId(2),
        timing: Timing::at(ms(3000)),
    };
    n.handle_message(ms(2980), CellId(1).into(), m.into());
    drain(&mut n);
    n.handle_message(
        ms(2990),
        CellId(1).into(),
        HandoverCancel {
            ue: UeId(1),
            source: CellId(1),
            target: CellId(2),
            reason: CancelReason::Rejected,
        }
        .into(),
    );
    // The cancel keeps the shadow at 2 (the UE may try again) but moves nothing.
    assert!(to(&drain(&mut n), 2, 1006).is_empty());
    n.handle_timeout(ms(3000));
    assert!(
        drain(&mut n).iter().all(|t| t.msg.type_code() != 1006),
        "no relocation after the cancel"
    );
    assert_eq!(n.stats().cancelled, 1);
    // 3 goes 8 s after the withdrawal, 2 8 s after the cancel.
    n.handle_timeout(ms(8500));
    let out = drain(&mut n);
    assert_eq!(to(&out, 3, 1006).len(), 1, "{out:?}");
    assert!(to(&out, 2, 1006).is_empty());
    assert_eq!(n.poll_timeout(), Some(ms(10_990)));
    n.handle_timeout(ms(10_990));
    assert_eq!(to(&drain(&mut n), 2, 1006).len(), 1);
}

#[test]
fn ping_pong_is_counted_and_still_relocates() {
    let mut n = node(Strategy::Cold);
    execute(
        &mut n,
        Instant::from_millis(1000),
        1,
        2,
        Instant::from_millis(1020),
    );
    let done = RelocationDone {
        service: ServiceId(1),
        from: ServerId(1),
        to: ServerId(2),
        ok: true,
        epoch: 2,
    };
    n.handle_message(Instant::from_millis(1100), ServerId(2).into(), done.into());
    let routes = drain(&mut n);
    assert!(routes.iter().any(|t| matches!(&t.msg, Message::RouteUpdate(r) if r.route.server == ServerId(2) && r.route.epoch == 2)));
    let out = execute(
        &mut n,
        Instant::from_millis(1500),
        2,
        1,
        Instant::from_millis(1520),
    );
    assert_eq!(n.stats().pingpongs, 1);
    assert_eq!(to(&out, 2, 1006).len(), 1);
    assert_eq!(n.service(ServiceId(1)).map(|e| e.host), Some(ServerId(2)));
}

#[test]
fn a_restored_node_resumes_an_announced_relocation() {
    let mut n = node(Strategy::Shadow);
    predict(
        &mut n,
        Instant::ZERO,
        &[(2, 0.5), (3, 0.4)],
        Instant::from_millis(3000),
    );
    let m = HandoverExecution {
        ue: UeId(1),
        source: CellId(1),
        target: CellId(3),
        timing: Timing::at(Instant::from_millis(3000)),
    };
    n.handle_message(Instant::from_millis(2980), CellId(1).into(), m.into());
    drain(&mut n);
    let bytes = n.snapshot().to_bytes().expect("encodes");
    drop(n);

    let snap = ControlSnapshot::from_bytes(&bytes).expect("decodes");
    assert_eq!(snap.services(), 1);
    let cfg = node(Strategy::Shadow).config().clone();
    // Restarted after the announced time: the trigger fires at once.
    let mut n = ControlNode::restore(cfg, snap, Instant::from_millis(3500));
    assert_eq!(n.service(ServiceId(1)).map(|e| e.host), Some(ServerId(1)));
    assert_eq!(n.poll_timeout(), Some(Instant::from_millis(3000)));
    n.handle_timeout(Instant::from_millis(3500));
    let out = drain(&mut n);
    assert_eq!(relocations_to(&out, 1).len(), 1, "{out:?}");
    assert!(ControlSnapshot::from_bytes(&[0xff; 3]).is_err());
}

#[test]
fn a_node_restored_after_a_trigger_sends_the_1006_again_at_each_servers_first_heartbeat() {
    let mut n = node(Strategy::Cold);
    let ms = Instant::from_millis;
    assert_eq!(
        to(&execute(&mut n, ms(2980), 1, 3, ms(3000)), 1, 1006).len(),
        1
    );
    // The node dies as the 1006 leaves: its successor cannot tell whether it got out.
    let bytes = n.snapshot().to_bytes().expect("encodes");
    let cfg = n.config().clone();
    let snap = ControlSnapshot::from_bytes(&bytes).expect("decodes");
    let mut n = ControlNode::restore(cfg, snap, Instant::from_millis(3100));
    assert!(drain(&mut n).is_empty());
    let beat = |n: &mut ControlNode, server: u32, seq: u64| {
        let hb = Heartbeat {
            server: ServerId(server),
            seq,
            incarnation: 1,
            live: Vec::new(),
            shadows: Vec::new(),
        };
        n.handle_message(
            Instant::from_millis(3200),
            ServerId(server).into(),
            hb.into(),
        );
        drain(n)
    };
    for server in [1, 3] {
        let out = beat(&mut n, server, 1);
        let again = to(&out, server, 1006);
        assert!(
            matches!(again.as_slice(), [Message::Relocate(r)]
                if matches!(r.action, RelocateAction::Relocate { source: ServerId(1), target: ServerId(3), .. })),
            "{out:?}"
        );
        // Once.
        assert!(to(&beat(&mut n, server, 2), server, 1006).is_empty());
    }
    // A server the relocation does not involve gets nothing.
    assert!(to(&beat(&mut n, 2, 1), 2, 1006).is_empty());
}

#[test]
fn a_shadow_the_predictions_stop_naming_goes_only_after_the_grace() {
    let mut n = node(Strategy::Shadow);
    let ms = Instant::from_millis;
    let out = predict(&mut n, ms(0), &[(2, 0.6), (3, 0.4)], ms(5000));
    assert_eq!(to(&out, 2, 1003).len() + to(&out, 3, 1003).len(), 2);
    // Server 3 drops out of the list for a moment and comes back: nothing is discarded,
    // nothing asked for again (each would cost a whole state transfer).
    let out = predict(&mut n, ms(200), &[(2, 0.9)], ms(5000));
    assert!(to(&out, 3, 1006).is_empty(), "{out:?}");
    let out = predict(&mut n, ms(1000), &[(2, 0.6), (3, 0.4)], ms(5000));
    assert!(to(&out, 3, 1003).is_empty() && to(&out, 3, 1006).is_empty());
    // Unnamed again, from 1.2 s: still kept at 9 s, discarded at 9.2 s (8 s of
    // `shadow_keep`: a shadow, not just a plan).
    predict(&mut n, ms(1200), &[(2, 0.9)], ms(15_000));
    let out = predict(&mut n, ms(9000), &[(2, 0.9)], ms(15_000));
    assert!(to(&out, 3, 1006).is_empty());
    assert_eq!(n.poll_timeout(), Some(ms(9200)));
    n.handle_timeout(ms(9200));
    let out = drain(&mut n);
    assert_eq!(to(&out, 3, 1006).len(), 1, "discarded after the keep");
    assert!(to(&out, 2, 1006).is_empty());
}

#[test]
fn a_later_eta_never_puts_off_a_planned_shadow_jit_start() {
    let mut n = node(Strategy::ShadowJit { threshold: 0.3 });
    state_of_125_mb(&mut n);
    let ms = Instant::from_millis;
    // 1 s of transfer and 300 ms of margin before 10 s: 8.7 s.
    predict(&mut n, ms(0), &[(2, 0.6)], ms(10_000));
    assert_eq!(n.poll_timeout(), Some(ms(8700)));
    // The ETA drifts to 14 s: the start stays at 8.7 s.
    predict(&mut n, ms(1000), &[(2, 0.6)], ms(14_000));
    assert_eq!(n.poll_timeout(), Some(ms(8700)));
    // An earlier ETA, with a spread of 500 ms: it moves to 8 - 1.3 - 0.5 = 6.2 s.
    let m = HandoverPrediction {
        ue: UeId(1),
        source: CellId(1),
        candidates: vec![Candidate {
            cell: CellId(2),
            likelihood: 0.6,
        }],
        timing: Some(Timing::at_within(
            ms(8000),
            std::time::Duration::from_millis(500),
        )),
    };
    n.handle_message(ms(2000), CellId(1).into(), m.into());
    drain(&mut n);
    assert_eq!(n.poll_timeout(), Some(ms(6200)));
}

/// A node that declares a server dead after 1 s without a heartbeat.
fn watching(strategy: Strategy) -> ControlNode {
    let mut cfg = config(strategy);
    cfg.server_timeout = Some(std::time::Duration::from_secs(1));
    node_with(cfg)
}

/// A heartbeat from `server` listing svc1 live under `epoch`, if given.
fn beat(
    n: &mut ControlNode,
    now: Instant,
    server: u32,
    seq: u64,
    live: Option<u64>,
) -> Vec<Transmit> {
    let hb = Heartbeat {
        server: ServerId(server),
        seq,
        incarnation: 1,
        live: live
            .map(|epoch| Tenure {
                service: ServiceId(1),
                epoch,
            })
            .into_iter()
            .collect(),
        shadows: Vec::new(),
    };
    n.handle_message(now, ServerId(server).into(), hb.into());
    drain(n)
}

fn done(from: u32, to: u32, ok: bool, epoch: u64) -> Message {
    RelocationDone {
        service: ServiceId(1),
        from: ServerId(from),
        to: ServerId(to),
        ok,
        epoch,
    }
    .into()
}

fn actions(out: &[Transmit], server: u32) -> Vec<RelocateAction> {
    to(out, server, 1006)
        .into_iter()
        .filter_map(|m| match m {
            Message::Relocate(r) => Some(r.action.clone()),
            _ => None,
        })
        .collect()
}

/// svc1 at server 1 with a ready shadow at server 3; the handover to cell 3 triggers the
/// relocation at 3 s, and server 1 falls silent as it goes out: at 4.2 s it is declared
/// dead and the shadow at 3 is promoted. Returns the promotion's epoch.
fn source_dies_mid_relocation(n: &mut ControlNode) -> u64 {
    let ms = Instant::from_millis;
    for t in [0, 800, 1600, 2400] {
        beat(n, ms(t), 1, t + 1, Some(1));
        beat(n, ms(t), 3, t + 1, None);
    }
    predict(n, ms(100), &[(3, 0.9)], ms(3000));
    let ready = ShadowReady {
        service: ServiceId(1),
        server: ServerId(3),
        seq: 1,
        adoption: false,
    };
    n.handle_message(ms(200), ServerId(3).into(), ready.into());
    drain(n);
    execute(n, ms(2980), 1, 3, ms(3000));
    beat(n, ms(3200), 3, 3201, None);
    beat(n, ms(4000), 3, 4001, None);
    n.handle_timeout(ms(4200));
    let out = drain(n);
    let promoted = actions(&out, 3).into_iter().find_map(|a| match a {
        RelocateAction::Promote { epoch } => Some(epoch),
        _ => None,
    });
    promoted.unwrap_or_else(|| panic!("no promotion at server 3: {out:?}"))
}

#[test]
fn a_source_back_before_its_replacement_went_live_is_neither_released_nor_answered() {
    let mut n = watching(Strategy::Shadow);
    let ms = Instant::from_millis;
    let epoch = source_dies_mid_relocation(&mut n);
    // Back from a partition with its instance: the promoted shadow has not said it went
    // live (its 1006 may never have arrived), so server 1 may hold the only copy. No
    // release, no lease.
    let out = beat(&mut n, ms(4400), 1, 4401, Some(1));
    assert!(actions(&out, 1).is_empty(), "{out:?}");
    assert!(to(&out, 1, 3007).is_empty(), "{out:?}");
    // Each such heartbeat asks server 3 again (the 1006 or its 3033 may be lost).
    assert!(
        matches!(actions(&out, 3).as_slice(), [RelocateAction::Promote { epoch: e }] if *e == epoch),
        "{out:?}"
    );
    // The promotion lands: now server 1 lets go, and once it has, its lease returns.
    n.handle_message(ms(4500), ServerId(3).into(), done(1, 3, true, epoch));
    let out = drain(&mut n);
    assert!(
        matches!(actions(&out, 1).as_slice(),
            [RelocateAction::Release { host: ServerId(3), epoch: e }] if *e == epoch),
        "{out:?}"
    );
    assert_eq!(to(&beat(&mut n, ms(4600), 1, 4601, None), 1, 3007).len(), 1);
}

#[test]
fn a_source_back_whose_replacement_fell_silent_too_is_asked_to_serve_on() {
    let mut n = watching(Strategy::Shadow);
    let ms = Instant::from_millis;
    let epoch = source_dies_mid_relocation(&mut n);
    assert!(to(&beat(&mut n, ms(4400), 1, 4401, Some(1)), 1, 3007).is_empty());
    beat(&mut n, ms(5000), 1, 5001, Some(1));
    // Server 3, promoted (or not: nobody knows), falls silent before it says so.
    n.handle_timeout(ms(5100));
    let out = drain(&mut n);
    assert!(
        matches!(actions(&out, 1).as_slice(), [RelocateAction::Resume { epoch: e }] if *e == epoch),
        "{out:?}"
    );
    // The Resume may be lost: each heartbeat asks again, still unanswered.
    let out = beat(&mut n, ms(5400), 1, 5401, Some(1));
    assert!(matches!(
        actions(&out, 1).as_slice(),
        [RelocateAction::Resume { .. }]
    ));
    assert!(to(&out, 1, 3007).is_empty());
    // Server 1 never got the relocation's 1006: it serves on, and says so naming no
    // target. That settles it; the next heartbeat is answered, and nothing is released.
    n.handle_message(ms(5500), ServerId(1).into(), done(1, 1, false, epoch));
    let out = beat(&mut n, ms(5600), 1, 5601, Some(1));
    assert!(actions(&out, 1).is_empty(), "{out:?}");
    assert_eq!(to(&out, 1, 3007).len(), 1, "{out:?}");
    assert_eq!(n.service(ServiceId(1)).map(|e| e.host), Some(ServerId(1)));
}

#[test]
fn a_server_back_from_the_dead_keeps_no_shadow_it_was_not_asked_for_since_even_a_planned_one() {
    // Sweep seed fig4 8028: while server 2 was declared dead, its shadow's source moved
    // the service away and back without it, and a plan named server 2 again. Back, it
    // still held that shadow, ready at an old state; kept because planned, it was
    // promoted when the host died.
    let mut n = watching(Strategy::ShadowJit { threshold: 0.3 });
    state_of_125_mb(&mut n);
    let ms = Instant::from_millis;
    beat(&mut n, ms(0), 1, 1, Some(1));
    beat(&mut n, ms(0), 2, 1, None);
    beat(&mut n, ms(800), 1, 2, Some(1));
    n.handle_timeout(ms(1000));
    drain(&mut n);
    // Planned for 8.7 s (1 s of transfer and 300 ms of margin before 10 s) while server 2
    // is silent.
    while n.poll_event().is_some() {}
    predict(&mut n, ms(1100), &[(2, 0.6)], ms(10_000));
    assert!(std::iter::from_fn(|| n.poll_event()).any(|e| matches!(
        e,
        edgeshift_control::ControlEvent::ShadowPlanned { server: ServerId(2), at, .. }
            if at == ms(8700)
    )));
    let back = Heartbeat {
        server: ServerId(2),
        seq: 2,
        incarnation: 1,
        live: Vec::new(),
        shadows: vec![ServiceId(1)],
    };
    n.handle_message(ms(1500), ServerId(2).into(), back.clone().into());
    let out = drain(&mut n);
    assert!(
        matches!(actions(&out, 2).as_slice(),
            [RelocateAction::Discard { servers }] if servers == &[ServerId(2)]),
        "{out:?}"
    );
    // Once back, the next prediction plans it again, and a planned shadow it lists is
    // spared as before (its request may have crossed the heartbeat).
    predict(&mut n, ms(1550), &[(2, 0.6)], ms(10_000));
    let again = Heartbeat { seq: 3, ..back };
    n.handle_message(ms(1600), ServerId(2).into(), again.into());
    assert!(actions(&drain(&mut n), 2).is_empty());
}

#[test]
fn source_and_target_silent_together_are_released_only_once_one_says_where_the_service_is() {
    let mut n = watching(Strategy::Cold);
    let ms = Instant::from_millis;
    for t in [0, 800, 1600, 2400] {
        beat(&mut n, ms(t), 1, t + 1, Some(1));
        beat(&mut n, ms(t), 3, t + 1, None);
    }
    let out = execute(&mut n, ms(2980), 1, 3, ms(3000));
    let epoch = actions(&out, 3)
        .into_iter()
        .find_map(|a| match a {
            RelocateAction::Relocate { epoch, .. } => Some(epoch),
            _ => None,
        })
        .expect("a 1006 to the target");
    // Both fall silent mid-relocation: the state may be frozen at 1, or live at 3 with
    // its 2005 and 3033 lost. Nothing is released, nothing given up.
    n.handle_timeout(ms(3500));
    drain(&mut n);
    let mut events = Vec::new();
    while let Some(e) = n.poll_event() {
        events.push(e);
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, edgeshift_control::ControlEvent::ServiceLost { .. })),
        "{events:?}"
    );
    // Server 3 is back first: asked to abort, it says it is live under the relocation's
    // epoch, and the service is there.
    let out = beat(&mut n, ms(4000), 3, 4001, Some(epoch));
    assert!(
        matches!(actions(&out, 3).as_slice(), [RelocateAction::Abort { epoch: e }] if *e == epoch),
        "{out:?}"
    );
    n.handle_message(ms(4100), ServerId(3).into(), done(3, 3, true, epoch));
    drain(&mut n);
    assert_eq!(n.service(ServiceId(1)).map(|e| e.host), Some(ServerId(3)));
    // Server 1, back with its frozen instance, is released to 3 (not told to resume: that
    // would thaw inputs 3 never sees) and gets no lease until it has let go.
    let out = beat(&mut n, ms(4200), 1, 4201, Some(1));
    let told = actions(&out, 1);
    assert!(
        !told.is_empty()
            && told.iter().all(|a| matches!(
                a,
                RelocateAction::Release {
                    host: ServerId(3),
                    ..
                }
            )),
        "{out:?}"
    );
    assert!(to(&out, 1, 3007).is_empty());
}

#[test]
fn a_promotion_that_fails_while_its_old_host_is_back_leaves_the_service_there() {
    let mut n = watching(Strategy::Shadow);
    let ms = Instant::from_millis;
    let epoch = source_dies_mid_relocation(&mut n);
    beat(&mut n, ms(4400), 1, 4401, Some(1));
    while n.poll_event().is_some() {}
    // The shadow at 3 was not ready after all. Server 1, back with its instance, serves
    // on: it is told to resume, server 3 to abort (a 2004 on its way must not make it go
    // live), and the service is not reported lost.
    n.handle_message(ms(4500), ServerId(3).into(), done(1, 3, false, epoch));
    let out = drain(&mut n);
    assert!(
        matches!(actions(&out, 1).as_slice(), [RelocateAction::Resume { epoch: e }] if *e == epoch),
        "{out:?}"
    );
    assert!(
        matches!(actions(&out, 3).as_slice(), [RelocateAction::Abort { epoch: e }] if *e == epoch),
        "{out:?}"
    );
    let lost = std::iter::from_fn(|| n.poll_event())
        .any(|e| matches!(e, edgeshift_control::ControlEvent::ServiceLost { .. }));
    assert!(!lost);
    // Its next heartbeat says the instance is live: answered, nothing released, and
    // handovers move the service again (it is no longer waiting for a failover).
    let out = beat(&mut n, ms(4600), 1, 4601, Some(1));
    assert!(
        actions(&out, 1).is_empty() && to(&out, 1, 3007).len() == 1,
        "{out:?}"
    );
    for t in [4900, 5500, 6000] {
        beat(&mut n, ms(t), 1, t + 1, Some(1));
        beat(&mut n, ms(t), 3, t + 1, None);
    }
    let out = execute(&mut n, ms(6000), 1, 3, ms(6100));
    assert_eq!(to(&out, 1, 1006).len(), 1, "{out:?}");
}

#[test]
fn a_handover_that_does_not_move_the_service_keeps_its_shadows_for_the_next_cell() {
    let mut n = node(Strategy::Shadow);
    let ms = Instant::from_millis;
    let out = predict(&mut n, ms(0), &[(2, 0.6), (3, 0.4)], ms(1000));
    assert_eq!(to(&out, 2, 1003).len() + to(&out, 3, 1003).len(), 2);
    // Cell 4 is served by the service's own server: nothing moves, nothing is
    // discarded (the next cell's predictions may well name the same servers).
    let out = execute(&mut n, ms(980), 1, 4, ms(1000));
    assert!(out.iter().all(|t| t.msg.type_code() != 1006), "{out:?}");
    assert_eq!(n.stats().skipped_same_server, 1);
    // Named by nothing for 8 s, they go.
    assert_eq!(n.poll_timeout(), Some(ms(8980)));
    n.handle_timeout(ms(8980));
    let out = drain(&mut n);
    assert_eq!(to(&out, 2, 1006).len() + to(&out, 3, 1006).len(), 2);
}

#[test]
fn a_late_shadow_plan_the_predictions_stop_naming_is_dropped_unstarted() {
    let mut n = node(Strategy::ShadowJit { threshold: 0.3 });
    state_of_125_mb(&mut n);
    let ms = Instant::from_millis;
    predict(&mut n, ms(0), &[(2, 0.6)], ms(10_000));
    assert_eq!(n.poll_timeout(), Some(ms(8700)));
    // No longer named from 1 s: the plan goes after 2 s (`stale_grace`), unstarted.
    predict(&mut n, ms(1000), &[(3, 0.9)], ms(20_000));
    n.handle_timeout(ms(3000));
    let out = drain(&mut n);
    assert!(to(&out, 2, 1003).is_empty(), "{out:?}");
    n.handle_timeout(ms(8700));
    assert!(
        to(&drain(&mut n), 2, 1003).is_empty(),
        "the plan was dropped"
    );
}

#[test]
fn shadow_jit_starts_earlier_by_what_is_queued_on_the_link() {
    let mut n = node(Strategy::ShadowJit { threshold: 0.3 });
    let ms = Instant::from_millis;
    // A second service on server 1, for another UE.
    deploy(&mut n, 2);
    let report = LoadReport {
        server: ServerId(1),
        load: 0.1,
        hosted: 2,
        services: vec![(ServiceId(1), 125_000_000), (ServiceId(2), 125_000_000)],
    };
    n.handle_message(ms(0), ServerId(1).into(), report.into());
    drain(&mut n);
    // Service 1's shadow at server 2 goes now (due in 1 s): the link 1 → 2 is busy
    // until 1 s.
    let out = predict(&mut n, ms(0), &[(2, 0.9)], ms(1000));
    assert_eq!(to(&out, 2, 1003).len(), 1);
    // Service 2 is due at server 2 in 10 s: alone it would start at 8.7 s; what is
    // queued on the link now (0.9 s) moves it to 7.8 s.
    let prediction = |eta| HandoverPrediction {
        ue: UeId(2),
        source: CellId(1),
        candidates: vec![Candidate {
            cell: CellId(2),
            likelihood: 0.9,
        }],
        timing: Some(Timing::at(eta)),
    };
    n.handle_message(ms(100), CellId(1).into(), prediction(ms(10_000)).into());
    drain(&mut n);
    let prepares = |out: &[Transmit]| {
        out.iter()
            .filter(|t| matches!(&t.msg, Message::PrepareShadow(p) if p.service == ServiceId(2)))
            .count()
    };
    n.handle_timeout(ms(7799));
    assert_eq!(prepares(&drain(&mut n)), 0);
    n.handle_timeout(ms(7800));
    assert_eq!(prepares(&drain(&mut n)), 2, "to the host and to server 2");
}

#[test]
fn shadows_kept_after_a_handover_within_their_server_still_go_after_a_restore() {
    let mut n = node(Strategy::Shadow);
    let ms = Instant::from_millis;
    predict(&mut n, ms(0), &[(2, 0.6), (3, 0.4)], ms(1000));
    execute(&mut n, ms(980), 1, 4, ms(1000));
    // The stale clocks are soft state; the expiry, kept in the snapshot, backs them up.
    let mut n = ControlNode::restore(config(Strategy::Shadow), n.snapshot(), ms(1000));
    drain(&mut n);
    n.handle_timeout(ms(8980));
    let out = drain(&mut n);
    assert_eq!(
        to(&out, 2, 1006).len() + to(&out, 3, 1006).len(),
        2,
        "{out:?}"
    );
}

#[test]
fn a_prediction_of_any_uncertainty_plans_without_a_panic() {
    let mut n = node(Strategy::ShadowJit { threshold: 0.3 });
    state_of_125_mb(&mut n);
    let m = HandoverPrediction {
        ue: UeId(1),
        source: CellId(1),
        candidates: vec![Candidate {
            cell: CellId(2),
            likelihood: 0.9,
        }],
        timing: Some(Timing {
            when: When::At(Instant::from_millis(10_000)),
            uncertainty: Some(std::time::Duration::MAX),
        }),
    };
    n.handle_message(Instant::ZERO, CellId(1).into(), m.into());
    // Unbounded spread: the shadow starts at once.
    assert_eq!(to(&drain(&mut n), 2, 1003).len(), 1);
}

/// The routes (server, epoch) sent to `cell` among `out`.
fn routes_to(out: &[Transmit], cell: u32) -> Vec<(ServerId, u64)> {
    out.iter()
        .filter(|t| t.to == NodeId::Cell(CellId(cell)))
        .filter_map(|t| match &t.msg {
            Message::RouteUpdate(r) => Some((r.route.server, r.route.epoch)),
            _ => None,
        })
        .collect()
}

/// Service 1 at server 1 with a ready shadow at server 2; the UE hands over to cell 2 and
/// the relocation triggers at 3 s. Returns the node and what it sent from the 1005 on.
fn hand_over_to_a_ready_shadow(optimistic: bool) -> (ControlNode, Vec<Transmit>) {
    let mut cfg = config(Strategy::Shadow);
    cfg.optimistic = optimistic;
    let mut n = node_with(cfg);
    predict(
        &mut n,
        Instant::ZERO,
        &[(2, 0.9)],
        Instant::from_millis(3000),
    );
    let ready = ShadowReady {
        service: ServiceId(1),
        server: ServerId(2),
        seq: 0,
        adoption: false,
    };
    n.handle_message(Instant::from_millis(100), ServerId(2).into(), ready.into());
    drain(&mut n);
    let out = execute(
        &mut n,
        Instant::from_millis(2980),
        1,
        2,
        Instant::from_millis(3000),
    );
    assert_eq!(relocations_to(&out, 2).len(), 1);
    (n, out)
}

#[test]
fn optimistic_activation_routes_to_a_ready_target_at_the_trigger_and_back_if_it_fails() {
    let (mut n, out) = hand_over_to_a_ready_shadow(true);
    let epoch = routes_to(&out, 2)
        .first()
        .map(|r| r.1)
        .expect("a route at the trigger");
    assert_eq!(routes_to(&out, 2), [(ServerId(2), epoch)]);
    assert_eq!(routes_to(&out, 1), [(ServerId(2), epoch)]);
    // The source gives up; the control node asks the target, which never went live.
    n.handle_message(
        Instant::from_millis(4000),
        ServerId(1).into(),
        done(1, 2, false, epoch),
    );
    assert!(routes_to(&drain(&mut n), 1).is_empty());
    n.handle_message(
        Instant::from_millis(4010),
        ServerId(2).into(),
        done(1, 2, false, epoch),
    );
    let out = drain(&mut n);
    assert_eq!(routes_to(&out, 1), [(ServerId(1), epoch)]);
    assert_eq!(routes_to(&out, 2), [(ServerId(1), epoch)]);
}

#[test]
fn without_optimistic_activation_routes_wait_for_the_target_to_go_live() {
    let (_, out) = hand_over_to_a_ready_shadow(false);
    assert!(routes_to(&out, 2).is_empty());
}

#[test]
fn an_optimistic_relocation_still_open_sends_its_1006_again_until_settled() {
    let (mut n, out) = hand_over_to_a_ready_shadow(true);
    let epoch = routes_to(&out, 2).first().map(|r| r.1).expect("a route");
    // Nothing from either end a second after the trigger: the 1006 goes out again.
    n.handle_timeout(Instant::from_millis(4000));
    let again = drain(&mut n);
    assert_eq!(relocations_to(&again, 1).len(), 1, "{again:?}");
    assert_eq!(relocations_to(&again, 2).len(), 1);
    // The target commits: nothing more.
    n.handle_message(
        Instant::from_millis(4500),
        ServerId(2).into(),
        done(1, 2, true, epoch),
    );
    drain(&mut n);
    n.handle_timeout(Instant::from_millis(10_000));
    assert!(relocations_to(&drain(&mut n), 1).is_empty());
}
