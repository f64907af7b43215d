//! SUMO floating-car data (`--fcd-output`) import: gzip or plain XML, one track per
//! vehicle, positions interpolated at any time.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use thiserror::Error;

/// Why a trace could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FcdError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The XML is broken (or cut off) at a line.
    #[error("{path}, line {line}: {what}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The gzip stream ends early or is corrupt.
    #[error("{path}: the gzip stream is broken after line {line}: {source}")]
    Gzip {
        /// The file.
        path: String,
        /// Lines decoded before the break.
        line: usize,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// No vehicle positions at all.
    #[error("{0}: no <vehicle> records")]
    Empty(String),
    /// A road network without a single road.
    #[error("{0}: no <edge> with a lane shape (is it a SUMO .net.xml?)")]
    NoRoads(String),
}

/// The bytes of a `.xml` or `.xml.gz` file (gzip detected by content).
pub(crate) fn read_xml(path: &Path) -> Result<Vec<u8>, FcdError> {
    let name = path.display().to_string();
    let raw = std::fs::read(path).map_err(|source| FcdError::Io {
        path: name.clone(),
        source,
    })?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    if let Err(source) = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out) {
        let line = out.iter().filter(|b| **b == b'\n').count() + 1;
        return Err(FcdError::Gzip {
            path: name,
            line,
            source,
        });
    }
    Ok(out)
}

/// The 1-based line of byte `pos` of `xml`.
pub(crate) fn line_at(xml: &[u8], pos: usize) -> usize {
    xml[..pos.min(xml.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// `what` is wrong in file `name` at byte `pos` of its text `xml`.
pub(crate) fn syntax_at(name: &str, xml: &[u8], pos: usize, what: String) -> FcdError {
    FcdError::Syntax {
        path: name.to_owned(),
        line: line_at(xml, pos),
        what,
    }
}

/// The unescaped value of attribute `key` of `e`, if it has one.
pub(crate) fn attr(e: &BytesStart<'_>, key: &[u8]) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| err.to_string())?;
        if a.key.as_ref() == key {
            let v = a.unescape_value().map_err(|err| err.to_string())?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// One vehicle position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Time (s).
    pub t: f64,
    /// Position (m).
    pub x: f64,
    /// Position (m).
    pub y: f64,
}

/// All vehicle tracks of a trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FcdTrace {
    /// Samples per vehicle id, in time order.
    pub tracks: BTreeMap<String, Vec<Sample>>,
}

impl FcdTrace {
    /// Reads a `.xml` or `.xml.gz` file (detected by content).
    ///
    /// # Errors
    /// See [`FcdError`].
    pub fn load(path: &Path) -> Result<Self, FcdError> {
        let text = read_xml(path)?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses FCD XML text; `name` is used in errors.
    ///
    /// # Errors
    /// See [`FcdError`].
    pub fn parse(name: &str, xml: &[u8]) -> Result<Self, FcdError> {
        let syntax = |pos: usize, what: String| syntax_at(name, xml, pos, what);
        let mut reader = Reader::from_reader(xml);
        let mut buf = Vec::new();
        let mut trace = Self::default();
        let mut time: Option<f64> = None;
        // Open elements and where they opened: a file that ends inside one was cut off.
        let mut open: Vec<(Vec<u8>, usize)> = Vec::new();
        loop {
            let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| syntax(pos, e.to_string()))?;
            match event {
                Event::Start(ref e) => {
                    open.push((e.name().as_ref().to_vec(), pos));
                    trace.record(e, pos, &mut time, &syntax)?;
                }
                Event::Empty(ref e) => trace.record(e, pos, &mut time, &syntax)?,
                Event::End(_) => {
                    open.pop();
                }
                Event::Eof => {
                    if let Some((tag, at)) = open.last() {
                        let what = format!(
                            "the file ends inside <{}> opened on line {} (truncated?)",
                            String::from_utf8_lossy(tag),
                            line_at(xml, *at)
                        );
                        return Err(syntax(xml.len(), what));
                    }
                    break;
                }
                _ => {}
            }
            buf.clear();
        }
        if trace.tracks.is_empty() {
            return Err(FcdError::Empty(name.to_owned()));
        }
        Ok(trace)
    }

    fn record(
        &mut self,
        e: &BytesStart<'_>,
        pos: usize,
        time: &mut Option<f64>,
        syntax: &impl Fn(usize, String) -> FcdError,
    ) -> Result<(), FcdError> {
        let tag = e.name();
        let attr = |key: &[u8]| attr(e, key).map_err(|what| syntax(pos, what));
        let num = |key: &[u8]| -> Result<f64, FcdError> {
            let v = attr(key)?.ok_or_else(|| {
                syntax(
                    pos,
                    format!("missing attribute {}", String::from_utf8_lossy(key)),
                )
            })?;
            v.parse::<f64>().map_err(|_| {
                syntax(
                    pos,
                    format!("{} = {v:?} is not a number", String::from_utf8_lossy(key)),
                )
            })
        };
        match tag.as_ref() {
            b"timestep" => *time = Some(num(b"time")?),
            b"vehicle" | b"person" => {
                let t = time.ok_or_else(|| syntax(pos, "vehicle outside a timestep".into()))?;
                let id = attr(b"id")?.ok_or_else(|| syntax(pos, "vehicle without id".into()))?;
                let s = Sample {
                    t,
                    x: num(b"x")?,
                    y: num(b"y")?,
                };
                self.tracks.entry(id).or_default().push(s);
            }
            _ => {}
        }
        Ok(())
    }

    /// Position of `id` at time `t` (linear between samples; `None` outside its track).
    #[must_use]
    pub fn position(&self, id: &str, t: f64) -> Option<[f64; 2]> {
        let track = self.tracks.get(id)?;
        let i = track.partition_point(|s| s.t <= t);
        if i == 0 {
            return None;
        }
        let a = track[i - 1];
        let Some(b) = track.get(i) else {
            return (t - a.t <= 1e-9).then_some([a.x, a.y]);
        };
        let f = if b.t > a.t {
            (t - a.t) / (b.t - a.t)
        } else {
            0.0
        };
        Some([a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f])
    }

    /// The bounding box `[min_x, min_y, max_x, max_y]` of all samples.
    #[must_use]
    pub fn bounds(&self) -> [f64; 4] {
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for s in self.tracks.values().flatten() {
            b = [b[0].min(s.x), b[1].min(s.y), b[2].max(s.x), b[3].max(s.y)];
        }
        b
    }

    /// Number of position records.
    #[must_use]
    pub fn records(&self) -> usize {
        self.tracks.values().map(Vec::len).sum()
    }
}
