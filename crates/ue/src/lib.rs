//! The UE role: a client of one stateful service that sends numbered inputs at a fixed
//! rate through its serving cell (one message each, or a message per run of them:
//! [`UeConfig::input_run`]), and records when each answer came back, so service gaps can
//! be measured against radio gaps.
//!
//! # Driving a [`UeClient`]
//!
//! 1. [`UeClient::new`], then [`UeClient::handle_attach`] with the first serving cell.
//! 2. Feed arriving messages to [`Role::handle_message`] (answers, probe replies and the
//!    2003 handover command, which detaches the UE).
//! 3. When the radio has joined the target cell, call [`UeClient::handle_attach`] again:
//!    the UE sends 2006, probes its service at once and resends unanswered inputs.
//! 4. Drain [`Role::poll_transmit`] and [`Role::poll_event`]; call
//!    [`Role::handle_timeout`] at [`Role::poll_timeout`].
//!
//! The gap per handover ([`HandoverGap`]) runs from detach to the first answer after
//! re-attach, minus the round trip the UE saw before the handover.
//!
//! ```no_run
//! use edgeshift_proto::{CellId, Instant, Role, ServiceId, UeId};
//! use edgeshift_ue::{UeClient, UeConfig};
//!
//! let mut ue = UeClient::new(UeConfig::new(UeId(1), ServiceId(1), 42), Instant::ZERO);
//! ue.handle_attach(Instant::ZERO, CellId(1));
//! while let Some(at) = ue.poll_timeout() {
//!     // A driver sleeps (or advances virtual time) until then.
//!     ue.handle_timeout(at);
//!     while let Some(t) = ue.poll_transmit() { /* send t.msg to t.to */ }
//!     while let Some(e) = ue.poll_event() { /* observe e */ }
//!     # break;
//! }
//! ```
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::Duration;

mod app;
mod due;
mod seqmap;

/// A small deterministic generator (xorshift64) for the crate's randomised tests, which
/// need no dependency for it.
#[cfg(test)]
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

use due::DueHeap;
use seqmap::SeqMap;

use edgeshift_proto::{
    Attach, CellId, HandoverConfirm, InputRecord, InputRun, Instant, Message, NodeId, Probe, Role,
    ServiceId, ServiceInput, ServiceOutput, Transmit, UeId,
};

/// Configuration of a UE client.
#[derive(Clone, Debug)]
pub struct UeConfig {
    /// This UE.
    pub id: UeId,
    /// Its service.
    pub service: ServiceId,
    /// Time between inputs.
    pub input_period: Duration,
    /// Send inputs in runs: the UE wakes once per `input_run`, creates the inputs due
    /// since (each numbered and timed as if it had been made on its own) and sends them
    /// as one 3016. Zero: each input on its own, at its time. A run saves the per-message
    /// cost of a simulation with many UEs; round trips are measured from the send.
    pub input_run: Duration,
    /// Bytes per input.
    pub payload_len: usize,
    /// The first input is due `input_period + phase` after the UE starts, so that many
    /// UEs need not make their inputs at the same instants.
    pub phase: Duration,
    /// Unanswered inputs are sent again after this long; each further timer-driven
    /// resend of the same input waits twice as long, up to [`UeConfig::retransmit_max`].
    pub retransmit_after: Duration,
    /// The longest wait between two timer-driven resends of one input.
    pub retransmit_max: Duration,
    /// Seed of the input contents.
    pub seed: u64,
    /// No new inputs from this time on.
    pub stop_at: Option<Instant>,
    /// Answered inputs are kept this long, so that they can be sent again when a failover
    /// promotes a shadow that had not seen them (3015).
    pub keep_answered: Duration,
    /// Make-before-break handovers (3GPP DAPS): after the 2003 the UE keeps its source
    /// link, sending and receiving through the source cell, until it has joined the target.
    pub daps: bool,
}

impl UeConfig {
    /// Defaults: an input every 20 ms, 32 bytes each, retransmission after 150 ms, backing
    /// off to at most 2.4 s.
    #[must_use]
    pub fn new(id: UeId, service: ServiceId, seed: u64) -> Self {
        Self {
            id,
            service,
            input_period: Duration::from_millis(20),
            input_run: Duration::ZERO,
            payload_len: 32,
            phase: Duration::ZERO,
            retransmit_after: Duration::from_millis(150),
            retransmit_max: Duration::from_millis(2400),
            seed,
            stop_at: None,
            keep_answered: Duration::from_secs(5),
            daps: false,
        }
    }
}

