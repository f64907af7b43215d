//! Which servers are alive, and failover when one is not.
//!
//! Servers send a heartbeat (3006) every few hundred milliseconds and hold a lease while
//! the node answers (3007; see the edge crate's `lease` module). A server silent for
//! `server_timeout` (longer than its lease) is declared dead ([`ControlNode::server_down`]):
//!
//! - each service it hosted fails over: its most useful ready shadow (the one at the UE's
//!   own server, else the first) is promoted with a 1006 `Promote` under a new epoch, and
//!   the promoted server's 3033 completes it like a relocation (routes to the cells); the
//!   UE resends what the shadow had not seen;
//! - a relocation towards it is called off: a source that got its 1006 is told to
//!   `Resume` and answers whether it had handed the instance over already (then the
//!   silent server is its host, and the service waits for it or fails over);
//! - its shadows and plans are forgotten.
//!
//! When its heartbeats come back (a healed partition, or a restart: a new incarnation),
//! it first gets a 1006 `Release` for each instance a failover replaced and a 1006
//! `Abort` for each relocation towards it that was called off, then the answer to its
//! heartbeat: it never serves a replaced instance, nor activates a stale shadow. An
//! instance whose replacement has not yet said it went live is neither released nor
//! answered until it has (then it is released) or its promoted server fell silent too
//! (then it is told to `Resume`, and serves on).

use edgeshift_proto::{
    Heartbeat, HeartbeatAck, Instant, RelocateAction, RelocationMode, Route, RouteQuery,
    RouteUpdate, ServerId, ServiceId, Tenure, UeId,
};

use super::relocation::Relocation;
use super::{ControlNode, Timer};
use crate::event::ControlEvent;

/// What the node knows of a heartbeating server.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer {
    pub(super) incarnation: u64,
    pub(super) down: bool,
}

impl ControlNode {
    /// Whether `server` was declared dead and has not come back.
    pub(super) fn is_down(&self, server: ServerId) -> bool {
        self.peers.get(&server).is_some_and(|p| p.down)
    }

    /// 3006: the server is alive; answer it (after any releases it must apply first).
    pub(super) fn on_heartbeat(&mut self, now: Instant, m: Heartbeat) {
        let server = m.server;
        let known = self.peers.get(&server).copied();
        let restarted = known.is_some_and(|p| p.incarnation != m.incarnation);
        if restarted && known.is_some_and(|p| !p.down) {
            // Back before its silence was noticed, but with nothing: as good as dead.
            self.server_down(now, server);
        }
        let was_down = self.is_down(server);
        self.peers.insert(
            server,
            Peer {
                incarnation: m.incarnation,
                down: false,
            },
        );
        if was_down {
            self.rejoin(server, restarted);
        }
        if let Some(timeout) = self.cfg.server_timeout {
            self.timers.set(Timer::ServerSilent(server), now + timeout);
        }
        self.drop_unplanned_shadows(server, &m.shadows, was_down);
        if self.release_replaced(server, &m.live) {
            return;
        }
        self.resend_unconfirmed(server);
        self.send(server, HeartbeatAck { seq: m.seq });
    }

    /// Sends `server` the 1006 of each relocation this node was restored in the middle of
    /// (triggered, so the previous node meant to send it, but perhaps died first): the
    /// relocation to its source and target, the promotion to its target. The source acts
    /// on it unless it has already; a target that is live under its epoch says so again.
    fn resend_unconfirmed(&mut self, server: ServerId) {
        let lo = (server, ServiceId(u32::MIN));
        let hi = (server, ServiceId(u32::MAX));
        let mine: Vec<ServiceId> = self.unconfirmed.range(lo..=hi).map(|(_, s)| *s).collect();
        for service in mine {
            self.unconfirmed.remove(&(server, service));
            let Some((mut msg, ..)) = self.open_relocate(service) else {
                continue;
            };
            // A host declared dead: the target's promotion is what stands.
            let orphaned = self.services.get(&service).is_some_and(|e| e.orphaned);
            if orphaned && let RelocateAction::Relocate { epoch, .. } = msg.action {
                msg.action = RelocateAction::Promote { epoch };
            }
            self.send(server, msg);
        }
    }

