//! One span per request with a request id, the matched route pattern and the status.
//! Deliberately not the default span: that records the full target (query strings can hold
//! search text such as email addresses) and the client IP, both personal data.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::RequestId;

pub struct RootSpan;

impl tracing_actix_web::RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(|r| r.to_string()).unwrap_or_default();
        tracing::info_span!(
            "http_request",
            method = %request.method(),
            route = tracing::field::Empty,
            status = tracing::field::Empty,
            request_id = %request_id,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        match outcome {
            Ok(res) => {
                let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                let status = res.status().as_u16();
                span.record("route", route.as_str());
                span.record("status", status);
                span.in_scope(|| {
                    if status >= 500 {
                        tracing::warn!(status, route = %route, "request failed");
                    } else {
                        tracing::info!(status, route = %route, "request completed");
                    }
                });
            }
            Err(e) => {
                let status = e.as_response_error().status_code().as_u16();
                span.record("status", status);
                span.in_scope(|| tracing::warn!(status, "request error"));
            }
        }
    }
}
