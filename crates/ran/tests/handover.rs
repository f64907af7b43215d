//! Role-level tests of the base station: A3 timing, hysteresis, prediction, X2 handover.

use std::time::Duration;

use edgeshift_proto::*;
use edgeshift_ran::{BaseStation, MeasurementReport, RanConfig, RanEvent};

fn cell() -> BaseStation {
    let mut c = BaseStation::new(RanConfig::new(CellId(1)));
    c.handle_attach(Instant::ZERO, UeId(1));
    c
}

fn report(c: &mut BaseStation, at_ms: u64, neighbour_margin_db: f64) {
    // Serving -80 dBm; the A3 entering threshold is offset 3 + hysteresis 1 = 4 dB.
    let r = MeasurementReport {
        ue: UeId(1),
        serving_dbm: -80.0,
        neighbours: vec![(CellId(2), -80.0 + neighbour_margin_db)],
        position: None,
    };
    c.handle_measurement(Instant::from_millis(at_ms), &r);
}

fn sent(c: &mut BaseStation) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

#[test]
fn a3_fires_exactly_after_time_to_trigger_not_before() {
    let mut c = cell();
    // Reports every 40 ms; the condition holds from 1000 ms on (margin 5 dB > 4 dB).
    for t in (0..1000).step_by(40) {
        report(&mut c, t, 0.0);
    }
    let mut fired_at = None;
    for t in (1000..2000).step_by(40) {
        report(&mut c, t, 5.0);
        if sent(&mut c).iter().any(|m| m.msg.type_code() == 1005) {
            fired_at = Some(t);
            break;
        }
    }
    // TTT 320 ms: the first report at or after 1320 ms triggers.
    assert_eq!(fired_at, Some(1320));
}

#[test]
fn hysteresis_prevents_a_flip_on_a_flat_margin() {
    let mut c = cell();
    // Hovering around the offset (3 dB ± 0.9) never satisfies offset + hysteresis.
    for i in 0..100u64 {
        let m = if i % 2 == 0 { 3.9 } else { 2.1 };
        report(&mut c, i * 40, m);
    }
    assert!(sent(&mut c).iter().all(|m| m.msg.type_code() != 1005));
}

#[test]
fn a_condition_that_lapses_restarts_the_timer() {
    let mut c = cell();
    report(&mut c, 0, 5.0);
    report(&mut c, 200, 5.0);
    report(&mut c, 240, 1.0); // below offset - hysteresis: leaves
    report(&mut c, 280, 5.0);
    report(&mut c, 360, 5.0);
    assert!(sent(&mut c).iter().all(|m| m.msg.type_code() != 1005));
    report(&mut c, 600, 5.0);
    assert!(sent(&mut c).iter().any(|m| m.msg.type_code() == 1005));
}

#[test]
fn a_rising_neighbour_is_predicted_before_the_handover() {
    let mut c = cell();
    let mut first_prediction = None;
    let mut handover = None;
    for i in 0..100u64 {
        let t = i * 200;
        report(&mut c, t, -12.0 + 1.0 * i as f64 * 0.2);
        for m in sent(&mut c) {
            match m.msg {
                Message::HandoverPrediction(p)
                    if first_prediction.is_none() && !p.candidates.is_empty() =>
                {
                    assert_eq!(p.candidates[0].cell, CellId(2));
                    assert!(p.candidates.iter().map(|c| c.likelihood).sum::<f32>() <= 1.0);
                    first_prediction = Some(t);
                }
                Message::HandoverExecution(_) => handover = handover.or(Some(t)),
                _ => {}
            }
        }
    }
    let (p, h) = (
        first_prediction.expect("predicted"),
        handover.expect("handover"),
    );
    assert!(
        h - p >= 2000,
        "prediction {p} ms, handover {h} ms: less than 2 s lead"
    );
}

