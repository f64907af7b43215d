//! WebAssembly services: replay determinism, snapshots with globals, deltas, bad guests.

use edgeshift_edge::{Service, ServiceError, ServiceFactory};
use edgeshift_runtime::{Limits, ModuleError, WasmFactory, WasmService, samples};
use proptest::prelude::*;

fn factory() -> WasmFactory {
    WasmFactory::new(Limits::default()).expect("engine")
}

fn sample(f: &mut WasmFactory, name: &str, mib: u32) -> WasmService {
    let spec = samples::spec(name, mib, 0).expect("sample");
    let edgeshift_proto::CodeRef::Inline { bytes, .. } = &spec.code else {
        panic!("inline code")
    };
    let hash = f.load(bytes).expect("loads");
    f.instantiate_wasm(hash, &spec.config)
        .expect("instantiates")
}

fn input(seq: u64) -> [u8; 8] {
    // player, dx, dy for arena; a seed for armap.
    let h = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h.to_le_bytes()
}

#[test]
fn samples_load_and_answer() {
    let mut f = factory();
    for name in samples::NAMES {
        let mut s = sample(&mut f, name, 1);
        let out = s.step(1, &input(1)).expect("step");
        assert_eq!(out.len(), 16, "{name}");
    }
    let armap = sample(&mut f, "armap", 8);
    assert!(armap.state_len() >= 8 << 20);
}

#[test]
fn replay_is_deterministic_over_100k_inputs_and_from_a_snapshot() {
    let mut f = factory();
    let mut a = sample(&mut f, "arena", 1);
    let mut b = sample(&mut f, "arena", 1);
    let mut c = sample(&mut f, "arena", 1);
    let k = 40_000;
    for seq in 1..=k {
        assert_eq!(
            a.step(seq, &input(seq)).expect("a"),
            b.step(seq, &input(seq)).expect("b")
        );
    }
    c.restore(&a.snapshot()).expect("restore");
    for seq in k + 1..=100_000 {
        let x = a.step(seq, &input(seq)).expect("a");
        b.step(seq, &input(seq)).expect("b");
        assert_eq!(c.step(seq, &input(seq)).expect("c"), x);
    }
    assert_eq!(a.checksum(), b.checksum());
    assert_eq!(a.checksum(), c.checksum());
    assert_eq!(f.compiled(), 1, "one compilation for three instances");
}

#[test]
fn a_global_travels_with_the_state() {
    // counter keeps its count in a mutable global it does not export.
    let mut f = factory();
    let mut a = sample(&mut f, "counter", 1);
    for seq in 1..=10 {
        a.step(seq, &[seq as u8]).expect("step");
    }
    let snap = a.snapshot();
    let expected = a.step(11, &[11]).expect("a");
    let mut b = sample(&mut f, "counter", 1);
    b.restore(&snap).expect("restore");
    assert_eq!(b.step(11, &[11]).expect("b"), expected);
    assert_eq!(b.checksum(), a.checksum());
    // Memory alone is not enough: a copy without the global diverges.
    let mut c = sample(&mut f, "counter", 1);
    let mut memory_only = c.snapshot();
    memory_only[4096..].copy_from_slice(&snap[4096..]);
    c.restore(&memory_only).expect("restore");
    assert_ne!(c.step(11, &[11]).expect("c"), expected);
    assert_ne!(c.checksum(), a.checksum());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn delta_sync_keeps_a_shadow_identical(bursts in proptest::collection::vec(1u64..300, 1..8)) {
        let mut f = factory();
        let mut live = sample(&mut f, "armap", 2);
        let mut shadow = sample(&mut f, "armap", 2);
        shadow.restore(&live.snapshot()).expect("restore");
        live.take_delta();
        let mut seq = 0;
        for n in bursts {
            for _ in 0..n {
                seq += 1;
                live.step(seq, &input(seq)).expect("step");
            }
            prop_assert!(live.dirty_bytes() > 0);
            let (len, chunks) = live.take_delta();
            prop_assert!(chunks.len() < (len / 4096) as usize, "only dirty chunks travel");
            shadow.apply_delta(len, &chunks).expect("apply");
            prop_assert_eq!(shadow.checksum(), live.checksum());
            prop_assert_eq!(live.dirty_bytes(), 0);
        }
    }
}

