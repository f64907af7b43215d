//! Relocation as typed states: from the decision to move a service (a 1005 announcing a
//! handover, or load balancing) through the 1006 to the target's 3033.
//!
//! ```text
//!  1005 ──► Scheduled ──(Trigger timer at the handover time)──┐
//!  load balancing ──► AwaitingShadow ──(3032 from target)─────┼──► Triggered ──(3033)──► none
//!  cancel (2001 refused, re-establishment) before the 1006 ──► none
//! ```
//!
//! While a service has a relocation, predictions and handovers only update its cell, and
//! its shadows stay as they are until the 1006 keeps the target's and the other ready
//! replay shadows (the new host adopts them once it is live) and discards the rest.

use std::collections::BTreeSet;

use edgeshift_proto::{
    HandoverCancel, HandoverExecution, Instant, NodeId, PrepareShadow, Relocate, RelocateAction,
    RelocationDone, RelocationMode, Route, RouteUpdate, ServerId, ServiceId, ShadowReady, SyncMode,
    Timing,
};

use super::{ControlNode, Timer};
use crate::config::Strategy;
use crate::event::ControlEvent;

/// An optimistic relocation still open this long after its trigger has its 1006 sent
/// again (a hot relocation onto a ready shadow takes milliseconds).
const RETRIGGER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// How many times: 1 + 2 + 4 s covers the partitions the swarm cuts (up to 4 s).
const RETRIGGER_ATTEMPTS: u8 = 3;

/// An in-flight relocation of one service. Each carries the route `epoch` it creates and
/// its `target`; a 3033 must name both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Relocation {
    /// A 1005 announced the handover for `at`: the 1006 goes out then, on the `Trigger`
    /// timer, so source and target act at the radio gap.
    Scheduled {
        target: ServerId,
        mode: RelocationMode,
        epoch: u64,
        at: Instant,
    },
    /// Load balancing: a shadow is on its way to `target`; its 3032 sends the (hot) 1006,
    /// with the decision time `since` as its timing.
    AwaitingShadow {
        target: ServerId,
        epoch: u64,
        since: Instant,
    },
    /// The 1006 went out (timing `at`); the target's 3033 ends it.
    Triggered {
        target: ServerId,
        mode: RelocationMode,
        epoch: u64,
        at: Instant,
    },
}

/// What a 1006 says: where to, how, under which epoch, timed when.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Order {
    pub(crate) target: ServerId,
    pub(crate) mode: RelocationMode,
    pub(crate) epoch: u64,
    pub(crate) at: Instant,
}

