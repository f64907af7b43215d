//! The API's state: registrations, subscriptions, and the translation of the control
//! node's events into ETSI notifications.
//!
//! Drive it with [`MecState::on_control`] for every control event and
//! [`MecState::on_resumed`] for every handover gap a UE completes; each returns the
//! notifications to POST. HTTP handlers change registrations and subscriptions through
//! the other methods. Nothing here does I/O or reads a clock.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use edgeshift_control::ControlEvent;
use edgeshift_proto::{CancelReason, CellId, Instant, ServerId, ServiceId, UeId};
use edgeshift_ue::HandoverGap;
use serde_json::Value;

use crate::etsi::ams::{self, AmsSubscription};
use crate::etsi::rnis::{self, RniSubscription};
use crate::etsi::{
    Ecgi, LinkType, SelfLink, SubscriptionLink, SubscriptionLinkList, SubscriptionLinks,
    SubscriptionRef, TimeStamp, instance_id, ue_address,
};
use crate::problem::Problem;
use crate::view::View;

/// A cell of the deployment.
#[derive(Clone, Debug)]
pub struct CellInfo {
    /// The cell.
    pub id: CellId,
    /// Position (m).
    pub x: f64,
    /// Position (m).
    pub y: f64,
    /// The ME server serving it.
    pub server: ServerId,
}

/// What the API knows of the deployment before anything happens.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Scenario name.
    pub scenario: String,
    /// Relocation strategy.
    pub strategy: String,
    /// The cells.
    pub cells: Vec<CellInfo>,
    /// The ME servers and where their daemons listen (the address an application
    /// instance there is reached at).
    pub servers: Vec<(ServerId, Option<SocketAddr>)>,
    /// The UEs and their services.
    pub ues: Vec<(UeId, ServiceId)>,
}

/// Caps that keep memory bounded whatever clients do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Subscriptions per API (AMS, RNIS).
    pub subscriptions: usize,
    /// Registrations.
    pub registrations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            subscriptions: 10_000,
            registrations: 10_000,
        }
    }
}

/// A notification to POST.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The callback.
    pub url: String,
    /// The JSON body.
    pub body: Value,
}

/// Which API a subscription belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// MEC 021 at `/amsi/v1`.
    Ams,
    /// MEC 012 at `/rni/v2`.
    Rnis,
}

impl Api {
    fn root(self) -> &'static str {
        match self {
            Self::Ams => "/amsi/v1",
            Self::Rnis => "/rni/v2",
        }
    }
}

/// Registrations, subscriptions and the view of the deployment.
#[derive(Debug)]
pub struct MecState {
    base: String,
    topo: Topology,
    limits: Limits,
    next_id: u64,
    registrations: BTreeMap<u64, ams::RegistrationInfo>,
    ams_subs: BTreeMap<u64, AmsSubscription>,
    rni_subs: BTreeMap<u64, RniSubscription>,
    /// Candidates last announced `IN_PREPARATION` per UE, to send it once per change and
    /// `CANCELLED` when the prediction is withdrawn.
    announced: BTreeMap<UeId, (CellId, Vec<CellId>)>,
    /// Live host of each service.
    hosts: BTreeMap<ServiceId, ServerId>,
    view: View,
}

