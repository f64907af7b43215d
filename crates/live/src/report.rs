//! From journal records to the run report (the same JSON record as `edgeshift sim
//! --json`, built by the same `edgeshift_record::Recorder` from the journaled
//! observations) and a readable timeline of each relocation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use edgeshift_edge::EdgeEvent;
use edgeshift_proto::{Instant, ServerId, ServiceId, UeId};
use edgeshift_record::{LoadSample, LoadTracker, Observation, Recorder, Report, RunMeta};

use crate::journal::{Record, UeSummary};

/// What a live run produced.
#[derive(Clone, Debug)]
pub struct LiveRun {
    /// Scenario name.
    pub scenario: String,
    /// Strategy name.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Start of the run (Unix ns); timeline times are relative to it.
    pub start: u64,
    /// The UEs of the run.
    pub ues: Vec<UeId>,
    /// Every record of every daemon, in time order.
    pub records: Vec<Record>,
}

/// Events that the final account lists under the faults: the faults themselves and the
/// fencing and failover they caused.
const FAULT_EVENTS: [&str; 12] = [
    "Fault",
    "Leading",
    "SteppedDown",
    "ServerDown",
    "ServerUp",
    "FailoverStarted",
    "ServiceLost",
    "Fenced",
    "Unfenced",
    "Promoted",
    "Released",
    "RelocationFailed",
];

/// The time and text of every journaled event whose text starts with `what`, in order.
fn events<'a>(
    records: &'a [Record],
    what: &'a str,
) -> impl Iterator<Item = (u64, &'a str, &'a str)> {
    records.iter().filter_map(move |r| match r {
        Record::Event { at, node, what: w } if w.starts_with(what) => {
            Some((*at, node.as_str(), w.as_str()))
        }
        _ => None,
    })
}

/// The control group of a replica named `node` (`control2`, `control_r1_2`): a name its
/// replicas share, and the name its control node's events carry. None for a stand-alone
/// control node (`control`, `control_r1`).
fn group_of(node: &str) -> Option<(String, String)> {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let rest = node.strip_prefix("control")?;
    match rest.strip_prefix("_r") {
        Some(r) => {
            let (region, n) = r.split_once('_')?;
            (digits(region) && digits(n)).then(|| {
                let control = format!("control_r{region}");
                (format!("{control}_"), control)
            })
        }
        None => digits(rest).then(|| ("control".to_owned(), "control".to_owned())),
    }
}

