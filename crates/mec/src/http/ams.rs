//! MEC 021 routes: `/amsi/v1/app_mobility_services`, `/amsi/v1/subscriptions`,
//! `/amsi/v1/queries/adjacent_app_instances`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Shared, created, json_body, query, subscription_type, typed};
use crate::etsi::ams::{
    self, AdjacentAppInfoSubscription, AdjacentAppInstanceInfo, AmsSubscription,
    MobilityProcedureSubscription, RegistrationInfo,
};
use crate::etsi::{ProblemDetails, SubscriptionLinkList};
use crate::problem::Problem;
use crate::state::ApiKind;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/amsi/v1/app_mobility_services",
            get(list_registrations).post(register),
        )
        .route(
            "/amsi/v1/app_mobility_services/{id}",
            get(get_registration)
                .put(put_registration)
                .delete(delete_registration),
        )
        .route(
            "/amsi/v1/app_mobility_services/{id}/deregister_task",
            post(deregister_task),
        )
        .route("/amsi/v1/subscriptions", get(list).post(subscribe))
        .route(
            "/amsi/v1/subscriptions/{id}",
            get(get_one).put(put).delete(delete),
        )
        .route("/amsi/v1/queries/adjacent_app_instances", get(adjacent))
}

fn parse_subscription(v: serde_json::Value) -> Result<AmsSubscription, Problem> {
    match subscription_type(&v)?.as_str() {
        ams::MOBILITY_PROCEDURE => Ok(AmsSubscription::MobilityProcedure(typed::<
            MobilityProcedureSubscription,
        >(
            v,
            ams::MOBILITY_PROCEDURE,
        )?)),
        ams::ADJACENT_APP_INFO => Ok(AmsSubscription::AdjacentAppInfo(typed::<
            AdjacentAppInfoSubscription,
        >(
            v,
            ams::ADJACENT_APP_INFO,
        )?)),
        other => Err(Problem::unprocessable(format!(
            "subscriptionType {other:?} is not {} or {}",
            ams::MOBILITY_PROCEDURE,
            ams::ADJACENT_APP_INFO
        ))),
    }
}

const WRAPPERS: &[&str] = &[ams::MOBILITY_PROCEDURE, ams::ADJACENT_APP_INFO];

/// `subscriptiontype` of `GET /amsi/v1/subscriptions` (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // only described, parsed from the query by hand
pub(crate) enum AmsTypeQuery {
    /// Mobility procedure subscriptions.
    MobilityProc,
    /// Adjacent application info subscriptions.
    AdjAppInfo,
}

