//! Every message of the system. Numbers in the docs are the seed patent's reference signs
//! (1002 … 2006); messages the patent leaves implicit (service traffic, routing, reports)
//! are numbered from 3001. The numbers are also the type codes on the wire.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{CellId, Lane, NodeId, ServerId, ServiceId, Timing, UeId};

/// A candidate target cell with the likelihood that it becomes the target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The candidate cell.
    pub cell: CellId,
    /// Likelihood in `[0, 1]`; the likelihoods of one prediction sum to at most 1.
    pub likelihood: f32,
}

/// 1002: the source base station predicts a handover of `ue`.
///
/// An empty `candidates` list withdraws the previous prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandoverPrediction {
    /// The terminal.
    pub ue: UeId,
    /// Its serving cell.
    pub source: CellId,
    /// Candidates, most likely first.
    pub candidates: Vec<Candidate>,
    /// Expected time of the handover.
    pub timing: Option<Timing>,
}

/// How a shadow is kept in sync with the live instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMode {
    /// The shadow executes the same inputs in the same order.
    Replay,
    /// The source sends the state chunks that changed since the last sync.
    Delta,
}

/// 1003: prepare shadow copies of `service` at `candidates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareShadow {
    /// The service to shadow.
    pub service: ServiceId,
    /// Its user.
    pub ue: UeId,
    /// The server hosting the live instance.
    pub source: ServerId,
    /// Servers that get a shadow.
    pub candidates: Vec<ServerId>,
    /// How the shadows are kept in sync.
    pub sync: SyncMode,
    /// When the source should start the transfer.
    pub start: Timing,
    /// The candidates hold a ready shadow already (a relocation kept them): no
    /// transfer. Each takes the source as its shadow's new one and tells it where it
    /// stands (3032, or 3037 to the control node if it has no ready shadow); the source
    /// sends the inputs it lacks from its log (the whole state if the log does not reach
    /// back), syncs it from then on, and confirms it to the control node (3032).
    pub adopt: bool,
}

/// The program code of a service: inline the first time, by hash once cached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeRef {
    /// The code itself.
    Inline {
        /// Runtime kind that understands the bytes (`"mem"`, `"wasm"` …).
        kind: String,
        /// The code.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Content hash (xxh3-128) of code the receiver already holds.
    Hash(u128),
}

impl CodeRef {
    /// Content hash of inline code; the hash itself for [`CodeRef::Hash`].
    #[must_use]
    pub fn hash(&self) -> u128 {
        match self {
            Self::Inline { kind, bytes } => code_hash(kind, bytes),
            Self::Hash(h) => *h,
        }
    }
}

/// Content hash of a code blob: xxh3-128 over the kind and the bytes.
#[must_use]
pub fn code_hash(kind: &str, bytes: &[u8]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(kind.as_bytes());
    h.update(&[0]);
    h.update(bytes);
    h.digest128()
}

/// What it takes to instantiate a service: code plus its application context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Program code.
    pub code: CodeRef,
    /// Service configuration handed to `init`.
    #[serde(with = "serde_bytes")]
    pub config: Vec<u8>,
    /// End-to-end latency budget the service declares, in milliseconds.
    pub latency_budget_ms: u32,
}

/// 1004: one chunk of a shadow's initial state.
///
/// A transfer is the state snapshot at `seq`, cut into chunks sent in order. The first
/// chunk carries the spec (code and context); the last carries the checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowTransfer {
    /// The service.
    pub service: ServiceId,
    /// Its user.
    pub ue: UeId,
    /// The sending (source) server.
    pub source: ServerId,
    /// Identifies this transfer among retries.
    pub transfer: u32,
    /// Sequence number of the last input applied to the snapshot.
    pub seq: u64,
    /// Input-log digest at `seq`.
    pub digest: u128,
    /// Code and context; on the first chunk only.
    pub spec: Option<ServiceSpec>,
    /// Size of the whole snapshot in bytes.
    pub total_len: u64,
    /// Offset of `data` in the snapshot.
    pub offset: u64,
    /// The chunk, in a shared buffer: [`crate::codec::decode_shared`] hands out the chunk
    /// inside the received frame instead of a copy of it.
    pub data: Bytes,
    /// xxh3-128 of the whole state; on the last chunk only.
    pub state_checksum: Option<u128>,
    /// The source's recent answers (its answer cache), on the last chunk only: a shadow
    /// promoted after its source died re-answers a retransmitted input it holds.
    pub answers: Vec<Answer>,
}

