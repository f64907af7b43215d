//! The UE client's agent: joins the strongest cell, deploys its service, re-joins after
//! each radio gap, and at the end checks the live state against a never-moved twin that
//! it computes itself from the inputs it sent.

use std::sync::Arc;
use std::time::Duration;

use edgeshift_proto::{CellId, Deploy, Instant, NodeId, ServiceId, ServiceSpec, Transmit, UeId};
use edgeshift_record::{LiveState, Observation, UeFinal};
use edgeshift_ue::{HandoverGap, UeClient, UeEvent};
use edgeshift_world::{Command, Join, NodeEvent, Scenario};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::{info, warn};

use crate::app_gateway::{AppGateway, AppState};
use crate::host::{Agent, Nodes};
use crate::journal::{GapRecord, Journal, Record, UeSummary};
use crate::metrics::Metrics;

/// How long the UE waits for the live instance to answer its final state query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Start,
    Running,
    Querying {
        asked: Option<Instant>,
        since: Instant,
    },
    Done,
}

/// Drives one UE client.
pub struct UeAgent {
    ue: UeId,
    scenario: Arc<Scenario>,
    spec: ServiceSpec,
    seed: u64,
    payload_len: usize,
    stop_at: Instant,
    drain_until: Instant,
    phase: Phase,
    /// When the radio gap ends, where, and whether by re-establishment.
    reattach: Option<(Instant, CellId, bool)>,
    cell: Option<CellId>,
    rng: ChaCha8Rng,
    metrics: Arc<Metrics>,
    journal: Journal,
    live: Option<(u64, Option<u128>)>,
    summary: Option<UeSummary>,
    app: Option<AppMode>,
}

