//! Transitions of [`Source`]: serving, precopy, frozen, moved out or serving again.

use std::time::Duration;

use edgeshift_proto::{
    CellId, Instant, Message, NodeId, Probe, Relocate, RelocateAction, RelocateConfirm,
    RelocationMode, ServerId, ServiceId, SyncMode, Timing, UeId, Verdict,
};

use super::Source;
use crate::EdgeEvent;
use crate::server::testkit::{Bench, SVC, relocate, violations};
use crate::server::timers::Timer;

fn confirm(target: u32, verdict: Verdict) -> RelocateConfirm {
    RelocateConfirm {
        service: SVC,
        target: ServerId(target),
        verdict,
    }
}

#[test]
fn hot_onto_a_ready_shadow_freezes_asks_and_moves_out() {
    let mut b = Bench::with_shadow(2, |_| {});
    assert!(b.live(1).links[&ServerId(2)].ready);
    b.relocate(2, RelocationMode::Hot);
    let Source::Frozen(f) = b.state(1) else {
        panic!("not frozen");
    };
    assert_eq!(
        (f.target, f.epoch, f.mode),
        (ServerId(2), 7, RelocationMode::Hot)
    );
    assert_eq!(b.queued(), ["2004>me2"]);
    let Some((_, t)) = b.queue.front() else {
        unreachable!()
    };
    assert!(
        matches!(&t.msg, Message::RelocateRequest(r) if !r.transfer_pending && r.last_seq == 3)
    );
    assert_eq!(
        b.events_of(1),
        [
            EdgeEvent::RelocationTriggered {
                service: SVC,
                target: ServerId(2),
                mode: RelocationMode::Hot
            },
            EdgeEvent::Frozen {
                service: SVC,
                last_seq: 3
            }
        ]
    );
    b.pump();
    assert!(!b.server(1).live.contains_key(&SVC));
    assert_eq!(b.server(1).moved.get(&SVC).map(|m| m.to), Some(ServerId(2)));
    assert!(b.events_of(1).contains(&EdgeEvent::RelocatedOut {
        service: SVC,
        to: ServerId(2)
    }));
}

#[test]
fn cold_freezes_before_it_copies_and_says_the_transfer_is_pending() {
    let mut b = Bench::deployed(2, |_| {});
    b.input(1, 1);
    b.relocate(2, RelocationMode::Cold);
    assert!(matches!(b.state(1), Source::Frozen(f) if f.mode == RelocationMode::Cold));
    assert_eq!(
        b.queued(),
        [
            "1004>me2", "1004>me2", "1004>me2", "1004>me2", "1004>me2", "2004>me2"
        ]
    );
    assert!(matches!(
        &b.queue[5].1.msg,
        Message::RelocateRequest(r) if r.transfer_pending
    ));
    b.pump();
    assert_eq!(b.live(2).inst.last_seq, 1);
}

#[test]
fn precopy_serves_through_its_rounds_then_freezes() {
    let mut b = Bench::deployed(2, |c| {
        c.precopy_threshold = 0;
        c.precopy_max_rounds = 1;
    });
    b.relocate(2, RelocationMode::Precopy);
    assert!(matches!(
        b.state(1),
        Source::Precopy {
            target: ServerId(2),
            rounds: 0,
            ..
        }
    ));
    // Still serving: the input is answered and dirties the state.
    b.input(1, 1);
    assert!(
        b.outside_of(1)
            .iter()
            .any(|m| matches!(m, Message::ServiceOutput(o) if o.seq == 1))
    );
    // The shadow's 3032 brings one delta round, its 3036 the freeze.
    while !b.queued().contains(&"3032>me1".to_string()) {
        assert!(b.step());
    }
    while b.queued().first().is_some_and(|m| m != "3032>me1") {
        b.step();
    }
    b.step();
    assert!(matches!(b.state(1), Source::Precopy { rounds: 1, .. }));
    assert_eq!(b.queued().last().map(String::as_str), Some("1010>me2"));
    b.step();
    b.step();
    assert!(matches!(b.state(1), Source::Frozen(f) if f.mode == RelocationMode::Precopy));
    b.pump();
    assert_eq!(b.live(2).inst.last_seq, 1);
}