    /// Discards each shadow `server` holds of a service of this node's whose plan does not
    /// name it: a shadow whose transfer was on its way when it was discarded, or whose
    /// early sync arrived after. Without this, it would be kept (and synced) until its
    /// service ends. A discard that crosses a newer request is harmless: the control link
    /// keeps order, and the request comes after it. Services this node does not hold are
    /// left alone: another region's node may have asked for them.
    ///
    /// A server back from being declared dead keeps none the node has not asked for since,
    /// planned or not: the node forgot its shadows when it went silent, so their sources
    /// may have moved on without them (relocated out and back) and left them at an old
    /// state that still looks ready.
    fn drop_unplanned_shadows(&mut self, server: ServerId, shadows: &[ServiceId], back: bool) {
        let unplanned: Vec<ServiceId> = shadows
            .iter()
            .copied()
            .filter(|s| {
                self.services.get(s).is_some_and(|e| {
                    e.host != server
                        && !e.shadows.contains(&server)
                        && (back || !e.planned.contains(&server))
                        && e.relocation.is_none_or(|r| r.target() != server)
                })
            })
            .collect();
        for service in unplanned {
            self.discard(service, vec![server]);
        }
    }

    /// Releases (again) each instance `server` says is live although the service went live
    /// elsewhere under a later epoch: the release sent when it came back may have been
    /// lost on the way. Returns whether there was one; the heartbeat then goes unanswered,
    /// so that the lease cannot return beside the newer instance.
    fn release_replaced(&mut self, server: ServerId, live: &[Tenure]) -> bool {
        let mut replaced = false;
        for t in live {
            if let Some(r) = self.moving_away(t.service, server) {
                // Back with its instance while the shadow promoted in its place has not
                // said it went live: the instance here may be the only one (the promoted
                // server may never have got its 1006). It neither serves (no lease) nor
                // goes (no release) until that is settled, and each heartbeat asks again
                // (a 1006 or a 3033 may be lost): the promoted server whether it is live,
                // or, if that fell silent too, this one whether it serves on.
                let epoch = r.epoch();
                if self.is_down(r.target()) {
                    self.order(server, t.service, RelocateAction::Resume { epoch });
                } else {
                    self.order(r.target(), t.service, RelocateAction::Promote { epoch });
                }
                replaced = true;
                continue;
            }
            if let Some(e) = self.services.get_mut(&t.service)
                && e.host == server
                && e.relocation.is_none()
            {
                // Its host says the instance is live: whatever failed over or was called
                // off meanwhile, it serves.
                e.orphaned = false;
            }
            // The epoch test spares a target that went live under a relocation whose
            // 3033 is still on its way: that relocation's epoch is the service's.
            match self.successor(t.service, server) {
                Some((host, epoch)) if t.epoch < epoch => {
                    self.order(server, t.service, RelocateAction::Release { host, epoch });
                    replaced = true;
                }
                _ => {}
            }
        }
        replaced
    }

    /// The triggered relocation (or promotion of a shadow) of `service` away from
    /// `server`, its host declared dead meanwhile, until a 3033 settles it.
    pub(super) fn moving_away(&self, service: ServiceId, server: ServerId) -> Option<Relocation> {
        let e = self.services.get(&service)?;
        let r = e.relocation?;
        (e.host == server && e.orphaned && r.is_triggered() && r.target() != server).then_some(r)
    }

    /// Where `service` lives, and under which epoch, if not on `server`: its host, or the
    /// shadow being promoted in place of `server` (declared dead, so its instance was
    /// given up although it is still the recorded host).
    fn successor(&self, service: ServiceId, server: ServerId) -> Option<(ServerId, u64)> {
        let e = self.services.get(&service)?;
        if e.host != server {
            return Some((e.host, e.epoch));
        }
        match e.relocation {
            Some(r) if e.orphaned && r.is_triggered() && r.target() != server => {
                Some((r.target(), r.epoch()))
            }
            _ => None,
        }
    }

