//! `edgeshift check-module`: what a guest author runs before deploying a service.
//!
//! [`check_module`] loads the module (guest ABI v1 and the load-time refusals), runs `n`
//! inputs on one instance, snapshots it halfway and restores the snapshot into an instance
//! on a fresh engine that replays the second half, and keeps a third copy in sync by the
//! deltas of every input. All three must end with the same checksum, and the replayed
//! answers must equal the originals. It also profiles the module: fuel per input, state
//! size, bytes dirtied per input, and which sync mode costs less per input on a 1 Gbit/s
//! link.

use std::time::Instant;

use edgeshift_edge::Service;
use edgeshift_record::Percentiles;
use edgeshift_runtime::{Limits, WasmFactory, WasmService};
use serde::Serialize;

/// Link rate the sync modes are compared on.
const LINK_BITS_PER_S: f64 = 1e9;
/// Framing of one replayed input and of one delta chunk on the wire (sequence number and
/// length; chunk index and length), as `edgeshift_proto::Message::bulk_len` counts them.
const INPUT_OVERHEAD: u64 = 12;
const CHUNK_OVERHEAD: u64 = 8;

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Inputs to run (at least 2).
    pub inputs: u32,
    /// Bytes per input (capped by the module's buffer).
    pub input_size: usize,
    /// Limits the module runs under (those of an ME server by default).
    pub limits: Limits,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            inputs: 1000,
            input_size: 64,
            limits: Limits::default(),
        }
    }
}

/// One check and how it went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen (the reason, when it failed).
    pub detail: String,
}

/// The profile of a module that loads and runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// Fuel per input (about one unit per instruction).
    pub fuel_per_input: Percentiles,
    /// Wall time per input on this machine (µs).
    pub exec_us_per_input: Percentiles,
    /// State size after the run (memory, globals, header).
    pub state_bytes: u64,
    /// Mean bytes of state chunks dirtied per input.
    pub dirtied_bytes_per_input: f64,
    /// Bytes per input a replay shadow receives.
    pub replay_bytes_per_input: f64,
    /// Bytes per input a delta shadow receives (chunks and their framing).
    pub delta_bytes_per_input: f64,
    /// Replay cost per input: its wire time plus its execution on the shadow (µs).
    pub replay_us_per_input: f64,
    /// Delta cost per input: the wire time of the chunks it dirtied (µs).
    pub delta_us_per_input: f64,
    /// The cheaper sync mode on a 1 Gbit/s link: `replay` or `delta`.
    pub cheaper_sync: &'static str,
}

/// The record of `edgeshift check-module`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    /// Inputs run.
    pub inputs: u32,
    /// Bytes per input.
    pub input_size: usize,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The profile, when the module ran.
    pub profile: Option<Profile>,
    /// Whether every check passed.
    pub ok: bool,
}

/// Input `seq`: `len` deterministic pseudo-random bytes, made as a UE makes its own.
fn input(seq: u64, len: usize) -> Vec<u8> {
    edgeshift_ue::UeClient::payload(0, seq, len)
}

struct Run {
    checks: Vec<Check>,
}

impl Run {
    fn check(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check {
            name,
            ok,
            detail: detail.into(),
        });
        ok
    }

    fn report(self, cfg: &CheckConfig, profile: Option<Profile>) -> CheckReport {
        CheckReport {
            inputs: cfg.inputs,
            input_size: cfg.input_size,
            ok: self.checks.iter().all(|c| c.ok),
            checks: self.checks,
            profile,
        }
    }
}

fn instance(
    wasm: &[u8],
    config: &[u8],
    limits: Limits,
) -> Result<(WasmFactory, WasmService), String> {
    let mut f = WasmFactory::new(limits).map_err(|e| e.to_string())?;
    let hash = f.load(wasm).map_err(|e| e.to_string())?;
    let svc = f
        .instantiate_wasm(hash, config)
        .map_err(|e| e.to_string())?;
    Ok((f, svc))
}