#[test]
fn a_corrupted_delta_is_detected_by_the_checksum() {
    let mut f = factory();
    let mut live = sample(&mut f, "arena", 1);
    let mut shadow = sample(&mut f, "arena", 1);
    shadow.restore(&live.snapshot()).expect("restore");
    live.take_delta();
    for seq in 1..=50 {
        live.step(seq, &input(seq)).expect("step");
    }
    let (len, mut chunks) = live.take_delta();
    let last = chunks.len() - 1;
    chunks[last].data[7] ^= 0x40;
    shadow.apply_delta(len, &chunks).expect("applies");
    assert_ne!(shadow.checksum(), live.checksum());
}

const SPIN: &str = r#"(module (memory (export "memory") 1)
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 0))
  (func (export "es_buffer_size") (result i32) (i32.const 1024))
  (func (export "es_init") (param i32) (result i32) (i32.const 0))
  (func (export "es_input") (param i64 i32) (result i32)
    (if (i64.eq (local.get 0) (i64.const 1)) (then (loop $l (br $l))))
    (if (i64.eq (local.get 0) (i64.const 2)) (then unreachable))
    (if (i64.eq (local.get 0) (i64.const 3))
      (then (if (i32.eq (memory.grow (i32.const 1000)) (i32.const -1)) (then (return (i32.const -1))))))
    (i32.const 0)))"#;

#[test]
fn bad_guests_get_typed_errors_and_the_host_serves_on() {
    let limits = Limits {
        max_memory: 4 << 20,
        fuel_per_input: 10_000_000,
        ..Limits::default()
    };
    let mut f = WasmFactory::new(limits).expect("engine");
    let mut good = sample(&mut f, "counter", 1);
    let mut bad = f.instantiate("wasm", SPIN.as_bytes(), &[]).expect("loads");
    let runaway = bad.step(1, &[]);
    assert!(
        matches!(&runaway, Err(ServiceError::Trap { reason, .. }) if reason.contains("fuel")),
        "{runaway:?}"
    );
    let trapped = bad.step(2, &[]);
    assert!(
        matches!(&trapped, Err(ServiceError::Trap { reason, .. }) if reason.contains("unreachable")),
        "{trapped:?}"
    );
    let grown = bad.step(3, &[]);
    assert!(
        matches!(&grown, Err(ServiceError::Trap { reason, .. }) if reason.contains("error")),
        "{grown:?}"
    );
    assert!(
        bad.step(4, &[]).is_ok(),
        "the guest itself still answers after its traps"
    );
    assert!(good.step(1, &[1]).is_ok(), "other instances are untouched");

    for (code, what) in [
        (
            b"\0asm\x01\0\0\0garbage".as_slice(),
            "not a valid WebAssembly module",
        ),
        (
            b"(module (import \"wasi\" \"fd_write\" (func)) (memory (export \"memory\") 1))"
                .as_slice(),
            "imports wasi.fd_write",
        ),
        (
            b"(module (memory (export \"memory\") 1))".as_slice(),
            "no exported function es_abi_version",
        ),
        (
            b"not wasm at all".as_slice(),
            "not a valid WebAssembly module",
        ),
    ] {
        let err = f.load(code).expect_err("refused");
        assert!(err.to_string().contains(what), "{err}");
        let via_trait = f
            .instantiate("wasm", code, &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(via_trait.contains(what), "{via_trait}");
    }
    assert!(matches!(
        f.load(&vec![0u8; 65 << 20]),
        Err(ModuleError::TooLarge(_))
    ));
    let armap = samples::spec("armap", 64, 0).expect("spec");
    let edgeshift_proto::CodeRef::Inline { bytes, .. } = &armap.code else {
        panic!()
    };
    let refused = f
        .instantiate("wasm", bytes, &armap.config)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("es_init refused"),
        "64 MiB exceeds the 4 MiB cap: {refused}"
    );
}

#[test]
fn a_snapshot_of_another_module_does_not_restore() {
    let mut f = factory();
    let counter = sample(&mut f, "counter", 1);
    let mut arena = sample(&mut f, "arena", 1);
    assert!(matches!(
        arena.restore(&counter.snapshot()),
        Err(ServiceError::BadState(_))
    ));
    assert!(matches!(
        arena.restore(&[1, 2, 3]),
        Err(ServiceError::BadState(_))
    ));
}

/// The ABI's minimal service with `extra` spliced into the module: a counter in an
/// unexported mutable global.
fn service_with(extra: &str) -> String {
    format!(
        r#"(module
  {extra}
  (memory (export "memory") 1)
  (global $count (mut i64) (i64.const 0))
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 4096))
  (func (export "es_init") (param $len i32) (result i32) (i32.const 0))
  (func (export "es_input") (param $seq i64) (param $len i32) (result i32)
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    (i64.store (i32.const 1024) (global.get $count))
    (i32.const 8)))"#
    )
}