fn probe(nonce: u64) -> Probe {
    Probe {
        ue: UeId(1),
        service: SVC,
        via: CellId(1),
        nonce,
        checksum: false,
    }
}

/// Once the relocation is through, server 2 has applied input 4 and answered it and probe 9.
fn target_answers_input_4_and_probe_9(b: &mut Bench) {
    b.pump();
    assert_eq!(b.live(2).inst.last_seq, 4);
    let answers = b.outside_of(2);
    assert!(
        answers
            .iter()
            .any(|m| matches!(m, Message::ServiceOutput(o) if o.seq == 4))
    );
    assert!(
        answers
            .iter()
            .any(|m| matches!(m, Message::ProbeReply(r) if r.nonce == 9 && r.last_seq == 4))
    );
}

#[test]
fn a_frozen_source_passes_traffic_on_to_a_ready_target_behind_its_2004() {
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.input(1, 4);
    b.deliver(NodeId::Cell(CellId(1)), 1, probe(9));
    let Source::Frozen(f) = b.state(1) else {
        panic!("not frozen");
    };
    assert!(f.passes_on && f.held.is_empty());
    assert_eq!(b.queued(), ["2004>me2", "3010>me2", "3012>me2"]);
    assert!(
        b.outside_of(1).is_empty(),
        "a frozen source answers nothing"
    );
    target_answers_input_4_and_probe_9(&mut b);
}

#[test]
fn a_frozen_source_holds_traffic_while_its_target_has_no_ready_copy() {
    // Cold: the target's copy is still to come, so the traffic waits here for the 2005.
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Cold);
    b.input(1, 4);
    b.deliver(NodeId::Cell(CellId(1)), 1, probe(9));
    let Source::Frozen(f) = b.state(1) else {
        panic!("not frozen");
    };
    assert!(!f.passes_on);
    assert_eq!(f.held.len(), 2);
    assert!(!b.queued().iter().any(|m| m.starts_with("301")));
    target_answers_input_4_and_probe_9(&mut b);
}

#[test]
fn a_target_that_refuses_gives_passed_on_traffic_back_behind_its_2005() {
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.input(1, 4);
    // The input reaches the shadow before the 2004 (the test swaps the two), and the copy
    // turns out not to load.
    b.queue.swap(0, 1);
    assert!(b.step());
    assert_eq!(b.shadow(2).held.len(), 1);
    b.shadow(2).state = crate::server::shadow::ShadowState::Failed {
        why: "no room".into(),
        early: std::collections::BTreeMap::new(),
    };
    b.events.clear();
    b.pump();
    assert!(matches!(b.state(1), Source::Serving));
    assert_eq!(b.live(1).inst.last_seq, 4);
    assert!(
        b.outside_of(1)
            .iter()
            .any(|m| matches!(m, Message::ServiceOutput(o) if o.seq == 4))
    );
    assert!(violations(&b.events_of(1)).is_empty());
}

#[test]
fn a_target_that_asks_for_the_whole_state_gets_what_was_passed_on_again_after_its_2005() {
    // A restarted target lost its shadow, and with it what went on to it.
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.input(1, 4);
    b.queue.clear();
    let from2 = NodeId::Server(ServerId(2));
    b.deliver(from2, 1, confirm(2, Verdict::NeedFull));
    let Source::Frozen(f) = b.state(1) else {
        panic!("not frozen");
    };
    assert!(!f.passes_on && f.passed.is_empty());
    assert_eq!(f.held.len(), 1, "input 4 is held here again");
    b.input(1, 5);
    b.queue.clear();
    b.deliver(from2, 1, confirm(2, Verdict::Valid));
    assert_eq!(b.queued(), ["3010>me2", "3010>me2"]);
}

