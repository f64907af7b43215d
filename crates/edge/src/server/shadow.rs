//! The shadow side: copies of live instances hosted elsewhere, kept here so that a
//! relocation to this server only has to check and switch.
//!
//! A [`Shadow`] appears with the first message about it: a 1004 chunk, sync inputs that
//! overtook the 1004, or a 2004. Its [`ShadowState`] follows the copy of the state:
//! awaiting a transfer, receiving one, ready and kept current by sync, or failed. This
//! module drives the copy (1004, sync, catch-up, discard); the 2004, which can arrive in
//! any of those states and waits beside the copy as a [`Check`], and the activation are in
//! `check.rs`. Every change to the copy ends by re-running the check.

use std::collections::BTreeMap;

use edgeshift_proto::{
    Answer, CodeRef, Instant, NodeId, ServerId, ServiceId, ShadowReady, ShadowTransfer, StateDelta,
    SyncAck, SyncBody,
};
use xxhash_rust::xxh3::Xxh3;

use super::traffic::Held;
use super::{DISCARD_MEMORY, EdgeServer};
use crate::event::EdgeEvent;
use crate::instance::{Instance, Meta};
use crate::service::ServiceError;

/// Inputs that arrived before the state they apply to, by sequence number.
type Early = BTreeMap<u64, Vec<u8>>;

mod check;

use check::Check;

/// A shadow hosted here.
pub(super) struct Shadow {
    /// The server with the live instance.
    pub(super) source: ServerId,
    pub(super) created_at: Instant,
    pub(super) state: ShadowState,
    /// The 2004 being answered, once one came.
    pub(super) check: Option<Check>,
    /// UE traffic that reached the shadow before it went live.
    pub(super) held: Vec<Held>,
    /// Since when replay inputs have waited behind a gap (a sync batch lost on the way).
    pub(super) gap_since: Option<Instant>,
    /// Its source syncs it with deltas: it never goes live tentatively (a delta cannot go
    /// on top of inputs the instance applied itself).
    pub(super) delta_synced: bool,
}

/// How long replay inputs may wait behind a gap before the shadow asks its source to start
/// it over: longer than the reordering a link may do, far shorter than the 5 s a UE keeps
/// answered inputs (a stale shadow promoted later could not be helped by the UE).
const GAP_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Where the copy of the state stands.
pub(super) enum ShadowState {
    /// No state yet, or a full resync was asked for.
    Awaiting { early: Early },
    /// A 1004 transfer is arriving.
    Receiving(Box<Receiving>),
    /// Complete and verified; sync keeps it current.
    Ready(Instance),
    /// The service cannot be hosted here (its code or state does not load).
    Failed { why: String, early: Early },
}

/// A 1004 transfer under way.
pub(super) struct Receiving {
    pub(super) transfer: u32,
    pub(super) meta: Meta,
    /// The shadow instance, created at the first chunk; chunks are written straight in.
    svc: Box<dyn crate::Service>,
    seq: u64,
    digest: u128,
    pub(super) total_len: u64,
    received: u64,
    /// xxh3-128 of the bytes received so far, in order.
    hasher: Xxh3,
    early: Early,
    /// Deltas sent after the snapshot, applied once it is complete.
    deltas: Vec<StateDelta>,
}

impl Shadow {
    pub(super) fn new(source: ServerId, now: Instant) -> Self {
        Self {
            source,
            created_at: now,
            state: ShadowState::awaiting(),
            check: None,
            held: Vec::new(),
            gap_since: None,
            delta_synced: false,
        }
    }
}

impl ShadowState {
    fn awaiting() -> Self {
        Self::Awaiting {
            early: Early::new(),
        }
    }

    /// Leaves the state for another one, taking the inputs kept for a state still to
    /// come (a ready copy has applied them).
    fn take_early(&mut self) -> Early {
        match std::mem::replace(self, Self::awaiting()) {
            Self::Awaiting { early } | Self::Failed { early, .. } => early,
            Self::Receiving(r) => r.early,
            Self::Ready(_) => Early::new(),
        }
    }

