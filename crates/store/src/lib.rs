//! Caseflow storage: the diesel schema, row types, queries, the connection pool and the
//! embedded migrations, for SQLite (embedded default) and PostgreSQL (production).
//!
//! Everything here is synchronous; callers run it on a blocking thread
//! (`tokio::task::spawn_blocking`), never on an async executor thread.
//! This crate must not depend on actix or any HTTP type.

pub mod db;
pub mod models;
pub mod queries;
pub mod schema;

#[cfg(test)]
mod backend_tests;

pub use db::{create_postgres_database, Backend, DbConn, DbUrl, Store, StoreError};
/// Diesel's error details, re-exported so callers need not depend on diesel.
pub use diesel::result as diesel_result;
pub use diesel::result::Error as QueryError;

/// Result of a single query.
pub type QueryResult<T> = Result<T, QueryError>;
