//! The A3-margin trend predictor: per neighbour, a least-squares line through the recent
//! A3 margins gives when the margin will cross zero; add the time to trigger and that is
//! the expected handover time. Likelihoods fall off with the ETA and with the scatter of
//! the margins around the line.

use std::collections::VecDeque;
use std::time::Duration;

use edgeshift_proto::{Candidate, CellId, Instant};

use crate::config::PredictorConfig;

/// One measurement as the predictors see it: time and per-neighbour A3 margin (dB above
/// the entering threshold; positive means the A3 condition holds).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// When it was measured.
    pub at: Instant,
    /// A3 margin of each neighbour (dB).
    pub margins: Margins,
}

/// A report's neighbours and their margins, held in the sample itself up to 3GPP's
/// `maxCellReport` (8): every prediction reads the whole history, and a UE's history
/// then lies in one buffer instead of one allocation per report.
pub type Margins = smallvec::SmallVec<[(CellId, f64); crate::MAX_REPORTED_NEIGHBOURS]>;

/// A prediction: candidates (most likely first, likelihoods summing to at most 1) and the
/// expected handover time. This is what a 1002 carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Candidate cells, most likely first.
    pub candidates: Vec<Candidate>,
    /// Expected handover time.
    pub eta: Instant,
    /// Uncertainty of `eta` (one standard deviation).
    pub uncertainty: Duration,
}

struct Fit {
    value_now: f64,
    slope: f64,
    resid_sd: f64,
}

fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let last_x = points.last().map_or(mx, |p| p.0);
    let value_now = my + slope * (last_x - mx);
    let ss: f64 = points
        .iter()
        .map(|p| (p.1 - (my + slope * (p.0 - mx))).powi(2))
        .sum();
    Some(Fit {
        value_now,
        slope,
        resid_sd: (ss / (n - 2.0).max(1.0)).sqrt(),
    })
}

