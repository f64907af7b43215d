//! The cells a UE measures. With a measurement radius (`radio.measure_radius_m`), a UE
//! measures the cells within it and its serving cell; without one, every cell.
//!
//! The cells within the radius are found through a grid of squares, each listing the cells
//! near enough to some point of it, so a measurement costs the same in a city of 40 cells
//! as in one of 4,000. Build a [`Nearby`] once per run (`Scenario::nearby`) and hand it to
//! every `Scenario::measure`.

use edgeshift_proto::CellId;

use crate::radio::Pos;
use crate::scenario::CellDef;

/// Squares of the grid at most (a run with a radius far below its extent gets coarser
/// squares, not an unbounded grid).
const MAX_SQUARES: f64 = 1_048_576.0;

/// The cells near any point, for one scenario's cells and measurement radius.
#[derive(Clone, Debug)]
pub struct Nearby {
    /// Cells in the scenario.
    count: usize,
    /// The grid; `None` without a radius (every cell is measured).
    grid: Option<Grid>,
}

#[derive(Clone, Debug)]
struct Grid {
    radius: f64,
    /// Lower-left corner (m) and side (m) of the squares; columns and rows.
    origin: Pos,
    side: f64,
    cols: usize,
    rows: usize,
    /// Square `k` (row-major) lists `items[starts[k]..starts[k + 1]]`: indices into the
    /// scenario's cells, ascending, of every cell within the radius of some point of it.
    starts: Vec<usize>,
    items: Vec<u32>,
    /// (cell id, index), by id.
    ids: Vec<(u32, u32)>,
}

impl Nearby {
    /// The index of `cells` for a UE that measures those within `radius` metres (0: every
    /// cell).
    #[must_use]
    pub fn new(cells: &[CellDef], radius: f64) -> Self {
        let grid = (radius > 0.0 && radius.is_finite() && !cells.is_empty())
            .then(|| Grid::new(cells, radius));
        Self {
            count: cells.len(),
            grid,
        }
    }

    /// Indices into `cells` (those this index was built from), ascending, of the cells a
    /// UE at `pos` measures: those within the radius and its serving cell, if any.
    #[must_use]
    pub fn at(&self, cells: &[CellDef], pos: Pos, serving: Option<CellId>) -> Vec<u32> {
        let Some(g) = &self.grid else {
            return (0..self.count)
                .filter_map(|i| u32::try_from(i).ok())
                .collect();
        };
        let r2 = g.radius * g.radius;
        let mut out: Vec<u32> = g
            .candidates(pos)
            .iter()
            .copied()
            .filter(|&i| {
                cells
                    .get(i as usize)
                    .is_some_and(|c| (c.x - pos[0]).powi(2) + (c.y - pos[1]).powi(2) <= r2)
            })
            .collect();
        let own = serving.and_then(|s| {
            g.ids
                .binary_search_by_key(&s.0, |&(id, _)| id)
                .ok()
                .and_then(|k| g.ids.get(k))
                .map(|&(_, i)| i)
        });
        if let Some(i) = own
            && let Err(at) = out.binary_search(&i)
        {
            out.insert(at, i);
        }
        out
    }
}

