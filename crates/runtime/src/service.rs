//! [`WasmService`]: a guest instance behind the edge's `Service` trait.

use edgeshift_edge::{Service, ServiceError};
use edgeshift_proto::DeltaChunk;
use wasmtime::{
    Caller, Engine, ExternType, Global, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, Trap, TypedFunc, V128, Val, ValType,
};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::error::ModuleError;
use crate::instrument::Layout;
use crate::limits::Limits;
use crate::state::{GlobalValue, HEADER, decode_header, encode_header};

/// Chunk size of deltas (one page of the header, then memory pages of 4 KiB): the unit
/// the dirty map tracks (`track.rs`).
const CHUNK: usize = 1 << crate::track::CHUNK_SHIFT;

/// Per-instance host state.
pub(crate) struct Host {
    limits: StoreLimits,
    seed: u64,
}

/// The functions of module `edgeshift` a guest may import.
pub(crate) fn add_host_functions(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    // Seeded per service, identical on every replica: replay stays deterministic.
    linker.func_wrap(
        "edgeshift",
        "random",
        |caller: Caller<'_, Host>, key: i64| -> i64 {
            let seed = caller.data().seed;
            xxhash_rust::xxh3::xxh3_64_with_seed(&key.to_le_bytes(), seed) as i64
        },
    )?;
    // Debug output; replicas produce it too, so the host drops it.
    linker.func_wrap(
        "edgeshift",
        "log",
        |_: Caller<'_, Host>, _ptr: i32, _len: i32| {},
    )?;
    Ok(())
}

const FUNCS: [(&str, &[ValType], &[ValType]); 5] = [
    ("es_abi_version", &[], &[ValType::I32]),
    ("es_buffer", &[], &[ValType::I32]),
    ("es_buffer_size", &[], &[ValType::I32]),
    ("es_init", &[ValType::I32], &[ValType::I32]),
    ("es_input", &[ValType::I64, ValType::I32], &[ValType::I32]),
];

/// Checks that a module exports what guest ABI v1 requires.
pub(crate) fn check_exports(module: &Module) -> Result<(), ModuleError> {
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => {}
        _ => {
            return Err(ModuleError::Abi(
                "no exported memory named \"memory\"".into(),
            ));
        }
    }
    for (name, params, results) in FUNCS {
        let Some(ExternType::Func(f)) = module.get_export(name) else {
            return Err(ModuleError::Abi(format!("no exported function {name}")));
        };
        let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
            a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
        };
        if !same(&mut f.params(), params) || !same(&mut f.results(), results) {
            return Err(ModuleError::Abi(format!("{name} has the wrong signature")));
        }
    }
    Ok(())
}

fn trap(seq: u64, e: &wasmtime::Error) -> ServiceError {
    let reason = match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "ran out of fuel (runaway loop?)".to_owned(),
        Some(t) => format!("trap: {t}"),
        None => format!("{e:#}"),
    };
    ServiceError::Trap { seq, reason }
}

/// One guest instance: its store, memory, mutable globals and entry points.
pub struct WasmService {
    store: Store<Host>,
    memory: Memory,
    globals: Vec<Global>,
    global_cache: Vec<GlobalValue>,
    input: TypedFunc<(i64, i32), i32>,
    buffer: usize,
    buffer_size: usize,
    /// The dirty map (`track.rs`): one byte per memory chunk the guest (or the host, for
    /// it) wrote since the last delta.
    map: Memory,
    /// The memory's size and the header at the last delta (`None`: no baseline yet, every
    /// chunk counts). Chunks beyond that size are new, hence written.
    baseline: Option<(usize, Box<[u8; HEADER]>)>,
    fuel: u64,
    /// Fuel the last `step` consumed.
    last_fuel: u64,
    /// The header of a restore in progress.
    restoring: Option<Box<[u8; HEADER]>>,
}

