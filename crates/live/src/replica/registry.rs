//! The control registry in etcd, written only by the leader of the term it won.
//!
//! The snapshot lives at `<prefix>/registry`. Every write is one transaction that requires
//! the leader key still to be the one this leader created (its term) and the registry to
//! be at the revision this leader last wrote or read: a deposed leader, or two leaders
//! that both believe they lead, cannot write over each other.
//!
//! The host hands each new snapshot to an [`EtcdWriter`] without waiting; a task writes
//! them in order, the latest one when several queue up, and reports a lost term once.

use std::sync::Arc;

use edgeshift_control::ControlSnapshot;
use edgeshift_etcd::{Client, Compare, EtcdError, Op, Txn};
use tokio::sync::watch;
use tracing::{debug, error};

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The leader key or the registry changed under this leader: it is deposed.
    #[error("registry write refused: term {0} is over")]
    Deposed(i64),
    /// The stored snapshot is unreadable.
    #[error("registry in etcd unreadable: {0}")]
    Corrupt(#[from] edgeshift_control::SnapshotError),
}

/// The registry of one control group, as its leader of `term` sees it.
#[derive(Debug)]
pub struct EtcdRegistry {
    etcd: Arc<Client>,
    key: Vec<u8>,
    leader_key: Vec<u8>,
    term: i64,
    /// The registry's revision as this leader last saw it (0: absent).
    seen: i64,
}

impl EtcdRegistry {
    /// Reads the registry for the leader of `term` (whose key is `leader_key`).
    ///
    /// # Errors
    /// etcd unreachable, or an unreadable snapshot.
    pub async fn open(
        etcd: Arc<Client>,
        prefix: &str,
        leader_key: &[u8],
        term: i64,
    ) -> Result<(Self, Option<ControlSnapshot>), RegistryError> {
        let key = format!("{prefix}/registry").into_bytes();
        let kv = etcd.get(&key).await?;
        let seen = kv.as_ref().map_or(0, |kv| kv.mod_revision);
        let snap = kv
            .map(|kv| ControlSnapshot::from_bytes(&kv.value))
            .transpose()?;
        Ok((
            Self {
                etcd,
                key,
                leader_key: leader_key.to_vec(),
                term,
                seen,
            },
            snap,
        ))
    }

    /// Writes `bytes` (an encoded snapshot) if this leader's term still holds.
    ///
    /// # Errors
    /// [`RegistryError::Deposed`] when it does not; etcd unreachable.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), RegistryError> {
        let r = self
            .etcd
            .txn(Txn {
                compare: vec![
                    Compare::created(&self.leader_key, self.term),
                    Compare::modified(&self.key, self.seen),
                ],
                success: vec![Op::put(&self.key, bytes, None)],
                failure: Vec::new(),
            })
            .await?;
        if !r.succeeded {
            return Err(RegistryError::Deposed(self.term));
        }
        self.seen = r.revision;
        Ok(())
    }
}

/// The host's handle: hands snapshots to the writing task.
#[derive(Debug)]
pub struct EtcdWriter {
    tx: watch::Sender<(u64, Arc<Vec<u8>>)>,
    last: Arc<Vec<u8>>,
    /// Snapshots queued so far, and the number of the last one written.
    queued: u64,
    written: watch::Receiver<u64>,
    /// Transactions done (a queued snapshot replaced by a newer one is never written).
    writes: Arc<std::sync::atomic::AtomicU64>,
}

impl EtcdWriter {
    /// Starts the writing task for `registry`; `deposed` turns true if a write is refused
    /// (the term is over) and stays so.
    #[must_use]
    pub fn spawn(mut registry: EtcdRegistry, deposed: watch::Sender<bool>) -> Self {
        let (tx, mut rx) = watch::channel((0, Arc::new(Vec::new())));
        let (written_tx, written) = watch::channel(0);
        let writes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = writes.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let (seq, bytes) = rx.borrow_and_update().clone();
                loop {
                    match registry.write(&bytes).await {
                        Ok(()) => {
                            debug!(bytes = bytes.len(), "registry written to etcd");
                            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            written_tx.send_replace(seq);
                            break;
                        }
                        Err(RegistryError::Deposed(term)) => {
                            error!(term, "registry write refused: no longer the leader");
                            let _ = deposed.send(true);
                            return;
                        }
                        Err(e) => {
                            // etcd away: the leadership's own deadline decides; retry.
                            error!(error = %e, "registry not written; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            if rx.has_changed().unwrap_or(false) {
                                break; // A newer snapshot replaces this one.
                            }
                        }
                    }
                }
            }
        });
        Self {
            tx,
            last: Arc::new(Vec::new()),
            queued: 0,
            written,
            writes,
        }
    }

    /// Waits until the last snapshot queued is in etcd (or the writer stopped: deposed).
    pub async fn flushed(&mut self) {
        let queued = self.queued;
        let _ = self.written.wait_for(|w| *w >= queued).await;
    }

    /// Transactions written so far.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues `snap` if it differs from the last one; returns whether it did.
    ///
    /// # Errors
    /// The snapshot does not encode.
    pub fn save(&mut self, snap: &ControlSnapshot) -> Result<bool, RegistryError> {
        let bytes = snap.to_bytes()?;
        if bytes == *self.last {
            return Ok(false);
        }
        self.last = Arc::new(bytes);
        self.queued += 1;
        // The task is gone only after a refused write: the deposed signal says so.
        let _ = self.tx.send((self.queued, self.last.clone()));
        Ok(true)
    }
}
