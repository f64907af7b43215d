//! `edgeshift bench delta` (see `edgeshift_sim::delta_tick`): prints what one delta-sync
//! tick costs at each state size, beside a hash of the whole state; asserts nothing.

/// Options of `bench delta`.
#[derive(clap::Args)]
pub(crate) struct DeltaArgs {
    /// State sizes in MiB.
    #[arg(long, value_delimiter = ',', default_value = "64,512")]
    sizes: Vec<u32>,
    /// MiB the guest writes between two ticks, in 4 KiB chunks spread over the state.
    #[arg(long, default_value_t = 1)]
    dirty_mib: u32,
    /// Ticks per size.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Seed of the chunks written.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub(crate) fn run_bench(a: &DeltaArgs) -> anyhow::Result<bool> {
    println!(
        "delta-sync tick of a WebAssembly guest that writes {} MiB in 4 KiB chunks at random \
         between ticks; {} ticks per size\n",
        a.dirty_mib, a.rounds
    );
    println!(
        "{:>9} {:>12} {:>12} {:>12} {:>16} {:>8}",
        "state MiB", "delta MiB", "tick p50 ms", "tick max ms", "state hash p50 ms", "ratio"
    );
    for &mib in &a.sizes {
        let mut r = edgeshift_sim::delta_tick::delta_tick(mib, a.dirty_mib, a.rounds, a.seed)?;
        let tick = crate::summary::pct(&mut r.tracked_ms, 0.5);
        let max = r.tracked_ms.last().copied().unwrap_or(0.0);
        let hash = crate::summary::pct(&mut r.hash_ms, 0.5);
        println!(
            "{mib:>9} {:>12.2} {tick:>12.3} {max:>12.3} {hash:>16.3} {:>8.1}",
            r.delta_bytes as f64 / f64::from(1 << 20),
            hash / tick.max(1e-9)
        );
    }
    Ok(true)
}
