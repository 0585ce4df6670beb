//! Caseflow's use cases: everything the product does, independent of how it is asked.
//! The REST API, the browser UI, the CLI and the background workers all call these.
//!
//! Each use case checks the caller's permission, validates input, and performs its database
//! work in one transaction on a blocking thread. This crate must not depend on actix or any
//! HTTP type.

pub mod auth;
pub mod cases;
pub mod chat;
pub mod customers;
pub mod demo;
pub mod desk;
pub mod directory;
pub mod error;
pub mod idempotency;
pub mod inbound;
pub mod inbox;
pub(crate) mod journal;
pub mod metrics;
pub mod outbox;
pub mod routing;
pub mod satisfaction;
pub mod settings;
pub mod sla;
pub mod stats;
pub mod support;
pub mod views;
pub mod webhooks;

use caseflow_core::Clock;
use caseflow_store::{DbConn, DbUrl, Store};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use std::sync::Arc;
use std::time::Duration;

pub use auth::Principal;
pub use error::{AppError, AppResult};
pub use settings::Settings;

/// The real clock, truncated to microseconds so values read back from either database
/// equal the values written.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// The real clock shifted by a fixed number of seconds (`clock.offset_secs`: demos and
/// tests that need to be a day later without waiting a day; refused in production).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + chrono::Duration::seconds(self.0)
    }
}

/// Shared application state: cheap to clone, passed to every handler and worker.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    settings: Settings,
    clock: Arc<dyn Clock>,
    jwt: auth::JwtKeys,
    metrics: metrics::Metrics,
    token_cache: auth::TokenCache,
    outbox_wake: tokio::sync::Notify,
    routing_wake: tokio::sync::Notify,
    sla_wake: tokio::sync::Notify,
    webhooks_wake: tokio::sync::Notify,
    /// A write on this node since the listener last announced one to the other nodes.
    routing_dirty: std::sync::atomic::AtomicBool,
    /// Ticks when this node raised alerts (live streams read them at once).
    alerts: tokio::sync::broadcast::Sender<()>,
    /// Ticks when a case changed on this node (or another node said so): live case streams.
    changes: tokio::sync::broadcast::Sender<()>,
    chat_hub: chat::ChatHub,
}