    /// Waits for a new transfer; inputs kept for the state stay.
    fn restart(&mut self) {
        let early = self.take_early();
        *self = Self::Awaiting { early };
    }
}

/// A ready shadow taken out to go live.
pub(super) struct ReadyShadow {
    /// The server with the live instance it copied.
    pub(super) source: ServerId,
    pub(super) created_at: Instant,
    pub(super) inst: Instance,
    /// UE traffic that reached it before it went live.
    pub(super) held: Vec<Held>,
}

impl EdgeServer {
    /// Takes `service`'s shadow out if it is ready; any other shadow stays.
    pub(super) fn take_ready(&mut self, service: ServiceId) -> Option<ReadyShadow> {
        if !matches!(self.shadows.get(&service)?.state, ShadowState::Ready(_)) {
            return None;
        }
        let Shadow {
            source,
            created_at,
            state: ShadowState::Ready(inst),
            held,
            ..
        } = self.shadows.remove(&service)?
        else {
            return None; // Checked just above.
        };
        Some(ReadyShadow {
            source,
            created_at,
            inst,
            held,
        })
    }

    /// 1006 discard naming this server: the shadow goes.
    pub(super) fn drop_shadow(&mut self, now: Instant, service: ServiceId) {
        // Sync in flight arrives within a few link delays; a minute of memory is plenty.
        while self.discarded.pop_due(now).is_some() {}
        self.discarded.set(service, now + DISCARD_MEMORY);
        if let Some(sh) = self.shadows.remove(&service) {
            self.events.push_back(EdgeEvent::ShadowDiscarded {
                service,
                created_at: sh.created_at,
            });
            // Traffic that reached the shadow early belongs to the live instance.
            self.forward_held(sh.source, sh.held);
        }
    }

    /// Tells the source its 1004 (or delta) did not take; it sends the state again.
    fn refuse_transfer(&mut self, service: ServiceId, source: ServerId, why: String) {
        self.violation(NodeId::Server(source), why);
        self.ack_sync(source, service, 0, false);
    }

