//! Measurements: shadow fading correlated along the path (AR(1) with a decorrelation
//! distance), optional measurement error and 1 dB quantisation, and the RRC L3 filter
//! `F = (1 − a)·F + a·M`, `a = 2^(−k/4)`.

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

/// Per-UE measurement state, per cell. A cell left out of a period is forgotten: measured
/// again, it starts afresh, as a cell the UE detects anew (a caller that measures only
/// the cells near the UE drops those it moved away from).
#[derive(Debug, Default, Clone)]
pub struct UeMeasurer {
    /// Cell, its shadowing (once drawn), its L3-filtered value; in the order of the last
    /// period. A caller measures mostly the same cells in the same order every period, so
    /// a cell's slot is found at its place in the list (two tree lookups and inserts per
    /// cell were most of a measurement's cost).
    cells: Vec<Slot>,
    /// The slots of the period before, kept for their allocation.
    spare: Vec<Slot>,
    last_pos: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    cell: u32,
    shadow: Option<f64>,
    filtered: f64,
}

impl UeMeasurer {
    /// Where the slot of `cell` is, looked for first at `hint` (its place in the caller's
    /// list); `None` for a cell never measured.
    fn slot(&self, cell: u32, hint: usize) -> Option<usize> {
        match self.cells.get(hint) {
            Some(s) if s.cell == cell => Some(hint),
            _ => self.cells.iter().position(|s| s.cell == cell),
        }
    }

    /// One L1 period at `pos`: takes the mean RSRP per cell (`cell, dBm` from the path-loss
    /// model, each cell once), adds shadowing and error, and returns the L3-filtered
    /// values. Cells not in `mean` are forgotten.
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
        let mut out = Vec::with_capacity(mean.len());
        let mut kept = std::mem::take(&mut self.spare);
        kept.clear();
        for (i, &(cell, m)) in mean.iter().enumerate() {
            let slot = self.slot(cell, i).and_then(|k| self.cells.get(k)).copied();
            let shadow = if cfg.shadowing_db > 0.0 {
                let z: f64 = rng.sample(StandardNormal);
                Some(match slot.and_then(|s| s.shadow) {
                    Some(p) => rho * p + (1.0 - rho * rho).sqrt() * cfg.shadowing_db * z,
                    None => cfg.shadowing_db * z,
                })
            } else {
                None
            };
            let e = if cfg.error_db > 0.0 {
                cfg.error_db * rng.sample::<f64, _>(StandardNormal)
            } else {
                0.0
            };
            let mut v = m + shadow.unwrap_or(0.0) + e;
            if cfg.quantise {
                v = v.round();
            }
            let filtered = slot.map_or(v, |s| (1.0 - a) * s.filtered + a * v);
            kept.push(Slot {
                cell,
                shadow: shadow.or_else(|| slot.and_then(|s| s.shadow)),
                filtered,
            });
            out.push((cell, filtered));
        }
        self.spare = std::mem::replace(&mut self.cells, kept);
        out
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

    #[test]
    fn each_cell_keeps_its_own_filter_whatever_the_order_it_comes_in() {
        let cfg = MeasureConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut m = UeMeasurer::default();
        m.measure(&cfg, [0.0, 0.0], &[(1, -80.0), (2, -90.0)], &mut rng);
        // Reordered, and cell 3 is new: it starts from its first value.
        let f = m.measure(
            &cfg,
            [1.0, 0.0],
            &[(3, -60.0), (2, -70.0), (1, -100.0)],
            &mut rng,
        );
        assert_eq!(f, [(3, -60.0), (2, -80.0), (1, -90.0)]);
        let f = m.measure(&cfg, [2.0, 0.0], &[(1, -90.0), (3, -60.0)], &mut rng);
        assert_eq!(f, [(1, -90.0), (3, -60.0)]);
        // Cell 2 was left out: it is forgotten, and starts from its first value again.
        let f = m.measure(&cfg, [3.0, 0.0], &[(2, -50.0), (1, -70.0)], &mut rng);
        assert_eq!(f, [(2, -50.0), (1, -80.0)]);
    }

    #[test]
    fn each_cell_keeps_its_own_shadowing_whatever_the_order_it_comes_in() {
        // Standing still, the shadowing stays what it was (ρ = 1), and with k = 0 the
        // filter passes each value through: a value is its mean plus its cell's shadowing.
        let cfg = MeasureConfig {
            shadowing_db: 6.0,
            l3_k: 0,
            ..MeasureConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut m = UeMeasurer::default();
        let first = m.measure(&cfg, [0.0, 0.0], &[(1, 0.0), (2, 0.0), (3, 0.0)], &mut rng);
        let again = m.measure(
            &cfg,
            [0.0, 0.0],
            &[(3, -10.0), (1, -20.0), (2, -30.0)],
            &mut rng,
        );
        let shadow = |c: u32| first.iter().find(|x| x.0 == c).map(|x| x.1);
        for (c, mean) in [(3, -10.0), (1, -20.0), (2, -30.0)] {
            let got = again.iter().find(|x| x.0 == c).map(|x| x.1);
            let want = shadow(c).map(|s| mean + s);
            assert!(
                matches!((got, want), (Some(g), Some(w)) if (g - w).abs() < 1e-9),
                "cell {c}: {got:?} against {want:?}"
            );
        }
        // The draws differ per cell, or the test proves nothing.
        assert!(shadow(1) != shadow(2) && shadow(2) != shadow(3));
    }
}
