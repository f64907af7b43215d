//! The HTML report of a run (a city, a scenario of the simulator, or the live demo): one
//! self-contained file (no script, no network), its charts as inline SVG.
//!
//! `html::render(&report)` returns the page: the per-strategy table; the CDF of the
//! interruption each relocation added; hidden share and shadow cost side by side; a map of
//! cells, ME servers, sampled trajectories and where relocations happened (hidden or not);
//! the busiest server's live instances and the shadows held over time. Elements carry
//! classes (`.series`, `.bar`, `.cell`, `.server`, `.track`, `.relocation`) that tests and
//! style sheets can find.

use std::fmt::Write as _;

use edgeshift_world::Scenario;

use crate::city::CityReport;

/// One colour per strategy, in the order of the report.
const COLOURS: [&str; 8] = [
    "#7f7f7f", "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
];
/// Trajectories drawn on the map.
const TRACKS_DRAWN: usize = 16;
/// Relocation markers drawn on the map (the first ones of the run).
const MARKERS_DRAWN: usize = 3000;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// The page for `r`.
#[must_use]
pub fn render(r: &CityReport) -> String {
    let mut h = String::with_capacity(256 << 10);
    let title = format!("edgeshift run: {}", r.mobility);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    // Whole MiB as such, a module's odd size to a tenth.
    let mib = if (r.state_mib - r.state_mib.round()).abs() < 0.05 {
        format!("{:.0}", r.state_mib)
    } else {
        format!("{:.1}", r.state_mib)
    };
    let _ = writeln!(
        h,
        "<p class=\"world\">{} UEs, {} cells, {} ME servers, {:.0} s long, {mib} MiB of state \
         per service, {} Gbit/s backhaul, seed {}.</p>",
        r.ues, r.cells, r.servers, r.duration_s, r.backhaul_gbit, r.seed
    );
    table(&mut h, r);
    h.push_str("<div class=\"row\">\n");
    cdf(&mut h, r);
    cost(&mut h, r);
    h.push_str("</div>\n<div class=\"row\">\n");
    if let Some(s) = &r.scenario {
        map(&mut h, r, s);
    }
    load(&mut h, r);
    h.push_str("</div>\n</body></html>\n");
    h
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin:8px 0}\
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td:first-child{text-align:left}\
.row{display:flex;flex-wrap:wrap;gap:24px}.chart{border:1px solid #ddd;padding:8px}\
svg text{font:11px system-ui,sans-serif;fill:#333}.axis{stroke:#999;stroke-width:1}\
.grid{stroke:#eee;stroke-width:1}.series{fill:none;stroke-width:2}\
.track{fill:none;stroke:#999;stroke-width:1;opacity:.6}.cell{stroke:#fff;stroke-width:1}\
.server{stroke:#000;stroke-width:1.5}.hidden{fill:#2ca02c}.visible{fill:#d62728}";

fn table(h: &mut String, r: &CityReport) {
    h.push_str(
        "<table id=\"strategies\"><tr><th>strategy</th><th>handovers</th><th>relocations</th>\
         <th>hidden</th><th>added ms p50 / p99 / max</th><th>mispredicted</th>\
         <th>reactive</th><th>HO failures</th><th>ping-pongs</th><th>shadow GB</th>\
         <th>shadow MiB·s per UE·h</th><th>server load peak</th><th>violations</th>\
         <th>UE·s per wall s</th></tr>\n",
    );
    for (i, s) in r.strategies.iter().enumerate() {
        let hidden = s
            .hidden_share
            .map_or_else(|| "–".to_owned(), |x| format!("{:.1} %", x * 100.0));
        let p = &s.added_interruption_ms;
        let _ = writeln!(
            h,
            "<tr class=\"strategy\"><td><span style=\"color:{}\">■</span> {}</td><td>{}</td>\
             <td>{}</td><td>{hidden}</td><td>{:.1} / {:.1} / {:.1}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{:.2}</td><td>{:.0}</td><td>{}</td><td>{}</td>\
             <td>{:.0}</td></tr>",
            colour(i),
            esc(&s.strategy),
            s.handovers,
            s.relocations,
            p.p50,
            p.p99,
            p.max,
            s.mispredicted,
            s.reactive_fallbacks,
            s.handover_failures,
            s.pingpongs,
            s.shadow_bytes as f64 / 1e9,
            s.shadow_resource_s_per_ue_h,
            s.server_load_peak,
            s.invariant_violations,
            s.ue_s_per_wall_s
        );
    }
    h.push_str("</table>\n");
}

/// A chart frame: `<svg>` of `w` × `ht` with a title; returns the plot box
/// (left, top, width, height).
fn frame(h: &mut String, id: &str, title: &str, w: f64, ht: f64) -> (f64, f64, f64, f64) {
    let _ = write!(
        h,
        "<div class=\"chart\"><h2>{}</h2><svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\">",
        esc(title)
    );
    (50.0, 10.0, w - 70.0, ht - 50.0)
}

fn legend(h: &mut String, r: &CityReport, x: f64, y: f64) {
    for (i, s) in r.strategies.iter().enumerate() {
        let yy = y + 14.0 * i as f64;
        let _ = write!(
            h,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            yy - 9.0,
            colour(i),
            x + 14.0,
            yy,
            esc(&s.strategy)
        );
    }
}

/// The share of relocations that added at most x ms, x on a log scale from 0.1 ms.
fn cdf(h: &mut String, r: &CityReport) {
    let (l, t, w, ht) = frame(
        h,
        "cdf",
        "Added interruption per relocation (CDF)",
        520.0,
        320.0,
    );
    let max_ms = r
        .reports
        .iter()
        .flat_map(|x| x.relocation_records.iter().map(|y| y.added_ms))
        .fold(10.0f64, f64::max);
    let (lo, hi) = (0.1f64.log10(), max_ms.log10().ceil());
    let xof = |ms: f64| l + w * ((ms.max(0.1).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
    let yof = |p: f64| t + ht * (1.0 - p);
    axes(h, l, t, w, ht);
    let mut d = lo.ceil() as i32;
    while f64::from(d) <= hi {
        let x = xof(10f64.powi(d));
        let label = if d < 0 {
            format!("{}", 10f64.powi(d))
        } else {
            format!("{:.0}", 10f64.powi(d))
        };
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{t}\" x2=\"{x:.1}\" y2=\"{}\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            t + ht,
            t + ht + 14.0
        );
        d += 1;
    }
    let _ = write!(
        h,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ms added (≤ 0.1 at the left edge)</text>",
        l + w / 2.0,
        t + ht + 30.0
    );
    for p in [0.0, 0.5, 1.0] {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.0} %</text>",
            l - 4.0,
            yof(p) + 4.0,
            p * 100.0
        );
    }
    for (i, rep) in r.reports.iter().enumerate() {
        let mut v: Vec<f64> = rep.relocation_records.iter().map(|x| x.added_ms).collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let mut pts = format!("{:.1},{:.1}", xof(0.1), yof(0.0));
        for (k, ms) in v.iter().enumerate() {
            let (x, y0, y1) = (xof(*ms), yof(k as f64 / n), yof((k + 1) as f64 / n));
            let _ = write!(pts, " {x:.1},{y0:.1} {x:.1},{y1:.1}");
        }
        let _ = write!(pts, " {:.1},{:.1}", l + w, yof(1.0));
        let _ = write!(
            h,
            "<polyline class=\"series\" data-strategy=\"{}\" stroke=\"{}\" points=\"{pts}\"/>",
            esc(&rep.strategy),
            colour(i)
        );
    }
    legend(h, r, l + w - 80.0, t + ht - 70.0);
    h.push_str("</svg></div>\n");
}

fn axes(h: &mut String, l: f64, t: f64, w: f64, ht: f64) {
    let _ = write!(
        h,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
         <line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\"/>",
        t + ht,
        l + w,
        t + ht,
        t + ht
    );
}

/// Hidden share (bars up) and shadow cost (bars, log scale) per strategy.
fn cost(h: &mut String, r: &CityReport) {
    let (l, t, w, ht) = frame(
        h,
        "cost",
        "Hidden share and what the shadows cost",
        520.0,
        400.0,
    );
    // Room for the legend under the bars.
    let ht = ht - 80.0;
    axes(h, l, t, w / 2.0 - 20.0, ht);
    axes(h, l + w / 2.0 + 20.0, t, w / 2.0 - 20.0, ht);
    let n = r.strategies.len().max(1) as f64;
    let bw = (w / 2.0 - 30.0) / n;
    let max_cost = r
        .strategies
        .iter()
        .map(|s| s.shadow_resource_s_per_ue_h)
        .fold(1.0f64, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let bottom = t + ht;
    for (i, s) in r.strategies.iter().enumerate() {
        let x = l + 5.0 + bw * i as f64;
        let share = s.hidden_share.unwrap_or(0.0);
        let hidden = format!("{:.1} % hidden", share * 100.0);
        bar(
            h,
            ("hidden-share", i, &s.strategy),
            [x, bottom, bw * 0.8, ht * share],
            &hidden,
        );
        let c = s.shadow_resource_s_per_ue_h;
        let ch = if c >= 1.0 {
            ht * c.log10() / max_cost
        } else {
            0.0
        };
        let x2 = x + w / 2.0 + 20.0;
        let cost = format!("{c:.0} MiB·s per UE·h");
        bar(
            h,
            ("shadow-cost", i, &s.strategy),
            [x2, bottom, bw * 0.8, ch],
            &cost,
        );
    }
    let _ = write!(
        h,
        "<text x=\"{l}\" y=\"{}\">hidden (≤ 1 ms), 0–100 %</text>\
         <text x=\"{}\" y=\"{}\">shadow MiB·s per UE·h, log, up to 1e{max_cost}</text>",
        t + ht + 16.0,
        l + w / 2.0 + 20.0,
        t + ht + 16.0
    );
    legend(h, r, l + 10.0, t + ht + 32.0);
    h.push_str("</svg></div>\n");
}

/// One bar of `class` for strategy number `i`, standing on `bottom` at `x`: `[x, bottom,
/// width, height]`, with `what` as its tooltip.
fn bar(h: &mut String, (class, i, strategy): (&str, usize, &str), b: [f64; 4], what: &str) {
    let [x, bottom, width, height] = b;
    let _ = write!(
        h,
        "<rect class=\"bar {class}\" data-strategy=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" \
         width=\"{width:.1}\" height=\"{height:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
        esc(strategy),
        bottom - height,
        colour(i),
        esc(strategy),
        esc(what)
    );
}

/// Cells (coloured by server), servers, sampled tracks, relocations of the strategy with
/// shadows (shadow-jit if it ran) coloured by hidden or not.
fn map(h: &mut String, r: &CityReport, s: &Scenario) {
    let (mut x0, mut y0, mut x1, mut y1) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for c in &s.cells {
        (x0, y0, x1, y1) = (x0.min(c.x), y0.min(c.y), x1.max(c.x), y1.max(c.y));
    }
    if !x0.is_finite() {
        return;
    }
    let size = 560.0;
    let span = (x1 - x0).max(y1 - y0).max(1.0);
    let pad = 20.0;
    let px = |x: f64| pad + (x - x0) / span * (size - 2.0 * pad);
    let py = |y: f64| size - pad - (y - y0) / span * (size - 2.0 * pad);
    let shown = r
        .reports
        .iter()
        .position(|x| x.strategy == "shadow-jit")
        .or_else(|| {
            r.reports
                .iter()
                .position(|x| !x.relocation_records.is_empty())
        });
    let which = shown.map_or("none", |i| r.reports[i].strategy.as_str());
    let _ = write!(
        h,
        "<div class=\"chart\"><h2>Cells, ME servers, {TRACKS_DRAWN} trajectories, relocations of {} \
         (green hidden, red not)</h2><svg id=\"map\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\">",
        esc(which)
    );
    let radius =
        0.45 * s.cells.iter().skip(1).fold(span, |m, c| {
            let d = ((c.x - s.cells[0].x).powi(2) + (c.y - s.cells[0].y).powi(2)).sqrt();
            if d > 1.0 { m.min(d) } else { m }
        }) / span
            * (size - 2.0 * pad);
    for c in &s.cells {
        let hue = (c.server * 67) % 360;
        let _ = write!(
            h,
            "<circle class=\"cell\" data-server=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius:.1}\" \
             fill=\"hsl({hue},55%,88%)\"><title>cell {} (me{})</title></circle>",
            c.server,
            px(c.x),
            py(c.y),
            c.id,
            c.server
        );
    }
    for sv in &s.servers {
        let mine: Vec<_> = s.cells.iter().filter(|c| c.server == sv.id).collect();
        if mine.is_empty() {
            continue;
        }
        let cx = mine.iter().map(|c| c.x).sum::<f64>() / mine.len() as f64;
        let cy = mine.iter().map(|c| c.y).sum::<f64>() / mine.len() as f64;
        let hue = (sv.id * 67) % 360;
        let _ = write!(
            h,
            "<rect class=\"server\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" \
             fill=\"hsl({hue},60%,45%)\"><title>ME server me{}</title></rect>",
            px(cx) - 4.5,
            py(cy) - 4.5,
            sv.id
        );
    }
    let step = (s.ues.len() / TRACKS_DRAWN).max(1);
    for u in s.ues.iter().step_by(step).take(TRACKS_DRAWN) {
        let mut pts = String::new();
        let dt = (s.duration_s / 300.0).max(1.0);
        let mut t = 0.0;
        while t <= s.duration_s {
            let p = u.position(t);
            let _ = write!(pts, "{:.1},{:.1} ", px(p[0]), py(p[1]));
            t += dt;
        }
        let _ = write!(
            h,
            "<polyline class=\"track\" data-ue=\"{}\" points=\"{}\"/>",
            u.id,
            pts.trim_end()
        );
    }
    if let Some(i) = shown {
        for rec in r.reports[i].relocation_records.iter().take(MARKERS_DRAWN) {
            let Some(u) = rec
                .ue
                .strip_prefix("ue")
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(|id| s.ues.iter().find(|u| u.id == id))
            else {
                continue;
            };
            let p = u.position(rec.at_s);
            let class = if rec.added_ms <= 1.0 {
                "hidden"
            } else {
                "visible"
            };
            let _ = write!(
                h,
                "<circle class=\"relocation {class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\">\
                 <title>{} {} → {} at {:.1} s, +{:.1} ms</title></circle>",
                px(p[0]),
                py(p[1]),
                esc(&rec.ue),
                esc(&rec.from),
                esc(&rec.to),
                rec.at_s,
                rec.added_ms
            );
        }
    }
    h.push_str("</svg></div>\n");
}

/// Points of a line chart.
type Line = Vec<(f64, f64)>;

/// Over time, per strategy: the busiest server's live instances, and the shadows held.
fn load(h: &mut String, r: &CityReport) {
    let (l, t, w, ht) = frame(
        h,
        "load",
        "Server load over time: busiest server's live instances (solid), shadows held / 10 (dashed)",
        560.0,
        320.0,
    );
    axes(h, l, t, w, ht);
    let end = r.duration_s.max(1.0);
    let series: Vec<(Line, Line)> = r
        .loads
        .iter()
        .map(|ls| {
            let peak = ls
                .iter()
                .map(|x| {
                    (
                        x.t_s as f64,
                        f64::from(x.live.iter().copied().max().unwrap_or(0)),
                    )
                })
                .collect();
            let shadows = ls
                .iter()
                .map(|x| {
                    let n: u32 = x.shadows.iter().sum();
                    (x.t_s as f64, f64::from(n) / 10.0)
                })
                .collect();
            (peak, shadows)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(a, b)| a.iter().chain(b).map(|p| p.1))
        .fold(1.0f64, f64::max)
        .ceil();
    let xof = |s: f64| l + w * (s / end).clamp(0.0, 1.0);
    let yof = |v: f64| t + ht * (1.0 - v / top);
    // A small run's busiest server holds one or two instances: its middle tick is 0.5.
    let digits = usize::from(top < 4.0);
    for v in [0.0, top / 2.0, top] {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.digits$}</text>",
            l - 4.0,
            yof(v) + 4.0
        );
    }
    let _ = write!(
        h,
        "<text x=\"{l}\" y=\"{}\">0 s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{end:.0} s</text>",
        t + ht + 14.0,
        l + w,
        t + ht + 14.0
    );
    for (i, (peak, shadows)) in series.iter().enumerate() {
        let name = r.strategies.get(i).map_or("", |s| s.strategy.as_str());
        for (pts, dash) in [(peak, ""), (shadows, " stroke-dasharray=\"4 3\"")] {
            if pts.is_empty() {
                continue;
            }
            let p: Vec<String> = pts
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", xof(*x), yof(*y)))
                .collect();
            let _ = write!(
                h,
                "<polyline class=\"series\" data-strategy=\"{}\" stroke=\"{}\"{dash} points=\"{}\"/>",
                esc(name),
                colour(i),
                p.join(" ")
            );
        }
    }
    legend(h, r, l + w - 80.0, t + 14.0);
    h.push_str("</svg></div>\n");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
