//! `edgeshift bench isolation`: how long a normal service's answers wait when a runaway
//! guest shares its ME server. One server (the real edge role and WebAssembly runtime, no
//! network) hosts the `counter` sample and a guest that loops forever on every input; each
//! round the runaway's input arrives just before the normal one's. Wall-clock figures for
//! a benchmark; nothing here asserts a time.

use std::time::Instant as Wall;

use edgeshift_edge::{EdgeConfig, EdgeServer};
use edgeshift_proto::{
    CellId, CodeRef, InputRecord, Instant, Instantiate, Message, NodeId, Role, ServerId, ServiceId,
    ServiceInput, ServiceSpec, UeId,
};
use edgeshift_runtime::{Limits, WasmFactory};

use crate::SimError;

/// A guest that never returns from an input.
const RUNAWAY: &str = r#"(module (memory (export "memory") 1)
  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 0))
  (func (export "es_buffer_size") (result i32) (i32.const 1024))
  (func (export "es_init") (param i32) (result i32) (i32.const 0))
  (func (export "es_input") (param i64 i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#;

const NORMAL: ServiceId = ServiceId(1);
const LOOPING: ServiceId = ServiceId(2);

fn input(service: ServiceId, seq: u64) -> Message {
    ServiceInput {
        ue: UeId(service.0),
        service,
        via: CellId(1),
        input: InputRecord {
            seq,
            payload: vec![seq as u8; 32],
        },
    }
    .into()
}

/// Milliseconds the normal service took to answer each of `inputs` inputs, `beside` the
/// runaway or not, with `fuel` per input.
///
/// # Errors
/// The engine does not start, or the normal service did not answer an input.
pub fn isolation(inputs: u64, fuel: u64, beside: bool) -> Result<Vec<f64>, SimError> {
    let limits = Limits {
        fuel_per_input: fuel,
        ..Limits::default()
    };
    let factory = WasmFactory::new(limits).map_err(SimError::Runtime)?;
    let mut server = EdgeServer::new(
        EdgeConfig::new(ServerId(1)),
        Box::new(factory),
        Instant::ZERO,
    );
    let counter = edgeshift_world::service_spec("counter", 4096, 8, 0)?;
    let runaway = ServiceSpec {
        code: CodeRef::Inline {
            kind: edgeshift_runtime::WASM_KIND.into(),
            bytes: RUNAWAY.as_bytes().to_vec(),
        },
        config: Vec::new(),
        latency_budget_ms: 0,
    };
    for (service, spec) in [(NORMAL, counter), (LOOPING, runaway)] {
        let m = Instantiate {
            service,
            ue: UeId(service.0),
            spec,
        };
        server.handle_message(Instant::ZERO, NodeId::Control, m.into());
    }
    while server.poll_transmit().is_some() {}
    while server.poll_event().is_some() {}
    let cell = NodeId::Cell(CellId(1));
    let mut waits = Vec::new();
    for seq in 1..=inputs {
        let now = Instant::from_millis(seq * 20);
        let t0 = Wall::now();
        if beside {
            server.handle_message(now, cell, input(LOOPING, seq));
        }
        server.handle_message(now, cell, input(NORMAL, seq));
        let answered = std::iter::from_fn(|| server.poll_transmit())
            .any(|t| matches!(&t.msg, Message::ServiceOutput(o) if o.service == NORMAL));
        if !answered {
            return Err(SimError::Isolation(seq));
        }
        waits.push(t0.elapsed().as_secs_f64() * 1e3);
        while server.poll_event().is_some() {}
    }
    Ok(waits)
}
