//! Headless Chromium for the tests that look at pages: start it, drive a page over the
//! Chrome DevTools Protocol, collect console problems, take screenshots.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn which(name: &str, env: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    extra
        .iter()
        .cloned()
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file())
}

/// A minimal Chrome DevTools Protocol client over one websocket.
pub struct Cdp {
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
    events: Vec<Value>,
}

impl Cdp {
    pub fn connect(url: &str) -> Self {
        let rest = url.strip_prefix("ws://").expect("ws URL");
        let host = rest.split('/').next().expect("host");
        let stream = TcpStream::connect(host).expect("connect to chromium");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let (ws, _) = tungstenite::client(url, stream).expect("websocket");
        Self {
            ws,
            next: 1,
            events: Vec::new(),
        }
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(tungstenite::Message::text(msg)).expect("send");
        loop {
            let m = self.ws.read().expect("read");
            let tungstenite::Message::Text(t) = m else {
                continue;
            };
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// How many elements of the page match the CSS selector `sel`.
    pub fn count(&mut self, sel: &str) -> u64 {
        self.eval(&format!("document.querySelectorAll('{sel}').length"))
            .as_u64()
            .unwrap_or(0)
    }

    /// Console errors and warnings, uncaught exceptions, error log entries.
    pub fn problems(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => true,
                Some("Runtime.consoleAPICalled") => {
                    matches!(
                        e["params"]["type"].as_str(),
                        Some("error" | "warning" | "assert")
                    )
                }
                Some("Log.entryAdded") => {
                    matches!(
                        e["params"]["entry"]["level"].as_str(),
                        Some("error" | "warning")
                    )
                }
                _ => false,
            })
            .map(Value::to_string)
            .collect()
    }
}

pub fn chromium() -> Option<PathBuf> {
    which(
        "chromium",
        "EDGESHIFT_CHROMIUM",
        &[PathBuf::from("/usr/bin/chromium")],
    )
}

/// Starts headless Chromium; returns it and its browser websocket URL.
pub fn start_chromium(exe: &Path, profile: &Path) -> (Proc, String) {
    let mut child = Command::new(exe)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", profile.display()),
            "about:blank",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("stderr");
    let p = Proc(child);
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("chromium exited before listening")
            .expect("stderr line");
        if let Some(u) = line.split("DevTools listening on ").nth(1) {
            break u.trim().to_owned();
        }
    };
    // Keep draining its stderr so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (p, url)
}

/// Opens `url` in a new page of a fresh headless Chromium, with the runtime, log and page
/// domains on (so that [`Cdp::problems`] sees every console message).
pub fn open_page(exe: &Path, profile: &Path, url: &str) -> (Proc, Cdp) {
    let (browser, ws) = start_chromium(exe, profile);
    let mut b = Cdp::connect(&ws);
    let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
    let id = target["targetId"].as_str().expect("target id");
    let host = ws
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .expect("host");
    let mut page = Cdp::connect(&format!("ws://{host}/devtools/page/{id}"));
    page.call("Runtime.enable", json!({}));
    page.call("Log.enable", json!({}));
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": url }));
    (browser, page)
}

/// A PNG of the whole page.
pub fn screenshot(page: &mut Cdp) -> Vec<u8> {
    let shot = page.call(
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("png"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    png
}
