//! `Idempotency-Key` on creating `POST`s: the first request runs and its response is stored;
//! a retry with the same key and the same request replays it (`Idempotent-Replayed: true`);
//! the same key with a different request is refused with `422 idempotency_key_reused`; a retry
//! while the first is still running gets `409 idempotency_in_progress`. 5xx responses are not
//! stored, so a retry after a server error runs again.
//! Not applied to login, API-token creation and webhook secret rotation (a replay would re-send
//! a secret, for a rotation one that may no longer be current).

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use caseflow_app::idempotency::{scope_of, validate_key, Begin, StoredResponse};
use caseflow_app::App;
use sha2::{Digest, Sha256};

/// Headers worth replaying with a stored response.
const REPLAYED_HEADERS: [&str; 3] = ["content-type", "location", "etag"];

fn bytes_to_payload(buf: web::Bytes) -> actix_web::dev::Payload {
    let (_, mut pl) = actix_http::h1::Payload::create(true);
    pl.unread_data(buf);
    actix_web::dev::Payload::from(pl)
}

fn error(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(e.error_response())
}

fn applies(req: &ServiceRequest) -> bool {
    req.method() == Method::POST
        && !req.path().ends_with("/auth/login")
        // A replay would hand out the CSRF token without the cookies it goes with.
        && !req.path().ends_with("/auth/session")
        && !req.path().starts_with("/api/v1/api-tokens")
        && !req.path().ends_with("/rotate-secret")
        // Inbound mail is deduplicated by Message-ID, and may be larger than the JSON limit.
        && !req.path().starts_with("/api/v1/inbound")
}

/// The middleware; wraps the `/api/v1` scope.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let raw_key = req.headers().get("idempotency-key").map(|v| v.to_str().map(str::to_owned));
    let (Some(raw_key), true) = (raw_key, applies(&req)) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let key = match raw_key {
        Ok(k) if validate_key(&k).is_ok() => k,
        _ => {
            let e = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            );
            return Ok(error(req, e));
        }
    };
    let Some(app) = req.app_data::<web::Data<App>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    // Keys belong to a principal. Without a valid one, let the handler answer 401.
    let principal = crate::session::principal_of(req.request()).await.ok();
    let Some(principal) = principal else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    req.extensions_mut().insert(principal.clone());

    let body = match req.extract::<web::Bytes>().await {
        Ok(b) => b,
        Err(_) => {
            let limit = app.settings().limits.max_body_bytes;
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than the limit of {limit} bytes"),
            );
            return Ok(error(req, e));
        }
    };
    let mut h = Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update(b" ");
    h.update(req.path().as_bytes());
    h.update(b"\n");
    h.update(&body);
    let hash: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    req.set_payload(bytes_to_payload(body));

    let scope = scope_of(&principal);
    match app.idempotency_begin(scope.clone(), key.clone(), hash).await {
        Err(e) => Ok(error(req, e.into())),
        Ok(Begin::Mismatch) => Ok(error(
            req,
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            ),
        )),
        Ok(Begin::InProgress) => {
            let mut res = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .error_response();
            res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            Ok(req.into_response(res))
        }
        Ok(Begin::Replay(stored)) => {
            app.metrics().idempotent_replays.inc();
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut res = HttpResponse::build(status);
            for (name, value) in &stored.headers {
                res.insert_header((name.as_str(), value.as_str()));
            }
            res.insert_header(("idempotent-replayed", "true"));
            Ok(req.into_response(res.body(stored.body)))
        }
        Ok(Begin::Proceed) => match next.call(req).await {
            Ok(res) => {
                if res.status().is_server_error() {
                    if let Err(e) = app.idempotency_abandon(scope, key).await {
                        tracing::warn!(error = %e, "could not release an idempotency key");
                    }
                    return Ok(res.map_into_boxed_body());
                }
                let (req, res) = res.into_parts();
                let status = res.status();
                let headers: Vec<(String, String)> = REPLAYED_HEADERS
                    .iter()
                    .filter_map(|n| {
                        res.headers().get(*n).and_then(|v| v.to_str().ok()).map(|v| ((*n).to_owned(), v.to_owned()))
                    })
                    .collect();
                let (head, body) = res.into_parts();
                let bytes = actix_web::body::to_bytes(body)
                    .await
                    .map_err(|_| actix_web::error::ErrorInternalServerError("response body could not be read"))?;
                let stored = StoredResponse { status: status.as_u16(), headers, body: bytes.to_vec() };
                if let Err(e) = app.idempotency_complete(scope, key, stored).await {
                    tracing::warn!(error = %e, "could not store an idempotent response");
                }
                Ok(ServiceResponse::new(req, head.set_body(bytes).map_into_boxed_body()))
            }
            Err(e) => {
                if let Err(err) = app.idempotency_abandon(scope, key).await {
                    tracing::warn!(error = %err, "could not release an idempotency key");
                }
                Err(e)
            }
        },
    }
}
