//! Connections, pool and migrations for both backends.

use diesel::connection::SimpleConnection;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::query_dsl::{LoadQuery, RunQueryDsl};
use diesel::r2d2::{ManageConnection, Pool, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// One connection to either backend. Queries written against `DbConn` run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs a query on the concrete connection behind a [`DbConn`].
///
/// Through diesel's `MultiConnection` layer every execution writes the query's SQL text anew,
/// twice (once to ask whether the statement may be cached, once to collect its binds), even
/// when the prepared statement is already cached: that was a quarter of the instructions of a
/// `GET /cases/{id}` (callgrind, docs/performance.md). A query written once against the
/// schema is generic over the backend, so it can run on either connection directly, where the
/// statement cache is keyed by the query's type (reads: no SQL written after the first time;
/// diesel still writes the text of updates, optional-field inserts and SQLite `IN` lists once
/// per execution, instead of three times).
/// Boxed queries (built piecewise, their backend fixed when boxed) are built inside the store's
/// `on_backend!` macro instead.
pub trait Direct: Sized {
    /// Like `RunQueryDsl::load`.
    fn load_direct<'q, U>(self, conn: &mut DbConn) -> diesel::QueryResult<Vec<U>>
    where
        Self: RunQueryDsl<PgConnection> + RunQueryDsl<SqliteConnection>,
        Self: LoadQuery<'q, PgConnection, U> + LoadQuery<'q, SqliteConnection, U>,
    {
        match conn {
            DbConn::Pg(c) => RunQueryDsl::load(self, c),
            DbConn::Sqlite(c) => RunQueryDsl::load(self, c),
        }
    }

    /// Like `RunQueryDsl::get_result`.
    fn get_result_direct<'q, U>(self, conn: &mut DbConn) -> diesel::QueryResult<U>
    where
        Self: RunQueryDsl<PgConnection> + RunQueryDsl<SqliteConnection>,
        Self: LoadQuery<'q, PgConnection, U> + LoadQuery<'q, SqliteConnection, U>,
    {
        match conn {
            DbConn::Pg(c) => RunQueryDsl::get_result(self, c),
            DbConn::Sqlite(c) => RunQueryDsl::get_result(self, c),
        }
    }

    /// Like `RunQueryDsl::execute`.
    fn execute_direct(self, conn: &mut DbConn) -> diesel::QueryResult<usize>
    where
        Self: ExecuteDsl<PgConnection> + ExecuteDsl<SqliteConnection>,
    {
        match conn {
            DbConn::Pg(c) => ExecuteDsl::execute(self, c),
            DbConn::Sqlite(c) => ExecuteDsl::execute(self, c),
        }
    }
}

impl<T> Direct for T {}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL, classified by scheme. Unknown schemes are refused rather than guessed
/// (a typo must not silently create a SQLite file named `postgress://...`).
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `sqlite://path/to/file.db` (relative) or `sqlite:///abs/path.db`.
    Sqlite(PathBuf),
    /// `postgres://` or `postgresql://` URL, passed to libpq as is.
    Postgres(String),
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a PostgreSQL URL: it may carry a password.
        match self {
            DbUrl::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            DbUrl::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

impl DbUrl {
    /// Classifies `url` by its scheme.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::Config(
                    "sqlite URL needs a file path (sqlite://data/caseflow.db); in-memory databases are not shared across the pool".into(),
                ));
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_owned()));
        }
        let scheme = url.split("://").next().filter(|_| url.contains("://")).unwrap_or("");
        Err(StoreError::Config(format!(
            "unknown database URL scheme {scheme:?}: use sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Sqlite(_) => Backend::Sqlite,
            DbUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Errors from the storage layer's plumbing (queries return [`diesel::result::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub sqlite_busy_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// SQLite's automatic checkpoint runs inside the committing writer (holding our write lock)
/// and fsyncs the database: a stall of tens of milliseconds every ~1,000 pages. A background
/// connection checkpoints passively instead (`CHECKPOINT_EVERY`), which never blocks writers;
/// the automatic one stays as a backstop at a larger WAL.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_000;
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints the WAL of the database at `url` passively until `alive` can no longer be
/// upgraded (the store was dropped).
fn spawn_checkpointer(url: DbUrl, busy_timeout_ms: u128, alive: std::sync::Weak<Mutex<()>>) {
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        let Ok(mut conn) = establish(&url, busy_timeout_ms) else { return };
        loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if alive.upgrade().is_none() {
                return;
            }
            if let DbConn::Sqlite(c) = &mut conn {
                if let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::debug!(error = %e, "sqlite: passive checkpoint failed");
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "sqlite: no background checkpointer; the automatic checkpoint remains");
    }
}

struct Manager {
    url: DbUrl,
    busy_timeout_ms: u128,
}

fn establish(url: &DbUrl, busy_timeout_ms: u128) -> Result<DbConn, diesel::ConnectionError> {
    match url {
        DbUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u)?;
            c.batch_execute("SET TIME ZONE 'UTC'").map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(DbConn::Pg(c))
        }
        DbUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(&path.to_string_lossy())?;
            // WAL lets readers proceed during a write; foreign keys are off by default in
            // SQLite; the busy timeout makes a second process wait instead of failing.
            c.batch_execute(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA synchronous = NORMAL; \
                 PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
            ))
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(DbConn::Sqlite(c))
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        establish(&self.url, self.busy_timeout_ms).map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// The database: a pool of connections plus what callers need to use it safely.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    backend: Backend,
    /// SQLite allows one writer at a time and a deferred transaction that upgrades to a write
    /// lock can fail at once with SQLITE_BUSY; serializing writes in-process avoids that.
    /// Unused on PostgreSQL.
    write_lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

impl Store {
    /// Connects once (to fail fast with a clear error), applies pending migrations and builds
    /// the pool.
    pub fn open(url: &DbUrl, opts: &PoolOptions) -> Result<Self, StoreError> {
        if let DbUrl::Sqlite(path) = url {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Connect(format!("cannot create directory {}: {e}", dir.display())))?;
            }
        }
        let busy = opts.sqlite_busy_timeout.as_millis();
        let mut first = establish(url, busy).map_err(|e| StoreError::Connect(e.to_string()))?;
        run_migrations(&mut first)?;
        drop(first);
        // No ping on every checkout: it doubled the round trips of every request. Broken
        // connections are detected by `has_broken` after an error and replaced.
        let pool = Pool::builder()
            .test_on_check_out(false)
            .max_size(opts.max_connections.max(1))
            .connection_timeout(opts.connect_timeout)
            .build(Manager { url: url.clone(), busy_timeout_ms: busy })?;
        let write_lock = Arc::new(Mutex::new(()));
        if url.backend() == Backend::Sqlite {
            spawn_checkpointer(url.clone(), busy, Arc::downgrade(&write_lock));
        }
        Ok(Self { pool, backend: url.backend(), write_lock })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a connection, outside a transaction.
    pub fn read<T, E>(&self, f: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        f(&mut conn)
    }

    /// Runs `f` in one transaction: all of it commits or none of it does.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError> + From<diesel::result::Error>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let _guard = match self.backend {
            Backend::Sqlite => Some(match self.write_lock.lock() {
                Ok(g) => g,
                // A panic while holding the lock leaves no state behind it: the transaction
                // was rolled back when its connection dropped.
                Err(poisoned) => poisoned.into_inner(),
            }),
            Backend::Postgres => None,
        };
        let conn: &mut DbConn = &mut conn;
        conn.transaction(f)
    }

    /// Runs `f` inside the current transaction as a savepoint: if it fails, only its own
    /// changes are rolled back and the surrounding transaction goes on.
    pub fn savepoint<T, E>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        conn.transaction(f)
    }

    /// Pool usage: (connections open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    /// Checks that the database answers a trivial query.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        conn.ping()?;
        Ok(())
    }
}

