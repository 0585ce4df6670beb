//! Queries, grouped by aggregate. Each function takes a connection so callers decide the
//! transaction boundary; per-dialect SQL is confined to the few places that need it.

use crate::db::{DbConn, Direct};
use crate::models::*;
use crate::schema;
use crate::QueryResult;
use chrono::NaiveDateTime;
use diesel::prelude::*;

diesel::define_sql_function! {
    /// SQL `lower(text)`, the same on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The first row of a lookup by a unique key. Lookups load instead of using `.first()`: its
/// bound `LIMIT ?` makes SQLite re-prepare the statement on every execution (the bundled
/// build enables STAT4), which cost half of a `GET /cases/{id}`.
fn first<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

/// The columns of `T` in its field order: the select clause `T::as_select()` would give, but
/// not tied to one backend, so the query can run on either connection directly
/// ([`Direct`]); rows are read back through `T`'s `Queryable`, which follows the same order.
fn cols<T: Selectable<diesel::sqlite::Sqlite>>() -> T::SelectExpression {
    T::construct_selection()
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern, and wraps it
/// for a case-insensitive substring match against `lower(column)`.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Filters a cases query by search text: case-insensitive in the subject, or exactly the case
/// number (`42` or `#42`). Used by the case list and the inbox.
macro_rules! case_text_filter {
    ($q:expr, $text:expr) => {{
        use crate::schema::cases::dsl as tc;
        let text: &str = $text;
        let digits = text.trim().trim_start_matches('#');
        let pattern = like_pattern(text.trim());
        match digits.parse::<i64>() {
            Ok(n) => $q.filter(lower(tc::subject).like(pattern).escape('\\').or(tc::number.eq(n))),
            Err(_) => $q.filter(lower(tc::subject).like(pattern).escape('\\')),
        }
    }};
}

/// Hands out the next human-readable case number. PostgreSQL uses a sequence (no row lock
/// held across the creating transaction); SQLite, single-writer anyway, a counter row.
pub fn next_case_number(conn: &mut DbConn) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    match conn {
        DbConn::Pg(c) => diesel::sql_query("SELECT nextval('case_number_seq') AS n").get_result::<N>(c).map(|r| r.n),
        DbConn::Sqlite(c) => {
            use schema::counters::dsl::*;
            diesel::update(counters.find("case_number")).set(value.eq(value + 1)).execute(c)?;
            counters.find("case_number").select(value).first::<i64>(c)
        }
    }
}

/// `n` new case numbers in one round trip (ascending). Numbers not used later leave a gap,
/// as a rolled-back transaction does with a sequence.
pub fn next_case_numbers(conn: &mut DbConn, n: i64) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    if n <= 0 {
        return Ok(Vec::new());
    }
    match conn {
        DbConn::Pg(c) => diesel::sql_query("SELECT nextval('case_number_seq') AS n FROM generate_series(1, $1)")
            .bind::<diesel::sql_types::BigInt, _>(n)
            .load::<N>(c)
            .map(|rows| {
                let mut v: Vec<i64> = rows.into_iter().map(|r| r.n).collect();
                v.sort_unstable();
                v
            }),
        DbConn::Sqlite(c) => {
            use schema::counters::dsl::*;
            diesel::update(counters.find("case_number")).set(value.eq(value + n)).execute(c)?;
            let last = counters.find("case_number").select(value).first::<i64>(c)?;
            Ok(((last - n + 1)..=last).collect())
        }
    }
}

/// A multi-row INSERT. `MultiConnection` cannot express one (its backend has no batch-insert
/// syntax), so it is written once per concrete connection; the SQL is the same.
/// Runs `$body` with `$c` bound to the concrete connection behind a [`DbConn`]. The body is
/// compiled once per backend, so a boxed query built inside it is typed for that backend and
/// runs without `MultiConnection`'s per-execution SQL rendering (ADR 0013).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConn::Pg($c) => $body,
            DbConn::Sqlite($c) => $body,
        }
    };
}

macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            DbConn::Pg(c) => diesel::insert_into($table).values($rows).execute(c).map(drop),
            DbConn::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c).map(drop),
        }
    };
}

pub mod cases {
    use super::*;
    use schema::cases::dsl as c;

    /// Filters for the case list; `None` means "any".
    #[derive(Debug, Clone, Default)]
    pub struct CaseFilter {
        pub statuses: Vec<String>,
        /// `Some(None)` selects unassigned cases.
        pub assignee_id: Option<Option<String>>,
        pub team_id: Option<Option<String>>,
        pub priority: Option<String>,
        pub customer_id: Option<String>,
        pub channel: Option<String>,
        /// Open offers (offer mode) to this agent.
        pub offered_to: Option<String>,
        /// Matched case-insensitively against the subject, or exactly against the number.
        pub text: Option<String>,
        /// Keyset cursor: the id of the last case of the previous page.
        pub after: Option<String>,
        /// Oldest first instead of newest first.
        pub ascending: bool,
        pub limit: i64,
    }

    pub fn insert(conn: &mut DbConn, row: &CaseRow) -> QueryResult<()> {
        diesel::insert_into(c::cases).values(row).execute_direct(conn).map(drop)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<CaseRow>> {
        c::cases.find(id).select(cols::<CaseRow>()).load_direct(conn).map(first)
    }

    /// A case, locked until the transaction ends on PostgreSQL (`FOR UPDATE`), so writers of
    /// one case queue instead of racing; SQLite's write transactions are serial anyway.
    pub fn get_for_update(conn: &mut DbConn, id: &str) -> QueryResult<Option<CaseRow>> {
        match conn {
            DbConn::Pg(c) => c::cases.find(id).select(cols::<CaseRow>()).for_update().load(c).map(first),
            DbConn::Sqlite(_) => get(conn, id),
        }
    }

    /// A case locked like [`get_for_update`], or `None` when another transaction holds it
    /// (PostgreSQL's `SKIP LOCKED`): for background work that comes back to it later, so nodes
    /// sweeping the same cases do not queue on each other's locks.
    pub fn get_for_update_skip_locked(conn: &mut DbConn, id: &str) -> QueryResult<Option<CaseRow>> {
        match conn {
            // FOR NO KEY UPDATE: still exclusive against writers of the case (they take FOR
            // UPDATE), but not against rows that merely reference it being inserted (messages,
            // events), which take KEY SHARE.
            DbConn::Pg(c) => {
                c::cases.find(id).select(cols::<CaseRow>()).for_no_key_update().skip_locked().load(c).map(first)
            }
            DbConn::Sqlite(_) => get(conn, id),
        }
    }

    /// A case with its customer's name and tier, in one query.
    pub fn get_with_customer(conn: &mut DbConn, id: &str) -> QueryResult<Option<(CaseRow, String, String)>> {
        use schema::customers::dsl as cu;
        c::cases
            .inner_join(cu::customers)
            .filter(c::id.eq(id))
            .select((cols::<CaseRow>(), cu::name, cu::tier))
            .load_direct(conn)
            .map(first)
    }

    pub fn get_by_number(conn: &mut DbConn, number: i64) -> QueryResult<Option<CaseRow>> {
        c::cases.filter(c::number.eq(number)).select(cols::<CaseRow>()).load_direct(conn).map(first)
    }

    /// One page of cases, ordered by id (ids are time-ordered UUIDv7).
    pub fn list(conn: &mut DbConn, f: &CaseFilter) -> QueryResult<Vec<CaseRow>> {
        on_backend!(conn, |db| {
            let mut q = c::cases.select(cols::<CaseRow>()).into_boxed();
            if !f.statuses.is_empty() {
                q = q.filter(c::status.eq_any(f.statuses.clone()));
            }
            match &f.assignee_id {
                Some(Some(a)) => q = q.filter(c::assignee_id.eq(a.clone())),
                Some(None) => q = q.filter(c::assignee_id.is_null()),
                None => {}
            }
            match &f.team_id {
                Some(Some(t)) => q = q.filter(c::team_id.eq(t.clone())),
                Some(None) => q = q.filter(c::team_id.is_null()),
                None => {}
            }
            if let Some(p) = &f.priority {
                q = q.filter(c::priority.eq(p.clone()));
            }
            if let Some(cu) = &f.customer_id {
                q = q.filter(c::customer_id.eq(cu.clone()));
            }
            if let Some(ch) = &f.channel {
                q = q.filter(c::channel.eq(ch.clone()));
            }
            if let Some(a) = &f.offered_to {
                q = q.filter(c::offered_to.eq(a.clone())).filter(c::assignee_id.is_null());
            }
            if let Some(text) = &f.text {
                q = case_text_filter!(q, text);
            }
            if f.ascending {
                if let Some(a) = &f.after {
                    q = q.filter(c::id.gt(a.clone()));
                }
                q = q.order(c::id.asc());
            } else {
                if let Some(a) = &f.after {
                    q = q.filter(c::id.lt(a.clone()));
                }
                q = q.order(c::id.desc());
            }
            q.limit(f.limit).load(db)
        })
    }

    /// Writes `row` if the stored version is still `expected_version`; returns whether it did.
    /// `row.version` must already be the new version.
    pub fn update_if_version(conn: &mut DbConn, row: &CaseRow, expected_version: i64) -> QueryResult<bool> {
        let n = diesel::update(c::cases.filter(c::id.eq(&row.id)).filter(c::version.eq(expected_version)))
            .set(row)
            .execute_direct(conn)?;
        Ok(n == 1)
    }

    pub fn for_customer(conn: &mut DbConn, customer_id: &str, limit: i64) -> QueryResult<Vec<CaseRow>> {
        c::cases
            .filter(c::customer_id.eq(customer_id))
            .order(c::id.desc())
            .limit(limit)
            .select(cols::<CaseRow>())
            .load_direct(conn)
    }

    /// Moves every case of `from` to customer `to`; returns the moved case ids.
    /// Moves the named cases from `from` to `to` (those still on `from`); returns them.
    pub fn move_by_id_to_customer(
        conn: &mut DbConn,
        ids: &[String],
        from: &str,
        to: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<String>> {
        let moved: Vec<String> =
            c::cases.filter(c::id.eq_any(ids)).filter(c::customer_id.eq(from)).select(c::id).load_direct(conn)?;
        diesel::update(c::cases.filter(c::id.eq_any(&moved)))
            .set((c::customer_id.eq(to), c::updated_at.eq(now), c::version.eq(c::version + 1)))
            .execute_direct(conn)?;
        Ok(moved)
    }

    pub fn move_to_customer(conn: &mut DbConn, from: &str, to: &str, now: NaiveDateTime) -> QueryResult<Vec<String>> {
        let ids: Vec<String> = c::cases.filter(c::customer_id.eq(from)).select(c::id).load_direct(conn)?;
        diesel::update(c::cases.filter(c::customer_id.eq(from)))
            .set((c::customer_id.eq(to), c::updated_at.eq(now), c::version.eq(c::version + 1)))
            .execute_direct(conn)?;
        Ok(ids)
    }

    /// Active cases (new or open) nobody is assigned to: the routing queue.
    pub fn count_unassigned_active(conn: &mut DbConn) -> QueryResult<i64> {
        c::cases
            .filter(c::assignee_id.is_null())
            .filter(c::status.eq_any(["new", "open"]))
            .count()
            .get_result_direct(conn)
    }

    pub fn count_for_assignee(conn: &mut DbConn, agent_id: &str) -> QueryResult<i64> {
        c::cases.filter(c::assignee_id.eq(agent_id)).count().get_result_direct(conn)
    }
}

/// The agent inbox: cases with their customer and SLA due time, in views, sorted by the
/// first-running SLA deadline (cases without one last), keyset-paged on (due, id).
pub mod inbox {
    use super::*;
    use schema::case_skills::dsl as ks;
    use schema::case_sla::dsl as s;
    use schema::cases::dsl as c;
    use schema::customers::dsl as cu;

    /// Statuses of cases that are not done.
    pub const UNSOLVED: [&str; 4] = ["new", "open", "pending", "on_hold"];

    /// One of the inbox's views.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum View {
        /// Unsolved cases assigned to this agent.
        Mine(String),
        /// Unsolved, unassigned cases of this team (`None`: of no team).
        TeamUnassigned(Option<String>),
        /// New and open cases (waiting on us).
        Open,
        /// Pending cases (waiting on the customer).
        Pending,
        /// Unsolved cases whose running deadline is before this time, or already breached.
        Breaching(NaiveDateTime),
        /// Every case.
        All,
    }

    #[derive(Debug, Clone)]
    pub struct InboxFilter {
        pub view: View,
        pub statuses: Vec<String>,
        pub priority: Option<String>,
        pub channel: Option<String>,
        pub tier: Option<String>,
        pub skill_id: Option<String>,
        /// `Some(None)`: cases of no team; `Some(Some(id))`: of that team.
        pub team_id: Option<Option<String>>,
        pub text: Option<String>,
        /// Keyset cursor: (due time, id) of the last row of the previous page.
        pub after: Option<(Option<NaiveDateTime>, String)>,
        pub limit: i64,
    }

    /// A case, its customer's name and tier, its SLA due time and whether a breach is open.
    pub type InboxRow = (CaseRow, String, String, Option<NaiveDateTime>, Option<bool>);

    /// The part of a view's filter that reads the cases table alone.
    macro_rules! case_view_filter {
        ($q:expr, $view:expr) => {{
            let mut q = $q;
            match $view {
                View::Mine(agent) => {
                    q = q.filter(c::assignee_id.eq(agent.clone())).filter(c::status.eq_any(UNSOLVED));
                }
                View::TeamUnassigned(team) => {
                    q = q.filter(c::assignee_id.is_null()).filter(c::status.eq_any(UNSOLVED));
                    q = match team {
                        Some(t) => q.filter(c::team_id.eq(t.clone())),
                        None => q.filter(c::team_id.is_null()),
                    };
                }
                View::Open => q = q.filter(c::status.eq_any(["new", "open"])),
                View::Pending => q = q.filter(c::status.eq("pending")),
                View::Breaching(_) => q = q.filter(c::status.eq_any(UNSOLVED)),
                View::All => {}
            }
            q
        }};
    }

    /// A view's whole filter: the breaching view also reads the case's deadlines.
    macro_rules! view_filter {
        ($q:expr, $view:expr) => {{
            let q = case_view_filter!($q, $view);
            match $view {
                // `breached` as a bare term, so SQLite can use the partial index on it.
                View::Breaching(before) => q.filter(s::breached.or(s::due_at.le(*before))),
                _ => q,
            }
        }};
    }

    macro_rules! extra_filters {
        ($q:expr, $f:expr) => {{
            let (mut q, f) = ($q, $f);
            if !f.statuses.is_empty() {
                q = q.filter(c::status.eq_any(f.statuses.clone()));
            }
            if let Some(p) = &f.priority {
                q = q.filter(c::priority.eq(p.clone()));
            }
            if let Some(ch) = &f.channel {
                q = q.filter(c::channel.eq(ch.clone()));
            }
            if let Some(t) = &f.tier {
                q = q.filter(cu::tier.eq(t.clone()));
            }
            if let Some(k) = &f.skill_id {
                q = q.filter(c::id.eq_any(ks::case_skills.filter(ks::skill_id.eq(k.clone())).select(ks::case_id)));
            }
            match &f.team_id {
                Some(Some(t)) => q = q.filter(c::team_id.eq(t.clone())),
                Some(None) => q = q.filter(c::team_id.is_null()),
                None => {}
            }
            if let Some(text) = &f.text {
                q = case_text_filter!(q, text);
            }
            view_filter!(q, &f.view)
        }};
    }

    /// One page of the inbox: the cases with a running deadline by (due, id), then those
    /// without one by id. Two queries, so each walks an index in order and stops at the
    /// page's end instead of sorting the whole view.
    pub fn page(conn: &mut DbConn, f: &InboxFilter) -> QueryResult<Vec<InboxRow>> {
        let mut rows: Vec<InboxRow> = Vec::new();
        let after_due = match &f.after {
            Some((None, _)) => None,
            Some((Some(d), id)) => Some(Some((*d, id.clone()))),
            None => Some(None),
        };
        if let Some(after) = after_due {
            rows = on_backend!(&mut *conn, |db| {
                let q = c::cases
                    .inner_join(cu::customers)
                    .inner_join(s::case_sla.on(s::case_id.eq(c::id)))
                    .filter(s::due_at.is_not_null())
                    .select((cols::<CaseRow>(), cu::name, cu::tier, s::due_at, s::breached.nullable()))
                    .into_boxed();
                let mut q = extra_filters!(q, f);
                if let Some((due, id)) = after.clone() {
                    // `>=` first: the range the index scan starts from; then the tie-break.
                    q = q.filter(s::due_at.ge(due)).filter(s::due_at.gt(due).or(s::case_id.gt(id)));
                }
                q.order((s::due_at.asc(), s::case_id.asc())).limit(f.limit).load(db)
            })?;
        }
        let left = f.limit - rows.len() as i64;
        if left > 0 {
            let more: Vec<InboxRow> = on_backend!(conn, |db| {
                let q = c::cases
                    .inner_join(cu::customers)
                    .left_join(s::case_sla.on(s::case_id.eq(c::id)))
                    .filter(s::due_at.is_null())
                    .select((cols::<CaseRow>(), cu::name, cu::tier, s::due_at.nullable(), s::breached.nullable()))
                    .into_boxed();
                let mut q = extra_filters!(q, f);
                if let Some((None, id)) = &f.after {
                    q = q.filter(c::id.gt(id.clone()));
                }
                q.order(c::id.asc()).limit(left).load(db)
            })?;
            rows.extend(more);
        }
        Ok(rows)
    }

    /// How many cases a view holds (without the page's extra filters).
    pub fn count(conn: &mut DbConn, view: &View) -> QueryResult<i64> {
        if let View::Breaching(_) = view {
            // From the deadlines (few are near) to their cases.
            return on_backend!(conn, |db| {
                let q = c::cases
                    .inner_join(s::case_sla.on(s::case_id.eq(c::id)))
                    .select(diesel::dsl::count_star())
                    .into_boxed();
                view_filter!(q, view).get_result(db)
            });
        }
        // The other views need the cases table alone (and its indexes).
        on_backend!(conn, |db| {
            let q = c::cases.select(diesel::dsl::count_star()).into_boxed();
            case_view_filter!(q, view).get_result(db)
        })
    }
}

/// Who is looking at a case (collision warnings) and canned replies.
pub mod viewers {
    use super::*;
    use schema::case_viewers::dsl as v;

