//! Prometheus metrics of one daemon, served at `GET /metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use edgeshift_net::NetStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::info;

/// Label of a relocation outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `activated` (counted by the target) or `failed` (counted by the source).
    pub outcome: String,
}

/// Every metric a daemon exports; roles it does not run stay at zero.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Relocations by outcome.
    pub relocations: Family<Outcome, Counter>,
    /// Service interruption beyond the radio gap per handover (ms), measured at the UE.
    pub added_ms: Histogram,
    /// Radio gap per handover (ms).
    pub radio_gap_ms: Histogram,
    /// State bytes sent to shadows and targets.
    pub shadow_bytes: Counter,
    /// Seconds shadows existed.
    pub shadow_seconds: Counter<f64, AtomicU64>,
    /// Shadows hosted now.
    pub shadows: Gauge,
    /// Live instances hosted now (the load).
    pub live_instances: Gauge,
    /// Inputs applied to shadows (the sync stream).
    pub shadow_inputs: Counter,
    /// Inputs a shadow still lacked when its relocation was triggered (sync lag at the
    /// moment it mattered).
    pub sync_lag_inputs: Histogram,
    /// Handovers executed (2003 sent).
    pub handovers: Counter,
    /// Handover predictions sent (1002 with candidates).
    pub predictions: Counter,
    /// Ping-pong handovers.
    pub pingpongs: Counter,
    /// UE inputs sent.
    pub inputs: Counter,
    /// UE inputs answered.
    pub answers: Counter,
    /// Frames received.
    pub frames_in: Counter,
    /// Frames sent.
    pub frames_out: Counter,
    /// Peers dropped for bad input.
    pub peer_errors: Counter,
    /// Messages a role dropped: a sender not allowed to send them, or a message that does
    /// not fit the protocol (`edgeshift_proto::may_send`).
    pub rejected: Counter,
    last_net: std::sync::Mutex<NetStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    #[must_use]
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("edgeshift");
        let ms_buckets = || Histogram::new(exponential_buckets(0.25, 2.0, 16));
        let m = Self {
            relocations: Family::default(),
            added_ms: ms_buckets(),
            radio_gap_ms: ms_buckets(),
            shadow_bytes: Counter::default(),
            shadow_seconds: Counter::default(),
            shadows: Gauge::default(),
            live_instances: Gauge::default(),
            shadow_inputs: Counter::default(),
            sync_lag_inputs: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            handovers: Counter::default(),
            predictions: Counter::default(),
            pingpongs: Counter::default(),
            inputs: Counter::default(),
            answers: Counter::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            peer_errors: Counter::default(),
            rejected: Counter::default(),
            last_net: std::sync::Mutex::new(NetStats::default()),
            registry: Registry::default(),
        };
        r.register(
            "relocations",
            "Relocations by outcome",
            m.relocations.clone(),
        );
        r.register(
            "added_interruption_ms",
            "Service gap beyond the radio gap per handover, at the UE (ms)",
            m.added_ms.clone(),
        );
        r.register(
            "radio_gap_ms",
            "Radio gap per handover (ms)",
            m.radio_gap_ms.clone(),
        );
        r.register(
            "shadow_bytes",
            "State bytes sent to shadows and targets",
            m.shadow_bytes.clone(),
        );
        r.register(
            "shadow_seconds",
            "Seconds shadows existed",
            m.shadow_seconds.clone(),
        );
        r.register("shadows", "Shadows hosted now", m.shadows.clone());
        r.register(
            "live_instances",
            "Live instances hosted now (load)",
            m.live_instances.clone(),
        );
        r.register(
            "shadow_inputs",
            "Inputs applied to shadows",
            m.shadow_inputs.clone(),
        );
        r.register(
            "sync_lag_inputs",
            "Inputs a shadow lacked when its relocation was triggered",
            m.sync_lag_inputs.clone(),
        );
        r.register("handovers", "Handovers executed", m.handovers.clone());
        r.register(
            "predictions",
            "Handover predictions sent",
            m.predictions.clone(),
        );
        r.register("pingpongs", "Ping-pong handovers", m.pingpongs.clone());
        r.register("inputs", "UE inputs sent", m.inputs.clone());
        r.register("answers", "UE inputs answered", m.answers.clone());
        r.register("frames_in", "Frames received", m.frames_in.clone());
        r.register("frames_out", "Frames sent", m.frames_out.clone());
        r.register(
            "peer_errors",
            "Peers dropped for bad input",
            m.peer_errors.clone(),
        );
        r.register(
            "rejected_messages",
            "Messages a role dropped (sender not allowed, or off the protocol)",
            m.rejected.clone(),
        );
        Self { registry: r, ..m }
    }

    /// Brings the transport counters up to date.
    pub fn observe_net(&self, now: NetStats) {
        let mut last = self
            .last_net
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.frames_in
            .inc_by(now.frames_in.saturating_sub(last.frames_in));
        self.frames_out
            .inc_by(now.frames_out.saturating_sub(last.frames_out));
        self.peer_errors
            .inc_by(now.peer_errors.saturating_sub(last.peer_errors));
        *last = now;
    }

    /// The text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` on `addr` until the process ends; returns the bound address.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.render(),
                )
                    .into_response()
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    info!(addr = %bound, "metrics at http://{bound}/metrics");
    Ok(bound)
}
