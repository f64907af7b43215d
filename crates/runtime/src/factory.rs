//! The engine, the module cache and instantiation.

use std::collections::BTreeMap;

use edgeshift_edge::{MEM_KIND, MODEL_KIND, MemFactory, Service, ServiceError, ServiceFactory};
use edgeshift_proto::code_hash;
use wasmtime::{
    Config, Engine, Instance, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig,
    Store,
};

use crate::error::ModuleError;
use crate::instrument::{Layout, instrument};
use crate::limits::Limits;
use crate::service::{Host, WasmService};

/// Runtime kind of WebAssembly services.
pub const WASM_KIND: &str = "wasm";

/// Linear memories kept warm between instances (wasmtime's pooling allocator).
///
/// A fresh linear memory takes a page fault on the first write to each 4 KiB page: about
/// 2 µs each here, so a 512 MiB restore spends most of its time in the kernel. A pooled
/// memory is zeroed in place when its instance is dropped and stays resident, so the next
/// instance (a restore into this server) writes at memory speed. The price is resident
/// memory held while no instance uses it: up to `keep_resident` bytes per slot once used,
/// and [`WasmFactory::prewarm`]ed slots from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPool {
    /// Instances this factory holds at once; one more is refused with an error.
    pub instances: u32,
    /// Bytes of each linear memory kept resident after its instance is dropped.
    pub keep_resident: usize,
}

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
    /// Whether instances take their memories from a [`MemoryPool`].
    pooled: bool,
}

impl WasmFactory {
    /// A factory with the given limits.
    ///
    /// # Errors
    /// The engine could not be created for this host.
    pub fn new(limits: Limits) -> Result<Self, ModuleError> {
        Self::with_pool(limits, None)
    }

    /// A factory with the given limits whose instances take their memories from `pool`
    /// (`None`: fresh memories from the kernel, as [`WasmFactory::new`]).
    ///
    /// # Errors
    /// The engine could not be created for this host, or the pool could not be reserved.
    pub fn with_pool(limits: Limits, pool: Option<MemoryPool>) -> Result<Self, ModuleError> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            // Replay must be bit-identical across machines: canonical NaNs and no
            // hardware-dependent relaxed SIMD (threads are not compiled in at all).
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true);
        if let Some(pool) = pool {
            let mut p = PoolingAllocationConfig::default();
            // Each instance has two memories: the guest's and its write-tracking map.
            p.total_core_instances(pool.instances)
                .total_memories(pool.instances.saturating_mul(2))
                .total_tables(pool.instances)
                .max_memories_per_module(2)
                .table_elements(1 << 16)
                .max_memory_size(limits.max_memory)
                .linear_memory_keep_resident(pool.keep_resident)
                // Reuse a warm slot before touching a cold one, whatever module it last held:
                // warmth, not affinity, is what a restore needs.
                .max_unused_warm_slots(0);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
        }
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
            pooled: pool.is_some(),
        })
    }

    /// A factory for a server that expects incoming state: up to `instances` at once, each
    /// memory keeping `bytes` resident after its instance is gone, and one memory of
    /// `bytes` made resident now.
    ///
    /// # Errors
    /// As [`WasmFactory::with_pool`] and [`WasmFactory::prewarm`].
    pub fn warmed(limits: Limits, instances: u32, bytes: usize) -> Result<Self, ModuleError> {
        let pool = MemoryPool {
            instances,
            keep_resident: bytes,
        };
        let mut f = Self::with_pool(limits, Some(pool))?;
        f.prewarm(1, bytes)?;
        Ok(f)
    }

    /// Makes `count` pooled memories of `bytes` each resident now, so that the first
    /// restores into this server do not pay the page faults (a no-op without a pool).
    ///
    /// # Errors
    /// The pool has fewer slots than `count`, or `bytes` exceeds the memory limit.
    pub fn prewarm(&mut self, count: u32, bytes: usize) -> Result<(), ModuleError> {
        if !self.pooled {
            return Ok(());
        }
        if bytes > self.limits.max_memory {
            return Err(ModuleError::Invalid(format!(
                "cannot warm {bytes} bytes: memories are limited to {}",
                self.limits.max_memory
            )));
        }
        let fail = |e: wasmtime::Error| ModuleError::Invalid(format!("warm memory: {e:#}"));
        // Host-made memories do not come from the pool, instances of a module do.
        let wasm = wat::parse_str(r#"(module (memory (export "m") 0))"#)
            .map_err(|e| ModuleError::Invalid(e.to_string()))?;
        let module = Module::new(&self.engine, wasm).map_err(fail)?;
        let pages = u64::try_from(bytes.div_ceil(65536)).unwrap_or(u64::MAX);
        let mut store = Store::new(&self.engine, ());
        for _ in 0..count {
            let instance = Instance::new(&mut store, &module, &[]).map_err(fail)?;
            let memory = instance
                .get_memory(&mut store, "m")
                .ok_or_else(|| ModuleError::Invalid("warm memory: no export".into()))?;
            memory.grow(&mut store, pages).map_err(fail)?;
            // The first write to each page is the fault this pays now instead of later.
            memory.data_mut(&mut store).fill(0);
        }
        // Dropping the store hands every memory back, zeroed in place and resident up to the
        // pool's `keep_resident`.
        Ok(())
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
