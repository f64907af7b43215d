//! Invariant checkers. They watch every role event of a run and record violations:
//!
//! - **exactly once, in order**: the serving instance applies input `n` only right after
//!   `n - 1`, and never twice; an activated shadow holds exactly the inputs the frozen
//!   source had applied, with the same input-log digest the UE's own inputs give;
//! - **one live instance**: at most one serving instance per service at any time, and only
//!   a serving instance answers the UE;
//! - **nothing lost**: a failed relocation leaves the source serving; at the end every input
//!   the UE sent is applied and answered;
//! - **failover**: a crashed or fenced server stops serving; a shadow promoted after its
//!   source died holds a prefix of the UE's inputs (digest checked), and the inputs only
//!   the dead instance had applied count as not applied, to be applied again exactly once;
//!   so do those a target that went live applied past its source's freeze, when it was
//!   lost and the source serves again (no other instance serving);
//! - **twin**: the final state equals that of a twin that never moved (checked at the end
//!   by [`crate::Recorder::finish`] from each UE's [`crate::UeFinal`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgeshift_edge::EdgeEvent;
use edgeshift_proto::{Instant, ServerId, ServiceId};

use crate::ledger::{Ledger, NeverSent};

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Violation {
    /// Seconds from the start of the run (virtual time in the simulator, the run's own
    /// clock in the live demo).
    pub at_s: f64,
    /// What broke.
    pub what: String,
}

#[derive(Debug, Default)]
struct ServiceCheck {
    serving: BTreeSet<ServerId>,
    /// The input each frozen source stopped at.
    frozen: BTreeMap<ServerId, u64>,
    live_last: u64,
    inputs: Ledger,
    /// A tentative instance (optimistic activation) and the inputs it applied, in order:
    /// kept aside until its relocation commits.
    tentative: Option<(ServerId, Vec<u64>)>,
}

impl ServiceCheck {
    /// What is wrong with `digest` as the state after the UE's inputs `1..=seq`, if
    /// anything: another digest, or a state older than the checker's window, which can no
    /// longer be checked (a violation too, so that no run passes with a state unchecked).
    /// Inputs the UE never sent are judged elsewhere.
    fn digest_problem(&self, seq: u64, digest: u128) -> Option<&'static str> {
        match self.inputs.digest(seq) {
            Some(d) if d != digest => Some("a wrong input-log digest"),
            None if seq <= self.inputs.sent() => {
                Some("a state older than the checker's window, whose digest goes unchecked")
            }
            _ => None,
        }
    }

    /// The tentative instance at `server` is the live one now: its applications past the
    /// live state's count, in order (those up to it were the source's too).
    fn merge_tentative(&mut self, server: ServerId, broken: &mut Vec<String>, service: ServiceId) {
        let Some((at, kept)) = self.tentative.take() else {
            return;
        };
        if at != server {
            self.tentative = Some((at, kept));
            return;
        }
        let base = self.live_last;
        for seq in kept.into_iter().filter(|s| *s > base) {
            self.count_live(seq, broken, service);
        }
    }

    /// The serving instance applied `seq`.
    fn count_live(&mut self, seq: u64, broken: &mut Vec<String>, service: ServiceId) {
        if seq != self.live_last + 1 {
            broken.push(format!(
                "{service}: live applied {seq} after {}",
                self.live_last
            ));
        }
        self.live_last = self.live_last.max(seq);
        match self.inputs.count(seq) {
            Ok(c) if c > 1 => broken.push(format!("{service}: input {seq} applied {c} times")),
            Ok(_) => {}
            Err(NeverSent) => {
                broken.push(format!("{service}: input {seq} applied but never sent"));
            }
        }
    }

    /// Whether `server` holds a tentative instance.
    fn is_tentative_at(&self, server: ServerId) -> bool {
        self.tentative.as_ref().is_some_and(|(at, _)| *at == server)
    }

    /// The live state is back at input `last_seq`: applications past it count as undone.
    fn forget_applied(&mut self, last_seq: u64) {
        for seq in (last_seq + 1)..=self.live_last {
            self.inputs.uncount(seq);
        }
        self.live_last = last_seq.min(self.live_last);
    }
}

