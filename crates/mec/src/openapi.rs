//! The server's own OpenAPI document (`GET /openapi.json`), generated from the handlers
//! and types by utoipa.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::etsi::{ams, rnis};
use crate::http;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "edgeshift MEC APIs",
        description = "ETSI GS MEC 021 v2.2.1 (Application Mobility Service, /amsi/v1) and \
            ETSI GS MEC 012 v2.2.1 (Radio Network Information, /rni/v2: cell change and UE \
            measurement report subscriptions) of the edgeshift control node. Deviations \
            from the ETSI files are listed in docs/api.md. Extension fields start with x-.",
    ),
    paths(
        http::ams::register,
        http::ams::list_registrations,
        http::ams::get_registration,
        http::ams::put_registration,
        http::ams::delete_registration,
        http::ams::deregister_task,
        http::ams::subscribe,
        http::ams::list,
        http::ams::get_one,
        http::ams::put,
        http::ams::delete,
        http::ams::adjacent,
        http::rnis::subscribe,
        http::rnis::list,
        http::rnis::get_one,
        http::rnis::put,
        http::rnis::delete,
    ),
    components(schemas(
        ams::MobilityProcedureNotification,
        ams::AdjacentAppInfoNotification,
        ams::TestNotification,
        ams::ExpiryNotification,
        rnis::CellChangeNotification,
        rnis::MeasRepUeNotification,
    )),
    modifiers(&Bearer),
    tags(
        (name = "amsi", description = "ETSI GS MEC 021 Application Mobility Service"),
        (name = "rni", description = "ETSI GS MEC 012 Radio Network Information"),
    )
)]
pub struct ApiDoc;

pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