    /// 1004: one chunk of a state transfer.
    pub(super) fn on_transfer(&mut self, now: Instant, from: NodeId, m: ShadowTransfer) {
        let service = m.service;
        // The source sends the whole state (its log did not reach back to this instance's
        // inputs): the copy replaces the tentative instance, and the 2004 it answered
        // waits beside the copy.
        let mut carried = None;
        if self.tentative_source(service) == Some(m.source) {
            carried = self
                .live
                .get(&service)
                .and_then(|l| l.tentative.as_ref())
                .and_then(|t| t.request.clone());
            let why = "the source sends a new copy".to_string();
            self.drop_tentative(service, m.source, why);
        }
        if self.live.contains_key(&service) {
            self.violation(from, format!("1004 for {service}, which is live here"));
            return;
        }
        let continues = self.shadows.get(&service).is_some_and(
            |sh| matches!(&sh.state, ShadowState::Receiving(r) if r.transfer == m.transfer),
        );
        if !continues {
            if m.offset != 0 {
                return; // A chunk of a transfer that was superseded.
            }
            // A modelled state is admitted by the size it stands for.
            let bytes = m
                .spec
                .as_ref()
                .and_then(crate::ModelConfig::of)
                .map_or(m.total_len, |c| c.state_bytes);
            if !self.admit_shadow(service, m.source, bytes) {
                return;
            }
            self.discarded.cancel(service);
            // Instantiate the shadow now, while its state is still on the way (warm restore).
            let fresh = match &m.spec {
                Some(spec) => self.create(m.ue, spec).and_then(|(meta, mut svc)| {
                    svc.begin_restore(m.total_len)?;
                    Ok((meta, svc))
                }),
                None => Err(ServiceError::BadState(
                    "first 1004 chunk carries no code".into(),
                )),
            };
            // NOTE: a shadow that early sync or a 2004 created first never reports this.
            let created = !self.shadows.contains_key(&service);
            if created {
                self.events.push_back(EdgeEvent::ShadowCreated {
                    service,
                    source: m.source,
                });
            }
            let sh = self
                .shadows
                .entry(service)
                .or_insert_with(|| Shadow::new(m.source, now));
            sh.source = m.source;
            if let Some(request) = carried {
                sh.check = Some(Check {
                    request,
                    asked: Some(edgeshift_proto::Verdict::NeedFull),
                });
            }
            // A new transfer replaces whatever copy there was; deltas sent after an older
            // snapshot go with it.
            let early = sh.state.take_early();
            match fresh {
                Ok((meta, svc)) => {
                    sh.state = ShadowState::Receiving(Box::new(Receiving {
                        transfer: m.transfer,
                        meta,
                        svc,
                        seq: m.seq,
                        digest: m.digest,
                        total_len: m.total_len,
                        received: 0,
                        hasher: Xxh3::new(),
                        early,
                        deltas: Vec::new(),
                    }));
                }
                Err(ServiceError::InvalidCode(why))
                    if matches!(m.spec.as_ref().map(|s| &s.code), Some(CodeRef::Hash(_))) =>
                {
                    // We lost the cached code (restart?): ask again, code inline.
                    sh.state = ShadowState::Awaiting { early };
                    self.refuse_transfer(service, m.source, why);
                    return;
                }
                Err(e) => {
                    sh.state = ShadowState::Failed {
                        why: e.to_string(),
                        early,
                    };
                    self.validate(service);
                    return;
                }
            }
        }
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let ShadowState::Receiving(r) = &mut sh.state else {
            return;
        };
        let fits = m.offset == r.received && r.received + m.data.len() as u64 <= r.total_len;
        if let Err(why) = if fits {
            r.svc
                .restore_chunk(m.offset, &m.data)
                .map_err(|e| e.to_string())
        } else {
            Err("out of order".into())
        } {
            sh.state.restart();
            let why = format!(
                "1004 chunk at {} does not fit transfer {}: {why}",
                m.offset, m.transfer
            );
            self.refuse_transfer(service, m.source, why);
            return;
        }
        r.hasher.update(&m.data);
        r.received += m.data.len() as u64;
        if r.received == r.total_len
            && let Some(expected) = m.state_checksum
        {
            self.finish_shadow(service, expected, &m.answers);
        }
    }

    /// The last chunk arrived: check the copy, apply what came meanwhile, report ready.
    fn finish_shadow(&mut self, service: ServiceId, expected: u128, answers: &[Answer]) {
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let mut r = match std::mem::replace(&mut sh.state, ShadowState::awaiting()) {
            ShadowState::Receiving(r) => *r,
            other => {
                sh.state = other;
                return;
            }
        };
        let source = sh.source;
        if let Err(e) = r.svc.finish_restore() {
            sh.state = ShadowState::Failed {
                why: e.to_string(),
                early: r.early,
            };
            self.validate(service);
            return;
        }
        // The chunks were written in order and cover the state once: their streamed hash
        // is the state's checksum, without another pass over memory.
        if r.hasher.digest128() != expected {
            sh.state = ShadowState::Awaiting { early: r.early };
            self.refuse_transfer(
                service,
                source,
                format!("1004 for {service} failed its checksum"),
            );
            return;
        }
        let mut inst = Instance::new(r.meta, r.svc, r.seq, r.digest, self.cfg.answer_cache);
        inst.adopt_answers(answers);
        for (seq, payload) in r.early {
            inst.offer(seq, payload, None);
        }
        for d in r.deltas {
            if let Err(e) = inst.apply_delta(&d) {
                // Awaiting again; the early inputs went down with the copy.
                self.refuse_transfer(service, source, e);
                return;
            }
        }
        let seq = inst.last_seq;
        sh.state = ShadowState::Ready(inst);
        self.kick(service);
        let server = self.cfg.id;
        self.send(
            source,
            ShadowReady {
                service,
                server,
                seq,
                adoption: false,
            },
        );
        self.send(
            self.commander(service),
            ShadowReady {
                service,
                server,
                seq,
                adoption: false,
            },
        );
        self.events
            .push_back(EdgeEvent::ShadowReady { service, seq });
        self.validate(service);
    }

