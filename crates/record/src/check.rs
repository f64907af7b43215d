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

use edgeshift_edge::{EdgeEvent, digest};
use edgeshift_proto::{Instant, ServerId, ServiceId};

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
    applied: Vec<u8>,
    digests: Vec<u128>,
}

impl ServiceCheck {
    /// Whether `digest` is not what the UE's inputs `1..=seq` give (inputs the UE never
    /// sent are judged elsewhere).
    fn wrong_digest(&self, seq: u64, digest: u128) -> bool {
        self.digests.get(seq as usize).is_some_and(|d| *d != digest)
    }

    /// The live state is back at input `last_seq`: applications past it count as undone.
    fn forget_applied(&mut self, last_seq: u64) {
        for seq in (last_seq + 1)..=self.live_last {
            if let Some(c) = self.applied.get_mut((seq as usize).wrapping_sub(1)) {
                *c = c.saturating_sub(1);
            }
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
        if s.digests.is_empty() {
            s.digests.push(digest::GENESIS);
        }
        if seq as usize != s.digests.len() {
            let what = format!("{service}: UE created input {seq} out of order");
            self.violation(now, what);
            return;
        }
        let prev = s.digests[s.digests.len() - 1];
        s.digests.push(digest::chain(prev, seq, payload));
        s.applied.push(0);
    }

    /// An ME server reported `ev`.
    pub(crate) fn on_edge(&mut self, now: Instant, server: ServerId, ev: &EdgeEvent) {
        let mut broken = Vec::new();
        match ev {
            EdgeEvent::Instantiated { service } | EdgeEvent::RelocationFailed { service, .. } => {
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
                if !s.serving.contains(&server) {
                    broken.push(format!(
                        "{service}: {server} applied {seq} as live but is not serving"
                    ));
                }
                if *seq != s.live_last + 1 {
                    broken.push(format!(
                        "{service}: live applied {seq} after {}",
                        s.live_last
                    ));
                }
                s.live_last = s.live_last.max(*seq);
                match s.applied.get_mut((*seq as usize).wrapping_sub(1)) {
                    Some(c) => {
                        *c += 1;
                        if *c > 1 {
                            broken.push(format!("{service}: input {seq} applied {c} times"));
                        }
                    }
                    None => broken.push(format!("{service}: input {seq} applied but never sent")),
                }
            }
            EdgeEvent::Answered { service, seq, live } => {
                let serving = self
                    .services
                    .get(service)
                    .is_some_and(|s| s.serving.contains(&server));
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
                if s.wrong_digest(*last_seq, *digest) {
                    broken.push(format!(
                        "{service}: promoted at {server} with a wrong input-log digest"
                    ));
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
                if s.wrong_digest(*last_seq, *digest) {
                    broken.push(format!(
                        "{service}: activated at {server} with a wrong input-log digest"
                    ));
                }
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
        self.services.get(&service).map_or((0, 0), |s| {
            (
                s.applied.len() as u64,
                s.applied.iter().filter(|c| **c == 1).count() as u64,
            )
        })
    }

    /// The digest the UE's inputs `1..=seq` give.
    #[must_use]
    pub fn expected_digest(&self, service: ServiceId, seq: u64) -> Option<u128> {
        self.services
            .get(&service)?
            .digests
            .get(seq as usize)
            .copied()
    }
}
