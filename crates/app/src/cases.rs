//! Case use cases: create, read, list, update, messages and the audit log.

use crate::auth::Principal;
use crate::customers::{resolve_customer, CustomerRef};
use crate::error::{AppError, AppResult};
use crate::views::*;
use crate::{check_len, new_id, required, App, Page};
use caseflow_core::*;
use caseflow_store::models::*;
use caseflow_store::queries::{self, cases::CaseFilter};
use caseflow_store::DbConn;
use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer};

/// Deserializes a field that distinguishes "absent" (`None`) from "null" (`Some(None)`).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Input for creating a case (an integrator, or an agent logging a contact).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    #[schema(min_length = 1, max_length = 998)]
    pub subject: String,
    /// The customer's first message.
    #[schema(min_length = 1)]
    pub body: String,
    pub customer: CustomerRef,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Channel of origin; `api` when not given.
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub assignee_id: Option<String>,
    /// The caller's id for this message; a second create with the same id and channel returns
    /// the existing case instead of a duplicate.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Skills routing requires (or prefers) for this case.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub skills: Vec<crate::routing::CaseSkill>,
}

/// Changes to a case; absent fields are left alone, `null` clears team or assignee.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub status: Option<CaseStatus>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable)]
    pub team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable)]
    pub assignee_id: Option<Option<String>>,
    /// Pin the case to its assignee (supervisors): routing never moves a pinned case, not
    /// even when the agent goes away. Unassigning a case unpins it.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// The version the client last read; the update fails with `version_conflict` if the case
    /// changed since. `If-Match` does the same.
    #[serde(default)]
    pub version: Option<i64>,
}

/// What kind of message to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A public reply to the customer, sent on the case's channel.
    Reply,
    /// An internal note, visible to staff only.
    Note,
    /// A message from the customer relayed by an integrator.
    Inbound,
}

/// Input for adding a message to a case.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub kind: MessageKind,
    #[schema(min_length = 1)]
    pub body: String,
    /// Status to set together with a reply or note (e.g. `pending` or `solved`).
    #[serde(default)]
    pub status: Option<CaseStatus>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// Query for the case list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// An agent id, `me`, or `none` for unassigned.
    pub assignee: Option<String>,
    /// A team id or `none`.
    pub team: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    pub channel: Option<String>,
    /// Offer mode: cases offered to this agent (an id or `me`) and not yet accepted.
    pub offered_to: Option<String>,
    /// Text matched against subjects (case-insensitive) and case numbers.
    pub q: Option<String>,
    /// `-created_at` (default, newest first) or `created_at`.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Result of creating a case.
#[derive(Debug, Clone)]
pub struct Created {
    pub case: CaseDetail,
    /// False when `external_id` matched an earlier submission and nothing new was created.
    pub created: bool,
}

pub(crate) fn event(
    conn: &mut DbConn,
    case_id: &str,
    kind: &str,
    actor: &(ActorKind, Option<String>),
    data: serde_json::Value,
    now: NaiveDateTime,
) -> AppResult<()> {
    queries::events::insert_case_event(conn, &event_row(case_id, kind, actor, data, now))?;
    Ok(())
}

/// An automatic message's text for a case: `{name}` (the customer's name, "there" when
/// unknown), `{number}` and `{subject}` filled in. The email acknowledgement and the
/// satisfaction survey use it.
pub(crate) fn fill_case_text(template: &str, name: &str, number: i64, subject: &str) -> String {
    template
        .replace("{name}", if name.is_empty() { "there" } else { name })
        .replace("{number}", &number.to_string())
        .replace("{subject}", subject)
}

/// A case audit-log row.
pub(crate) fn event_row(
    case_id: &str,
    kind: &str,
    actor: &(ActorKind, Option<String>),
    data: serde_json::Value,
    now: NaiveDateTime,
) -> CaseEventRow {
    CaseEventRow {
        id: new_id(),
        case_id: case_id.to_owned(),
        kind: kind.to_owned(),
        actor_kind: actor.0.as_str().to_owned(),
        actor_id: actor.1.clone(),
        data: data.to_string(),
        created_at: now,
    }
}

