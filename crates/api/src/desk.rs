//! Collision warnings (who else has a case open) and canned replies.

use crate::error::ApiError;
use crate::extract::Auth;
use actix_web::{web, HttpResponse};
use caseflow_app::desk::{Heartbeat, MacroInput, MacroView, RenderedMacro, Viewers};
use caseflow_app::App;

type Res = Result<HttpResponse, ApiError>;
type Id = web::Path<String>;

#[utoipa::path(put, path = "/api/v1/cases/{id}/viewers/me", tag = "cases",
    summary = "I have this case open (a heartbeat every 15 s); answers who else has it open",
    description = "Agent sessions only. `composing` says the agent is writing. The answer lists the other \
        agents whose last heartbeat is at most 45 s old: the inbox warns before two people answer the same case.",
    operation_id = "view_case",
    params(("id" = String, Path, description = "Resource id")),
    request_body = Heartbeat,
    responses((status = 200, description = "the other viewers", body = Viewers)))]
pub async fn view_case(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<Heartbeat>) -> Res {
    Ok(HttpResponse::Ok().json(app.view_case(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/v1/cases/{id}/viewers/me", tag = "cases",
    summary = "I closed this case", operation_id = "leave_case",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "gone")))]
pub async fn leave_case(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.leave_case(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/macros", tag = "macros", summary = "Canned replies, by name",
    operation_id = "list_macros",
    responses((status = 200, description = "every canned reply", body = crate::handlers::Items<MacroView>)))]
pub async fn list_macros(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(crate::handlers::Items { items: app.list_macros(&who).await? }))
}

#[utoipa::path(post, path = "/api/v1/macros", tag = "macros",
    summary = "Create a canned reply (admin)",
    description = "Placeholders: `{{customer.name}}`, `{{customer.first_name}}`, `{{case.number}}`, \
        `{{case.subject}}`, `{{agent.name}}`, `{{agent.first_name}}`; any other → 422.",
    operation_id = "create_macro",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = MacroInput,
    responses((status = 201, description = "created", body = MacroView)))]
pub async fn create_macro(app: web::Data<App>, Auth(who): Auth, body: web::Json<MacroInput>) -> Res {
    let m = app.create_macro(&who, body.into_inner()).await?;
    Ok(crate::handlers::created(format!("/api/v1/macros/{}", m.id), m))
}

#[utoipa::path(get, path = "/api/v1/macros/{id}", tag = "macros", summary = "One canned reply",
    operation_id = "get_macro",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the canned reply", body = MacroView)))]
pub async fn get_macro(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_macro(&who, id.into_inner()).await?))
}

#[utoipa::path(put, path = "/api/v1/macros/{id}", tag = "macros",
    summary = "Replace a canned reply's name and text (admin); `version` guards against lost updates",
    operation_id = "update_macro",
    params(("id" = String, Path, description = "Resource id")),
    request_body = MacroInput,
    responses((status = 200, description = "replaced", body = MacroView)))]
pub async fn update_macro(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<MacroInput>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_macro(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/v1/macros/{id}", tag = "macros", summary = "Delete a canned reply (admin)",
    operation_id = "delete_macro",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "deleted")))]
pub async fn delete_macro(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_macro(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/macros/{macro_id}/render", tag = "macros",
    summary = "A canned reply filled in for this case and the calling agent",
    operation_id = "render_macro",
    params(("id" = String, Path, description = "The case"), ("macro_id" = String, Path, description = "The canned reply")),
    responses((status = 200, description = "the text to put in the composer", body = RenderedMacro)))]
pub async fn render_macro(app: web::Data<App>, Auth(who): Auth, path: web::Path<(String, String)>) -> Res {
    let (case_id, macro_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(app.render_macro(&who, case_id, macro_id).await?))
}

#[utoipa::path(get, path = "/api/v1/stats/overview", tag = "stats",
    summary = "The supervisor console's figures (supervisors)",
    description = "Now: active agents with their load (unsolved cases assigned) and presence; new and open \
        unassigned cases per team and per required skill. History: cases created and solved per hour over \
        the last 24 hours; per day over `days` days (UTC): the median first-response time of the cases \
        created that day and answered, breaches per channel; breaches of the window per team.",
    operation_id = "stats_overview",
    params(caseflow_app::stats::OverviewQuery),
    responses((status = 200, description = "the figures", body = caseflow_app::stats::Overview)))]
pub async fn stats_overview(
    app: web::Data<App>,
    Auth(who): Auth,
    q: web::Query<caseflow_app::stats::OverviewQuery>,
) -> Res {
    Ok(HttpResponse::Ok().json(app.overview(&who, q.into_inner()).await?))
}
