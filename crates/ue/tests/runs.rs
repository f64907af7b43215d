//! Inputs in runs (`UeConfig::input_run`): one 3016 per run, each input numbered and
//! timed on its own, answers taken from 3017s, round trips measured from the send.

use std::time::Duration;

use edgeshift_proto::{
    Answer, CellId, HandoverCommand, Instant, Message, NodeId, OutputRun, Role, ServiceId, UeId,
};
use edgeshift_ue::{UeClient, UeConfig};

/// A UE in cell 1 with an input every 10 ms, sent in runs of 50 ms.
fn ue(stop_at: Option<Instant>) -> UeClient {
    ue_with(|cfg| cfg.stop_at = stop_at)
}

/// [`ue`] with its configuration changed by `tune`.
fn ue_with(tune: impl FnOnce(&mut UeConfig)) -> UeClient {
    let mut cfg = UeConfig::new(UeId(1), ServiceId(1), 7);
    cfg.input_period = Duration::from_millis(10);
    cfg.input_run = Duration::from_millis(50);
    tune(&mut cfg);
    let mut ue = UeClient::new(cfg, Instant::ZERO);
    ue.handle_attach(Instant::ZERO, CellId(1));
    drain(&mut ue);
    ue
}

fn drain(ue: &mut UeClient) -> Vec<Message> {
    std::iter::from_fn(|| ue.poll_transmit())
        .map(|t| t.msg)
        .collect()
}

/// The inputs among `msgs`, one `Vec` of sequence numbers per message.
fn inputs(msgs: &[Message]) -> Vec<Vec<u64>> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::ServiceInput(i) => Some(vec![i.input.seq]),
            Message::InputRun(r) => Some(r.inputs.iter().map(|i| i.seq).collect()),
            _ => None,
        })
        .collect()
}

fn answers(ue: &mut UeClient, now: Instant, seqs: impl IntoIterator<Item = u64>) {
    let run = OutputRun {
        ue: UeId(1),
        service: ServiceId(1),
        via: CellId(1),
        answers: seqs
            .into_iter()
            .map(|seq| Answer {
                seq,
                payload: vec![],
            })
            .collect(),
    };
    ue.handle_message(now, NodeId::Cell(CellId(1)), run.into());
}

/// Runs 1 to 4 (inputs 1 to 20), each answered 4 ms after it went out, then the 2003
/// towards cell 2 at `at`.
fn four_runs_answered_then_commanded(ue: &mut UeClient, at: Instant) {
    for run in 1..=4u64 {
        ue.handle_timeout(Instant::from_millis(50 * run));
        drain(ue);
        answers(
            ue,
            Instant::from_millis(50 * run + 4),
            run * 5 - 4..=run * 5,
        );
    }
    let cmd = HandoverCommand {
        ue: UeId(1),
        target: CellId(2),
    };
    ue.handle_message(at, NodeId::Cell(CellId(1)), cmd.into());
}

#[test]
fn the_inputs_of_a_run_go_as_one_message_with_their_own_numbers() {
    let mut ue = ue(None);
    assert_eq!(ue.poll_timeout(), Some(Instant::from_millis(50)));
    ue.handle_timeout(Instant::from_millis(50));
    assert_eq!(inputs(&drain(&mut ue)), [vec![1, 2, 3, 4, 5]]);
    assert_eq!(ue.sent(), 5);
    assert_eq!(ue.poll_timeout(), Some(Instant::from_millis(100)));
    answers(&mut ue, Instant::from_millis(54), 1..=5);
    assert_eq!((ue.answered(), ue.unanswered()), (5, 0));
}

#[test]
fn round_trips_are_measured_from_the_send_not_the_creation() {
    let mut ue = ue(None);
    // Every answer 4 ms after its run went out; input 1 was made 44 ms before that.
    four_runs_answered_then_commanded(&mut ue, Instant::from_millis(210));
    assert_eq!(ue.gaps()[0].baseline_rtt, Duration::from_millis(4));
    // Waits from creation still count where the user sees them.
    assert_eq!(ue.longest_wait(), Duration::from_millis(44));
}

#[test]
fn a_lone_resend_goes_as_a_single_input_and_the_last_run_goes_at_the_stop() {
    let mut ue = ue(Some(Instant::from_millis(75)));
    ue.handle_timeout(Instant::from_millis(50));
    drain(&mut ue);
    answers(&mut ue, Instant::from_millis(54), [1, 2, 3, 5]);
    // The run is cut short at the stop: inputs 6 and 7 (60 and 70 ms) go at 75 ms.
    assert_eq!(ue.poll_timeout(), Some(Instant::from_millis(75)));
    ue.handle_timeout(Instant::from_millis(75));
    assert_eq!(inputs(&drain(&mut ue)), [vec![6, 7]]);
    // Input 4's timer runs out alone (150 ms after its send at 50 ms).
    ue.handle_timeout(Instant::from_millis(200));
    assert_eq!(inputs(&drain(&mut ue)), [vec![4]]);
}

#[test]
fn a_reattach_resends_what_is_unanswered_as_one_run() {
    let mut ue = ue(None);
    ue.handle_timeout(Instant::from_millis(50));
    drain(&mut ue);
    let cmd = HandoverCommand {
        ue: UeId(1),
        target: CellId(2),
    };
    ue.handle_message(
        Instant::from_millis(55),
        NodeId::Cell(CellId(1)),
        cmd.into(),
    );
    ue.handle_timeout(Instant::from_millis(100)); // made while the radio is down
    assert!(inputs(&drain(&mut ue)).is_empty());
    ue.handle_attach(Instant::from_millis(120), CellId(2));
    let sent = drain(&mut ue);
    assert_eq!(inputs(&sent), [(1..=10).collect::<Vec<u64>>()]);
    assert!(matches!(sent[0], Message::HandoverConfirm(_)));
}

#[test]
fn a_run_is_split_before_it_outgrows_its_payload_limit() {
    let mut ue = ue_with(|cfg| cfg.payload_len = 300_000);
    ue.handle_timeout(Instant::from_millis(50));
    let sent = drain(&mut ue);
    // 1 MiB at most per run: three inputs of 300 kB, then the other two.
    assert_eq!(inputs(&sent), [vec![1, 2, 3], vec![4, 5]]);
}

#[test]
fn a_make_before_break_stall_is_timed_from_the_send_not_the_wait_for_the_run() {
    let mut ue = ue_with(|cfg| cfg.daps = true);
    four_runs_answered_then_commanded(&mut ue, Instant::from_millis(205));
    // Both links up: the next run goes through the source and is answered as usual,
    // although input 21 was made 44 ms before its answer.
    ue.handle_timeout(Instant::from_millis(250));
    assert_eq!(inputs(&drain(&mut ue)), [vec![21, 22, 23, 24, 25]]);
    answers(&mut ue, Instant::from_millis(254), 21..=25);
    ue.handle_attach(Instant::from_millis(260), CellId(2));
    assert_eq!(ue.gaps()[0].daps_stall, Some(Duration::ZERO));
}
