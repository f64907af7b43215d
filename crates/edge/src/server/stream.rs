//! Transfers streamed out of a frozen instance, one chunk at a time as the driver asks.
//!
//! A 1004 transfer of a serving instance is read whole inside the call that starts it:
//! the instance runs on afterwards, and only a read within one call is one consistent
//! snapshot. A frozen one (a cold relocation, and any transfer a frozen source starts
//! again) cannot change until it thaws or moves out, so its chunks are read when they
//! are sent: [`EdgeServer::poll_transmit_paced`] makes the next one only if the driver
//! says the link to the target has room. A live daemon so keeps a few MiB in flight
//! instead of the whole state twice over (chunks and frames), its event loop (heartbeats
//! included) stays responsive, and reading, the wire and the target's restore overlap.
//!
//! A stream keeps its place among the other messages: those queued before it go first,
//! and bulk-lane ones queued after it wait for it (control-lane ones may pass it while it
//! waits for room, as they would pass it on the wire anyway). A driver that always says
//! there is room ([`Role::poll_transmit`]: the simulator, the tests) gets exactly the
//! messages, in exactly the order, of a transfer read at once.
//!
//! [`Role::poll_transmit`]: edgeshift_proto::Role::poll_transmit

use edgeshift_proto::{
    Answer, Lane, ServerId, ServiceId, ServiceSpec, ShadowTransfer, Transmit, UeId,
};
use xxhash_rust::xxh3::Xxh3;

use super::EdgeServer;
use super::source::Source;
use crate::instance::Instance;
use crate::service::Service;

/// A transfer of an instance's state, chunk by chunk: streamed from a frozen instance,
/// or read whole at once (`links.rs`).
pub(super) struct Stream {
    pub(super) service: ServiceId,
    pub(super) target: ServerId,
    pub(super) transfer: u32,
    pub(super) ue: UeId,
    /// The snapshot's last input and input-log digest: the instance must still be at
    /// them for each chunk.
    pub(super) seq: u64,
    pub(super) digest: u128,
    /// Code and context, sent with the first chunk.
    pub(super) spec: Option<ServiceSpec>,
    pub(super) total_len: u64,
    pub(super) chunk: u64,
    /// Offset of the next chunk.
    pub(super) next: u64,
    /// The checksum, streamed (sent with the last chunk).
    pub(super) hasher: Xxh3,
    /// Answers the target owes the UE, sent with the last chunk.
    pub(super) answers: Vec<Answer>,
    /// Messages still queued ahead of it.
    pub(super) before: usize,
}

impl Stream {
    /// The transfer of `service`'s state (`inst`, held by `svc`) to `target`, from its
    /// first chunk.
    pub(super) fn new(
        service: ServiceId,
        inst: &Instance,
        svc: &dyn Service,
        target: ServerId,
        transfer: u32,
        spec: ServiceSpec,
        chunk: u64,
    ) -> Self {
        Self {
            service,
            target,
            transfer,
            ue: inst.meta.ue,
            seq: inst.last_seq,
            digest: inst.digest,
            spec: Some(spec),
            total_len: svc.state_len(),
            chunk: chunk.max(1),
            next: 0,
            hasher: Xxh3::new(),
            answers: inst.owed_answers(),
            before: 0,
        }
    }

    /// Reads the next chunk from `svc` (still the snapshot's state) and makes its 1004
    /// from `source`; true with it if it was the last. An empty state goes as one empty
    /// chunk.
    pub(super) fn next_chunk(&mut self, svc: &dyn Service, source: ServerId) -> (Transmit, bool) {
        let offset = self.next;
        let len = self.chunk.min(self.total_len - offset);
        let mut data = vec![0; usize::try_from(len).unwrap_or(0)];
        svc.read_state(offset, &mut data);
        self.hasher.update(&data);
        self.next += len;
        let last = self.next >= self.total_len;
        let msg = ShadowTransfer {
            service: self.service,
            ue: self.ue,
            source,
            transfer: self.transfer,
            seq: self.seq,
            digest: self.digest,
            spec: self.spec.take(),
            total_len: self.total_len,
            offset,
            data: data.into(),
            state_checksum: last.then(|| self.hasher.digest128()),
            answers: if last {
                std::mem::take(&mut self.answers)
            } else {
                Vec::new()
            },
        };
        let t = Transmit {
            to: self.target.into(),
            msg: msg.into(),
        };
        (t, last)
    }
}

