//! The [`BaseStation`] role.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;
use std::time::Duration;

use edgeshift_proto::{
    CancelReason, CellId, HandoverCancel, HandoverCommand, HandoverComplete, HandoverExecution,
    HandoverPrediction, HandoverRequest, HandoverRequestAck, Instant, Message, NodeId, RadioReport,
    Reattach, Role, Route, RouteQuery, TimerTable, Timing, Transmit, UeContextRelease, UeId,
};

use crate::config::RanConfig;
use crate::predict::{Prediction, Sample};

/// One measurement report of a UE: filtered RSRP of the serving cell and neighbours.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementReport {
    /// The UE.
    pub ue: UeId,
    /// RSRP of the serving cell (dBm).
    pub serving_dbm: f64,
    /// RSRP of neighbour cells (dBm).
    pub neighbours: Vec<(CellId, f64)>,
    /// The UE's reported position (m), if it reports one.
    pub position: Option<[f64; 2]>,
}

/// Events of a base station.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RanEvent {
    /// 1002 sent (empty candidates: withdrawn).
    Predicted {
        /// The UE.
        ue: UeId,
        /// Candidate cells, most likely first.
        candidates: Vec<CellId>,
        /// Expected handover time.
        eta: Option<Instant>,
    },
    /// A3 held for the time to trigger; 1005 and 2001 sent.
    HandoverTriggered {
        /// The UE.
        ue: UeId,
        /// The target.
        target: CellId,
    },
    /// 2003 sent: the UE detaches.
    HandoverExecuted {
        /// The UE.
        ue: UeId,
        /// The target.
        target: CellId,
    },
    /// The target refused the UE; the handover is cancelled.
    HandoverRejected {
        /// The UE.
        ue: UeId,
        /// The target.
        target: CellId,
    },
    /// A handover back to the cell the UE arrived from, within the ping-pong window.
    PingPong {
        /// The UE.
        ue: UeId,
        /// The cell it goes back to.
        back_to: CellId,
    },
    /// A UE joined this cell.
    UeAttached {
        /// The UE.
        ue: UeId,
        /// The cell it came from, if it came by handover.
        from: Option<CellId>,
    },
    /// A handover failed: the UE did not join the target in time (at the target), or it
    /// came back to the source by re-establishment (at the source).
    HandoverFailed {
        /// The UE.
        ue: UeId,
        /// The target it did not reach.
        target: CellId,
        /// What the cell saw.
        why: &'static str,
    },
    /// A UE left this cell for good (context released).
    UeReleased {
        /// The UE.
        ue: UeId,
    },
    /// Service traffic that could not be relayed.
    TrafficDropped {
        /// The UE.
        ue: UeId,
        /// Why.
        why: &'static str,
    },
    /// A peer sent something that does not fit; it was ignored.
    ProtocolViolation {
        /// Sender.
        from: NodeId,
        /// What.
        what: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handover {
    Preparing {
        target: CellId,
        execute_at: Instant,
        acked: bool,
    },
    Executing {
        target: CellId,
    },
}

#[derive(Debug, Default)]
struct UeCtx {
    history: VecDeque<Sample>,
    a3_since: BTreeMap<CellId, Instant>,
    sent: Option<(Vec<CellId>, Instant, Instant)>, // candidates, eta, sent at
    empty_since: Option<Instant>,
    handover: Option<Handover>,
    track: Option<crate::kalman::Track>,
    last: Option<MeasurementReport>,
    /// The cell the UE came from by handover, and when.
    arrived: Option<(CellId, Instant)>,
    /// When it joined this cell (by handover or attach).
    joined: Option<Instant>,
    /// When its last radio report (3005) went to the control node.
    reported: Option<Instant>,
}

/// What a predictor sees of `ue` now.
fn view<'a>(cfg: &RanConfig, ue: UeId, now: Instant, ctx: &'a UeCtx) -> crate::UeView<'a> {
    crate::UeView {
        ue,
        now,
        serving: cfg.cell,
        time_to_trigger: cfg.time_to_trigger,
        a3_threshold_db: cfg.a3_offset_db + cfg.hysteresis_db,
        history: &ctx.history,
        a3_since: &ctx.a3_since,
        last: ctx.last.as_ref(),
        arrived: ctx.arrived,
        joined: ctx.joined,
        track: ctx.track.as_ref(),
    }
}

