//! Sample services shipped in the repository, written in WAT and compiled at load time.

use edgeshift_proto::{CodeRef, ServiceSpec};

use crate::factory::WASM_KIND;

/// `counter`: a global and one memory word.
pub const COUNTER: &str = include_str!("../services/counter.wat");
/// `arena`: a multiplayer game world.
pub const ARENA: &str = include_str!("../services/arena.wat");
/// `armap`: an AR feature map of 1 MiB to 1 GiB.
pub const ARMAP: &str = include_str!("../services/armap.wat");

/// Names of the samples.
pub const NAMES: [&str; 3] = ["counter", "arena", "armap"];

/// The WAT text of a sample.
#[must_use]
pub fn source(name: &str) -> Option<&'static str> {
    match name {
        "counter" => Some(COUNTER),
        "arena" => Some(ARENA),
        "armap" => Some(ARMAP),
        _ => None,
    }
}

/// A deploy spec for a sample whose state is about `state_mib` MiB (counter: fixed).
///
/// `arena` gets 64 players on a square map of `state_mib` MiB; `armap` a feature map of
/// `state_mib` MiB with 16 sparse updates per input.
#[must_use]
pub fn spec(name: &str, state_mib: u32, latency_budget_ms: u32) -> Option<ServiceSpec> {
    let src = source(name)?;
    let config = match name {
        "arena" => {
            let side = ((f64::from(state_mib.max(1)) * 1048576.0).sqrt() as u32).clamp(16, 16384);
            [64u32, side, side]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        }
        "armap" => [state_mib.clamp(1, 1024), 16u32]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        _ => Vec::new(),
    };
    Some(ServiceSpec {
        code: CodeRef::Inline {
            kind: WASM_KIND.into(),
            bytes: src.as_bytes().to_vec(),
        },
        config,
        latency_budget_ms,
    })
}
