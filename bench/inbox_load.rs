//! Agent inbox benchmark (issue: browser UI): seeds a database with N cases as a support team
//! accumulates them — most solved or closed, the rest new, open or pending with SLA deadlines
//! spread over the next two days (some already passed) — across 5,000 customers of every tier,
//! four channels and four priorities; a tenth of the unsolved ones assigned to the agent
//! `AGENT_ID`. `scripts/bench-inbox.sh` then loads the inbox API with wrk and renders the
//! page in Chromium (bench/inbox_render.py).
//!
//! `seed DB_URL N AGENT_ID`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_store::db::connect_once;
use caseflow_store::DbUrl;
use std::time::Instant;

#[path = "sql.rs"]
mod sql;
use sql::{exec, series, ts};

fn seed(url: &str, n: i64, agent: &str) {
    let mut conn = connect_once(&DbUrl::parse(url).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let customers = 5_000;
    let s = series(&conn, customers);
    let at = ts(&conn, &format!("{now} - 90 * 86400 + i"));
    exec(
        &mut conn,
        &format!(
            "INSERT INTO customers (id, name, tier, value, notes, created_at, updated_at, version) \
             SELECT 'cu-' || i, 'Customer ' || i, \
             CASE i % 4 WHEN 0 THEN 'standard' WHEN 1 THEN 'silver' WHEN 2 THEN 'gold' ELSE 'platinum' END, \
             i % 1000, '', {at}, {at}, 1 FROM ({s}) AS q;"
        ),
    );
    // Statuses by i % 20: 12 closed, 2 solved, 3 open, 2 new, 1 pending.
    let s = series(&conn, n);
    let created = ts(&conn, &format!("{now} - 90 * 86400 + i * (90 * 86400 / {n})"));
    exec(
        &mut conn,
        &format!(
            "INSERT INTO cases (id, number, subject, status, priority, channel, customer_id, assignee_id, created_at, \
             updated_at, last_message_at, version) \
             SELECT 'c-' || i, 100000 + i, 'Question number ' || i || ' about invoices and shipping', \
             CASE WHEN i % 20 < 12 THEN 'closed' WHEN i % 20 < 14 THEN 'solved' WHEN i % 20 < 17 THEN 'open' \
                  WHEN i % 20 < 19 THEN 'new' ELSE 'pending' END, \
             CASE i % 4 WHEN 0 THEN 'low' WHEN 1 THEN 'normal' WHEN 2 THEN 'high' ELSE 'urgent' END, \
             CASE i % 4 WHEN 0 THEN 'email' WHEN 1 THEN 'web' WHEN 2 THEN 'chat' ELSE 'api' END, \
             'cu-' || (i % {customers} + 1), \
             CASE WHEN i % 20 >= 14 AND i % 10 = 5 THEN '{agent}' ELSE NULL END, \
             {created}, {created}, {created}, 1 FROM ({s}) AS q;"
        ),
    );
    // Deadlines of the unsolved: from an hour ago to two days ahead; none scheduled for the
    // SLA worker (no policy in this database: it has nothing to evaluate).
    let now_ts = ts(&conn, &now.to_string());
    let due = ts(&conn, &format!("{now} - 3600 + ((CAST(substr(case_id, 3) AS BIGINT) * 7919) % 176400)"));
    exec(
        &mut conn,
        &format!(
            "UPDATE case_sla SET next_at = NULL, due_at = {due} \
             WHERE case_id IN (SELECT id FROM cases WHERE status IN ('new', 'open', 'pending'));
             UPDATE case_sla SET next_at = NULL WHERE next_at IS NOT NULL;
             UPDATE case_sla SET breached = (due_at < {now_ts}) WHERE due_at IS NOT NULL;
             DELETE FROM routing_signals;"
        ),
    );
    exec(&mut conn, "ANALYZE;");
    println!("seeded {n} cases over {customers} customers in {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seed") => seed(&args[2], args[3].parse().unwrap(), &args[4]),
        _ => eprintln!("usage: inbox-load seed DB_URL N AGENT_ID"),
    }
}
