//! Limits every guest runs under.

/// Per-instance limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory in bytes; a `memory.grow` beyond fails.
    pub max_memory: usize,
    /// Fuel (roughly, WebAssembly instructions) per call; a guest that runs out traps,
    /// deterministically, on every replica at the same point.
    pub fuel_per_call: u64,
    /// Largest accepted module.
    pub max_module: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory: (1 << 30) + (1 << 20),
            fuel_per_call: 2_000_000_000,
            max_module: 64 << 20,
        }
    }
}
