//! [`Job`]: guest work the server lends out, so that a slow or runaway guest never holds
//! up the driver's event loop.
//!
//! With [`EdgeConfig::offload`](crate::EdgeConfig::offload) set, a server with inputs in
//! order for an instance does not run them itself: it lends the instance's service, with
//! those inputs, as a `Job`. The driver takes it with
//! [`EdgeServer::poll_job`](crate::EdgeServer::poll_job), calls [`Job::run`] wherever it
//! likes (a worker thread), and hands it back with
//! [`EdgeServer::handle_job_done`](crate::EdgeServer::handle_job_done). Meanwhile that one
//! service is busy: its inputs queue, and every other message and timer about it waits
//! for the job to come back, in order. Other services go on.
//!
//! ```no_run
//! # use edgeshift_edge::EdgeServer;
//! # use edgeshift_proto::Instant;
//! # fn drive(me: &mut EdgeServer, now: impl Fn() -> Instant) {
//! while let Some(mut job) = me.poll_job() {
//!     // On a worker: the service's own time slice bounds each step.
//!     job.run();
//!     me.handle_job_done(now(), job);
//! }
//! # }
//! ```

use edgeshift_proto::{CellId, Instant, ServiceId};

use crate::service::{Service, ServiceError};

/// Which instance of the service the job belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Live,
    Shadow,
}

/// One input a job applies: its sequence number, bytes, and the cell to answer through.
pub(crate) struct Step {
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
    pub(crate) via: Option<CellId>,
}

/// Inputs to apply, in order, with the service that applies them; lent by a server.
pub struct Job {
    pub(crate) service: ServiceId,
    pub(crate) id: u64,
    /// When the lending server was created: a job outliving its server (a restart in the
    /// same process) is not taken back by the next one.
    pub(crate) born: Instant,
    pub(crate) host: Host,
    pub(crate) svc: Box<dyn Service>,
    pub(crate) steps: Vec<Step>,
    pub(crate) results: Vec<Result<Vec<u8>, ServiceError>>,
}

impl Job {
    /// Applies the inputs not yet applied. Each step is bounded by the service's own
    /// limits (fuel per input for WebAssembly); a trap consumes its input like any other.
    pub fn run(&mut self) {
        for step in self.steps.iter().skip(self.results.len()) {
            self.results.push(self.svc.step(step.seq, &step.payload));
        }
    }

    /// The service whose instance this is.
    #[must_use]
    pub fn service(&self) -> ServiceId {
        self.service
    }

    /// Inputs in the job.
    #[must_use]
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the job holds no input.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether [`Job::run`] has applied every input.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.results.len() == self.steps.len()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("service", &self.service)
            .field("id", &self.id)
            .field("host", &self.host)
            .field("inputs", &self.steps.len())
            .field("done", &self.results.len())
            .finish_non_exhaustive()
    }
}