#[test]
fn a_reject_thaws_the_source_which_serves_what_it_held() {
    // Cold, so that the source holds the input rather than passing it on.
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Cold);
    b.queue.clear();
    b.input(1, 4);
    b.events.clear();
    b.deliver(
        NodeId::Server(ServerId(2)),
        1,
        confirm(2, Verdict::Reject("full".into())),
    );
    assert!(matches!(b.state(1), Source::Serving));
    assert!(!b.live(1).links.contains_key(&ServerId(2)));
    assert_eq!(b.live(1).inst.last_seq, 4);
    let events = b.events_of(1);
    assert!(matches!(
        &events[0],
        EdgeEvent::RelocationFailed { target: ServerId(2), reason, .. } if reason == "full"
    ));
    let out = b.outside_of(1);
    assert!(matches!(&out[0], Message::RelocationDone(d) if !d.ok && d.epoch == 7));
    assert!(matches!(&out[1], Message::ServiceOutput(o) if o.seq == 4));
}

#[test]
fn a_2005_that_fits_no_relocation_is_a_violation_and_changes_nothing() {
    let mut b = Bench::with_shadow(3, |_| {});
    let from2 = NodeId::Server(ServerId(2));
    b.deliver(from2, 1, confirm(2, Verdict::Valid));
    assert!(matches!(b.state(1), Source::Serving));
    // Frozen for server 2: a 2005 from server 3 does not count.
    b.relocate(2, RelocationMode::Hot);
    b.queue.clear();
    b.deliver(NodeId::Server(ServerId(3)), 1, confirm(3, Verdict::Valid));
    assert!(matches!(b.state(1), Source::Frozen(f) if f.target == ServerId(2)));
    assert_eq!(
        violations(&b.events_of(1)),
        [
            "2005 for svc1 without a relocation",
            "unexpected 2005 for svc1 from me3"
        ]
    );
    assert!(b.queue.is_empty() && b.outside_of(1).is_empty());

    // Nor does one while a precopy is still iterating.
    let mut b = Bench::deployed(2, |_| {});
    b.relocate(2, RelocationMode::Precopy);
    b.queue.clear();
    b.events.clear();
    b.deliver(from2, 1, confirm(2, Verdict::Valid));
    assert!(matches!(b.state(1), Source::Precopy { .. }));
    assert_eq!(
        violations(&b.events_of(1)),
        ["unexpected 2005 for svc1 from me2"]
    );
}

#[test]
fn a_1006_for_a_service_not_here_is_a_violation_unless_it_moved() {
    let mut b = Bench::new(2, |_| {});
    let m = relocate(b.now, 2, RelocationMode::Hot);
    b.deliver(NodeId::CONTROL, 1, m);
    assert_eq!(
        violations(&b.events_of(1)),
        ["relocate of svc1, which is not live here"]
    );

    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    b.events.clear();
    b.relocate(2, RelocationMode::Hot);
    assert!(b.events_of(1).is_empty() && b.queue.is_empty());
}

