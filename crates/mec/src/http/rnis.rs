//! MEC 012 routes: `/rni/v2/subscriptions` (cell changes, UE measurement reports).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::{Shared, created, json_body, query, subscription_type, typed};
use crate::etsi::rnis::{self, CellChangeSubscription, MeasRepUeSubscription, RniSubscription};
use crate::etsi::{ProblemDetails, SubscriptionLinkList};
use crate::problem::Problem;
use crate::state::ApiKind;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/rni/v2/subscriptions", get(list).post(subscribe))
        .route(
            "/rni/v2/subscriptions/{id}",
            get(get_one).put(put).delete(delete),
        )
}

const WRAPPERS: &[&str] = &[rnis::CELL_CHANGE, rnis::MEAS_REP_UE];

/// `subscription_type` of `GET /rni/v2/subscriptions` (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // only described, parsed from the query by hand
pub(crate) enum RniTypeQuery {
    /// Cell change subscriptions.
    CellChange,
    /// UE measurement report subscriptions.
    MeasRepUe,
}

fn parse_subscription(v: serde_json::Value) -> Result<RniSubscription, Problem> {
    match subscription_type(&v)?.as_str() {
        rnis::CELL_CHANGE => Ok(RniSubscription::CellChange(
            typed::<CellChangeSubscription>(v, rnis::CELL_CHANGE)?,
        )),
        rnis::MEAS_REP_UE => Ok(RniSubscription::MeasRepUe(typed::<MeasRepUeSubscription>(
            v,
            rnis::MEAS_REP_UE,
        )?)),
        other => Err(Problem::unprocessable(format!(
            "subscriptionType {other:?}: this server offers {} and {}",
            rnis::CELL_CHANGE,
            rnis::MEAS_REP_UE
        ))),
    }
}

/// Subscribes to cell changes (with `IN_PREPARATION` from the RAN's prediction) or to UE
/// measurement reports.
#[utoipa::path(post, path = "/rni/v2/subscriptions", tag = "rni",
    request_body(content = RniSubscription, content_type = "application/json"),
    responses(
        (status = 201, description = "Subscribed; `Location` names it", body = RniSubscription),
        (status = 400, description = "Not JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Unknown type, bad callback, value out of range", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "Subscription limit reached", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn subscribe(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let v = json_body(&headers, body, WRAPPERS)?;
    let sub = parse_subscription(v)?;
    let now = s.now();
    let mut st = s.lock();
    let (id, sub, test) = st.subscribe_rnis(now, sub)?;
    s.deliver(test);
    drop(st);
    Ok(created(&format!("/rni/v2/subscriptions/{id}"), &sub))
}

/// The subscriptions (`subscription_type`: `cell_change` or `meas_rep_ue`).
#[utoipa::path(get, path = "/rni/v2/subscriptions", tag = "rni",
    params(("subscription_type" = Option<RniTypeQuery>, Query, description = "cell_change or meas_rep_ue")),
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionLinkList),
        (status = 400, description = "Unknown subscription type", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(s): State<Shared>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<SubscriptionLinkList>, Problem> {
    let q = query(q)?;
    let kind = match q.get("subscription_type").map(String::as_str) {
        None => None,
        Some("cell_change") => Some(rnis::CELL_CHANGE),
        Some("meas_rep_ue") => Some(rnis::MEAS_REP_UE),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "subscription_type {other:?}: this server offers cell_change and meas_rep_ue"
            )));
        }
    };
    Ok(Json(s.lock().rni_list(kind)))
}

/// One subscription.
#[utoipa::path(get, path = "/rni/v2/subscriptions/{id}", tag = "rni",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = RniSubscription),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_one(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<RniSubscription>, Problem> {
    s.lock()
        .rni_get(&id)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no subscription {id}")))
}

/// Replaces a subscription (same type).
#[utoipa::path(put, path = "/rni/v2/subscriptions/{id}", tag = "rni",
    params(("id" = String, Path, description = "Subscription id")),
    request_body(content = RniSubscription, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = RniSubscription),
        (status = 400, description = "Not JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Another type, bad callback, value out of range", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn put(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RniSubscription>, Problem> {
    let v = json_body(&headers, body, WRAPPERS)?;
    let sub = parse_subscription(v)?;
    let now = s.now();
    s.lock().rni_put(now, &id, sub).map(Json)
}

/// Cancels a subscription.
#[utoipa::path(delete, path = "/rni/v2/subscriptions/{id}", tag = "rni",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    s.lock().unsubscribe(ApiKind::Rnis, &id)?;
    Ok(StatusCode::NO_CONTENT)
}
