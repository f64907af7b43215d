//! Road networks: the directed roads of a SUMO `.net.xml` (or a synthetic grid), the turns
//! allowed between them, and map matching of a position and heading to a road.
//!
//! An operator knows its road network; a handover predictor that knows which roads lie
//! ahead of a vehicle sees the cells it will cross seconds before its radio does.
//!
//! ```no_run
//! use edgeshift_radio::roads::RoadNet;
//! let net = RoadNet::load("data/sumo/grid.net.xml.gz".as_ref())?;
//! if let Some(at) = net.locate([100.0, 1.6], Some([1.0, 0.0])) {
//!     let ahead = net.next(at.road); // roads a vehicle can turn into at its end
//! }
//! # Ok::<(), edgeshift_radio::sumo::FcdError>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::sumo::{FcdError, attr, read_xml, syntax_at};

/// Farthest a position may lie from a road to be matched to it (m).
const MATCH_M: f64 = 12.0;
/// Side of the spatial index's buckets (m).
const BUCKET_M: f64 = 50.0;
/// Least cosine between a heading and the road's direction for a match.
const SAME_WAY: f64 = 0.5;

/// One directed road (a SUMO edge, through its first lane's centre line).
#[derive(Clone, Debug, PartialEq)]
pub struct Road {
    /// Its id in the network file.
    pub id: String,
    /// Centre line, in driving order (m).
    pub shape: Vec<[f64; 2]>,
    /// Distance along the shape at each of its points (m).
    cum: Vec<f64>,
    /// Speed limit (m/s).
    pub speed: f64,
    /// Junction it leaves and junction it reaches.
    ends: (String, String),
}

impl Road {
    fn new(id: String, shape: Vec<[f64; 2]>, speed: f64, ends: (String, String)) -> Self {
        let mut cum = Vec::with_capacity(shape.len());
        let mut d = 0.0;
        for (i, p) in shape.iter().enumerate() {
            if i > 0 {
                d += dist(shape[i - 1], *p);
            }
            cum.push(d);
        }
        Self {
            id,
            shape,
            cum,
            speed,
            ends,
        }
    }

    /// Length of the centre line (m).
    #[must_use]
    pub fn length(&self) -> f64 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    /// The point of the centre line nearest `pos`, on a segment that runs along `heading`
    /// (a unit vector; any segment when `None`): its distance from the start, and from
    /// `pos`.
    #[must_use]
    pub fn nearest(&self, pos: [f64; 2], heading: Option<[f64; 2]>) -> Option<(f64, f64)> {
        let mut best: Option<(f64, f64)> = None;
        for (k, w) in self.shape.windows(2).enumerate() {
            let d = [w[1][0] - w[0][0], w[1][1] - w[0][1]];
            let len = d[0].hypot(d[1]);
            if len <= 1e-9 {
                continue;
            }
            let u = [d[0] / len, d[1] / len];
            if let Some(h) = heading
                && h[0] * u[0] + h[1] * u[1] < SAME_WAY
            {
                continue;
            }
            let rel = [pos[0] - w[0][0], pos[1] - w[0][1]];
            let s = (rel[0] * u[0] + rel[1] * u[1]).clamp(0.0, len);
            let off = dist(pos, [w[0][0] + u[0] * s, w[0][1] + u[1] * s]);
            if best.is_none_or(|b| off < b.1) {
                best = Some((self.cum[k] + s, off));
            }
        }
        best
    }

    /// The point `along` metres from the start (clamped to the road).
    #[must_use]
    pub fn point_at(&self, along: f64) -> [f64; 2] {
        let i = self.cum.partition_point(|c| *c <= along);
        match (i.checked_sub(1), self.shape.get(i)) {
            (Some(a), Some(b)) => {
                let (ca, cb) = (self.cum[a], self.cum[i]);
                let f = if cb > ca {
                    (along - ca) / (cb - ca)
                } else {
                    0.0
                };
                let p = self.shape[a];
                [p[0] + (b[0] - p[0]) * f, p[1] + (b[1] - p[1]) * f]
            }
            (Some(_), None) => self.shape[self.shape.len() - 1],
            (None, _) => self.shape[0],
        }
    }
}

/// Where on the network a position lies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoadPos {
    /// Index of the road (into [`RoadNet::roads`]).
    pub road: usize,
    /// Distance from the road's start (m).
    pub along: f64,
    /// Distance of the position from the centre line (m).
    pub off: f64,
}