#[test]
fn what_a_snapshot_cannot_carry_is_refused_at_load() {
    let mut f = factory();
    for (extra, what) in [
        (
            r#"(data $d "seed") (func (export "drop_it") (data.drop $d))"#,
            "uses data.drop",
        ),
        (
            r#"(table $t 1 funcref) (elem $e func) (func (export "drop_it") (elem.drop $e))"#,
            "uses elem.drop",
        ),
        (
            r#"(table $t 1 funcref) (func (export "set_it") (table.set $t (i32.const 0) (ref.null func)))"#,
            "uses table.set",
        ),
        (
            r#"(table $t 1 funcref) (func (export "grow_it") (drop (table.grow $t (ref.null func) (i32.const 1))))"#,
            "uses table.grow",
        ),
    ] {
        let err = f.load(service_with(extra).as_bytes()).expect_err("refused");
        assert!(err.to_string().contains(what), "{extra}: {err}");
    }
    // Passive segments that are only read, and tables that only instantiation fills, load.
    let reads = r#"(data $d "seed") (table 1 funcref) (elem (i32.const 0) func 0)
        (func (export "read_it") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 4)))"#;
    f.load(service_with(reads).as_bytes()).expect("loads");
}

#[test]
fn a_host_import_with_another_signature_is_refused_at_load() {
    let mut f = factory();
    let wrong = r#"(import "edgeshift" "random" (func (param i32) (result i32)))"#;
    let err = f.load(service_with(wrong).as_bytes()).expect_err("refused");
    assert!(
        err.to_string().contains("imports edgeshift.random as"),
        "{err}"
    );
    let right = r#"(import "edgeshift" "random" (func (param i64) (result i64)))
        (import "edgeshift" "log" (func (param i32 i32)))"#;
    f.load(service_with(right).as_bytes()).expect("loads");
}

#[test]
fn a_guest_export_named_like_the_hosts_global_exports_does_not_collide() {
    let mut f = factory();
    let named = r#"(func (export "__es_global_0")) (func (export "__es_global_0_"))"#;
    let wat = service_with(named);
    let mut a = f.instantiate("wasm", wat.as_bytes(), &[]).expect("loads");
    for seq in 1..=5 {
        a.step(seq, &[]).expect("step");
    }
    // The unexported counter still travels: a restored copy continues the count.
    let snap = a.snapshot();
    let mut b = f.instantiate("wasm", wat.as_bytes(), &[]).expect("loads");
    b.restore(&snap).expect("restore");
    assert_eq!(b.step(6, &[]).expect("b"), a.step(6, &[]).expect("a"));
    assert_eq!(b.checksum(), a.checksum());
}

/// `es_init` loops `n` times; so does every input whose number is a multiple of 10.
fn busy(n: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 0))
  (func (export "es_buffer_size") (result i32) (i32.const 1024))
  (func $spin (local $i i32)
    (local.set $i (i32.const {n}))
    (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $l (i32.ne (local.get $i) (i32.const 0)))))
  (func (export "es_init") (param i32) (result i32) (call $spin) (i32.const 0))
  (func (export "es_input") (param i64 i32) (result i32)
    (if (i64.eqz (i64.rem_u (local.get 0) (i64.const 10))) (then (call $spin)))
    (i32.const 0)))"#
    )
}

#[test]
fn an_input_gets_a_time_slice_and_init_gets_more() {
    // About 4 fuel per iteration: 20 M iterations are beyond the default slice of one
    // input (20 M), well within the budget of `es_init`.
    let mut f = factory();
    let mut svc = f
        .instantiate("wasm", busy(20_000_000).as_bytes(), &[])
        .expect("init runs on its own, larger budget");
    assert_eq!(svc.step(1, &[]).map_err(|e| e.to_string()), Ok(vec![]));
    let cut = svc.step(10, &[]);
    assert!(
        matches!(&cut, Err(ServiceError::Trap { reason, .. }) if reason.contains("fuel")),
        "{cut:?}"
    );
    // The instance serves on; the next input is answered as usual.
    assert!(svc.step(11, &[]).is_ok());
    // The slice is the deployment's to choose.
    let mut roomy = WasmFactory::new(Limits {
        fuel_per_input: 1_000_000_000,
        ..Limits::default()
    })
    .expect("engine");
    let mut svc = roomy
        .instantiate("wasm", busy(20_000_000).as_bytes(), &[])
        .expect("loads");
    assert!(svc.step(10, &[]).is_ok());
}