impl Relocation {
    pub(crate) fn target(&self) -> ServerId {
        match *self {
            Self::Scheduled { target, .. }
            | Self::AwaitingShadow { target, .. }
            | Self::Triggered { target, .. } => target,
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        match *self {
            Self::Scheduled { epoch, .. }
            | Self::AwaitingShadow { epoch, .. }
            | Self::Triggered { epoch, .. } => epoch,
        }
    }

    /// Whether the 1006 went out.
    pub(crate) fn is_triggered(&self) -> bool {
        matches!(self, Self::Triggered { .. })
    }

    /// Moves to [`Relocation::Triggered`] and returns the 1006 to send; `None` if it went
    /// out already.
    pub(crate) fn trigger(&mut self) -> Option<Order> {
        let order = match *self {
            Self::Scheduled {
                target,
                mode,
                epoch,
                at,
            } => Order {
                target,
                mode,
                epoch,
                at,
            },
            Self::AwaitingShadow {
                target,
                epoch,
                since,
            } => Order {
                target,
                mode: RelocationMode::Hot,
                epoch,
                at: since,
            },
            Self::Triggered { .. } => return None,
        };
        *self = Self::Triggered {
            target: order.target,
            mode: order.mode,
            epoch: order.epoch,
            at: order.at,
        };
        Some(order)
    }
}

impl ControlNode {
    pub(super) fn on_execution(&mut self, now: Instant, m: HandoverExecution) {
        self.stats.handovers += 1;
        self.emit(ControlEvent::HandoverExecuting {
            ue: m.ue,
            source: m.source,
            target: m.target,
            at: m.timing.resolve(now),
        });
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(target_server) = self.server_of(m.target) else {
            self.emit(ControlEvent::ProtocolViolation {
                from: m.source.into(),
                what: format!("handover to {}, which has no ME server", m.target),
            });
            return;
        };
        let target_down = self.is_down(target_server);
        let strategy = self.cfg.strategy;
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        if let Some((from, to, at)) = e.last_handover
            && from == m.target
            && to == m.source
            && now.saturating_duration_since(at) <= self.cfg.pingpong_window
        {
            self.stats.pingpongs += 1;
            self.events.push_back(ControlEvent::PingPong { ue: m.ue });
        }
        e.last_handover = Some((m.source, m.target, now));
        e.previous_cell = Some(m.source);
        e.cell = m.target;
        if e.relocation.is_some() {
            return; // A relocation is already under way; the next handover will follow.
        }
        let predicted = e.predicted.contains(&m.target);
        let has_shadow = e.shadows.contains(&target_server);
        let (host, budget) = (e.host, e.spec.latency_budget_ms);
        if target_server == host {
            self.stats.skipped_same_server += 1;
            self.emit(ControlEvent::SkippedSameServer { service });
            self.unname_all(now, service);
            return;
        }
        if strategy == Strategy::Stay {
            return;
        }
        if target_down {
            // The service stays where it is and is served over the backhaul.
            self.discard_all(service);
            return;
        }
        if e.orphaned {
            // Its host is silent and nothing took over: the service waits for it (or is
            // lost). A relocation from it would be triggered blind, and the host would be
            // released, when back, to a target that never got the state. Back, it serves
            // the UE over the backhaul until the next handover moves it.
            return;
        }
        if self.within_budget(m.target, host, budget) {
            self.stats.skipped_within_budget += 1;
            self.emit(ControlEvent::SkippedWithinBudget { service });
            self.unname_all(now, service);
            return;
        }
        let mode = match strategy {
            Strategy::Cold => RelocationMode::Cold,
            Strategy::Precopy => RelocationMode::Precopy,
            _ if has_shadow => RelocationMode::Hot,
            _ => {
                // No shadow where the UE went: by default the service serves on at the
                // source (the new cell relays its traffic over the backhaul) while its
                // state is copied, and switches once little enough is left.
                self.stats.reactive += 1;
                self.cfg.reactive
            }
        };
        if strategy.uses_shadows() && !predicted {
            self.stats.mispredicted += 1;
            self.emit(ControlEvent::Mispredicted {
                service,
                target: m.target,
            });
        }
        let at = m.timing.resolve(now).max(now);
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.epoch += 1;
        // The handover names the target now: if it is cancelled, the clock starts again.
        e.stale_since.remove(&target_server);
        e.relocation = Some(Relocation::Scheduled {
            target: target_server,
            mode,
            epoch: e.epoch,
            at,
        });
        self.timers.cancel(Timer::ShadowExpiry(service));
        let ue = e.ue;
        self.emit(ControlEvent::RelocationScheduled {
            service,
            ue,
            source: host,
            target: target_server,
            mode,
            at,
        });
        if at <= now {
            self.trigger(service);
        } else {
            self.timers.set(Timer::Trigger(service), at);
        }
    }