/// A base station serving one cell.
#[derive(Debug)]
pub struct BaseStation {
    cfg: RanConfig,
    ues: BTreeMap<UeId, UeCtx>,
    incoming: BTreeMap<UeId, CellId>,
    routes: BTreeMap<UeId, Route>,
    /// Source side: when each prepared handover executes. Keyed by UE *and* time: a UE
    /// can hold two (a rejected or late-acked preparation leaves its timer, and a new
    /// preparation adds one), and both fire, as they always did.
    executions: TimerTable<(UeId, Instant)>,
    predictor: Box<dyn crate::Predictor>,
    /// Target side: admitted UEs and when they must have joined.
    joining: TimerTable<UeId>,
    /// Source side: commanded UEs and when the target must have released them.
    leaving: TimerTable<UeId>,
    out: VecDeque<Transmit>,
    events: VecDeque<RanEvent>,
}

impl BaseStation {
    /// A cell with no UEs.
    #[must_use]
    pub fn new(cfg: RanConfig) -> Self {
        Self {
            predictor: cfg.predictor.build(),
            cfg,
            ues: BTreeMap::new(),
            incoming: BTreeMap::new(),
            routes: BTreeMap::new(),
            executions: TimerTable::new(),
            joining: TimerTable::new(),
            leaving: TimerTable::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// This cell.
    #[must_use]
    pub fn cell(&self) -> CellId {
        self.cfg.cell
    }

    /// Whether `ue` is attached here (including during its outgoing handover).
    #[must_use]
    pub fn serves(&self, ue: UeId) -> bool {
        self.ues.contains_key(&ue)
    }

    /// The route this cell uses for `ue`'s service.
    #[must_use]
    pub fn route(&self, ue: UeId) -> Option<Route> {
        self.routes.get(&ue).copied()
    }

    fn send(&mut self, to: impl Into<NodeId>, msg: impl Into<Message>) {
        self.out.push_back(Transmit {
            to: to.into(),
            msg: msg.into(),
        });
    }

    fn learn_route(&mut self, ue: UeId, route: Route) {
        let newer = self.routes.get(&ue).is_none_or(|r| route.epoch >= r.epoch);
        if newer {
            self.routes.insert(ue, route);
        }
    }

    /// A UE attached without a handover (power-on, initial placement), or came back by
    /// RRC re-establishment after its handover failed.
    pub fn handle_attach(&mut self, now: Instant, ue: UeId) {
        let ctx = self.ues.entry(ue).or_default();
        ctx.joined.get_or_insert(now);
        if let Some(Handover::Executing { target }) = ctx.handover {
            // Re-established here: the handover failed; measure and predict afresh.
            ctx.handover = None;
            ctx.a3_since.clear();
            ctx.sent = None;
            ctx.empty_since = None;
            self.leaving.cancel(ue);
            self.events.push_back(RanEvent::HandoverFailed {
                ue,
                target,
                why: "the UE re-established at the source",
            });
            let source = self.cfg.cell;
            self.send(
                self.cfg.control,
                HandoverCancel {
                    ue,
                    source,
                    target,
                    reason: CancelReason::Failed,
                },
            );
        }
        self.events
            .push_back(RanEvent::UeAttached { ue, from: None });
    }

    /// A measurement report of an attached UE: runs A3 and the predictor.
    pub fn handle_measurement(&mut self, now: Instant, report: &MeasurementReport) {
        let cell = self.cfg.cell;
        let (offset, hys, ttt, a5) = (
            self.cfg.a3_offset_db,
            self.cfg.hysteresis_db,
            self.cfg.time_to_trigger,
            self.cfg.a5,
        );
        let Some(ctx) = self.ues.get_mut(&report.ue) else {
            return;
        };
        if ctx.handover.is_some() {
            return;
        }
        if let Some(pos) = report.position {
            ctx.track
                .get_or_insert_with(|| crate::kalman::Track::new(now, pos))
                .update(now, pos);
        }
        ctx.last = Some(report.clone());
        let report_due = self.cfg.radio_report_period.is_some_and(|p| {
            ctx.reported
                .is_none_or(|at| now.saturating_duration_since(at) >= p)
        });
        if report_due {
            ctx.reported = Some(now);
        }
        let margins: crate::predict::Margins = report
            .neighbours
            .iter()
            .filter(|(c, _)| *c != cell)
            .map(|(c, rsrp)| (*c, rsrp - report.serving_dbm - offset - hys))
            .collect();
        // The trigger event (A3, or A5 when configured) with its hysteresis; the margins
        // above stay A3 margins, which is what the predictor extrapolates.
        for (c, rsrp) in report.neighbours.iter().filter(|(c, _)| *c != cell) {
            let s = report.serving_dbm;
            let (enter, leave) = match a5 {
                None => {
                    let m = rsrp - s - offset - hys;
                    (m > 0.0, m + 2.0 * hys < 0.0)
                }
                Some((t1, t2)) => (
                    s + hys < t1 && rsrp - hys > t2,
                    s - hys > t1 || rsrp + hys < t2,
                ),
            };
            if enter {
                ctx.a3_since.entry(*c).or_insert(now);
            } else if leave {
                ctx.a3_since.remove(c);
            }
        }
        ctx.a3_since
            .retain(|c, _| margins.iter().any(|(m, _)| m == c));
        ctx.history.push_back(Sample { at: now, margins });
        while ctx.history.len() > self.cfg.predictor.window.max(3) {
            ctx.history.pop_front();
        }
        let ready = ctx
            .a3_since
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= ttt)
            .map(|(c, _)| *c)
            .max_by(|a, b| {
                let rsrp = |c: &CellId| {
                    report
                        .neighbours
                        .iter()
                        .find(|n| n.0 == *c)
                        .map_or(f64::MIN, |n| n.1)
                };
                rsrp(a).total_cmp(&rsrp(b))
            });
        if report_due {
            // f32 is plenty for dBm and halves the message.
            #[allow(clippy::cast_possible_truncation)]
            let msg = RadioReport {
                ue: report.ue,
                cell,
                serving_dbm: report.serving_dbm as f32,
                neighbours: report
                    .neighbours
                    .iter()
                    .map(|&(c, dbm)| (c, dbm as f32))
                    .collect(),
            };
            self.send(self.cfg.control, msg);
        }
        if let Some(target) = ready {
            self.start_handover(now, report.ue, target);
        } else if self.cfg.predictor.enabled {
            self.update_prediction(now, report.ue);
        }
    }

    fn update_prediction(&mut self, now: Instant, ue: UeId) {
        let p = {
            let Some(ctx) = self.ues.get(&ue) else {
                return;
            };
            self.predictor.predict(&view(&self.cfg, ue, now, ctx))
        };
        let cfg = &self.cfg.predictor;
        let Some(ctx) = self.ues.get_mut(&ue) else {
            return;
        };
        let send = match (&p, &ctx.sent) {
            (Some(p), None) => Some(p.clone()),
            (Some(p), Some((cells, eta, at))) => {
                let changed = p.candidates.iter().map(|c| c.cell).collect::<Vec<_>>() != *cells;
                let moved =
                    p.eta.as_nanos().abs_diff(eta.as_nanos()) > cfg.eta_change.as_nanos() as u64;
                let stale = now.saturating_duration_since(*at) >= cfg.refresh;
                (changed || moved || stale).then(|| p.clone())
            }
            (None, _) => None,
        };
        if p.is_some() {
            ctx.empty_since = None;
        }
        if let Some(p) = send {
            self.send_prediction(now, ue, Some(p));
            return;
        }
        if p.is_none() && ctx.sent.is_some() {
            let since = *ctx.empty_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= cfg.withdraw_after {
                self.send_prediction(now, ue, None);
            }
        }
    }

    fn send_prediction(&mut self, now: Instant, ue: UeId, p: Option<Prediction>) {
        let source = self.cfg.cell;
        let Some(ctx) = self.ues.get_mut(&ue) else {
            return;
        };
        let msg = match &p {
            Some(p) => {
                ctx.sent = Some((p.candidates.iter().map(|c| c.cell).collect(), p.eta, now));
                HandoverPrediction {
                    ue,
                    source,
                    candidates: p.candidates.clone(),
                    timing: Some(Timing::at_within(p.eta, p.uncertainty)),
                }
            }
            None => {
                ctx.sent = None;
                ctx.empty_since = None;
                HandoverPrediction {
                    ue,
                    source,
                    candidates: Vec::new(),
                    timing: None,
                }
            }
        };
        self.events.push_back(RanEvent::Predicted {
            ue,
            candidates: msg.candidates.iter().map(|c| c.cell).collect(),
            eta: p.as_ref().map(|p| p.eta),
        });
        self.send(self.cfg.control, msg);
    }

    fn start_handover(&mut self, now: Instant, ue: UeId, target: CellId) {
        let source = self.cfg.cell;
        let execute_at = now + self.cfg.prep_time;
        let Some(ctx) = self.ues.get_mut(&ue) else {
            return;
        };
        if ctx.arrived.is_some_and(|(from, at)| {
            from == target && now.saturating_duration_since(at) <= self.cfg.pingpong_window
        }) {
            self.events.push_back(RanEvent::PingPong {
                ue,
                back_to: target,
            });
        }
        ctx.handover = Some(Handover::Preparing {
            target,
            execute_at,
            acked: false,
        });
        self.executions.set((ue, execute_at), execute_at);
        self.events
            .push_back(RanEvent::HandoverTriggered { ue, target });
        let timing = Timing::at(execute_at);
        self.send(
            self.cfg.control,
            HandoverExecution {
                ue,
                source,
                target,
                timing,
            },
        );
        let route = self.routes.get(&ue).copied();
        self.send(
            target,
            HandoverRequest {
                ue,
                source,
                target,
                route,
            },
        );
    }

    fn execute(&mut self, now: Instant, ue: UeId) {
        let Some(ctx) = self.ues.get_mut(&ue) else {
            return;
        };
        let Some(Handover::Preparing { target, .. }) = ctx.handover else {
            return;
        };
        ctx.handover = Some(Handover::Executing { target });
        if let Some(since) = ctx.arrived.map(|a| a.1).or(ctx.joined) {
            let from = ctx.arrived.map(|a| a.0);
            self.predictor
                .learn(from, target, now.saturating_duration_since(since));
        }
        let view = view(&self.cfg, ue, now, ctx);
        self.predictor.learn_handover(&view, target);
        self.leaving.set(ue, now + self.cfg.leaving_timeout);
        self.events
            .push_back(RanEvent::HandoverExecuted { ue, target });
        self.send(ue, HandoverCommand { ue, target });
    }

    fn on_ack(&mut self, now: Instant, from: NodeId, m: HandoverRequestAck) {
        let Some(ctx) = self.ues.get_mut(&m.ue) else {
            return;
        };
        let Some(Handover::Preparing {
            target, execute_at, ..
        }) = ctx.handover
        else {
            self.events.push_back(RanEvent::ProtocolViolation {
                from,
                what: format!("2002 for {} without 2001", m.ue),
            });
            return;
        };
        if target != m.target {
            return;
        }
        if m.admitted {
            ctx.handover = Some(Handover::Preparing {
                target,
                execute_at,
                acked: true,
            });
            if now >= execute_at {
                self.execute(now, m.ue);
            }
        } else {
            // NOTE: the preparation's execution timer stays armed. If the UE is prepared
            // again (to any target) and acked before that timer fires, it executes the new
            // handover then, before the time its 1005 announced to the control node.
            ctx.handover = None;
            ctx.a3_since.clear();
            ctx.sent = None;
            self.events
                .push_back(RanEvent::HandoverRejected { ue: m.ue, target });
            let source = self.cfg.cell;
            self.send(
                self.cfg.control,
                HandoverCancel {
                    ue: m.ue,
                    source,
                    target,
                    reason: CancelReason::Rejected,
                },
            );
        }
    }

    fn relay_up(&mut self, ue: UeId, msg: Message) {
        if !self.ues.contains_key(&ue) && !self.incoming.contains_key(&ue) {
            self.events.push_back(RanEvent::TrafficDropped {
                ue,
                why: "uplink from a UE not attached here",
            });
            // This cell may have restarted and lost the UE's context: the UE attaches
            // again (it ignores the request unless this is its serving cell).
            self.send(ue, Reattach { ue });
            return;
        }
        if !self.ues.contains_key(&ue) {
            return; // Joining: uplink overtook its 2006; the UE resends.
        }
        match self.routes.get(&ue) {
            Some(r) => {
                let server = r.server;
                self.send(server, msg);
            }
            None => {
                self.events.push_back(RanEvent::TrafficDropped {
                    ue,
                    why: "no route to its service",
                });
                // A UE this cell learned again after a restart: ask where its service
                // lives (the UE resends what was dropped).
                let cell = self.cfg.cell;
                self.send(self.cfg.control, RouteQuery { ue, cell });
            }
        }
    }

    fn relay_down(&mut self, ue: UeId, msg: Message) {
        let daps = self.cfg.daps;
        let attached = self
            .ues
            .get(&ue)
            .is_some_and(|c| daps || !matches!(c.handover, Some(Handover::Executing { .. })));
        if attached {
            self.send(ue, msg);
        } else {
            self.events.push_back(RanEvent::TrafficDropped {
                ue,
                why: "downlink for a UE not attached here",
            });
        }
    }
}

/// The UE of service traffic a cell relays, and whether it goes up to the server (inputs,
/// probes) or down to the UE (answers, probe replies, resend requests).
fn relayed(msg: &Message) -> Option<(UeId, bool)> {
    match msg {
        Message::ServiceInput(m) => Some((m.ue, true)),
        Message::InputRun(m) => Some((m.ue, true)),
        Message::Probe(m) => Some((m.ue, true)),
        Message::ServiceOutput(m) => Some((m.ue, false)),
        Message::OutputRun(m) => Some((m.ue, false)),
        Message::ProbeReply(m) => Some((m.ue, false)),
        Message::ResendFrom(m) => Some((m.ue, false)),
        _ => None,
    }
}

impl Role for BaseStation {
    type Event = RanEvent;

