//! [`Client`]: the calls, and failover between the endpoints of a cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::EtcdError;
use crate::wire::{
    self, Compare, GrantResponse, KeepAliveChunk, Op, PutResponse, RangeResponse, TxnResponse,
};

/// How long one call may take before the next endpoint is tried.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A key and what etcd knows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
    /// The revision that created it (it changes only if the key is deleted and made again).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// The lease it is attached to (0: none).
    pub lease: i64,
}

impl From<wire::Kv> for KeyValue {
    fn from(k: wire::Kv) -> Self {
        Self {
            key: k.key,
            value: k.value,
            create_revision: k.create_revision,
            mod_revision: k.mod_revision,
            lease: k.lease,
        }
    }
}

/// A lease: keys attached to it go when it expires or is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Its id.
    pub id: i64,
    /// Seconds it lives without a keep-alive.
    pub ttl: i64,
}

/// A transaction: if every comparison holds, the success operations run, else the
/// failure ones; all at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions, all of which must hold.
    pub compare: Vec<Compare>,
    /// Run if they hold.
    pub success: Vec<Op>,
    /// Run if not.
    pub failure: Vec<Op>,
}

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the comparisons held (the success branch ran).
    pub succeeded: bool,
    /// The store's revision after it.
    pub revision: i64,
    /// Keys the branch's reads found, in order.
    pub kvs: Vec<KeyValue>,
}

/// An etcd v3 client over the JSON gateway.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Vec<String>,
    /// The endpoint that answered last.
    current: AtomicUsize,
}

