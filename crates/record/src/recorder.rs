//! [`Recorder`]: turns the [`Observation`]s of a run into its [`Report`], with one
//! definition of every field whichever driver ran it.
//!
//! Feed observations in time order with [`Recorder::observe`] (the invariant
//! [`Checker`] runs on each), one [`UeFinal`] per UE at its end, then
//! [`Recorder::finish`].

use std::collections::BTreeMap;
use std::time::Duration;

use edgeshift_control::ControlStats;
use edgeshift_edge::EdgeEvent;
use edgeshift_proto::{Instant, NodeId, ServerId, ServiceId, UeId};
use edgeshift_ue::HandoverGap;

use crate::check::Checker;
use crate::observation::{Observation, UeFinal};
use crate::report::{Note, Percentiles, RelocationRecord, Report};

/// What the record is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunMeta {
    /// Scenario name.
    pub scenario: String,
    /// Strategy name.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Start of the run: reported times (`at_s`) count from here.
    pub origin: Instant,
}

struct Reloc {
    service: ServiceId,
    from: ServerId,
    to: ServerId,
    triggered_at: Option<Instant>,
    frozen_at: Option<Instant>,
    activated_at: Instant,
    state_bytes: u64,
    first_try: bool,
}

/// Builds a run's [`Report`]; see the module docs.
pub struct Recorder {
    meta: RunMeta,
    ues: Vec<(UeId, ServiceId)>,
    checker: Checker,
    triggered: BTreeMap<ServiceId, Instant>,
    frozen: BTreeMap<ServiceId, Instant>,
    /// Relocations under way, by their source: from the 1006 until the target goes live
    /// or the relocation fails (or the source crashes, or the service is given up).
    moving: BTreeMap<ServiceId, ServerId>,
    /// When a tentative instance (optimistic activation) went live: it serves from then.
    tentative: BTreeMap<ServiceId, Instant>,
    relocs: Vec<Reloc>,
    shadow_open: BTreeMap<(ServerId, ServiceId), Instant>,
    shadow_seconds: f64,
    shadow_bytes: u64,
    stats: ControlStats,
    notes: Vec<Note>,
    finals: BTreeMap<UeId, UeFinal>,
    /// Services the control node gave up, with the host it named.
    lost: BTreeMap<ServiceId, Option<ServerId>>,
    /// Servers that crashed (fault injection): only these lose instances.
    crashed: std::collections::BTreeSet<ServerId>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("meta", &self.meta)
            .field("ues", &self.ues.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder for a run of `ues`, each with its service, in the order the report lists
    /// their final checks.
    #[must_use]
    pub fn new(meta: RunMeta, ues: impl IntoIterator<Item = (UeId, ServiceId)>) -> Self {
        Self {
            checker: Checker::new(meta.origin),
            meta,
            ues: ues.into_iter().collect(),
            triggered: BTreeMap::new(),
            frozen: BTreeMap::new(),
            moving: BTreeMap::new(),
            tentative: BTreeMap::new(),
            relocs: Vec::new(),
            shadow_open: BTreeMap::new(),
            shadow_seconds: 0.0,
            shadow_bytes: 0,
            stats: ControlStats::default(),
            notes: Vec::new(),
            finals: BTreeMap::new(),
            lost: BTreeMap::new(),
            crashed: std::collections::BTreeSet::new(),
        }
    }

    /// The checker keeps each service's newest `inputs` inputs densely
    /// ([`Checker::with_window`]).
    #[must_use]
    pub fn with_check_window(mut self, inputs: usize) -> Self {
        self.checker = std::mem::take(&mut self.checker).with_window(inputs);
        self
    }

    /// The server serving `service` now as far as the observed events tell, if exactly one.
    #[must_use]
    pub fn serving(&self, service: ServiceId) -> Option<ServerId> {
        self.checker.serving(service)
    }

    /// Whether a relocation is under way: its source got the 1006, and its target is not
    /// live yet nor has it failed. Its service may still have one live instance (the
    /// source, while it copies the state ahead of the freeze).
    #[must_use]
    pub fn relocating(&self) -> bool {
        !self.moving.is_empty()
    }

    /// The checker (violations so far, per-input counts).
    #[must_use]
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Takes one observation.
    pub fn observe(&mut self, obs: Observation) {
        match obs {
            Observation::Input {
                at,
                service,
                seq,
                payload,
            } => self.checker.on_generated(at, service, seq, &payload),
            Observation::Edge { at, server, event } => self.edge(at, server, event),
            Observation::StateSent { bytes, .. } => self.shadow_bytes += bytes,
            Observation::ControlStats { stats, .. } => self.stats = stats,
            Observation::Note { at, node, what } => self.notes.push(Note {
                at_s: self.secs(at),
                node: node.to_string(),
                what,
            }),
            Observation::Violation { at, what } => self.checker.violation(at, what),
            Observation::ServiceLost { service, host, .. } => {
                self.moving.remove(&service);
                self.lost.insert(service, host);
            }
            Observation::Crashed { node, .. } => {
                if let NodeId::Server(server) = node {
                    self.checker.on_crash(server);
                    self.crashed.insert(server);
                    self.moving.retain(|_, from| *from != server);
                }
            }
            Observation::UeFinal(f) => {
                self.finals.insert(f.ue, f);
            }
        }
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.meta.origin).as_secs_f64()
    }

