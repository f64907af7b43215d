//! Application mode: the UE's inputs come from an application on the phone instead of
//! being generated, and each answer goes back to it exactly once, in input order.
//!
//! ```no_run
//! use edgeshift_proto::{CellId, Instant, Role, ServiceId, UeId};
//! use edgeshift_ue::{UeClient, UeConfig, UeEvent};
//!
//! let mut ue = UeClient::new(UeConfig::new(UeId(1), ServiceId(1), 0), Instant::ZERO)
//!     .with_app_inputs();
//! ue.handle_attach(Instant::ZERO, CellId(1));
//! let seq = ue.handle_app_input(Instant::ZERO, b"move left".to_vec());
//! // … messages and timeouts as usual; then, in order:
//! while let Some(e) = ue.poll_event() {
//!     if let UeEvent::AppAnswer { seq, answer } = e { /* to the application */ }
//! }
//! # let _ = seq;
//! ```

use std::collections::BTreeMap;

use edgeshift_proto::Instant;

use crate::{UeClient, UeEvent};

/// Answers not yet released: those that overtook an earlier input's answer.
#[derive(Debug, Default)]
pub(crate) struct AppAnswers {
    next: u64,
    early: BTreeMap<u64, Vec<u8>>,
}

impl UeClient {
    /// Switches to application mode (before any input): no inputs are generated; each
    /// [`UeClient::handle_app_input`] is one, and answers come back as
    /// [`UeEvent::AppAnswer`] in input order.
    #[must_use]
    pub fn with_app_inputs(mut self) -> Self {
        self.app = Some(AppAnswers {
            next: self.next_seq,
            early: BTreeMap::new(),
        });
        self
    }

    /// An input from the application: numbered, kept through handovers and relocations,
    /// retransmitted until answered, like a generated one. Returns its number. In
    /// generated mode it is one more input among the generated ones.
    pub fn handle_app_input(&mut self, now: Instant, payload: Vec<u8>) -> u64 {
        self.create_input(now, now, payload)
    }

    /// Inputs whose answers the application has not been given yet.
    #[must_use]
    pub fn app_pending(&self) -> u64 {
        self.app
            .as_ref()
            .map_or(0, |a| self.next_seq.saturating_sub(a.next))
    }

    /// The first answer to `seq` arrived: release it, and any that waited for it, in order.
    pub(crate) fn app_answer(&mut self, seq: u64, answer: Vec<u8>) {
        let Some(app) = self.app.as_mut() else {
            return;
        };
        if seq < app.next {
            return;
        }
        app.early.insert(seq, answer);
        while let Some(answer) = app.early.remove(&app.next) {
            self.events.push_back(UeEvent::AppAnswer {
                seq: app.next,
                answer,
            });
            app.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use edgeshift_proto::{CellId, Message, NodeId, Role, ServiceId, ServiceOutput, UeId};

    use crate::{UeClient, UeConfig, UeEvent};

    fn answer(ue: &mut UeClient, seq: u64, at_ms: u64) {
        let out = ServiceOutput {
            ue: UeId(1),
            service: ServiceId(1),
            via: CellId(1),
            seq,
            payload: vec![seq as u8],
        };
        ue.handle_message(
            Instant::from_millis(at_ms),
            NodeId::Cell(CellId(1)),
            Message::from(out),
        );
    }

    use edgeshift_proto::Instant;

    #[test]
    fn answers_go_back_once_and_in_order_and_nothing_is_generated() {
        let cfg = UeConfig::new(UeId(1), ServiceId(1), 0);
        let mut ue = UeClient::new(cfg, Instant::ZERO).with_app_inputs();
        ue.handle_attach(Instant::ZERO, CellId(1));
        // No generated input, however long we wait: only retransmission timers.
        assert_eq!(ue.poll_timeout(), None);
        ue.handle_timeout(Instant::from_millis(1000));
        assert_eq!(ue.sent(), 0);
        for i in 1..=3u8 {
            assert_eq!(
                ue.handle_app_input(Instant::from_millis(1000), vec![i]),
                u64::from(i)
            );
        }
        assert_eq!(ue.app_pending(), 3);
        let sent = std::iter::from_fn(|| ue.poll_transmit())
            .filter(|t| matches!(t.msg, Message::ServiceInput(_)))
            .count();
        assert_eq!(sent, 3);
        while ue.poll_event().is_some() {}
        // Answers 3 and 2 overtake 1; 2 comes twice.
        answer(&mut ue, 3, 1010);
        answer(&mut ue, 2, 1011);
        answer(&mut ue, 2, 1012);
        let early: Vec<UeEvent> = std::iter::from_fn(|| ue.poll_event())
            .filter(|e| matches!(e, UeEvent::AppAnswer { .. }))
            .collect();
        assert!(
            early.is_empty(),
            "nothing before input 1's answer: {early:?}"
        );
        answer(&mut ue, 1, 1013);
        let released: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| ue.poll_event())
            .filter_map(|e| match e {
                UeEvent::AppAnswer { seq, answer } => Some((seq, answer)),
                _ => None,
            })
            .collect();
        assert_eq!(released, [(1, vec![1]), (2, vec![2]), (3, vec![3])]);
        assert_eq!(ue.app_pending(), 0);
        // Unanswered inputs are retransmitted as generated ones are.
        ue.handle_app_input(Instant::from_millis(2000), vec![4]);
        while ue.poll_transmit().is_some() {}
        ue.handle_timeout(Instant::from_millis(2000) + Duration::from_millis(150));
        assert!(
            ue.poll_transmit()
                .is_some_and(|t| matches!(t.msg, Message::ServiceInput(_)))
        );
    }
}