/// Applies every pending embedded migration for the connection's backend. Several nodes may
/// start at once: on PostgreSQL a session advisory lock lets one migrate while the others wait;
/// on SQLite the migrations run inside one `BEGIN IMMEDIATE` transaction (the write lock).
pub fn run_migrations(conn: &mut DbConn) -> Result<(), StoreError> {
    let applied = match conn {
        DbConn::Pg(c) => {
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")),
                c,
            )?;
            let r = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()).map_err(|e| e.to_string());
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")),
                c,
            )?;
            r
        }
        DbConn::Sqlite(c) => c
            .immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()).map_err(|e| MigrationFailed(e.to_string()))
            })
            .map_err(|e| e.0),
    }
    .map_err(StoreError::Migration)?;
    if applied > 0 {
        tracing::info!(migrations.applied = applied, "database migrations applied");
    }
    Ok(())
}

/// The advisory-lock key that serializes migrations across nodes ("cfmigrat" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x63_66_6d_69_67_72_61_74;

struct MigrationFailed(String);

impl From<diesel::result::Error> for MigrationFailed {
    fn from(e: diesel::result::Error) -> Self {
        Self(e.to_string())
    }
}

/// Opens a single connection without migrating; for tools and tests.
pub fn connect_once(url: &DbUrl) -> Result<DbConn, StoreError> {
    establish(url, 5000).map_err(|e| StoreError::Connect(e.to_string()))
}

/// Creates a fresh, empty PostgreSQL database `name` through `admin_url` and returns the URL
/// of the new database. For test harnesses and first-time set-up scripts.
pub fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(StoreError::Config("database names may only use a-z, 0-9 and _".into()));
    }
    let DbUrl::Postgres(url) = DbUrl::parse(admin_url)? else {
        return Err(StoreError::Config("an admin URL must be a postgres:// URL".into()));
    };
    let mut conn = PgConnection::establish(&url).map_err(|e| StoreError::Connect(e.to_string()))?;
    conn.batch_execute(&format!("CREATE DATABASE {name}"))?;
    // Replace the database path (after the authority) keeping any query string.
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url.as_str(), None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..].find('/').map(|i| i + scheme_end).unwrap_or(base.len());
    let mut new_url = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        new_url.push('?');
        new_url.push_str(q);
    }
    Ok(new_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified_by_scheme() {
        assert_eq!(DbUrl::parse("sqlite://data/x.db").unwrap(), DbUrl::Sqlite("data/x.db".into()));
        assert_eq!(DbUrl::parse("sqlite:///tmp/x.db").unwrap(), DbUrl::Sqlite("/tmp/x.db".into()));
        assert_eq!(DbUrl::parse("postgres://u@h/db").unwrap().backend(), Backend::Postgres);
        assert_eq!(DbUrl::parse("postgresql://u@h/db").unwrap().backend(), Backend::Postgres);
        for bad in ["mysql://u@h/db", "postgress://u@h/db", "data/x.db", "", "sqlite://", "sqlite://:memory:"] {
            assert!(matches!(DbUrl::parse(bad), Err(StoreError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn postgres_urls_are_not_printed() {
        let u = DbUrl::parse("postgres://u:hunter2@h/db").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
    }
}