    fn close_shadow(&mut self, now: Instant, server: ServerId, service: ServiceId, since: Instant) {
        self.shadow_open.remove(&(server, service));
        self.shadow_seconds += now.saturating_duration_since(since).as_secs_f64();
    }

    fn edge(&mut self, now: Instant, server: ServerId, e: EdgeEvent) {
        self.checker.on_edge(now, server, &e);
        match e {
            EdgeEvent::RelocationTriggered { service, .. } => {
                self.triggered.insert(service, now);
                self.moving.insert(service, server);
            }
            EdgeEvent::Frozen { service, .. } => {
                self.frozen.insert(service, now);
            }
            EdgeEvent::ShadowCreated { service, .. } => {
                self.shadow_open.insert((server, service), now);
            }
            EdgeEvent::ShadowDiscarded {
                service,
                created_at,
            } => self.close_shadow(now, server, service, created_at),
            EdgeEvent::Activated {
                service,
                from,
                state_bytes,
                first_try,
                shadow_created_at,
                ..
            } => {
                self.close_shadow(now, server, service, shadow_created_at);
                self.moving.remove(&service);
                self.relocs.push(Reloc {
                    service,
                    from,
                    to: server,
                    triggered_at: self.triggered.remove(&service),
                    frozen_at: self.frozen.remove(&service),
                    activated_at: self.tentative.remove(&service).unwrap_or(now),
                    state_bytes,
                    first_try,
                });
            }
            EdgeEvent::RelocationFailed { service, .. } => {
                self.moving.remove(&service);
                self.triggered.remove(&service);
                self.frozen.remove(&service);
            }
            EdgeEvent::Tentative { service, .. } => {
                self.tentative.insert(service, now);
            }
            EdgeEvent::Promoted { service, .. } => {
                self.tentative.remove(&service);
            }
            EdgeEvent::TentativeDropped { service, .. } => {
                self.tentative.remove(&service);
                if let Some(since) = self.shadow_open.get(&(server, service)).copied() {
                    self.close_shadow(now, server, service, since);
                }
            }
            EdgeEvent::ProtocolViolation { from, what } => self.notes.push(Note {
                at_s: self.secs(now),
                node: server.to_string(),
                what: format!("from {from}: {what}"),
            }),
            _ => {}
        }
    }

