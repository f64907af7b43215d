//! Test bench for the server's state machines: servers wired back to back, the control
//! node and the cells played by the test, one message at a time when a test wants to
//! look at a state between two messages.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use edgeshift_proto::{
    CellId, InputRecord, Instant, Instantiate, Message, NodeId, PrepareShadow, Relocate,
    RelocateAction, RelocationMode, Role, ServerId, ServiceId, ServiceInput, SyncMode, Timing,
    Transmit, UeId,
};

use super::EdgeServer;
use super::shadow::Shadow;
use super::source::{Live, Source};
use crate::{EdgeConfig, EdgeEvent, MemConfig, MemFactory};

/// The service every test moves around.
pub(super) const SVC: ServiceId = ServiceId(1);

pub(super) struct Bench {
    pub(super) servers: BTreeMap<ServerId, EdgeServer>,
    pub(super) now: Instant,
    /// Messages waiting to be delivered to a server: (from, message).
    pub(super) queue: VecDeque<(NodeId, Transmit)>,
    /// Messages to the control node and the cells: (from, message).
    pub(super) outside: Vec<(ServerId, Transmit)>,
    /// Every message delivered between servers, in order.
    pub(super) between: Vec<(ServerId, Transmit)>,
    pub(super) events: Vec<(ServerId, EdgeEvent)>,
}

impl Bench {
    /// `n` servers with small transfer chunks (a 5000-byte state goes in five), tuned by
    /// `tune`.
    pub(super) fn new(n: u32, tune: impl Fn(&mut EdgeConfig)) -> Self {
        let servers = (1..=n)
            .map(|i| {
                let mut cfg = EdgeConfig::new(ServerId(i));
                cfg.transfer_chunk = 1000;
                tune(&mut cfg);
                let s = EdgeServer::new(cfg, Box::new(MemFactory), Instant::ZERO);
                (ServerId(i), s)
            })
            .collect();
        let mut b = Self {
            servers,
            now: Instant::ZERO,
            queue: VecDeque::new(),
            outside: Vec::new(),
            between: Vec::new(),
            events: Vec::new(),
        };
        b.collect();
        b
    }

    /// Server 1 hosts [`SVC`] with a 5000-byte state.
    pub(super) fn deployed(n: u32, tune: impl Fn(&mut EdgeConfig)) -> Self {
        let mut b = Self::new(n, tune);
        let spec = MemConfig {
            state_bytes: 5000,
            writes_per_input: 4,
        }
        .spec(0);
        b.send(
            NodeId::CONTROL,
            1,
            Instantiate {
                service: SVC,
                ue: UeId(1),
                spec,
            },
        );
        b.pump();
        b
    }

    /// Server 1 hosts [`SVC`] with a ready replay shadow at server 2, after inputs 1..=3;
    /// nothing of getting there is left in `events` or `outside`.
    pub(super) fn with_shadow(n: u32, tune: impl Fn(&mut EdgeConfig)) -> Self {
        let mut b = Self::deployed(n, tune);
        for s in 1..=3 {
            b.input(1, s);
        }
        b.prepare(&[2], SyncMode::Replay);
        b.pump();
        b.events.clear();
        b.outside.clear();
        b
    }

    pub(super) fn server(&mut self, id: u32) -> &mut EdgeServer {
        self.servers
            .get_mut(&ServerId(id))
            .unwrap_or_else(|| panic!("no server {id}"))
    }

    pub(super) fn live(&mut self, id: u32) -> &mut Live {
        self.server(id)
            .live
            .get_mut(&SVC)
            .unwrap_or_else(|| panic!("{SVC} not live at me{id}"))
    }

    pub(super) fn state(&mut self, id: u32) -> &Source {
        &self.live(id).state
    }

    pub(super) fn shadow(&mut self, id: u32) -> &mut Shadow {
        self.server(id)
            .shadows
            .get_mut(&SVC)
            .unwrap_or_else(|| panic!("no shadow of {SVC} at me{id}"))
    }

    /// Queues a message to server `to` and moves what the servers sent.
    pub(super) fn send(&mut self, from: NodeId, to: u32, msg: impl Into<Message>) {
        self.queue.push_back((
            from,
            Transmit {
                to: ServerId(to).into(),
                msg: msg.into(),
            },
        ));
    }

    /// Delivers a message to server `to` at once, ahead of the queue.
    pub(super) fn deliver(&mut self, from: NodeId, to: u32, msg: impl Into<Message>) {
        self.queue.push_front((
            from,
            Transmit {
                to: ServerId(to).into(),
                msg: msg.into(),
            },
        ));
        self.step();
    }

    /// Delivers the next queued message; false if there was none.
    pub(super) fn step(&mut self) -> bool {
        let Some((from, t)) = self.queue.pop_front() else {
            return false;
        };
        self.now += Duration::from_micros(100);
        let NodeId::Server(to) = t.to else {
            panic!("queued a message to {}", t.to);
        };
        if let NodeId::Server(s) = from {
            self.between.push((s, t.clone()));
        }
        let now = self.now;
        if let Some(s) = self.servers.get_mut(&to) {
            s.handle_message(now, from, t.msg);
        }
        self.collect();
        true
    }

