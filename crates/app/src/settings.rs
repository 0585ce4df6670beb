//! Typed, validated configuration: `config/default.toml`, then an optional file, then
//! `CASEFLOW__SECTION__KEY` environment variables.

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// The documented defaults, compiled in so that every key always has a value.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// A configuration value that must never be printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub logging: LoggingSettings,
    pub limits: LimitSettings,
    pub api: ApiSettings,
    pub rate_limit: RateLimitSettings,
    pub metrics: MetricsSettings,
    pub email: EmailSettings,
    pub smtp: SmtpSettings,
    pub web_form: WebFormSettings,
    pub chat: ChatSettings,
    pub routing: RoutingSettings,
    pub sla: SlaSettings,
    pub webhooks: WebhookSettings,
    pub satisfaction: SatisfactionSettings,
    pub clock: ClockSettings,
    pub demo: DemoSettings,
}

/// The SLA scheduler; see `config/default.toml` and `docs/sla.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    pub enabled: bool,
    pub tick_ms: u64,
    pub batch: u32,
    pub catch_up_secs: u64,
    pub stream_poll_ms: u64,
    /// The acknowledgement of a new email case (`{name}`, `{number}`, `{subject}`,
    /// `{expected}`); empty: none.
    pub acknowledgement: String,
}

/// Webhook delivery; see `config/default.toml` and `docs/webhooks.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub enabled: bool,
    pub poll_ms: u64,
    pub timeout_secs: u64,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub max_attempts: u32,
    pub allow_private_targets: bool,
    /// Days a finished delivery (delivered, or failed for good) stays in the delivery log;
    /// 0 keeps them forever.
    pub retention_days: u32,
}

/// Customer satisfaction surveys; see `config/default.toml` and `docs/satisfaction.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionSettings {
    pub enabled: bool,
    /// How long after a case is solved its survey is sent (a reopen within it cancels).
    pub delay_secs: u64,
    /// Cases solved longer ago than `delay_secs` + this are not surveyed (an upgrade, an
    /// outage).
    pub window_secs: u64,
    /// How long the customer may answer (and change the answer).
    pub valid_days: u32,
    pub tick_ms: u64,
    pub batch: u32,
    /// The survey (`{name}`, `{number}`, `{subject}`, `{link}`, `{good_link}`, `{bad_link}`).
    pub template: String,
}

/// This node's clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    pub offset_secs: i64,
}

/// Automatic assignment; see `config/default.toml` and `docs/routing.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    pub enabled: bool,
    pub strategy: caseflow_routing::Strategy,
    pub fairness_after_secs: u64,
    pub sla_risk_secs: u64,
    pub priority_points: i64,
    pub tier_points: i64,
    pub value_unit: i64,
    pub value_cap_points: i64,
    pub aging_points_per_minute: i64,
    pub relax_optional_after_secs: u64,
    pub widen_team_after_secs: u64,
    pub escalate_after_secs: u64,
    pub reroute_on_away: bool,
    pub poll_ms: u64,
    pub resync_secs: u64,
    pub leader_retry_secs: u64,
    pub single_leader: bool,
    pub offer_timeout_secs: u64,
    pub offer_refused_presence: caseflow_core::Presence,
}

/// A topic customers pick on the web form or in the chat widget.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// Stored on the case (`cases.topic`); letters, digits, `-` and `_`.
    pub key: String,
    /// What the customer sees.
    pub label: String,
    /// Skill names routing requires for cases on this topic.
    #[serde(default)]
    pub skills: Vec<String>,
    /// The team (by name) cases on this topic go to; none: routing's default.
    #[serde(default)]
    pub team: Option<String>,
    /// The priority cases on this topic open with (default normal).
    #[serde(default)]
    pub priority: Option<caseflow_core::Priority>,
    /// Alert the team's supervisors (every supervisor for a topic without a team) when a case
    /// opens on this topic: complaints reach someone who can act at once.
    #[serde(default)]
    pub alert_supervisors: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFormSettings {
    pub enabled: bool,
    pub title: String,
    pub topics: Vec<TopicSettings>,
    pub per_ip_per_minute: u32,
    pub per_ip_burst: u32,
    pub max_attachments: usize,
    pub max_upload_bytes: usize,
    pub acknowledgement: String,
}

