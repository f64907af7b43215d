//! The control node's persisted snapshot: a fixture written by the unversioned (v0) format.

use std::path::PathBuf;

use edgeshift_control::{ControlConfig, ControlEvent, ControlNode, Strategy};
use edgeshift_proto::*;

const FIXTURE: &str = "tests/data/snapshot-v0.bin";

fn config() -> ControlConfig {
    let topology = (1..=8)
        .map(|c| (CellId(c), ServerId(c.div_ceil(2))))
        .collect();
    let mut cfg = ControlConfig::new(Strategy::ShadowJit { threshold: 0.3 }, topology);
    cfg.load_threshold = Some(0.8);
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
    n.handle_message(Instant::ZERO, NodeId::Control, m.into());
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
        timing: Some(Timing::at_within(
            eta,
            std::time::Duration::from_millis(200),
        )),
    };
    n.handle_message(now, CellId(source).into(), m.into());
}

fn load(n: &mut ControlNode, now: Instant, server: u32, load: f32, services: &[(u32, u64)]) {
    let m = LoadReport {
        server: ServerId(server),
        load,
        services: services.iter().map(|(s, b)| (ServiceId(*s), *b)).collect(),
    };
    n.handle_message(now, ServerId(server).into(), m.into());
}

fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

/// A node with a registry worth persisting: six services, a completed relocation, a ready
/// shadow, a planned late shadow, an announced relocation waiting for its time, a
/// load-balancing move waiting for its shadow, load reports and the load-check timer.
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

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

#[test]
fn the_v0_fixture_is_what_the_unversioned_format_writes() {
    let (n, _, events) = scenario();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::LoadBalancing { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ControlEvent::ShadowPlanned { .. })),
        "{events:?}"
    );
    let bytes = n.snapshot().to_bytes().expect("encodes");
    if std::env::var_os("EDGESHIFT_WRITE_V0_FIXTURE").is_some() {
        std::fs::write(fixture_path(), &bytes).expect("writes the fixture");
    }
    let fixture = std::fs::read(fixture_path()).expect("the fixture exists");
    assert_eq!(bytes, fixture);
}
