//! Thin handlers: authenticate → parse → call one use case → map to JSON.

use crate::error::ApiError;
use crate::extract::{etag, Auth, IfMatch};
use actix_web::{web, HttpResponse};
use caseflow_app::cases::{CasePatch, CaseQuery, NewCase, NewMessage};
use caseflow_app::customers::{CustomerPatch, MergeRequest, NewCustomer, NewIdentity};
use caseflow_app::directory::{
    AgentPatch, LoginRequest, NamedInput, NewAgent, NewApiToken, PresenceRequest, SetSkills,
};
use caseflow_app::routing::{SetCapacities, SetCaseSkills};
use caseflow_app::App;
use serde::Deserialize;

type Res = Result<HttpResponse, ApiError>;
type Id = web::Path<String>;

/// A complete, unpaginated list.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// Health and readiness answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// `ok` or `ready`.
    pub status: String,
}

/// Cursor and page size for sub-collections.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Customer search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    pub q: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

pub(crate) fn created(location: String, body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created().insert_header(("Location", location)).json(body)
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness: the process answers",
    operation_id = "healthz",
    responses((status = 200, description = "alive", body = StatusBody)),
    security(())
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(StatusBody { status: "ok".into() })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness: the database answers",
    operation_id = "readyz",
    responses((status = 200, description = "ready", body = StatusBody)),
    security(())
)]
pub async fn readyz(app: web::Data<App>) -> Res {
    app.ready().await?;
    Ok(HttpResponse::Ok().json(StatusBody { status: "ready".into() }))
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

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    summary = "Log in as an agent and get a session token",
    operation_id = "login",
    request_body = LoginRequest,
    responses((status = 200, description = "session token", body = caseflow_app::views::LoginView)),
    security(())
)]
pub async fn login(app: web::Data<App>, body: web::Json<LoginRequest>) -> Res {
    Ok(HttpResponse::Ok().json(app.login(body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    summary = "The calling agent",
    operation_id = "me",
    responses((status = 200, description = "the agent", body = caseflow_app::views::AgentView))
)]
pub async fn me(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(app.me(&who).await?))
}

// Cases

#[utoipa::path(
    post,
    path = "/api/v1/cases",
    tag = "cases",
    summary = "Create a case with the first message of the customer",
    operation_id = "create_case",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NewCase,
    responses((status = 201, description = "created", body = caseflow_app::views::CaseDetail), (status = 200, description = "external_id seen before: the existing case", body = caseflow_app::views::CaseDetail))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/cases",
    tag = "cases",
    summary = "List cases with filters and cursor pagination",
    operation_id = "list_cases",
    params(CaseQuery),
    responses((status = 200, description = "one page", body = caseflow_app::Page<caseflow_app::views::CaseView>))
)]
pub async fn list_cases(app: web::Data<App>, Auth(who): Auth, q: web::Query<CaseQuery>) -> Res {
    Ok(HttpResponse::Ok().json(app.list_cases(&who, q.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}",
    tag = "cases",
    summary = "One case",
    operation_id = "get_case",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the case (ETag: version)", body = caseflow_app::views::CaseDetail))
)]
pub async fn get_case(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    let c = app.get_case(&who, id.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.case.version)).json(c))
}

#[utoipa::path(
    patch,
    path = "/api/v1/cases/{id}",
    tag = "cases",
    summary = "Change status, priority, team, assignee or subject",
    operation_id = "update_case",
    params(("id" = String, Path, description = "Resource id"), ("If-Match" = Option<String>, Header, description = "Expected version, e.g. `\"3\"`; 409 version_conflict if the resource changed")),
    request_body = CasePatch,
    responses((status = 200, description = "updated", body = caseflow_app::views::CaseDetail))
)]
pub async fn update_case(app: web::Data<App>, Auth(who): Auth, id: Id, m: IfMatch, body: web::Json<CasePatch>) -> Res {
    let c = app.update_case(&who, id.into_inner(), body.into_inner(), m.0).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.case.version)).json(c))
}