/// A new case row in status `new`, version 1, with every timestamp at `now`.
pub(crate) struct NewCaseRow<'a> {
    pub number: i64,
    pub subject: String,
    pub priority: Priority,
    pub channel: Channel,
    pub customer_id: &'a str,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub linked_case_id: Option<String>,
    pub topic: Option<String>,
}

impl NewCaseRow<'_> {
    pub(crate) fn build(self, now: NaiveDateTime) -> CaseRow {
        let waiting_since = self.assignee_id.is_none().then_some(now);
        CaseRow {
            id: new_id(),
            number: self.number,
            subject: self.subject,
            status: CaseStatus::New.as_str().into(),
            priority: self.priority.as_str().into(),
            channel: self.channel.as_str().into(),
            customer_id: self.customer_id.to_owned(),
            team_id: self.team_id,
            assignee_id: self.assignee_id,
            linked_case_id: self.linked_case_id,
            created_at: now,
            updated_at: now,
            last_message_at: now,
            first_response_at: None,
            solved_at: None,
            closed_at: None,
            version: 1,
            topic: self.topic,
            waiting_since,
            pinned: false,
        }
    }
}

/// What a new case starts with.
pub(crate) struct Opening<'a> {
    pub subject: String,
    /// The customer's first message.
    pub body: String,
    pub channel: Channel,
    pub priority: Priority,
    pub customer_id: &'a str,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub topic: Option<String>,
    pub external_id: Option<String>,
    /// The earlier (closed) case this one continues.
    pub linked_case_id: Option<String>,
    /// What routing requires or prefers.
    pub skills: Vec<crate::routing::CaseSkill>,
}

/// Inserts a case with the customer's first message (conversation position 1) and its
/// `case_created` event. Shared by the API, the web form and the chat.
pub(crate) fn open_case(
    conn: &mut DbConn,
    o: Opening<'_>,
    actor: &(ActorKind, Option<String>),
    now: NaiveDateTime,
) -> AppResult<(CaseRow, MessageRow)> {
    let number = queries::next_case_number(conn)?;
    let row = NewCaseRow {
        number,
        subject: o.subject,
        priority: o.priority,
        channel: o.channel,
        customer_id: o.customer_id,
        team_id: o.team_id,
        assignee_id: o.assignee_id,
        linked_case_id: o.linked_case_id,
        topic: o.topic,
    }
    .build(now);
    queries::cases::insert(conn, &row)?;
    let skills = crate::routing::case_skill_rows(conn, &row.id, &o.skills)?;
    queries::routing::set_case_skills(conn, &row.id, &skills)?;
    let msg = MessageRow {
        id: new_id(),
        case_id: row.id.clone(),
        direction: MessageDirection::Inbound.as_str().into(),
        channel: o.channel.as_str().into(),
        author_kind: ActorKind::Customer.as_str().into(),
        author_id: Some(o.customer_id.to_owned()),
        body_text: o.body,
        body_html: None,
        external_id: o.external_id,
        message_id_header: None,
        in_reply_to: None,
        references_header: None,
        thread_rule: None,
        delivery_status: None,
        created_at: now,
        body_full: None,
        delivery_error: None,
        seq: Some(1),
    };
    queries::messages::insert(conn, &msg)?;
    event(
        conn,
        &row.id,
        "case_created",
        actor,
        serde_json::json!({
            "number": number, "channel": o.channel, "priority": o.priority,
            "customer_id": o.customer_id, "message_id": msg.id,
            "team_id": row.team_id, "assignee_id": row.assignee_id, "topic": row.topic,
        }),
        now,
    )?;
    tracing::info!(case.id = %row.id, case.number = number, channel = %o.channel, "case created");
    Ok((row, msg))
}

fn load_case(conn: &mut DbConn, id: &str) -> AppResult<CaseRow> {
    queries::cases::get(conn, id)?.ok_or(AppError::NotFound("case"))
}

