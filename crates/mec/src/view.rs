//! [`View`]: what the dashboard draws, kept up to date from the control node's events
//! and the UEs' handover gaps, and served as JSON (`GET /dashboard/state`, and every change
//! on `GET /dashboard/events`).

use std::collections::{BTreeMap, VecDeque};

use edgeshift_control::ControlEvent;
use edgeshift_proto::{CancelReason, Instant, ServerId, ServiceId, UeId};
use edgeshift_ue::HandoverGap;
use serde::Serialize;

use crate::state::Topology;

/// Relocations kept for the timeline.
const RELOCATIONS: usize = 50;
/// Handover events kept.
const HANDOVERS: usize = 100;
/// Measured relocations the percentiles cover.
const MEASURED: usize = 10_000;
/// A relocation is hidden when it adds at most this much interruption (ms).
const HIDDEN_MS: f64 = 1.0;
/// A gap counts for a relocation triggered at most this long before its detach.
const GAP_MATCH_MS: f64 = 2_000.0;

fn ms(at: Instant) -> f64 {
    at.as_nanos() as f64 / 1e6
}

/// A cell on the map.
#[derive(Clone, Debug, Serialize)]
pub struct CellView {
    id: u32,
    x: f64,
    y: f64,
    server: u32,
}

/// A shadow on a server.
#[derive(Clone, Debug, Serialize)]
pub struct ShadowView {
    service: u32,
    state: &'static str,
}

/// An ME server.
#[derive(Clone, Debug, Serialize)]
pub struct ServerView {
    id: u32,
    live: Vec<u32>,
    shadows: Vec<ShadowView>,
}

/// A predicted candidate.
#[derive(Clone, Debug, Serialize)]
pub struct CandidateView {
    cell: u32,
    likelihood: f32,
}

/// A UE.
#[derive(Clone, Debug, Serialize)]
pub struct UeView {
    id: u32,
    cell: Option<u32>,
    service: u32,
    server: Option<u32>,
    handover: Option<&'static str>,
    candidates: Vec<CandidateView>,
    expected_ms: Option<f64>,
}

/// One handover event.
#[derive(Clone, Debug, Serialize)]
pub struct HandoverView {
    ue: u32,
    from: u32,
    to: Option<u32>,
    status: &'static str,
    at_ms: f64,
}

/// One relocation.
#[derive(Clone, Debug, Serialize)]
pub struct RelocationView {
    service: u32,
    ue: Option<u32>,
    from: u32,
    to: u32,
    mode: String,
    scheduled_ms: Option<f64>,
    /// The announced handover execution it is timed to.
    exec_ms: Option<f64>,
    triggered_ms: Option<f64>,
    completed_ms: Option<f64>,
    outcome: &'static str,
    radio_gap_ms: Option<f64>,
    added_ms: Option<f64>,
    /// Added interruption ≤ 1 ms; `None` until the UE measured it.
    hidden: Option<bool>,
}

/// The counters at the top of the page.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    predictions: u64,
    handovers: u64,
    relocations: u64,
    failed: u64,
    mispredicted: u64,
    measured: u64,
    hidden: u64,
    added_ms_p50: Option<f64>,
    added_ms_p99: Option<f64>,
    added_ms_max: Option<f64>,
}

/// The whole picture.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    scenario: String,
    strategy: String,
    now_ms: f64,
    started_ms: f64,
    cells: Vec<CellView>,
    servers: Vec<ServerView>,
    ues: Vec<UeView>,
    handovers: VecDeque<HandoverView>,
    relocations: VecDeque<RelocationView>,
    figures: Figures,
    /// Added interruption of the last measured relocations (ms), for the percentiles.
    #[serde(skip)]
    added: VecDeque<f64>,
    /// The server of each cell.
    #[serde(skip)]
    cell_server: BTreeMap<u32, u32>,
}

impl View {
    pub(crate) fn new(topo: &Topology, now: Instant) -> Self {
        Self {
            scenario: topo.scenario.clone(),
            strategy: topo.strategy.clone(),
            now_ms: ms(now),
            started_ms: ms(now),
            cells: topo
                .cells
                .iter()
                .map(|c| CellView {
                    id: c.id.0,
                    x: c.x,
                    y: c.y,
                    server: c.server.0,
                })
                .collect(),
            servers: topo
                .servers
                .iter()
                .map(|s| ServerView {
                    id: s.0.0,
                    live: Vec::new(),
                    shadows: Vec::new(),
                })
                .collect(),
            ues: topo
                .ues
                .iter()
                .map(|(ue, service)| UeView {
                    id: ue.0,
                    cell: None,
                    service: service.0,
                    server: None,
                    handover: None,
                    candidates: Vec::new(),
                    expected_ms: None,
                })
                .collect(),
            handovers: VecDeque::new(),
            relocations: VecDeque::new(),
            figures: Figures::default(),
            added: VecDeque::new(),
            cell_server: topo.cells.iter().map(|c| (c.id.0, c.server.0)).collect(),
        }
    }

