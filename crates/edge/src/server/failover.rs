//! The control node's decisions after a fault: promote a shadow whose source died,
//! release an instance that was replaced, resume a source whose relocation was called
//! off, abort a relocation whose 2005 never reached the source.
//!
//! Each is a 1006 action carrying the route epoch it is about, and each answers the
//! control node with a 3033 where the control node waits for one: a promote or an abort
//! says whether this server's instance is live.

use edgeshift_proto::{Instant, RelocationDone, ServerId, ServiceId};

use super::EdgeServer;
use super::jobs::Waiting;
use super::shadow::{ReadyShadow, ShadowState};
use super::source::{Live, Source};
use super::traffic::Moved;
use crate::event::EdgeEvent;

impl EdgeServer {
    /// Promote: the shadow becomes the live instance as it stands.
    pub(super) fn promote(&mut self, service: ServiceId, epoch: u64) {
        if self.promote_tentative(service, epoch) {
            return;
        }
        if self.live.contains_key(&service) {
            // Already live (the 2004 got here first, or a repeated promote).
            self.report_done(service, self.cfg.id, self.cfg.id, epoch, true);
            return;
        }
        // A promotion the node aborted (one that waited here, or came late) is past: a
        // shadow here now may be a later one, of a state that is not the one it meant.
        let called_off = self.is_called_off(service, epoch);
        let ready = self
            .shadows
            .get(&service)
            .is_some_and(|sh| matches!(sh.state, ShadowState::Ready(_)));
        if called_off || !ready {
            // Said once, for good: the node ends this relocation on the answer, so a 2004
            // of it still on its way (from a source stopped while frozen) must not
            // activate a copy here later, beside the instance the source serves on with.
            self.call_off(service, epoch);
            let from = self.shadows.get(&service).map_or(self.cfg.id, |s| s.source);
            self.report_done(service, from, self.cfg.id, epoch, false);
            return;
        }
        let Some(ReadyShadow {
            source, inst, held, ..
        }) = self.take_ready(service)
        else {
            return;
        };
        let (last_seq, digest) = (inst.last_seq, inst.digest);
        let mut live = Live::new(inst, epoch);
        live.promoted = true;
        self.live.insert(service, live);
        self.moved.remove(&service);
        self.unflushed.insert(service);
        self.events.push_back(EdgeEvent::Promoted {
            service,
            from: source,
            last_seq,
            digest,
            epoch,
        });
        self.report_done(service, source, self.cfg.id, epoch, true);
        self.release_held(held);
        self.load_report(Some(service));
    }

    /// Release: an instance here was replaced by one at `host` under `epoch`.
    pub(super) fn release(&mut self, now: Instant, service: ServiceId, host: ServerId, epoch: u64) {
        if host == self.cfg.id {
            return;
        }
        if self.live.get(&service).is_some_and(|l| l.epoch < epoch) {
            if self.drop_tentative(service, host, "replaced".into()) {
                return;
            }
            let Some(live) = self.live.remove(&service) else {
                return;
            };
            self.moved.insert(service, Moved::to(host));
            self.forget_adoptions(service, None);
            // Frozen for this very relocation (its 2005 was lost), the instance holds the
            // state the new host went live with: it stays as a shadow, as after a 2005.
            // (After a promotion under the same epoch it may be ahead of the promoted
            // shadow: then the control node never adopts it, and it is discarded as an
            // unplanned shadow.) Any other replaced instance may hold a state nobody else
            // has.
            let mut kept = None;
            if let Source::Frozen(f) = live.state {
                if f.target == host && f.epoch == epoch {
                    kept = Some(live.inst);
                }
                // What went on to the target too: the new host may be the target after a
                // restart that lost it (a copy it has is answered again, not applied).
                self.forward_held(host, f.traffic());
            }
            if let Some(held) = self.fenced_held.remove(&service) {
                self.forward_held(host, held);
            }
            // Applied unseen by an instance that was replaced: gone with it.
            self.fenced_results.remove(&service);
            self.events
                .push_back(EdgeEvent::Released { service, to: host });
            if let Some(inst) = kept {
                self.keep_as_shadow(now, service, host, inst);
            }
            self.load_report(Some(service));
        }
        if self
            .shadows
            .get(&service)
            .is_some_and(|sh| sh.source != host)
        {
            // A shadow of the replaced instance: its sync has stopped for good.
            self.drop_shadow(now, service);
        }
    }