    /// Sends the 1006 of a relocation not triggered yet: relocate to source and target,
    /// discard to every other server with a shadow or a plan.
    pub(super) fn trigger(&mut self, service: ServiceId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let Some(p) = e.relocation.as_mut().and_then(Relocation::trigger) else {
            return;
        };
        let (host, ue) = (e.host, e.ue);
        let early_route = self.cfg.optimistic
            && self.cfg.sync == SyncMode::Replay
            && p.mode == RelocationMode::Hot
            && e.ready.contains(&p.target);
        // Ready replay shadows stay: the source syncs them up to its freeze, and the new
        // host takes over their sync (`adopt`), so a UE that moves on to one of their
        // cells a moment later finds it ready. The rest are discarded.
        let mut kept: BTreeSet<ServerId> =
            if self.cfg.follow_shadows && self.cfg.sync == SyncMode::Replay {
                e.ready.clone()
            } else {
                BTreeSet::new()
            };
        kept.insert(p.target);
        let others: Vec<ServerId> = e
            .shadows
            .iter()
            .chain(e.planned.iter())
            .copied()
            .filter(|s| !kept.contains(s))
            .collect();
        e.shadows.retain(|s| kept.contains(s));
        // The kept ones are not promotable until their new host has them (`adopting`):
        // if both ends of the relocation die, they stand at the freeze while the target
        // may have served on.
        e.ready.retain(|s| *s == p.target);
        e.adopting = kept.iter().copied().filter(|s| *s != p.target).collect();
        e.planned.clear();
        self.timers.cancel_range(Timer::jit_starts(service));
        self.stats.relocations_triggered += 1;
        let msg = Relocate {
            service,
            action: RelocateAction::Relocate {
                source: host,
                target: p.target,
                mode: p.mode,
                epoch: p.epoch,
            },
            timing: Timing::at(p.at),
        };
        self.send(host, msg.clone());
        self.send(p.target, msg);
        if early_route {
            self.send_route(service, p.target, p.epoch);
        }
        if self.cfg.optimistic {
            // The target may serve from its 1006 on: a 1006 the source never got (lost in
            // a partition) would leave it tentative for good. Sent again until settled;
            // both ends take a repeated 1006 for a no-op.
            self.timers.set(
                Timer::Retrigger(service, p.epoch, 0),
                p.at + RETRIGGER_AFTER,
            );
        }
        self.emit(ControlEvent::RelocationTriggered {
            service,
            ue,
            source: host,
            mode: p.mode,
            at: p.at,
            target: p.target,
        });
        if !others.is_empty() {
            let discard = Relocate {
                service,
                action: RelocateAction::Discard {
                    servers: others.clone(),
                },
                timing: Timing::at(p.at),
            };
            // The source too: it keeps syncing its shadows until it freezes (a precopy
            // serves on), and must stop with the discarded ones.
            self.send(host, discard.clone());
            for s in &others {
                self.send(*s, discard.clone());
            }
            self.emit(ControlEvent::ShadowsDiscarded {
                service,
                servers: others,
            });
        }
    }

    /// The 1006 of an optimistic relocation still open goes out again, to source and
    /// target, up to [`RETRIGGER_ATTEMPTS`] times, each wait twice the one before.
    pub(super) fn retrigger(&mut self, now: Instant, service: ServiceId, epoch: u64, attempt: u8) {
        let Some((msg, host, target)) = self.open_relocate(service) else {
            return;
        };
        if !matches!(msg.action, RelocateAction::Relocate { epoch: open, .. } if open == epoch) {
            return;
        }
        self.send(host, msg.clone());
        self.send(target, msg);
        if attempt + 1 < RETRIGGER_ATTEMPTS {
            let wait = RETRIGGER_AFTER * 2u32.pow(u32::from(attempt) + 1);
            self.timers
                .set(Timer::Retrigger(service, epoch, attempt + 1), now + wait);
        }
    }

    /// The 1006 of the relocation of `service` that went out (from its host), with its
    /// source and target; `None` if none is open.
    pub(super) fn open_relocate(
        &self,
        service: ServiceId,
    ) -> Option<(Relocate, ServerId, ServerId)> {
        let e = self.services.get(&service)?;
        let Some(Relocation::Triggered {
            target,
            mode,
            epoch,
            at,
        }) = e.relocation
        else {
            return None;
        };
        let action = RelocateAction::Relocate {
            source: e.host,
            target,
            mode,
            epoch,
        };
        let msg = Relocate {
            service,
            action,
            timing: Timing::at(at),
        };
        Some((msg, e.host, target))
    }