    /// The servers holding a shadow of `service`.
    #[must_use]
    pub fn shadows_of(&self, service: ServiceId) -> Vec<ServerId> {
        self.servers
            .iter()
            .filter(|s| s.shadows.iter().any(|x| x.service == service.0))
            .map(|s| ServerId(s.id))
            .collect()
    }

    fn ue(&mut self, ue: UeId) -> Option<&mut UeView> {
        self.ues.iter_mut().find(|u| u.id == ue.0)
    }

    fn server(&mut self, s: ServerId) -> &mut ServerView {
        if let Some(i) = self.servers.iter().position(|x| x.id == s.0) {
            return &mut self.servers[i];
        }
        self.servers.push(ServerView {
            id: s.0,
            live: Vec::new(),
            shadows: Vec::new(),
        });
        let last = self.servers.len() - 1;
        &mut self.servers[last]
    }

    fn handover(
        &mut self,
        at: Instant,
        ue: UeId,
        from: u32,
        to: Option<u32>,
        status: &'static str,
    ) {
        if self.handovers.len() == HANDOVERS {
            self.handovers.pop_front();
        }
        self.handovers.push_back(HandoverView {
            ue: ue.0,
            from,
            to,
            status,
            at_ms: ms(at),
        });
        let pending = matches!(status, "IN_PREPARATION" | "IN_EXECUTION");
        if let Some(u) = self.ue(ue) {
            u.handover = pending.then_some(status);
            if !pending {
                u.candidates.clear();
                u.expected_ms = None;
            }
            if status == "COMPLETED" {
                u.cell = to;
            }
        }
    }

    fn move_live(&mut self, service: ServiceId, to: ServerId) {
        for s in &mut self.servers {
            s.live.retain(|x| *x != service.0);
            s.shadows.retain(|x| x.service != service.0);
        }
        self.server(to).live.push(service.0);
        for u in self.ues.iter_mut().filter(|u| u.service == service.0) {
            u.server = Some(to.0);
        }
    }

    fn relocation(&mut self, service: ServiceId) -> Option<&mut RelocationView> {
        self.relocations
            .iter_mut()
            .rev()
            .find(|r| r.service == service.0 && r.outcome == "pending")
    }

