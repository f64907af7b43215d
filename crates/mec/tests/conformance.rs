//! Every body the API produces, checked against the ETSI OpenAPI files of the version it
//! follows (MEC 021 v2.2.1, MEC 012 v2.2.1; `tests/etsi/`): responses of every route, and
//! every notification a scripted relocation causes, delivered over HTTP to a callback
//! server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use edgeshift_control::ControlEvent;
use edgeshift_mec::{Api, ApiConfig, CellInfo, Feed, Limits, Topology};
use edgeshift_proto::{
    CancelReason, Candidate, CellId, Instant, RadioReport, RelocationMode, ServerId, ServiceId,
    Timing, UeId,
};
use serde_json::{Value, json};

#[path = "support/etsi.rs"]
mod etsi;
use etsi::{etsi_dir, specs};

#[test]
fn the_copies_are_the_shared_files() {
    // The spec folder beside the repository, where there is one (not in every checkout).
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs/etsi-mec");
    if !shared.is_dir() {
        eprintln!("SKIPPED: no shared spec folder at {}", shared.display());
        return;
    }
    for (here, there) in [
        (
            "MEC021_AppMobilityService.yaml",
            "api-evangelist__etsi/openapi/mec/MEC021_AppMobilityService.yaml",
        ),
        (
            "RniAPI.yaml",
            "api-evangelist__etsi/openapi/mec/RniAPI.yaml",
        ),
        (
            "AdvantEDGE-meep-ams-swagger.yaml",
            "InterDigitalInc__AdvantEDGE/go-apps/meep-ams/api/swagger.yaml",
        ),
    ] {
        let a = std::fs::read(etsi_dir().join(here)).expect("copy");
        let b = std::fs::read(shared.join(there)).expect("shared");
        assert!(a == b, "{here} differs from the shared {there}");
    }
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    // A check that could not fail would prove nothing.
    let s = specs();
    let good = json!({
        "notificationType": "CellChangeNotification",
        "srcEcgi": {"plmn": {"mcc": "001", "mnc": "01"}, "cellId": "0000001"},
        "trgEcgi": [{"plmn": {"mcc": "001", "mnc": "01"}, "cellId": "0000003"}],
        "hoStatus": 1,
        "_links": [{"self": {"href": "http://x/rni/v2/subscriptions/1"}}],
        "subscription": [{"href": "http://x/rni/v2/subscriptions/1"}],
    });
    assert!(s.rnis.errors("CellChangeNotification", &good).is_empty());
    let mut bad = good.clone();
    bad["hoStatus"] = json!(9);
    assert!(!s.rnis.errors("CellChangeNotification", &bad).is_empty());
    let mut bad = good;
    bad["trgEcgi"] = json!([]);
    assert!(!s.rnis.errors("CellChangeNotification", &bad).is_empty());
    let bad = json!({"notificationType": "MobilityProcedureNotification", "associateId": ["a"],
        "mobilityStatus": "INTERHOST_MOVEOUT_TRIGGERED",
        "_links": {"subscription": {"href": "http://x"}}});
    assert!(
        !s.ams
            .errors("MobilityProcedureNotification", &bad)
            .is_empty()
    );
}

type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

async fn callback_server() -> (SocketAddr, Inbox) {
    let inbox: Inbox = Arc::default();
    async fn take(
        State(inbox): State<Inbox>,
        axum::extract::Path(path): axum::extract::Path<String>,
        axum::Json(v): axum::Json<Value>,
    ) -> axum::http::StatusCode {
        inbox.lock().expect("inbox").push((path, v));
        axum::http::StatusCode::NO_CONTENT
    }
    let app = Router::new()
        .route("/{path}", post(take))
        .with_state(inbox.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, inbox)
}

fn topology() -> Topology {
    Topology {
        scenario: "test".into(),
        strategy: "shadow".into(),
        cells: (1..=3)
            .map(|i| CellInfo {
                id: CellId(i),
                x: f64::from(i) * 500.0,
                y: 0.0,
                server: ServerId(i),
            })
            .collect(),
        servers: (1..=3)
            .map(|i| {
                (
                    ServerId(i),
                    Some(SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))),
                )
            })
            .collect(),
        ues: vec![(UeId(1), ServiceId(1))],
    }
}

