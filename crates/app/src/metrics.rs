//! Prometheus metrics. One registry per `App` (no global state), rendered in the text format
//! by the `prometheus` crate. Gauges that mirror database state (outbox, queue, pool) are
//! refreshed at scrape time, so a scrape costs three indexed counts, not a background loop.

use crate::error::{AppError, AppResult};
use crate::App;
use caseflow_store::queries;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric Caseflow exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub cases_created: IntCounterVec,
    pub messages_ingested: IntCounterVec,
    pub messages_quarantined: IntCounterVec,
    pub messages_ignored: IntCounterVec,
    pub sla_warnings: IntCounter,
    pub sla_breaches: IntCounter,
    pub satisfaction_surveys: IntCounter,
    pub satisfaction_ratings: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub idempotent_replays: IntCounter,
    pub outbox_deliveries: IntCounterVec,
    pub imap_fetched: IntCounterVec,
    pub imap_errors: IntCounterVec,
    pub imap_connected: IntGaugeVec,
    pub submissions_rejected: IntCounterVec,
    pub chat_connections: IntGaugeVec,
    pub routing_decisions: IntCounterVec,
    pub routing_leader: IntGauge,
    outbox_pending: IntGauge,
    outbox_oldest_age: Gauge,
    routing_queue_depth: IntGauge,
    db_pool: IntGaugeVec,
    db_pool_max: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new_custom(Some("caseflow".into()), None)?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route pattern")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route"],
        )?;
        r.register(Box::new(http_duration.clone()))?;
        let outbox_oldest_age = Gauge::new("outbox_oldest_age_seconds", "Age of the oldest undelivered outbox row")?;
        r.register(Box::new(outbox_oldest_age.clone()))?;
        let db_pool =
            IntGaugeVec::new(Opts::new("db_pool_connections", "Pooled database connections by state"), &["state"])?;
        r.register(Box::new(db_pool.clone()))?;
        let imap_connected =
            IntGaugeVec::new(Opts::new("imap_connected", "1 while the mailbox's IMAP session is up"), &["mailbox"])?;
        r.register(Box::new(imap_connected.clone()))?;
        let chat_connections =
            IntGaugeVec::new(Opts::new("chat_connections", "Open chat WebSockets on this node"), &["side"])?;
        r.register(Box::new(chat_connections.clone()))?;
        Ok(Self {
            http_requests: counter_vec(
                &r,
                "http_requests_total",
                "HTTP requests by route pattern and status",
                &["method", "route", "status"],
            )?,
            http_duration,
            cases_created: counter_vec(&r, "cases_created_total", "Cases created, by channel of origin", &["channel"])?,
            messages_ingested: counter_vec(
                &r,
                "messages_ingested_total",
                "Inbound customer messages stored",
                &["channel"],
            )?,
            messages_quarantined: counter_vec(
                &r,
                "messages_quarantined_total",
                "Inbound messages quarantined as unparseable",
                &["channel"],
            )?,
            messages_ignored: counter_vec(
                &r,
                "messages_ignored_total",
                "Inbound messages ignored (auto-replies, bounces, loops)",
                &["channel", "reason"],
            )?,
            sla_warnings: counter(&r, "sla_warnings_total", "SLA warnings raised")?,
            sla_breaches: counter(&r, "sla_breaches_total", "SLA breaches raised")?,
            satisfaction_surveys: counter(&r, "satisfaction_surveys_total", "Satisfaction surveys sent")?,
            satisfaction_ratings: counter_vec(
                &r,
                "satisfaction_ratings_total",
                "Satisfaction answers recorded (given or changed), by rating",
                &["rating"],
            )?,
            rate_limited: counter_vec(
                &r,
                "rate_limited_total",
                "Requests refused with 429, by bucket kind",
                &["kind"],
            )?,
            idempotent_replays: counter(
                &r,
                "idempotent_replays_total",
                "Responses replayed for a repeated Idempotency-Key",
            )?,
            outbox_deliveries: counter_vec(
                &r,
                "outbox_delivery_attempts_total",
                "Outbox delivery attempts by kind and result (delivered, retrying, failed)",
                &["kind", "result"],
            )?,
            imap_fetched: counter_vec(&r, "imap_messages_fetched_total", "Messages fetched per mailbox", &["mailbox"])?,
            imap_errors: counter_vec(
                &r,
                "imap_errors_total",
                "IMAP connection or protocol failures per mailbox (each followed by a reconnect)",
                &["mailbox"],
            )?,
            imap_connected,
            submissions_rejected: counter_vec(
                &r,
                "submissions_rejected_total",
                "Web-form and chat input refused (validation, honeypot, size), by channel and reason",
                &["channel", "reason"],
            )?,
            chat_connections,
            routing_decisions: counter_vec(
                &r,
                "routing_decisions_total",
                "Routing outcomes written (assigned, waiting, escalated, rerouted, lost_race)",
                &["outcome"],
            )?,
            routing_leader: gauge(&r, "routing_leader", "1 while this node is the one that routes")?,
            outbox_pending: gauge(&r, "outbox_pending", "Undelivered outbox rows")?,
            outbox_oldest_age,
            routing_queue_depth: gauge(&r, "routing_queue_depth", "Active cases without an assignee")?,
            db_pool,
            db_pool_max: gauge(&r, "db_pool_max_connections", "Configured pool size")?,
            registry: r,
        })
    }
}

impl App {
    /// Metrics in the Prometheus text exposition format, with database gauges refreshed.
    pub async fn render_metrics(&self) -> AppResult<String> {
        let now = self.now_naive();
        let (pending, oldest, unassigned) = self
            .read(|conn| {
                let (pending, oldest) = queries::events::outbox_backlog(conn)?;
                Ok((pending, oldest, queries::cases::count_unassigned_active(conn)?))
            })
            .await?;
        let m = self.metrics();
        m.outbox_pending.set(pending);
        m.outbox_oldest_age.set(oldest.map(|t| (now - t).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0).max(0.0));
        m.routing_queue_depth.set(unassigned);
        let (open, idle) = self.store().pool_state();
        m.db_pool.with_label_values(&["idle"]).set(i64::from(idle));
        m.db_pool.with_label_values(&["in_use"]).set(i64::from(open.saturating_sub(idle)));
        m.db_pool_max.set(i64::from(self.settings().database.max_connections));
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut buf)
            .map_err(|e| AppError::Internal(format!("metrics encoding failed: {e}")))?;
        String::from_utf8(buf).map_err(|e| AppError::Internal(e.to_string()))
    }
}
