//! Shadow planning: a handover prediction (1002) decides which candidate servers get a
//! shadow (1003) and when; stale, withdrawn and expired shadows are discarded (1006).
//!
//! Per service, `shadows` holds the servers that have (or are receiving) one and `planned`
//! those whose 1003 waits for a `JitStart` timer (shadow-jit starts a transfer as late as
//! its size and the link allow). A `ShadowExpiry` timer drops them all when no handover
//! came `shadow_ttl` after the predicted time. Shadows and plans the predictions stop
//! naming (a withdrawn prediction, a handover that did not move the service) are
//! `stale_since` then, and go after their grace (`StaleCheck`) unless named again.

use std::time::Duration;

use edgeshift_proto::{
    HandoverPrediction, Instant, PrepareShadow, Relocate, RelocateAction, ServerId, ServiceId,
    ShadowRefused, Timing,
};

use super::relocation::Relocation;

use super::{ControlNode, Timer};
use crate::config::Strategy;
use crate::event::ControlEvent;

impl ControlNode {
    pub(super) fn on_prediction(&mut self, now: Instant, m: HandoverPrediction) {
        self.emit(ControlEvent::HandoverPredicted {
            ue: m.ue,
            source: m.source,
            candidates: m.candidates.clone(),
            timing: m.timing,
        });
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.cell = m.source;
        if e.relocation.is_some() {
            return;
        }
        e.predicted.clear();
        e.predicted.extend(m.candidates.iter().map(|c| c.cell));
        if m.candidates.is_empty() {
            // Withdrawn: the shadows go unless a prediction names them again soon.
            self.unname_all(now, service);
            return;
        }
        self.stats.predictions += 1;
        if !self.cfg.strategy.uses_shadows() {
            return;
        }
        let (host, budget, bytes) = (e.host, e.spec.latency_budget_ms, e.state_bytes);
        let eta = m.timing.map_or(now, |t| t.resolve(now));
        // Candidate servers that would need the service moved, with summed likelihoods.
        let mut wanted: Vec<(ServerId, f32)> = Vec::new();
        for c in &m.candidates {
            let Some(server) = self.server_of(c.cell) else {
                continue;
            };
            if server == host || self.within_budget(c.cell, host, budget) {
                continue;
            }
            match wanted.iter_mut().find(|w| w.0 == server) {
                Some(w) => w.1 += c.likelihood,
                None => wanted.push((server, c.likelihood)),
            }
        }
        if let Strategy::ShadowJit { threshold } = self.cfg.strategy {
            wanted.retain(|w| w.1 >= threshold);
        }
        let Some(e) = self.services.get(&service) else {
            return;
        };
        let unnamed: Vec<ServerId> = e
            .shadows
            .union(&e.planned)
            .filter(|s| !wanted.iter().any(|w| w.0 == **s))
            .copied()
            .collect();
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        // A kept shadow not yet confirmed keeps its clock even when named: if its new host
        // never confirms it, it goes, and the next prediction asks for a new one.
        let adopting = &e.adopting;
        e.stale_since
            .retain(|s, _| unnamed.contains(s) || adopting.contains(s));
        for s in unnamed {
            e.stale_since.entry(s).or_insert(now);
        }
        self.drop_stale(now, service);
        let mut now_list = Vec::new();
        // As late as the link allows (the transfer, behind what is queued on the link),
        // one standard deviation of the ETA earlier still.
        let spread = m.timing.and_then(|t| t.uncertainty).unwrap_or_default();
        for (server, _) in wanted {
            let start = match self.cfg.strategy {
                Strategy::ShadowJit { .. } => {
                    let queued = self
                        .link_busy
                        .get(&(host, server))
                        .map_or(Duration::ZERO, |b| b.saturating_duration_since(now));
                    // Saturating: the spread comes from a cell, in any size.
                    let lead = self
                        .transfer_time(bytes)
                        .saturating_add(self.cfg.jit_margin)
                        .saturating_add(spread)
                        .saturating_add(queued);
                    eta - lead
                }
                _ => now,
            };
            let Some(e) = self.services.get_mut(&service) else {
                return;
            };
            if e.shadows.contains(&server) {
                continue;
            }
            // A newer ETA moves a planned start earlier, never later: ETAs far ahead
            // drift, and a start put off past the handover leaves no shadow in time.
            let start = self
                .timers
                .get(&Timer::JitStart(service, server))
                .map_or(start, |planned| planned.min(start));
            if start <= now {
                self.timers.cancel(Timer::JitStart(service, server));
                e.planned.remove(&server);
                now_list.push(server);
            } else {
                e.planned.insert(server);
                self.timers.set(Timer::JitStart(service, server), start);
                self.emit(ControlEvent::ShadowPlanned {
                    service,
                    server,
                    at: start,
                });
            }
        }
        self.request_shadows(now, service, now_list);
        self.timers
            .set(Timer::ShadowExpiry(service), eta + self.cfg.shadow_ttl);
    }