fn now() -> Instant {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    Instant(u64::try_from(d.as_nanos()).expect("nanos"))
}

/// The API on a free loopback port, token `secret`, the three-cell topology.
async fn start(limits: Limits) -> Api {
    Api::start(
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec!["secret".into()],
            topology: topology(),
            limits,
            public_url: None,
        },
        Arc::new(now),
    )
    .await
    .expect("API")
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth("secret");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, v)
    }
}

/// Runs a relocation through the API's feed the way the control node reports it.
fn relocate(feed: &Feed, t0: Instant) {
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let events = [
        ControlEvent::ServiceDeployed {
            service: ServiceId(1),
            ue: UeId(1),
            cell: CellId(1),
            server: ServerId(1),
        },
        ControlEvent::RadioMeasured(RadioReport {
            ue: UeId(1),
            cell: CellId(1),
            serving_dbm: -85.0,
            neighbours: vec![(CellId(2), -95.5), (CellId(3), -150.0)],
        }),
        ControlEvent::HandoverPredicted {
            ue: UeId(1),
            source: CellId(1),
            candidates: vec![
                Candidate {
                    cell: CellId(3),
                    likelihood: 0.7,
                },
                Candidate {
                    cell: CellId(2),
                    likelihood: 0.3,
                },
            ],
            timing: Some(Timing::at_within(at(1000), Duration::from_millis(150))),
        },
        ControlEvent::ShadowsRequested {
            service: ServiceId(1),
            servers: vec![ServerId(2), ServerId(3)],
        },
        ControlEvent::ShadowReady {
            service: ServiceId(1),
            server: ServerId(3),
        },
        ControlEvent::HandoverExecuting {
            ue: UeId(1),
            source: CellId(1),
            target: CellId(3),
            at: at(1000),
        },
        ControlEvent::RelocationScheduled {
            service: ServiceId(1),
            ue: UeId(1),
            source: ServerId(1),
            target: ServerId(3),
            mode: RelocationMode::Hot,
            at: at(1000),
        },
        ControlEvent::RelocationTriggered {
            service: ServiceId(1),
            ue: UeId(1),
            source: ServerId(1),
            mode: RelocationMode::Hot,
            at: at(1000),
            target: ServerId(3),
        },
        ControlEvent::ShadowsDiscarded {
            service: ServiceId(1),
            servers: vec![ServerId(2)],
        },
        ControlEvent::RelocationCompleted {
            service: ServiceId(1),
            ue: UeId(1),
            from: ServerId(1),
            to: ServerId(3),
        },
        ControlEvent::HandoverCompleted {
            ue: UeId(1),
            source: CellId(1),
            target: CellId(3),
        },
        // A later handover that the target refuses, one that fails, a relocation that
        // fails, a prediction withdrawn.
        ControlEvent::HandoverCancelled {
            ue: UeId(1),
            source: CellId(3),
            target: CellId(2),
            reason: CancelReason::Rejected,
        },
        ControlEvent::HandoverCancelled {
            ue: UeId(1),
            source: CellId(3),
            target: CellId(2),
            reason: CancelReason::Failed,
        },
        ControlEvent::RelocationFailed {
            service: ServiceId(1),
            ue: UeId(1),
            source: ServerId(3),
            target: ServerId(2),
        },
        ControlEvent::HandoverPredicted {
            ue: UeId(1),
            source: CellId(3),
            candidates: vec![Candidate {
                cell: CellId(2),
                likelihood: 0.9,
            }],
            timing: None,
        },
        ControlEvent::HandoverPredicted {
            ue: UeId(1),
            source: CellId(3),
            candidates: vec![],
            timing: None,
        },
    ];
    for (i, e) in events.iter().enumerate() {
        feed.control(at(i as u64 * 10), e);
    }
}

