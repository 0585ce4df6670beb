//! Webhooks for integrators: subscriptions per event type, deliveries signed with
//! HMAC-SHA256 over `timestamp.body`, retried with exponential backoff, a delivery log and
//! manual replay.
//!
//! Deliveries are written by a database trigger on `case_events` (migration 10) in the
//! transaction that recorded the event: every write path that audits a case change — API,
//! email, chat, routing, the SLA scheduler — produces them, and a crash neither loses nor
//! invents one. The dispatcher (every node) claims due deliveries with a compare-and-set
//! lease, POSTs them, and records each attempt. At least once: a receiver deduplicates by the
//! `Caseflow-Delivery` header (the same for every attempt and replay of one delivery).

use crate::error::{AppError, AppResult};
use crate::{new_id, utc, App, Principal};
use caseflow_store::models::*;
use caseflow_store::queries;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;

/// Every event type a subscription can name (`*`: all).
pub const EVENT_TYPES: &[&str] = &[
    "case.created",
    "case.assigned",
    "case.unassigned",
    "case.status_changed",
    "case.priority_changed",
    "message.created",
    "sla.warning",
    "sla.breached",
    "case.escalated",
    "case.rated",
];

/// A subscription as the API shows it (the secret only to admins).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub active: bool,
    /// The signing secret (`whsec_…`): verify `Caseflow-Signature` with it.
    pub secret: String,
    /// After a rotation: until then deliveries also carry a signature with the previous
    /// secret (absent when no previous secret is in effect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A secret rotation.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing deliveries beside the new one, in seconds:
    /// 0 to 604800 (7 days); 86400 when absent. 0 drops it at once.
    #[schema(minimum = 0, maximum = 604800)]
    pub expire_previous_in_secs: Option<i64>,
}

/// Longest overlap of a rotated secret with its successor.
const MAX_SECRET_OVERLAP_SECS: i64 = 7 * 86_400;

/// A subscription to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://` (or `http://`) URL that receives `POST`s.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// Event types (see the list in docs/webhooks.md), or `["*"]`.
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

/// Changes to a subscription.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

/// One delivery and how it went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub subscription_id: String,
    pub event_type: String,
    pub event_id: String,
    pub case_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status on the last attempt.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body sent (and signed).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

fn view(r: WebhookSubscriptionRow, now: chrono::NaiveDateTime) -> WebhookView {
    let previous = previous_secret(&r, now).and(r.previous_secret_expires_at);
    WebhookView {
        id: r.id,
        url: r.url,
        events: serde_json::from_str(&r.events).unwrap_or_default(),
        description: r.description,
        active: r.active,
        secret: r.secret,
        previous_secret_expires_at: previous.map(utc),
        created_at: utc(r.created_at),
        updated_at: utc(r.updated_at),
    }
}

/// The JSON body of a delivery: stable across attempts (built from the stored event).
pub fn body(d: &WebhookDeliveryRow) -> String {
    let data: serde_json::Value = serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": d.event_id,
        "type": d.event_type,
        "created_at": utc(d.event_at),
        "case_id": d.case_id,
        "data": data,
    })
    .to_string()
}

fn delivery_view(d: WebhookDeliveryRow) -> DeliveryView {
    let body = serde_json::from_str(&body(&d)).unwrap_or(serde_json::Value::Null);
    DeliveryView {
        next_attempt_at: (d.status == "pending").then(|| utc(d.next_attempt_at)),
        id: d.id,
        subscription_id: d.subscription_id,
        event_type: d.event_type,
        event_id: d.event_id,
        case_id: d.case_id,
        status: d.status,
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        delivered_at: d.delivered_at.map(utc),
        body,
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    signatures(&[secret], timestamp, body)
}

/// `t=<unix seconds>` then one `v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` per secret, in
/// order (the current secret first, then the previous one during a rotation's overlap).
pub fn signatures(secrets: &[&str], timestamp: i64, body: &str) -> String {
    let mut out = format!("t={timestamp}");
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { continue };
        mac.update(format!("{timestamp}.{body}").as_bytes());
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(",v1=");
        out.push_str(&hex);
    }
    out
}