#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/messages",
    tag = "cases",
    summary = "Messages of the case, oldest first",
    operation_id = "list_messages",
    params(("id" = String, Path, description = "Resource id"), PageQuery),
    responses((status = 200, description = "one page", body = caseflow_app::Page<caseflow_app::views::MessageView>))
)]
pub async fn list_messages(app: web::Data<App>, Auth(who): Auth, id: Id, q: web::Query<PageQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_messages(&who, id.into_inner(), q.cursor, q.limit).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/cases/{id}/messages",
    tag = "cases",
    summary = "Reply, add an internal note, or relay a customer message",
    operation_id = "add_message",
    params(("id" = String, Path, description = "Resource id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NewMessage,
    responses((status = 201, description = "added", body = caseflow_app::views::MessageView))
)]
pub async fn add_message(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NewMessage>) -> Res {
    let id = id.into_inner();
    let m = app.add_message(&who, id.clone(), body.into_inner()).await?;
    Ok(created(format!("/api/v1/cases/{id}/messages"), m))
}

#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/events",
    tag = "cases",
    summary = "Audit log of the case, oldest first",
    operation_id = "list_case_events",
    params(("id" = String, Path, description = "Resource id"), PageQuery),
    responses((status = 200, description = "one page", body = caseflow_app::Page<caseflow_app::views::EventView>))
)]
pub async fn list_case_events(app: web::Data<App>, Auth(who): Auth, id: Id, q: web::Query<PageQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_case_events(&who, id.into_inner(), q.cursor, q.limit).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/routing",
    tag = "routing",
    summary = "How routing sees the case: requirements, state and the latest decisions with their explanations",
    operation_id = "case_routing",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the case's routing", body = caseflow_app::routing::CaseRouting))
)]
pub async fn case_routing(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.case_routing(&who, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/cases/{id}/skills",
    tag = "routing",
    summary = "Replace the skills a case requires or prefers",
    operation_id = "set_case_skills",
    params(("id" = String, Path, description = "Resource id")),
    request_body = SetCaseSkills,
    responses((status = 200, description = "updated", body = caseflow_app::routing::CaseRouting))
)]
pub async fn set_case_skills(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<SetCaseSkills>) -> Res {
    Ok(HttpResponse::Ok().json(app.set_case_skills(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/cases/{id}/offer/accept",
    tag = "routing",
    summary = "Accept the case routing offered you (offer mode)",
    operation_id = "accept_offer",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "assigned to you", body = caseflow_app::routing::CaseRouting))
)]
pub async fn accept_offer(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.accept_offer(&who, id.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/cases/{id}/offer/decline",
    tag = "routing",
    summary = "Decline the case routing offered you (offer mode): it moves on, and you are set to routing.offer_refused_presence",
    operation_id = "decline_offer",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "declined", body = caseflow_app::routing::CaseRouting))
)]
pub async fn decline_offer(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.decline_offer(&who, id.into_inner()).await?))
}

// Customers

#[utoipa::path(
    post,
    path = "/api/v1/customers",
    tag = "customers",
    summary = "Create a customer with identities",
    operation_id = "create_customer",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NewCustomer,
    responses((status = 201, description = "created", body = caseflow_app::views::CustomerDetail))
)]
pub async fn create_customer(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewCustomer>) -> Res {
    let c = app.create_customer(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/customers/{}", c.customer.id), c))
}

#[utoipa::path(
    get,
    path = "/api/v1/customers",
    tag = "customers",
    summary = "Search customers by name or identity",
    operation_id = "list_customers",
    params(CustomerQuery),
    responses((status = 200, description = "one page", body = caseflow_app::Page<caseflow_app::views::CustomerView>))
)]
pub async fn list_customers(app: web::Data<App>, Auth(who): Auth, q: web::Query<CustomerQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_customers(&who, q.q, q.cursor, q.limit).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}",
    tag = "customers",
    summary = "A customer with identities, cases from every channel and audit log",
    operation_id = "get_customer",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the customer", body = caseflow_app::views::CustomerDetail))
)]
pub async fn get_customer(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    let c = app.get_customer(&who, id.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header(etag(c.customer.version)).json(c))
}

