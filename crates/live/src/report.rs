//! From journal records to the run report (the same JSON record as `edgeshift sim
//! --json`) and a readable timeline of each relocation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use edgeshift_sim::check::Violation;
use edgeshift_sim::{Percentiles, RelocationRecord, Report};

use crate::journal::{GapRecord, Record, UeSummary};

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
    /// Every record of every daemon, in time order.
    pub records: Vec<Record>,
}

fn at_of(r: &Record) -> u64 {
    match r {
        Record::Msg { at, .. }
        | Record::Event { at, .. }
        | Record::Triggered { at, .. }
        | Record::Frozen { at, .. }
        | Record::Activated { at, .. }
        | Record::RelocationFailed { at, .. }
        | Record::ShadowClosed { at, .. }
        | Record::StateSent { at, .. }
        | Record::ControlStats { at, .. } => *at,
        Record::Ue(_) => u64::MAX,
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One relocation, joined with the UE's view of its handover.
#[derive(Clone, Debug)]
struct Reloc {
    service: u32,
    from: u32,
    to: u32,
    activated_at: u64,
    triggered_at: Option<u64>,
    state_bytes: u64,
    first_try: bool,
    gap: Option<GapRecord>,
}

impl LiveRun {
    /// Sorts records by time (merging several daemons' journals).
    #[must_use]
    pub fn new(
        scenario: String,
        strategy: String,
        seed: u64,
        start: u64,
        mut records: Vec<Record>,
    ) -> Self {
        records.sort_by_key(at_of);
        Self {
            scenario,
            strategy,
            seed,
            start,
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
        let gaps: Vec<(u32, &GapRecord)> = self
            .ues()
            .flat_map(|u| u.gaps.iter().map(move |g| (u.ue, g)))
            .collect();
        let mut triggered: BTreeMap<u32, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for r in &self.records {
            match r {
                Record::Triggered { at, service } => {
                    triggered.insert(*service, *at);
                }
                Record::Activated {
                    at,
                    server,
                    service,
                    from,
                    state_bytes,
                    first_try,
                    ..
                } => {
                    let t = triggered.remove(service);
                    let t0 = t.unwrap_or(*at);
                    let gap = gaps
                        .iter()
                        .filter(|(ue, g)| {
                            *ue == *service && g.detached_at.abs_diff(t0) <= 2_000_000_000
                        })
                        .min_by_key(|(_, g)| g.detached_at.abs_diff(t0))
                        .map(|(_, g)| (*g).clone());
                    out.push(Reloc {
                        service: *service,
                        from: *from,
                        to: *server,
                        activated_at: *at,
                        triggered_at: t,
                        state_bytes: *state_bytes,
                        first_try: *first_try,
                        gap,
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// The run report.
    #[must_use]
    pub fn report(&self) -> Report {
        let ues: Vec<&UeSummary> = self.ues().collect();
        let relocs = self.relocations();
        let mut violations = Vec::new();
        let at_s = |ns: u64| ns.saturating_sub(self.start) as f64 / 1e9;
        for u in &ues {
            if !u.final_state_matches_twin {
                violations.push(Violation {
                    at_s: f64::NAN,
                    what: format!(
                        "ue{}: live state (input {:?} of {}, {} answered) differs from its never-moved twin",
                        u.ue, u.live_last_seq, u.inputs_sent, u.inputs_answered
                    ),
                });
            }
        }
        let mut shadow_bytes = 0;
        let mut shadow_seconds = 0.0;
        let mut stats = edgeshift_control::ControlStats::default();
        for r in &self.records {
            match r {
                Record::StateSent { bytes, .. } => shadow_bytes += bytes,
                Record::ShadowClosed { seconds, .. } => shadow_seconds += seconds,
                Record::Activated {
                    at,
                    shadow_created_at,
                    ..
                } => shadow_seconds += ms(at.saturating_sub(*shadow_created_at)) / 1e3,
                Record::ControlStats { stats: s, .. } => stats = *s,
                Record::RelocationFailed {
                    at,
                    service,
                    reason,
                } => violations.push(Violation {
                    at_s: at_s(*at),
                    what: format!(
                        "svc{service}: relocation failed ({reason}); the source is live again"
                    ),
                }),
                _ => {}
            }
        }
        let added: Vec<f64> = ues
            .iter()
            .flat_map(|u| u.gaps.iter().filter_map(|g| g.added_ms))
            .collect();
        let handovers = ues
            .iter()
            .flat_map(|u| u.gaps.iter())
            .filter(|g| g.attached_at.is_some())
            .count() as u64;
        let records = relocs
            .iter()
            .map(|r| {
                let t0 = r.triggered_at.unwrap_or(r.activated_at);
                let g = r.gap.as_ref();
                let radio = g.and_then(|g| g.radio_gap_ms).unwrap_or(0.0);
                let service = g.and_then(|g| g.service_gap_ms).unwrap_or(0.0);
                RelocationRecord {
                    ue: format!("ue{}", r.service),
                    service: format!("svc{}", r.service),
                    from: format!("me{}", r.from),
                    to: format!("me{}", r.to),
                    state_bytes: r.state_bytes,
                    radio_gap_ms: radio,
                    service_gap_ms: service,
                    added_ms: g.and_then(|g| g.added_ms).unwrap_or(0.0),
                    critical_path_ms: ms(r.activated_at.saturating_sub(t0)),
                    checksum_valid_first_try: r.first_try,
                }
            })
            .collect::<Vec<_>>();
        Report {
            scenario: self.scenario.clone(),
            strategy: self.strategy.clone(),
            seed: self.seed,
            handovers,
            handover_failures: ues
                .iter()
                .flat_map(|u| u.gaps.iter())
                .filter(|g| g.failed)
                .count() as u64,
            relocations: records.len() as u64,
            relocations_skipped_same_server: stats.skipped_same_server,
            relocations_skipped_within_budget: stats.skipped_within_budget,
            mispredicted: stats.mispredicted,
            reactive_fallbacks: stats.reactive,
            handovers_cancelled: stats.cancelled,
            pingpongs: stats.pingpongs,
            invariant_violations: violations.len() as u64,
            inputs_sent: ues.iter().map(|u| u.inputs_sent).sum(),
            inputs_applied_once: ues
                .iter()
                .filter(|u| u.final_state_matches_twin)
                .map(|u| u.inputs_sent)
                .sum(),
            final_state_matches_twin: !ues.is_empty()
                && ues.iter().all(|u| u.final_state_matches_twin),
            added_interruption_ms: Percentiles::of(&added),
            shadow_bytes,
            shadow_seconds,
            relocation_records: records,
            violations,
        }
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