/// A [`ShadowTransfer`] that borrows its chunk from the frame it is decoded from. The
/// fields are those of `ShadowTransfer`, in its order (postcard is positional; the codec
/// tests decode every message both ways and compare).
#[derive(Deserialize)]
pub(crate) struct ShadowTransferRef<'a> {
    service: ServiceId,
    ue: UeId,
    source: ServerId,
    transfer: u32,
    seq: u64,
    digest: u128,
    spec: Option<ServiceSpec>,
    total_len: u64,
    offset: u64,
    #[serde(borrow)]
    data: &'a [u8],
    state_checksum: Option<u128>,
    answers: Vec<Answer>,
}

impl ShadowTransferRef<'_> {
    /// The message, its chunk a slice of `frame` (which `data` must point into).
    pub(crate) fn share(self, frame: &Bytes) -> ShadowTransfer {
        ShadowTransfer {
            service: self.service,
            ue: self.ue,
            source: self.source,
            transfer: self.transfer,
            seq: self.seq,
            digest: self.digest,
            spec: self.spec,
            total_len: self.total_len,
            offset: self.offset,
            data: frame.slice_ref(self.data),
            state_checksum: self.state_checksum,
            answers: self.answers,
        }
    }
}

/// One numbered input of a UE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// Sequence number, from 1, per service.
    pub seq: u64,
    /// The input.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// The chunks of a state that changed since the previous delta, with their full content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDelta {
    /// Sequence number of the last input reflected in the delta.
    pub seq: u64,
    /// Input-log digest at `seq`.
    pub digest: u128,
    /// Total state length after the delta.
    pub len: u64,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Changed chunks: index and content (the last one may be short).
    pub chunks: Vec<DeltaChunk>,
    /// xxh3-128 of the whole state after applying the delta.
    pub checksum: u128,
    /// The answers to the inputs the delta reflects and the previous one did not, so that
    /// a shadow promoted after its source died can answer a retransmission of one.
    pub answers: Vec<Answer>,
}

/// One changed chunk of a [`StateDelta`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaChunk {
    /// Chunk index.
    pub index: u32,
    /// Chunk content.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// What keeps a shadow current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncBody {
    /// Inputs in order (replay mode, and catch-up from the input log).
    Inputs(Vec<InputRecord>),
    /// A state delta (delta mode, precopy rounds).
    Delta(StateDelta),
}

/// Shadow sync: the source keeps a shadow current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowSync {
    /// The service.
    pub service: ServiceId,
    /// The sending server.
    pub source: ServerId,
    /// Inputs or a delta.
    pub body: SyncBody,
}

/// 1005: the source base station executes the handover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverExecution {
    /// The terminal.
    pub ue: UeId,
    /// Its serving cell.
    pub source: CellId,
    /// The chosen target.
    pub target: CellId,
    /// When the handover command goes out (the radio gap starts).
    pub timing: Timing,
}

/// How a relocation moves the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelocationMode {
    /// Hot swap onto a prepared shadow (the seed's method).
    Hot,
    /// Stop, copy the whole state, start.
    Cold,
    /// Copy while live, repeat with the changes, stop for the last delta.
    Precopy,
}

