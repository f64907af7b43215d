//! `edgeshift bench delta`: what one delta-sync tick costs the live instance when a large
//! state changes a little. A guest with `mib` MiB of memory writes `dirty_mib` MiB in
//! 4 KiB chunks spread at random over it; the tick (`take_delta`) is timed beside a hash
//! of the whole state, which is what a tick cost when deltas were found by hashing every
//! chunk. Wall-clock figures for a benchmark; nothing here asserts a time.

use std::time::Instant as Wall;

use edgeshift_edge::ServiceFactory;
use edgeshift_runtime::{Limits, WasmFactory};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::SimError;

/// A guest of `pages` 64 KiB pages whose input is a list of chunk indices (u32, little
/// endian): it fills each of those 4 KiB chunks with the input's sequence number.
fn guest(pages: u32) -> String {
    format!(
        r#"(module (memory (export "memory") {pages} {pages})
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 0))
  (func (export "es_buffer_size") (result i32) (i32.const 65536))
  (func (export "es_init") (param i32) (result i32) (i32.const 0))
  (func (export "es_input") (param $seq i64) (param $n i32) (result i32)
    (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (memory.fill
        (i32.mul (i32.load (local.get $i)) (i32.const 4096))
        (i32.wrap_i64 (local.get $seq))
        (i32.const 4096))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next)))
    (i32.const 0)))"#
    )
}

/// One size's figures.
#[derive(Clone, Debug)]
pub struct DeltaTick {
    /// State size in MiB.
    pub mib: u32,
    /// Bytes the delta carried (median round).
    pub delta_bytes: u64,
    /// `take_delta` per round, ms.
    pub tracked_ms: Vec<f64>,
    /// A hash of the whole state per round, ms.
    pub hash_ms: Vec<f64>,
}

/// Runs `rounds` ticks of a `mib` MiB guest that writes `dirty_mib` MiB between ticks
/// (chunks drawn with `seed`).
///
/// # Errors
/// The guest does not load, or an input fails.
pub fn delta_tick(mib: u32, dirty_mib: u32, rounds: u32, seed: u64) -> Result<DeltaTick, SimError> {
    let err = |e: String| SimError::Bench(format!("bench delta: {e}"));
    let pages = mib.checked_mul(16).filter(|p| (1..=65_536).contains(p));
    let pages = pages.ok_or_else(|| err(format!("{mib} MiB is not 1 to 4096 MiB")))?;
    let mut factory = WasmFactory::new(Limits {
        max_memory: (u64::from(pages) << 16) as usize,
        ..Limits::default()
    })
    .map_err(|e| err(e.to_string()))?;
    let mut svc = factory
        .instantiate("wasm", guest(pages).as_bytes(), &[])
        .map_err(|e| err(e.to_string()))?;
    let chunks = u32::try_from((u64::from(pages) << 16) >> 12).unwrap_or(u32::MAX);
    let per_round = dirty_mib.saturating_mul(256).clamp(1, 16_384);
    let first = (per_round * 4).div_ceil(4096);
    if first >= chunks {
        return Err(err(format!(
            "{dirty_mib} MiB to write does not fit {mib} MiB"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    svc.reset_delta();
    let mut out = DeltaTick {
        mib,
        delta_bytes: 0,
        tracked_ms: Vec::new(),
        hash_ms: Vec::new(),
    };
    let mut sizes = Vec::new();
    for round in 1..=u64::from(rounds) {
        // The first chunks hold the input itself; the others are drawn.
        let input: Vec<u8> = (0..per_round)
            .flat_map(|_| rng.random_range(first..chunks).to_le_bytes())
            .collect();
        svc.step(round, &input).map_err(|e| err(e.to_string()))?;
        let t = Wall::now();
        let (_, delta) = svc.take_delta();
        out.tracked_ms.push(t.elapsed().as_secs_f64() * 1e3);
        sizes.push(delta.iter().map(|c| c.data.len() as u64).sum::<u64>());
        let t = Wall::now();
        std::hint::black_box(svc.checksum());
        out.hash_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    sizes.sort_unstable();
    out.delta_bytes = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    Ok(out)
}
