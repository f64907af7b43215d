//! The running digest of the input log.
//!
//! With replay sync, the state at input `n` is fixed by the verified starting snapshot and
//! inputs `1..=n`. So 2004/2005 compare `(n, digest_n)` where
//! `digest_n = xxh3_128(digest_{n-1} ‖ n ‖ input_n)`: O(1) in state size, instead of
//! hashing the whole memory on the critical path.

use xxhash_rust::xxh3::Xxh3;

/// Digest of a fresh instance, before any input.
pub const GENESIS: u128 = 0;

/// Extends `prev` by input `seq`.
#[must_use]
pub fn chain(prev: u128, seq: u64, input: &[u8]) -> u128 {
    let mut h = Xxh3::new();
    h.update(&prev.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(input);
    h.digest128()
}