#[utoipa::path(
    patch,
    path = "/api/v1/customers/{id}",
    tag = "customers",
    summary = "Change the profile of a customer",
    operation_id = "update_customer",
    params(("id" = String, Path, description = "Resource id"), ("If-Match" = Option<String>, Header, description = "Expected version, e.g. `\"3\"`; 409 version_conflict if the resource changed")),
    request_body = CustomerPatch,
    responses((status = 200, description = "updated", body = caseflow_app::views::CustomerDetail))
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/customers/{id}/identities",
    tag = "customers",
    summary = "Add an email address, chat visitor or external id",
    operation_id = "add_identity",
    params(("id" = String, Path, description = "Resource id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NewIdentity,
    responses((status = 201, description = "added", body = caseflow_app::views::CustomerDetail))
)]
pub async fn add_identity(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NewIdentity>) -> Res {
    let c = app.add_identity(&who, id.into_inner(), body.into_inner()).await?;
    Ok(created(format!("/api/v1/customers/{}", c.customer.id), c))
}

#[utoipa::path(
    post,
    path = "/api/v1/customers/{id}/merge",
    tag = "customers",
    summary = "Merge another customer into this one",
    operation_id = "merge_customers",
    params(("id" = String, Path, description = "Resource id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = MergeRequest,
    responses((status = 200, description = "merged", body = caseflow_app::views::CustomerDetail))
)]
pub async fn merge_customers(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<MergeRequest>) -> Res {
    Ok(HttpResponse::Ok().json(app.merge_customers(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/customers/{id}/unmerge",
    tag = "customers",
    summary = "Undo the merge of this customer into another",
    operation_id = "unmerge_customer",
    params(("id" = String, Path, description = "Resource id: the customer that was merged away"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    responses((status = 200, description = "restored, with its identities and cases back", body = caseflow_app::views::CustomerDetail))
)]
pub async fn unmerge_customer(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.unmerge_customer(&who, id.into_inner()).await?))
}

// Agents, teams, skills

#[utoipa::path(
    post,
    path = "/api/v1/agents",
    tag = "agents",
    summary = "Create an agent (admin)",
    operation_id = "create_agent",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NewAgent,
    responses((status = 201, description = "created", body = caseflow_app::views::AgentView))
)]
pub async fn create_agent(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewAgent>) -> Res {
    let a = app.create_agent(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/agents/{}", a.id), a))
}

#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    summary = "All agents with skills and presence",
    operation_id = "list_agents",
    responses((status = 200, description = "all agents", body = Items<caseflow_app::views::AgentView>))
)]
pub async fn list_agents(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(Items { items: app.list_agents(&who).await? }))
}