    /// A server that was declared dead is back: it drops what was replaced meanwhile.
    pub(super) fn rejoin(&mut self, server: ServerId, restarted: bool) {
        self.emit(ControlEvent::ServerUp { server, restarted });
        if self.is_own(server) {
            self.announce(server, false);
        }
        if restarted {
            // Its instances went with the restart: a move away still open no longer has
            // a source to fall back on if it fails.
            let hosted: Vec<ServiceId> = self.hosted_by(server).collect();
            for s in hosted {
                if self.moving_away(s, server).is_some()
                    && let Some(e) = self.services.get_mut(&s)
                {
                    e.emptied = true;
                }
            }
        } else {
            // Back from a partition with its instances: those not replaced serve on.
            let hosted: Vec<ServiceId> = self.hosted_by(server).collect();
            for s in hosted {
                if let Some(e) = self.services.get_mut(&s)
                    && e.relocation.is_none()
                {
                    e.orphaned = false;
                }
            }
        }
        let lo = (server, ServiceId(u32::MIN));
        let hi = (server, ServiceId(u32::MAX));
        let replaced: Vec<ServiceId> = self.superseded.range(lo..=hi).map(|(_, s)| *s).collect();
        for service in replaced {
            self.superseded.remove(&(server, service));
            if self.moving_away(service, server).is_some() {
                // Released when the move lands (`on_done`), not before: see
                // `release_replaced`.
                continue;
            }
            if let Some((host, epoch)) = self.successor(service, server) {
                self.order(server, service, RelocateAction::Release { host, epoch });
            }
        }
        let called_off: Vec<(ServiceId, u64)> = self
            .called_off
            .range((server, ServiceId(u32::MIN), 0)..=(server, ServiceId(u32::MAX), u64::MAX))
            .map(|(_, s, e)| (*s, *e))
            .collect();
        for (service, epoch) in called_off {
            self.called_off.remove(&(server, service, epoch));
            self.order(server, service, RelocateAction::Abort { epoch });
        }
        for (service, action) in self.rejoin_orders.remove(&server).unwrap_or_default() {
            self.order(server, service, action);
        }
    }

    /// The server's heartbeats stopped: fail its services over, call off relocations to it.
    pub(super) fn server_down(&mut self, now: Instant, server: ServerId) {
        match self.peers.get_mut(&server) {
            Some(p) if !p.down => p.down = true,
            _ => return,
        }
        self.timers.cancel(Timer::ServerSilent(server));
        self.emit(ControlEvent::ServerDown { server });
        if self.is_own(server) {
            self.announce(server, true);
        }
        let ids: Vec<ServiceId> = self.services.keys().copied().collect();
        for service in ids {
            self.lose_server(now, service, server);
        }
    }

    /// `server` is dead: `service` loses its shadow or plan there, fails over if it was
    /// its host, and calls off a relocation to it.
    pub(super) fn lose_server(&mut self, now: Instant, service: ServiceId, server: ServerId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.shadows.remove(&server);
        e.ready.remove(&server);
        let planned = e.planned.remove(&server);
        if e.host == server {
            e.orphaned = true;
        }
        let (host, ue, relocation) = (e.host, e.ue, e.relocation);
        if planned {
            self.timers.cancel(Timer::JitStart(service, server));
        }
        match relocation {
            Some(r) if r.is_triggered() && self.both_silent(service, host, r) => {
                self.keep_open(service, host, r);
            }
            Some(r) if r.target() == server => {
                self.call_off(service, r);
                if self.is_down(host) {
                    // A promotion whose target died too: another shadow, or the
                    // service is lost.
                    self.failover(now, service);
                }
            }
            Some(r @ Relocation::Triggered { .. })
                if host == server && !self.is_down(r.target()) =>
            {
                // The source died mid-relocation: its target holds the freshest copy.
                self.promote(service, ue, server, r.target(), r.epoch());
            }
            Some(r) if host == server && !r.is_triggered() => {
                // The source died before the 1006: the relocation is off, but the
                // target's shadow is as good as any (it is at the UE's new server).
                self.end_failed(service, host, r.target());
                self.failover(now, service);
            }
            Some(r) if host == server => {
                self.call_off(service, r);
                self.failover(now, service);
            }
            None if host == server => self.failover(now, service),
            _ => {}
        }
    }