    /// 3037: a server refused a shadow (its memory budget): forget it there. A
    /// load-balancing move waiting for it is called off (the next check picks again).
    pub(super) fn on_shadow_refused(&mut self, m: ShadowRefused) {
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        e.shadows.remove(&m.server);
        e.ready.remove(&m.server);
        e.adopting.remove(&m.server);
        if e.planned.remove(&m.server) {
            self.timers.cancel(Timer::JitStart(m.service, m.server));
        }
        if matches!(e.relocation, Some(Relocation::AwaitingShadow { target, .. }) if target == m.server)
        {
            e.relocation = None;
        }
        self.emit(ControlEvent::ShadowRefused {
            service: m.service,
            server: m.server,
            reason: m.reason,
        });
    }

    /// A planned shadow's time has come; a plan the latest predictions no longer name is
    /// dropped instead.
    pub(super) fn on_jit_start(&mut self, now: Instant, service: ServiceId, server: ServerId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        if !e.planned.remove(&server) {
            return;
        }
        if e.stale_since.remove(&server).is_some() {
            return;
        }
        if e.relocation.is_none() {
            self.request_shadows(now, service, vec![server]);
        }
    }

    /// No handover came in time after the prediction.
    pub(super) fn on_shadow_expiry(&mut self, service: ServiceId) {
        if self
            .services
            .get(&service)
            .is_some_and(|e| e.relocation.is_none())
        {
            self.discard_all(service);
        }
    }

    /// Every shadow and plan of `service` is no longer named: its prediction was
    /// withdrawn, or the handover came and did not move the service. They stay their
    /// grace, for the next cell's predictions to name again (a shadow discarded and asked
    /// for again a second later costs a whole state transfer).
    pub(super) fn unname_all(&mut self, now: Instant, service: ServiceId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let all: Vec<ServerId> = e.shadows.union(&e.planned).copied().collect();
        // The standing prediction is used up; the stale clocks decide now. The expiry
        // stays as their backstop: it is kept in a snapshot and goes with a handoff to
        // another region, the stale clocks are not.
        if all.is_empty() {
            self.timers.cancel(Timer::ShadowExpiry(service));
        } else {
            self.timers
                .set(Timer::ShadowExpiry(service), now + self.cfg.shadow_keep);
        }
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        for s in all {
            e.stale_since.entry(s).or_insert(now);
        }
        self.drop_stale(now, service);
    }

