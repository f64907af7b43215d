//! Load-time checks and instrumentation of guest modules.
//!
//! The state of a guest is its linear memory *and* its mutable globals (a compiler keeps
//! its stack pointer in one). The host can only read globals a module exports, so every
//! mutable global without an export gets one (`__es_global_N`, with underscores added until
//! no export of the guest has that name), spliced into the export section; every other
//! section is copied byte for byte.
//!
//! What does not travel with the state must not change after instantiation: instructions
//! that drop data or element segments or write to a table are refused here, at load time,
//! as are host imports whose signature is not the one the host defines.

use wasm_encoder::{ExportKind, ExportSection, RawSection, Section as _};
use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, Operator, Parser, Payload, TypeRef, ValType,
};

use crate::error::ModuleError;

/// Section id of the export section.
const EXPORT_ID: u8 = 7;
/// Sections that must follow the export section (start, element, data count, code, data).
const AFTER_EXPORT: [u8; 5] = [8, 9, 12, 10, 11];

/// What the host needs to know about an instrumented module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Export names of the mutable globals, in index order.
    pub(crate) globals: Vec<String>,
}

/// Imports the host offers (module `edgeshift`).
pub(crate) const HOST_IMPORTS: [&str; 2] = ["random", "log"];

/// The signature the host defines for each of [`HOST_IMPORTS`]: (params, results).
fn host_signature(name: &str) -> (&'static [ValType], &'static [ValType]) {
    match name {
        "random" => (&[ValType::I64], &[ValType::I64]),
        _ => (&[ValType::I32, ValType::I32], &[]),
    }
}

/// An instruction that changes what a snapshot does not carry (segments, tables), by name.
fn mutates_untracked_state(op: &Operator<'_>) -> Option<&'static str> {
    Some(match op {
        Operator::DataDrop { .. } => "data.drop",
        Operator::ElemDrop { .. } => "elem.drop",
        Operator::TableSet { .. } => "table.set",
        Operator::TableGrow { .. } => "table.grow",
        Operator::TableFill { .. } => "table.fill",
        Operator::TableCopy { .. } => "table.copy",
        Operator::TableInit { .. } => "table.init",
        _ => return None,
    })
}

/// The encoder's name for an export's kind, for copying an export section.
pub(crate) fn export_kind(kind: ExternalKind) -> Result<ExportKind, ModuleError> {
    Ok(match kind {
        ExternalKind::Func => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
        other => {
            return Err(ModuleError::Abi(format!(
                "unsupported export kind {other:?}"
            )));
        }
    })
}

/// Checks a module against guest ABI v1 and exports its mutable globals.
pub(crate) fn instrument(wasm: &[u8]) -> Result<(Vec<u8>, Layout), ModuleError> {
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut mutable: Vec<u32> = Vec::new();
    let mut imported_globals = 0u32;
    let mut memories = 0u32;
    let mut sections: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let bad = |e: wasmparser::BinaryReaderError| ModuleError::Invalid(e.to_string());
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(bad)?;
        if let Some((id, range)) = payload.as_section() {
            sections.push((id, range));
        }
        match payload {
            Payload::TypeSection(r) => {
                for group in r.into_iter() {
                    for sub in group.map_err(bad)?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(f.clone()),
                            _ => None,
                        });
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(bad)?;
                while !ops.eof() {
                    if let Some(name) = mutates_untracked_state(&ops.read().map_err(bad)?) {
                        return Err(ModuleError::Abi(format!(
                            "uses {name}: segments and tables are not part of the state that \
                             travels, so they must not change after instantiation"
                        )));
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(bad)?;
                    let ok = imp.module == "edgeshift"
                        && HOST_IMPORTS.contains(&imp.name)
                        && matches!(imp.ty, TypeRef::Func(_));
                    if !ok {
                        return Err(ModuleError::Import(format!("{}.{}", imp.module, imp.name)));
                    }
                    if let TypeRef::Func(ty) = imp.ty {
                        let (params, results) = host_signature(imp.name);
                        let found = types.get(ty as usize).cloned().flatten();
                        if found
                            .as_ref()
                            .is_none_or(|f| f.params() != params || f.results() != results)
                        {
                            return Err(ModuleError::Abi(format!(
                                "imports edgeshift.{} as {}, the host defines it as {params:?} -> {results:?}",
                                imp.name,
                                found.map_or_else(
                                    || "a non-function type".to_owned(),
                                    |f| format!("{:?} -> {:?}", f.params(), f.results())
                                ),
                            )));
                        }
                    }
                    if matches!(imp.ty, TypeRef::Global(_)) {
                        imported_globals += 1;
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m.map_err(bad)?;
                    if m.memory64 || m.shared {
                        return Err(ModuleError::Abi(
                            "memory must be 32-bit and not shared".into(),
                        ));
                    }
                    memories += 1;
                }
            }
            Payload::GlobalSection(r) => {
                for (i, g) in r.into_iter().enumerate() {
                    let g = g.map_err(bad)?;
                    if g.ty.mutable {
                        if matches!(g.ty.content_type, ValType::Ref(_)) {
                            return Err(ModuleError::Abi(
                                "mutable reference globals cannot travel with the state".into(),
                            ));
                        }
                        mutable.push(imported_globals + i as u32);
                    }
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(bad)?;
                    exports.push((e.name.to_owned(), e.kind, e.index));
                }
            }
            _ => {}
        }
    }
    if memories != 1 {
        return Err(ModuleError::Abi(format!(
            "a service has exactly one memory, this module has {memories}"
        )));
    }
    if mutable.len() > crate::state::MAX_GLOBALS {
        return Err(ModuleError::Abi(format!(
            "{} mutable globals, at most {} travel with the state",
            mutable.len(),
            crate::state::MAX_GLOBALS
        )));
    }
    let mut added = Vec::new();
    let globals: Vec<String> = mutable
        .iter()
        .map(|idx| {
            exports
                .iter()
                .find(|(_, k, i)| *k == ExternalKind::Global && i == idx)
                .map(|(n, _, _)| n.clone())
                .unwrap_or_else(|| {
                    // A guest may export anything, even this name: add underscores until
                    // the name is free.
                    let mut name = format!("__es_global_{idx}");
                    while exports.iter().any(|(n, _, _)| *n == name) {
                        name.push('_');
                    }
                    added.push((name.clone(), *idx));
                    name
                })
        })
        .collect();
    if added.is_empty() {
        return Ok((wasm.to_vec(), Layout { globals }));
    }
    let mut section = ExportSection::new();
    for (name, kind, index) in &exports {
        section.export(name, export_kind(*kind)?, *index);
    }
    for (name, index) in &added {
        section.export(name, ExportKind::Global, *index);
    }
    let mut out = Vec::with_capacity(wasm.len() + 64 * added.len());
    out.extend_from_slice(&wasm[..8]);
    let mut placed = false;
    for (id, range) in &sections {
        if !placed && (*id == EXPORT_ID || AFTER_EXPORT.contains(id)) {
            section.append_to(&mut out);
            placed = true;
        }
        if *id == EXPORT_ID {
            continue;
        }
        RawSection {
            id: *id,
            data: &wasm[range.clone()],
        }
        .append_to(&mut out);
    }
    if !placed {
        section.append_to(&mut out);
    }
    Ok((out, Layout { globals }))
}
