//! Handover points: where along the roads this cell's UEs were handed over, and to whom.
//!
//! An operator logs where handovers happen (3GPP MDT reports carry the UE's position).
//! [`PointsPredictor`] keeps, for its cell, the position, heading and target of each
//! handover it executed, and predicts for a moving UE from the points that lie ahead of it
//! on its heading, within a lane's width: the targets there, weighted by how often, and the
//! time to reach the nearest. A point seen on a road predicts the next UE on that road
//! seconds before its radio shows the neighbour, which is what a shadow of a large state
//! needs. Its candidates are merged into those of the wrapped (radio) predictor, and the
//! earlier of the two ETAs is kept.
//!
//! It learns only from the cell's own past handovers: the first UEs on a road get the
//! radio predictor's lead only.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use edgeshift_proto::{Candidate, CellId, Instant};

use crate::predict::Prediction;
use crate::predictor::{Predictor, UeView};

/// Points kept per cell (the oldest go first).
const KEEP: usize = 2048;
/// Half the width of the lane a point must lie in (m).
const LANE_M: f64 = 20.0;
/// Least cosine between the UE's heading and the point's.
const SAME_WAY: f64 = 0.85;
/// Slowest UE the points predict for (m/s): below, the heading means little.
const MIN_SPEED: f64 = 2.0;
/// Points needed ahead before they predict.
const MIN_POINTS: usize = 2;

/// One handover this cell executed.
#[derive(Clone, Copy, Debug)]
struct Point {
    at: [f64; 2],
    heading: [f64; 2],
    target: CellId,
}

/// A predictor wrapped with the handover points its cell learns.
#[derive(Debug)]
pub struct PointsPredictor {
    inner: Box<dyn Predictor>,
    points: VecDeque<Point>,
    horizon: Duration,
}

impl PointsPredictor {
    /// Wraps `inner`; points up to `horizon` of travel ahead count.
    #[must_use]
    pub fn new(inner: Box<dyn Predictor>, horizon: Duration) -> Self {
        Self {
            inner,
            points: VecDeque::new(),
            horizon,
        }
    }

    /// Position and unit heading and speed of a UE, if it reports its position and moves.
    fn motion(ue: &UeView<'_>) -> Option<([f64; 2], [f64; 2], f64)> {
        let pos = ue.last.and_then(|r| r.position)?;
        let v = ue.track?.velocity();
        let speed = v[0].hypot(v[1]);
        (speed >= MIN_SPEED).then(|| (pos, [v[0] / speed, v[1] / speed], speed))
    }

    /// The prediction of the points ahead of `ue`.
    fn ahead(&self, ue: &UeView<'_>) -> Option<Prediction> {
        let (pos, u, speed) = Self::motion(ue)?;
        let reach = speed * self.horizon.as_secs_f64();
        let mut by_target: BTreeMap<CellId, Vec<f64>> = BTreeMap::new();
        for p in &self.points {
            if p.target == ue.serving || p.heading[0] * u[0] + p.heading[1] * u[1] < SAME_WAY {
                continue;
            }
            let d = [p.at[0] - pos[0], p.at[1] - pos[1]];
            let along = d[0] * u[0] + d[1] * u[1];
            let lateral = (d[0] * u[1] - d[1] * u[0]).abs();
            if (0.0..=reach).contains(&along) && lateral <= LANE_M {
                by_target.entry(p.target).or_default().push(along);
            }
        }
        let total: usize = by_target.values().map(Vec::len).sum();
        if total < MIN_POINTS {
            return None;
        }
        let mut candidates: Vec<(CellId, usize, f64)> = by_target
            .into_iter()
            .map(|(cell, mut along)| {
                along.sort_by(f64::total_cmp);
                (cell, along.len(), along[along.len() / 2])
            })
            .collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // The handover the UE reaches first is the one it will make: the nearest target's
        // median point, among those seen at least half as often as the most seen.
        let most = candidates.first().map_or(0, |c| c.1);
        let nearest = candidates
            .iter()
            .filter(|c| 2 * c.1 >= most)
            .map(|c| c.2)
            .fold(f64::INFINITY, f64::min);
        let eta = ue.now + Duration::from_secs_f64((nearest / speed).max(0.0));
        Some(Prediction {
            candidates: candidates
                .iter()
                .take(3)
                .map(|(cell, n, _)| Candidate {
                    cell: *cell,
                    likelihood: *n as f32 / total as f32,
                })
                .collect(),
            eta,
            uncertainty: Duration::from_millis(500),
        })
    }
}