fn ser(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn server_name(s: ServerId) -> String {
    format!("me{}", s.0)
}

impl MecState {
    /// State for an API reachable at `base` (`http://host:port`).
    #[must_use]
    pub fn new(base: String, topo: Topology, limits: Limits, now: Instant) -> Self {
        Self {
            view: View::new(&topo, now),
            base,
            topo,
            limits,
            next_id: 1,
            registrations: BTreeMap::new(),
            ams_subs: BTreeMap::new(),
            rni_subs: BTreeMap::new(),
            announced: BTreeMap::new(),
            hosts: BTreeMap::new(),
        }
    }

    /// The dashboard's view.
    #[must_use]
    pub fn view(&self) -> &View {
        &self.view
    }

    fn href(&self, api: Api, id: u64) -> String {
        format!("{}{}/subscriptions/{id}", self.base, api.root())
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn address(&self, server: ServerId) -> Option<ams::CommunicationInterface> {
        let addr = self.topo.servers.iter().find(|s| s.0 == server)?.1?;
        Some(ams::CommunicationInterface {
            ip_addresses: Some(vec![ams::IpAddress {
                host: addr.ip().to_string(),
                port: addr.port(),
            }]),
        })
    }

    // ---- registrations (MEC 021 app_mobility_services) ----

    /// Registers an application.
    ///
    /// # Errors
    /// 429 when full, 422 when a field is out of range.
    pub fn register(
        &mut self,
        mut r: ams::RegistrationInfo,
    ) -> Result<ams::RegistrationInfo, Problem> {
        if self.registrations.len() >= self.limits.registrations {
            return Err(Problem::too_many(format!(
                "at most {} registrations",
                self.limits.registrations
            )));
        }
        check_registration(&r)?;
        let id = self.take_id();
        r.app_mobility_service_id = Some(id.to_string());
        self.registrations.insert(id, r.clone());
        Ok(r)
    }

    /// Every registration.
    #[must_use]
    pub fn registrations(&self) -> Vec<ams::RegistrationInfo> {
        self.registrations.values().cloned().collect()
    }

    /// One registration.
    #[must_use]
    pub fn registration(&self, id: &str) -> Option<ams::RegistrationInfo> {
        self.registrations.get(&id.parse().ok()?).cloned()
    }

    /// Replaces a registration.
    ///
    /// # Errors
    /// 404 unknown, 422 bad fields or a changed id.
    pub fn update_registration(
        &mut self,
        id: &str,
        mut r: ams::RegistrationInfo,
    ) -> Result<ams::RegistrationInfo, Problem> {
        let key = parse_id(id)?;
        if !self.registrations.contains_key(&key) {
            return Err(Problem::not_found(format!("no registration {id}")));
        }
        if r.app_mobility_service_id
            .as_deref()
            .is_some_and(|x| x != id)
        {
            return Err(Problem::unprocessable(
                "appMobilityServiceId does not match the resource".into(),
            ));
        }
        check_registration(&r)?;
        r.app_mobility_service_id = Some(id.to_owned());
        self.registrations.insert(key, r.clone());
        Ok(r)
    }

    /// Removes a registration.
    ///
    /// # Errors
    /// 404 unknown.
    pub fn deregister(&mut self, id: &str) -> Result<(), Problem> {
        let key = parse_id(id)?;
        self.registrations
            .remove(&key)
            .map(|_| ())
            .ok_or_else(|| Problem::not_found(format!("no registration {id}")))
    }

    // ---- subscriptions ----

    fn sub_count(&self, api: Api) -> usize {
        match api {
            Api::Ams => self.ams_subs.len(),
            Api::Rnis => self.rni_subs.len(),
        }
    }

    /// Creates an AMS subscription; returns it with its `_links` and the test
    /// notification, if asked for.
    ///
    /// # Errors
    /// 422 bad fields, 429 full.
    pub fn subscribe_ams(
        &mut self,
        now: Instant,
        mut s: AmsSubscription,
    ) -> Result<(u64, AmsSubscription, Option<Delivery>), Problem> {
        if self.sub_count(Api::Ams) >= self.limits.subscriptions {
            return Err(Problem::too_many(format!(
                "at most {} subscriptions",
                self.limits.subscriptions
            )));
        }
        check_ams(now, &s)?;
        let id = self.take_id();
        let href = self.href(Api::Ams, id);
        set_ams_link(&mut s, &href);
        self.ams_subs.insert(id, s.clone());
        let test = ams_common(&s).1.then(|| Delivery {
            url: ams_common(&s).0.to_owned(),
            body: ser(&ams::TestNotification {
                notification_type: "TestNotification".into(),
                links: SubscriptionRef {
                    subscription: LinkType { href },
                },
            }),
        });
        Ok((id, s, test))
    }

    /// Creates an RNIS subscription.
    ///
    /// # Errors
    /// 422 bad fields, 429 full.
    pub fn subscribe_rnis(
        &mut self,
        now: Instant,
        mut s: RniSubscription,
    ) -> Result<(u64, RniSubscription, Option<Delivery>), Problem> {
        if self.sub_count(Api::Rnis) >= self.limits.subscriptions {
            return Err(Problem::too_many(format!(
                "at most {} subscriptions",
                self.limits.subscriptions
            )));
        }
        check_rnis(now, &s)?;
        let id = self.take_id();
        let href = self.href(Api::Rnis, id);
        set_rni_link(&mut s, &href);
        self.rni_subs.insert(id, s.clone());
        let (url, test) = rni_common(&s);
        let test = test.then(|| Delivery {
            url: url.to_owned(),
            body: ser(&rnis::RniTestNotification {
                notification_type: "TestNotification".into(),
                links: SubscriptionRef {
                    subscription: LinkType { href },
                },
            }),
        });
        Ok((id, s, test))
    }

    /// The AMS subscriptions, optionally of one type.
    #[must_use]
    pub fn ams_list(&self, kind: Option<&str>) -> SubscriptionLinkList {
        let subs = self
            .ams_subs
            .iter()
            .map(|(id, s)| (self.href(Api::Ams, *id), ams_type(s)))
            .filter(|(_, t)| kind.is_none_or(|k| k == *t))
            .map(|(href, t)| SubscriptionLink {
                href,
                subscription_type: t.to_owned(),
            })
            .collect();
        self.link_list(Api::Ams, subs)
    }

    /// The RNIS subscriptions, optionally of one type.
    #[must_use]
    pub fn rni_list(&self, kind: Option<&str>) -> SubscriptionLinkList {
        let subs = self
            .rni_subs
            .iter()
            .map(|(id, s)| (self.href(Api::Rnis, *id), rni_type(s)))
            .filter(|(_, t)| kind.is_none_or(|k| k == *t))
            .map(|(href, t)| SubscriptionLink {
                href,
                subscription_type: t.to_owned(),
            })
            .collect();
        self.link_list(Api::Rnis, subs)
    }

    fn link_list(&self, api: Api, subscription: Vec<SubscriptionLink>) -> SubscriptionLinkList {
        SubscriptionLinkList {
            links: SubscriptionLinks {
                self_: LinkType {
                    href: format!("{}{}/subscriptions", self.base, api.root()),
                },
                subscription,
            },
        }
    }

    /// One AMS subscription.
    #[must_use]
    pub fn ams_get(&self, id: &str) -> Option<AmsSubscription> {
        self.ams_subs.get(&id.parse().ok()?).cloned()
    }

    /// One RNIS subscription.
    #[must_use]
    pub fn rni_get(&self, id: &str) -> Option<RniSubscription> {
        self.rni_subs.get(&id.parse().ok()?).cloned()
    }

    /// Replaces an AMS subscription (same type only).
    ///
    /// # Errors
    /// 404 unknown, 422 bad fields or another type.
    pub fn ams_put(
        &mut self,
        now: Instant,
        id: &str,
        mut s: AmsSubscription,
    ) -> Result<AmsSubscription, Problem> {
        let key = parse_id(id)?;
        let Some(old) = self.ams_subs.get(&key) else {
            return Err(Problem::not_found(format!("no subscription {id}")));
        };
        if ams_type(old) != ams_type(&s) {
            return Err(Problem::unprocessable(
                "a subscription keeps its subscriptionType".into(),
            ));
        }
        check_ams(now, &s)?;
        let href = self.href(Api::Ams, key);
        set_ams_link(&mut s, &href);
        self.ams_subs.insert(key, s.clone());
        Ok(s)
    }

    /// Replaces an RNIS subscription (same type only).
    ///
    /// # Errors
    /// 404 unknown, 422 bad fields or another type.
    pub fn rni_put(
        &mut self,
        now: Instant,
        id: &str,
        mut s: RniSubscription,
    ) -> Result<RniSubscription, Problem> {
        let key = parse_id(id)?;
        let Some(old) = self.rni_subs.get(&key) else {
            return Err(Problem::not_found(format!("no subscription {id}")));
        };
        if rni_type(old) != rni_type(&s) {
            return Err(Problem::unprocessable(
                "a subscription keeps its subscriptionType".into(),
            ));
        }
        check_rnis(now, &s)?;
        let href = self.href(Api::Rnis, key);
        set_rni_link(&mut s, &href);
        self.rni_subs.insert(key, s.clone());
        Ok(s)
    }

    /// Cancels a subscription.
    ///
    /// # Errors
    /// 404 unknown.
    pub fn unsubscribe(&mut self, api: Api, id: &str) -> Result<(), Problem> {
        let key = parse_id(id)?;
        let gone = match api {
            Api::Ams => self.ams_subs.remove(&key).is_some(),
            Api::Rnis => self.rni_subs.remove(&key).is_some(),
        };
        if gone {
            Ok(())
        } else {
            Err(Problem::not_found(format!("no subscription {id}")))
        }
    }

    /// Removes the subscriptions whose `expiryDeadline` passed; returns their expiry
    /// notifications.
    pub fn expire(&mut self, now: Instant) -> Vec<Delivery> {
        let now_ts = TimeStamp::of(now);
        let mut out = Vec::new();
        let due = |d: Option<TimeStamp>| d.is_some_and(|d| d.instant() <= now);
        let ams: Vec<u64> = self
            .ams_subs
            .iter()
            .filter(|(_, s)| due(ams_deadline(s)))
            .map(|(id, _)| *id)
            .collect();
        for id in ams {
            if let Some(s) = self.ams_subs.remove(&id) {
                let deadline = ams_deadline(&s).unwrap_or(now_ts);
                out.push(Delivery {
                    url: ams_common(&s).0.to_owned(),
                    body: ser(&ams::ExpiryNotification {
                        notification_type: "ExpiryNotification".into(),
                        time_stamp: now_ts,
                        links: SubscriptionRef {
                            subscription: LinkType {
                                href: self.href(Api::Ams, id),
                            },
                        },
                        expiry_deadline: deadline,
                    }),
                });
            }
        }
        let rni: Vec<u64> = self
            .rni_subs
            .iter()
            .filter(|(_, s)| due(rni_deadline(s)))
            .map(|(id, _)| *id)
            .collect();
        for id in rni {
            if let Some(s) = self.rni_subs.remove(&id) {
                let deadline = rni_deadline(&s).unwrap_or(now_ts);
                out.push(Delivery {
                    url: rni_common(&s).0.to_owned(),
                    body: ser(&ams::ExpiryNotification {
                        notification_type: "ExpiryNotification".into(),
                        time_stamp: now_ts,
                        links: SubscriptionRef {
                            subscription: LinkType {
                                href: self.href(Api::Rnis, id),
                            },
                        },
                        expiry_deadline: deadline,
                    }),
                });
            }
        }
        out
    }

    // ---- adjacent instances ----

    /// The adjacent instances (shadows) of every service, or of the service whose
    /// instance is `of`.
    #[must_use]
    pub fn adjacent(&self, of: Option<&str>) -> Vec<ams::AdjacentAppInstanceInfo> {
        let mut out = Vec::new();
        for (service, host) in &self.hosts {
            let live = instance_id(*service, *host);
            if of.is_some_and(|o| o != live) {
                continue;
            }
            for server in self.view.shadows_of(*service) {
                out.push(ams::AdjacentAppInstanceInfo {
                    app_instance_id: instance_id(*service, server),
                    app_d_id: format!("edgeshift.svc{}", service.0),
                    app_instance_comm_link: vec![
                        self.address(server)
                            .unwrap_or(ams::CommunicationInterface { ip_addresses: None }),
                    ],
                    mec_host_information: Some(ams::MecHostInformation {
                        host_name: Some(server_name(server)),
                        host_id: ams::HostId {
                            server_id: server.0,
                        },
                    }),
                    registered_instance_id: Some(live.clone()),
                });
            }
        }
        out
    }

    // ---- events ----

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
        let addr = ue_address(ue).to_string();
        self.registrations.values().any(|r| {
            r.service_consumer_id.app_instance_id.as_ref() == Some(f)
                && r.device_information
                    .iter()
                    .flatten()
                    .any(|d| d.associate_id == addr)
        })
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
                if self.announced.get(ue) == Some(&(*source, cells.clone())) {
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
            } => self.mobility(
                at,
                *service,
                *ue,
                *target,
                ams::INTERHOST_MOVEOUT_FAILED,
                None,
            ),
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
            let href = self.href(Api::Rnis, *id);
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
            let href = self.href(Api::Rnis, *id);
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
                            href: self.href(Api::Ams, *id),
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
                            href: self.href(Api::Ams, *id),
                        },
                    },
                }),
            });
        }
        out
    }
}

