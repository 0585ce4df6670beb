//! Browser sessions for the agent inbox (ADR 0012): the session token lives in an HttpOnly,
//! `SameSite=Strict` cookie that page scripts cannot read; every request that changes
//! something must also carry `X-CSRF-Token`, an HMAC of the session only the server can
//! compute and only a same-origin page can read (from the login answer or the `cf_csrf`
//! cookie). Integrators keep using `Authorization: Bearer`, which takes precedence.

use crate::error::ApiError;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::directory::LoginRequest;
use caseflow_app::views::SessionView;
use caseflow_app::{App, AppError, Principal};

/// The HttpOnly cookie holding the session token.
pub const SESSION_COOKIE: &str = "cf_session";
/// The cookie holding the CSRF token (readable by the page, so a reload keeps working).
pub const CSRF_COOKIE: &str = "cf_csrf";
/// The header that must echo the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request authenticates.
#[derive(Clone)]
pub enum Credential {
    /// `Authorization: Bearer <token>` (agent JWT or API token).
    Bearer(String),
    /// The browser session cookie.
    Session(String),
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The request's credential: the `Authorization` header when present (it must then be a
/// well-formed bearer), otherwise the session cookie.
pub fn credential(req: &HttpRequest) -> Result<Option<Credential>, AppError> {
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        let v = h.to_str().map_err(|_| AppError::Unauthenticated("the Authorization header is not readable"))?;
        let token = v
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthenticated("the Authorization header must be `Bearer <token>`"))?;
        return Ok(Some(Credential::Bearer(token.to_owned())));
    }
    Ok(cookie(req, SESSION_COOKIE).map(Credential::Session))
}

/// Checks a credential again (long-lived streams and sockets): the principal it stands for
/// now, or why it no longer stands for anyone.
pub async fn recheck(app: &App, credential: &Credential) -> Result<Principal, AppError> {
    match credential {
        Credential::Bearer(t) => app.authenticate(t).await,
        Credential::Session(s) => app.authenticate_session(s).await,
    }
}

/// Whether the method only reads (no CSRF token needed).
fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates a request: bearer token, or session cookie plus `X-CSRF-Token` on changes.
pub async fn principal_of(req: &HttpRequest) -> Result<Principal, ApiError> {
    let app = req
        .app_data::<web::Data<App>>()
        .cloned()
        .ok_or_else(|| ApiError::from(AppError::Internal("application state missing".into())))?;
    let credential = credential(req)?
        .ok_or(AppError::Unauthenticated("missing Authorization: Bearer token (or a browser session)"))?;
    if let Credential::Session(session) = &credential {
        if !safe(req.method()) {
            let presented = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !app.csrf_ok(session, presented) {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "a browser session must send its X-CSRF-Token header on every change",
                ));
            }
        }
    }
    Ok(recheck(&app, &credential).await?)
}

/// Whether cookies must be `Secure`: HTTPS requests (as the proxy says) or `auth.cookie_secure`.
fn secure(req: &HttpRequest, app: &App) -> bool {
    app.settings().auth.cookie_secure || req.connection_info().scheme() == "https"
}

fn set_cookie(name: &str, value: &str, max_age: i64, http_only: bool, secure: bool) -> (header::HeaderName, String) {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    (header::SET_COOKIE, c)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/session",
    tag = "auth",
    summary = "Start a browser session",
    description = "For the agent inbox in a browser: checks the credentials like `/auth/login` and \
        sets two cookies, `cf_session` (HttpOnly, SameSite=Strict: the session) and `cf_csrf`. \
        Requests authenticated by the cookie that change something (POST, PUT, PATCH, DELETE) \
        must send `X-CSRF-Token` with the `csrf_token` of this answer, or get 403 `csrf_failed`. \
        Integrators use `/auth/login` or API tokens with `Authorization: Bearer` instead.",
    operation_id = "create_session",
    request_body = LoginRequest,
    responses((status = 200, description = "session started; cookies set", body = SessionView)),
    security(())
)]
pub async fn create_session(
    req: HttpRequest,
    app: web::Data<App>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let (token, view) = app.start_session(body.into_inner()).await?;
    let secure = secure(&req, &app);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header(set_cookie(SESSION_COOKIE, &token, view.expires_in, true, secure))
        .append_header(set_cookie(CSRF_COOKIE, &view.csrf_token, view.expires_in, false, secure))
        .json(view))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/session",
    tag = "auth",
    summary = "End the browser session",
    description = "Ends the browser session for good (the token is refused from now on, on every node within \
        10 s) and clears the cookies. Always succeeds, with or without a session.",
    operation_id = "end_session",
    responses((status = 204, description = "cookies cleared")),
    security(())
)]
pub async fn end_session(req: HttpRequest, app: web::Data<App>) -> HttpResponse {
    let secure = secure(&req, &app);
    if let Some(session) = cookie(&req, SESSION_COOKIE) {
        if let Err(e) = app.end_session(&session).await {
            // The cookies are cleared anyway; the token stays valid until it expires.
            tracing::warn!(error = %e, "could not record the end of a browser session");
        }
    }
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header(set_cookie(SESSION_COOKIE, "", 0, true, secure))
        .append_header(set_cookie(CSRF_COOKIE, "", 0, false, secure))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "x_cf_session=evil; cf_session=abc.def; cf_csrf=123"))
            .to_http_request();
        assert_eq!(cookie(&req, SESSION_COOKIE).as_deref(), Some("abc.def"));
        assert_eq!(cookie(&req, CSRF_COOKIE).as_deref(), Some("123"));
        assert_eq!(cookie(&req, "missing"), None);
    }

    #[test]
    fn the_authorization_header_wins_over_the_cookie() {
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer tok"))
            .insert_header((header::COOKIE, "cf_session=sess"))
            .to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Bearer(t))) if t == "tok"));
        let req = TestRequest::default().insert_header((header::COOKIE, "cf_session=sess")).to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Session(t))) if t == "sess"));
        let req = TestRequest::default().insert_header((header::AUTHORIZATION, "Basic x")).to_http_request();
        assert!(credential(&req).is_err());
    }
}
