//! Input runs (3016) and answer runs (3017): each input handled as its own 3010 would be,
//! with one job, one answer message and one sync for the run.

use edgeshift_proto::{CellId, InputRecord, InputRun, Message, NodeId, UeId};

use super::super::shadow::ShadowState;
use super::super::testkit::{Bench, SVC, violations};
use crate::EdgeEvent;

/// Inputs `seqs` of [`SVC`] as one run through cell 1.
fn run(seqs: impl IntoIterator<Item = u64>) -> InputRun {
    InputRun {
        ue: UeId(1),
        service: SVC,
        via: CellId(1),
        inputs: seqs
            .into_iter()
            .map(|seq| InputRecord {
                seq,
                payload: seq.to_le_bytes().to_vec(),
            })
            .collect(),
        answered_below: 0,
    }
}

/// The answers among `msgs`: one `Vec` of sequence numbers per message.
fn answer_messages(msgs: &[Message]) -> Vec<Vec<u64>> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::ServiceOutput(o) => Some(vec![o.seq]),
            Message::OutputRun(r) => Some(r.answers.iter().map(|a| a.seq).collect()),
            _ => None,
        })
        .collect()
}

fn applied(events: &[EdgeEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::Applied {
                seq, live: true, ..
            } => Some(*seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_run_is_applied_answered_and_synced_together() {
    let mut b = Bench::with_shadow(2, |c| c.output_runs = true);
    b.deliver(NodeId::Cell(CellId(1)), 1, run(4..=6));
    assert_eq!(answer_messages(&b.outside_of(1)), [vec![4, 5, 6]]);
    assert_eq!(applied(&b.events_of(1)), [4, 5, 6]);
    // One replay sync carries the run to the shadow.
    assert_eq!(b.queued(), ["1010>me2"]);
    b.pump();
    let ShadowState::Ready(inst) = &b.shadow(2).state else {
        panic!("the shadow is not ready");
    };
    let (shadow_seq, shadow_digest) = (inst.last_seq, inst.digest);
    let live = b.server(1).live_view(SVC).expect("live at me1");
    assert_eq!((shadow_seq, shadow_digest), (6, live.digest));

    // The same inputs one by one give the same state.
    let mut twin = Bench::deployed(1, |_| {});
    for seq in 1..=6 {
        twin.input(1, seq);
    }
    let t = twin.server(1).live_view(SVC).expect("live");
    assert_eq!((live.digest, live.checksum), (t.digest, t.checksum));
    assert!(violations(&b.events_of(2)).is_empty());
}

#[test]
fn without_answer_runs_each_answer_goes_alone() {
    let mut b = Bench::deployed(1, |_| {});
    b.deliver(NodeId::Cell(CellId(1)), 1, run(1..=3));
    assert_eq!(answer_messages(&b.outside_of(1)), [[1], [2], [3]]);
}

#[test]
fn a_run_that_repeats_applied_inputs_reanswers_them_and_applies_the_rest_once() {
    let mut b = Bench::deployed(1, |c| c.output_runs = true);
    b.input(1, 1);
    b.input(1, 2);
    b.outside_of(1);
    b.events_of(1);
    // The UE resent 1 and 2 (their answers were lost) with the new 3 and 4.
    b.deliver(NodeId::Cell(CellId(1)), 1, run(1..=4));
    assert_eq!(
        answer_messages(&b.outside_of(1)),
        [vec![1], vec![2], vec![3, 4]]
    );
    assert_eq!(applied(&b.events_of(1)), [3, 4]);
    assert_eq!(b.live(1).inst.last_seq, 4);
}

#[test]
fn a_run_with_a_gap_waits_for_the_missing_input() {
    let mut b = Bench::deployed(1, |c| c.output_runs = true);
    b.deliver(NodeId::Cell(CellId(1)), 1, run([2, 3]));
    assert!(answer_messages(&b.outside_of(1)).is_empty());
    b.input(1, 1);
    assert_eq!(answer_messages(&b.outside_of(1)), [vec![1, 2, 3]]);
    assert_eq!(applied(&b.events_of(1)), [1, 2, 3]);
}