impl EdgeServer {
    /// Whether a streamed transfer waits for room (call [`Self::poll_transmit_paced`]
    /// again when its link has drained).
    #[must_use]
    pub fn streaming(&self) -> bool {
        !self.streams.is_empty()
    }

    /// The next message to send, like [`edgeshift_proto::Role::poll_transmit`], except
    /// that a chunk of a streamed transfer is made only if `room(target)` says the link to
    /// its target can take it. `None` when nothing is left, or when what is left waits for
    /// room ([`Self::streaming`]).
    pub fn poll_transmit_paced(
        &mut self,
        mut room: impl FnMut(ServerId) -> bool,
    ) -> Option<Transmit> {
        loop {
            let head = self
                .streams
                .front()
                .filter(|s| s.before == 0)
                .map(|s| s.target);
            let Some(target) = head else {
                let t = self.out.pop_front()?;
                for s in &mut self.streams {
                    s.before = s.before.saturating_sub(1);
                }
                return Some(t);
            };
            if !self.head_still_frozen() {
                // Thawed, moved out or released: the rest would not be one consistent
                // state. Given up before asking for room: a link that never drains (its
                // peer gone) must not hold a dead stream, and what queues behind it, for
                // ever.
                self.streams.pop_front();
                continue;
            }
            if room(target)
                && let Some(t) = self.next_chunk()
            {
                return Some(t);
            }
            // Everything queued is behind the waiting stream: control-lane messages pass.
            let i = self
                .out
                .iter()
                .position(|t| t.msg.lane() == Lane::Control)?;
            let t = self.out.remove(i)?;
            for s in &mut self.streams {
                if i < s.before {
                    s.before -= 1;
                }
            }
            return Some(t);
        }
    }

    /// Whether `service` is live here and frozen: a transfer of it can be streamed.
    pub(super) fn can_stream(&self, service: ServiceId) -> bool {
        self.live
            .get(&service)
            .is_some_and(|l| matches!(l.state, Source::Frozen(_)) && l.inst.svc().is_some())
    }

    /// Starts streaming the state of `service` (frozen: [`Self::can_stream`]) to
    /// `target`; its chunks are read as they go out.
    pub(super) fn stream_out(
        &mut self,
        service: ServiceId,
        target: ServerId,
        transfer: u32,
        spec: ServiceSpec,
    ) {
        let Some(live) = self.live.get(&service) else {
            return;
        };
        let Some(svc) = live.inst.svc() else {
            return;
        };
        let chunk = self.cfg.transfer_chunk as u64;
        let mut stream = Stream::new(service, &live.inst, svc, target, transfer, spec, chunk);
        stream.before = self.out.len();
        self.streams.push_back(stream);
    }

    /// Whether the head stream's instance is still the frozen snapshot it started from.
    fn head_still_frozen(&self) -> bool {
        let Some(s) = self.streams.front() else {
            return false;
        };
        self.live.get(&s.service).is_some_and(|l| {
            matches!(l.state, Source::Frozen(_))
                && l.inst.last_seq == s.seq
                && l.inst.digest == s.digest
                && l.inst.svc().is_some_and(|v| v.state_len() == s.total_len)
        })
    }

    /// The head stream's next chunk (its instance checked by [`Self::head_still_frozen`]);
    /// the stream goes when that was its last.
    fn next_chunk(&mut self) -> Option<Transmit> {
        let mut s = self.streams.pop_front()?;
        let svc = self.live.get(&s.service)?.inst.svc()?;
        let (t, last) = s.next_chunk(svc, self.cfg.id);
        if !last {
            self.streams.push_front(s);
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests;