#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    summary = "One agent",
    operation_id = "get_agent",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the agent", body = caseflow_app::views::AgentView))
)]
pub async fn get_agent(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_agent(&who, id.into_inner()).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    summary = "Change an agent",
    operation_id = "update_agent",
    params(("id" = String, Path, description = "Resource id")),
    request_body = AgentPatch,
    responses((status = 200, description = "updated", body = caseflow_app::views::AgentView))
)]
pub async fn update_agent(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<AgentPatch>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_agent(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/agents/{id}/presence",
    tag = "agents",
    summary = "Set presence (self, or anyone as supervisor)",
    operation_id = "set_presence",
    params(("id" = String, Path, description = "Resource id")),
    request_body = PresenceRequest,
    responses((status = 200, description = "updated", body = caseflow_app::views::AgentView))
)]
pub async fn set_presence(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<PresenceRequest>) -> Res {
    Ok(HttpResponse::Ok().json(app.set_presence(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/agents/{id}/skills",
    tag = "agents",
    summary = "Replace the skills of an agent (supervisor)",
    operation_id = "set_skills",
    params(("id" = String, Path, description = "Resource id")),
    request_body = SetSkills,
    responses((status = 200, description = "updated", body = caseflow_app::views::AgentView))
)]
pub async fn set_skills(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<SetSkills>) -> Res {
    Ok(HttpResponse::Ok().json(app.set_agent_skills(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/agents/{id}/capacities",
    tag = "agents",
    summary = "Replace an agent's per-channel capacities (supervisor)",
    operation_id = "set_capacities",
    params(("id" = String, Path, description = "Resource id")),
    request_body = SetCapacities,
    responses((status = 200, description = "updated", body = caseflow_app::views::AgentView))
)]
pub async fn set_capacities(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<SetCapacities>) -> Res {
    Ok(HttpResponse::Ok().json(app.set_agent_capacities(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/events",
    tag = "agents",
    summary = "Audit log of an agent (presence, skills, capacities, profile), oldest first",
    operation_id = "list_agent_events",
    params(("id" = String, Path, description = "Resource id"), PageQuery),
    responses((status = 200, description = "one page", body = caseflow_app::Page<caseflow_app::views::EventView>))
)]
pub async fn list_agent_events(app: web::Data<App>, Auth(who): Auth, id: Id, q: web::Query<PageQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_agent_events(&who, id.into_inner(), q.cursor, q.limit).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/teams",
    tag = "teams",
    summary = "Create a team (admin)",
    operation_id = "create_team",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NamedInput,
    responses((status = 201, description = "created", body = caseflow_app::views::TeamView))
)]
pub async fn create_team(app: web::Data<App>, Auth(who): Auth, body: web::Json<NamedInput>) -> Res {
    let t = app.create_team(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/teams/{}", t.id), t))
}

#[utoipa::path(
    get,
    path = "/api/v1/teams",
    tag = "teams",
    summary = "All teams",
    operation_id = "list_teams",
    responses((status = 200, description = "all teams", body = Items<caseflow_app::views::TeamView>))
)]
pub async fn list_teams(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(Items { items: app.list_teams(&who).await? }))
}

#[utoipa::path(
    get,
    path = "/api/v1/teams/{id}",
    tag = "teams",
    summary = "One team",
    operation_id = "get_team",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the team", body = caseflow_app::views::TeamView))
)]
pub async fn get_team(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_team(&who, id.into_inner()).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/teams/{id}",
    tag = "teams",
    summary = "Rename or describe a team (admin)",
    operation_id = "update_team",
    params(("id" = String, Path, description = "Resource id")),
    request_body = NamedInput,
    responses((status = 200, description = "updated", body = caseflow_app::views::TeamView))
)]
pub async fn update_team(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NamedInput>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_team(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/teams/{id}",
    tag = "teams",
    summary = "Delete an unused team (admin)",
    operation_id = "delete_team",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "deleted"))
)]
pub async fn delete_team(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_team(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/skills",
    tag = "skills",
    summary = "Create a skill (admin)",
    operation_id = "create_skill",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = NamedInput,
    responses((status = 201, description = "created", body = caseflow_app::views::SkillView))
)]
pub async fn create_skill(app: web::Data<App>, Auth(who): Auth, body: web::Json<NamedInput>) -> Res {
    let s = app.create_skill(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/skills/{}", s.id), s))
}

#[utoipa::path(
    get,
    path = "/api/v1/skills",
    tag = "skills",
    summary = "All skills",
    operation_id = "list_skills",
    responses((status = 200, description = "all skills", body = Items<caseflow_app::views::SkillView>))
)]
pub async fn list_skills(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(Items { items: app.list_skills(&who).await? }))
}