    /// Whether the source and the target of the triggered relocation `r` of `service` are
    /// both declared dead, and no other ready shadow could take over.
    fn both_silent(&self, service: ServiceId, host: ServerId, r: Relocation) -> bool {
        let Some(e) = self.services.get(&service) else {
            return false;
        };
        // NOTE: a source told to resume before it fell silent may have served on (its
        // answer lost); if the target is back first, live under the relocation's epoch,
        // it wins and what the source applied since is lost. Seen the other way round in
        // a swarm run (the source had handed over, the resume never reached it); this
        // way not yet. Another region's source is released by its own node, which
        // cannot know this relocation's state: that case keeps the old rule.
        self.is_own(host)
            && self.is_down(host)
            && self.is_down(r.target())
            && e.ready.iter().all(|s| self.is_down(*s))
    }

    /// Source and target of a triggered relocation (or promotion) are both silent, with
    /// no shadow to promote: one of them holds the instance (frozen at the source, or live
    /// at the target after a 2005 or 3033 that was lost), so neither is released. The
    /// relocation stays open and whichever comes back first settles it: the target by its
    /// answer to an abort (live under the relocation's epoch: the service is there), the
    /// source by its answer to a resume (handed over, or serving on).
    fn keep_open(&mut self, service: ServiceId, source: ServerId, r: Relocation) {
        let epoch = r.epoch();
        self.on_rejoin(r.target(), service, RelocateAction::Abort { epoch });
        self.on_rejoin(source, service, RelocateAction::Resume { epoch });
    }

    /// A relocation whose target died: off, and the source (frozen or not) serves on.
    ///
    /// A source that got its 1006 may have handed the instance over already (the
    /// target's 2005 came before it fell silent): it is told to `Resume`, and its 3033
    /// settles the relocation either way ([`ControlNode::on_done`]).
    fn call_off(&mut self, service: ServiceId, r: Relocation) {
        let Some(host) = self.services.get(&service).map(|e| e.host) else {
            return;
        };
        let host_down = self.is_down(host);
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.ready.remove(&r.target());
        e.shadows.remove(&r.target());
        if r.is_triggered() && !host_down {
            self.order(host, service, RelocateAction::Resume { epoch: r.epoch() });
            // The target may hold the 2004 (and the catch-up may reach it): when it is
            // back it aborts before its lease returns, so that it never goes live beside
            // a source that resumed.
            self.on_rejoin(
                r.target(),
                service,
                RelocateAction::Abort { epoch: r.epoch() },
            );
            return;
        }
        self.end_failed(service, host, r.target());
        if r.is_triggered() && self.is_down(r.target()) {
            // The target may still hold the 2004 and go live when it is back: it is told
            // to abort first.
            self.call_off_at(r.target(), service, r.epoch());
        }
    }

