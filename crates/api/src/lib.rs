//! Caseflow's HTTP layer: the REST API v1 on actix-web. Handlers are thin: they authenticate,
//! parse, call one `caseflow-app` use case and map the result; no SQL and no business rules
//! live here. This crate must not depend on diesel or the store.

pub mod error;
pub mod extract;
pub mod guard;
pub mod handlers;
pub mod idempotency;
mod telemetry;

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

/// Registers every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/healthz").route(web::get().to(h::healthz)))
        .service(res("/readyz").route(web::get().to(h::readyz)))
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(idempotency::idempotency))
                .service(res("/auth/login").route(web::post().to(h::login)))
                .service(res("/me").route(web::get().to(h::me)))
                .service(res("/cases").route(web::get().to(h::list_cases)).route(web::post().to(h::create_case)))
                .service(res("/cases/{id}").route(web::get().to(h::get_case)).route(web::patch().to(h::update_case)))
                .service(
                    res("/cases/{id}/messages")
                        .route(web::get().to(h::list_messages))
                        .route(web::post().to(h::add_message)),
                )
                .service(res("/cases/{id}/events").route(web::get().to(h::list_case_events)))
                .service(
                    res("/customers").route(web::get().to(h::list_customers)).route(web::post().to(h::create_customer)),
                )
                .service(
                    res("/customers/{id}")
                        .route(web::get().to(h::get_customer))
                        .route(web::patch().to(h::update_customer)),
                )
                .service(res("/customers/{id}/identities").route(web::post().to(h::add_identity)))
                .service(res("/customers/{id}/merge").route(web::post().to(h::merge_customers)))
                .service(res("/agents").route(web::get().to(h::list_agents)).route(web::post().to(h::create_agent)))
                .service(res("/agents/{id}").route(web::get().to(h::get_agent)).route(web::patch().to(h::update_agent)))
                .service(res("/agents/{id}/presence").route(web::put().to(h::set_presence)))
                .service(res("/agents/{id}/skills").route(web::put().to(h::set_skills)))
                .service(res("/teams").route(web::get().to(h::list_teams)).route(web::post().to(h::create_team)))
                .service(
                    res("/teams/{id}")
                        .route(web::get().to(h::get_team))
                        .route(web::patch().to(h::update_team))
                        .route(web::delete().to(h::delete_team)),
                )
                .service(res("/skills").route(web::get().to(h::list_skills)).route(web::post().to(h::create_skill)))
                .service(
                    res("/skills/{id}")
                        .route(web::get().to(h::get_skill))
                        .route(web::patch().to(h::update_skill))
                        .route(web::delete().to(h::delete_skill)),
                )
                .service(
                    res("/api-tokens")
                        .route(web::get().to(h::list_api_tokens))
                        .route(web::post().to(h::create_api_token)),
                )
                .service(res("/api-tokens/{id}").route(web::delete().to(h::revoke_api_token))),
        );
}

/// Builds the HTTP server on an already-bound listener (port 0 in tests).
pub fn build_server(app: App, listener: TcpListener) -> std::io::Result<Server> {
    let settings = app.settings().clone();
    let max_body = settings.limits.max_body_bytes;
    let metrics_on_main = settings.metrics.enabled && settings.metrics.bind.is_empty();
    let data = web::Data::new(app);
    let limits = web::Data::new(guard::Limits::new(&settings.rate_limit));
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
    .client_request_timeout(Duration::from_secs(30));
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
