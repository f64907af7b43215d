//! Load reports and load balancing: every `load_check_interval` (the `LoadCheck` timer),
//! each server above the threshold hands its smallest idle service to the least loaded
//! server that stays below the threshold with it, through a shadow (a hot relocation
//! triggered by the target's 3032).

use edgeshift_proto::{Instant, LoadReport, ServerId, ServiceId};

use super::ControlNode;
use super::relocation::Relocation;
use crate::event::ControlEvent;

impl ControlNode {
    pub(super) fn on_load(&mut self, m: LoadReport) {
        self.loads.insert(m.server, (m.load, m.hosted));
        for (service, bytes) in m.services {
            if let Some(e) = self.services.get_mut(&service)
                && e.host == m.server
            {
                e.state_bytes = bytes;
            }
        }
    }

    fn load(&self, server: ServerId) -> f32 {
        self.loads.get(&server).map_or(0.0, |l| l.0)
    }

    /// One check. It looks at the services of overloaded servers only (by the host index),
    /// so its cost follows what those servers host, not the whole registry.
    pub(super) fn balance(&mut self, now: Instant) {
        let Some(threshold) = self.cfg.load_threshold else {
            return;
        };
        let busy: Vec<(ServerId, f32)> = self
            .loads
            .iter()
            .filter(|(_, (l, n))| *l > threshold && *n > 0)
            .map(|(s, (l, n))| (*s, l / *n as f32))
            .collect();
        for (hot, unit) in busy {
            let on_hot: Vec<(ServiceId, &crate::ServiceEntry)> = self
                .hosted_by(hot)
                .filter_map(|s| self.services.get(&s).map(|e| (s, e)))
                .collect();
            if on_hot.iter().any(|(_, e)| e.relocation.is_some()) {
                continue;
            }
            // Move the smallest idle service to the least loaded server within its budget
            // that stays below the threshold with it (no thrashing back and forth).
            let mut options: Vec<(ServiceId, u64)> = on_hot
                .iter()
                .filter(|(_, e)| e.shadows.is_empty() && e.planned.is_empty())
                .map(|(s, e)| (*s, e.state_bytes))
                .collect();
            options.sort_by_key(|o| (o.1, o.0));
            let pick = options.into_iter().find_map(|(service, _)| {
                let e = self.services.get(&service)?;
                self.servers
                    .iter()
                    .filter(|s| **s != hot && self.load(**s) + unit < threshold)
                    .filter(|s| self.within_budget(e.cell, **s, e.spec.latency_budget_ms))
                    .min_by(|a, b| self.load(**a).total_cmp(&self.load(**b)).then(a.cmp(b)))
                    .map(|to| (service, *to))
            });
            let Some((service, to)) = pick else { continue };
            let Some(e) = self.services.get_mut(&service) else {
                continue;
            };
            e.epoch += 1;
            e.relocation = Some(Relocation::AwaitingShadow {
                target: to,
                epoch: e.epoch,
                since: now,
            });
            // Book the move now; the next load reports confirm it.
            if let Some(l) = self.loads.get_mut(&hot) {
                *l = (l.0 - unit, l.1.saturating_sub(1));
            }
            let l = self.loads.entry(to).or_insert((0.0, 0));
            *l = (l.0 + unit, l.1 + 1);
            self.stats.load_balanced += 1;
            self.emit(ControlEvent::LoadBalancing {
                service,
                from: hot,
                to,
            });
            self.request_shadows(now, service, vec![to]);
        }
    }
}
