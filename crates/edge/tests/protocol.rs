//! Role-level tests of the ME server: two or three servers wired back to back, the
//! control node and cells played by the test.

use std::collections::{BTreeMap, VecDeque};

use edgeshift_edge::{EdgeConfig, EdgeEvent, EdgeServer, MemConfig, MemFactory};
use edgeshift_proto::*;

struct World {
    servers: BTreeMap<ServerId, EdgeServer>,
    queue: VecDeque<(NodeId, Transmit)>,
    outside: Vec<(NodeId, Transmit)>,
    events: Vec<(ServerId, EdgeEvent)>,
    now: Instant,
}

impl World {
    fn new(n: u32) -> Self {
        let servers = (1..=n)
            .map(|i| {
                (
                    ServerId(i),
                    EdgeServer::new(
                        EdgeConfig::new(ServerId(i)),
                        Box::new(MemFactory),
                        Instant::ZERO,
                    ),
                )
            })
            .collect();
        Self {
            servers,
            queue: VecDeque::new(),
            outside: Vec::new(),
            events: Vec::new(),
            now: Instant::ZERO,
        }
    }

    fn deliver(&mut self, from: NodeId, to: ServerId, msg: impl Into<Message>) {
        self.queue.push_back((
            from,
            Transmit {
                to: to.into(),
                msg: msg.into(),
            },
        ));
        self.pump(|_| true);
    }

    /// Delivers until quiet; `keep` may drop or alter messages between servers.
    fn pump(&mut self, mut keep: impl FnMut(&mut Transmit) -> bool) {
        loop {
            for (id, s) in &mut self.servers {
                while let Some(t) = s.poll_transmit() {
                    self.queue.push_back(((*id).into(), t));
                }
                while let Some(e) = s.poll_event() {
                    self.events.push((*id, e));
                }
            }
            let Some((from, mut t)) = self.queue.pop_front() else {
                break;
            };
            self.now += std::time::Duration::from_micros(100);
            match t.to {
                NodeId::Server(s) if self.servers.contains_key(&s) => {
                    if keep(&mut t) {
                        let now = self.now;
                        if let Some(server) = self.servers.get_mut(&s) {
                            server.handle_message(now, from, t.msg);
                        }
                    }
                }
                _ => self.outside.push((from, t)),
            }
        }
    }

    fn server(&self, id: u32) -> &EdgeServer {
        &self.servers[&ServerId(id)]
    }

    fn input(&mut self, seq: u64) {
        self.input_acked(seq, 0);
    }

    /// Input `seq` from a UE that has the answers to every input below `answered_below`.
    fn input_acked(&mut self, seq: u64, answered_below: u64) {
        let input = ServiceInput {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(1),
            answered_below,
            input: InputRecord {
                seq,
                payload: seq.to_le_bytes().to_vec(),
            },
        };
        let host = self
            .servers
            .iter()
            .find(|(_, s)| s.live_services().any(|x| x == ServiceId(1)))
            .map(|(id, _)| *id)
            .unwrap_or(ServerId(1));
        self.deliver(NodeId::Cell(CellId(1)), host, input);
    }

    fn answers(&self) -> Vec<u64> {
        self.outside
            .iter()
            .filter_map(|(_, t)| match &t.msg {
                Message::ServiceOutput(o) => Some(o.seq),
                _ => None,
            })
            .collect()
    }

    fn has_event(&self, server: u32, f: impl Fn(&EdgeEvent) -> bool) -> bool {
        self.events
            .iter()
            .any(|(s, e)| *s == ServerId(server) && f(e))
    }
}

fn deploy(w: &mut World, spec: ServiceSpec) {
    w.deliver(
        NodeId::CONTROL,
        ServerId(1),
        Instantiate {
            service: ServiceId(1),
            ue: UeId(1),
            spec,
        },
    );
}

fn mem_spec() -> ServiceSpec {
    MemConfig {
        state_bytes: 3 << 20,
        writes_per_input: 16,
    }
    .spec(0)
}

