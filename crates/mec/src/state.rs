//! The API's state: registrations, subscriptions, and the translation of the control
//! node's events into ETSI notifications.
//!
//! Drive it with [`MecState::on_control`] for every control event and
//! [`MecState::on_resumed`] for every handover gap a UE completes; each returns the
//! notifications to POST. HTTP handlers change registrations and subscriptions through
//! the other methods. Nothing here does I/O or reads a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use edgeshift_proto::{CellId, Instant, ServerId, ServiceId, UeId};
use serde_json::Value;

use crate::etsi::ams::{self, AmsSubscription};
use crate::etsi::rnis::RniSubscription;
use crate::problem::Problem;
use crate::view::View;

mod events;
mod registry;
mod subscription;
mod validate;

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
pub enum ApiKind {
    /// MEC 021 at `/amsi/v1`.
    Ams,
    /// MEC 012 at `/rni/v2`.
    Rnis,
}

impl ApiKind {
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
    /// The UEs (addresses) each registered application instance serves, for filters.
    served: BTreeMap<String, BTreeSet<String>>,
    view: View,
}

fn ser(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| {
        // Our own types always serialize; say so if one ever does not.
        tracing::error!("cannot serialize a notification: {e}");
        Value::Null
    })
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
            served: BTreeMap::new(),
        }
    }

    /// The dashboard's view.
    #[must_use]
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Where the services are when the API starts (a control node restored from its
    /// database reports no deployments): `(service, ue, cell, host)`.
    pub fn seed(&mut self, at: Instant, services: &[(ServiceId, UeId, CellId, ServerId)]) {
        for &(service, ue, cell, server) in services {
            let ev = edgeshift_control::ControlEvent::ServiceDeployed {
                service,
                ue,
                cell,
                server,
            };
            // Nobody has subscribed yet: there is nothing to deliver.
            let _ = self.on_control(at, &ev);
        }
    }

    fn reindex(&mut self) {
        self.served.clear();
        for r in self.registrations.values() {
            if let Some(id) = &r.service_consumer_id.app_instance_id {
                self.served.entry(id.clone()).or_default().extend(
                    r.device_information
                        .iter()
                        .flatten()
                        .map(|d| d.associate_id.clone()),
                );
            }
        }
    }

    fn href(&self, api: ApiKind, id: u64) -> String {
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
}
