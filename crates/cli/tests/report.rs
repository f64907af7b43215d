//! The HTML report of a run, from outside: `edgeshift sim --mobility … --html F` (and
//! `sim --scenario`, `sim-demo`) writes one self-contained file that headless Chromium renders without a console
//! problem, with every chart in it; the screenshot is kept as a test artefact.

mod browser;
mod common;

use std::path::PathBuf;
use std::time::Duration;

use browser::{Cdp, chromium, open_page, screenshot};

const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sumo/fcd.xml.gz");

#[test]
fn the_city_report_renders_every_chart_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("city.html");
    let json = dir.path().join("city.json");
    let (ok, out) = common::edgeshift(&[
        "sim",
        "--mobility",
        &format!("sumo:{TRACE}"),
        "--ues",
        "12",
        "--duration",
        "60",
        "--state-mib",
        "32",
        "--strategy",
        "all",
        "--html",
        html.to_str().expect("utf-8 path"),
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{out}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the record")).expect("JSON");
    assert_eq!(record["strategies"].as_array().map(Vec::len), Some(5));
    renders(
        &html,
        &[
            ("#strategies tr.strategy", 5),
            ("#cdf polyline.series", 4),
            ("#cost rect.bar.hidden-share", 5),
            ("#cost rect.bar.shadow-cost", 5),
            ("#map .cell", 10),
            ("#map .server", 3),
            ("#map .track", 5),
            ("#map .relocation", 1),
            ("#load polyline.series", 5),
        ],
        |page| {
            let png = screenshot(page);
            let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("city-report.png");
            std::fs::write(&shot, &png).expect("write screenshot");
            eprintln!("screenshot: {}", shot.display());
        },
    );
}

#[test]
fn sim_demo_and_a_scenario_run_write_the_same_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo.html");
    let (ok, out) = common::edgeshift(&[
        "sim-demo",
        "--state-mib",
        "4",
        "--html",
        demo.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{out}");
    let scenario = dir.path().join("corridor.html");
    let (ok, out) = common::edgeshift(&[
        "sim",
        "--scenario",
        "corridor",
        "--strategy",
        "shadow-jit",
        "--html",
        scenario.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&scenario).expect("the report");
    assert!(text.contains("scenario corridor (shadow-jit)"), "{text}");
    let demo_text = std::fs::read_to_string(&demo).expect("the report");
    assert!(
        demo_text.contains(" 4 MiB of state per service"),
        "{demo_text}"
    );
    // Without a browser too: both strategies' lines in the CDF and the load chart (live
    // instances and shadows each), and the one relocation of the shadow run on the map.
    let count = |text: &str, chart: &str, what: &str| {
        let start = text.find(&format!("<svg id=\"{chart}\"")).expect(chart);
        let end = start + text[start..].find("</svg>").expect("svg end");
        text[start..end].matches(what).count()
    };
    assert_eq!(count(&demo_text, "cdf", "class=\"series\""), 2);
    assert_eq!(count(&demo_text, "load", "class=\"series\""), 4);
    assert_eq!(count(&demo_text, "map", "class=\"relocation hidden\""), 1);
    assert_eq!(count(&text, "load", "class=\"series\""), 2);
    // fig4: shadow and cold, three cells and servers, one UE that relocates.
    for (html, strategies, cells) in [(&demo, 2, 3), (&scenario, 1, 10)] {
        renders(
            html,
            &[
                ("#strategies tr.strategy", strategies),
                ("#cdf polyline.series", strategies),
                ("#cost rect.bar.hidden-share", strategies),
                ("#map .cell", cells),
                ("#map .track", 1),
                ("#map .relocation", 1),
                ("#load polyline.series", strategies),
            ],
            |_| {},
        );
    }
}

/// Checks that `html` is self-contained and that headless Chromium renders it with at least
/// `min` elements of each selector, every chart with a size and no console problem, and
/// hands the page to `then`; says SKIPPED where Chromium is not installed.
fn renders(html: &std::path::Path, expect: &[(&str, u64)], then: impl FnOnce(&mut Cdp)) {
    let text = std::fs::read_to_string(html).expect("the report");
    // Self-contained: nothing is fetched from anywhere.
    for outside in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(
            !text.contains(outside),
            "the report refers outside: {outside}"
        );
    }
    let Some(exe) = chromium() else {
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium, or run .ci/run)");
        return;
    };
    let profile = tempfile::tempdir().expect("profile");
    let url = format!("file://{}", html.display());
    let (_browser, mut page) = open_page(&exe, profile.path(), &url);
    let mut loaded = false;
    for _ in 0..120 {
        if page.eval("document.readyState") == "complete" {
            loaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(loaded, "the page did not load");
    for (sel, min) in expect {
        let n = page.count(sel);
        assert!(n >= *min, "{sel}: {n} elements in {}", html.display());
    }
    // Every chart has a size on screen.
    for id in ["cdf", "cost", "map", "load"] {
        let w = page
            .eval(&format!(
                "document.getElementById('{id}').getBoundingClientRect().width"
            ))
            .as_f64()
            .unwrap_or(0.0);
        assert!(w > 100.0, "#{id} is {w} px wide");
    }
    then(&mut page);
    page.eval("1");
    assert!(
        page.problems().is_empty(),
        "console: {:#?}",
        page.problems()
    );
}
