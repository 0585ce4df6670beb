//! SLA endpoints: calendars, policies, a case's clocks, alerts and their live stream.

use crate::error::ApiError;
use crate::extract::Auth;
use crate::live::Feed;
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::sla::{AlertView, CalendarView, CaseSla, PolicyInput, PolicyView};
use caseflow_app::App;
use caseflow_sla::CalendarSpec;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::Duration;

type Res = Result<HttpResponse, ApiError>;
type Id = web::Path<String>;

#[utoipa::path(get, path = "/api/v1/sla/calendars", tag = "sla", summary = "Business calendars", operation_id = "list_calendars",
    responses((status = 200, description = "every calendar", body = crate::handlers::Items<CalendarView>)))]
pub async fn list_calendars(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(crate::handlers::Items { items: app.list_calendars(&who).await? }))
}

#[utoipa::path(post, path = "/api/v1/sla/calendars", tag = "sla",
    summary = "Create a business calendar (admin): time zone, opening hours, holidays, closures",
    operation_id = "create_calendar",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = CalendarSpec,
    responses((status = 201, description = "created", body = CalendarView)))]
pub async fn create_calendar(app: web::Data<App>, Auth(who): Auth, body: web::Json<CalendarSpec>) -> Res {
    let c = app.create_calendar(&who, body.into_inner()).await?;
    Ok(crate::handlers::created(format!("/api/v1/sla/calendars/{}", c.id), c))
}

#[utoipa::path(get, path = "/api/v1/sla/calendars/{id}", tag = "sla", summary = "One calendar", operation_id = "get_calendar",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the calendar", body = CalendarView)))]
pub async fn get_calendar(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_calendar(&who, id.into_inner()).await?))
}

#[utoipa::path(put, path = "/api/v1/sla/calendars/{id}", tag = "sla",
    summary = "Replace a calendar (admin); every open case's deadlines are computed again",
    operation_id = "update_calendar",
    params(("id" = String, Path, description = "Resource id")),
    request_body = CalendarSpec,
    responses((status = 200, description = "replaced", body = CalendarView)))]
pub async fn update_calendar(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<CalendarSpec>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_calendar(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/v1/sla/calendars/{id}", tag = "sla", summary = "Delete a calendar no policy uses (admin)",
    operation_id = "delete_calendar",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "deleted")))]
pub async fn delete_calendar(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_calendar(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/sla/policies", tag = "sla", summary = "SLA policies in matching order",
    operation_id = "list_policies",
    responses((status = 200, description = "every policy", body = crate::handlers::Items<PolicyView>)))]
pub async fn list_policies(app: web::Data<App>, Auth(who): Auth) -> Res {
    Ok(HttpResponse::Ok().json(crate::handlers::Items { items: app.list_policies(&who).await? }))
}

#[utoipa::path(post, path = "/api/v1/sla/policies", tag = "sla",
    summary = "Create an SLA policy (admin); every open case's deadlines are computed again",
    operation_id = "create_policy",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body replay the first response")),
    request_body = PolicyInput,
    responses((status = 201, description = "created", body = PolicyView)))]
pub async fn create_policy(app: web::Data<App>, Auth(who): Auth, body: web::Json<PolicyInput>) -> Res {
    let p = app.create_policy(&who, body.into_inner()).await?;
    Ok(crate::handlers::created(format!("/api/v1/sla/policies/{}", p.id), p))
}

#[utoipa::path(get, path = "/api/v1/sla/policies/{id}", tag = "sla", summary = "One policy", operation_id = "get_policy",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the policy", body = PolicyView)))]
pub async fn get_policy(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.get_policy(&who, id.into_inner()).await?))
}

#[utoipa::path(put, path = "/api/v1/sla/policies/{id}", tag = "sla",
    summary = "Replace a policy (admin); every open case's deadlines are computed again",
    operation_id = "update_policy",
    params(("id" = String, Path, description = "Resource id")),
    request_body = PolicyInput,
    responses((status = 200, description = "replaced", body = PolicyView)))]
pub async fn update_policy(app: web::Data<App>, Auth(who): Auth, id: Id, body: web::Json<PolicyInput>) -> Res {
    Ok(HttpResponse::Ok().json(app.update_policy(&who, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/v1/sla/policies/{id}", tag = "sla", summary = "Delete a policy (admin)",
    operation_id = "delete_policy",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 204, description = "deleted")))]
pub async fn delete_policy(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    app.delete_policy(&who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/sla", tag = "sla",
    summary = "The case's SLA clocks: policy, deadlines, pauses, milestones and explanations",
    operation_id = "case_sla",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "the case's SLA", body = CaseSla)))]
pub async fn case_sla(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.case_sla(&who, id.into_inner()).await?))
}

/// Filters for the alert list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Alerts created at or after this instant (RFC 3339); default: the last 24 hours.
    pub since: Option<DateTime<Utc>>,
    /// Only alerts nobody has acknowledged.
    #[serde(default)]
    pub unacknowledged: bool,
    /// At most this many (default and maximum: `limits.default_page_size` and
    /// `limits.max_page_size`).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "sla",
    summary = "SLA alerts you may see (supervisors: their team's and those without a team; agents: those for them), oldest first",
    operation_id = "list_alerts",
    params(AlertQuery),
    responses((status = 200, description = "alerts", body = crate::handlers::Items<AlertView>)))]
pub async fn list_alerts(app: web::Data<App>, Auth(who): Auth, q: web::Query<AlertQuery>) -> Res {
    let q = q.into_inner();
    Ok(HttpResponse::Ok()
        .json(crate::handlers::Items { items: app.list_alerts(&who, q.since, q.unacknowledged, q.limit).await? }))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "sla",
    summary = "Acknowledge an alert (audited on its case; again: no change)",
    operation_id = "acknowledge_alert",
    params(("id" = String, Path, description = "Resource id")),
    responses((status = 200, description = "acknowledged", body = AlertView)))]
pub async fn acknowledge_alert(app: web::Data<App>, Auth(who): Auth, id: Id) -> Res {
    Ok(HttpResponse::Ok().json(app.acknowledge_alert(&who, id.into_inner()).await?))
}

#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "sla",
    summary = "Live SLA alerts (Server-Sent Events), resumable",
    description = "A `text/event-stream` of `alert` events (the `AlertView` JSON as data, its id as the event id) \
        for the alerts you may see, as they are raised on any node. Reconnect with `Last-Event-ID` (or \
        `?last_event_id=`) to receive what was raised meanwhile. Delivery is at least once around a resume: \
        use the id to drop repeats. A comment line every 15 s keeps proxies from closing the connection.",
    operation_id = "alerts_stream",
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last alert received")),
    responses((status = 200, description = "the event stream", content_type = "text/event-stream", body = String)))]
pub async fn alerts_stream(req: HttpRequest, app: web::Data<App>, Auth(who): Auth) -> Res {
    who.require_read()?;
    let poll = Duration::from_millis(app.settings().sla.stream_poll_ms);
    crate::live::stream(&req, app, Feed::Alerts(who), poll).await
}