    /// Runs every job server `id` has lent (with offload), hands each back and moves what
    /// followed, until it lends no more; returns how many ran.
    pub(super) fn run_jobs(&mut self, id: u32) -> usize {
        let mut n = 0;
        while let Some(mut job) = self.server(id).poll_job() {
            job.run();
            self.now += Duration::from_micros(100);
            let now = self.now;
            self.server(id).handle_job_done(now, job);
            self.collect();
            n += 1;
        }
        n
    }

    /// Delivers until quiet.
    pub(super) fn pump(&mut self) {
        while self.step() {}
    }

    /// Lets `d` pass, firing every timer due meanwhile (messages stay queued).
    pub(super) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .servers
                .values()
                .filter_map(EdgeServer::poll_timeout)
                .filter(|t| *t <= end)
                .min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            let now = self.now;
            for s in self.servers.values_mut() {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
            }
            self.collect();
        }
        self.now = end;
    }

    pub(super) fn collect(&mut self) {
        for (id, s) in &mut self.servers {
            while let Some(t) = s.poll_transmit() {
                match t.to {
                    NodeId::Server(_) => self.queue.push_back(((*id).into(), t)),
                    _ => self.outside.push((*id, t)),
                }
            }
            while let Some(e) = s.poll_event() {
                self.events.push((*id, e));
            }
        }
    }

    /// UE input `seq` of [`SVC`] through cell 1 to server `to`, delivered at once.
    pub(super) fn input(&mut self, to: u32, seq: u64) {
        self.deliver(NodeId::Cell(CellId(1)), to, input(seq));
    }

    /// 1003 to server 1 (queued): shadows at `candidates`, starting now.
    pub(super) fn prepare(&mut self, candidates: &[u32], sync: SyncMode) {
        let m = PrepareShadow {
            service: SVC,
            ue: UeId(1),
            source: ServerId(1),
            candidates: candidates.iter().map(|c| ServerId(*c)).collect(),
            sync,
            start: Timing::at(self.now),
            adopt: false,
        };
        self.send(NodeId::CONTROL, 1, m);
    }

    /// 1006 to the source (server 1), delivered at once: relocate [`SVC`] to `target`.
    pub(super) fn relocate(&mut self, target: u32, mode: RelocationMode) {
        let m = relocate(self.now, target, mode);
        self.deliver(NodeId::CONTROL, 1, m);
    }

    /// Takes the events so far of server `id`.
    pub(super) fn events_of(&mut self, id: u32) -> Vec<EdgeEvent> {
        let (mine, rest) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|(s, _)| *s == ServerId(id));
        self.events = rest;
        mine.into_iter().map(|(_, e)| e).collect()
    }

    /// Takes the messages so far that server `id` sent to the control node or the cells.
    pub(super) fn outside_of(&mut self, id: u32) -> Vec<Message> {
        let (mine, rest) = std::mem::take(&mut self.outside)
            .into_iter()
            .partition(|(s, _)| *s == ServerId(id));
        self.outside = rest;
        mine.into_iter().map(|(_, t)| t.msg).collect()
    }

    /// Answers the latest heartbeat among `out`, what server `id` sent to the control node
    /// and the cells: its lease comes back.
    pub(super) fn ack_latest_heartbeat(&mut self, id: u32, out: &[Message]) {
        let last = out
            .iter()
            .filter_map(|m| match m {
                Message::Heartbeat(h) => Some(h.seq),
                _ => None,
            })
            .max()
            .expect("heartbeats went out");
        self.deliver(
            NodeId::CONTROL,
            id,
            edgeshift_proto::HeartbeatAck { seq: last },
        );
    }

    /// Names of the queued messages, in order ("1004>me2", "2004>me2", ...).
    pub(super) fn queued(&self) -> Vec<String> {
        self.queue.iter().map(|(_, t)| short(t)).collect()
    }
}

/// 1006 from server 1 to `target`, route epoch 7.
pub(super) fn relocate(now: Instant, target: u32, mode: RelocationMode) -> Relocate {
    Relocate {
        service: SVC,
        action: RelocateAction::Relocate {
            source: ServerId(1),
            target: ServerId(target),
            mode,
            epoch: 7,
        },
        timing: Timing::at(now),
    }
}

/// UE input `seq` of [`SVC`] through cell 1.
pub(super) fn input(seq: u64) -> ServiceInput {
    ServiceInput {
        ue: UeId(1),
        service: SVC,
        via: CellId(1),
        answered_below: 0,
        input: InputRecord {
            seq,
            payload: seq.to_le_bytes().to_vec(),
        },
    }
}

/// A message as "<type code>><receiver>", e.g. `2004>me2`.
pub(super) fn short(t: &Transmit) -> String {
    format!("{}>{}", t.msg.type_code(), t.to)
}

/// The protocol violations among `events`.
pub(super) fn violations(events: &[EdgeEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::ProtocolViolation { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect()
}
