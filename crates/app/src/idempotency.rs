//! Idempotency keys for creating requests: a retry with the same key and the same request gets
//! the original response and creates nothing new. Keys are scoped to the principal that used
//! them, stored in the database (so every node sees them) and expire after
//! `api.idempotency_ttl_secs`.

use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::App;
use caseflow_store::models::IdempotencyRow;
use caseflow_store::queries;
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// A response as it will be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use (or a take-over after the first holder died): run the request, then
    /// `complete` or `abandon`.
    Proceed,
    /// Already done: send this response again.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Checks a client-supplied key: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid("Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    Ok(())
}

/// The namespace a principal's keys live in.
pub fn scope_of(who: &Principal) -> String {
    match who {
        Principal::Agent { id, .. } => format!("agent:{id}"),
        Principal::Token { id, .. } => format!("token:{id}"),
        Principal::System => "system".into(),
    }
}

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

impl App {
    /// Claims `key` for a request whose method, path and body hash to `request_hash`.
    pub async fn idempotency_begin(&self, scope: String, key: String, request_hash: String) -> AppResult<Begin> {
        validate_key(&key)?;
        let now = self.now_naive();
        let api = &self.settings().api;
        let ttl = Duration::seconds(i64::try_from(api.idempotency_ttl_secs).unwrap_or(86_400));
        let lock = Duration::seconds(i64::try_from(api.idempotency_lock_secs).unwrap_or(60));
        for attempt in 0..3 {
            let (scope, key, hash) = (scope.clone(), key.clone(), request_hash.clone());
            let r = self
                .write(move |conn| {
                    let existing = match queries::idempotency::get(conn, &scope, &key)? {
                        Some(row) if row.expires_at <= now => {
                            queries::idempotency::delete(conn, &scope, &key)?;
                            None
                        }
                        other => other,
                    };
                    let Some(mut row) = existing else {
                        queries::idempotency::insert(
                            conn,
                            &IdempotencyRow {
                                scope,
                                key,
                                request_hash: hash,
                                state: IN_PROGRESS.into(),
                                locked_until: now + lock,
                                response_status: None,
                                response_headers: None,
                                response_body: None,
                                created_at: now,
                                expires_at: now + ttl,
                            },
                        )?;
                        return Ok(Begin::Proceed);
                    };
                    if row.request_hash != hash {
                        return Ok(Begin::Mismatch);
                    }
                    if row.state == COMPLETED {
                        let headers: Vec<(String, String)> =
                            serde_json::from_str(row.response_headers.as_deref().unwrap_or("[]")).unwrap_or_default();
                        return Ok(Begin::Replay(StoredResponse {
                            status: row.response_status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                            headers,
                            body: row.response_body.unwrap_or_default(),
                        }));
                    }
                    if row.locked_until > now {
                        return Ok(Begin::InProgress);
                    }
                    // The holder gave no sign of life within the lock time: take over.
                    row.locked_until = now + lock;
                    queries::idempotency::update(conn, &row)?;
                    Ok(Begin::Proceed)
                })
                .await;
            match r {
                // Another node inserted the same key between our read and insert: read again.
                Err(AppError::AlreadyExists(_)) if attempt < 2 => continue,
                other => return other,
            }
        }
        Ok(Begin::InProgress)
    }

    /// Stores the response of a request that ran under `key`.
    pub async fn idempotency_complete(&self, scope: String, key: String, response: StoredResponse) -> AppResult<()> {
        self.write(move |conn| {
            if let Some(mut row) = queries::idempotency::get(conn, &scope, &key)? {
                row.state = COMPLETED.into();
                row.response_status = Some(i32::from(response.status));
                row.response_headers = Some(serde_json::to_string(&response.headers).unwrap_or_else(|_| "[]".into()));
                row.response_body = Some(response.body);
                queries::idempotency::update(conn, &row)?;
            }
            Ok(())
        })
        .await
    }

    /// Releases `key` after a failure that a retry may fix (5xx), so the retry runs afresh.
    pub async fn idempotency_abandon(&self, scope: String, key: String) -> AppResult<()> {
        self.write(move |conn| Ok(queries::idempotency::delete(conn, &scope, &key)?)).await
    }

    /// Deletes expired keys; called periodically by the housekeeping task.
    pub async fn purge_expired_idempotency_keys(&self) -> AppResult<usize> {
        let now = self.now_naive();
        self.write(move |conn| Ok(queries::idempotency::purge_expired(conn, now)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_short_visible_ascii() {
        assert!(validate_key("8e03978e-40d5-43e8-bc93-6894a57f9324").is_ok());
        for bad in ["", " ", "has space", "ünï", &"k".repeat(256), "tab\there"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_separate_principals() {
        let a = Principal::Agent { id: caseflow_core::AgentId::new("1"), role: caseflow_core::Role::Agent };
        let t = Principal::Token { id: caseflow_core::ApiTokenId::new("1"), scopes: vec![] };
        assert_ne!(scope_of(&a), scope_of(&t));
    }
}