#[test]
fn x2_handover_runs_2001_to_2006_and_relays_traffic_by_route() {
    let mut src = cell();
    let mut dst = BaseStation::new(RanConfig::new(CellId(2)));
    let route = Route {
        service: ServiceId(1),
        server: ServerId(1),
        epoch: 1,
    };
    src.handle_message(
        Instant::ZERO,
        NodeId::CONTROL,
        RouteUpdate { ue: UeId(1), route }.into(),
    );
    for t in (0..=320).step_by(40) {
        report(&mut src, t, 6.0);
    }
    let out = sent(&mut src);
    let req = out.iter().find_map(|t| match &t.msg {
        Message::HandoverRequest(r) => Some(r.clone()),
        _ => None,
    });
    let req = req.expect("2001");
    assert_eq!(req.route, Some(route));
    dst.handle_message(Instant::from_millis(325), CellId(1).into(), req.into());
    let ack = sent(&mut dst).into_iter().next().expect("2002");
    src.handle_message(Instant::from_millis(330), CellId(2).into(), ack.msg);
    // The 2003 goes out at the time announced in the 1005, not at the ack.
    assert!(sent(&mut src).is_empty());
    let at = src.poll_timeout().expect("execution timer");
    assert_eq!(at, Instant::from_millis(340));
    src.handle_timeout(at);
    assert!(
        sent(&mut src)
            .iter()
            .any(|t| t.to == NodeId::Ue(UeId(1)) && t.msg.type_code() == 2003)
    );
    // The UE arrives at the target; uplink goes to the route learnt from 2001.
    dst.handle_message(
        at + Duration::from_millis(40),
        UeId(1).into(),
        HandoverConfirm {
            ue: UeId(1),
            source: CellId(1),
        }
        .into(),
    );
    assert!(
        sent(&mut dst)
            .iter()
            .any(|t| t.to == NodeId::Cell(CellId(1)) && t.msg.type_code() == 3001)
    );
    let input = ServiceInput {
        ue: UeId(1),
        service: ServiceId(1),
        via: CellId(2),
        answered_below: 0,
        input: InputRecord {
            seq: 1,
            payload: vec![],
        },
    };
    dst.handle_message(at + Duration::from_millis(41), UeId(1).into(), input.into());
    assert!(
        sent(&mut dst)
            .iter()
            .any(|t| t.to == NodeId::Server(ServerId(1)) && t.msg.type_code() == 3010)
    );
    // A newer route from the control node wins over the older one.
    let newer = Route {
        service: ServiceId(1),
        server: ServerId(2),
        epoch: 2,
    };
    dst.handle_message(
        at,
        NodeId::CONTROL,
        RouteUpdate {
            ue: UeId(1),
            route: newer,
        }
        .into(),
    );
    dst.handle_message(
        at,
        NodeId::CONTROL,
        RouteUpdate { ue: UeId(1), route }.into(),
    );
    assert_eq!(dst.route(UeId(1)), Some(newer));
    assert!(std::iter::from_fn(|| dst.poll_event()).any(|e| matches!(
        e,
        RanEvent::UeAttached {
            from: Some(CellId(1)),
            ..
        }
    )));
}

#[test]
fn a_full_target_refuses_and_the_source_cancels() {
    let mut src = cell();
    let mut cfg = RanConfig::new(CellId(2));
    cfg.capacity = 0;
    let mut dst = BaseStation::new(cfg);
    for t in (0..=400).step_by(40) {
        report(&mut src, t, 6.0);
    }
    let req = sent(&mut src)
        .into_iter()
        .find(|t| t.msg.type_code() == 2001)
        .expect("2001");
    dst.handle_message(Instant::from_millis(405), CellId(1).into(), req.msg);
    let ack = sent(&mut dst).into_iter().next().expect("2002");
    src.handle_message(Instant::from_millis(410), CellId(2).into(), ack.msg);
    let out = sent(&mut src);
    assert!(
        out.iter()
            .any(|t| t.to == NodeId::CONTROL && t.msg.type_code() == 3002)
    );
    src.handle_timeout(Instant::from_millis(1000));
    assert!(sent(&mut src).iter().all(|t| t.msg.type_code() != 2003));
    assert!(src.serves(UeId(1)));
}

#[test]
fn a5_needs_a_weak_serving_cell_and_a_strong_neighbour() {
    let mut cfg = RanConfig::new(CellId(1));
    cfg.a5 = Some((-100.0, -95.0));
    let mut c = BaseStation::new(cfg);
    c.handle_attach(Instant::ZERO, UeId(1));
    let send = |c: &mut BaseStation, t: u64, s: f64, n: f64| {
        let r = MeasurementReport {
            ue: UeId(1),
            serving_dbm: s,
            neighbours: vec![(CellId(2), n)],
            position: None,
        };
        c.handle_measurement(Instant::from_millis(t), &r);
        sent(c).iter().any(|m| m.msg.type_code() == 1005)
    };
    // A3 would fire here (neighbour 10 dB better), A5 must not: the serving cell is strong.
    assert!(!(0..20).any(|i| send(&mut c, i * 40, -80.0, -70.0)));
    // Serving weak, neighbour strong enough: fires after the time to trigger.
    let fired: Vec<bool> = (20..40)
        .map(|i| send(&mut c, i * 40, -105.0, -90.0))
        .collect();
    assert!(fired.iter().any(|f| *f));
    assert!(!fired[..8].iter().any(|f| *f), "not before 320 ms");
}