fn detail(conn: &mut DbConn, row: CaseRow) -> AppResult<CaseDetail> {
    let customer = queries::customers::get(conn, &row.customer_id)?.ok_or(AppError::NotFound("customer"))?;
    Ok(CaseDetail {
        case: row.try_into()?,
        customer: CustomerSummary {
            id: CustomerId::new(customer.id),
            name: customer.name,
            tier: stored("customers.tier", &customer.tier)?,
        },
    })
}

fn check_team(conn: &mut DbConn, team: Option<&str>) -> AppResult<()> {
    if let Some(t) = team {
        if queries::teams::get(conn, t)?.is_none() {
            return Err(AppError::invalid("team_id: no such team"));
        }
    }
    Ok(())
}

fn check_assignee(conn: &mut DbConn, agent: Option<&str>) -> AppResult<()> {
    if let Some(a) = agent {
        match queries::agents::get(conn, a)? {
            Some(row) if row.active => {}
            Some(_) => return Err(AppError::invalid("assignee_id: the agent is deactivated")),
            None => return Err(AppError::invalid("assignee_id: no such agent")),
        }
    }
    Ok(())
}

fn external_id(v: Option<&str>) -> AppResult<Option<String>> {
    match v.map(str::trim) {
        None => Ok(None),
        Some("") => Err(AppError::invalid("external_id must not be empty when given")),
        Some(s) if s.len() > 255 => Err(AppError::invalid("external_id is longer than 255 bytes")),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// Runs a write again (up to `attempts` tries in all) when it lost a race to a concurrent
/// one: on a unique key (two requests creating the same new customer identity, submission or
/// message position at once) or on the version of the case it changes. The next attempt sees
/// the winner's row.
pub(crate) async fn write_retrying<T, F>(app: &App, attempts: u32, f: F) -> AppResult<T>
where
    T: Send + 'static,
    F: Fn(&mut DbConn) -> AppResult<T> + Send + Sync + Clone + 'static,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let g = f.clone();
        match app.write(move |c| g(c)).await {
            Err(AppError::AlreadyExists(_) | AppError::VersionConflict(_)) if attempt < attempts => continue,
            other => return other,
        }
    }
}

impl App {
    /// Creates a case with the customer's first message, resolving (or creating) the
    /// customer from the given identity.
    pub async fn create_case(&self, who: &Principal, input: NewCase) -> AppResult<Created> {
        who.require_write()?;
        let limits = &self.settings().limits;
        let subject = required("subject", &input.subject)?;
        check_len("subject", &subject, 998)?;
        let body = required("body", &input.body)?;
        check_len("body", &body, limits.max_message_bytes)?;
        let ext = external_id(input.external_id.as_deref())?;
        let channel = input.channel.unwrap_or(Channel::Api);
        let priority = input.priority.unwrap_or(Priority::Normal);
        let actor = who.actor();
        let now = self.now_naive();
        let customer_ref = input.customer.clone();
        let (team_id, assignee_id) = (input.team_id.clone(), input.assignee_id.clone());
        if input.skills.len() > 16 {
            return Err(AppError::invalid("skills: at most 16"));
        }
        let skills = input.skills.clone();
        let created = write_retrying(self, 3, move |conn| {
            if let Some(e) = &ext {
                if let Some(m) = queries::messages::find_by_external_id(conn, channel.as_str(), e)? {
                    let case = load_case(conn, &m.case_id)?;
                    return Ok(Created { case: detail(conn, case)?, created: false });
                }
            }
            let (customer, _) = resolve_customer(conn, &customer_ref, &actor, now)?;
            check_team(conn, team_id.as_deref())?;
            check_assignee(conn, assignee_id.as_deref())?;
            let (row, _) = open_case(
                conn,
                Opening {
                    subject: subject.clone(),
                    body: body.clone(),
                    channel,
                    priority,
                    customer_id: &customer.id,
                    team_id: team_id.clone(),
                    assignee_id: assignee_id.clone(),
                    topic: None,
                    external_id: ext.clone(),
                    linked_case_id: None,
                    skills: skills.clone(),
                },
                &actor,
                now,
            )?;
            Ok(Created { case: detail(conn, row)?, created: true })
        })
        .await?;
        if created.created {
            self.metrics().cases_created.with_label_values(&[channel.as_str()]).inc();
            self.metrics().messages_ingested.with_label_values(&[channel.as_str()]).inc();
        }
        Ok(created)
    }

