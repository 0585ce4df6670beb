//! Row types, one per table. Enums are stored as their snake_case text; conversion to domain
//! types happens in `caseflow-app`.

use crate::schema::*;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A team of agents.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = teams, treat_none_as_null = true)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A skill agents can have and cases can require.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = skills, treat_none_as_null = true)]
pub struct SkillRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

/// A staff user.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = agents, treat_none_as_null = true)]
pub struct AgentRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub team_id: Option<String>,
    pub presence: String,
    pub presence_changed_at: NaiveDateTime,
    pub max_load: i32,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Written only by routing (`touch_agent`): a whole-row update of the agent must not
    /// overwrite a newer value with the one it read.
    #[diesel(skip_update)]
    pub last_assigned_at: Option<NaiveDateTime>,
}

/// An agent's level in a skill.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = agent_skills)]
pub struct AgentSkillRow {
    pub agent_id: String,
    pub skill_id: String,
    pub level: i32,
}

/// An integrator API token; only its hash is stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    pub token_prefix: String,
    pub token_hash: String,
    pub scopes: String,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// A customer.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_null = true)]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub value: i64,
    pub notes: String,
    pub merged_into: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// One way of recognising a customer.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = customer_identities)]
pub struct IdentityRow {
    pub id: String,
    pub customer_id: String,
    pub kind: String,
    pub value: String,
    pub created_at: NaiveDateTime,
}

/// An audit event on a customer (merge, identity changes).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = customer_events)]
pub struct CustomerEventRow {
    pub id: String,
    pub customer_id: String,
    pub kind: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// A case.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cases, treat_none_as_null = true)]
pub struct CaseRow {
    pub id: String,
    pub number: i64,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub channel: String,
    pub customer_id: String,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub linked_case_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_message_at: NaiveDateTime,
    pub first_response_at: Option<NaiveDateTime>,
    pub solved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub version: i64,
    pub topic: Option<String>,
    /// When the case last started waiting for an agent (routing serves by it).
    pub waiting_since: Option<NaiveDateTime>,
    /// Stays with its assignee: never re-routed automatically.
    pub pinned: bool,
}

/// A message on a case: inbound, outbound or internal note.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: String,
    pub case_id: String,
    pub direction: String,
    pub channel: String,
    pub author_kind: String,
    pub author_id: Option<String>,
    pub body_text: String,
    pub body_html: Option<String>,
    pub external_id: Option<String>,
    pub message_id_header: Option<String>,
    pub in_reply_to: Option<String>,
    pub references_header: Option<String>,
    pub thread_rule: Option<String>,
    pub delivery_status: Option<String>,
    pub created_at: NaiveDateTime,
    pub body_full: Option<String>,
    pub delivery_error: Option<String>,
    /// Position in the case's live conversation (chat); `None` for email-only messages.
    pub seq: Option<i64>,
}

/// Attachment metadata (content is loaded separately).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attachments)]
pub struct AttachmentMeta {
    pub id: String,
    pub message_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub inline_cid: Option<String>,
    pub created_at: NaiveDateTime,
}

/// An attachment with its content, for inserts.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = attachments)]
pub struct NewAttachment {
    pub id: String,
    pub message_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub inline_cid: Option<String>,
    pub content: Vec<u8>,
    pub created_at: NaiveDateTime,
}

