//! The control node against a frozen copy of its pre-refactor self (`tests/legacy/node.rs`):
//! random but honest traffic (servers answer what the node asked, plus strays it must
//! ignore), and after every step the same transmits, events, next timeout, counters and
//! registry, in the same order. A restored node must carry on like the one that never
//! stopped.

#[path = "legacy/node.rs"]
mod legacy;

use std::time::Duration;

use edgeshift_control::{ControlConfig, ControlEvent, ControlNode, ControlSnapshot, Strategy};
use edgeshift_proto::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

const SERVICES: u32 = 10;

fn config(strategy: Strategy, balance: bool) -> ControlConfig {
    // Cell 9 has no ME server.
    let topology = [
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (6, 4),
        (7, 4),
        (8, 5),
    ]
    .into_iter()
    .map(|(c, s)| (CellId(c), ServerId(s)))
    .collect();
    let mut cfg = ControlConfig::new(strategy, topology);
    cfg.backhaul
        .insert((ServerId(1), ServerId(5)), Duration::from_millis(30));
    cfg.backhaul
        .insert((ServerId(2), ServerId(3)), Duration::from_millis(2));
    if balance {
        cfg.load_threshold = Some(0.6);
        cfg.load_check_interval = Duration::from_millis(700);
    }
    cfg
}

/// What both nodes say after one step.
#[derive(Debug, PartialEq)]
struct Output<E> {
    out: Vec<Transmit>,
    events: Vec<E>,
    timeout: Option<Instant>,
}

fn drain_new(n: &mut ControlNode) -> Output<ControlEvent> {
    Output {
        out: std::iter::from_fn(|| n.poll_transmit()).collect(),
        events: std::iter::from_fn(|| n.poll_event()).collect(),
        timeout: n.poll_timeout(),
    }
}

fn drain_old(n: &mut legacy::ControlNode) -> Output<ControlEvent> {
    Output {
        out: std::iter::from_fn(|| n.poll_transmit()).collect(),
        events: std::iter::from_fn(|| n.poll_event()).collect(),
        timeout: n.poll_timeout(),
    }
}

fn same_registry(new: &ControlNode, old: &legacy::ControlNode, step: usize) {
    assert_eq!(new.stats(), old.stats(), "stats at step {step}");
    for s in 0..=SERVICES {
        let (a, b) = (new.service(ServiceId(s)), old.service(ServiceId(s)));
        assert_eq!(a.is_some(), b.is_some(), "svc{s} at step {step}");
        if let (Some(a), Some(b)) = (a, b) {
            assert_eq!(
                (
                    a.ue,
                    a.cell,
                    a.previous_cell,
                    a.host,
                    a.epoch,
                    &a.spec,
                    a.state_bytes,
                    &a.shadows
                ),
                (
                    b.ue,
                    b.cell,
                    b.previous_cell,
                    b.host,
                    b.epoch,
                    &b.spec,
                    b.state_bytes,
                    &b.shadows
                ),
                "svc{s} at step {step}"
            );
        }
    }
}

/// Servers' answers the node asked for: 3032 after a 1003, 3033 after a 1006.
#[derive(Default)]
struct Peers {
    answers: Vec<(NodeId, Message)>,
}

impl Peers {
    fn observe(&mut self, rng: &mut Rng, out: &[Transmit]) {
        for t in out {
            match (&t.msg, t.to) {
                (Message::PrepareShadow(p), NodeId::Server(to)) if to != p.source => {
                    let ready = ShadowReady {
                        service: p.service,
                        server: to,
                        seq: 1,
                    };
                    self.answers.push((to.into(), ready.into()));
                }
                (Message::Relocate(r), NodeId::Server(to)) => {
                    if let RelocateAction::Relocate {
                        source,
                        target,
                        epoch,
                        ..
                    } = r.action
                        && to == target
                    {
                        let ok = rng.chance(0.85);
                        let done = RelocationDone {
                            service: r.service,
                            from: source,
                            to: target,
                            ok,
                            epoch,
                        };
                        let from = if ok { target } else { source };
                        self.answers.push((from.into(), done.into()));
                    }
                }
                _ => {}
            }
        }
    }
}

fn timing(rng: &mut Rng, now: Instant) -> Timing {
    match rng.below(6) {
        0 => Timing::at(now - Duration::from_millis(rng.below(300))),
        1 => Timing {
            when: When::After(Duration::from_millis(rng.below(4000))),
            uncertainty: None,
        },
        2 => Timing {
            when: When::Class(TimingClass::Soon),
            uncertainty: None,
        },
        _ => Timing::at_within(
            now + Duration::from_millis(rng.below(12_000)),
            Duration::from_millis(rng.below(500)),
        ),
    }
}

