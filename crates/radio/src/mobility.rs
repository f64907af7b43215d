//! Synthetic mobility: random waypoint (with a non-zero minimum speed, so the average
//! speed does not decay), Gauss–Markov, and a Manhattan grid. All seeded.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A UE position generator stepped in fixed time increments.
pub trait Mobility {
    /// Advances by `dt` seconds and returns the new position.
    fn step(&mut self, dt: f64, rng: &mut dyn rand::RngCore) -> [f64; 2];
    /// The current position.
    fn position(&self) -> [f64; 2];
}

/// Random waypoint in a box: pick a point and a speed in `[min, max]`, go there, pause.
#[derive(Clone, Debug)]
pub struct RandomWaypoint {
    /// Area `[min_x, min_y, max_x, max_y]`.
    pub area: [f64; 4],
    /// Speed range (m/s); the minimum must be above zero.
    pub speed: (f64, f64),
    /// Pause at each waypoint (s).
    pub pause_s: f64,
    pos: [f64; 2],
    target: [f64; 2],
    v: f64,
    paused: f64,
}

impl RandomWaypoint {
    /// Starts at `start`.
    #[must_use]
    pub fn new(area: [f64; 4], speed: (f64, f64), pause_s: f64, start: [f64; 2]) -> Self {
        let speed = (speed.0.max(0.1), speed.1.max(speed.0.max(0.1)));
        Self {
            area,
            speed,
            pause_s,
            pos: start,
            target: start,
            v: speed.0,
            paused: 0.0,
        }
    }
}

impl Mobility for RandomWaypoint {
    fn step(&mut self, mut dt: f64, rng: &mut dyn rand::RngCore) -> [f64; 2] {
        while dt > 0.0 {
            if self.paused > 0.0 {
                let p = self.paused.min(dt);
                self.paused -= p;
                dt -= p;
                continue;
            }
            let (dx, dy) = (self.target[0] - self.pos[0], self.target[1] - self.pos[1]);
            let dist = (dx * dx + dy * dy).sqrt();
            if dist < 1e-9 {
                self.target = [
                    rng.random_range(self.area[0]..=self.area[2]),
                    rng.random_range(self.area[1]..=self.area[3]),
                ];
                self.v = rng.random_range(self.speed.0..=self.speed.1);
                continue;
            }
            let go = (self.v * dt).min(dist);
            self.pos = [self.pos[0] + dx / dist * go, self.pos[1] + dy / dist * go];
            dt -= go / self.v;
            if go >= dist {
                self.paused = self.pause_s;
            }
        }
        self.pos
    }

    fn position(&self) -> [f64; 2] {
        self.pos
    }
}

/// Gauss–Markov: speed and direction follow AR(1) processes around their means; the UE
/// turns back into the area at its border.
#[derive(Clone, Debug)]
pub struct GaussMarkov {
    /// Area `[min_x, min_y, max_x, max_y]`.
    pub area: [f64; 4],
    /// Memory (0: random walk, 1: straight line).
    pub alpha: f64,
    /// Mean speed (m/s).
    pub mean_speed: f64,
    /// Standard deviation of speed (m/s) and direction (rad).
    pub sigma: (f64, f64),
    pos: [f64; 2],
    speed: f64,
    dir: f64,
    mean_dir: f64,
}

impl GaussMarkov {
    /// Starts at `start` heading `dir` radians.
    #[must_use]
    pub fn new(
        area: [f64; 4],
        alpha: f64,
        mean_speed: f64,
        sigma: (f64, f64),
        start: [f64; 2],
        dir: f64,
    ) -> Self {
        Self {
            area,
            alpha: alpha.clamp(0.0, 1.0),
            mean_speed,
            sigma,
            pos: start,
            speed: mean_speed,
            dir,
            mean_dir: dir,
        }
    }
}

impl Mobility for GaussMarkov {
    fn step(&mut self, dt: f64, rng: &mut dyn rand::RngCore) -> [f64; 2] {
        let a = self.alpha;
        let k = (1.0 - a * a).sqrt();
        let z1: f64 = StandardNormal.sample(rng);
        let z2: f64 = StandardNormal.sample(rng);
        self.speed =
            (a * self.speed + (1.0 - a) * self.mean_speed + k * self.sigma.0 * z1).max(0.1);
        self.dir = a * self.dir + (1.0 - a) * self.mean_dir + k * self.sigma.1 * z2;
        let next = [
            self.pos[0] + self.speed * self.dir.cos() * dt,
            self.pos[1] + self.speed * self.dir.sin() * dt,
        ];
        let inside = next[0] >= self.area[0]
            && next[0] <= self.area[2]
            && next[1] >= self.area[1]
            && next[1] <= self.area[3];
        if inside {
            self.pos = next;
        } else {
            // Head back toward the centre.
            let c = [
                (self.area[0] + self.area[2]) / 2.0,
                (self.area[1] + self.area[3]) / 2.0,
            ];
            self.mean_dir = (c[1] - self.pos[1]).atan2(c[0] - self.pos[0]);
            self.dir = self.mean_dir;
        }
        self.pos
    }

