//! Transitions of [`ShadowState`] and of the 2004 [`Check`](super::Check) beside it.

use edgeshift_proto::{
    CodeRef, Message, NodeId, PrepareShadow, Relocate, RelocateAction, RelocateRequest,
    RelocationMode, ServerId, ShadowSync, ShadowTransfer, SyncBody, SyncMode, Timing, UeId,
    Verdict,
};

use super::ShadowState;
use crate::EdgeEvent;
use crate::server::testkit::{Bench, SVC, violations};

/// Server 1 hosts the service; its 1003 for a shadow at server 2 was handled, so the
/// five 1004 chunks are queued.
fn transferring(sync: SyncMode) -> Bench {
    let mut b = Bench::deployed(2, |_| {});
    b.prepare(&[2], sync);
    b.step();
    assert_eq!(b.queued(), ["1004>me2"; 5]);
    b.events.clear();
    b
}

/// Moves the first queued message matching `pick` to the front.
fn overtake(b: &mut Bench, pick: impl Fn(&Message) -> bool) {
    let i = b.queue.iter().position(|(_, t)| pick(&t.msg));
    let m = i
        .and_then(|i| b.queue.remove(i))
        .expect("nothing to overtake");
    b.queue.push_front(m);
}

fn is_sync(m: &Message) -> bool {
    matches!(m, Message::ShadowSync(_))
}

fn chunk(b: &mut Bench, i: usize) -> &mut ShadowTransfer {
    match &mut b.queue[i].1.msg {
        Message::ShadowTransfer(t) => t,
        other => panic!("{} is no 1004", other.name()),
    }
}

#[test]
fn a_transfer_fills_the_copy_chunk_by_chunk_then_reports_ready() {
    let mut b = transferring(SyncMode::Replay);
    b.step();
    assert!(matches!(&b.shadow(2).state, ShadowState::Receiving(r) if r.received == 1000));
    assert_eq!(
        b.events_of(2),
        [EdgeEvent::ShadowCreated {
            service: SVC,
            source: ServerId(1)
        }]
    );
    for _ in 0..4 {
        b.step();
    }
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 0));
    assert_eq!(b.queued(), ["3032>me1"]);
    assert!(matches!(&b.outside_of(2)[..], [Message::ShadowReady(r)] if r.server == ServerId(2)));
    assert_eq!(
        b.events_of(2),
        [EdgeEvent::ShadowReady {
            service: SVC,
            seq: 0
        }]
    );
}

#[test]
fn inputs_that_overtake_the_transfer_wait_for_it() {
    let mut b = transferring(SyncMode::Replay);
    b.input(1, 1);
    overtake(&mut b, is_sync);
    b.step();
    assert!(
        matches!(&b.shadow(2).state, ShadowState::Awaiting { early } if early.contains_key(&1))
    );
    b.step();
    assert!(matches!(&b.shadow(2).state, ShadowState::Receiving(r) if r.early.contains_key(&1)));
    b.pump();
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 1));
    assert!(b.events_of(2).contains(&EdgeEvent::Applied {
        service: SVC,
        seq: 1,
        live: false
    }));
}

#[test]
fn a_copy_that_fails_its_checksum_is_refused_and_early_inputs_stay() {
    let mut b = transferring(SyncMode::Replay);
    b.input(1, 1);
    let last = chunk(&mut b, 4);
    last.state_checksum = last.state_checksum.map(|c| c ^ 1);
    overtake(&mut b, is_sync);
    for _ in 0..6 {
        b.step();
    }
    assert!(
        matches!(&b.shadow(2).state, ShadowState::Awaiting { early } if early.contains_key(&1))
    );
    assert_eq!(b.queued(), ["3036>me1"]);
    assert_eq!(
        violations(&b.events_of(2)),
        ["1004 for svc1 failed its checksum"]
    );
    // The source sends the state again; the kept input is applied on top.
    b.pump();
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 1));
}

