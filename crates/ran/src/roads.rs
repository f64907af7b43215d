//! The road predictor: the Kalman track's position and heading matched to a road, and the
//! roads ahead walked through the radio map.
//!
//! A vehicle follows its road to the next crossing and then takes one of the roads that
//! leave it. [`RoadPredictor`] walks every such path up to its horizon (at the vehicle's
//! speed, branching at crossings with the turn shares this cell has seen), computes the
//! cells' mean RSRP along it from the path-loss map plus the shadowing measured now
//! (fading with the distance, as in the Kalman predictor), and finds where the A3
//! condition would hold for the time to trigger. Each path votes for its first target
//! with its probability. A straight road predicts its next cell as soon as the vehicle is
//! on it, seconds before the radio shows the neighbour; a crossing spreads the vote over
//! the turns until the vehicle has taken one.
//!
//! Its candidates are merged with the trend predictor's (which sees the next second
//! better), with the earlier ETA. Off the roads it is the Kalman predictor; while the A3
//! condition already holds, the trend predictor alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeshift_proto::{Candidate, CellId, UeId};
use edgeshift_radio::roads::RoadNet;

use crate::config::PredictorConfig;
use crate::kalman::RadioMap;
use crate::predict::{self, Prediction};
use crate::predictor::{KalmanPredictor, Predictor, TrendPredictor, UeView};

/// Below this speed (m/s) the heading means little: the road is the one last matched.
const MOVING: f64 = 1.5;
/// Slowest speed the walk assumes (m/s): a vehicle waiting at a light moves on.
const MIN_SPEED: f64 = 4.0;
/// Distance between the points evaluated along a path (m).
const STEP_M: f64 = 4.0;
/// Paths less likely than this are not followed.
const MIN_PROB: f64 = 0.03;
/// Crossings a path goes through at most.
const MAX_TURNS: usize = 4;
/// Cells farther than this from the UE, beyond the distance it travels, are not evaluated.
const CELL_RANGE_M: f64 = 900.0;
/// Weight of the uniform prior over the turns at a crossing, in observed turns.
const PRIOR_TURNS: f64 = 1.0;

/// The Kalman predictor with the roads ahead (see the module docs).
#[derive(Debug)]
pub struct RoadPredictor {
    trend: TrendPredictor,
    kalman: KalmanPredictor,
    horizon: Duration,
    map: RadioMap,
    net: Arc<RoadNet>,
    /// Turns this cell saw: (from road, to road) → count.
    turns: BTreeMap<(usize, usize), u32>,
    /// The road each UE was last matched to.
    on: BTreeMap<UeId, usize>,
}

impl RoadPredictor {
    /// With the settings of `cfg`, the radio map and the road network.
    #[must_use]
    pub fn new(cfg: PredictorConfig, map: RadioMap, net: Arc<RoadNet>) -> Self {
        Self {
            horizon: cfg.horizon,
            trend: TrendPredictor::new(cfg.clone()),
            kalman: KalmanPredictor::new(cfg, map.clone()),
            map,
            net,
            turns: BTreeMap::new(),
            on: BTreeMap::new(),
        }
    }

    /// The road `ue` is on and how far along, keeping the turn it took since last time.
    fn locate(&mut self, ue: &UeView<'_>, pos: [f64; 2], v: [f64; 2]) -> Option<(usize, f64)> {
        let speed = v[0].hypot(v[1]);
        let at = if speed >= MOVING {
            let at = self.net.locate(pos, Some([v[0] / speed, v[1] / speed]))?;
            (at.road, at.along)
        } else {
            // Standing (at a light): still on the road it was on.
            let road = *self.on.get(&ue.ue)?;
            (road, self.net.road(road)?.nearest(pos, None)?.0)
        };
        if let Some(prev) = self.on.insert(ue.ue, at.0)
            && prev != at.0
            && self.net.next(prev).contains(&at.0)
        {
            let n = self.turns.entry((prev, at.0)).or_default();
            *n = n.saturating_add(1);
        }
        Some(at)
    }

    /// The shares of the turns at the end of `road`: what this cell saw, over a uniform
    /// prior.
    fn turn_shares(&self, road: usize) -> Vec<(usize, f64)> {
        let next = self.net.next(road);
        let counts: Vec<f64> = next
            .iter()
            .map(|n| f64::from(self.turns.get(&(road, *n)).copied().unwrap_or(0)) + PRIOR_TURNS)
            .collect();
        let total: f64 = counts.iter().sum();
        next.iter()
            .zip(counts)
            .map(|(n, c)| (*n, c / total))
            .collect()
    }
}

/// A target's share of the paths, and their times to it (probability-weighted sums).
struct Vote {
    cell: CellId,
    prob: f64,
    t: f64,
    early: f64,
}

/// A path being walked.
struct Branch {
    road: usize,
    along: f64,
    /// Distance travelled from the UE (m).
    travelled: f64,
    prob: f64,
    turns: usize,
    /// The neighbour whose A3 condition holds, and since which distance.
    since: Option<(CellId, f64)>,
}

