//! The event loop that runs sans-IO roles on tokio: messages from the transport, timers
//! from each role's `poll_timeout`, and an [`Agent`] for inputs that are not messages
//! (radio measurements, a UE re-joining after its radio gap). One host per daemon; it may
//! hold several roles (a RAN agent's cells; an edge daemon with the control node).
//!
//! Guest work an ME server lends out ([`edgeshift_edge::Job`]) runs on tokio's blocking
//! pool, one job per busy service, and comes back through a channel: a guest that spins
//! through its time slice delays only its own service, never the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use edgeshift_edge::Job;
use edgeshift_net::{Clock, Inbox, Incoming, Transport};
use edgeshift_proto::{Instant, Lane, Message, NodeId, Role, Transmit};
use edgeshift_record::Observation;
use edgeshift_ue::UeClient;
use edgeshift_world::{Command, Node, NodeEvent, WrongNode};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, warn};

use crate::journal::{Journal, Record};
use crate::metrics::Metrics;
use crate::observe::Observer;
use crate::store::ControlStore;

/// The roles of one host, keyed by node id.
#[derive(Debug, Default)]
pub struct Nodes {
    map: BTreeMap<NodeId, Node>,
    touched: BTreeSet<NodeId>,
    outbox: Vec<(NodeId, Transmit)>,
}

impl Nodes {
    /// Sends a message on behalf of local node `from` (an operator action of an agent,
    /// such as a UE application deploying its service).
    pub fn send(&mut self, from: NodeId, t: Transmit) {
        self.outbox.push((from, t));
    }

    /// Adds a role.
    pub fn insert(&mut self, id: NodeId, role: Node) {
        self.touched.insert(id);
        self.map.insert(id, role);
    }

    /// Feeds `cmd` (a measurement report, an attach) to node `id`, marked for flushing.
    /// A node that is not here ignores it.
    ///
    /// # Errors
    /// [`WrongNode`] when the command is not for that kind of role.
    pub fn command(&mut self, now: Instant, id: NodeId, cmd: Command) -> Result<(), WrongNode> {
        self.touched.insert(id);
        match self.map.get_mut(&id) {
            Some(r) => r.handle_command(now, cmd),
            None => Ok(()),
        }
    }

    /// A UE, marked for flushing.
    pub fn ue_mut(&mut self, id: NodeId) -> Option<&mut UeClient> {
        self.touched.insert(id);
        match self.map.get_mut(&id) {
            Some(Node::Ue(u)) => Some(u),
            _ => None,
        }
    }

    /// Any role, read-only.
    #[must_use]
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.map.get(&id)
    }

    /// Node ids.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.map.keys().copied()
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.map.values().filter_map(Role::poll_timeout).min()
    }
}

