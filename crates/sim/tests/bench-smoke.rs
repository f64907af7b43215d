//! The relocation benchmark runs and moves the state intact (numbers are not asserted:
//! they belong to the benchmark command).

use edgeshift_sim::bench::{BENCH_STRATEGIES, BenchLink, TargetMemory, measure};

#[test]
fn every_strategy_moves_the_state_intact() {
    let link = BenchLink {
        gbit_s: 1.0,
        rtt_ms: 2.0,
    };
    for (strategy, memory) in BENCH_STRATEGIES
        .into_iter()
        .flat_map(|s| [(s, TargetMemory::Fresh), (s, TargetMemory::Warm)])
    {
        let r = measure(1, strategy, link, memory).expect("runs");
        assert_eq!(r.target_memory, memory);
        assert!(r.checksum_ok, "{strategy}");
        assert!(r.state_bytes >= 1 << 20);
        // The throughput column is the state over the critical path, whatever the machine.
        let expected = r.state_bytes as f64 / (r.critical_path_ms / 1e3) / 1e9;
        assert!(
            (r.throughput_gbyte_s - expected).abs() <= 1e-9 * expected.max(1.0),
            "{strategy}: {} vs {expected}",
            r.throughput_gbyte_s
        );
        // Bytes, not time: a hot swap moves no state on the critical path, a copy all of it.
        if strategy.starts_with("shadow") {
            assert!(
                r.critical_bytes < 16 << 10,
                "{strategy}: {}",
                r.critical_bytes
            );
        } else {
            assert!(
                r.critical_bytes >= r.state_bytes,
                "{strategy}: {}",
                r.critical_bytes
            );
        }
    }
    assert!(measure(1, "teleport", link, TargetMemory::Fresh).is_err());
}

/// A state larger than the stream's window (16 MiB) goes in paced chunks: the source makes
/// more only as the target takes them in, and every chunk arrives.
#[test]
fn a_state_larger_than_the_window_streams_through() {
    let link = BenchLink {
        gbit_s: 0.0,
        rtt_ms: 2.0,
    };
    let r = measure(24, "cold", link, TargetMemory::Warm).expect("runs");
    assert!(r.checksum_ok);
    assert!(r.state_bytes >= 24 << 20);
    assert!(r.critical_bytes >= r.state_bytes, "{}", r.critical_bytes);
    // The window (16 MiB) and the chunk that overshoots it, never the whole state.
    assert!(
        r.peak_in_flight_bytes > 8 << 20,
        "{}",
        r.peak_in_flight_bytes
    );
    assert!(
        r.peak_in_flight_bytes <= (17 << 20) + 4096,
        "{}",
        r.peak_in_flight_bytes
    );
}