#[utoipa::path(
    get,
    path = "/api/v1/skills/{id}",
    tag = "skills",
    summary = "One skill",
    operation_id = "get_skill",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the skill", body = caseflow_app::views::SkillView))
)]
pub async fn get_skill(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_skill(&who, id.into_inner()).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/skills/{id}",
    tag = "skills",
    summary = "Rename or describe a skill (admin)",
    operation_id = "update_skill",
    params(("id" = String, Path, description = "Resource id")),
    request_body = NamedInput,
    responses((status = 200, description = "updated", body = caseflow_app::views::SkillView))
)]
pub async fn update_skill(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<NamedInput>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_skill(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/skills/{id}",
    tag = "skills",
    summary = "Delete a skill (admin)",
    operation_id = "delete_skill",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "deleted"))
)]
pub async fn delete_skill(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_skill(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

// API tokens

#[utoipa::path(
    post,
    path = "/api/v1/api-tokens",
    tag = "api-tokens",
    summary = "Create an integrator token; the plaintext is shown once (admin)",
    operation_id = "create_api_token",
    request_body = NewApiToken,
    responses((status = 201, description = "created", body = caseflow_app::views::CreatedApiToken))
)]
pub async fn create_api_token(app: web::Data<App>, Auth(who): Auth, body: web::Json<NewApiToken>) -> Res {
    let t = app.create_api_token(&who, body.into_inner()).await?;
    Ok(created(format!("/api/v1/api-tokens/{}", t.info.id), t))
}

#[utoipa::path(
    get,
    path = "/api/v1/api-tokens",
    tag = "api-tokens",
    summary = "All tokens, never their secrets (admin)",
    operation_id = "list_api_tokens",
    responses((status = 200, description = "all tokens", body = Items<caseflow_app::views::ApiTokenView>))
)]
pub async fn list_api_tokens(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(Items { items: app.list_api_tokens(&who).await? }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/api-tokens/{id}",
    tag = "api-tokens",
    summary = "Revoke a token (admin)",
    operation_id = "revoke_api_token",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "revoked", body = caseflow_app::views::ApiTokenView))
)]
pub async fn revoke_api_token(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.revoke_api_token(&who, id.into_inner()).await?))
}

// Inbound email

/// Filters for the inbound list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboundQuery {
    /// Only this outcome, e.g. `quarantined`.
    pub outcome: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Source label for an inbound message.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SourceQuery {
    /// Where the message came from (a mailbox name, `mta`); default `api`.
    pub source: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/inbound/email",
    tag = "inbound",
    summary = "Receive one raw email (RFC 5322), as an MTA pipe or a relay would",
    operation_id = "receive_email",
    params(SourceQuery),
    request_body(content = String, content_type = "text/plain", description = "The raw message, byte for byte; any Content-Type is accepted (message/rfc822 is usual)"),
    responses((status = 200, description = "what became of the message", body = caseflow_app::inbound::Received))
)]
pub async fn receive_email(
    app: web::Data<App>,
    Auth(who): Auth,
    q: web::Query<SourceQuery>,
    payload: web::Payload,
) -> Res {
    let limit = app.settings().email.max_message_bytes;
    let raw = match payload.to_bytes_limited(limit).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "the request body could not be read",
            ))
        }
        Err(_) => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the message is larger than email.max_message_bytes ({limit} bytes)"),
            ))
        }
    };
    let source = q.into_inner().source.map(|s| s.chars().filter(|c| !c.is_control()).take(100).collect::<String>());
    let r =
        app.receive_email(&who, source.filter(|s| !s.is_empty()).unwrap_or_else(|| "api".into()), raw.to_vec()).await?;
    Ok(HttpResponse::Ok().json(r))
}