    /// Resume: the relocation under `epoch` is called off (its target went silent). The
    /// control node cannot tell whether the target went live, so the answer says: a 3033
    /// `ok` to the target if this server already handed the instance over (its 2005 came),
    /// else one not `ok` once the instance here serves again.
    pub(super) fn resume(&mut self, service: ServiceId, epoch: u64) {
        let me = self.cfg.id;
        // A 1006 for this relocation still waiting for the lease or for a job never starts:
        // its 2004 would reach a target that has been told the relocation is off. One for
        // an older relocation is as stale: the node has moved past it (a failover that
        // found no shadow sends the `Resume` under the service's latest epoch).
        let mut dropped = None;
        self.deferred.retain(|d| {
            let this = d.1 == service && d.4 <= epoch;
            if this {
                dropped = Some(d.2);
            }
            !this
        });
        if let Some(q) = self.waiting.get_mut(&service) {
            q.retain(|(_, w)| match w {
                Waiting::Relocation(_, target, _, e) if *e <= epoch => {
                    dropped = Some(*target);
                    false
                }
                _ => true,
            });
        }
        let Some(live) = self.live.get_mut(&service) else {
            if let Some(to) = self.moved.get(&service).map(|m| m.to) {
                self.report_done(service, me, to, epoch, true);
            }
            return;
        };
        let target = match live.state {
            Source::Frozen(ref f) if f.epoch == epoch => f.target,
            Source::Precopy {
                target, epoch: e, ..
            } if e == epoch => {
                live.state = Source::Serving;
                live.links.remove(&target);
                self.report_done(service, me, target, epoch, false);
                return;
            }
            Source::Serving => {
                // Serving, whether or not its 1006 ever came: the control node waits for
                // this answer to settle the relocation (the target it names is its own
                // if it never learnt one).
                let target = dropped.unwrap_or(me);
                self.report_done(service, me, target, epoch, false);
                return;
            }
            // Not under this relocation (it gave up on its own and said so).
            Source::Frozen(_) | Source::Precopy { .. } => return,
        };
        if let Some(f) = self.thaw(service, "the control node called the relocation off".into()) {
            self.release_held(f.traffic());
        }
        self.report_done(service, me, target, epoch, false);
    }

    /// Abort: the source gave up on its 2004s; tell the control node whether the shadow
    /// here went live, and drop it if it did not.
    pub(super) fn abort(&mut self, now: Instant, service: ServiceId, epoch: u64) {
        // A tentative instance that has not committed (no 2004 came, or one that still
        // waits for a catch-up, a job or the lease): the source serves, and gets back what
        // this instance applied.
        if let Some(source) = self.tentative_source(service)
            && self.live.get(&service).is_some_and(|l| l.epoch <= epoch)
        {
            self.call_off(service, epoch);
            self.drop_tentative(service, source, "the control node aborted".into());
            self.report_done(service, source, self.cfg.id, epoch, false);
            return;
        }
        if self.live.get(&service).is_some_and(|l| l.epoch == epoch) {
            self.report_done(service, self.cfg.id, self.cfg.id, epoch, true);
            return;
        }
        self.call_off(service, epoch);
        // A promotion of it waiting for the lease goes too: a later shadow here is not
        // the state it was for.
        if self
            .deferred_promotions
            .get(&service)
            .is_some_and(|e| *e <= epoch)
        {
            self.deferred_promotions.remove(&service);
        }
        let from = self.shadows.get(&service).map_or(self.cfg.id, |s| s.source);
        self.drop_shadow(now, service);
        self.report_done(service, from, self.cfg.id, epoch, false);
    }

    /// The relocations of `service` up to `epoch` are off here for good: none goes live.
    fn call_off(&mut self, service: ServiceId, epoch: u64) {
        let off = self.called_off.entry(service).or_insert(epoch);
        *off = (*off).max(epoch);
    }

    /// Whether the relocation of `service` under `epoch` was called off here.
    pub(super) fn is_called_off(&self, service: ServiceId, epoch: u64) -> bool {
        self.called_off.get(&service).is_some_and(|e| epoch <= *e)
    }

    /// 3033 to the control node: the relocation of `service` from `from` to `to` under
    /// `epoch` went live at `to` (`ok`) or did not.
    pub(super) fn report_done(
        &mut self,
        service: ServiceId,
        from: ServerId,
        to: ServerId,
        epoch: u64,
        ok: bool,
    ) {
        self.send(
            self.commander(service),
            RelocationDone {
                service,
                from,
                to,
                ok,
                epoch,
            },
        );
    }
}