impl Predictor for RoadPredictor {
    fn predict(&mut self, ue: &UeView<'_>) -> Option<Prediction> {
        let (Some(track), Some(last)) = (ue.track, ue.last) else {
            return self.trend.predict(ue);
        };
        let Some(pos) = last.position else {
            return self.trend.predict(ue);
        };
        let v = track.velocity();
        let Some((road, along)) = self.locate(ue, pos, v) else {
            return self.kalman.predict(ue);
        };
        let near = self.trend.predict(ue);
        if !ue.a3_since.is_empty() {
            return near;
        }
        let speed = v[0].hypot(v[1]).max(MIN_SPEED);
        let reach = speed * self.horizon.as_secs_f64();
        let ttt_m = ue.time_to_trigger.as_secs_f64() * speed;
        // Every cell within reach: the measured ones carry the shadowing measured now.
        let measured = |c: CellId| {
            if c == ue.serving {
                Some(last.serving_dbm)
            } else {
                last.neighbours.iter().find(|n| n.0 == c).map(|n| n.1)
            }
        };
        let cells: Vec<(CellId, [f64; 2], f64)> = self
            .map
            .sites
            .iter()
            .filter(|(c, at)| {
                *c == ue.serving || (at[0] - pos[0]).hypot(at[1] - pos[1]) <= reach + CELL_RANGE_M
            })
            .map(|(c, at)| {
                let bias = measured(*c).map_or(0.0, |m| m - self.map.rsrp(*at, pos));
                (*c, *at, bias)
            })
            .collect();
        if !cells.iter().any(|c| c.0 == ue.serving) {
            return near;
        }
        let mut votes: Vec<Vote> = Vec::new();
        let mut stack = vec![Branch {
            road,
            along,
            travelled: 0.0,
            prob: 1.0,
            turns: 0,
            since: None,
        }];
        while let Some(mut b) = stack.pop() {
            let Some(r) = self.net.road(b.road) else {
                continue;
            };
            let len = r.length();
            let mut voted = false;
            while b.along < len && b.travelled < reach {
                b.along += STEP_M;
                b.travelled += STEP_M;
                let at = r.point_at(b.along);
                let fade = if self.map.decorrelation_m > 0.0 {
                    (-b.travelled / self.map.decorrelation_m).exp()
                } else {
                    0.0
                };
                let mut serving = f64::NEG_INFINITY;
                let mut best: Option<(CellId, f64)> = None;
                for (c, site, bias) in &cells {
                    let level = self.map.rsrp(*site, at) + bias * fade;
                    if *c == ue.serving {
                        serving = level;
                    } else if best.is_none_or(|x| level > x.1) {
                        best = Some((*c, level));
                    }
                }
                match best {
                    Some((n, level)) if level - serving > ue.a3_threshold_db => {
                        let start = match b.since {
                            Some((m, d)) if m == n => d,
                            _ => b.travelled,
                        };
                        b.since = Some((n, start));
                        if b.travelled - start + 1e-9 >= ttt_m {
                            // At its speed now, and at the road's speed limit: the
                            // earliest it plausibly gets there (it may be waiting at a
                            // light, or speeding up).
                            let t = b.travelled / speed;
                            let early = b.travelled / speed.max(r.speed);
                            match votes.iter_mut().find(|x| x.cell == n) {
                                Some(x) => {
                                    x.prob += b.prob;
                                    x.t += b.prob * t;
                                    x.early += b.prob * early;
                                }
                                None => votes.push(Vote {
                                    cell: n,
                                    prob: b.prob,
                                    t: b.prob * t,
                                    early: b.prob * early,
                                }),
                            }
                            voted = true;
                            break;
                        }
                    }
                    _ => b.since = None,
                }
            }
            if voted || b.travelled >= reach || b.turns >= MAX_TURNS {
                continue;
            }
            for (next, share) in self.turn_shares(b.road) {
                let prob = b.prob * share;
                if prob >= MIN_PROB {
                    stack.push(Branch {
                        road: next,
                        // What the last step went past the crossing.
                        along: (b.along - len).max(0.0),
                        travelled: b.travelled,
                        prob,
                        turns: b.turns + 1,
                        since: b.since,
                    });
                }
            }
        }
        if votes.is_empty() {
            return near;
        }
        votes.sort_by(|a, b| b.prob.total_cmp(&a.prob).then(a.cell.cmp(&b.cell)));
        // The earliest of the likely targets: a shadow must be ready for whichever comes.
        let likely = votes
            .iter()
            .enumerate()
            .filter(|(i, v)| *i == 0 || v.prob >= 0.2);
        let (eta, early) = likely.fold((f64::INFINITY, f64::INFINITY), |(t, e), (_, v)| {
            (t.min(v.t / v.prob), e.min(v.early / v.prob))
        });
        let far = Prediction {
            candidates: votes
                .iter()
                .map(|v| Candidate {
                    cell: v.cell,
                    likelihood: v.prob.min(1.0) as f32,
                })
                .collect(),
            eta: ue.now + Duration::from_secs_f64(eta),
            uncertainty: Duration::from_secs_f64((0.2 + 0.2 * eta).max(eta - early)),
        };
        // The earlier ETA of the two, with the wider spread.
        let (eta, spread) = match &near {
            Some(n) => (n.eta.min(far.eta), n.uncertainty.max(far.uncertainty)),
            None => (far.eta, far.uncertainty),
        };
        predict::merge(near, Some(far)).map(|p| Prediction {
            eta,
            uncertainty: spread,
            ..p
        })
    }

    fn learn_handover(&mut self, ue: &UeView<'_>, _to: CellId) {
        // The UE's next cell matches its road afresh.
        self.on.remove(&ue.ue);
    }
}