/// The previous secret of a subscription while it still signs (its expiry is in the future).
fn previous_secret(r: &WebhookSubscriptionRow, now: chrono::NaiveDateTime) -> Option<&str> {
    match (&r.previous_secret, r.previous_secret_expires_at) {
        (Some(s), Some(until)) if until > now => Some(s.as_str()),
        _ => None,
    }
}

/// Whether an address is one a webhook must not reach unless allowed: loopback, private,
/// shared (100.64/10), link-local, unspecified, "this network", IETF protocol assignments,
/// unique-local and link-local IPv6, and IPv4 mapped into IPv6 with any of those.
fn private_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            let v4 = |hi: u16, lo: u16| {
                std::net::IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
            };
            // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
            // (64:ff9b::a.b.c.d, which a NAT64 gateway forwards to a.b.c.d) and 6to4
            // (2002:aabb:ccdd::): the IPv4 address decides.
            if let Some(v4) = a.to_ipv4() {
                if !a.is_loopback() && !a.is_unspecified() {
                    return private_ip(std::net::IpAddr::V4(v4));
                }
            }
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return private_ip(v4(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return private_ip(v4(s[1], s[2]));
            }
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside some sites)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 (64:ff9b:1::/48)
        }
    }
}

/// Refuses URLs that are not http(s), and (unless allowed) hosts that are loopback or private
/// addresses or `localhost`: a webhook must not become a way to make the server call its own
/// neighbours. The URL is parsed the way the HTTP client will parse it (WHATWG rules: other
/// spellings of an address, such as `0x7f000001` or `127.1`, come out as the address they
/// mean) and stored in that normal form.
fn check_url(url: &str, allow_private: bool) -> AppResult<String> {
    crate::check_len("url", url, 2_000)?;
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| AppError::invalid(format!("url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AppError::invalid("url must start with https:// or http://"));
    }
    let private = match parsed.host() {
        None => return Err(AppError::invalid("url has no host")),
        Some(url::Host::Ipv4(a)) => private_ip(std::net::IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => private_ip(std::net::IpAddr::V6(a)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(AppError::invalid(
            "url points to a loopback or private address (webhooks.allow_private_targets is off)",
        ));
    }
    Ok(parsed.to_string())
}

/// Why a delivery was not sent: the target is (or resolves to) a loopback or private address
/// and `webhooks.allow_private_targets` is off.
#[derive(Debug)]
struct PrivateTarget;

impl std::fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host resolves only to loopback or private addresses")
    }
}

impl std::error::Error for PrivateTarget {}

/// The webhook client's resolver when private targets are not allowed: it resolves like the
/// system does and drops loopback and private addresses, so a public-looking name that points
/// inside (or is re-pointed after the subscription was checked) is not reached. The address
/// is checked when the connection is made, not only when the URL was saved.
#[derive(Debug, Clone, Copy)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = found.filter(|a| !private_ip(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(PrivateTarget) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client deliveries go out with (see [`App::webhook_client`]). Unless private targets are
/// allowed it ignores proxies from the environment (`HTTP_PROXY`…): through a proxy only the
/// proxy's own address would be checked, and the proxy would reach whatever the name points to.
fn delivery_client(w: &crate::settings::WebhookSettings) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(w.timeout_secs))
        .redirect(reqwest::redirect::Policy::none());
    if !w.allow_private_targets {
        b = b.no_proxy().dns_resolver(std::sync::Arc::new(PublicOnly));
    }
    b.build()
}

/// What a failed send is logged as: its kind only, never the URL or the payload.
fn send_error(e: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<PrivateTarget>() {
            return "refused: the host resolves to a loopback or private address".to_owned();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timeout".to_owned()
    } else {
        "connection failed".to_owned()
    }
}