impl App {
    /// Opens the database named in `settings` (applying migrations) and builds the state.
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> AppResult<Self> {
        let url = DbUrl::parse(settings.database.url.expose()).map_err(|e| AppError::Internal(e.to_string()))?;
        let opts = caseflow_store::db::PoolOptions {
            max_connections: settings.database.max_connections,
            connect_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
            sqlite_busy_timeout: Duration::from_millis(settings.database.sqlite_busy_timeout_ms),
        };
        let store = Store::open(&url, &opts)?;
        let jwt =
            auth::JwtKeys::new(settings.auth.jwt_secret.expose(), &settings.auth.issuer, settings.auth.jwt_ttl_secs);
        let metrics = metrics::Metrics::new().map_err(|e| AppError::Internal(format!("metrics: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                settings,
                clock,
                jwt,
                metrics,
                token_cache: auth::TokenCache::default(),
                outbox_wake: tokio::sync::Notify::new(),
                routing_wake: tokio::sync::Notify::new(),
                sla_wake: tokio::sync::Notify::new(),
                webhooks_wake: tokio::sync::Notify::new(),
                routing_dirty: std::sync::atomic::AtomicBool::new(false),
                alerts: tokio::sync::broadcast::channel(16).0,
                changes: tokio::sync::broadcast::channel(16).0,
                chat_hub: chat::ChatHub::default(),
            }),
        })
    }

    /// The settings the app was started with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The store, for health checks and metrics.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// The live-chat hub of this node.
    pub fn chat_hub(&self) -> &chat::ChatHub {
        &self.inner.chat_hub
    }

    /// The current time from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Wakes the outbox dispatcher (after committing a row it should deliver).
    pub(crate) fn wake_outbox(&self) {
        self.inner.outbox_wake.notify_one();
    }

    /// Resolves when [`App::wake_outbox`] was called.
    pub(crate) async fn outbox_woken(&self) {
        self.inner.outbox_wake.notified().await;
    }

    /// Resolves after a use case committed a write (which may have left routing signals).
    pub(crate) async fn routing_woken(&self) {
        self.inner.routing_wake.notified().await;
    }

    pub(crate) async fn sla_woken(&self) {
        self.inner.sla_wake.notified().await;
    }

    /// Wakes the webhook dispatcher (events may have left deliveries).
    pub(crate) fn wake_webhooks(&self) {
        self.inner.webhooks_wake.notify_one();
    }

    pub(crate) async fn webhooks_woken(&self) {
        self.inner.webhooks_wake.notified().await;
    }

    /// Tells this node's live alert streams that new alerts are in the database.
    pub(crate) fn notify_alerts(&self) {
        let _ = self.inner.alerts.send(());
    }

    /// Tells this node's live case streams that cases changed.
    pub(crate) fn notify_changes(&self) {
        let _ = self.inner.changes.send(());
    }

    /// A receiver that ticks when cases changed (on this node, or another node announced it).
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.inner.changes.subscribe()
    }

    /// A receiver that ticks when this node raises alerts.
    pub fn subscribe_alerts(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.inner.alerts.subscribe()
    }

    pub(crate) fn token_cache(&self) -> &auth::TokenCache {
        &self.inner.token_cache
    }

    pub(crate) fn jwt(&self) -> &auth::JwtKeys {
        &self.inner.jwt
    }

    /// Runs read-only database work on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        let store = self.inner.store.clone();
        blocking(move || store.read(f)).await
    }

    /// Runs database work in one transaction on a blocking thread.
    pub(crate) async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        let store = self.inner.store.clone();
        let done = blocking(move || store.write(f)).await;
        if done.is_ok() {
            // The change may matter to routing (triggers left a signal) or move an SLA
            // deadline (triggers made the case due): the workers on this node look at once
            // instead of at their next poll.
            self.inner.routing_wake.notify_one();
            self.inner.sla_wake.notify_one();
            self.inner.webhooks_wake.notify_one();
            self.inner.routing_dirty.store(true, std::sync::atomic::Ordering::Relaxed);
            self.notify_changes();
        }
        done
    }

    /// Like [`App::write`], waking nobody (the SLA scheduler's own writes; it wakes the
    /// workers its changes concern).
    pub(crate) async fn write_silent<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        let store = self.inner.store.clone();
        blocking(move || store.write(f)).await
    }

    /// Wakes the router (a worker changed cases it should look at).
    pub(crate) fn wake_router(&self) {
        self.inner.routing_wake.notify_one();
        self.inner.routing_dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A worker changed cases outside [`App::write`]: this node's live case streams look now and
    /// the listener announces it to the other nodes (the router itself is not woken).
    pub(crate) fn announce_changes(&self) {
        self.inner.routing_dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        self.notify_changes();
    }

    /// Wakes this node's router and live case streams for changes another node announced
    /// (not announced again: that would echo between the nodes forever).
    pub(crate) fn changes_announced(&self) {
        self.inner.routing_wake.notify_one();
        self.notify_changes();
    }

    /// Whether this node wrote since the last call (the listener announces it to the others).
    pub(crate) fn take_routing_dirty(&self) -> bool {
        self.inner.routing_dirty.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Checks that the database answers.
    pub async fn ready(&self) -> AppResult<()> {
        let store = self.inner.store.clone();
        blocking(move || store.ping().map_err(AppError::from)).await
    }

    /// Clamps a requested page size to the configured bounds.
    pub(crate) fn page_limit(&self, requested: Option<i64>) -> AppResult<i64> {
        let l = &self.inner.settings.limits;
        match requested {
            None => Ok(l.default_page_size),
            Some(n) if n >= 1 && n <= l.max_page_size => Ok(n),
            Some(_) => Err(AppError::invalid(format!("limit must be between 1 and {}", l.max_page_size))),
        }
    }
}

/// Runs `f` on tokio's blocking pool, carrying the caller's tracing span along.
pub(crate) async fn blocking<T, F>(f: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> AppResult<T> + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))?
}

/// A new time-ordered unique id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Converts a stored UTC timestamp to an aware one.
pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// A page of results with an opaque cursor for the next page.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
    pub(crate) fn from_rows<R>(mut rows: Vec<R>, limit: i64, key: impl Fn(&R) -> String, map: impl Fn(R) -> T) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(&key) } else { None };
        Self { items: rows.into_iter().map(map).collect(), next_cursor }
    }

    /// Like [`Page::from_rows`] with a conversion that can fail.
    pub(crate) fn try_from_rows<R>(
        rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> String,
        map: impl Fn(R) -> AppResult<T>,
    ) -> AppResult<Self> {
        let page = Page::from_rows(rows, limit, key, map);
        Ok(Page { items: page.items.into_iter().collect::<AppResult<Vec<_>>>()?, next_cursor: page.next_cursor })
    }
}

/// Reads a text field's length limit and refuses oversize input with a clear message.
pub(crate) fn check_len(field: &str, value: &str, max_bytes: usize) -> AppResult<()> {
    if value.len() > max_bytes {
        return Err(AppError::invalid(format!("{field} is longer than {max_bytes} bytes")));
    }
    Ok(())
}

/// Removes control characters other than tab and line breaks (NUL in particular, which
/// PostgreSQL refuses in text) and trims surrounding whitespace.
pub(crate) fn clean(value: &str) -> String {
    value.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')).collect::<String>().trim().to_owned()
}

/// Refuses blank required text; returns it cleaned.
pub(crate) fn required(field: &str, value: &str) -> AppResult<String> {
    let v = clean(value);
    if v.is_empty() {
        return Err(AppError::invalid(format!("{field} must not be empty")));
    }
    Ok(v)
}

/// Parses a closed-vocabulary value from API input.
pub(crate) fn parse_enum<T: std::str::FromStr<Err = caseflow_core::ParseEnumError>>(
    field: &str,
    value: &str,
) -> AppResult<T> {
    value.parse::<T>().map_err(|e| AppError::invalid(format!("{field}: {e}")))
}