    /// One case with its customer summary.
    pub async fn get_case(&self, who: &Principal, id: String) -> AppResult<CaseDetail> {
        who.require_read()?;
        self.read(move |conn| {
            let (row, name, tier) = queries::cases::get_with_customer(conn, &id)?.ok_or(AppError::NotFound("case"))?;
            let customer_id = CustomerId::new(row.customer_id.clone());
            Ok(CaseDetail {
                case: row.try_into()?,
                customer: CustomerSummary { id: customer_id, name, tier: stored("customers.tier", &tier)? },
            })
        })
        .await
    }

    /// A page of cases matching `query`.
    pub async fn list_cases(&self, who: &Principal, query: CaseQuery) -> AppResult<Page<CaseView>> {
        who.require_read()?;
        let limit = self.page_limit(query.limit)?;
        let mut f = CaseFilter { limit: limit + 1, ..CaseFilter::default() };
        if let Some(s) = query.status.as_deref().filter(|s| !s.is_empty()) {
            for part in s.split(',') {
                let st: CaseStatus = crate::parse_enum("status", part.trim())?;
                f.statuses.push(st.as_str().to_owned());
            }
        }
        f.assignee_id = match query.assignee.as_deref() {
            None | Some("") => None,
            Some("none") => Some(None),
            Some("me") => match who.agent_id() {
                Some(id) => Some(Some(id.to_string())),
                None => return Err(AppError::invalid("assignee=me needs an agent session, not an API token")),
            },
            Some(id) => Some(Some(id.to_owned())),
        };
        f.team_id = match query.team.as_deref() {
            None | Some("") => None,
            Some("none") => Some(None),
            Some(id) => Some(Some(id.to_owned())),
        };
        if let Some(p) = query.priority.as_deref().filter(|s| !s.is_empty()) {
            f.priority = Some(crate::parse_enum::<Priority>("priority", p)?.as_str().to_owned());
        }
        if let Some(c) = query.channel.as_deref().filter(|s| !s.is_empty()) {
            f.channel = Some(crate::parse_enum::<Channel>("channel", c)?.as_str().to_owned());
        }
        f.customer_id = query.customer.filter(|s| !s.is_empty());
        f.offered_to = match query.offered_to.as_deref() {
            None | Some("") => None,
            Some("me") => match who.agent_id() {
                Some(id) => Some(id.to_string()),
                None => return Err(AppError::invalid("offered_to=me needs an agent session, not an API token")),
            },
            Some(id) => Some(id.to_owned()),
        };
        if let Some(q) = query.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            check_len("q", q, 200)?;
            f.text = Some(q.to_owned());
        }
        f.ascending = match query.sort.as_deref() {
            None | Some("") | Some("-created_at") => false,
            Some("created_at") => true,
            Some(_) => return Err(AppError::invalid("sort must be created_at or -created_at")),
        };
        f.after = query.cursor.filter(|s| !s.is_empty());
        self.read(move |conn| {
            let rows = queries::cases::list(conn, &f)?;
            Page::try_from_rows(rows, limit, |r| r.id.clone(), CaseView::try_from)
        })
        .await
    }

    /// Applies `patch`, recording one audit event per changed field.
    pub async fn update_case(
        &self,
        who: &Principal,
        id: String,
        patch: CasePatch,
        if_match: Option<i64>,
    ) -> AppResult<CaseDetail> {
        who.require_write()?;
        if let Some(s) = &patch.subject {
            check_len("subject", required("subject", s)?.as_str(), 998)?;
        }
        if let Some(Some(a)) = &patch.assignee_id {
            // Agents may take a case themselves; assigning to others is supervision.
            if who.agent_id().map(|me| me.as_str()) != Some(a.as_str()) {
                who.require_supervisor()?;
            }
        }
        if patch.pinned.is_some() {
            who.require_supervisor()?;
        }
        let expected = match (patch.version, if_match) {
            (Some(a), Some(b)) if a != b => {
                return Err(AppError::invalid("version and If-Match disagree"));
            }
            (a, b) => a.or(b),
        };
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            // Locked (PostgreSQL): routing's offer and this change queue instead of crossing.
            let old = queries::cases::get_for_update(conn, &id)?.ok_or(AppError::NotFound("case"))?;
            if expected.is_some_and(|v| v != old.version) {
                return Err(AppError::VersionConflict("case"));
            }
            let mut new = old.clone();
            let mut events: Vec<(&str, serde_json::Value)> = Vec::new();
            if let Some(s) = &patch.subject {
                let s = crate::clean(s);
                if s != old.subject {
                    events.push(("subject_changed", serde_json::json!({})));
                    new.subject = s;
                }
            }
            if let Some(to) = patch.status {
                let from: CaseStatus = stored("cases.status", &old.status)?;
                let to = from.transition_to(to)?;
                if to != from {
                    apply_status(&mut new, to, now);
                    events.push(("status_changed", serde_json::json!({"from": from, "to": to})));
                }
            } else if old.status == CaseStatus::Closed.as_str() {
                return Err(AppError::InvalidTransition("a closed case cannot be changed".into()));
            }
            if let Some(p) = patch.priority {
                if p.as_str() != old.priority {
                    events.push(("priority_changed", serde_json::json!({"from": old.priority, "to": p})));
                    new.priority = p.as_str().into();
                }
            }
            if let Some(t) = &patch.team_id {
                if *t != old.team_id {
                    check_team(conn, t.as_deref())?;
                    events.push(("team_changed", serde_json::json!({"from": old.team_id, "to": t})));
                    new.team_id = t.clone();
                }
            }
            if let Some(a) = &patch.assignee_id {
                if *a != old.assignee_id {
                    check_assignee(conn, a.as_deref())?;
                    events.push(("assignee_changed", serde_json::json!({"from": old.assignee_id, "to": a})));
                    new.assignee_id = a.clone();
                    if old.pinned {
                        // A pin belongs to the assignee it was given to.
                        new.pinned = false;
                        if patch.pinned != Some(true) {
                            events.push(("unpinned", serde_json::json!({"assignee_id": old.assignee_id})));
                        }
                    }
                }
            }
            if let Some(p) = patch.pinned {
                if p != new.pinned {
                    if p && new.assignee_id.is_none() {
                        return Err(AppError::invalid("pinned: only an assigned case can be pinned"));
                    }
                    events.push((
                        if p { "pinned" } else { "unpinned" },
                        serde_json::json!({"assignee_id": new.assignee_id}),
                    ));
                    new.pinned = p;
                }
            }
            if events.is_empty() {
                return detail(conn, old);
            }
            let leaves_queue =
                new.assignee_id != old.assignee_id || !queries::routing::ACTIVE.contains(&new.status.as_str());
            if leaves_queue && queries::routing::clear_offer(conn, &old.id, None)? {
                // Assigned by hand, or no longer active, while offered: the offer is void.
                events.push(("offer_withdrawn", serde_json::json!({"reason": "case_changed"})));
            }
            track_waiting(&old, &mut new, now);
            new.version = old.version + 1;
            new.updated_at = now;
            if !queries::cases::update_if_version(conn, &new, old.version)? {
                return Err(AppError::VersionConflict("case"));
            }
            for (kind, data) in events {
                event(conn, &new.id, kind, &actor, data, now)?;
            }
            tracing::info!(case.id = %new.id, case.version = new.version, "case updated");
            detail(conn, new)
        })
        .await
    }

    /// Adds a reply, note or relayed customer message. A reply is written together with an
    /// outbox row that the dispatcher delivers on the case's channel.
    pub async fn add_message(&self, who: &Principal, case_id: String, input: NewMessage) -> AppResult<MessageView> {
        who.require_write()?;
        let body = required("body", &input.body)?;
        check_len("body", &body, self.settings().limits.max_message_bytes)?;
        let ext = external_id(input.external_id.as_deref())?;
        if input.kind == MessageKind::Inbound && input.status.is_some() {
            return Err(AppError::invalid("status cannot be set with an inbound message"));
        }
        let append = Append { kind: input.kind, body, status: input.status, external_id: ext, actor: who.actor() };
        let done = self.append(case_id, append).await?;
        MessageView::from_row(done.message, Vec::new())
    }

    /// Runs [`append_message`] in a transaction, retrying when a concurrent message on the
    /// same case moved its version first (the append does not depend on what the caller read),
    /// then wakes the outbox and tells live chat sockets.
    pub(crate) async fn append(&self, case_id: String, append: Append) -> AppResult<Appended> {
        let rules = ReplyRules::from_settings(self.settings());
        let now = self.now_naive();
        let done =
            write_retrying(self, 8, move |conn| append_message(conn, &rules, &case_id, append.clone(), now)).await?;
        if !done.new {
            return Ok(done);
        }
        if done.message.direction == MessageDirection::Outbound.as_str() {
            self.wake_outbox();
        }
        if done.message.direction == MessageDirection::Inbound.as_str() {
            self.metrics().messages_ingested.with_label_values(&[done.message.channel.as_str()]).inc();
        }
        if done.case.channel == Channel::Chat.as_str() {
            if let Some(line) = crate::chat::ChatLine::from_row(&done.message, &done.author_name) {
                self.chat_hub().publish(crate::chat::ChatEvent::Message(line));
            }
        }
        Ok(done)
    }

    /// The case's messages in order, with attachment metadata.
    pub async fn list_messages(
        &self,
        who: &Principal,
        case_id: String,
        cursor: Option<String>,
        limit: Option<i64>,
    ) -> AppResult<Page<MessageView>> {
        who.require_read()?;
        let limit = self.page_limit(limit)?;
        self.read(move |conn| {
            load_case(conn, &case_id)?;
            let rows = queries::messages::list_for_case(conn, &case_id, cursor.as_deref(), limit + 1)?;
            let page = Page::from_rows(rows, limit, |r| r.id.clone(), |r| r);
            let ids: Vec<String> = page.items.iter().map(|m| m.id.clone()).collect();
            let mut atts = queries::messages::attachments_for(conn, &ids)?;
            let mut items = Vec::with_capacity(page.items.len());
            for m in page.items {
                let mine: Vec<AttachmentView> =
                    atts.iter().filter(|a| a.message_id == m.id).cloned().map(AttachmentView::from).collect();
                atts.retain(|a| a.message_id != m.id);
                items.push(MessageView::from_row(m, mine)?);
            }
            Ok(Page { items, next_cursor: page.next_cursor })
        })
        .await
    }

    /// The case's audit log, oldest first.
    pub async fn list_case_events(
        &self,
        who: &Principal,
        case_id: String,
        cursor: Option<String>,
        limit: Option<i64>,
    ) -> AppResult<Page<EventView>> {
        who.require_read()?;
        let limit = self.page_limit(limit)?;
        self.read(move |conn| {
            load_case(conn, &case_id)?;
            let rows = queries::events::list_case_events(conn, &case_id, cursor.as_deref(), limit + 1)?;
            Page::try_from_rows(rows, limit, |r| r.id.clone(), EventView::try_from)
        })
        .await
    }
}