impl Predictor for PointsPredictor {
    fn predict(&mut self, ue: &UeView<'_>) -> Option<Prediction> {
        let radio = self.inner.predict(ue);
        let Some(road) = self.ahead(ue) else {
            return radio;
        };
        let eta: Instant = radio.as_ref().map_or(road.eta, |r| r.eta.min(road.eta));
        let uncertainty = radio
            .as_ref()
            .map_or(road.uncertainty, |r| r.uncertainty.max(road.uncertainty));
        let merged = crate::predict::merge(radio, Some(road))?;
        Some(Prediction {
            eta,
            uncertainty,
            ..merged
        })
    }

    fn learn(&mut self, from: Option<CellId>, to: CellId, dwell: Duration) {
        self.inner.learn(from, to, dwell);
    }

    fn learn_handover(&mut self, ue: &UeView<'_>, to: CellId) {
        self.inner.learn_handover(ue, to);
        let Some((at, heading, _)) = Self::motion(ue) else {
            return;
        };
        if self.points.len() == KEEP {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            at,
            heading,
            target: to,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};
    use std::time::Duration;

    use edgeshift_proto::{CellId, Instant, UeId};

    use super::PointsPredictor;
    use crate::kalman::Track;
    use crate::{MeasurementReport, Predictor, PredictorConfig, TrendPredictor, UeView};

    /// A UE driving east at 10 m/s along y = `y`, seen at `x` at time `t` (s).
    fn seen(x: f64, y: f64, t: f64) -> (Track, MeasurementReport, Instant) {
        let mut track = Track::new(Instant::from_secs_f64(t - 2.0), [x - 20.0, y]);
        for k in 1..=10 {
            let dt = 0.2 * f64::from(k);
            track.update(
                Instant::from_secs_f64(t - 2.0 + dt),
                [x - 20.0 + 10.0 * dt, y],
            );
        }
        let report = MeasurementReport {
            ue: UeId(1),
            serving_dbm: -80.0,
            neighbours: Vec::new(),
            position: Some([x, y]),
        };
        (track, report, Instant::from_secs_f64(t))
    }

    fn view<'a>(
        parts: &'a (Track, MeasurementReport, Instant),
        history: &'a VecDeque<crate::predict::Sample>,
        a3: &'a BTreeMap<CellId, Instant>,
    ) -> UeView<'a> {
        UeView {
            ue: UeId(1),
            now: parts.2,
            serving: CellId(1),
            time_to_trigger: Duration::from_millis(320),
            a3_threshold_db: 4.0,
            history,
            a3_since: a3,
            last: Some(&parts.1),
            arrived: None,
            joined: None,
            track: Some(&parts.0),
        }
    }

    #[test]
    fn handovers_seen_on_a_road_predict_the_next_ue_on_it_seconds_ahead() {
        let inner = Box::new(TrendPredictor::new(PredictorConfig::default()));
        let mut p = PointsPredictor::new(inner, Duration::from_secs(10));
        let (h, a3) = (VecDeque::new(), BTreeMap::new());
        // Three UEs were handed to cell 2 near x = 500 on the road y = 100, heading east.
        for (x, y) in [(495.0, 100.0), (505.0, 104.0), (510.0, 97.0)] {
            let parts = seen(x, y, 10.0);
            p.learn_handover(&view(&parts, &h, &a3), CellId(2));
        }
        // One went to cell 3 on another road.
        let other = seen(500.0, 400.0, 10.0);
        p.learn_handover(&view(&other, &h, &a3), CellId(3));
        // A UE at x = 450 on the same road, heading east at 10 m/s: cell 2 in about 5 s,
        // long before its radio shows it (the trend predictor alone has nothing).
        let parts = seen(450.0, 101.0, 50.0);
        let got = p.predict(&view(&parts, &h, &a3)).expect("a prediction");
        assert_eq!(got.candidates.len(), 1, "{got:?}");
        assert_eq!(got.candidates[0].cell, CellId(2));
        let eta = got.eta.saturating_duration_since(parts.2).as_secs_f64();
        assert!((4.0..6.5).contains(&eta), "eta in {eta} s");
        // Heading west, or on another road, or past the points: nothing.
        let mut west = seen(550.0, 100.0, 50.0);
        west.0 = Track::new(Instant::from_secs_f64(48.0), [570.0, 100.0]);
        for k in 1..=10 {
            let dt = 0.2 * f64::from(k);
            west.0.update(
                Instant::from_secs_f64(48.0 + dt),
                [570.0 - 10.0 * dt, 100.0],
            );
        }
        assert!(p.predict(&view(&west, &h, &a3)).is_none());
        let elsewhere = seen(450.0, 250.0, 50.0);
        assert!(p.predict(&view(&elsewhere, &h, &a3)).is_none());
        let past = seen(600.0, 100.0, 50.0);
        assert!(p.predict(&view(&past, &h, &a3)).is_none());
    }
}
