//! The shipped SUMO sample parses; broken files give clear errors with line numbers.

use std::path::Path;

use edgeshift_radio::sumo::{FcdError, FcdTrace};

/// The sample shipped in the repository (a copy of `shared/data/sumo/fcd.xml.gz`).
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sumo/fcd.xml.gz");

#[test]
fn the_sample_trace_parses() {
    let trace = FcdTrace::load(Path::new(SAMPLE)).expect("sample parses");
    assert_eq!(trace.tracks.len(), 50);
    assert_eq!(trace.records(), 28_775);
    let b = trace.bounds();
    assert!(
        b[0] >= -2.0 && b[2] <= 2002.0 && b[1] >= -2.0 && b[3] <= 2002.0,
        "{b:?}"
    );
    let p = trace.position("0", 100.5).expect("vehicle 0 at 100.5 s");
    let (a, c) = (
        trace.position("0", 100.0).expect("at 100"),
        trace.position("0", 101.0).expect("at 101"),
    );
    assert!((p[0] - (a[0] + c[0]) / 2.0).abs() < 1e-9 && (p[1] - (a[1] + c[1]) / 2.0).abs() < 1e-9);
}

const EXCERPT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<fcd-export>
    <timestep time="0.00">
        <vehicle id="0" x="10.00" y="20.00" angle="0" type="DEFAULT_VEHTYPE" speed="0" pos="0" lane="a_0" slope="0"/>
    </timestep>
    <timestep time="1.00">
        <vehicle id="0" x="12.00" y="20.00" angle="0" type="DEFAULT_VEHTYPE" speed="2" pos="2" lane="a_0" slope="0"/>
        <vehicle id="1" x="5.00" y="5.00" angle="0" type="DEFAULT_VEHTYPE" speed="0" pos="0" lane="b_0" slope="0"/>
    </timestep>
</fcd-export>
"#;

#[test]
fn an_excerpt_parses_and_interpolates() {
    let t = FcdTrace::parse("excerpt", EXCERPT.as_bytes()).expect("parses");
    assert_eq!(t.tracks.len(), 2);
    assert_eq!(t.position("0", 0.5), Some([11.0, 20.0]));
    assert_eq!(t.position("1", 0.5), None, "vehicle 1 appears at 1 s");
}

#[test]
fn truncated_and_broken_files_name_the_line() {
    let cut = &EXCERPT[..EXCERPT.find("<vehicle id=\"1\"").expect("marker") + 30];
    let err = FcdTrace::parse("cut.xml", cut.as_bytes()).expect_err("truncated");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            FcdError::Syntax { line: 7, .. } | FcdError::Syntax { line: 8, .. }
        ),
        "{msg}"
    );
    assert!(msg.contains("cut.xml, line"), "{msg}");

    let cut_between = &EXCERPT[..EXCERPT
        .find("    <timestep time=\"1.00\">")
        .expect("marker")];
    let err = FcdTrace::parse("cut2.xml", cut_between.as_bytes())
        .expect_err("truncated between elements");
    assert!(err.to_string().contains("truncated"), "{err}");

    let bad = EXCERPT.replace("x=\"12.00\"", "x=\"twelve\"");
    let err = FcdTrace::parse("bad.xml", bad.as_bytes()).expect_err("bad number");
    assert!(matches!(&err, FcdError::Syntax { line: 7, .. }), "{err}");

    let dir = std::env::temp_dir().join(format!("edgeshift-fcd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let gz = dir.join("cut.xml.gz");
    let mut enc = flate2_bytes(EXCERPT.as_bytes());
    enc.truncate(enc.len() / 2);
    std::fs::write(&gz, enc).expect("write");
    let err = FcdTrace::load(&gz).expect_err("truncated gzip");
    assert!(
        matches!(err, FcdError::Gzip { .. } | FcdError::Syntax { .. }),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(
        FcdTrace::load(Path::new("/nonexistent/fcd.xml")),
        Err(FcdError::Io { .. })
    ));
}

fn flate2_bytes(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("compress");
    e.finish().expect("finish")
}
