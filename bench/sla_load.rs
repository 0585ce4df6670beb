//! SLA scheduler benchmark (issue: SLA engine): a database with a million open cases whose
//! deadlines lie weeks ahead, plus a few thousand urgent cases whose breaches fall due over a
//! minute; the release server's scheduler must raise each breach within a second of its
//! deadline, and its CPU use must follow the due cases, not the open ones.
//!
//! `seed DB_URL N K`: writes two policies, N background cases (low priority: resolution in 30
//! days, next milestone in 22.5 days) and K urgent cases (first response 2 minutes, calendar
//! time) created so that their breaches fall from 40 to 100 seconds after seeding. `measure DB_URL K PID`: waits for the K breaches, then
//! prints the lag of each (fired_at − due_at, from the server's own records), the server's CPU
//! time during the breach minute and over 20 idle seconds after it, and its resident memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caseflow_store::db::{connect_once, DbConn};
use caseflow_store::DbUrl;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use std::time::{Duration, Instant};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Lag {
    #[diesel(sql_type = Double)]
    secs: f64,
}

#[path = "sql.rs"]
mod sql;
use sql::{exec, pg, series, ts};

fn seed(url: &str, n: i64, k: i64) {
    let mut conn = connect_once(&DbUrl::parse(url).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let background = r#"{"name":"Background","conditions":{"priorities":["low"]},"targets":[{"metric":"resolution","minutes":43200,"business_hours":false}],"ladder":[]}"#;
    let urgent = r#"{"name":"Urgent","conditions":{"priorities":["urgent"]},"targets":[{"metric":"first_response","minutes":2,"business_hours":false}],"warning":{"percent":50},"ladder":[]}"#;
    let at_now = ts(&conn, &now.to_string());
    exec(
        &mut conn,
        &format!(
            "INSERT INTO sla_policies (id, name, position, spec, created_at, updated_at) VALUES \
             ('p-bg', 'Background', 0, '{background}', {at_now}, {at_now}), \
             ('p-urgent', 'Urgent', 10, '{urgent}', {at_now}, {at_now});
             INSERT INTO customers (id, name, tier, value, notes, created_at, updated_at, version) \
             VALUES ('bench-customer', 'Bench', 'standard', 0, '', {at_now}, {at_now}, 1);"
        ),
    );
    // Background: created over the last day; next milestone (75 % of 30 days) weeks ahead.
    let s = series(&conn, n);
    let created = ts(&conn, &format!("{now} - (i % 86400)"));
    exec(
        &mut conn,
        &format!(
            "INSERT INTO cases (id, number, subject, status, priority, channel, customer_id, created_at, updated_at, \
             last_message_at, version) \
             SELECT 'bg-' || i, 10000000 + i, 'Background', 'open', 'low', 'api', 'bench-customer', \
             {created}, {created}, {created}, 1 FROM ({s}) AS q;"
        ),
    );
    let warn = ts(&conn, &format!("{now} - (CAST(substr(case_id, 4) AS BIGINT) % 86400) + 1944000"));
    exec(&mut conn, &format!("UPDATE case_sla SET next_at = {warn} WHERE case_id LIKE 'bg-%';"));
    // Urgent: breaches (created + 120 s) from 40 s to 100 s after this point (seeding the
    // background may take a while: measured from here).
    let now = chrono::Utc::now().timestamp();
    let s = series(&conn, k);
    let step = 60_000 / k.max(1);
    let created = ts(&conn, &format!("{now} - 80 + (i * {step}) / 1000.0"));
    exec(
        &mut conn,
        &format!(
            "INSERT INTO cases (id, number, subject, status, priority, channel, customer_id, created_at, updated_at, \
             last_message_at, version) \
             SELECT 'due-' || i, 20000000 + i, 'Urgent', 'open', 'urgent', 'api', 'bench-customer', \
             {created}, {created}, {created}, 1 FROM ({s}) AS q;
             INSERT INTO messages (id, case_id, direction, channel, author_kind, author_id, body_text, created_at) \
             SELECT 'm-' || i, 'due-' || i, 'inbound', 'api', 'customer', 'bench-customer', 'Help', {created} \
             FROM ({s}) AS q;"
        ),
    );
    // Routing is off for this benchmark: drop what its triggers queued.
    exec(&mut conn, "DELETE FROM routing_signals;");
    if pg(&conn) {
        exec(&mut conn, "ANALYZE;");
    }
    println!("seeded {n} background and {k} urgent cases in {:.1} s", started.elapsed().as_secs_f64());
}

/// utime + stime of a process, in seconds.
fn cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn count_breaches(conn: &mut DbConn) -> i64 {
    diesel::sql_query("SELECT COUNT(*) AS n FROM sla_fired WHERE milestone = 'breach'")
        .get_result::<Count>(conn)
        .unwrap()
        .n
}

fn measure(url: &str, k: i64, pid: u32) {
    let mut conn = connect_once(&DbUrl::parse(url).unwrap()).unwrap();
    let cpu0 = cpu(pid);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(240);
    while count_breaches(&mut conn) < k {
        assert!(Instant::now() < deadline, "only {} of {k} breaches after 240 s", count_breaches(&mut conn));
        std::thread::sleep(Duration::from_millis(200));
    }
    let busy_cpu = cpu(pid) - cpu0;
    let busy_wall = t0.elapsed().as_secs_f64();
    let lag_sql = if pg(&conn) {
        "SELECT CAST(EXTRACT(EPOCH FROM (fired_at - due_at)) AS DOUBLE PRECISION) AS secs FROM sla_fired WHERE milestone = 'breach'"
    } else {
        "SELECT CAST((julianday(fired_at) - julianday(due_at)) * 86400.0 AS REAL) AS secs FROM sla_fired WHERE milestone = 'breach'"
    };
    let mut lags: Vec<f64> =
        diesel::sql_query(lag_sql).load::<Lag>(&mut conn).unwrap().into_iter().map(|l| l.secs).collect();
    lags.sort_by(f64::total_cmp);
    let q = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
    // Idle: nothing due for weeks among the million.
    let cpu1 = cpu(pid);
    std::thread::sleep(Duration::from_secs(20));
    let idle = (cpu(pid) - cpu1) / 20.0;
    let open: i64 = diesel::sql_query("SELECT COUNT(*) AS n FROM case_sla WHERE next_at IS NOT NULL")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    println!("open cases with a scheduled milestone: {open}");
    println!(
        "breaches: {} raised; lag (fired − due) p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        lags.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    println!(
        "server CPU while the breaches fell due: {:.2} s over {:.0} s ({:.2} ms per breach incl. its warning)",
        busy_cpu,
        busy_wall,
        busy_cpu * 1000.0 / k as f64
    );
    println!("server CPU idle (nothing due): {:.1} % of a core", idle * 100.0);
    println!("server resident memory: {:.0} MB", rss_mb(pid));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seed") => seed(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap()),
        Some("measure") => measure(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap()),
        _ => eprintln!("usage: sla-load seed DB_URL N K | sla-load measure DB_URL K SERVER_PID"),
    }
}
