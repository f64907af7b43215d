//! A simple radio model: log-distance path loss, shadow fading correlated along the UE's
//! path (AR(1) with a decorrelation distance), and the L3 filter of RRC measurements.
//! The radio issue replaces this with 3GPP TR 38.901 models behind the same interface.

use std::collections::BTreeMap;

use edgeshift_proto::CellId;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::scenario::Radio;

/// Position in metres.
pub type Pos = [f64; 2];

/// Path loss (dB) at distance `d` metres.
#[must_use]
pub fn path_loss_db(r: &Radio, d: f64) -> f64 {
    r.pl_1km_db + 10.0 * r.pl_exponent * (d.max(10.0) / 1000.0).log10()
}

/// Per-UE radio state: shadowing per cell and the L3-filtered RSRP.
#[derive(Debug, Default)]
pub struct UeRadio {
    shadow: BTreeMap<CellId, f64>,
    filtered: BTreeMap<CellId, f64>,
    last_pos: Option<Pos>,
}

impl UeRadio {
    /// One measurement at `pos`: returns filtered RSRP (dBm) per cell.
    pub fn measure(
        &mut self,
        r: &Radio,
        cells: &[(CellId, Pos)],
        pos: Pos,
        rng: &mut impl Rng,
    ) -> Vec<(CellId, f64)> {
        let moved = self.last_pos.map_or(f64::INFINITY, |p| {
            ((p[0] - pos[0]).powi(2) + (p[1] - pos[1]).powi(2)).sqrt()
        });
        self.last_pos = Some(pos);
        let rho = if r.decorrelation_m > 0.0 {
            (-moved / r.decorrelation_m).exp()
        } else {
            0.0
        };
        let a = 0.5f64.powf(f64::from(r.l3_k) / 4.0);
        cells
            .iter()
            .map(|(cell, at)| {
                let d = ((at[0] - pos[0]).powi(2) + (at[1] - pos[1]).powi(2)).sqrt();
                let s = if r.shadowing_db > 0.0 {
                    let z: f64 = rng.sample(StandardNormal);
                    let prev = self.shadow.get(cell).copied();
                    let next = match prev {
                        Some(p) => rho * p + (1.0 - rho * rho).sqrt() * r.shadowing_db * z,
                        None => r.shadowing_db * z,
                    };
                    self.shadow.insert(*cell, next);
                    next
                } else {
                    0.0
                };
                let m = r.tx_dbm - path_loss_db(r, d) + s;
                let f = match self.filtered.get(cell) {
                    Some(prev) => (1.0 - a) * prev + a * m,
                    None => m,
                };
                self.filtered.insert(*cell, f);
                (*cell, f)
            })
            .collect()
    }
}

/// Where a UE is at time `t` (seconds) on its waypoint path.
#[must_use]
pub fn position(waypoints: &[[f64; 2]], speed: f64, start_s: f64, t: f64) -> Pos {
    let Some(first) = waypoints.first() else {
        return [0.0, 0.0];
    };
    let mut left = (t - start_s).max(0.0) * speed;
    let mut at = *first;
    for next in waypoints.iter().skip(1) {
        let seg = ((next[0] - at[0]).powi(2) + (next[1] - at[1]).powi(2)).sqrt();
        if left <= seg {
            let f = if seg > 0.0 { left / seg } else { 0.0 };
            return [at[0] + (next[0] - at[0]) * f, at[1] + (next[1] - at[1]) * f];
        }
        left -= seg;
        at = *next;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_loss_follows_the_log_distance_law() {
        let r = Radio::default();
        assert!((path_loss_db(&r, 1000.0) - 128.1).abs() < 1e-9);
        assert!((path_loss_db(&r, 100.0) - (128.1 - 37.6)).abs() < 1e-9);
    }

    #[test]
    fn position_walks_the_waypoints() {
        let w = [[0.0, 0.0], [100.0, 0.0], [100.0, 100.0]];
        assert_eq!(position(&w, 10.0, 0.0, 5.0), [50.0, 0.0]);
        assert_eq!(position(&w, 10.0, 0.0, 15.0), [100.0, 50.0]);
        assert_eq!(position(&w, 10.0, 0.0, 99.0), [100.0, 100.0]);
        assert_eq!(position(&w, 10.0, 3.0, 2.0), [0.0, 0.0]);
    }
}