/// Checks `wasm` (binary or text) with `config`; see the module docs.
#[must_use]
pub fn check_module(wasm: &[u8], config: &[u8], cfg: &CheckConfig) -> CheckReport {
    let mut run = Run { checks: Vec::new() };
    let n = u64::from(cfg.inputs.max(2));
    let (_engine_a, mut a) = match instance(wasm, config, cfg.limits) {
        Ok(x) => x,
        Err(e) => {
            run.check("loads and initialises (guest ABI v1)", false, e);
            return run.report(cfg, None);
        }
    };
    run.check(
        "loads and initialises (guest ABI v1)",
        true,
        format!("{} bytes of state after es_init", a.state_len()),
    );
    // The delta copy starts from the initial state; deltas are counted from there.
    let mut c = match instance(wasm, config, cfg.limits) {
        Ok((_, mut c)) => match c.restore(&a.snapshot()) {
            Ok(()) => c,
            Err(e) => {
                run.check("restores its own snapshot", false, e.to_string());
                return run.report(cfg, None);
            }
        },
        Err(e) => {
            run.check("instantiates twice alike", false, e);
            return run.report(cfg, None);
        }
    };
    let _ = a.take_delta();
    let half = n / 2;
    let mut answers = Vec::new();
    let (mut fuel, mut exec_us) = (Vec::new(), Vec::new());
    let (mut dirtied, mut delta_wire, mut delta_err) = (0u64, 0u64, None);
    let mut snapshot = Vec::new();
    let mut failed_input: Option<String> = None;
    for seq in 1..=n {
        let payload = input(seq, cfg.input_size);
        let t0 = Instant::now();
        let answer = a.step(seq, &payload);
        exec_us.push(t0.elapsed().as_secs_f64() * 1e6);
        fuel.push(a.last_fuel() as f64);
        match answer {
            Ok(ans) => answers.push(ans),
            Err(e) => {
                // A trap consumes the input alike on every replica, but a module that traps
                // on ordinary inputs is not ready to deploy; the rest is not worth running.
                failed_input = Some(format!("input {seq}: {e}"));
                break;
            }
        }
        let (len, chunks) = a.take_delta();
        let bytes: u64 = chunks.iter().map(|ch| ch.data.len() as u64).sum();
        dirtied += bytes;
        delta_wire += bytes + CHUNK_OVERHEAD * chunks.len() as u64;
        if let Err(e) = c.apply_delta(len, &chunks) {
            delta_err.get_or_insert_with(|| e.to_string());
        }
        if seq == half {
            snapshot = a.snapshot();
        }
    }
    if let Some(why) = failed_input {
        run.check("every input runs within the limits", false, why);
        return run.report(cfg, None);
    }
    run.check(
        "every input runs within the limits",
        true,
        format!("{n} inputs of {} bytes", cfg.input_size),
    );
    let sum_a = a.checksum();
    match instance(wasm, config, cfg.limits) {
        Ok((_engine_b, mut b)) => {
            let restored = b.restore(&snapshot);
            let mut diverged = restored.err().map(|e| format!("restore failed: {e}"));
            for seq in half + 1..=n {
                if diverged.is_some() {
                    break;
                }
                let got = b.step(seq, &input(seq, cfg.input_size)).unwrap_or_default();
                let idx = usize::try_from(seq - 1).unwrap_or(usize::MAX);
                if answers.get(idx) != Some(&got) {
                    diverged = Some(format!("answer to input {seq} differs after the restore"));
                }
            }
            if diverged.is_none() && b.checksum() != sum_a {
                diverged = Some("the replayed copy's state differs (checksum)".into());
            }
            run.check(
                "snapshot at N/2, restored on a fresh engine, replays the rest identically",
                diverged.is_none(),
                diverged.unwrap_or_else(|| format!("checksum {sum_a:032x} on both")),
            );
        }
        Err(e) => {
            run.check("instantiates on a fresh engine", false, e);
        }
    }
    let delta_ok = delta_err.is_none() && c.checksum() == sum_a;
    run.check(
        "a copy kept in sync by deltas ends identical",
        delta_ok,
        delta_err.unwrap_or_else(|| {
            if delta_ok {
                format!("checksum {sum_a:032x} on both")
            } else {
                "the delta copy's state differs (checksum)".into()
            }
        }),
    );
    let profile = profile(cfg, &fuel, &exec_us, dirtied, delta_wire, a.state_len(), n);
    run.report(cfg, Some(profile))
}

fn profile(
    cfg: &CheckConfig,
    fuel: &[f64],
    exec_us: &[f64],
    dirtied: u64,
    delta_wire: u64,
    state_bytes: u64,
    n: u64,
) -> Profile {
    let per = |v: u64| v as f64 / n as f64;
    let wire_us = |bytes: f64| bytes * 8.0 / LINK_BITS_PER_S * 1e6;
    let exec = Percentiles::of(exec_us);
    let replay_bytes = (cfg.input_size as u64 + INPUT_OVERHEAD) as f64;
    let replay_us = wire_us(replay_bytes) + exec.p50;
    let delta_us = wire_us(per(delta_wire));
    Profile {
        fuel_per_input: Percentiles::of(fuel),
        exec_us_per_input: exec,
        state_bytes,
        dirtied_bytes_per_input: per(dirtied),
        replay_bytes_per_input: replay_bytes,
        delta_bytes_per_input: per(delta_wire),
        replay_us_per_input: replay_us,
        delta_us_per_input: delta_us,
        cheaper_sync: if replay_us <= delta_us {
            "replay"
        } else {
            "delta"
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_passes() {
        for name in edgeshift_runtime::samples::NAMES {
            let spec = edgeshift_runtime::samples::spec(name, 1, 0).expect("sample");
            let edgeshift_proto::CodeRef::Inline { bytes, .. } = &spec.code else {
                panic!("inline code");
            };
            let cfg = CheckConfig {
                inputs: 50,
                input_size: 16,
                ..CheckConfig::default()
            };
            let r = check_module(bytes, &spec.config, &cfg);
            assert!(r.ok, "{name}: {:#?}", r.checks);
            assert!(r.profile.is_some_and(|p| p.fuel_per_input.p50 > 0.0));
        }
    }
}
