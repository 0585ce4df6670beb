//! What use cases return: serializable views of stored rows, with domain types instead of
//! stored strings and RFC 3339 UTC timestamps.

use crate::auth::Scope;
use crate::error::{AppError, AppResult};
use crate::utc;
use caseflow_core::*;
use caseflow_store::models::*;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Parses a stored enum; a failure means the database holds a value this build does not know.
pub(crate) fn stored<T: std::str::FromStr>(column: &str, v: &str) -> AppResult<T> {
    v.parse::<T>().map_err(|_| AppError::Internal(format!("unexpected stored value in {column}")))
}

/// A case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    pub id: CaseId,
    pub number: i64,
    pub subject: String,
    pub status: CaseStatus,
    pub priority: Priority,
    pub channel: Channel,
    pub customer_id: CustomerId,
    pub team_id: Option<TeamId>,
    pub assignee_id: Option<AgentId>,
    pub linked_case_id: Option<CaseId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub solved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The topic picked on the web form or in the chat widget (a key of `web_form.topics`).
    pub topic: Option<String>,
    /// Since when the case waits for an agent (unassigned and active); routing serves by it.
    pub waiting_since: Option<DateTime<Utc>>,
    /// A pinned case stays with its assignee: routing never moves it.
    pub pinned: bool,
    /// Optimistic-concurrency version; send it back (or as `If-Match`) when updating.
    pub version: i64,
}

impl TryFrom<CaseRow> for CaseView {
    type Error = AppError;
    fn try_from(r: CaseRow) -> AppResult<Self> {
        Ok(Self {
            status: stored("cases.status", &r.status)?,
            priority: stored("cases.priority", &r.priority)?,
            channel: stored("cases.channel", &r.channel)?,
            id: CaseId::new(r.id),
            number: r.number,
            subject: r.subject,
            customer_id: CustomerId::new(r.customer_id),
            team_id: r.team_id.map(TeamId::new),
            assignee_id: r.assignee_id.map(AgentId::new),
            linked_case_id: r.linked_case_id.map(CaseId::new),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            last_message_at: utc(r.last_message_at),
            first_response_at: r.first_response_at.map(utc),
            solved_at: r.solved_at.map(utc),
            closed_at: r.closed_at.map(utc),
            topic: r.topic,
            waiting_since: r.waiting_since.map(utc),
            pinned: r.pinned,
            version: r.version,
        })
    }
}

/// A case with its customer's summary.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseView,
    pub customer: CustomerSummary,
}

/// The customer fields shown next to a case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerSummary {
    pub id: CustomerId,
    pub name: String,
    pub tier: Tier,
}

/// An attachment's metadata.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    pub id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub inline_cid: Option<String>,
}

impl From<AttachmentMeta> for AttachmentView {
    fn from(a: AttachmentMeta) -> Self {
        Self {
            id: AttachmentId::new(a.id),
            filename: a.filename,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            inline_cid: a.inline_cid,
        }
    }
}

/// A message on a case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: MessageId,
    pub case_id: CaseId,
    pub direction: MessageDirection,
    pub channel: Channel,
    pub author_kind: ActorKind,
    pub author_id: Option<String>,
    pub body_text: String,
    /// Sanitized HTML, when the message had an HTML part.
    pub body_html: Option<String>,
    /// For email: the whole text including quoted history, when `body_text` holds only the
    /// new part.
    pub body_full: Option<String>,
    pub external_id: Option<String>,
    /// For outbound messages: queued, sent or failed.
    pub delivery_status: Option<String>,
    /// For outbound messages: why the last delivery attempt failed (SMTP reply or bounce).
    pub delivery_error: Option<String>,
    /// For threaded inbound email: which threading rule matched.
    pub thread_rule: Option<String>,
    /// Position in the case's live conversation (chat, web form, API), dense from 1; absent
    /// for messages that arrived by email.
    pub seq: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub attachments: Vec<AttachmentView>,
}

impl MessageView {
    pub(crate) fn from_row(r: MessageRow, attachments: Vec<AttachmentView>) -> AppResult<Self> {
        // A satisfaction survey's links are the customer's to answer: the desk sees them
        // masked (ADR 0014), in the survey and in any reply that quotes it.
        let mask = crate::satisfaction::mask_links;
        Ok(Self {
            direction: stored("messages.direction", &r.direction)?,
            channel: stored("messages.channel", &r.channel)?,
            author_kind: stored("messages.author_kind", &r.author_kind)?,
            id: MessageId::new(r.id),
            case_id: CaseId::new(r.case_id),
            author_id: r.author_id,
            body_text: mask(&r.body_text),
            body_html: r.body_html.as_deref().map(mask),
            body_full: r.body_full.as_deref().map(mask),
            external_id: r.external_id,
            delivery_status: r.delivery_status,
            delivery_error: r.delivery_error,
            thread_rule: r.thread_rule,
            seq: r.seq,
            created_at: utc(r.created_at),
            attachments,
        })
    }
}

/// An audit-log entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: EventId,
    pub kind: String,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<CaseEventRow> for EventView {
    type Error = AppError;
    fn try_from(r: CaseEventRow) -> AppResult<Self> {
        Ok(Self {
            actor_kind: stored("case_events.actor_kind", &r.actor_kind)?,
            id: EventId::new(r.id),
            kind: r.kind,
            actor_id: r.actor_id,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
            created_at: utc(r.created_at),
        })
    }
}

