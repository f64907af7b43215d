//! `edgeshift bench fuzz`: mutation fuzzing on the stable toolchain of everything that
//! parses outside input: the frame codec (bytes from any peer), scenario files and
//! deployment files. Each execution mutates a valid seed (bit flips, interesting bytes,
//! inserted, deleted, repeated or spliced ranges, truncation, and in text numbers swapped
//! for NaN, infinities, negatives and huge values) and feeds it to the parser under
//! `catch_unwind`; a decoded frame must also encode back to the same message. Prints
//! executions, rate and panics; fails on any panic, printing the input.

use std::panic::{AssertUnwindSafe, catch_unwind};

use edgeshift_control::Strategy;
use edgeshift_proto::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to fuzz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// The frame codec.
    Codec,
    /// Scenario files, and the role configurations built from them.
    Scenario,
    /// Deployment files.
    Deployment,
}

#[derive(clap::Args)]
pub(crate) struct FuzzArgs {
    /// Targets (default: all three).
    #[arg(long, value_delimiter = ',')]
    target: Vec<Target>,
    /// Executions per target.
    #[arg(long, default_value_t = 10_000_000)]
    execs: u64,
    /// Seed of the mutations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What one target's run found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) execs: u64,
    pub(crate) accepted: u64,
    pub(crate) panics: Vec<Vec<u8>>,
}

fn seeds(t: Target) -> Vec<Vec<u8>> {
    match t {
        Target::Codec => sample_messages()
            .iter()
            .filter_map(|m| codec::encode(m).ok())
            .collect(),
        Target::Scenario => edgeshift_world::BUILTIN
            .iter()
            .filter_map(|n| edgeshift_world::scenario::builtin_text(n))
            .map(|t| t.as_bytes().to_vec())
            .collect(),
        Target::Deployment => [
            include_str!("../../../examples/deployment.toml"),
            include_str!("../../../examples/with-control.toml"),
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect(),
    }
}

fn sample_messages() -> Vec<Message> {
    let (ue, cell, server, service) = (UeId(1), CellId(2), ServerId(3), ServiceId(1));
    let at = Timing::at_within(Instant(1_000_000), std::time::Duration::from_millis(5));
    vec![
        Hello {
            from: NodeId::Server(server),
            to: NodeId::CONTROL,
            lane: Lane::Control,
        }
        .into(),
        HandoverPrediction {
            ue,
            source: cell,
            candidates: vec![Candidate {
                cell: CellId(3),
                likelihood: 0.7,
            }],
            timing: Some(at),
        }
        .into(),
        Relocate {
            service,
            action: RelocateAction::Relocate {
                source: ServerId(1),
                target: server,
                mode: RelocationMode::Hot,
                epoch: 2,
            },
            timing: at,
        }
        .into(),
        ServiceInput {
            ue,
            service,
            via: cell,
            answered_below: 0,
            input: InputRecord {
                seq: 7,
                payload: vec![1, 2, 3, 4],
            },
        }
        .into(),
        HandoverCancel {
            ue,
            source: cell,
            target: CellId(3),
            reason: CancelReason::Failed,
        }
        .into(),
        RadioReport {
            ue,
            cell,
            serving_dbm: -80.0,
            neighbours: vec![(CellId(3), -90.0)],
        }
        .into(),
        RouteUpdate {
            ue,
            route: Route {
                service,
                server,
                epoch: 3,
            },
        }
        .into(),
    ]
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'-', b'.', b'e', b'9', b'"', b'[', b']',
];
const NUMBERS: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "-0.0",
    "1e308",
    "-1e308",
    "18446744073709551616",
    "4294967296",
    "1e-320",
    "9223372036854775807",
];

/// One to four mutations of `input`, some drawn from `pool` (splices).
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], pool: &[Vec<u8>], text: bool) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = b.len();
        let pos = |rng: &mut ChaCha8Rng| {
            if len == 0 {
                0
            } else {
                rng.random_range(0..len)
            }
        };
        match rng.random_range(0..if text { 8 } else { 7 }) {
            0 if len > 0 => {
                let i = pos(rng);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = pos(rng);
                b[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
            }
            2 => {
                let i = pos(rng);
                let n = rng.random_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(i..i, bytes);
            }
            3 if len > 1 => {
                let i = pos(rng);
                let j = (i + rng.random_range(1..=16)).min(len);
                b.drain(i..j);
            }
            4 if len > 1 => {
                let i = pos(rng);
                let j = (i + rng.random_range(1..=32)).min(len);
                let copy = b[i..j].to_vec();
                b.splice(j..j, copy);
            }
            5 => {
                let other = &pool[rng.random_range(0..pool.len())];
                let cut = if other.is_empty() {
                    0
                } else {
                    rng.random_range(0..other.len())
                };
                let at = pos(rng);
                b.truncate(at);
                b.extend_from_slice(&other[cut..]);
            }
            6 if len > 0 => b.truncate(pos(rng)),
            7 => swap_number(rng, &mut b),
            _ => {}
        }
    }
    b
}