#[test]
fn a_second_1006_while_frozen_changes_nothing() {
    let mut b = Bench::with_shadow(3, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.queue.clear();
    b.events.clear();
    b.relocate(3, RelocationMode::Cold);
    assert!(matches!(b.state(1), Source::Frozen(f) if f.target == ServerId(2)));
    assert!(b.events_of(1).is_empty() && b.queue.is_empty());
}

#[test]
fn the_watchdog_asks_again_restarts_on_an_answer_and_gives_up() {
    let mut b = Bench::with_shadow(2, |c| {
        c.confirm_timeout = Duration::from_millis(100);
        c.confirm_attempts = 3;
    });
    b.relocate(2, RelocationMode::Hot);
    b.queue.clear(); // The target went silent.
    let armed = b.server(1).timers.get(&Timer::Confirm(SVC));
    assert!(armed.is_some_and(|t| t > b.now + Duration::from_millis(100)));
    b.advance(Duration::from_millis(101));
    assert_eq!(b.queued(), ["2004>me2"]);
    assert!(matches!(b.state(1), Source::Frozen(f) if f.unanswered == 1));
    b.queue.clear();
    // An answer (any verdict) starts the wait over.
    b.deliver(
        NodeId::Server(ServerId(2)),
        1,
        confirm(2, Verdict::NeedFrom(3)),
    );
    b.queue.clear();
    assert!(matches!(b.state(1), Source::Frozen(f) if f.unanswered == 0));
    let rearmed = b.server(1).timers.get(&Timer::Confirm(SVC));
    assert!(rearmed.is_some_and(|t| t > b.now + Duration::from_millis(99)));
    for unanswered in 1..=2 {
        b.advance(Duration::from_millis(101));
        assert!(matches!(b.state(1), Source::Frozen(f) if f.unanswered == unanswered));
        b.queue.clear();
    }
    b.events.clear();
    b.advance(Duration::from_millis(101));
    assert!(matches!(b.state(1), Source::Serving));
    assert!(matches!(
        &b.events_of(1)[0],
        EdgeEvent::RelocationFailed { reason, .. } if reason == "me2 did not confirm after 3 requests"
    ));
}

#[test]
fn a_garbage_need_from_does_not_panic_and_a_bad_rate_does_not_stall() {
    let mut b = Bench::with_shadow(2, |c| c.confirm_rate_bytes_s = 0.0);
    b.relocate(2, RelocationMode::Hot);
    b.queue.clear();
    // Armed for the timeout alone: a rate of zero adds no (infinite) transfer time.
    let armed = b.server(1).timers.get(&Timer::Confirm(SVC));
    assert!(
        armed.is_some_and(|t| t <= b.now + crate::EdgeConfig::new(ServerId(1)).confirm_timeout)
    );
    b.deliver(
        NodeId::Server(ServerId(2)),
        1,
        confirm(2, Verdict::NeedFrom(u64::MAX)),
    );
    assert!(matches!(b.state(1), Source::Frozen(_)));
}

/// A 1006 about [`SVC`] from the control node.
fn order(action: RelocateAction) -> Relocate {
    Relocate {
        service: SVC,
        action,
        timing: Timing::at(Instant::ZERO),
    }
}

fn resume(epoch: u64) -> Relocate {
    order(RelocateAction::Resume { epoch })
}

fn promote(epoch: u64) -> Relocate {
    order(RelocateAction::Promote { epoch })
}

#[test]
fn a_resume_is_answered_with_whether_the_instance_was_handed_over() {
    // Frozen, its target silent: it serves again and says the relocation did not happen.
    // (Cold: the source holds the input rather than passing it on.)
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Cold);
    b.queue.clear();
    b.input(1, 4);
    b.outside.clear();
    b.deliver(NodeId::CONTROL, 1, resume(7));
    assert!(matches!(b.state(1), Source::Serving));
    let out = b.outside_of(1);
    assert!(matches!(&out[0], Message::ServiceOutput(o) if o.seq == 4));
    assert!(matches!(
        &out[1],
        Message::RelocationDone(d) if !d.ok && d.epoch == 7 && d.to == ServerId(2)
    ));
    // Handed over already (the 2005 came): it cannot resume, and says where it went.
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    b.outside.clear();
    b.deliver(NodeId::CONTROL, 1, resume(7));
    assert!(!b.server(1).live.contains_key(&SVC));
    let out = b.outside_of(1);
    assert!(matches!(
        &out[..],
        [Message::RelocationDone(d)] if d.ok && d.epoch == 7 && d.from == ServerId(1) && d.to == ServerId(2)
    ));
    // A resume of another relocation changes nothing and is not answered.
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.queue.clear();
    b.outside.clear();
    b.deliver(NodeId::CONTROL, 1, resume(6));
    assert!(matches!(b.state(1), Source::Frozen(_)));
    assert!(b.outside_of(1).is_empty());
    // Serving, its 1006 never came (or was dropped): it says it serves on, naming itself
    // for the target it never learnt, so that the control node can settle the relocation.
    let mut b = Bench::with_shadow(2, |_| {});
    b.deliver(NodeId::CONTROL, 1, resume(7));
    assert!(matches!(b.state(1), Source::Serving));
    assert!(matches!(
        &b.outside_of(1)[..],
        [Message::RelocationDone(d)] if !d.ok && d.epoch == 7 && d.to == ServerId(1)
    ));
}

