//! The longer-horizon predictor: a constant-velocity Kalman filter on the UE's reported
//! position, extrapolated through the radio map.
//!
//! Along each of a few velocity hypotheses (the estimate and one standard deviation either
//! side on each axis) the predictor walks the UE forward through the strongest measured
//! cells' mean RSRP from the path-loss map plus the shadowing currently measured for each
//! (decaying with the distance travelled, as AR(1) shadowing does), and finds where the
//! A3 condition would hold for the time to trigger. The walk works out only the levels
//! that can decide a step (see [`Walk::vote`]). Hypotheses vote for their target;
//! the votes are the likelihoods.

use std::time::Duration;

use edgeshift_proto::{Candidate, CellId, Instant};
use edgeshift_radio::pathloss::{NlosCurve, ThreeGpp};

use crate::predict::Prediction;

/// What the Kalman predictor needs to know about the network.
#[derive(Clone, Debug)]
pub struct RadioMap {
    /// Cell positions (m).
    pub(crate) sites: Vec<(CellId, [f64; 2])>,
    /// Transmit power (dBm) of every cell.
    tx_dbm: f64,
    /// The per-resource-element share of it, `10 log10(12 n_prb)` (dB).
    prb_db: f64,
    /// The path-loss model's NLOS curve.
    curve: NlosCurve,
    /// Shadowing decorrelation distance (m).
    pub(crate) decorrelation_m: f64,
}

impl RadioMap {
    /// Cells at `sites` transmitting `tx_dbm` over `n_prb` resource blocks, with the NLOS
    /// loss of `model` and shadowing that decorrelates over `decorrelation_m`.
    #[must_use]
    pub fn new(
        sites: Vec<(CellId, [f64; 2])>,
        tx_dbm: f64,
        n_prb: u32,
        model: ThreeGpp,
        decorrelation_m: f64,
    ) -> Self {
        Self {
            sites,
            tx_dbm,
            prb_db: 10.0 * (12.0 * f64::from(n_prb.max(1))).log10(),
            curve: NlosCurve::new(model),
            decorrelation_m,
        }
    }

    /// Mean RSRP (dBm) at `pos` of the cell at `at`: [`edgeshift_radio::pathloss::rsrp_dbm`]
    /// of the NLOS loss, bit for bit, with the constant terms worked out once (the
    /// predictors evaluate it hundreds of times per measurement report).
    pub(crate) fn rsrp(&self, at: [f64; 2], pos: [f64; 2]) -> f64 {
        self.rsrp_at(distance(at, pos))
    }

    /// Mean RSRP (dBm) at `d` metres from a cell: it never rises with the distance.
    fn rsrp_at(&self, d: f64) -> f64 {
        self.tx_dbm - self.prb_db - self.curve.nlos(d)
    }

    fn site(&self, cell: CellId) -> Option<[f64; 2]> {
        self.sites.iter().find(|s| s.0 == cell).map(|s| s.1)
    }
}

/// Constant-velocity Kalman filter, one independent `[position, velocity]` filter per axis.
#[derive(Clone, Debug)]
pub(crate) struct Track {
    at: Instant,
    x: [[f64; 2]; 2],
    p: [[[f64; 2]; 2]; 2],
}

/// Process noise: acceleration variance ((m/s²)²).
const ACCEL_VAR: f64 = 1.0;
/// Position measurement variance (m²).
const POS_VAR: f64 = 4.0;

impl Track {
    pub(crate) fn new(at: Instant, pos: [f64; 2]) -> Self {
        let p0 = [[POS_VAR, 0.0], [0.0, 100.0]];
        Self {
            at,
            x: [[pos[0], 0.0], [pos[1], 0.0]],
            p: [p0, p0],
        }
    }

    /// Predict to `now` and correct with the reported position.
    pub(crate) fn update(&mut self, now: Instant, pos: [f64; 2]) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        for (axis, z) in pos.iter().enumerate() {
            let [p, v] = self.x[axis];
            let [[a, b], [c, d]] = self.p[axis];
            // x = F x; P = F P Fᵀ + Q
            let (p, v) = (p + v * dt, v);
            let q = ACCEL_VAR;
            let (a, b, c, d) = (
                a + dt * (b + c) + dt * dt * d + q * dt.powi(3) / 3.0,
                b + dt * d + q * dt * dt / 2.0,
                c + dt * d + q * dt * dt / 2.0,
                d + q * dt,
            );
            // Correct with z = position.
            let s = a + POS_VAR;
            let (k0, k1) = (a / s, c / s);
            let y = z - p;
            self.x[axis] = [p + k0 * y, v + k1 * y];
            self.p[axis] = [[(1.0 - k0) * a, (1.0 - k0) * b], [c - k1 * a, d - k1 * b]];
        }
    }

    fn position(&self) -> [f64; 2] {
        [self.x[0][0], self.x[1][0]]
    }

    pub(crate) fn velocity(&self) -> [f64; 2] {
        [self.x[0][1], self.x[1][1]]
    }

    fn velocity_sd(&self) -> [f64; 2] {
        [
            self.p[0][1][1].max(0.0).sqrt(),
            self.p[1][1][1].max(0.0).sqrt(),
        ]
    }
}

