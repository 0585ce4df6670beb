//! SQL helpers shared by the seeding benchmarks (`sla-load`, `inbox-load`): one statement
//! text per backend where the dialects differ.

use caseflow_store::db::DbConn;
use diesel::connection::SimpleConnection;

/// Runs `sql` (several statements allowed); a failure names the statement.
pub fn exec(conn: &mut DbConn, sql: &str) {
    match conn {
        DbConn::Pg(c) => c.batch_execute(sql),
        DbConn::Sqlite(c) => c.batch_execute(sql),
    }
    .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

pub fn pg(conn: &DbConn) -> bool {
    matches!(conn, DbConn::Pg(_))
}

/// A timestamp from a Unix-seconds SQL expression, for this backend.
pub fn ts(conn: &DbConn, expr: &str) -> String {
    if pg(conn) {
        format!("(to_timestamp({expr}) AT TIME ZONE 'UTC')")
    } else {
        format!("datetime({expr}, 'unixepoch')")
    }
}

/// `SELECT i FROM 1..=n`, for this backend.
pub fn series(conn: &DbConn, n: i64) -> String {
    if pg(conn) {
        format!("SELECT i FROM generate_series(1, {n}) AS s(i)")
    } else {
        format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s")
    }
}