fn prepare(w: &mut World, candidates: Vec<ServerId>, sync: SyncMode) {
    let m = PrepareShadow {
        service: ServiceId(1),
        ue: UeId(1),
        source: ServerId(1),
        candidates,
        sync,
        start: Timing::at(Instant::ZERO),
        adopt: false,
    };
    w.deliver(NodeId::CONTROL, ServerId(1), m);
}

fn relocate_msg(now: Instant, target: u32, mode: RelocationMode) -> Relocate {
    Relocate {
        service: ServiceId(1),
        action: RelocateAction::Relocate {
            source: ServerId(1),
            target: ServerId(target),
            mode,
            epoch: 2,
        },
        timing: Timing::at(now),
    }
}

/// 1006 to source and target, everything delivered.
fn relocate(w: &mut World, target: u32, mode: RelocationMode) {
    let m = relocate_msg(w.now, target, mode);
    w.deliver(NodeId::CONTROL, ServerId(1), m.clone());
    w.deliver(NodeId::CONTROL, ServerId(target), m);
}

/// 1006 to the source only; `keep` may drop or alter the traffic that follows.
fn relocate_with(
    w: &mut World,
    target: u32,
    mode: RelocationMode,
    keep: impl FnMut(&mut Transmit) -> bool,
) {
    let m = relocate_msg(w.now, target, mode);
    w.queue.push_back((
        NodeId::CONTROL,
        Transmit {
            to: ServerId(1).into(),
            msg: m.into(),
        },
    ));
    w.pump(keep);
}

#[test]
fn hot_relocation_moves_the_live_instance_with_identical_state() {
    let mut w = World::new(3);
    deploy(&mut w, mem_spec());
    for s in 1..=10 {
        w.input(s);
    }
    prepare(&mut w, vec![ServerId(2), ServerId(3)], SyncMode::Replay);
    for s in 11..=30 {
        w.input(s);
    }
    let before = w.server(1).live_view(ServiceId(1)).expect("live at 1");
    relocate(&mut w, 2, RelocationMode::Hot);
    assert!(w.server(1).live_view(ServiceId(1)).is_none());
    let after = w.server(2).live_view(ServiceId(1)).expect("live at 2");
    assert_eq!(
        (after.last_seq, after.digest, after.checksum),
        (before.last_seq, before.digest, before.checksum)
    );
    assert!(w.has_event(2, |e| matches!(
        e,
        EdgeEvent::Activated {
            first_try: true,
            ..
        }
    )));
    // Server 3's shadow is still there until the control node discards it.
    assert!(w.server(3).shadow_services().any(|s| s == ServiceId(1)));
    let discard = Relocate {
        service: ServiceId(1),
        action: RelocateAction::Discard {
            servers: vec![ServerId(3)],
        },
        timing: Timing::at(w.now),
    };
    w.deliver(NodeId::CONTROL, ServerId(3), discard);
    assert_eq!(w.server(3).shadow_services().count(), 0);
    // Inputs keep flowing to the new host, and a stale route to the old one is forwarded.
    w.input(31);
    w.deliver(
        NodeId::Cell(CellId(1)),
        ServerId(1),
        ServiceInput {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(1),
            answered_below: 0,
            input: InputRecord {
                seq: 32,
                payload: vec![1],
            },
        },
    );
    assert_eq!(
        w.server(2).live_view(ServiceId(1)).map(|v| v.last_seq),
        Some(32)
    );
    assert_eq!(w.answers(), (1..=32).collect::<Vec<_>>());
}

#[test]
fn a_corrupted_delta_is_detected_and_the_shadow_is_rebuilt() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    prepare(&mut w, vec![ServerId(2)], SyncMode::Delta);
    for s in 1..=20 {
        w.input(s);
    }
    // The next delta tick: flip a byte in the delta on its way.
    let mut corrupted = 0;
    let now = w.now + std::time::Duration::from_millis(60);
    w.now = now;
    w.servers
        .get_mut(&ServerId(1))
        .expect("server")
        .handle_timeout(now);
    w.pump(|t| {
        if let Message::ShadowSync(ShadowSync {
            body: SyncBody::Delta(d),
            ..
        }) = &mut t.msg
            && let Some(c) = d.chunks.first_mut()
            && corrupted == 0
        {
            c.data[0] ^= 0xff;
            corrupted += 1;
        }
        true
    });
    assert_eq!(corrupted, 1);
    assert!(w.has_event(
        2,
        |e| matches!(e, EdgeEvent::ProtocolViolation { what, .. } if what.contains("checksum"))
    ));
    // The source started the shadow over; a relocation now is valid.
    relocate(&mut w, 2, RelocationMode::Hot);
    let v = w.server(2).live_view(ServiceId(1)).expect("live at 2");
    assert_eq!(v.last_seq, 20);
}

