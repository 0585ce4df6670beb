//! Request guards that wrap every route: per-credential and per-IP rate limits (429 with
//! `Retry-After` and `RateLimit-*` headers) and HTTP metrics by route pattern.

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};
use caseflow_app::App;
use caseflow_app::Settings;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::time::Instant;

/// The rate limiters of one server node.
pub struct Limits {
    enabled: bool,
    trust_forwarded_for: bool,
    per_token: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<String>,
    /// New web-form submissions and chat sessions per client IP (`web_form.per_ip_*`).
    public: DefaultKeyedRateLimiter<String>,
    token_limit: u32,
    ip_limit: u32,
    public_limit: u32,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl Limits {
    /// Limiters configured from `rate_limit.*` and `web_form.per_ip_*`.
    pub fn new(settings: &Settings) -> Self {
        let s = &settings.rate_limit;
        let w = &settings.web_form;
        Self {
            public: RateLimiter::keyed(quota(w.per_ip_per_minute, w.per_ip_burst)),
            public_limit: w.per_ip_burst,
            enabled: s.enabled,
            trust_forwarded_for: s.trust_forwarded_for,
            per_token: RateLimiter::keyed(quota(s.per_token_per_minute, s.per_token_burst)),
            per_ip: RateLimiter::keyed(quota(s.per_ip_per_minute, s.per_ip_burst)),
            token_limit: s.per_token_burst,
            ip_limit: s.per_ip_burst,
        }
    }

    /// Forgets buckets that are full again, bounding memory.
    pub fn housekeeping(&self) {
        for l in [&self.per_token, &self.per_ip, &self.public] {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// The client's IP as the limits see it (`rate_limit.trust_forwarded_for`).
    pub fn client_ip(&self, req: &HttpRequest) -> String {
        client_ip_of(req.headers(), req.peer_addr(), self.trust_forwarded_for)
    }

    /// Takes one token from the IP's bucket for new submissions (web form, chat start).
    /// `Err` carries the seconds to wait. Always allowed when rate limiting is disabled.
    pub fn check_public(&self, ip: &str) -> Result<(), u64> {
        if !self.enabled {
            return Ok(());
        }
        self.public.check_key(&ip.to_owned()).map_err(|not_until| wait_secs(&not_until))
    }

    /// The burst size of the public bucket (for `RateLimit-Limit`).
    pub fn public_limit(&self) -> u32 {
        self.public_limit
    }
}

fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

fn wait_secs(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

fn client_ip_of(headers: &header::HeaderMap, peer: Option<std::net::SocketAddr>, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return first.to_owned();
        }
    }
    peer.map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Applies the per-credential limit to requests that carry `Authorization` or a session
/// cookie, and the per-IP limit to those that do not (login, public endpoints).
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = req.app_data::<web::Data<Limits>>().cloned();
    let Some(limits) = limits.filter(|l| l.enabled && !exempt(req.path())) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    // Logging in is limited per client IP whatever credential the request carries: an
    // unverified header or cookie must not open a fresh bucket for each password guess.
    let login = req.path().ends_with("/auth/login") || req.path().ends_with("/auth/session");
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| crate::session::cookie(req.request(), crate::session::SESSION_COOKIE))
        .filter(|_| !login);
    let (kind, outcome, limit) = match credential {
        Some(c) => {
            let key: String = Sha256::digest(c.as_bytes()).iter().take(12).map(|b| format!("{b:02x}")).collect();
            ("token", limits.per_token.check_key(&key), limits.token_limit)
        }
        None => {
            let key = client_ip_of(req.headers(), req.peer_addr(), limits.trust_forwarded_for);
            ("ip", limits.per_ip.check_key(&key), limits.ip_limit)
        }
    };
    match outcome {
        Ok(()) => next.call(req).await.map(ServiceResponse::map_into_boxed_body),
        Err(not_until) => {
            let secs = wait_secs(&not_until);
            if let Some(app) = req.app_data::<web::Data<App>>() {
                app.metrics().rate_limited.with_label_values(&[kind]).inc();
            }
            Ok(req.into_response(rate_limited(limit, secs, "too many requests")))
        }
    }
}

/// The JSON `429 rate_limited` answer ("`what`; retry in N s") with its headers.
pub fn rate_limited(limit: u32, secs: u64, what: &str) -> actix_web::HttpResponse {
    let mut res = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("{what}; retry in {secs} s"))
        .error_response();
    set_limit_headers(&mut res, limit, secs);
    res
}

/// Adds `Retry-After` and the `RateLimit-*` headers to a 429 response.
pub fn set_limit_headers(res: &mut actix_web::HttpResponse, limit: u32, secs: u64) {
    let h = res.headers_mut();
    for (name, value) in [
        ("retry-after", secs.to_string()),
        ("ratelimit-limit", limit.to_string()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", secs.to_string()),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            h.insert(header::HeaderName::from_static(name), v);
        }
    }
}

/// Counts requests and records latency by method, route pattern and status. The route
/// pattern (`/api/v1/cases/{id}`), never the path, keeps label cardinality bounded and ids out
/// of the metrics.
pub async fn http_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let app = req.app_data::<web::Data<App>>().cloned();
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    if let Some(app) = app {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        let status = res.status().as_u16().to_string();
        let m = app.metrics();
        m.http_requests.with_label_values(&[method.as_str(), route.as_str(), status.as_str()]).inc();
        m.http_duration.with_label_values(&[method.as_str(), route.as_str()]).observe(start.elapsed().as_secs_f64());
    }
    Ok(res)
}
