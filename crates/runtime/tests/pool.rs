//! Pooled memories: a reused slot never shows its last tenant's bytes, a full pool refuses
//! an instance with an error, and a restore into a warm slot is bit-exact.

use edgeshift_edge::{Service, ServiceError};
use edgeshift_runtime::{Limits, MemoryPool, ModuleError, WasmFactory, WasmService, samples};

fn pooled(instances: u32) -> WasmFactory {
    let pool = MemoryPool {
        instances,
        keep_resident: 16 << 20,
    };
    WasmFactory::with_pool(Limits::default(), Some(pool)).expect("engine")
}

fn sample(f: &mut WasmFactory, name: &str, mib: u32) -> Result<WasmService, ServiceError> {
    let spec = samples::spec(name, mib, 0).expect("sample");
    let edgeshift_proto::CodeRef::Inline { bytes, .. } = &spec.code else {
        panic!("inline code")
    };
    let hash = f.load(bytes).expect("loads");
    f.instantiate_wasm(hash, &spec.config)
}

fn drive(s: &mut WasmService, inputs: u64) {
    for seq in 1..=inputs {
        s.step(seq, &seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes())
            .expect("step");
    }
}

#[test]
fn a_reused_slot_starts_as_clean_as_a_fresh_memory() {
    let mut fresh = WasmFactory::new(Limits::default()).expect("engine");
    let clean = sample(&mut fresh, "armap", 4).expect("instance").checksum();
    let mut f = pooled(2);
    f.prewarm(1, 8 << 20).expect("warms");
    for round in 0..3 {
        // Dirty the slots, drop the instances, take the slots again.
        let mut a = sample(&mut f, "armap", 4).expect("instance");
        assert_eq!(
            a.checksum(),
            clean,
            "round {round}: a reused slot leaks state"
        );
        drive(&mut a, 500);
        assert_ne!(a.checksum(), clean);
    }
}

#[test]
fn a_restore_into_a_warm_slot_is_bit_exact() {
    let mut src = WasmFactory::new(Limits::default()).expect("engine");
    let mut live = sample(&mut src, "armap", 8).expect("instance");
    drive(&mut live, 300);
    let mut f = pooled(4);
    f.prewarm(2, 16 << 20).expect("warms");
    for _ in 0..2 {
        let mut target = sample(&mut f, "armap", 1).expect("instance");
        target.restore(&live.snapshot()).expect("restores");
        assert_eq!(target.checksum(), live.checksum());
        drive(&mut live, 10);
    }
}

#[test]
fn a_full_pool_refuses_an_instance_and_serves_again_once_one_is_gone() {
    let mut f = pooled(2);
    let a = sample(&mut f, "counter", 1).expect("first");
    let b = sample(&mut f, "counter", 1).expect("second");
    let Err(e) = sample(&mut f, "counter", 1) else {
        panic!("a third instance fits a pool of two");
    };
    assert!(
        matches!(e, ServiceError::Exhausted(ref m) if m.contains("limit of 2")),
        "{e:?}"
    );
    drop(a);
    let mut c = sample(&mut f, "counter", 1).expect("a slot is free again");
    drive(&mut c, 3);
    drop(b);
}

#[test]
fn warming_more_than_the_memory_limit_is_an_error_and_without_a_pool_a_no_op() {
    let mut f = pooled(2);
    let too_much = Limits::default().max_memory + 1;
    assert!(matches!(
        f.prewarm(1, too_much),
        Err(ModuleError::Invalid(_))
    ));
    assert!(matches!(
        f.prewarm(3, 1 << 20),
        Err(ModuleError::Invalid(_))
    ));
    let mut plain = WasmFactory::new(Limits::default()).expect("engine");
    plain.prewarm(1, too_much).expect("nothing to warm");
}