#[test]
fn a_chunk_out_of_order_restarts_the_copy() {
    let mut b = transferring(SyncMode::Replay);
    b.queue.remove(1);
    b.step();
    b.step();
    assert!(matches!(b.shadow(2).state, ShadowState::Awaiting { .. }));
    assert_eq!(
        violations(&b.events_of(2)),
        ["1004 chunk at 2000 does not fit transfer 1: out of order"]
    );
    // The rest of that transfer is ignored; the source's second one makes it.
    assert_eq!(b.queued(), ["1004>me2", "1004>me2", "3036>me1"]);
    b.pump();
    assert!(matches!(b.shadow(2).state, ShadowState::Ready(_)));
    assert!(violations(&b.events_of(2)).is_empty());
}

#[test]
fn deltas_sent_during_the_transfer_are_applied_after_it() {
    let mut b = transferring(SyncMode::Delta);
    for _ in 0..4 {
        b.step();
    }
    b.input(1, 1);
    let tick = b.server(1).cfg.delta_interval;
    b.advance(tick);
    assert_eq!(b.queued(), ["1004>me2", "1010>me2"]);
    overtake(&mut b, is_sync);
    b.step();
    assert!(matches!(&b.shadow(2).state, ShadowState::Receiving(r) if r.deltas.len() == 1));
    b.step();
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 1));
}

#[test]
fn a_2004_waits_for_a_pending_transfer_then_activates_first_try() {
    let mut b = Bench::deployed(2, |_| {});
    b.input(1, 1);
    b.relocate(2, RelocationMode::Cold);
    overtake(&mut b, |m| matches!(m, Message::RelocateRequest(_)));
    b.step();
    let sh = b.shadow(2);
    assert!(matches!(sh.state, ShadowState::Awaiting { .. }));
    assert!(sh.check.as_ref().is_some_and(|c| c.asked.is_none()));
    assert_eq!(
        b.queued(),
        ["1004>me2"; 5],
        "no 2005 while the copy is on its way"
    );
    b.pump();
    assert!(b.server(2).shadows.is_empty());
    assert_eq!(b.live(2).inst.last_seq, 1);
    assert!(b.events_of(2).iter().any(|e| matches!(
        e,
        EdgeEvent::Activated {
            first_try: true,
            last_seq: 1,
            ..
        }
    )));
    assert!(
        b.outside_of(2)
            .iter()
            .any(|m| matches!(m, Message::RelocationDone(d) if d.ok && d.epoch == 7))
    );
}

#[test]
fn a_shadow_behind_asks_for_the_rest_again_when_the_2004_repeats() {
    let mut b = Bench::deployed(2, |_| {});
    b.prepare(&[2], SyncMode::Replay);
    b.pump();
    for s in 1..=2 {
        b.input(1, s);
    }
    b.queue.clear(); // The shadow misses both inputs.
    b.relocate(2, RelocationMode::Hot);
    let request = b.queue[0].clone();
    b.step();
    assert_eq!(b.queued(), ["2005>me1"]);
    let check = b.shadow(2).check.as_ref().map(|c| c.asked.clone());
    assert_eq!(check, Some(Some(Verdict::NeedFrom(0))));
    // The same 2004 again: the source heard nothing (the 2005 may be lost), so the shadow
    // asks again; the second catch-up is harmless (its inputs are already applied).
    b.queue.push_front(request);
    b.step();
    assert_eq!(b.queued(), ["2005>me1", "2005>me1"]);
    b.pump();
    assert_eq!(b.live(2).inst.last_seq, 2);
    assert!(b.events_of(2).iter().any(|e| matches!(
        e,
        EdgeEvent::Activated {
            first_try: false,
            ..
        }
    )));
}