#[test]
fn going_straight_back_is_reported_as_ping_pong() {
    let mut c = BaseStation::new(RanConfig::new(CellId(2)));
    // The UE arrives from cell 1 by handover.
    c.handle_message(
        Instant::from_millis(1000),
        UeId(1).into(),
        HandoverConfirm {
            ue: UeId(1),
            source: CellId(1),
        }
        .into(),
    );
    let _ = sent(&mut c);
    // Cell 1 is at once much stronger again.
    for t in (1040..=1400).step_by(40) {
        let r = MeasurementReport {
            ue: UeId(1),
            serving_dbm: -90.0,
            neighbours: vec![(CellId(1), -80.0)],
            position: None,
        };
        c.handle_measurement(Instant::from_millis(t), &r);
    }
    let events: Vec<RanEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            RanEvent::PingPong {
                back_to: CellId(1),
                ..
            }
        )),
        "{events:?}"
    );
}

/// A predictor from outside the crate: always cell 7, five seconds out, and it counts the
/// handovers it is told about.
#[derive(Debug, Default)]
struct Oracle {
    learned: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl edgeshift_ran::Predictor for Oracle {
    fn predict(&mut self, ue: &edgeshift_ran::UeView<'_>) -> Option<edgeshift_ran::Prediction> {
        assert_eq!(ue.serving, CellId(1));
        Some(edgeshift_ran::Prediction {
            candidates: vec![Candidate {
                cell: CellId(7),
                likelihood: 0.8,
            }],
            eta: ue.now + Duration::from_secs(5),
            uncertainty: Duration::from_millis(500),
        })
    }

    fn learn(&mut self, from: Option<CellId>, to: CellId, _dwell: Duration) {
        assert_eq!((from, to), (None, CellId(2)));
        self.learned
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_custom_predictor_plugs_in_through_the_trait() {
    let learned = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut cfg = RanConfig::new(CellId(1));
    let counter = learned.clone();
    cfg.predictor.kind = edgeshift_ran::PredictorKind::Custom(std::sync::Arc::new(move |_| {
        Box::new(Oracle {
            learned: counter.clone(),
        })
    }));
    let mut c = BaseStation::new(cfg);
    c.handle_attach(Instant::ZERO, UeId(1));
    report(&mut c, 200, -20.0);
    let out = sent(&mut c);
    assert!(
        out.iter()
            .any(|t| matches!(&t.msg, Message::HandoverPrediction(p)
            if p.candidates.first().map(|x| x.cell) == Some(CellId(7)))),
        "{out:?}"
    );
    // A real handover to cell 2 teaches the predictor.
    for ms in (400..=1400).step_by(200) {
        report(&mut c, ms, 5.0);
    }
    let ack = HandoverRequestAck {
        ue: UeId(1),
        target: CellId(2),
        admitted: true,
    };
    c.handle_message(Instant::from_millis(1500), CellId(2).into(), ack.into());
    c.handle_timeout(Instant::from_millis(2000));
    assert_eq!(learned.load(std::sync::atomic::Ordering::Relaxed), 1);
}

/// Cell 1 after it sent UE 1 the 2003 towards cell 2 (the target admitted it).
fn commanded(daps: bool) -> BaseStation {
    let mut cfg = RanConfig::new(CellId(1));
    cfg.daps = daps;
    let mut src = BaseStation::new(cfg);
    src.handle_attach(Instant::ZERO, UeId(1));
    for t in (0..=320).step_by(40) {
        report(&mut src, t, 6.0);
    }
    assert!(sent(&mut src).iter().any(|t| t.msg.type_code() == 2001));
    let ack = HandoverRequestAck {
        ue: UeId(1),
        target: CellId(2),
        admitted: true,
    };
    src.handle_message(Instant::from_millis(330), CellId(2).into(), ack.into());
    let at = src.poll_timeout().expect("execution timer");
    src.handle_timeout(at);
    assert!(sent(&mut src).iter().any(|t| t.msg.type_code() == 2003));
    src
}

#[test]
fn with_daps_the_source_relays_downlink_until_the_target_has_the_ue() {
    let answer = ServiceOutput {
        ue: UeId(1),
        service: ServiceId(1),
        via: CellId(1),
        seq: 1,
        payload: vec![],
    };
    let to_ue = |src: &mut BaseStation| {
        src.handle_message(
            Instant::from_millis(350),
            ServerId(1).into(),
            answer.clone().into(),
        );
        sent(src).iter().any(|t| t.to == NodeId::Ue(UeId(1)))
    };
    // Break before make: the UE has left, the answer is dropped.
    assert!(!to_ue(&mut commanded(false)));
    // Make before break: the UE still listens to its source.
    let mut src = commanded(true);
    assert!(to_ue(&mut src));
    // Once the target has it (3001), the source forgets the UE.
    src.handle_message(
        Instant::from_millis(400),
        CellId(2).into(),
        UeContextRelease { ue: UeId(1) }.into(),
    );
    assert!(!to_ue(&mut src));
}