impl Grid {
    fn new(cells: &[CellDef], radius: f64) -> Self {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for c in cells {
            lo = [lo[0].min(c.x), lo[1].min(c.y)];
            hi = [hi[0].max(c.x), hi[1].max(c.y)];
        }
        // Points farther than the radius from every cell's box see none of them.
        let origin = [lo[0] - radius, lo[1] - radius];
        let extent = [hi[0] - lo[0] + 2.0 * radius, hi[1] - lo[1] + 2.0 * radius];
        // Squares of half the radius list about twice the cells a UE measures.
        let side = (radius / 2.0).max((extent[0] * extent[1] / MAX_SQUARES).sqrt());
        let cols = (extent[0] / side).ceil().max(1.0) as usize;
        let rows = (extent[1] / side).ceil().max(1.0) as usize;
        // A cell belongs to every square with a point within the radius of it: one whose
        // centre is within the radius plus half the square's diagonal (and a hair more, so
        // rounding cannot leave a corner out).
        let reach = (radius + side * std::f64::consts::FRAC_1_SQRT_2) * 1.000_001;
        let span = |v: f64, o: f64, n: usize| {
            let first = ((v - reach - o) / side).floor().max(0.0) as usize;
            let last = (((v + reach - o) / side).floor().max(0.0) as usize).min(n - 1);
            first..=last
        };
        let mut pairs: Vec<(usize, u32)> = Vec::new();
        for (i, c) in (0u32..).zip(cells) {
            for row in span(c.y, origin[1], rows) {
                for col in span(c.x, origin[0], cols) {
                    let centre = [
                        origin[0] + (col as f64 + 0.5) * side,
                        origin[1] + (row as f64 + 0.5) * side,
                    ];
                    if (c.x - centre[0]).hypot(c.y - centre[1]) <= reach {
                        pairs.push((row * cols + col, i));
                    }
                }
            }
        }
        // Cells were visited in order, so a stable sort by square keeps each ascending.
        pairs.sort_by_key(|p| p.0);
        let mut starts = vec![0; cols * rows + 1];
        for &(k, _) in &pairs {
            if let Some(s) = starts.get_mut(k + 1) {
                *s += 1;
            }
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        let mut ids: Vec<(u32, u32)> = (0u32..).zip(cells).map(|(i, c)| (c.id, i)).collect();
        ids.sort_unstable();
        Self {
            radius,
            origin,
            side,
            cols,
            rows,
            starts,
            items: pairs.into_iter().map(|p| p.1).collect(),
            ids,
        }
    }

    /// The cells listed for the square of `pos`: none outside the grid.
    fn candidates(&self, pos: Pos) -> &[u32] {
        let col = ((pos[0] - self.origin[0]) / self.side).floor();
        let row = ((pos[1] - self.origin[1]) / self.side).floor();
        if !(col >= 0.0 && row >= 0.0 && col < self.cols as f64 && row < self.rows as f64) {
            return &[];
        }
        let k = row as usize * self.cols + col as usize;
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&a), Some(&b)) => self.items.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(id: u32, x: f64, y: f64) -> CellDef {
        CellDef {
            id,
            x,
            y,
            server: 1,
            capacity: None,
            region: 0,
        }
    }

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Draw(u64);

    impl Draw {
        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
        }
    }

    #[test]
    fn a_ue_measures_exactly_the_cells_within_the_radius_and_its_serving_cell() {
        let mut draw = Draw(0x2545_F491_4F6C_DD1D);
        // Ids out of order, so an id is not its index.
        let cells: Vec<CellDef> = (0..300u32)
            .map(|i| {
                cell(
                    1000 - i * 3,
                    draw.range(0.0, 9_000.0),
                    draw.range(0.0, 4_000.0),
                )
            })
            .collect();
        let radius = 1_000.0;
        let near = Nearby::new(&cells, radius);
        let (mut some, mut none) = (0, 0);
        for n in 0..20_000 {
            let pos = [
                draw.range(-2_000.0, 11_000.0),
                draw.range(-2_000.0, 6_000.0),
            ];
            let serving = (n % 3 == 0).then(|| CellId(cells[n % cells.len()].id));
            let got = near.at(&cells, pos, serving);
            let want: Vec<u32> = (0u32..)
                .zip(&cells)
                .filter(|(_, c)| {
                    (c.x - pos[0]).powi(2) + (c.y - pos[1]).powi(2) <= radius * radius
                        || Some(CellId(c.id)) == serving
                })
                .map(|(i, _)| i)
                .collect();
            assert_eq!(got, want, "at {pos:?}");
            if want.len() > 1 {
                some += 1;
            } else {
                none += 1;
            }
        }
        // Both crowded and empty places were asked, or the test proves little.
        assert!(some > 1_000 && none > 1_000, "{some} crowded, {none} empty");
    }

    #[test]
    fn without_a_radius_every_cell_is_measured() {
        let cells = [cell(5, 0.0, 0.0), cell(2, 1e6, 0.0), cell(9, 0.0, -1e6)];
        let got = Nearby::new(&cells, 0.0).at(&cells, [1e9, 1e9], None);
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn a_radius_far_below_the_extent_gets_a_bounded_grid() {
        let cells = [cell(1, 0.0, 0.0), cell(2, 1e7, 1e7)];
        let near = Nearby::new(&cells, 10.0);
        let squares = near.grid.as_ref().map_or(0, |g| g.cols * g.rows);
        assert!(squares <= 2 * MAX_SQUARES as usize, "{squares} squares");
        assert_eq!(near.at(&cells, [5.0, 0.0], None), [0]);
        assert_eq!(near.at(&cells, [1e7, 1e7 + 9.0], None), [1]);
    }
}