fn parse_id(id: &str) -> Result<u64, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no resource {id:?}")))
}

fn ams_type(s: &AmsSubscription) -> &'static str {
    match s {
        AmsSubscription::MobilityProcedure(_) => ams::MOBILITY_PROCEDURE,
        AmsSubscription::AdjacentAppInfo(_) => ams::ADJACENT_APP_INFO,
    }
}

fn rni_type(s: &RniSubscription) -> &'static str {
    match s {
        RniSubscription::CellChange(_) => rnis::CELL_CHANGE,
        RniSubscription::MeasRepUe(_) => rnis::MEAS_REP_UE,
    }
}

/// Callback URL and whether a test notification was asked for.
fn ams_common(s: &AmsSubscription) -> (&str, bool) {
    let (url, test) = match s {
        AmsSubscription::MobilityProcedure(s) => {
            (&s.callback_reference, s.request_test_notification)
        }
        AmsSubscription::AdjacentAppInfo(s) => (&s.callback_reference, s.request_test_notification),
    };
    (url.as_deref().unwrap_or_default(), test.unwrap_or(false))
}

fn rni_common(s: &RniSubscription) -> (&str, bool) {
    let (url, test) = match s {
        RniSubscription::CellChange(s) => (&s.callback_reference, s.request_test_notification),
        RniSubscription::MeasRepUe(s) => (&s.callback_reference, s.request_test_notification),
    };
    (url.as_deref().unwrap_or_default(), test.unwrap_or(false))
}

