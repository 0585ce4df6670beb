//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! request/response types' `ToSchema` derives. Served at `/api/v1/openapi.json`, rendered
//! offline by the vendored Swagger UI at `/api/docs/`.

use crate::handlers as h;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// Every error code the API returns (`code` in the error body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidParameter,
    Unauthenticated,
    InvalidCredentials,
    TokenExpired,
    Forbidden,
    CsrfFailed,
    NotFound,
    MethodNotAllowed,
    VersionConflict,
    AlreadyExists,
    InvalidTransition,
    InUse,
    Expired,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    WebsocketRequired,
    InternalError,
    ServiceUnavailable,
}

impl ErrorCode {
    /// All codes, for documentation and tests.
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidParameter,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidCredentials,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::CsrfFailed,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::VersionConflict,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidTransition,
        ErrorCode::InUse,
        ErrorCode::Expired,
        ErrorCode::IdempotencyInProgress,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::ValidationFailed,
        ErrorCode::RateLimited,
        ErrorCode::WebsocketRequired,
        ErrorCode::InternalError,
        ErrorCode::ServiceUnavailable,
    ];
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable.
    pub code: ErrorCode,
    /// For humans; may change.
    pub message: String,
}

/// The statuses any operation may answer with besides its own, and the codes behind each.
const STANDARD_ERRORS: [(&str, &str); 12] = [
    ("400", "invalid_json, invalid_parameter, websocket_required"),
    ("401", "unauthenticated, invalid_credentials, token_expired"),
    ("403", "forbidden"),
    ("404", "not_found"),
    ("405", "method_not_allowed"),
    ("409", "version_conflict, already_exists, invalid_transition, in_use, idempotency_in_progress"),
    ("413", "payload_too_large"),
    ("415", "unsupported_media_type"),
    ("422", "validation_failed, idempotency_key_reused"),
    ("429", "rate_limited (see Retry-After)"),
    ("500", "internal_error"),
    ("503", "service_unavailable"),
];

