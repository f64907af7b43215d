//! An AR anchor map as an edgeshift service: anchors (an id and a position in
//! millimetres) in a fixed open-addressing table of 4,096 slots keyed by their 1 m cell.
//!
//! - Configuration: none.
//! - Input: `b'P'`, anchor id (u32), x, y, z (i32, mm): place or move an anchor; or `b'Q'`,
//!   x, y, z: look up the anchor in that cell. Little endian; shorter inputs are padded
//!   with 0.
//! - Answer: the anchor id found or placed (u32, 0: none), how often its cell was observed
//!   (u32), and the number of anchors (u32).
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p edgeshift-example-anchors`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use edgeshift_guest::{Service, export_service};

const SLOTS: usize = 4096;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    cell: (i32, i32, i32),
    id: u32,
    seen: u32,
    used: bool,
}

/// The anchor map.
#[derive(Debug)]
pub struct Anchors {
    slots: [Slot; SLOTS],
    count: u32,
}

fn word(input: &[u8], at: usize) -> [u8; 4] {
    let b = |i: usize| input.get(at + i).copied().unwrap_or(0);
    [b(0), b(1), b(2), b(3)]
}

impl Anchors {
    /// The slot of `cell`: where it is, or the free slot where it would go.
    fn find(&self, cell: (i32, i32, i32)) -> Option<usize> {
        let h = (cell.0 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (cell.1 as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ (cell.2 as u64).wrapping_mul(0x1656_67b1_9e37_79f9);
        (0..SLOTS)
            .map(|i| (h as usize).wrapping_add(i) % SLOTS)
            .find(|&s| !self.slots[s].used || self.slots[s].cell == cell)
    }
}

impl Service for Anchors {
    fn init(config: &[u8]) -> Result<Self, i32> {
        if !config.is_empty() {
            return Err(1);
        }
        Ok(Self {
            slots: [Slot::default(); SLOTS],
            count: 0,
        })
    }

    fn input(&mut self, _seq: u64, input: &[u8], answer: &mut [u8]) -> Result<usize, i32> {
        let op = input.first().copied().unwrap_or(0);
        let at = if op == b'P' { 5 } else { 1 };
        let mm = |i: usize| i32::from_le_bytes(word(input, at + 4 * i));
        let cell = (
            mm(0).div_euclid(1000),
            mm(1).div_euclid(1000),
            mm(2).div_euclid(1000),
        );
        let (id, seen) = match (op, self.find(cell)) {
            (b'P', Some(s)) => {
                let slot = &mut self.slots[s];
                if !slot.used {
                    self.count += 1;
                }
                *slot = Slot {
                    cell,
                    id: u32::from_le_bytes(word(input, 1)),
                    seen: slot.seen + 1,
                    used: true,
                };
                (slot.id, slot.seen)
            }
            (b'P', None) => return Err(-2), // Full.
            (_, Some(s)) if self.slots[s].used => {
                let slot = &mut self.slots[s];
                slot.seen += 1;
                (slot.id, slot.seen)
            }
            _ => (0, 0),
        };
        answer[..4].copy_from_slice(&id.to_le_bytes());
        answer[4..8].copy_from_slice(&seen.to_le_bytes());
        answer[8..12].copy_from_slice(&self.count.to_le_bytes());
        Ok(12)
    }
}

export_service!(Anchors);

#[cfg(test)]
mod tests {
    use super::*;

    fn place(id: u32, x: i32, y: i32, z: i32) -> Vec<u8> {
        let mut v = vec![b'P'];
        for w in [id as i32, x, y, z] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v
    }

    #[test]
    fn anchors_are_placed_and_found_by_cell() {
        let mut a = Anchors::init(&[]).expect("init");
        let mut out = [0u8; 12];
        a.input(1, &place(7, 1500, -200, 30), &mut out)
            .expect("place");
        let mut q = vec![b'Q'];
        for w in [1999i32, -1, 999] {
            q.extend_from_slice(&w.to_le_bytes());
        }
        a.input(2, &q, &mut out).expect("query");
        assert_eq!(out[..4], 7u32.to_le_bytes());
        assert_eq!(out[4..8], 2u32.to_le_bytes(), "placed and seen once");
        assert_eq!(out[8..12], 1u32.to_le_bytes());
        assert!(Anchors::init(&[1]).is_err());
    }
}
