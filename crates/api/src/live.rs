//! Live Server-Sent Event streams read from the database in (created_at, id) order: SLA
//! alerts and case changes. The database is the source of truth, so a stream sees what any
//! node committed; a node's own writes (or another node's NOTIFY) wake it at once, a poll
//! catches the rest. Resumable with `Last-Event-ID`.

use crate::error::ApiError;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::{App, AppError, Principal};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::time::Duration;

/// How far back each poll reads again, so a row another node committed a little late (its
/// transaction began before a newer one committed) is still sent; ids already sent are skipped.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(10);
/// Rows read per query.
const PAGE: i64 = 200;
/// A comment this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The stream's credential is checked again this often: a revoked token, a deactivated agent
/// or an expired session ends the stream.
const RECHECK: Duration = Duration::from_secs(10);
/// At most one read per stream this often, however many writes wake it.
const MIN_GAP: Duration = Duration::from_millis(250);

/// What a stream carries.
pub enum Feed {
    /// The SLA alerts the principal may see (`event: alert`, `AlertView`).
    Alerts(Principal),
    /// Every case change (`event: case`, `CaseChange`).
    Cases(Principal),
}

/// One row to send.
struct Item {
    id: String,
    at: NaiveDateTime,
    event: &'static str,
    data: String,
}

impl Feed {
    fn set_principal(&mut self, p: Principal) {
        match self {
            Feed::Alerts(who) | Feed::Cases(who) => *who = p,
        }
    }

    fn ticks(&self, app: &App) -> tokio::sync::broadcast::Receiver<()> {
        match self {
            Feed::Alerts(_) => app.subscribe_alerts(),
            Feed::Cases(_) => app.subscribe_changes(),
        }
    }

    fn hello(&self) -> &'static [u8] {
        match self {
            Feed::Alerts(_) => b"retry: 3000\n: caseflow alerts\n\n",
            Feed::Cases(_) => b"retry: 3000\n: caseflow case changes\n\n",
        }
    }

    async fn created_at(&self, app: &App, id: String) -> Result<Option<NaiveDateTime>, AppError> {
        match self {
            Feed::Alerts(_) => app.alert_created_at(id).await,
            Feed::Cases(_) => app.case_event_created_at(id).await,
        }
    }

    async fn page(
        &self,
        app: &App,
        since: NaiveDateTime,
        after: Option<(NaiveDateTime, String)>,
    ) -> Result<Vec<Item>, AppError> {
        Ok(match self {
            Feed::Alerts(who) => app
                .stream_alerts(who, since, after, PAGE)
                .await?
                .into_iter()
                .map(|a| Item {
                    id: a.id.clone(),
                    at: a.created_at.naive_utc(),
                    event: "alert",
                    data: serde_json::to_string(&a).unwrap_or_default(),
                })
                .collect(),
            Feed::Cases(who) => app
                .stream_case_changes(who, since, after, PAGE)
                .await?
                .into_iter()
                .map(|c| Item {
                    id: c.id.clone(),
                    at: c.created_at.naive_utc(),
                    event: "case",
                    data: serde_json::to_string(&c).unwrap_or_default(),
                })
                .collect(),
        })
    }
}

struct StreamState {
    app: web::Data<App>,
    feed: Feed,
    /// The key (created_at, id) of the last row read in order.
    cursor: (NaiveDateTime, String),
    /// Ids sent recently, with their creation time (pruned past the overlap).
    sent: HashMap<String, NaiveDateTime>,
    ticks: tokio::sync::broadcast::Receiver<()>,
    poll: Duration,
    last_write: std::time::Instant,
    last_read: std::time::Instant,
    opened: bool,
    /// What authenticated the stream, checked again every [`RECHECK`].
    credential: Option<crate::session::Credential>,
    checked: std::time::Instant,
}

impl StreamState {
    /// Whether the credential still stands for someone who may read (refreshing the role).
    async fn still_allowed(&mut self) -> bool {
        if self.checked.elapsed() < RECHECK {
            return true;
        }
        self.checked = std::time::Instant::now();
        let Some(c) = &self.credential else { return true };
        match crate::session::recheck(&self.app, c).await {
            Ok(p) if p.require_read().is_ok() => {
                self.feed.set_principal(p);
                true
            }
            _ => false,
        }
    }
}

impl StreamState {
    /// Everything new since the cursor (page after page), then the overlap window again for
    /// late commits; returns the events to send.
    async fn read(&mut self) -> Result<String, AppError> {
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

    /// Reads every row from `since` after the key `after`, page by page, appending those not
    /// sent yet to `out`; returns the key of the last one read.
    async fn scan(
        &mut self,
        since: NaiveDateTime,
        mut after: Option<(NaiveDateTime, String)>,
        out: &mut String,
    ) -> Result<Option<(NaiveDateTime, String)>, AppError> {
        let mut last = None;
        loop {
            let page = self.feed.page(&self.app, since, after.clone()).await?;
            let full = page.len() as i64 == PAGE;
            for item in page {
                last = Some((item.at, item.id.clone()));
                if self.sent.insert(item.id.clone(), item.at).is_none() {
                    out.push_str(&format!("id: {}\nevent: {}\ndata: {}\n\n", item.id, item.event, item.data));
                }
            }
            if !full {
                return Ok(last);
            }
            after = last.clone();
        }
    }
}

/// The id to resume after: `Last-Event-ID`, or `?last_event_id=` (for clients that cannot
/// set headers).
fn last_event_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            web::Query::<HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("last_event_id").cloned())
        })
        .filter(|s| !s.is_empty() && s.len() <= 64)
}

/// Opens the stream of `feed`: a fresh one starts a little in the past (rows of
/// transactions still committing), a resumed one just after the last row received.
pub async fn stream(
    req: &HttpRequest,
    app: web::Data<App>,
    feed: Feed,
    poll: Duration,
) -> Result<HttpResponse, ApiError> {
    let now = app.now().naive_utc();
    let mut sent = HashMap::new();
    let cursor = match last_event_id(req) {
        Some(id) => match feed.created_at(&app, id.clone()).await? {
            Some(at) => {
                sent.insert(id.clone(), at);
                (at, id)
            }
            None => (now - OVERLAP, String::new()),
        },
        None => (now - OVERLAP, String::new()),
    };
    let ticks = feed.ticks(&app);
    let credential = crate::session::credential(req).ok().flatten();
    let started = std::time::Instant::now();
    let state = StreamState {
        app,
        feed,
        cursor,
        sent,
        ticks,
        poll,
        last_write: started,
        last_read: started,
        opened: false,
        credential,
        checked: started,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if !st.opened {
            st.opened = true;
            return Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(st.feed.hello())), st));
        }
        loop {
            if !st.still_allowed().await {
                return None;
            }
            st.last_read = std::time::Instant::now();
            match st.read().await {
                Ok(out) if !out.is_empty() => {
                    st.last_write = std::time::Instant::now();
                    return Some((Ok(Bytes::from(out)), st));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "live stream read failed"),
            }
            if st.last_write.elapsed() >= KEEP_ALIVE {
                st.last_write = std::time::Instant::now();
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st));
            }
            // This node's changes, the next poll for other nodes', or the keep-alive.
            let wait = st.poll.min(KEEP_ALIVE.saturating_sub(st.last_write.elapsed()));
            tokio::select! {
                _ = st.ticks.recv() => {
                    // A burst of writes: one read for all of it.
                    tokio::time::sleep(MIN_GAP.saturating_sub(st.last_read.elapsed())).await;
                }
                _ = tokio::time::sleep(wait.min(RECHECK)) => {}
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