/// An entry in a case's audit log.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_events)]
pub struct CaseEventRow {
    pub id: String,
    pub case_id: String,
    pub kind: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// A side effect to perform after commit (send a reply, call a webhook).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub case_id: Option<String>,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

/// Where an IMAP mailbox's poller stands.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = mailbox_state)]
pub struct MailboxStateRow {
    pub mailbox: String,
    pub uid_validity: i64,
    pub last_uid: i64,
    pub updated_at: NaiveDateTime,
}

/// A stored idempotency key and, once the request finished, its response.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = idempotency_keys, treat_none_as_null = true)]
pub struct IdempotencyRow {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    pub state: String,
    pub locked_until: NaiveDateTime,
    pub response_status: Option<i32>,
    pub response_headers: Option<String>,
    pub response_body: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// An inbound raw message and what became of it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = inbound_messages, treat_none_as_null = true)]
pub struct InboundRow {
    pub id: String,
    pub channel: String,
    pub source: String,
    pub dedup_key: String,
    pub outcome: String,
    pub reason: String,
    pub case_id: Option<String>,
    pub message_id: Option<String>,
    pub raw: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
}

/// An inbound message without its raw bytes, for lists.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbound_messages)]
pub struct InboundMeta {
    pub id: String,
    pub channel: String,
    pub source: String,
    pub dedup_key: String,
    pub outcome: String,
    pub reason: String,
    pub case_id: Option<String>,
    pub message_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
}

/// A live-chat session of one visitor.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = chat_sessions, treat_none_as_null = true)]
pub struct ChatSessionRow {
    pub id: String,
    pub customer_id: String,
    pub case_id: Option<String>,
    pub visitor_id: String,
    pub token_hash: String,
    pub name: String,
    pub topic: Option<String>,
    /// `active` (the visitor is in the chat) or `ended` (left; replies go by email).
    pub status: String,
    pub received_seq: i64,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// A skill a case requires (at a minimum level) or prefers.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_skills)]
pub struct CaseSkillRow {
    pub case_id: String,
    pub skill_id: String,
    pub min_level: i32,
    pub required: bool,
}

/// How many active cases an agent takes on one channel.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = agent_capacities)]
pub struct AgentCapacityRow {
    pub agent_id: String,
    pub channel: String,
    pub capacity: i32,
}

/// One routing decision and its explanation (JSON).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = routing_decisions)]
pub struct RoutingDecisionRow {
    pub id: String,
    pub case_id: String,
    pub agent_id: Option<String>,
    /// `assigned`, `waiting`, `escalated` or `unassigned`.
    pub outcome: String,
    pub explanation: String,
    pub created_at: NaiveDateTime,
}

/// A case routing sees: the case with its customer's tier and value.
#[derive(Debug, Clone, Queryable)]
pub struct RoutableCase {
    pub id: String,
    pub status: String,
    pub priority: String,
    pub channel: String,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub waiting_since: Option<NaiveDateTime>,
    pub offered_to: Option<String>,
    pub tier: String,
    pub value: i64,
}

/// An agent audit-log row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = agent_events)]
pub struct AgentEventRow {
    pub id: String,
    pub agent_id: String,
    pub kind: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// A business calendar: its name and JSON spec (`caseflow_sla::CalendarSpec`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sla_calendars)]
pub struct SlaCalendarRow {
    pub id: String,
    pub name: String,
    pub spec: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An SLA policy: its place in the matching order and JSON spec (`caseflow_sla::PolicySpec`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sla_policies)]
pub struct SlaPolicyRow {
    pub id: String,
    pub name: String,
    pub position: i32,
    pub spec: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The SLA state of a case, kept for ordering and scheduling (the clocks themselves are
/// derived from the case's history).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = case_sla, treat_none_as_null = true)]
pub struct CaseSlaRow {
    pub case_id: String,
    pub policy_id: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub breached: bool,
    pub next_at: Option<NaiveDateTime>,
    pub evaluated_at: Option<NaiveDateTime>,
}

/// A milestone fired (once: the primary key).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sla_fired)]
pub struct SlaFiredRow {
    pub case_id: String,
    pub metric: String,
    pub cycle: i32,
    pub milestone: String,
    pub due_at: NaiveDateTime,
    pub fired_at: NaiveDateTime,
}

/// An alert for supervisors (or for one agent).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: String,
    pub case_id: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    /// `warning`, `breach`, `escalation` (SLA), `bad_rating` (customer satisfaction) or
    /// `topic` (a case on a topic that alerts supervisors).
    pub kind: String,
    pub metric: Option<String>,
    pub action: Option<String>,
    pub message: String,
    pub due_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<NaiveDateTime>,
}

/// A webhook subscription: where to send which event types, signed with `secret`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = webhook_subscriptions, treat_none_as_null = true)]
pub struct WebhookSubscriptionRow {
    pub id: String,
    pub url: String,
    /// Changed only by [`crate::queries::webhooks::rotate_secret`], never by a whole-row
    /// update (a concurrent change must not write an old secret back over a rotation).
    #[diesel(skip_update)]
    pub secret: String,
    /// JSON array of event types.
    pub events: String,
    pub description: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The secret before the last rotation: it signs deliveries too until
    /// `previous_secret_expires_at`.
    #[diesel(skip_update)]
    pub previous_secret: Option<String>,
    #[diesel(skip_update)]
    pub previous_secret_expires_at: Option<NaiveDateTime>,
}

/// One event for one subscription, and how its delivery went.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct WebhookDeliveryRow {
    pub id: String,
    pub subscription_id: String,
    pub event_type: String,
    pub event_id: String,
    pub case_id: String,
    pub data: String,
    pub event_at: NaiveDateTime,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

/// A viewer of a case (heartbeat).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_viewers)]
pub struct CaseViewerRow {
    pub case_id: String,
    pub agent_id: String,
    pub composing: bool,
    pub seen_at: NaiveDateTime,
}

/// A canned reply.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = macros)]
pub struct MacroRow {
    pub id: String,
    pub name: String,
    pub body: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// The satisfaction survey of a solved case (one per case) and the customer's answer.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = satisfaction_surveys)]
pub struct SatisfactionRow {
    pub case_id: String,
    /// SHA-256 (hex) of the link's token; the token itself is only in the message sent.
    pub token_hash: String,
    pub channel: String,
    /// `sent`, or `unreachable` (nothing could be sent; never looked at again).
    pub status: String,
    pub sent_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// `good` or `bad`; `None` until answered.
    pub rating: Option<String>,
    pub comment: Option<String>,
    pub rated_at: Option<NaiveDateTime>,
    /// The case's team and assignee when it was rated: whom the rating counts for.
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
}
