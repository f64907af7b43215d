//! Human-readable output: report summaries and relocation timelines.

use edgeshift_sim::{Report, TraceEntry};

/// The `p` quantile (0 to 1) of `v`, which it sorts; 0 for none.
pub(crate) fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// Prints the summary of a run.
pub(crate) fn print_report(r: &Report) {
    println!(
        "scenario {} | strategy {} | seed {}",
        r.scenario, r.strategy, r.seed
    );
    println!(
        "  handovers {} (failed {}) | relocations {} | skipped (same server) {} | skipped (within budget) {} | mispredicted {} | reactive {} | cancelled {} | ping-pong {}",
        r.handovers,
        r.handover_failures,
        r.relocations,
        r.relocations_skipped_same_server,
        r.relocations_skipped_within_budget,
        r.mispredicted,
        r.reactive_fallbacks,
        r.handovers_cancelled,
        r.pingpongs
    );
    println!(
        "  inputs sent {} | applied exactly once {} | final state matches never-moved twin: {}",
        r.inputs_sent, r.inputs_applied_once, r.final_state_matches_twin
    );
    if r.services_lost > 0 {
        println!(
            "  services lost (their host died with no ready shadow): {}",
            r.services_lost
        );
    }
    let a = r.added_interruption_ms;
    println!(
        "  added interruption beyond the radio gap: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; longest wait for an answer {:.1} ms",
        a.p50, a.p99, a.max, r.longest_answer_wait_ms
    );
    println!(
        "  shadow traffic {:.1} MiB, shadow lifetime {:.1} s",
        r.shadow_bytes as f64 / 1048576.0,
        r.shadow_seconds
    );
    for rec in &r.relocation_records {
        println!(
            "  relocation {} {} -> {}: {:.1} MiB, radio gap {:.1} ms, service gap {:.1} ms, added {:.1} ms, critical path {:.2} ms, checksum valid first try: {}",
            rec.service,
            rec.from,
            rec.to,
            rec.state_bytes as f64 / 1048576.0,
            rec.radio_gap_ms,
            rec.service_gap_ms,
            rec.added_ms,
            rec.critical_path_ms,
            rec.checksum_valid_first_try
        );
    }
    if r.invariant_violations > 0 {
        println!("  INVARIANT VIOLATIONS: {}", r.invariant_violations);
        for v in &r.violations {
            println!("    t={:.3}s {}", v.at_s, v.what);
        }
    } else {
        println!("  invariants: all held");
    }
}

/// Prints the trace; `relocation_only` keeps the messages and events of the relocation.
///
/// # Errors
/// Stdout fails, for instance a closed pipe (`sim --trace | head`).
pub(crate) fn print_trace(trace: &[TraceEntry], relocation_only: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let mut chunks = 0usize;
    for e in trace {
        match e {
            TraceEntry::Msg {
                at,
                from,
                to,
                code,
                name,
                bytes,
            } => {
                if relocation_only && *code == 1004 {
                    chunks += 1;
                    if chunks > 1 {
                        continue;
                    }
                }
                if relocation_only
                    && matches!(*code, 1010 | 3001 | 3020 | 3030 | 3031 | 3032 | 3033)
                {
                    continue;
                }
                writeln!(
                    out,
                    "{:>10.3}s  {:>4} {name:<20} {from:>8} -> {to:<8} {bytes} B",
                    at.as_secs_f64(),
                    code
                )?;
            }
            TraceEntry::Event { at, node, what } => {
                let key = [
                    "Activated",
                    "ShadowReady",
                    "ShadowDiscarded",
                    "Frozen",
                    "Detached",
                    "Attached",
                    "RelocatedOut",
                    "RelocationFailed",
                ];
                if relocation_only && !key.iter().any(|k| what.starts_with(k)) {
                    continue;
                }
                let text = if relocation_only {
                    event_label(what)
                } else {
                    what.chars().take(110).collect()
                };
                writeln!(out, "{:>10.3}s       {node:>8}: {text}", at.as_secs_f64())?;
            }
        }
    }
    if relocation_only && chunks > 1 {
        writeln!(
            out,
            "            (1004 shadow transfer: {chunks} chunks in all, one shown)"
        )?;
    }
    Ok(())
}

/// A one-line label for a role event in the relocation timeline.
fn event_label(what: &str) -> String {
    let name = what.split([' ', '{']).next().unwrap_or(what);
    let label = match name {
        "Activated" => "shadow activated as the live instance",
        "ShadowReady" => "shadow complete and verified",
        "ShadowDiscarded" => "shadow discarded",
        "Frozen" => "live instance frozen, holding new inputs",
        "RelocatedOut" => "instance released, traffic forwarded to the new host",
        "RelocationFailed" => "relocation refused, serving on",
        "Detached" => "radio gap starts",
        "Attached" => "attached",
        _ => name,
    };
    if name == "Activated" && what.contains("first_try: false") {
        return format!("{label} (after catch-up)");
    }
    label.to_owned()
}

/// Prints shadow vs cold side by side.
pub(crate) fn print_comparison(shadow: Option<&Report>, cold: &Report) {
    println!(
        "{:<8} {:>10} {:>14} {:>14} {:>14} {:>10}",
        "strategy", "relocs", "radio gap ms", "service gap ms", "added ms", "twin ok"
    );
    for r in shadow.into_iter().chain(std::iter::once(cold)) {
        for rec in &r.relocation_records {
            println!(
                "{:<8} {:>10} {:>14.1} {:>14.1} {:>14.1} {:>10}",
                r.strategy,
                format!("{}->{}", rec.from, rec.to),
                rec.radio_gap_ms,
                rec.service_gap_ms,
                rec.added_ms,
                r.final_state_matches_twin
            );
        }
    }
    println!(
        "added = service gap seen by the UE minus the radio gap; twin ok = the final state's checksum"
    );
    println!("equals that of a twin that applied the same inputs and never moved.");
}
