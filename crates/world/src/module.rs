//! A user's own WebAssembly service: a module file (binary `.wasm` or text `.wat`) and an
//! optional configuration file (the bytes given to `es_init`). It is checked when it is
//! loaded, before anything starts, and travels to the ME servers inline by content hash,
//! as the samples' code does.

use std::path::{Path, PathBuf};

use edgeshift_edge::ServiceFactory;
use edgeshift_proto::{CodeRef, ServiceSpec};
use edgeshift_runtime::{Limits, WASM_KIND, WasmFactory};

use crate::WorldError;

/// A module and its configuration, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSource {
    /// Where the module came from (for messages).
    pub path: PathBuf,
    /// Its code, binary or text.
    pub code: Vec<u8>,
    /// The bytes given to `es_init`.
    pub config: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>, WorldError> {
    std::fs::read(path).map_err(|source| WorldError::ModuleFile {
        path: path.to_owned(),
        source,
    })
}

impl ModuleSource {
    /// Reads `path` and `config`, loads the module as an ME server would (guest ABI v1 and
    /// every load-time refusal) and initialises one instance with the configuration.
    ///
    /// # Errors
    /// A file that cannot be read, a module the runtime refuses, or a configuration its
    /// `es_init` refuses; each names the file and the reason.
    pub fn load(path: &Path, config: Option<&Path>) -> Result<Self, WorldError> {
        let code = read(path)?;
        let config = config.map(read).transpose()?.unwrap_or_default();
        let refused = |reason: String| WorldError::Module {
            path: path.to_owned(),
            reason,
        };
        let mut factory =
            WasmFactory::new(Limits::default()).map_err(|e| refused(e.to_string()))?;
        factory
            .instantiate(WASM_KIND, &code, &config)
            .map_err(|e| refused(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            code,
            config,
        })
    }

    /// The deploy spec of the module.
    #[must_use]
    pub fn spec(&self, latency_budget_ms: u32) -> ServiceSpec {
        ServiceSpec {
            code: CodeRef::Inline {
                kind: WASM_KIND.into(),
                bytes: self.code.clone(),
            },
            config: self.config.clone(),
            latency_budget_ms,
        }
    }
}