    /// Records that `agent_id` has the case open now (replacing its previous heartbeat).
    pub fn touch(conn: &mut DbConn, row: &CaseViewerRow) -> QueryResult<()> {
        // One statement: two heartbeats at once (a timer and a keystroke, two tabs) must not
        // collide on the key.
        macro_rules! upsert {
            ($c:expr) => {
                diesel::insert_into(v::case_viewers)
                    .values(row)
                    .on_conflict((v::case_id, v::agent_id))
                    .do_update()
                    .set((v::composing.eq(row.composing), v::seen_at.eq(row.seen_at)))
                    .execute($c)
                    .map(drop)
            };
        }
        match conn {
            DbConn::Pg(c) => upsert!(c),
            DbConn::Sqlite(c) => upsert!(c),
        }
    }

    pub fn leave(conn: &mut DbConn, case_id: &str, agent_id: &str) -> QueryResult<()> {
        diesel::delete(v::case_viewers.filter(v::case_id.eq(case_id)).filter(v::agent_id.eq(agent_id)))
            .execute_direct(conn)
            .map(drop)
    }

    /// The case's viewers seen since `since`.
    pub fn of_case(conn: &mut DbConn, case_id: &str, since: NaiveDateTime) -> QueryResult<Vec<CaseViewerRow>> {
        v::case_viewers
            .filter(v::case_id.eq(case_id))
            .filter(v::seen_at.ge(since))
            .order(v::seen_at.asc())
            .select(cols::<CaseViewerRow>())
            .load_direct(conn)
    }

    /// Forgets heartbeats older than `before`.
    pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
        diesel::delete(v::case_viewers.filter(v::seen_at.lt(before))).execute_direct(conn)
    }
}

/// Browser sessions ended before their expiry (logout).
pub mod sessions {
    use super::*;
    use schema::revoked_sessions::dsl as r;

    /// Records a logged-out session (again: no change); forgets those past their expiry.
    pub fn revoke(
        conn: &mut DbConn,
        token_hash: &str,
        expires_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> QueryResult<()> {
        diesel::delete(r::revoked_sessions.filter(r::expires_at.lt(now))).execute_direct(conn)?;
        macro_rules! insert {
            ($c:expr) => {
                diesel::insert_into(r::revoked_sessions)
                    .values((r::token_hash.eq(token_hash), r::expires_at.eq(expires_at)))
                    .on_conflict(r::token_hash)
                    .do_nothing()
                    .execute($c)
                    .map(drop)
            };
        }
        match conn {
            DbConn::Pg(c) => insert!(c),
            DbConn::Sqlite(c) => insert!(c),
        }
    }

    pub fn is_revoked(conn: &mut DbConn, token_hash: &str) -> QueryResult<bool> {
        let n: i64 = r::revoked_sessions.filter(r::token_hash.eq(token_hash)).count().get_result_direct(conn)?;
        Ok(n > 0)
    }
}

pub mod macros {
    use super::*;
    use schema::macros::dsl as m;

    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<MacroRow>> {
        m::macros.order(m::name.asc()).select(cols::<MacroRow>()).load_direct(conn)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<MacroRow>> {
        m::macros.find(id).select(cols::<MacroRow>()).load_direct(conn).map(first)
    }

    pub fn by_name(conn: &mut DbConn, name: &str) -> QueryResult<Option<MacroRow>> {
        m::macros.filter(m::name.eq(name)).select(cols::<MacroRow>()).load_direct(conn).map(first)
    }

    pub fn insert(conn: &mut DbConn, row: &MacroRow) -> QueryResult<()> {
        diesel::insert_into(m::macros).values(row).execute_direct(conn).map(drop)
    }

    /// Writes `row` if the stored version is still `expected`; returns whether it did.
    pub fn update_if_version(conn: &mut DbConn, row: &MacroRow, expected: i64) -> QueryResult<bool> {
        let n = diesel::update(m::macros.filter(m::id.eq(&row.id)).filter(m::version.eq(expected)))
            .set(row)
            .execute_direct(conn)?;
        Ok(n == 1)
    }

    pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
        Ok(diesel::delete(m::macros.find(id)).execute_direct(conn)? == 1)
    }
}

/// Figures for the supervisor console: narrow rows, bucketed by the caller.
pub mod stats {
    use super::*;
    use schema::case_skills::dsl as ks;
    use schema::cases::dsl as c;
    use schema::sla_fired::dsl as f;

    /// Active cases (new and open: what routing counts against `max_load`) per assignee.
    pub fn load_per_agent(conn: &mut DbConn) -> QueryResult<Vec<(Option<String>, i64)>> {
        c::cases
            .filter(c::status.eq_any(routing::ACTIVE))
            .filter(c::assignee_id.is_not_null())
            .group_by(c::assignee_id)
            .select((c::assignee_id, diesel::dsl::count_star()))
            .load_direct(conn)
    }

    /// Cases waiting for an agent (new or open, unassigned) per team (`None`: no team).
    pub fn waiting_per_team(conn: &mut DbConn) -> QueryResult<Vec<(Option<String>, i64)>> {
        c::cases
            .filter(c::status.eq_any(["new", "open"]))
            .filter(c::assignee_id.is_null())
            .group_by(c::team_id)
            .select((c::team_id, diesel::dsl::count_star()))
            .load_direct(conn)
    }

    /// (skill, team) of every skill required by a case waiting for an agent (new or open,
    /// unassigned): one row per case and skill, counted by the caller (waiting cases are the
    /// queue, not the history).
    pub fn waiting_skills(conn: &mut DbConn) -> QueryResult<Vec<(String, Option<String>)>> {
        ks::case_skills
            .inner_join(c::cases)
            .filter(ks::required.eq(true))
            .filter(c::status.eq_any(["new", "open"]))
            .filter(c::assignee_id.is_null())
            .select((ks::skill_id, c::team_id))
            .load_direct(conn)
    }