/// One handover as the UE saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HandoverGap {
    /// Cell left.
    pub from: CellId,
    /// Cell joined.
    pub to: CellId,
    /// 2003 received.
    pub detached_at: Instant,
    /// Radio joined the target (2006 sent).
    pub attached_at: Option<Instant>,
    /// First answer of the service after re-attaching.
    pub first_answer_at: Option<Instant>,
    /// Usual round trip before the handover (90th percentile of the last 16).
    pub baseline_rtt: Duration,
    /// The target could not be joined in time; the UE came back by re-establishment
    /// (`to` is then the cell it re-established at).
    pub failed: bool,
    /// A make-before-break (DAPS) handover: the source link stayed up until `attached_at`,
    /// so there is no radio gap. Holds the longest extra wait (beyond `baseline_rtt`) of an
    /// input sent from shortly before the 2003 to the attach: what the service's move cost
    /// while both links were up.
    #[serde(default)]
    pub daps_stall: Option<Duration>,
}

impl HandoverGap {
    /// Detach to attach; none with DAPS.
    #[must_use]
    pub fn radio_gap(&self) -> Option<Duration> {
        let attached = self.attached_at?;
        if self.daps_stall.is_some() {
            return Some(Duration::ZERO);
        }
        Some(attached.saturating_duration_since(self.detached_at))
    }

    /// Detach to the first answer after attach, minus the normal round trip. With DAPS:
    /// the longest extra wait of an input sent while both links were up.
    #[must_use]
    pub fn service_gap(&self) -> Option<Duration> {
        if let Some(stall) = self.daps_stall {
            self.first_answer_at?;
            return Some(stall);
        }
        let d = self
            .first_answer_at?
            .saturating_duration_since(self.detached_at);
        Some(d.saturating_sub(self.baseline_rtt).max(self.radio_gap()?))
    }

    /// What the service added beyond the radio gap (never negative).
    #[must_use]
    pub fn added(&self) -> Option<Duration> {
        Some(self.service_gap()?.saturating_sub(self.radio_gap()?))
    }
}

/// Events of a UE.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UeEvent {
    /// A new input was created.
    Generated {
        /// Its number.
        seq: u64,
        /// Its content.
        payload: Vec<u8>,
    },
    /// An input was answered for the first time.
    Answered {
        /// Its number.
        seq: u64,
    },
    /// In application mode: the answer to input `seq`, released in input order, exactly
    /// once (answers that arrive early wait for their predecessors).
    AppAnswer {
        /// The input it answers.
        seq: u64,
        /// The service's answer.
        answer: Vec<u8>,
    },
    /// 2003 received: the radio gap starts (with DAPS: the UE starts joining the target
    /// and keeps its source link meanwhile).
    Detached {
        /// Where the UE goes.
        target: CellId,
    },
    /// Joined a cell.
    Attached {
        /// The cell.
        cell: CellId,
    },
    /// The live instance answered [`UeClient::handle_state_query`].
    LiveState {
        /// Last input it applied.
        last_seq: u64,
        /// Checksum of its state.
        checksum: Option<u128>,
    },
    /// The service answered for the first time after a handover: the gap is complete.
    ServiceResumed {
        /// The handover as the UE saw it.
        gap: HandoverGap,
    },
    /// A message that a UE does not handle.
    Unexpected {
        /// Its name.
        name: &'static str,
    },
}

/// An input sent and not yet answered.
#[derive(Debug)]
struct Pending {
    payload: Vec<u8>,
    /// When it was created.
    created_at: Instant,
    /// When it was first sent (its creation until then; later with runs, or when made
    /// while the radio was down).
    first_sent: Instant,
    /// When it was last sent (its creation until then).
    sent_at: Instant,
    /// How often it was sent.
    transmissions: u32,
    /// Timer-driven resends since the last fresh send: the next wait is
    /// `retransmit_after × 2^backoff`. Without it, a service that stays unreachable (its
    /// host died with no shadow) gets every unanswered input again every 150 ms, a storm
    /// that grows with the outage.
    backoff: u32,
    /// When it is due to be sent again (`None` only while it is made, and between falling
    /// due and its resend).
    due: Option<Instant>,
}

