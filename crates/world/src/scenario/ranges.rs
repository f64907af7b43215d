//! Every number of a scenario against the range it may take: NaN, infinite, negative or
//! absurd values are refused with the key that holds them, before anything runs (a
//! `Duration` from a negative or huge float would panic deep inside a role).

use super::Scenario;

/// Longest run a scenario may ask for (s): a week.
const MAX_RUN_S: f64 = 7.0 * 24.0 * 3600.0;
/// Largest one-way latency or radio timer (ms).
const MAX_MS: f64 = 60_000.0;
/// Largest coordinate (m): 10,000 km.
const MAX_COORD: f64 = 1e7;
/// Most UEs a scenario may list.
const MAX_UES: usize = 1_000_000;

fn real(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(format!("{key} must be {lo} to {hi}, not {v}"))
    }
}

fn positive(key: &str, v: f64, hi: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && v <= hi {
        Ok(())
    } else {
        Err(format!("{key} must be above 0 and at most {hi}, not {v}"))
    }
}

fn int(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{key} must be {lo} to {hi}, not {v}"))
    }
}

/// The first value out of range, named by its key.
pub(super) fn check(s: &Scenario) -> Result<(), String> {
    positive("duration_s", s.duration_s, MAX_RUN_S)?;
    real("drain_s", s.drain_s, 0.0, 3600.0)?;
    let r = &s.radio;
    positive("radio.freq_ghz", r.freq_ghz, 100.0)?;
    real("radio.tx_dbm", r.tx_dbm, -50.0, 80.0)?;
    real("radio.pl_1km_db", r.pl_1km_db, 0.0, 300.0)?;
    real("radio.pl_exponent", r.pl_exponent, 0.5, 10.0)?;
    real("radio.shadowing_db", r.shadowing_db, 0.0, 30.0)?;
    positive("radio.decorrelation_m", r.decorrelation_m, 10_000.0)?;
    int("radio.meas_period_ms", r.meas_period_ms, 1, 10_000)?;
    int("radio.l3_k", u64::from(r.l3_k), 0, 19)?;
    real("radio.measure_radius_m", r.measure_radius_m, 0.0, 1e6)?;
    let h = &s.handover;
    real("handover.a3_offset_db", h.a3_offset_db, -30.0, 30.0)?;
    real("handover.hysteresis_db", h.hysteresis_db, 0.0, 30.0)?;
    int("handover.ttt_ms", h.ttt_ms, 0, 5120)?;
    int("handover.prep_ms", h.prep_ms, 0, 10_000)?;
    real(
        "handover.rrc_processing_ms",
        h.rrc_processing_ms,
        0.0,
        MAX_MS,
    )?;
    real("handover.interruption_ms", h.interruption_ms, 0.0, MAX_MS)?;
    real(
        "handover.interruption_exp_mean_ms",
        h.interruption_exp_mean_ms,
        0.0,
        MAX_MS,
    )?;
    int(
        "handover.joining_timeout_ms",
        h.joining_timeout_ms,
        1,
        60_000,
    )?;
    real("handover.reestablish_ms", h.reestablish_ms, 0.0, MAX_MS)?;
    let l = &s.links;
    for (key, v) in [
        ("links.radio_ms", l.radio_ms),
        ("links.access_ms", l.access_ms),
        ("links.backhaul_ms", l.backhaul_ms),
        ("links.x2_ms", l.x2_ms),
        ("links.x2_jitter_ms", l.x2_jitter_ms),
        ("links.control_ms", l.control_ms),
    ] {
        real(key, v, 0.0, MAX_MS)?;
    }
    if !(l.radio_loss.is_finite() && (0.0..1.0).contains(&l.radio_loss)) {
        return Err(format!(
            "links.radio_loss must be at least 0 and below 1, not {}",
            l.radio_loss
        ));
    }
    real("links.radio_mbit", l.radio_mbit, 0.1, 1e6)?;
    real("links.backhaul_gbit", l.backhaul_gbit, 0.001, 1e4)?;
    let v = &s.service;
    int("service.state_bytes", v.state_bytes, 64, 1 << 30)?;
    int(
        "service.writes_per_input",
        u64::from(v.writes_per_input),
        0,
        1_000_000,
    )?;
    int(
        "service.dirty_bytes_per_input",
        v.dirty_bytes_per_input,
        0,
        1 << 30,
    )?;
    int(
        "service.latency_budget_ms",
        u64::from(v.latency_budget_ms),
        0,
        60_000,
    )?;
    int("service.input_period_ms", v.input_period_ms, 1, 3_600_000)?;
    int("service.input_run_ms", v.input_run_ms, 0, 10_000)?;
    int("service.payload_bytes", v.payload_bytes as u64, 0, 64 << 10)?;
    int(
        "service.fuel_per_input",
        v.fuel_per_input,
        1_000,
        100_000_000_000,
    )?;
    let e = &s.edge;
    int("edge.replay_batch_ms", e.replay_batch_ms, 0, 10_000)?;
    int("edge.delta_interval_ms", e.delta_interval_ms, 1, 60_000)?;
    int("edge.lease_ms", e.lease_ms, 0, 600_000)?;
    int("edge.memory_mib", e.memory_mib, 0, 1 << 20)?;
    int("edge.capacity", u64::from(e.capacity), 1, 1_000_000)?;
    let c = &s.control;
    real(
        "control.jit_threshold",
        f64::from(c.jit_threshold),
        0.0,
        1.0,
    )?;
    int("control.jit_margin_ms", c.jit_margin_ms, 0, 60_000)?;
    if let Some(t) = c.load_threshold {
        positive("control.load_threshold", f64::from(t), 1e6)?;
    }
    let mut ids: Vec<u32> = s.servers.iter().map(|x| x.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err("server ids are not unique".into());
    }
    for cell in &s.cells {
        int(
            &format!("cell {} region", cell.id),
            u64::from(cell.region),
            0,
            1_000,
        )?;
        real(
            &format!("cell {} x", cell.id),
            cell.x,
            -MAX_COORD,
            MAX_COORD,
        )?;
        real(
            &format!("cell {} y", cell.id),
            cell.y,
            -MAX_COORD,
            MAX_COORD,
        )?;
    }
    if s.ues.len() > MAX_UES {
        return Err(format!("at most {MAX_UES} ues, not {}", s.ues.len()));
    }
    for u in &s.ues {
        real(&format!("ue {} speed_mps", u.id), u.speed_mps, 0.0, 1000.0)?;
        real(&format!("ue {} start_s", u.id), u.start_s, 0.0, MAX_RUN_S)?;
        for (i, p) in u.track.iter().enumerate() {
            real(&format!("ue {} track[{i}].t", u.id), p[0], 0.0, MAX_RUN_S)?;
            for (axis, v) in ["x", "y"].iter().zip(&p[1..]) {
                real(
                    &format!("ue {} track[{i}].{axis}", u.id),
                    *v,
                    -MAX_COORD,
                    MAX_COORD,
                )?;
            }
        }
        for (i, p) in u.waypoints.iter().enumerate() {
            for (axis, v) in ["x", "y"].iter().zip(p) {
                real(
                    &format!("ue {} waypoints[{i}].{axis}", u.id),
                    *v,
                    -MAX_COORD,
                    MAX_COORD,
                )?;
            }
        }
    }
    Ok(())
}