    /// (creation time, team) of the cases created since `since`.
    pub fn created_since(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<Vec<(NaiveDateTime, Option<String>)>> {
        c::cases.filter(c::created_at.ge(since)).select((c::created_at, c::team_id)).load_direct(conn)
    }

    /// (solving time, team) of the cases solved since `since`.
    pub fn solved_since(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<Vec<(NaiveDateTime, Option<String>)>> {
        c::cases.filter(c::solved_at.ge(since)).select((c::solved_at.assume_not_null(), c::team_id)).load_direct(conn)
    }

    /// (created, first response, channel, team) of a case.
    pub type FirstResponse = (NaiveDateTime, NaiveDateTime, String, Option<String>);

    /// The first responses of the cases created since `since` that were answered.
    pub fn first_responses_since(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<Vec<FirstResponse>> {
        c::cases
            .filter(c::created_at.ge(since))
            .filter(c::first_response_at.is_not_null())
            .select((c::created_at, c::first_response_at.assume_not_null(), c::channel, c::team_id))
            .load_direct(conn)
    }

    /// (when, channel, team) of every breach due since `since`.
    pub fn breaches_since(
        conn: &mut DbConn,
        since: NaiveDateTime,
    ) -> QueryResult<Vec<(NaiveDateTime, String, Option<String>)>> {
        f::sla_fired
            .inner_join(c::cases.on(c::id.eq(f::case_id)))
            .filter(f::milestone.eq("breach"))
            .filter(f::due_at.ge(since))
            .select((f::due_at, c::channel, c::team_id))
            .load_direct(conn)
    }
}

pub mod messages {
    use super::*;
    use schema::messages::dsl as m;

    pub fn insert(conn: &mut DbConn, row: &MessageRow) -> QueryResult<()> {
        diesel::insert_into(m::messages).values(row).execute_direct(conn).map(drop)
    }

    pub fn list_for_case(
        conn: &mut DbConn,
        case_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<MessageRow>> {
        on_backend!(conn, |db| {
            let mut q = m::messages.filter(m::case_id.eq(case_id)).select(cols::<MessageRow>()).into_boxed();
            if let Some(a) = after {
                q = q.filter(m::id.gt(a.to_owned()));
            }
            q.order(m::id.asc()).limit(limit).load(db)
        })
    }

    pub fn find_by_external_id(conn: &mut DbConn, channel: &str, external_id: &str) -> QueryResult<Option<MessageRow>> {
        m::messages
            .filter(m::channel.eq(channel))
            .filter(m::external_id.eq(external_id))
            .select(cols::<MessageRow>())
            .load_direct(conn)
            .map(first)
    }

    /// The message (of ours or a customer's) carrying one of these `Message-ID`s, newest first.
    pub fn find_by_message_id_header(conn: &mut DbConn, ids: &[String]) -> QueryResult<Option<MessageRow>> {
        m::messages
            .filter(m::message_id_header.eq_any(ids))
            .order(m::id.desc())
            .limit(1)
            .select(cols::<MessageRow>())
            .load_direct(conn)
            .map(first)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<MessageRow>> {
        m::messages.find(id).select(cols::<MessageRow>()).load_direct(conn).map(first)
    }

    /// The next conversation position of a case (1 for the first). Call inside the
    /// transaction that moves the case's version, so that concurrent writers conflict.
    pub fn next_seq(conn: &mut DbConn, case_id: &str) -> QueryResult<i64> {
        let max: Option<i64> =
            m::messages.filter(m::case_id.eq(case_id)).select(diesel::dsl::max(m::seq)).get_result_direct(conn)?;
        Ok(max.unwrap_or(0) + 1)
    }

    /// The case's conversation messages after position `after`, in order.
    pub fn after_seq(conn: &mut DbConn, case_id: &str, after: i64, limit: i64) -> QueryResult<Vec<MessageRow>> {
        m::messages
            .filter(m::case_id.eq(case_id))
            .filter(m::seq.gt(after))
            .order(m::seq.asc())
            .limit(limit)
            .select(cols::<MessageRow>())
            .load_direct(conn)
    }

    /// Outbound messages of a case up to position `upto` not yet marked sent.
    pub fn queued_upto_seq(conn: &mut DbConn, case_id: &str, upto: i64) -> QueryResult<Vec<MessageRow>> {
        m::messages
            .filter(m::case_id.eq(case_id))
            .filter(m::seq.le(upto))
            .filter(m::direction.eq("outbound"))
            .filter(m::delivery_status.ne("sent"))
            .select(cols::<MessageRow>())
            .load_direct(conn)
    }

    pub fn set_delivery_status(conn: &mut DbConn, id: &str, status: &str) -> QueryResult<()> {
        diesel::update(m::messages.find(id)).set(m::delivery_status.eq(status)).execute_direct(conn).map(drop)
    }

    /// Records a delivery outcome of an outbound message (`error` is cleared on success).
    pub fn set_delivery(conn: &mut DbConn, id: &str, status: &str, error: Option<&str>) -> QueryResult<()> {
        diesel::update(m::messages.find(id))
            .set((m::delivery_status.eq(status), m::delivery_error.eq(error)))
            .execute_direct(conn)
            .map(drop)
    }

    /// The newest message of a case in `direction` that has a `Message-ID`.
    pub fn last_with_message_id_in(
        conn: &mut DbConn,
        case_id: &str,
        direction: &str,
        before_id: &str,
    ) -> QueryResult<Option<MessageRow>> {
        m::messages
            .filter(m::case_id.eq(case_id))
            .filter(m::direction.eq(direction))
            .filter(m::id.lt(before_id))
            .filter(m::message_id_header.is_not_null())
            .order(m::id.desc())
            .limit(1)
            .select(cols::<MessageRow>())
            .load_direct(conn)
            .map(first)
    }

    /// The newest message of a case that has a `Message-ID` (to answer in the same thread).
    pub fn last_with_message_id(conn: &mut DbConn, case_id: &str) -> QueryResult<Option<MessageRow>> {
        m::messages
            .filter(m::case_id.eq(case_id))
            .filter(m::message_id_header.is_not_null())
            .order(m::id.desc())
            .limit(1)
            .select(cols::<MessageRow>())
            .load_direct(conn)
            .map(first)
    }

    pub fn insert_attachment(conn: &mut DbConn, row: &NewAttachment) -> QueryResult<()> {
        diesel::insert_into(schema::attachments::table).values(row).execute_direct(conn).map(drop)
    }

    pub fn attachments_for(conn: &mut DbConn, message_ids: &[String]) -> QueryResult<Vec<AttachmentMeta>> {
        use schema::attachments::dsl as a;
        a::attachments
            .filter(a::message_id.eq_any(message_ids))
            .order(a::id.asc())
            .select(cols::<AttachmentMeta>())
            .load_direct(conn)
    }
}

pub mod events {
    use super::*;

    pub fn insert_case_event(conn: &mut DbConn, row: &CaseEventRow) -> QueryResult<()> {
        diesel::insert_into(schema::case_events::table).values(row).execute_direct(conn).map(drop)
    }

    pub fn list_case_events(
        conn: &mut DbConn,
        case_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<CaseEventRow>> {
        use schema::case_events::dsl as e;
        on_backend!(conn, |db| {
            let mut q = e::case_events.filter(e::case_id.eq(case_id)).select(cols::<CaseEventRow>()).into_boxed();
            if let Some(a) = after {
                q = q.filter(e::id.gt(a.to_owned()));
            }
            q.order(e::id.asc()).limit(limit).load(db)
        })
    }

    /// Case events of every case created at or after `since` and after the key `after`, in
    /// (created_at, id) order: (id, case id, kind, created at). What the live case stream reads.
    pub fn case_events_since(
        conn: &mut DbConn,
        since: NaiveDateTime,
        after: Option<(NaiveDateTime, String)>,
        limit: i64,
    ) -> QueryResult<Vec<(String, String, String, NaiveDateTime)>> {
        use schema::case_events::dsl as e;
        on_backend!(conn, |db| {
            let mut q = e::case_events.filter(e::created_at.ge(since)).into_boxed();
            if let Some((t, id)) = after {
                q = q.filter(e::created_at.gt(t).or(e::created_at.eq(t).and(e::id.gt(id))));
            }
            q.order((e::created_at, e::id)).limit(limit).select((e::id, e::case_id, e::kind, e::created_at)).load(db)
        })
    }

    /// When a case event was created (to resume a stream from its id).
    pub fn case_event_created_at(conn: &mut DbConn, id: &str) -> QueryResult<Option<NaiveDateTime>> {
        use schema::case_events::dsl as e;
        e::case_events.find(id).select(e::created_at).load_direct(conn).map(first)
    }

    /// Several rows in one statement.
    pub fn insert_case_events(conn: &mut DbConn, rows: &[CaseEventRow]) -> QueryResult<()> {
        insert_rows!(conn, schema::case_events::table, rows)
    }

    /// Several rows in one statement.
    pub fn insert_customer_events(conn: &mut DbConn, rows: &[CustomerEventRow]) -> QueryResult<()> {
        insert_rows!(conn, schema::customer_events::table, rows)
    }

    pub fn insert_customer_event(conn: &mut DbConn, row: &CustomerEventRow) -> QueryResult<()> {
        diesel::insert_into(schema::customer_events::table).values(row).execute_direct(conn).map(drop)
    }

    pub fn list_customer_events(conn: &mut DbConn, customer_id: &str) -> QueryResult<Vec<CustomerEventRow>> {
        use schema::customer_events::dsl as e;
        e::customer_events
            .filter(e::customer_id.eq(customer_id))
            .order(e::id.asc())
            .select(cols::<CustomerEventRow>())
            .load_direct(conn)
    }

    pub fn insert_outbox(conn: &mut DbConn, row: &OutboxRow) -> QueryResult<()> {
        diesel::insert_into(schema::outbox::table).values(row).execute_direct(conn).map(drop)
    }

    pub fn outbox_for_case(conn: &mut DbConn, case_id: &str) -> QueryResult<Vec<OutboxRow>> {
        use schema::outbox::dsl as o;
        o::outbox.filter(o::case_id.eq(case_id)).order(o::id.asc()).select(cols::<OutboxRow>()).load_direct(conn)
    }

    /// Pending rows of these kinds whose next attempt is due, oldest first.
    pub fn outbox_due(
        conn: &mut DbConn,
        kinds: &[&str],
        now: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<OutboxRow>> {
        use schema::outbox::dsl as o;
        o::outbox
            .filter(o::status.eq("pending"))
            .filter(o::next_attempt_at.le(now))
            .filter(o::kind.eq_any(kinds))
            .order((o::next_attempt_at.asc(), o::id.asc()))
            .limit(limit)
            .select(cols::<OutboxRow>())
            .load_direct(conn)
    }

    /// Claims a due row by moving its next attempt to `lease_until` and counting the attempt,
    /// only if no other worker did so first (compare-and-set on `next_attempt_at`). A worker
    /// that dies mid-delivery leaves the row to be retried when the lease runs out.
    pub fn outbox_claim(
        conn: &mut DbConn,
        id: &str,
        seen_next_attempt_at: NaiveDateTime,
        lease_until: NaiveDateTime,
    ) -> QueryResult<bool> {
        use schema::outbox::dsl as o;
        diesel::update(
            o::outbox
                .filter(o::id.eq(id))
                .filter(o::status.eq("pending"))
                .filter(o::next_attempt_at.eq(seen_next_attempt_at)),
        )
        .set((o::next_attempt_at.eq(lease_until), o::attempts.eq(o::attempts + 1)))
        .execute_direct(conn)
        .map(|n| n == 1)
    }

    /// Records the outcome of an attempt: `delivered`, `failed` (for good) or `pending` again
    /// with the time of the next attempt — only if the row is still held by this attempt
    /// (same attempt count and lease); false when the lease ran out and another worker took
    /// the row over, whose outcome then wins.
    #[allow(clippy::too_many_arguments)]
    pub fn outbox_finish(
        conn: &mut DbConn,
        id: &str,
        claimed_attempts: i32,
        claimed_lease: NaiveDateTime,
        status: &str,
        next_attempt_at: NaiveDateTime,
        last_error: Option<&str>,
        delivered_at: Option<NaiveDateTime>,
    ) -> QueryResult<bool> {
        use schema::outbox::dsl as o;
        diesel::update(
            o::outbox
                .filter(o::id.eq(id))
                .filter(o::status.eq("pending"))
                .filter(o::attempts.eq(claimed_attempts))
                .filter(o::next_attempt_at.eq(claimed_lease)),
        )
        .set((
            o::status.eq(status),
            o::next_attempt_at.eq(next_attempt_at),
            o::last_error.eq(last_error),
            o::delivered_at.eq(delivered_at),
        ))
        .execute_direct(conn)
        .map(|n| n == 1)
    }

    /// Makes a case's waiting rows of `kind` due now (not those a worker holds).
    pub fn outbox_due_now(conn: &mut DbConn, case_id: &str, kind: &str, now: NaiveDateTime) -> QueryResult<usize> {
        use schema::outbox::dsl as o;
        diesel::update(
            o::outbox
                .filter(o::case_id.eq(case_id))
                .filter(o::kind.eq(kind))
                .filter(o::status.eq("pending"))
                .filter(o::attempts.eq(0))
                .filter(o::next_attempt_at.gt(now)),
        )
        .set(o::next_attempt_at.eq(now))
        .execute_direct(conn)
    }

    /// Marks a pending row delivered by another path (a chat reply the visitor's browser
    /// confirmed before the email fallback was due), unless a worker holds it right now
    /// (`next_attempt_at` in the future with an attempt counted means a lease). True when
    /// this call settled it.
    pub fn outbox_settle(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
        use schema::outbox::dsl as o;
        diesel::update(o::outbox.filter(o::id.eq(id)).filter(o::status.eq("pending")).filter(o::attempts.eq(0)))
            .set((o::status.eq("delivered"), o::delivered_at.eq(Some(now)), o::next_attempt_at.eq(now)))
            .execute_direct(conn)
            .map(|n| n == 1)
    }

    pub fn outbox_get(conn: &mut DbConn, id: &str) -> QueryResult<Option<OutboxRow>> {
        use schema::outbox::dsl as o;
        o::outbox.find(id).select(cols::<OutboxRow>()).load_direct(conn).map(first)
    }

    /// Number of undelivered outbox rows and the creation time of the oldest.
    pub fn outbox_backlog(conn: &mut DbConn) -> QueryResult<(i64, Option<NaiveDateTime>)> {
        use schema::outbox::dsl as o;
        let pending = o::outbox.filter(o::status.eq("pending"));
        let n = pending.count().get_result_direct(conn)?;
        let oldest = o::outbox.filter(o::status.eq("pending")).select(diesel::dsl::min(o::created_at)).first::<Option<
            NaiveDateTime,
        >>(
            conn
        )?;
        Ok((n, oldest))
    }
}

pub mod customers {
    use super::*;
    use schema::customer_identities::dsl as i;
    use schema::customers::dsl as cu;

    pub fn insert(conn: &mut DbConn, row: &CustomerRow) -> QueryResult<()> {
        diesel::insert_into(cu::customers).values(row).execute_direct(conn).map(drop)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<CustomerRow>> {
        cu::customers.find(id).select(cols::<CustomerRow>()).load_direct(conn).map(first)
    }

    /// Customers that have not been merged away, newest first, optionally matching `text`
    /// against the name or any identity value.
    pub fn list(
        conn: &mut DbConn,
        text: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<CustomerRow>> {
        on_backend!(conn, |db| {
            let mut q = cu::customers.filter(cu::merged_into.is_null()).select(cols::<CustomerRow>()).into_boxed();
            if let Some(t) = text {
                let p = like_pattern(t.trim());
                let by_identity =
                    i::customer_identities.filter(lower(i::value).like(p.clone()).escape('\\')).select(i::customer_id);
                q = q.filter(lower(cu::name).like(p).escape('\\').or(cu::id.eq_any(by_identity)));
            }
            if let Some(a) = after {
                q = q.filter(cu::id.lt(a.to_owned()));
            }
            q.order(cu::id.desc()).limit(limit).load(db)
        })
    }

    pub fn update_if_version(conn: &mut DbConn, row: &CustomerRow, expected_version: i64) -> QueryResult<bool> {
        let n = diesel::update(cu::customers.filter(cu::id.eq(&row.id)).filter(cu::version.eq(expected_version)))
            .set(row)
            .execute_direct(conn)?;
        Ok(n == 1)
    }

    pub fn identities(conn: &mut DbConn, customer_id: &str) -> QueryResult<Vec<IdentityRow>> {
        i::customer_identities
            .filter(i::customer_id.eq(customer_id))
            .order(i::id.asc())
            .select(cols::<IdentityRow>())
            .load_direct(conn)
    }

    pub fn find_identity(conn: &mut DbConn, kind: &str, value: &str) -> QueryResult<Option<IdentityRow>> {
        i::customer_identities
            .filter(i::kind.eq(kind))
            .filter(i::value.eq(value))
            .select(cols::<IdentityRow>())
            .load_direct(conn)
            .map(first)
    }

    /// The identities of one kind among `values` (one query for a batch).
    pub fn find_identities(conn: &mut DbConn, kind: &str, values: &[String]) -> QueryResult<Vec<IdentityRow>> {
        i::customer_identities
            .filter(i::kind.eq(kind))
            .filter(i::value.eq_any(values))
            .select(cols::<IdentityRow>())
            .load_direct(conn)
    }

    pub fn insert_identity(conn: &mut DbConn, row: &IdentityRow) -> QueryResult<()> {
        diesel::insert_into(i::customer_identities).values(row).execute_direct(conn).map(drop)
    }

    /// Moves every identity of `from` to `to`; returns the moved identity ids.
    /// Moves the named identities from `from` to `to` (those still on `from`); returns them.
    pub fn move_identities_by_id(conn: &mut DbConn, ids: &[String], from: &str, to: &str) -> QueryResult<Vec<String>> {
        let moved: Vec<String> = i::customer_identities
            .filter(i::id.eq_any(ids))
            .filter(i::customer_id.eq(from))
            .select(i::id)
            .load_direct(conn)?;
        diesel::update(i::customer_identities.filter(i::id.eq_any(&moved)))
            .set(i::customer_id.eq(to))
            .execute_direct(conn)?;
        Ok(moved)
    }

    pub fn move_identities(conn: &mut DbConn, from: &str, to: &str) -> QueryResult<Vec<String>> {
        let ids: Vec<String> =
            i::customer_identities.filter(i::customer_id.eq(from)).select(i::id).load_direct(conn)?;
        diesel::update(i::customer_identities.filter(i::customer_id.eq(from)))
            .set(i::customer_id.eq(to))
            .execute_direct(conn)?;
        Ok(ids)
    }
}

pub mod agents {
    use super::*;
    use schema::agent_skills::dsl as s;
    use schema::agents::dsl as a;

    pub fn insert(conn: &mut DbConn, row: &AgentRow) -> QueryResult<()> {
        diesel::insert_into(a::agents).values(row).execute_direct(conn).map(drop)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<AgentRow>> {
        a::agents.find(id).select(cols::<AgentRow>()).load_direct(conn).map(first)
    }

    pub fn get_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<AgentRow>> {
        a::agents.filter(a::email.eq(email)).select(cols::<AgentRow>()).load_direct(conn).map(first)
    }

    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<AgentRow>> {
        a::agents.order(a::name.asc()).select(cols::<AgentRow>()).load_direct(conn)
    }

    pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
        a::agents.count().get_result_direct(conn)
    }

    pub fn update(conn: &mut DbConn, row: &AgentRow) -> QueryResult<bool> {
        Ok(diesel::update(a::agents.find(&row.id)).set(row).execute_direct(conn)? == 1)
    }

    pub fn skills(conn: &mut DbConn, agent_ids: &[String]) -> QueryResult<Vec<AgentSkillRow>> {
        s::agent_skills
            .filter(s::agent_id.eq_any(agent_ids))
            .order((s::agent_id.asc(), s::skill_id.asc()))
            .select(cols::<AgentSkillRow>())
            .load_direct(conn)
    }

    pub fn insert_event(conn: &mut DbConn, row: &AgentEventRow) -> QueryResult<()> {
        use schema::agent_events::dsl as e;
        diesel::insert_into(e::agent_events).values(row).execute_direct(conn).map(drop)
    }

    /// The agent's audit log, oldest first, after the cursor (an event id).
    pub fn events(
        conn: &mut DbConn,
        agent_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<AgentEventRow>> {
        use schema::agent_events::dsl as e;
        on_backend!(conn, |db| {
            let mut q = e::agent_events.filter(e::agent_id.eq(agent_id)).into_boxed();
            if let Some(a) = after {
                q = q.filter(e::id.gt(a.to_owned()));
            }
            q.order(e::id.asc()).limit(limit).select(cols::<AgentEventRow>()).load(db)
        })
    }

    /// Replaces the agent's whole skill set.
    pub fn set_skills(conn: &mut DbConn, agent_id: &str, rows: &[AgentSkillRow]) -> QueryResult<()> {
        diesel::delete(s::agent_skills.filter(s::agent_id.eq(agent_id))).execute_direct(conn)?;
        for r in rows {
            diesel::insert_into(s::agent_skills).values(r).execute_direct(conn)?;
        }
        Ok(())
    }
}

pub mod teams {
    use super::*;
    use schema::teams::dsl as t;

    pub fn insert(conn: &mut DbConn, row: &TeamRow) -> QueryResult<()> {
        diesel::insert_into(t::teams).values(row).execute_direct(conn).map(drop)
    }
    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<TeamRow>> {
        t::teams.find(id).select(cols::<TeamRow>()).load_direct(conn).map(first)
    }
    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<TeamRow>> {
        t::teams.order(t::name.asc()).select(cols::<TeamRow>()).load_direct(conn)
    }
    pub fn update(conn: &mut DbConn, row: &TeamRow) -> QueryResult<bool> {
        Ok(diesel::update(t::teams.find(&row.id)).set(row).execute_direct(conn)? == 1)
    }
    pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
        Ok(diesel::delete(t::teams.find(id)).execute_direct(conn)? == 1)
    }
}

pub mod skills {
    use super::*;
    use schema::skills::dsl as s;

    pub fn insert(conn: &mut DbConn, row: &SkillRow) -> QueryResult<()> {
        diesel::insert_into(s::skills).values(row).execute_direct(conn).map(drop)
    }
    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<SkillRow>> {
        s::skills.find(id).select(cols::<SkillRow>()).load_direct(conn).map(first)
    }
    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<SkillRow>> {
        s::skills.order(s::name.asc()).select(cols::<SkillRow>()).load_direct(conn)
    }
    pub fn update(conn: &mut DbConn, row: &SkillRow) -> QueryResult<bool> {
        Ok(diesel::update(s::skills.find(&row.id)).set(row).execute_direct(conn)? == 1)
    }
    pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
        Ok(diesel::delete(s::skills.find(id)).execute_direct(conn)? == 1)
    }
}

pub mod tokens {
    use super::*;
    use schema::api_tokens::dsl as t;

    pub fn insert(conn: &mut DbConn, row: &ApiTokenRow) -> QueryResult<()> {
        diesel::insert_into(t::api_tokens).values(row).execute_direct(conn).map(drop)
    }
    pub fn find_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<ApiTokenRow>> {
        t::api_tokens.filter(t::token_hash.eq(hash)).select(cols::<ApiTokenRow>()).load_direct(conn).map(first)
    }
    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<ApiTokenRow>> {
        t::api_tokens.order(t::id.asc()).select(cols::<ApiTokenRow>()).load_direct(conn)
    }
    pub fn revoke(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
        Ok(diesel::update(t::api_tokens.find(id).filter(t::revoked_at.is_null()))
            .set(t::revoked_at.eq(now))
            .execute_direct(conn)?
            == 1)
    }
    pub fn touch(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
        diesel::update(t::api_tokens.find(id)).set(t::last_used_at.eq(now)).execute_direct(conn).map(drop)
    }
}

pub mod idempotency {
    use super::*;
    use schema::idempotency_keys::dsl as k;

    pub fn get(conn: &mut DbConn, scope: &str, key: &str) -> QueryResult<Option<IdempotencyRow>> {
        k::idempotency_keys.find((scope, key)).select(cols::<IdempotencyRow>()).load_direct(conn).map(first)
    }

    pub fn insert(conn: &mut DbConn, row: &IdempotencyRow) -> QueryResult<()> {
        diesel::insert_into(k::idempotency_keys).values(row).execute_direct(conn).map(drop)
    }

    pub fn update(conn: &mut DbConn, row: &IdempotencyRow) -> QueryResult<bool> {
        Ok(diesel::update(k::idempotency_keys.find((&row.scope, &row.key))).set(row).execute_direct(conn)? == 1)
    }

    pub fn delete(conn: &mut DbConn, scope: &str, key: &str) -> QueryResult<()> {
        diesel::delete(k::idempotency_keys.find((scope, key))).execute_direct(conn).map(drop)
    }

    /// Deletes keys that expired before `now`; returns how many.
    pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
        diesel::delete(k::idempotency_keys.filter(k::expires_at.lt(now))).execute_direct(conn)
    }
}

pub mod mailboxes {
    use super::*;
    use schema::mailbox_state::dsl as ms;

    pub fn get(conn: &mut DbConn, mailbox: &str) -> QueryResult<Option<MailboxStateRow>> {
        ms::mailbox_state.find(mailbox).select(cols::<MailboxStateRow>()).load_direct(conn).map(first)
    }

    /// Writes the mailbox's position (insert or update; callers hold the write transaction).
    pub fn put(conn: &mut DbConn, row: &MailboxStateRow) -> QueryResult<()> {
        let n = diesel::update(ms::mailbox_state.find(&row.mailbox)).set(row).execute_direct(conn)?;
        if n == 0 {
            diesel::insert_into(ms::mailbox_state).values(row).execute_direct(conn)?;
        }
        Ok(())
    }
}

pub mod inbound {
    use super::*;
    use schema::inbound_messages::dsl as i;

    pub fn find(conn: &mut DbConn, channel: &str, dedup_key: &str) -> QueryResult<Option<InboundMeta>> {
        i::inbound_messages
            .filter(i::channel.eq(channel))
            .filter(i::dedup_key.eq(dedup_key))
            .select(cols::<InboundMeta>())
            .load_direct(conn)
            .map(first)
    }

    /// The ledger entries among `dedup_keys` (one query for a whole batch).
    pub fn find_many(conn: &mut DbConn, channel: &str, dedup_keys: &[String]) -> QueryResult<Vec<InboundMeta>> {
        i::inbound_messages
            .filter(i::channel.eq(channel))
            .filter(i::dedup_key.eq_any(dedup_keys))
            .select(cols::<InboundMeta>())
            .load_direct(conn)
    }

    /// Several rows in one statement.
    pub fn insert_many(conn: &mut DbConn, rows: &[InboundRow]) -> QueryResult<()> {
        insert_rows!(conn, i::inbound_messages, rows)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<InboundRow>> {
        i::inbound_messages.find(id).select(cols::<InboundRow>()).load_direct(conn).map(first)
    }

    pub fn insert(conn: &mut DbConn, row: &InboundRow) -> QueryResult<()> {
        diesel::insert_into(i::inbound_messages).values(row).execute_direct(conn).map(drop)
    }

    pub fn update(conn: &mut DbConn, row: &InboundRow) -> QueryResult<()> {
        diesel::update(i::inbound_messages.find(&row.id)).set(row).execute_direct(conn).map(drop)
    }

    /// A page of inbound messages with the given outcome, newest first.
    pub fn list(
        conn: &mut DbConn,
        outcome: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<InboundMeta>> {
        on_backend!(conn, |db| {
            let mut q = i::inbound_messages.select(cols::<InboundMeta>()).into_boxed();
            if let Some(o) = outcome {
                q = q.filter(i::outcome.eq(o.to_owned()));
            }
            if let Some(a) = after {
                q = q.filter(i::id.lt(a.to_owned()));
            }
            q.order(i::id.desc()).limit(limit).load(db)
        })
    }
}

pub mod chat {
    use super::*;
    use schema::chat_sessions::dsl as s;

    pub fn insert(conn: &mut DbConn, row: &ChatSessionRow) -> QueryResult<()> {
        diesel::insert_into(s::chat_sessions).values(row).execute_direct(conn).map(drop)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<ChatSessionRow>> {
        s::chat_sessions.find(id).select(cols::<ChatSessionRow>()).load_direct(conn).map(first)
    }

    pub fn update(conn: &mut DbConn, row: &ChatSessionRow) -> QueryResult<()> {
        diesel::update(s::chat_sessions.find(&row.id)).set(row).execute_direct(conn).map(drop)
    }

    /// The newest session on a case.
    pub fn latest_for_case(conn: &mut DbConn, case_id: &str) -> QueryResult<Option<ChatSessionRow>> {
        s::chat_sessions
            .filter(s::case_id.eq(case_id))
            .order(s::created_at.desc())
            .limit(1)
            .select(cols::<ChatSessionRow>())
            .load_direct(conn)
            .map(first)
    }

    /// The visitor's newest session that has a case.
    pub fn latest_with_case_for_visitor(conn: &mut DbConn, visitor_id: &str) -> QueryResult<Option<ChatSessionRow>> {
        s::chat_sessions
            .filter(s::visitor_id.eq(visitor_id))
            .filter(s::case_id.is_not_null())
            .order(s::created_at.desc())
            .limit(1)
            .select(cols::<ChatSessionRow>())
            .load_direct(conn)
            .map(first)
    }

    /// Points the session at a (new) case, only if it still points at `expected` (no other
    /// connection of the session moved it first; false then).
    pub fn set_case_if(conn: &mut DbConn, id: &str, expected: Option<&str>, case_id: &str) -> QueryResult<bool> {
        let target = s::chat_sessions.filter(s::id.eq(id));
        let n = match expected {
            Some(e) => diesel::update(target.filter(s::case_id.eq(e)))
                .set(s::case_id.eq(Some(case_id)))
                .execute_direct(conn)?,
            None => diesel::update(target.filter(s::case_id.is_null()))
                .set(s::case_id.eq(Some(case_id)))
                .execute_direct(conn)?,
        };
        Ok(n == 1)
    }

    /// Records the highest position the visitor's browser confirmed (never moves back) and
    /// that the visitor was seen.
    pub fn confirm(conn: &mut DbConn, id: &str, seq: i64, now: NaiveDateTime) -> QueryResult<()> {
        diesel::update(s::chat_sessions.filter(s::id.eq(id)).filter(s::received_seq.lt(seq)))
            .set(s::received_seq.eq(seq))
            .execute_direct(conn)?;
        diesel::update(s::chat_sessions.find(id)).set(s::last_seen_at.eq(now)).execute_direct(conn).map(drop)
    }
}

pub mod routing {
    use super::*;
    use schema::agent_capacities::dsl as ac;
    use schema::case_skills::dsl as cs;
    use schema::cases::dsl as c;
    use schema::customers::dsl as cu;
    use schema::routing_decisions::dsl as rd;
    use schema::routing_signals::dsl as rs;

    /// Statuses in which a case occupies its assignee and, unassigned, waits for routing.
    pub const ACTIVE: [&str; 2] = ["new", "open"];

    type RoutableColumns = (
        c::id,
        c::status,
        c::priority,
        c::channel,
        c::team_id,
        c::assignee_id,
        c::created_at,
        c::waiting_since,
        c::offered_to,
        cu::tier,
        cu::value,
    );
    const ROUTABLE: RoutableColumns = (
        c::id,
        c::status,
        c::priority,
        c::channel,
        c::team_id,
        c::assignee_id,
        c::created_at,
        c::waiting_since,
        c::offered_to,
        cu::tier,
        cu::value,
    );

    /// Plans the rest of the current transaction's statements for their actual parameters
    /// (PostgreSQL). The router looks up hundreds of ids at once with `= ANY($1)`; a cached
    /// generic plan for that shape can be a sequential scan comparing every row with every id
    /// (measured: 80–260 ms per 500 ids at 10,000 cases, against 3 ms planned for the values).
    pub fn plan_for_values(conn: &mut DbConn) -> QueryResult<()> {
        match conn {
            DbConn::Pg(c) => diesel::sql_query("SET LOCAL plan_cache_mode = force_custom_plan").execute(c).map(drop),
            DbConn::Sqlite(_) => Ok(()),
        }
    }

    /// Every active case that is unassigned (waiting) or assigned (occupying its agent).
    pub fn active_cases(conn: &mut DbConn) -> QueryResult<Vec<RoutableCase>> {
        c::cases.inner_join(cu::customers).filter(c::status.eq_any(ACTIVE)).select(ROUTABLE).load_direct(conn)
    }

    /// The named cases, whatever their state.
    pub fn cases(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<RoutableCase>> {
        c::cases.inner_join(cu::customers).filter(c::id.eq_any(ids)).select(ROUTABLE).load_direct(conn)
    }

    /// The active cases of the named customers (their tier or value changed).
    pub fn active_case_ids_of_customers(conn: &mut DbConn, customers: &[String]) -> QueryResult<Vec<String>> {
        c::cases
            .filter(c::customer_id.eq_any(customers))
            .filter(c::status.eq_any(ACTIVE))
            .select(c::id)
            .load_direct(conn)
    }

    /// Skills of the named cases (all of them when `ids` is `None`).
    pub fn case_skills(conn: &mut DbConn, ids: Option<&[String]>) -> QueryResult<Vec<CaseSkillRow>> {
        match ids {
            Some(ids) => {
                cs::case_skills.filter(cs::case_id.eq_any(ids)).select(cols::<CaseSkillRow>()).load_direct(conn)
            }
            None => cs::case_skills
                .inner_join(c::cases)
                .filter(c::status.eq_any(ACTIVE))
                .filter(c::assignee_id.is_null())
                .select(cols::<CaseSkillRow>())
                .load_direct(conn),
        }
    }

    pub fn set_case_skills(conn: &mut DbConn, case_id: &str, rows: &[CaseSkillRow]) -> QueryResult<()> {
        diesel::delete(cs::case_skills.filter(cs::case_id.eq(case_id))).execute_direct(conn)?;
        if !rows.is_empty() {
            insert_rows!(conn, cs::case_skills, rows)?;
        }
        Ok(())
    }

    /// Capacities of the named agents (all when `None`).
    pub fn capacities(conn: &mut DbConn, agents: Option<&[String]>) -> QueryResult<Vec<AgentCapacityRow>> {
        match agents {
            Some(ids) => ac::agent_capacities
                .filter(ac::agent_id.eq_any(ids))
                .order((ac::agent_id.asc(), ac::channel.asc()))
                .select(cols::<AgentCapacityRow>())
                .load_direct(conn),
            None => ac::agent_capacities.select(cols::<AgentCapacityRow>()).load_direct(conn),
        }
    }

    /// Replaces an agent's per-channel capacities.
    pub fn set_capacities(conn: &mut DbConn, agent_id: &str, rows: &[AgentCapacityRow]) -> QueryResult<()> {
        diesel::delete(ac::agent_capacities.filter(ac::agent_id.eq(agent_id))).execute_direct(conn)?;
        if !rows.is_empty() {
            insert_rows!(conn, ac::agent_capacities, rows)?;
        }
        Ok(())
    }

    /// Up to `limit` pending signals as (kind, id, seq): a plain read, no write lock.
    pub fn peek_signals(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<(String, String, i64)>> {
        rs::routing_signals
            .select((rs::kind, rs::ref_id, rs::seq))
            .order((rs::kind, rs::ref_id))
            .limit(limit)
            .load_direct(conn)
    }

    /// Removes these signals if they are still the versions read. A writer that changed the
    /// entity since moved `seq` (and, until it commits, holds the row: this waits for it), so
    /// its row stays for the next round. The caller reads the entities after this commits.
    pub fn remove_signals(conn: &mut DbConn, signals: &[(String, String, i64)]) -> QueryResult<()> {
        let mut by_seq: std::collections::BTreeMap<(&str, i64), Vec<&str>> = std::collections::BTreeMap::new();
        for (k, r, seq) in signals {
            by_seq.entry((k.as_str(), *seq)).or_default().push(r.as_str());
        }
        for ((kind, seq), refs) in by_seq {
            for chunk in refs.chunks(500) {
                diesel::delete(
                    rs::routing_signals
                        .filter(rs::kind.eq(kind))
                        .filter(rs::seq.eq(seq))
                        .filter(rs::ref_id.eq_any(chunk)),
                )
                .execute_direct(conn)?;
            }
        }
        Ok(())
    }

    /// Active cases holding a seat of the agent — assigned, or offered and not yet taken — (to
    /// recount their load; the same cases as [`load`] counts).
    pub fn active_case_ids_of_agent(conn: &mut DbConn, agent_id: &str) -> QueryResult<Vec<String>> {
        let mut ids: Vec<String> = c::cases
            .filter(c::assignee_id.eq(agent_id))
            .filter(c::status.eq_any(ACTIVE))
            .select(c::id)
            .load_direct(conn)?;
        ids.extend(
            c::cases
                .filter(c::offered_to.eq(agent_id))
                .filter(c::assignee_id.is_null())
                .filter(c::status.eq_any(ACTIVE))
                .select(c::id)
                .load_direct::<String>(conn)?,
        );
        Ok(ids)
    }

    /// Waiting cases with no routing decision since they started waiting (a state loaded
    /// after a restart or failover records why they wait).
    pub fn waiting_without_decision(conn: &mut DbConn) -> QueryResult<Vec<String>> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        diesel::sql_query(
            "SELECT c.id FROM cases c WHERE c.assignee_id IS NULL AND c.offered_to IS NULL AND c.status IN ('new', 'open') \
             AND NOT EXISTS (SELECT 1 FROM routing_decisions d WHERE d.case_id = c.id \
             AND d.created_at >= COALESCE(c.waiting_since, c.created_at))",
        )
        .load_direct::<Id>(conn)
        .map(|v| v.into_iter().map(|i| i.id).collect())
    }

    /// Whether the case was escalated in its current wait: after it started waiting
    /// (`waiting_since`) and after it last left an agent (an `assigned` or `rerouted`
    /// decision; a case given back keeps its older place in line).
    pub fn escalated_since(conn: &mut DbConn, case_id: &str) -> QueryResult<bool> {
        let since: Option<Option<NaiveDateTime>> =
            c::cases.find(case_id).select(c::waiting_since).load_direct(conn).map(first)?;
        let Some(Some(since)) = since else { return Ok(false) };
        let left: Option<NaiveDateTime> = rd::routing_decisions
            .filter(rd::case_id.eq(case_id))
            .filter(rd::outcome.eq_any(["assigned", "rerouted"]))
            .select(diesel::dsl::max(rd::created_at))
            .get_result_direct(conn)?;
        let from = left.map_or(since, |l| l.max(since));
        let n: i64 = rd::routing_decisions
            .filter(rd::case_id.eq(case_id))
            .filter(rd::outcome.eq("escalated"))
            .filter(rd::created_at.ge(from))
            .count()
            .get_result_direct(conn)?;
        Ok(n > 0)
    }

    /// Drops the signals of cases the caller has just assigned, in the assigning transaction:
    /// it holds those case rows, so any later change leaves a new signal, and nothing a
    /// change committed before it could say matters to a case now assigned (its agent and
    /// channel are what routing keeps of it, and the assignment checked it is active).
    pub fn drop_case_signals(conn: &mut DbConn, case_ids: &[&str]) -> QueryResult<()> {
        for chunk in case_ids.chunks(500) {
            diesel::delete(rs::routing_signals.filter(rs::kind.eq("case")).filter(rs::ref_id.eq_any(chunk)))
                .execute_direct(conn)?;
        }
        Ok(())
    }

    /// Drops every pending signal (before a full load).
    pub fn clear_signals(conn: &mut DbConn) -> QueryResult<usize> {
        diesel::delete(rs::routing_signals).execute_direct(conn)
    }

    pub fn pending_signals(conn: &mut DbConn) -> QueryResult<i64> {
        rs::routing_signals.count().get_result_direct(conn)
    }

    /// Assigns the case if it is still active and unassigned (the compare-and-set that keeps a
    /// case from being assigned twice, whoever else assigns at the same time). Returns whether
    /// it did.
    pub fn assign_if_waiting(
        conn: &mut DbConn,
        case_id: &str,
        agent_id: &str,
        now: NaiveDateTime,
    ) -> QueryResult<bool> {
        let n = diesel::update(
            c::cases.filter(c::id.eq(case_id)).filter(c::assignee_id.is_null()).filter(c::status.eq_any(ACTIVE)),
        )
        .set((
            c::assignee_id.eq(agent_id),
            c::waiting_since.eq(None::<NaiveDateTime>),
            c::updated_at.eq(now),
            c::version.eq(c::version + 1),
        ))
        .execute_direct(conn)?;
        Ok(n == 1)
    }

    /// The agent's active cases on one channel (its load there), counting cases offered to
    /// them and not yet taken. Two indexed counts: one `OR` across the two columns would
    /// scan the whole table (measured: 20 ms per assignment at 12,000 cases on SQLite).
    pub fn load(conn: &mut DbConn, agent_id: &str, channel: &str) -> QueryResult<i64> {
        let assigned: i64 = c::cases
            .filter(c::assignee_id.eq(agent_id))
            .filter(c::status.eq_any(ACTIVE))
            .filter(c::channel.eq(channel))
            .count()
            .get_result_direct(conn)?;
        let offered: i64 = c::cases
            .filter(c::offered_to.eq(agent_id))
            .filter(c::assignee_id.is_null())
            .filter(c::status.eq_any(ACTIVE))
            .filter(c::channel.eq(channel))
            .count()
            .get_result_direct(conn)?;
        Ok(assigned + offered)
    }

    /// Offers the case to the agent if it is still waiting (active, unassigned, not offered):
    /// the offer-mode twin of [`assign_if_waiting`].
    pub fn offer_if_waiting(
        conn: &mut DbConn,
        case_id: &str,
        agent_id: &str,
        now: NaiveDateTime,
        expires: NaiveDateTime,
    ) -> QueryResult<bool> {
        let n = diesel::update(
            c::cases
                .filter(c::id.eq(case_id))
                .filter(c::assignee_id.is_null())
                .filter(c::offered_to.is_null())
                .filter(c::status.eq_any(ACTIVE)),
        )
        .set((c::offered_to.eq(agent_id), c::offer_expires_at.eq(expires), c::updated_at.eq(now)))
        .execute_direct(conn)?;
        Ok(n == 1)
    }

    /// The agent takes the case offered to them, if the offer still stands.
    pub fn accept_offer(conn: &mut DbConn, case_id: &str, agent_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
        let n = diesel::update(
            c::cases
                .filter(c::id.eq(case_id))
                .filter(c::offered_to.eq(agent_id))
                .filter(c::assignee_id.is_null())
                .filter(c::status.eq_any(ACTIVE))
                .filter(c::offer_expires_at.gt(now)),
        )
        .set((
            c::assignee_id.eq(agent_id),
            c::offered_to.eq(None::<String>),
            c::offer_expires_at.eq(None::<NaiveDateTime>),
            c::waiting_since.eq(None::<NaiveDateTime>),
            c::updated_at.eq(now),
            c::version.eq(c::version + 1),
        ))
        .execute_direct(conn)?;
        Ok(n == 1)
    }

    /// Withdraws an offer (declined, expired, agent away, case assigned by hand). `agent`:
    /// only if it is offered to this agent. Returns whether there was one.
    pub fn clear_offer(conn: &mut DbConn, case_id: &str, agent: Option<&str>) -> QueryResult<bool> {
        let mut q = diesel::update(c::cases).filter(c::id.eq(case_id)).filter(c::offered_to.is_not_null()).into_boxed();
        if let Some(a) = agent {
            q = q.filter(c::offered_to.eq(a));
        }
        let n =
            q.set((c::offered_to.eq(None::<String>), c::offer_expires_at.eq(None::<NaiveDateTime>))).execute(conn)?;
        Ok(n == 1)
    }

    /// Offers that ran out by `now`: (case id, agent, whether the case still waits for it).
    pub fn expired_offers(
        conn: &mut DbConn,
        now: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<(String, String, bool)>> {
        let rows: Vec<(String, Option<String>, Option<String>, String)> = c::cases
            .filter(c::offered_to.is_not_null())
            .filter(c::offer_expires_at.le(now))
            .select((c::id, c::offered_to, c::assignee_id, c::status))
            .order(c::offer_expires_at.asc())
            .limit(limit)
            .load_direct(conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, to, assignee, status)| {
                to.map(|t| (id, t, assignee.is_none() && ACTIVE.contains(&status.as_str())))
            })
            .collect())
    }

    /// Cases offered to the agent (withdrawn when they leave `online`).
    pub fn offered_to(conn: &mut DbConn, agent_id: &str) -> QueryResult<Vec<String>> {
        c::cases.filter(c::offered_to.eq(agent_id)).select(c::id).load_direct(conn)
    }

    /// The offer on a case: (agent, until).
    pub fn offer_of(conn: &mut DbConn, case_id: &str) -> QueryResult<Option<(String, NaiveDateTime)>> {
        let row: Option<(Option<String>, Option<NaiveDateTime>)> =
            c::cases.find(case_id).select((c::offered_to, c::offer_expires_at)).load_direct(conn).map(first)?;
        Ok(row.and_then(|(a, t)| Some((a?, t?))))
    }

    /// Locks the agent's row until the transaction ends (PostgreSQL), so that two nodes
    /// checking the agent's load at once queue instead of both seeing room.
    pub fn lock_agent(conn: &mut DbConn, agent_id: &str) -> QueryResult<Option<AgentRow>> {
        use schema::agents::dsl as a;
        match conn {
            DbConn::Pg(p) => a::agents.find(agent_id).select(cols::<AgentRow>()).for_update().load(p).map(first),
            DbConn::Sqlite(_) => a::agents.find(agent_id).select(cols::<AgentRow>()).load_direct(conn).map(first),
        }
    }

    pub fn touch_agent(conn: &mut DbConn, agent_id: &str, now: NaiveDateTime) -> QueryResult<()> {
        use schema::agents::dsl as a;
        diesel::update(a::agents.find(agent_id)).set(a::last_assigned_at.eq(now)).execute_direct(conn).map(drop)
    }

    /// The agent's unstarted cases (status `new`; pinned ones only when `with_pinned`):
    /// re-routed when they go away or are deactivated.
    pub fn unstarted(conn: &mut DbConn, agent_id: &str, with_pinned: bool) -> QueryResult<Vec<CaseRow>> {
        on_backend!(conn, |db| {
            let mut q = c::cases.filter(c::assignee_id.eq(agent_id)).filter(c::status.eq("new")).into_boxed();
            if !with_pinned {
                q = q.filter(c::pinned.eq(false));
            }
            q.select(cols::<CaseRow>()).load(db)
        })
    }

    pub fn insert_decisions(conn: &mut DbConn, rows: &[RoutingDecisionRow]) -> QueryResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        insert_rows!(conn, rd::routing_decisions, rows)
    }

    /// The case's latest decisions, newest first.
    pub fn decisions(conn: &mut DbConn, case_id: &str, limit: i64) -> QueryResult<Vec<RoutingDecisionRow>> {
        rd::routing_decisions
            .filter(rd::case_id.eq(case_id))
            .order(rd::id.desc())
            .limit(limit)
            .select(cols::<RoutingDecisionRow>())
            .load_direct(conn)
    }
}

/// Leader election for background work that must run on one node at a time.
pub mod leader {
    use super::*;

    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }

    /// Takes the session advisory lock `key` if free (PostgreSQL). The lock lives as long as
    /// this connection. SQLite has one node: always true.
    pub fn try_lock(conn: &mut DbConn, key: i64) -> QueryResult<bool> {
        match conn {
            DbConn::Pg(c) => diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
                .bind::<diesel::sql_types::BigInt, _>(key)
                .get_result::<Locked>(c)
                .map(|l| l.locked),
            DbConn::Sqlite(_) => Ok(true),
        }
    }

    /// Whether the connection (and so its session lock) is still alive.
    pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
        diesel::sql_query("SELECT 1").execute_direct(conn).map(drop)
    }
}

pub mod sla {
    use super::*;
    use schema::alerts::dsl as al;
    use schema::case_events::dsl as ce;
    use schema::case_sla::dsl as cs;
    use schema::messages::dsl as m;
    use schema::sla_calendars::dsl as sc;
    use schema::sla_fired::dsl as sf;
    use schema::sla_policies::dsl as sp;

    /// The instant triggers write into `case_sla.next_at` to ask for a re-evaluation.
    pub fn epoch() -> NaiveDateTime {
        chrono::DateTime::UNIX_EPOCH.naive_utc()
    }

    pub fn calendars(conn: &mut DbConn) -> QueryResult<Vec<SlaCalendarRow>> {
        sc::sla_calendars.select(cols::<SlaCalendarRow>()).order(sc::name).load_direct(conn)
    }

    pub fn calendar(conn: &mut DbConn, id: &str) -> QueryResult<Option<SlaCalendarRow>> {
        sc::sla_calendars.filter(sc::id.eq(id)).select(cols::<SlaCalendarRow>()).load_direct(conn).map(first)
    }

    pub fn calendar_by_name(conn: &mut DbConn, name: &str) -> QueryResult<Option<SlaCalendarRow>> {
        sc::sla_calendars.filter(sc::name.eq(name)).select(cols::<SlaCalendarRow>()).load_direct(conn).map(first)
    }

    pub fn insert_calendar(conn: &mut DbConn, row: &SlaCalendarRow) -> QueryResult<()> {
        diesel::insert_into(sc::sla_calendars).values(row).execute_direct(conn).map(drop)
    }

    pub fn update_calendar(conn: &mut DbConn, row: &SlaCalendarRow) -> QueryResult<usize> {
        diesel::update(sc::sla_calendars.filter(sc::id.eq(&row.id))).set(row).execute_direct(conn)
    }

    pub fn delete_calendar(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
        diesel::delete(sc::sla_calendars.filter(sc::id.eq(id))).execute_direct(conn)
    }

    /// Policies in matching order.
    pub fn policies(conn: &mut DbConn) -> QueryResult<Vec<SlaPolicyRow>> {
        sp::sla_policies.select(cols::<SlaPolicyRow>()).order((sp::position, sp::name)).load_direct(conn)
    }

    pub fn policy(conn: &mut DbConn, id: &str) -> QueryResult<Option<SlaPolicyRow>> {
        sp::sla_policies.filter(sp::id.eq(id)).select(cols::<SlaPolicyRow>()).load_direct(conn).map(first)
    }

    pub fn insert_policy(conn: &mut DbConn, row: &SlaPolicyRow) -> QueryResult<()> {
        diesel::insert_into(sp::sla_policies).values(row).execute_direct(conn).map(drop)
    }

    pub fn update_policy(conn: &mut DbConn, row: &SlaPolicyRow) -> QueryResult<usize> {
        diesel::update(sp::sla_policies.filter(sp::id.eq(&row.id))).set(row).execute_direct(conn)
    }

    pub fn delete_policy(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
        diesel::update(cs::case_sla.filter(cs::policy_id.eq(id)))
            .set(cs::policy_id.eq(None::<String>))
            .execute_direct(conn)?;
        diesel::delete(sp::sla_policies.filter(sp::id.eq(id))).execute_direct(conn)
    }

    /// Asks for every active case to be evaluated again (a policy or calendar changed).
    pub fn touch_active(conn: &mut DbConn) -> QueryResult<usize> {
        use schema::cases::dsl as c;
        let active = c::cases.filter(c::status.ne_all(["solved", "closed"])).select(c::id);
        diesel::update(cs::case_sla.filter(cs::case_id.eq_any(active)))
            .set(cs::next_at.eq(Some(epoch())))
            .execute_direct(conn)
    }

    pub fn case_sla(conn: &mut DbConn, case_id: &str) -> QueryResult<Option<CaseSlaRow>> {
        cs::case_sla.filter(cs::case_id.eq(case_id)).select(cols::<CaseSlaRow>()).load_direct(conn).map(first)
    }

    /// Writes a case's SLA state. `next_at` is written only if the row still holds `lease`
    /// (what the claim set): a change committed since (a trigger set the epoch) stays, so
    /// the case is looked at again. Returns whether `next_at` was written.
    pub fn save_case_sla(conn: &mut DbConn, row: &CaseSlaRow, lease: NaiveDateTime) -> QueryResult<bool> {
        let n = diesel::update(cs::case_sla.filter(cs::case_id.eq(&row.case_id)).filter(cs::next_at.eq(lease)))
            .set(row)
            .execute_direct(conn)?;
        if n == 1 {
            return Ok(true);
        }
        let n = diesel::update(cs::case_sla.filter(cs::case_id.eq(&row.case_id)))
            .set((
                cs::policy_id.eq(&row.policy_id),
                cs::due_at.eq(row.due_at),
                cs::breached.eq(row.breached),
                cs::evaluated_at.eq(row.evaluated_at),
            ))
            .execute_direct(conn)?;
        if n == 0 {
            let fresh = CaseSlaRow { next_at: Some(epoch()), ..row.clone() };
            diesel::insert_into(cs::case_sla).values(&fresh).execute_direct(conn)?;
        }
        Ok(false)
    }

    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = diesel::sql_types::Text)]
        case_id: String,
    }

    /// Claims up to `limit` cases whose next SLA milestone (or a re-evaluation) is due,
    /// earliest first: their `next_at` becomes `lease`, so no other node takes them until it
    /// passes. On PostgreSQL rows another node is claiming are skipped (`FOR UPDATE SKIP
    /// LOCKED`); SQLite has one writer. Call in a short transaction of its own.
    pub fn claim_due(
        conn: &mut DbConn,
        now: NaiveDateTime,
        limit: i64,
        lease: NaiveDateTime,
    ) -> QueryResult<Vec<String>> {
        let ids = due_ids(conn, now, limit)?;
        for chunk in ids.chunks(500) {
            diesel::update(cs::case_sla.filter(cs::case_id.eq_any(chunk)))
                .set(cs::next_at.eq(Some(lease)))
                .execute_direct(conn)?;
        }
        Ok(ids)
    }

    fn due_ids(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
        match conn {
            DbConn::Pg(c) => diesel::sql_query(
                "SELECT case_id FROM case_sla WHERE next_at IS NOT NULL AND next_at <= $1 \
                 ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind::<diesel::sql_types::Timestamp, _>(now)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load::<Due>(c)
            .map(|rows| rows.into_iter().map(|r| r.case_id).collect()),
            DbConn::Sqlite(_) => cs::case_sla
                .filter(cs::next_at.le(now))
                .order(cs::next_at)
                .limit(limit)
                .select(cs::case_id)
                .load_direct(conn),
        }
    }

    /// The earliest `next_at` (for the scheduler's sleep).
    pub fn next_due(conn: &mut DbConn) -> QueryResult<Option<NaiveDateTime>> {
        cs::case_sla.filter(cs::next_at.is_not_null()).select(diesel::dsl::min(cs::next_at)).get_result_direct(conn)
    }

    /// How many cases wait for the scheduler now (a gauge).
    pub fn due_count(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<i64> {
        cs::case_sla.filter(cs::next_at.le(now)).count().get_result_direct(conn)
    }

    /// A case's messages as (direction, author kind, created at), in order.
    pub fn message_history(conn: &mut DbConn, case_id: &str) -> QueryResult<Vec<(String, String, NaiveDateTime)>> {
        m::messages
            .filter(m::case_id.eq(case_id))
            .order(m::id)
            .select((m::direction, m::author_kind, m::created_at))
            .load_direct(conn)
    }

    /// A case's status changes as (data JSON, created at), in order.
    pub fn status_history(conn: &mut DbConn, case_id: &str) -> QueryResult<Vec<(String, NaiveDateTime)>> {
        ce::case_events
            .filter(ce::case_id.eq(case_id))
            .filter(ce::kind.eq("status_changed"))
            .order(ce::id)
            .select((ce::data, ce::created_at))
            .load_direct(conn)
    }

    pub fn fired(conn: &mut DbConn, case_id: &str) -> QueryResult<Vec<SlaFiredRow>> {
        sf::sla_fired.filter(sf::case_id.eq(case_id)).select(cols::<SlaFiredRow>()).load_direct(conn)
    }

    /// Records a milestone as fired; false when it already was (by this or another node).
    pub fn fire(conn: &mut DbConn, row: &SlaFiredRow) -> QueryResult<bool> {
        let n = match conn {
            DbConn::Pg(c) => diesel::insert_into(sf::sla_fired).values(row).on_conflict_do_nothing().execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_or_ignore_into(sf::sla_fired).values(row).execute(c)?,
        };
        Ok(n == 1)
    }

    pub fn insert_alert(conn: &mut DbConn, row: &AlertRow) -> QueryResult<()> {
        diesel::insert_into(al::alerts).values(row).execute_direct(conn).map(drop)
    }

    pub fn alert(conn: &mut DbConn, id: &str) -> QueryResult<Option<AlertRow>> {
        al::alerts.filter(al::id.eq(id)).select(cols::<AlertRow>()).load_direct(conn).map(first)
    }

    /// Which alerts a viewer sees.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum AlertScope {
        /// Admins, integrators, the system.
        All,
        /// A supervisor: alerts for their team, alerts without a team, and those for them.
        Supervisor { team: Option<String>, agent: String },
        /// An agent: alerts for them.
        Agent { agent: String },
    }

    /// Alerts `scope` sees, in (created_at, id) order: those created at or after `since`
    /// and after the key `after` (when given), at most `limit`.
    pub fn alerts_page(
        conn: &mut DbConn,
        scope: &AlertScope,
        since: NaiveDateTime,
        after: Option<(NaiveDateTime, String)>,
        unacknowledged_only: bool,
        limit: i64,
    ) -> QueryResult<Vec<AlertRow>> {
        on_backend!(conn, |db| {
            let mut q = al::alerts.filter(al::created_at.ge(since)).into_boxed();
            match scope {
                AlertScope::All => {}
                AlertScope::Supervisor { team, agent } => {
                    let mine = al::agent_id.eq(agent.clone());
                    q = match team {
                        Some(t) => q.filter(
                            mine.or(al::agent_id.is_null().and(al::team_id.is_null().or(al::team_id.eq(t.clone())))),
                        ),
                        None => q.filter(mine.or(al::agent_id.is_null().and(al::team_id.is_null()))),
                    };
                }
                AlertScope::Agent { agent } => q = q.filter(al::agent_id.eq(agent.clone())),
            }
            if let Some((t, id)) = after {
                q = q.filter(al::created_at.gt(t).or(al::created_at.eq(t).and(al::id.gt(id))));
            }
            if unacknowledged_only {
                q = q.filter(al::acknowledged_at.is_null());
            }
            q.order((al::created_at, al::id)).limit(limit).select(cols::<AlertRow>()).load(db)
        })
    }

    /// Acknowledges an alert if it is not yet; returns whether this call did.
    pub fn acknowledge(conn: &mut DbConn, id: &str, by: &str, at: NaiveDateTime) -> QueryResult<bool> {
        diesel::update(al::alerts.filter(al::id.eq(id)).filter(al::acknowledged_at.is_null()))
            .set((al::acknowledged_by.eq(Some(by)), al::acknowledged_at.eq(Some(at))))
            .execute_direct(conn)
            .map(|n| n == 1)
    }
}

/// PostgreSQL `LISTEN/NOTIFY` on a dedicated connection (ADR 0010).
pub mod notify {
    use super::*;

    /// Channels a node listens on.
    pub const CHANNELS: [&str; 2] = ["caseflow_alerts", "caseflow_routing"];

    /// Subscribes this connection to [`CHANNELS`] (PostgreSQL; nothing on SQLite).
    pub fn listen(conn: &mut DbConn) -> QueryResult<()> {
        for ch in CHANNELS {
            diesel::sql_query(format!("LISTEN {ch}")).execute_direct(conn)?;
        }
        Ok(())
    }

    /// Announces a change on `channel` to every node (PostgreSQL; nothing on SQLite).
    pub fn notify(conn: &mut DbConn, channel: &str) -> QueryResult<()> {
        match conn {
            DbConn::Pg(_) => diesel::sql_query(format!("NOTIFY {channel}")).execute_direct(conn).map(drop),
            DbConn::Sqlite(_) => Ok(()),
        }
    }

    /// The channels notified since the last call, without waiting (PostgreSQL).
    pub fn take(conn: &mut DbConn) -> QueryResult<Vec<String>> {
        match conn {
            DbConn::Pg(c) => c.notifications_iter().map(|n| n.map(|n| n.channel)).collect(),
            DbConn::Sqlite(_) => Ok(Vec::new()),
        }
    }
}

pub mod satisfaction {
    use super::*;
    use schema::cases::dsl as c;
    use schema::satisfaction_surveys::dsl as ss;

    /// A case that may be due for its survey: (id, solved at, status).
    pub type Due = (String, NaiveDateTime, String);

    /// Cases solved after the key `after` (solved at, id) and at the latest `solved_until`,
    /// that came by one of `channels`, were answered (`first_response_at`), and have no survey
    /// yet; in (solved at, id) order, at most `limit`. The status is returned rather than
    /// filtered: with it in the query SQLite walks the whole status index (every solved case
    /// ever) instead of the `solved_at` range (155 ms against 0.08 ms with 100,000 solved cases);
    /// the caller skips closed ones.
    pub fn due(
        conn: &mut DbConn,
        after: (NaiveDateTime, &str),
        solved_until: NaiveDateTime,
        channels: &[&str],
        limit: i64,
    ) -> QueryResult<Vec<Due>> {
        let (at, id) = after;
        c::cases
            // The plain lower bound beside the keyset condition gives both databases an index
            // range instead of a filter over every earlier solved case.
            .filter(c::solved_at.ge(at))
            .filter(c::solved_at.gt(at).or(c::solved_at.eq(at).and(c::id.gt(id))))
            .filter(c::solved_at.le(solved_until))
            .filter(c::channel.eq_any(channels))
            // Only cases someone answered: a case solved without a word to the customer
            // (spam, a duplicate) is not surveyed.
            .filter(c::first_response_at.is_not_null())
            .filter(diesel::dsl::not(diesel::dsl::exists(ss::satisfaction_surveys.filter(ss::case_id.eq(c::id)))))
            .order((c::solved_at, c::id))
            .select((c::id, c::solved_at.assume_not_null(), c::status))
            .limit(limit)
            .load_direct(conn)
    }

    /// Records a survey; false when the case already has one (another node sent it).
    pub fn insert(conn: &mut DbConn, row: &SatisfactionRow) -> QueryResult<bool> {
        let n = match conn {
            DbConn::Pg(c) => {
                diesel::insert_into(ss::satisfaction_surveys).values(row).on_conflict_do_nothing().execute(c)?
            }
            DbConn::Sqlite(c) => diesel::insert_or_ignore_into(ss::satisfaction_surveys).values(row).execute(c)?,
        };
        Ok(n == 1)
    }

    pub fn get(conn: &mut DbConn, case_id: &str) -> QueryResult<Option<SatisfactionRow>> {
        ss::satisfaction_surveys
            .filter(ss::case_id.eq(case_id))
            .select(cols::<SatisfactionRow>())
            .load_direct(conn)
            .map(first)
    }

    pub fn by_token_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<SatisfactionRow>> {
        ss::satisfaction_surveys
            .filter(ss::token_hash.eq(hash))
            .select(cols::<SatisfactionRow>())
            .load_direct(conn)
            .map(first)
    }

    /// Writes the customer's answer and whom it counts for.
    pub fn rate(conn: &mut DbConn, row: &SatisfactionRow) -> QueryResult<usize> {
        diesel::update(ss::satisfaction_surveys.filter(ss::case_id.eq(&row.case_id)))
            .set((
                ss::rating.eq(&row.rating),
                ss::comment.eq(&row.comment),
                ss::rated_at.eq(row.rated_at),
                ss::team_id.eq(&row.team_id),
                ss::agent_id.eq(&row.agent_id),
            ))
            .execute_direct(conn)
    }

    /// Whether the case has a bad-rating alert nobody acknowledged yet.
    pub fn open_bad_rating_alert(conn: &mut DbConn, case_id: &str) -> QueryResult<bool> {
        use schema::alerts::dsl as al;
        al::alerts
            .filter(al::case_id.eq(case_id))
            .filter(al::kind.eq("bad_rating"))
            .filter(al::acknowledged_at.is_null())
            .select(al::id)
            .load_direct::<String>(conn)
            .map(|v| !v.is_empty())
    }

    /// (rating, team, agent) of the answers given since `since`.
    pub type Rated = (String, Option<String>, Option<String>);

    pub fn rated_since(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<Vec<Rated>> {
        ss::satisfaction_surveys
            .filter(ss::rated_at.ge(since))
            .select((ss::rating.assume_not_null(), ss::team_id, ss::agent_id))
            .load_direct(conn)
    }
}

pub mod webhooks {
    use super::*;
    use schema::webhook_deliveries::dsl as wd;
    use schema::webhook_subscriptions::dsl as ws;

    pub fn insert(conn: &mut DbConn, row: &WebhookSubscriptionRow) -> QueryResult<()> {
        diesel::insert_into(ws::webhook_subscriptions).values(row).execute_direct(conn).map(drop)
    }

    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<WebhookSubscriptionRow>> {
        ws::webhook_subscriptions.order(ws::created_at).select(cols::<WebhookSubscriptionRow>()).load_direct(conn)
    }

    pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<WebhookSubscriptionRow>> {
        ws::webhook_subscriptions
            .filter(ws::id.eq(id))
            .select(cols::<WebhookSubscriptionRow>())
            .load_direct(conn)
            .map(first)
    }

    pub fn update(conn: &mut DbConn, row: &WebhookSubscriptionRow) -> QueryResult<usize> {
        diesel::update(ws::webhook_subscriptions.filter(ws::id.eq(&row.id))).set(row).execute_direct(conn)
    }

    /// Gives subscription `id` the secret `new`; the one it replaces becomes the previous
    /// secret until `previous_until` (or is dropped when that is `None`). One statement, the
    /// old value read by the database itself, so two rotations (or a rotation and a change)
    /// at once cannot lose one of the secrets they handed out. Returns whether it existed.
    pub fn rotate_secret(
        conn: &mut DbConn,
        id: &str,
        new: &str,
        previous_until: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> QueryResult<bool> {
        let target = ws::webhook_subscriptions.filter(ws::id.eq(id));
        let n = match previous_until {
            Some(until) => diesel::update(target)
                .set((
                    ws::previous_secret.eq(ws::secret.nullable()),
                    ws::previous_secret_expires_at.eq(Some(until)),
                    ws::secret.eq(new),
                    ws::updated_at.eq(now),
                ))
                .execute_direct(conn)?,
            None => diesel::update(target)
                .set((
                    ws::previous_secret.eq(None::<String>),
                    ws::previous_secret_expires_at.eq(None::<NaiveDateTime>),
                    ws::secret.eq(new),
                    ws::updated_at.eq(now),
                ))
                .execute_direct(conn)?,
        };
        Ok(n == 1)
    }

    pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
        diesel::delete(wd::webhook_deliveries.filter(wd::subscription_id.eq(id))).execute_direct(conn)?;
        diesel::delete(ws::webhook_subscriptions.filter(ws::id.eq(id))).execute_direct(conn)
    }

    /// Claims up to `limit` pending deliveries due at `now`: each one's `next_attempt_at`
    /// moves to `lease` only if it is still the value read (compare-and-set), so two nodes
    /// never send the same delivery at once. Returns the claimed rows.
    pub fn claim_due(
        conn: &mut DbConn,
        now: NaiveDateTime,
        lease: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<WebhookDeliveryRow>> {
        // Deliveries of inactive subscriptions wait (reactivated, they go on); orphans of a
        // deleted subscription are claimed and dropped by the dispatcher.
        let inactive = ws::webhook_subscriptions.filter(ws::active.eq(false)).select(ws::id);
        let due: Vec<WebhookDeliveryRow> = wd::webhook_deliveries
            .filter(wd::status.eq("pending"))
            .filter(wd::next_attempt_at.le(now))
            .filter(wd::subscription_id.ne_all(inactive))
            .order((wd::next_attempt_at, wd::id))
            .limit(limit)
            .select(cols::<WebhookDeliveryRow>())
            .load_direct(conn)?;
        let mut claimed = Vec::with_capacity(due.len());
        for mut d in due {
            let n = diesel::update(
                wd::webhook_deliveries
                    .filter(wd::id.eq(&d.id))
                    .filter(wd::status.eq("pending"))
                    .filter(wd::next_attempt_at.eq(d.next_attempt_at)),
            )
            .set(wd::next_attempt_at.eq(lease))
            .execute_direct(conn)?;
            if n == 1 {
                d.next_attempt_at = lease;
                claimed.push(d);
            }
        }
        Ok(claimed)
    }

    /// Whether any delivery is due (a read, before the dispatcher takes the write lock).
    pub fn any_due(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            wd::webhook_deliveries.filter(wd::status.eq("pending")).filter(wd::next_attempt_at.le(now)),
        ))
        .get_result_direct(conn)
    }

    /// Records an attempt: delivered, or pending again at `retry_at`, or failed (`retry_at`
    /// none: gave up) — only if the delivery still holds the claim's `lease` (a replay or
    /// another node since then wins). Returns whether it was recorded.
    #[allow(clippy::too_many_arguments)]
    pub fn record_attempt(
        conn: &mut DbConn,
        id: &str,
        lease: NaiveDateTime,
        ok: bool,
        status: Option<i32>,
        error: Option<&str>,
        now: NaiveDateTime,
        retry_at: Option<NaiveDateTime>,
    ) -> QueryResult<bool> {
        let new_status = match (ok, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        diesel::update(
            wd::webhook_deliveries
                .filter(wd::id.eq(id))
                .filter(wd::status.eq("pending"))
                .filter(wd::next_attempt_at.eq(lease)),
        )
        .set((
            wd::status.eq(new_status),
            wd::attempts.eq(wd::attempts + 1),
            wd::next_attempt_at.eq(retry_at.unwrap_or(now)),
            wd::last_status.eq(status),
            wd::last_error.eq(error),
            wd::delivered_at.eq(ok.then_some(now)),
        ))
        .execute_direct(conn)
        .map(|n| n == 1)
    }

    /// Deletes up to `batch` finished deliveries (delivered, or failed for good) whose last
    /// attempt is older than `before`; pending ones are never deleted. Returns how many went.
    /// In batches, so a large backlog does not hold the write lock for long.
    pub fn purge_finished(conn: &mut DbConn, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        let ids: Vec<String> = wd::webhook_deliveries
            .filter(wd::status.eq_any(["delivered", "failed"]))
            .filter(wd::next_attempt_at.lt(before))
            .select(wd::id)
            .limit(batch)
            .load_direct(conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        // The conditions again: a replay committed since the SELECT made it pending, and
        // PostgreSQL re-checks them on the row it waited for.
        diesel::delete(
            wd::webhook_deliveries
                .filter(wd::id.eq_any(&ids))
                .filter(wd::status.eq_any(["delivered", "failed"]))
                .filter(wd::next_attempt_at.lt(before)),
        )
        .execute_direct(conn)
    }

    /// A subscription's deliveries, newest first.
    pub fn deliveries(conn: &mut DbConn, subscription_id: &str, limit: i64) -> QueryResult<Vec<WebhookDeliveryRow>> {
        wd::webhook_deliveries
            .filter(wd::subscription_id.eq(subscription_id))
            .order(wd::id.desc())
            .limit(limit)
            .select(cols::<WebhookDeliveryRow>())
            .load_direct(conn)
    }

    pub fn delivery(conn: &mut DbConn, id: &str) -> QueryResult<Option<WebhookDeliveryRow>> {
        wd::webhook_deliveries.filter(wd::id.eq(id)).select(cols::<WebhookDeliveryRow>()).load_direct(conn).map(first)
    }

    /// Sends a delivery again (whatever its state): pending, due now, a fresh series of
    /// attempts.
    pub fn replay(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
        diesel::update(wd::webhook_deliveries.filter(wd::id.eq(id)))
            .set((wd::status.eq("pending"), wd::next_attempt_at.eq(now), wd::attempts.eq(0)))
            .execute_direct(conn)
    }
}