/// Inputs from an application instead of generated ones.
struct AppMode {
    gateway: AppGateway,
    /// How long to wait for the application before giving up.
    wait: Duration,
    /// Until when, once waiting started; and when to look again.
    deadline: Option<Instant>,
    poll_at: Instant,
    /// Every input it sent, for the twin.
    inputs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for UeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UeAgent")
            .field("ue", &self.ue)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl UeAgent {
    /// The agent of `ue`, whose inputs stop at `stop_at`; `seed` and `payload_len` must be
    /// those of its [`UeClient`] (they regenerate the inputs for the twin).
    #[must_use]
    pub fn new(
        ue: UeId,
        scenario: Arc<Scenario>,
        spec: ServiceSpec,
        (seed, payload_len): (u64, usize),
        stop_at: Instant,
        metrics: Arc<Metrics>,
        journal: Journal,
    ) -> Self {
        let drain = Duration::from_secs_f64(scenario.drain_s.max(1.0));
        Self {
            ue,
            spec,
            seed,
            payload_len,
            stop_at,
            drain_until: stop_at + drain,
            phase: Phase::Start,
            reattach: None,
            cell: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            metrics,
            journal,
            live: None,
            summary: None,
            app: None,
            scenario,
        }
    }

    /// Takes the inputs from the application connected to `gateway` instead of generating
    /// them (the [`UeClient`] must be in application mode too): waits up to `wait` for it
    /// before moving, and ends the run when it closes its connection.
    #[must_use]
    pub fn with_app(mut self, gateway: AppGateway, wait: Duration) -> Self {
        self.app = Some(AppMode {
            gateway,
            wait,
            deadline: None,
            poll_at: Instant::ZERO,
            inputs: Vec::new(),
        });
        self
    }

    /// In application mode: whether to start now, wait, or give up.
    fn app_ready(&mut self, now: Instant) -> Option<bool> {
        let app = self.app.as_mut()?;
        match app.gateway.state() {
            AppState::Connected => Some(true),
            AppState::Closed => {
                warn!(ue = %self.ue, "the application went away before the run started");
                self.phase = Phase::Done;
                Some(false)
            }
            AppState::Waiting => {
                let deadline = *app.deadline.get_or_insert(now + app.wait);
                if now >= deadline {
                    warn!(ue = %self.ue, wait = ?app.wait, "no application connected in time");
                    self.phase = Phase::Done;
                } else {
                    app.poll_at = (now + POLL).min(deadline);
                }
                Some(false)
            }
        }
    }

    /// In application mode: hands its inputs to the UE; returns whether it is done.
    fn app_inputs(&mut self, now: Instant, u: &mut UeClient) -> bool {
        let Some(app) = self.app.as_mut() else {
            return false;
        };
        for payload in app.gateway.take_inputs() {
            u.handle_app_input(now, payload.clone());
            app.inputs.push(payload);
        }
        app.gateway.state() == AppState::Closed && !app.gateway.has_inputs()
    }

    /// The final check, once done.
    #[must_use]
    pub fn summary(&self) -> Option<&UeSummary> {
        self.summary.as_ref()
    }

    fn node(&self) -> NodeId {
        NodeId::Ue(self.ue)
    }

    fn start(&mut self, now: Instant, nodes: &mut Nodes) {
        if self.app_ready(now) == Some(false) {
            return;
        }
        let Some(def) = self.scenario.ues.iter().find(|u| u.id == self.ue.0) else {
            warn!(ue = %self.ue, "no route in the scenario");
            self.phase = Phase::Done;
            return;
        };
        let pos = def.position(0.0);
        let Some(cell) = self.scenario.best_cell(pos) else {
            warn!(ue = %self.ue, "no cell in the scenario");
            self.phase = Phase::Done;
            return;
        };
        let deploy = Deploy {
            service: ServiceId(self.ue.0),
            ue: self.ue,
            cell,
            spec: self.spec.clone(),
        };
        nodes.send(
            self.node(),
            Transmit {
                // The control node of the cell's region owns the service.
                to: NodeId::Control(self.scenario.region_of_cell(cell)),
                msg: deploy.into(),
            },
        );
        if let Err(e) = nodes.command(now, self.node(), Command::Attach(cell)) {
            warn!(ue = %self.ue, error = %e, "cannot attach");
        }
        info!(ue = %self.ue, %cell, "attached; service deployed");
        self.phase = Phase::Running;
    }

    fn finish(&mut self, now: Instant, ue: &UeClient, live: Option<(u64, Option<u128>)>) {
        let (sent, answered) = (ue.sent(), ue.answered());
        let twin = self.twin(sent);
        if let Err(e) = &twin {
            warn!(ue = %self.ue, error = %e, "twin not computed");
        }
        self.journal
            .record(Record::Obs(Observation::UeFinal(UeFinal {
                at: now,
                ue: self.ue,
                service: ServiceId(self.ue.0),
                unanswered: ue.unanswered() as u64,
                gaps: ue.gaps().to_vec(),
                live: live.map(|(last_seq, checksum)| LiveState { last_seq, checksum }),
                twin: twin.clone(),
                longest_wait_ms: ue.longest_wait().as_secs_f64() * 1e3,
            })));
        let twin = twin.ok();
        let (live_last_seq, live_checksum) = match live {
            Some((seq, sum)) => (Some(seq), sum),
            None => (None, None),
        };
        let matches = live_last_seq == Some(sent)
            && answered == sent
            && live_checksum.is_some()
            && live_checksum == twin;
        let gaps: Vec<GapRecord> = ue.gaps().iter().map(gap_record).collect();
        for g in &gaps {
            if let Some(r) = g.radio_gap_ms {
                self.metrics.radio_gap_ms.observe(r);
            }
            if let Some(a) = g.added_ms {
                self.metrics.added_ms.observe(a);
            }
        }
        let summary = UeSummary {
            ue: self.ue.0,
            inputs_sent: sent,
            inputs_answered: answered,
            live_last_seq,
            live_checksum: live_checksum.map(|c| format!("{c:032x}")),
            twin_checksum: twin.map(|c| format!("{c:032x}")),
            final_state_matches_twin: matches,
            gaps,
        };
        info!(
            ue = %self.ue,
            sent,
            answered,
            matches,
            "run finished"
        );
        self.journal.record(Record::Ue(summary.clone()));
        self.summary = Some(summary);
        self.phase = Phase::Done;
    }

    /// Checksum of a service that applied this UE's inputs 1..=n in order, never moved.
    fn twin(&self, n: u64) -> Result<u128, String> {
        if let Some(app) = &self.app {
            // The inputs the application actually sent.
            return edgeshift_runtime::twin_checksum(
                &self.spec,
                self.scenario.limits(),
                &app.inputs,
            )
            .map_err(|e| e.to_string());
        }
        let inputs = (1..=n).map(|seq| UeClient::payload(self.seed, seq, self.payload_len));
        edgeshift_runtime::twin_checksum(&self.spec, self.scenario.limits(), inputs)
            .map_err(|e| e.to_string())
    }
}

fn gap_record(g: &HandoverGap) -> GapRecord {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    GapRecord {
        from: g.from.0,
        to: g.to.0,
        detached_at: g.detached_at.as_nanos(),
        attached_at: g.attached_at.map(Instant::as_nanos),
        first_answer_at: g.first_answer_at.map(Instant::as_nanos),
        radio_gap_ms: g.radio_gap().map(ms),
        service_gap_ms: g.service_gap().map(ms),
        added_ms: g.added().map(ms),
        failed: g.failed,
    }
}

impl Agent for UeAgent {
    fn next_tick(&self) -> Option<Instant> {
        match self.phase {
            // Waiting for the application: look again at `poll_at` (or when it connects).
            Phase::Start => Some(self.app.as_ref().map_or(Instant::ZERO, |a| a.poll_at)),
            _ if self.live.is_some() => Some(Instant::ZERO),
            Phase::Done => None,
            Phase::Running => {
                // An application's inputs, or its end, are due at once; its run has no end
                // time of its own.
                let end = match &self.app {
                    Some(a) if a.gateway.has_inputs() || a.gateway.state() == AppState::Closed => {
                        Instant::ZERO
                    }
                    Some(_) => Instant(u64::MAX),
                    None => self.stop_at,
                };
                Some(self.reattach.map_or(end, |(t, _, _)| t.min(end)))
            }
            Phase::Querying { asked, since } => {
                let poll = asked.map_or(since, |a| a + POLL);
                Some(self.reattach.map_or(poll, |(t, _, _)| t.min(poll)))
            }
        }
    }