impl Client {
    /// A client of the cluster at `endpoints` (`http://host:port` each), in plaintext.
    ///
    /// # Errors
    /// No endpoint, or one that is not an http URL.
    pub fn new(endpoints: &[String]) -> Result<Self, EtcdError> {
        // Never used for http://, but the HTTP client wants a TLS setup of its own, and
        // this crate does not install a process-wide crypto provider.
        let unused = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| EtcdError::Tls(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Self::build(endpoints, "http://", unused)
    }

    /// A client of the cluster at `endpoints` (`https://host:port` each) over TLS, with
    /// `tls`'s roots and client certificate (etcd's `--client-cert-auth`).
    ///
    /// # Errors
    /// No endpoint, or one that is not an https URL.
    pub fn with_tls(endpoints: &[String], tls: rustls::ClientConfig) -> Result<Self, EtcdError> {
        Self::build(endpoints, "https://", tls)
    }

    fn build(
        endpoints: &[String],
        scheme: &'static str,
        tls: rustls::ClientConfig,
    ) -> Result<Self, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::Endpoint(String::new(), scheme));
        }
        for e in endpoints {
            if !e.starts_with(scheme) || e.len() <= scheme.len() {
                return Err(EtcdError::Endpoint(e.clone(), scheme));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| EtcdError::Tls(e.to_string()))?;
        Ok(Self {
            http,
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            current: AtomicUsize::new(0),
        })
    }

    /// The endpoints, as given.
    #[must_use]
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Posts `body` to `path` on the current endpoint, moving on to the next ones while
    /// they cannot be reached; an answer with an error status is not retried elsewhere.
    async fn post(
        &self,
        call: &'static str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, EtcdError> {
        let n = self.endpoints.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut last = String::new();
        for i in 0..n {
            let at = (first + i) % n;
            let url = format!("{}{path}", self.endpoints[at]);
            match self.http.post(&url).json(body).send().await {
                Ok(r) if r.status().is_success() => {
                    self.current.store(at, Ordering::Relaxed);
                    return Ok(r);
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let message = r.text().await.unwrap_or_default();
                    if status >= 500 && message.contains("unavailable") {
                        // A member without a leader (or shutting down): try the others.
                        last = format!("{url}: {status} {message}");
                        continue;
                    }
                    return Err(EtcdError::Status {
                        call,
                        status,
                        message,
                    });
                }
                Err(e) => {
                    tracing::debug!(%url, error = %e, "etcd endpoint failed");
                    last = format!("{url}: {e}");
                }
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            last,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<T, EtcdError> {
        let r = self.post(call, path, &body).await?;
        let bytes = r.bytes().await.map_err(|e| EtcdError::Answer {
            call,
            why: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| EtcdError::Answer {
            call,
            why: e.to_string(),
        })
    }

    /// The key, if it exists.
    ///
    /// # Errors
    /// etcd unreachable or failing.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        let r: RangeResponse = self
            .call(
                "range",
                "/v3/kv/range",
                serde_json::json!({ "key": wire::b64(key) }),
            )
            .await?;
        Ok(r.kvs.into_iter().next().map(KeyValue::from))
    }

    /// Writes `value` at `key` (under `lease` if given); returns the new revision.
    ///
    /// # Errors
    /// etcd unreachable or failing (a lease that is gone, for one).
    pub async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        lease: Option<i64>,
    ) -> Result<i64, EtcdError> {
        let mut body = serde_json::json!({ "key": wire::b64(key), "value": wire::b64(value) });
        if let Some(l) = lease {
            body["lease"] = l.to_string().into();
        }
        let r: PutResponse = self.call("put", "/v3/kv/put", body).await?;
        Ok(r.header.revision)
    }

    /// Deletes `key`; returns the new revision.
    ///
    /// # Errors
    /// etcd unreachable or failing.
    pub async fn delete(&self, key: &[u8]) -> Result<i64, EtcdError> {
        let r: PutResponse = self
            .call(
                "delete",
                "/v3/kv/deleterange",
                serde_json::json!({ "key": wire::b64(key) }),
            )
            .await?;
        Ok(r.header.revision)
    }

    /// Runs a transaction.
    ///
    /// # Errors
    /// etcd unreachable or failing.
    pub async fn txn(&self, t: Txn) -> Result<TxnResult, EtcdError> {
        let body = serde_json::json!({
            "compare": t.compare.iter().map(Compare::json).collect::<Vec<_>>(),
            "success": t.success.iter().map(Op::json).collect::<Vec<_>>(),
            "failure": t.failure.iter().map(Op::json).collect::<Vec<_>>(),
        });
        let r: TxnResponse = self.call("txn", "/v3/kv/txn", body).await?;
        Ok(TxnResult {
            succeeded: r.succeeded,
            revision: r.header.revision,
            kvs: r
                .responses
                .into_iter()
                .filter_map(|o| o.response_range)
                .flat_map(|rr| rr.kvs)
                .map(KeyValue::from)
                .collect(),
        })
    }

    /// A new lease of `ttl_s` seconds.
    ///
    /// # Errors
    /// etcd unreachable or failing.
    pub async fn grant(&self, ttl_s: i64) -> Result<Lease, EtcdError> {
        let r: GrantResponse = self
            .call(
                "lease grant",
                "/v3/lease/grant",
                serde_json::json!({ "TTL": ttl_s.to_string() }),
            )
            .await?;
        if !r.error.is_empty() {
            return Err(EtcdError::Answer {
                call: "lease grant",
                why: r.error,
            });
        }
        Ok(Lease {
            id: r.id,
            ttl: r.ttl,
        })
    }

    /// Renews lease `id` for its whole TTL again; returns that TTL.
    ///
    /// # Errors
    /// [`EtcdError::LeaseExpired`] when the lease is gone; etcd unreachable or failing.
    pub async fn keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        const CALL: &str = "lease keep-alive";
        // The gateway streams one answer per request on a connection it keeps open: read
        // the first one and let the connection go.
        let mut r = self
            .post(
                CALL,
                "/v3/lease/keepalive",
                &serde_json::json!({ "ID": id.to_string() }),
            )
            .await?;
        let mut buf = Vec::new();
        loop {
            let chunk = r.chunk().await.map_err(|e| EtcdError::Answer {
                call: CALL,
                why: e.to_string(),
            })?;
            let Some(chunk) = chunk else {
                break;
            };
            buf.extend_from_slice(&chunk);
            if serde_json::from_slice::<serde_json::Value>(&buf).is_ok() {
                break;
            }
        }
        let c: KeepAliveChunk = serde_json::from_slice(&buf).map_err(|e| EtcdError::Answer {
            call: CALL,
            why: e.to_string(),
        })?;
        if let Some(e) = c.error {
            return Err(EtcdError::Answer {
                call: CALL,
                why: e.to_string(),
            });
        }
        match c.result.map(|k| k.ttl) {
            Some(ttl) if ttl > 0 => Ok(ttl),
            _ => Err(EtcdError::LeaseExpired(id)),
        }
    }

    /// Revokes lease `id` (its keys go at once).
    ///
    /// # Errors
    /// etcd unreachable or failing.
    pub async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        let _: PutResponse = self
            .call(
                "lease revoke",
                "/v3/kv/lease/revoke",
                serde_json::json!({ "ID": id.to_string() }),
            )
            .await?;
        Ok(())
    }
}
