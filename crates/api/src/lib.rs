//! Caseflow's HTTP layer: the REST API v1 on actix-web. Handlers are thin: they authenticate,
//! parse, call one `caseflow-app` use case and map the result; no SQL and no business rules
//! live here. This crate must not depend on diesel or the store.

pub mod chat;
pub mod desk;
pub mod error;
pub mod extract;
pub mod guard;
pub mod handlers;
pub mod idempotency;
pub mod inbox;
pub mod live;
pub mod openapi;
pub mod pages;
pub mod satisfaction;
pub mod session;
pub mod sla;
mod telemetry;
pub mod webhooks;

use actix_web::dev::Server;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpMessage, HttpServer};
use caseflow_app::App;
use handlers as h;
use std::net::TcpListener;
use std::time::Duration;

fn res(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(error::method_not_allowed))
}

/// Declares the API's routes once: the registration and the `API_ROUTES` table the OpenAPI
/// test compares with the spec come from the same list, so they cannot drift apart.
macro_rules! api_routes {
    ($($path:literal { $($method:ident => $handler:path),+ $(,)? })+) => {
        /// Every `(method, path)` served under `/api/v1`.
        pub const API_ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        fn api_scope() -> actix_web::Scope {
            web::scope("/api/v1")$(.service(res($path)$(.route(web::$method().to($handler)))+))+
        }
    };
}

api_routes! {
    "/auth/login" { post => h::login }
    "/auth/session" { post => crate::session::create_session, delete => crate::session::end_session }
    "/me" { get => h::me }
    "/inbox" { get => crate::inbox::inbox }
    "/cases" { get => h::list_cases, post => h::create_case }
    "/cases/stream" { get => crate::inbox::case_stream }
    "/cases/{id}" { get => h::get_case, patch => h::update_case }
    "/cases/{id}/messages" { get => h::list_messages, post => h::add_message }
    "/cases/{id}/events" { get => h::list_case_events }
    "/cases/{id}/routing" { get => h::case_routing }
    "/cases/{id}/skills" { put => h::set_case_skills }
    "/cases/{id}/offer/accept" { post => h::accept_offer }
    "/cases/{id}/offer/decline" { post => h::decline_offer }
    "/cases/{id}/sla" { get => crate::sla::case_sla }
    "/cases/{id}/satisfaction" { get => crate::satisfaction::case_satisfaction }
    "/cases/{id}/viewers/me" { put => crate::desk::view_case, delete => crate::desk::leave_case }
    "/cases/{id}/macros/{macro_id}/render" { post => crate::desk::render_macro }
    "/macros" { get => crate::desk::list_macros, post => crate::desk::create_macro }
    "/stats/overview" { get => crate::desk::stats_overview }
    "/macros/{id}" { get => crate::desk::get_macro, put => crate::desk::update_macro, delete => crate::desk::delete_macro }
    "/sla/calendars" { get => crate::sla::list_calendars, post => crate::sla::create_calendar }
    "/sla/calendars/{id}" { get => crate::sla::get_calendar, put => crate::sla::update_calendar, delete => crate::sla::delete_calendar }
    "/sla/policies" { get => crate::sla::list_policies, post => crate::sla::create_policy }
    "/sla/policies/{id}" { get => crate::sla::get_policy, put => crate::sla::update_policy, delete => crate::sla::delete_policy }
    "/alerts" { get => crate::sla::list_alerts }
    "/alerts/stream" { get => crate::sla::alerts_stream }
    "/alerts/{id}/acknowledge" { post => crate::sla::acknowledge_alert }
    "/webhooks" { get => crate::webhooks::list_webhooks, post => crate::webhooks::create_webhook }
    "/webhooks/{id}" { get => crate::webhooks::get_webhook, patch => crate::webhooks::update_webhook, delete => crate::webhooks::delete_webhook }
    "/webhooks/{id}/deliveries" { get => crate::webhooks::list_deliveries }
    "/webhooks/{id}/rotate-secret" { post => crate::webhooks::rotate_secret }
    "/webhooks/deliveries/{id}/replay" { post => crate::webhooks::replay_delivery }
    "/customers" { get => h::list_customers, post => h::create_customer }
    "/customers/{id}" { get => h::get_customer, patch => h::update_customer }
    "/customers/{id}/identities" { post => h::add_identity }
    "/customers/{id}/merge" { post => h::merge_customers }
    "/customers/{id}/unmerge" { post => h::unmerge_customer }
    "/agents" { get => h::list_agents, post => h::create_agent }
    "/agents/{id}" { get => h::get_agent, patch => h::update_agent }
    "/agents/{id}/presence" { put => h::set_presence }
    "/agents/{id}/skills" { put => h::set_skills }
    "/agents/{id}/capacities" { put => h::set_capacities }
    "/agents/{id}/events" { get => h::list_agent_events }
    "/teams" { get => h::list_teams, post => h::create_team }
    "/teams/{id}" { get => h::get_team, patch => h::update_team, delete => h::delete_team }
    "/skills" { get => h::list_skills, post => h::create_skill }
    "/skills/{id}" { get => h::get_skill, patch => h::update_skill, delete => h::delete_skill }
    "/api-tokens" { get => h::list_api_tokens, post => h::create_api_token }
    "/api-tokens/{id}" { delete => h::revoke_api_token }
    "/inbound" { get => h::list_inbound }
    "/inbound/email" { post => h::receive_email }
    "/inbound/{id}/raw" { get => h::inbound_raw }
    "/inbound/{id}/reprocess" { post => h::reprocess_inbound }
    "/chat/ws" { get => crate::chat::agent_ws }
    "/public/topics" { get => h::list_topics }
    "/public/support" { post => h::submit_support_json }
    "/public/satisfaction/{token}" { get => crate::satisfaction::get_survey, post => crate::satisfaction::rate }
}