/// Replaces one number of a text with an interesting one.
fn swap_number(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..b.len())
        .filter(|&i| {
            b[i].is_ascii_digit()
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        })
        .collect();
    if starts.is_empty() {
        return;
    }
    let i = starts[rng.random_range(0..starts.len())];
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b'e' | b'_')) {
        j += 1;
    }
    let n = NUMBERS[rng.random_range(0..NUMBERS.len())];
    b.splice(i..j, n.bytes());
}

/// Runs `input` through `t`; whether it was accepted. Panics are the findings.
fn exec(t: Target, input: &[u8]) -> bool {
    match t {
        Target::Codec => match codec::decode(input) {
            Ok((m, used)) => {
                // The decoder that shares the frame must read it as the copying one does.
                let frame = &input[..used];
                let shared = codec::decode_shared(&Bytes::copy_from_slice(frame));
                assert!(
                    matches!(&shared, Ok(x) if *x == m || is_nan_message(x)),
                    "{m:?} decodes shared as {shared:?}"
                );
                // What decodes must encode to the same message.
                let again = codec::encode(&m).map(|f| codec::decode(&f).map(|(x, _)| x));
                assert!(
                    matches!(&again, Ok(Ok(x)) if *x == m || is_nan_message(x)),
                    "{m:?} does not survive encode/decode: {again:?}"
                );
                true
            }
            Err(_) => false,
        },
        Target::Scenario => {
            let text = String::from_utf8_lossy(input);
            let Ok(s) = edgeshift_world::Scenario::parse("fuzz", &text) else {
                return false;
            };
            // Everything a driver builds from a scenario.
            for c in &s.cells {
                let _ = s.ran_config(CellId(c.id));
            }
            for sv in &s.servers {
                let _ = s.edge_config(ServerId(sv.id), 1);
            }
            let _ = s.control_config(Strategy::ShadowJit { threshold: 0.3 }, SyncMode::Replay);
            for u in &s.ues {
                let _ = s.ue_config(u, 1);
            }
            true
        }
        Target::Deployment => {
            let text = String::from_utf8_lossy(input);
            edgeshift_live::config::Deployment::parse(&text, std::path::Path::new(".")).is_ok()
        }
    }
}

/// NaN likelihoods or RSRPs decode to messages unequal to themselves.
fn is_nan_message(m: &Message) -> bool {
    match m {
        Message::HandoverPrediction(p) => p.candidates.iter().any(|c| c.likelihood.is_nan()),
        Message::RadioReport(r) => {
            r.serving_dbm.is_nan() || r.neighbours.iter().any(|n| n.1.is_nan())
        }
        _ => false,
    }
}

/// Fuzzes `t` for `execs` executions.
pub(crate) fn fuzz(t: Target, execs: u64, seed: u64) -> Outcome {
    let pool = seeds(t);
    let text = t != Target::Codec;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (t as u64).rotate_left(32));
    let mut out = Outcome::default();
    // Panics are expected findings here: keep their messages off stderr.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..execs {
        let base = &pool[(i as usize) % pool.len()];
        let input = mutate(&mut rng, base, &pool, text);
        match catch_unwind(AssertUnwindSafe(|| exec(t, &input))) {
            Ok(true) => out.accepted += 1,
            Ok(false) => {}
            Err(_) => {
                if out.panics.len() < 5 {
                    out.panics.push(input);
                }
            }
        }
        out.execs += 1;
    }
    std::panic::set_hook(hook);
    out
}

pub(crate) fn run(a: &FuzzArgs) -> anyhow::Result<bool> {
    let targets = if a.target.is_empty() {
        vec![Target::Codec, Target::Scenario, Target::Deployment]
    } else {
        a.target.clone()
    };
    let mut clean = true;
    for t in targets {
        let start = std::time::Instant::now();
        let o = fuzz(t, a.execs, a.seed);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{t:?}: {} executions in {secs:.1} s ({:.0}/s), {} accepted, {} panics",
            o.execs,
            o.execs as f64 / secs.max(1e-9),
            o.accepted,
            o.panics.len()
        );
        for p in &o.panics {
            clean = false;
            println!("  panicked on: {:?}", String::from_utf8_lossy(p));
        }
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_fuzz_run_finds_no_panic_in_any_parser() {
        for (t, n) in [
            (Target::Codec, 200_000),
            (Target::Scenario, 3_000),
            (Target::Deployment, 1_000),
        ] {
            let o = fuzz(t, n, 7);
            assert_eq!(o.execs, n);
            assert!(
                o.accepted > 0,
                "{t:?}: no mutant was valid; the seeds do not parse"
            );
            let shown: Vec<String> = o
                .panics
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            assert!(shown.is_empty(), "{t:?} panicked on {shown:#?}");
        }
    }

    #[test]
    fn a_planted_panic_is_found() {
        // The harness must be able to fail: a mutant that decodes as a Hello is "found".
        let pool = seeds(Target::Codec);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let found = (0..10_000).any(|i| {
            let input = mutate(&mut rng, &pool[i % pool.len()], &pool, false);
            catch_unwind(|| {
                if let Ok((Message::Hello(_), _)) = codec::decode(&input) {
                    panic!("planted");
                }
            })
            .is_err()
        });
        assert!(found);
    }
}