/// Watches a run; see the module docs.
#[derive(Debug, Default)]
pub struct Checker {
    origin: Instant,
    // Looked up on every input, and iterated only where order cannot matter (a crash takes
    // the server out of every service): a hash map with a fixed hasher (the same on every
    // run) costs one cache miss where a tree of thousands of services costs several.
    services: HashMap<ServiceId, ServiceCheck, crate::FixedState>,
    violations: Vec<Violation>,
    /// Inputs per service kept densely (see [`Checker::with_window`]).
    window: Option<usize>,
}

impl Checker {
    /// A checker whose violations count their time from `origin`.
    #[must_use]
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            ..Self::default()
        }
    }

    /// Keeps the digests (and dense counts) of each service's newest `inputs` inputs only,
    /// so that memory does not grow with a run's length: counting stays exact, but a state
    /// older than the window (activated or promoted) can no longer be digest-checked, and
    /// is a violation. The window follows the inputs as they are created, so the events
    /// must come in time order (as a run reports them), not all inputs first.
    #[must_use]
    pub fn with_window(mut self, inputs: usize) -> Self {
        self.window = Some(inputs);
        self
    }

    /// Violations so far.
    #[must_use]
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    pub(crate) fn violation(&mut self, now: Instant, what: String) {
        self.violations.push(Violation {
            at_s: now.saturating_duration_since(self.origin).as_secs_f64(),
            what,
        });
    }

    /// The UE created input `seq` of `service`.
    pub(crate) fn on_generated(
        &mut self,
        now: Instant,
        service: ServiceId,
        seq: u64,
        payload: &[u8],
    ) {
        let s = self.services.entry(service).or_default();
        s.inputs.set_window(self.window);
        if !s.inputs.create(seq, payload) {
            let what = format!("{service}: UE created input {seq} out of order");
            self.violation(now, what);
        }
    }

    /// An ME server reported `ev`.
    pub(crate) fn on_edge(&mut self, now: Instant, server: ServerId, ev: &EdgeEvent) {
        let mut broken = Vec::new();
        match ev {
            EdgeEvent::Instantiated { service } => {
                let s = self.services.entry(*service).or_default();
                s.serving.insert(server);
                if s.serving.len() > 1 {
                    broken.push(format!("{service}: live at {:?}", s.serving));
                }
            }
            EdgeEvent::RelocationFailed { service, .. } => {
                let s = self.services.entry(*service).or_default();
                if let Some(base) = s.frozen.remove(&server)
                    && base < s.live_last
                    && s.serving.is_empty()
                {
                    // The target went live and applied inputs past the freeze (passed on
                    // by the source), then died or was cut off, and the control node had
                    // the source serve again. As after a failover, the inputs only the lost
                    // instance applied died with it; the source applies them again.
                    s.forget_applied(base);
                }
                s.serving.insert(server);
                if s.serving.len() > 1 {
                    broken.push(format!("{service}: live at {:?}", s.serving));
                }
            }
            EdgeEvent::Applied {
                service,
                seq,
                live: true,
            } => {
                let s = self.services.entry(*service).or_default();
                if let Some((at, kept)) = &mut s.tentative
                    && *at == server
                {
                    let after = kept.last().copied();
                    if after.is_some_and(|a| *seq != a + 1) {
                        broken.push(format!(
                            "{service}: tentative instance at {server} applied {seq} after {after:?}"
                        ));
                    }
                    kept.push(*seq);
                } else {
                    if !s.serving.contains(&server) {
                        broken.push(format!(
                            "{service}: {server} applied {seq} as live but is not serving"
                        ));
                    }
                    s.count_live(*seq, &mut broken, *service);
                }
            }
            EdgeEvent::Answered { service, seq, live } => {
                let serving = self
                    .services
                    .get(service)
                    .is_some_and(|s| s.serving.contains(&server) || s.is_tentative_at(server));
                if !live || !serving {
                    broken.push(format!(
                        "{service}: {server} answered {seq} without being live"
                    ));
                }
            }
            EdgeEvent::Frozen { service, last_seq } => {
                let s = self.services.entry(*service).or_default();
                s.serving.remove(&server);
                s.frozen.insert(server, *last_seq);
            }
            EdgeEvent::RelocatedOut { service, .. } | EdgeEvent::Released { service, .. } => {
                let s = self.services.entry(*service).or_default();
                s.serving.remove(&server);
                s.frozen.remove(&server);
            }
            EdgeEvent::Tentative { service, .. } => {
                let s = self.services.entry(*service).or_default();
                if let Some((at, _)) = &s.tentative {
                    broken.push(format!(
                        "{service}: tentative at {server} while tentative at {at}"
                    ));
                }
                s.tentative = Some((server, Vec::new()));
            }
            EdgeEvent::TentativeDropped { service, .. } => {
                let s = self.services.entry(*service).or_default();
                if s.is_tentative_at(server) {
                    s.tentative = None;
                }
            }
            EdgeEvent::Fenced { services } => {
                for service in services {
                    self.services
                        .entry(*service)
                        .or_default()
                        .serving
                        .remove(&server);
                }
            }
            EdgeEvent::Unfenced { services } => {
                for service in services {
                    let s = self.services.entry(*service).or_default();
                    if s.is_tentative_at(server) {
                        continue; // It serves again, still tentatively.
                    }
                    s.serving.insert(server);
                    if s.serving.len() > 1 {
                        broken.push(format!("{service}: live at {:?}", s.serving));
                    }
                }
            }
            EdgeEvent::Promoted {
                service,
                last_seq,
                digest,
                ..
            } => {
                let s = self.services.entry(*service).or_default();
                // A tentative instance promoted: what it applied past the dead source counts.
                s.merge_tentative(server, &mut broken, *service);
                // A host that is still "serving" here was stopped past its lease, or cut
                // off before it noticed: the lease says it serves no more. Should it apply
                // or answer anything before it is released, that is a violation then.
                s.serving.clear();
                if *last_seq > s.live_last {
                    broken.push(format!(
                        "{service}: promoted at {server} holding input {last_seq}, beyond the {} ever applied",
                        s.live_last
                    ));
                }
                if let Some(problem) = s.digest_problem(*last_seq, *digest) {
                    broken.push(format!("{service}: promoted at {server} with {problem}"));
                }
                // The inputs only the dead instance applied died with it.
                s.forget_applied(*last_seq);
                s.serving.insert(server);
            }
            EdgeEvent::Activated {
                service,
                last_seq,
                digest,
                ..
            } => {
                let s = self.services.entry(*service).or_default();
                if *last_seq != s.live_last {
                    broken.push(format!(
                        "{service}: activated at {server} holding input {last_seq}, the live instance had {}",
                        s.live_last
                    ));
                }
                if let Some(problem) = s.digest_problem(*last_seq, *digest) {
                    broken.push(format!("{service}: activated at {server} with {problem}"));
                }
                s.merge_tentative(server, &mut broken, *service);
                s.serving.insert(server);
                if s.serving.len() > 1 {
                    broken.push(format!("{service}: live at {:?}", s.serving));
                }
            }
            _ => {}
        }
        for b in broken {
            self.violation(now, b);
        }
    }

    /// A server crashed (or was killed): it serves nothing from now on.
    pub(crate) fn on_crash(&mut self, server: ServerId) {
        for s in self.services.values_mut() {
            s.serving.remove(&server);
            // A restarted server starts empty: it never resumes from that freeze, and a
            // tentative instance there is gone.
            s.frozen.remove(&server);
            if s.is_tentative_at(server) {
                s.tentative = None;
            }
        }
    }

    /// Whether `service` was deployed and has no single live instance now (a relocation in
    /// flight, or worse).
    #[must_use]
    pub fn in_flight(&self, service: ServiceId) -> bool {
        self.services
            .get(&service)
            .is_some_and(|s| s.serving.len() != 1)
    }

    /// The server serving `service`, if exactly one.
    #[must_use]
    pub fn serving(&self, service: ServiceId) -> Option<ServerId> {
        let s = self.services.get(&service)?;
        (s.serving.len() == 1)
            .then(|| s.serving.iter().next().copied())
            .flatten()
    }

    /// Inputs created for `service` and how many were applied exactly once.
    #[must_use]
    pub fn counts(&self, service: ServiceId) -> (u64, u64) {
        self.services
            .get(&service)
            .map_or((0, 0), |s| (s.inputs.sent(), s.inputs.once()))
    }

    /// The digest the UE's inputs `1..=seq` give.
    #[must_use]
    pub fn expected_digest(&self, service: ServiceId, seq: u64) -> Option<u128> {
        self.services.get(&service)?.inputs.digest(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ServiceId = ServiceId(1);
    const SRC: ServerId = ServerId(1);
    const DST: ServerId = ServerId(2);

    /// A checker where the UE sent inputs 1..=3 and the source, serving, applied 1.
    fn source_applied_one() -> Checker {
        let mut c = Checker::new(Instant::ZERO);
        let t = Instant::ZERO;
        for seq in 1..=3 {
            c.on_generated(t, S, seq, &[seq as u8]);
        }
        c.on_edge(t, SRC, &EdgeEvent::Instantiated { service: S });
        c.on_edge(t, SRC, &applied(1));
        c
    }

    /// A checker where the UE sent inputs 1..=3, the source applied 1 and froze, and the
    /// target went live and applied 2 and 3 (passed on to it).
    fn target_ran_past_the_freeze() -> Checker {
        let mut c = source_applied_one();
        let t = Instant::ZERO;
        c.on_edge(
            t,
            SRC,
            &EdgeEvent::Frozen {
                service: S,
                last_seq: 1,
            },
        );
        let digest = c.expected_digest(S, 1).unwrap_or_default();
        c.on_edge(t, DST, &activated(1, digest));
        c.on_edge(t, DST, &applied(2));
        c.on_edge(t, DST, &applied(3));
        c.on_crash(DST);
        c
    }

    /// The shadow at `DST` went live holding inputs `1..=last_seq` with `digest`.
    fn activated(last_seq: u64, digest: u128) -> EdgeEvent {
        EdgeEvent::Activated {
            service: S,
            from: SRC,
            last_seq,
            digest,
            first_try: true,
            state_bytes: 0,
            shadow_created_at: Instant::ZERO,
        }
    }

    fn applied(seq: u64) -> EdgeEvent {
        EdgeEvent::Applied {
            service: S,
            seq,
            live: true,
        }
    }

    fn failed() -> EdgeEvent {
        EdgeEvent::RelocationFailed {
            service: S,
            target: DST,
            reason: "lost".into(),
        }
    }

    /// With a window of 4 inputs, a shadow that holds input 1 of 10 is activated: its state
    /// is older than the window, so its digest cannot be checked, and that is a violation
    /// (never a silent pass); one holding input 8 is checked as usual.
    #[test]
    fn a_state_older_than_the_window_is_a_violation_not_a_silent_pass() {
        let activate = |c: &mut Checker, last_seq: u64, digest: u128| {
            c.on_edge(Instant::ZERO, DST, &activated(last_seq, digest));
        };
        let mut c = Checker::new(Instant::ZERO).with_window(4);
        let mut full = Checker::new(Instant::ZERO);
        for seq in 1..=10 {
            c.on_generated(Instant::ZERO, S, seq, &[seq as u8]);
            full.on_generated(Instant::ZERO, S, seq, &[seq as u8]);
        }
        let old = full.expected_digest(S, 1).unwrap_or_default();
        assert_eq!(c.expected_digest(S, 1), None);
        activate(&mut c, 1, old);
        let found: Vec<&str> = c.violations().iter().map(|v| v.what.as_str()).collect();
        assert!(
            found
                .iter()
                .any(|w| w.contains("older than the checker's window")),
            "{found:?}"
        );
        assert!(!found.iter().any(|w| w.contains("wrong")), "{found:?}");

        let mut c = Checker::new(Instant::ZERO).with_window(4);
        for seq in 1..=10 {
            c.on_generated(Instant::ZERO, S, seq, &[seq as u8]);
        }
        let recent = full.expected_digest(S, 8).unwrap_or_default();
        activate(&mut c, 8, recent);
        assert!(
            !c.violations().iter().any(|v| v.what.contains("digest")),
            "{:?}",
            c.violations()
        );
        activate(&mut c, 8, recent ^ 1);
        assert!(
            c.violations()
                .iter()
                .any(|v| v.what.contains("wrong input-log digest")),
            "{:?}",
            c.violations()
        );
    }

    #[test]
    fn a_source_that_serves_again_applies_what_its_lost_target_had_applied() {
        let mut c = target_ran_past_the_freeze();
        c.on_edge(Instant::ZERO, SRC, &failed());
        c.on_edge(Instant::ZERO, SRC, &applied(2));
        c.on_edge(Instant::ZERO, SRC, &applied(3));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.counts(S), (3, 3));
    }

    #[test]
    fn a_restarted_source_does_not_undo_what_its_target_applied() {
        let mut c = target_ran_past_the_freeze();
        c.on_crash(SRC);
        c.on_edge(Instant::ZERO, SRC, &failed());
        c.on_edge(Instant::ZERO, SRC, &applied(2));
        assert!(
            c.violations()
                .iter()
                .any(|v| v.what.contains("live applied 2 after 3")),
            "{:?}",
            c.violations()
        );
    }

    /// The source applied 1, the target went live tentatively at 1 and applied 2 and 3.
    fn tentative_past_the_source() -> Checker {
        let mut c = source_applied_one();
        let t = Instant::ZERO;
        let tentative = EdgeEvent::Tentative {
            service: S,
            from: SRC,
            last_seq: 1,
        };
        c.on_edge(t, DST, &tentative);
        c.on_edge(t, DST, &applied(2));
        c.on_edge(
            t,
            DST,
            &EdgeEvent::Answered {
                service: S,
                seq: 2,
                live: true,
            },
        );
        c.on_edge(t, DST, &applied(3));
        c.on_edge(
            t,
            SRC,
            &EdgeEvent::Frozen {
                service: S,
                last_seq: 1,
            },
        );
        c
    }

    #[test]
    fn a_commit_counts_what_the_tentative_instance_applied_past_the_source() {
        let mut c = tentative_past_the_source();
        let digest = c.expected_digest(S, 1).unwrap_or_default();
        c.on_edge(Instant::ZERO, DST, &activated(1, digest));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.counts(S), (3, 3));
        assert_eq!(c.serving(S), Some(DST));
    }

    #[test]
    fn a_rollback_leaves_the_inputs_to_the_source() {
        let mut c = tentative_past_the_source();
        let dropped = EdgeEvent::TentativeDropped {
            service: S,
            to: SRC,
            reason: "aborted".into(),
        };
        c.on_edge(Instant::ZERO, DST, &dropped);
        c.on_edge(Instant::ZERO, SRC, &failed());
        c.on_edge(Instant::ZERO, SRC, &applied(2));
        c.on_edge(Instant::ZERO, SRC, &applied(3));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.counts(S), (3, 3));
        // A dropped instance that still answers is a second live instance.
        let late = EdgeEvent::Answered {
            service: S,
            seq: 3,
            live: true,
        };
        c.on_edge(Instant::ZERO, DST, &late);
        assert_eq!(c.violations().len(), 1);
    }
}