#[test]
fn a_diverged_shadow_asks_for_everything_and_waits() {
    let mut b = Bench::deployed(2, |_| {});
    b.prepare(&[2], SyncMode::Replay);
    b.pump();
    b.relocate(2, RelocationMode::Hot);
    if let Message::RelocateRequest(r) = &mut b.queue[0].1.msg {
        r.digest ^= 1;
    }
    b.step();
    let sh = b.shadow(2);
    assert!(matches!(sh.state, ShadowState::Awaiting { .. }));
    let asked = sh.check.as_ref().and_then(|c| c.asked.clone());
    assert_eq!(asked, Some(Verdict::NeedFull));
}

#[test]
fn a_shadow_that_cannot_load_fails_and_rejects_the_2004() {
    let mut b = transferring(SyncMode::Replay);
    if let Some(spec) = &mut chunk(&mut b, 0).spec {
        spec.code = CodeRef::Inline {
            kind: "mem".into(),
            bytes: b"not the code".to_vec(),
        };
    }
    b.pump();
    assert!(matches!(&b.shadow(2).state, ShadowState::Failed { .. }));
    assert!(b.shadow(2).check.is_none());
    b.relocate(2, RelocationMode::Hot);
    b.step();
    assert!(b.server(2).shadows.is_empty());
    assert!(matches!(
        &b.queue[0].1.msg,
        Message::RelocateConfirm(c) if matches!(c.verdict, Verdict::Reject(_))
    ));
}

#[test]
fn traffic_that_fits_no_shadow_is_a_violation_or_ignored() {
    let mut b = transferring(SyncMode::Replay);
    b.pump();
    let from1 = NodeId::Server(ServerId(1));
    let from2 = NodeId::Server(ServerId(2));
    let sync = || ShadowSync {
        service: SVC,
        source: ServerId(2),
        body: SyncBody::Inputs(vec![]),
    };
    // To the live instance: a 1004 or sync is a violation, and changes nothing.
    let t = ShadowTransfer {
        service: SVC,
        ue: UeId(1),
        source: ServerId(2),
        transfer: 1,
        seq: 0,
        digest: 0,
        spec: None,
        total_len: 64,
        offset: 0,
        data: vec![0; 64].into(),
        state_checksum: None,
        answers: Vec::new(),
    };
    b.deliver(from2, 1, t.clone());
    b.deliver(from2, 1, sync());
    assert_eq!(
        violations(&b.events_of(1)),
        [
            "1004 for svc1, which is live here",
            "sync for svc1, which is live here"
        ]
    );
    assert!(b.server(1).shadows.is_empty() && b.queue.is_empty());
    // A chunk from the middle of an unknown transfer is ignored.
    let mut b2 = Bench::new(2, |_| {});
    b2.deliver(from1, 2, ShadowTransfer { offset: 1, ..t });
    assert!(b2.server(2).shadows.is_empty() && b2.events.is_empty());
    // Sync still in flight for a discarded shadow is ignored.
    let discard = Relocate {
        service: SVC,
        action: RelocateAction::Discard {
            servers: vec![ServerId(2)],
        },
        timing: Timing::at(b.now),
    };
    b.deliver(NodeId::CONTROL, 2, discard);
    b.events.clear();
    b.deliver(from1, 2, sync());
    assert!(b.server(2).shadows.is_empty() && b.events.is_empty());
}

