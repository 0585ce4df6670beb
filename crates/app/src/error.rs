//! The one error type use cases return. Each variant has a stable snake_case `code` that
//! clients can rely on; `docs/api.md` lists them and the HTTP layer maps them to statuses.

use caseflow_store::StoreError;

/// A use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input is well-formed JSON but not acceptable (bad email, unknown enum value, too long).
    #[error("{0}")]
    Validation(String),
    /// The named thing does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Email/password did not match an active agent.
    #[error("email or password is wrong")]
    InvalidCredentials,
    /// The session token has expired; log in again.
    #[error("the token has expired")]
    TokenExpired,
    /// Authenticated, but this role or token scope may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The resource changed since the client read it (optimistic concurrency).
    #[error("the {0} was changed by someone else; reload it and try again")]
    VersionConflict(&'static str),
    /// A unique key (email, name, identity) is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The case's state machine refuses the change.
    #[error("{0}")]
    InvalidTransition(String),
    /// The resource is still referenced and cannot be deleted.
    #[error("{0}")]
    InUse(String),
    /// The thing existed but may no longer be used (an expired survey link).
    #[error("this {0} has expired")]
    Expired(&'static str),
    /// The database (or another dependency) is not reachable right now.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure; details are logged, never returned.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::NotFound(_) => "not_found",
            AppError::Unauthenticated(_) => "unauthenticated",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::TokenExpired => "token_expired",
            AppError::Forbidden(_) => "forbidden",
            AppError::VersionConflict(_) => "version_conflict",
            AppError::AlreadyExists(_) => "already_exists",
            AppError::InvalidTransition(_) => "invalid_transition",
            AppError::InUse(_) => "in_use",
            AppError::Expired(_) => "expired",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// Shorthand for a validation error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        AppError::Validation(msg.into())
    }
}

impl From<diesel_error::Error> for AppError {
    fn from(e: diesel_error::Error) -> Self {
        use diesel_error::{DatabaseErrorKind as K, Error as E};
        match e {
            E::NotFound => AppError::NotFound("resource"),
            E::DatabaseError(K::UniqueViolation, info) => {
                AppError::AlreadyExists(format!("already exists ({})", constraint_hint(info.as_ref())))
            }
            E::DatabaseError(K::ForeignKeyViolation, _) => AppError::InUse("still referenced by other records".into()),
            E::DatabaseError(K::SerializationFailure, _) => AppError::VersionConflict("resource"),
            E::DatabaseError(K::ClosedConnection, _) => AppError::Unavailable("database connection closed".into()),
            // A session the server ended (an administrator, a failover, the database dropped)
            // or lost: the service is unavailable, not broken.
            E::DatabaseError(K::UnableToSendCommand, _) => AppError::Unavailable("database connection lost".into()),
            E::DatabaseError(_, info) if connection_lost(info.message()) => {
                AppError::Unavailable("database connection lost".into())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Whether a database error message says the session is gone (PostgreSQL's admin shutdown,
/// a closed socket, a database that no longer exists).
fn connection_lost(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "connection to server",
        "could not receive data from server",
        "could not send data to server",
    ]
    .iter()
    .any(|p| m.contains(p))
        || (m.starts_with("database \"") && m.ends_with("does not exist"))
}

fn constraint_hint(info: &(dyn diesel_error::DatabaseErrorInformation + Send + Sync)) -> String {
    // PostgreSQL names the constraint; SQLite puts "table.column" in the message. Neither
    // contains the conflicting value, so this is safe to return.
    info.constraint_name()
        .map(str::to_owned)
        .or_else(|| info.message().split(": ").nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unique key".into())
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Pool(p) => AppError::Unavailable(p.to_string()),
            StoreError::Connect(c) => AppError::Unavailable(c),
            StoreError::Query(q) => q.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<caseflow_core::TransitionError> for AppError {
    fn from(e: caseflow_core::TransitionError) -> Self {
        AppError::InvalidTransition(e.to_string())
    }
}

mod diesel_error {
    pub use caseflow_store::diesel_result::{DatabaseErrorInformation, DatabaseErrorKind};
    pub use caseflow_store::QueryError as Error;
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::connection_lost;

    #[test]
    fn lost_sessions_are_recognised_and_other_errors_are_not() {
        for m in [
            "terminating connection due to administrator command",
            "server closed the connection unexpectedly",
            "no connection to the server",
            "database \"cf_e2e_1\" does not exist",
        ] {
            assert!(connection_lost(m), "{m}");
        }
        for m in ["syntax error at or near \"x\"", "relation \"cases\" does not exist", "deadlock detected"] {
            assert!(!connection_lost(m), "{m}");
        }
    }
}