impl WebFormSettings {
    /// The topic with this key.
    pub fn topic(&self, key: &str) -> Option<&TopicSettings> {
        self.topics.iter().find(|t| t.key == key)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    pub enabled: bool,
    pub email_after_secs: u64,
    pub greeting: String,
    pub max_message_bytes: usize,
    pub visitor_messages_per_minute: u32,
    pub heartbeat_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub support_addresses: Vec<String>,
    pub message_id_domain: String,
    pub subject_tag_prefix: String,
    pub loop_header: String,
    pub max_message_bytes: usize,
    pub from_address: String,
    pub from_name: String,
    pub mailboxes: Vec<MailboxSettings>,
}

/// How a mail connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS before logging in (IMAP 143, submission 587).
    Starttls,
    /// No encryption: allowed only to a loopback host.
    Plain,
}

/// What the poller does with a message once its case is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Processed {
    /// Flag it `\Seen` and leave it in the folder.
    Seen,
    /// Move it to `move_to`.
    Move,
}

/// One IMAP mailbox to read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    #[serde(default = "empty_secret")]
    pub password: Secret,
    #[serde(default)]
    pub password_env: String,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default = "default_processed")]
    pub processed: Processed,
    #[serde(default)]
    pub move_to: String,
    #[serde(default = "default_true")]
    pub idle: bool,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u64,
    #[serde(default)]
    pub ca_file: String,
}

impl MailboxSettings {
    /// The password: from `password_env` when set, else `password`.
    pub fn password(&self) -> Secret {
        if self.password_env.is_empty() {
            self.password.clone()
        } else {
            Secret::new(std::env::var(&self.password_env).unwrap_or_default())
        }
    }
}

fn empty_secret() -> Secret {
    Secret::new("")
}
fn default_folder() -> String {
    "INBOX".into()
}
fn default_processed() -> Processed {
    Processed::Seen
}
fn default_true() -> bool {
    true
}
fn default_poll_secs() -> u64 {
    30
}
fn default_batch() -> u32 {
    500
}
fn default_batch_bytes() -> u64 {
    32 << 20
}

/// Outbound mail and the outbox dispatcher that sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password: Secret,
    pub timeout_secs: u64,
    pub ca_file: String,
    pub max_attempts: i32,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub batch_size: i64,
}

impl SmtpSettings {
    /// Whether outbound mail is configured at all.
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub idempotency_ttl_secs: u64,
    pub idempotency_lock_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub per_token_per_minute: u32,
    pub per_token_burst: u32,
    pub per_ip_per_minute: u32,
    pub per_ip_burst: u32,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub bind: String,
    pub token: Secret,
}

/// Development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub environment: RunMode,
    pub public_url: String,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    pub sqlite_busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub jwt_ttl_secs: u64,
    pub issuer: String,
    /// Lifetime of a browser session (the HttpOnly cookie the agent inbox uses), in seconds.
    pub session_ttl_secs: u64,
    /// Mark session cookies `Secure` even on plain-HTTP requests (set behind a TLS proxy
    /// that does not say so in `X-Forwarded-Proto`); HTTPS requests always get `Secure`.
    pub cookie_secure: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
    pub max_attachment_bytes: usize,
    pub default_page_size: i64,
    pub max_page_size: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub seed_when_empty: bool,
    pub password: Secret,
}

/// Why configuration was refused. The message always names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key, message: message.into() }
}