    /// 3020 to the UE's cell and the one before: `service` is at `server` under `epoch`.
    fn send_route(&mut self, service: ServiceId, server: ServerId, epoch: u64) {
        let Some(e) = self.services.get(&service) else {
            return;
        };
        let route = Route {
            service,
            server,
            epoch,
        };
        let mut cells = vec![e.cell];
        cells.extend(e.previous_cell);
        cells.sort_unstable();
        cells.dedup();
        let ue = e.ue;
        for c in cells {
            self.send(c, RouteUpdate { ue, route });
        }
    }

    pub(super) fn on_done(&mut self, now: Instant, from: NodeId, m: RelocationDone) {
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        let source = from == NodeId::Server(e.host);
        let Some(r) = e.relocation else {
            // A source answering a `Resume` of a relocation that ended already, a
            // target's late word of what its source reported, or a target answering the
            // abort of a relocation called off while it was silent.
            let known = m.ok && m.to == e.host && m.epoch == e.epoch;
            if known || !m.ok {
                return;
            }
            self.events.push_back(ControlEvent::ProtocolViolation {
                from,
                what: format!("3033 for {} without a relocation", m.service),
            });
            return;
        };
        // A source's word that it serves on names its target only if it knew one (it may
        // never have got the 1006 of the relocation its `Resume` calls off).
        let serves_on = source && !m.ok;
        if r.epoch() != m.epoch || (r.target() != m.to && !serves_on) {
            return;
        }
        let m = RelocationDone {
            to: r.target(),
            ..m
        };
        if !m.ok && source && !self.is_down(m.to) {
            // The source gave up on its 2004s, but the target may have gone live with
            // only its 2005 lost: ask it. Its 3033 settles the relocation either way.
            let abort = RelocateAction::Abort { epoch: m.epoch };
            self.order(m.to, m.service, abort);
            return;
        }
        // NOTE: a 3033 for a relocation whose 1006 never went out (still scheduled, or
        // awaiting its shadow) ends it too, although no server was told its epoch. The node
        // used to leave that relocation's `Trigger` timer armed, which would then trigger
        // the service's next relocation early; the timer goes with the state now. Honest
        // servers never send such a 3033.
        if matches!(r, Relocation::Scheduled { .. }) {
            self.timers.cancel(Timer::Trigger(m.service));
        }
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        e.relocation = None;
        // The ready shadows the 1006 kept, for the new host to adopt; a promotion (the
        // host was dead), a failed relocation or a new host gone silent leaves them
        // nothing to follow.
        let kept: Vec<ServerId> = std::mem::take(&mut e.adopting)
            .into_iter()
            .filter(|s| e.shadows.contains(s) && *s != m.to && *s != e.host)
            .collect();
        // A promotion replaced a host declared dead: nothing of it stands at the state the
        // new host went live with.
        let handed_over = m.ok && !e.orphaned;
        let followable = handed_over && !self.is_down(m.to);
        let adopt = followable && !kept.is_empty();
        if !adopt && !kept.is_empty() {
            self.discard(m.service, kept.clone());
        }
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        e.shadows.clear();
        e.ready.clear();
        let from_host = e.host;
        let emptied = std::mem::take(&mut e.emptied);
        if m.ok {
            e.epoch = m.epoch;
            // A source's own word that it handed over to a target now silent: the
            // service lives there, and waits for it or fails over.
            let silent = self.is_down(m.to);
            let Some(e) = self.services.get_mut(&m.service) else {
                return;
            };
            e.orphaned = silent;
            let ue = e.ue;
            self.set_host(m.service, m.to);
            self.stats.relocations_completed += 1;
            self.send_route(m.service, m.to, m.epoch);
            if let Some(orders) = self.rejoin_orders.get_mut(&from_host) {
                // A silent source was to be asked whether it serves on; it does not.
                orders.retain(|(s, a)| {
                    *s != m.service || !matches!(a, RelocateAction::Resume { .. })
                });
            }
            if !self.is_down(from_host) && !source {
                // A source that missed the 2005 is still frozen: it lets go now.
                let release = RelocateAction::Release {
                    host: m.to,
                    epoch: m.epoch,
                };
                self.order(from_host, m.service, release);
            }
            self.emit(ControlEvent::RelocationCompleted {
                service: m.service,
                ue,
                from: from_host,
                to: m.to,
            });
            // The old host keeps its instance as a shadow of the new one (it stopped at
            // the state the new host went live with): a UE that turns back finds it
            // ready. Strategies without shadows, or a new host that cannot sync it, have
            // it discarded.
            let mut adopted = if adopt { kept } else { Vec::new() };
            if handed_over && from_host != m.to && !self.is_down(from_host) {
                if self.cfg.follow_shadows && self.cfg.strategy.uses_shadows() && followable {
                    adopted.push(from_host);
                } else {
                    self.discard(m.service, vec![from_host]);
                }
            }
            if !adopted.is_empty() {
                adopted.sort_unstable();
                self.hand_over_shadows(now, m.service, adopted);
            }
            if silent {
                self.failover(now, m.service);
            }
        } else {
            let ue = e.ue;
            self.stats.relocations_failed += 1;
            self.emit(ControlEvent::RelocationFailed {
                service: m.service,
                ue,
                source: from_host,
                target: m.to,
            });
            if self.cfg.optimistic {
                // The routes may have gone to the target at the trigger: back to the host.
                self.send_route(m.service, from_host, m.epoch);
            }
            if self.is_down(m.to) {
                // Called off because the target fell silent: it may still hold the 2004
                // and go live when it is back, so it is told to abort first.
                self.call_off_at(m.to, m.service, m.epoch);
            }
            let orphaned = self.services.get(&m.service).is_some_and(|e| e.orphaned);
            // A source that answered a `Resume`, or gave up on its own, serves already
            // (back from a partition, if it had been declared dead).
            if source {
                if let Some(e) = self.services.get_mut(&m.service) {
                    e.orphaned = false;
                }
                return;
            }
            if self.is_down(from_host) || emptied {
                // A promotion that could not happen, the old host gone: try another
                // shadow.
                if let Some(e) = self.services.get_mut(&m.service) {
                    e.ready.remove(&m.to);
                }
                self.failover(now, m.service);
            } else {
                if orphaned {
                    // The old host is back (unanswered while the promotion was open) and
                    // serves on, which its next heartbeat confirms; the promoted server
                    // must never go live on a 2004 still on its way.
                    self.order(m.to, m.service, RelocateAction::Abort { epoch: m.epoch });
                }
                let resume = RelocateAction::Resume { epoch: m.epoch };
                self.order(from_host, m.service, resume);
            }
        }
    }

