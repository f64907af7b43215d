//! The shadow side.

use std::collections::BTreeMap;

use edgeshift_proto::{
    CodeRef, Instant, NodeId, RelocateConfirm, RelocateRequest, RelocationDone, ServerId,
    ServiceId, ShadowReady, ShadowTransfer, StateDelta, SyncAck, SyncBody, Verdict,
};
use xxhash_rust::xxh3::Xxh3;

use super::source::Live;
use super::traffic::Held;
use super::{DISCARD_MEMORY, EdgeServer};
use crate::event::EdgeEvent;
use crate::instance::{Instance, Meta};
use crate::service::ServiceError;

pub(super) struct Receiving {
    pub(super) transfer: u32,
    pub(super) meta: Meta,
    /// The shadow instance, created at the first chunk; chunks are written straight in.
    pub(super) svc: Box<dyn crate::Service>,
    pub(super) seq: u64,
    pub(super) digest: u128,
    pub(super) total_len: u64,
    pub(super) received: u64,
    /// xxh3-128 of the bytes received so far, in order.
    pub(super) hasher: Box<Xxh3>,
}

pub(super) enum Body {
    /// Nothing received yet (or a full resync was asked for).
    Awaiting,
    Receiving(Receiving),
    Ready(Instance),
    /// The shadow cannot be hosted here.
    Failed(String),
}

pub(super) struct Shadow {
    pub(super) source: ServerId,
    pub(super) created_at: Instant,
    pub(super) body: Body,
    /// Inputs that arrived before the state did.
    pub(super) early: BTreeMap<u64, Vec<u8>>,
    pub(super) deltas: Vec<StateDelta>,
    pub(super) request: Option<RelocateRequest>,
    pub(super) first_try: Option<bool>,
    pub(super) asked: Option<Verdict>,
    pub(super) held: Vec<Held>,
}

impl Shadow {
    pub(super) fn new(source: ServerId, now: Instant) -> Self {
        Self {
            source,
            created_at: now,
            body: Body::Awaiting,
            early: BTreeMap::new(),
            deltas: Vec::new(),
            request: None,
            first_try: None,
            asked: None,
            held: Vec::new(),
        }
    }
}

impl EdgeServer {
    pub(super) fn drop_shadow(&mut self, now: Instant, service: ServiceId) {
        // Sync in flight arrives within a few link delays; a minute of memory is plenty.
        self.discarded
            .retain(|_, at| now.saturating_duration_since(*at) < DISCARD_MEMORY);
        self.discarded.insert(service, now);
        if let Some(sh) = self.shadows.remove(&service) {
            self.events.push_back(EdgeEvent::ShadowDiscarded {
                service,
                created_at: sh.created_at,
            });
            // Traffic that reached the shadow early belongs to the live instance.
            self.forward_held(sh.source, sh.held);
        }
    }

    pub(super) fn refuse_transfer(&mut self, service: ServiceId, source: ServerId, why: String) {
        self.violation(NodeId::Server(source), why);
        let server = self.cfg.id;
        self.send(
            source,
            SyncAck {
                service,
                server,
                seq: 0,
                ok: false,
            },
        );
    }

    pub(super) fn on_transfer(&mut self, now: Instant, from: NodeId, m: ShadowTransfer) {
        let service = m.service;
        if self.live.contains_key(&service) {
            self.violation(from, format!("1004 for {service}, which is live here"));
            return;
        }
        let continues = self
            .shadows
            .get(&service)
            .is_some_and(|sh| matches!(&sh.body, Body::Receiving(r) if r.transfer == m.transfer));
        if !continues {
            if m.offset != 0 {
                return; // A chunk of a transfer that was superseded.
            }
            self.discarded.remove(&service);
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
            sh.deltas.clear();
            match fresh {
                Ok((meta, svc)) => {
                    sh.body = Body::Receiving(Receiving {
                        transfer: m.transfer,
                        meta,
                        svc,
                        seq: m.seq,
                        digest: m.digest,
                        total_len: m.total_len,
                        received: 0,
                        hasher: Box::new(Xxh3::new()),
                    });
                }
                Err(ServiceError::InvalidCode(why))
                    if matches!(m.spec.as_ref().map(|s| &s.code), Some(CodeRef::Hash(_))) =>
                {
                    // We lost the cached code (restart?): ask again, code inline.
                    sh.body = Body::Awaiting;
                    self.refuse_transfer(service, m.source, why);
                    return;
                }
                Err(e) => {
                    sh.body = Body::Failed(e.to_string());
                    self.validate(now, service);
                    return;
                }
            }
        }
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Body::Receiving(r) = &mut sh.body else {
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
            sh.body = Body::Awaiting;
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
            self.finish_shadow(now, service, expected);
        }
    }

