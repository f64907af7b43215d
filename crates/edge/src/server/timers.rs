//! Timers of the server.

use super::EdgeServer;
use super::links::sync_to;
use edgeshift_proto::{Instant, ServerId, ServiceId, SyncBody, SyncMode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    LoadReport,
    DeltaTick(ServiceId),
    ReplayFlush(ServiceId),
    StartShadow(ServiceId, ServerId),
    Confirm(ServiceId),
}

impl EdgeServer {
    pub(super) fn arm(&mut self, at: Instant, timer: Timer) {
        if !self.timers.iter().any(|(_, t)| *t == timer) {
            self.timers.insert((at, timer));
        }
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::LoadReport => {
                    self.load_report();
                    self.timers
                        .insert((now + self.cfg.load_report_interval, Timer::LoadReport));
                }
                Timer::DeltaTick(service) => {
                    let Some(live) = self.live.get(&service) else {
                        continue;
                    };
                    if live.frozen || !live.links.values().any(|l| l.mode == SyncMode::Delta) {
                        continue;
                    }
                    self.send_delta_round(service);
                    self.timers
                        .insert((now + self.cfg.delta_interval, Timer::DeltaTick(service)));
                }
                Timer::ReplayFlush(service) => {
                    let Some(live) = self.live.get_mut(&service) else {
                        continue;
                    };
                    if !live.batch.is_empty() {
                        let batch = SyncBody::Inputs(std::mem::take(&mut live.batch));
                        let to = live.links_in(SyncMode::Replay);
                        sync_to(&mut self.out, self.cfg.id, service, &to, &batch);
                    }
                    if !live.frozen && !live.links.is_empty() {
                        self.timers
                            .insert((now + self.cfg.replay_batch, Timer::ReplayFlush(service)));
                    }
                }
                Timer::Confirm(service) => self.on_confirm_timeout(service),
                Timer::StartShadow(service, target) => {
                    if let Some(mode) = self.planned.remove(&(service, target)) {
                        let ready = self
                            .live
                            .get(&service)
                            .is_some_and(|l| !l.frozen && l.out.is_none());
                        if ready {
                            self.start_shadow(now, service, target, mode);
                        }
                    }
                }
            }
        }
        // Replay batching runs on a timer per service that has replay shadows.
        if !self.cfg.replay_batch.is_zero() {
            let due: Vec<ServiceId> = self
                .live
                .iter()
                .filter(|(_, l)| !l.frozen && l.links.values().any(|k| k.mode == SyncMode::Replay))
                .map(|(s, _)| *s)
                .collect();
            for s in due {
                self.arm(now + self.cfg.replay_batch, Timer::ReplayFlush(s));
            }
        }
        self.watch_confirms(now);
    }
}