async fn wait_for(inbox: &Inbox, n: usize) -> Vec<(String, Value)> {
    for _ in 0..100 {
        if inbox.lock().expect("inbox").len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    inbox.lock().expect("inbox").clone()
}

#[tokio::test]
async fn every_response_and_notification_follows_the_etsi_schemas() {
    let s = specs();
    let (cb, inbox) = callback_server().await;
    let api = start(Limits::default()).await;
    let c = Client {
        http: client(),
        base: format!("http://{}", api.local_addr()),
    };
    use reqwest::Method as M;

    // Registration: create, read, list, replace.
    let reg = json!({
        "serviceConsumerId": {"appInstanceId": "game-1"},
        "deviceInformation": [{"associateId": "10.45.0.1",
            "appMobilityServiceLevel": {"appMobilityServiceLevel": 3},
            "contextTransferState": 0}],
    });
    let (st, v) = c
        .call(M::POST, "/amsi/v1/app_mobility_services", Some(reg))
        .await;
    assert_eq!(st, 201, "{v}");
    s.ams.check("RegistrationInfo", &v);
    let id = v["appMobilityServiceId"].as_str().expect("id").to_owned();
    let (st, v) = c
        .call(
            M::GET,
            &format!("/amsi/v1/app_mobility_services/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    s.ams.check("RegistrationInfo", &v);
    let (st, v) = c.call(M::GET, "/amsi/v1/app_mobility_services", None).await;
    assert_eq!(st, 200);
    for r in v.as_array().expect("list") {
        s.ams.check("RegistrationInfo", r);
    }
    let mut upd = v[0].clone();
    upd["deviceInformation"][0]["contextTransferState"] = json!(1);
    let (st, v) = c
        .call(
            M::PUT,
            &format!("/amsi/v1/app_mobility_services/{id}"),
            Some(upd),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    s.ams.check("RegistrationInfo", &v);

    // Subscriptions of all four kinds, each asking for a test notification; the AMS one
    // filtered by the registered instance, the RNIS one wrapped as v2.2.1's file draws it.
    let url = |p: &str| format!("http://{cb}/{p}");
    let subs = [
        (
            "/amsi/v1/subscriptions",
            json!({"subscriptionType": "MobilityProcedureSubscription",
                "callbackReference": url("ams"), "requestTestNotification": true,
                "filterCriteria": {"appInstanceId": "game-1", "mobilityStatus": [1, 2, 3]}}),
            "MobilityProcedureSubscription",
        ),
        (
            "/amsi/v1/subscriptions",
            json!({"subscriptionType": "AdjacentAppInfoSubscription",
                "callbackReference": url("adj"), "requestTestNotification": true,
                "filterCriteria": {}}),
            "AdjacentAppInfoSubscription",
        ),
        (
            "/rni/v2/subscriptions",
            json!({"CellChangeSubscription": {"subscriptionType": "CellChangeSubscription",
                "callbackReference": url("cell"), "requestTestNotification": true,
                "filterCriteriaAssocHo": {"associateId": [{"type": 1, "value": "10.45.0.1"}],
                    "hoStatus": [1, 2, 3, 4, 5]}}}),
            "CellChangeSubscription",
        ),
        (
            "/rni/v2/subscriptions",
            json!({"subscriptionType": "MeasRepUeSubscription",
                "callbackReference": url("meas"), "requestTestNotification": true,
                "filterCriteriaAssocTri": {}}),
            "MeasRepUeSubscription",
        ),
    ];
    let mut hrefs = Vec::new();
    for (path, body, schema) in subs {
        let (st, v) = c.call(M::POST, path, Some(body)).await;
        assert_eq!(st, 201, "{v}");
        let spec = if path.starts_with("/amsi") {
            &s.ams
        } else {
            &s.rnis
        };
        spec.check(schema, &v);
        let href = v["_links"]["self"]["href"]
            .as_str()
            .expect("href")
            .to_owned();
        let local = href.trim_start_matches(&c.base).to_owned();
        let (st, got) = c.call(M::GET, &local, None).await;
        assert_eq!((st, &got), (200, &v));
        let (st, put) = c.call(M::PUT, &local, Some(v.clone())).await;
        assert_eq!((st, &put), (200, &v));
        hrefs.push(local);
    }
    for (path, q) in [
        ("/amsi/v1/subscriptions", ""),
        ("/amsi/v1/subscriptions", "?subscriptiontype=mobility_proc"),
        ("/rni/v2/subscriptions", ""),
        ("/rni/v2/subscriptions", "?subscription_type=cell_change"),
    ] {
        let (st, v) = c.call(M::GET, &format!("{path}{q}"), None).await;
        assert_eq!(st, 200);
        let spec = if path.starts_with("/amsi") {
            &s.ams
        } else {
            &s.rnis
        };
        spec.check("SubscriptionLinkList", &v);
        assert!(
            !v["_links"]["subscription"]
                .as_array()
                .expect("list")
                .is_empty()
        );
    }

    // The relocation.
    let t0 = now();
    relocate(&api.feed(), t0);
    let (st, v) = c
        .call(M::GET, "/amsi/v1/queries/adjacent_app_instances", None)
        .await;
    assert_eq!(st, 200);
    let adj = v.as_array().expect("list");
    assert_eq!(adj.len(), 0, "shadows are gone after the move: {v}");

    // 4 test notifications, MEC 021: triggered, completed, failed (filtered by the
    // registered instance), 4 adjacent changes; MEC 012: prepared, executing, completed,
    // rejected, cancelled, prepared, cancelled (withdrawn), one measurement report.
    let got = wait_for(&inbox, 4 + 3 + 4 + 7 + 1).await;
    let mut kinds = Vec::new();
    for (path, body) in &got {
        let t = body["notificationType"].as_str().expect("type");
        match (path.as_str(), t) {
            ("ams" | "adj", "TestNotification") => s.ams.check("TestNotification", body),
            ("cell" | "meas", "TestNotification") => s.rnis.check("TestNotification", body),
            ("ams", "MobilityProcedureNotification") => {
                s.ams.check("MobilityProcedureNotification", body);
                kinds.push(format!("ams:{}", body["mobilityStatus"]));
            }
            ("adj", "AdjacentAppInfoNotification") => {
                s.advantedge.check("AdjacentAppInfoNotification", body);
                kinds.push("adj".into());
            }
            ("cell", "CellChangeNotification") => {
                s.rnis.check("CellChangeNotification", body);
                kinds.push(format!("cell:{}", body["hoStatus"]));
            }
            ("meas", "MeasRepUeNotification") => {
                s.rnis.check("MeasRepUeNotification", body);
                kinds.push("meas".into());
            }
            other => panic!("unexpected notification {other:?}: {body}"),
        }
    }
    let order = |prefix: &str| -> Vec<String> {
        kinds
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    };
    assert_eq!(order("ams:"), ["ams:1", "ams:2", "ams:3"]);
    assert_eq!(
        order("cell:"),
        [
            "cell:1", "cell:2", "cell:3", "cell:4", "cell:5", "cell:1", "cell:5"
        ]
    );
    assert_eq!(order("meas").len(), 1);
    // Shadows requested, one discarded, the move (shadows gone), the failed relocation.
    assert_eq!(order("adj").len(), 4);
    // The prediction extension names both candidates with their likelihoods.
    let prep = got
        .iter()
        .find(|(p, b)| p == "cell" && b["hoStatus"] == 1)
        .expect("IN_PREPARATION");
    let ext = &prep.1["x-edgeshift-prediction"];
    assert_eq!(ext["candidates"].as_array().map(Vec::len), Some(2));
    assert_eq!(prep.1["trgEcgi"].as_array().map(Vec::len), Some(2));

    // Errors are ProblemDetails.
    for (m, path, body) in [
        (M::GET, "/amsi/v1/subscriptions/999", None),
        (
            M::POST,
            "/amsi/v1/subscriptions",
            Some(json!({"subscriptionType": "Nope", "filterCriteria": {}})),
        ),
        (
            M::POST,
            "/rni/v2/subscriptions",
            Some(json!({"subscriptionType": "CellChangeSubscription",
            "callbackReference": "ftp://x", "filterCriteriaAssocHo": {}})),
        ),
        (M::POST, "/rni/v2/subscriptions", Some(json!([1, 2]))),
        (
            M::POST,
            "/amsi/v1/app_mobility_services",
            Some(json!({"serviceConsumerId": 5})),
        ),
    ] {
        let (st, v) = c.call(m, path, body).await;
        assert!((400..500).contains(&st), "{path}: {st}");
        s.ams.check("ProblemDetails", &v);
        assert_eq!(v["status"], st);
    }

    // Deletions.
    for h in &hrefs {
        let (st, _) = c.call(M::DELETE, h, None).await;
        assert_eq!(st, 204);
        let (st, _) = c.call(M::GET, h, None).await;
        assert_eq!(st, 404);
    }
    let (st, _) = c
        .call(
            M::POST,
            &format!("/amsi/v1/app_mobility_services/{id}/deregister_task"),
            None,
        )
        .await;
    assert_eq!(st, 204);
}

#[tokio::test]
async fn subscriptions_expire_with_a_notification() {
    let s = specs();
    let (cb, inbox) = callback_server().await;
    let api = start(Limits::default()).await;
    let c = Client {
        http: client(),
        base: format!("http://{}", api.local_addr()),
    };
    let deadline = now() + Duration::from_millis(1500);
    let ts = json!({"seconds": deadline.as_nanos() / 1_000_000_000,
        "nanoSeconds": deadline.as_nanos() % 1_000_000_000});
    let (st, v) = c
        .call(
            reqwest::Method::POST,
            "/rni/v2/subscriptions",
            Some(json!({"subscriptionType": "CellChangeSubscription",
                "callbackReference": format!("http://{cb}/cell"),
                "filterCriteriaAssocHo": {}, "expiryDeadline": ts})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let got = wait_for(&inbox, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["notificationType"], "ExpiryNotification");
    s.rnis.check("ExpiryNotification", &got[0].1);
    let (st, _) = c
        .call(reqwest::Method::GET, "/rni/v2/subscriptions/1", None)
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_and_nothing_changes() {
    let api = start(Limits::default()).await;
    let base = format!("http://{}", api.local_addr());
    let http = client();
    let body = json!({"subscriptionType": "CellChangeSubscription",
        "callbackReference": "http://127.0.0.1:9/x", "filterCriteriaAssocHo": {}});
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic c2VjcmV0"),
        Some("Bearer "),
    ] {
        let mut r = http
            .post(format!("{base}/rni/v2/subscriptions"))
            .json(&body);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        let resp = r.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    for path in ["/dashboard/state", "/dashboard/state?access_token=wrong"] {
        let st = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get")
            .status();
        assert_eq!(st.as_u16(), 401, "{path}");
    }
    let st = http
        .get(format!("{base}/dashboard/state?access_token=secret"))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(st.as_u16(), 200);
    // The page and the OpenAPI document are public.
    for path in ["/", "/openapi.json"] {
        let st = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get")
            .status();
        assert_eq!(st.as_u16(), 200, "{path}");
    }
    let list = http
        .get(format!("{base}/rni/v2/subscriptions"))
        .bearer_auth("secret")
        .send()
        .await
        .expect("list")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(list["_links"]["subscription"], json!([]));
}

#[tokio::test]
async fn thousands_of_subscriptions_stay_bounded_and_a_hanging_callback_delays_nothing() {
    // A callback that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let (cb, inbox) = callback_server().await;
    let api = start(Limits {
        subscriptions: 2_000,
        registrations: 10,
    })
    .await;
    let c = Client {
        http: client(),
        base: format!("http://{}", api.local_addr()),
    };
    let sub = |url: String| {
        json!({"subscriptionType": "CellChangeSubscription", "callbackReference": url,
            "filterCriteriaAssocHo": {"hoStatus": [2]}})
    };
    let (st, _) = c
        .call(
            reqwest::Method::POST,
            "/rni/v2/subscriptions",
            Some(sub(format!("http://{cb}/good"))),
        )
        .await;
    assert_eq!(st, 201);
    for i in 1..2_000 {
        let (st, v) = c
            .call(
                reqwest::Method::POST,
                "/rni/v2/subscriptions",
                Some(sub(format!("http://{hang_addr}/h{}", i % 3))),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = c
        .call(
            reqwest::Method::POST,
            "/rni/v2/subscriptions",
            Some(sub(format!("http://{cb}/x"))),
        )
        .await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["status"], 429);
    // The answering callback gets every notification although 1,999 others hang (feeding
    // never waits: `Feed::control` is not async and only queues).
    let feed = api.feed();
    for i in 0..50 {
        feed.control(
            now(),
            &ControlEvent::HandoverExecuting {
                ue: UeId(1),
                source: CellId(1),
                target: CellId(2 + i % 2),
                at: now(),
            },
        );
    }
    let got = wait_for(&inbox, 50).await;
    assert_eq!(got.len(), 50, "the good callback got every notification");
}

/// An HTTP client (with the process's TLS provider set first).
fn client() -> reqwest::Client {
    edgeshift_mec::use_ring_for_tls();
    reqwest::Client::new()
}