    fn id(&self) -> NodeId {
        self.cfg.cell.into()
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        if !edgeshift_proto::may_send(from, self.cfg.cell.into(), &msg) {
            self.events.push_back(RanEvent::ProtocolViolation {
                from,
                what: edgeshift_proto::refusal(from, &msg),
            });
            return;
        }
        if let Some((ue, up)) = relayed(&msg) {
            if up {
                self.relay_up(ue, msg);
            } else {
                self.relay_down(ue, msg);
            }
            return;
        }
        match msg {
            Message::RouteUpdate(m) => self.learn_route(m.ue, m.route),
            Message::Attach(m) => self.handle_attach(now, m.ue),
            Message::HandoverRequest(m) => {
                let load = self.ues.len() + self.incoming.len();
                let admitted = load < self.cfg.capacity as usize && !self.ues.contains_key(&m.ue);
                if admitted {
                    self.incoming.insert(m.ue, m.source);
                    self.joining.set(m.ue, now + self.cfg.joining_timeout);
                    if let Some(r) = m.route {
                        self.learn_route(m.ue, r);
                    }
                }
                let target = self.cfg.cell;
                self.send(
                    m.source,
                    HandoverRequestAck {
                        ue: m.ue,
                        target,
                        admitted,
                    },
                );
            }
            Message::HandoverRequestAck(m) => self.on_ack(now, from, m),
            Message::HandoverConfirm(m) => {
                self.joining.cancel(m.ue);
                let from_cell = self.incoming.remove(&m.ue).unwrap_or(m.source);
                let ctx = UeCtx {
                    arrived: Some((from_cell, now)),
                    joined: Some(now),
                    ..UeCtx::default()
                };
                self.ues.insert(m.ue, ctx);
                self.events.push_back(RanEvent::UeAttached {
                    ue: m.ue,
                    from: Some(from_cell),
                });
                self.send(from_cell, UeContextRelease { ue: m.ue });
                let target = self.cfg.cell;
                self.send(
                    self.cfg.control,
                    HandoverComplete {
                        ue: m.ue,
                        source: from_cell,
                        target,
                    },
                );
            }
            Message::UeContextRelease(m) => {
                self.leaving.cancel(m.ue);
                if self.ues.remove(&m.ue).is_some() {
                    self.executions.cancel_range(executions_of(m.ue));
                    self.events.push_back(RanEvent::UeReleased { ue: m.ue });
                }
            }
            other => self.events.push_back(RanEvent::ProtocolViolation {
                from,
                what: format!("{} is not for a base station", other.name()),
            }),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, (ue, _))) = self.executions.pop_due(now) {
            let acked = self.ues.get(&ue).is_some_and(|c| {
                matches!(c.handover, Some(Handover::Preparing { acked: true, .. }))
            });
            if acked {
                self.execute(now, ue);
            }
        }
        // Expired joins, then expired leaves, each in UE order as always.
        for ue in due_by_ue(&mut self.joining, now) {
            if self.incoming.remove(&ue).is_some() {
                let target = self.cfg.cell;
                self.events.push_back(RanEvent::HandoverFailed {
                    ue,
                    target,
                    why: "the UE did not join in time",
                });
            }
        }
        for ue in due_by_ue(&mut self.leaving, now) {
            let executing = self.ues.get(&ue).and_then(|c| match c.handover {
                Some(Handover::Executing { target }) => Some(target),
                _ => None,
            });
            if let Some(target) = executing {
                self.ues.remove(&ue);
                self.executions.cancel_range(executions_of(ue));
                self.events.push_back(RanEvent::HandoverFailed {
                    ue,
                    target,
                    why: "the target never released the UE",
                });
                self.events.push_back(RanEvent::UeReleased { ue });
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<RanEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.executions.next_deadline(),
            self.joining.next_deadline(),
            self.leaving.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Every execution timer of `ue`.
fn executions_of(ue: UeId) -> RangeInclusive<(UeId, Instant)> {
    (ue, Instant(u64::MIN))..=(ue, Instant(u64::MAX))
}

/// Disarms the timers of `table` due at `now` and returns their UEs in UE order.
fn due_by_ue(table: &mut TimerTable<UeId>, now: Instant) -> Vec<UeId> {
    let mut due: Vec<UeId> = std::iter::from_fn(|| table.pop_due(now).map(|(_, ue)| ue)).collect();
    due.sort_unstable();
    due
}

/// Time to trigger in the 3GPP value set (TS 38.331 `TimeToTrigger`), for validation.
pub const TTT_VALUES_MS: [u64; 16] = [
    0, 40, 64, 80, 100, 128, 160, 256, 320, 480, 512, 640, 1024, 1280, 2560, 5120,
];

/// Whether `ttt` is one of the 3GPP values.
#[must_use]
pub fn is_standard_ttt(ttt: Duration) -> bool {
    TTT_VALUES_MS
        .iter()
        .any(|v| Duration::from_millis(*v) == ttt)
}