/// A message to add to an existing case.
#[derive(Debug, Clone)]
pub(crate) struct Append {
    pub kind: MessageKind,
    /// Cleaned and length-checked.
    pub body: String,
    pub status: Option<CaseStatus>,
    pub external_id: Option<String>,
    pub actor: (ActorKind, Option<String>),
}

/// The settings an append needs, copied out so the blocking closure owns them.
#[derive(Debug, Clone)]
pub(crate) struct ReplyRules {
    pub mid_domain: String,
    /// A chat reply the visitor's browser has not confirmed after this long goes by email.
    pub chat_email_after: chrono::Duration,
}

impl ReplyRules {
    pub(crate) fn from_settings(s: &crate::Settings) -> Self {
        Self {
            mid_domain: s.email.message_id_domain.clone(),
            chat_email_after: chrono::Duration::seconds(
                i64::try_from(s.chat.email_after_secs).unwrap_or(i64::MAX / 1000),
            ),
        }
    }
}

/// What an append wrote (or found, when `external_id` repeated an earlier message).
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    pub case: CaseRow,
    pub message: MessageRow,
    /// False when the external id matched and nothing was written.
    pub new: bool,
    /// The author's display name (agent or customer), for live chat.
    pub author_name: String,
}

/// The display name of a message's author.
pub(crate) fn author_name(conn: &mut DbConn, kind: ActorKind, id: Option<&str>) -> AppResult<String> {
    Ok(match (kind, id) {
        (ActorKind::Agent, Some(id)) => queries::agents::get(conn, id)?.map(|a| a.name).unwrap_or_default(),
        (ActorKind::Customer, Some(id)) => queries::customers::get(conn, id)?.map(|c| c.name).unwrap_or_default(),
        _ => String::new(),
    })
}