    /// Discards the stale shadows and plans whose grace is over (`shadow_keep` for a
    /// shadow, `stale_grace` for a plan), and sets `StaleCheck` for the next one.
    pub(super) fn drop_stale(&mut self, now: Instant, service: ServiceId) {
        let (keep, grace) = (self.cfg.shadow_keep, self.cfg.stale_grace);
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        if e.relocation.is_some() {
            // The relocation settles the shadows; if it fails, they are judged again.
            if !e.stale_since.is_empty() {
                self.timers
                    .set(Timer::StaleCheck(service), now + self.cfg.stale_grace);
            }
            return;
        }
        let (shadows, planned) = (&e.shadows, &e.planned);
        e.stale_since
            .retain(|s, _| shadows.contains(s) || planned.contains(s));
        let deadline = |s: &ServerId, since: &Instant| {
            *since + if e.shadows.contains(s) { keep } else { grace }
        };
        let due: Vec<ServerId> = e
            .stale_since
            .iter()
            .filter(|(s, since)| deadline(s, since) <= now)
            .map(|(s, _)| *s)
            .collect();
        let next = e
            .stale_since
            .iter()
            .map(|(s, since)| deadline(s, since))
            .filter(|at| *at > now)
            .min();
        for s in &due {
            e.stale_since.remove(s);
        }
        match next {
            Some(at) => self.timers.set(Timer::StaleCheck(service), at),
            None => {
                self.timers.cancel(Timer::StaleCheck(service));
            }
        }
        if !due.is_empty() {
            for s in &due {
                self.timers.cancel(Timer::JitStart(service, *s));
            }
            self.discard(service, due);
        }
    }

    /// 1003 to the host and to each of `servers` that has no shadow yet.
    pub(super) fn request_shadows(
        &mut self,
        now: Instant,
        service: ServiceId,
        servers: Vec<ServerId>,
    ) {
        let servers: Vec<ServerId> = servers.into_iter().filter(|s| !self.is_down(*s)).collect();
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let servers: Vec<ServerId> = servers
            .into_iter()
            .filter(|s| *s != e.host && e.shadows.insert(*s))
            .collect();
        if servers.is_empty() {
            return;
        }
        let msg = PrepareShadow {
            service,
            ue: e.ue,
            source: e.host,
            candidates: servers.clone(),
            sync: self.cfg.sync,
            start: Timing::at(Instant::ZERO),
            adopt: false,
        };
        let (host, bytes) = (e.host, e.state_bytes);
        let transfer = self.transfer_time(bytes);
        for s in &servers {
            let busy = self.link_busy.entry((host, *s)).or_insert(now);
            *busy = (*busy).max(now) + transfer;
        }
        self.stats.shadows_requested += servers.len() as u64;
        self.send(host, msg.clone());
        for s in &servers {
            self.send(*s, msg.clone());
        }
        self.emit(ControlEvent::ShadowsRequested { service, servers });
    }

    /// Drops the shadows (or plans) at `servers`; the caller cancels their `JitStart`s.
    pub(super) fn discard(&mut self, service: ServiceId, servers: Vec<ServerId>) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        for s in &servers {
            e.shadows.remove(s);
            e.ready.remove(s);
            e.adopting.remove(s);
            e.planned.remove(s);
            e.stale_since.remove(s);
        }
        let servers: Vec<ServerId> = servers.into_iter().filter(|s| *s != e.host).collect();
        if servers.is_empty() {
            return;
        }
        let msg = Relocate {
            service,
            action: RelocateAction::Discard {
                servers: servers.clone(),
            },
            timing: Timing::at(Instant::ZERO),
        };
        let host = e.host;
        self.send(host, msg.clone());
        for s in &servers {
            self.send(*s, msg.clone());
        }
        self.emit(ControlEvent::ShadowsDiscarded { service, servers });
    }

    /// Drops every shadow and plan of `service`.
    pub(super) fn discard_all(&mut self, service: ServiceId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let mut all: Vec<ServerId> = e.shadows.iter().copied().collect();
        all.extend(e.planned.iter().copied());
        all.sort_unstable();
        all.dedup();
        e.planned.clear();
        self.timers.cancel_range(Timer::jit_starts(service));
        if !all.is_empty() {
            self.discard(service, all);
        }
    }
}