    /// The new host of `service` takes over the sync of the ready shadows its relocation
    /// kept (1003 `adopt` to it and to each of them); each counts as ready again once the
    /// host confirms it (3032), and one that has nothing to adopt says so (3037). Nothing
    /// names them now: they go stale, and the next predictions keep those they name.
    fn hand_over_shadows(&mut self, now: Instant, service: ServiceId, kept: Vec<ServerId>) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        // Not ready until the new host confirms it took over their sync (its 3032 for
        // each): one it cannot sync must never be promoted.
        e.shadows.extend(kept.iter().copied());
        e.adopting.extend(kept.iter().copied());
        for s in &kept {
            e.ready.remove(s);
            // Their stale clocks start now: what named them before the move is past.
            e.stale_since.insert(*s, now);
        }
        let msg = PrepareShadow {
            service,
            ue: e.ue,
            source: e.host,
            candidates: kept.clone(),
            sync: SyncMode::Replay,
            start: Timing::at(now),
            adopt: true,
        };
        let host = e.host;
        self.send(host, msg.clone());
        for s in &kept {
            self.send(*s, msg.clone());
        }
        self.emit(ControlEvent::ShadowsAdopted {
            service,
            host,
            servers: kept,
        });
        self.unname_all(now, service);
    }

    pub(super) fn on_cancel(&mut self, now: Instant, m: HandoverCancel) {
        self.stats.cancelled += 1;
        self.events.push_back(ControlEvent::HandoverCancelled {
            ue: m.ue,
            source: m.source,
            target: m.target,
            reason: m.reason,
        });
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.cell = m.source;
        e.predicted.clear();
        // The UE may be back at a cell whose route predates a relocation that already
        // happened: point it at the live instance.
        let route = Route {
            service,
            server: e.host,
            epoch: e.epoch,
        };
        let ue = m.ue;
        // Not triggered yet: the relocation is called off. This also calls off a
        // load-balancing move of the UE's service waiting for its shadow.
        if e.relocation.is_some_and(|r| !r.is_triggered()) {
            e.relocation = None;
            self.timers.cancel(Timer::Trigger(service));
        }
        if e.relocation.is_none() {
            self.unname_all(now, service);
        }
        self.send(m.source, RouteUpdate { ue, route });
    }

