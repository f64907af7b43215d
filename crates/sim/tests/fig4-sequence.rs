//! The patent's FIG. 4 and FIG. 5, asserted message by message from the simulator trace.

mod common;

use common::*;
use edgeshift_control::Strategy;

#[test]
fn fig4_message_sequence() {
    let (report, trace) = run_ok(builtin("fig4"), Strategy::Shadow, 1);
    let m = messages(&trace);
    // 1002: the source cell predicts a handover to cells 2 and 3.
    let i = find(&m, 0, 1002, "cell1", "control");
    let both = m.iter().any(|x| x.0 == 1002);
    assert!(both);
    let predicted_both = events(&trace).iter().any(|(n, e)| {
        n == "cell1"
            && e.contains("Predicted")
            && e.contains("CellId(2)")
            && e.contains("CellId(3)")
    });
    assert!(predicted_both, "cell 1 must predict both cells 2 and 3");
    // 1003 to the source and both candidates, 1004 from the source to each candidate.
    let a = find(&m, i, 1003, "control", "me1");
    find(&m, i, 1003, "control", "me2");
    find(&m, i, 1003, "control", "me3");
    let t2 = find(&m, a, 1004, "me1", "me2");
    let t3 = find(&m, a, 1004, "me1", "me3");
    // Shadow sync follows the transfers.
    find(&m, t2, 1010, "me1", "me2");
    find(&m, t3, 1010, "me1", "me3");
    // 1005 with target 3, then 1006 to all three at the announced time.
    let e = find(&m, t3, 1005, "cell1", "control");
    let r1 = find(&m, e, 1006, "control", "me1");
    let r2 = find(&m, e, 1006, "control", "me2");
    let r3 = find(&m, e, 1006, "control", "me3");
    // X2 handover: 2001, 2002, 2003; the UE detaches.
    let h1 = find(&m, e, 2001, "cell1", "cell3");
    let h2 = find(&m, h1, 2002, "cell3", "cell1");
    let h3 = find(&m, h2, 2003, "cell1", "ue1");
    // 2004/2005 between the ME servers, after the 1006.
    let q = find(&m, r1, 2004, "me1", "me3");
    let c = find(&m, q, 2005, "me3", "me1");
    // 2006 ends the radio gap, after the relocation was confirmed (FIG. 5).
    let h6 = find(&m, h3, 2006, "ue1", "cell3");
    assert!(c < h6, "relocation must complete inside the radio gap");
    assert!(r2 > e && r3 > e);
    // Events: the non-target discards its shadow, the target activates its shadow.
    let ev = events(&trace);
    assert!(
        ev.iter()
            .any(|(n, e)| n == "me2" && e.starts_with("ShadowDiscarded"))
    );
    let act = ev
        .iter()
        .find(|(n, e)| n == "me3" && e.starts_with("Activated"))
        .expect("activation");
    assert!(act.1.contains("first_try: true"));
    // The record: one relocation 1 -> 3, masked by the handover.
    assert_eq!(report.handovers, 1);
    assert_eq!(report.relocations, 1);
    let rec = &report.relocation_records[0];
    assert_eq!((rec.from.as_str(), rec.to.as_str()), ("me1", "me3"));
    assert!(rec.checksum_valid_first_try);
    assert_eq!(rec.added_ms, 0.0);
    assert!(rec.critical_path_ms < rec.radio_gap_ms);
}

#[test]
fn fig4_with_webassembly_services() {
    for service in ["arena", "armap"] {
        let mut cfg = edgeshift_sim::SimConfig::new(Strategy::Shadow, 2);
        cfg.service = Some(service.into());
        cfg.state_bytes = Some(2 << 20);
        let (report, trace) = sim(builtin("fig4"), cfg);
        assert_eq!(
            report.invariant_violations, 0,
            "{service}: {:#?}",
            report.violations
        );
        assert!(report.final_state_matches_twin, "{service}");
        assert_eq!(report.inputs_sent, report.inputs_applied_once);
        assert_eq!(report.relocations, 1, "{service}");
        let rec = &report.relocation_records[0];
        assert_eq!((rec.from.as_str(), rec.to.as_str()), ("me1", "me3"));
        assert!(
            rec.state_bytes >= 2 << 20,
            "{service}: {} bytes",
            rec.state_bytes
        );
        assert_eq!(rec.added_ms, 0.0, "{service}");
        let m = messages(&trace);
        let t = find(&m, 0, 1004, "me1", "me3");
        find(&m, t, 2004, "me1", "me3");
    }
}
