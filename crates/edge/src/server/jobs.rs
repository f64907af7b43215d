//! Guest work as [`Job`]s: how a server runs the inputs of an instance, and what waits
//! while a job is out.
//!
//! [`EdgeServer::kick`] lends the instance's service with the inputs now in order. Run
//! here (no offload) the job completes before `kick` returns, exactly as a direct call
//! would. With [`EdgeConfig::offload`](crate::EdgeConfig::offload) it waits in `jobs` for
//! the driver, and the service is busy until [`EdgeServer::handle_job_done`]: UE inputs
//! still queue in the instance, every other message and timer about the service waits in
//! `waiting`. When the job comes back its answers go out, the next inputs in order go
//! first, then what waited, in arrival order.
//!
//! A live instance's job that comes back after the lease was lost has its results kept
//! unseen (no answer, no sync, no event) until the lease returns: the control node may
//! have promoted a shadow meanwhile, and then they are dropped with the instance.

use std::collections::VecDeque;

use edgeshift_proto::{Instant, Message, NodeId, RelocationMode, ServerId, ServiceId};

use super::EdgeServer;
use super::shadow::{Shadow, ShadowState};
use super::timers::Timer;
use crate::event::EdgeEvent;
use crate::instance::Instance;
use crate::job::{Host, Job};

/// Messages and timers held for one busy service, at most; beyond, they are dropped and
/// reported (a flood for a service whose guest is stuck must not grow memory).
const MAX_WAITING: usize = 4096;

/// Something about a busy service that waits for its job.
pub(super) enum Waiting {
    /// A message, and whether the lease was lost when it came.
    Message(NodeId, Box<Message>, bool),
    Timer(Timer),
    /// A relocation ordered while fenced, due when the lease returned: (sender, target,
    /// mode, epoch).
    Relocation(NodeId, ServerId, RelocationMode, u64),
    /// A precopy step that waited for the lease, due when it returned.
    PrecopyStep,
}

impl EdgeServer {
    /// Whether `service` is fenced: the lease is lost, or it came back while messages from
    /// before its return still wait for the service's job (until they are acted on, the
    /// service stands where they leave it: a release among them must come first).
    pub(super) fn fenced_for(&self, service: ServiceId) -> bool {
        self.fenced()
            || self.waiting.get(&service).is_some_and(|q| {
                q.iter()
                    .any(|(_, w)| matches!(w, Waiting::Message(_, _, true)))
            })
    }

    /// Whether a job holds `service`'s instance.
    pub(super) fn busy(&self, service: ServiceId) -> bool {
        self.busy.contains_key(&service)
    }

    /// Keeps `w` until `service`'s job is back, and until the inputs that came before it
    /// are applied.
    pub(super) fn wait(&mut self, service: ServiceId, mut w: Waiting) {
        if let Waiting::Message(_, _, fenced) = &mut w {
            *fenced = self.fenced_for(service);
        }
        let before = self.instance(service).map_or(0, Instance::offered);
        let q = self.waiting.entry(service).or_default();
        if q.len() < MAX_WAITING {
            q.push_back((before, w));
        } else {
            self.violation(
                NodeId::Server(self.cfg.id),
                format!("{service} is busy and {MAX_WAITING} messages wait: one dropped"),
            );
        }
    }

    /// The instance inputs go to: live, or a ready shadow.
    fn instance(&self, service: ServiceId) -> Option<&Instance> {
        if let Some(live) = self.live.get(&service) {
            return Some(&live.inst);
        }
        match self.shadows.get(&service) {
            Some(Shadow {
                state: ShadowState::Ready(inst),
                ..
            }) => Some(inst),
            _ => None,
        }
    }

    /// Applies the inputs in order of `service`'s instance (live or ready shadow): as a
    /// job lent to the driver with offload, here and now without.
    pub(super) fn kick(&mut self, service: ServiceId) {
        self.kick_upto(service, u64::MAX);
    }

    /// Applies the inputs in order up to input `upto`. A frozen live instance applies
    /// nothing: its state is the one its 2004 announced.
    fn kick_upto(&mut self, service: ServiceId, upto: u64) {
        if self.busy(service) {
            return;
        }
        let (host, lent) = if let Some(live) = self.live.get_mut(&service) {
            if live.state.is_frozen() {
                return;
            }
            (Host::Live, live.inst.lend(upto))
        } else if let Some(Shadow {
            state: ShadowState::Ready(inst),
            ..
        }) = self.shadows.get_mut(&service)
        {
            (Host::Shadow, inst.lend(upto))
        } else {
            return;
        };
        let Some((svc, steps)) = lent else {
            return;
        };
        let id = self.next_job;
        self.next_job += 1;
        self.busy.insert(service, id);
        let mut job = Job {
            service,
            id,
            born: self.born,
            host,
            svc,
            results: Vec::with_capacity(steps.len()),
            steps,
        };
        if self.cfg.offload {
            self.jobs.push_back(job);
        } else {
            job.run();
            self.take_back(job);
        }
    }

