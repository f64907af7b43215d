//! The lease: a server serves only while the control node answers its heartbeats.
//!
//! Every `heartbeat` the server sends a 3006; the control node answers each with a 3007.
//! An answered heartbeat sent at `t` (on this server's clock) lets the server serve until
//! `t + duration`. The control node declares a server dead only after a longer silence
//! than `duration`, counted from when it *received* the last heartbeat (which is after it
//! was sent): so a server cut off from the control node is fenced, holding its UE traffic,
//! before any shadow elsewhere is promoted, and no two instances of a service answer. Both
//! sides measure durations on their own clocks; no clocks are compared.
//!
//! A fenced server keeps its instances. When the lease comes back, the control node has
//! first sent a 1006 release for each instance it replaced meanwhile (same connection,
//! so it arrives before the 3007); the others serve again, their held traffic first.

use std::collections::{BTreeSet, VecDeque};

use edgeshift_proto::{Heartbeat, HeartbeatAck, Instant, ServiceId, Tenure};

use super::EdgeServer;
use super::source::Source;
use super::timers::Timer;
use super::traffic::Held;
use crate::config::LeaseConfig;
use crate::event::EdgeEvent;

/// Heartbeats kept waiting for their answer; older answers no longer extend the lease.
const OUTSTANDING: usize = 64;

/// UE messages held per fenced service; beyond, they are dropped (the UE resends).
pub(super) const FENCED_HOLD: usize = 4096;

/// The lease state of a server that has one.
pub(super) struct Lease {
    cfg: LeaseConfig,
    next_seq: u64,
    /// Heartbeats sent and not yet answered: (seq, sent at).
    sent: VecDeque<(u64, Instant)>,
    /// Serving is allowed until then.
    until: Instant,
    fenced: bool,
}

impl Lease {
    /// A new server may serve for one lease: it has no instances the control node could
    /// have replaced, and its first heartbeat goes out at once.
    pub(super) fn new(cfg: LeaseConfig, now: Instant) -> Self {
        Self {
            cfg,
            next_seq: 1,
            sent: VecDeque::new(),
            until: now + cfg.duration,
            fenced: false,
        }
    }
}

