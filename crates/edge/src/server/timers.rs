//! The server's timers, all in one [`TimerTable`](edgeshift_proto::TimerTable): the load
//! report; per service the delta tick, the replay flush and the confirm watchdog; planned
//! shadow starts.
//!
//! [`EdgeServer::run_timers`] (the role's `handle_timeout`) fires the due ones in
//! (deadline, timer) order. A timer whose service went away or moved on is not cancelled:
//! it fires and finds nothing to do, as it always did, so the driver's wake-ups
//! (`poll_timeout`) stay the same.

use super::EdgeServer;
use super::links::sync_to;
use super::source::Source;
use edgeshift_proto::{Instant, ServerId, ServiceId, SyncBody, SyncMode};

/// A pending timer; the table fires timers due together in (deadline, timer) order, so
/// the order of the variants and of their fields is part of the observable behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The periodic 3034 to the control node.
    LoadReport,
    /// Periodic delta round to a service's delta shadows.
    DeltaTick(ServiceId),
    /// Periodic batch of applied inputs to a service's replay shadows.
    ReplayFlush(ServiceId),
    /// A planned shadow start, keyed by its deadline too, so that a second 1003 for the
    /// same candidate arms a second start instead of moving the first; whichever comes
    /// first starts the shadow.
    ///
    /// NOTE: so the earliest start armed wins, even one whose plan was replaced by a later
    /// 1003 or dropped by a discard (its timer stays): a new plan for the same pair then
    /// starts at the stale, earlier time, with the new plan's sync mode.
    StartShadow(ServiceId, ServerId, Instant),
    /// The watchdog of a frozen source waiting for its 2005.
    Confirm(ServiceId),
    /// The periodic 3006 to the control node.
    Heartbeat,
    /// The lease runs out unless an answered heartbeat extended it.
    LeaseExpiry,
}

impl Timer {
    /// The service the timer is about, if any: it waits while that service is busy.
    fn service(&self) -> Option<ServiceId> {
        match self {
            Self::DeltaTick(s) | Self::ReplayFlush(s) | Self::Confirm(s) => Some(*s),
            Self::StartShadow(s, _, _) => Some(*s),
            Self::LoadReport | Self::Heartbeat | Self::LeaseExpiry => None,
        }
    }
}

impl EdgeServer {
    /// Fires every due timer (keeping those of busy services for later), then arms the replay flushes and confirm watchdogs that
    /// became due meanwhile.
    pub(super) fn run_timers(&mut self, now: Instant) {
        while let Some((_, timer)) = self.timers.pop_due(now) {
            match timer.service() {
                Some(service) if self.busy(service) => {
                    self.wait(service, super::jobs::Waiting::Timer(timer));
                }
                _ => self.fire(now, timer),
            }
        }
        self.arm_replay_flushes(now);
        self.watch_confirms(now);
    }

    /// Acts on one due timer.
    pub(super) fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::LoadReport => {
                self.load_report(None);
                self.timers
                    .set(Timer::LoadReport, now + self.cfg.load_report_interval);
            }
            Timer::DeltaTick(service) => {
                let Some(live) = self.live.get(&service) else {
                    return;
                };
                if live.state.is_frozen() || !live.links.values().any(|l| l.mode == SyncMode::Delta)
                {
                    return;
                }
                self.send_delta_round(service);
                self.timers
                    .set(Timer::DeltaTick(service), now + self.cfg.delta_interval);
            }
            Timer::ReplayFlush(service) => {
                let Some(live) = self.live.get_mut(&service) else {
                    return;
                };
                if !live.batch.is_empty() {
                    let batch = SyncBody::Inputs(std::mem::take(&mut live.batch));
                    let to = live.links_in(SyncMode::Replay);
                    sync_to(&mut self.out, self.cfg.id, service, &to, &batch);
                }
                if !live.state.is_frozen() && !live.links.is_empty() {
                    self.timers
                        .set(Timer::ReplayFlush(service), now + self.cfg.replay_batch);
                }
            }
            Timer::Confirm(service) => self.on_confirm_timeout(service),
            Timer::Heartbeat => self.on_heartbeat_timer(now),
            Timer::LeaseExpiry => self.on_lease_expiry(now),
            Timer::StartShadow(service, target, _) => {
                if let Some(mode) = self.planned.remove(&(service, target)) {
                    // Without the lease no state leaves (see `on_prepare`).
                    let ready = !self.fenced_for(service)
                        && self
                            .live
                            .get(&service)
                            .is_some_and(|l| matches!(l.state, Source::Serving));
                    if ready {
                        self.start_shadow(now, service, target, mode);
                    }
                }
            }
        }
    }

    /// Replay batching runs on a timer per serving instance with replay shadows, armed at
    /// the first timeout after it got one (or served again) and re-armed as it fires.
    /// Only services in `unflushed` can lack it, so no scan of every service.
    ///
    /// NOTE: "the first timeout after" can be a load report a second away, and the batch
    /// waits for it; it also makes a spurious `handle_timeout` call not quite a no-op.
    fn arm_replay_flushes(&mut self, now: Instant) {
        let candidates = std::mem::take(&mut self.unflushed);
        if self.cfg.replay_batch.is_zero() {
            return;
        }
        for s in candidates {
            let due = self.live.get(&s).is_some_and(|l| {
                !l.state.is_frozen() && l.links.values().any(|k| k.mode == SyncMode::Replay)
            });
            if due {
                self.timers
                    .set_if_unset(Timer::ReplayFlush(s), now + self.cfg.replay_batch);
            }
        }
    }
}
