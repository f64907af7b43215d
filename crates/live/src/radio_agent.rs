//! The RAN agent's radio: moves each UE along its scenario route and, every L1 period,
//! hands a measurement report of all cells to the local cell that serves the UE.
//!
//! A UE's route clock starts when one of this agent's cells first sees it attach, so UEs
//! may join at any time. With several RAN agents each keeps its own route clock; run the
//! cells a UE crosses in one agent (or start the agents together).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeshift_proto::{CellId, Instant, NodeId, UeId};
use edgeshift_radio::measure::UeMeasurer;
use edgeshift_ran::RanEvent;
use edgeshift_world::{Command, Nearby, Node, NodeEvent, Scenario};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::warn;

use crate::host::{Agent, Nodes};

/// Drives the local cells' measurements.
pub struct RadioAgent {
    scenario: Arc<Scenario>,
    cells: Vec<CellId>,
    period: Duration,
    next: Instant,
    started: BTreeMap<UeId, Instant>,
    measurers: BTreeMap<UeId, UeMeasurer>,
    /// The cells each UE measures.
    near: Nearby,
    rng: ChaCha8Rng,
}

impl std::fmt::Debug for RadioAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadioAgent")
            .field("cells", &self.cells)
            .finish_non_exhaustive()
    }
}

impl RadioAgent {
    /// The radio of `cells`, first measuring one period after `now`.
    #[must_use]
    pub fn new(scenario: Arc<Scenario>, cells: Vec<CellId>, seed: u64, now: Instant) -> Self {
        let period = Duration::from_millis(scenario.radio.meas_period_ms.max(1));
        let near = scenario.nearby();
        Self {
            scenario,
            cells,
            period,
            next: now + period,
            started: BTreeMap::new(),
            measurers: BTreeMap::new(),
            near,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Agent for RadioAgent {
    fn next_tick(&self) -> Option<Instant> {
        Some(self.next)
    }

    fn tick(&mut self, now: Instant, nodes: &mut Nodes) {
        while self.next <= now {
            self.next += self.period;
        }
        let scenario = self.scenario.clone();
        for u in &scenario.ues {
            let ue = UeId(u.id);
            let serving = self.cells.iter().copied().find(
                |c| matches!(nodes.get(NodeId::Cell(*c)), Some(Node::Cell(s)) if s.serves(ue)),
            );
            let Some(cell) = serving else { continue };
            let start = *self.started.entry(ue).or_insert(now);
            let t = now.saturating_duration_since(start).as_secs_f64();
            let pos = u.position(t);
            let m = self.measurers.entry(ue).or_default();
            let rsrp = scenario.measure(&self.near, m, pos, Some(cell), &mut self.rng);
            let Some(report) = edgeshift_ran::measurement_report(ue, cell, &rsrp, pos) else {
                continue;
            };
            if let Err(e) = nodes.command(now, NodeId::Cell(cell), Command::Measurement(report)) {
                warn!(error = %e, "measurement report not delivered");
            }
        }
    }

    fn on_event(&mut self, now: Instant, _node: NodeId, ev: &NodeEvent) {
        if let NodeEvent::Ran(RanEvent::UeAttached { ue, from: None }) = ev {
            self.started.entry(*ue).or_insert(now);
        }
    }
}
