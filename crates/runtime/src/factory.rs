//! The engine, the module cache and instantiation.

use std::collections::BTreeMap;

use edgeshift_edge::{MEM_KIND, MODEL_KIND, MemFactory, Service, ServiceError, ServiceFactory};
use edgeshift_proto::code_hash;
use wasmtime::{Config, Engine, Linker, Module};

use crate::error::ModuleError;
use crate::instrument::{Layout, instrument};
use crate::limits::Limits;
use crate::service::{Host, WasmService};

/// Runtime kind of WebAssembly services.
pub const WASM_KIND: &str = "wasm";

/// Makes service instances: WebAssembly modules (kind `"wasm"`) through wasmtime, and
/// the built-in in-memory reference service (kind `"mem"`) and modelled one (`"model"`).
///
/// Modules are compiled once per content hash and cached, so a second shadow of the same
/// service on this server costs only its state.
pub struct WasmFactory {
    engine: Engine,
    linker: Linker<Host>,
    modules: BTreeMap<u128, (Module, Layout)>,
    limits: Limits,
    compiled: u64,
}

impl WasmFactory {
    /// A factory with the given limits.
    ///
    /// # Errors
    /// The engine could not be created for this host.
    pub fn new(limits: Limits) -> Result<Self, ModuleError> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            // Replay must be bit-identical across machines: canonical NaNs and no
            // hardware-dependent relaxed SIMD (threads are not compiled in at all).
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true);
        let engine =
            Engine::new(&config).map_err(|e| ModuleError::Invalid(format!("engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        crate::service::add_host_functions(&mut linker)
            .map_err(|e| ModuleError::Invalid(format!("linker: {e}")))?;
        Ok(Self {
            engine,
            linker,
            modules: BTreeMap::new(),
            limits,
            compiled: 0,
        })
    }

    /// How many modules were compiled so far (cache misses).
    #[must_use]
    pub fn compiled(&self) -> u64 {
        self.compiled
    }

    /// Checks, instruments and compiles `wasm` (text or binary), or takes it from the cache.
    ///
    /// # Errors
    /// The module is invalid, too large, or breaks guest ABI v1.
    pub fn load(&mut self, wasm: &[u8]) -> Result<u128, ModuleError> {
        let hash = code_hash(WASM_KIND, wasm);
        if self.modules.contains_key(&hash) {
            return Ok(hash);
        }
        if wasm.len() > self.limits.max_module {
            return Err(ModuleError::TooLarge(wasm.len()));
        }
        let binary = wat::parse_bytes(wasm).map_err(|e| ModuleError::Invalid(e.to_string()))?;
        let (instrumented, layout) = instrument(&binary)?;
        let instrumented = crate::track::track(&instrumented)?;
        let module = Module::new(&self.engine, &instrumented)
            .map_err(|e| ModuleError::Invalid(format!("{e:#}")))?;
        crate::service::check_exports(&module)?;
        self.compiled += 1;
        self.modules.insert(hash, (module, layout));
        Ok(hash)
    }

    /// A fresh instance of a loaded module, initialised with `config`.
    ///
    /// # Errors
    /// Unknown module, instantiation failure, or `es_init` refusing the config.
    pub fn instantiate_wasm(
        &mut self,
        hash: u128,
        config: &[u8],
    ) -> Result<WasmService, ServiceError> {
        let (module, layout) = self.modules.get(&hash).ok_or_else(|| {
            ServiceError::InvalidCode(format!("module {hash:032x} is not loaded"))
        })?;
        WasmService::new(
            &self.engine,
            &self.linker,
            module,
            layout,
            config,
            hash,
            self.limits,
        )
    }
}

impl ServiceFactory for WasmFactory {
    fn instantiate(
        &mut self,
        kind: &str,
        code: &[u8],
        config: &[u8],
    ) -> Result<Box<dyn Service>, ServiceError> {
        match kind {
            WASM_KIND => {
                let hash = self
                    .load(code)
                    .map_err(|e| ServiceError::InvalidCode(e.to_string()))?;
                Ok(Box::new(self.instantiate_wasm(hash, config)?))
            }
            MEM_KIND | MODEL_KIND => MemFactory.instantiate(kind, code, config),
            other => Err(ServiceError::UnknownKind(other.to_owned())),
        }
    }
}
