//! What the ME servers held over time: live instances and shadows per server, once per
//! second.
//!
//! The simulator reads it from the roles' state ([`LoadSample`]s it takes itself); a live
//! run has only its journal, so [`LoadTracker`] rebuilds the same samples from the servers'
//! events: feed it every [`Observation`] in time order, then take
//! [`LoadTracker::finish`]. What no event reports stays counted: a shadow dropped by a
//! rejected check, or what a server held before it was killed and restarted, until the
//! next event of that service there (a promotion elsewhere ends the dead server's live
//! instance).
//!
//! ```
//! use edgeshift_edge::EdgeEvent;
//! use edgeshift_proto::{Instant, ServerId, ServiceId};
//! use edgeshift_record::{LoadTracker, Observation};
//!
//! let mut load = LoadTracker::new(Instant::ZERO, [ServerId(1), ServerId(2)]);
//! let service = ServiceId(1);
//! load.observe(&Observation::Edge {
//!     at: Instant::from_millis(10),
//!     server: ServerId(1),
//!     event: EdgeEvent::Instantiated { service },
//! });
//! let samples = load.finish(Instant::from_millis(2_500));
//! assert_eq!(samples.len(), 3); // seconds 0, 1, 2
//! assert_eq!(samples[1].live, vec![1, 0]);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use edgeshift_edge::EdgeEvent;
use edgeshift_proto::{Instant, ServerId, ServiceId};

use crate::Observation;

/// Seconds sampled at most.
const MAX_SECONDS: u64 = 86_400;

/// What the servers held at one moment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoadSample {
    /// Time since the start of the run (s).
    pub t_s: u64,
    /// Live instances per server, in server order.
    pub live: Vec<u32>,
    /// Shadows per server, in server order.
    pub shadows: Vec<u32>,
}

/// Live instances and shadows per server, rebuilt from the servers' events.
#[derive(Debug)]
pub struct LoadTracker {
    origin: Instant,
    /// Server order of the samples.
    servers: Vec<ServerId>,
    live: BTreeMap<ServerId, BTreeSet<ServiceId>>,
    shadows: BTreeMap<ServerId, BTreeSet<ServiceId>>,
    samples: Vec<LoadSample>,
}

impl LoadTracker {
    /// A tracker for a run that starts at `origin`, sampling `servers` in this order
    /// (events of other servers are ignored).
    pub fn new(origin: Instant, servers: impl IntoIterator<Item = ServerId>) -> Self {
        Self {
            origin,
            servers: servers.into_iter().collect(),
            live: BTreeMap::new(),
            shadows: BTreeMap::new(),
            samples: Vec::new(),
        }
    }

    /// Takes one observation; only server events change what is held.
    pub fn observe(&mut self, o: &Observation) {
        let Observation::Edge { at, server, event } = o else {
            return;
        };
        self.sample_until(*at);
        let (live, shadows) = (
            self.live.entry(*server).or_default(),
            self.shadows.entry(*server).or_default(),
        );
        match event {
            EdgeEvent::Instantiated { service } => {
                live.insert(*service);
            }
            // A shadow that an early sync input or 2004 created before the first 1004
            // reports no ShadowCreated: its first replayed input or its readiness shows it.
            EdgeEvent::ShadowCreated { service, .. }
            | EdgeEvent::ShadowReady { service, .. }
            | EdgeEvent::Applied {
                service,
                live: false,
                ..
            } => {
                shadows.insert(*service);
            }
            EdgeEvent::ShadowDiscarded { service, .. }
            | EdgeEvent::ShadowRefused { service, .. } => {
                shadows.remove(service);
            }
            EdgeEvent::Activated { service, .. } => {
                shadows.remove(service);
                live.insert(*service);
            }
            EdgeEvent::Promoted { service, from, .. } => {
                shadows.remove(service);
                live.insert(*service);
                // The dead server says nothing more: its instance is gone.
                if let Some(l) = self.live.get_mut(from) {
                    l.remove(service);
                }
            }
            EdgeEvent::RelocatedOut { service, .. } | EdgeEvent::Released { service, .. } => {
                live.remove(service);
            }
            _ => {}
        }
    }

    /// The samples of every whole second up to `end`.
    #[must_use]
    pub fn finish(mut self, end: Instant) -> Vec<LoadSample> {
        self.sample_until(end);
        self.samples
    }

    /// One sample for each whole second from the last one up to `at`, with what is held
    /// now (nothing changed in between).
    fn sample_until(&mut self, at: Instant) {
        let t_s = at.saturating_duration_since(self.origin).as_secs();
        let next = self.samples.last().map_or(0, |s| s.t_s + 1);
        // A clock gone wild in a journal must not fill the memory: a day at most.
        for t_s in next..=t_s.min(MAX_SECONDS) {
            let count = |m: &BTreeMap<ServerId, BTreeSet<ServiceId>>, s: &ServerId| {
                m.get(s)
                    .map_or(0, |x| u32::try_from(x.len()).unwrap_or(u32::MAX))
            };
            let live = self.servers.iter().map(|s| count(&self.live, s)).collect();
            let shadows = self
                .servers
                .iter()
                .map(|s| count(&self.shadows, s))
                .collect();
            self.samples.push(LoadSample { t_s, live, shadows });
        }
    }
}