#[test]
fn a_target_that_could_not_be_promoted_never_goes_live_on_a_late_2004() {
    // Sweep seed demo 5076: server 1 froze for a relocation to server 2 (epoch 7) and was
    // stopped with its 2004 and copy in flight. Declared dead, it had server 2 promoted
    // under the same epoch, which had nothing ready and said so: the node ended the
    // relocation, and server 1 serves on when it is back. Its copy and 2004, arriving
    // late, must not make server 2 a second live instance at the frozen state.
    let mut b = Bench::deployed(2, |_| {});
    for s in 1..=3 {
        b.input(1, s);
    }
    b.relocate(2, RelocationMode::Hot);
    assert!(matches!(b.state(1), Source::Frozen(_)));
    b.deliver(NodeId::CONTROL, 2, promote(7));
    assert!(matches!(
        &b.outside_of(2)[..],
        [Message::RelocationDone(d)] if !d.ok && d.epoch == 7
    ));
    b.pump();
    assert!(!b.server(2).live.contains_key(&SVC));
    assert!(
        !b.events_of(2)
            .iter()
            .any(|e| matches!(e, EdgeEvent::Activated { .. }))
    );
    assert!(
        b.between
            .iter()
            .any(|(s, t)| *s == ServerId(2)
                && matches!(&t.msg, Message::RelocateConfirm(c) if matches!(c.verdict, Verdict::Reject(_)))),
        "the source is told the relocation is past"
    );
    assert!(matches!(b.state(1), Source::Serving));
}

#[test]
fn a_promoted_instance_asks_once_for_the_inputs_behind_a_gap_while_it_fills() {
    // The shadow at server 2 has inputs 1..=3; the dead source had applied 4 and 5 too.
    let mut b = Bench::with_shadow(2, |_| {});
    b.deliver(NodeId::CONTROL, 2, promote(8));
    b.outside.clear();
    // 7 and 8 wait behind the gap; the UE is asked to resend after 3 and does, in order.
    // Each input it resends moves `last_seq` on with 7 and 8 still waiting: asking again
    // each time would make it resend them all each time (a storm with hundreds of inputs).
    for seq in [7, 8, 4, 5, 6] {
        b.input(2, seq);
    }
    let out = b.outside_of(2);
    let asked: Vec<u64> = out
        .iter()
        .filter_map(|m| match m {
            Message::ResendFrom(r) => Some(r.after),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [3], "{out:?}");
    let answered = out
        .iter()
        .filter(|m| matches!(m, Message::ServiceOutput(_)))
        .count();
    assert_eq!(answered, 5);
    // Later, a new gap is asked about again.
    b.advance(Duration::from_millis(200));
    b.outside.clear();
    b.input(2, 10);
    assert!(
        b.outside_of(2)
            .iter()
            .any(|m| matches!(m, Message::ResendFrom(r) if r.after == 8))
    );
}

#[test]
fn traffic_that_comes_round_a_ring_of_forwarding_servers_is_dropped() {
    let mut b = Bench::with_shadow(3, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    assert_eq!(b.server(1).moved.get(&SVC).map(|m| m.to), Some(ServerId(2)));
    let input = crate::server::testkit::input;
    // From a cell with a stale route, or from a server that took this one for the
    // service's host: on to the new host.
    b.queue.clear();
    b.deliver(NodeId::Cell(CellId(1)), 1, input(9));
    b.deliver(NodeId::Server(ServerId(3)), 1, input(10));
    assert_eq!(b.queued(), ["3010>me2", "3010>me2"]);
    // Back from the new host itself (it took server 1 for its successor), or round a
    // ring of three: passed on, it would circle for ever.
    b.queue.clear();
    b.events.clear();
    b.deliver(NodeId::Server(ServerId(3)), 1, input(9));
    let probe = Probe {
        ue: UeId(1),
        service: SVC,
        via: CellId(1),
        nonce: 1,
        checksum: false,
    };
    b.deliver(NodeId::Server(ServerId(2)), 1, probe);
    assert!(b.queued().is_empty(), "{:?}", b.queued());
    let seen = violations(&b.events_of(1));
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].contains("input 9 for svc1 came round a ring"),
        "{seen:?}"
    );
}

