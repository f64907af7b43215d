//! Write tracking: every store of the guest also marks the 4 KiB chunk(s) it writes in a
//! second memory, the **dirty map** (one byte per chunk), so that a delta costs what the
//! guest wrote since the last one, not the size of its state. The host reads and clears
//! the map (`WasmService::take_delta`); the map is not part of the state.
//!
//! A store `T.store offset=o` of `n` bytes (address `a`, value `v` on the stack) becomes
//!
//! ```text
//! local.set $v  local.tee $a  i32.const o  i32.add  i32.const 12  i32.shr_u
//! i32.const 1  i32.store8 $map                                  ;; the first byte's chunk
//! local.get $a  i32.const o+n-1  i32.add  i32.const 12  i32.shr_u
//! i32.const 1  i32.store8 $map                                  ;; the last byte's chunk
//! local.get $a  local.get $v  T.store offset=o
//! ```
//!
//! (no `i32.const o  i32.add` when `o` is 0, no second mark for a one-byte store). The sums
//! wrap only for an address beyond 4 GiB, where the store itself traps; a store that
//! traps may leave a chunk marked that it did not write, which costs a chunk, never a
//! missed one. Fuel counts these instructions too: about 15 more per store.
//! `memory.fill`, `memory.copy` and `memory.init` mark their destination range with one
//! `memory.fill` of the map. Growing the memory needs nothing here: the host counts the
//! new chunks as written. Atomics are not compiled in (`factory.rs`), so there are no
//! other writes.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, Instruction, MemArg, MemorySection,
    MemoryType, Module, RawSection, ValType as EncType,
};
use wasmparser::{FuncType, Operator, Parser, Payload, TypeRef, ValType};

use crate::error::ModuleError;
use crate::instrument::export_kind;

/// The export name of the dirty map.
pub(crate) const MAP_EXPORT: &str = "__edgeshift_dirty_map";
/// The map's index: the guest has exactly one memory (`instrument.rs` checks).
const MAP: u32 = 1;
/// Log2 of the chunk size (4 KiB, `service::CHUNK`).
pub(crate) const CHUNK_SHIFT: u32 = 12;
/// Pages of the map: one byte per chunk of a 4 GiB memory (16 pages, 1 MiB).
const MAP_PAGES: u64 = 1 << (32 - CHUNK_SHIFT - 16);

/// Section id of the export section.
const EXPORT_ID: u8 = 7;

/// Where each section goes in a module (the custom sections, id 0, go anywhere).
fn rank(id: u8) -> usize {
    [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]
        .iter()
        .position(|x| *x == id)
        .unwrap_or(0)
}

/// What a store writes: its memory argument, its width, and the type of its value.
fn store_of(op: &Operator<'_>) -> Option<(wasmparser::MemArg, u64, ValType)> {
    Some(match *op {
        Operator::I32Store { memarg } => (memarg, 4, ValType::I32),
        Operator::I32Store8 { memarg } => (memarg, 1, ValType::I32),
        Operator::I32Store16 { memarg } => (memarg, 2, ValType::I32),
        Operator::I64Store { memarg } => (memarg, 8, ValType::I64),
        Operator::I64Store8 { memarg } => (memarg, 1, ValType::I64),
        Operator::I64Store16 { memarg } => (memarg, 2, ValType::I64),
        Operator::I64Store32 { memarg } => (memarg, 4, ValType::I64),
        Operator::F32Store { memarg } => (memarg, 4, ValType::F32),
        Operator::F64Store { memarg } => (memarg, 8, ValType::F64),
        Operator::V128Store { memarg } => (memarg, 16, ValType::V128),
        Operator::V128Store8Lane { memarg, .. } => (memarg, 1, ValType::V128),
        Operator::V128Store16Lane { memarg, .. } => (memarg, 2, ValType::V128),
        Operator::V128Store32Lane { memarg, .. } => (memarg, 4, ValType::V128),
        Operator::V128Store64Lane { memarg, .. } => (memarg, 8, ValType::V128),
        _ => return None,
    })
}

/// The scratch locals a tracked function gets after its own.
struct Scratch {
    /// i32: a store's address, a bulk operation's destination.
    addr: u32,
    /// A store's value, one local per type (i32, i64, f32, f64, v128).
    value: [u32; 5],
    /// i32: a bulk operation's length.
    len: u32,
}

