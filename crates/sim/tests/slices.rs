//! A guest that overruns its time slice (fuel per input) on some inputs: the input is
//! consumed with an error on the live instance, its shadows and the twin alike, so the
//! service relocates with every invariant held.

mod common;

use common::*;
use edgeshift_control::Strategy;
use edgeshift_sim::SimConfig;
use edgeshift_world::ModuleSource;

/// Every input whose number is a multiple of 10 spins about 80 M fuel (beyond the default
/// slice of 20 M); the others count inputs in memory.
const OVERRUN: &str = r#"(module (memory (export "memory") 1)
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 1024))
  (func (export "es_init") (param i32) (result i32) (i32.const 0))
  (func (export "es_input") (param i64 i32) (result i32) (local $i i32)
    (if (i64.eqz (i64.rem_u (local.get 0) (i64.const 10)))
      (then
        (local.set $i (i32.const 20000000))
        (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1)))
          (br_if $l (i32.ne (local.get $i) (i32.const 0))))))
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (i32.const 0)))"#;

#[test]
fn inputs_that_overrun_their_slice_trap_alike_everywhere() {
    let path = std::env::temp_dir().join(format!("edgeshift-overrun-{}.wat", std::process::id()));
    std::fs::write(&path, OVERRUN).expect("written");
    let module = ModuleSource::load(&path, None).expect("a valid module");
    let _ = std::fs::remove_file(&path);
    for strategy in [Strategy::Shadow, Strategy::Cold] {
        let mut cfg = SimConfig::new(strategy, 1);
        cfg.module = Some(module.clone());
        let (report, trace) = sim(builtin("demo"), cfg);
        assert_eq!(report.invariant_violations, 0, "{:#?}", report.violations);
        assert!(report.final_state_matches_twin);
        assert!(report.relocations >= 1);
        // The overruns happened (and were reported by the servers), not skipped.
        let errors = events(&trace)
            .iter()
            .filter(|(_, w)| w.starts_with("ServiceError") && w.contains("fuel"))
            .count();
        assert!(errors >= 10, "{errors} overruns reported");
    }
}
