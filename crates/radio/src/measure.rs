//! Measurements: shadow fading correlated along the path (AR(1) with a decorrelation
//! distance), optional measurement error and 1 dB quantisation, and the RRC L3 filter
//! `F = (1 − a)·F + a·M`, `a = 2^(−k/4)`.

use std::collections::BTreeMap;

use rand::Rng;
use rand_distr::StandardNormal;

/// Measurement settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeasureConfig {
    /// Shadow-fading standard deviation (dB).
    pub shadowing_db: f64,
    /// Decorrelation distance (m).
    pub decorrelation_m: f64,
    /// Standard deviation of the L1 measurement error (dB).
    pub error_db: f64,
    /// Round measurements to whole dB.
    pub quantise: bool,
    /// L3 filter coefficient k.
    pub l3_k: u32,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        Self {
            shadowing_db: 0.0,
            decorrelation_m: 50.0,
            error_db: 0.0,
            quantise: false,
            l3_k: 4,
        }
    }
}

/// Per-UE measurement state, keyed by cell.
#[derive(Debug, Default, Clone)]
pub struct UeMeasurer {
    shadow: BTreeMap<u32, f64>,
    filtered: BTreeMap<u32, f64>,
    last_pos: Option<[f64; 2]>,
}

impl UeMeasurer {
    /// One L1 period at `pos`: takes the mean RSRP per cell (`cell, dBm` from the path-loss
    /// model), adds shadowing and error, and returns the L3-filtered values.
    pub fn measure(
        &mut self,
        cfg: &MeasureConfig,
        pos: [f64; 2],
        mean: &[(u32, f64)],
        rng: &mut impl Rng,
    ) -> Vec<(u32, f64)> {
        let moved = self.last_pos.map_or(f64::INFINITY, |p| {
            ((p[0] - pos[0]).powi(2) + (p[1] - pos[1]).powi(2)).sqrt()
        });
        self.last_pos = Some(pos);
        let rho = if cfg.decorrelation_m > 0.0 {
            (-moved / cfg.decorrelation_m).exp()
        } else {
            0.0
        };
        let a = 0.5f64.powf(f64::from(cfg.l3_k) / 4.0);
        mean.iter()
            .map(|(cell, m)| {
                let s = if cfg.shadowing_db > 0.0 {
                    let z: f64 = rng.sample(StandardNormal);
                    let next = match self.shadow.get(cell) {
                        Some(p) => rho * p + (1.0 - rho * rho).sqrt() * cfg.shadowing_db * z,
                        None => cfg.shadowing_db * z,
                    };
                    self.shadow.insert(*cell, next);
                    next
                } else {
                    0.0
                };
                let e = if cfg.error_db > 0.0 {
                    cfg.error_db * rng.sample::<f64, _>(StandardNormal)
                } else {
                    0.0
                };
                let mut v = m + s + e;
                if cfg.quantise {
                    v = v.round();
                }
                let f = self
                    .filtered
                    .get(cell)
                    .map_or(v, |prev| (1.0 - a) * prev + a * v);
                self.filtered.insert(*cell, f);
                (*cell, f)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn l3_filter_follows_a_step_with_the_right_coefficient() {
        let mut m = UeMeasurer::default();
        let cfg = MeasureConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        m.measure(&cfg, [0.0, 0.0], &[(1, -80.0)], &mut rng);
        let f = m.measure(&cfg, [1.0, 0.0], &[(1, -70.0)], &mut rng);
        // k = 4: a = 1/2.
        assert!((f[0].1 - -75.0).abs() < 1e-9);
    }

    #[test]
    fn shadowing_is_correlated_over_short_distances() {
        let cfg = MeasureConfig {
            shadowing_db: 6.0,
            l3_k: 0,
            ..MeasureConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut m = UeMeasurer::default();
        let mut prev = m.measure(&cfg, [0.0, 0.0], &[(1, 0.0)], &mut rng)[0].1;
        let mut step_diff = 0.0;
        for i in 1..2000 {
            let v = m.measure(&cfg, [f64::from(i), 0.0], &[(1, 0.0)], &mut rng)[0].1;
            step_diff += (v - prev).abs();
            prev = v;
        }
        // 1 m steps with 50 m decorrelation: consecutive values differ far less than σ.
        assert!(step_diff / 1999.0 < 2.0, "mean step {}", step_diff / 1999.0);
    }
}
