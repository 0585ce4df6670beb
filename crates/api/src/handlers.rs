//! Thin handlers: authenticate → parse → call one use case → map to JSON.

use crate::error::ApiError;
use crate::extract::{etag, Auth, IfMatch};
use actix_web::{web, HttpResponse};
use caseflow_app::cases::{CasePatch, CaseQuery, NewCase, NewMessage};
use caseflow_app::customers::{CustomerPatch, MergeRequest, NewCustomer, NewIdentity};
use caseflow_app::directory::{
    AgentPatch, LoginRequest, NamedInput, NewAgent, NewApiToken, PresenceRequest, SetSkills,
};
use caseflow_app::App;
use serde::Deserialize;

type Res = Result<HttpResponse, ApiError>;
type Id = web::Path<String>;

/// Cursor and page size for sub-collections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Customer search.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn created(location: String, body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created().insert_header(("Location", location)).json(body)
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(app: web::Data<App>) -> Res {
    app.ready().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

pub async fn metrics_open(app: web::Data<App>) -> Res {
    let body = app.render_metrics().await?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body))
}

/// `/metrics` on the main port: requires `Authorization: Bearer <metrics.token>`.
pub async fn metrics_protected(app: web::Data<App>, req: actix_web::HttpRequest) -> Res {
    use sha2::{Digest, Sha256};
    let expected = app.settings().metrics.token.expose().to_owned();
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compare digests so the comparison time does not depend on where the strings differ.
    if expected.is_empty() || Sha256::digest(given.as_bytes()) != Sha256::digest(expected.as_bytes()) {
        return Err(
            caseflow_app::AppError::Unauthenticated("metrics need `Authorization: Bearer <metrics.token>`").into()
        );
    }
    metrics_open(app).await
}

pub async fn login(app: web::Data<App>, body: web::Json<LoginRequest>) -> Res {
    Ok(HttpResponse::Ok().json(app.login(body.into_inner()).await?))
}

pub async fn me(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(app.me(&who).await?))
}

// Cases

pub async fn create_case(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewCase>) -> Res {
    let r = app.create_case(&who, body.into_inner()).await?;
    let location = format!("/api/v1/cases/{}", r.case.case.id);
    let tag = etag(r.case.case.version);
    Ok(if r.created {
        HttpResponse::Created().insert_header(("Location", location)).insert_header(tag).json(r.case)
    } else {
        HttpResponse::Ok().insert_header(("Location", location)).insert_header(tag).json(r.case)
    })
}

pub async fn list_cases(app: web::Data<App>, Auth(who): Auth, q: web::Query<CaseQuery>) -> Res {
    Ok(HttpResponse::Ok().json(app.list_cases(&who, q.into_inner()).await?))
}

pub async fn get_case(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    let c = app.get_case(&who, id.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.case.version)).json(c))
}

pub async fn update_case(app: web::Data<App>, Auth(who): Auth, id: Id, m: IfMatch, body: web::Json<CasePatch>) -> Res {
    let c = app.update_case(&who, id.into_inner(), body.into_inner(), m.0).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.case.version)).json(c))
}

pub async fn list_messages(app: web::Data<App>, Auth(who): Auth, id: Id, q: web::Query<PageQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_messages(&who, id.into_inner(), q.cursor, q.limit).await?))
}

pub async fn add_message(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NewMessage>) -> Res {
    let id = id.into_inner();
    let m = app.add_message(&who, id.clone(), body.into_inner()).await?;
    Ok(created(format!("/api/v1/cases/{id}/messages"), m))
}

pub async fn list_case_events(app: web::Data<App>, Auth(who): Auth, id: Id, q: web::Query<PageQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_case_events(&who, id.into_inner(), q.cursor, q.limit).await?))
}

// Customers

pub async fn create_customer(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewCustomer>) -> Res {
    let c = app.create_customer(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/customers/{}", c.customer.id), c))
}

pub async fn list_customers(app: web::Data<App>, Auth(who): Auth, q: web::Query<CustomerQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_customers(&who, q.q, q.cursor, q.limit).await?))
}

pub async fn get_customer(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    let c = app.get_customer(&who, id.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.customer.version)).json(c))
}

pub async fn update_customer(
    app: web::Data<App>,
    Auth(who): Auth,
    id: Id,
    m: IfMatch,
    body: web::Json<CustomerPatch>,
) -> Res {
    let c = app.update_customer(&who, id.into_inner(), body.into_inner(), m.0).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.customer.version)).json(c))
}

pub async fn add_identity(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NewIdentity>) -> Res {
    let c = app.add_identity(&who, id.into_inner(), body.into_inner()).await?;
    Ok(created(format!("/api/v1/customers/{}", c.customer.id), c))
}

pub async fn merge_customers(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<MergeRequest>) -> Res {
    Ok(HttpResponse::Ok().json(app.merge_customers(&who, id.into_inner(), body.into_inner()).await?))
}

// Agents, teams, skills

pub async fn create_agent(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewAgent>) -> Res {
    let a = app.create_agent(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/agents/{}", a.id), a))
}

pub async fn list_agents(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": app.list_agents(&who).await?})))
}

pub async fn get_agent(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_agent(&who, id.into_inner()).await?))
}

pub async fn update_agent(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<AgentPatch>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_agent(&who, id.into_inner(), body.into_inner()).await?))
}

pub async fn set_presence(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<PresenceRequest>) -> Res {
    Ok(HttpResponse::Ok().json(app.set_presence(&who, id.into_inner(), body.into_inner()).await?))
}

pub async fn set_skills(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<SetSkills>) -> Res {
    Ok(HttpResponse::Ok().json(app.set_agent_skills(&who, id.into_inner(), body.into_inner()).await?))
}

pub async fn create_team(app: web::Data<App>, Auth(who): Auth, body: web::Json<NamedInput>) -> Res {
    let t = app.create_team(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/teams/{}", t.id), t))
}

pub async fn list_teams(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": app.list_teams(&who).await?})))
}

pub async fn get_team(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_team(&who, id.into_inner()).await?))
}

pub async fn update_team(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NamedInput>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_team(&who, id.into_inner(), body.into_inner()).await?))
}

pub async fn delete_team(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_team(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn create_skill(app: web::Data<App>, Auth(who): Auth, body: web::Json<NamedInput>) -> Res {
    let s = app.create_skill(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/skills/{}", s.id), s))
}

pub async fn list_skills(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": app.list_skills(&who).await?})))
}

pub async fn get_skill(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_skill(&who, id.into_inner()).await?))
}

pub async fn update_skill(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NamedInput>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_skill(&who, id.into_inner(), body.into_inner()).await?))
}

pub async fn delete_skill(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_skill(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

// API tokens

pub async fn create_api_token(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewApiToken>) -> Res {
    let t = app.create_api_token(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/api-tokens/{}", t.info.id), t))
}

pub async fn list_api_tokens(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": app.list_api_tokens(&who).await?})))
}

pub async fn revoke_api_token(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.revoke_api_token(&who, id.into_inner()).await?))
}