    fn position(&self) -> [f64; 2] {
        self.pos
    }
}

/// Manhattan grid: streets every `block` metres; at each crossing the UE goes straight
/// (probability 1/2) or turns left or right (1/4 each).
#[derive(Clone, Debug)]
pub struct Manhattan {
    /// Area `[min_x, min_y, max_x, max_y]`.
    pub area: [f64; 4],
    /// Block length (m).
    pub block: f64,
    /// Speed (m/s).
    pub speed: f64,
    pos: [f64; 2],
    dir: (i8, i8),
    to_crossing: f64,
}

impl Manhattan {
    /// Starts at the crossing nearest `start`, heading east.
    #[must_use]
    pub fn new(area: [f64; 4], block: f64, speed: f64, start: [f64; 2]) -> Self {
        let block = block.max(1.0);
        let snap = |v: f64, lo: f64| lo + ((v - lo) / block).round() * block;
        Self {
            area,
            block,
            speed,
            pos: [snap(start[0], area[0]), snap(start[1], area[1])],
            dir: (1, 0),
            to_crossing: block,
        }
    }
}

impl Mobility for Manhattan {
    fn step(&mut self, dt: f64, rng: &mut dyn rand::RngCore) -> [f64; 2] {
        let mut left = self.speed * dt;
        while left > 0.0 {
            let go = left.min(self.to_crossing);
            self.pos = [
                self.pos[0] + f64::from(self.dir.0) * go,
                self.pos[1] + f64::from(self.dir.1) * go,
            ];
            left -= go;
            self.to_crossing -= go;
            if self.to_crossing <= 1e-9 {
                let r: f64 = rng.random();
                let (dx, dy) = self.dir;
                let mut d = if r < 0.5 {
                    (dx, dy)
                } else if r < 0.75 {
                    (-dy, dx)
                } else {
                    (dy, -dx)
                };
                let next = [
                    self.pos[0] + f64::from(d.0) * self.block,
                    self.pos[1] + f64::from(d.1) * self.block,
                ];
                if next[0] < self.area[0]
                    || next[0] > self.area[2]
                    || next[1] < self.area[1]
                    || next[1] > self.area[3]
                {
                    d = (-dx, -dy);
                }
                self.dir = d;
                self.to_crossing = self.block;
            }
        }
        self.pos
    }

    fn position(&self) -> [f64; 2] {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn walk(m: &mut dyn Mobility, seed: u64) -> Vec<[f64; 2]> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..600).map(|_| m.step(0.2, &mut rng)).collect()
    }

    #[test]
    fn models_are_seeded_and_stay_in_their_area() {
        let area = [0.0, 0.0, 2000.0, 2000.0];
        let mut models: Vec<Box<dyn Fn() -> Box<dyn Mobility>>> = vec![
            Box::new(move || {
                Box::new(RandomWaypoint::new(
                    area,
                    (1.0, 15.0),
                    2.0,
                    [1000.0, 1000.0],
                ))
            }),
            Box::new(move || {
                Box::new(GaussMarkov::new(
                    area,
                    0.85,
                    10.0,
                    (2.0, 0.4),
                    [1000.0, 1000.0],
                    0.3,
                ))
            }),
            Box::new(move || Box::new(Manhattan::new(area, 200.0, 12.0, [1000.0, 1000.0]))),
        ];
        for make in models.iter_mut() {
            let a = walk(&mut *make(), 7);
            let b = walk(&mut *make(), 7);
            let c = walk(&mut *make(), 8);
            assert_eq!(a, b, "same seed, same path");
            assert_ne!(a, c, "another seed, another path");
            assert!(a.iter().all(|p| p[0] >= -1e-6
                && p[0] <= 2000.0 + 1e-6
                && p[1] >= -1e-6
                && p[1] <= 2000.0 + 1e-6));
            let moved = a
                .windows(2)
                .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt())
                .sum::<f64>();
            assert!(moved > 100.0, "moved {moved} m in 120 s");
        }
    }
}