    pub(super) fn finish_shadow(&mut self, now: Instant, service: ServiceId, expected: u128) {
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Body::Receiving(mut r) = std::mem::replace(&mut sh.body, Body::Awaiting) else {
            return;
        };
        let source = sh.source;
        if let Err(e) = r.svc.finish_restore() {
            sh.body = Body::Failed(e.to_string());
            self.validate(now, service);
            return;
        }
        // The chunks were written in order and cover the state once: their streamed hash
        // is the state's checksum, without another pass over memory.
        if r.hasher.digest128() != expected {
            self.refuse_transfer(
                service,
                source,
                format!("1004 for {service} failed its checksum"),
            );
            return;
        }
        let mut inst = Instance::new(r.meta, r.svc, r.seq, r.digest, self.cfg.answer_cache);
        for (seq, payload) in std::mem::take(&mut sh.early) {
            inst.offer(seq, payload, None);
        }
        for d in std::mem::take(&mut sh.deltas) {
            if let Err(e) = inst.apply_delta(&d) {
                sh.body = Body::Awaiting;
                self.refuse_transfer(service, source, e);
                return;
            }
        }
        let seq = inst.last_seq;
        sh.body = Body::Ready(inst);
        self.drain_shadow(service);
        let server = self.cfg.id;
        self.send(
            source,
            ShadowReady {
                service,
                server,
                seq,
            },
        );
        self.send(
            NodeId::Control,
            ShadowReady {
                service,
                server,
                seq,
            },
        );
        self.events
            .push_back(EdgeEvent::ShadowReady { service, seq });
        self.validate(now, service);
    }

    pub(super) fn drain_shadow(&mut self, service: ServiceId) {
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Body::Ready(inst) = &mut sh.body else {
            return;
        };
        for a in inst.drain() {
            self.events.push_back(EdgeEvent::Applied {
                service,
                seq: a.seq,
                live: false,
            });
        }
    }

    pub(super) fn on_sync(
        &mut self,
        now: Instant,
        from: NodeId,
        service: ServiceId,
        body: SyncBody,
        catch_up: bool,
    ) {
        if self.live.contains_key(&service) {
            self.violation(from, format!("sync for {service}, which is live here"));
            return;
        }
        if self.discarded.contains_key(&service) {
            return; // Sync for a shadow already discarded is normal: it was in flight.
        }
        // Inputs may overtake the 1004 (they travel on the control lane): keep them.
        let sh = self
            .shadows
            .entry(service)
            .or_insert_with(|| Shadow::new(source_of(from), now));
        let source = sh.source;
        match body {
            SyncBody::Inputs(inputs) => match &mut sh.body {
                Body::Ready(inst) => {
                    for i in inputs {
                        inst.offer(i.seq, i.payload, None);
                    }
                    self.drain_shadow(service);
                }
                _ => {
                    for i in inputs {
                        sh.early.insert(i.seq, i.payload);
                    }
                }
            },
            SyncBody::Delta(d) => match &mut sh.body {
                Body::Ready(inst) => {
                    let ok = match inst.apply_delta(&d) {
                        Ok(()) => true,
                        Err(e) => {
                            sh.body = Body::Awaiting;
                            self.violation(from, e);
                            false
                        }
                    };
                    let seq = d.seq;
                    if !catch_up || !ok {
                        self.send(
                            source,
                            SyncAck {
                                service,
                                server: self.cfg.id,
                                seq,
                                ok,
                            },
                        );
                    }
                }
                _ => sh.deltas.push(d),
            },
        }
        self.validate(now, service);
    }