fn at_of(r: &Record) -> u64 {
    match r {
        Record::Msg { at, .. } | Record::Event { at, .. } => *at,
        Record::Obs(o) => o.at().as_nanos(),
        Record::Ue(_) => u64::MAX,
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl LiveRun {
    /// For each control replica killed: when the next leader took over, and when it
    /// decided its first relocation (the takeover time of `docs/benchmarks.md`).
    fn takeovers(&self) -> Vec<String> {
        let r = &self.records;
        let mut out = Vec::new();
        for (killed, node, _) in events(r, "Fault { kill:control") {
            // A stand-alone control node has no standby to take over.
            let Some((group, control)) = group_of(node) else {
                continue;
            };
            let Some((led, by, _)) = events(r, "Leading")
                .find(|(at, by, _)| *at > killed && group_of(by).is_some_and(|g| g.0 == group))
            else {
                out.push(format!("  takeover after {node} was killed: no new leader"));
                continue;
            };
            let decided = events(r, "RelocationTriggered")
                .find(|(at, n, _)| *at > led && *n == control)
                .map_or_else(
                    || "no relocation decided since".to_owned(),
                    |(at, _, _)| {
                        format!(
                            "its first relocation decided {:.1} ms after the kill",
                            ms(at - killed)
                        )
                    },
                );
            out.push(format!(
                "  takeover after {node} was killed: {by} leads {:.1} ms later; {decided}",
                ms(led - killed)
            ));
        }
        out
    }
}

/// One relocation, for the timeline.
#[derive(Clone, Debug)]
struct Reloc {
    service: u32,
    from: u32,
    to: u32,
    activated_at: u64,
    triggered_at: Option<u64>,
    state_bytes: u64,
    first_try: bool,
}

impl LiveRun {
    /// Sorts records by time (merging several daemons' journals).
    #[must_use]
    pub fn new(
        scenario: String,
        strategy: String,
        seed: u64,
        start: u64,
        ues: Vec<UeId>,
        mut records: Vec<Record>,
    ) -> Self {
        records.sort_by_key(at_of);
        Self {
            scenario,
            strategy,
            seed,
            start,
            ues,
            records,
        }
    }

    /// The UEs' final checks, by UE id.
    pub fn ues(&self) -> impl Iterator<Item = &UeSummary> {
        let mut v: Vec<&UeSummary> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Ue(u) => Some(u),
                _ => None,
            })
            .collect();
        v.sort_by_key(|u| u.ue);
        v.into_iter()
    }

    fn relocations(&self) -> Vec<Reloc> {
        let mut triggered: BTreeMap<u32, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for r in &self.records {
            let Record::Obs(Observation::Edge { at, server, event }) = r else {
                continue;
            };
            let (at, server) = (at.as_nanos(), server.0);
            match event {
                EdgeEvent::RelocationTriggered { service, .. } => {
                    triggered.insert(service.0, at);
                }
                EdgeEvent::Activated {
                    service,
                    from,
                    state_bytes,
                    first_try,
                    ..
                } => {
                    let service = &service.0;
                    let t = triggered.remove(service);
                    out.push(Reloc {
                        service: *service,
                        from: from.0,
                        to: server,
                        activated_at: at,
                        triggered_at: t,
                        state_bytes: *state_bytes,
                        first_try: *first_try,
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// The run report: the journaled observations replayed, in time order, through the
    /// recorder the simulator uses.
    #[must_use]
    pub fn report(&self) -> Report {
        let meta = RunMeta {
            scenario: self.scenario.clone(),
            strategy: self.strategy.clone(),
            seed: self.seed,
            origin: Instant(self.start),
        };
        let mut rec = Recorder::new(meta, self.ues.iter().map(|u| (*u, ServiceId(u.0))));
        let mut end = Instant(self.start);
        // The UEs' inputs first: each daemon stamps records with its own clock, and a skew
        // between processes must not make an input look applied before it was sent. Server
        // events keep their time order (a relocation's steps are a network hop apart).
        let (inputs, rest): (Vec<&Observation>, Vec<&Observation>) = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Obs(o) => Some(o),
                _ => None,
            })
            .partition(|o| matches!(o, Observation::Input { .. }));
        // The run ends with the last UE's final check; what the daemons do as they are shut
        // down after it (servers losing their lease when the control node stops first) is
        // not part of it.
        let last_final = rest
            .iter()
            .filter(|o| matches!(o, Observation::UeFinal(_)))
            .map(|o| o.at())
            .max();
        for o in inputs.into_iter().chain(rest) {
            if last_final.is_some_and(|f| o.at() > f) {
                continue;
            }
            end = end.max(o.at());
            rec.observe(o.clone());
        }
        rec.finish(end)
    }

    /// What `servers` (in this order) held over the run, once per second: live instances
    /// and shadows, rebuilt from the servers' journaled events up to the last UE's final
    /// check.
    #[must_use]
    pub fn loads(&self, servers: impl IntoIterator<Item = ServerId>) -> Vec<LoadSample> {
        let obs: Vec<&Observation> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Obs(o) => Some(o),
                _ => None,
            })
            .collect();
        let last_final = obs
            .iter()
            .filter(|o| matches!(o, Observation::UeFinal(_)))
            .map(|o| o.at())
            .max();
        let mut load = LoadTracker::new(Instant(self.start), servers);
        let mut end = Instant(self.start);
        for o in obs {
            if last_final.is_some_and(|f| o.at() > f) {
                continue;
            }
            end = end.max(o.at());
            load.observe(o);
        }
        load.finish(end)
    }

    /// A readable account: each relocation's message timeline (the first `detail` in
    /// full), radio gap vs service gap per handover, and the twin check of each UE.
    #[must_use]
    pub fn render(&self, detail: usize) -> String {
        let mut o = String::new();
        let rel = |ns: u64| ms(ns.saturating_sub(self.start));
        let relocs = self.relocations();
        for (i, r) in relocs.iter().enumerate() {
            let _ = writeln!(
                o,
                "relocation {}: svc{} me{} -> me{} ({:.1} MiB), activated at {:.1} ms, checksum valid first try: {}",
                i + 1,
                r.service,
                r.from,
                r.to,
                r.state_bytes as f64 / f64::from(1u32 << 20),
                rel(r.activated_at),
                r.first_try
            );
            if i >= detail {
                continue;
            }
            let prev = relocs[..i]
                .iter()
                .filter(|p| p.service == r.service)
                .map(|p| p.activated_at)
                .max()
                .unwrap_or(0);
            self.timeline(&mut o, r, prev, rel);
        }
        if relocs.is_empty() {
            let _ = writeln!(o, "no relocation happened");
        }
        // Up to the end of the run: not what the daemons do as they are shut down.
        let end = self
            .records
            .iter()
            .filter(|r| matches!(r, Record::Ue(_)))
            .map(at_of)
            .max()
            .unwrap_or(u64::MAX);
        let faults: Vec<String> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Event { at, node, what }
                    if *at <= end && FAULT_EVENTS.iter().any(|p| what.starts_with(p)) =>
                {
                    Some(format!("  {:>9.1} ms  {node}: {what}", rel(*at)))
                }
                _ => None,
            })
            .collect();
        if !faults.is_empty() {
            let _ = writeln!(o, "\nfaults injected, and what the system did:");
            for line in faults {
                let _ = writeln!(o, "{line}");
            }
            for line in self.takeovers() {
                let _ = writeln!(o, "{line}");
            }
        }
        let _ = writeln!(o, "\nhandovers (radio gap vs service gap):");
        for u in self.ues() {
            for g in &u.gaps {
                let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"));
                let _ = writeln!(
                    o,
                    "  ue{} cell{} -> cell{} at {:.1} ms: radio gap {}, service gap {}, added {}",
                    u.ue,
                    g.from,
                    g.to,
                    rel(g.detached_at),
                    f(g.radio_gap_ms),
                    f(g.service_gap_ms),
                    f(g.added_ms)
                );
            }
        }
        let _ = writeln!(o, "\nfinal state vs never-moved twin:");
        for u in self.ues() {
            let _ = writeln!(
                o,
                "  ue{}: {} inputs sent, {} answered, live holds input {}; live {} vs twin {} -> {}",
                u.ue,
                u.inputs_sent,
                u.inputs_answered,
                u.live_last_seq
                    .map_or_else(|| "-".into(), |s| s.to_string()),
                u.live_checksum.as_deref().unwrap_or("-"),
                u.twin_checksum.as_deref().unwrap_or("-"),
                if u.final_state_matches_twin {
                    "equal"
                } else {
                    "DIFFERENT"
                }
            );
        }
        o
    }

    fn timeline(&self, o: &mut String, r: &Reloc, after: u64, rel: impl Fn(u64) -> f64) {
        const SHOWN: [u16; 12] = [
            1002, 1003, 1005, 1006, 2001, 2002, 2003, 2004, 2005, 2006, 3032, 3033,
        ];
        let servers = [format!("me{}", r.from), format!("me{}", r.to)];
        let ue = format!("ue{}", r.service);
        let end = r.activated_at + 200_000_000;
        // From the prediction that led here: the last 1002 before the 1006.
        let start = self
            .records
            .iter()
            .filter_map(|x| match x {
                Record::Msg { at, code: 1002, .. } if *at > after && *at <= r.activated_at => {
                    Some(*at)
                }
                _ => None,
            })
            .min()
            .unwrap_or_else(|| r.triggered_at.unwrap_or(r.activated_at))
            .max(after);
        let mut chunks: Chunks = (0, 0, None, 0);
        for x in &self.records {
            let Record::Msg {
                at,
                from,
                to,
                code,
                name,
                bulk,
            } = x
            else {
                continue;
            };
            if *at < start || *at > end {
                continue;
            }
            let mine = servers.contains(from)
                || servers.contains(to)
                || from == &ue
                || to == &ue
                || from == "control"
                || to == "control"
                || from.starts_with("cell");
            if !mine {
                continue;
            }
            if *code == 1004 || *code == 1010 || *code == 3035 {
                chunks.0 += 1;
                chunks.1 += bulk;
                chunks.2.get_or_insert(*at);
                chunks.3 = *at;
                continue;
            }
            state_line(o, &rel, &mut chunks);
            if SHOWN.contains(code) {
                let _ = writeln!(
                    o,
                    "  {:>9.1} ms  {code} {name:<20} {from} -> {to}",
                    rel(*at)
                );
            }
        }
        state_line(o, &rel, &mut chunks);
    }
}

/// State messages since the last line shown: (count, bytes, first, last).
type Chunks = (usize, usize, Option<u64>, u64);

/// Prints the state messages gathered in `chunks` as one line, if any, and starts over.
fn state_line(o: &mut String, rel: &impl Fn(u64) -> f64, chunks: &mut Chunks) {
    if chunks.0 == 0 {
        return;
    }
    let _ = writeln!(
        o,
        "  {:>9.1} .. {:.1} ms  {} state messages (1004/1010/3035), {:.2} MiB",
        rel(chunks.2.unwrap_or(0)),
        rel(chunks.3),
        chunks.0,
        chunks.1 as f64 / f64::from(1u32 << 20)
    );
    *chunks = (0, 0, None, 0);
}
