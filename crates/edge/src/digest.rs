//! The running digest of the input log.
//!
//! With replay sync, the state at input `n` is fixed by the verified starting snapshot and
//! inputs `1..=n`. So 2004/2005 compare `(n, digest_n)` where
//! `digest_n = xxh3_128(digest_{n-1} ‖ n ‖ input_n)`: O(1) in state size, instead of
//! hashing the whole memory on the critical path.

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// Digest of a fresh instance, before any input.
pub const GENESIS: u128 = 0;

/// Inputs up to this long are hashed in one shot from the stack.
const SMALL: usize = 128;

/// Extends `prev` by input `seq`.
#[must_use]
pub fn chain(prev: u128, seq: u64, input: &[u8]) -> u128 {
    // XXH3 of the bytes in one shot is the streaming digest of the same bytes, and far
    // cheaper for the usual input of a few dozen bytes (every input is chained on every
    // instance and in the checker).
    if input.len() <= SMALL {
        let mut small = [0u8; 24 + SMALL];
        small[..16].copy_from_slice(&prev.to_le_bytes());
        small[16..24].copy_from_slice(&seq.to_le_bytes());
        let end = 24 + input.len();
        small[24..end].copy_from_slice(input);
        return xxh3_128(&small[..end]);
    }
    let mut h = Xxh3::new();
    h.update(&prev.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(input);
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_and_streaming_give_the_same_digest_at_every_length() {
        let bytes: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..bytes.len() {
            let input = &bytes[..len];
            let prev = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210u128 ^ len as u128;
            let seq = 1000 + len as u64;
            let mut h = Xxh3::new();
            h.update(&prev.to_le_bytes());
            h.update(&seq.to_le_bytes());
            h.update(input);
            assert_eq!(chain(prev, seq, input), h.digest128(), "length {len}");
        }
    }
}