fn ams_deadline(s: &AmsSubscription) -> Option<TimeStamp> {
    match s {
        AmsSubscription::MobilityProcedure(s) => s.expiry_deadline,
        AmsSubscription::AdjacentAppInfo(s) => s.expiry_deadline,
    }
}

fn rni_deadline(s: &RniSubscription) -> Option<TimeStamp> {
    match s {
        RniSubscription::CellChange(s) => s.expiry_deadline,
        RniSubscription::MeasRepUe(s) => s.expiry_deadline,
    }
}

fn set_ams_link(s: &mut AmsSubscription, href: &str) {
    let link = Some(SelfLink {
        self_: LinkType { href: href.into() },
    });
    match s {
        AmsSubscription::MobilityProcedure(s) => s.links = link,
        AmsSubscription::AdjacentAppInfo(s) => s.links = link,
    }
}

fn set_rni_link(s: &mut RniSubscription, href: &str) {
    let link = Some(SelfLink {
        self_: LinkType { href: href.into() },
    });
    match s {
        RniSubscription::CellChange(s) => s.links = link,
        RniSubscription::MeasRepUe(s) => s.links = link,
    }
}

/// A callback this server can POST to: an absolute `http` URL with a host.
fn check_callback(url: Option<&String>) -> Result<(), Problem> {
    let Some(url) = url else {
        return Err(Problem::unprocessable(
            "callbackReference is required: this server delivers notifications by HTTP POST \
             only (no websockets)"
                .into(),
        ));
    };
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Problem::unprocessable(format!("callbackReference {url:?}: {e}")))?;
    if parsed.scheme() != "http" || parsed.host_str().is_none_or(str::is_empty) {
        return Err(Problem::unprocessable(format!(
            "callbackReference {url:?}: only http://host[:port]/path callbacks are supported"
        )));
    }
    Ok(())
}