#[test]
fn a_2004_newer_than_the_instance_here_replaces_it_and_an_older_one_is_refused() {
    // Server 1's instance (epoch 1) was replaced by a failover while it was away; server 2
    // now holds the newer one (epoch 9) and asks server 1 to take it back.
    let mut b = Bench::deployed(2, |_| {});
    let request = |epoch| RelocateRequest {
        service: SVC,
        source: ServerId(2),
        last_seq: 5,
        digest: 7,
        epoch,
        transfer_pending: false,
        state_checksum: None,
        answers: Vec::new(),
    };
    b.deliver(NodeId::Server(ServerId(2)), 1, request(0));
    assert!(
        b.server(1).live.contains_key(&SVC),
        "a past 2004 replaced the instance"
    );
    assert!(b.queue.iter().any(|(_, t)| matches!(
        &t.msg,
        Message::RelocateConfirm(c) if matches!(c.verdict, Verdict::Reject(_))
    )));
    b.queue.clear();
    b.deliver(NodeId::Server(ServerId(2)), 1, request(9));
    assert!(
        !b.server(1).live.contains_key(&SVC),
        "the replaced instance confirmed"
    );
    assert!(b.events_of(1).iter().any(|e| matches!(
        e,
        EdgeEvent::Released {
            to: ServerId(2),
            ..
        }
    )));
    // No copy here: it asks the source for the whole state instead of confirming.
    assert_eq!(
        b.shadow(1).check.as_ref().and_then(|c| c.asked.clone()),
        Some(Verdict::NeedFull)
    );
}

#[test]
fn a_shadow_asked_for_again_soon_after_its_discard_keeps_the_inputs_that_overtake_its_copy() {
    let mut b = transferring(SyncMode::Replay);
    b.pump();
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 0));
    // The control node discards the shadow, then asks for it again a moment later.
    let discard = Relocate {
        service: SVC,
        action: RelocateAction::Discard {
            servers: vec![ServerId(2)],
        },
        timing: Timing::at(b.now),
    };
    b.deliver(NodeId::CONTROL, 1, discard.clone());
    b.deliver(NodeId::CONTROL, 2, discard);
    b.pump();
    b.events.clear();
    let again = PrepareShadow {
        service: SVC,
        ue: UeId(1),
        source: ServerId(1),
        candidates: vec![ServerId(2)],
        sync: SyncMode::Replay,
        start: Timing::at(b.now),
        adopt: false,
    };
    b.deliver(NodeId::CONTROL, 2, again);
    b.prepare(&[2], SyncMode::Replay);
    b.step();
    assert_eq!(b.queued(), ["1004>me2"; 5]);
    // Input 1 reaches the candidate before the copy (sync travels on the control lane).
    b.input(1, 1);
    overtake(&mut b, is_sync);
    b.pump();
    assert!(
        matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 1),
        "the copy waits for an input its discard dropped"
    );
}

/// A replay batch lost on the way leaves inputs waiting behind a gap for ever: past
/// `GAP_WAIT` the shadow drops its copy and asks its source to start it over, and the
/// source does (a new 1004 transfer), instead of the stale copy staying promotable.
#[test]
fn a_replay_shadow_whose_sync_lost_a_batch_asks_to_start_over() {
    let mut b = transferring(SyncMode::Replay);
    b.pump();
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 0));
    let from1 = NodeId::Server(ServerId(1));
    let batch = |seqs: std::ops::RangeInclusive<u64>| ShadowSync {
        service: SVC,
        source: ServerId(1),
        body: SyncBody::Inputs(
            seqs.map(|seq| edgeshift_proto::InputRecord {
                seq,
                payload: vec![seq as u8],
            })
            .collect(),
        ),
    };
    // Inputs 1–3 never arrive; 4–6 wait behind the gap.
    b.deliver(from1, 2, batch(4..=6));
    b.advance(std::time::Duration::from_millis(100));
    b.deliver(from1, 2, batch(7..=9));
    assert!(matches!(&b.shadow(2).state, ShadowState::Ready(i) if i.last_seq == 0));
    assert!(b.queue.is_empty(), "{:?}", b.queued());
    b.advance(std::time::Duration::from_millis(300));
    b.deliver(from1, 2, batch(10..=12));
    assert!(matches!(&b.shadow(2).state, ShadowState::Awaiting { .. }));
    assert_eq!(b.queued(), ["3036>me1"]);
    b.step();
    assert!(
        b.queued().iter().all(|m| m == "1004>me2"),
        "{:?}",
        b.queued()
    );
    assert!(!b.queued().is_empty());
}