/// What a 1006 asks the receiver to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelocateAction {
    /// Move the live instance from `source` to `target`.
    Relocate {
        /// Server hosting the live instance.
        source: ServerId,
        /// Server that becomes the host.
        target: ServerId,
        /// How the state moves.
        mode: RelocationMode,
        /// Route epoch the relocation creates.
        epoch: u64,
    },
    /// Drop the shadows at `servers`: a listed server drops its shadow, the source stops
    /// syncing to the listed servers.
    Discard {
        /// Servers whose shadow goes.
        servers: Vec<ServerId>,
    },
    /// Failover: the live instance's server is gone; the receiver's shadow becomes the
    /// live instance as it stands, under `epoch`. The UE resends what it lacks.
    Promote {
        /// Route epoch of the new live instance.
        epoch: u64,
    },
    /// The receiver's instance was superseded by one at `host` (a failover while the
    /// receiver was cut off, or a relocation the target completed): it drops its copy
    /// and sends whatever traffic it held to `host`.
    Release {
        /// The server with the live instance.
        host: ServerId,
        /// Its route epoch.
        epoch: u64,
    },
    /// A frozen source whose relocation did not complete (the target died or never
    /// activated) serves again.
    Resume {
        /// Route epoch of the relocation that is called off; a 1006 of an older one still
        /// waiting at the source is dropped too.
        epoch: u64,
    },
    /// The source asked to give up: the target drops its shadow unless it already went
    /// live, and answers with a 3033 either way.
    Abort {
        /// Route epoch of the relocation.
        epoch: u64,
    },
}

/// 1006: relocate (to source and target) or discard (to the other candidates).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relocate {
    /// The service.
    pub service: ServiceId,
    /// What to do.
    pub action: RelocateAction,
    /// When the handover executes.
    pub timing: Timing,
}

/// Where a UE's service traffic goes. Higher epochs win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The service.
    pub service: ServiceId,
    /// The server hosting its live instance.
    pub server: ServerId,
    /// Incremented by the control node on every move.
    pub epoch: u64,
}

/// 2001: X2 handover request with the UE context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRequest {
    /// The terminal.
    pub ue: UeId,
    /// Requesting (source) cell.
    pub source: CellId,
    /// Requested target cell.
    pub target: CellId,
    /// The UE's service route, so the target can relay its traffic at once.
    pub route: Option<Route>,
}

/// 2002: X2 handover request acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRequestAck {
    /// The terminal.
    pub ue: UeId,
    /// The answering target cell.
    pub target: CellId,
    /// Whether the target admits the UE.
    pub admitted: bool,
}

/// 2003: handover command to the UE; it detaches from the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverCommand {
    /// The terminal.
    pub ue: UeId,
    /// The cell to join.
    pub target: CellId,
}

/// 2004: the source asks the target to take over, naming the state it must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelocateRequest {
    /// The service.
    pub service: ServiceId,
    /// The (now frozen) source.
    pub source: ServerId,
    /// Last input applied at the source.
    pub last_seq: u64,
    /// Input-log digest at `last_seq`.
    pub digest: u128,
    /// Route epoch of the relocation (from its 1006).
    pub epoch: u64,
    /// A 1004 transfer to the target is under way: wait for it instead of asking for one.
    pub transfer_pending: bool,
    /// xxh3-128 of the whole state, for states small enough to hash on the critical path.
    pub state_checksum: Option<u128>,
    /// The source's most recent answers, so the target can re-answer inputs whose answer
    /// was lost in the radio gap even when it got the state by copy, not by replay.
    pub answers: Vec<Answer>,
}

/// A service's answer to one input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The input answered.
    pub seq: u64,
    /// The answer.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// The target's verdict on its shadow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The shadow matched and is now the live instance.
    Valid,
    /// The shadow is behind: send the inputs after this sequence number.
    NeedFrom(u64),
    /// The shadow diverged or is missing: send the whole state.
    NeedFull,
    /// The target cannot host the service.
    Reject(String),
}

/// 2005: the target's answer to 2004.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelocateConfirm {
    /// The service.
    pub service: ServiceId,
    /// The answering target.
    pub target: ServerId,
    /// Valid, or what it needs.
    pub verdict: Verdict,
}

/// 2006: the UE confirms the handover to the target cell; the radio gap ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverConfirm {
    /// The terminal.
    pub ue: UeId,
    /// The cell it came from.
    pub source: CellId,
}

/// 3001: X2 UE context release, target cell → source cell after 2006.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UeContextRelease {
    /// The terminal.
    pub ue: UeId,
}

