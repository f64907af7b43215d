//! The byte layout of a guest's state, as snapshots and deltas carry it.
//!
//! ```text
//! offset size
//!      0    4 magic "ESW1"
//!      4    4 number of mutable globals n (u32 LE)
//!      8    8 linear memory length in bytes (u64 LE)
//!     16 24·n globals in index order: type tag (u8: 0 i32, 1 i64, 2 f32, 3 f64, 4 v128),
//!             7 zero bytes, value as u128 LE (floats as their bit patterns)
//!   4096    … linear memory
//! ```
//!
//! The header fills exactly one 4 KiB chunk, so delta chunk `i ≥ 1` is memory chunk `i − 1`.

/// Header size: one delta chunk.
pub(crate) const HEADER: usize = 4096;
/// Most mutable globals a header holds.
pub(crate) const MAX_GLOBALS: usize = (HEADER - 16) / 24;
const MAGIC: &[u8; 4] = b"ESW1";

/// One global's value with its type tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GlobalValue {
    pub(crate) tag: u8,
    pub(crate) bits: u128,
}

pub(crate) fn encode_header(globals: &[GlobalValue], memory_len: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(MAGIC);
    h[4..8].copy_from_slice(&(globals.len() as u32).to_le_bytes());
    h[8..16].copy_from_slice(&memory_len.to_le_bytes());
    for (i, g) in globals.iter().enumerate().take(MAX_GLOBALS) {
        let at = 16 + 24 * i;
        h[at] = g.tag;
        h[at + 8..at + 24].copy_from_slice(&g.bits.to_le_bytes());
    }
    h
}

/// Parses a header; `expect` is the number of globals the module has.
pub(crate) fn decode_header(h: &[u8], expect: usize) -> Result<(Vec<GlobalValue>, u64), String> {
    if h.len() < HEADER || &h[..4] != MAGIC {
        return Err("not an edgeshift Wasm state (bad header)".into());
    }
    let word = |r: std::ops::Range<usize>| h.get(r).map(<[u8]>::to_vec).unwrap_or_default();
    let n = u32::from_le_bytes(word(4..8).try_into().map_err(|_| "short header")?) as usize;
    let mem = u64::from_le_bytes(word(8..16).try_into().map_err(|_| "short header")?);
    if n != expect {
        return Err(format!("state has {n} globals, the module {expect}"));
    }
    if n > MAX_GLOBALS {
        return Err(format!("state has {n} globals, at most {MAX_GLOBALS} fit"));
    }
    let globals = (0..n)
        .map(|i| {
            let at = 16 + 24 * i;
            let bits = u128::from_le_bytes(word(at + 8..at + 24).try_into().unwrap_or([0; 16]));
            GlobalValue { tag: h[at], bits }
        })
        .collect();
    Ok((globals, mem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let g = vec![
            GlobalValue { tag: 1, bits: 42 },
            GlobalValue {
                tag: 4,
                bits: u128::MAX,
            },
        ];
        let h = encode_header(&g, 65536);
        assert_eq!(decode_header(&h, 2), Ok((g, 65536)));
        assert!(decode_header(&h, 3).is_err());
        assert!(decode_header(&h[..100], 2).is_err());
    }
}
