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

/// A transfer under way from a frozen instance.
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
                // Given up (see `next_chunk`) before asking for room: a link that never
                // drains (its peer gone) must not hold a dead stream, and what queues
                // behind it, for ever.
                self.streams.pop_front();
                continue;
            }
            if room(target) {
                match self.next_chunk() {
                    Some(t) => return Some(t),
                    None => continue, // It ended or was given up.
                }
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
        let inst = &live.inst;
        let stream = Stream {
            service,
            target,
            transfer,
            ue: inst.meta.ue,
            seq: inst.last_seq,
            digest: inst.digest,
            spec: Some(spec),
            total_len: svc.state_len(),
            chunk: self.cfg.transfer_chunk.max(1) as u64,
            next: 0,
            hasher: Xxh3::new(),
            answers: inst.owed_answers(),
            before: self.out.len(),
        };
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

    /// The head stream's next chunk; `None` (and the stream dropped) when it has ended,
    /// or when its instance is no longer the frozen snapshot it started from (thawed,
    /// moved out or released: the rest would not be one consistent state).
    fn next_chunk(&mut self) -> Option<Transmit> {
        if !self.head_still_frozen() {
            self.streams.pop_front();
            return None;
        }
        let mut s = self.streams.pop_front()?;
        let svc = self.live.get(&s.service)?.inst.svc()?;
        let offset = s.next;
        let len = s.chunk.min(s.total_len - offset);
        let mut data = vec![0; usize::try_from(len).unwrap_or(0)];
        svc.read_state(offset, &mut data);
        s.hasher.update(&data);
        s.next += len;
        // An empty state still goes as one (empty) chunk.
        let last = s.next >= s.total_len;
        let msg = ShadowTransfer {
            service: s.service,
            ue: s.ue,
            source: self.cfg.id,
            transfer: s.transfer,
            seq: s.seq,
            digest: s.digest,
            spec: s.spec.take(),
            total_len: s.total_len,
            offset,
            data,
            state_checksum: last.then(|| s.hasher.digest128()),
            answers: if last {
                std::mem::take(&mut s.answers)
            } else {
                Vec::new()
            },
        };
        let t = Transmit {
            to: s.target.into(),
            msg: msg.into(),
        };
        if !last {
            self.streams.push_front(s);
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests;