    /// Ends the relocation of `service` from `host` to `target` as failed.
    fn end_failed(&mut self, service: ServiceId, host: ServerId, target: ServerId) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.relocation = None;
        e.emptied = false;
        let ue = e.ue;
        self.timers.cancel(Timer::Trigger(service));
        self.stats.relocations_failed += 1;
        self.emit(ControlEvent::RelocationFailed {
            service,
            ue,
            source: host,
            target,
        });
    }

    /// `target`, dead, drops what it holds of the called-off relocation of `service` under
    /// `epoch` when it is back: an instance its 2004 activated before it fell silent (the
    /// 2005 lost, so the source served on) is released, and the shadow is aborted so that
    /// a stale 2004 never activates it.
    ///
    /// The service's epoch moves past the relocation's, so that the release outranks an
    /// instance live under it.
    pub(super) fn call_off_at(&mut self, target: ServerId, service: ServiceId, epoch: u64) {
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.epoch = e.epoch.max(epoch + 1);
        let release = RelocateAction::Release {
            host: e.host,
            epoch: e.epoch,
        };
        if self.is_own(target) {
            self.superseded.insert((target, service));
            self.called_off.insert((target, service, epoch));
        } else {
            self.on_rejoin(target, service, release);
            self.on_rejoin(target, service, RelocateAction::Abort { epoch });
        }
    }

    /// Promotes a ready shadow of a service whose host is dead, or reports it lost.
    pub(super) fn failover(&mut self, now: Instant, service: ServiceId) {
        let down: Vec<ServerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.down)
            .map(|(s, _)| *s)
            .collect();
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        let dead = e.host;
        e.ready.retain(|s| !down.contains(s));
        let local = self.cfg.topology.get(&e.cell).copied();
        let pick = local
            .filter(|s| e.ready.contains(s))
            .or_else(|| e.ready.iter().next().copied());
        let ue = e.ue;
        let Some(target) = pick else {
            // No copy anywhere but on the silent host: if it comes back with its instance,
            // that serves on. A release a failed promotion queued for it is withdrawn, and
            // a 1006 it may still hold is called off, or it would hand the only instance
            // to a server that has none.
            let epoch = e.epoch;
            self.on_rejoin(dead, service, RelocateAction::Resume { epoch });
            self.emit(ControlEvent::ServiceLost {
                service,
                ue,
                server: dead,
            });
            return;
        };
        e.epoch += 1;
        let epoch = e.epoch;
        e.relocation = Some(Relocation::Triggered {
            target,
            mode: RelocationMode::Hot,
            epoch,
            at: now,
        });
        self.timers.cancel(Timer::ShadowExpiry(service));
        // The other shadows followed the dead source; the new host starts its own.
        let others: Vec<ServerId> = e.shadows.iter().copied().filter(|s| *s != target).collect();
        e.shadows.retain(|s| *s == target);
        e.ready.retain(|s| *s == target);
        e.planned.clear();
        self.timers.cancel_range(Timer::jit_starts(service));
        for s in &others {
            let discard = RelocateAction::Discard {
                servers: others.clone(),
            };
            self.order(*s, service, discard);
        }
        self.promote(service, ue, dead, target, epoch);
    }

    /// `target`'s shadow of `service` goes live under `epoch`, replacing the instance on
    /// the dead `from` (released when `from` comes back).
    fn promote(
        &mut self,
        service: ServiceId,
        ue: UeId,
        from: ServerId,
        target: ServerId,
        epoch: u64,
    ) {
        if self.is_own(from) {
            self.superseded.insert((from, service));
        } else {
            let release = RelocateAction::Release {
                host: target,
                epoch,
            };
            self.on_rejoin(from, service, release);
        }
        self.order(target, service, RelocateAction::Promote { epoch });
        self.emit(ControlEvent::FailoverStarted {
            service,
            ue,
            from,
            to: target,
        });
    }

    /// 3021: a cell learned the UE again (it restarted); tell it the route.
    pub(super) fn on_route_query(&mut self, m: RouteQuery) {
        let Some(&service) = self.by_ue.get(&m.ue) else {
            return;
        };
        let Some(e) = self.services.get_mut(&service) else {
            return;
        };
        e.cell = m.cell;
        let route = Route {
            service,
            server: e.host,
            epoch: e.epoch,
        };
        self.send(m.cell, RouteUpdate { ue: m.ue, route });
    }
}
