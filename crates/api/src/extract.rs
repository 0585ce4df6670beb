//! Request extractors: the authenticated principal and optimistic-concurrency headers.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use caseflow_app::Principal;
use std::future::Future;
use std::pin::Pin;

/// The caller, authenticated from `Authorization: Bearer <token>` (agent JWT or API token) or
/// from a browser session cookie (with `X-CSRF-Token` on changes; see [`crate::session`]).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Already authenticated by the idempotency middleware.
        if let Some(p) = req.extensions().get::<Principal>().cloned() {
            return Box::pin(async move { Ok(Auth(p)) });
        }
        let req = req.clone();
        Box::pin(async move { Ok(Auth(crate::session::principal_of(&req).await?)) })
    }
}

/// The `If-Match` header as a version number (`"3"`, `W/"3"` or `3`).
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<i64>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(v) => v
                .to_str()
                .ok()
                .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
                .and_then(|s| s.parse::<i64>().ok())
                .map(|n| IfMatch(Some(n)))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_parameter",
                        "If-Match must be a version, e.g. \"3\"",
                    )
                }),
        };
        std::future::ready(parsed)
    }
}

/// An `ETag` header value for a version.
pub fn etag(version: i64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}