#[test]
fn a_shadow_holds_what_its_host_passes_on_when_the_ue_turns_back() {
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    // Server 1 keeps the old instance as a shadow of server 2, its new host.
    assert_eq!(b.server(1).moved.get(&SVC).map(|m| m.to), Some(ServerId(2)));
    b.input(2, 4);
    b.pump();
    b.events.clear();
    // Server 2 freezes to move the service back; the shadow here lacks input 4.
    let inst = &b.live(2).inst;
    let req = edgeshift_proto::RelocateRequest {
        service: SVC,
        source: ServerId(2),
        last_seq: inst.last_seq,
        digest: inst.digest,
        epoch: 8,
        transfer_pending: false,
        state_checksum: None,
        answers: Vec::new(),
    };
    let from2 = NodeId::Server(ServerId(2));
    b.deliver(from2, 1, req);
    assert_eq!(b.queued(), ["2005>me2"]);
    // What server 2 passes on meanwhile is early, not a ring of stale forwarding.
    b.deliver(from2, 1, crate::server::testkit::input(5));
    b.deliver(from2, 1, probe(3));
    assert_eq!(b.shadow(1).held.len(), 2);
    assert!(violations(&b.events_of(1)).is_empty());
}

#[test]
fn answers_after_a_hold_go_where_the_ue_is_now() {
    // Frozen: input 4 comes through cell 1, then the UE moves and input 5 comes through
    // cell 2. When the source serves again, both answers go to cell 2. (Cold: the source
    // holds them rather than passing them on.)
    let mut b = Bench::with_shadow(2, |_| {});
    b.relocate(2, RelocationMode::Cold);
    b.queue.clear();
    b.input(1, 4);
    let mut moved = crate::server::testkit::input(5);
    moved.via = CellId(2);
    b.deliver(NodeId::Cell(CellId(2)), 1, moved);
    b.outside.clear();
    b.deliver(
        NodeId::Server(ServerId(2)),
        1,
        confirm(2, Verdict::Reject("full".into())),
    );
    let vias: Vec<(u64, CellId)> = b
        .outside_of(1)
        .iter()
        .filter_map(|m| match m {
            Message::ServiceOutput(o) => Some((o.seq, o.via)),
            _ => None,
        })
        .collect();
    assert_eq!(vias, [(4, CellId(2)), (5, CellId(2))]);
}

#[test]
fn a_promotion_that_came_while_fenced_waits_for_the_lease_and_yields_to_a_release() {
    let lease = |c: &mut crate::EdgeConfig| c.lease = Some(crate::LeaseConfig::new(1));
    // Server 2, holding a ready shadow, was stopped: its lease ran out, and the promotion
    // the control node sent when the source fell silent waited for it.
    let mut b = Bench::with_shadow(2, lease);
    b.advance(Duration::from_millis(1100));
    b.deliver(NodeId::CONTROL, 2, promote(8));
    assert!(
        !b.server(2).live.contains_key(&SVC),
        "promoted while fenced"
    );
    // Meanwhile the node settled it elsewhere and releases the shadow before it answers
    // the heartbeat: the promotion then finds no shadow, and says so.
    let release = order(RelocateAction::Release {
        host: ServerId(3),
        epoch: 9,
    });
    let sent = b.outside_of(2);
    b.deliver(NodeId::CONTROL, 2, release);
    b.ack_latest_heartbeat(2, &sent);
    assert!(!b.server(2).live.contains_key(&SVC));
    assert!(
        b.outside_of(2)
            .iter()
            .any(|m| matches!(m, Message::RelocationDone(d) if !d.ok && d.epoch == 8))
    );
    // Nothing came in between: the lease's return promotes it.
    let mut b = Bench::with_shadow(2, lease);
    b.advance(Duration::from_millis(1100));
    b.deliver(NodeId::CONTROL, 2, promote(8));
    let sent = b.outside_of(2);
    b.ack_latest_heartbeat(2, &sent);
    assert_eq!(b.live(2).epoch, 8);
}