/// Adds a message to a case in the caller's transaction: the next conversation position,
/// status change, outbox row for replies, version bump (compare-and-set) and audit events.
pub(crate) fn append_message(
    conn: &mut DbConn,
    rules: &ReplyRules,
    case_id: &str,
    a: Append,
    now: NaiveDateTime,
) -> AppResult<Appended> {
    // Lock first: concurrent messages on one case then take their turns instead of
    // computing the same next `seq` and retrying.
    let old = queries::cases::get_for_update(conn, case_id)?.ok_or(AppError::NotFound("case"))?;
    let channel: Channel = stored("cases.channel", &old.channel)?;
    if let Some(e) = &a.external_id {
        if let Some(m) = queries::messages::find_by_external_id(conn, channel.as_str(), e)? {
            if m.case_id != old.id {
                return Err(AppError::AlreadyExists("external_id is already used on another case".into()));
            }
            let kind: ActorKind = stored("messages.author_kind", &m.author_kind)?;
            let author_name = author_name(conn, kind, m.author_id.as_deref())?;
            return Ok(Appended { case: old, message: m, new: false, author_name });
        }
    }
    let from: CaseStatus = stored("cases.status", &old.status)?;
    if from == CaseStatus::Closed {
        return Err(AppError::InvalidTransition("the case is closed; create a new case linked to it instead".into()));
    }
    let actor = a.actor;
    let mut new = old.clone();
    let (direction, author_kind, author_id, delivery) = match a.kind {
        MessageKind::Reply => (MessageDirection::Outbound, actor.0, actor.1.clone(), Some("queued")),
        MessageKind::Note => (MessageDirection::Note, actor.0, actor.1.clone(), None),
        MessageKind::Inbound => (MessageDirection::Inbound, ActorKind::Customer, Some(old.customer_id.clone()), None),
    };
    let mut to = match a.kind {
        // Automatic messages (acknowledgement, greeting) are not an answer: the case stays new.
        MessageKind::Reply if author_kind == ActorKind::System => from,
        MessageKind::Reply => from.on_agent_reply(),
        MessageKind::Note => from,
        MessageKind::Inbound => from.on_customer_reply()?,
    };
    if let Some(explicit) = a.status {
        to = to.transition_to(explicit).or_else(|_| from.transition_to(explicit))?;
    }
    let msg_id = new_id();
    // Our own Message-ID on every reply, so the customer's answer threads back here.
    let message_id_header = (a.kind == MessageKind::Reply).then(|| format!("caseflow.{msg_id}@{}", rules.mid_domain));
    // Notes are not part of the conversation the customer sees.
    let seq = match a.kind {
        MessageKind::Note => None,
        _ => Some(queries::messages::next_seq(conn, &old.id)?),
    };
    let msg = MessageRow {
        id: msg_id,
        case_id: old.id.clone(),
        direction: direction.as_str().into(),
        channel: channel.as_str().into(),
        author_kind: author_kind.as_str().into(),
        author_id,
        body_text: a.body,
        body_html: None,
        external_id: a.external_id,
        message_id_header,
        in_reply_to: None,
        references_header: None,
        thread_rule: None,
        delivery_status: delivery.map(str::to_owned),
        created_at: now,
        body_full: None,
        delivery_error: None,
        seq,
    };
    queries::messages::insert(conn, &msg)?;
    if a.kind == MessageKind::Reply {
        if new.first_response_at.is_none() && author_kind != ActorKind::System {
            new.first_response_at = Some(now);
        }
        let outbox = reply_outbox_row(conn, rules, &old, &msg, now)?;
        queries::events::insert_outbox(conn, &outbox)?;
    }
    if a.kind != MessageKind::Note {
        new.last_message_at = now;
    }
    if to != from {
        apply_status(&mut new, to, now);
        track_waiting(&old, &mut new, now);
        if !queries::routing::ACTIVE.contains(&new.status.as_str())
            && queries::routing::clear_offer(conn, &old.id, None)?
        {
            event(conn, &old.id, "offer_withdrawn", &actor, serde_json::json!({"reason": "case_changed"}), now)?;
        }
    }
    new.version = old.version + 1;
    new.updated_at = now;
    if !queries::cases::update_if_version(conn, &new, old.version)? {
        return Err(AppError::VersionConflict("case"));
    }
    event(
        conn,
        &old.id,
        "message_added",
        &actor,
        serde_json::json!({"message_id": msg.id, "direction": direction}),
        now,
    )?;
    if to != from {
        event(conn, &old.id, "status_changed", &actor, serde_json::json!({"from": from, "to": to}), now)?;
    }
    tracing::info!(case.id = %old.id, message.id = %msg.id, direction = %direction, "message added");
    let author_name = author_name(conn, author_kind, msg.author_id.as_deref())?;
    Ok(Appended { case: new, message: msg, new: true, author_name })
}

