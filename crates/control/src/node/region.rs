//! Regions: each has its own control node, and a service belongs to the region of its
//! user's cell.
//!
//! - **Handoff.** When the UE is in a cell of another region (a 1005 to a cell across the
//!   border, or a cancel back from one), the entry goes to that region's control node in a
//!   3050, with any relocation in flight and its timers; the receiver carries on (it sends
//!   the 1006 at the announced time). The 3050 is sent again every [`HANDOFF_RETRY`] until
//!   the 3051 comes. Both nodes command servers of either region: a shadow prepared across
//!   the border, and the 1006 to the source left behind, cross it.
//! - **Relay.** What reaches the region a service has left (the 3033 of a 1006 it sent, a
//!   cell that still reports) is passed on to the region that holds it now, in a 3054 that
//!   keeps the original sender. What reaches the new region before its 3050 does (the
//!   target cell's first reports) waits up to [`HOLD`] for it.
//! - **Liveness.** A node hears the heartbeats of its own region's servers only; it tells
//!   the other regions when it declares one dead or hears it again (3052), and they fail
//!   over or call off their services that use it. What a server must be told when it
//!   comes back (the release of a replaced instance, the abort of a called-off relocation)
//!   goes to its region's node (3053), which orders it before it answers the heartbeat.
//!
//! With one region (the default), none of this is ever used.

use std::collections::VecDeque;
use std::time::Duration;

use edgeshift_proto::{
    HandoffAck, Instant, Message, NodeId, RegionId, RejoinOrder, Relayed, RelocateAction, ServerId,
    ServerStatus, ServiceHandoff, ServiceId, UeId, codec,
};

use super::{ControlNode, Timer};
use crate::event::ControlEvent;
use crate::snapshot::v2;

/// A 3050 not acknowledged goes again after this long.
pub(super) const HANDOFF_RETRY: Duration = Duration::from_millis(500);
/// How long a message about an unknown UE waits for that UE's service to be handed over.
pub(super) const HOLD: Duration = Duration::from_secs(5);
/// At most this many messages wait per UE (the latest are kept)…
const HOLD_PER_UE: usize = 16;
/// …for at most this many UEs.
const HOLD_UES: usize = 4096;
/// A relayed message is passed on at most this many times (a service handed back and
/// forth while the message travels).
const MAX_HOPS: u8 = 4;

impl ControlNode {
    /// Whether the deployment has more than one region.
    pub(super) fn has_regions(&self) -> bool {
        !self.others.is_empty()
    }

    /// The region of a server (of the cells it serves).
    pub(super) fn region_of_server(&self, server: ServerId) -> RegionId {
        self.server_region
            .get(&server)
            .copied()
            .unwrap_or(RegionId(0))
    }

    /// Whether `server` is one of this region's (this node hears its heartbeats).
    pub(super) fn is_own(&self, server: ServerId) -> bool {
        self.region_of_server(server) == self.cfg.region
    }

    /// The region another node holds `msg`'s service in, if this node passed it there (or
    /// a deploy for a cell of another region).
    fn elsewhere(&self, msg: &Message) -> Option<RegionId> {
        if !self.has_regions() {
            return None;
        }
        if let Some(ue) = about_ue(msg) {
            return if self.by_ue.contains_key(&ue) {
                None
            } else {
                self.moved_ue.get(&ue).copied()
            };
        }
        let by_service = |s: &ServiceId| {
            if self.services.contains_key(s) {
                None
            } else {
                self.moved.get(s).map(|m| m.0)
            }
        };
        match msg {
            Message::Deploy(m) => {
                let r = self.cfg.region_of(m.cell);
                (r != self.cfg.region).then_some(r)
            }
            Message::RelocationDone(m) => by_service(&m.service),
            Message::ShadowReady(m) => by_service(&m.service),
            Message::ShadowRefused(m) => by_service(&m.service),
            _ => None,
        }
    }

    /// The UE a message waits for, if it is about a UE this node does not know (yet).
    fn waits_for(&self, msg: &Message) -> Option<UeId> {
        if !self.has_regions() {
            return None;
        }
        about_ue(msg).filter(|ue| !self.by_ue.contains_key(ue))
    }