/// Rounding in the walk's own distances and levels must not flip a bound's verdict.
const SLACK_DB: f64 = 1e-6;

/// Steps of the walk bounded together by [`may_vote`] (see [`Walk::vote`]).
const STRETCH: usize = 5;

/// Whether a walk along `leg` (its first and last point) could find a neighbour above the
/// serving cell by more than `threshold_db`. The best a neighbour can do is its level at
/// its closest approach plus any positive measured shadowing, the worst the serving cell
/// can do is its level at the farthest end plus any negative one: the mean RSRP never
/// rises with distance, and the shadowing only fades. A walk that cannot vote is skipped,
/// which gives the same prediction: most reports come from UEs well inside their cell.
fn may_vote(
    map: &RadioMap,
    known: &[(CellId, [f64; 2], f64)],
    serving: CellId,
    leg: [[f64; 2]; 2],
    threshold_db: f64,
) -> bool {
    let Some(&(_, at, bias)) = known.iter().find(|k| k.0 == serving) else {
        return false; // The walk stops at once without the serving cell's level.
    };
    let far = distance(leg[0], at).max(distance(leg[1], at));
    let worst_serving = map.rsrp_at(far) + bias.min(0.0);
    known
        .iter()
        .filter(|k| k.0 != serving)
        .any(|&(_, at, bias)| {
            let best = map.rsrp_at(closest(leg, at)) + bias.max(0.0);
            best - worst_serving > threshold_db - SLACK_DB
        })
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// The distance from `p` to the segment `leg`.
fn closest(leg: [[f64; 2]; 2], p: [f64; 2]) -> f64 {
    let [a, b] = leg;
    let ab = [b[0] - a[0], b[1] - a[1]];
    let len2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    distance([a[0] + ab[0] * t, a[1] + ab[1] * t], p)
}

/// Predicts from the track and the latest measurements (`serving` and neighbour RSRP).
pub(crate) fn predict(
    map: &RadioMap,
    horizon: Duration,
    ttt: Duration,
    threshold_db: f64,
    track: &Track,
    serving: (CellId, f64),
    neighbours: &[(CellId, f64)],
    now: Instant,
) -> Option<Prediction> {
    let pos = track.position();
    // The strongest few neighbours are the only plausible targets within the horizon.
    let mut cells: Vec<(CellId, f64)> = neighbours.to_vec();
    cells.sort_by(|a, b| b.1.total_cmp(&a.1));
    cells.truncate(6);
    cells.push(serving);
    // Shadowing now = measured − map; it fades as the UE moves away from here.
    let known: Vec<(CellId, [f64; 2], f64)> = cells
        .iter()
        .filter_map(|(c, measured)| {
            let at = map.site(*c)?;
            Some((*c, at, measured - map.rsrp(at, pos)))
        })
        .collect();
    let v = track.velocity();
    let sd = track.velocity_sd();
    let hypotheses = [
        (v, 0.4),
        ([v[0] + sd[0], v[1]], 0.15),
        ([v[0] - sd[0], v[1]], 0.15),
        ([v[0], v[1] + sd[1]], 0.15),
        ([v[0], v[1] - sd[1]], 0.15),
    ];
    let step = 0.4;
    let steps = (horizon.as_secs_f64() / step) as usize;
    let mut votes: Vec<(CellId, f64, f64)> = Vec::new(); // cell, weight, weighted eta
    let walk = Walk {
        map,
        known: &known,
        serving: serving.0,
        threshold_db,
        ttt: ttt.as_secs_f64(),
        step,
        steps,
    };
    for (vel, w) in hypotheses {
        if let Some((n, t)) = walk.vote(pos, vel) {
            match votes.iter_mut().find(|x| x.0 == n) {
                Some(x) => {
                    x.1 += w;
                    x.2 += w * t;
                }
                None => votes.push((n, w, w * t)),
            }
        }
    }
    if votes.is_empty() {
        return None;
    }
    votes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (_, w, wt) = votes[0];
    let eta = wt / w;
    let candidates = votes
        .iter()
        .map(|(c, w, _)| Candidate {
            cell: *c,
            likelihood: *w as f32,
        })
        .collect();
    let uncertainty = Duration::from_secs_f64(0.2 + 0.2 * eta);
    Some(Prediction {
        candidates,
        eta: now + Duration::from_secs_f64(eta),
        uncertainty,
    })
}

/// One hypothesis's walk: the UE goes on at a constant velocity, `steps` steps of `step`
/// seconds, and votes for the first neighbour that stays above the serving cell by more
/// than the A3 threshold for the time to trigger.
struct Walk<'a> {
    map: &'a RadioMap,
    /// Cell, site, shadowing measured now (it fades along the walk).
    known: &'a [(CellId, [f64; 2], f64)],
    serving: CellId,
    threshold_db: f64,
    /// Time to trigger (s).
    ttt: f64,
    step: f64,
    steps: usize,
}

