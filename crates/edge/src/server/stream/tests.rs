//! Streamed transfers: paced by the driver, in their place among the other messages, and
//! given up when their instance is no longer the snapshot they started from.

use edgeshift_proto::{
    Instant, Lane, Message, NodeId, Relocate, RelocateAction, RelocationMode, Role, Timing,
    Transmit,
};

use crate::server::testkit::{Bench, SVC, relocate};

/// Server 1 hosts the service (5000 bytes: five 1000-byte chunks) after input 1 and has
/// just been told to relocate it cold to server 2; nothing it sent is taken yet.
fn frozen() -> Bench {
    let mut b = Bench::deployed(2, |_| {});
    b.input(1, 1);
    b.queue.clear();
    b.outside.clear();
    let now = b.now;
    let m = relocate(now, 2, RelocationMode::Cold);
    b.server(1).handle_message(now, NodeId::CONTROL, m.into());
    b
}

fn names(out: &[Transmit]) -> Vec<u16> {
    out.iter().map(|t| t.msg.type_code()).collect()
}

#[test]
fn a_frozen_instance_streams_its_state_as_the_link_has_room() {
    let mut b = frozen();
    // No room: only control-lane messages go (the 2004 passes the waiting stream).
    let s = b.server(1);
    let first: Vec<Transmit> = std::iter::from_fn(|| s.poll_transmit_paced(|_| false)).collect();
    assert!(first.iter().all(|t| t.msg.lane() == Lane::Control));
    assert!(names(&first).contains(&2004), "{:?}", names(&first));
    assert!(s.streaming());
    // Room for two chunks, then none, then all: five chunks in order, the last with
    // the checksum, and the stream is done.
    let mut budget = 2;
    let mut room = |_| {
        budget -= 1;
        budget >= 0
    };
    let two: Vec<Transmit> = std::iter::from_fn(|| s.poll_transmit_paced(&mut room)).collect();
    let rest: Vec<Transmit> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert!(!s.streaming());
    let offsets: Vec<(u64, bool)> = two
        .iter()
        .chain(&rest)
        .filter_map(|t| match &t.msg {
            Message::ShadowTransfer(m) => Some((m.offset, m.state_checksum.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        offsets,
        [
            (0, false),
            (1000, false),
            (2000, false),
            (3000, false),
            (4000, true)
        ]
    );
    // The target gets them and goes live with the state.
    for t in first.into_iter().chain(two).chain(rest) {
        if t.to == NodeId::Server(edgeshift_proto::ServerId(2)) {
            b.send(NodeId::Server(edgeshift_proto::ServerId(1)), 2, t.msg);
        }
    }
    b.pump();
    assert_eq!(b.live(2).inst.last_seq, 1);
}

#[test]
fn a_stream_whose_instance_thaws_is_given_up() {
    let mut b = frozen();
    let s = b.server(1);
    let mut budget = 2;
    let mut room = |_| {
        budget -= 1;
        budget >= 0
    };
    let sent: Vec<Transmit> = std::iter::from_fn(|| s.poll_transmit_paced(&mut room)).collect();
    assert_eq!(sent.iter().filter(|t| t.msg.type_code() == 1004).count(), 2);
    // Called off: the source serves again, and its state changes from now on. The rest
    // of the stream would not be the snapshot the first chunks were: it is not sent.
    let resume = Relocate {
        service: SVC,
        action: RelocateAction::Resume { epoch: 7 },
        timing: Timing::at(Instant::ZERO),
    };
    let now = b.now;
    b.server(1)
        .handle_message(now, NodeId::CONTROL, resume.into());
    // Even while its link has no room (its target may be gone for good): a stream that
    // can never go on does not wait for room.
    let s = b.server(1);
    let after: Vec<Transmit> = std::iter::from_fn(|| s.poll_transmit_paced(|_| false)).collect();
    assert!(!names(&after).contains(&1004), "{:?}", names(&after));
    assert!(names(&after).contains(&3033));
    assert!(!s.streaming());
}