    pub(crate) fn on_control(&mut self, at: Instant, ev: &ControlEvent) {
        self.now_ms = self.now_ms.max(ms(at));
        match ev {
            ControlEvent::ServiceDeployed {
                service,
                ue,
                cell,
                server,
            } => {
                self.move_live(*service, *server);
                if let Some(u) = self.ue(*ue) {
                    u.cell = Some(cell.0);
                }
            }
            ControlEvent::HandoverPredicted {
                ue,
                source,
                candidates,
                timing,
            } => {
                if !candidates.is_empty() {
                    self.figures.predictions += 1;
                }
                if let Some(u) = self.ue(*ue) {
                    u.cell = Some(source.0);
                    if u.handover != Some("IN_EXECUTION") {
                        u.handover = (!candidates.is_empty()).then_some("IN_PREPARATION");
                        u.candidates = candidates
                            .iter()
                            .map(|c| CandidateView {
                                cell: c.cell.0,
                                likelihood: c.likelihood,
                            })
                            .collect();
                        u.expected_ms = timing.map(|t| ms(t.resolve(at)));
                    }
                }
                let announced = self
                    .handovers
                    .iter()
                    .rev()
                    .find(|h| h.ue == ue.0)
                    .is_some_and(|h| h.status == "IN_PREPARATION");
                if !candidates.is_empty() && !announced {
                    let to = candidates.first().map(|c| c.cell.0);
                    self.handover(at, *ue, source.0, to, "IN_PREPARATION");
                } else if candidates.is_empty() && announced {
                    // Withdrawn, as the API reports it.
                    self.handover(at, *ue, source.0, None, "CANCELLED");
                }
            }
            ControlEvent::HandoverExecuting {
                ue, source, target, ..
            } => {
                self.figures.handovers += 1;
                self.handover(at, *ue, source.0, Some(target.0), "IN_EXECUTION");
            }
            ControlEvent::HandoverCompleted { ue, source, target } => {
                self.handover(at, *ue, source.0, Some(target.0), "COMPLETED");
            }
            ControlEvent::HandoverCancelled {
                ue,
                source,
                target,
                reason,
            } => {
                let status = match reason {
                    CancelReason::Rejected => "REJECTED",
                    CancelReason::Failed => "CANCELLED",
                };
                self.handover(at, *ue, source.0, Some(target.0), status);
            }
            ControlEvent::ShadowsRequested { service, servers } => {
                for s in servers {
                    let sv = self.server(*s);
                    if !sv.shadows.iter().any(|x| x.service == service.0) {
                        sv.shadows.push(ShadowView {
                            service: service.0,
                            state: "requested",
                        });
                    }
                }
            }
            ControlEvent::ShadowReady { service, server } => {
                for x in &mut self.server(*server).shadows {
                    if x.service == service.0 {
                        x.state = "ready";
                    }
                }
            }
            ControlEvent::ShadowsDiscarded { service, servers } => {
                for s in servers {
                    self.server(*s).shadows.retain(|x| x.service != service.0);
                }
            }
            ControlEvent::Mispredicted { .. } => self.figures.mispredicted += 1,
            ControlEvent::RelocationScheduled {
                service,
                ue,
                source,
                target,
                mode,
                at: exec,
            } => {
                if self.relocations.len() == RELOCATIONS {
                    self.relocations.pop_front();
                }
                self.relocations.push_back(RelocationView {
                    service: service.0,
                    ue: Some(ue.0),
                    from: source.0,
                    to: target.0,
                    mode: format!("{mode:?}").to_lowercase(),
                    scheduled_ms: Some(ms(at)),
                    exec_ms: Some(ms(*exec)),
                    triggered_ms: None,
                    completed_ms: None,
                    outcome: "pending",
                    radio_gap_ms: None,
                    added_ms: None,
                    hidden: None,
                });
            }
            ControlEvent::RelocationTriggered { service, .. } => {
                if let Some(r) = self.relocation(*service) {
                    r.triggered_ms = Some(ms(at));
                }
            }
            ControlEvent::RelocationCompleted { service, to, .. } => {
                self.figures.relocations += 1;
                if let Some(r) = self.relocation(*service) {
                    r.completed_ms = Some(ms(at));
                    r.outcome = "completed";
                }
                self.move_live(*service, *to);
            }
            ControlEvent::RelocationFailed { service, .. } => {
                self.figures.failed += 1;
                if let Some(r) = self.relocation(*service) {
                    r.completed_ms = Some(ms(at));
                    r.outcome = "failed";
                }
            }
            _ => {}
        }
    }