/// Predicts from the recent samples; `a3_elapsed(cell)` tells how long the A3 condition
/// has already held for a neighbour.
pub(crate) fn predict(
    cfg: &PredictorConfig,
    ttt: Duration,
    history: &VecDeque<Sample>,
    now: Instant,
    a3_elapsed: impl Fn(CellId) -> Option<Duration>,
) -> Option<Prediction> {
    // Each cell's margins in sample order (the first, should a sample name a cell twice),
    // bucketed in passes over the history: a sample names every measured cell, so looking
    // each cell up in each sample would cost cells × samples × cells.
    let mut cells: Vec<CellId> = Vec::new();
    for s in history {
        for (c, _) in &s.margins {
            if let Err(at) = cells.binary_search(c) {
                cells.insert(at, *c);
            }
        }
    }
    // Per sample, each cell's first margin with its bucket.
    let mut seen = vec![usize::MAX; cells.len()];
    let mut entries: Vec<(usize, f64, f64)> = Vec::with_capacity(history.len() * cells.len());
    let mut start = vec![0usize; cells.len() + 1];
    for (n, s) in history.iter().enumerate() {
        let at = s.at.as_secs_f64() - now.as_secs_f64();
        for (c, m) in &s.margins {
            let Ok(k) = cells.binary_search(c) else {
                continue; // every cell was listed above
            };
            if seen[k] != n {
                seen[k] = n;
                entries.push((k, at, *m));
                start[k + 1] += 1;
            }
        }
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut all = vec![(0.0, 0.0); entries.len()];
    let mut next = start.clone();
    for (k, at, m) in entries {
        all[next[k]] = (at, m);
        next[k] += 1;
    }
    let mut found: Vec<(CellId, f64, f64)> = Vec::new(); // cell, eta seconds from now, confidence
    for (k, &cell) in cells.iter().enumerate() {
        let points = &all[start[k]..start[k + 1]];
        let Some(f) = fit(points) else { continue };
        if f.value_now < cfg.min_margin_db {
            continue;
        }
        let confidence = 1.0 / (1.0 + f.resid_sd / 2.0);
        let eta = if let Some(elapsed) = a3_elapsed(cell) {
            ttt.saturating_sub(elapsed).as_secs_f64()
        } else if f.value_now >= 0.0 {
            ttt.as_secs_f64()
        } else if f.slope >= cfg.min_slope_db_s {
            -f.value_now / f.slope + ttt.as_secs_f64()
        } else {
            continue;
        };
        if eta <= cfg.horizon.as_secs_f64() {
            found.push((cell, eta, confidence));
        }
    }
    if found.is_empty() {
        return None;
    }
    let best_eta = found.iter().map(|f| f.1).fold(f64::INFINITY, f64::min);
    let weights: Vec<f64> = found
        .iter()
        .map(|f| (-(f.1 - best_eta)).exp() * f.2)
        .collect();
    let total: f64 = weights.iter().sum();
    let top_conf = found.iter().map(|f| f.2).fold(0.0, f64::max);
    let mut candidates: Vec<Candidate> = found
        .iter()
        .zip(&weights)
        .map(|(f, w)| Candidate {
            cell: f.0,
            likelihood: (w / total * top_conf) as f32,
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.likelihood
            .total_cmp(&a.likelihood)
            .then(a.cell.cmp(&b.cell))
    });
    let uncertainty = Duration::from_secs_f64(0.2 + 0.3 * best_eta);
    Some(Prediction {
        candidates,
        eta: now + Duration::from_secs_f64(best_eta.max(0.0)),
        uncertainty,
    })
}

/// Combines a near-term and a far-term prediction: every candidate of either, with the
/// larger likelihood (scaled so they sum to at most 1); the near-term ETA when there is one.
pub(crate) fn merge(near: Option<Prediction>, far: Option<Prediction>) -> Option<Prediction> {
    let (near, far) = match (near, far) {
        (Some(n), Some(f)) => (n, f),
        (n, f) => return n.or(f),
    };
    let mut candidates = near.candidates.clone();
    for c in far.candidates {
        match candidates.iter_mut().find(|x| x.cell == c.cell) {
            Some(x) => x.likelihood = x.likelihood.max(c.likelihood),
            None => candidates.push(c),
        }
    }
    let total: f32 = candidates.iter().map(|c| c.likelihood).sum();
    if total > 1.0 {
        candidates.iter_mut().for_each(|c| c.likelihood /= total);
    }
    candidates.sort_by(|a, b| {
        b.likelihood
            .total_cmp(&a.likelihood)
            .then(a.cell.cmp(&b.cell))
    });
    Some(Prediction { candidates, ..near })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(slope: f64, start: f64) -> VecDeque<Sample> {
        (0..10)
            .map(|i| Sample {
                at: Instant::from_millis(200 * i),
                margins: smallvec::smallvec![
                    (CellId(2), start + slope * 0.2 * i as f64),
                    (CellId(3), -20.0),
                ],
            })
            .collect()
    }

    #[test]
    fn a_rising_margin_predicts_its_crossing() {
        let h = ramp(2.0, -10.0); // reaches -6.4 dB at t=1.8 s, crosses 0 at 5 s
        let now = Instant::from_millis(1800);
        let p = predict(
            &PredictorConfig::default(),
            Duration::from_millis(320),
            &h,
            now,
            |_| None,
        )
        .expect("prediction");
        assert_eq!(p.candidates.len(), 1);
        assert_eq!(p.candidates[0].cell, CellId(2));
        let eta = p.eta.as_secs_f64();
        assert!((eta - 5.32).abs() < 0.01, "eta {eta}");
        assert!(p.candidates[0].likelihood <= 1.0);
    }

    #[test]
    fn a_falling_margin_predicts_nothing() {
        let h = ramp(-1.0, -3.0);
        let p = predict(
            &PredictorConfig::default(),
            Duration::from_millis(320),
            &h,
            Instant::from_millis(1800),
            |_| None,
        );
        assert!(p.is_none());
    }

    /// A report that names a cell twice counts with its first margin, and cells listed in
    /// any order give the same prediction (the cells are bucketed, not looked up in order).
    #[test]
    fn a_cell_named_twice_counts_once_and_the_order_of_cells_does_not_matter() {
        let cfg = PredictorConfig::default();
        let ttt = Duration::from_millis(320);
        let now = Instant::from_millis(1800);
        let clean = ramp(2.0, -10.0);
        let mut noisy = clean.clone();
        for (i, s) in noisy.iter_mut().enumerate() {
            s.margins.reverse();
            s.margins.push((CellId(2), 30.0 + i as f64));
            s.margins.insert(0, (CellId(9), -40.0));
        }
        let a = predict(&cfg, ttt, &clean, now, |_| None).expect("a crossing");
        let b = predict(&cfg, ttt, &noisy, now, |_| None).expect("a crossing");
        assert_eq!(a, b);
    }
}
