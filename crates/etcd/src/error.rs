//! [`EtcdError`].

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// No endpoint was given, or one is not a URL of the expected scheme.
    #[error("etcd endpoint {0:?}: expected {1}host:port")]
    Endpoint(String, &'static str),
    /// The TLS setup of the client failed.
    #[error("etcd client TLS: {0}")]
    Tls(String),
    /// No endpoint answered.
    #[error("etcd unreachable ({endpoints}): {last}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        last: String,
    },
    /// etcd answered with an error (HTTP status and its message).
    #[error("etcd {call}: {status}: {message}")]
    Status {
        /// The call.
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// etcd's message.
        message: String,
    },
    /// etcd's answer does not parse.
    #[error("etcd {call}: unexpected answer: {why}")]
    Answer {
        /// The call.
        call: &'static str,
        /// What was wrong.
        why: String,
    },
    /// The lease is gone (expired or revoked).
    #[error("etcd lease {0:x} expired")]
    LeaseExpired(i64),
}
