//! Delivers notifications: POSTs each [`Delivery`] to its callback, off the control
//! node's loop. One worker per callback URL sends its notifications in order; every queue
//! is bounded, and so is their sum, and a full queue drops (and counts) rather than waits;
//! each POST has a deadline. A callback that hangs or a consumer that cannot keep up never
//! delays a relocation, nor another subscriber's notifications.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::state::Delivery;

/// Batches (the notifications of one event) waiting to go out.
const QUEUE: usize = 4096;
/// Notifications waiting for one callback.
const PER_CALLBACK: usize = 256;
/// Notifications waiting in all callbacks' queues together.
const MAX_PENDING: usize = 65_536;
/// A callback's worker with nothing to send for this long retires.
const IDLE: Duration = Duration::from_secs(30);
/// How often idle workers are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// Deadline of one POST (connect, send, answer).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Delivery counters.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Answered with 2xx.
    pub delivered: AtomicU64,
    /// Refused, unreachable or timed out.
    pub failed: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// The sending side; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Notifier {
    tx: mpsc::Sender<Vec<Delivery>>,
    stats: Arc<NotifyStats>,
}

impl Notifier {
    /// Starts the delivery task (on the current tokio runtime).
    #[must_use]
    pub(crate) fn spawn() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(NotifyStats::default());
        tokio::spawn(run(rx, stats.clone()));
        Self { tx, stats }
    }

    /// Queues the notifications of one event; never waits.
    pub(crate) fn send(&self, batch: Vec<Delivery>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        if self.tx.try_send(batch).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The counters.
    #[must_use]
    pub(crate) fn stats(&self) -> &NotifyStats {
        &self.stats
    }
}

/// Makes ring the process's TLS crypto provider, unless one is set: the HTTP client sets
/// up TLS (for `https://` callbacks) with the process's provider, and the workspace's
/// `reqwest` comes without one of its own.
pub fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn run(mut rx: mpsc::Receiver<Vec<Delivery>>, stats: Arc<NotifyStats>) {
    use_ring_for_tls();
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!("notifications are off: no HTTP client: {e}");
            return;
        }
    };
    let mut d = Dispatcher {
        workers: HashMap::new(),
        client,
        stats,
        pending: Arc::new(AtomicUsize::new(0)),
        pruned: Instant::now(),
    };
    while let Some(batch) = rx.recv().await {
        for n in batch {
            d.dispatch(n);
        }
        d.prune();
    }
}

/// One callback's queue.
struct Worker {
    tx: mpsc::Sender<Delivery>,
    used: Instant,
}

struct Dispatcher {
    workers: HashMap<String, Worker>,
    client: reqwest::Client,
    stats: Arc<NotifyStats>,
    /// Notifications queued in all workers together.
    pending: Arc<AtomicUsize>,
    pruned: Instant,
}

impl Dispatcher {
    fn dispatch(&mut self, mut d: Delivery) {
        if self.pending.load(Ordering::Relaxed) >= MAX_PENDING {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let url = d.url.clone();
        // Twice at most: a worker that died is replaced once.
        for _ in 0..2 {
            let w = self.workers.entry(url.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(PER_CALLBACK);
                tokio::spawn(worker(
                    rx,
                    self.client.clone(),
                    self.stats.clone(),
                    self.pending.clone(),
                ));
                Worker {
                    tx,
                    used: Instant::now(),
                }
            });
            w.used = Instant::now();
            self.pending.fetch_add(1, Ordering::Relaxed);
            match w.tx.try_send(d) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.pending.fetch_sub(1, Ordering::Relaxed);
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    self.pending.fetch_sub(1, Ordering::Relaxed);
                    self.workers.remove(&url);
                    d = back;
                }
            }
        }
    }

    /// Retires the workers of callbacks idle for a while whose queues are empty: dropping
    /// the sender ends the worker once it has sent what it holds, so nothing is lost.
    fn prune(&mut self) {
        if self.pruned.elapsed() < PRUNE_EVERY {
            return;
        }
        self.pruned = Instant::now();
        self.workers
            .retain(|_, w| w.used.elapsed() < IDLE || w.tx.capacity() < w.tx.max_capacity());
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Delivery>,
    client: reqwest::Client,
    stats: Arc<NotifyStats>,
    pending: Arc<AtomicUsize>,
) {
    while let Some(d) = rx.recv().await {
        pending.fetch_sub(1, Ordering::Relaxed);
        let ok = match client.post(&d.url).json(&d.body).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                debug!(url = %d.url, status = %r.status(), "notification refused");
                false
            }
            Err(e) => {
                debug!(url = %d.url, "notification failed: {e}");
                false
            }
        };
        let c = if ok { &stats.delivered } else { &stats.failed };
        c.fetch_add(1, Ordering::Relaxed);
    }
}
