//! Leadership of a control group through etcd.
//!
//! The leader holds one key, `<prefix>/leader`, attached to its etcd lease; whoever
//! creates the key (a transaction that requires it not to exist) leads. The revision that
//! created it is the **term**: it only grows from one leader to the next, and fences
//! everything the leader does (registry writes, route epochs).
//!
//! The leader keeps its lease alive every third of its TTL, and stops acting on its own at
//! `until`: one TTL after it *sent* the last keep-alive etcd answered, on its own clock.
//! etcd expires the lease one TTL after it *received* that keep-alive, which is later; so
//! a leader cut off from etcd has stopped before a standby can create the key. No clocks
//! are compared, only durations on each side.

use std::sync::Arc;
use std::time::Duration;

use edgeshift_etcd::{Client, Compare, EtcdError, Op, Txn};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// A term won: the lease that holds the key and the revision that created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// The revision that created the leader key: the fencing epoch of this leader.
    pub revision: i64,
    /// The etcd lease the key is attached to.
    pub lease: i64,
    /// The leader may act until then (local clock).
    pub until: Instant,
}

/// Why a term ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Deposed {
    /// No keep-alive was answered in time: the leader stops before etcd could let a
    /// standby in.
    #[error("no answer from etcd within the lease: stepping down")]
    Silent,
    /// etcd says the lease is gone.
    #[error("the lease expired in etcd")]
    Expired,
    /// Asked to stop.
    #[error("stopped")]
    Stopped,
}

/// Campaigns for and holds the leadership of one control group.
#[derive(Debug)]
pub struct Elector {
    etcd: Arc<Client>,
    key: Vec<u8>,
    me: String,
    ttl: Duration,
}

/// A keep-alive answered after this share of the TTL no longer counts: room for the two
/// clocks' rates to differ a little.
const SAFETY: f64 = 0.9;

impl Elector {
    /// An elector for `me` (the replica's name and address, stored as the key's value)
    /// under `prefix`, with leases of `ttl` (whole seconds, at least one).
    #[must_use]
    pub fn new(etcd: Arc<Client>, prefix: &str, me: String, ttl: Duration) -> Self {
        Self {
            etcd,
            key: format!("{prefix}/leader").into_bytes(),
            me,
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// The leader key.
    #[must_use]
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    fn ttl_s(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// How long a keep-alive sent at `sent` lets the leader act.
    fn until(&self, sent: Instant, ttl_s: i64) -> Instant {
        let granted = Duration::from_secs(u64::try_from(ttl_s).unwrap_or(0));
        sent + granted.min(self.ttl).mul_f64(SAFETY)
    }

    /// Who leads now, if anyone: (value of the key, term).
    ///
    /// # Errors
    /// etcd unreachable.
    pub async fn leader(&self) -> Result<Option<(String, i64)>, EtcdError> {
        Ok(self.etcd.get(&self.key).await?.map(|kv| {
            (
                String::from_utf8_lossy(&kv.value).into_owned(),
                kv.create_revision,
            )
        }))
    }

    /// Waits until this replica leads, polling every third of the TTL while another one
    /// does (or etcd is away). Returns `None` when `stop` turns true first.
    pub async fn campaign(&self, stop: &mut tokio::sync::watch::Receiver<bool>) -> Option<Term> {
        let poll = self.ttl / 3;
        loop {
            if *stop.borrow() {
                return None;
            }
            match self.try_lead().await {
                Ok(Some(term)) => return Some(term),
                Ok(None) => debug!(me = %self.me, "another replica leads"),
                Err(e) => warn!(me = %self.me, error = %e, "cannot reach etcd to campaign"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                r = stop.changed() => if r.is_err() { return None },
            }
        }
    }

    /// One attempt: the term if the key was free.
    ///
    /// # Errors
    /// etcd unreachable or failing.
    pub async fn try_lead(&self) -> Result<Option<Term>, EtcdError> {
        let sent = Instant::now();
        let lease = self.etcd.grant(self.ttl_s()).await?;
        let r = self
            .etcd
            .txn(Txn {
                compare: vec![Compare::created(&self.key, 0)],
                success: vec![Op::put(&self.key, self.me.as_bytes(), Some(lease.id))],
                failure: vec![Op::get(&self.key)],
            })
            .await?;
        if !r.succeeded {
            // Not needed: let it go now rather than at its expiry.
            let _ = self.etcd.revoke(lease.id).await;
            return Ok(None);
        }
        let term = Term {
            revision: r.revision,
            lease: lease.id,
            until: self.until(sent, lease.ttl),
        };
        info!(me = %self.me, term = term.revision, "leading the control group");
        Ok(Some(term))
    }

    /// Keeps `term` alive until it is lost or `stop` turns true; `term.until` follows
    /// every answered keep-alive. Returns why it ended.
    pub async fn hold(
        &self,
        term: &mut Term,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Deposed {
        let every = self.ttl / 3;
        loop {
            let next = Instant::now() + every;
            tokio::select! {
                () = tokio::time::sleep_until(next.min(term.until)) => {}
                r = stop.changed() => if r.is_err() || *stop.borrow() { return Deposed::Stopped },
            }
            if Instant::now() >= term.until {
                return Deposed::Silent;
            }
            let sent = Instant::now();
            // A keep-alive that outlives the term cannot extend it.
            match tokio::time::timeout_at(term.until, self.etcd.keep_alive(term.lease)).await {
                Ok(Ok(ttl)) => term.until = self.until(sent, ttl).max(term.until),
                Ok(Err(EtcdError::LeaseExpired(_))) => return Deposed::Expired,
                Ok(Err(e)) => warn!(me = %self.me, error = %e, "keep-alive failed"),
                Err(_) => return Deposed::Silent,
            }
        }
    }

    /// Gives the leadership up at once (a clean stop): the standbys need not wait for the
    /// lease to expire.
    pub async fn resign(&self, term: &Term) {
        if let Err(e) = self.etcd.revoke(term.lease).await {
            warn!(me = %self.me, error = %e, "could not resign; the lease will expire");
        }
    }
}
