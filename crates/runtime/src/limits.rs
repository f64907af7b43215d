//! Limits every guest runs under.

/// The default [`Limits::fuel_per_input`].
pub const DEFAULT_FUEL_PER_INPUT: u64 = 20_000_000;

/// Per-instance limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory in bytes; a `memory.grow` beyond fails.
    pub max_memory: usize,
    /// Fuel (roughly, WebAssembly instructions) for instantiation and `es_init`; a guest
    /// that runs out traps, deterministically, on every replica at the same point.
    pub fuel_per_call: u64,
    /// Fuel per input (`es_input`): the time slice of one input. The guest runs on its
    /// server's event loop, so this bounds how long one input can hold every other service
    /// of that server (20 M, the default, is about 11 ms on this project's machine; the samples need
    /// about a thousand). A guest that runs out has the input consumed with an error, on
    /// every replica alike.
    pub fuel_per_input: u64,
    /// Largest accepted module.
    pub max_module: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory: (1 << 30) + (1 << 20),
            fuel_per_call: 2_000_000_000,
            fuel_per_input: DEFAULT_FUEL_PER_INPUT,
            max_module: 64 << 20,
        }
    }
}