#[utoipa::path(
    get,
    path = "/api/v1/inbound",
    tag = "inbound",
    summary = "Inbound messages and their outcome; `outcome=quarantined` is the quarantine (admin)",
    operation_id = "list_inbound",
    params(InboundQuery),
    responses((status = 200, description = "one page", body = caseflow_app::Page<caseflow_app::inbound::InboundView>))
)]
pub async fn list_inbound(app: web::Data<App>, Auth(who): Auth, q: web::Query<InboundQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(app.list_inbound(&who, q.outcome, q.cursor, q.limit).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/inbound/{id}/raw",
    tag = "inbound",
    summary = "The raw bytes of an inbound message (admin)",
    operation_id = "inbound_raw",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the message as received", content_type = "message/rfc822", body = String))
)]
pub async fn inbound_raw(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    let raw = app.inbound_raw(&who, id.into_inner()).await?;
    // Attacker-written bytes: a download, never a page (the browser session cookie reaches it).
    Ok(HttpResponse::Ok()
        .content_type("message/rfc822")
        .insert_header(("Content-Disposition", "attachment; filename=\"message.eml\""))
        .body(raw))
}

#[utoipa::path(
    post,
    path = "/api/v1/inbound/{id}/reprocess",
    tag = "inbound",
    summary = "Process a quarantined message again (admin)",
    operation_id = "reprocess_inbound",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the new outcome", body = caseflow_app::inbound::Received))
)]
pub async fn reprocess_inbound(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.reprocess_inbound(&who, id.into_inner()).await?))
}

/// The topics a support form offers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopicView {
    pub key: String,
    pub label: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/public/topics",
    tag = "public",
    summary = "The topics a support form offers (for sites that embed their own form)",
    operation_id = "listSupportTopics",
    responses((status = 200, description = "configured topics, in order", body = Items<TopicView>)),
    security(())
)]
pub async fn list_topics(app: web::Data<App>) -> Res {
    let w = &app.settings().web_form;
    if !w.enabled {
        return Err(caseflow_app::AppError::NotFound("web form").into());
    }
    let items = w.topics.iter().map(|t| TopicView { key: t.key.clone(), label: t.label.clone() }).collect();
    Ok(HttpResponse::Ok().json(Items { items }))
}

#[utoipa::path(
    post,
    path = "/api/v1/public/support",
    tag = "public",
    summary = "Submit the support form as JSON (no credentials; limited per client IP)",
    description = "Opens a case on channel `web` for the customer with this email address (one customer \
        across channels) and queues the acknowledgement email. `website` is a honeypot and must be \
        empty. Repeating a `submission_id` returns the first case (200) instead of opening another.",
    operation_id = "submitSupportRequest",
    request_body = caseflow_app::support::SupportRequest,
    responses(
        (status = 201, description = "case opened", body = caseflow_app::support::SupportReceipt),
        (status = 200, description = "the submission_id was seen before; the first case", body = caseflow_app::support::SupportReceipt),
    ),
    security(())
)]
pub async fn submit_support_json(
    req: actix_web::HttpRequest,
    app: web::Data<App>,
    limits: web::Data<crate::guard::Limits>,
    body: web::Json<caseflow_app::support::SupportRequest>,
) -> Res {
    use caseflow_app::support::SubmitError;
    if !app.settings().web_form.enabled {
        return Err(caseflow_app::AppError::NotFound("web form").into());
    }
    let ip = limits.client_ip(&req);
    if let Err(wait) = limits.check_public(&ip) {
        app.count_rejected_submission(caseflow_core::Channel::Web, "rate_limited");
        return Ok(crate::guard::rate_limited(limits.public_limit(), wait, "too many submissions from your address"));
    }
    match app.submit_support(body.into_inner()).await {
        Ok(r) if r.created => Ok(HttpResponse::Created().json(r)),
        Ok(r) => Ok(HttpResponse::Ok().json(r)),
        Err(SubmitError::Fields(errors)) => Err(caseflow_app::AppError::invalid(SubmitError::summary(&errors)).into()),
        Err(SubmitError::Spam) => Err(caseflow_app::AppError::invalid("website: must be left empty").into()),
        Err(SubmitError::App(e)) => Err(e.into()),
    }
}