    /// A UE's handover gap is complete: it belongs to the completed relocation between
    /// the servers of the cells it left and joined whose announced execution is nearest its
    /// detach (within a couple of seconds).
    pub(crate) fn on_resumed(&mut self, _ue: UeId, service: Option<ServiceId>, gap: &HandoverGap) {
        let (Some(service), Some(answer)) = (service, gap.first_answer_at) else {
            return;
        };
        if gap.failed {
            return; // Back at the source: no relocation of this handover was completed.
        }
        let (detach, answer) = (ms(gap.detached_at), ms(answer));
        self.now_ms = self.now_ms.max(answer);
        let from = self.cell_server.get(&gap.from.0).copied();
        let to = self.cell_server.get(&gap.to.0).copied();
        let radio = gap.radio_gap().map(|d| d.as_secs_f64() * 1e3);
        let added = gap.added().map(|d| d.as_secs_f64() * 1e3);
        let distance = |r: &RelocationView| {
            r.exec_ms
                .or(r.triggered_ms)
                .or(r.scheduled_ms)
                .map(|t| (t - detach).abs())
        };
        let Some(r) = self
            .relocations
            .iter_mut()
            .filter(|r| {
                r.service == service.0
                    && r.outcome == "completed"
                    && r.added_ms.is_none()
                    && from.is_none_or(|f| f == r.from)
                    && to.is_none_or(|t| t == r.to)
                    && distance(r).is_some_and(|d| d <= GAP_MATCH_MS)
                    && r.triggered_ms
                        .or(r.scheduled_ms)
                        .is_some_and(|t| t <= answer)
            })
            .min_by(|a, b| {
                let (da, db) = (
                    distance(a).unwrap_or(f64::MAX),
                    distance(b).unwrap_or(f64::MAX),
                );
                da.total_cmp(&db)
            })
        else {
            return;
        };
        r.radio_gap_ms = radio;
        r.added_ms = added;
        r.hidden = added.map(|a| a <= HIDDEN_MS);
        if let Some(a) = added {
            self.figures.measured += 1;
            if a <= HIDDEN_MS {
                self.figures.hidden += 1;
            }
            if self.added.len() == MEASURED {
                self.added.pop_front();
            }
            self.added.push_back(a);
            let mut sorted: Vec<f64> = self.added.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            let rank = |p: f64| {
                let n = sorted.len();
                // Nearest rank, as the run record computes it.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
                sorted[i]
            };
            self.figures.added_ms_p50 = Some(rank(0.5));
            self.figures.added_ms_p99 = Some(rank(0.99));
            self.figures.added_ms_max = sorted.last().copied();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use edgeshift_proto::{CellId, RelocationMode};

    use super::*;

    fn ms_at(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    fn relocate(v: &mut View, at: u64) {
        let (service, ue) = (ServiceId(1), UeId(1));
        for (t, e) in [
            (
                at,
                ControlEvent::RelocationScheduled {
                    service,
                    ue,
                    source: ServerId(1),
                    target: ServerId(3),
                    mode: RelocationMode::Hot,
                    at: ms_at(at + 20),
                },
            ),
            (
                at + 20,
                ControlEvent::RelocationTriggered {
                    service,
                    ue,
                    source: ServerId(1),
                    mode: RelocationMode::Hot,
                    at: ms_at(at + 20),
                    target: ServerId(3),
                },
            ),
            (
                at + 40,
                ControlEvent::RelocationCompleted {
                    service,
                    ue,
                    from: ServerId(1),
                    to: ServerId(3),
                },
            ),
        ] {
            v.on_control(ms_at(t), &e);
        }
    }

    fn gap(detach: u64, attach: u64, answer: u64) -> HandoverGap {
        HandoverGap {
            from: CellId(1),
            to: CellId(3),
            detached_at: ms_at(detach),
            attached_at: Some(ms_at(attach)),
            first_answer_at: Some(ms_at(answer)),
            baseline_rtt: Duration::ZERO,
            failed: false,
            daps_stall: None,
        }
    }

    #[test]
    fn a_gap_is_measured_on_the_relocation_it_belongs_to() {
        // Cells 1 and 2 on server 1, cell 3 on server 3.
        let cell = |id, server| crate::state::CellInfo {
            id: CellId(id),
            x: 0.0,
            y: 0.0,
            server: ServerId(server),
        };
        let topo = Topology {
            ues: vec![(UeId(1), ServiceId(1))],
            servers: (1..=3).map(|i| (ServerId(i), None)).collect(),
            cells: vec![cell(1, 1), cell(2, 1), cell(3, 3)],
            ..Topology::default()
        };
        let mut v = View::new(&topo, ms_at(0));
        relocate(&mut v, 1_000);
        assert_eq!(v.relocations[0].outcome, "completed");
        assert_eq!(v.figures.measured, 0);
        // A handover between two cells of server 1 at the same moment is not this move.
        let mut same = gap(1_020, 1_060, 1_300);
        same.to = CellId(2);
        v.on_resumed(UeId(1), Some(ServiceId(1)), &same);
        assert_eq!(v.figures.measured, 0);
        // Radio gap 40 ms, answered at its end: hidden.
        v.on_resumed(UeId(1), Some(ServiceId(1)), &gap(1_020, 1_060, 1_060));
        assert_eq!(v.relocations[0].added_ms, Some(0.0));
        assert_eq!(v.relocations[0].hidden, Some(true));
        // A later relocation that added 35 ms.
        relocate(&mut v, 5_000);
        v.on_resumed(UeId(1), Some(ServiceId(1)), &gap(5_020, 5_060, 5_095));
        assert_eq!(v.relocations[1].hidden, Some(false));
        assert_eq!((v.figures.measured, v.figures.hidden), (2, 1));
        assert_eq!(v.figures.added_ms_max, Some(35.0));
        assert_eq!(v.figures.added_ms_p50, Some(0.0));
        // A gap long after any relocation (a same-server handover) is nobody's.
        v.on_resumed(UeId(1), Some(ServiceId(1)), &gap(20_000, 20_040, 20_040));
        assert_eq!(v.figures.measured, 2);
        // The live instance moved with the relocations.
        assert_eq!(
            v.servers.iter().find(|s| s.id == 3).map(|s| s.live.clone()),
            Some(vec![1])
        );
    }
}
