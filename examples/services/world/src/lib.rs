//! A multiplayer game world as an edgeshift service: up to 256 players on a wrapping grid.
//!
//! - Configuration: 4 bytes, the grid side (little endian, 16 to 4096); empty: 256.
//! - Input: player id (1 byte), dx, dy (signed bytes); shorter inputs are padded with 0.
//! - Answer: the player's x, y (u16 each, little endian) and the world's collision count
//!   (u32): how often a move ended on another player's cell.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p edgeshift-example-world`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use edgeshift_guest::{Service, export_service};

/// The world.
#[derive(Debug)]
pub struct World {
    side: u16,
    players: [(u16, u16); 256],
    collisions: u32,
}

impl Service for World {
    fn init(config: &[u8]) -> Result<Self, i32> {
        let side = match config {
            [] => 256,
            [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => return Err(1),
        };
        if !(16..=4096).contains(&side) {
            return Err(2);
        }
        let side = side as u16;
        let mut players = [(0, 0); 256];
        for (i, p) in players.iter_mut().enumerate() {
            // Start spread out, the same on every replica.
            let r = edgeshift_guest::random(i as i64) as u64;
            *p = (
                (r % u64::from(side)) as u16,
                ((r >> 32) % u64::from(side)) as u16,
            );
        }
        Ok(Self {
            side,
            players,
            collisions: 0,
        })
    }

    fn input(&mut self, _seq: u64, input: &[u8], answer: &mut [u8]) -> Result<usize, i32> {
        let byte = |i: usize| input.get(i).copied().unwrap_or(0);
        let who = usize::from(byte(0));
        let (dx, dy) = (i32::from(byte(1) as i8), i32::from(byte(2) as i8));
        let side = i32::from(self.side);
        let (x, y) = self.players[who];
        let nx = (i32::from(x) + dx).rem_euclid(side) as u16;
        let ny = (i32::from(y) + dy).rem_euclid(side) as u16;
        self.players[who] = (nx, ny);
        if self
            .players
            .iter()
            .enumerate()
            .any(|(i, p)| i != who && *p == (nx, ny))
        {
            self.collisions += 1;
        }
        answer[..2].copy_from_slice(&nx.to_le_bytes());
        answer[2..4].copy_from_slice(&ny.to_le_bytes());
        answer[4..8].copy_from_slice(&self.collisions.to_le_bytes());
        Ok(8)
    }
}

export_service!(World);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_move_on_a_wrapping_grid() {
        let mut w = World::init(&16u32.to_le_bytes()).expect("init");
        let start = w.players[3];
        let mut out = [0u8; 8];
        assert_eq!(w.input(1, &[3, 0xff, 1], &mut out), Ok(8));
        let x = u16::from_le_bytes([out[0], out[1]]);
        let y = u16::from_le_bytes([out[2], out[3]]);
        assert_eq!(x, (start.0 + 15) % 16);
        assert_eq!(y, (start.1 + 1) % 16);
        assert!(World::init(&[1]).is_err());
        assert!(World::init(&8u32.to_le_bytes()).is_err());
    }
}
