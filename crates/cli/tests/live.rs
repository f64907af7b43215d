//! The daemons as separate OS processes on loopback: a handover relocates the service
//! without losing or repeating an input; a control node killed during shadow sync comes
//! back from its database, or a standby replica takes over from etcd; garbage on a
//! daemon's port does not stop it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgeshift_edge::EdgeEvent;
use edgeshift_live::journal::{Record, UeSummary, read_journal};
use edgeshift_record::Observation;

fn port() -> SocketAddr {
    edgeshift_etcd::loopback_port().expect("a free port")
}

/// Waits for the one-at-a-time turn. A test that failed while holding it leaves nothing
/// behind to protect.
fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One cluster at a time: each is eight or more processes with real leases and timeouts,
/// and several at once on a small machine starve their heartbeats (a test of behaviour
/// must not become one of how busy the machine is).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Cluster {
    /// Held for the cluster's life (released after its processes are killed).
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    config: PathBuf,
    control: SocketAddr,
    edges: Vec<SocketAddr>,
    edge_metrics: Vec<SocketAddr>,
    children: Vec<(String, Child)>,
    with_control: bool,
}

impl Cluster {
    /// A cluster with mutual TLS, its certificates made by `edgeshift certs`.
    fn new(with_control: bool) -> Self {
        let c = Self::plaintext(with_control);
        let certs = c.path("certs");
        let out = Command::new(env!("CARGO_BIN_EXE_edgeshift"))
            .args(["certs", "--config", c.config.to_str().expect("utf-8")])
            .args(["--out", certs.to_str().expect("utf-8")])
            .output()
            .expect("edgeshift certs runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut t = std::fs::read_to_string(&c.config).expect("config");
        t = t.replace("insecure = true\n", "");
        t += &format!(
            "ca = \"{}\"\ndir = \"{}\"\n",
            certs.join("ca.pem").display(),
            certs.display()
        );
        std::fs::write(&c.config, t).expect("config written");
        c
    }

    /// A cluster on plaintext connections (`[tls] insecure = true`).
    fn plaintext(with_control: bool) -> Self {
        Self::plaintext_in_turn(take_turn(), with_control)
    }

    /// The same, in a turn its caller took (to start what the cluster needs first).
    fn plaintext_in_turn(turn: std::sync::MutexGuard<'static, ()>, with_control: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let control = port();
        let edges: Vec<SocketAddr> = (0..3).map(|_| port()).collect();
        let edge_metrics: Vec<SocketAddr> = (0..3).map(|_| port()).collect();
        let at = if with_control {
            "on_edge = 1".to_owned()
        } else {
            format!("listen = \"{control}\"")
        };
        let mut t = format!(
            "scenario = \"demo\"\nstrategy = \"shadow\"\nduration_s = 10.0\n\
             [control]\n{at}\ndb = \"{}\"\n",
            dir.path().join("control.redb").display()
        );
        for (i, (a, m)) in edges.iter().zip(&edge_metrics).enumerate() {
            t += &format!(
                "\n[[edge]]\nid = {}\nlisten = \"{a}\"\nmetrics = \"{m}\"\n",
                i + 1
            );
        }
        t += &format!(
            "\n[[ran]]\nname = \"ran1\"\ncells = [1, 2, 3]\nlisten = \"{}\"\n\n[[ue]]\nid = 1\nlisten = \"{}\"\n",
            port(),
            port()
        );
        t += "\n[emulation.edge]\nlatency_ms = 1.0\ngbit = 1.0\n[emulation.ue]\nlatency_ms = 1.0\n";
        t += "\n[tls]\ninsecure = true\n";
        let config = dir.path().join("deployment.toml");
        std::fs::write(&config, t).expect("config written");
        Self {
            _turn: turn,
            dir,
            config,
            control,
            edges,
            edge_metrics,
            children: Vec::new(),
            with_control,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_edgeshift"))
            .args(args)
            .args(["--config", self.config.to_str().expect("utf-8")])
            .args([
                "--journal",
                self.path(&format!("{name}.jsonl")).to_str().expect("utf-8"),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("edgeshift starts");
        self.children.push((name.to_owned(), child));
    }

    fn start_infrastructure(&mut self) {
        if self.with_control {
            self.spawn("edge1", &["edge", "--id", "1", "--with-control"]);
        } else {
            self.spawn("control", &["control"]);
            self.spawn("edge1", &["edge", "--id", "1"]);
        }
        for id in 2..=3 {
            self.spawn(&format!("edge{id}"), &["edge", "--id", &id.to_string()]);
        }
        self.spawn("ran", &["ran", "--name", "ran1"]);
    }

    fn start_ue(&mut self) -> Child {
        let json = self.path("ue1.json");
        let log = std::fs::File::create(self.path("ue1.log")).expect("log file");
        Command::new(env!("CARGO_BIN_EXE_edgeshift"))
            .args([
                "ue",
                "--id",
                "1",
                "--config",
                self.config.to_str().expect("utf-8"),
            ])
            .args(["--journal", self.path("ue1.jsonl").to_str().expect("utf-8")])
            .args(["--json", json.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("edgeshift ue starts")
    }

    fn kill(&mut self, name: &str) {
        if let Some((_, c)) = self.children.iter_mut().find(|(n, _)| n == name) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.retain(|(n, _)| n != name);
    }

    fn journal(&self, name: &str) -> Vec<Record> {
        read_journal(&self.path(&format!("{name}.jsonl"))).unwrap_or_default()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits for a relocation to land (`what` names it in the failure). It may land after
    /// the UE's run: a control node that took over late sends the 1006 its predecessor
    /// died with when the servers find it, which on a loaded machine can be after the
    /// UE's last input.
    fn wait_for_activation(&self, what: &str) {
        wait_for(what, Duration::from_secs(60), || self.activations() >= 1);
    }

    fn activations(&self) -> usize {
        (1..=3)
            .flat_map(|i| self.journal(&format!("edge{i}")))
            .filter(|r| {
                matches!(
                    r,
                    Record::Obs(Observation::Edge {
                        event: EdgeEvent::Activated { .. },
                        ..
                    })
                )
            })
            .count()
    }

    fn finish_ue(&self, mut ue: Child) -> UeSummary {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = ue.try_wait().expect("wait") {
                let text = std::fs::read_to_string(self.path("ue1.json")).unwrap_or_default();
                assert!(
                    status.success(),
                    "ue failed: {status}\n{text}\n--- ue log\n{}",
                    self.log("ue1")
                );
                return serde_json::from_str(&text).expect("UE summary JSON");
            }
            assert!(Instant::now() < deadline, "ue did not finish in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            // Keep the daemons' logs and journals of a failed test for a look.
            let kept = self.dir.path().with_extension("kept");
            if std::fs::rename(self.dir.path(), &kept).is_ok() {
                eprintln!("logs and journals kept in {}", kept.display());
            }
        }
    }
}

fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn garbage(addr: SocketAddr) {
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.write_all(b"\x00\x01 definitely not a frame \xff\xfe");
    }
    // A frame header that promises more than it sends, then a hang-up.
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.write_all(b"ES\x01\x00\x0b\xb8\x00\x00\x10\x00partial");
    }
}

/// Sends `msgs` from `from` to `to` (at `addr`) over mutual TLS with the certificate of
/// daemon `daemon` of the cluster.
fn certified_send(
    c: &Cluster,
    daemon: &str,
    from: edgeshift_proto::NodeId,
    to: edgeshift_proto::NodeId,
    addr: SocketAddr,
    msgs: Vec<edgeshift_proto::Message>,
) {
    use edgeshift_net::{LinkEmulation, Tls, Transport};
    let certs = c.path("certs");
    let tls = Tls::from_files(
        &certs.join("ca.pem"),
        &certs.join(format!("{daemon}.pem")),
        &certs.join(format!("{daemon}.key")),
    )
    .expect("the daemon's certificate");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (t, _inbox) = Transport::bind_tls(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            [from],
            [(to, addr)].into(),
            LinkEmulation::default(),
            Some(tls),
        )
        .await
        .expect("binds");
        for m in msgs {
            t.send(from, to, m).expect("queued");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.shutdown(Duration::from_secs(1)).await;
    });
}

/// Connects to `addr` claiming to be `from` and sends `msgs` to `to`.
fn forge(
    addr: SocketAddr,
    from: edgeshift_proto::NodeId,
    to: edgeshift_proto::NodeId,
    msgs: Vec<edgeshift_proto::Message>,
) -> Option<TcpStream> {
    use edgeshift_proto::{Hello, Lane, codec};
    let mut s = TcpStream::connect(addr).ok()?;
    let hello = codec::encode(
        &Hello {
            from,
            to,
            lane: Lane::Control,
        }
        .into(),
    )
    .ok()?;
    s.write_all(&hello).ok()?;
    for m in msgs {
        s.write_all(&codec::encode(&m).ok()?).ok()?;
    }
    Some(s)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn separate_processes_relocate_without_losing_an_input() {
    let mut c = Cluster::new(false);
    c.start_infrastructure();
    wait_for("edge metrics", Duration::from_secs(120), || {
        c.edge_metrics.iter().all(|m| TcpStream::connect(m).is_ok())
    });
    // Bad peers first: every daemon must drop them and keep serving.
    garbage(c.control);
    for e in c.edges.clone() {
        garbage(e);
    }
    let ue = c.start_ue();
    // Once me3 holds a shadow: a peer without a certificate that says it is the control node
    // tells me3 to drop it (refused in the TLS handshake); the UE, with its own certificate,
    // tells me3 to drop it and feeds it an input directly; the RAN agent, with its own,
    // orders a relocation as cell 2: roles that may not send these. The servers refuse and
    // count them all; the run is unchanged.
    wait_for("shadow sync", Duration::from_secs(120), || {
        c.journal("edge3")
            .iter()
            .any(|r| matches!(r, Record::Msg { code: 1004, .. }))
    });
    let forged = {
        use edgeshift_proto::*;
        let svc = ServiceId(1);
        let discard = Relocate {
            service: svc,
            action: RelocateAction::Discard {
                servers: vec![ServerId(3)],
            },
            timing: Timing::at(Instant(0)),
        };
        let relocate = Relocate {
            service: svc,
            action: RelocateAction::Relocate {
                source: ServerId(1),
                target: ServerId(2),
                mode: RelocationMode::Cold,
                epoch: 99,
            },
            timing: Timing::at(Instant(0)),
        };
        let input = ServiceInput {
            ue: UeId(1),
            service: svc,
            via: CellId(3),
            answered_below: 0,
            input: InputRecord {
                seq: 1_000_000,
                payload: vec![0xee; 32],
            },
        };
        let me = |i| NodeId::Server(ServerId(i));
        let plain = forge(
            c.edges[2],
            NodeId::CONTROL,
            me(3),
            vec![discard.clone().into()],
        );
        let ue1 = NodeId::Ue(UeId(1));
        let cell2 = NodeId::Cell(CellId(2));
        certified_send(
            &c,
            "ue1",
            ue1,
            me(3),
            c.edges[2],
            vec![discard.into(), input.into()],
        );
        certified_send(
            &c,
            "ran-ran1",
            cell2,
            me(1),
            c.edges[0],
            vec![relocate.into()],
        );
        plain
    };
    let s = c.finish_ue(ue);
    drop(forged);
    let rejected: f64 = c
        .edge_metrics
        .iter()
        .filter_map(|m| metric(*m, "edgeshift_rejected_messages_total"))
        .sum();
    assert!(rejected >= 3.0, "forged messages not counted: {rejected}");
    assert!(s.final_state_matches_twin, "{s:?}");
    assert_eq!(s.inputs_answered, s.inputs_sent);
    assert_eq!(s.live_last_seq, Some(s.inputs_sent));
    assert!(s.inputs_sent > 300, "{s:?}");
    assert!(!s.gaps.is_empty(), "no handover: {s:?}");
    c.wait_for_activation("a relocation");
    let activated: f64 = c
        .edge_metrics
        .iter()
        .filter_map(|m| metric(*m, "edgeshift_relocations_total{outcome=\"activated\"}"))
        .sum();
    assert!(activated >= 1.0, "metrics count no relocation");
    let errors: f64 = c
        .edge_metrics
        .iter()
        .filter_map(|m| metric(*m, "edgeshift_peer_errors_total"))
        .sum();
    assert!(errors >= 6.0, "bad peers not counted: {errors}");
    assert!(
        c.log("edge1").contains("dropping peer"),
        "{}",
        c.log("edge1")
    );
}

#[test]
fn a_control_node_killed_during_shadow_sync_resumes_from_its_database() {
    let mut c = Cluster::new(false);
    c.start_infrastructure();
    wait_for("edge metrics", Duration::from_secs(120), || {
        c.edge_metrics.iter().all(|m| TcpStream::connect(m).is_ok())
    });
    let ue = c.start_ue();
    // The first shadow transfer (1004) reaching a candidate server.
    wait_for("shadow sync", Duration::from_secs(120), || {
        (2..=3).any(|i| {
            c.journal(&format!("edge{i}"))
                .iter()
                .any(|r| matches!(r, Record::Msg { code: 1004, .. }))
        })
    });
    c.kill("control");
    std::thread::sleep(Duration::from_millis(500));
    c.spawn("control-2", &["control"]);
    let s = c.finish_ue(ue);
    assert!(s.final_state_matches_twin, "{s:?}");
    assert_eq!(s.inputs_answered, s.inputs_sent);
    c.wait_for_activation("a relocation after the restart");
    let restarted = c.log("control-2");
    assert!(restarted.contains("registry restored"), "{restarted}");
    // The restarted node took part: it triggered the relocation.
    let triggered = c.journal("control-2").iter().any(|r| {
        matches!(r, Record::Msg { code: 1005, .. })
            || matches!(r, Record::Event { what, .. } if what.starts_with("RelocationTriggered"))
    });
    assert!(triggered, "the restarted control node saw no handover");
}

/// A local three-member etcd and a plaintext cluster whose control node is three replicas
/// on it; `None` (with a note) where there is no etcd binary.
fn replicated() -> Option<(Cluster, edgeshift_etcd::LocalEtcd, tempfile::TempDir)> {
    if edgeshift_etcd::local::etcd_binary().is_none() {
        eprintln!("SKIPPED: no etcd binary (apt-get install etcd-server)");
        return None;
    }
    // etcd starts in the cluster's turn: its members must not pick their ports while
    // another test's cluster is picking (and releasing) its own.
    let turn = take_turn();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let etcd_dir = tempfile::tempdir().expect("temp dir");
    let etcd = rt
        .block_on(edgeshift_etcd::LocalEtcd::start(etcd_dir.path(), 3))
        .expect("a three-member etcd");
    let c = Cluster::plaintext_in_turn(turn, false);
    let replicas: Vec<String> = (0..3).map(|_| format!("\"{}\"", port())).collect();
    let endpoints: Vec<String> = etcd
        .endpoints()
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect();
    let t = std::fs::read_to_string(&c.config).expect("config");
    let control = format!(
        "[control]\nreplicas = [{}]\nstore = \"etcd\"\netcd = [{}]\n",
        replicas.join(", "),
        endpoints.join(", ")
    );
    let start = t.find("[control]").expect("control section");
    let end = start + t[start..].find("\n\n").expect("end of section");
    std::fs::write(&c.config, format!("{}{control}{}", &t[..start], &t[end..])).expect("config");
    Some((c, etcd, etcd_dir))
}

impl Cluster {
    fn leads(&self, n: u32) -> bool {
        self.log(&format!("control{n}"))
            .contains("leading the control group")
    }

    fn edges_and_ran(&mut self) {
        for id in 1..=3 {
            self.spawn(&format!("edge{id}"), &["edge", "--id", &id.to_string()]);
        }
        self.spawn("ran", &["ran", "--name", "ran1"]);
        wait_for("edge metrics", Duration::from_secs(120), || {
            self.edge_metrics
                .iter()
                .all(|m| TcpStream::connect(m).is_ok())
        });
    }

    /// Starts the three control replicas, the edges and the RAN agent; returns the replica
    /// that leads.
    fn replicas_edges_and_ran(&mut self) -> u32 {
        for n in 1..=3 {
            self.spawn(
                &format!("control{n}"),
                &["control", "--replica", &n.to_string()],
            );
        }
        self.edges_and_ran();
        wait_for("a leader", Duration::from_secs(120), || {
            (1..=3).any(|n| self.leads(n))
        });
        (1..=3).find(|n| self.leads(*n)).expect("a leader")
    }

    fn wait_for_shadow_sync(&self) {
        wait_for("shadow sync", Duration::from_secs(120), || {
            (2..=3).any(|i| {
                self.journal(&format!("edge{i}"))
                    .iter()
                    .any(|r| matches!(r, Record::Msg { code: 1004, .. }))
            })
        });
    }

    /// When replica `n` journaled an event starting with `what`, each time (its own
    /// events and those of the control node while it led).
    fn replica_events(&self, n: u32, what: &str) -> Vec<u64> {
        self.journal(&format!("control{n}"))
            .iter()
            .filter_map(|r| match r {
                Record::Event { at, what: w, .. } if w.starts_with(what) => Some(*at),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_standby_control_replica_takes_over_on_etcd_when_the_leader_dies_during_shadow_sync() {
    let Some((mut c, etcd, _dir)) = replicated() else {
        return;
    };
    let leader = c.replicas_edges_and_ran();
    let ue = c.start_ue();
    c.wait_for_shadow_sync();
    c.kill(&format!("control{leader}"));
    let s = c.finish_ue(ue);
    assert!(s.final_state_matches_twin, "{s:?}");
    assert_eq!(s.inputs_answered, s.inputs_sent);
    c.wait_for_activation("a relocation after the takeover");
    let next = (1..=3)
        .filter(|n| *n != leader)
        .find(|n| c.leads(*n))
        .unwrap_or_else(|| panic!("no replica took over from control{leader}"));
    let log = c.log(&format!("control{next}"));
    assert!(log.contains("registry restored from etcd"), "{log}");
    // The new leader carried on: it triggered the relocation the handover asked for.
    let triggered = c.journal(&format!("control{next}")).iter().any(
        |r| matches!(r, Record::Event { what, .. } if what.starts_with("RelocationTriggered")),
    );
    assert!(triggered, "control{next} triggered no relocation");
    drop(etcd);
}

#[test]
fn a_leader_killed_as_it_orders_a_relocation_with_an_etcd_member_down_loses_nothing() {
    let Some((mut c, mut etcd, _dir)) = replicated() else {
        return;
    };
    c.replicas_edges_and_ran();
    let ue = c.start_ue();
    c.wait_for_shadow_sync();
    // One etcd member of three dies: the cluster keeps its quorum (a leader whose
    // keep-alive was on that member may lose its lease meanwhile, and another leads).
    etcd.kill(2);
    // Whichever replica leads then dies as soon as it has ordered the relocation.
    let mut leader = 0;
    wait_for("the relocation ordered", Duration::from_secs(120), || {
        leader = (1..=3)
            .find(|n| !c.replica_events(*n, "RelocationTriggered").is_empty())
            .unwrap_or(0);
        leader != 0
    });
    c.kill(&format!("control{leader}"));
    let s = c.finish_ue(ue);
    assert!(s.final_state_matches_twin, "{s:?}");
    assert_eq!(s.inputs_answered, s.inputs_sent);
    c.wait_for_activation("the relocation to land");
    assert!(
        (1..=3).filter(|n| *n != leader).any(|n| c.leads(n)),
        "no replica took over"
    );
}

#[test]
fn a_leader_cut_off_from_etcd_stops_acting_before_a_standby_leads() {
    let Some((mut c, mut etcd, _dir)) = replicated() else {
        return;
    };
    let urls = etcd.endpoints();
    // Replica 1 reaches etcd only through member 1; the others through members 2 and 3.
    c.spawn(
        "control1",
        &["control", "--replica", "1", "--etcd", &urls[0]],
    );
    wait_for("control1 leads", Duration::from_secs(120), || c.leads(1));
    let rest = urls[1..].join(",");
    for n in 2..=3 {
        c.spawn(
            &format!("control{n}"),
            &["control", "--replica", &n.to_string(), "--etcd", &rest],
        );
    }
    c.edges_and_ran();
    let ue = c.start_ue();
    c.wait_for_shadow_sync();
    // Member 1 dies: control1 is alive and connected to every server, but cut off.
    etcd.kill(0);
    let s = c.finish_ue(ue);
    assert!(s.final_state_matches_twin, "{s:?}");
    assert_eq!(s.inputs_answered, s.inputs_sent);
    let down = *c
        .replica_events(1, "SteppedDown")
        .first()
        .expect("control1 stepped down");
    let up = (2..=3)
        .flat_map(|n| c.replica_events(n, "Leading"))
        .min()
        .expect("a standby took over");
    assert!(
        down < up,
        "control1 acted until {down}, a standby led from {up}"
    );
    // Between the two, no server heard from the control node at all: the old leader had
    // closed its connections (a message already on the wire may land just after).
    let heard: Vec<u64> = (1..=3)
        .flat_map(|i| c.journal(&format!("edge{i}")))
        .filter_map(|r| match r {
            Record::Msg { at, from, .. } if from == "control" => Some(at),
            _ => None,
        })
        .filter(|at| *at > down + 100_000_000 && *at < up)
        .collect();
    assert!(
        heard.is_empty(),
        "servers heard the deposed leader at {heard:?}"
    );
}

#[test]
fn the_control_node_can_run_inside_an_edge_daemon() {
    let mut c = Cluster::new(true);
    c.start_infrastructure();
    wait_for("edge metrics", Duration::from_secs(120), || {
        c.edge_metrics.iter().all(|m| TcpStream::connect(m).is_ok())
    });
    let ue = c.start_ue();
    let s = c.finish_ue(ue);
    assert!(s.final_state_matches_twin, "{s:?}");
    c.wait_for_activation("a relocation");
    assert!(
        c.journal("edge1")
            .iter()
            .any(|r| matches!(r, Record::Msg { to, code: 1005, .. } if to == "control")),
        "edge1 did not host the control node"
    );
}

/// Resident memory of a process (kB), from /proc.
fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn frames_announced_but_not_sent_cost_an_edge_daemon_no_memory() {
    use edgeshift_proto::{Hello, Lane, NodeId, ServerId, codec};
    // Plaintext: the peers get past the (absent) handshake and announce frames after a
    // Hello, the worst case for the frame buffers.
    let mut c = Cluster::plaintext(false);
    c.spawn("edge2", &["edge", "--id", "2"]);
    let addr = c.edges[1];
    wait_for("edge2 listening", Duration::from_secs(120), || {
        TcpStream::connect(addr).is_ok()
    });
    let pid = c.children[0].1.id();
    std::thread::sleep(Duration::from_millis(500));
    let Some(before) = rss_kb(pid) else {
        eprintln!("SKIPPED: no /proc/{pid}/status here");
        return;
    };
    let mut header = codec::MAGIC.to_vec();
    header.extend_from_slice(&[codec::VERSION, 0]);
    header.extend_from_slice(&1004u16.to_be_bytes());
    header.extend_from_slice(&(codec::MAX_PAYLOAD as u32).to_be_bytes());
    let hello = codec::encode(
        &Hello {
            from: NodeId::Server(ServerId(1)),
            to: NodeId::Server(ServerId(2)),
            lane: Lane::Bulk,
        }
        .into(),
    )
    .expect("encodes");
    // 24 connections each announcing a 64 MiB frame and sending 4 KiB of it: half before
    // any Hello (refused at once), half after one (kept, as a slow link would be).
    let mut held = Vec::new();
    for i in 0..24 {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        if i % 2 == 1 {
            let _ = s.write_all(&hello);
        }
        let _ = s.write_all(&header);
        let _ = s.write_all(&[0u8; 4096]);
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kb(pid).expect("still running");
    let grew_mb = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("edge daemon RSS {before} kB -> {after} kB with 24 announced 64 MiB frames");
    assert!(
        grew_mb < 10.0,
        "RSS grew by {grew_mb:.1} MB ({before} kB -> {after} kB)"
    );
    drop(held);
}