    pub(super) fn on_request(&mut self, now: Instant, m: RelocateRequest) {
        let service = m.service;
        if self.live.contains_key(&service) {
            // Already active (a repeated 2004): confirm again.
            self.send(
                m.source,
                RelocateConfirm {
                    service,
                    target: self.cfg.id,
                    verdict: Verdict::Valid,
                },
            );
            return;
        }
        self.discarded.remove(&service);
        let sh = self
            .shadows
            .entry(service)
            .or_insert_with(|| Shadow::new(m.source, now));
        sh.source = m.source;
        sh.request = Some(m);
        self.validate(now, service);
    }

    pub(super) fn validate(&mut self, now: Instant, service: ServiceId) {
        let target = self.cfg.id;
        let Some(sh) = self.shadows.get_mut(&service) else {
            return;
        };
        let Some(req) = sh.request.clone() else {
            return;
        };
        let verdict = match &sh.body {
            Body::Receiving(_) => return,
            Body::Awaiting if req.transfer_pending => return,
            Body::Awaiting => Verdict::NeedFull,
            Body::Failed(why) => Verdict::Reject(why.clone()),
            Body::Ready(inst) if inst.last_seq == req.last_seq && inst.digest == req.digest => {
                // The digest pins the inputs; the audit checksum, when sent, pins the memory.
                if req.state_checksum.is_none_or(|c| c == inst.svc.checksum()) {
                    Verdict::Valid
                } else {
                    Verdict::NeedFull
                }
            }
            Body::Ready(inst) if inst.last_seq < req.last_seq => Verdict::NeedFrom(inst.last_seq),
            Body::Ready(_) => Verdict::NeedFull,
        };
        sh.first_try.get_or_insert(verdict == Verdict::Valid);
        match verdict {
            Verdict::Valid => self.activate(now, service),
            Verdict::Reject(_) => {
                self.shadows.remove(&service);
                self.send(
                    req.source,
                    RelocateConfirm {
                        service,
                        target,
                        verdict,
                    },
                );
            }
            v => {
                if sh.asked.as_ref() == Some(&v) {
                    return; // Already asked; the answer is on its way.
                }
                if v == Verdict::NeedFull {
                    sh.body = Body::Awaiting;
                }
                sh.asked = Some(v.clone());
                self.send(
                    req.source,
                    RelocateConfirm {
                        service,
                        target,
                        verdict: v,
                    },
                );
            }
        }
    }

    pub(super) fn activate(&mut self, _now: Instant, service: ServiceId) {
        let Some(sh) = self.shadows.remove(&service) else {
            return;
        };
        let Body::Ready(mut inst) = sh.body else {
            return;
        };
        let Some(req) = sh.request else { return };
        inst.adopt_answers(&req.answers);
        let (last_seq, digest, state_bytes) = (inst.last_seq, inst.digest, inst.svc.state_len());
        // O(1) in state size: the instance moves from the shadow table to the live one. Its
        // dirty map may be stale; a later delta shadow starts from a full snapshot, and
        // extra chunks in its first delta are harmless.
        self.live.insert(service, Live::new(inst));
        self.moved.remove(&service);
        self.events.push_back(EdgeEvent::Activated {
            service,
            from: req.source,
            last_seq,
            digest,
            first_try: sh.first_try.unwrap_or(true),
            state_bytes,
            shadow_created_at: sh.created_at,
        });
        let me = self.cfg.id;
        self.send(
            req.source,
            RelocateConfirm {
                service,
                target: me,
                verdict: Verdict::Valid,
            },
        );
        self.send(
            NodeId::Control,
            RelocationDone {
                service,
                from: req.source,
                to: me,
                ok: true,
                epoch: req.epoch,
            },
        );
        self.release_held(sh.held);
        self.load_report();
    }
}

pub(super) fn source_of(from: NodeId) -> ServerId {
    match from {
        NodeId::Server(s) => s,
        _ => ServerId(0),
    }
}
