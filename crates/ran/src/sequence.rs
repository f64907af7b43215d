//! Cell-sequence model with dwell times: each cell learns from its own past handovers
//! where UEs that came from cell `p` went next, and how long they stayed. Roads make these
//! sequences regular, so the model names the next cell long before the radio can, and its
//! prior sharpens the radio predictors' candidates. Purely local: no central learning.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeshift_proto::{Candidate, CellId, Instant};

use crate::predict::Prediction;

#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    n: u32,
    dwell_s: f64,
    dwell_s2: f64,
}

/// Transition counts and dwell times, keyed by the cell a UE came from (`None`: attached
/// here without a handover).
#[derive(Clone, Debug, Default)]
pub(crate) struct Sequences {
    by_from: BTreeMap<Option<CellId>, BTreeMap<CellId, Stat>>,
}

/// What the model expects of one UE.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prior {
    /// Next cells with their probabilities, most likely first.
    pub(crate) next: Vec<(CellId, f64)>,
    /// Mean dwell in this cell.
    pub(crate) dwell: Duration,
    /// Standard deviation of the dwell.
    pub(crate) dwell_sd: Duration,
    /// Handovers the prior rests on.
    pub(crate) n: u32,
}

/// Fewer handovers than this from one origin: fall back to all origins.
const MIN_FROM: u32 = 3;

impl Sequences {
    /// A UE that arrived from `from` left for `to` after `dwell`.
    pub(crate) fn learn(&mut self, from: Option<CellId>, to: CellId, dwell: Duration) {
        let s = self.by_from.entry(from).or_default().entry(to).or_default();
        let d = dwell.as_secs_f64();
        s.n += 1;
        s.dwell_s += d;
        s.dwell_s2 += d * d;
    }

    /// The prior of a UE that arrived from `from`.
    pub(crate) fn prior(&self, from: Option<CellId>) -> Option<Prior> {
        let total = |m: &BTreeMap<CellId, Stat>| m.values().map(|s| s.n).sum::<u32>();
        let own = self.by_from.get(&from).filter(|m| total(m) >= MIN_FROM);
        let merged;
        let stats = match own {
            Some(m) => m,
            None => {
                let mut all: BTreeMap<CellId, Stat> = BTreeMap::new();
                for m in self.by_from.values() {
                    for (c, s) in m {
                        let a = all.entry(*c).or_default();
                        a.n += s.n;
                        a.dwell_s += s.dwell_s;
                        a.dwell_s2 += s.dwell_s2;
                    }
                }
                merged = all;
                &merged
            }
        };
        let n = total(stats);
        if n < MIN_FROM {
            return None;
        }
        let nf = f64::from(n);
        let mut next: Vec<(CellId, f64)> = stats
            .iter()
            .map(|(c, s)| (*c, f64::from(s.n) / nf))
            .collect();
        next.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let sum: f64 = stats.values().map(|s| s.dwell_s).sum();
        let sum2: f64 = stats.values().map(|s| s.dwell_s2).sum();
        let mean = sum / nf;
        let var = (sum2 / nf - mean * mean).max(0.0);
        Some(Prior {
            next,
            dwell: Duration::from_secs_f64(mean),
            dwell_sd: Duration::from_secs_f64(var.sqrt()),
            n,
        })
    }
}

/// Weight of the prior against the radio's candidates: grows with the evidence.
fn prior_weight(n: u32) -> f64 {
    0.6 * f64::from(n) / (f64::from(n) + 10.0)
}