/// The outbox row that delivers a reply. Chat replies wait for the visitor's browser to
/// confirm them and fall back to email after `chat.email_after_secs` (at once when the visitor
/// ended the chat); the row's id is the message id so that the confirmation can settle it.
pub(crate) fn reply_outbox_row(
    conn: &mut DbConn,
    rules: &ReplyRules,
    case: &CaseRow,
    msg: &MessageRow,
    now: NaiveDateTime,
) -> AppResult<OutboxRow> {
    let channel: Channel = stored("cases.channel", &case.channel)?;
    let (id, next_attempt_at) = if channel == Channel::Chat {
        let ended = queries::chat::latest_for_case(conn, &case.id)?.is_some_and(|s| s.status == "ended");
        (msg.id.clone(), if ended { now } else { now + rules.chat_email_after })
    } else {
        (new_id(), now)
    };
    Ok(OutboxRow {
        id,
        kind: format!("reply.{}", delivery_channel(channel)),
        case_id: Some(case.id.clone()),
        payload: serde_json::json!({"message_id": msg.id, "case_id": case.id}).to_string(),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at,
        last_error: None,
        created_at: now,
        delivered_at: None,
    })
}

/// Replies to web-form and API-created cases go out by email (to the customer's address);
/// chat answers on itself, email on itself.
fn delivery_channel(c: Channel) -> Channel {
    match c {
        Channel::Web | Channel::Api => Channel::Email,
        other => other,
    }
}

/// Keeps the routing fields consistent after a change: a case that starts waiting for an agent
/// (unassigned and active, and was not both before) waits from `now`; an assigned case does
/// not wait; a pin needs an assignee.
pub(crate) fn track_waiting(old: &CaseRow, new: &mut CaseRow, now: NaiveDateTime) {
    let waits = |r: &CaseRow| r.assignee_id.is_none() && queries::routing::ACTIVE.contains(&r.status.as_str());
    if waits(new) && (!waits(old) || new.waiting_since.is_none()) {
        new.waiting_since = Some(now);
    }
    if new.assignee_id.is_some() {
        new.waiting_since = None;
    } else {
        new.pinned = false;
    }
}

fn apply_status(row: &mut CaseRow, to: CaseStatus, now: NaiveDateTime) {
    row.status = to.as_str().into();
    match to {
        CaseStatus::Solved => row.solved_at = Some(now),
        CaseStatus::Closed => row.closed_at = Some(now),
        _ if to.is_active() => row.solved_at = None,
        _ => {}
    }
}