impl TryFrom<AgentEventRow> for EventView {
    type Error = AppError;
    fn try_from(r: AgentEventRow) -> AppResult<Self> {
        Ok(Self {
            actor_kind: stored("agent_events.actor_kind", &r.actor_kind)?,
            id: EventId::new(r.id),
            kind: r.kind,
            actor_id: r.actor_id,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
            created_at: utc(r.created_at),
        })
    }
}

impl TryFrom<CustomerEventRow> for EventView {
    type Error = AppError;
    fn try_from(r: CustomerEventRow) -> AppResult<Self> {
        Ok(Self {
            actor_kind: stored("customer_events.actor_kind", &r.actor_kind)?,
            id: EventId::new(r.id),
            kind: r.kind,
            actor_id: r.actor_id,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
            created_at: utc(r.created_at),
        })
    }
}

/// A customer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub id: CustomerId,
    pub name: String,
    pub tier: Tier,
    /// Customer value figure used by routing (e.g. annual revenue in whole currency units).
    pub value: i64,
    pub notes: String,
    /// Set when this customer was merged into another; follow it.
    pub merged_into: Option<CustomerId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl TryFrom<CustomerRow> for CustomerView {
    type Error = AppError;
    fn try_from(r: CustomerRow) -> AppResult<Self> {
        Ok(Self {
            tier: stored("customers.tier", &r.tier)?,
            id: CustomerId::new(r.id),
            name: r.name,
            value: r.value,
            notes: r.notes,
            merged_into: r.merged_into.map(CustomerId::new),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        })
    }
}

/// One of a customer's identities.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityView {
    pub id: IdentityId,
    pub kind: IdentityKind,
    pub value: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<IdentityRow> for IdentityView {
    type Error = AppError;
    fn try_from(r: IdentityRow) -> AppResult<Self> {
        Ok(Self {
            kind: stored("customer_identities.kind", &r.kind)?,
            id: IdentityId::new(r.id),
            value: r.value,
            created_at: utc(r.created_at),
        })
    }
}

/// A customer with every identity, their cases across channels and their audit log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: CustomerView,
    pub identities: Vec<IdentityView>,
    /// Most recent first, from every channel.
    pub cases: Vec<CaseView>,
    pub events: Vec<EventView>,
}

/// An agent's level in a skill.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentSkillView {
    pub skill_id: SkillId,
    pub level: i32,
}

/// A staff user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub team_id: Option<TeamId>,
    pub presence: Presence,
    pub presence_changed_at: DateTime<Utc>,
    /// Most active cases this agent works at once on a channel without its own capacity.
    pub max_load: i32,
    pub active: bool,
    pub skills: Vec<AgentSkillView>,
    /// Per-channel capacities that override `max_load`.
    pub capacities: Vec<ChannelCapacity>,
    /// When routing last assigned this agent a case.
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How many active cases an agent takes on one channel.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelCapacity {
    pub channel: Channel,
    #[schema(minimum = 0, maximum = 1000)]
    pub capacity: i32,
}

impl AgentView {
    pub(crate) fn from_row(
        r: AgentRow,
        skills: Vec<AgentSkillView>,
        capacities: Vec<ChannelCapacity>,
    ) -> AppResult<Self> {
        Ok(Self {
            role: stored("agents.role", &r.role)?,
            presence: stored("agents.presence", &r.presence)?,
            id: AgentId::new(r.id),
            email: r.email,
            name: r.name,
            team_id: r.team_id.map(TeamId::new),
            presence_changed_at: utc(r.presence_changed_at),
            max_load: r.max_load,
            active: r.active,
            skills,
            capacities,
            last_assigned_at: r.last_assigned_at.map(utc),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        })
    }
}

/// A team.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: TeamId,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TeamRow> for TeamView {
    fn from(r: TeamRow) -> Self {
        Self {
            id: TeamId::new(r.id),
            name: r.name,
            description: r.description,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

/// A skill.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SkillView {
    pub id: SkillId,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

impl From<SkillRow> for SkillView {
    fn from(r: SkillRow) -> Self {
        Self { id: SkillId::new(r.id), name: r.name, description: r.description, created_at: utc(r.created_at) }
    }
}

/// An integrator API token (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiTokenView {
    pub id: ApiTokenId,
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: Option<AgentId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiTokenRow> for ApiTokenView {
    type Error = AppError;
    fn try_from(r: ApiTokenRow) -> AppResult<Self> {
        Ok(Self {
            scopes: parse_scopes(&r.scopes)?,
            id: ApiTokenId::new(r.id),
            name: r.name,
            prefix: r.token_prefix,
            created_by: r.created_by.map(AgentId::new),
            created_at: utc(r.created_at),
            last_used_at: r.last_used_at.map(utc),
            revoked_at: r.revoked_at.map(utc),
        })
    }
}

pub(crate) fn parse_scopes(s: &str) -> AppResult<Vec<Scope>> {
    s.split_whitespace().map(Scope::parse).collect()
}

/// A token just created: the only time its plaintext is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiToken {
    /// The bearer token. Store it now; it cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiTokenView,
}

/// A successful login.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginView {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub agent: AgentView,
}

/// A browser session (the session token itself travels only in an HttpOnly cookie).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub agent: AgentView,
    /// Send back as `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
    /// Seconds until the session ends.
    pub expires_in: i64,
}
