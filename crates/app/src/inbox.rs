//! The agent inbox: views over the cases (mine, my team's unassigned, open, pending,
//! breaching soon, all), filters, text search, sorted by the running SLA deadline, with the
//! number of cases in each view. What the browser inbox shows; integrators may use it too.

use crate::error::{AppError, AppResult};
use crate::views::CaseView;
use crate::{check_len, parse_enum, utc, App, Principal};
use caseflow_core::{CaseStatus, Channel, Priority, Tier};
use caseflow_store::queries::inbox::{self, InboxFilter, View};
use caseflow_store::queries::{self};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// How far ahead "breaching soon" looks.
pub const BREACHING_WINDOW_MINS: i64 = 60;

/// Query for the inbox.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// `mine` (default for agents), `team` (my team's unassigned), `open` (new and open),
    /// `pending`, `breaching` (running deadline within an hour, or breached) or `all`
    /// (default for API tokens).
    pub view: Option<String>,
    /// Comma-separated statuses, within the view.
    pub status: Option<String>,
    pub priority: Option<String>,
    pub channel: Option<String>,
    /// The customer's tier.
    pub tier: Option<String>,
    /// A skill id the case requires.
    pub skill: Option<String>,
    /// Cases of this team (`none`: of no team).
    pub team: Option<String>,
    /// Text matched against subjects (case-insensitive) and case numbers.
    pub q: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// One inbox row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub case: CaseView,
    pub customer_name: String,
    pub customer_tier: Tier,
    /// The earliest running SLA deadline; absent when no clock runs.
    pub sla_due_at: Option<DateTime<Utc>>,
    /// An SLA target of the case is breached and not yet met.
    pub sla_breached: bool,
}

/// How many cases each view holds (without the page's extra filters).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxCounts {
    /// Absent for API tokens (no agent).
    pub mine: Option<i64>,
    /// Absent for API tokens.
    pub team: Option<i64>,
    pub open: i64,
    pub pending: i64,
    pub breaching: i64,
}

/// One page of the inbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Per-view counts, on the first page only (no `cursor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<InboxCounts>,
    /// The server's time when the page was read: show deadlines relative to it, not to the
    /// client's clock.
    pub as_of: DateTime<Utc>,
}

fn encode_cursor(due: Option<NaiveDateTime>, id: &str) -> String {
    match due {
        Some(d) => format!("{}~{id}", d.and_utc().timestamp_micros()),
        None => format!("n~{id}"),
    }
}

fn decode_cursor(s: &str) -> AppResult<(Option<NaiveDateTime>, String)> {
    let bad = || AppError::invalid("cursor: not a cursor this endpoint returned");
    let (due, id) = s.split_once('~').ok_or_else(bad)?;
    if id.is_empty() || id.len() > 64 {
        return Err(bad());
    }
    let due = match due {
        "n" => None,
        t => {
            let micros = t.parse::<i64>().map_err(|_| bad())?;
            // Years 1970 to 9999: what both databases store.
            if !(0..=253_402_300_799_000_000).contains(&micros) {
                return Err(bad());
            }
            Some(DateTime::from_timestamp_micros(micros).ok_or_else(bad)?.naive_utc())
        }
    };
    Ok((due, id.to_owned()))
}