    fn tick(&mut self, now: Instant, nodes: &mut Nodes) {
        if self.phase == Phase::Start {
            self.start(now, nodes);
            return;
        }
        let node = self.node();
        if let Some((at, cell, reestablish)) = self.reattach
            && at <= now
        {
            self.reattach = None;
            let cmd = if reestablish {
                warn!(ue = %self.ue, %cell, "handover failed; re-established at the source");
                Command::Reestablish(cell)
            } else {
                Command::Attach(cell)
            };
            if let Err(e) = nodes.command(now, node, cmd) {
                warn!(ue = %self.ue, error = %e, "cannot re-attach");
            }
        }
        let Some(u) = nodes.ue_mut(node) else {
            self.phase = Phase::Done;
            return;
        };
        if let Some(live) = self.live.take() {
            self.finish(now, u, Some(live));
            return;
        }
        let app_done = self.app_inputs(now, u);
        let over = if self.app.is_some() {
            app_done
        } else {
            now >= self.stop_at
        };
        match self.phase {
            Phase::Running if over => {
                if self.app.is_some() {
                    // The application's run ends now: the drain counts from here.
                    let drain = self.drain_until.saturating_duration_since(self.stop_at);
                    self.stop_at = now;
                    self.drain_until = now + drain;
                }
                self.phase = Phase::Querying {
                    asked: None,
                    since: now,
                };
            }
            Phase::Querying { asked, since } => {
                let patience =
                    QUERY_TIMEOUT + self.drain_until.saturating_duration_since(self.stop_at);
                if now.saturating_duration_since(since) > patience {
                    warn!(ue = %self.ue, "the live instance did not answer the state query");
                    self.finish(now, u, None);
                    return;
                }
                // Wait for the answers still in flight, then ask (again, if lost).
                let settled = u.unanswered() == 0 || now >= self.drain_until;
                let due = asked
                    .is_none_or(|a| now.saturating_duration_since(a) >= Duration::from_secs(1));
                if settled && due && u.handle_state_query(now) {
                    self.phase = Phase::Querying {
                        asked: Some(now),
                        since,
                    };
                }
            }
            _ => {}
        }
    }

    fn on_event(&mut self, now: Instant, _node: NodeId, ev: &NodeEvent) {
        let NodeEvent::Ue(e) = ev else { return };
        match e {
            UeEvent::Attached { cell } => self.cell = Some(*cell),
            UeEvent::Detached { target } => {
                self.reattach = Some(
                    match (self.scenario.handover_join(&mut self.rng), self.cell) {
                        (Join::Reestablish(after), Some(source)) => (now + after, source, true),
                        (Join::Target(after) | Join::Reestablish(after), _) => {
                            (now + after, *target, false)
                        }
                    },
                );
            }
            UeEvent::LiveState { last_seq, checksum } => {
                self.live = Some((*last_seq, *checksum));
            }
            UeEvent::AppAnswer { answer, .. } => {
                if let Some(app) = &self.app {
                    app.gateway.answer(answer.clone());
                }
            }
            _ => {}
        }
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.app.as_ref().map(|a| a.gateway.wake())
    }

    fn finished(&self) -> bool {
        self.phase == Phase::Done
    }

    fn ue_summary(&self) -> Option<UeSummary> {
        self.summary.clone()
    }
}
