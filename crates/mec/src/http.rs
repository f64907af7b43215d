//! The HTTP server: routes, bearer-token authentication, JSON bodies with
//! `ProblemDetails` errors.

pub(crate) mod ams;
mod dashboard;
pub(crate) mod rnis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use edgeshift_proto::Instant;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::notify::Notifier;
use crate::problem::Problem;
use crate::state::{Delivery, MecState};

/// Largest request body (a subscription is well below 4 KiB).
const BODY_LIMIT: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) state: Arc<Mutex<MecState>>,
    pub(crate) notifier: Notifier,
    pub(crate) changed: Arc<watch::Sender<u64>>,
    pub(crate) tokens: Arc<[String]>,
    pub(crate) clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    /// Dashboard streams open now.
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
    /// The view as JSON, with the change count it was made at: every stream sends the
    /// same text, serialized once per change.
    pub(crate) view_cache: Arc<Mutex<(u64, Arc<str>)>>,
}

/// Dashboard streams served at once.
pub(crate) const STREAMS: usize = 64;

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, MecState> {
        // A handler that panicked mid-update leaves plain data behind; serve on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn now(&self) -> Instant {
        (self.clock)()
    }

    pub(crate) fn deliver(&self, ds: impl IntoIterator<Item = Delivery>) {
        self.notifier.send(ds.into_iter().collect());
    }

    /// The dashboard's view as JSON, serialized at most once per change.
    pub(crate) fn view_json(&self) -> Arc<str> {
        let version = *self.changed.borrow();
        let mut cache = self
            .view_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.0 != version || cache.1.is_empty() {
            let json = serde_json::to_string(self.lock().view()).unwrap_or_default();
            *cache = (version, Arc::from(json));
        }
        cache.1.clone()
    }

    pub(crate) fn touch(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// The whole router.
pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/dashboard/state", get(dashboard::state))
        .route("/dashboard/events", get(dashboard::events))
        .merge(ams::routes())
        .merge(rnis::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn not_found(req: Request) -> Problem {
    Problem::not_found(format!("no resource at {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

fn same(a: &str, b: &str) -> bool {
    // Looks at every byte of the longer one whatever differs: the time depends on the
    // lengths only, not on how much of the token was right.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len().max(b.len());
    let diff = (0..n).fold(u8::from(a.len() != b.len()), |acc, i| {
        acc | (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0))
    });
    diff == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// RFC 6750: the token in the `Authorization` header, or (for the dashboard, whose
/// `EventSource` cannot set headers) in the `access_token` query parameter.
async fn auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/" || path == "/openapi.json" {
        return next.run(req).await;
    }
    let query_token = path
        .starts_with("/dashboard/")
        .then(|| {
            req.uri().query().and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "access_token")
                    .map(|(_, v)| percent_decode(v))
            })
        })
        .flatten();
    let token = bearer(req.headers()).map(str::to_owned).or(query_token);
    match token {
        Some(t) if s.tokens.iter().any(|k| same(k, &t)) => next.run(req).await,
        Some(_) => Problem::unauthorized("the bearer token is not valid").into_response(),
        None => Problem::unauthorized("a bearer token is required (Authorization: Bearer <token>)")
            .into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    #[allow(clippy::cast_possible_truncation)]
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters, or 400.
pub(crate) fn query(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, Problem> {
    q.map(|Query(q)| q)
        .map_err(|e| Problem::bad_request(format!("query: {e}")))
}

/// A JSON request body as a value, unwrapped from `{"<TypeName>": {...}}` (how the
/// generated v2.2.1 OpenAPI files draw bodies) when it comes that way.
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    wrappers: &[&str],
) -> Result<Value, Problem> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| {
            ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
        });
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    let body = body.map_err(|e| Problem::new(e.status(), e.body_text()))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
    if let Value::Object(m) = &v
        && m.len() == 1
        && let Some((k, inner)) = m.iter().next()
        && wrappers.contains(&k.as_str())
        && inner.is_object()
    {
        return Ok(inner.clone());
    }
    Ok(v)
}

/// A typed body, or 400 naming the field.
pub(crate) fn typed<T: DeserializeOwned + serde::Serialize>(
    v: Value,
    what: &str,
) -> Result<T, Problem> {
    let t: T = serde_json::from_value(v.clone())
        .map_err(|e| Problem::bad_request(format!("{what}: {e}")))?;
    // serde also fills a struct from an array of its fields; JSON bodies name them.
    let back = serde_json::to_value(&t).unwrap_or(Value::Null);
    same_shape(&v, &back, what).map_err(Problem::bad_request)?;
    Ok(t)
}

/// Where `parsed` has an object, `input` had one too (not an array).
fn same_shape(input: &Value, parsed: &Value, at: &str) -> Result<(), String> {
    match (input, parsed) {
        (Value::Object(i), Value::Object(p)) => {
            for (k, pv) in p {
                if let Some(iv) = i.get(k) {
                    same_shape(iv, pv, &format!("{at}.{k}"))?;
                }
            }
            Ok(())
        }
        (_, Value::Object(_)) => Err(format!("{at}: expected an object")),
        (Value::Array(i), Value::Array(p)) => i
            .iter()
            .zip(p)
            .enumerate()
            .try_for_each(|(n, (iv, pv))| same_shape(iv, pv, &format!("{at}[{n}]"))),
        _ => Ok(()),
    }
}

/// The `subscriptionType` of a subscription body.
pub(crate) fn subscription_type(v: &Value) -> Result<String, Problem> {
    match v.get("subscriptionType") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Problem::bad_request(
            "subscriptionType must be a string".into(),
        )),
        None if v.is_object() => Err(Problem::bad_request("subscriptionType is missing".into())),
        None => Err(Problem::bad_request(
            "the body must be a JSON object".into(),
        )),
    }
}

/// 201 with `Location` and the body.
pub(crate) fn created(location: &str, body: &impl serde::Serialize) -> Response {
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }

    #[test]
    fn structs_come_as_objects_not_arrays() {
        use crate::etsi::ams::RegistrationInfo;
        let ok = serde_json::json!({"serviceConsumerId": {"appInstanceId": "a"}});
        assert!(typed::<RegistrationInfo>(ok, "r").is_ok());
        let bad = serde_json::json!({"serviceConsumerId": [null, null]});
        let e = typed::<RegistrationInfo>(bad, "r").expect_err("an array for a struct");
        assert!(
            e.detail.contains("r.serviceConsumerId: expected an object"),
            "{e}"
        );
    }

    #[test]
    fn query_tokens_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Bb%3d"), "a+b=");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("bad%2"), "bad%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