    /// 3036 to the shadow's source: where the copy stands (`seq`), and whether it holds
    /// (`ok`); not ok makes the source start the shadow over with a full transfer.
    fn ack_sync(&mut self, source: ServerId, service: ServiceId, seq: u64, ok: bool) {
        let server = self.cfg.id;
        self.send(
            source,
            SyncAck {
                service,
                server,
                seq,
                ok,
            },
        );
    }

    /// Shadow sync, or the catch-up a 2005 asked for.
    pub(super) fn on_sync(
        &mut self,
        now: Instant,
        from: NodeId,
        service: ServiceId,
        body: SyncBody,
        catch_up: bool,
    ) {
        if let Some(source) = self.tentative_source(service)
            && from == NodeId::Server(source)
        {
            self.sync_tentative(service, source, body);
            return;
        }
        if self.live.contains_key(&service) {
            self.violation(from, format!("sync for {service}, which is live here"));
            return;
        }
        if self.discarded.contains(&service) {
            return; // Sync for a shadow already discarded is normal: it was in flight.
        }
        // Inputs may overtake the 1004 (they travel on the control lane): keep them.
        let sh = self
            .shadows
            .entry(service)
            .or_insert_with(|| Shadow::new(source_of(from), now));
        let source = sh.source;
        match body {
            SyncBody::Inputs(inputs) => match &mut sh.state {
                ShadowState::Ready(inst) => {
                    for i in inputs {
                        inst.offer(i.seq, i.payload, None);
                    }
                    let seq = inst.last_seq;
                    if !inst.waits_behind_gap() {
                        sh.gap_since = None;
                    } else if now >= *sh.gap_since.get_or_insert(now) + GAP_WAIT {
                        // A batch was lost (a partition, a dropped connection): the inputs
                        // behind the gap will never apply, and a failover would promote this
                        // copy as it stands. Asked once per gap, the source starts the shadow
                        // over with a full transfer, as it does for a delta that failed.
                        sh.gap_since = None;
                        sh.state = ShadowState::awaiting();
                        self.ack_sync(source, service, seq, false);
                        return;
                    }
                    self.kick(service);
                }
                ShadowState::Receiving(r) => keep_early(&mut r.early, inputs),
                ShadowState::Awaiting { early } | ShadowState::Failed { early, .. } => {
                    keep_early(early, inputs);
                }
            },
            SyncBody::Delta(d) => {
                sh.delta_synced = true;
                match &mut sh.state {
                    ShadowState::Ready(inst) => {
                        let ok = match inst.apply_delta(&d) {
                            Ok(()) => true,
                            Err(e) => {
                                sh.state = ShadowState::awaiting();
                                self.violation(from, e);
                                false
                            }
                        };
                        let seq = d.seq;
                        if !catch_up || !ok {
                            self.ack_sync(source, service, seq, ok);
                        }
                    }
                    ShadowState::Receiving(r) => r.deltas.push(d),
                    // No snapshot to apply it to: the next transfer brings a newer one.
                    ShadowState::Awaiting { .. } | ShadowState::Failed { .. } => {}
                }
            }
        }
        self.validate(service);
    }
}

fn keep_early(early: &mut Early, inputs: Vec<edgeshift_proto::InputRecord>) {
    for i in inputs {
        early.insert(i.seq, i.payload);
    }
}

/// The server a sync came from (sync that overtook the 1004 names no other source).
fn source_of(from: NodeId) -> ServerId {
    match from {
        NodeId::Server(s) => s,
        _ => ServerId(0),
    }
}

#[cfg(test)]
mod tests;