/// Why a prepared handover did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// The target cell refused admission (X2 2002 with `admitted = false`).
    Rejected,
    /// The handover was commanded but the UE came back to the source (RRC
    /// re-establishment).
    Failed,
}

/// 3002: a prepared handover did not happen (rejected or failed); shadows can go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverCancel {
    /// The terminal.
    pub ue: UeId,
    /// Its (still) serving cell.
    pub source: CellId,
    /// The target that was tried.
    pub target: CellId,
    /// Why.
    pub reason: CancelReason,
}

/// 3004: the target cell reports a completed handover (after 2006) to the control node,
/// which knows then where the UE is; what MEC 012 calls a cell change `COMPLETED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverComplete {
    /// The terminal.
    pub ue: UeId,
    /// The cell it left.
    pub source: CellId,
    /// The cell now serving it (the sender).
    pub target: CellId,
}

/// 3005: a cell's periodic radio report of one UE to the control node (the input of
/// MEC 012 measurement reports), at most one per UE and report period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RadioReport {
    /// The terminal.
    pub ue: UeId,
    /// The serving cell (the sender).
    pub cell: CellId,
    /// RSRP of the serving cell (dBm).
    pub serving_dbm: f32,
    /// RSRP of the neighbour cells the UE measured (dBm).
    pub neighbours: Vec<(CellId, f32)>,
}

/// 3006: an ME server's heartbeat to the control node. The server holds a lease while
/// the control node answers them; `incarnation` changes when the server restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sending server.
    pub server: ServerId,
    /// Chosen anew each time the server starts (a restart lost its instances).
    pub incarnation: u64,
    /// Numbers the heartbeats of one incarnation.
    pub seq: u64,
    /// The instances live here (serving, frozen or fenced), each with the epoch it went
    /// live under: the control node withholds the answer while one of them was replaced,
    /// and releases it again (a release lost on the way must not let the lease return).
    pub live: Vec<Tenure>,
    /// The services with a shadow here: the control node discards those it did not ask
    /// for (a transfer that was on its way when its shadow was discarded), so that no
    /// shadow outlives the control node's plan.
    pub shadows: Vec<ServiceId>,
}

/// A live instance and the route epoch it went live under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenure {
    /// The service.
    pub service: ServiceId,
    /// The epoch.
    pub epoch: u64,
}

/// 3007: the control node's answer to a heartbeat: the lease runs on, counted from when
/// the server sent heartbeat `seq` (on its own clock, so no clocks are compared).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The heartbeat answered.
    pub seq: u64,
}

/// 3014: a cell that does not know the UE asks it to attach again (the cell restarted and
/// lost its contexts), cell → UE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reattach {
    /// The terminal.
    pub ue: UeId,
}

/// 3015: the live instance misses inputs after `after` (a failover onto a shadow that had
/// not seen them): the UE sends them again (server → cell → UE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendFrom {
    /// The terminal.
    pub ue: UeId,
    /// The service.
    pub service: ServiceId,
    /// The cell to relay through.
    pub via: CellId,
    /// Last input the instance applied; the UE resends the ones after it.
    pub after: u64,
}

/// 3021: a cell asks the control node where a UE's service lives (it learned the UE
/// again after a restart), cell → control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteQuery {
    /// The terminal.
    pub ue: UeId,
    /// The asking cell.
    pub cell: CellId,
}

/// 3003: a UE joins a cell without a handover (power-on, initial placement: the RRC
/// connection setup), UE → cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    /// The terminal.
    pub ue: UeId,
}

/// 3040: the first frame on every connection: who is talking to whom, on which lane.
/// Only network drivers send it; roles never see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sending node.
    pub from: NodeId,
    /// The node the connection is for.
    pub to: NodeId,
    /// The lane the connection carries.
    pub lane: Lane,
}

/// 3010: a numbered UE input to its service (UE → cell → server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInput {
    /// The terminal.
    pub ue: UeId,
    /// Its service.
    pub service: ServiceId,
    /// The cell that relayed it; answers go back there.
    pub via: CellId,
    /// The input.
    pub input: InputRecord,
    /// The UE has the answer to every input numbered below this (its oldest unanswered
    /// input): the server may forget those answers, and must keep and hand on the others
    /// until it does. 0 claims nothing.
    pub answered_below: u64,
}