/// Writes memory every way a guest can: input `[kind, 0, 0, 0, addr: u32, n: u32, v: u32]`
/// (little endian), the address and length folded into the memory (buffer at 0..64).
const SCRIBBLE: &str = r#"(module (memory (export "memory") 2 8)
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 0))
  (func (export "es_buffer_size") (result i32) (i32.const 64))
  (func (export "es_init") (param i32) (result i32) (i32.const 0))
  (func (export "es_input") (param i64 i32) (result i32)
    (local $size i32) (local $a i32) (local $n i32) (local $v i32)
    (local.set $size (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 64)))
    (local.set $a (i32.add (i32.const 64)
      (i32.rem_u (i32.load (i32.const 4)) (i32.sub (local.get $size) (i32.const 16)))))
    (local.set $n (i32.rem_u (i32.load (i32.const 8))
      (i32.add (i32.sub (i32.add (local.get $size) (i32.const 64)) (local.get $a)) (i32.const 1))))
    (local.set $v (i32.load (i32.const 12)))
    (block $done
      (block $k9 (block $k8 (block $k7 (block $k6 (block $k5 (block $k4 (block $k3 (block $k2
        (block $k1 (block $k0
          (br_table $k0 $k1 $k2 $k3 $k4 $k5 $k6 $k7 $k8 $k9 $done
            (i32.rem_u (i32.load8_u (i32.const 0)) (i32.const 10))))
        (i32.store offset=3 (local.get $a) (local.get $v)) (br $done))
        (i64.store (local.get $a) (i64.extend_i32_u (local.get $v))) (br $done))
        (i32.store8 (local.get $a) (local.get $v)) (br $done))
        (i64.store16 offset=1 (local.get $a) (i64.extend_i32_u (local.get $v))) (br $done))
        (f64.store (local.get $a) (f64.convert_i32_u (local.get $v))) (br $done))
        (v128.store (local.get $a) (i32x4.splat (local.get $v))) (br $done))
        (memory.fill (local.get $a) (local.get $v) (local.get $n)) (br $done))
        (memory.copy (local.get $a) (i32.const 64) (local.get $n)) (br $done))
        (drop (memory.grow (i32.const 1))) (br $done))
      ;; the last 3 bytes of a chunk and the first of the next
      (f32.store offset=4093
        (i32.and (i32.rem_u (local.get $a) (i32.sub (local.get $size) (i32.const 4096)))
          (i32.const 0xfff000))
        (f32.convert_i32_u (local.get $v))))
    (i32.const 0)))"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Only the chunks the map marks travel, and they are enough: a shadow fed nothing
    /// but deltas stays identical whatever the guest writes (unaligned stores across a
    /// chunk's end, SIMD, bulk fills and copies, growth).
    #[test]
    fn tracked_deltas_carry_every_write(
        bursts in proptest::collection::vec(
            proptest::collection::vec((0u8..10, any::<u32>(), any::<u32>(), any::<u32>()), 1..6),
            1..6,
        )
    ) {
        let mut f = factory();
        let mut live = f.instantiate("wasm", SCRIBBLE.as_bytes(), &[]).expect("loads");
        let mut shadow = f.instantiate("wasm", SCRIBBLE.as_bytes(), &[]).expect("loads");
        shadow.restore(&live.snapshot()).expect("restore");
        live.reset_delta();
        let mut seq = 0;
        for burst in bursts {
            let small = burst.iter().all(|(k, ..)| *k < 6 || *k == 9);
            for (kind, addr, n, v) in burst.iter().copied() {
                seq += 1;
                let mut input = [0u8; 16];
                input[0] = kind;
                input[4..8].copy_from_slice(&addr.to_le_bytes());
                input[8..12].copy_from_slice(&n.to_le_bytes());
                input[12..].copy_from_slice(&v.to_le_bytes());
                live.step(seq, &input).expect("step");
            }
            let (len, chunks) = live.take_delta();
            if small {
                // The buffer's chunk and at most two per store.
                prop_assert!(chunks.len() <= 1 + 1 + 2 * burst.len(), "{} chunks", chunks.len());
            }
            shadow.apply_delta(len, &chunks).expect("apply");
            prop_assert_eq!(shadow.checksum(), live.checksum());
            prop_assert_eq!(live.dirty_bytes(), 0);
        }
    }
}