#[test]
fn a_target_that_cannot_host_rejects_and_the_source_serves_on() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    for s in 1..=5 {
        w.input(s);
    }
    // Server 2 loses every 1004: it can never get the state and asks again and again;
    // here we make it unable to instantiate instead, by corrupting the code in flight.
    relocate_with(&mut w, 2, RelocationMode::Cold, |t| {
        if let Message::ShadowTransfer(m) = &mut t.msg
            && let Some(spec) = &mut m.spec
        {
            spec.code = CodeRef::Inline {
                kind: "mem".into(),
                bytes: b"not the code".to_vec(),
            };
        }
        true
    });
    assert!(w.has_event(1, |e| matches!(e, EdgeEvent::RelocationFailed { .. })));
    let v = w
        .server(1)
        .live_view(ServiceId(1))
        .expect("still live at 1");
    assert!(!v.frozen);
    assert!(w.server(2).live_view(ServiceId(1)).is_none());
    w.input(6);
    assert_eq!(
        w.server(1).live_view(ServiceId(1)).map(|v| v.last_seq),
        Some(6)
    );
    assert!(
        w.outside
            .iter()
            .any(|(_, t)| matches!(&t.msg, Message::RelocationDone(d) if !d.ok))
    );
}

/// The answers a cold move from server 1 to 2 carries, after inputs 1..=`n`, each sent
/// with `answered_below(seq)`.
fn answers_carried(n: u64, answered_below: impl Fn(u64) -> u64) -> (World, Vec<u64>) {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    for s in 1..=n {
        w.input_acked(s, answered_below(s));
    }
    let mut carried = Vec::new();
    relocate_with(&mut w, 2, RelocationMode::Cold, |t| {
        if let Message::RelocateRequest(r) = &t.msg {
            carried = r.answers.iter().map(|a| a.seq).collect();
        }
        true
    });
    (w, carried)
}

#[test]
fn an_answer_the_ue_still_lacks_moves_with_the_service_however_old() {
    // The radio lost the answer to input 1, so the UE confirms nothing: every answer
    // travels, not only the latest few hundred.
    let (mut w, carried) = answers_carried(1000, |_| 1);
    assert_eq!(carried, (1..=1000).collect::<Vec<_>>());
    w.outside.clear();
    w.input_acked(1, 1); // the UE asks again, now at server 2
    assert_eq!(w.answers(), vec![1]);
}

#[test]
fn answers_the_ue_confirmed_stay_off_the_critical_path() {
    // Each input confirms the answers to all before it.
    let (_, carried) = answers_carried(1000, |s| s);
    assert_eq!(carried, vec![1000]);
}

#[test]
fn a_target_told_the_relocation_is_off_refuses_its_late_2004() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    for s in 1..=3 {
        w.input(s);
    }
    // The control node called relocation 2 off at the target before the source, slow to
    // act on its 1006, sent the 2004.
    w.deliver(
        NodeId::CONTROL,
        ServerId(2),
        Relocate {
            service: ServiceId(1),
            action: RelocateAction::Abort { epoch: 2 },
            timing: Timing::at(w.now),
        },
    );
    relocate_with(&mut w, 2, RelocationMode::Cold, |_| true);
    assert!(
        w.server(2).live_view(ServiceId(1)).is_none(),
        "never live beside a source the control node told to resume"
    );
    assert!(w.has_event(2, |e| matches!(
        e,
        EdgeEvent::ProtocolViolation { what, .. } if what.contains("past")
    )));
    // The source got the refusal and serves again.
    assert!(
        w.server(1)
            .live_view(ServiceId(1))
            .is_some_and(|v| !v.frozen)
    );
}