    /// Passes `msg` on to `region`, or holds it for a handoff, or handles it; then, if it
    /// moved the UE into another region's cell, hands its service over.
    pub(super) fn route(&mut self, now: Instant, from: NodeId, msg: Message, hops: u8) {
        if let Some(region) = self.elsewhere(&msg) {
            self.relay(region, from, &msg, hops);
            return;
        }
        if let Some(ue) = self.waits_for(&msg) {
            if self.held.len() >= HOLD_UES && !self.held.contains_key(&ue) {
                // Reports of UEs without a service (or whose service never comes) must
                // not pile up: what is older than the hold goes, and past that, new UEs.
                self.held.retain(|_, q| {
                    q.back()
                        .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) < HOLD)
                });
                if self.held.len() >= HOLD_UES {
                    return;
                }
            }
            let held = self.held.entry(ue).or_default();
            held.retain(|(at, _, _)| now.saturating_duration_since(*at) < HOLD);
            if held.len() == HOLD_PER_UE {
                held.pop_front();
            }
            held.push_back((now, from, msg));
            return;
        }
        let ue = about_ue(&msg);
        self.dispatch(now, from, msg);
        if let Some(ue) = ue {
            self.follow(now, ue);
        }
    }

    fn relay(&mut self, region: RegionId, origin: NodeId, msg: &Message, hops: u8) {
        if hops >= MAX_HOPS {
            self.emit(ControlEvent::ProtocolViolation {
                from: origin,
                what: format!("{} passed on {hops} times; dropped", msg.name()),
            });
            return;
        }
        match codec::encode(msg) {
            Ok(frame) => self.send(
                NodeId::Control(region),
                Relayed {
                    origin,
                    hops: hops + 1,
                    frame,
                },
            ),
            Err(e) => self.emit(ControlEvent::ProtocolViolation {
                from: origin,
                what: format!("{} cannot be passed on: {e}", msg.name()),
            }),
        }
    }

    /// 3054: handled as if its origin had sent it here.
    pub(super) fn on_relayed(&mut self, now: Instant, from: NodeId, m: Relayed) {
        let inner = match codec::decode_exact(&m.frame) {
            Ok(inner) => inner,
            Err(e) => {
                self.emit(ControlEvent::ProtocolViolation {
                    from,
                    what: format!("relayed frame: {e}"),
                });
                return;
            }
        };
        let me = self.id_of();
        if matches!(inner, Message::Relayed(_))
            || m.origin.is_control()
            || !edgeshift_proto::may_send(m.origin, me, &inner)
        {
            self.emit(ControlEvent::ProtocolViolation {
                from,
                what: format!("relayed {}", edgeshift_proto::refusal(m.origin, &inner)),
            });
            return;
        }
        self.route(now, m.origin, inner, m.hops);
    }

    /// The UE's service goes to the region of its cell, if that is not this one.
    fn follow(&mut self, now: Instant, ue: UeId) {
        let Some(&service) = self.by_ue.get(&ue) else {
            return;
        };
        let Some(e) = self.services.get(&service) else {
            return;
        };
        let region = self.cfg.region_of(e.cell);
        if region != self.cfg.region {
            self.hand_off(now, service, region);
        }
    }

    /// Sends the service's entry to `to` and forgets it here (but for where it went).
    fn hand_off(&mut self, now: Instant, service: ServiceId, to: RegionId) {
        let Some(rec) = self.record(service) else {
            return;
        };
        let Some(e) = self.services.remove(&service) else {
            return;
        };
        self.by_host.remove(&(e.host, service));
        if self.by_ue.get(&e.ue) == Some(&service) {
            self.by_ue.remove(&e.ue);
        }
        self.timers.cancel(Timer::Trigger(service));
        self.timers.cancel(Timer::ShadowExpiry(service));
        self.timers.cancel_range(Timer::jit_starts(service));
        // A replaced instance on one of this region's servers is still released when the
        // server is back, now with the host the service had when it left.
        let replaced: Vec<ServerId> = self
            .superseded
            .iter()
            .filter(|(_, s)| *s == service)
            .map(|(server, _)| *server)
            .collect();
        for server in replaced {
            self.superseded.remove(&(server, service));
            let release = RelocateAction::Release {
                host: e.host,
                epoch: e.epoch,
            };
            self.rejoin_orders
                .entry(server)
                .or_default()
                .push((service, release));
        }
        let record = match postcard::to_extend(&rec, Vec::new()) {
            Ok(r) => r,
            Err(err) => {
                // Cannot happen for a record this crate made; keep the service here.
                self.emit(ControlEvent::ProtocolViolation {
                    from: self.id_of(),
                    what: format!("{service} cannot be handed over: {err}"),
                });
                self.adopt(rec);
                return;
            }
        };
        let generation = e.generation + 1;
        let msg = ServiceHandoff {
            service,
            ue: e.ue,
            generation,
            record,
        };
        self.moved.insert(service, (to, generation, e.ue));
        self.moved_ue.insert(e.ue, to);
        self.outgoing.insert(service, (to, msg.clone()));
        self.timers
            .set(Timer::Handoff(service), now + HANDOFF_RETRY);
        self.send(NodeId::Control(to), msg);
        self.emit(ControlEvent::ServiceHandedOff {
            service,
            ue: e.ue,
            to,
        });
    }

    /// The handoff of `service` was not acknowledged yet: again.
    pub(super) fn on_handoff_retry(&mut self, now: Instant, service: ServiceId) {
        let Some((to, msg)) = self.outgoing.get(&service).cloned() else {
            return;
        };
        self.timers
            .set(Timer::Handoff(service), now + HANDOFF_RETRY);
        self.send(NodeId::Control(to), msg);
    }

    /// 3051.
    pub(super) fn on_handoff_ack(&mut self, m: HandoffAck) {
        if self
            .outgoing
            .get(&m.service)
            .is_some_and(|(_, h)| h.generation == m.generation)
        {
            self.outgoing.remove(&m.service);
            self.timers.cancel(Timer::Handoff(m.service));
        }
    }

    /// 3050: the service is this region's now (unless this node saw a later handoff of it).
    pub(super) fn on_handoff(&mut self, now: Instant, from: NodeId, m: ServiceHandoff) {
        let NodeId::Control(region) = from else {
            return;
        };
        self.send(
            from,
            HandoffAck {
                service: m.service,
                generation: m.generation,
            },
        );
        let known = self
            .services
            .get(&m.service)
            .map(|e| e.generation)
            .or_else(|| self.moved.get(&m.service).map(|(_, g, _)| *g))
            .unwrap_or(0);
        if m.generation <= known {
            return;
        }
        let rec: v2::Service = match postcard::from_bytes(&m.record) {
            Ok(rec) => rec,
            Err(e) => {
                self.emit(ControlEvent::ProtocolViolation {
                    from,
                    what: format!("3050 for {}: corrupt record ({e})", m.service),
                });
                return;
            }
        };
        if rec.base.id != m.service.0 || rec.base.ue != m.ue.0 {
            self.emit(ControlEvent::ProtocolViolation {
                from,
                what: format!("3050 for {}: the record is another service's", m.service),
            });
            return;
        }
        // Ours now: whatever this node still held of an earlier stay goes.
        if self.outgoing.remove(&m.service).is_some() {
            self.timers.cancel(Timer::Handoff(m.service));
        }
        self.moved.remove(&m.service);
        self.moved_ue.remove(&m.ue);
        if let Some(old) = self.services.remove(&m.service) {
            self.by_host.remove(&(old.host, m.service));
        }
        let service = self.adopt(rec);
        if let Some(e) = self.services.get_mut(&service) {
            e.generation = m.generation;
        }
        self.emit(ControlEvent::ServiceAdopted {
            service,
            ue: m.ue,
            from: region,
        });
        // Servers this node knows to be dead, which the sender may not have known of.
        let Some(e) = self.services.get(&service) else {
            return;
        };
        let mut used: Vec<ServerId> = vec![e.host];
        used.extend(e.relocation.map(|r| r.target()));
        used.extend(e.shadows.iter().copied());
        used.extend(e.planned.iter().copied());
        used.retain(|s| self.is_down(*s));
        used.sort_unstable();
        used.dedup();
        for server in used {
            self.lose_server(now, service, server);
        }
        // What came for the UE before its service did.
        let held: VecDeque<_> = self.held.remove(&m.ue).unwrap_or_default();
        for (at, origin, msg) in held {
            if now.saturating_duration_since(at) < HOLD {
                self.route(now, origin, msg, 0);
            }
        }
        self.follow(now, m.ue);
    }

    /// Tells the other regions that one of this region's servers was declared dead or is
    /// heard again.
    pub(super) fn announce(&mut self, server: ServerId, down: bool) {
        let incarnation = self.peers.get(&server).map_or(0, |p| p.incarnation);
        for r in self.others.clone() {
            self.send(
                NodeId::Control(r),
                ServerStatus {
                    server,
                    incarnation,
                    down,
                },
            );
        }
    }

    /// 3052 about another region's server.
    pub(super) fn on_server_status(&mut self, now: Instant, m: ServerStatus) {
        if self.is_own(m.server) {
            return;
        }
        let known = self.peers.get(&m.server).copied();
        if m.down {
            if known.is_none() {
                self.peers.insert(
                    m.server,
                    super::liveness::Peer {
                        incarnation: m.incarnation,
                        down: false,
                    },
                );
            }
            self.server_down(now, m.server);
            return;
        }
        let restarted = known.is_some_and(|p| p.incarnation != m.incarnation);
        let was_down = known.is_some_and(|p| p.down);
        self.peers.insert(
            m.server,
            super::liveness::Peer {
                incarnation: m.incarnation,
                down: false,
            },
        );
        if was_down {
            self.rejoin(m.server, restarted);
        }
    }

    /// What `server` must be told when it comes back: kept here if it is one of this
    /// region's servers, else sent to its region's node.
    pub(super) fn on_rejoin(
        &mut self,
        server: ServerId,
        service: ServiceId,
        action: RelocateAction,
    ) {
        if self.is_own(server) {
            if self.is_down(server) {
                let orders = self.rejoin_orders.entry(server).or_default();
                if let RelocateAction::Resume { epoch } = action {
                    // It serves on after all: a release of an instance replaced under this
                    // epoch or before would drop the only copy (also when this resume is
                    // queued already, the release after it). A later release stands.
                    orders.retain(|(s, a)| {
                        *s != service
                            || !matches!(a, RelocateAction::Release { epoch: r, .. } if *r <= epoch)
                    });
                }
                if !orders.contains(&(service, action.clone())) {
                    orders.push((service, action));
                }
            } else {
                self.order(server, service, action);
            }
            return;
        }
        let region = self.region_of_server(server);
        self.send(
            NodeId::Control(region),
            RejoinOrder {
                server,
                service,
                action,
            },
        );
    }

    /// 3053 from another region.
    pub(super) fn on_rejoin_order(&mut self, m: RejoinOrder) {
        if self.is_own(m.server) {
            self.on_rejoin(m.server, m.service, m.action);
        }
    }
}