/// Directed roads, the turns between them, and a spatial index to match positions.
#[derive(Clone, Default, PartialEq)]
pub struct RoadNet {
    roads: Vec<Road>,
    /// Roads reachable from the end of each road, U-turns last.
    next: Vec<Vec<usize>>,
    /// The road in the opposite direction, if any.
    reverse: Vec<Option<usize>>,
    /// Roads with a segment near each bucket.
    index: BTreeMap<(i64, i64), Vec<usize>>,
}

impl std::fmt::Debug for RoadNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoadNet")
            .field("roads", &self.roads.len())
            .field("turns", &self.next.iter().map(Vec::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn bucket(p: [f64; 2]) -> (i64, i64) {
    (
        (p[0] / BUCKET_M).floor() as i64,
        (p[1] / BUCKET_M).floor() as i64,
    )
}

impl RoadNet {
    /// Reads a SUMO network (`.net.xml` or `.net.xml.gz`).
    ///
    /// # Errors
    /// The file cannot be read, is not well-formed XML, or holds no road.
    pub fn load(path: &Path) -> Result<Self, FcdError> {
        let text = read_xml(path)?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses SUMO network XML; `name` is used in errors. Internal (junction) edges are
    /// left out; a road's shape is its first lane's.
    ///
    /// # Errors
    /// Broken XML, a malformed shape or number, or no road at all.
    pub fn parse(name: &str, xml: &[u8]) -> Result<Self, FcdError> {
        let syntax = |pos: usize, what: String| syntax_at(name, xml, pos, what);
        let mut reader = Reader::from_reader(xml);
        let mut buf = Vec::new();
        // The edge being read (id, from, to) and whether it already has its lane.
        let mut edge: Option<(String, String, String, bool)> = None;
        let mut roads = Vec::new();
        let mut turns: Vec<(String, String)> = Vec::new();
        loop {
            let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| syntax(pos, e.to_string()))?;
            let (e, closes) = match &event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) => {
                    if e.name().as_ref() == b"edge" {
                        edge = None;
                    }
                    buf.clear();
                    continue;
                }
                Event::Eof => break,
                _ => {
                    buf.clear();
                    continue;
                }
            };
            let get = |key: &[u8]| attr(e, key).map_err(|what| syntax(pos, what));
            match e.name().as_ref() {
                b"edge" => {
                    let normal = get(b"function")?.is_none_or(|f| f == "normal");
                    edge = match (normal, get(b"id")?, get(b"from")?, get(b"to")?) {
                        (true, Some(id), Some(from), Some(to)) if !closes => {
                            Some((id, from, to, false))
                        }
                        _ => None,
                    };
                }
                b"lane" => {
                    if let Some((id, from, to, done)) = &mut edge
                        && !*done
                    {
                        *done = true;
                        let shape = get(b"shape")?
                            .ok_or_else(|| syntax(pos, "lane without shape".into()))?;
                        let shape = parse_shape(&shape).map_err(|w| syntax(pos, w))?;
                        let speed = match get(b"speed")? {
                            Some(v) => v
                                .parse::<f64>()
                                .ok()
                                .filter(|s| s.is_finite() && *s > 0.0)
                                .ok_or_else(|| syntax(pos, format!("speed {v:?}")))?,
                            None => 13.89,
                        };
                        if shape.len() >= 2 {
                            roads.push(Road::new(
                                id.clone(),
                                shape,
                                speed,
                                (from.clone(), to.clone()),
                            ));
                        }
                    }
                }
                b"connection" => {
                    if let (Some(from), Some(to)) = (get(b"from")?, get(b"to")?)
                        && !from.starts_with(':')
                    {
                        turns.push((from, to));
                    }
                }
                _ => {}
            }
            buf.clear();
        }
        if roads.is_empty() {
            return Err(FcdError::NoRoads(name.to_owned()));
        }
        let by_id: BTreeMap<&str, usize> = roads
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let mut next = vec![Vec::new(); roads.len()];
        for (from, to) in &turns {
            if let (Some(&a), Some(&b)) = (by_id.get(from.as_str()), by_id.get(to.as_str()))
                && !next[a].contains(&b)
            {
                next[a].push(b);
            }
        }
        // SUMO lists a U-turn at nearly every crossing; vehicles take one where nothing
        // else goes on.
        Ok(Self::build(roads, next, 1))
    }

    /// A grid of two-way roads every `block` metres over `area` (`[min_x, min_y, max_x,
    /// max_y]`), every turn allowed but the U-turn at a full crossing (at the edge of the
    /// area a vehicle may turn back): the roads of the synthetic Manhattan mobility.
    #[must_use]
    pub fn grid(area: [f64; 4], block: f64, speed: f64) -> Self {
        let block = block.max(1.0);
        let nx = ((area[2] - area[0]) / block).round().max(1.0) as i64;
        let ny = ((area[3] - area[1]) / block).round().max(1.0) as i64;
        let at = |i: i64, j: i64| [area[0] + i as f64 * block, area[1] + j as f64 * block];
        let mut roads = Vec::new();
        for i in 0..=nx {
            for j in 0..=ny {
                for (di, dj) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                    let (k, l) = (i + di, j + dj);
                    if (0..=nx).contains(&k) && (0..=ny).contains(&l) {
                        roads.push(Road::new(
                            format!("{i}_{j}-{k}_{l}"),
                            vec![at(i, j), at(k, l)],
                            speed,
                            (format!("{i}_{j}"), format!("{k}_{l}")),
                        ));
                    }
                }
            }
        }
        let mut starts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in roads.iter().enumerate() {
            starts.entry(r.ends.0.as_str()).or_default().push(i);
        }
        let next = roads
            .iter()
            .map(|r| starts.get(r.ends.1.as_str()).cloned().unwrap_or_default())
            .collect();
        // The Manhattan model turns back where the way it drew leaves the area: at the
        // edge, not at a full crossing.
        Self::build(roads, next, 3)
    }

    /// The network of `roads` and `next`; U-turns are dropped at crossings with at least
    /// `keep_uturns_below + 1` roads going on (and kept at smaller ones).
    fn build(roads: Vec<Road>, mut next: Vec<Vec<usize>>, keep_uturns_below: usize) -> Self {
        let ends: BTreeMap<(&str, &str), usize> = roads
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.ends.0.as_str(), r.ends.1.as_str()), i))
            .collect();
        let reverse: Vec<Option<usize>> = roads
            .iter()
            .map(|r| ends.get(&(r.ends.1.as_str(), r.ends.0.as_str())).copied())
            .collect();
        for (i, n) in next.iter_mut().enumerate() {
            if let Some(back) = reverse[i]
                && n.len() > keep_uturns_below
            {
                n.retain(|r| *r != back);
            }
        }
        // Each road goes into the buckets around points along it, half a bucket apart:
        // every bucket within MATCH_M of the road (linear in its length, whatever its
        // direction).
        let mut index: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
        for (i, r) in roads.iter().enumerate() {
            for w in r.shape.windows(2) {
                let len = dist(w[0], w[1]);
                let steps = (len / (BUCKET_M / 2.0)).ceil().max(1.0) as usize;
                for k in 0..=steps {
                    let f = k as f64 / steps as f64;
                    let p = [
                        w[0][0] + (w[1][0] - w[0][0]) * f,
                        w[0][1] + (w[1][1] - w[0][1]) * f,
                    ];
                    let (bx, by) = bucket(p);
                    for dx in -1..=1 {
                        for dy in -1..=1 {
                            let v = index.entry((bx + dx, by + dy)).or_default();
                            if v.last() != Some(&i) {
                                v.push(i);
                            }
                        }
                    }
                }
            }
        }
        Self {
            roads,
            next,
            reverse,
            index,
        }
    }

    /// Every road.
    #[must_use]
    pub fn roads(&self) -> &[Road] {
        &self.roads
    }

    /// The road at `i`.
    #[must_use]
    pub fn road(&self, i: usize) -> Option<&Road> {
        self.roads.get(i)
    }

    /// Roads a vehicle can turn into at the end of `road` (a U-turn only where nothing
    /// else goes on).
    #[must_use]
    pub fn next(&self, road: usize) -> &[usize] {
        self.next.get(road).map_or(&[], Vec::as_slice)
    }

    /// The road nearest `pos` (within 12 m) that runs along `heading` (a unit vector; any
    /// direction when `None`).
    #[must_use]
    pub fn locate(&self, pos: [f64; 2], heading: Option<[f64; 2]>) -> Option<RoadPos> {
        let roads = self.index.get(&bucket(pos))?;
        let mut best: Option<RoadPos> = None;
        for &i in roads {
            if let Some((along, off)) = self.roads[i].nearest(pos, heading)
                && off <= MATCH_M
                && best.is_none_or(|b| off < b.off)
            {
                best = Some(RoadPos {
                    road: i,
                    along,
                    off,
                });
            }
        }
        best
    }
}