/// Inputs of a host that are not messages.
pub trait Agent: Send {
    /// When [`Agent::tick`] wants to run next.
    fn next_tick(&self) -> Option<Instant> {
        None
    }
    /// Its time has come.
    fn tick(&mut self, _now: Instant, _nodes: &mut Nodes) {}
    /// Sees every event of the host's roles.
    fn on_event(&mut self, _now: Instant, _node: NodeId, _ev: &NodeEvent) {}
    /// The host may stop (a UE that finished its run).
    fn finished(&self) -> bool {
        false
    }
    /// A UE's final check, once it finished.
    fn ue_summary(&self) -> Option<crate::journal::UeSummary> {
        None
    }
    /// Fires when the agent has inputs from outside (an application): the host then runs
    /// [`Agent::tick`] if [`Agent::next_tick`] has come.
    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

/// Where a host's control node keeps its registry.
#[derive(Debug)]
pub enum Registry {
    /// The embedded redb file, written before the next message is handled.
    Redb(ControlStore),
    /// etcd, written by a task in the background, conditioned on the leader's term.
    Etcd(crate::replica::registry::EtcdWriter),
}

/// An agent that does nothing (control and edge daemons).
#[derive(Debug, Default)]
pub struct NoAgent;
impl Agent for NoAgent {}

/// One daemon's event loop.
pub struct Host {
    clock: Clock,
    transport: Transport,
    inbox: Inbox,
    nodes: Nodes,
    agent: Box<dyn Agent>,
    obs: Observer,
    store: Option<Registry>,
    /// Jobs back from the blocking pool, by server; at most one out per busy service.
    done_tx: mpsc::UnboundedSender<(NodeId, Job)>,
    done_rx: mpsc::UnboundedReceiver<(NodeId, Job)>,
    /// Servers with a streamed transfer waiting for its link to drain.
    streaming: BTreeSet<NodeId>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("nodes", &self.nodes.map.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// How often transport counters reach the metrics.
const METRICS_TICK: Duration = Duration::from_secs(1);

/// How far a streamed state transfer may run ahead of its link: enough to keep the wire
/// busy, little enough that the sender neither holds the whole state twice nor stalls
/// its event loop making it.
const STREAM_WINDOW: u64 = 16 << 20;

/// How often a server whose stream waits for room is asked again.
const STREAM_POLL: Duration = Duration::from_millis(1);

impl Host {
    /// A host of `nodes` on `transport`.
    #[must_use]
    pub fn new(
        clock: Clock,
        transport: Transport,
        inbox: Inbox,
        nodes: Nodes,
        agent: Box<dyn Agent>,
        journal: Journal,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            clock,
            transport,
            inbox,
            nodes,
            agent,
            obs: Observer::new(journal, metrics),
            store: None,
            done_tx,
            done_rx,
            streaming: BTreeSet::new(),
        }
    }

    /// Feeds every control event and UE handover gap of this host to a MEC API.
    #[must_use]
    pub fn with_feed(mut self, feed: edgeshift_mec::Feed) -> Self {
        self.obs.set_feed(feed);
        self
    }

    /// Persists the control node's registry in `store` after every change.
    #[must_use]
    pub fn with_store(mut self, store: ControlStore) -> Self {
        self.store = Some(Registry::Redb(store));
        self
    }

    /// Runs `control` as this host's control node (a replica that won the leadership), its
    /// registry written to etcd through `writer`.
    pub(crate) fn lead(
        &mut self,
        control: edgeshift_control::ControlNode,
        writer: crate::replica::registry::EtcdWriter,
    ) {
        self.nodes
            .insert(NodeId::CONTROL, Node::Control(Box::new(control)));
        self.store = Some(Registry::Etcd(writer));
    }

    /// The UE's final check, if the agent is a UE that finished.
    #[must_use]
    pub fn ue_summary(&self) -> Option<crate::journal::UeSummary> {
        self.agent.ue_summary()
    }

    /// The roles (for a final look after [`Host::run`]).
    #[must_use]
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// Runs until `stop` turns true, the agent finishes, or the transport closes; then
    /// flushes the outgoing queues for up to a second.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Self {
        self.transport.warm_up();
        let now = self.clock.now();
        self.flush(now);
        let mut metrics_at = now + METRICS_TICK;
        let wake = self.agent.wake();
        loop {
            if self.agent.finished() || *stop.borrow() {
                break;
            }
            let next = [
                self.nodes.next_timeout(),
                self.agent.next_tick(),
                Some(metrics_at),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(metrics_at);
            tokio::select! {
                m = self.inbox.recv() => {
                    let Some(m) = m else { break };
                    self.deliver(m);
                    // Take whatever else is already waiting before flushing.
                    while let Ok(m) = self.inbox.try_recv() {
                        self.deliver(m);
                    }
                }
                () = tokio::time::sleep_until(self.clock.deadline(next)) => {
                    let now = self.clock.now();
                    self.timers(now);
                    if now >= metrics_at {
                        self.obs.metrics().observe_net(self.transport.stats());
                        metrics_at = now + METRICS_TICK;
                    }
                }
                Some((id, job)) = self.done_rx.recv() => {
                    let now = self.clock.now();
                    self.nodes.touched.insert(id);
                    if let Some(Node::Server(s)) = self.nodes.map.get_mut(&id) {
                        s.handle_job_done(now, job);
                    }
                }
                r = stop.changed() => if r.is_err() { break },
                // Wakes the loop for the flush below, which asks streaming servers again.
                () = tokio::time::sleep(STREAM_POLL), if !self.streaming.is_empty() => {}
                () = async {
                    match &wake {
                        Some(w) => w.notified().await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.timers(self.clock.now());
                }
            }
            let now = self.clock.now();
            self.flush(now);
        }
        self.obs.metrics().observe_net(self.transport.stats());
        self.transport.shutdown(Duration::from_secs(1)).await;
        self
    }

    fn deliver(&mut self, m: Incoming) {
        let now = self.clock.now();
        let Incoming { from, to, msg } = m;
        if !is_traffic(&msg) {
            self.obs.journal().record(Record::Msg {
                at: now.as_nanos(),
                from: from.to_string(),
                to: to.to_string(),
                code: msg.type_code(),
                name: msg.name().to_owned(),
                bulk: msg.bulk_len(),
            });
        }
        self.nodes.touched.insert(to);
        match self.nodes.map.get_mut(&to) {
            Some(r) => r.handle_message(now, from, msg),
            None => {
                warn!(%from, %to, name = msg.name(), "message for a node not hosted here");
                // The simulator counts a message to an unknown node as a broken invariant;
                // so does the record of a live run.
                self.obs
                    .journal()
                    .record(Record::Obs(Observation::Violation {
                        at: now,
                        what: format!("{from} sent {} to {to}, which is not here", msg.name()),
                    }));
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        let due: Vec<NodeId> = self
            .nodes
            .map
            .iter()
            .filter(|(_, h)| h.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.nodes.touched.insert(id);
            if let Some(r) = self.nodes.map.get_mut(&id) {
                r.handle_timeout(now);
            }
        }
        if self.agent.next_tick().is_some_and(|t| t <= now) {
            self.agent.tick(now, &mut self.nodes);
        }
    }

    fn flush(&mut self, now: Instant) {
        let mut control_changed = false;
        for (from, t) in std::mem::take(&mut self.nodes.outbox) {
            let name = t.msg.name();
            if let Err(e) = self.transport.send(from, t.to, t.msg) {
                error!(%from, to = %t.to, name, error = %e, "cannot send");
            }
        }
        // A server whose stream waited for room is asked again at every turn.
        self.nodes
            .touched
            .extend(std::mem::take(&mut self.streaming));
        while let Some(id) = self.nodes.touched.pop_first() {
            let Some(r) = self.nodes.map.get_mut(&id) else {
                continue;
            };
            let tx: Vec<Transmit> = match r {
                Node::Server(s) => {
                    // Each sent as it is made: the room a streamed transfer gets is what
                    // its link has not written yet, so its chunks must be queued there as
                    // they come.
                    let room = |t: &Transport, to: edgeshift_proto::ServerId| {
                        t.queued(id, to.into(), Lane::Bulk) < STREAM_WINDOW
                    };
                    while let Some(t) = s.poll_transmit_paced(|to| room(&self.transport, to)) {
                        send_one(&self.transport, &mut self.obs, now, id, t);
                    }
                    if s.streaming() {
                        self.streaming.insert(id);
                    }
                    Vec::new()
                }
                _ => std::iter::from_fn(|| r.poll_transmit()).collect(),
            };
            let ev: Vec<NodeEvent> = std::iter::from_fn(|| r.poll_event()).collect();
            match r {
                Node::Server(s) => {
                    self.obs.edge_load(s);
                    while let Some(mut job) = s.poll_job() {
                        let done = self.done_tx.clone();
                        tokio::task::spawn_blocking(move || {
                            job.run();
                            // The host is gone when this fails: the job goes with it.
                            let _ = done.send((id, job));
                        });
                    }
                }
                Node::Control(_) => control_changed = true,
                _ => {}
            }
            for t in tx {
                send_one(&self.transport, &mut self.obs, now, id, t);
            }
            for e in ev {
                self.obs.event(now, id, &e);
                self.agent.on_event(now, id, &e);
            }
            if let Some(Node::Control(c)) = self.nodes.map.get(&id) {
                self.obs.control_stats(now, c.stats());
            }
        }
        if control_changed {
            self.persist();
        }
    }

    fn persist(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        // A daemon hosts one control node at most (its region's).
        let Some(c) = self.nodes.map.values().find_map(|n| match n {
            Node::Control(c) => Some(c),
            _ => None,
        }) else {
            return;
        };
        let saved = match store {
            Registry::Redb(s) => s.save(&c.snapshot()).map_err(|e| e.to_string()),
            Registry::Etcd(w) => w.save(&c.snapshot()).map_err(|e| e.to_string()),
        };
        match saved {
            Ok(true) => debug!("registry saved"),
            Ok(false) => {}
            Err(e) => error!(error = %e, "registry not saved"),
        }
    }
}

/// Sends what local node `from` made, journaled.
fn send_one(transport: &Transport, obs: &mut Observer, now: Instant, from: NodeId, t: Transmit) {
    obs.sent(now, &t);
    let name = t.msg.name();
    if let Err(e) = transport.send(from, t.to, t.msg) {
        error!(%from, to = %t.to, name, error = %e, "cannot send");
    }
}

fn is_traffic(msg: &Message) -> bool {
    msg.is_service_traffic()
        || matches!(
            msg,
            Message::LoadReport(_) | Message::Heartbeat(_) | Message::HeartbeatAck(_)
        )
}