/// A UE running one service session.
#[derive(Debug)]
pub struct UeClient {
    cfg: UeConfig,
    serving: Option<CellId>,
    last_cell: Option<CellId>,
    next_seq: u64,
    next_input_at: Instant,
    unacked: SeqMap<Pending>,
    /// Answered inputs, oldest first, with when they were answered (see
    /// [`UeConfig::keep_answered`]).
    answered: VecDeque<(u64, Vec<u8>, Instant)>,
    /// The unanswered inputs' deadlines (`Pending::due`: last sent + the wait), in order.
    retransmit: DueHeap,
    /// Inputs answered so far, and the longest any of them waited (creation to answer).
    /// Counters, not a record per input: a city run has millions of inputs.
    answered_count: u64,
    longest_wait: Duration,
    recent_rtts: VecDeque<Duration>,
    gaps: Vec<HandoverGap>,
    probe_nonce: u64,
    state_query: Option<u64>,
    /// Inputs come from an application (see [`UeClient::with_app_inputs`]), and its answers
    /// go back in order.
    app: Option<app::AppAnswers>,
    /// Inputs sent since the last [`Role::poll_transmit`] when inputs go in runs
    /// ([`UeConfig::input_run`]; without, each is flushed as it is sent), and the cell
    /// they go through.
    run: Vec<InputRecord>,
    run_cell: Option<CellId>,
    /// Payload bytes in `run`.
    run_bytes: usize,
    out: VecDeque<Transmit>,
    events: VecDeque<UeEvent>,
}