impl Walk<'_> {
    /// The neighbour voted for from `pos` at velocity `vel`, and when (s from now).
    fn vote(&self, pos: [f64; 2], vel: [f64; 2]) -> Option<(CellId, f64)> {
        let map = self.map;
        let &(_, serving_site, serving_bias) = self.known.iter().find(|k| k.0 == self.serving)?;
        let point = |i: usize| {
            let t = i as f64 * self.step;
            [pos[0] + vel[0] * t, pos[1] + vel[1] * t]
        };
        let bound = |first: usize, last: usize| {
            may_vote(
                map,
                self.known,
                self.serving,
                [point(first), point(last)],
                self.threshold_db,
            )
        };
        if self.steps == 0 || !bound(1, self.steps) {
            return None;
        }
        let speed = (vel[0] * vel[0] + vel[1] * vel[1]).sqrt();
        let mut since: Option<(CellId, f64)> = None;
        // The walk goes in stretches of a few steps, each skipped when the bound says no
        // step of it can find a neighbour above the threshold (as its steps would then
        // each have found): most of a 10 s walk is far from any cell border.
        for first in (1..=self.steps).step_by(STRETCH) {
            let last = (first + STRETCH - 1).min(self.steps);
            if last > first && !bound(first, last) {
                since = None;
                continue;
            }
            for i in first..=last {
                let t = i as f64 * self.step;
                let at = point(i);
                let fade = if map.decorrelation_m > 0.0 {
                    (-speed * t / map.decorrelation_m).exp()
                } else {
                    0.0
                };
                // A neighbour no nearer than the serving cell is no stronger on the mean;
                // without a shadowing lead of the threshold it cannot exceed the serving
                // cell, so it could be the strongest only when no neighbour exceeds (no
                // vote either way), and its path loss is not worked out.
                let d_serving = distance(serving_site, at);
                let s = map.rsrp_at(d_serving) + serving_bias * fade;
                let mut best: Option<(CellId, f64)> = None;
                for &(c, site, bias) in self.known {
                    let d = distance(site, at);
                    if c == self.serving
                        || (d >= d_serving
                            && (bias - serving_bias) * fade <= self.threshold_db - SLACK_DB)
                    {
                        continue;
                    }
                    let r = map.rsrp_at(d) + bias * fade;
                    // The last of equals, as `Iterator::max_by` picks.
                    if best.is_none_or(|(_, b)| r.total_cmp(&b).is_ge()) {
                        best = Some((c, r));
                    }
                }
                match best {
                    Some((n, r)) if r - s > self.threshold_db => {
                        let start = match since {
                            Some((m, t0)) if m == n => t0,
                            _ => t,
                        };
                        since = Some((n, start));
                        if t - start + 1e-9 >= self.ttt {
                            return Some((n, t));
                        }
                    }
                    _ => since = None,
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use edgeshift_radio::pathloss::Environment;

    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Draw(u64);

    impl Draw {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }
    }

    #[test]
    fn a_walk_the_bound_skips_never_sees_a_neighbour_above_the_threshold() {
        let sites: Vec<(CellId, [f64; 2])> = (0..7u32)
            .map(|i| {
                (
                    CellId(i),
                    [f64::from(i % 3) * 500.0, f64::from(i / 3) * 430.0],
                )
            })
            .collect();
        let map = RadioMap::new(
            sites.clone(),
            46.0,
            50,
            ThreeGpp::new(Environment::UMa, 3.5),
            50.0,
        );
        let (step, steps, threshold) = (0.4, 25, 3.0);
        let mut draw = Draw(0x9E37_79B9_7F4A_7C15);
        let (mut skipped, mut voting) = (0, 0);
        for _ in 0..20_000 {
            let pos = [draw.range(-200.0, 1200.0), draw.range(-200.0, 1100.0)];
            let vel = [draw.range(-20.0, 20.0), draw.range(-20.0, 20.0)];
            let known: Vec<(CellId, [f64; 2], f64)> = sites
                .iter()
                .map(|(c, at)| (*c, *at, draw.range(-8.0, 8.0)))
                .collect();
            let serving = CellId((draw.unit() * 7.0) as u32 % 7);
            let leg = [
                [pos[0] + vel[0] * step, pos[1] + vel[1] * step],
                [pos[0] + vel[0] * step * 25.0, pos[1] + vel[1] * step * 25.0],
            ];
            if may_vote(&map, &known, serving, leg, threshold) {
                voting += 1;
                continue;
            }
            skipped += 1;
            let speed = vel[0].hypot(vel[1]);
            for i in 1..=steps {
                let t = f64::from(i) * step;
                let at = [pos[0] + vel[0] * t, pos[1] + vel[1] * t];
                let fade = (-speed * t / map.decorrelation_m).exp();
                let level = |k: &(CellId, [f64; 2], f64)| map.rsrp(k.1, at) + k.2 * fade;
                let s = known.iter().find(|k| k.0 == serving).map(level);
                let best = known
                    .iter()
                    .filter(|k| k.0 != serving)
                    .map(level)
                    .fold(f64::MIN, f64::max);
                let s = s.unwrap_or(f64::MAX);
                assert!(best - s <= threshold, "{pos:?} {vel:?} step {i}");
            }
        }
        // Both verdicts happen, or the test proves nothing.
        assert!(
            skipped > 1000 && voting > 1000,
            "{skipped} skipped, {voting} voting"
        );
    }

    /// The walk as it was before its shortcuts: every cell's level at every step.
    fn vote_every_step(w: &Walk<'_>, pos: [f64; 2], vel: [f64; 2]) -> Option<(CellId, f64)> {
        let speed = vel[0].hypot(vel[1]);
        let mut since: Option<(CellId, f64)> = None;
        for i in 1..=w.steps {
            let t = i as f64 * w.step;
            let at = [pos[0] + vel[0] * t, pos[1] + vel[1] * t];
            let fade = (-speed * t / w.map.decorrelation_m).exp();
            let levels: Vec<(CellId, f64)> = w
                .known
                .iter()
                .map(|(c, site, bias)| (*c, w.map.rsrp(*site, at) + bias * fade))
                .collect();
            let (_, s) = *levels.iter().find(|(c, _)| *c == w.serving)?;
            let best = levels
                .iter()
                .filter(|(c, _)| *c != w.serving)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .copied();
            match best {
                Some((n, r)) if r - s > w.threshold_db => {
                    let start = match since {
                        Some((m, t0)) if m == n => t0,
                        _ => t,
                    };
                    since = Some((n, start));
                    if t - start + 1e-9 >= w.ttt {
                        return Some((n, t));
                    }
                }
                _ => since = None,
            }
        }
        None
    }

    #[test]
    fn the_walk_votes_as_a_walk_that_works_out_every_level_at_every_step() {
        let sites: Vec<(CellId, [f64; 2])> = (0..7u32)
            .map(|i| {
                (
                    CellId(i),
                    [f64::from(i % 3) * 500.0, f64::from(i / 3) * 430.0],
                )
            })
            .collect();
        let map = RadioMap::new(
            sites.clone(),
            46.0,
            50,
            ThreeGpp::new(Environment::UMa, 3.5),
            50.0,
        );
        let mut draw = Draw(0x2545_F491_4F6C_DD1D);
        let (mut votes, mut none) = (0, 0);
        for _ in 0..20_000 {
            let pos = [draw.range(-200.0, 1200.0), draw.range(-200.0, 1100.0)];
            let vel = [draw.range(-20.0, 20.0), draw.range(-20.0, 20.0)];
            let known: Vec<(CellId, [f64; 2], f64)> = sites
                .iter()
                .map(|(c, at)| (*c, *at, draw.range(-8.0, 8.0)))
                .collect();
            let walk = Walk {
                map: &map,
                known: &known,
                serving: CellId((draw.unit() * 7.0) as u32 % 7),
                threshold_db: draw.range(0.0, 6.0),
                ttt: [0.0, 0.16, 0.32, 0.64, 1.28][(draw.unit() * 5.0) as usize % 5],
                step: 0.4,
                steps: 25,
            };
            let got = walk.vote(pos, vel);
            assert_eq!(got, vote_every_step(&walk, pos, vel), "{pos:?} {vel:?}");
            if got.is_some() {
                votes += 1;
            } else {
                none += 1;
            }
        }
        // Both outcomes happen, or the test proves nothing.
        assert!(votes > 1000 && none > 1000, "{votes} votes, {none} none");
    }
}
