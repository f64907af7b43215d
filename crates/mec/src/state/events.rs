//! The control node's events turned into ETSI notifications for the matching
//! subscriptions.

use edgeshift_control::ControlEvent;
use edgeshift_proto::{CancelReason, CellId, Instant, ServerId, ServiceId, UeId};
use edgeshift_ue::HandoverGap;

use super::{ApiKind, Delivery, MecState, ser};
use crate::etsi::ams::{self, AmsSubscription};
use crate::etsi::rnis::{self, RniSubscription};
use crate::etsi::{Ecgi, LinkType, SelfLink, SubscriptionRef, TimeStamp, instance_id, ue_address};

impl MecState {
    /// Whether a filter's `appInstanceId` names `service` (its live instance) or a
    /// registered application instance that serves `ue`.
    fn instance_matches(
        &self,
        filter: Option<&String>,
        service: Option<ServiceId>,
        ue: UeId,
    ) -> bool {
        let Some(f) = filter else {
            return true;
        };
        if let Some(service) = service
            && let Some(host) = self.hosts.get(&service)
            && instance_id(service, *host) == *f
        {
            return true;
        }
        self.served
            .get(f)
            .is_some_and(|ues| ues.contains(&ue_address(ue).to_string()))
    }

    fn service_of(&self, ue: UeId) -> Option<ServiceId> {
        self.topo.ues.iter().find(|u| u.0 == ue).map(|u| u.1)
    }