#[test]
fn a_1006_of_a_past_epoch_is_not_obeyed() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    w.input(1);
    // The control node (a newer term) has spoken about epoch 9.
    w.deliver(
        NodeId::CONTROL,
        ServerId(1),
        Relocate {
            service: ServiceId(1),
            action: RelocateAction::Promote { epoch: 9 },
            timing: Timing::at(w.now),
        },
    );
    relocate(&mut w, 2, RelocationMode::Cold); // epoch 2: a deposed leader's
    assert!(
        w.server(1)
            .live_view(ServiceId(1))
            .is_some_and(|v| !v.frozen)
    );
    assert!(w.server(2).live_view(ServiceId(1)).is_none());
    assert!(w.has_event(1, |e| matches!(
        e,
        EdgeEvent::ProtocolViolation { what, .. } if what.contains("1006 of epoch 2")
    )));
    // Its sender hears the relocation failed.
    assert!(w.outside.iter().any(|(_, t)| matches!(
        &t.msg,
        Message::RelocationDone(d) if !d.ok && d.epoch == 2
    )));
}

#[test]
fn inputs_held_while_frozen_are_not_lost() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    prepare(&mut w, vec![ServerId(2)], SyncMode::Replay);
    for s in 1..=3 {
        w.input(s);
    }
    // Freeze the source, hold the 2004 back, and send an input meanwhile.
    let mut held = Vec::new();
    relocate_with(&mut w, 2, RelocationMode::Hot, |t| {
        if matches!(t.msg, Message::RelocateRequest(_)) {
            held.push(t.clone());
            return false;
        }
        true
    });
    assert!(
        w.server(1)
            .live_view(ServiceId(1))
            .is_some_and(|v| v.frozen)
    );
    w.deliver(
        NodeId::Cell(CellId(1)),
        ServerId(1),
        ServiceInput {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(1),
            answered_below: 0,
            input: InputRecord {
                seq: 4,
                payload: vec![4],
            },
        },
    );
    assert_eq!(
        w.answers(),
        vec![1, 2, 3],
        "a frozen source does not answer"
    );
    for t in held {
        w.queue.push_back((ServerId(1).into(), t));
    }
    w.pump(|_| true);
    assert_eq!(
        w.server(2).live_view(ServiceId(1)).map(|v| v.last_seq),
        Some(4)
    );
    assert_eq!(w.answers(), vec![1, 2, 3, 4]);
}

#[test]
fn garbage_and_misrouted_messages_become_events_not_panics() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    w.deliver(
        NodeId::CONTROL,
        ServerId(1),
        HandoverCommand {
            ue: UeId(1),
            target: CellId(2),
        },
    );
    w.deliver(
        NodeId::Server(ServerId(2)),
        ServerId(1),
        RelocateConfirm {
            service: ServiceId(1),
            target: ServerId(2),
            verdict: Verdict::Valid,
        },
    );
    w.deliver(
        NodeId::Server(ServerId(2)),
        ServerId(1),
        ShadowTransfer {
            service: ServiceId(1),
            ue: UeId(1),
            source: ServerId(2),
            transfer: 9,
            seq: 0,
            digest: 0,
            spec: None,
            total_len: 10,
            offset: 0,
            data: vec![0; 10].into(),
            state_checksum: Some(1),
            answers: Vec::new(),
        },
    );
    // A 1004 whose checksum does not match is refused, and the sender is told.
    let bad = ShadowTransfer {
        service: ServiceId(7),
        ue: UeId(7),
        source: ServerId(1),
        transfer: 1,
        seq: 0,
        digest: 0,
        spec: Some(mem_spec()),
        total_len: 3 << 20,
        offset: 0,
        data: vec![0; 3 << 20].into(),
        state_checksum: Some(42),
        answers: Vec::new(),
    };
    w.deliver(NodeId::Server(ServerId(1)), ServerId(2), bad);
    assert!(w.server(2).live_view(ServiceId(7)).is_none());
    let bad_code = ServiceSpec {
        code: CodeRef::Inline {
            kind: "wasm".into(),
            bytes: vec![0, 1],
        },
        config: vec![],
        latency_budget_ms: 0,
    };
    w.deliver(
        NodeId::CONTROL,
        ServerId(2),
        Instantiate {
            service: ServiceId(8),
            ue: UeId(8),
            spec: bad_code,
        },
    );
    assert!(w.has_event(2, |e| matches!(e, EdgeEvent::ServiceError { error, .. } if error.contains("unknown service kind"))));
    assert!(
        w.server(1).live_view(ServiceId(1)).is_some(),
        "the live service is untouched"
    );
    assert!(
        w.events
            .iter()
            .filter(|(_, e)| matches!(e, EdgeEvent::ProtocolViolation { .. }))
            .count()
            >= 3
    );
}

