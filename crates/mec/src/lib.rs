//! The ETSI MEC APIs of the edgeshift control node, and its live dashboard, on one HTTP
//! server:
//!
//! - MEC 021 v2.2.1 Application Mobility Service at `/amsi/v1`: registrations,
//!   `MobilityProcedureSubscription` (notified `INTERHOST_MOVEOUT_TRIGGERED` when the
//!   control node sends the 1006, `…_COMPLETED` when the target is live, `…_FAILED`) and
//!   `AdjacentAppInfoSubscription` (the shadows), `queries/adjacent_app_instances`;
//! - MEC 012 v2.2.1 Radio Network Information at `/rni/v2`: `CellChangeSubscription`
//!   (`IN_PREPARATION` from the RAN's prediction with the candidates and an
//!   `x-edgeshift-prediction` extension, `IN_EXECUTION`, `COMPLETED`, `REJECTED`,
//!   `CANCELLED`) and `MeasRepUeSubscription`;
//! - `GET /openapi.json`, generated from this code;
//! - `GET /` the dashboard, fed by `GET /dashboard/state` and server-sent events.
//!
//! Drive it from the control daemon: [`Api::start`] binds and serves; feed it every
//! control event with [`Feed::control`] and every completed UE handover gap with
//! [`Feed::resumed`]. Neither call waits: notifications are queued and POSTed by their own
//! tasks. Every request but `/` and `/openapi.json` needs `Authorization: Bearer <token>`.

pub mod etsi;
mod http;
mod notify;
pub mod openapi;
mod problem;
pub mod state;
pub mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeshift_control::ControlEvent;
use edgeshift_proto::{CellId, Instant, ServerId, ServiceId, UeId};
use edgeshift_ue::HandoverGap;
use tokio::sync::watch;
use tracing::{info, warn};

pub use notify::{NotifyStats, use_ring_for_tls};
pub use problem::Problem;
pub use state::{CellInfo, Delivery, Limits, MecState, Topology};

use crate::http::Shared;
use crate::notify::Notifier;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum MecError {
    /// The address is taken or not ours.
    #[error("API at {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No token: the API refuses to run open.
    #[error("the API needs at least one bearer token")]
    NoToken,
}

/// How to run the API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Accepted bearer tokens.
    pub tokens: Vec<String>,
    /// The deployment.
    pub topology: Topology,
    /// Caps.
    pub limits: Limits,
    /// The API's address as clients reach it (`http://host:port`), for the links in its
    /// answers and notifications; default: the bound address.
    pub public_url: Option<String>,
}

/// The running API.
#[derive(Clone)]
pub struct Api {
    addr: SocketAddr,
    feed: Feed,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Feeds the API what happens; cheap to clone, never blocks.
#[derive(Clone)]
pub struct Feed {
    shared: Shared,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

impl Feed {
    /// One event of the control node, at `at`.
    pub fn control(&self, at: Instant, ev: &ControlEvent) {
        // Queued under the lock: a subscription's notifications leave in the order the
        // state produced them (its test notification first, its expiry last).
        let mut st = self.shared.lock();
        let ds = st.on_control(at, ev);
        self.shared.deliver(ds);
        drop(st);
        if !matches!(ev, ControlEvent::RadioMeasured(_)) {
            self.shared.touch();
        }
    }

    /// Where the services are when the API starts: `(service, ue, cell, host)` (a control
    /// node restored from its database reports no deployments).
    pub fn seed(&self, at: Instant, services: &[(ServiceId, UeId, CellId, ServerId)]) {
        self.shared.lock().seed(at, services);
        self.shared.touch();
    }

    /// A UE's service answered for the first time after a handover.
    pub fn resumed(&self, ue: UeId, gap: &HandoverGap) {
        self.shared.lock().on_resumed(ue, gap);
        self.shared.touch();
    }

    /// Notification counters.
    #[must_use]
    pub fn notify_stats(&self) -> &NotifyStats {
        self.shared.notifier.stats()
    }
}

impl Api {
    /// Binds `cfg.listen` and serves on the current tokio runtime; `clock` reads the
    /// common time reference.
    ///
    /// # Errors
    /// See [`MecError`].
    pub async fn start(
        cfg: ApiConfig,
        clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    ) -> Result<Self, MecError> {
        if cfg.tokens.iter().all(String::is_empty) {
            return Err(MecError::NoToken);
        }
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| MecError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| MecError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let now = clock();
        let base = match cfg.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if addr.ip().is_unspecified() => {
                warn!(%addr, "the API listens on every address; links will name 127.0.0.1 (set [control] api_url)");
                format!("http://127.0.0.1:{}", addr.port())
            }
            None => format!("http://{addr}"),
        };
        let state = MecState::new(base, cfg.topology, cfg.limits, now);
        let (changed, _) = watch::channel(0u64);
        let shared = Shared {
            state: Arc::new(Mutex::new(state)),
            notifier: Notifier::spawn(),
            changed: Arc::new(changed),
            tokens: cfg.tokens.into_iter().filter(|t| !t.is_empty()).collect(),
            clock,
            streams: Arc::new(tokio::sync::Semaphore::new(http::STREAMS)),
            view_cache: Arc::new(Mutex::new((u64::MAX, Arc::from("")))),
        };
        let app = http::router(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                warn!("API server stopped: {e}");
            }
        });
        let expiry = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = expiry.now();
                let mut st = expiry.lock();
                let ds = st.expire(now);
                expiry.deliver(ds);
                drop(st);
            }
        });
        info!(%addr, "MEC APIs and dashboard listening");
        Ok(Self {
            addr,
            feed: Feed { shared },
        })
    }

    /// Where it listens.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The handle to feed it.
    #[must_use]
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }
}