impl Scratch {
    fn value(&self, ty: ValType) -> u32 {
        let i = match ty {
            ValType::I32 => 0,
            ValType::I64 => 1,
            ValType::F32 => 2,
            ValType::F64 => 3,
            _ => 4,
        };
        self.value[i]
    }
}

/// Adds the dirty map to an instrumented module (`instrument.rs` checked it).
pub(crate) fn track(wasm: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let bad = |e: wasmparser::BinaryReaderError| ModuleError::Invalid(e.to_string());
    let enc = |e: wasm_encoder::reencode::Error| ModuleError::Invalid(e.to_string());
    // First pass: the function types, to know where each function's scratch locals go.
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(bad)? {
            Payload::TypeSection(r) => {
                for group in r.into_iter() {
                    for sub in group.map_err(bad)?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(f.clone()),
                            _ => None,
                        });
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for f in r {
                    funcs.push(f.map_err(bad)?);
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    if let TypeRef::Memory(_) = imp.map_err(bad)?.ty {
                        return Err(ModuleError::Abi("imported memory".into()));
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Module::new();
    let mut exports = ExportSection::new();
    let mut exported = false;
    let mut code: Option<(CodeSection, u32)> = None;
    let mut next_func = 0usize;
    let mut rt = RoundtripReencoder;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(bad)?;
        // A module without exports gets its section where one belongs.
        if let Some((id, _)) = payload.as_section()
            && id != 0
            && rank(id) > rank(EXPORT_ID)
        {
            place_exports(&mut out, &mut exports, &mut exported);
        }
        match payload {
            Payload::MemorySection(r) => {
                let mut s = MemorySection::new();
                rt.parse_memory_section(&mut s, r).map_err(enc)?;
                s.memory(MemoryType {
                    minimum: MAP_PAGES,
                    maximum: Some(MAP_PAGES),
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
                out.section(&s);
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(bad)?;
                    if e.name == MAP_EXPORT {
                        return Err(ModuleError::Abi(format!(
                            "exports {MAP_EXPORT}, a name the host uses"
                        )));
                    }
                    exports.export(e.name, export_kind(e.kind)?, e.index);
                }
                place_exports(&mut out, &mut exports, &mut exported);
            }
            Payload::CodeSectionStart { count, .. } => {
                code = Some((CodeSection::new(), count));
                if count == 0 {
                    out.section(&CodeSection::new());
                    code = None;
                }
            }
            Payload::CodeSectionEntry(body) => {
                let ty = funcs
                    .get(next_func)
                    .and_then(|t| types.get(*t as usize).cloned().flatten())
                    .ok_or_else(|| ModuleError::Invalid("a body without a function type".into()))?;
                next_func += 1;
                let f = track_body(&ty, &body).map_err(ModuleError::Invalid)?;
                if let Some((section, left)) = code.as_mut() {
                    section.function(&f);
                    *left -= 1;
                    if *left == 0 {
                        out.section(&*section);
                        code = None;
                    }
                }
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    out.section(&RawSection {
                        id,
                        data: &wasm[range],
                    });
                }
            }
        }
    }
    place_exports(&mut out, &mut exports, &mut exported);
    Ok(out.finish())
}

/// Appends the export section, with the map's export, unless it is there already.
fn place_exports(out: &mut Module, exports: &mut ExportSection, exported: &mut bool) {
    if !*exported {
        exports.export(MAP_EXPORT, ExportKind::Memory, MAP);
        out.section(&*exports);
        *exported = true;
    }
}

/// One function body with its stores tracked.
fn track_body(ty: &FuncType, body: &wasmparser::FunctionBody<'_>) -> Result<Function, String> {
    let s = |e: wasmparser::BinaryReaderError| e.to_string();
    let mut rt = RoundtripReencoder;
    let mut locals: Vec<(u32, EncType)> = Vec::new();
    let mut next = u32::try_from(ty.params().len()).map_err(|e| e.to_string())?;
    for pair in body.get_locals_reader().map_err(s)? {
        let (n, t) = pair.map_err(s)?;
        locals.push((n, rt.val_type(t).map_err(|e| e.to_string())?));
        next = next
            .checked_add(n)
            .ok_or_else(|| "too many locals".to_owned())?;
    }
    let scratch = Scratch {
        addr: next,
        value: [next + 1, next + 2, next + 3, next + 4, next + 5],
        len: next + 6,
    };
    locals.extend([
        (1, EncType::I32),
        (1, EncType::I32),
        (1, EncType::I64),
        (1, EncType::F32),
        (1, EncType::F64),
        (1, EncType::V128),
        (1, EncType::I32),
    ]);
    let mut f = Function::new(locals);
    let mut ops = body.get_operators_reader().map_err(s)?;
    let mark = MemArg {
        offset: 0,
        align: 0,
        memory_index: MAP,
    };
    while !ops.eof() {
        let op = ops.read().map_err(s)?;
        if let Some((memarg, width, vt)) = store_of(&op) {
            let v = scratch.value(vt);
            f.instruction(&Instruction::LocalSet(v));
            f.instruction(&Instruction::LocalTee(scratch.addr));
            mark_at(&mut f, memarg.offset, mark);
            if width > 1 {
                f.instruction(&Instruction::LocalGet(scratch.addr));
                mark_at(&mut f, memarg.offset.wrapping_add(width - 1), mark);
            }
            f.instruction(&Instruction::LocalGet(scratch.addr));
            f.instruction(&Instruction::LocalGet(v));
        } else if matches!(
            op,
            Operator::MemoryFill { .. } | Operator::MemoryCopy { .. } | Operator::MemoryInit { .. }
        ) {
            // (dst, x, n): mark the chunks of [dst, dst + n) when n > 0.
            let (dst, x, n) = (scratch.addr, scratch.value[0], scratch.len);
            f.instruction(&Instruction::LocalSet(n));
            f.instruction(&Instruction::LocalSet(x));
            f.instruction(&Instruction::LocalSet(dst));
            f.instruction(&Instruction::LocalGet(n));
            f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
            // map.fill(first, 1, last - first + 1)
            f.instruction(&Instruction::LocalGet(dst));
            f.instruction(&Instruction::I32Const(CHUNK_SHIFT.cast_signed()));
            f.instruction(&Instruction::I32ShrU);
            f.instruction(&Instruction::I32Const(1));
            f.instruction(&Instruction::LocalGet(dst));
            f.instruction(&Instruction::I64ExtendI32U);
            f.instruction(&Instruction::LocalGet(n));
            f.instruction(&Instruction::I64ExtendI32U);
            f.instruction(&Instruction::I64Add);
            f.instruction(&Instruction::I64Const(1));
            f.instruction(&Instruction::I64Sub);
            chunk_of(&mut f);
            f.instruction(&Instruction::LocalGet(dst));
            f.instruction(&Instruction::I32Const(CHUNK_SHIFT.cast_signed()));
            f.instruction(&Instruction::I32ShrU);
            f.instruction(&Instruction::I32Sub);
            f.instruction(&Instruction::I32Const(1));
            f.instruction(&Instruction::I32Add);
            f.instruction(&Instruction::MemoryFill(MAP));
            f.instruction(&Instruction::End);
            f.instruction(&Instruction::LocalGet(dst));
            f.instruction(&Instruction::LocalGet(x));
            f.instruction(&Instruction::LocalGet(n));
        }
        f.instruction(&rt.instruction(op).map_err(|e| e.to_string())?);
    }
    Ok(f)
}

/// Marks the chunk of the address on the stack plus `offset` (wrapping, see above).
fn mark_at(f: &mut Function, offset: u64, mark: MemArg) {
    if offset != 0 {
        // Offsets of a 32-bit memory fit in 32 bits; the add wraps like the address.
        f.instruction(&Instruction::I32Const((offset as u32).cast_signed()));
        f.instruction(&Instruction::I32Add);
    }
    f.instruction(&Instruction::I32Const(CHUNK_SHIFT.cast_signed()));
    f.instruction(&Instruction::I32ShrU);
    f.instruction(&Instruction::I32Const(1));
    f.instruction(&Instruction::I32Store8(mark));
}

/// The i64 byte address on the stack becomes its chunk's index (i32).
fn chunk_of(f: &mut Function) {
    f.instruction(&Instruction::I64Const(i64::from(CHUNK_SHIFT)));
    f.instruction(&Instruction::I64ShrU);
    f.instruction(&Instruction::I32WrapI64);
}