    /// The final checks (every UE: answered, one live instance, holding every input, equal
    /// to its twin) and the report; shadows still open count until `end`.
    #[must_use]
    pub fn finish(mut self, end: Instant) -> Report {
        for (_, created) in std::mem::take(&mut self.shadow_open) {
            self.shadow_seconds += end.saturating_duration_since(created).as_secs_f64();
        }
        let mut inputs_sent = 0;
        let mut applied_once = 0;
        let mut twins_match = true;
        let mut gaps: Vec<(UeId, HandoverGap)> = Vec::new();
        let mut services_lost = 0;
        let mut longest_wait_ms: f64 = 0.0;
        for (ue, service) in self.ues.clone() {
            let (sent, once) = self.checker.counts(service);
            inputs_sent += sent;
            applied_once += once;
            let Some(fin) = self.finals.remove(&ue) else {
                twins_match = false;
                self.checker
                    .violation(end, format!("{ue}: never reported the end of its run"));
                continue;
            };
            gaps.extend(fin.gaps.iter().map(|g| (ue, *g)));
            longest_wait_ms = longest_wait_ms.max(fin.longest_wait_ms);
            let broken = self.final_checks(service, &fin, sent);
            if broken.is_empty() {
                continue;
            }
            match self.lost.get(&service) {
                // Its host died with no shadow to take over: a loss the run reports, not
                // a broken invariant.
                Some(None) => {
                    services_lost += 1;
                    continue;
                }
                Some(Some(host)) if self.crashed.contains(host) => {
                    services_lost += 1;
                    continue;
                }
                // A host that was only stopped or cut off kept the instance: when it is
                // back, the service must go on.
                Some(Some(host)) => self.checker.violation(
                    fin.at,
                    format!("{service}: given up with {host}, which never crashed"),
                ),
                None => {}
            }
            for (what, twin) in broken {
                twins_match &= !twin;
                self.checker.violation(fin.at, what);
            }
        }
        let records = self.records(&gaps);
        let added: Vec<f64> = gaps
            .iter()
            .filter_map(|(_, g)| g.added())
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        let stats = self.stats;
        let violations = self.checker.violations().to_vec();
        Report {
            scenario: self.meta.scenario,
            strategy: self.meta.strategy,
            seed: self.meta.seed,
            handovers: gaps.iter().filter(|(_, g)| g.attached_at.is_some()).count() as u64,
            handover_failures: gaps.iter().filter(|(_, g)| g.failed).count() as u64,
            relocations: records.len() as u64,
            relocations_skipped_same_server: stats.skipped_same_server,
            relocations_skipped_within_budget: stats.skipped_within_budget,
            mispredicted: stats.mispredicted,
            reactive_fallbacks: stats.reactive,
            handovers_cancelled: stats.cancelled,
            pingpongs: stats.pingpongs,
            invariant_violations: violations.len() as u64,
            inputs_sent,
            inputs_applied_once: applied_once,
            final_state_matches_twin: twins_match,
            services_lost,
            longest_answer_wait_ms: longest_wait_ms,
            added_interruption_ms: Percentiles::of(&added),
            shadow_bytes: self.shadow_bytes,
            shadow_seconds: self.shadow_seconds,
            relocation_records: records,
            violations,
            protocol_notes: self.notes,
        }
    }

    /// What is wrong with a UE's end of run: each finding, and whether it breaks the twin
    /// check.
    fn final_checks(&self, service: ServiceId, fin: &UeFinal, sent: u64) -> Vec<(String, bool)> {
        let mut broken = Vec::new();
        if fin.unanswered > 0 {
            broken.push((
                format!("{}: {} inputs never answered", fin.ue, fin.unanswered),
                false,
            ));
        }
        let live = fin.live.filter(|_| self.checker.serving(service).is_some());
        let Some(live) = live else {
            broken.push((
                format!("{service}: no single live instance at the end"),
                true,
            ));
            return broken;
        };
        if live.last_seq != sent {
            let what = format!(
                "{service}: live state holds input {} of {sent}",
                live.last_seq
            );
            broken.push((what, false));
        }
        if live.checksum.is_none() || fin.twin.as_ref().ok() != live.checksum.as_ref() {
            broken.push((
                format!("{service}: final state differs from its never-moved twin"),
                true,
            ));
        }
        broken
    }