    pub(super) fn on_shadow_ready(&mut self, m: ShadowReady) {
        if !self.services.contains_key(&m.service) {
            return;
        }
        self.events.push_back(ControlEvent::ShadowReady {
            service: m.service,
            server: m.server,
        });
        if let Some(e) = self.services.get_mut(&m.service)
            && e.shadows.contains(&m.server)
        {
            e.ready.insert(m.server);
            e.adopting.remove(&m.server);
        }
        let Some(e) = self.services.get(&m.service) else {
            return;
        };
        if matches!(e.relocation, Some(Relocation::AwaitingShadow { target, .. }) if target == m.server)
        {
            self.trigger(m.service);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use edgeshift_proto::{
        CellId, CodeRef, Deploy, LoadReport, Message, Role, ServiceSpec, Transmit, UeId,
    };

    use super::*;
    use crate::config::ControlConfig;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn each_state_triggers_once_with_its_own_timing() {
        let mut s = Relocation::Scheduled {
            target: ServerId(2),
            mode: RelocationMode::Cold,
            epoch: 3,
            at: ms(40),
        };
        let order = s.trigger();
        assert_eq!(
            order.map(|o| (o.target, o.mode, o.epoch, o.at)),
            Some((ServerId(2), RelocationMode::Cold, 3, ms(40)))
        );
        assert!(s.is_triggered());
        assert_eq!(s.trigger(), None);
        let mut lb = Relocation::AwaitingShadow {
            target: ServerId(4),
            epoch: 2,
            since: ms(1000),
        };
        assert_eq!(
            lb.trigger().map(|o| (o.mode, o.at)),
            Some((RelocationMode::Hot, ms(1000)))
        );
        assert_eq!((lb.target(), lb.epoch()), (ServerId(4), 2));
    }

    /// Cells 1, 2 on servers 1, 2; one service on server 1 with a 10 ms budget (the 12 ms
    /// round trip to server 2 exceeds it).
    fn node(strategy: Strategy, balance: bool) -> ControlNode {
        let topology = BTreeMap::from([(CellId(1), ServerId(1)), (CellId(2), ServerId(2))]);
        let mut cfg = ControlConfig::new(strategy, topology);
        if balance {
            cfg.load_threshold = Some(0.5);
            cfg.backhaul
                .insert((ServerId(1), ServerId(2)), Duration::from_millis(1));
        }
        let mut n = ControlNode::new(cfg, Instant::ZERO);
        let spec = ServiceSpec {
            code: CodeRef::Hash(1),
            config: vec![],
            latency_budget_ms: 10,
        };
        let deploy = Deploy {
            service: ServiceId(1),
            ue: UeId(1),
            cell: CellId(1),
            spec,
        };
        n.handle_message(Instant::ZERO, NodeId::CONTROL, deploy.into());
        drain(&mut n);
        n
    }

    fn drain(n: &mut ControlNode) -> Vec<Transmit> {
        while n.poll_event().is_some() {}
        std::iter::from_fn(|| n.poll_transmit()).collect()
    }

    fn relocation(n: &ControlNode) -> Option<Relocation> {
        n.service(ServiceId(1)).and_then(|e| e.relocation)
    }

    fn execution(at: Instant) -> Message {
        HandoverExecution {
            ue: UeId(1),
            source: CellId(1),
            target: CellId(2),
            timing: Timing::at(at),
        }
        .into()
    }

    fn relocates(out: &[Transmit]) -> usize {
        out.iter()
            .filter(|t| {
                matches!(&t.msg, Message::Relocate(r) if matches!(r.action, RelocateAction::Relocate { .. }))
            })
            .count()
    }

    #[test]
    fn a_scheduled_relocation_waits_for_its_timer_then_for_the_3033() {
        let mut n = node(Strategy::Cold, false);
        n.handle_message(ms(10), CellId(1).into(), execution(ms(50)));
        assert!(matches!(
            relocation(&n),
            Some(Relocation::Scheduled { at, epoch: 2, .. }) if at == ms(50)
        ));
        assert_eq!(n.timers.get(&Timer::Trigger(ServiceId(1))), Some(ms(50)));
        assert_eq!(relocates(&drain(&mut n)), 0);
        n.handle_timeout(ms(50));
        assert_eq!(relocates(&drain(&mut n)), 2, "to source and target");
        assert!(matches!(relocation(&n), Some(Relocation::Triggered { .. })));
        assert!(n.timers.is_empty());
        // A 3033 for another epoch is not this relocation's.
        let mut done = RelocationDone {
            service: ServiceId(1),
            from: ServerId(1),
            to: ServerId(2),
            ok: true,
            epoch: 7,
        };
        n.handle_message(ms(90), ServerId(2).into(), done.clone().into());
        assert!(relocation(&n).is_some());
        done.epoch = 2;
        n.handle_message(ms(90), ServerId(2).into(), done.into());
        assert_eq!(relocation(&n), None);
        assert_eq!(n.service(ServiceId(1)).map(|e| e.host), Some(ServerId(2)));
        assert_eq!(n.hosted_by(ServerId(2)).collect::<Vec<_>>(), [ServiceId(1)]);
    }

    #[test]
    fn kept_shadows_are_adopted_by_the_new_host_and_ready_only_once_it_confirms() {
        let mut n = node(Strategy::Shadow, false);
        if let Some(e) = n.services.get_mut(&ServiceId(1)) {
            e.shadows = [ServerId(2), ServerId(3)].into();
            e.ready = e.shadows.clone();
        }
        n.handle_message(ms(10), CellId(1).into(), execution(ms(5)));
        let out = drain(&mut n);
        // Server 3's ready shadow is not discarded, but it is not promotable either while
        // the relocation runs: it stands at the freeze, the target may serve on.
        assert!(!out.iter().any(|t| matches!(&t.msg, Message::Relocate(r)
            if matches!(r.action, RelocateAction::Discard { .. }))));
        let e = n.service(ServiceId(1)).expect("service");
        assert_eq!(e.ready, [ServerId(2)].into());
        assert_eq!(e.adopting, [ServerId(3)].into());
        let done = RelocationDone {
            service: ServiceId(1),
            from: ServerId(1),
            to: ServerId(2),
            ok: true,
            epoch: 2,
        };
        n.handle_message(ms(90), ServerId(2).into(), done.into());
        let out = drain(&mut n);
        let adopt_to: Vec<NodeId> = out
            .iter()
            .filter(|t| {
                matches!(&t.msg, Message::PrepareShadow(p)
                if p.adopt && p.source == ServerId(2) && p.candidates == [ServerId(1), ServerId(3)])
            })
            .map(|t| t.to)
            .collect();
        assert_eq!(
            adopt_to,
            [ServerId(2), ServerId(1), ServerId(3)].map(NodeId::Server)
        );
        let e = n.service(ServiceId(1)).expect("service");
        assert_eq!(e.shadows, [ServerId(1), ServerId(3)].into());
        assert!(e.ready.is_empty(), "ready before the host confirmed");
        // The new host confirms 3; 1 says it has nothing to adopt.
        let ready = ShadowReady {
            service: ServiceId(1),
            server: ServerId(3),
            seq: 40,
            adoption: false,
        };
        n.handle_message(ms(95), ServerId(2).into(), ready.into());
        let refused = edgeshift_proto::ShadowRefused {
            service: ServiceId(1),
            server: ServerId(1),
            reason: "no ready shadow to adopt".into(),
        };
        n.handle_message(ms(95), ServerId(1).into(), refused.into());
        let e = n.service(ServiceId(1)).expect("service");
        assert_eq!(e.ready, [ServerId(3)].into());
        assert_eq!(e.shadows, [ServerId(3)].into());
    }

    #[test]
    fn an_announced_time_already_past_triggers_at_once() {
        let mut n = node(Strategy::Cold, false);
        n.handle_message(ms(10), CellId(1).into(), execution(ms(5)));
        assert!(matches!(
            relocation(&n),
            Some(Relocation::Triggered { at, .. }) if at == ms(10)
        ));
        assert!(n.timers.is_empty());
    }

    #[test]
    fn a_cancel_before_the_1006_calls_it_off_with_its_timer() {
        let mut n = node(Strategy::Cold, false);
        n.handle_message(ms(10), CellId(1).into(), execution(ms(50)));
        let cancel = HandoverCancel {
            ue: UeId(1),
            source: CellId(1),
            target: CellId(2),
            reason: edgeshift_proto::CancelReason::Failed,
        };
        n.handle_message(ms(20), CellId(1).into(), cancel.clone().into());
        assert_eq!(relocation(&n), None);
        assert!(n.timers.is_empty());
        // After the 1006, a cancel leaves the relocation to its 3033.
        n.handle_message(ms(30), CellId(1).into(), execution(ms(30)));
        n.handle_message(ms(40), CellId(1).into(), cancel.into());
        assert!(matches!(relocation(&n), Some(Relocation::Triggered { .. })));
    }

    #[test]
    fn load_balancing_waits_for_the_targets_shadow() {
        let mut n = node(Strategy::Shadow, true);
        let report = LoadReport {
            server: ServerId(1),
            load: 0.9,
            hosted: 3,
            services: vec![(ServiceId(1), 10), (ServiceId(9), 10), (ServiceId(8), 10)],
        };
        n.handle_message(ms(10), ServerId(1).into(), report.into());
        n.handle_timeout(ms(1000));
        assert!(matches!(
            relocation(&n),
            Some(Relocation::AwaitingShadow { target: ServerId(2), since, .. }) if since == ms(1000)
        ));
        let out = drain(&mut n);
        assert!(out.iter().any(|t| t.msg.type_code() == 1003));
        // A 3032 from elsewhere does nothing; the target's sends the hot 1006.
        for (server, expected) in [(3, 0), (2, 2)] {
            let ready = ShadowReady {
                service: ServiceId(1),
                server: ServerId(server),
                seq: 1,
                adoption: false,
            };
            n.handle_message(ms(1200), ServerId(server).into(), ready.into());
            assert_eq!(relocates(&drain(&mut n)), expected);
        }
        assert!(matches!(
            relocation(&n),
            Some(Relocation::Triggered {
                mode: RelocationMode::Hot,
                ..
            })
        ));
    }
}
