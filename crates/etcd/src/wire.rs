//! The JSON shapes of etcd's gateway: the protobuf messages of `rpc.proto` in proto3
//! JSON (bytes in base64, 64-bit integers as strings, default values left out).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn unb64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    STANDARD.decode(s).map_err(serde::de::Error::custom)
}

/// An int64 of proto3 JSON: a string, or a number from some gateways; absent is 0.
pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum I {
        S(String),
        N(i64),
    }
    match I::deserialize(d)? {
        I::S(s) => s.parse().map_err(serde::de::Error::custom),
        I::N(n) => Ok(n),
    }
}

/// A condition of a transaction on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key was created at this revision (0: the key does not exist).
    Created(Vec<u8>, i64),
    /// The key was last modified at this revision (0: the key does not exist).
    Modified(Vec<u8>, i64),
    /// The key holds this value.
    Value(Vec<u8>, Vec<u8>),
}

impl Compare {
    /// `key` was created at `revision` (0: does not exist).
    #[must_use]
    pub fn created(key: &[u8], revision: i64) -> Self {
        Self::Created(key.to_vec(), revision)
    }

    /// `key` was last modified at `revision` (0: does not exist).
    #[must_use]
    pub fn modified(key: &[u8], revision: i64) -> Self {
        Self::Modified(key.to_vec(), revision)
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        match self {
            Self::Created(k, r) => serde_json::json!({
                "key": b64(k), "target": "CREATE", "result": "EQUAL",
                "create_revision": r.to_string(),
            }),
            Self::Modified(k, r) => serde_json::json!({
                "key": b64(k), "target": "MOD", "result": "EQUAL",
                "mod_revision": r.to_string(),
            }),
            Self::Value(k, v) => serde_json::json!({
                "key": b64(k), "target": "VALUE", "result": "EQUAL", "value": b64(v),
            }),
        }
    }
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Reads a key.
    Get(Vec<u8>),
    /// Writes a key, attached to a lease if given (the key goes when the lease does).
    Put(Vec<u8>, Vec<u8>, Option<i64>),
    /// Deletes a key.
    Delete(Vec<u8>),
}

impl Op {
    /// Reads `key`.
    #[must_use]
    pub fn get(key: &[u8]) -> Self {
        Self::Get(key.to_vec())
    }

    /// Writes `value` at `key`, under `lease` if given.
    #[must_use]
    pub fn put(key: &[u8], value: &[u8], lease: Option<i64>) -> Self {
        Self::Put(key.to_vec(), value.to_vec(), lease)
    }

    /// Deletes `key`.
    #[must_use]
    pub fn delete(key: &[u8]) -> Self {
        Self::Delete(key.to_vec())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        match self {
            Self::Get(k) => serde_json::json!({ "request_range": { "key": b64(k) } }),
            Self::Put(k, v, lease) => {
                let mut put = serde_json::json!({ "key": b64(k), "value": b64(v) });
                if let Some(l) = lease {
                    put["lease"] = l.to_string().into();
                }
                serde_json::json!({ "request_put": put })
            }
            Self::Delete(k) => serde_json::json!({ "request_delete_range": { "key": b64(k) } }),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct Header {
    #[serde(default, deserialize_with = "int")]
    pub(crate) revision: i64,
}

#[derive(Deserialize)]
pub(crate) struct Kv {
    #[serde(deserialize_with = "unb64")]
    pub(crate) key: Vec<u8>,
    #[serde(default, deserialize_with = "unb64")]
    pub(crate) value: Vec<u8>,
    #[serde(default, deserialize_with = "int")]
    pub(crate) create_revision: i64,
    #[serde(default, deserialize_with = "int")]
    pub(crate) mod_revision: i64,
    #[serde(default, deserialize_with = "int")]
    pub(crate) lease: i64,
}

#[derive(Deserialize)]
pub(crate) struct RangeResponse {
    #[serde(default)]
    pub(crate) kvs: Vec<Kv>,
}

#[derive(Deserialize)]
pub(crate) struct PutResponse {
    #[serde(default)]
    pub(crate) header: Header,
}

#[derive(Deserialize)]
pub(crate) struct TxnResponse {
    #[serde(default)]
    pub(crate) header: Header,
    #[serde(default)]
    pub(crate) succeeded: bool,
    #[serde(default)]
    pub(crate) responses: Vec<OpResponse>,
}

#[derive(Deserialize)]
pub(crate) struct OpResponse {
    #[serde(default)]
    pub(crate) response_range: Option<RangeResponse>,
}

#[derive(Deserialize)]
pub(crate) struct GrantResponse {
    #[serde(rename = "ID", deserialize_with = "int")]
    pub(crate) id: i64,
    #[serde(rename = "TTL", default, deserialize_with = "int")]
    pub(crate) ttl: i64,
    #[serde(default)]
    pub(crate) error: String,
}

#[derive(Deserialize)]
pub(crate) struct KeepAliveResponse {
    #[serde(rename = "TTL", default, deserialize_with = "int")]
    pub(crate) ttl: i64,
}

#[derive(Deserialize)]
pub(crate) struct KeepAliveChunk {
    pub(crate) result: Option<KeepAliveResponse>,
    #[serde(default)]
    pub(crate) error: Option<serde_json::Value>,
}