fn abort(epoch: u64) -> Relocate {
    order(RelocateAction::Abort { epoch })
}

#[test]
fn an_abort_calls_off_a_promotion_that_waits_for_the_lease() {
    let lease = |c: &mut crate::EdgeConfig| c.lease = Some(crate::LeaseConfig::new(1));
    let mut b = Bench::with_shadow(2, lease);
    b.advance(Duration::from_millis(1100));
    b.deliver(NodeId::CONTROL, 2, promote(8));
    // The node gave the promotion up (its server seemed dead too) and aborts it before
    // the lease returns: nothing of it may go live later, whatever shadow is here then.
    b.deliver(NodeId::CONTROL, 2, abort(8));
    assert!(b.server(2).deferred_promotions.is_empty());
    let sent = b.outside_of(2);
    b.ack_latest_heartbeat(2, &sent);
    assert!(!b.server(2).live.contains_key(&SVC));
}

#[test]
fn a_promotion_older_than_an_abort_is_refused_even_with_a_new_shadow() {
    let mut b = Bench::with_shadow(2, |_| {});
    b.deliver(NodeId::CONTROL, 2, abort(8));
    assert!(b.server(2).shadows.is_empty());
    // A new shadow comes (the source stops syncing the old one first), then the aborted
    // promotion, late.
    let discard = order(RelocateAction::Discard {
        servers: vec![ServerId(2)],
    });
    b.deliver(NodeId::CONTROL, 1, discard);
    b.prepare(&[2], SyncMode::Replay);
    b.pump();
    assert!(matches!(
        b.shadow(2).state,
        crate::server::shadow::ShadowState::Ready(_)
    ));
    b.outside.clear();
    b.deliver(NodeId::CONTROL, 2, promote(8));
    assert!(
        !b.server(2).live.contains_key(&SVC),
        "promoted under a called-off epoch"
    );
    assert!(
        b.outside_of(2)
            .iter()
            .any(|m| matches!(m, Message::RelocationDone(d) if !d.ok && d.epoch == 8))
    );
    // A newer promotion is not held back.
    b.deliver(NodeId::CONTROL, 2, promote(9));
    assert_eq!(b.live(2).epoch, 9);
}

#[test]
fn any_live_instance_asks_for_inputs_behind_a_gap_that_lasts() {
    let mut b = Bench::deployed(1, |_| {});
    for seq in 1..=3 {
        b.input(1, seq);
    }
    b.outside.clear();
    let resends = |b: &mut Bench| {
        b.outside_of(1)
            .iter()
            .filter_map(|m| match m {
                Message::ResendFrom(r) => Some(r.after),
                _ => None,
            })
            .collect::<Vec<u64>>()
    };
    // Input 4 is missing: a reordered input is no reason to ask yet.
    b.input(1, 5);
    assert!(resends(&mut b).is_empty());
    // Still missing 100 ms later: it was lost on its way (through a server that died).
    b.advance(Duration::from_millis(150));
    b.input(1, 6);
    assert_eq!(resends(&mut b), [3]);
}