impl UeClient {
    /// A detached UE; its first input is due one period (and its phase) after `now`.
    #[must_use]
    pub fn new(cfg: UeConfig, now: Instant) -> Self {
        let next_input_at = now + cfg.input_period + cfg.phase;
        Self {
            cfg,
            serving: None,
            last_cell: None,
            next_seq: 1,
            next_input_at,
            unacked: SeqMap::default(),
            answered: VecDeque::new(),
            retransmit: DueHeap::default(),
            answered_count: 0,
            longest_wait: Duration::ZERO,
            recent_rtts: VecDeque::new(),
            gaps: Vec::new(),
            probe_nonce: 0,
            state_query: None,
            app: None,
            run: Vec::new(),
            run_cell: None,
            run_bytes: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The UE's id.
    #[must_use]
    pub fn ue_id(&self) -> UeId {
        self.cfg.id
    }

    /// The serving cell, `None` during a radio gap (with DAPS: the source until the target
    /// is joined).
    #[must_use]
    pub fn serving(&self) -> Option<CellId> {
        self.serving
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &UeConfig {
        &self.cfg
    }

    /// Inputs created so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.next_seq - 1
    }

    /// Inputs answered so far.
    #[must_use]
    pub fn answered(&self) -> u64 {
        self.answered_count
    }

    /// How often unanswered input `seq` was sent (`None`: answered or never created).
    #[must_use]
    pub fn transmissions(&self, seq: u64) -> Option<u32> {
        self.unacked.get(seq).map(|p| p.transmissions)
    }

    /// Every handover so far.
    #[must_use]
    pub fn gaps(&self) -> &[HandoverGap] {
        &self.gaps
    }

    /// The longest any answered input waited for its answer (creation to answer): what a
    /// failover or a long move cost the user at worst.
    #[must_use]
    pub fn longest_wait(&self) -> Duration {
        self.longest_wait
    }

    /// Inputs not yet answered.
    #[must_use]
    pub fn unanswered(&self) -> usize {
        self.unacked.len()
    }

    /// The content of input `seq` (deterministic from the seed).
    #[must_use]
    pub fn payload(seed: u64, seq: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&seq.to_le_bytes());
        let mut i = 0u64;
        while out.len() < len {
            key[8..].copy_from_slice(&i.to_le_bytes());
            let word = xxhash_rust::xxh3::xxh3_64_with_seed(&key, seed);
            out.extend_from_slice(&word.to_le_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// The handover failed (the target could not be joined in time) and the radio came
    /// back by RRC re-establishment at `cell`: like an attach, but announced with 3003
    /// instead of 2006, and the gap is marked failed.
    pub fn handle_reestablish(&mut self, now: Instant, cell: CellId) {
        if let Some(gap) = self.gaps.last_mut().filter(|g| g.attached_at.is_none()) {
            gap.failed = true;
        }
        self.attach(now, cell, true);
    }

    /// The radio joined `cell`. After a handover this sends 2006, probes the service and
    /// resends whatever is unanswered.
    pub fn handle_attach(&mut self, now: Instant, cell: CellId) {
        self.attach(now, cell, false);
    }

    fn attach(&mut self, now: Instant, cell: CellId, reestablish: bool) {
        let previous = self.last_cell;
        self.serving = Some(cell);
        self.last_cell = Some(cell);
        self.events.push_back(UeEvent::Attached { cell });
        // 3003 first, so that the cell knows the UE before its probe and inputs arrive.
        if previous.is_none() || reestablish {
            self.out.push_back(Transmit {
                to: cell.into(),
                msg: Attach { ue: self.cfg.id }.into(),
            });
        }
        if let Some(gap) = self.gaps.last_mut().filter(|g| g.attached_at.is_none()) {
            gap.attached_at = Some(now);
            gap.to = cell;
            if let Some(source) = previous.filter(|_| !reestablish) {
                self.out.push_back(Transmit {
                    to: cell.into(),
                    msg: HandoverConfirm {
                        ue: self.cfg.id,
                        source,
                    }
                    .into(),
                });
            }
            self.probe_nonce += 1;
            let probe = Probe {
                ue: self.cfg.id,
                service: self.cfg.service,
                via: cell,
                nonce: self.probe_nonce,
                checksum: false,
            };
            self.out.push_back(Transmit {
                to: cell.into(),
                msg: probe.into(),
            });
        }
        let pending = self.unacked.keys();
        for seq in pending {
            self.transmit(now, seq, false);
        }
    }

    /// Asks the live instance, through the serving cell, for the last input it applied
    /// and its state checksum; [`UeEvent::LiveState`] follows. Returns false while the
    /// radio is down (ask again after the next attach).
    pub fn handle_state_query(&mut self, _now: Instant) -> bool {
        let Some(cell) = self.serving else {
            return false;
        };
        self.probe_nonce += 1;
        self.state_query = Some(self.probe_nonce);
        let probe = Probe {
            ue: self.cfg.id,
            service: self.cfg.service,
            via: cell,
            nonce: self.probe_nonce,
            checksum: true,
        };
        self.out.push_back(Transmit {
            to: cell.into(),
            msg: probe.into(),
        });
        true
    }

    /// Numbers a new input created at `created_at`, keeps it until answered and sends it.
    fn create_input(&mut self, now: Instant, created_at: Instant, payload: Vec<u8>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.push(
            seq,
            Pending {
                payload: payload.clone(),
                backoff: 0,
                created_at,
                first_sent: created_at,
                sent_at: created_at,
                transmissions: 0,
                due: None,
            },
        );
        self.events.push_back(UeEvent::Generated { seq, payload });
        self.transmit(now, seq, false);
        // Sent, it has its timer from the send; unsent (no cell), from its creation.
        if self.unacked.get(seq).is_some_and(|p| p.due.is_none()) {
            self.arm(seq, created_at + self.cfg.retransmit_after);
        }
        seq
    }

    /// Input `seq` is due to be sent again at `at` (replacing the deadline it had).
    fn arm(&mut self, seq: u64, at: Instant) {
        if let Some(p) = self.unacked.get_mut(seq) {
            p.due = Some(at);
            self.retransmit.push(seq, at);
            self.settle_retransmit();
        }
    }

    /// Keeps the earliest deadline current after inputs were answered or re-armed.
    fn settle_retransmit(&mut self) {
        let unacked = &self.unacked;
        self.retransmit.settle(
            |seq| unacked.get(seq).and_then(|p| p.due),
            || {
                unacked
                    .iter()
                    .filter_map(|(seq, p)| Some((seq, p.due?)))
                    .collect()
            },
            unacked.len(),
        );
    }

    /// The earliest unanswered input due at `now`, its deadline cleared.
    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let unacked = &self.unacked;
        let seq = self
            .retransmit
            .pop_due(now, |seq| unacked.get(seq).and_then(|p| p.due))?;
        if let Some(p) = self.unacked.get_mut(seq) {
            p.due = None;
        }
        self.settle_retransmit();
        Some(seq)
    }

    /// Every input below this number has its answer here (piggybacked on each input, so
    /// that servers keep, and hand on at a relocation, exactly the answers still owed).
    fn answered_below(&self) -> u64 {
        self.unacked.first().unwrap_or(self.next_seq)
    }

    /// Sends an unanswered input: afresh (the path changed: a new cell, a resend request)
    /// or, with `timer`, because its retransmission timer ran out, which doubles the next
    /// wait.
    fn transmit(&mut self, now: Instant, seq: u64, timer: bool) {
        if self.serving.is_none() {
            return;
        }
        let Some(p) = self.unacked.get_mut(seq) else {
            return;
        };
        if p.transmissions == 0 {
            p.first_sent = now;
        }
        p.transmissions += 1;
        p.sent_at = now;
        p.backoff = if timer {
            p.backoff.saturating_add(1)
        } else {
            0
        };
        let wait = self
            .cfg
            .retransmit_after
            .saturating_mul(1 << p.backoff.min(16))
            .min(self.cfg.retransmit_max.max(self.cfg.retransmit_after));
        let payload = p.payload.clone();
        self.arm(seq, now + wait);
        self.send_input(seq, payload);
    }

    fn send_input(&mut self, seq: u64, payload: Vec<u8>) {
        let Some(cell) = self.serving else { return };
        let full = self.run_bytes + payload.len() > InputRun::MAX_PAYLOAD;
        if self.run_cell != Some(cell) || full {
            self.flush_run();
            self.run_cell = Some(cell);
        }
        self.run_bytes += payload.len();
        self.run.push(InputRecord { seq, payload });
        if self.cfg.input_run.is_zero() {
            self.flush_run(); // A run of one: a 3010 now.
        }
    }

    /// Sends the inputs of the open run: one 3016, or a 3010 for a lone input.
    fn flush_run(&mut self) {
        let Some(cell) = self.run_cell.take() else {
            return;
        };
        self.run_bytes = 0;
        if self.run.is_empty() {
            return;
        }
        let answered_below = self.answered_below();
        let (ue, service) = (self.cfg.id, self.cfg.service);
        let msg: Message = if self.run.len() == 1 {
            let Some(input) = self.run.pop() else { return };
            ServiceInput {
                ue,
                service,
                via: cell,
                input,
                answered_below,
            }
            .into()
        } else {
            InputRun {
                ue,
                service,
                via: cell,
                inputs: std::mem::take(&mut self.run),
                answered_below,
            }
            .into()
        };
        self.out.push_back(Transmit {
            to: cell.into(),
            msg,
        });
    }

    /// The earliest time the input timer wants the UE: the next input's time, or with
    /// runs the last input of the next run (never past `stop_at`, so that the last
    /// inputs are sent).
    fn input_wake(&self) -> Option<Instant> {
        let stop = self.cfg.stop_at;
        if self.app.is_some() || stop.is_some_and(|s| self.next_input_at >= s) {
            return None;
        }
        let at = self.next_input_at + self.cfg.input_run.saturating_sub(self.cfg.input_period);
        Some(stop.map_or(at, |s| at.min(s)))
    }

    /// An answer (3011, or one of a 3017).
    fn on_output(&mut self, now: Instant, m: ServiceOutput) {
        if self.serving.is_none() {
            return; // Radio is down: the answer cannot have arrived.
        }
        if let Some(p) = self.unacked.remove(m.seq) {
            self.settle_retransmit();
            let wait = now.saturating_duration_since(p.created_at);
            self.answered_count += 1;
            self.longest_wait = self.longest_wait.max(wait);
            if p.transmissions == 1 {
                if self.recent_rtts.len() == 16 {
                    self.recent_rtts.pop_front();
                }
                self.recent_rtts
                    .push_back(now.saturating_duration_since(p.sent_at));
            }
            self.keep_answered(now, m.seq, p.payload);
            self.daps_stall(now, p.first_sent);
            self.events.push_back(UeEvent::Answered { seq: m.seq });
            self.app_answer(m.seq, m.payload);
        }
        self.first_answer(now);
    }

    fn first_answer(&mut self, now: Instant) {
        if let Some(g) = self.gaps.last_mut()
            && g.attached_at.is_some()
            && g.first_answer_at.is_none()
        {
            g.first_answer_at = Some(now);
            let gap = *g;
            self.events.push_back(UeEvent::ServiceResumed { gap });
        }
    }

    /// Keeps an answered input for [`UeConfig::keep_answered`] (and at most 64 Ki of
    /// them), dropping older ones.
    fn keep_answered(&mut self, now: Instant, seq: u64, payload: Vec<u8>) {
        while self
            .answered
            .front()
            .is_some_and(|(_, _, at)| now.saturating_duration_since(*at) > self.cfg.keep_answered)
            || self.answered.len() >= 65_536
        {
            self.answered.pop_front();
        }
        if !self.cfg.keep_answered.is_zero() {
            // Answers mostly come in order: append without a search.
            if self.answered.back().is_none_or(|(s, _, _)| *s < seq) {
                self.answered.push_back((seq, payload, now));
            } else {
                let at = self.answered.partition_point(|(s, _, _)| *s < seq);
                self.answered.insert(at, (seq, payload, now));
            }
        }
    }

    /// 3015: the live instance lacks the inputs after `after`; send the ones still kept
    /// (answered or not) again, in order.
    fn resend_after(&mut self, now: Instant, after: u64) {
        let start = self.answered.partition_point(|(s, _, _)| *s <= after);
        let again: Vec<(u64, Vec<u8>)> = self
            .answered
            .iter()
            .skip(start)
            .map(|(s, p, _)| (*s, p.clone()))
            .collect();
        for (seq, payload) in again {
            self.send_input(seq, payload);
        }
        let pending = self.unacked.keys_after(after);
        for seq in pending {
            self.transmit(now, seq, false);
        }
    }

    /// Counts the wait of an input first sent at `sent` and answered now into the last
    /// DAPS handover's stall if it was sent while both links were up (from one usual round
    /// trip before the 2003 to the attach). From the send, not the creation: an input in
    /// a run waits for the run before it leaves, and that is no stall of the move.
    fn daps_stall(&mut self, now: Instant, sent: Instant) {
        let Some(g) = self.gaps.last_mut() else {
            return;
        };
        let Some(stall) = g.daps_stall.as_mut() else {
            return;
        };
        let during =
            sent + g.baseline_rtt >= g.detached_at && g.attached_at.is_none_or(|a| sent <= a);
        if during {
            let extra = now
                .saturating_duration_since(sent)
                .saturating_sub(g.baseline_rtt);
            *stall = (*stall).max(extra);
        }
    }

    /// The usual round trip: the 90th percentile of the recent ones, so that ordinary
    /// jitter is not counted as interruption.
    fn baseline_rtt(&self) -> Duration {
        let mut v: Vec<Duration> = self.recent_rtts.iter().copied().collect();
        v.sort_unstable();
        let rank = (v.len() * 9).div_ceil(10).saturating_sub(1);
        v.get(rank).copied().unwrap_or_default()
    }
}

impl Role for UeClient {
    type Event = UeEvent;

    fn id(&self) -> NodeId {
        self.cfg.id.into()
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        if !edgeshift_proto::may_send(from, self.cfg.id.into(), &msg) {
            self.events
                .push_back(UeEvent::Unexpected { name: msg.name() });
            return;
        }
        match msg {
            Message::ServiceOutput(m) => self.on_output(now, m),
            Message::OutputRun(m) => {
                for m in m.unroll() {
                    self.on_output(now, m);
                }
            }
            Message::ProbeReply(m) => {
                if self.serving.is_some() && m.nonce == self.probe_nonce {
                    self.first_answer(now);
                }
                if self.state_query == Some(m.nonce) {
                    self.state_query = None;
                    self.events.push_back(UeEvent::LiveState {
                        last_seq: m.last_seq,
                        checksum: m.checksum,
                    });
                }
            }
            Message::ResendFrom(m) => {
                if self.serving == Some(m.via) {
                    self.resend_after(now, m.after);
                }
            }
            Message::Reattach(_) => {
                // Only the serving cell's word counts (a cell the UE left may still see
                // late uplink from it).
                if let Some(cell) = self.serving
                    && from == NodeId::Cell(cell)
                {
                    self.out.push_back(Transmit {
                        to: cell.into(),
                        msg: Attach { ue: self.cfg.id }.into(),
                    });
                    let pending = self.unacked.keys();
                    for seq in pending {
                        self.transmit(now, seq, false);
                    }
                }
            }
            Message::HandoverCommand(m) => {
                let daps = self.cfg.daps;
                let from = if daps {
                    self.serving
                } else {
                    self.serving.take()
                };
                let Some(from) = from else {
                    return;
                };
                if daps && self.gaps.last().is_some_and(|g| g.attached_at.is_none()) {
                    return; // Already joining (a repeated 2003).
                }
                let baseline_rtt = self.baseline_rtt();
                self.gaps.push(HandoverGap {
                    from,
                    to: m.target,
                    detached_at: now,
                    attached_at: None,
                    first_answer_at: None,
                    baseline_rtt,
                    failed: false,
                    daps_stall: daps.then_some(Duration::ZERO),
                });
                self.events
                    .push_back(UeEvent::Detached { target: m.target });
            }
            other => self
                .events
                .push_back(UeEvent::Unexpected { name: other.name() }),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.app.is_none()
            && self.next_input_at <= now
            && self.cfg.stop_at.is_none_or(|s| self.next_input_at < s)
        {
            let payload = Self::payload(self.cfg.seed, self.next_seq, self.cfg.payload_len);
            self.create_input(now, self.next_input_at, payload);
            self.next_input_at += self.cfg.input_period;
        }
        if self.serving.is_some() {
            // Sent again in sequence order, whatever order their deadlines are in.
            let mut due = Vec::new();
            while let Some(seq) = self.pop_due(now) {
                due.push(seq);
            }
            due.sort_unstable();
            for seq in due {
                self.transmit(now, seq, true);
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.flush_run();
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<UeEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let input = self.input_wake();
        let retx = if self.serving.is_some() {
            self.retransmit.next()
        } else {
            None
        };
        match (input, retx) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeshift_proto::{HandoverCommand, ProbeReply, ServiceOutput};

    fn ue() -> UeClient {
        ue_with(false)
    }

    /// A UE in cell 1 with an input every 10 ms, with or without DAPS.
    fn ue_with(daps: bool) -> UeClient {
        let mut cfg = UeConfig::new(UeId(1), ServiceId(1), 7);
        cfg.input_period = Duration::from_millis(10);
        cfg.daps = daps;
        let mut ue = UeClient::new(cfg, Instant::ZERO);
        ue.handle_attach(Instant::ZERO, CellId(1));
        ue
    }

    /// Inputs 1 to 5, each answered 4 ms after it was made (the usual round trip), then
    /// the 2003 towards cell 2 at `at`.
    fn five_answered_then_commanded(ue: &mut UeClient, at: Instant) {
        for i in 1..=5u64 {
            ue.handle_timeout(Instant::from_millis(10 * i));
            answer(ue, Instant::from_millis(10 * i + 4), i);
        }
        let cmd = HandoverCommand {
            ue: UeId(1),
            target: CellId(2),
        };
        ue.handle_message(at, NodeId::Cell(CellId(1)), cmd.into());
    }

    fn answer(ue: &mut UeClient, now: Instant, seq: u64) {
        let m = ServiceOutput {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(1),
            seq,
            payload: vec![],
        };
        ue.handle_message(now, NodeId::Cell(CellId(1)), m.into());
    }

    #[test]
    fn gap_is_measured_from_detach_to_first_answer_minus_rtt() {
        let mut ue = ue();
        five_answered_then_commanded(&mut ue, Instant::from_millis(60));
        ue.handle_timeout(Instant::from_millis(70)); // input 6 waits: radio is down
        assert!(ue.poll_transmit().is_some()); // inputs 1..5 went out before
        ue.handle_attach(Instant::from_millis(100), CellId(2));
        let sent: Vec<Message> = std::iter::from_fn(|| ue.poll_transmit())
            .map(|t| t.msg)
            .collect();
        assert!(
            sent.iter()
                .any(|m| matches!(m, Message::HandoverConfirm(_)))
        );
        assert!(sent.iter().any(|m| matches!(m, Message::Probe(_))));
        assert!(
            sent.iter()
                .any(|m| matches!(m, Message::ServiceInput(i) if i.input.seq == 6))
        );
        let reply = ProbeReply {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(2),
            nonce: 1,
            last_seq: 5,
            checksum: None,
        };
        ue.handle_message(
            Instant::from_millis(110),
            NodeId::Cell(CellId(2)),
            reply.into(),
        );
        let g = ue.gaps()[0];
        assert_eq!(g.radio_gap(), Some(Duration::from_millis(40)));
        assert_eq!(g.baseline_rtt, Duration::from_millis(4));
        assert_eq!(g.service_gap(), Some(Duration::from_millis(46)));
        assert_eq!(g.added(), Some(Duration::from_millis(6)));
    }

    #[test]
    fn with_daps_the_source_link_stays_up_and_the_gap_is_the_stall() {
        let mut ue = ue_with(true);
        five_answered_then_commanded(&mut ue, Instant::from_millis(55));
        assert_eq!(ue.serving(), Some(CellId(1)), "the source link stays up");
        let _ = std::iter::from_fn(|| ue.poll_transmit()).count();
        // Input 6 goes out through the source while the UE joins the target; the service
        // moves meanwhile and answers it 9 ms later (4 ms is the usual round trip).
        ue.handle_timeout(Instant::from_millis(60));
        let sent: Vec<Transmit> = std::iter::from_fn(|| ue.poll_transmit()).collect();
        assert!(sent.iter().any(|t| t.to == CellId(1).into()
            && matches!(&t.msg, Message::ServiceInput(i) if i.input.seq == 6)));
        answer(&mut ue, Instant::from_millis(69), 6);
        ue.handle_timeout(Instant::from_millis(70));
        answer(&mut ue, Instant::from_millis(74), 7);
        ue.handle_attach(Instant::from_millis(75), CellId(2));
        // Input 8, sent after the attach, is not part of the handover.
        ue.handle_timeout(Instant::from_millis(80));
        answer(&mut ue, Instant::from_millis(130), 8);
        let g = ue.gaps()[0];
        assert_eq!(g.radio_gap(), Some(Duration::ZERO));
        assert_eq!(g.service_gap(), Some(Duration::from_millis(5)));
        assert_eq!(g.added(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn unanswered_inputs_are_retransmitted_and_duplicates_ignored() {
        let mut ue = ue();
        ue.handle_timeout(Instant::from_millis(10));
        ue.handle_timeout(Instant::from_millis(200));
        assert!(ue.transmissions(1) >= Some(2));
        answer(&mut ue, Instant::from_millis(201), 1);
        answer(&mut ue, Instant::from_millis(202), 1);
        assert_eq!(ue.transmissions(1), None);
        assert_eq!(ue.answered(), 1);
        // Created at 10 ms, answered once, at 201 ms.
        assert_eq!(ue.longest_wait(), Duration::from_millis(191));
    }

    /// Times at which input 1 goes out, when nothing ever answers.
    fn sends_of_first_input(ue: &mut UeClient, until_ms: u64) -> Vec<u64> {
        let mut at = Vec::new();
        for ms in 0..=until_ms {
            ue.handle_timeout(Instant::from_millis(ms));
            for t in std::iter::from_fn(|| ue.poll_transmit()) {
                if matches!(t.msg, Message::ServiceInput(ref i) if i.input.seq == 1) {
                    at.push(ms);
                }
            }
        }
        at
    }

    #[test]
    fn an_input_that_stays_unanswered_is_resent_with_doubling_waits_up_to_the_cap() {
        let mut ue = ue();
        let sent = sends_of_first_input(&mut ue, 12_000);
        // Sent at 10 ms, then after 150, 300, 600, 1200, 2400, 2400, ... ms.
        assert_eq!(sent[..7], [10, 160, 460, 1060, 2260, 4660, 7060]);
        assert_eq!(sent[7], 9460);
    }

    #[test]
    fn a_new_cell_resets_the_backoff() {
        let mut ue = ue();
        sends_of_first_input(&mut ue, 2300); // next resend only at 4660 ms
        ue.handle_message(
            Instant::from_millis(2301),
            NodeId::Cell(CellId(1)),
            HandoverCommand {
                ue: UeId(1),
                target: CellId(2),
            }
            .into(),
        );
        ue.handle_attach(Instant::from_millis(2350), CellId(2));
        let resent = std::iter::from_fn(|| ue.poll_transmit())
            .any(|t| matches!(t.msg, Message::ServiceInput(ref i) if i.input.seq == 1));
        assert!(resent, "attaching resends what is unanswered");
        ue.handle_timeout(Instant::from_millis(2499));
        let again = std::iter::from_fn(|| ue.poll_transmit())
            .any(|t| matches!(t.msg, Message::ServiceInput(ref i) if i.input.seq == 1));
        assert!(!again);
        ue.handle_timeout(Instant::from_millis(2500));
        let again = std::iter::from_fn(|| ue.poll_transmit())
            .any(|t| matches!(t.msg, Message::ServiceInput(ref i) if i.input.seq == 1));
        assert!(again, "150 ms after the fresh send, not 2.4 s");
    }
}