/// 3011: the service's answer to one input (server → cell → UE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOutput {
    /// The terminal.
    pub ue: UeId,
    /// The service.
    pub service: ServiceId,
    /// The cell to relay through.
    pub via: CellId,
    /// The input this answers.
    pub seq: u64,
    /// The answer.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// 3016: several inputs of one UE in one message (UE → cell → server), for a UE that sends
/// its inputs in runs (`UeConfig::input_run`). Each input is handled, numbered, answered
/// and counted as its own 3010 would be; the run only saves the per-message cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRun {
    /// The terminal.
    pub ue: UeId,
    /// Its service.
    pub service: ServiceId,
    /// The cell that relayed it; answers go back there.
    pub via: CellId,
    /// The inputs, in the order the UE sent them.
    pub inputs: Vec<InputRecord>,
    /// As [`ServiceInput::answered_below`].
    pub answered_below: u64,
}

impl InputRun {
    /// Payload bytes a sender puts in one run (of inputs or answers) at most, so that a
    /// run stays far below the frame limit (a UE back after a long gap resends everything
    /// unanswered; inputs are up to 64 KiB each). A longer run goes as several.
    pub const MAX_PAYLOAD: usize = 1 << 20;

    /// The run as the 3010s it stands for.
    pub fn unroll(self) -> impl Iterator<Item = ServiceInput> {
        let Self {
            ue,
            service,
            via,
            inputs,
            answered_below,
        } = self;
        inputs.into_iter().map(move |input| ServiceInput {
            ue,
            service,
            via,
            input,
            answered_below,
        })
    }
}

/// 3017: the answers to several inputs in one message (server → cell → UE), sent by a
/// server that answers in runs (`EdgeConfig::output_runs`). Each answer counts as its own
/// 3011 would.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRun {
    /// The terminal.
    pub ue: UeId,
    /// The service.
    pub service: ServiceId,
    /// The cell to relay through.
    pub via: CellId,
    /// The answers, in the order the service gave them.
    pub answers: Vec<Answer>,
}

impl OutputRun {
    /// The run as the 3011s it stands for.
    pub fn unroll(self) -> impl Iterator<Item = ServiceOutput> {
        let Self {
            ue,
            service,
            via,
            answers,
        } = self;
        answers.into_iter().map(move |a| ServiceOutput {
            ue,
            service,
            via,
            seq: a.seq,
            payload: a.payload,
        })
    }
}

/// 3012: a liveness probe; only the live instance answers (UE → cell → server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The terminal.
    pub ue: UeId,
    /// Its service.
    pub service: ServiceId,
    /// The relaying cell.
    pub via: CellId,
    /// Echoed back.
    pub nonce: u64,
    /// Ask for the live state's checksum too (costs a pass over the state).
    pub checksum: bool,
}

/// 3013: answer to a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReply {
    /// The terminal.
    pub ue: UeId,
    /// The service.
    pub service: ServiceId,
    /// The cell to relay through.
    pub via: CellId,
    /// The probe's nonce.
    pub nonce: u64,
    /// Last input the live instance applied.
    pub last_seq: u64,
    /// Checksum of the live state, when the probe asked for it.
    pub checksum: Option<u128>,
}

/// 3020: control → cell: where a UE's service lives now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteUpdate {
    /// The terminal.
    pub ue: UeId,
    /// The route.
    pub route: Route,
}

/// 3030: operator → control: deploy a service for a UE attached to `cell`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    /// New service id.
    pub service: ServiceId,
    /// Its user.
    pub ue: UeId,
    /// The UE's serving cell.
    pub cell: CellId,
    /// Code and context.
    pub spec: ServiceSpec,
}

/// 3031: control → server: start a live instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instantiate {
    /// The service.
    pub service: ServiceId,
    /// Its user.
    pub ue: UeId,
    /// Code and context.
    pub spec: ServiceSpec,
}