    /// Each relocation, joined with the handover (of the same UE, within 2 s of its
    /// trigger) it followed.
    fn records(&self, gaps: &[(UeId, HandoverGap)]) -> Vec<RelocationRecord> {
        let msf = |d: Duration| d.as_secs_f64() * 1e3;
        let owner: BTreeMap<ServiceId, UeId> = self.ues.iter().map(|(u, s)| (*s, *u)).collect();
        let mut by_ue: BTreeMap<UeId, Vec<HandoverGap>> = BTreeMap::new();
        for (u, g) in gaps {
            by_ue.entry(*u).or_default().push(*g);
        }
        self.relocs
            .iter()
            .map(|r| {
                let ue = owner.get(&r.service).copied().unwrap_or(UeId(r.service.0));
                let t0 = r.triggered_at.unwrap_or(r.activated_at);
                let gap = by_ue
                    .get(&ue)
                    .into_iter()
                    .flatten()
                    .filter(|g| g.detached_at.as_nanos().abs_diff(t0.as_nanos()) <= 2_000_000_000)
                    .min_by_key(|g| g.detached_at.as_nanos().abs_diff(t0.as_nanos()))
                    .copied();
                let (radio, service) = match gap {
                    Some(g) => (
                        g.radio_gap().map_or(0.0, msf),
                        g.service_gap().map_or(0.0, msf),
                    ),
                    // Without a handover (load balancing): the time the service was frozen.
                    None => (
                        0.0,
                        r.frozen_at
                            .map_or(0.0, |f| msf(r.activated_at.saturating_duration_since(f))),
                    ),
                };
                RelocationRecord {
                    at_s: self.secs(r.activated_at),
                    ue: ue.to_string(),
                    service: r.service.to_string(),
                    from: r.from.to_string(),
                    to: r.to.to_string(),
                    state_bytes: r.state_bytes,
                    radio_gap_ms: radio,
                    service_gap_ms: service,
                    added_ms: (service - radio).max(0.0),
                    critical_path_ms: msf(r.activated_at.saturating_duration_since(t0)),
                    checksum_valid_first_try: r.first_try,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use edgeshift_edge::digest;
    use edgeshift_proto::{CellId, RelocationMode};

    use super::*;
    use crate::LiveState;

    const UE: UeId = UeId(1);
    const SVC: ServiceId = ServiceId(1);
    const A: ServerId = ServerId(1);
    const B: ServerId = ServerId(2);

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    fn recorder() -> Recorder {
        let meta = RunMeta {
            scenario: "unit".into(),
            strategy: "shadow".into(),
            seed: 1,
            origin: Instant::ZERO,
        };
        Recorder::new(meta, [(UE, SVC)])
    }

    fn edge(r: &mut Recorder, at: u64, server: ServerId, event: EdgeEvent) {
        r.observe(Observation::edge(ms(at), server, event));
    }

    /// Two inputs applied at A, a hot relocation to B, the UE's end: the final state is
    /// `checksum`.
    fn run(r: &mut Recorder, fail: bool) {
        edge(r, 0, A, EdgeEvent::Instantiated { service: SVC });
        let mut d = digest::GENESIS;
        for seq in 1..=2 {
            r.observe(Observation::Input {
                at: ms(seq * 10),
                service: SVC,
                seq,
                payload: vec![seq as u8],
            });
            d = digest::chain(d, seq, &[seq as u8]);
            edge(
                r,
                seq * 10 + 1,
                A,
                EdgeEvent::Applied {
                    service: SVC,
                    seq,
                    live: true,
                },
            );
        }
        edge(
            r,
            40,
            B,
            EdgeEvent::ShadowCreated {
                service: SVC,
                source: A,
            },
        );
        let mode = RelocationMode::Hot;
        edge(
            r,
            100,
            A,
            EdgeEvent::RelocationTriggered {
                service: SVC,
                target: B,
                mode,
            },
        );
        edge(
            r,
            100,
            A,
            EdgeEvent::Frozen {
                service: SVC,
                last_seq: 2,
            },
        );
        if fail {
            let reason = "refused".to_owned();
            edge(
                r,
                103,
                A,
                EdgeEvent::RelocationFailed {
                    service: SVC,
                    target: B,
                    reason,
                },
            );
        } else {
            let activated = EdgeEvent::Activated {
                service: SVC,
                from: A,
                last_seq: 2,
                digest: d,
                first_try: true,
                state_bytes: 4096,
                shadow_created_at: ms(40),
            };
            edge(r, 103, B, activated);
            edge(
                r,
                104,
                A,
                EdgeEvent::RelocatedOut {
                    service: SVC,
                    to: B,
                },
            );
        }
    }

    fn end(r: &mut Recorder, last_seq: u64, checksum: u128) {
        let gap = HandoverGap {
            from: CellId(1),
            to: CellId(2),
            detached_at: ms(100),
            attached_at: Some(ms(140)),
            first_answer_at: Some(ms(142)),
            baseline_rtt: Duration::from_millis(2),
            failed: false,
            daps_stall: None,
        };
        r.observe(Observation::UeFinal(UeFinal {
            at: ms(1000),
            ue: UE,
            service: SVC,
            unanswered: 0,
            gaps: vec![gap],
            live: Some(LiveState {
                last_seq,
                checksum: Some(checksum),
            }),
            twin: Ok(7),
            longest_wait_ms: 3.0,
        }));
    }

    /// A relocation is under way from its 1006 until the target goes live, also while
    /// the source still serves (pre-copy before the freeze): a run must not end inside
    /// it. A failure, the source's crash or the service given up end it too.
    #[test]
    fn a_relocation_is_under_way_from_its_trigger_until_it_lands_or_ends() {
        let trigger = |r: &mut Recorder, at| {
            edge(
                r,
                at,
                A,
                EdgeEvent::RelocationTriggered {
                    service: SVC,
                    target: B,
                    mode: RelocationMode::Precopy,
                },
            );
        };
        let mut r = recorder();
        edge(&mut r, 0, A, EdgeEvent::Instantiated { service: SVC });
        assert!(!r.relocating());
        trigger(&mut r, 100);
        // The source still serves: the checker sees one live instance.
        assert!(!r.checker().in_flight(SVC));
        assert!(r.relocating());
        let activated = EdgeEvent::Activated {
            service: SVC,
            from: A,
            last_seq: 0,
            digest: digest::GENESIS,
            first_try: true,
            state_bytes: 4096,
            shadow_created_at: ms(150),
        };
        edge(&mut r, 200, B, activated);
        assert!(!r.relocating());

        trigger(&mut r, 300);
        let reason = "full".to_owned();
        let failed = EdgeEvent::RelocationFailed {
            service: SVC,
            target: B,
            reason,
        };
        edge(&mut r, 310, A, failed);
        assert!(!r.relocating());

        trigger(&mut r, 400);
        r.observe(Observation::Crashed {
            at: ms(410),
            node: NodeId::Server(B),
        });
        assert!(r.relocating(), "the target's crash does not end it");
        r.observe(Observation::Crashed {
            at: ms(420),
            node: NodeId::Server(A),
        });
        assert!(!r.relocating(), "the source's crash does");
    }

    #[test]
    fn a_hidden_relocation_is_recorded_once_with_its_handover() {
        let mut r = recorder();
        run(&mut r, false);
        end(&mut r, 2, 7);
        let report = r.finish(ms(1000));
        assert_eq!(report.invariant_violations, 0, "{:?}", report.violations);
        assert_eq!((report.inputs_sent, report.inputs_applied_once), (2, 2));
        assert!(report.final_state_matches_twin);
        assert_eq!(report.relocations, 1);
        let rec = &report.relocation_records[0];
        assert_eq!((rec.from.as_str(), rec.to.as_str()), ("me1", "me2"));
        assert_eq!(
            (rec.radio_gap_ms, rec.service_gap_ms, rec.added_ms),
            (40.0, 40.0, 0.0)
        );
        assert_eq!(rec.critical_path_ms, 3.0);
        // The shadow lived from its creation to its activation.
        assert!((report.shadow_seconds - 0.063).abs() < 1e-9);
    }

    #[test]
    fn a_failed_relocation_is_not_a_violation_but_a_wrong_state_is() {
        let mut r = recorder();
        run(&mut r, true);
        end(&mut r, 2, 8);
        let report = r.finish(ms(1000));
        assert_eq!(report.relocations, 0);
        assert!(!report.final_state_matches_twin);
        let whats: Vec<&str> = report.violations.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(
            whats,
            ["svc1: final state differs from its never-moved twin"]
        );
    }

    #[test]
    fn a_ue_that_never_reports_is_a_violation() {
        let mut r = recorder();
        run(&mut r, false);
        let report = r.finish(ms(1000));
        assert!(!report.final_state_matches_twin);
        assert_eq!(
            report.violations[0].what,
            "ue1: never reported the end of its run"
        );
    }

    #[test]
    fn a_service_given_up_is_a_loss_only_if_its_host_crashed() {
        let lost = |crashed: bool| {
            let mut r = recorder();
            run(&mut r, false);
            r.observe(Observation::ServiceLost {
                at: ms(500),
                service: SVC,
                host: Some(B),
            });
            if crashed {
                r.observe(Observation::Crashed {
                    at: ms(400),
                    node: B.into(),
                });
            }
            // The UE's end with no live instance anywhere.
            r.observe(Observation::UeFinal(UeFinal {
                at: ms(1000),
                ue: UE,
                service: SVC,
                unanswered: 3,
                gaps: Vec::new(),
                live: None,
                twin: Ok(7),
                longest_wait_ms: 3.0,
            }));
            r.finish(ms(1000))
        };
        let report = lost(true);
        assert_eq!(report.services_lost, 1);
        assert_eq!(report.invariant_violations, 0, "{:?}", report.violations);
        // Stopped or cut off, the host kept the instance: giving it up is a bug.
        let report = lost(false);
        assert_eq!(report.services_lost, 0);
        assert_eq!(
            report.violations[0].what,
            "svc1: given up with me2, which never crashed"
        );
    }
}