impl EdgeServer {
    /// Whether the server may serve now (it holds its lease, or has none).
    pub(super) fn fenced(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| l.fenced)
    }

    /// The heartbeat timer: sends a 3006 and re-arms.
    pub(super) fn on_heartbeat_timer(&mut self, now: Instant) {
        let Some(l) = self.lease.as_mut() else {
            return;
        };
        let seq = l.next_seq;
        l.next_seq += 1;
        if l.sent.len() == OUTSTANDING {
            l.sent.pop_front();
        }
        l.sent.push_back((seq, now));
        let live = self
            .live
            .iter()
            .map(|(&service, l)| Tenure {
                service,
                epoch: l.epoch,
            })
            .collect();
        let hb = Heartbeat {
            server: self.cfg.id,
            incarnation: l.cfg.incarnation,
            seq,
            live,
            shadows: self.shadows.keys().copied().collect(),
        };
        let next = now + l.cfg.heartbeat;
        self.send(self.cfg.control, hb);
        self.timers.set(Timer::Heartbeat, next);
    }

    /// 3007: the lease runs on from when the answered heartbeat was sent.
    pub(super) fn on_heartbeat_ack(&mut self, now: Instant, m: HeartbeatAck) {
        let Some(l) = self.lease.as_mut() else {
            return;
        };
        let Some(pos) = l.sent.iter().position(|(s, _)| *s == m.seq) else {
            return; // Too old, or not ours.
        };
        let sent_at = l.sent[pos].1;
        l.sent.drain(..=pos);
        l.until = l.until.max(sent_at + l.cfg.duration);
        let until = l.until;
        if until <= now {
            return; // Answered too late to extend anything.
        }
        self.timers.set(Timer::LeaseExpiry, until);
        if l.fenced {
            l.fenced = false;
            self.unfence();
        }
    }

    /// The lease timer: without an answered heartbeat since, the server stops serving.
    pub(super) fn on_lease_expiry(&mut self, now: Instant) {
        let Some(l) = self.lease.as_mut() else {
            return;
        };
        if l.fenced || now < l.until {
            return;
        }
        l.fenced = true;
        let services = self.unfrozen();
        self.events.push_back(EdgeEvent::Fenced { services });
    }

    /// Serves again: the instances not released meanwhile, their held traffic first.
    ///
    /// A service whose job is out with messages from before the lease's return waiting
    /// stays fenced until they are acted on (`jobs.rs`).
    fn unfence(&mut self) {
        let services: Vec<ServiceId> = self
            .unfrozen()
            .into_iter()
            .filter(|s| !self.fenced_for(*s))
            .collect();
        self.events.push_back(EdgeEvent::Unfenced {
            services: services.clone(),
        });
        let mut all: BTreeSet<ServiceId> = services.into_iter().collect();
        all.extend(self.deferred.iter().map(|d| d.1));
        all.extend(self.deferred_promotions.keys());
        all.extend(self.shadows.keys());
        all.extend(self.fenced_held.keys());
        all.extend(self.fenced_results.keys());
        all.extend(self.abandoned.keys());
        all.retain(|s| !self.fenced_for(*s));
        for s in all {
            self.unfence_one(s);
        }
    }

    /// The lease is back for `service`: what jobs applied meanwhile is passed on; held
    /// traffic is served if the instance is live and not frozen, follows it if it froze,
    /// and goes to wherever it went if it is gone; a relocation ordered meanwhile starts
    /// (unless a release came first); a shadow whose 2004 came meanwhile is judged.
    pub(super) fn unfence_one(&mut self, service: ServiceId) {
        self.flush_fenced_results(service);
        // A relocation that failed meanwhile: the instance, if not released, serves again.
        if let Some(reason) = self.abandoned.remove(&service) {
            self.abandon(service, reason);
        }
        let held = self.fenced_held.remove(&service).unwrap_or_default();
        let mut precopy = false;
        match self.live.get_mut(&service) {
            Some(live) => match &mut live.state {
                Source::Frozen(f) => {
                    for h in held {
                        f.hold(h);
                    }
                }
                Source::Serving | Source::Precopy { .. } => {
                    precopy = matches!(live.state, Source::Precopy { stalled: true, .. });
                    self.unflushed.insert(service);
                    self.release_held(held);
                }
            },
            None => self.release_held(held),
        }
        if precopy {
            // A step that came while fenced waited (`precopy_step`); with a job out, it
            // waits for the job too. (Without one, a round is in flight: its ack steps.)
            if self.busy(service) {
                self.wait(service, super::jobs::Waiting::PrecopyStep);
            } else {
                self.precopy_step(service);
            }
        }
        // A tentative instance's 2004 waited for the lease.
        self.check_tentative(service);
        if let Some(epoch) = self.deferred_promotions.remove(&service) {
            // Not ready any more if it was released or aborted meanwhile: the control node
            // is told so.
            self.promote(service, epoch);
        }
        let (mine, others) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|d| d.1 == service);
        self.deferred = others;
        for (from, service, target, mode, epoch) in mine {
            if self.busy(service) {
                let w = super::jobs::Waiting::Relocation(from, target, mode, epoch);
                self.wait(service, w);
                continue;
            }
            let now = self.now;
            self.relocate_out(now, from, service, target, mode, epoch);
        }
        if self
            .shadows
            .get(&service)
            .is_some_and(|sh| sh.check.is_some())
        {
            self.validate(service);
        }
    }

    /// Sets the fence as it stood when a message that waited for a job arrived, to act on
    /// it as then (`jobs.rs`); returns what it was.
    pub(super) fn set_fenced(&mut self, fenced: bool) -> bool {
        match self.lease.as_mut() {
            Some(l) => std::mem::replace(&mut l.fenced, fenced),
            None => false,
        }
    }

    /// The live instances that are not frozen: the ones a lease lets serve.
    fn unfrozen(&self) -> Vec<ServiceId> {
        self.live
            .iter()
            .filter(|(_, l)| !l.state.is_frozen())
            .map(|(s, _)| *s)
            .collect()
    }

    /// Holds UE traffic for a fenced live instance.
    pub(super) fn hold_fenced(&mut self, service: ServiceId, h: Held) {
        let q = self.fenced_held.entry(service).or_default();
        if q.len() < FENCED_HOLD {
            q.push(h);
        }
    }
}
