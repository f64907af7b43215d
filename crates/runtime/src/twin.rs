//! The never-moved twin: what a service's state must equal after a run in which it may
//! have been relocated any number of times.

use edgeshift_edge::{ServiceError, ServiceFactory};
use edgeshift_proto::{CodeRef, ServiceSpec};

use crate::{Limits, ModuleError, WasmFactory};

/// Why no twin could be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TwinError {
    /// The spec names its code by hash; a twin needs the code itself.
    #[error("service code is not inline")]
    NotInline,
    /// The WebAssembly engine could not start.
    #[error("WebAssembly runtime: {0}")]
    Engine(#[from] ModuleError),
    /// The service did not start.
    #[error("the service does not start: {0}")]
    Start(#[from] ServiceError),
}

/// Checksum of a twin of `spec` that applied `inputs` (numbered 1, 2, …) in order and
/// never moved: what the live state must equal at the end of a run.
///
/// # Errors
/// Code that is not inline, or a service that does not start.
pub fn twin_checksum(
    spec: &ServiceSpec,
    limits: Limits,
    inputs: impl IntoIterator<Item = impl AsRef<[u8]>>,
) -> Result<u128, TwinError> {
    let CodeRef::Inline { kind, bytes } = &spec.code else {
        return Err(TwinError::NotInline);
    };
    // The servers' limits: an input that runs out of fuel there must here too.
    let mut factory = WasmFactory::new(limits)?;
    let mut twin = factory.instantiate(kind, bytes, &spec.config)?;
    for (seq, p) in (1..).zip(inputs) {
        // A trap consumes the input on every replica alike.
        let _ = twin.step(seq, p.as_ref());
    }
    Ok(twin.checksum())
}