impl Settings {
    /// Loads settings from the defaults, `file` if given, and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(file, None)
    }

    /// Like [`Settings::load`] but reading `CASEFLOW__*` variables from `env` instead of the
    /// process environment when given (for tests).
    pub fn load_with_env(file: Option<&Path>, env: Option<HashMap<String, String>>) -> Result<Self, SettingsError> {
        let mut b = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::Load(format!("config file {} does not exist", path.display())));
            }
            b = b.add_source(File::from(path).required(true));
        }
        b = b.add_source(Environment::with_prefix("CASEFLOW").prefix_separator("__").separator("__").source(env));
        let cfg = b.build().map_err(|e| SettingsError::Load(e.to_string()))?;
        let s: Settings = cfg.try_deserialize().map_err(|e| SettingsError::Load(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks values the types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.server
            .bind
            .parse::<SocketAddr>()
            .map_err(|e| invalid("server.bind", format!("{:?} is not HOST:PORT ({e})", self.server.bind)))?;
        if !(self.server.public_url.starts_with("http://") || self.server.public_url.starts_with("https://")) {
            return Err(invalid("server.public_url", "must start with http:// or https://"));
        }
        caseflow_store::DbUrl::parse(self.database.url.expose()).map_err(|e| invalid("database.url", e.to_string()))?;
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.auth.jwt_secret.expose().len() < 32 {
            return Err(invalid("auth.jwt_secret", "must be at least 32 characters"));
        }
        if self.server.environment == RunMode::Production && self.auth.jwt_secret == default_settings_secret() {
            return Err(invalid(
                "auth.jwt_secret",
                "production mode refuses the default development secret; set CASEFLOW__AUTH__JWT_SECRET",
            ));
        }
        if !(60..=86_400).contains(&self.auth.jwt_ttl_secs) {
            return Err(invalid("auth.jwt_ttl_secs", "must be between 60 and 86400"));
        }
        if !(300..=7 * 86_400).contains(&self.auth.session_ttl_secs) {
            return Err(invalid("auth.session_ttl_secs", "must be between 300 and 604800"));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(invalid("limits.max_body_bytes", "must be at least 1024"));
        }
        if self.limits.max_message_bytes == 0 || self.limits.max_message_bytes > self.limits.max_body_bytes {
            return Err(invalid("limits.max_message_bytes", "must be between 1 and limits.max_body_bytes"));
        }
        if self.limits.max_page_size < 1 || self.limits.max_page_size > 1000 {
            return Err(invalid("limits.max_page_size", "must be between 1 and 1000"));
        }
        if self.limits.default_page_size < 1 || self.limits.default_page_size > self.limits.max_page_size {
            return Err(invalid("limits.default_page_size", "must be between 1 and limits.max_page_size"));
        }
        if !(60..=7 * 86_400).contains(&self.api.idempotency_ttl_secs) {
            return Err(invalid("api.idempotency_ttl_secs", "must be between 60 and 604800"));
        }
        if !(1..=3600).contains(&self.api.idempotency_lock_secs) {
            return Err(invalid("api.idempotency_lock_secs", "must be between 1 and 3600"));
        }
        let r = &self.rate_limit;
        for (key, v) in [
            ("rate_limit.per_token_per_minute", r.per_token_per_minute),
            ("rate_limit.per_token_burst", r.per_token_burst),
            ("rate_limit.per_ip_per_minute", r.per_ip_per_minute),
            ("rate_limit.per_ip_burst", r.per_ip_burst),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.metrics.enabled {
            if self.metrics.bind.is_empty() {
                if self.metrics.token.expose().len() < 16 {
                    return Err(invalid(
                        "metrics.token",
                        "must be at least 16 characters when metrics are served on the main port (metrics.bind = \"\")",
                    ));
                }
            } else if self.metrics.bind.parse::<SocketAddr>().is_err() {
                return Err(invalid("metrics.bind", format!("{:?} is not HOST:PORT", self.metrics.bind)));
            }
        }
        for a in &self.email.support_addresses {
            caseflow_core::EmailAddress::parse(a)
                .map_err(|e| invalid("email.support_addresses", format!("{a:?}: {e}")))?;
        }
        let d = &self.email.message_id_domain;
        if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return Err(invalid("email.message_id_domain", "must be a domain name"));
        }
        if self.email.subject_tag_prefix.is_empty() || self.email.subject_tag_prefix.contains(']') {
            return Err(invalid("email.subject_tag_prefix", "must be non-empty and must not contain ']'"));
        }
        if self.email.loop_header.is_empty()
            || !self.email.loop_header.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("email.loop_header", "must be a header name"));
        }
        if self.email.max_message_bytes < 1024 {
            return Err(invalid("email.max_message_bytes", "must be at least 1024"));
        }
        caseflow_core::EmailAddress::parse(&self.email.from_address)
            .map_err(|e| invalid("email.from_address", e.to_string()))?;
        if self.email.from_name.contains(['\r', '\n']) {
            return Err(invalid("email.from_name", "must be one line"));
        }
        let mut names = std::collections::HashSet::new();
        for m in &self.email.mailboxes {
            let bad = |msg: &str| invalid("email.mailboxes", format!("mailbox {:?}: {msg}", m.name));
            if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad("name must be non-empty letters, digits, '-' or '_'"));
            }
            if !names.insert(m.name.as_str()) {
                return Err(bad("name is used twice"));
            }
            if m.host.is_empty() || m.port == 0 || m.username.is_empty() {
                return Err(bad("host, port and username are required"));
            }
            if m.tls == TlsMode::Plain && !is_loopback_host(&m.host) {
                return Err(bad("tls = \"plain\" is allowed only to a loopback host"));
            }
            if m.processed == Processed::Move && m.move_to.is_empty() {
                return Err(bad("processed = \"move\" needs move_to"));
            }
            if m.batch_size == 0 || m.batch_size > 1000 {
                return Err(bad("batch_size must be between 1 and 1000"));
            }
            if m.batch_bytes < 1 << 20 {
                return Err(bad("batch_bytes must be at least 1 MiB"));
            }
            if m.poll_interval_secs == 0 {
                return Err(bad("poll_interval_secs must be at least 1"));
            }
        }
        let smtp = &self.smtp;
        if smtp.enabled() && smtp.tls == TlsMode::Plain && !is_loopback_host(&smtp.host) {
            return Err(invalid("smtp.tls", "\"plain\" is allowed only to a loopback host"));
        }
        if smtp.max_attempts < 1 {
            return Err(invalid("smtp.max_attempts", "must be at least 1"));
        }
        if smtp.retry_base_secs == 0 || smtp.retry_max_secs < smtp.retry_base_secs {
            return Err(invalid(
                "smtp.retry_max_secs",
                "must be at least smtp.retry_base_secs, which must be at least 1",
            ));
        }
        if smtp.lease_secs < smtp.timeout_secs.saturating_mul(2) {
            return Err(invalid("smtp.lease_secs", "must be at least twice smtp.timeout_secs"));
        }
        if !(1..=1000).contains(&smtp.batch_size) {
            return Err(invalid("smtp.batch_size", "must be between 1 and 1000"));
        }
        self.validate_channels()?;
        if tracing_filter_is_empty(&self.logging.filter) {
            return Err(invalid("logging.filter", "must not be empty"));
        }
        Ok(())
    }

    fn validate_channels(&self) -> Result<(), SettingsError> {
        let w = &self.web_form;
        let mut keys = std::collections::HashSet::new();
        for t in &w.topics {
            let ok = !t.key.is_empty()
                && t.key.len() <= 64
                && t.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(invalid("web_form.topics", format!("key {:?}: use 1-64 letters, digits, - or _", t.key)));
            }
            if !keys.insert(t.key.as_str()) {
                return Err(invalid("web_form.topics", format!("key {:?} is listed twice", t.key)));
            }
            if t.label.trim().is_empty() {
                return Err(invalid("web_form.topics", format!("topic {:?} needs a label", t.key)));
            }
            if t.team.as_deref().is_some_and(|n| n.trim().is_empty()) {
                return Err(invalid("web_form.topics", format!("topic {:?}: team must name a team", t.key)));
            }
        }
        if w.per_ip_per_minute == 0 || w.per_ip_burst == 0 {
            return Err(invalid("web_form.per_ip_per_minute", "limits must be at least 1"));
        }
        if w.max_upload_bytes < self.limits.max_message_bytes {
            return Err(invalid("web_form.max_upload_bytes", "must be at least limits.max_message_bytes"));
        }
        let c = &self.chat;
        if c.max_message_bytes == 0 || c.max_message_bytes > self.limits.max_message_bytes {
            return Err(invalid("chat.max_message_bytes", "must be between 1 and limits.max_message_bytes"));
        }
        if c.visitor_messages_per_minute == 0 {
            return Err(invalid("chat.visitor_messages_per_minute", "must be at least 1"));
        }
        if c.email_after_secs > 30 * 86_400 {
            return Err(invalid("chat.email_after_secs", "must be at most 2592000 (30 days)"));
        }
        if !(1..=300).contains(&c.heartbeat_secs) {
            return Err(invalid("chat.heartbeat_secs", "must be between 1 and 300"));
        }
        let r = &self.routing;
        if !(10..=60_000).contains(&r.poll_ms) {
            return Err(invalid("routing.poll_ms", "must be between 10 and 60000"));
        }
        if !(1..=86_400).contains(&r.resync_secs) {
            return Err(invalid("routing.resync_secs", "must be between 1 and 86400"));
        }
        if !(1..=3_600).contains(&r.leader_retry_secs) {
            return Err(invalid("routing.leader_retry_secs", "must be between 1 and 3600"));
        }
        let week = 7 * 86_400;
        for (key, v) in [
            ("routing.fairness_after_secs", r.fairness_after_secs),
            ("routing.sla_risk_secs", r.sla_risk_secs),
            ("routing.relax_optional_after_secs", r.relax_optional_after_secs),
            ("routing.widen_team_after_secs", r.widen_team_after_secs),
            ("routing.escalate_after_secs", r.escalate_after_secs),
        ] {
            if v > week {
                return Err(invalid(key, "must be at most 604800 (a week)"));
            }
        }
        for (key, v) in [
            ("routing.priority_points", r.priority_points),
            ("routing.tier_points", r.tier_points),
            ("routing.value_cap_points", r.value_cap_points),
            ("routing.aging_points_per_minute", r.aging_points_per_minute),
        ] {
            if !(0..=1_000_000).contains(&v) {
                return Err(invalid(key, "must be between 0 and 1000000"));
            }
        }
        if r.offer_timeout_secs > 3_600 {
            return Err(invalid("routing.offer_timeout_secs", "must be at most 3600 (0 turns offers off)"));
        }
        if r.value_unit < 1 {
            return Err(invalid("routing.value_unit", "must be at least 1"));
        }
        let s = &self.sla;
        if !(10..=60_000).contains(&s.tick_ms) {
            return Err(invalid("sla.tick_ms", "must be between 10 and 60000"));
        }
        if !(1..=10_000).contains(&s.batch) {
            return Err(invalid("sla.batch", "must be between 1 and 10000"));
        }
        if s.catch_up_secs > 30 * 86_400 {
            return Err(invalid("sla.catch_up_secs", "must be at most 2592000 (30 days)"));
        }
        if !(50..=60_000).contains(&s.stream_poll_ms) {
            return Err(invalid("sla.stream_poll_ms", "must be between 50 and 60000"));
        }
        let w = &self.webhooks;
        if !(50..=60_000).contains(&w.poll_ms) {
            return Err(invalid("webhooks.poll_ms", "must be between 50 and 60000"));
        }
        if !(1..=60).contains(&w.timeout_secs) {
            return Err(invalid("webhooks.timeout_secs", "must be between 1 and 60"));
        }
        if w.retry_base_secs == 0 || w.retry_max_secs < w.retry_base_secs || w.retry_max_secs > 86_400 {
            return Err(invalid("webhooks.retry_max_secs", "need 1 <= retry_base_secs <= retry_max_secs <= 86400"));
        }
        if !(1..=50).contains(&w.max_attempts) {
            return Err(invalid("webhooks.max_attempts", "must be between 1 and 50"));
        }
        if w.retention_days > 36_500 {
            return Err(invalid("webhooks.retention_days", "must be between 0 (keep forever) and 36500"));
        }
        let c = &self.satisfaction;
        if c.delay_secs > 30 * 86_400 {
            return Err(invalid("satisfaction.delay_secs", "must be at most 2592000 (30 days)"));
        }
        if !(60..=90 * 86_400).contains(&c.window_secs) {
            return Err(invalid("satisfaction.window_secs", "must be between 60 and 7776000 (90 days)"));
        }
        if !(1..=365).contains(&c.valid_days) {
            return Err(invalid("satisfaction.valid_days", "must be between 1 and 365"));
        }
        if !(100..=600_000).contains(&c.tick_ms) {
            return Err(invalid("satisfaction.tick_ms", "must be between 100 and 600000"));
        }
        if !(1..=10_000).contains(&c.batch) {
            return Err(invalid("satisfaction.batch", "must be between 1 and 10000"));
        }
        if c.window_secs.saturating_mul(1000) < c.tick_ms.saturating_mul(2) {
            return Err(invalid("satisfaction.window_secs", "must cover at least two rounds (2 × tick_ms)"));
        }
        if c.enabled && !["{link}", "{good_link}", "{bad_link}"].iter().any(|p| c.template.contains(p)) {
            return Err(invalid("satisfaction.template", "must contain {link}, {good_link} or {bad_link}"));
        }
        if self.clock.offset_secs != 0 && self.server.environment == RunMode::Production {
            return Err(invalid("clock.offset_secs", "a shifted clock is for demos and tests, not production"));
        }
        if self.clock.offset_secs.unsigned_abs() > 10 * 365 * 86_400 {
            return Err(invalid("clock.offset_secs", "must be within ten years"));
        }
        Ok(())
    }

    /// The parsed bind address (validated at load).
    pub fn bind_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.server.bind.parse().map_err(|_| invalid("server.bind", "not HOST:PORT"))
    }
}

