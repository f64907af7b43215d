//! Optimistic activation at the target: live at its 1006, committed by a matching 2004,
//! caught up when the source is ahead, rolled back with the UE's inputs given to the
//! source otherwise.

use edgeshift_proto::{
    CellId, Message, NodeId, RelocateAction, RelocateRequest, RelocationMode, ServerId, SyncBody,
    SyncMode, Verdict,
};

use crate::EdgeEvent;
use crate::server::testkit::{Bench, SVC, input, relocate, violations};

const CONTROL: NodeId = NodeId::CONTROL;
const FROM1: NodeId = NodeId::Server(ServerId(1));

/// Server 1 hosts the service after inputs 1..=3, with a ready replay shadow at server 2;
/// both run optimistic activation.
fn ready() -> Bench {
    Bench::with_shadow(2, |c| c.optimistic = true)
}

/// The 1006 reaches the target first: it goes live at input 3.
fn tentative_at_2(b: &mut Bench) {
    let m = relocate(b.now, 2, RelocationMode::Hot);
    b.deliver(CONTROL, 2, m);
    assert!(b.live(2).tentative.is_some(), "not tentative");
    assert_eq!(
        b.events_of(2),
        [EdgeEvent::Tentative {
            service: SVC,
            from: ServerId(1),
            last_seq: 3
        }]
    );
}

fn answered(out: &[Message], seq: u64) -> bool {
    out.iter()
        .any(|m| matches!(m, Message::ServiceOutput(o) if o.seq == seq))
}

