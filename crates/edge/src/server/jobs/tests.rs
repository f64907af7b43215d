//! Offloaded guest work: what waits for a busy service, and what does not.

use std::time::Duration;

use edgeshift_proto::{CellId, Instantiate, Message, NodeId, RelocationMode, ServiceId, UeId};

use super::super::source::Source;
use super::super::testkit::{Bench, SVC, input, violations};
use crate::{EdgeConfig, EdgeEvent, LeaseConfig, MemConfig};

fn offload(c: &mut EdgeConfig) {
    c.offload = true;
}

/// Sequence numbers of the answers among `msgs`.
fn answers(msgs: &[Message]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::ServiceOutput(o) => Some(o.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn inputs_wait_for_the_job_and_nothing_runs_inside_the_call() {
    let mut b = Bench::deployed(2, offload);
    b.input(1, 1);
    b.input(1, 2);
    // Nothing was applied inside the calls: the first input is out as a job.
    assert!(answers(&b.outside_of(1)).is_empty());
    assert_eq!(b.live(1).inst.last_seq, 0);
    let job = b.server(1).poll_job().expect("a job");
    assert_eq!((job.service(), job.len()), (SVC, 1));
    b.server(1).jobs.push_front(job);
    // The first job, then one with the input that came meanwhile.
    assert_eq!(b.run_jobs(1), 2);
    assert_eq!(answers(&b.outside_of(1)), [1, 2]);
    assert_eq!(b.live(1).inst.last_seq, 2);
}

#[test]
fn a_relocation_waits_for_the_job_and_the_inputs_before_it() {
    let mut b = Bench::deployed(2, offload);
    b.input(1, 1);
    b.relocate(2, RelocationMode::Cold);
    b.input(1, 2);
    // The 1006 waits: no freeze with input 1 out.
    assert!(matches!(b.state(1), Source::Serving));
    assert!(b.queued().is_empty());
    b.run_jobs(1);
    // Input 1 ran before the freeze; input 2 came after the 1006 and follows the instance.
    assert!(b.state(1).is_frozen());
    assert_eq!(b.live(1).inst.last_seq, 1);
    b.pump();
    b.run_jobs(2);
    let moved = b.server(2).live_view(SVC).expect("live at me2");
    assert_eq!(moved.last_seq, 2);

    // The same inputs on a server that runs them inside the calls: the same state.
    let mut twin = Bench::deployed(1, |_| {});
    twin.input(1, 1);
    twin.input(1, 2);
    let t = twin.server(1).live_view(SVC).expect("live");
    assert_eq!((moved.digest, moved.checksum), (t.digest, t.checksum));
    assert!(violations(&b.events_of(2)).is_empty());
}

#[test]
fn a_relocation_is_not_starved_by_inputs_that_keep_coming() {
    let mut b = Bench::deployed(2, offload);
    b.input(1, 1);
    b.relocate(2, RelocationMode::Cold);
    // A guest always busy: an input comes during every job.
    for seq in 2..=20 {
        b.input(1, seq);
        let job = b.server(1).poll_job();
        if let Some(mut job) = job {
            job.run();
            let now = b.now;
            b.server(1).handle_job_done(now, job);
            b.collect();
        }
    }
    assert!(
        b.state(1).is_frozen(),
        "the 1006 is acted on after the job that was out when it came"
    );
    assert_eq!(b.live(1).inst.last_seq, 1);
    b.pump();
    b.run_jobs(2);
    assert_eq!(b.server(2).live_view(SVC).map(|v| v.last_seq), Some(20));
}

#[test]
fn a_busy_service_holds_up_no_other() {
    let mut b = Bench::deployed(1, offload);
    let spec = MemConfig {
        state_bytes: 1000,
        writes_per_input: 1,
    }
    .spec(0);
    let other = ServiceId(2);
    b.deliver(
        NodeId::CONTROL,
        1,
        Instantiate {
            service: other,
            ue: UeId(2),
            spec,
        },
    );
    b.input(1, 1);
    let stuck = b.server(1).poll_job().expect("the first service's job");
    let mut m = input(1);
    (m.ue, m.service) = (UeId(2), other);
    b.deliver(NodeId::Cell(CellId(1)), 1, m);
    // The other service's job runs and answers while the first one's is still out.
    assert_eq!(b.run_jobs(1), 1);
    assert_eq!(answers(&b.outside_of(1)), [1]);
    assert_eq!(b.server(1).live_view(other).map(|v| v.last_seq), Some(1));
    assert_eq!(b.server(1).live_view(SVC).map(|v| v.checksum), Some(None));
    drop(stuck);
}

#[test]
fn a_job_handed_back_unrun_loses_no_input() {
    let mut b = Bench::deployed(1, offload);
    b.input(1, 1);
    b.input(1, 2);
    let job = b.server(1).poll_job().expect("a job");
    let now = b.now;
    b.server(1).handle_job_done(now, job);
    assert_eq!(b.live(1).inst.last_seq, 0);
    // Input 1 is lent again, now with input 2 behind it.
    let job = b.server(1).poll_job().expect("lent again");
    assert_eq!(job.len(), 2);
    b.server(1).jobs.push_front(job);
    b.run_jobs(1);
    let mut got = answers(&b.outside_of(1));
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}

#[test]
fn a_retransmission_during_the_job_is_applied_once_and_answered_where_the_ue_is() {
    let mut b = Bench::deployed(1, offload);
    b.input(1, 1);
    let mut again = input(1);
    again.via = CellId(2);
    b.deliver(NodeId::Cell(CellId(2)), 1, again);
    b.run_jobs(1);
    let out = b.outside_of(1);
    let vias: Vec<CellId> = out
        .iter()
        .filter_map(|m| match m {
            Message::ServiceOutput(o) => Some(o.via),
            _ => None,
        })
        .collect();
    // The retransmission came through cell 2: the UE is there now, so both answers go
    // there (one sent to cell 1 would be lost).
    assert_eq!(vias, [CellId(2), CellId(2)]);
    let applied = b
        .events_of(1)
        .iter()
        .filter(|e| matches!(e, EdgeEvent::Applied { seq: 1, .. }))
        .count();
    assert_eq!(applied, 1);
}

#[test]
fn answers_of_a_job_that_ends_after_the_lease_wait_for_it() {
    let mut b = Bench::deployed(1, |c| {
        c.offload = true;
        c.lease = Some(LeaseConfig::new(1));
    });
    b.input(1, 1);
    let mut job = b.server(1).poll_job().expect("a job");
    job.run();
    // No heartbeat answered: the lease runs out while the job is away.
    b.advance(Duration::from_millis(1100));
    let now = b.now;
    b.server(1).handle_job_done(now, job);
    b.run_jobs(1);
    let out = b.outside_of(1);
    assert!(answers(&out).is_empty(), "a fenced server answered");
    // Nor does its state leave: it holds an input whose answer waits for the lease.
    b.prepare(&[2], edgeshift_proto::SyncMode::Replay);
    b.step();
    assert!(b.queue.is_empty(), "a fenced server sent {:?}", b.queued());
    // The control node answers again: the lease is back, and so is the answer.
    b.ack_latest_heartbeat(1, &out);
    assert_eq!(answers(&b.outside_of(1)), [1]);
}

#[test]
fn a_job_from_an_earlier_server_is_dropped() {
    let mut b = Bench::deployed(1, offload);
    b.input(1, 1);
    let mut job = b.server(1).poll_job().expect("a job");
    job.run();
    // The server restarts in the same process and gets its service again.
    b.advance(Duration::from_secs(1));
    let mut cfg = EdgeConfig::new(edgeshift_proto::ServerId(1));
    cfg.offload = true;
    let now = b.now;
    let fresh = super::EdgeServer::new(cfg, Box::new(crate::MemFactory), now);
    b.servers.insert(edgeshift_proto::ServerId(1), fresh);
    b.deliver(
        NodeId::CONTROL,
        1,
        Instantiate {
            service: SVC,
            ue: UeId(1),
            spec: MemConfig {
                state_bytes: 5000,
                writes_per_input: 4,
            }
            .spec(0),
        },
    );
    b.input(1, 1);
    let now = b.now;
    b.server(1).handle_job_done(now, job);
    // The stale job changed nothing; the new server's own job still counts.
    assert_eq!(b.live(1).inst.last_seq, 0);
    assert_eq!(b.run_jobs(1), 1);
    assert_eq!(b.live(1).inst.last_seq, 1);
}

#[test]
fn a_relocation_that_waited_for_a_job_past_the_lease_waits_for_the_lease_too() {
    let mut b = Bench::deployed(2, |c| {
        c.offload = true;
        c.lease = Some(LeaseConfig::new(1));
    });
    // Without the lease an input is held and a 1006 waits for the lease. When it comes
    // back the held input goes out as a job, so the relocation waits for the job; then
    // the lease runs out again.
    b.advance(Duration::from_millis(1100));
    b.input(1, 1);
    b.relocate(2, RelocationMode::Cold);
    let out = b.outside_of(1);
    b.ack_latest_heartbeat(1, &out);
    let mut job = b.server(1).poll_job().expect("the held input as a job");
    assert!(b.queue.is_empty(), "acted on while the job was out");
    b.advance(Duration::from_millis(1100));
    // The job comes back: its answer waits for the lease, and so does the state that
    // holds it.
    job.run();
    let now = b.now;
    b.server(1).handle_job_done(now, job);
    b.run_jobs(1);
    assert!(
        matches!(b.state(1), Source::Serving),
        "relocated while fenced"
    );
    assert!(
        b.queue.is_empty(),
        "state left a fenced server: {:?}",
        b.queued()
    );
    let out = b.outside_of(1);
    assert!(answers(&out).is_empty());
    b.ack_latest_heartbeat(1, &out);
    // The answer first, then the relocation.
    assert_eq!(answers(&b.outside_of(1)), [1]);
    assert!(matches!(b.state(1), Source::Frozen(_)));
}

#[test]
fn a_relocation_called_off_while_it_waited_for_the_lease_never_starts() {
    let mut b = Bench::deployed(2, |c| {
        c.lease = Some(LeaseConfig::new(1));
    });
    b.advance(Duration::from_millis(1100));
    b.relocate(2, RelocationMode::Cold); // waits for the lease
    b.deliver(
        NodeId::CONTROL,
        1,
        edgeshift_proto::Relocate {
            service: SVC,
            action: edgeshift_proto::RelocateAction::Resume { epoch: 7 },
            timing: edgeshift_proto::Timing::at(b.now),
        },
    );
    let out = b.outside_of(1);
    assert!(
        out.iter().any(|m| matches!(
            m,
            Message::RelocationDone(d) if !d.ok && d.epoch == 7
        )),
        "the control node hears it is off: {out:?}"
    );
    b.ack_latest_heartbeat(1, &out);
    assert!(matches!(b.state(1), Source::Serving));
    assert!(
        b.queued().is_empty(),
        "no 2004 for a relocation called off: {:?}",
        b.queued()
    );
}