/// The UE a cell's report is about, for the reports that find a service by its UE (and may
/// move it to the UE's cell).
fn about_ue(msg: &Message) -> Option<UeId> {
    match msg {
        Message::HandoverPrediction(m) => Some(m.ue),
        Message::HandoverExecution(m) => Some(m.ue),
        Message::HandoverCancel(m) => Some(m.ue),
        Message::RouteQuery(m) => Some(m.ue),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeshift_proto::CellId;

    use super::*;
    use crate::config::{ControlConfig, Strategy};
    use crate::node::liveness::Peer;

    #[test]
    fn a_resume_withdraws_every_queued_release_even_when_it_is_queued_already() {
        let topology = BTreeMap::from([(CellId(1), ServerId(1))]);
        let cfg = ControlConfig::new(Strategy::Shadow, topology);
        let mut n = ControlNode::new(cfg, Instant::ZERO);
        n.peers.insert(
            ServerId(1),
            Peer {
                incarnation: 1,
                down: true,
            },
        );
        let (server, service) = (ServerId(1), ServiceId(1));
        let resume = RelocateAction::Resume { epoch: 3 };
        let release = RelocateAction::Release {
            host: ServerId(2),
            epoch: 3,
        };
        n.on_rejoin(server, service, resume.clone());
        n.on_rejoin(server, service, release);
        n.on_rejoin(server, service, resume.clone());
        assert_eq!(n.rejoin_orders[&server], vec![(service, resume.clone())]);
        // A release under a later epoch stands.
        let later = RelocateAction::Release {
            host: ServerId(2),
            epoch: 5,
        };
        n.on_rejoin(server, service, later.clone());
        n.on_rejoin(server, service, resume.clone());
        assert_eq!(
            n.rejoin_orders[&server],
            vec![(service, resume), (service, later)]
        );
    }
}
