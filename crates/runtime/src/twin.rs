//! The never-moved twin: what a service's state must equal after a run in which it may
//! have been relocated any number of times.

use edgeshift_edge::ServiceFactory;
use edgeshift_proto::{CodeRef, ServiceSpec};

use crate::{Limits, WasmFactory};

/// Checksum of a twin of `spec` that applied `inputs` (numbered 1, 2, …) in order and
/// never moved: what the live state must equal at the end of a run.
///
/// # Errors
/// Code that is not inline, or a service that does not start.
pub fn twin_checksum(
    spec: &ServiceSpec,
    inputs: impl IntoIterator<Item = impl AsRef<[u8]>>,
) -> Result<u128, String> {
    let CodeRef::Inline { kind, bytes } = &spec.code else {
        return Err("service code is not inline".into());
    };
    let mut factory = WasmFactory::new(Limits::default()).map_err(|e| e.to_string())?;
    let mut twin = factory
        .instantiate(kind, bytes, &spec.config)
        .map_err(|e| e.to_string())?;
    for (seq, p) in (1..).zip(inputs) {
        // A trap consumes the input on every replica alike.
        let _ = twin.step(seq, p.as_ref());
    }
    Ok(twin.checksum())
}
