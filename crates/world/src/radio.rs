//! The scenarios' radio model: 3GPP TR 38.901 UMa/UMi (NLOS) or log-distance path loss;
//! shadowing and the L3 filter come from `edgeshift_radio::measure`. Positions along
//! waypoint paths.

use edgeshift_radio::pathloss::{Environment, NlosCurve, ThreeGpp};

use crate::scenario::{PathLossModel, Radio};

/// Position in metres.
pub type Pos = [f64; 2];

/// Path loss (dB) at distance `d` metres.
#[must_use]
pub fn path_loss_db(r: &Radio, d: f64) -> f64 {
    PathLoss::of(r).db(d)
}

/// A scenario's path loss with its distance-independent terms worked out once, for a
/// caller that evaluates it at many distances (a measurement evaluates every cell): a
/// 38.901 loss then takes one logarithm per distance instead of three. The same values as
/// [`path_loss_db`], bit for bit.
#[derive(Clone, Copy, Debug)]
pub enum PathLoss {
    /// A 38.901 NLOS curve.
    Nlos(NlosCurve),
    /// Log-distance: loss at 1 km (dB) and exponent.
    LogDistance(f64, f64),
}

impl PathLoss {
    /// The path loss of `r`.
    #[must_use]
    pub fn of(r: &Radio) -> Self {
        match r.model {
            PathLossModel::Uma => {
                Self::Nlos(NlosCurve::new(ThreeGpp::new(Environment::UMa, r.freq_ghz)))
            }
            PathLossModel::Umi => {
                Self::Nlos(NlosCurve::new(ThreeGpp::new(Environment::UMi, r.freq_ghz)))
            }
            PathLossModel::LogDistance => Self::LogDistance(r.pl_1km_db, r.pl_exponent),
        }
    }

    /// Path loss (dB) at distance `d` metres (at least 10 m).
    #[must_use]
    pub fn db(&self, d: f64) -> f64 {
        let d = d.max(10.0);
        match *self {
            Self::Nlos(curve) => curve.nlos(d),
            Self::LogDistance(pl_1km_db, n) => pl_1km_db + 10.0 * n * (d / 1000.0).log10(),
        }
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

/// Where a UE on a timed track `[t, x, y]` (in time order) is at time `t`: interpolated
/// between samples, at the first before it and at the last after it.
#[must_use]
pub fn on_track(track: &[[f64; 3]], t: f64) -> Pos {
    let i = track.partition_point(|s| s[0] <= t);
    match (i.checked_sub(1).and_then(|j| track.get(j)), track.get(i)) {
        (Some(a), Some(b)) if b[0] > a[0] => {
            let f = (t - a[0]) / (b[0] - a[0]);
            [a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f]
        }
        (Some(a), _) | (None, Some(a)) => [a[1], a[2]],
        (None, None) => [0.0, 0.0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_loss_follows_the_log_distance_law() {
        let r = Radio {
            model: PathLossModel::LogDistance,
            ..Radio::default()
        };
        assert!((path_loss_db(&r, 1000.0) - 128.1).abs() < 1e-9);
        assert!((path_loss_db(&r, 100.0) - (128.1 - 37.6)).abs() < 1e-9);
    }

    #[test]
    fn the_default_is_38_901_uma_nlos() {
        let r = Radio::default();
        // The golden value of the radio crate: UMa NLOS, 3.5 GHz, 500 m.
        assert!((path_loss_db(&r, 500.0) - 129.92).abs() < 0.05);
    }

    /// The curve worked out once gives the model's own loss, bit for bit, at every
    /// distance (a measurement's values must not change with how they are computed).
    #[test]
    fn the_curve_worked_out_once_is_the_models_loss_bit_for_bit() {
        for (model, env) in [
            (PathLossModel::Uma, Environment::UMa),
            (PathLossModel::Umi, Environment::UMi),
        ] {
            let r = Radio {
                model,
                ..Radio::default()
            };
            let loss = PathLoss::of(&r);
            let mut d = 0.0_f64;
            while d < 5_000.0 {
                let want = ThreeGpp::new(env, r.freq_ghz).nlos(d.max(10.0));
                assert_eq!(loss.db(d).to_bits(), want.to_bits(), "{model:?} at {d} m");
                d += 0.37;
            }
        }
    }

    #[test]
    fn a_track_is_interpolated_and_held_at_its_ends() {
        let tr = [[10.0, 0.0, 0.0], [20.0, 100.0, 0.0], [30.0, 100.0, 50.0]];
        assert_eq!(on_track(&tr, 0.0), [0.0, 0.0]);
        assert_eq!(on_track(&tr, 15.0), [50.0, 0.0]);
        assert_eq!(on_track(&tr, 25.0), [100.0, 25.0]);
        assert_eq!(on_track(&tr, 99.0), [100.0, 50.0]);
        assert_eq!(on_track(&[], 1.0), [0.0, 0.0]);
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
