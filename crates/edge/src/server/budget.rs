//! What a server holds: the state bytes of its live instances and shadows against its
//! memory budget (a shadow that would not fit is refused with a 3037 to the control node
//! and the source), and the code cache, bounded in bytes with the least recently used code
//! that no instance here runs forgotten first.

use std::collections::BTreeSet;

use edgeshift_proto::{ServerId, ServiceId, ShadowRefused};

use super::EdgeServer;
use super::shadow::ShadowState;
use super::source::Source;
use crate::event::EdgeEvent;

impl EdgeServer {
    /// State bytes held now, but for `except`'s shadow (about to be replaced).
    fn held_bytes(&self, except: ServiceId) -> u64 {
        let live: u64 = self.live.values().map(|l| l.inst.footprint()).sum();
        let shadows: u64 = self
            .shadows
            .iter()
            .filter(|(s, _)| **s != except)
            .map(|(_, sh)| match &sh.state {
                ShadowState::Ready(inst) => inst.footprint(),
                ShadowState::Receiving(r) => r.total_len,
                ShadowState::Awaiting { .. } | ShadowState::Failed { .. } => 0,
            })
            .sum();
        live + shadows
    }

    /// Whether a shadow of `bytes` for `service` fits the budget; if not, it is refused:
    /// the shadow goes (its early traffic back to the source) and both are told.
    pub(super) fn admit_shadow(
        &mut self,
        service: ServiceId,
        source: ServerId,
        bytes: u64,
    ) -> bool {
        let Some(budget) = self.cfg.memory_budget else {
            return true;
        };
        let held = self.held_bytes(service);
        if held.saturating_add(bytes) <= budget {
            return true;
        }
        let reason =
            format!("a shadow of {bytes} bytes does not fit: {held} of {budget} bytes are held");
        let now = self.now;
        self.drop_shadow(now, service);
        let m = ShadowRefused {
            service,
            server: self.cfg.id,
            reason: reason.clone(),
        };
        self.send(source, m.clone());
        self.send(self.commander(service), m);
        self.events
            .push_back(EdgeEvent::ShadowRefused { service, reason });
        false
    }

    /// 3037 from a target: stop sending it this service; a relocation onto it fails.
    pub(super) fn on_shadow_refused(&mut self, m: ShadowRefused) {
        let Some(live) = self.live.get_mut(&m.service) else {
            return;
        };
        live.links.remove(&m.server);
        self.planned.remove(&(m.service, m.server));
        let relocating_there = match &live.state {
            Source::Frozen(f) => f.target == m.server,
            Source::Precopy { target, .. } => *target == m.server,
            Source::Serving => false,
        };
        if relocating_there {
            if let Some(live) = self.live.get_mut(&m.service)
                && matches!(live.state, Source::Precopy { .. })
            {
                live.state = Source::Serving;
            }
            self.abandon(m.service, m.reason);
        }
    }

    /// Notes a use of code `hash` and forgets old code beyond the cache's size.
    pub(super) fn touch_code(&mut self, hash: u128) {
        self.code_clock += 1;
        self.code_used.insert(hash, self.code_clock);
        let mut total: u64 = self.code.values().map(|(_, b)| b.len() as u64).sum();
        if total <= self.cfg.code_cache_bytes {
            return;
        }
        let running: BTreeSet<u128> = self
            .live
            .values()
            .map(|l| l.inst.meta.code_hash)
            .chain(self.shadows.values().filter_map(|sh| match &sh.state {
                ShadowState::Ready(inst) => Some(inst.meta.code_hash),
                ShadowState::Receiving(r) => Some(r.meta.code_hash),
                ShadowState::Awaiting { .. } | ShadowState::Failed { .. } => None,
            }))
            .collect();
        let mut by_age: Vec<(u64, u128)> = self
            .code_used
            .iter()
            .filter(|(h, _)| !running.contains(h) && **h != hash)
            .map(|(h, t)| (*t, *h))
            .collect();
        by_age.sort_unstable();
        for (_, h) in by_age {
            if total <= self.cfg.code_cache_bytes {
                break;
            }
            if let Some((_, bytes)) = self.code.remove(&h) {
                total -= bytes.len() as u64;
            }
            self.code_used.remove(&h);
            self.code_sent.retain(|(_, c)| *c != h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Bench;

    #[test]
    fn the_code_cache_forgets_the_oldest_code_nothing_runs() {
        // Server 1 runs the deployed service's code; three more codes of 100 bytes each
        // come and go with a 250-byte cache (beyond the running one's size).
        let mut b = Bench::deployed(1, |c| c.code_cache_bytes = 0);
        let s = b.server(1);
        let running: Vec<u128> = s.code.keys().copied().collect();
        assert_eq!(running.len(), 1);
        let base: u64 = s.code.values().map(|(_, b)| b.len() as u64).sum();
        s.cfg.code_cache_bytes = base + 250;
        for h in [1u128, 2, 3] {
            s.code.insert(h, ("mem".into(), vec![0; 100]));
            s.code_sent.insert((edgeshift_proto::ServerId(9), h));
            s.touch_code(h);
        }
        // 1 went (the oldest), 2 and 3 stay, and the running code was never a candidate.
        assert!(!s.code.contains_key(&1));
        assert!(s.code.contains_key(&2) && s.code.contains_key(&3));
        assert!(s.code.contains_key(&running[0]));
        assert!(!s.code_sent.iter().any(|(_, h)| *h == 1));
    }
}