fn check_deadline(now: Instant, d: Option<TimeStamp>) -> Result<(), Problem> {
    match d {
        Some(d) if d.nano_seconds >= 1_000_000_000 => Err(Problem::unprocessable(
            "expiryDeadline.nanoSeconds must be below 10^9".into(),
        )),
        Some(d) if d.instant() <= now => Err(Problem::unprocessable(
            "expiryDeadline lies in the past".into(),
        )),
        _ => Ok(()),
    }
}

fn check_range(
    name: &str,
    v: Option<&Vec<i64>>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<(), Problem> {
    if let Some(bad) = v.into_iter().flatten().find(|x| !range.contains(x)) {
        return Err(Problem::unprocessable(format!(
            "{name} {bad} is not one of {}..={}",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

fn check_ams(now: Instant, s: &AmsSubscription) -> Result<(), Problem> {
    match s {
        AmsSubscription::MobilityProcedure(s) => {
            if s.subscription_type != ams::MOBILITY_PROCEDURE {
                return Err(Problem::unprocessable(format!(
                    "subscriptionType {:?} is not {}",
                    s.subscription_type,
                    ams::MOBILITY_PROCEDURE
                )));
            }
            check_range(
                "mobilityStatus",
                s.filter_criteria.mobility_status.as_ref(),
                1..=3,
            )?;
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
        AmsSubscription::AdjacentAppInfo(s) => {
            if s.subscription_type != ams::ADJACENT_APP_INFO {
                return Err(Problem::unprocessable(format!(
                    "subscriptionType {:?} is not {}",
                    s.subscription_type,
                    ams::ADJACENT_APP_INFO
                )));
            }
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
    }
}

fn check_rnis(now: Instant, s: &RniSubscription) -> Result<(), Problem> {
    match s {
        RniSubscription::CellChange(s) => {
            check_range(
                "hoStatus",
                s.filter_criteria_assoc_ho.ho_status.as_ref(),
                1..=5,
            )?;
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
        RniSubscription::MeasRepUe(s) => {
            check_callback(s.callback_reference.as_ref())?;
            check_deadline(now, s.expiry_deadline)
        }
    }
}

fn check_registration(r: &ams::RegistrationInfo) -> Result<(), Problem> {
    for d in r.device_information.iter().flatten() {
        if let Some(l) = &d.app_mobility_service_level
            && !(1..=3).contains(&l.app_mobility_service_level)
        {
            return Err(Problem::unprocessable(format!(
                "appMobilityServiceLevel {} is not 1, 2 or 3",
                l.app_mobility_service_level
            )));
        }
        if d.context_transfer_state.is_some_and(|c| c > 1) {
            return Err(Problem::unprocessable(
                "contextTransferState is 0 or 1".into(),
            ));
        }
    }
    Ok(())
}