/// One random input, or `None` to let time pass.
fn input(rng: &mut Rng, now: Instant, peers: &mut Peers) -> Option<(NodeId, Message)> {
    let ue = UeId(100 + rng.below(u64::from(SERVICES) + 1) as u32);
    let cell = |rng: &mut Rng| CellId(1 + rng.below(9) as u32);
    Some(match rng.below(100) {
        0..6 => {
            let service = rng.below(u64::from(SERVICES) + 1) as u32;
            let spec = ServiceSpec {
                code: CodeRef::Hash(u128::from(service)),
                config: vec![service as u8],
                latency_budget_ms: [0, 10, 20, 70][rng.below(4) as usize],
            };
            let m = Deploy {
                service: ServiceId(service),
                ue: UeId(100 + service),
                cell: cell(rng),
                spec,
            };
            (NodeId::Control, m.into())
        }
        6..40 => {
            let candidates = (0..rng.below(4))
                .map(|_| Candidate {
                    cell: cell(rng),
                    likelihood: rng.unit(),
                })
                .collect();
            let timing = (!rng.chance(0.1)).then(|| timing(rng, now));
            let source = cell(rng);
            let m = HandoverPrediction {
                ue,
                source,
                candidates,
                timing,
            };
            (source.into(), m.into())
        }
        40..55 => {
            let (source, target) = (cell(rng), cell(rng));
            let timing = if rng.chance(0.8) {
                Timing::at(now + Duration::from_millis(rng.below(120)))
            } else {
                timing(rng, now)
            };
            let m = HandoverExecution {
                ue,
                source,
                target,
                timing,
            };
            (source.into(), m.into())
        }
        55..60 => {
            let (source, target) = (cell(rng), cell(rng));
            (source.into(), HandoverCancel { ue, source, target }.into())
        }
        60..80 if !peers.answers.is_empty() => {
            let i = rng.below(peers.answers.len() as u64) as usize;
            peers.answers.swap_remove(i)
        }
        80..84 => {
            // Strays: a 3033 no relocation asked for, a 3032 from anywhere.
            let service = ServiceId(rng.below(u64::from(SERVICES) + 1) as u32);
            let server = ServerId(1 + rng.below(5) as u32);
            if rng.chance(0.5) {
                let done = RelocationDone {
                    service,
                    from: server,
                    to: server,
                    ok: true,
                    epoch: 1000 + rng.below(5),
                };
                (server.into(), done.into())
            } else {
                let ready = ShadowReady {
                    service,
                    server,
                    seq: 3,
                };
                (server.into(), ready.into())
            }
        }
        84..92 => {
            let server = ServerId(1 + rng.below(5) as u32);
            let mut services = Vec::new();
            for s in 0..=SERVICES {
                if rng.chance(0.4) {
                    services.push((ServiceId(s), rng.below(300_000_000)));
                }
            }
            for i in 0..rng.below(6) {
                services.push((ServiceId(500 + i as u32), 1));
            }
            let load = LoadReport {
                server,
                load: rng.unit(),
                services,
            };
            (server.into(), load.into())
        }
        92..93 => (NodeId::Ue(ue), Attach { ue }.into()),
        _ => return None,
    })
}

fn run(seed: u64, strategy: Strategy, balance: bool, steps: usize) {
    let mut rng = Rng(seed);
    let cfg = config(strategy, balance);
    let mut new = ControlNode::new(cfg.clone(), Instant::ZERO);
    let mut old = legacy::ControlNode::new(cfg.clone(), Instant::ZERO);
    let mut peers = Peers::default();
    let mut now = Instant::ZERO;
    for step in 0..steps {
        if rng.chance(0.01) {
            // Restart the new node from its own snapshot.
            let bytes = new.snapshot().to_bytes().expect("encodes");
            let snap = ControlSnapshot::from_bytes(&bytes).expect("decodes");
            new = ControlNode::restore(cfg.clone(), snap, now);
        }
        match input(&mut rng, now, &mut peers) {
            Some((from, msg)) => {
                new.handle_message(now, from, msg.clone());
                old.handle_message(now, from, msg);
            }
            None => {
                now += Duration::from_millis(rng.below(400));
                // Sometimes exactly at the deadline, sometimes later, sometimes spuriously.
                if let Some(t) = old.poll_timeout()
                    && t <= now
                    && rng.chance(0.5)
                {
                    now = now.max(t);
                }
                new.handle_timeout(now);
                old.handle_timeout(now);
            }
        }
        let (a, b) = (drain_new(&mut new), drain_old(&mut old));
        assert_eq!(a, b, "seed {seed} {strategy} step {step} at {now}");
        peers.observe(&mut rng, &a.out);
        same_registry(&new, &old, step);
    }
}

#[test]
fn the_node_behaves_like_its_pre_refactor_self() {
    for seed in 0..30 {
        for strategy in Strategy::ALL {
            run(seed, strategy, seed % 2 == 1, 2000);
        }
    }
}
