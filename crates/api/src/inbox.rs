//! The agent inbox and the live stream of case changes.

use crate::error::ApiError;
use crate::extract::Auth;
use crate::live::Feed;
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::inbox::{CaseChange, InboxPage, InboxQuery};
use caseflow_app::App;
use std::time::Duration;

#[utoipa::path(get, path = "/api/v1/inbox", tag = "cases",
    summary = "The agent inbox: a view of the cases, sorted by SLA due time, with per-view counts",
    description = "Views: `mine` (unsolved, assigned to me), `team` (unsolved, unassigned, of my team), \
        `open` (new and open), `pending`, `breaching` (unsolved with a running deadline within an hour, \
        or breached) and `all`. Filters narrow the view; `counts` (first page only) counts each view \
        without them. Sorted by the earliest running SLA deadline, cases without one last.",
    operation_id = "inbox",
    params(InboxQuery),
    responses((status = 200, description = "one page", body = InboxPage)))]
pub async fn inbox(app: web::Data<App>, Auth(who): Auth, q: web::Query<InboxQuery>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app.inbox(&who, q.into_inner()).await?))
}

#[utoipa::path(get, path = "/api/v1/cases/stream", tag = "cases",
    summary = "Live case changes (Server-Sent Events), resumable",
    description = "A `text/event-stream` of `case` events (a `CaseChange` as data: the case event's id, \
        the case id and the kind of change) as cases are created and changed on any node. Reconnect with \
        `Last-Event-ID` (or `?last_event_id=`) to receive what happened meanwhile; delivery is at least \
        once around a resume. A comment line every 15 s keeps proxies from closing the connection.",
    operation_id = "case_stream",
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received")),
    responses((status = 200, description = "the event stream", content_type = "text/event-stream", body = CaseChange)))]
pub async fn case_stream(req: HttpRequest, app: web::Data<App>, Auth(who): Auth) -> Result<HttpResponse, ApiError> {
    who.require_read()?;
    let poll = Duration::from_millis(app.settings().sla.stream_poll_ms);
    crate::live::stream(&req, app, Feed::Cases(who), poll).await
}
