//! More UEs on a scenario's route: a handful for the live demo, thousands for scaling runs.

use crate::scenario::{Scenario, UeDef};

impl Scenario {
    /// Widens the scenario to `n` UEs: UE 2..=n follow the first UE's route, each starting
    /// 0.4 s later and 15 m further aside than the one before (`n` = 1 leaves the
    /// scenario's own UEs). Meant for a few UEs: the offsets grow with `n`.
    pub fn add_ues(&mut self, n: u32) {
        let Some(first) = self.ues.first().cloned().filter(|_| n > 1) else {
            return;
        };
        self.ues.truncate(1);
        for i in 1..n {
            let off = f64::from(i);
            self.ues.push(UeDef {
                id: first.id.saturating_add(i),
                speed_mps: first.speed_mps * (1.0 + 0.05 * (off % 3.0)),
                waypoints: first
                    .waypoints
                    .iter()
                    .map(|p| [p[0], p[1] + 15.0 * off])
                    .collect(),
                start_s: first.start_s + 0.4 * off,
                track: first.track.clone(),
            });
        }
    }

    /// Replaces the UEs with a crowd of `n` on the first UE's route whose density does
    /// not depend on `n`: starts spread evenly over `spread_s` seconds, lanes within 20 m
    /// of the route, speeds within ±10 % (a deterministic pattern, no randomness).
    pub fn crowd(&mut self, n: u32, spread_s: f64) {
        let Some(first) = self.ues.first().cloned() else {
            return;
        };
        let spread = if spread_s.is_finite() {
            spread_s.max(0.0)
        } else {
            0.0
        };
        self.ues = (0..n)
            .map(|i| {
                let lane = f64::from(i % 5) * 10.0 - 20.0;
                UeDef {
                    id: first.id.saturating_add(i),
                    speed_mps: first.speed_mps * (0.9 + 0.05 * f64::from(i % 5)),
                    waypoints: first
                        .waypoints
                        .iter()
                        .map(|p| [p[0], p[1] + lane])
                        .collect(),
                    start_s: first.start_s + spread * f64::from(i) / f64::from(n.max(1)),
                    track: first.track.clone(),
                }
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use crate::Scenario;

    #[test]
    fn a_crowd_keeps_its_density() {
        let mut s = Scenario::load("corridor").expect("built-in");
        s.crowd(1000, 50.0);
        assert_eq!(s.ues.len(), 1000);
        let ids: std::collections::BTreeSet<u32> = s.ues.iter().map(|u| u.id).collect();
        assert_eq!(ids.len(), 1000);
        assert!(s.ues.iter().all(|u| (0.0..50.0).contains(&u.start_s)));
        assert!(s.ues.iter().all(|u| u.waypoints[0][1].abs() <= 20.0 + 30.0));
    }

    #[test]
    fn add_ues_follows_the_first_route() {
        let mut s = Scenario::load("fig4").expect("built-in");
        s.add_ues(3);
        assert_eq!(s.ues.len(), 3);
        assert_eq!(s.ues[2].start_s, s.ues[0].start_s + 0.8);
    }
}
