//! The ETSI MEC APIs of a running demo, from outside: an application subscribes over HTTP
//! and gets, for the demo's relocation, `IN_PREPARATION` → `TRIGGERED` → `COMPLETED`,
//! each valid against the ETSI schema; schemathesis finds nothing wrong with the server's
//! own OpenAPI document; the dashboard shows the relocation in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod browser;
#[path = "../../mec/tests/support/etsi.rs"]
mod etsi;

use browser::{Proc, chromium, open_page, screenshot, which};

const TOKEN: &str = "test-token";

fn port() -> SocketAddr {
    edgeshift_etcd::loopback_port().expect("a free port")
}

fn demo(api: SocketAddr, extra: &[&str]) -> Proc {
    let mut args = vec![
        "demo".to_owned(),
        "--api".into(),
        api.to_string(),
        "--api-token".into(),
        TOKEN.into(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let child = Command::new(env!("CARGO_BIN_EXE_edgeshift"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    Proc(child)
}

fn http() -> reqwest::blocking::Client {
    edgeshift_mec::use_ring_for_tls();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_api(api: SocketAddr) {
    let c = http();
    wait_until("the API", Duration::from_secs(60), || {
        c.get(format!("http://{api}/openapi.json"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
}

fn subscribe(api: SocketAddr, path: &str, body: &Value) -> Value {
    let r = http()
        .post(format!("http://{api}{path}"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .expect("subscribe");
    assert_eq!(r.status().as_u16(), 201);
    r.json().expect("JSON")
}

type Received = Arc<Mutex<Vec<(Instant, String, Value)>>>;

/// A callback server: records every POST (time, path, JSON body) and answers 204.
fn callback_server() -> (SocketAddr, Received) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let g = g.clone();
            std::thread::spawn(move || serve_posts(conn, &g));
        }
    });
    (addr, got)
}

fn serve_posts(conn: TcpStream, got: &Received) {
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut len = 0;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        got.lock().expect("lock").push((Instant::now(), path, v));
        if w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn finish(mut p: Proc) -> (bool, String) {
    let mut out = String::new();
    if let Some(mut s) = p.0.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = p.0.stderr.take() {
        let _ = s.read_to_string(&mut out);
    }
    let ok = p.0.wait().is_ok_and(|s| s.success());
    (ok, out)
}

fn ts_ns(v: &Value) -> u64 {
    v["seconds"].as_u64().expect("seconds") * 1_000_000_000 + v["nanoSeconds"].as_u64().expect("ns")
}

#[test]
fn an_application_is_told_before_its_instance_moves_and_when_it_is_live() {
    let specs = etsi::specs();
    let api = port();
    let (cb, got) = callback_server();
    let d = demo(api, &["--start-after", "4"]);
    wait_for_api(api);
    // A registered application instance serving UE 1 (10.45.0.1), and its subscriptions.
    let reg = http()
        .post(format!("http://{api}/amsi/v1/app_mobility_services"))
        .bearer_auth(TOKEN)
        .json(&json!({"serviceConsumerId": {"appInstanceId": "game-1"},
            "deviceInformation": [{"associateId": "10.45.0.1"}]}))
        .send()
        .expect("register");
    assert_eq!(reg.status().as_u16(), 201);
    let s = subscribe(
        api,
        "/amsi/v1/subscriptions",
        &json!({"subscriptionType": "MobilityProcedureSubscription",
            "callbackReference": format!("http://{cb}/ams"),
            "filterCriteria": {"appInstanceId": "game-1", "mobilityStatus": [1, 2, 3]}}),
    );
    specs.ams.check("MobilityProcedureSubscription", &s);
    let s = subscribe(
        api,
        "/rni/v2/subscriptions",
        &json!({"subscriptionType": "CellChangeSubscription",
            "callbackReference": format!("http://{cb}/rni"),
            "filterCriteriaAssocHo": {"associateId": [{"type": 1, "value": "10.45.0.1"}],
                "hoStatus": [1, 2, 3, 4, 5]}}),
    );
    specs.rnis.check("CellChangeSubscription", &s);
    let (ok, out) = finish(d);
    assert!(ok, "the demo failed:\n{out}");
    wait_until("the notifications", Duration::from_secs(10), || {
        let g = got.lock().expect("lock");
        g.iter()
            .any(|(_, p, b)| p == "/ams" && b["mobilityStatus"] == 2)
            && g.iter().any(|(_, p, b)| p == "/rni" && b["hoStatus"] == 3)
    });
    let got = got.lock().expect("lock").clone();
    for (_, path, body) in &got {
        match path.as_str() {
            "/ams" => specs.ams.check("MobilityProcedureNotification", body),
            "/rni" => specs.rnis.check("CellChangeNotification", body),
            other => panic!("callback {other}"),
        }
    }
    let first = |path: &str, field: &str, value: u64| {
        got.iter()
            .position(|(_, p, b)| p == path && b[field] == value)
            .unwrap_or_else(|| panic!("no {path} {field}={value} in {got:#?}"))
    };
    let prep = first("/rni", "hoStatus", 1);
    let exec = first("/rni", "hoStatus", 2);
    let triggered = first("/ams", "mobilityStatus", 1);
    let completed = first("/ams", "mobilityStatus", 2);
    let cell_done = first("/rni", "hoStatus", 3);
    // Each callback receives its notifications in order...
    assert!(prep < exec && exec < cell_done, "{got:#?}");
    assert!(triggered < completed, "{got:#?}");
    // ...and the time stamps order them across callbacks: the prediction came before the
    // announced execution, the trigger at it, completion after it.
    let t = |i: usize| ts_ns(&got[i].2["timeStamp"]);
    let announced = ts_ns(&got[triggered].2["x-edgeshift-relocation"]["executionTime"]);
    assert!(t(prep) < announced, "predicted after the handover");
    assert!(t(prep) < t(exec) && t(exec) <= t(triggered) && t(triggered) <= t(completed));
    assert!(t(completed) >= announced);
    // The notification names the target instance and the live target.
    let target = &got[triggered].2["targetAppInfo"];
    assert_eq!(target["appInstanceId"], "me3.svc1");
    assert_eq!(
        got[completed].2["targetAppInfo"]["appInstanceId"],
        "me3.svc1"
    );
    // The prediction extension lists the candidates the RAN predicted, with likelihoods.
    let ext = &got[prep].2["x-edgeshift-prediction"];
    assert!(!ext["candidates"].as_array().expect("candidates").is_empty());
    assert!(out.contains("final state matches twin: true"), "{out}");
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn schemathesis_finds_no_server_error_and_no_response_off_its_schema() {
    // .ci/run installs schemathesis into target/ci-tools/venv.
    let venv = workspace().join("target/ci-tools/venv/bin/schemathesis");
    let Some(st) = which("schemathesis", "EDGESHIFT_SCHEMATHESIS", &[venv]) else {
        eprintln!(
            "SKIPPED: schemathesis is not installed (pip install schemathesis, or run .ci/run)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let api = port();
    let config = dir.path().join("deployment.toml");
    let mut t = format!(
        "scenario = \"demo\"\nstrategy = \"shadow\"\nservice = \"arena\"\n\n[control]\n\
         listen = \"127.0.0.1:0\"\napi = \"{api}\"\napi_tokens = [\"{TOKEN}\"]\n"
    );
    for id in 1..=3 {
        t += &format!("\n[[edge]]\nid = {id}\nlisten = \"{}\"\n", port());
    }
    t += &format!(
        "\n[[ran]]\nname = \"ran1\"\ncells = [1, 2, 3]\nlisten = \"{}\"\n\n[[ue]]\nid = 1\nlisten = \"{}\"\n",
        port(),
        port()
    );
    // The API is what is tested here, over HTTP; the daemons' own links stay plaintext.
    t += "\n[tls]\ninsecure = true\n";
    std::fs::write(&config, t).expect("write deployment");
    let control = Proc(
        Command::new(env!("CARGO_BIN_EXE_edgeshift"))
            .args(["control", "--config", &config.display().to_string()])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start control"),
    );
    wait_for_api(api);
    let out = Command::new(&st)
        .current_dir(dir.path())
        .args([
            "run",
            &format!("http://{api}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {TOKEN}"),
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,\
             content_type_conformance,response_headers_conformance,unsupported_method,\
             ignored_auth,missing_required_header,use_after_free,ensure_resource_availability",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--generation-database",
            "none",
        ])
        .output()
        .expect("run schemathesis");
    drop(control);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schemathesis:\n{text}");
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn the_dashboard_shows_the_relocation_in_headless_chromium() {
    let Some(exe) = chromium() else {
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium, or run .ci/run)");
        return;
    };
    let api = port();
    // Long enough that the page is still live when the relocation is done.
    let d = demo(api, &["--duration", "40"]);
    wait_for_api(api);
    let c = http();
    wait_until("the relocation", Duration::from_secs(90), || {
        c.get(format!("http://{api}/dashboard/state"))
            .bearer_auth(TOKEN)
            .send()
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .is_some_and(|v| {
                v["relocations"].as_array().is_some_and(|r| {
                    r.iter()
                        .any(|x| x["outcome"] == "completed" && !x["hidden"].is_null())
                })
            })
    });
    let profile = tempfile::tempdir().expect("profile");
    let (_browser, mut page) = open_page(
        &exe,
        profile.path(),
        &format!("http://{api}/?token={TOKEN}"),
    );
    let start = Instant::now();
    let rows = loop {
        let n = page.count("tr.relocation[data-outcome=\"completed\"]");
        if n > 0 || start.elapsed() > Duration::from_secs(30) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(rows >= 1, "no completed relocation on the page");
    // The charts are there: the map with its cells, servers and the relocation arrow, the
    // timeline, the figures.
    for (sel, min) in [
        ("#map .cell", 3),
        ("#map .server", 3),
        ("#map .relocation-arrow", 1),
        ("#timeline *", 1),
        ("#figures *", 1),
    ] {
        let n = page.count(sel);
        assert!(n >= min, "{sel}: {n} elements");
    }
    let png = screenshot(&mut page);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).expect("write screenshot");
    eprintln!("screenshot: {}", out.display());
    // Let late console messages arrive, then check there were none.
    page.eval("1");
    assert!(
        page.problems().is_empty(),
        "console: {:#?}",
        page.problems()
    );
    drop(d);
}