impl WasmService {
    pub(crate) fn new(
        engine: &Engine,
        linker: &Linker<Host>,
        module: &Module,
        layout: &Layout,
        config: &[u8],
        code_hash: u128,
        limits: Limits,
    ) -> Result<Self, ServiceError> {
        let seed = xxh3_64(&[code_hash.to_le_bytes().as_slice(), config].concat());
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.max_memory)
            .instances(1)
            .memories(2)
            .build();
        let mut store = Store::new(
            engine,
            Host {
                limits: store_limits,
                seed,
            },
        );
        store.limiter(|h| &mut h.limits);
        let fail = |e: wasmtime::Error| ServiceError::InvalidCode(format!("{e:#}"));
        store.set_fuel(limits.fuel_per_call).map_err(fail)?;
        let instance = linker.instantiate(&mut store, module).map_err(|e| {
            if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                ServiceError::Exhausted(format!("{e:#}"))
            } else {
                fail(e)
            }
        })?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| ServiceError::InvalidCode("no memory export".into()))?;
        let map = instance
            .get_memory(&mut store, crate::track::MAP_EXPORT)
            .ok_or_else(|| {
                ServiceError::InvalidCode("not instrumented for write tracking".into())
            })?;
        let globals = layout
            .globals
            .iter()
            .map(|n| {
                instance
                    .get_global(&mut store, n)
                    .ok_or_else(|| ServiceError::InvalidCode(format!("global {n} missing")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let get = |store: &mut Store<Host>, name: &str| {
            instance
                .get_typed_func::<(), i32>(&mut *store, name)
                .map_err(|e| ServiceError::InvalidCode(format!("{name}: {e:#}")))
        };
        let version = get(&mut store, "es_abi_version")?
            .call(&mut store, ())
            .map_err(|e| trap(0, &e))?;
        if version != 1 {
            return Err(ServiceError::InvalidCode(format!(
                "guest ABI version {version}, this host speaks 1"
            )));
        }
        let buffer = get(&mut store, "es_buffer")?
            .call(&mut store, ())
            .map_err(|e| trap(0, &e))?;
        let buffer_size = get(&mut store, "es_buffer_size")?
            .call(&mut store, ())
            .map_err(|e| trap(0, &e))?;
        let (buffer, buffer_size) = (
            usize::try_from(buffer).unwrap_or(usize::MAX),
            usize::try_from(buffer_size).unwrap_or(0),
        );
        if buffer_size < 16 || buffer.saturating_add(buffer_size) > memory.data_size(&store) {
            return Err(ServiceError::InvalidCode(format!(
                "I/O buffer {buffer}+{buffer_size} is outside memory"
            )));
        }
        let init = instance
            .get_typed_func::<i32, i32>(&mut store, "es_init")
            .map_err(|e| ServiceError::InvalidCode(format!("es_init: {e:#}")))?;
        let input = instance
            .get_typed_func::<(i64, i32), i32>(&mut store, "es_input")
            .map_err(|e| ServiceError::InvalidCode(format!("es_input: {e:#}")))?;
        if config.len() > buffer_size {
            return Err(ServiceError::InvalidConfig(format!(
                "{} bytes, the buffer holds {buffer_size}",
                config.len()
            )));
        }
        memory.data_mut(&mut store)[buffer..buffer + config.len()].copy_from_slice(config);
        let len = i32::try_from(config.len()).unwrap_or(i32::MAX);
        let code = init.call(&mut store, len).map_err(|e| trap(0, &e))?;
        if code != 0 {
            return Err(ServiceError::InvalidConfig(format!(
                "es_init refused the config (code {code})"
            )));
        }
        let mut svc = Self {
            store,
            memory,
            globals,
            global_cache: Vec::new(),
            input,
            buffer,
            buffer_size,
            map,
            baseline: None,
            fuel: limits.fuel_per_input,
            last_fuel: 0,
            restoring: None,
        };
        svc.refresh_globals();
        Ok(svc)
    }

    /// Reads the mutable globals into the cache (after every call into the guest).
    fn refresh_globals(&mut self) {
        self.global_cache = self
            .globals
            .iter()
            .map(|g| match g.get(&mut self.store) {
                Val::I32(v) => GlobalValue {
                    tag: 0,
                    bits: u128::from(v as u32),
                },
                Val::I64(v) => GlobalValue {
                    tag: 1,
                    bits: u128::from(v as u64),
                },
                Val::F32(v) => GlobalValue {
                    tag: 2,
                    bits: u128::from(v),
                },
                Val::F64(v) => GlobalValue {
                    tag: 3,
                    bits: u128::from(v),
                },
                Val::V128(v) => GlobalValue {
                    tag: 4,
                    bits: v.as_u128(),
                },
                // Reference globals are refused at load time.
                _ => GlobalValue { tag: 255, bits: 0 },
            })
            .collect();
    }

    fn set_globals(&mut self, values: &[GlobalValue]) -> Result<(), ServiceError> {
        for (g, v) in self.globals.iter().zip(values) {
            let val = match v.tag {
                0 => Val::I32(v.bits as u32 as i32),
                1 => Val::I64(v.bits as u64 as i64),
                2 => Val::F32(v.bits as u32),
                3 => Val::F64(v.bits as u64),
                4 => Val::V128(V128::from(v.bits)),
                t => {
                    return Err(ServiceError::BadState(format!(
                        "unknown global type tag {t}"
                    )));
                }
            };
            g.set(&mut self.store, val)
                .map_err(|e| ServiceError::BadState(format!("global: {e:#}")))?;
        }
        self.refresh_globals();
        Ok(())
    }

    fn header(&self) -> [u8; HEADER] {
        encode_header(
            &self.global_cache,
            self.memory.data_size(&self.store) as u64,
        )
    }

    /// Chunk `i` of header ‖ memory.
    fn chunk<'a>(&'a self, header: &'a [u8; HEADER], i: usize) -> &'a [u8] {
        if i == 0 {
            return header;
        }
        let mem = self.memory.data(&self.store);
        let start = (i - 1) * CHUNK;
        &mem[start..(start + CHUNK).min(mem.len())]
    }

    fn chunk_count(&self) -> usize {
        1 + self.memory.data_size(&self.store).div_ceil(CHUNK)
    }

    /// Marks the memory chunks of `[start, start + len)` written (a write by the host).
    fn mark(&mut self, start: usize, len: usize) {
        if len == 0 {
            return;
        }
        let (first, last) = (start / CHUNK, (start + len - 1) / CHUNK);
        if let Some(m) = self.map.data_mut(&mut self.store).get_mut(first..=last) {
            m.fill(1);
        }
    }

    /// The chunks (header ‖ memory indices) written since the baseline: the header if it
    /// changed, each memory chunk the map marks, and each one the memory grew by.
    fn dirty(&self) -> Vec<usize> {
        let n = self.chunk_count();
        let Some((len, header)) = &self.baseline else {
            return (0..n).collect();
        };
        let mut out = Vec::new();
        if **header != self.header() {
            out.push(0);
        }
        let old = len.div_ceil(CHUNK);
        let map = self.map.data(&self.store);
        // Eight map bytes at a time: most of a large state is clean.
        let clean = [0u8; 8];
        for (w, word) in map[..(n - 1).min(map.len())].chunks(8).enumerate() {
            if word == &clean[..word.len()] {
                continue;
            }
            out.extend(
                word.iter()
                    .enumerate()
                    .filter(|(_, b)| **b != 0)
                    .map(|(j, _)| w * 8 + j + 1),
            );
        }
        out.extend((old + 1..n).filter(|i| map.get(i - 1).is_none_or(|b| *b == 0)));
        out.sort_unstable();
        out
    }
    fn grow_to(&mut self, memory_len: u64) -> Result<(), ServiceError> {
        let have = self.memory.data_size(&self.store) as u64;
        if memory_len < have || !memory_len.is_multiple_of(65536) {
            return Err(ServiceError::BadState(format!(
                "memory of {memory_len} bytes cannot replace {have}"
            )));
        }
        if memory_len > have {
            self.memory
                .grow(&mut self.store, (memory_len - have) / 65536)
                .map_err(|e| ServiceError::BadState(format!("memory.grow: {e:#}")))?;
        }
        Ok(())
    }
}

impl WasmService {
    /// Fuel (about one unit per WebAssembly instruction) the last input consumed.
    #[must_use]
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }
}

impl Service for WasmService {
    fn step(&mut self, seq: u64, input: &[u8]) -> Result<Vec<u8>, ServiceError> {
        if input.len() > self.buffer_size {
            return Err(ServiceError::Trap {
                seq,
                reason: format!(
                    "input of {} bytes exceeds the {}-byte buffer",
                    input.len(),
                    self.buffer_size
                ),
            });
        }
        let (b, n) = (self.buffer, input.len());
        self.memory.data_mut(&mut self.store)[b..b + n].copy_from_slice(input);
        self.mark(b, n);
        self.store.set_fuel(self.fuel).map_err(|e| trap(seq, &e))?;
        let result = self.input.call(&mut self.store, (seq as i64, n as i32));
        self.last_fuel = self
            .fuel
            .saturating_sub(self.store.get_fuel().unwrap_or(self.fuel));
        // A trap may have changed globals before it struck: read them either way.
        self.refresh_globals();
        let len = result.map_err(|e| trap(seq, &e))?;
        let len = usize::try_from(len).map_err(|_| ServiceError::Trap {
            seq,
            reason: format!("service returned error {len}"),
        })?;
        if len > self.buffer_size {
            return Err(ServiceError::Trap {
                seq,
                reason: format!("answer of {len} bytes exceeds the buffer"),
            });
        }
        Ok(self.memory.data(&self.store)[b..b + len].to_vec())
    }

    fn read_state(&self, offset: u64, out: &mut [u8]) {
        let header = self.header();
        let mem = self.memory.data(&self.store);
        let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut done = 0;
        while done < out.len() {
            let src: &[u8] = if at < HEADER {
                &header[at..]
            } else {
                mem.get(at - HEADER..).unwrap_or(&[])
            };
            let n = src.len().min(out.len() - done);
            if n == 0 {
                break;
            }
            out[done..done + n].copy_from_slice(&src[..n]);
            done += n;
            at += n;
        }
    }

    fn begin_restore(&mut self, total_len: u64) -> Result<(), ServiceError> {
        let memory_len = total_len
            .checked_sub(HEADER as u64)
            .ok_or_else(|| ServiceError::BadState("snapshot shorter than its header".into()))?;
        self.grow_to(memory_len)?;
        if self.memory.data_size(&self.store) as u64 != memory_len {
            return Err(ServiceError::BadState(format!(
                "snapshot memory of {memory_len} bytes, instance has {}",
                self.memory.data_size(&self.store)
            )));
        }
        self.restoring = Some(Box::new([0; HEADER]));
        Ok(())
    }

    fn restore_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), ServiceError> {
        let Some(header) = self.restoring.as_mut() else {
            return Err(ServiceError::BadState(
                "restore_chunk without begin_restore".into(),
            ));
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start
            .checked_add(data.len())
            .filter(|e| *e <= HEADER + self.memory.data_size(&self.store));
        let Some(end) = end else {
            return Err(ServiceError::BadState(format!(
                "piece at {offset} of {} bytes exceeds the state",
                data.len()
            )));
        };
        if start < HEADER {
            let n = (HEADER - start).min(data.len());
            header[start..start + n].copy_from_slice(&data[..n]);
        }
        if end > HEADER {
            let skip = HEADER.saturating_sub(start);
            let at = start.max(HEADER) - HEADER;
            self.memory.data_mut(&mut self.store)[at..at + data.len() - skip]
                .copy_from_slice(&data[skip..]);
        }
        Ok(())
    }

    fn finish_restore(&mut self) -> Result<(), ServiceError> {
        let header = self
            .restoring
            .take()
            .ok_or_else(|| ServiceError::BadState("finish_restore without begin_restore".into()))?;
        let (globals, memory_len) =
            decode_header(&header[..], self.globals.len()).map_err(ServiceError::BadState)?;
        if memory_len != self.memory.data_size(&self.store) as u64 {
            return Err(ServiceError::BadState(format!(
                "header says {memory_len} bytes of memory, the snapshot had {}",
                self.memory.data_size(&self.store)
            )));
        }
        self.set_globals(&globals)?;
        // The first delta after a restore carries every chunk; the edge resets the
        // baseline before it starts a delta shadow.
        self.baseline = None;
        Ok(())
    }

    fn take_delta(&mut self) -> (u64, Vec<DeltaChunk>) {
        let header = self.header();
        let chunks = self
            .dirty()
            .into_iter()
            .map(|i| DeltaChunk {
                index: i as u32,
                data: self.chunk(&header, i).to_vec(),
            })
            .collect();
        self.reset_delta();
        (self.state_len(), chunks)
    }

    fn reset_delta(&mut self) {
        let used = (self.chunk_count() - 1).min(self.map.data_size(&self.store));
        self.map.data_mut(&mut self.store)[..used].fill(0);
        let len = self.memory.data_size(&self.store);
        self.baseline = Some((len, Box::new(self.header())));
    }

    fn dirty_bytes(&self) -> u64 {
        let header = self.header();
        self.dirty()
            .into_iter()
            .map(|i| self.chunk(&header, i).len() as u64)
            .sum()
    }

    fn apply_delta(&mut self, len: u64, chunks: &[DeltaChunk]) -> Result<(), ServiceError> {
        let memory_len = len
            .checked_sub(HEADER as u64)
            .ok_or_else(|| ServiceError::BadState("delta shorter than a header".into()))?;
        self.grow_to(memory_len)?;
        let mem_len = self.memory.data_size(&self.store);
        for c in chunks {
            let i = c.index as usize;
            if i == 0 {
                let (globals, _) =
                    decode_header(&c.data, self.globals.len()).map_err(ServiceError::BadState)?;
                self.set_globals(&globals)?;
                continue;
            }
            let start = (i - 1) * CHUNK;
            let end = start + c.data.len();
            if c.data.len() > CHUNK || end > mem_len {
                return Err(ServiceError::BadState(format!("chunk {i} does not fit")));
            }
            self.memory.data_mut(&mut self.store)[start..end].copy_from_slice(&c.data);
            // Written here for the guest: a delta this instance sends later carries it.
            self.mark(start, c.data.len());
        }
        Ok(())
    }

    fn checksum(&self) -> u128 {
        let mut h = Xxh3::new();
        h.update(&self.header());
        h.update(self.memory.data(&self.store));
        h.digest128()
    }

    fn state_len(&self) -> u64 {
        (HEADER + self.memory.data_size(&self.store)) as u64
    }

    fn chunk_size(&self) -> u32 {
        CHUNK as u32
    }
}
