//! SLA endpoints: calendars, policies, a case's clocks, alerts and their live stream.

use crate::error::ApiError;
use crate::extract::Auth;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::sla::{AlertView, CalendarView, CaseSla, PolicyInput, PolicyView};
use caseflow_app::App;
use caseflow_sla::CalendarSpec;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
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

/// How far back each poll of a live stream reads again, so an alert another node committed
/// a little late (its transaction began before a newer one committed) is still sent; ids
/// already sent are skipped.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(10);
/// Alerts read per query.
const PAGE: i64 = 200;

struct StreamState {
    app: web::Data<App>,
    who: caseflow_app::Principal,
    /// The key (created_at, id) of the last alert read in order.
    cursor: (NaiveDateTime, String),
    /// Ids sent recently, with their creation time (pruned past the overlap).
    sent: HashMap<String, NaiveDateTime>,
    ticks: tokio::sync::broadcast::Receiver<()>,
    poll: Duration,
    last_write: std::time::Instant,
    opened: bool,
}

impl StreamState {
    /// Everything new since the cursor (page after page), then the overlap window again for
    /// late commits; returns the events to send.
    async fn read(&mut self) -> Result<String, caseflow_app::AppError> {
        let mut out = String::new();
        let (since, after) = (self.cursor.0, Some(self.cursor.clone()));
        if let Some(last) = self.scan(since, after, &mut out).await? {
            self.cursor = last;
        }
        let floor = self.cursor.0 - OVERLAP;
        self.scan(floor, None, &mut out).await?;
        self.sent.retain(|_, at| *at >= floor);
        Ok(out)
    }

    /// Reads every alert from `since` after the key `after`, page by page, appending those
    /// not sent yet to `out`; returns the key of the last one read.
    async fn scan(
        &mut self,
        since: NaiveDateTime,
        mut after: Option<(NaiveDateTime, String)>,
        out: &mut String,
    ) -> Result<Option<(NaiveDateTime, String)>, caseflow_app::AppError> {
        let mut last = None;
        loop {
            let page = self.app.stream_alerts(&self.who, since, after.clone(), PAGE).await?;
            let full = page.len() as i64 == PAGE;
            for a in page {
                let created = a.created_at.naive_utc();
                last = Some((created, a.id.clone()));
                if self.sent.insert(a.id.clone(), created).is_none() {
                    out.push_str(&sse_event(&a));
                }
            }
            if !full {
                return Ok(last);
            }
            after = last.clone();
        }
    }
}

fn sse_event(a: &AlertView) -> String {
    let data = serde_json::to_string(a).unwrap_or_default();
    format!("id: {}\nevent: alert\ndata: {data}\n\n", a.id)
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
    let last = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            web::Query::<HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("last_event_id").cloned())
        })
        .filter(|s| !s.is_empty() && s.len() <= 64);
    let now = app.now().naive_utc();
    // A fresh stream starts a little in the past (alerts of ticks still committing); a
    // resumed one just after the last alert received.
    let mut sent = HashMap::new();
    let cursor = match &last {
        Some(id) => match app.alert_created_at(id.clone()).await? {
            Some(at) => {
                sent.insert(id.clone(), at);
                (at, id.clone())
            }
            None => (now - OVERLAP, String::new()),
        },
        None => (now - OVERLAP, String::new()),
    };
    let poll = Duration::from_millis(app.settings().sla.stream_poll_ms);
    let ticks = app.subscribe_alerts();
    let state =
        StreamState { app, who, cursor, sent, ticks, poll, last_write: std::time::Instant::now(), opened: false };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if !st.opened {
            st.opened = true;
            return Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(b"retry: 3000\n: caseflow alerts\n\n")), st));
        }
        loop {
            match st.read().await {
                Ok(out) if !out.is_empty() => {
                    st.last_write = std::time::Instant::now();
                    return Some((Ok(Bytes::from(out)), st));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "alert stream read failed"),
            }
            if st.last_write.elapsed() >= Duration::from_secs(15) {
                st.last_write = std::time::Instant::now();
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st));
            }
            // This node's alerts, the next poll for other nodes', or the keep-alive.
            let wait = st.poll.min(Duration::from_secs(15).saturating_sub(st.last_write.elapsed()));
            tokio::select! {
                _ = st.ticks.recv() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