impl App {
    /// A page of the inbox for `who`, with view counts on the first page.
    pub async fn inbox(&self, who: &Principal, query: InboxQuery) -> AppResult<InboxPage> {
        who.require_read()?;
        let limit = self.page_limit(query.limit)?;
        let agent = who.agent_id().map(|a| a.to_string());
        let now = self.now_naive();
        let breaching = View::Breaching(now + chrono::Duration::minutes(BREACHING_WINDOW_MINS));
        let view_name = query.view.as_deref().filter(|v| !v.is_empty());
        let view = match (view_name, &agent) {
            (None | Some("mine"), Some(a)) => View::Mine(a.clone()),
            (Some("team"), Some(_)) => View::TeamUnassigned(None), // filled in below
            (Some("mine" | "team"), None) => {
                return Err(AppError::invalid("view=mine and view=team need an agent session, not an API token"))
            }
            (None | Some("all"), None) | (Some("all"), Some(_)) => View::All,
            (Some("open"), _) => View::Open,
            (Some("pending"), _) => View::Pending,
            (Some("breaching"), _) => breaching.clone(),
            (Some(_), _) => {
                return Err(AppError::invalid("view must be mine, team, open, pending, breaching or all"));
            }
        };
        let mut statuses = Vec::new();
        if let Some(s) = query.status.as_deref().filter(|s| !s.is_empty()) {
            for part in s.split(',') {
                statuses.push(parse_enum::<CaseStatus>("status", part.trim())?.as_str().to_owned());
            }
        }
        let priority = match query.priority.as_deref().filter(|s| !s.is_empty()) {
            Some(p) => Some(parse_enum::<Priority>("priority", p)?.as_str().to_owned()),
            None => None,
        };
        let channel = match query.channel.as_deref().filter(|s| !s.is_empty()) {
            Some(c) => Some(parse_enum::<Channel>("channel", c)?.as_str().to_owned()),
            None => None,
        };
        let tier = match query.tier.as_deref().filter(|s| !s.is_empty()) {
            Some(t) => Some(parse_enum::<Tier>("tier", t)?.as_str().to_owned()),
            None => None,
        };
        let team_id = crate::stats::team_filter(query.team.as_deref())?;
        let skill_id = query.skill.filter(|s| !s.is_empty());
        if let Some(k) = &skill_id {
            check_len("skill", k, 64)?;
        }
        let text = query.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(t) = &text {
            check_len("q", t, 200)?;
        }
        let after = match query.cursor.as_deref().filter(|s| !s.is_empty()) {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        let first_page = after.is_none();
        self.read(move |conn| {
            if let Some(Some(t)) = &team_id {
                if queries::teams::get(conn, t)?.is_none() {
                    return Err(AppError::invalid("team: no such team (an id, or none)"));
                }
            }
            // The agent's team, as it is now.
            let team = match &agent {
                Some(a) => queries::agents::get(conn, a)?.and_then(|r| r.team_id),
                None => None,
            };
            let view = match view {
                View::TeamUnassigned(_) => View::TeamUnassigned(team.clone()),
                v => v,
            };
            let f = InboxFilter {
                view,
                statuses,
                priority,
                channel,
                tier,
                skill_id,
                team_id,
                text,
                after,
                limit: limit + 1,
            };
            let rows = inbox::page(conn, &f)?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(0);
            let mut items = Vec::with_capacity(rows.len());
            let mut last_key = None;
            for (row, name, tier, due, breached) in rows.into_iter().take(usize::try_from(limit).unwrap_or(0)) {
                last_key = Some(encode_cursor(due, &row.id));
                items.push(InboxItem {
                    case: CaseView::try_from(row)?,
                    customer_name: name,
                    customer_tier: crate::views::stored("customers.tier", &tier)?,
                    sla_due_at: due.map(utc),
                    sla_breached: breached.unwrap_or(false),
                });
            }
            let counts = if first_page {
                let (mine, team_count) = match &agent {
                    Some(a) => (
                        Some(inbox::count(conn, &View::Mine(a.clone()))?),
                        Some(inbox::count(conn, &View::TeamUnassigned(team))?),
                    ),
                    None => (None, None),
                };
                Some(InboxCounts {
                    mine,
                    team: team_count,
                    open: inbox::count(conn, &View::Open)?,
                    pending: inbox::count(conn, &View::Pending)?,
                    breaching: inbox::count(conn, &breaching)?,
                })
            } else {
                None
            };
            Ok(InboxPage { items, next_cursor: if more { last_key } else { None }, counts, as_of: utc(now) })
        })
        .await
    }
}

/// A change to a case, as the live case stream sends it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseChange {
    /// The case event's id (the stream's event id).
    pub id: String,
    pub case_id: String,
    /// The event kind: `created`, `message_added`, `status_changed`, `assigned`, ...
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

impl App {
    /// One page (at most `limit`) of case changes in (created_at, id) order, created at or
    /// after `since` and after the key `after`: what the live case stream reads.
    pub async fn stream_case_changes(
        &self,
        who: &Principal,
        since: NaiveDateTime,
        after: Option<(NaiveDateTime, String)>,
        limit: i64,
    ) -> AppResult<Vec<CaseChange>> {
        who.require_read()?;
        self.read(move |conn| {
            let rows = queries::events::case_events_since(conn, since, after, limit)?;
            Ok(rows
                .into_iter()
                .map(|(id, case_id, kind, at)| CaseChange { id, case_id, kind, created_at: utc(at) })
                .collect())
        })
        .await
    }

    /// When a case event was created (to resume a stream from its id).
    pub async fn case_event_created_at(&self, id: String) -> AppResult<Option<NaiveDateTime>> {
        self.read(move |conn| Ok(queries::events::case_event_created_at(conn, &id)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let t = DateTime::from_timestamp(1_765_000_000, 123_000).map(|d| d.naive_utc());
        for due in [t, None] {
            let c = encode_cursor(due, "0193-abc");
            assert_eq!(decode_cursor(&c).ok(), Some((due, "0193-abc".to_owned())));
        }
        for bad in ["", "~", "x~id", "123", "n~", "99999999999999999999~id", "-5~id", "253402300800000000~id"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