/// Routes outside `/api/v1` that belong in the spec.
pub const ROOT_ROUTES: &[(&str, &str)] = &[("get", "/healthz"), ("get", "/readyz")];

/// Registers every route: health, the OpenAPI document and its reference page, and the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use utoipa::OpenApi;
    let spec = openapi::ApiDoc::openapi();
    let json = web::Data::new(openapi::SpecJson(spec.to_json().unwrap_or_default()));
    cfg.service(res("/healthz").route(web::get().to(h::healthz)))
        .service(res("/readyz").route(web::get().to(h::readyz)))
        .service(res("/support").route(web::get().to(pages::support_form)).route(web::post().to(pages::support_submit)))
        .service(
            res("/satisfaction/{token}")
                .route(web::get().to(satisfaction::survey_page))
                .route(web::post().to(satisfaction::survey_submit)),
        )
        .service(res("/chat").route(web::get().to(pages::chat_page)))
        .service(res("/chat/widget.js").route(web::get().to(pages::widget_js)))
        .service(res("/chat/ws").route(web::get().to(chat::visitor_ws)))
        .service(res("/static/caseflow.css").route(web::get().to(pages::stylesheet)))
        .service(res("/").route(web::get().to(pages::to_app)))
        .service(res("/app").route(web::get().to(pages::agent_app)))
        .service(res("/static/app.js").route(web::get().to(pages::app_script)))
        .service(res("/static/app.css").route(web::get().to(pages::app_stylesheet)))
        .service(
            api_scope()
                .app_data(json)
                .service(res("/openapi.json").route(web::get().to(openapi::serve_spec)))
                .wrap(actix_web::middleware::from_fn(idempotency::idempotency))
                // JSON and streams, never pages: a browser holding the session cookie that
                // opens an API URL gets nothing it would sniff or run.
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Content-Security-Policy", "sandbox; default-src 'none'; frame-ancestors 'none'")),
                ),
        )
        // After the API scope: its catch-all pattern is then never tried for API requests, and
        // the spec URL it would also serve is already answered inside the scope.
        .service(utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}").url("/api/v1/openapi.json", spec));
}

/// Builds the HTTP server on an already-bound listener (port 0 in tests).
pub fn build_server(app: App, listener: TcpListener) -> std::io::Result<Server> {
    let settings = app.settings().clone();
    let max_body = settings.limits.max_body_bytes;
    let metrics_on_main = settings.metrics.enabled && settings.metrics.bind.is_empty();
    let data = web::Data::new(app);
    let limits = web::Data::new(guard::Limits::new(&settings));
    let janitor = limits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            janitor.housekeeping();
        }
    });
    let mut server = HttpServer::new(move || {
        let mut app = actix_web::App::new()
            .app_data(data.clone())
            .app_data(limits.clone())
            .app_data(web::JsonConfig::default().limit(max_body).error_handler(error::json_error))
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .wrap(actix_web::middleware::from_fn(guard::rate_limit))
            .wrap(actix_web::middleware::from_fn(guard::http_metrics))
            .wrap(actix_web::middleware::from_fn(request_id_header))
            .wrap(tracing_actix_web::TracingLogger::<telemetry::RootSpan>::new())
            .configure(routes);
        if metrics_on_main {
            app = app.service(res("/metrics").route(web::get().to(h::metrics_protected)));
        }
        app.default_service(web::to(error::not_found))
    })
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(30))
    // Small frames (chat lines, acks) must not wait for the peer's delayed ACK (Nagle):
    // without this a second frame in a row could sit for 40 ms.
    .tcp_nodelay(true);
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.listen(listener)?.run())
}

/// Builds the separate, unauthenticated metrics server (`metrics.bind`), meant for a
/// loopback or internal address only.
pub fn build_metrics_server(app: App, listener: TcpListener) -> std::io::Result<Server> {
    let data = web::Data::new(app);
    Ok(HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .service(res("/metrics").route(web::get().to(h::metrics_open)))
            .default_service(web::to(error::not_found))
    })
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

/// Echoes the request id into an `X-Request-Id` response header so a client can quote it.
async fn request_id_header(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let id: Option<String> = req.extensions().get::<tracing_actix_web::RequestId>().map(|r| r.to_string());
    let mut res = next.call(req).await?;
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(id.as_str()).ok()) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}