#[test]
fn a_delta_synced_shadow_out_of_date_at_2004_catches_up_with_a_delta() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    prepare(&mut w, vec![ServerId(2)], SyncMode::Delta);
    for s in 1..=10 {
        w.input(s);
    }
    // No delta tick since: the shadow still holds the snapshot at input 0.
    let mut seen = Vec::new();
    relocate_with(&mut w, 2, RelocationMode::Hot, |t| {
        match &t.msg {
            Message::RelocateConfirm(c) => seen.push(format!("2005 {:?}", c.verdict)),
            Message::CatchUp(c) => seen.push(match &c.body {
                SyncBody::Delta(d) => format!("3035 delta to {}", d.seq),
                SyncBody::Inputs(i) => format!("3035 {} inputs", i.len()),
            }),
            _ => {}
        }
        true
    });
    assert_eq!(seen, ["2005 NeedFrom(0)", "3035 delta to 10", "2005 Valid"]);
    let v = w.server(2).live_view(ServiceId(1)).expect("live at 2");
    assert_eq!(v.last_seq, 10);
    assert!(w.has_event(2, |e| matches!(
        e,
        EdgeEvent::Activated {
            first_try: false,
            ..
        }
    )));
}

#[test]
fn a_source_whose_target_never_confirms_asks_again_then_serves_on() {
    let mut w = World::new(2);
    deploy(&mut w, mem_spec());
    prepare(&mut w, vec![ServerId(2)], SyncMode::Replay);
    for s in 1..=3 {
        w.input(s);
    }
    // The target crashed: nothing reaches it any more.
    relocate_with(&mut w, 2, RelocationMode::Hot, |t| {
        t.to != NodeId::Server(ServerId(2))
    });
    assert!(
        w.server(1)
            .live_view(ServiceId(1))
            .is_some_and(|v| v.frozen)
    );
    // An input arrives while frozen: it is held, not lost.
    w.deliver(
        NodeId::Cell(CellId(1)),
        ServerId(1),
        ServiceInput {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(1),
            answered_below: 0,
            input: InputRecord {
                seq: 4,
                payload: 4u64.to_le_bytes().to_vec(),
            },
        },
    );
    let mut requests = 0;
    for _ in 0..200 {
        let Some(at) = w.servers[&ServerId(1)].poll_timeout() else {
            break;
        };
        w.now = w.now.max(at);
        let now = w.now;
        if let Some(s) = w.servers.get_mut(&ServerId(1)) {
            s.handle_timeout(now);
        }
        w.pump(|t| {
            if matches!(t.msg, Message::RelocateRequest(_)) {
                requests += 1;
            }
            t.to != NodeId::Server(ServerId(2))
        });
        if w.has_event(1, |e| matches!(e, EdgeEvent::RelocationFailed { .. })) {
            break;
        }
    }
    let attempts = EdgeConfig::new(ServerId(1)).confirm_attempts;
    assert_eq!(
        requests,
        attempts - 1,
        "the 2004 is repeated before giving up"
    );
    assert!(w.has_event(1, |e| matches!(e, EdgeEvent::RelocationFailed { reason, .. } if reason.contains("did not confirm"))));
    let v = w
        .server(1)
        .live_view(ServiceId(1))
        .expect("live again at 1");
    assert!(!v.frozen);
    assert_eq!(v.last_seq, 4, "the held input was applied");
    assert_eq!(w.answers(), vec![1, 2, 3, 4]);
    assert!(
        w.outside
            .iter()
            .any(|(_, t)| matches!(&t.msg, Message::RelocationDone(d) if !d.ok))
    );
}