struct Conventions;

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .filter_map(Option::as_mut)
}

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An agent session token from POST /api/v1/auth/login, or an integrator API token (cfk_...)",
                    ))
                    .build(),
            ),
        );
        api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
        for item in api.paths.paths.values_mut() {
            for op in operations(item) {
                for (status, codes) in STANDARD_ERRORS {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(format!("Error: {codes}"))
                            .content(
                                "application/json",
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                            )
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

/// The document, serialized once at start-up.
pub struct SpecJson(pub String);

/// `GET /api/v1/openapi.json`.
pub async fn serve_spec(spec: actix_web::web::Data<SpecJson>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("application/json").body(spec.0.clone())
}

/// The generated document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Caseflow API",
        version = "1",
        description = "Omnichannel support ticketing and case routing. Conventions (pagination, concurrency, idempotency, rate limits, errors): docs/api.md."
    ),
    paths(
        h::healthz, h::readyz, h::login, crate::session::create_session, crate::session::end_session, h::me,
        h::create_case, h::list_cases, h::get_case, h::update_case,
        h::list_messages, h::add_message, h::list_case_events, h::case_routing, h::set_case_skills, h::accept_offer, h::decline_offer,
        h::create_customer, h::list_customers, h::get_customer, h::update_customer, h::add_identity, h::merge_customers, h::unmerge_customer,
        h::create_agent, h::list_agents, h::get_agent, h::update_agent, h::set_presence, h::set_skills, h::set_capacities, h::list_agent_events,
        h::create_team, h::list_teams, h::get_team, h::update_team, h::delete_team,
        h::create_skill, h::list_skills, h::get_skill, h::update_skill, h::delete_skill,
        h::create_api_token, h::list_api_tokens, h::revoke_api_token,
        h::receive_email, h::list_inbound, h::inbound_raw, h::reprocess_inbound,
        crate::chat::agent_ws, h::list_topics, h::submit_support_json,
        crate::sla::case_sla, crate::sla::list_calendars, crate::sla::create_calendar, crate::sla::get_calendar,
        crate::sla::update_calendar, crate::sla::delete_calendar, crate::sla::list_policies, crate::sla::create_policy,
        crate::sla::get_policy, crate::sla::update_policy, crate::sla::delete_policy, crate::sla::list_alerts,
        crate::sla::alerts_stream, crate::sla::acknowledge_alert, crate::inbox::inbox, crate::inbox::case_stream,
        crate::desk::view_case, crate::desk::leave_case, crate::desk::list_macros, crate::desk::create_macro,
        crate::desk::get_macro, crate::desk::update_macro, crate::desk::delete_macro, crate::desk::render_macro,
        crate::desk::stats_overview,
        crate::webhooks::create_webhook, crate::webhooks::list_webhooks, crate::webhooks::get_webhook,
        crate::webhooks::update_webhook, crate::webhooks::delete_webhook, crate::webhooks::list_deliveries,
        crate::webhooks::replay_delivery, crate::webhooks::rotate_secret,
        crate::satisfaction::case_satisfaction, crate::satisfaction::get_survey, crate::satisfaction::rate,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&Conventions),
    tags(
        (name = "cases", description = "Cases, their messages and audit log"),
        (name = "customers", description = "One customer across every channel"),
        (name = "agents", description = "Staff, presence, skills and capacities"),
        (name = "routing", description = "Automatic assignment: case requirements and explained decisions"),
        (name = "sla", description = "Business calendars, SLA policies, case clocks, alerts and their live stream"),
        (name = "webhooks", description = "Signed event deliveries to integrators, with a delivery log and replay"),
        (name = "macros", description = "Canned replies with placeholders"),
        (name = "satisfaction", description = "Customer satisfaction: the survey of a solved case and the customer's answer"),
        (name = "stats", description = "Figures for supervisors: queues, load, cases per hour, first responses and breaches per day"),
        (name = "teams"), (name = "skills"),
        (name = "api-tokens", description = "Integrator credentials"),
        (name = "inbound", description = "Raw inbound messages: email intake, quarantine"),
        (name = "chat", description = "Live chat for agents (WebSocket)"),
        (name = "public", description = "Endpoints for customers' browsers and embedding sites: no credentials, limited per client IP"),
        (name = "auth"), (name = "health"),
    )
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_served_route_is_in_the_spec_and_every_spec_route_is_served() {
        let mut spec = ApiDoc::openapi();
        let mut documented = BTreeSet::new();
        for (path, item) in spec.paths.paths.iter_mut() {
            for (method, present) in [
                ("get", item.get.is_some()),
                ("post", item.post.is_some()),
                ("put", item.put.is_some()),
                ("patch", item.patch.is_some()),
                ("delete", item.delete.is_some()),
            ] {
                if present {
                    documented.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = crate::API_ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), format!("/api/v1{p}")))
            .chain(crate::ROOT_ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())))
            .collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&served).collect();
        assert!(missing.is_empty(), "served but not in the OpenAPI spec: {missing:?}");
        assert!(phantom.is_empty(), "in the OpenAPI spec but not served: {phantom:?}");
    }

    #[test]
    fn the_spec_is_openapi_3_1_with_bearer_auth_and_error_responses() {
        let json = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"), "{}", json["openapi"]);
        assert_eq!(json["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let create = &json["paths"]["/api/v1/cases"]["post"];
        assert!(create["responses"]["201"].is_object());
        assert!(create["responses"]["422"].is_object());
        assert_eq!(json["paths"]["/healthz"]["get"]["security"], serde_json::json!([{}]));
    }

    #[test]
    fn every_error_code_the_api_returns_is_documented() {
        use caseflow_app::AppError;
        let documented: BTreeSet<String> =
            ErrorCode::ALL.iter().map(|c| serde_json::to_value(c).unwrap().as_str().unwrap().to_owned()).collect();
        let from_app = [
            AppError::Validation(String::new()).code(),
            AppError::NotFound("x").code(),
            AppError::Unauthenticated("x").code(),
            AppError::InvalidCredentials.code(),
            AppError::TokenExpired.code(),
            AppError::Forbidden(String::new()).code(),
            AppError::VersionConflict("x").code(),
            AppError::AlreadyExists(String::new()).code(),
            AppError::InvalidTransition(String::new()).code(),
            AppError::InUse(String::new()).code(),
            AppError::Expired("x").code(),
            AppError::Unavailable(String::new()).code(),
            AppError::Internal(String::new()).code(),
        ];
        for code in from_app {
            assert!(documented.contains(code), "{code} is not in ErrorCode");
        }
        // And every code the HTTP layer writes itself (`ApiError::new(status, "code", ...)`).
        let sources = [
            include_str!("error.rs"),
            include_str!("handlers.rs"),
            include_str!("chat.rs"),
            include_str!("extract.rs"),
            include_str!("idempotency.rs"),
            include_str!("guard.rs"),
            include_str!("session.rs"),
            include_str!("pages.rs"),
            include_str!("satisfaction.rs"),
        ];
        let mut seen = 0;
        for src in sources {
            for (i, _) in src.match_indices("ApiError::new(") {
                let after = &src[i..];
                let Some(open) = after.find('"') else { continue };
                let rest = &after[open + 1..];
                let code = &rest[..rest.find('"').unwrap_or(0)];
                if code.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !code.is_empty() {
                    seen += 1;
                    assert!(documented.contains(code), "{code} (ApiError::new) is not in ErrorCode");
                }
            }
        }
        assert!(seen >= 15, "the scan found the HTTP layer's codes ({seen})");
        let docs = include_str!("../../../docs/api.md");
        for code in &documented {
            assert!(docs.contains(&format!("`{code}`")), "{code} is not in docs/api.md");
        }
    }
}