/// 3032: a shadow is complete (target → control and source).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowReady {
    /// The service.
    pub service: ServiceId,
    /// The server holding the shadow.
    pub server: ServerId,
    /// Last input reflected in the shadow.
    pub seq: u64,
    /// An answer to a 1003 `adopt` (shadow → its new host): where a kept shadow stands,
    /// for the host to take over its sync; not a finished transfer.
    pub adoption: bool,
}

/// 3033: a relocation ended (target → control on success, source → control on failure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelocationDone {
    /// The service.
    pub service: ServiceId,
    /// Previous host.
    pub from: ServerId,
    /// Intended host.
    pub to: ServerId,
    /// Whether `to` is live now; if not, `from` still is.
    pub ok: bool,
    /// Route epoch of the relocation.
    pub epoch: u64,
}

/// Load of one server and the services it hosts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// The reporting server.
    pub server: ServerId,
    /// Load in units of the server's capacity (1.0 = full).
    pub load: f32,
    /// Live services the server hosts.
    pub hosted: u32,
    /// State sizes in bytes of live services: every one in the periodic report; in a
    /// report sent at once after an event, only the service the event concerns if it is
    /// live here (none after it left: a relocation out, a release, a dropped tentative
    /// instance). A list of every service after every relocation would cost each
    /// relocation in proportion to the services a server hosts.
    pub services: Vec<(ServiceId, u64)>,
}

/// 3037: a server refuses a shadow (it would exceed its memory budget), to the control
/// node and the source; the control node forgets it, the source stops sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowRefused {
    /// The service.
    pub service: ServiceId,
    /// The refusing server.
    pub server: ServerId,
    /// Why.
    pub reason: String,
}

/// 3035: catch-up after a 2005 that asked for it (source → target).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    /// The service.
    pub service: ServiceId,
    /// The source.
    pub source: ServerId,
    /// Inputs or a delta up to the 2004's `last_seq`.
    pub body: SyncBody,
}

/// 3036: a shadow acknowledges a delta (or reports it corrupt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAck {
    /// The service.
    pub service: ServiceId,
    /// The acknowledging shadow's server.
    pub server: ServerId,
    /// Sequence number the shadow holds now.
    pub seq: u64,
    /// False if the delta failed its checksum; the source then resends the full state.
    pub ok: bool,
}

/// 3050: a control node hands a service to the control node of another region (the UE
/// was handed over to one of its cells), control → control. Sent again until acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHandoff {
    /// The service.
    pub service: ServiceId,
    /// Its user.
    pub ue: UeId,
    /// How many times the service changed region: a receiver that saw a later handoff of
    /// the service ignores this one.
    pub generation: u64,
    /// The registry entry, in the control crate's versioned record form.
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

/// 3051: the receiving control node holds the service now (control → control).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffAck {
    /// The service.
    pub service: ServiceId,
    /// The generation of the handoff it acknowledges.
    pub generation: u64,
}

/// 3052: a control node declared one of its region's servers dead, or heard it again
/// (control → the other regions' control nodes, which may hold services that use it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The server.
    pub server: ServerId,
    /// Its incarnation (a new one after a restart).
    pub incarnation: u64,
    /// Declared dead (true) or heard again (false).
    pub down: bool,
}

/// 3053: an order the control node of `server`'s region gives `server` when it comes
/// back, before answering its heartbeat (control → control): the `Release` of an
/// instance a failover replaced, the `Abort` of a relocation that was called off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejoinOrder {
    /// The server that was declared dead.
    pub server: ServerId,
    /// The service the order is about.
    pub service: ServiceId,
    /// The order.
    pub action: RelocateAction,
}

/// 3054: a message that reached the control node of a region the service has left (or
/// not reached yet), passed on to the one that holds it, control → control. The receiver
/// handles `frame` as if `origin` had sent it to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relayed {
    /// The original sender (a cell, a server, a UE).
    pub origin: NodeId,
    /// How many control nodes passed it on so far.
    pub hops: u8,
    /// The message, as a frame of the wire codec.
    #[serde(with = "serde_bytes")]
    pub frame: Vec<u8>,
}