fn tracing_filter_is_empty(f: &str) -> bool {
    f.trim().is_empty()
}

fn default_settings_secret() -> Secret {
    // Parse the compiled-in defaults to learn the development secret without repeating it.
    #[derive(Deserialize)]
    struct Auth {
        jwt_secret: Secret,
    }
    #[derive(Deserialize)]
    struct Partial {
        auth: Auth,
    }
    Config::builder()
        .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
        .build()
        .ok()
        .and_then(|c| c.try_deserialize::<Partial>().ok())
        .map(|p| p.auth.jwt_secret)
        .unwrap_or_else(|| Secret::new(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.server.environment, RunMode::Development);
        assert_eq!(s.limits.default_page_size, 25);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let s = Settings::load_with_env(
            None,
            env(&[("CASEFLOW__SERVER__BIND", "0.0.0.0:9999"), ("CASEFLOW__LIMITS__MAX_PAGE_SIZE", "50")]),
        )
        .unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9999");
        assert_eq!(s.limits.max_page_size, 50);
    }

    #[test]
    fn unknown_key_fails_naming_it() {
        let err = Settings::load_with_env(None, env(&[("CASEFLOW__SERVER__BINDD", "x")])).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn wrong_type_fails_naming_the_key() {
        let err = Settings::load_with_env(None, env(&[("CASEFLOW__DATABASE__MAX_CONNECTIONS", "lots")])).unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let cases = [
            ("CASEFLOW__SERVER__BIND", "nonsense", "server.bind"),
            ("CASEFLOW__DATABASE__URL", "mysql://x/y", "database.url"),
            ("CASEFLOW__AUTH__JWT_SECRET", "short", "auth.jwt_secret"),
            ("CASEFLOW__LIMITS__DEFAULT_PAGE_SIZE", "500", "limits.default_page_size"),
            ("CASEFLOW__SATISFACTION__VALID_DAYS", "0", "satisfaction.valid_days"),
            ("CASEFLOW__SATISFACTION__WINDOW_SECS", "100", "satisfaction.window_secs"),
            ("CASEFLOW__SATISFACTION__TEMPLATE", "How did we do?", "satisfaction.template"),
        ];
        for (k, v, key) in cases {
            let err = Settings::load_with_env(None, env(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(key), "{k}={v}: {err}");
        }
    }

    #[test]
    fn production_refuses_the_default_secret() {
        let err = Settings::load_with_env(None, env(&[("CASEFLOW__SERVER__ENVIRONMENT", "production")])).unwrap_err();
        assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
        let ok = Settings::load_with_env(
            None,
            env(&[
                ("CASEFLOW__SERVER__ENVIRONMENT", "production"),
                ("CASEFLOW__AUTH__JWT_SECRET", "a-real-production-secret-of-enough-length"),
            ]),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("development-only-secret"), "{printed}");
        assert!(!printed.contains("caseflow-demo"), "{printed}");
    }

    #[test]
    fn a_config_file_overrides_defaults_and_a_missing_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("caseflow-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[server]\nbind = \"127.0.0.1:7000\"\n").unwrap();
        let s = Settings::load_with_env(Some(&path), env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:7000");
        assert!(Settings::load_with_env(Some(&dir.join("missing.toml")), env(&[])).is_err());
    }
}
