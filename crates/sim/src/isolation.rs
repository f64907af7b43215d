//! `edgeshift bench isolation`: how long a normal service's answers wait when a runaway
//! guest shares its ME server. One server (the real edge role and WebAssembly runtime, no
//! network) hosts the `counter` sample and a guest that loops forever on every input; each
//! round the runaway's input arrives just before the normal one's. Wall-clock figures for
//! a benchmark; nothing here asserts a time.
//!
//! Run two ways: with guest calls inside the role's calls (as the simulator runs them),
//! where only the time slice bounds the wait, and lent out as jobs to worker threads (as
//! the live daemons run them), where the runaway holds up only its own service.

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
        answered_below: 0,
        input: InputRecord {
            seq,
            payload: vec![seq as u8; 32],
        },
    }
    .into()
}

/// Milliseconds the normal service took to answer each of `inputs` inputs, `beside` the
/// runaway or not, with `fuel` per input; `offload`: guest work runs as jobs on threads.
///
/// # Errors
/// The engine does not start, or the normal service did not answer an input.
pub fn isolation(
    inputs: u64,
    fuel: u64,
    beside: bool,
    offload: bool,
) -> Result<Vec<f64>, SimError> {
    let mut server = server(fuel, offload)?;
    while server.poll_transmit().is_some() {}
    while server.poll_event().is_some() {}
    let cell = NodeId::Cell(CellId(1));
    let mut workers = Workers::new();
    let mut waits = Vec::new();
    for seq in 1..=inputs {
        let now = Instant::from_millis(seq * 20);
        let t0 = Wall::now();
        if beside {
            server.handle_message(now, cell, input(LOOPING, seq));
        }
        server.handle_message(now, cell, input(NORMAL, seq));
        loop {
            workers.start(&mut server);
            let answered = std::iter::from_fn(|| server.poll_transmit())
                .any(|t| matches!(&t.msg, Message::ServiceOutput(o) if o.service == NORMAL));
            if answered {
                break;
            }
            // Without offload nothing is out: the answer should have come.
            let Some(job) = workers.next() else {
                return Err(SimError::Isolation(seq));
            };
            server.handle_job_done(now, job);
        }
        waits.push(t0.elapsed().as_secs_f64() * 1e3);
        while server.poll_event().is_some() {}
    }
    // The runaway's last jobs, so that the next measurement runs on an idle machine.
    while let Some(job) = workers.next() {
        server.handle_job_done(Instant::from_millis((inputs + 1) * 20), job);
        workers.start(&mut server);
    }
    Ok(waits)
}

/// One server hosting the `counter` sample (`NORMAL`) and the runaway (`LOOPING`), with
/// `fuel` per input; `offload`: it lends guest work out as jobs.
fn server(fuel: u64, offload: bool) -> Result<EdgeServer, SimError> {
    let limits = Limits {
        fuel_per_input: fuel,
        ..Limits::default()
    };
    let factory = WasmFactory::new(limits).map_err(SimError::Runtime)?;
    let mut cfg = EdgeConfig::new(ServerId(1));
    cfg.offload = offload;
    let mut server = EdgeServer::new(cfg, Box::new(factory), Instant::ZERO);
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
        server.handle_message(Instant::ZERO, NodeId::CONTROL, m.into());
    }
    Ok(server)
}

/// A thread per job, as many as there are busy services (two here).
struct Workers {
    tx: std::sync::mpsc::Sender<edgeshift_edge::Job>,
    rx: std::sync::mpsc::Receiver<edgeshift_edge::Job>,
    out: usize,
}

impl Workers {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Self { tx, rx, out: 0 }
    }

    /// Runs every job the server lent.
    fn start(&mut self, server: &mut EdgeServer) {
        while let Some(mut job) = server.poll_job() {
            let tx = self.tx.clone();
            self.out += 1;
            std::thread::spawn(move || {
                job.run();
                let _ = tx.send(job);
            });
        }
    }

    /// The next job done, waiting for it; `None` when none is out.
    fn next(&mut self) -> Option<edgeshift_edge::Job> {
        if self.out == 0 {
            return None;
        }
        let job = self.rx.recv().ok()?;
        self.out -= 1;
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeshift_edge::EdgeEvent;

    /// The normal service answers every input while the runaway's job is out, however long
    /// that job takes: here it is never handed back until the end.
    #[test]
    fn a_runaway_job_holds_up_only_its_own_service() {
        let mut server = server(1_000_000, true).expect("engine");
        let cell = NodeId::Cell(CellId(1));
        let mut held = Vec::new();
        let mut answered = Vec::new();
        for seq in 1..=20 {
            let now = Instant::from_millis(seq * 20);
            server.handle_message(now, cell, input(LOOPING, seq));
            server.handle_message(now, cell, input(NORMAL, seq));
            while let Some(mut job) = server.poll_job() {
                if job.service() == LOOPING {
                    held.push(job);
                } else {
                    job.run();
                    server.handle_job_done(now, job);
                }
            }
            answered.extend(std::iter::from_fn(|| server.poll_transmit()).filter_map(
                |t| match t.msg {
                    Message::ServiceOutput(o) => Some((o.service, o.seq)),
                    _ => None,
                },
            ));
        }
        let normal: Vec<u64> = (1..=20).collect();
        assert_eq!(
            answered,
            normal.iter().map(|s| (NORMAL, *s)).collect::<Vec<_>>()
        );
        // One job of the runaway's first input is all that went out for it.
        assert_eq!(held.len(), 1);
        // Run at last, its first input traps on its time slice, and the inputs that
        // queued meanwhile go out as one job.
        let mut job = held.remove(0);
        job.run();
        let now = Instant::from_millis(500);
        server.handle_job_done(now, job);
        let errors = std::iter::from_fn(|| server.poll_event())
            .filter(|e| matches!(e, EdgeEvent::ServiceError { service, .. } if *service == LOOPING))
            .count();
        assert_eq!(errors, 1);
        let next = server.poll_job().expect("the inputs that queued");
        assert_eq!((next.service(), next.len()), (LOOPING, 19));
    }
}
