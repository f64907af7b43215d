//! The [`Service`] trait every hosted service implements, and the [`ServiceFactory`]
//! that turns program code into instances.

use edgeshift_proto::DeltaChunk;
use thiserror::Error;

/// A deterministic, relocatable service.
///
/// The state after inputs `1..=n` must depend only on the initial state and those inputs,
/// so that a shadow replaying the same inputs stays bit-identical.
pub trait Service: Send {
    /// Applies input `seq` and returns the answer for the UE.
    ///
    /// # Errors
    /// The service failed on this input (a trap); the input still counts as consumed.
    fn step(&mut self, seq: u64, input: &[u8]) -> Result<Vec<u8>, ServiceError>;

    /// Copies `out.len()` bytes of the state, starting at `offset`, into `out`.
    fn read_state(&self, offset: u64, out: &mut [u8]);

    /// The whole state as bytes.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![0; usize::try_from(self.state_len()).unwrap_or(0)];
        self.read_state(0, &mut out);
        out
    }

    /// Starts replacing the state with one of `total_len` bytes, written in pieces by
    /// [`Service::restore_chunk`] as they arrive (no staging copy).
    ///
    /// # Errors
    /// The size does not fit this service.
    fn begin_restore(&mut self, total_len: u64) -> Result<(), ServiceError>;

    /// Writes one piece of the new state.
    ///
    /// # Errors
    /// The piece lies outside the announced length.
    fn restore_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), ServiceError>;

    /// Completes a restore.
    ///
    /// # Errors
    /// The state does not fit this service (format, header).
    fn finish_restore(&mut self) -> Result<(), ServiceError>;

    /// Replaces the state with a snapshot.
    ///
    /// # Errors
    /// The snapshot does not fit this service (size limits, format).
    fn restore(&mut self, state: &[u8]) -> Result<(), ServiceError> {
        self.begin_restore(state.len() as u64)?;
        self.restore_chunk(0, state)?;
        self.finish_restore()
    }

    /// Chunks changed since the previous call (full contents), and the state length.
    /// The first call after creation or restore returns every chunk that differs from the
    /// initial state.
    fn take_delta(&mut self) -> (u64, Vec<DeltaChunk>);

    /// Makes the state as it is now the baseline of the next delta, as a
    /// [`Service::take_delta`] whose result is dropped would, without copying it out.
    fn reset_delta(&mut self) {
        let _ = self.take_delta();
    }

    /// Bytes a [`Service::take_delta`] call would return now.
    fn dirty_bytes(&self) -> u64;

    /// Applies a delta produced by [`Service::take_delta`] on a twin.
    ///
    /// # Errors
    /// Chunk indices or sizes do not fit.
    fn apply_delta(&mut self, len: u64, chunks: &[DeltaChunk]) -> Result<(), ServiceError>;

    /// xxh3-128 over the whole state.
    fn checksum(&self) -> u128;

    /// State size in bytes.
    fn state_len(&self) -> u64;

    /// Bytes the state stands for: what it costs in memory and on a link. The state's
    /// own size, but for a modelled service (see [`crate::ModelService`]).
    fn footprint(&self) -> u64 {
        self.state_len()
    }

    /// Chunk size of deltas.
    fn chunk_size(&self) -> u32;
}

/// Makes service instances from program code.
pub trait ServiceFactory: Send {
    /// Instantiates `code` of runtime `kind` with `config`.
    ///
    /// # Errors
    /// Unknown kind, code that does not load, or a config the code rejects.
    fn instantiate(
        &mut self,
        kind: &str,
        code: &[u8],
        config: &[u8],
    ) -> Result<Box<dyn Service>, ServiceError>;
}

/// Why a service could not be created or run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceError {
    /// No runtime for this kind of code.
    #[error("unknown service kind {0:?}")]
    UnknownKind(String),
    /// The code did not load.
    #[error("invalid program code: {0}")]
    InvalidCode(String),
    /// The config was rejected.
    #[error("invalid service config: {0}")]
    InvalidConfig(String),
    /// The server has no room for another instance (its pool of memories is in use).
    #[error("no room for another instance here: {0}")]
    Exhausted(String),
    /// A snapshot or delta does not fit the service.
    #[error("state does not fit: {0}")]
    BadState(String),
    /// The service failed on an input.
    #[error("service failed on input {seq}: {reason}")]
    Trap {
        /// The input.
        seq: u64,
        /// What happened.
        reason: String,
    },
}