fn check_events(events: &[String]) -> AppResult<String> {
    if events.is_empty() || events.len() > EVENT_TYPES.len() + 1 {
        return Err(AppError::invalid("events: name at least one event type, or \"*\""));
    }
    for e in events {
        if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
            return Err(AppError::invalid(format!(
                "unknown event type {:?}; expected * or one of {}",
                e.chars().take(64).collect::<String>(),
                EVENT_TYPES.join(", ")
            )));
        }
    }
    serde_json::to_string(events).map_err(|e| AppError::Internal(e.to_string()))
}

fn new_secret() -> String {
    format!("whsec_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// What one dispatch round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

impl App {
    /// Subscribes a URL to event types (admins); the answer carries the signing secret.
    pub async fn create_webhook(&self, who: &Principal, req: NewWebhook) -> AppResult<WebhookView> {
        who.require_admin()?;
        let url = check_url(&req.url, self.settings().webhooks.allow_private_targets)?;
        let events = check_events(&req.events)?;
        crate::check_len("description", &req.description, 500)?;
        let now = self.now_naive();
        let row = WebhookSubscriptionRow {
            id: new_id(),
            url,
            secret: new_secret(),
            events,
            description: crate::clean(&req.description),
            active: true,
            created_at: now,
            updated_at: now,
            previous_secret: None,
            previous_secret_expires_at: None,
        };
        self.write(move |conn| {
            queries::webhooks::insert(conn, &row)?;
            Ok(view(row, now))
        })
        .await
    }

    /// Gives a subscription a new signing secret (admins). The previous one keeps signing
    /// deliveries beside it for `expire_previous_in_secs` (a day by default), so a receiver can
    /// switch without refusing a delivery; the answer carries the new secret.
    pub async fn rotate_webhook_secret(
        &self,
        who: &Principal,
        id: String,
        req: RotateSecret,
    ) -> AppResult<WebhookView> {
        who.require_admin()?;
        let overlap = req.expire_previous_in_secs.unwrap_or(86_400);
        if !(0..=MAX_SECRET_OVERLAP_SECS).contains(&overlap) {
            return Err(AppError::invalid(format!(
                "expire_previous_in_secs must be between 0 and {MAX_SECRET_OVERLAP_SECS}"
            )));
        }
        let now = self.now_naive();
        let until = (overlap > 0).then(|| now + chrono::Duration::seconds(overlap));
        self.write(move |conn| {
            if !queries::webhooks::rotate_secret(conn, &id, &new_secret(), until, now)? {
                return Err(AppError::NotFound("webhook"));
            }
            let row = queries::webhooks::get(conn, &id)?.ok_or(AppError::NotFound("webhook"))?;
            Ok(view(row, now))
        })
        .await
    }

    pub async fn list_webhooks(&self, who: &Principal) -> AppResult<Vec<WebhookView>> {
        who.require_admin()?;
        let now = self.now_naive();
        self.read(move |conn| Ok(queries::webhooks::list(conn)?.into_iter().map(|r| view(r, now)).collect())).await
    }

    pub async fn get_webhook(&self, who: &Principal, id: String) -> AppResult<WebhookView> {
        who.require_admin()?;
        let now = self.now_naive();
        self.read(move |conn| Ok(view(queries::webhooks::get(conn, &id)?.ok_or(AppError::NotFound("webhook"))?, now)))
            .await
    }

    pub async fn update_webhook(&self, who: &Principal, id: String, patch: WebhookPatch) -> AppResult<WebhookView> {
        who.require_admin()?;
        let allow = self.settings().webhooks.allow_private_targets;
        let url = patch.url.as_deref().map(|u| check_url(u, allow)).transpose()?;
        let events = patch.events.as_deref().map(check_events).transpose()?;
        if let Some(d) = &patch.description {
            crate::check_len("description", d, 500)?;
        }
        let now = self.now_naive();
        self.write(move |conn| {
            let mut row = queries::webhooks::get(conn, &id)?.ok_or(AppError::NotFound("webhook"))?;
            if let Some(u) = url {
                row.url = u;
            }
            if let Some(e) = events {
                row.events = e;
            }
            if let Some(d) = patch.description {
                row.description = crate::clean(&d);
            }
            if let Some(a) = patch.active {
                row.active = a;
            }
            row.updated_at = now;
            queries::webhooks::update(conn, &row)?;
            Ok(view(row, now))
        })
        .await
    }

    pub async fn delete_webhook(&self, who: &Principal, id: String) -> AppResult<()> {
        who.require_admin()?;
        self.write(move |conn| {
            if queries::webhooks::delete(conn, &id)? == 0 {
                return Err(AppError::NotFound("webhook"));
            }
            Ok(())
        })
        .await
    }

    /// The delivery log of a subscription, newest first.
    pub async fn list_deliveries(
        &self,
        who: &Principal,
        id: String,
        limit: Option<i64>,
    ) -> AppResult<Vec<DeliveryView>> {
        who.require_admin()?;
        let limit = self.page_limit(limit)?;
        self.read(move |conn| {
            queries::webhooks::get(conn, &id)?.ok_or(AppError::NotFound("webhook"))?;
            Ok(queries::webhooks::deliveries(conn, &id, limit)?.into_iter().map(delivery_view).collect())
        })
        .await
    }

    /// Sends a delivery again now (delivered, failed or pending alike): same id and body, a
    /// new timestamp and signature.
    pub async fn replay_delivery(&self, who: &Principal, id: String) -> AppResult<DeliveryView> {
        who.require_admin()?;
        let now = self.now_naive();
        let d = self
            .write(move |conn| {
                if queries::webhooks::replay(conn, &id, now)? == 0 {
                    return Err(AppError::NotFound("delivery"));
                }
                queries::webhooks::delivery(conn, &id)?.ok_or(AppError::NotFound("delivery"))
            })
            .await?;
        Ok(delivery_view(d))
    }

    /// Delivers what is due (one round): claims a few with a lease, POSTs each, records the
    /// attempt; a failure is retried after `retry_base_secs · 2^(attempts-1)` (at most
    /// `retry_max_secs`), until `max_attempts`.
    pub async fn dispatch_webhooks(&self, client: &reqwest::Client) -> AppResult<DispatchReport> {
        let w = self.settings().webhooks.clone();
        let now = self.now_naive();
        // A read first: an idle dispatcher does not take the write lock.
        if !self.read(move |conn| Ok(queries::webhooks::any_due(conn, now)?)).await? {
            return Ok(DispatchReport::default());
        }
        // A few at a time, with a lease that covers sending all of them one after another
        // (each at most `timeout_secs`), so no other node takes them meanwhile.
        const CLAIM: i64 = 4;
        let timeout = i64::try_from(w.timeout_secs).unwrap_or(60);
        let lease = now + chrono::Duration::seconds(CLAIM * timeout + 30);
        let claimed = self
            .write_silent(move |conn| {
                let rows = queries::webhooks::claim_due(conn, now, lease, CLAIM)?;
                let mut out = Vec::with_capacity(rows.len());
                for d in rows {
                    let sub = queries::webhooks::get(conn, &d.subscription_id)?;
                    out.push((d, sub));
                }
                Ok(out)
            })
            .await?;
        let mut report = DispatchReport::default();
        for (d, sub) in claimed {
            let Some(sub) = sub else {
                // Written while its subscription was being deleted: dropped.
                let (id, at) = (d.id.clone(), self.now_naive());
                let gone = Some("subscription deleted");
                if let Err(e) = self
                    .write_silent(move |conn| {
                        Ok(queries::webhooks::record_attempt(conn, &id, lease, false, None, gone, at, None)?)
                    })
                    .await
                {
                    tracing::warn!(delivery.id = %d.id, error = %e, "webhook: cannot record an orphan delivery");
                }
                report.failed += 1;
                continue;
            };
            let payload = body(&d);
            let ts = self.now().timestamp();
            // Checked again at delivery: an address literal never reaches the resolver, and the
            // subscription may predate `allow_private_targets = false`.
            let sent = if check_url(&sub.url, w.allow_private_targets).is_err() {
                Err("refused: the target is a loopback or private address".to_owned())
            } else {
                client
                    .post(&sub.url)
                    .header("Content-Type", "application/json")
                    .header("User-Agent", "Caseflow-Webhooks/1")
                    .header("Caseflow-Event", &d.event_type)
                    .header("Caseflow-Delivery", &d.id)
                    .header("Caseflow-Timestamp", ts.to_string())
                    .header("Caseflow-Signature", {
                        let mut secrets = vec![sub.secret.as_str()];
                        secrets.extend(previous_secret(&sub, self.now_naive()));
                        signatures(&secrets, ts, &payload)
                    })
                    .body(payload)
                    .send()
                    .await
                    .map_err(|e| send_error(&e))
            };
            let (ok, status, error) = match sent {
                Ok(r) if r.status().is_success() => (true, Some(i32::from(r.status().as_u16())), None),
                Ok(r) => (false, Some(i32::from(r.status().as_u16())), Some(format!("HTTP {}", r.status().as_u16()))),
                // Reduced to its kind: no URL or payload in the log.
                Err(e) => (false, None, Some(e)),
            };
            let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
            let at = self.now_naive();
            let retry_at = (!ok && attempts < w.max_attempts).then(|| {
                let backoff = w.retry_base_secs.saturating_mul(1u64 << (attempts - 1).min(20)).min(w.retry_max_secs);
                at + chrono::Duration::seconds(i64::try_from(backoff).unwrap_or(3600))
            });
            match (ok, retry_at) {
                (true, _) => report.delivered += 1,
                (false, Some(_)) => report.retried += 1,
                (false, None) => report.failed += 1,
            }
            if !ok {
                tracing::info!(delivery.id = %d.id, attempts, status = ?status, "webhook delivery failed");
            }
            let id = d.id.clone();
            let recorded = self
                .write_silent(move |conn| {
                    Ok(queries::webhooks::record_attempt(conn, &id, lease, ok, status, error.as_deref(), at, retry_at)?)
                })
                .await;
            match recorded {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(delivery.id = %d.id, "webhook: replayed or taken over meanwhile; attempt not recorded")
                }
                // Logged and left to the lease: the other claimed deliveries still go out.
                Err(e) => tracing::warn!(delivery.id = %d.id, error = %e, "webhook: cannot record the attempt"),
            }
        }
        Ok(report)
    }

    /// Deletes finished deliveries older than `webhooks.retention_days` (none when it is 0),
    /// a thousand per transaction; returns how many went. Called by the housekeeping task.
    pub async fn purge_old_webhook_deliveries(&self) -> AppResult<usize> {
        let days = self.settings().webhooks.retention_days;
        if days == 0 {
            return Ok(0);
        }
        let before = self.now_naive() - chrono::Duration::days(i64::from(days));
        const BATCH: i64 = 1000;
        let mut total = 0;
        loop {
            let n = self.write_silent(move |conn| Ok(queries::webhooks::purge_finished(conn, before, BATCH)?)).await?;
            total += n;
            if i64::try_from(n).unwrap_or(BATCH) < BATCH {
                return Ok(total);
            }
        }
    }

    /// The HTTP client deliveries go out with: `webhooks.timeout_secs`, no redirects, and
    /// unless `webhooks.allow_private_targets`, a resolver that never yields a loopback or
    /// private address.
    pub fn webhook_client(&self) -> reqwest::Result<reqwest::Client> {
        delivery_client(&self.settings().webhooks)
    }

    /// The webhook dispatcher: a round every `webhooks.poll_ms` (sooner after a local write),
    /// round after round while work is due.
    pub async fn run_webhooks(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let w = self.settings().webhooks.clone();
        if !w.enabled {
            return;
        }
        let client = match self.webhook_client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot build the HTTP client; deliveries are off");
                return;
            }
        };
        loop {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match self.dispatch_webhooks(&client).await {
                    Ok(r) if r.delivered + r.retried + r.failed > 0 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook dispatch round failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(w.poll_ms)) => {}
                _ = self.webhooks_woken() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_delivery_resolver_never_yields_a_loopback_or_private_address() {
        use reqwest::dns::{Name, Resolve};
        use std::str::FromStr;
        // Real resolution through the system's resolver: `localhost` comes from /etc/hosts.
        for host in ["localhost", "127.0.0.1", "10.1.2.3", "192.168.0.7", "::1", "::ffff:127.0.0.1"] {
            let err = match PublicOnly.resolve(Name::from_str(host).unwrap()).await {
                Ok(addrs) => panic!("{host} resolved to {:?}", addrs.collect::<Vec<_>>()),
                Err(e) => e,
            };
            assert!(err.is::<PrivateTarget>(), "{host}: {err}");
        }
        let public: Vec<std::net::SocketAddr> =
            PublicOnly.resolve(Name::from_str("93.184.216.34").unwrap()).await.expect("public").collect();
        assert_eq!(public, [std::net::SocketAddr::from(([93, 184, 216, 34], 0))]);
    }

    #[test]
    fn private_targets_are_refused_in_every_spelling_and_public_ones_are_normalised() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://127.0.0.1\\@example.com/hook",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://127.0.0.1./",
            "http://localhost./",
            "http://LOCALHOST/",
            "http://a.localhost/",
            "http://127.0.0.%31/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://240.0.0.1/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a00:5]/",
            "http://[64:ff9b:1::1]/",
            "http://[2002:c0a8:101::1]/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
        ] {
            let r = check_url(bad, false);
            assert!(r.is_err(), "{bad} accepted as {r:?}");
            assert!(check_url(bad, true).is_ok() || bad.contains('%'), "{bad} refused even when allowed");
        }
        for bad in ["ftp://example.org/x", "example.org/hook", "http://", "javascript:alert(1)"] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
        assert_eq!(check_url("HTTPS://Example.ORG/h?x=1", false).unwrap(), "https://example.org/h?x=1");
        assert_eq!(check_url("http://93.184.216.34:8080/h", false).unwrap(), "http://93.184.216.34:8080/h");
        // Public addresses in the IPv6 forms that embed IPv4 ones stay allowed.
        for good in ["http://[64:ff9b::5db8:d822]/", "http://[2002:5db8:d822::1]/", "http://[2606:4700::1111]/"] {
            assert!(check_url(good, false).is_ok(), "{good} refused");
        }
    }

    /// The client deliveries go out with, end to end over loopback: with private targets off,
    /// a name resolving to loopback is never connected to (the listener sees nothing) and the
    /// attempt says why; with them on, the same request reaches the listener.
    #[tokio::test]
    async fn the_delivery_client_does_not_reach_a_name_that_resolves_to_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://localhost:{}/hook", listener.local_addr().unwrap().port());
        let settings = |allow: bool| crate::settings::WebhookSettings {
            enabled: true,
            poll_ms: 100,
            timeout_secs: 2,
            retry_base_secs: 1,
            retry_max_secs: 1,
            max_attempts: 1,
            allow_private_targets: allow,
            retention_days: 30,
        };
        let refused = delivery_client(&settings(false)).unwrap().post(&url).body("{}").send().await.unwrap_err();
        assert_eq!(send_error(&refused), "refused: the host resolves to a loopback or private address");
        let none = tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(none.is_err(), "a connection reached the listener");
        let allowed = tokio::spawn(delivery_client(&settings(true)).unwrap().post(&url).body("{}").send());
        let (conn, _) = tokio::time::timeout(std::time::Duration::from_secs(5), listener.accept())
            .await
            .expect("connected when allowed")
            .unwrap();
        drop(conn);
        allowed.abort();
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // The expected value computed independently, with Python's hmac module.
        let s = signature("whsec_test", 1_800_000_000, "{\"a\":1}");
        assert_eq!(s, "t=1800000000,v1=7de5e6bbc99c65ef0ddccacd4308ba03a5a12eb8859a0db070c5ca731c4fdc19");
    }
}