    /// Puts a job's service back and passes on what it computed; false for a job that is
    /// not this server's current one for its service (stale: dropped).
    fn take_back(&mut self, job: Job) -> bool {
        if job.born != self.born || self.busy.get(&job.service) != Some(&job.id) {
            return false;
        }
        self.busy.remove(&job.service);
        let Job {
            service,
            host,
            svc,
            steps,
            results,
            ..
        } = job;
        match host {
            Host::Live => {
                let fenced = self.fenced_for(service);
                if let Some(live) = self.live.get_mut(&service) {
                    let (applied, rerun) = live.inst.take_back(svc, steps, results);
                    if fenced {
                        let kept = self.fenced_results.entry(service).or_default();
                        kept.0.extend(applied);
                        kept.1.extend(rerun);
                    } else {
                        self.applied_live(service, applied, rerun);
                    }
                }
            }
            Host::Shadow => {
                if let Some(Shadow {
                    state: ShadowState::Ready(inst),
                    ..
                }) = self.shadows.get_mut(&service)
                {
                    let (applied, _) = inst.take_back(svc, steps, results);
                    for a in applied {
                        self.events.push_back(EdgeEvent::Applied {
                            service,
                            seq: a.seq,
                            live: false,
                        });
                    }
                }
            }
        }
        true
    }

    /// The lease is back: results kept for `service`, if still live here, are passed on.
    pub(super) fn flush_fenced_results(&mut self, service: ServiceId) {
        if let Some((applied, rerun)) = self.fenced_results.remove(&service)
            && self.live.contains_key(&service)
        {
            self.applied_live(service, applied, rerun);
        }
    }

    /// Next job for the driver (only with offload): run it with [`Job::run`], anywhere,
    /// and hand it back with [`EdgeServer::handle_job_done`].
    pub fn poll_job(&mut self) -> Option<Job> {
        self.jobs.pop_front()
    }

    /// A job from [`EdgeServer::poll_job`] is back. Steps it did not run are queued again
    /// (a driver may hand back a job unrun, for instance when shutting down). A job this
    /// server no longer waits for is dropped.
    pub fn handle_job_done(&mut self, now: Instant, job: Job) {
        self.now = now;
        self.on_lease_expiry(now);
        let service = job.service;
        if !self.take_back(job) {
            return;
        }
        // Each waiting message comes after the inputs that came before it, as if each had
        // been applied the moment it came: a relocation that waited does not freeze an
        // instance with earlier inputs unrun, and later inputs (a guest that is always
        // busy has some) do not keep it waiting.
        let mut regained = false;
        loop {
            let Some(&(before, _)) = self.waiting.get(&service).and_then(VecDeque::front) else {
                self.kick(service);
                break;
            };
            self.kick_upto(service, before);
            if self.busy(service) {
                break;
            }
            let Some((_, w)) = self.waiting.get_mut(&service).and_then(VecDeque::pop_front) else {
                break;
            };
            match w {
                // A message that came while the lease was lost is acted on as it would have
                // been then (a 2004 is not judged, a 1006 waits for the lease), and the
                // lease's return is then replayed for this service: so a 2004 and the abort
                // behind it, both from before the lease came back, do not activate.
                Waiting::Message(from, msg, true) if !self.fenced() => {
                    self.set_fenced(true);
                    self.dispatch(now, from, *msg);
                    self.set_fenced(false);
                    regained = true;
                }
                Waiting::Message(from, msg, _) => self.dispatch(now, from, *msg),
                Waiting::Timer(t) => self.fire(now, t),
                Waiting::Relocation(from, target, mode, epoch) => {
                    self.relocate_out(now, from, service, target, mode, epoch);
                }
                Waiting::PrecopyStep => self.precopy_step(service),
            }
        }
        if regained && !self.fenced_for(service) {
            let serving = self
                .live
                .get(&service)
                .is_some_and(|l| !l.state.is_frozen());
            if serving {
                self.events.push_back(EdgeEvent::Unfenced {
                    services: vec![service],
                });
            }
            self.unfence_one(service);
        }
        if !self.busy(service) {
            self.waiting.remove(&service);
            // A 2004 may have waited for the inputs this job applied.
            self.validate(service);
        }
        self.watch_confirms(now);
    }
}

#[cfg(test)]
mod tests;