    /// Takes one event of the control node; returns the notifications it causes.
    pub fn on_control(&mut self, at: Instant, ev: &ControlEvent) -> Vec<Delivery> {
        self.view.on_control(at, ev);
        match ev {
            ControlEvent::ServiceDeployed {
                service, server, ..
            } => {
                self.hosts.insert(*service, *server);
                Vec::new()
            }
            ControlEvent::HandoverPredicted {
                ue,
                source,
                candidates,
                timing,
            } => {
                let cells: Vec<CellId> = candidates.iter().map(|c| c.cell).collect();
                if cells.is_empty() {
                    return match self.announced.remove(ue) {
                        Some((src, was)) => {
                            self.cell_change(at, *ue, src, &was, rnis::CANCELLED, None)
                        }
                        None => Vec::new(),
                    };
                }
                // A new set, not a new order: refreshes re-rank the same candidates.
                let mut set = cells.clone();
                set.sort_unstable();
                if self.announced.get(ue).is_some_and(|(src, was)| {
                    *src == *source && {
                        let mut w = was.clone();
                        w.sort_unstable();
                        w == set
                    }
                }) {
                    return Vec::new();
                }
                self.announced.insert(*ue, (*source, cells.clone()));
                let ext = rnis::PredictionExt {
                    candidates: candidates
                        .iter()
                        .map(|c| rnis::PredictedCell {
                            ecgi: Ecgi::of(c.cell),
                            likelihood: c.likelihood,
                        })
                        .collect(),
                    expected_time: timing.map(|t| TimeStamp::of(t.resolve(at))),
                    uncertainty_ms: timing
                        .and_then(|t| t.uncertainty)
                        .map(|d| d.as_secs_f64() * 1e3),
                };
                self.cell_change(at, *ue, *source, &cells, rnis::IN_PREPARATION, Some(ext))
            }
            ControlEvent::HandoverExecuting {
                ue, source, target, ..
            } => {
                self.announced.remove(ue);
                self.cell_change(at, *ue, *source, &[*target], rnis::IN_EXECUTION, None)
            }
            ControlEvent::HandoverCompleted { ue, source, target } => {
                self.cell_change(at, *ue, *source, &[*target], rnis::COMPLETED, None)
            }
            ControlEvent::HandoverCancelled {
                ue,
                source,
                target,
                reason,
            } => {
                self.announced.remove(ue);
                let status = match reason {
                    CancelReason::Rejected => rnis::REJECTED,
                    CancelReason::Failed => rnis::CANCELLED,
                };
                self.cell_change(at, *ue, *source, &[*target], status, None)
            }
            ControlEvent::RadioMeasured(r) => self.meas_rep(at, r),
            ControlEvent::RelocationTriggered {
                service,
                ue,
                source,
                mode,
                at: exec,
                target,
            } => {
                let ext = ams::RelocationExt {
                    source_app_instance_id: instance_id(*service, *source),
                    mode: format!("{mode:?}").to_lowercase(),
                    execution_time: Some(TimeStamp::of(*exec)),
                };
                self.mobility(
                    at,
                    *service,
                    *ue,
                    *target,
                    ams::INTERHOST_MOVEOUT_TRIGGERED,
                    Some(ext),
                )
            }
            ControlEvent::RelocationCompleted {
                service, ue, to, ..
            } => {
                let mut out = self.mobility(
                    at,
                    *service,
                    *ue,
                    *to,
                    ams::INTERHOST_MOVEOUT_COMPLETED,
                    None,
                );
                self.hosts.insert(*service, *to);
                out.extend(self.adjacent_changed(at, *service, *ue));
                out
            }
            ControlEvent::RelocationFailed {
                service,
                ue,
                target,
                ..
            } => {
                // The control node forgets every shadow of the service with the failure.
                let mut out = self.mobility(
                    at,
                    *service,
                    *ue,
                    *target,
                    ams::INTERHOST_MOVEOUT_FAILED,
                    None,
                );
                out.extend(self.adjacent_changed(at, *service, *ue));
                out
            }
            ControlEvent::ShadowsRequested { service, .. }
            | ControlEvent::ShadowsDiscarded { service, .. } => {
                match self.ue_of_service(*service) {
                    Some(ue) => self.adjacent_changed(at, *service, ue),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// A UE completed a handover gap (its first answer after the handover).
    pub fn on_resumed(&mut self, ue: UeId, gap: &HandoverGap) {
        let service = self.service_of(ue);
        self.view.on_resumed(ue, service, gap);
    }

    fn ue_of_service(&self, service: ServiceId) -> Option<UeId> {
        self.topo.ues.iter().find(|u| u.1 == service).map(|u| u.0)
    }

    fn cell_change(
        &self,
        at: Instant,
        ue: UeId,
        source: CellId,
        targets: &[CellId],
        status: u8,
        ext: Option<rnis::PredictionExt>,
    ) -> Vec<Delivery> {
        let addr = ue_address(ue).to_string();
        let service = self.service_of(ue);
        let mut out = Vec::new();
        for (id, s) in &self.rni_subs {
            let RniSubscription::CellChange(s) = s else {
                continue;
            };
            let Some(url) = &s.callback_reference else {
                continue;
            };
            let f = &s.filter_criteria_assoc_ho;
            let ok = f
                .ho_status
                .as_ref()
                .is_none_or(|v| v.is_empty() || v.contains(&i64::from(status)))
                && f.associate_id
                    .as_ref()
                    .is_none_or(|v| v.is_empty() || v.iter().any(|a| a.value == addr))
                && f.ecgi.as_ref().is_none_or(|v| {
                    v.is_empty()
                        || v.iter()
                            .filter_map(Ecgi::cell)
                            .any(|c| c == source || targets.contains(&c))
                })
                && self.instance_matches(f.app_instance_id.as_ref(), service, ue);
            if !ok {
                continue;
            }
            let href = self.href(ApiKind::Rnis, *id);
            out.push(Delivery {
                url: url.clone(),
                body: ser(&rnis::CellChangeNotification {
                    notification_type: "CellChangeNotification".into(),
                    time_stamp: TimeStamp::of(at),
                    associate_id: vec![rnis::AssociateId {
                        type_: rnis::UE_IPV4_ADDRESS,
                        value: addr.clone(),
                    }],
                    src_ecgi: Ecgi::of(source),
                    trg_ecgi: targets.iter().map(|c| Ecgi::of(*c)).collect(),
                    ho_status: status,
                    links: vec![SelfLink {
                        self_: LinkType { href: href.clone() },
                    }],
                    subscription: vec![LinkType { href }],
                    prediction: ext.clone(),
                }),
            });
        }
        out
    }

    fn meas_rep(&self, at: Instant, r: &edgeshift_proto::RadioReport) -> Vec<Delivery> {
        let addr = ue_address(r.ue).to_string();
        let service = self.service_of(r.ue);
        let all = || std::iter::once(r.serving_dbm).chain(r.neighbours.iter().map(|n| n.1));
        let mut out = Vec::new();
        for (id, s) in &self.rni_subs {
            let RniSubscription::MeasRepUe(s) = s else {
                continue;
            };
            let Some(url) = &s.callback_reference else {
                continue;
            };
            let f = &s.filter_criteria_assoc_tri;
            let trigger = i64::from(rnis::PERIODICAL_REPORT_STRONGEST_CELLS);
            let ok = f
                .trigger
                .as_ref()
                .is_none_or(|v| v.is_empty() || v.contains(&trigger))
                && f.associate_id
                    .as_ref()
                    .is_none_or(|v| v.is_empty() || v.iter().any(|a| a.value == addr))
                && f.ecgi.as_ref().is_none_or(|v| {
                    v.is_empty() || v.iter().filter_map(Ecgi::cell).any(|c| c == r.cell)
                })
                && self.instance_matches(f.app_instance_id.as_ref(), service, r.ue);
            if !ok {
                continue;
            }
            let href = self.href(ApiKind::Rnis, *id);
            out.push(Delivery {
                url: url.clone(),
                body: ser(&rnis::MeasRepUeNotification {
                    notification_type: "MeasRepUeNotification".into(),
                    time_stamp: TimeStamp::of(at),
                    ecgi: Ecgi::of(r.cell),
                    associate_id: vec![rnis::AssociateId {
                        type_: rnis::UE_IPV4_ADDRESS,
                        value: addr.clone(),
                    }],
                    rsrp: rnis::rsrp_index(r.serving_dbm),
                    rsrq: rnis::rsrq_index(rnis::rsrq_db(r.serving_dbm, all())),
                    trigger: rnis::PERIODICAL_REPORT_STRONGEST_CELLS,
                    eutran_neighbour_cell_meas_info: r
                        .neighbours
                        .iter()
                        .map(|&(c, dbm)| rnis::EutranNeighbourCellMeasInfo {
                            ecgi: Ecgi::of(c),
                            rsrp: rnis::rsrp_index(dbm),
                            rsrq: rnis::rsrq_index(rnis::rsrq_db(dbm, all())),
                        })
                        .collect(),
                    links: vec![SelfLink {
                        self_: LinkType { href: href.clone() },
                    }],
                    subscription: vec![LinkType { href }],
                }),
            });
        }
        out
    }

    fn mobility(
        &self,
        at: Instant,
        service: ServiceId,
        ue: UeId,
        target: ServerId,
        status: u8,
        ext: Option<ams::RelocationExt>,
    ) -> Vec<Delivery> {
        let addr = ue_address(ue).to_string();
        let mut out = Vec::new();
        for (id, s) in &self.ams_subs {
            let AmsSubscription::MobilityProcedure(s) = s else {
                continue;
            };
            let Some(url) = &s.callback_reference else {
                continue;
            };
            let f = &s.filter_criteria;
            let ok = f
                .mobility_status
                .as_ref()
                .is_none_or(|v| v.is_empty() || v.contains(&i64::from(status)))
                && f.associate_id
                    .as_ref()
                    .is_none_or(|v| v.is_empty() || v.contains(&addr))
                && self.instance_matches(f.app_instance_id.as_ref(), Some(service), ue);
            if !ok {
                continue;
            }
            out.push(Delivery {
                url: url.clone(),
                body: ser(&ams::MobilityProcedureNotification {
                    notification_type: "MobilityProcedureNotification".into(),
                    time_stamp: TimeStamp::of(at),
                    associate_id: vec![addr.clone()],
                    mobility_status: status,
                    target_app_info: Some(ams::TargetAppInfo {
                        app_instance_id: instance_id(service, target),
                        comm_interface: self.address(target),
                    }),
                    links: SubscriptionRef {
                        subscription: LinkType {
                            href: self.href(ApiKind::Ams, *id),
                        },
                    },
                    relocation: ext.clone(),
                }),
            });
        }
        out
    }

    fn adjacent_changed(&self, at: Instant, service: ServiceId, ue: UeId) -> Vec<Delivery> {
        let mut out = Vec::new();
        let info: Vec<ams::AdjacentAppInfo> = self
            .view
            .shadows_of(service)
            .into_iter()
            .map(|server| ams::AdjacentAppInfo {
                app_instance_id: instance_id(service, server),
                comm_interface: self.address(server).into_iter().collect(),
            })
            .collect();
        for (id, s) in &self.ams_subs {
            let AmsSubscription::AdjacentAppInfo(s) = s else {
                continue;
            };
            let Some(url) = &s.callback_reference else {
                continue;
            };
            if !self.instance_matches(
                s.filter_criteria.app_instance_id.as_ref(),
                Some(service),
                ue,
            ) {
                continue;
            }
            out.push(Delivery {
                url: url.clone(),
                body: ser(&ams::AdjacentAppInfoNotification {
                    notification_type: "AdjacentAppInfoNotification".into(),
                    time_stamp: TimeStamp::of(at),
                    adjacent_app_info: info.clone(),
                    links: SubscriptionRef {
                        subscription: LinkType {
                            href: self.href(ApiKind::Ams, *id),
                        },
                    },
                }),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use edgeshift_proto::Candidate;

    use super::*;
    use crate::state::{CellInfo, Limits, Topology};

    fn state() -> MecState {
        let topo = Topology {
            scenario: "t".into(),
            strategy: "shadow".into(),
            cells: (1..=3)
                .map(|i| CellInfo {
                    id: CellId(i),
                    x: 0.0,
                    y: 0.0,
                    server: ServerId(i),
                })
                .collect(),
            servers: (1..=3).map(|i| (ServerId(i), None)).collect(),
            ues: vec![(UeId(1), ServiceId(1)), (UeId(2), ServiceId(2))],
        };
        MecState::new("http://x".into(), topo, Limits::default(), Instant(0))
    }

    fn cell_sub(s: &mut MecState, filter: serde_json::Value) -> RniSubscription {
        let sub: RniSubscription = serde_json::from_value(serde_json::json!({
            "subscriptionType": "CellChangeSubscription",
            "callbackReference": "http://cb/x",
            "filterCriteriaAssocHo": filter,
        }))
        .expect("subscription");
        s.subscribe_rnis(Instant(0), sub).expect("subscribed").1
    }

    #[test]
    fn absent_status_filters_take_the_etsi_defaults_and_say_so() {
        let mut s = state();
        let RniSubscription::CellChange(c) = cell_sub(&mut s, serde_json::json!({})) else {
            panic!("a cell change subscription");
        };
        assert_eq!(c.filter_criteria_assoc_ho.ho_status, Some(vec![3]));
        let sub: AmsSubscription = serde_json::from_value(serde_json::json!({
            "subscriptionType": "MobilityProcedureSubscription",
            "callbackReference": "http://cb/x",
            "filterCriteria": {},
        }))
        .expect("subscription");
        let (_, AmsSubscription::MobilityProcedure(m), _) =
            s.subscribe_ams(Instant(0), sub).expect("subscribed")
        else {
            panic!("a mobility procedure subscription");
        };
        assert_eq!(m.filter_criteria.mobility_status, Some(vec![1]));
    }

    fn predict(ue: u32, cells: &[u32]) -> ControlEvent {
        ControlEvent::HandoverPredicted {
            ue: UeId(ue),
            source: CellId(1),
            candidates: cells
                .iter()
                .map(|c| Candidate {
                    cell: CellId(*c),
                    likelihood: 0.5,
                })
                .collect(),
            timing: None,
        }
    }

    fn statuses(d: &[Delivery]) -> Vec<u64> {
        d.iter()
            .map(|d| d.body["hoStatus"].as_u64().expect("hoStatus"))
            .collect()
    }

    #[test]
    fn a_prediction_is_announced_once_per_candidate_set_and_cancelled_when_withdrawn() {
        let mut s = state();
        cell_sub(&mut s, serde_json::json!({"hoStatus": [1, 5]}));
        let t = Instant(1_000_000_000);
        assert_eq!(statuses(&s.on_control(t, &predict(1, &[3, 2]))), [1]);
        // The periodic refresh of the same prediction says nothing new.
        assert!(s.on_control(t, &predict(1, &[3, 2])).is_empty());
        let d = s.on_control(t, &predict(1, &[2]));
        assert_eq!(statuses(&d), [1]);
        assert_eq!(d[0].body["trgEcgi"][0]["cellId"], "0000002");
        let d = s.on_control(t, &predict(1, &[]));
        assert_eq!(statuses(&d), [5], "withdrawn: cancelled");
        assert!(s.on_control(t, &predict(1, &[])).is_empty(), "only once");
    }

    #[test]
    fn filters_select_by_ue_cell_and_status() {
        let mut s = state();
        let all = [1, 2, 3, 4, 5];
        cell_sub(
            &mut s,
            serde_json::json!({"associateId": [{"type": 1, "value": "10.45.0.2"}], "hoStatus": all}),
        );
        cell_sub(
            &mut s,
            serde_json::json!({"ecgi": [{"plmn": {"mcc": "001", "mnc": "01"}, "cellId": "0000003"}],
                "hoStatus": all}),
        );
        // Without hoStatus: MEC 012's default, COMPLETED only.
        cell_sub(&mut s, serde_json::json!({}));
        let exec = |ue, target| ControlEvent::HandoverExecuting {
            ue: UeId(ue),
            source: CellId(1),
            target: CellId(target),
            at: Instant(0),
        };
        // UE 1 to cell 2: nobody (not UE 2, not cell 3, not status 3).
        assert!(s.on_control(Instant(0), &exec(1, 2)).is_empty());
        // UE 2 to cell 2: the first.
        assert_eq!(s.on_control(Instant(0), &exec(2, 2)).len(), 1);
        // UE 1 to cell 3: the second.
        assert_eq!(s.on_control(Instant(0), &exec(1, 3)).len(), 1);
        // Completed, UE 2 to 3: all three.
        let done = ControlEvent::HandoverCompleted {
            ue: UeId(2),
            source: CellId(1),
            target: CellId(3),
        };
        assert_eq!(s.on_control(Instant(0), &done).len(), 3);
    }

    #[test]
    fn the_prediction_extension_carries_likelihoods_and_the_expected_time() {
        let mut s = state();
        cell_sub(&mut s, serde_json::json!({"hoStatus": [1]}));
        let at = Instant(5_000_000_000);
        let ev = ControlEvent::HandoverPredicted {
            ue: UeId(1),
            source: CellId(1),
            candidates: vec![Candidate {
                cell: CellId(3),
                likelihood: 0.75,
            }],
            timing: Some(edgeshift_proto::Timing::at_within(
                Instant(6_500_000_000),
                Duration::from_millis(200),
            )),
        };
        let d = s.on_control(at, &ev);
        let ext = &d[0].body["x-edgeshift-prediction"];
        assert_eq!(ext["candidates"][0]["likelihood"], 0.75);
        assert_eq!(ext["expectedTime"]["seconds"], 6);
        assert_eq!(ext["expectedTime"]["nanoSeconds"], 500_000_000);
        assert_eq!(ext["uncertaintyMs"], 200.0);
        assert_eq!(d[0].body["timeStamp"]["seconds"], 5);
    }
}
