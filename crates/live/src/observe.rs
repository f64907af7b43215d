//! Turns role events into journal records, metrics and logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeshift_control::{ControlEvent, ControlStats};
use edgeshift_edge::{EdgeEvent, EdgeServer};
use edgeshift_proto::{Instant, NodeId, ServiceId, Transmit, codec};
use edgeshift_ran::RanEvent;
use edgeshift_record::Observation;
use edgeshift_ue::UeEvent;
use tracing::{debug, info, warn};

use crate::journal::{Journal, Record};
use crate::metrics::{Metrics, Outcome};
use edgeshift_world::NodeEvent;

pub(crate) struct Observer {
    journal: Journal,
    metrics: Arc<Metrics>,
    control_stats: ControlStats,
    /// Last input each shadow applied, for the sync lag at activation.
    shadow_seq: BTreeMap<ServiceId, u64>,
    /// The MEC API, if this host feeds one.
    feed: Option<edgeshift_mec::Feed>,
}

impl Observer {
    pub(crate) fn new(journal: Journal, metrics: Arc<Metrics>) -> Self {
        Self {
            journal,
            metrics,
            control_stats: ControlStats::default(),
            shadow_seq: BTreeMap::new(),
            feed: None,
        }
    }

    pub(crate) fn set_feed(&mut self, feed: edgeshift_mec::Feed) {
        self.feed = Some(feed);
    }

    pub(crate) fn journal(&self) -> &Journal {
        &self.journal
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn sent(&self, now: Instant, t: &Transmit) {
        if t.msg.is_state_transfer() {
            let bytes = codec::frame_len(&t.msg) as u64;
            self.metrics.shadow_bytes.inc_by(bytes);
            self.observe(|| Some(Observation::StateSent { at: now, bytes }));
        }
    }

    pub(crate) fn edge_load(&self, server: &EdgeServer) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics
            .live_instances
            .set(gauge(server.live_services().count()));
        self.metrics
            .shadows
            .set(gauge(server.shadow_services().count()));
    }

    pub(crate) fn control_stats(&mut self, now: Instant, stats: ControlStats) {
        if stats != self.control_stats {
            self.control_stats = stats;
            self.observe(|| Some(Observation::ControlStats { at: now, stats }));
        }
    }

    /// Journals an observation, built only when the journal keeps it: servers observe
    /// every input they apply, and a daemon without a journal should not pay for copies.
    fn observe(&self, o: impl FnOnce() -> Option<Observation>) {
        if self.journal.is_on()
            && let Some(o) = o()
        {
            self.journal.record(Record::Obs(o));
        }
    }

    fn note(&self, now: Instant, node: NodeId, what: String) {
        info!(%node, "{what}");
        self.journal.record(Record::Event {
            at: now.as_nanos(),
            node: node.to_string(),
            what,
        });
    }

    pub(crate) fn event(&mut self, now: Instant, node: NodeId, ev: &NodeEvent) {
        match ev {
            NodeEvent::Edge(e) => self.edge(now, node, e),
            NodeEvent::Ran(e) => {
                self.observe(|| Observation::ran(now, node, e));
                match e {
                    RanEvent::TrafficDropped { ue, why } => {
                        debug!(%node, %ue, why, "traffic dropped");
                        return;
                    }
                    RanEvent::HandoverExecuted { .. } => {
                        self.metrics.handovers.inc();
                    }
                    RanEvent::Predicted { candidates, .. } if !candidates.is_empty() => {
                        self.metrics.predictions.inc();
                    }
                    RanEvent::PingPong { .. } => {
                        self.metrics.pingpongs.inc();
                    }
                    RanEvent::ProtocolViolation { .. } => {
                        self.metrics.rejected.inc();
                        warn!(%node, "{e:?}");
                    }
                    _ => {}
                }
                self.note(now, node, format!("{e:?}"));
            }
            NodeEvent::Control(e) => {
                if matches!(e, ControlEvent::ProtocolViolation { .. }) {
                    self.metrics.rejected.inc();
                }
                if let Some(f) = &self.feed {
                    f.control(now, e);
                }
                self.observe(|| Observation::control(now, e));
                // A report per UE and second: the API wants them, the journal does not.
                if !matches!(e, ControlEvent::RadioMeasured(_)) {
                    self.note(now, node, format!("{e:?}"));
                }
            }
            NodeEvent::Ue(e) => {
                if let NodeId::Ue(ue) = node {
                    self.observe(|| Observation::ue(now, ue, ServiceId(ue.0), e));
                    if let (Some(f), UeEvent::ServiceResumed { gap }) = (&self.feed, e) {
                        f.resumed(ue, gap);
                    }
                }
                self.ue(now, node, e);
            }
        }
    }

    fn ue(&self, now: Instant, node: NodeId, e: &UeEvent) {
        match e {
            UeEvent::Generated { .. } => {
                self.metrics.inputs.inc();
            }
            UeEvent::Answered { .. } => {
                self.metrics.answers.inc();
            }
            // Handed to the application; counted as answered already.
            UeEvent::AppAnswer { .. } => {}
            UeEvent::Unexpected { .. } => {
                self.metrics.rejected.inc();
                self.note(now, node, format!("{e:?}"));
            }
            _ => self.note(now, node, format!("{e:?}")),
        }
    }

    fn edge(&mut self, now: Instant, node: NodeId, e: &EdgeEvent) {
        let NodeId::Server(server) = node else {
            return;
        };
        self.observe(|| Some(Observation::edge(now, server, e.clone())));
        match e {
            EdgeEvent::Applied {
                service,
                seq,
                live: false,
            } => {
                self.metrics.shadow_inputs.inc();
                self.shadow_seq.insert(*service, *seq);
                return;
            }
            EdgeEvent::Applied { .. } | EdgeEvent::Answered { .. } => return,
            EdgeEvent::ShadowDiscarded {
                created_at,
                service,
            } => {
                let seconds = now.saturating_duration_since(*created_at).as_secs_f64();
                self.metrics.shadow_seconds.inc_by(seconds);
                self.shadow_seq.remove(service);
            }
            EdgeEvent::Activated {
                service,
                last_seq,
                shadow_created_at,
                ..
            } => {
                let seconds = now
                    .saturating_duration_since(*shadow_created_at)
                    .as_secs_f64();
                self.metrics.shadow_seconds.inc_by(seconds);
                let synced = self.shadow_seq.remove(service).unwrap_or(0);
                self.metrics
                    .sync_lag_inputs
                    .observe(last_seq.saturating_sub(synced) as f64);
                self.metrics
                    .relocations
                    .get_or_create(&Outcome {
                        outcome: "activated".into(),
                    })
                    .inc();
            }
            EdgeEvent::RelocationFailed { .. } => {
                self.metrics
                    .relocations
                    .get_or_create(&Outcome {
                        outcome: "failed".into(),
                    })
                    .inc();
            }
            EdgeEvent::ProtocolViolation { .. } => {
                self.metrics.rejected.inc();
                warn!(%node, "{e:?}");
            }
            EdgeEvent::ServiceError { .. } => {
                warn!(%node, "{e:?}");
            }
            _ => {}
        }
        self.note(now, node, format!("{e:?}"));
    }
}
