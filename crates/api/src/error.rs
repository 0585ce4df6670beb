//! The HTTP face of errors: one table from error kind to status, and one JSON body shape,
//! `{"code": "...", "message": "..."}`, for every error the API returns.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use caseflow_app::AppError;
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with an explicit status and code (for HTTP-level failures).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Maps each use-case error to its HTTP status. The `code` comes from the error itself.
pub fn status_for(e: &AppError) -> StatusCode {
    match e {
        AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Unauthenticated(_) | AppError::InvalidCredentials | AppError::TokenExpired => {
            StatusCode::UNAUTHORIZED
        }
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::VersionConflict(_)
        | AppError::AlreadyExists(_)
        | AppError::InvalidTransition(_)
        | AppError::InUse(_) => StatusCode::CONFLICT,
        AppError::Expired(_) => StatusCode::GONE,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = status_for(&e);
        match &e {
            // The cause is logged once, here; the client gets no internals.
            AppError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            AppError::Unavailable(detail) => tracing::warn!(error = %detail, "dependency unavailable"),
            _ => {}
        }
        Self { status, code: e.code(), message: e.to_string() }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        r.json(Body { code: self.code, message: &self.message })
    }
}

/// Turns JSON body failures into our error shape: syntax → 400 `invalid_json`, well-formed but
/// wrong shape → 422 `validation_failed`, too big → 413, wrong content type → 415.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(de) if de.is_data() => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", de.to_string())
        }
        JsonPayloadError::Deserialize(de) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("request body is not valid JSON: {de}"))
        }
        other => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("cannot read the request body: {other}"))
        }
    };
    e.into()
}

/// Query-string failures: 400 `invalid_parameter`.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", format!("invalid query parameter: {err}")).into()
}

/// Path failures: 404 `not_found` (a path segment that cannot even be parsed names nothing).
pub fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource").into()
}

/// Unknown route.
pub async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").error_response()
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
        .error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_error_has_a_status_and_a_distinct_code() {
        let all = [
            AppError::Validation("x".into()),
            AppError::NotFound("case"),
            AppError::Unauthenticated("x"),
            AppError::InvalidCredentials,
            AppError::TokenExpired,
            AppError::Forbidden("x".into()),
            AppError::VersionConflict("case"),
            AppError::AlreadyExists("x".into()),
            AppError::InvalidTransition("x".into()),
            AppError::InUse("x".into()),
            AppError::Expired("survey"),
            AppError::Unavailable("x".into()),
            AppError::Internal("secret detail".into()),
        ];
        let mut codes = std::collections::HashSet::new();
        for e in &all {
            assert!(codes.insert(e.code()), "duplicate code {}", e.code());
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        let internal = ApiError::from(AppError::Internal("secret detail".into()));
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.message.contains("secret"), "internals must not leak");
    }
}