#[test]
fn the_new_host_adopts_the_old_instance_and_the_other_shadow_once_each_says_where_it_stands() {
    use edgeshift_proto::{PrepareShadow, ShadowReady, ShadowRefused};
    // Shadows at 2 and 3; input 4 waits in the replay batch when the service moves to 2.
    let mut b = Bench::deployed(4, |_| {});
    for s in 1..=3 {
        b.input(1, s);
    }
    b.prepare(&[2, 3], SyncMode::Replay);
    b.pump();
    b.input(1, 4);
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    // The batch went to 3 at the freeze; the old instance stays as a shadow of 2.
    let seq = |b: &mut Bench, id: u32| match &b.shadow(id).state {
        crate::server::shadow::ShadowState::Ready(i) => i.last_seq,
        _ => panic!("no ready shadow at me{id}"),
    };
    assert_eq!((seq(&mut b, 1), seq(&mut b, 3)), (4, 4));
    assert_eq!(b.shadow(1).source, ServerId(2));
    for s in 5..=6 {
        b.input(2, s);
    }
    b.outside.clear();
    let adopt = PrepareShadow {
        service: SVC,
        ue: UeId(1),
        source: ServerId(2),
        candidates: vec![ServerId(1), ServerId(3), ServerId(4)],
        sync: SyncMode::Replay,
        start: Timing::at(b.now),
        adopt: true,
    };
    // The candidates' 1003s overtake the host's: their 3032s wait there for it.
    for c in [3, 4, 1] {
        b.send(NodeId::CONTROL, c, adopt.clone());
    }
    b.pump();
    assert!(b.live(2).links.is_empty(), "linked before its own 1003");
    assert!(matches!(
        b.outside_of(4).as_slice(),
        [Message::ShadowRefused(ShadowRefused {
            server: ServerId(4),
            ..
        })]
    ));
    b.send(NodeId::CONTROL, 2, adopt);
    b.pump();
    assert!(b.live(2).links.values().all(|l| l.ready));
    assert_eq!(
        b.live(2).links.keys().copied().collect::<Vec<_>>(),
        [ServerId(1), ServerId(3)]
    );
    // Each got inputs 5 and 6 from the log, and the control node hears each confirmed.
    assert_eq!((seq(&mut b, 1), seq(&mut b, 3)), (6, 6));
    assert_eq!(b.shadow(3).source, ServerId(2));
    let confirmed: Vec<ServerId> = b
        .outside_of(2)
        .into_iter()
        .filter_map(|m| match m {
            Message::ShadowReady(ShadowReady { server, seq: 6, .. }) => Some(server),
            _ => None,
        })
        .collect();
    assert_eq!(confirmed, [ServerId(1), ServerId(3)]);
    // From now on the host syncs them like any replay shadow.
    b.input(2, 7);
    b.advance(Duration::from_secs(1));
    b.pump();
    assert_eq!((seq(&mut b, 1), seq(&mut b, 3)), (7, 7));
    assert!(violations(&b.events.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()).is_empty());
}

/// The load reports at each end of a relocation (server 1 also hosts service 2).
fn reports(b: &mut Bench, id: u32) -> Vec<(u32, Vec<(ServiceId, u64)>)> {
    b.outside_of(id)
        .into_iter()
        .filter_map(|m| match m {
            Message::LoadReport(r) => Some((r.hosted, r.services)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_relocation_reports_only_the_service_it_moved_and_the_periodic_report_every_one() {
    let mut b = Bench::with_shadow(2, |_| {});
    let other = ServiceId(2);
    let spec = crate::MemConfig {
        state_bytes: 3000,
        writes_per_input: 1,
    }
    .spec(0);
    b.deliver(
        NodeId::CONTROL,
        1,
        edgeshift_proto::Instantiate {
            service: other,
            ue: UeId(2),
            spec,
        },
    );
    assert_eq!(reports(&mut b, 1), [(2, vec![(other, 3000)])]);
    b.relocate(2, RelocationMode::Hot);
    b.pump();
    // The source names nothing (the service left), the target the one that arrived.
    assert_eq!(reports(&mut b, 1), [(1, vec![])]);
    assert_eq!(reports(&mut b, 2), [(1, vec![(SVC, 5000)])]);
    b.advance(Duration::from_secs(1));
    assert_eq!(reports(&mut b, 1), [(1, vec![(other, 3000)])]);
    assert_eq!(reports(&mut b, 2), [(1, vec![(SVC, 5000)])]);
}
