//! No scenario file makes the simulator panic: random values, wild ones included (NaN,
//! infinities, negatives, huge), go into every numeric key; each file is either refused
//! with an error naming a key or runs to its end.

use edgeshift_control::Strategy as Relocation;
use edgeshift_sim::SimConfig;
use edgeshift_world::Scenario;
use proptest::prelude::*;

/// Every numeric key of a scenario with a sane default, and whether it is an integer.
const KEYS: &[(&str, &str, bool)] = &[
    ("", "duration_s = {}", false),
    ("", "drain_s = {}", false),
    ("radio", "freq_ghz = {}", false),
    ("radio", "tx_dbm = {}", false),
    ("radio", "pl_1km_db = {}", false),
    ("radio", "pl_exponent = {}", false),
    ("radio", "shadowing_db = {}", false),
    ("radio", "decorrelation_m = {}", false),
    ("radio", "meas_period_ms = {}", true),
    ("radio", "l3_k = {}", true),
    ("handover", "a3_offset_db = {}", false),
    ("handover", "hysteresis_db = {}", false),
    ("handover", "ttt_ms = {}", true),
    ("handover", "prep_ms = {}", true),
    ("handover", "rrc_processing_ms = {}", false),
    ("handover", "interruption_ms = {}", false),
    ("handover", "interruption_exp_mean_ms = {}", false),
    ("handover", "joining_timeout_ms = {}", true),
    ("handover", "reestablish_ms = {}", false),
    ("handover", "capacity = {}", true),
    ("links", "radio_ms = {}", false),
    ("links", "radio_loss = {}", false),
    ("links", "radio_mbit = {}", false),
    ("links", "access_ms = {}", false),
    ("links", "backhaul_ms = {}", false),
    ("links", "backhaul_gbit = {}", false),
    ("links", "x2_ms = {}", false),
    ("links", "x2_jitter_ms = {}", false),
    ("links", "control_ms = {}", false),
    ("service", "state_bytes = {}", true),
    ("service", "writes_per_input = {}", true),
    ("service", "latency_budget_ms = {}", true),
    ("service", "input_period_ms = {}", true),
    ("service", "payload_bytes = {}", true),
    ("service", "input_run_ms = {}", true),
    ("edge", "replay_batch_ms = {}", true),
    ("edge", "delta_interval_ms = {}", true),
    ("edge", "capacity = {}", true),
    ("control", "jit_threshold = {}", false),
    ("control", "jit_margin_ms = {}", true),
    ("control", "load_threshold = {}", false),
    ("cell2", "x = {}", false),
    ("ue", "speed_mps = {}", false),
    ("ue", "start_s = {}", false),
    ("ue", "waypoint = {}", false),
];

const FLOATS: &[&str] = &[
    "nan", "inf", "-inf", "-1.0", "0.0", "1e-9", "0.5", "1.0", "40.0", "1e9", "1e300", "-1e300",
];
const INTS: &[&str] = &[
    "-1",
    "0",
    "1",
    "2",
    "50",
    "4096",
    "2147483648",
    "9223372036854775807",
];

/// The scenario with `set` (key index → value) applied.
fn scenario_text(set: &[(usize, &str)]) -> String {
    let get = |i: usize, default: &str| -> String {
        set.iter()
            .rev()
            .find(|(k, _)| *k == i)
            .map_or_else(|| default.to_owned(), |(_, v)| (*v).to_owned())
    };
    let defaults = [
        "1.5", "10.0", "3.5", "46.0", "128.1", "3.76", "0.0", "50.0", "200", "4", "3.0", "1.0",
        "320", "40", "10.0", "30.0", "10.0", "200", "100.0", "1000", "1.0", "0.0", "100.0", "1.0",
        "1.0", "1.0", "5.0", "10.0", "2.0", "65536", "8", "0", "20", "32", "0", "0", "50", "100",
        "0.3", "300", "0.8", "500.0", "20.0", "0.0", "600.0",
    ];
    let v = |i: usize| get(i, defaults[i]);
    let mut t = format!(
        "name = \"random\"\nduration_s = {}\ndrain_s = {}\n",
        v(0),
        v(1)
    );
    let mut section = "";
    for (i, (sec, line, _)) in KEYS.iter().enumerate().skip(2) {
        if matches!(*sec, "cell2" | "ue") {
            continue;
        }
        if *sec != section {
            t += &format!("[{sec}]\n");
            section = sec;
            if *sec == "service" {
                t += "kind = \"mem\"\n";
            }
        }
        t += &line.replace("{}", &v(i));
        t += "\n";
    }
    let n = KEYS.len();
    t += &format!(
        "[[server]]\nid = 1\n[[server]]\nid = 2\n\
         [[cell]]\nid = 1\nx = 0.0\ny = 0.0\nserver = 1\n\
         [[cell]]\nid = 2\nx = {}\ny = 0.0\nserver = 2\n\
         [[ue]]\nid = 1\nspeed_mps = {}\nstart_s = {}\nwaypoints = [[0.0, 0.0], [{}, 0.0]]\n",
        v(n - 4),
        v(n - 3),
        v(n - 2),
        v(n - 1)
    );
    t
}

fn edit() -> impl Strategy<Value = (usize, &'static str)> {
    (0..KEYS.len()).prop_flat_map(|k| {
        let pool = if KEYS[k].2 { INTS } else { FLOATS };
        (Just(k), proptest::sample::select(pool))
    })
}

#[test]
fn the_template_itself_runs() {
    let s = Scenario::parse("random", &scenario_text(&[])).expect("the defaults are valid");
    let (report, _) = edgeshift_sim::run(s, SimConfig::new(Relocation::Shadow, 1)).expect("runs");
    assert_eq!(report.invariant_violations, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_value_in_any_key_is_refused_by_name_or_runs(edits in proptest::collection::vec(edit(), 1..4)) {
        let text = scenario_text(&edits);
        match Scenario::parse("random", &text) {
            Err(e) => {
                // The error names a key that was set (a parse error quotes its line).
                let msg = e.to_string();
                let named = edits.iter().any(|(k, _)| {
                    let key = KEYS[*k].1.split(' ').next().unwrap_or_default();
                    msg.contains(key)
                });
                prop_assert!(named, "{msg}\n{text}");
            }
            Ok(mut s) => {
                // Bounded test time; the values themselves stay as drawn.
                s.duration_s = s.duration_s.min(1.0);
                // Long enough for every retransmission through a lossy radio.
                s.drain_s = s.drain_s.clamp(10.0, 30.0);
                let (report, _) = edgeshift_sim::run(s, SimConfig::new(Relocation::Shadow, 1))
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                // Safety holds whatever the numbers: nothing applied twice or lost, one live
                // instance, the twin's state. (Whether every input got its answer before
                // the run ended depends on how slow the numbers make the network.)
                let broken: Vec<&str> = report
                    .violations
                    .iter()
                    .map(|v| v.what.as_str())
                    .filter(|w| !w.contains("never answered"))
                    .collect();
                prop_assert!(broken.is_empty(), "{:?}\n{}", broken, text);
            }
        }
    }
}
