//! Cell layouts: a hexagonal grid with an inter-site distance laid over an area, or a list
//! of sites; ME servers assigned one per cell or in clusters.

/// One cell site.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Site {
    /// Cell id (1-based).
    pub id: u32,
    /// Position (m).
    pub x: f64,
    /// Position (m).
    pub y: f64,
}

/// The box `[min_x, min_y, max_x, max_y]` around `points`; `None` without a finite point.
#[must_use]
pub fn bounds(points: impl IntoIterator<Item = [f64; 2]>) -> Option<[f64; 4]> {
    let b = points
        .into_iter()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .fold(
            [
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ],
            |b, p| {
                [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ]
            },
        );
    b[0].is_finite().then_some(b)
}

/// A hexagonal grid of single-cell sites with inter-site distance `isd` (m) covering the
/// box `[min_x, min_y, max_x, max_y]` plus one ring of margin, so UEs at the edge of the
/// box have neighbours on every side.
#[must_use]
pub fn hex_grid(bounds: [f64; 4], isd: f64) -> Vec<Site> {
    let isd = isd.max(1.0);
    let row = isd * 3f64.sqrt() / 2.0;
    let (x0, y0) = (bounds[0] - isd, bounds[1] - row);
    let (x1, y1) = (bounds[2] + isd, bounds[3] + row);
    let mut sites = Vec::new();
    let mut r = 0usize;
    let mut y = y0;
    while y <= y1 + 1e-9 {
        let mut x = x0 + if r % 2 == 1 { isd / 2.0 } else { 0.0 };
        while x <= x1 + 1e-9 {
            sites.push(Site {
                id: sites.len() as u32 + 1,
                x,
                y,
            });
            x += isd;
        }
        r += 1;
        y += row;
    }
    sites
}

/// Parses a site list: one `x y` or `id x y` per line, `#` comments.
///
/// # Errors
/// The line number and what is wrong.
pub fn parse_sites(text: &str) -> Result<Vec<Site>, String> {
    let mut sites = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let nums: Result<Vec<f64>, _> = line
            .split([' ', '\t', ','])
            .filter(|s| !s.is_empty())
            .map(str::parse::<f64>)
            .collect();
        let nums = nums.map_err(|e| format!("line {}: {e}", i + 1))?;
        let (id, x, y) = match nums.as_slice() {
            [x, y] => (sites.len() as u32 + 1, *x, *y),
            [id, x, y] if *id >= 1.0 && id.fract() == 0.0 => (*id as u32, *x, *y),
            _ => return Err(format!("line {}: expected `x y` or `id x y`", i + 1)),
        };
        sites.push(Site { id, x, y });
    }
    if sites.is_empty() {
        return Err("no sites".into());
    }
    Ok(sites)
}

/// ME server of each cell: one server per `cells_per_server` cells, nearest first in the
/// order of the sites (`1`: one server per cell).
#[must_use]
pub fn assign_servers(sites: &[Site], cells_per_server: u32) -> Vec<(u32, u32)> {
    let k = cells_per_server.max(1) as usize;
    sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id, (i / k) as u32 + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_neighbours_are_one_isd_apart() {
        let sites = hex_grid([0.0, 0.0, 2000.0, 2000.0], 500.0);
        assert!(sites.len() > 16);
        for a in &sites {
            let nearest = sites
                .iter()
                .filter(|b| b.id != a.id)
                .map(|b| ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(
                (nearest - 500.0).abs() < 1e-6,
                "site {} nearest {nearest}",
                a.id
            );
        }
    }

    #[test]
    fn bounds_box_the_finite_points() {
        let b = bounds([[3.0, -1.0], [f64::NAN, 9.0], [-2.0, 4.0]]);
        assert_eq!(b, Some([-2.0, -1.0, 3.0, 4.0]));
        assert_eq!(bounds([]), None);
    }

    #[test]
    fn site_lists_parse_with_line_numbers() {
        let s = parse_sites("# sites\n0 0\n500, 0\n7 250 433\n").expect("parses");
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].id, 7);
        assert_eq!(
            parse_sites("0 0\nnorth 3\n").expect_err("bad"),
            "line 2: invalid float literal"
        );
        assert_eq!(assign_servers(&s, 2), vec![(1, 1), (2, 1), (7, 2)]);
    }
}