/// Blends the radio prediction with the sequence prior of a UE that has been here since
/// `since`. Without a radio prediction, the prior alone predicts when it is confident
/// (top probability `min_top` or more) and the expected departure is within `horizon`.
pub(crate) fn blend(
    radio: Option<Prediction>,
    prior: Option<&Prior>,
    since: Instant,
    now: Instant,
    horizon: Duration,
    min_top: f64,
) -> Option<Prediction> {
    let Some(prior) = prior else {
        return radio;
    };
    let p_of = |c: CellId| prior.next.iter().find(|x| x.0 == c).map_or(0.0, |x| x.1);
    match radio {
        Some(r) => {
            let w = prior_weight(prior.n);
            let mut cells: Vec<CellId> = r.candidates.iter().map(|c| c.cell).collect();
            // A likely next cell the radio does not see yet still deserves a shadow.
            cells.extend(prior.next.iter().filter(|x| x.1 >= 0.3).map(|x| x.0));
            cells.sort_unstable();
            cells.dedup();
            let radio_total: f64 = r.candidates.iter().map(|c| f64::from(c.likelihood)).sum();
            let mut candidates: Vec<Candidate> = cells
                .into_iter()
                .map(|cell| {
                    let rl = r
                        .candidates
                        .iter()
                        .find(|c| c.cell == cell)
                        .map_or(0.0, |c| f64::from(c.likelihood));
                    let l = (1.0 - w) * rl + w * p_of(cell) * radio_total.max(0.5);
                    Candidate {
                        cell,
                        likelihood: l as f32,
                    }
                })
                .filter(|c| c.likelihood > 0.0)
                .collect();
            normalise(&mut candidates);
            Some(Prediction { candidates, ..r })
        }
        None => {
            let top = prior.next.first()?;
            if top.1 < min_top {
                return None;
            }
            let expected = since + prior.dwell;
            // Overstayed: the departure is near, but when is anyone's guess.
            let eta = if expected > now {
                expected
            } else {
                now + Duration::from_secs(1)
            };
            if eta.saturating_duration_since(now) > horizon {
                return None;
            }
            let mut candidates: Vec<Candidate> = prior
                .next
                .iter()
                .filter(|x| x.1 >= 0.1)
                .map(|(cell, p)| Candidate {
                    cell: *cell,
                    likelihood: *p as f32,
                })
                .collect();
            normalise(&mut candidates);
            Some(Prediction {
                candidates,
                eta,
                uncertainty: prior.dwell_sd,
            })
        }
    }
}

fn normalise(c: &mut [Candidate]) {
    let total: f32 = c.iter().map(|x| x.likelihood).sum();
    if total > 1.0 {
        c.iter_mut().for_each(|x| x.likelihood /= total);
    }
    c.sort_by(|a, b| {
        b.likelihood
            .total_cmp(&a.likelihood)
            .then(a.cell.cmp(&b.cell))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_follows_the_roads_and_needs_evidence() {
        let mut s = Sequences::default();
        let from = Some(CellId(1));
        s.learn(from, CellId(3), Duration::from_secs(10));
        s.learn(from, CellId(3), Duration::from_secs(12));
        assert_eq!(s.prior(from), None, "two handovers are not evidence");
        s.learn(from, CellId(2), Duration::from_secs(11));
        s.learn(from, CellId(3), Duration::from_secs(11));
        let p = s.prior(from).expect("four handovers");
        assert_eq!(p.next[0], (CellId(3), 0.75));
        assert_eq!(p.dwell, Duration::from_secs(11));
        // Another origin without its own history borrows everyone's.
        assert_eq!(s.prior(Some(CellId(9))).map(|p| p.n), Some(4));
    }

    #[test]
    fn blending_keeps_likelihoods_a_distribution() {
        let mut s = Sequences::default();
        for _ in 0..20 {
            s.learn(None, CellId(3), Duration::from_secs(5));
        }
        let prior = s.prior(None);
        let radio = Prediction {
            candidates: vec![Candidate {
                cell: CellId(2),
                likelihood: 0.9,
            }],
            eta: Instant::from_millis(4000),
            uncertainty: Duration::from_millis(300),
        };
        let p = blend(
            Some(radio),
            prior.as_ref(),
            Instant::ZERO,
            Instant::from_millis(3000),
            Duration::from_secs(10),
            0.6,
        )
        .expect("a prediction");
        let total: f32 = p.candidates.iter().map(|c| c.likelihood).sum();
        assert!(total <= 1.0 + 1e-6);
        assert_eq!(p.candidates.len(), 2);
        // Without the radio, the prior alone predicts the departure after the mean dwell.
        let alone = blend(
            None,
            prior.as_ref(),
            Instant::ZERO,
            Instant::ZERO,
            Duration::from_secs(10),
            0.6,
        )
        .expect("a prior-only prediction");
        assert_eq!(alone.candidates[0].cell, CellId(3));
        assert_eq!(alone.eta, Instant::from_millis(5000));
    }
}