/// Registers an application instance and the UEs it serves.
#[utoipa::path(post, path = "/amsi/v1/app_mobility_services", tag = "amsi",
    request_body(content = RegistrationInfo, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; `Location` names it", body = RegistrationInfo),
        (status = 400, description = "Not JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A value out of range", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "Registration limit reached", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn register(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let v = json_body(&headers, body, &["RegistrationInfo"])?;
    let r: RegistrationInfo = typed(v, "RegistrationInfo")?;
    let r = s.lock().register(r)?;
    let id = r.app_mobility_service_id.clone().unwrap_or_default();
    Ok(created(&format!("/amsi/v1/app_mobility_services/{id}"), &r))
}

/// Every registration (MEC 009 attribute filters are not supported and ignored).
#[utoipa::path(get, path = "/amsi/v1/app_mobility_services", tag = "amsi",
    params(("filter" = Option<String>, Query, description = "Not supported; ignored")),
    responses(
        (status = 200, description = "The registrations", body = Vec<RegistrationInfo>),
        (status = 400, description = "Bad query", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_registrations(
    State(s): State<Shared>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<RegistrationInfo>>, Problem> {
    query(q)?;
    Ok(Json(s.lock().registrations()))
}

/// One registration.
#[utoipa::path(get, path = "/amsi/v1/app_mobility_services/{id}", tag = "amsi",
    params(("id" = String, Path, description = "appMobilityServiceId")),
    responses(
        (status = 200, description = "The registration", body = RegistrationInfo),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such registration", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_registration(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<RegistrationInfo>, Problem> {
    s.lock()
        .registration(&id)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no registration {id}")))
}

/// Replaces a registration (for example its `contextTransferState`).
#[utoipa::path(put, path = "/amsi/v1/app_mobility_services/{id}", tag = "amsi",
    params(("id" = String, Path, description = "appMobilityServiceId")),
    request_body(content = RegistrationInfo, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = RegistrationInfo),
        (status = 400, description = "Not JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such registration", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A value out of range, or another id", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn put_registration(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RegistrationInfo>, Problem> {
    let v = json_body(&headers, body, &["RegistrationInfo"])?;
    let r: RegistrationInfo = typed(v, "RegistrationInfo")?;
    s.lock().update_registration(&id, r).map(Json)
}

/// Deletes a registration.
#[utoipa::path(delete, path = "/amsi/v1/app_mobility_services/{id}", tag = "amsi",
    params(("id" = String, Path, description = "appMobilityServiceId")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such registration", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete_registration(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    s.lock().deregister(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deregisters (the task form of DELETE).
#[utoipa::path(post, path = "/amsi/v1/app_mobility_services/{id}/deregister_task", tag = "amsi",
    params(("id" = String, Path, description = "appMobilityServiceId")),
    responses(
        (status = 204, description = "Deregistered"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such registration", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn deregister_task(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    s.lock().deregister(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Subscribes to relocations (`MobilityProcedureSubscription`) or to the adjacent
/// instances of a service (`AdjacentAppInfoSubscription`).
#[utoipa::path(post, path = "/amsi/v1/subscriptions", tag = "amsi",
    request_body(content = AmsSubscription, content_type = "application/json"),
    responses(
        (status = 201, description = "Subscribed; `Location` names it", body = AmsSubscription),
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
    let (id, sub, test) = st.subscribe_ams(now, sub)?;
    s.deliver(test);
    drop(st);
    Ok(created(&format!("/amsi/v1/subscriptions/{id}"), &sub))
}

/// The subscriptions (`subscriptiontype`: `mobility_proc` or `adj_app_info`).
#[utoipa::path(get, path = "/amsi/v1/subscriptions", tag = "amsi",
    params(("subscriptiontype" = Option<AmsTypeQuery>, Query, description = "mobility_proc or adj_app_info")),
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
    let kind = match q.get("subscriptiontype").map(String::as_str) {
        None => None,
        Some("mobility_proc") => Some(ams::MOBILITY_PROCEDURE),
        Some("adj_app_info") => Some(ams::ADJACENT_APP_INFO),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "subscriptiontype {other:?} is not mobility_proc or adj_app_info"
            )));
        }
    };
    Ok(Json(s.lock().ams_list(kind)))
}

/// One subscription.
#[utoipa::path(get, path = "/amsi/v1/subscriptions/{id}", tag = "amsi",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = AmsSubscription),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_one(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AmsSubscription>, Problem> {
    s.lock()
        .ams_get(&id)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no subscription {id}")))
}

/// Replaces a subscription (same type).
#[utoipa::path(put, path = "/amsi/v1/subscriptions/{id}", tag = "amsi",
    params(("id" = String, Path, description = "Subscription id")),
    request_body(content = AmsSubscription, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = AmsSubscription),
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
) -> Result<Json<AmsSubscription>, Problem> {
    let v = json_body(&headers, body, WRAPPERS)?;
    let sub = parse_subscription(v)?;
    let now = s.now();
    s.lock().ams_put(now, &id, sub).map(Json)
}

/// Cancels a subscription.
#[utoipa::path(delete, path = "/amsi/v1/subscriptions/{id}", tag = "amsi",
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
    s.lock().unsubscribe(ApiKind::Ams, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The adjacent instances: the shadows of every service, or with
/// `filter=(eq,registeredInstanceId,<live instance>)` of one.
#[utoipa::path(get, path = "/amsi/v1/queries/adjacent_app_instances", tag = "amsi",
    params(("filter" = Option<String>, Query, description = "(eq,registeredInstanceId,<instance>) or (eq,appInstanceId,<instance>)")),
    responses(
        (status = 200, description = "The shadows", body = Vec<AdjacentAppInstanceInfo>),
        (status = 400, description = "Unsupported filter", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn adjacent(
    State(s): State<Shared>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let q = query(q)?;
    let all = s.lock().adjacent(None);
    let out: Vec<AdjacentAppInstanceInfo> = match q.get("filter") {
        None => all,
        Some(f) => {
            let bad = || {
                Problem::bad_request(format!(
                    "filter {f:?}: only (eq,registeredInstanceId,X) and (eq,appInstanceId,X)"
                ))
            };
            let inner = f
                .strip_prefix("(eq,")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(bad)?;
            let (attr, value) = inner.split_once(',').ok_or_else(bad)?;
            match attr {
                "registeredInstanceId" => all
                    .into_iter()
                    .filter(|a| a.registered_instance_id.as_deref() == Some(value))
                    .collect(),
                "appInstanceId" => all
                    .into_iter()
                    .filter(|a| a.app_instance_id == value)
                    .collect(),
                _ => return Err(bad()),
            }
        }
    };
    Ok(Json(out).into_response())
}
