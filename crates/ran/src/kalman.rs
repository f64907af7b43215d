//! The longer-horizon predictor: a constant-velocity Kalman filter on the UE's reported
//! position, extrapolated through the radio map.
//!
//! Along each of a few velocity hypotheses (the estimate and one standard deviation either
//! side on each axis) the predictor walks the UE forward, computes every nearby cell's
//! mean RSRP from the path-loss map plus the shadowing currently measured for that cell
//! (decaying with the distance travelled, as AR(1) shadowing does), and finds where the
//! A3 condition would hold for the time to trigger. Hypotheses vote for their target;
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
        let d = ((at[0] - pos[0]).powi(2) + (at[1] - pos[1]).powi(2)).sqrt();
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
    let mut levels: Vec<(CellId, f64)> = Vec::with_capacity(known.len());
    for (vel, w) in hypotheses {
        let speed = (vel[0] * vel[0] + vel[1] * vel[1]).sqrt();
        let mut since: Option<(CellId, f64)> = None;
        for i in 1..=steps {
            let t = i as f64 * step;
            let at = [pos[0] + vel[0] * t, pos[1] + vel[1] * t];
            let fade = if map.decorrelation_m > 0.0 {
                (-speed * t / map.decorrelation_m).exp()
            } else {
                0.0
            };
            let level =
                |(c, site, bias): &(CellId, [f64; 2], f64)| (*c, map.rsrp(*site, at) + bias * fade);
            levels.clear();
            levels.extend(known.iter().map(level));
            let Some(&(_, s)) = levels.iter().find(|(c, _)| *c == serving.0) else {
                break;
            };
            let best = levels
                .iter()
                .filter(|(c, _)| *c != serving.0)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .copied();
            match best {
                Some((n, r)) if r - s > threshold_db => {
                    let start = match since {
                        Some((m, t0)) if m == n => t0,
                        _ => t,
                    };
                    since = Some((n, start));
                    if t - start + 1e-9 >= ttt.as_secs_f64() {
                        match votes.iter_mut().find(|x| x.0 == n) {
                            Some(x) => {
                                x.1 += w;
                                x.2 += w * t;
                            }
                            None => votes.push((n, w, w * t)),
                        }
                        break;
                    }
                }
                _ => since = None,
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
