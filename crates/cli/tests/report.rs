//! The HTML report of a city run, from outside: `edgeshift sim --mobility … --html F`
//! writes one self-contained file that headless Chromium renders without a console
//! problem, with every chart in it; the screenshot is kept as a test artefact.

mod browser;
mod common;

use std::path::PathBuf;
use std::time::Duration;

use browser::{chromium, open_page, screenshot};

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
    let text = std::fs::read_to_string(&html).expect("the report");
    // Self-contained: nothing is fetched from anywhere.
    for outside in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(
            !text.contains(outside),
            "the report refers outside: {outside}"
        );
    }
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the record")).expect("JSON");
    assert_eq!(record["strategies"].as_array().map(Vec::len), Some(5));
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
    for (sel, min) in [
        ("#strategies tr.strategy", 5),
        ("#cdf polyline.series", 4),
        ("#cost rect.bar.hidden-share", 5),
        ("#cost rect.bar.shadow-cost", 5),
        ("#map .cell", 10),
        ("#map .server", 3),
        ("#map .track", 5),
        ("#map .relocation", 1),
        ("#load polyline.series", 5),
    ] {
        let n = page.count(sel);
        assert!(n >= min, "{sel}: {n} elements");
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
    let png = screenshot(&mut page);
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("city-report.png");
    std::fs::write(&shot, &png).expect("write screenshot");
    eprintln!("screenshot: {}", shot.display());
    page.eval("1");
    assert!(
        page.problems().is_empty(),
        "console: {:#?}",
        page.problems()
    );
}
