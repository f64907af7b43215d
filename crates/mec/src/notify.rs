//! Delivers notifications: POSTs each [`Delivery`] to its callback, off the control
//! node's loop. The queue is bounded and a full queue drops (and counts) rather than
//! waits, each POST has a deadline, and only so many run at once: a callback that hangs
//! or a consumer that cannot keep up never delays a relocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::state::Delivery;

/// Batches (the notifications of one event) waiting to go out.
const QUEUE: usize = 4096;
/// Notifications waiting for one callback.
const PER_CALLBACK: usize = 256;
/// Callbacks with a worker before idle ones are pruned.
const MAX_WORKERS: usize = 1024;
/// A worker with nothing to send for this long retires.
const IDLE: Duration = Duration::from_secs(30);
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

async fn run(mut rx: mpsc::Receiver<Vec<Delivery>>, stats: Arc<NotifyStats>) {
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
    // One worker per callback: its notifications go out in order, and a callback that
    // hangs holds up only its own queue.
    let mut workers: HashMap<String, mpsc::Sender<Delivery>> = HashMap::new();
    while let Some(batch) = rx.recv().await {
        for d in batch {
            dispatch(&mut workers, d, &client, &stats);
        }
    }
}

fn dispatch(
    workers: &mut HashMap<String, mpsc::Sender<Delivery>>,
    mut d: Delivery,
    client: &reqwest::Client,
    stats: &Arc<NotifyStats>,
) {
    if workers.len() > MAX_WORKERS {
        workers.retain(|_, w| !w.is_closed());
    }
    let url = d.url.clone();
    // Twice at most: a worker that retired while idle is replaced once.
    for _ in 0..2 {
        let w = workers.entry(url.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(PER_CALLBACK);
            tokio::spawn(worker(rx, client.clone(), stats.clone()));
            tx
        });
        match w.try_send(d) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(back)) => {
                workers.remove(&url);
                d = back;
            }
        }
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Delivery>,
    client: reqwest::Client,
    stats: Arc<NotifyStats>,
) {
    loop {
        // Idle or closed: retire; the dispatcher starts a new worker when needed.
        let Ok(Some(d)) = tokio::time::timeout(IDLE, rx.recv()).await else {
            return;
        };
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
