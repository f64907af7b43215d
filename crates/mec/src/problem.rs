//! [`Problem`]: an error answer with an RFC 7807 `ProblemDetails` body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::etsi::ProblemDetails;

/// An HTTP error with its `ProblemDetails`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct Problem {
    /// The status.
    pub status: StatusCode,
    /// What went wrong.
    pub detail: String,
}

impl Problem {
    /// Any status.
    #[must_use]
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    /// 400: the body or a parameter does not parse.
    #[must_use]
    pub fn bad_request(detail: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401: no valid bearer token.
    #[must_use]
    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 404.
    #[must_use]
    pub fn not_found(detail: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 422: well-formed, but not acceptable.
    #[must_use]
    pub fn unprocessable(detail: String) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 429: a limit is reached.
    #[must_use]
    pub fn too_many(detail: String) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
    }

    /// The body.
    #[must_use]
    pub fn details(&self) -> ProblemDetails {
        ProblemDetails {
            type_: format!(
                "https://edgeshift.invalid/problems/{}",
                self.status.as_u16()
            ),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: u32::from(self.status.as_u16()),
            detail: self.detail.clone(),
            instance: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.details()).unwrap_or_default();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"edgeshift\""),
            );
        }
        r
    }
}