#[test]
fn a_ready_shadow_serves_from_its_1006_and_commits_on_a_matching_2004() {
    let mut b = ready();
    tentative_at_2(&mut b);
    // The cells route to the target already: it answers at once.
    b.input(2, 4);
    assert_eq!(b.live(2).inst.last_seq, 4);
    assert!(answered(&b.outside_of(2), 4));
    // The source freezes at 3 and asks; the target holds 3 with the same digest.
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    assert!(b.live(2).tentative.is_none(), "not committed");
    let events = b.events_of(2);
    assert!(
        events.iter().any(|e| matches!(
            e,
            EdgeEvent::Activated {
                last_seq: 3,
                first_try: true,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(violations(&events).is_empty(), "{events:?}");
    assert!(!b.server(1).live.contains_key(&SVC));
    assert!(
        b.outside_of(2)
            .iter()
            .any(|m| matches!(m, Message::RelocationDone(d) if d.ok && d.to == ServerId(2)))
    );
}

#[test]
fn the_target_catches_up_with_inputs_the_source_applied_before_its_freeze() {
    let mut b = ready();
    tentative_at_2(&mut b);
    // Input 4 reaches the source before its 1006; its sync to the target is late.
    b.input(1, 4);
    let sync = b.queue.pop_front().expect("the sync of input 4");
    b.relocate(2, RelocationMode::Hot);
    // The 2004 (at 4) finds the target at 3: it asks from 3, then the catch-up commits.
    assert!(b.step());
    assert!(b.live(2).tentative.is_some());
    assert_eq!(b.queued(), ["2005>me1"]);
    drop(sync);
    b.pump();
    assert!(b.live(2).tentative.is_none());
    assert_eq!(b.live(2).inst.last_seq, 4);
    // The source answered input 4; the target applied it without answering again.
    assert!(!answered(&b.outside_of(2), 4));
    let events = b.events_of(2);
    assert!(
        events.iter().any(|e| matches!(
            e,
            EdgeEvent::Activated {
                last_seq: 4,
                first_try: false,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn an_abort_rolls_back_and_the_source_applies_what_the_target_had_applied() {
    let mut b = ready();
    tentative_at_2(&mut b);
    b.input(2, 4);
    b.outside.clear();
    // The source never got its 1006; the control node calls the relocation off.
    let abort = edgeshift_proto::Relocate {
        service: SVC,
        action: RelocateAction::Abort { epoch: 7 },
        timing: edgeshift_proto::Timing::at(b.now),
    };
    b.deliver(CONTROL, 2, abort);
    assert!(!b.server(2).live.contains_key(&SVC));
    assert!(b.events_of(2).iter().any(|e| matches!(
        e,
        EdgeEvent::TentativeDropped {
            to: ServerId(1),
            ..
        }
    )));
    assert!(
        b.outside_of(2)
            .iter()
            .any(|m| matches!(m, Message::RelocationDone(d) if !d.ok))
    );
    assert_eq!(b.queued(), ["3010>me1"]);
    b.pump();
    assert_eq!(b.live(1).inst.last_seq, 4);
    assert!(answered(&b.outside_of(1), 4));
    // Later traffic that still reaches the target goes on to the source.
    b.deliver(NodeId::Cell(CellId(1)), 2, input(5));
    assert_eq!(b.queued(), ["3010>me1"]);
}

#[test]
fn a_2004_the_target_does_not_hold_rolls_it_back_and_thaws_the_source() {
    let mut b = ready();
    tentative_at_2(&mut b);
    b.input(2, 4);
    let digest = b.live(2).inst.digest;
    // A 2004 at input 4 with another digest: the target's state is not the source's.
    let req = RelocateRequest {
        service: SVC,
        source: ServerId(1),
        last_seq: 4,
        digest: digest ^ 1,
        epoch: 7,
        transfer_pending: false,
        state_checksum: None,
        answers: Vec::new(),
    };
    b.deliver(FROM1, 2, req);
    assert!(!b.server(2).live.contains_key(&SVC));
    let queued = b.queued();
    assert_eq!(queued, ["2005>me1", "3010>me1"]);
    assert!(matches!(
        &b.queue[0].1.msg,
        Message::RelocateConfirm(c) if matches!(c.verdict, Verdict::Reject(_))
    ));
}

#[test]
fn delta_sync_rolls_a_tentative_instance_back() {
    let mut b = ready();
    tentative_at_2(&mut b);
    let delta = edgeshift_proto::ShadowSync {
        service: SVC,
        source: ServerId(1),
        body: SyncBody::Delta(edgeshift_proto::StateDelta {
            seq: 3,
            digest: 0,
            len: 5000,
            chunk_size: 1000,
            chunks: Vec::new(),
            checksum: 0,
            answers: Vec::new(),
        }),
    };
    b.deliver(FROM1, 2, delta);
    assert!(!b.server(2).live.contains_key(&SVC));
    assert!(
        b.events_of(2)
            .iter()
            .any(|e| matches!(e, EdgeEvent::TentativeDropped { .. }))
    );
}

#[test]
fn without_optimistic_activation_the_target_waits_for_the_2004() {
    let mut b = Bench::deployed(2, |_| {});
    b.prepare(&[2], SyncMode::Replay);
    b.pump();
    let m = relocate(b.now, 2, RelocationMode::Hot);
    b.deliver(CONTROL, 2, m);
    assert!(!b.server(2).live.contains_key(&SVC));
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    assert!(b.server(2).live.contains_key(&SVC));
}

#[test]
fn a_delta_synced_shadow_never_goes_live_before_its_2004() {
    let mut b = Bench::deployed(2, |c| c.optimistic = true);
    b.prepare(&[2], SyncMode::Delta);
    b.pump();
    b.input(1, 1);
    b.advance(std::time::Duration::from_millis(60));
    b.pump();
    assert!(b.shadow(2).delta_synced);
    let m = relocate(b.now, 2, RelocationMode::Hot);
    b.deliver(CONTROL, 2, m);
    assert!(!b.server(2).live.contains_key(&SVC));
}

#[test]
fn a_repeated_1006_changes_nothing_at_the_target_and_starts_a_source_that_missed_it() {
    // The source's 1006 was lost; the control node sends it again to both ends.
    let mut b = ready();
    tentative_at_2(&mut b);
    b.input(2, 4);
    let m = relocate(b.now, 2, RelocationMode::Hot);
    b.deliver(CONTROL, 2, m);
    assert!(b.live(2).tentative.is_some());
    assert!(
        b.events_of(2)
            .iter()
            .all(|e| matches!(e, EdgeEvent::Applied { .. } | EdgeEvent::Answered { .. }))
    );
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    assert!(b.live(2).tentative.is_none());
    assert_eq!(b.live(2).inst.last_seq, 4);
    assert!(!b.server(1).live.contains_key(&SVC));
}

#[test]
fn a_whole_copy_replaces_a_tentative_instance_and_goes_live_on_the_same_2004() {
    // The source keeps one input in its log: it cannot catch the target up, it copies.
    let mut b = Bench::deployed(2, |c| {
        c.optimistic = true;
        c.input_log = 1;
    });
    for s in 1..=3 {
        b.input(1, s);
    }
    b.prepare(&[2], SyncMode::Replay);
    b.pump();
    b.events.clear();
    tentative_at_2(&mut b);
    // Inputs 4 and 5 reach the source before its 1006; their sync to the target is lost.
    b.input(1, 4);
    b.input(1, 5);
    b.queue.clear();
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    let events = b.events_of(2);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EdgeEvent::TentativeDropped { .. })),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            EdgeEvent::Activated {
                last_seq: 5,
                first_try: false,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(b.live(2).tentative.is_none());
    assert!(!b.server(1).live.contains_key(&SVC));
}
