//! Why a module was refused.

use thiserror::Error;

/// A module that does not load as an edgeshift service.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleError {
    /// Not valid WebAssembly, or the engine refused it.
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(String),
    /// The module imports something the host does not offer.
    #[error(
        "imports {0}, which the host does not offer (ABI v1 offers edgeshift.random and edgeshift.log only)"
    )]
    Import(String),
    /// The module breaks guest ABI v1.
    #[error("does not follow guest ABI v1: {0}")]
    Abi(String),
    /// The module is larger than allowed.
    #[error("module of {0} bytes exceeds the limit")]
    TooLarge(usize),
}