/// Largest coordinate a shape may have (m): a city, not a continent.
const MAX_COORD_M: f64 = 1e6;

/// `"x,y x,y …"` (a third coordinate, the height, is ignored).
fn parse_shape(s: &str) -> Result<Vec<[f64; 2]>, String> {
    s.split_whitespace()
        .map(|p| {
            let mut it = p.split(',').map(str::parse::<f64>);
            match (it.next(), it.next()) {
                (Some(Ok(x)), Some(Ok(y))) if x.is_finite() && y.is_finite() => {
                    if x.abs() > MAX_COORD_M || y.abs() > MAX_COORD_M {
                        Err(format!("shape point {p:?} is more than 1000 km out"))
                    } else {
                        Ok([x, y])
                    }
                }
                _ => Err(format!("shape point {p:?} is not x,y")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = r#"<net>
        <edge id=":J1_0" function="internal"><lane id=":J1_0_0" shape="99,0 101,0"/></edge>
        <edge id="AB" from="A" to="B"><lane id="AB_0" index="0" speed="10" shape="0,-1.6 100,-1.6"/></edge>
        <edge id="BA" from="B" to="A"><lane id="BA_0" index="0" shape="100,1.6 0,1.6"/></edge>
        <edge id="BC" from="B" to="C"><lane id="BC_0" index="0" shape="101.6,0 101.6,100"/></edge>
        <edge id="BD" from="B" to="D"><lane id="BD_0" index="0" shape="100,-1.6 200,-1.6"/></edge>
        <connection from="AB" to="BC" dir="l"/>
        <connection from="AB" to="BD" dir="s"/>
        <connection from="AB" to="BA" dir="t"/>
        <connection from=":J1_0" to="BC"/>
    </net>"#;

    #[test]
    fn a_sumo_network_gives_roads_turns_and_matches() {
        let net = RoadNet::parse("t", NET.as_bytes()).expect("parses");
        assert_eq!(net.roads().len(), 4);
        let ab = net.roads().iter().position(|r| r.id == "AB").expect("AB");
        let names: Vec<&str> = net
            .next(ab)
            .iter()
            .map(|i| net.roads()[*i].id.as_str())
            .collect();
        // The U-turn is left out where other roads go on.
        assert_eq!(names, ["BC", "BD"]);
        assert!((net.roads()[ab].length() - 100.0).abs() < 1e-9);
        assert!((net.roads()[ab].speed - 10.0).abs() < 1e-9);
        // Heading east at (40, 0) is on AB; heading west is on BA.
        let at = net.locate([40.0, 0.0], Some([1.0, 0.0])).expect("matched");
        assert_eq!((at.road, at.along.round()), (ab, 40.0));
        let back = net.locate([40.0, 0.0], Some([-1.0, 0.0])).expect("matched");
        assert_eq!(net.roads()[back.road].id, "BA");
        assert!(net.locate([40.0, 30.0], None).is_none());
        assert_eq!(net.roads()[ab].point_at(25.0), [25.0, -1.6]);
    }

    #[test]
    fn broken_networks_are_named() {
        let e = RoadNet::parse("n.xml", b"<net></net>").expect_err("empty");
        assert!(e.to_string().contains("no <edge>"), "{e}");
        let bad = br#"<net><edge id="A" from="a" to="b"><lane shape="0,0 x,1"/></edge></net>"#;
        let e = RoadNet::parse("n.xml", bad).expect_err("shape");
        assert!(e.to_string().contains("line 1"), "{e}");
        let far = br#"<net><edge id="A" from="a" to="b"><lane shape="0,0 1e300,1"/></edge></net>"#;
        let e = RoadNet::parse("n.xml", far).expect_err("far");
        assert!(e.to_string().contains("1000 km"), "{e}");
    }

    #[test]
    fn a_grid_turns_everywhere_but_back() {
        let net = RoadNet::grid([0.0, 0.0, 400.0, 400.0], 200.0, 12.0);
        // 3 × 3 crossings, 12 two-way roads.
        assert_eq!(net.roads().len(), 24);
        let at = net
            .locate([100.0, 200.0], Some([1.0, 0.0]))
            .expect("on a road");
        // Into the centre crossing: straight, left, right.
        assert_eq!(net.next(at.road).len(), 3);
        // At a corner: the one turn left, and back (the Manhattan model turns back
        // where the way it drew leaves the area).
        let corner = net
            .locate([0.0, 100.0], Some([0.0, -1.0]))
            .expect("on a road");
        assert_eq!(net.next(corner.road).len(), 2);
    }
}
