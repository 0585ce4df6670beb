//! Live chat: sessions, messages persisted before they are acknowledged, replay by
//! conversation position, delivery confirmation with an email fallback, and the in-process
//! hub that carries committed messages and typing indicators to open sockets.
//!
//! Every chat message is a row in `messages` with a dense per-case `seq`, assigned in the
//! transaction that moves the case's version; sockets send messages in `seq` order and fill
//! any gap from the database, so a reconnect (or a lagging socket) replays exactly what was
//! missed, once. The hub only speeds delivery up; the database is the record.

use crate::cases::{append_message, open_case, Append, MessageKind, Opening, ReplyRules};
use crate::customers::{add_identity_row, customer_event, follow_merges, insert_customer};
use crate::error::{AppError, AppResult};
use crate::views::stored;
use crate::{check_len, clean, new_id, required, utc, App, Principal};
use caseflow_core::*;
use caseflow_store::models::*;
use caseflow_store::{queries, DbConn};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Who wrote a chat line, as the widget shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatAuthor {
    Customer,
    Agent,
    System,
}

/// One message of a conversation, as sockets carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChatLine {
    pub case_id: String,
    /// Position in the conversation, dense from 1.
    pub seq: i64,
    pub message_id: String,
    pub author: ChatAuthor,
    /// The agent's name for agent lines (shown to the customer), the customer's for theirs.
    pub author_name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// The sender's own id for the message, so a client recognises its echo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl ChatLine {
    /// The line for a conversation message; `None` for notes and email-only messages.
    pub(crate) fn from_row(m: &MessageRow, author_name: &str) -> Option<Self> {
        let seq = m.seq?;
        let author = match (m.direction.as_str(), m.author_kind.as_str()) {
            ("inbound", _) => ChatAuthor::Customer,
            ("outbound", "system") => ChatAuthor::System,
            ("outbound", _) => ChatAuthor::Agent,
            _ => return None,
        };
        Some(Self {
            case_id: m.case_id.clone(),
            seq,
            message_id: m.id.clone(),
            author,
            author_name: author_name.to_owned(),
            body: m.body_text.clone(),
            created_at: utc(m.created_at),
            client_id: m.external_id.as_deref().and_then(client_id_of),
        })
    }
}

/// The client's part of a stored external id: `SESSION:CLIENT` (visitors) or
/// `agent:AGENT:CLIENT` (agents).
fn client_id_of(external: &str) -> Option<String> {
    match external.strip_prefix("agent:") {
        Some(rest) => rest.split_once(':').map(|(_, c)| c.to_owned()),
        None => external.split_once(':').map(|(_, c)| c.to_owned()),
    }
}

/// What a session is doing, for agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The visitor connected (or reconnected).
    Joined,
    /// The visitor's socket closed; they may come back.
    Left,
    /// The visitor ended the chat; replies go by email.
    Ended,
}

/// What the hub carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// A committed message.
    Message(ChatLine),
    /// Someone started or stopped typing.
    Typing { case_id: String, from: ChatAuthor, name: String, typing: bool },
    /// A visitor's presence in a conversation changed.
    Session { case_id: String, session_id: String, state: SessionState, customer_name: String },
}

impl ChatEvent {
    /// The case the event belongs to.
    pub fn case_id(&self) -> &str {
        match self {
            ChatEvent::Message(l) => &l.case_id,
            ChatEvent::Typing { case_id, .. } | ChatEvent::Session { case_id, .. } => case_id,
        }
    }
}

/// Fans committed chat events out to the sockets of this node: one channel per case for
/// visitors, one for all agents. A receiver that falls behind gets `Lagged` and replays
/// from the database.
pub struct ChatHub {
    cases: Mutex<HashMap<String, broadcast::Sender<Arc<ChatEvent>>>>,
    agents: broadcast::Sender<Arc<ChatEvent>>,
}

impl std::fmt::Debug for ChatHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatHub")
    }
}

impl Default for ChatHub {
    fn default() -> Self {
        Self { cases: Mutex::new(HashMap::new()), agents: broadcast::channel(4096).0 }
    }
}

impl ChatHub {
    /// Events of one case (for a visitor's socket).
    pub fn subscribe_case(&self, case_id: &str) -> broadcast::Receiver<Arc<ChatEvent>> {
        let mut cases = self.cases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cases.entry(case_id.to_owned()).or_insert_with(|| broadcast::channel(256).0).subscribe()
    }

    /// Forgets a case's channel once its last visitor socket is gone (called when a socket
    /// closes), so that the map holds only conversations someone listens to.
    pub fn forget_case(&self, case_id: &str) {
        let mut cases = self.cases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cases.get(case_id).is_some_and(|tx| tx.receiver_count() == 0) {
            cases.remove(case_id);
        }
    }

    /// Events of every chat (for agents' sockets).
    pub fn subscribe_agents(&self) -> broadcast::Receiver<Arc<ChatEvent>> {
        self.agents.subscribe()
    }

    /// Sends an event to the case's and the agents' subscribers.
    pub fn publish(&self, event: ChatEvent) {
        let event = Arc::new(event);
        let _ = self.agents.send(event.clone());
        let mut cases = self.cases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = cases.get(event.case_id()) {
            if tx.send(event.clone()).is_err() {
                // Nobody listens any more: forget the channel.
                cases.remove(event.case_id());
            }
        }
    }
}

/// What a visitor gives when opening the chat.
#[derive(Debug, Clone, Default)]
pub struct StartChat {
    /// The id the widget stored from an earlier chat; unknown ids are replaced.
    pub visitor_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub topic: Option<String>,
}

/// An open chat session, as its socket holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChatSession {
    pub session_id: String,
    /// The visitor's id; the widget keeps it to be recognised next time.
    pub visitor_id: String,
    /// Present until the conversation's first message opens a case.
    pub case_id: Option<String>,
    pub case_number: Option<i64>,
    pub customer_name: String,
    /// Whether an email address is known (later replies can then go by email).
    pub has_email: bool,
    /// The conversation's current last position (0 before the first message).
    pub last_seq: i64,
}

/// A session with its resume token (given out once, at start).
#[derive(Debug, Clone)]
pub struct StartedChat {
    pub session: ChatSession,
    /// Secret: resumes the session after a reconnect. Stored only as its SHA-256.
    pub resume_token: String,
}

/// The answer to a posted message: persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChatAck {
    pub client_id: String,
    pub message_id: String,
    pub case_id: String,
    pub case_number: i64,
    pub seq: i64,
}

/// Result of a visitor's message: the acknowledgement and the lines it added (the message,
/// and the greeting when it opened the case).
#[derive(Debug, Clone)]
pub struct Posted {
    pub ack: ChatAck,
    pub lines: Vec<ChatLine>,
    /// The case was opened by this message.
    pub opened: bool,
    /// Its topic alerted supervisors (a complaint).
    pub alerted: bool,
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn fill(template: &str, name: &str, number: i64) -> String {
    let name = if name.is_empty() { "there" } else { name };
    template.replace("{name}", name).replace("{number}", &number.to_string())
}

/// A client's message id: 1–100 visible ASCII characters.
pub fn check_client_id(id: &str) -> AppResult<()> {
    if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid("client_id: 1-100 visible ASCII characters"));
    }
    Ok(())
}

fn session_view(conn: &mut DbConn, s: &ChatSessionRow) -> AppResult<ChatSession> {
    let (number, last_seq) = match &s.case_id {
        Some(c) => (queries::cases::get(conn, c)?.map(|c| c.number), queries::messages::next_seq(conn, c)? - 1),
        None => (None, 0),
    };
    let has_email = queries::customers::identities(conn, &s.customer_id)?.iter().any(|i| i.kind == "email");
    Ok(ChatSession {
        session_id: s.id.clone(),
        visitor_id: s.visitor_id.clone(),
        case_id: s.case_id.clone(),
        case_number: number,
        customer_name: s.name.clone(),
        has_email,
        last_seq,
    })
}

/// Attaches an email address the visitor typed to their customer when nobody has it yet. An
/// address another customer already has is not taken over (the visitor did not prove it is
/// theirs): the claim is recorded on the visitor's customer for an agent to merge.
fn claim_email(conn: &mut DbConn, customer_id: &str, email: &str, now: NaiveDateTime) -> AppResult<()> {
    let actor = (ActorKind::Customer, Some(customer_id.to_owned()));
    match queries::customers::find_identity(conn, IdentityKind::Email.as_str(), email)? {
        Some(i) if i.customer_id == customer_id => {}
        Some(i) => {
            let owner = follow_merges(conn, &i.customer_id)?.map(|c| c.id).unwrap_or(i.customer_id);
            if owner != customer_id {
                customer_event(
                    conn,
                    customer_id,
                    "email_claimed",
                    &actor,
                    serde_json::json!({"channel": "chat", "owner_customer_id": owner, "verified": false}),
                    now,
                )?;
            }
        }
        None => {
            let row = add_identity_row(conn, customer_id, IdentityKind::Email, email, now)?;
            customer_event(
                conn,
                customer_id,
                "identity_added",
                &actor,
                serde_json::json!({"identity_id": row.id, "kind": "email", "channel": "chat", "verified": false}),
                now,
            )?;
        }
    }
    Ok(())
}

fn load_session(conn: &mut DbConn, id: &str) -> AppResult<ChatSessionRow> {
    queries::chat::get(conn, id)?.ok_or(AppError::NotFound("chat session"))
}

impl App {
    /// Opens a chat session: recognises a returning visitor (and continues their open chat
    /// case), or creates a customer for a new one; an email address given is attached as
    /// described in [`claim_email`].
    pub async fn chat_start(&self, input: StartChat) -> AppResult<StartedChat> {
        let name = clean(input.name.as_deref().unwrap_or_default());
        check_len("name", &name, 200)?;
        let email = match input.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => {
                Some(normalize_identity(IdentityKind::Email, e).map_err(|e| AppError::invalid(format!("email: {e}")))?)
            }
            None => None,
        };
        let topic = match input.topic.as_deref().filter(|t| !t.is_empty()) {
            Some(t) if self.settings().web_form.topic(t).is_some() => Some(t.to_owned()),
            Some(_) => return Err(AppError::invalid("topic: not one of the configured topics")),
            None => None,
        };
        let visitor = input.visitor_id.filter(|v| normalize_identity(IdentityKind::ChatVisitor, v).is_ok());
        let token = random_token();
        let hash = token_hash(&token);
        let now = self.now_naive();
        let session = self
            .write(move |conn| {
                let known = match &visitor {
                    Some(v) => match queries::customers::find_identity(conn, IdentityKind::ChatVisitor.as_str(), v)? {
                        Some(i) => follow_merges(conn, &i.customer_id)?,
                        None => None,
                    },
                    None => None,
                };
                let (customer, visitor_id) = match known {
                    Some(c) => (c, visitor.clone().unwrap_or_default()),
                    None => {
                        let visitor_id = format!("v-{}", uuid::Uuid::new_v4().simple());
                        // A new visitor who gives an address we know is that customer (as with
                        // the web form, where the address is not verified either).
                        let by_email = match &email {
                            Some(e) => {
                                match queries::customers::find_identity(conn, IdentityKind::Email.as_str(), e)? {
                                    Some(i) => follow_merges(conn, &i.customer_id)?,
                                    None => None,
                                }
                            }
                            None => None,
                        };
                        let actor = (ActorKind::Customer, None);
                        let c = match by_email {
                            Some(c) => c,
                            None => {
                                let c = insert_customer(conn, name.clone(), Tier::Standard, 0, String::new(), now)?;
                                customer_event(
                                    conn,
                                    &c.id,
                                    "customer_created",
                                    &actor,
                                    serde_json::json!({"channel": "chat"}),
                                    now,
                                )?;
                                c
                            }
                        };
                        let ident = add_identity_row(conn, &c.id, IdentityKind::ChatVisitor, &visitor_id, now)?;
                        customer_event(
                            conn,
                            &c.id,
                            "identity_added",
                            &actor,
                            serde_json::json!({"identity_id": ident.id, "kind": "chat_visitor"}),
                            now,
                        )?;
                        (c, visitor_id)
                    }
                };
                if let Some(e) = &email {
                    claim_email(conn, &customer.id, e, now)?;
                }
                // A returning visitor continues their conversation while its case is open.
                let mut case_id = None;
                if let Some(prev) = queries::chat::latest_with_case_for_visitor(conn, &visitor_id)? {
                    if let Some(c) =
                        prev.case_id.as_deref().map(|c| queries::cases::get(conn, c)).transpose()?.flatten()
                    {
                        let status: CaseStatus = stored("cases.status", &c.status)?;
                        if status.is_active() && c.channel == Channel::Chat.as_str() {
                            case_id = Some(c.id);
                        }
                    }
                }
                // Only what the visitor typed: never echo a stored name to someone who merely
                // knows an address.
                let display = name.clone();
                let row = ChatSessionRow {
                    id: new_id(),
                    customer_id: customer.id.clone(),
                    case_id,
                    visitor_id,
                    token_hash: hash,
                    name: display,
                    topic,
                    status: "active".into(),
                    received_seq: 0,
                    created_at: now,
                    last_seen_at: now,
                    ended_at: None,
                };
                queries::chat::insert(conn, &row)?;
                tracing::info!(chat.session = %row.id, customer.id = %customer.id, "chat session started");
                session_view(conn, &row)
            })
            .await?;
        Ok(StartedChat { session, resume_token: token })
    }

    /// Re-opens a session after a reconnect; the token must match.
    pub async fn chat_resume(&self, session_id: String, token: String) -> AppResult<ChatSession> {
        let hash = token_hash(&token);
        let now = self.now_naive();
        self.write(move |conn| {
            let mut row = queries::chat::get(conn, &session_id)?
                .filter(|r| constant_eq(&r.token_hash, &hash))
                .ok_or(AppError::Unauthenticated("unknown chat session or wrong resume token"))?;
            row.last_seen_at = now;
            if row.status == "ended" {
                // Coming back re-opens the chat: replies go to the widget again.
                row.status = "active".into();
                row.ended_at = None;
            }
            queries::chat::update(conn, &row)?;
            session_view(conn, &row)
        })
        .await
    }

    /// Stores a visitor's message; the first one opens the case (and posts the greeting).
    /// Returns only after the transaction committed. Repeating a `client_id` returns the
    /// first acknowledgement and stores nothing.
    pub async fn chat_post(&self, session_id: String, client_id: String, body: String) -> AppResult<Posted> {
        check_client_id(&client_id)?;
        let body = required("body", &body)?;
        check_len("body", &body, self.settings().chat.max_message_bytes)?;
        let rules = ReplyRules::from_settings(self.settings());
        let greeting = self.settings().chat.greeting.clone();
        let topics = self.settings().web_form.clone();
        let external = format!("{session_id}:{client_id}");
        let now = self.now_naive();
        let posted = crate::cases::write_retrying(self, 8, move |conn| {
            let session = load_session(conn, &session_id)?;
            let actor = (ActorKind::Customer, Some(session.customer_id.clone()));
            // A closed case takes no more messages: the chat goes on in a new case
            // linked to it (as an email to a closed case does).
            let (current, linked) = match session.case_id.clone() {
                Some(id) => match queries::messages::find_by_external_id(conn, Channel::Chat.as_str(), &external)? {
                    Some(_) => (Some(id), None),
                    None => {
                        let c = queries::cases::get(conn, &id)?.ok_or(AppError::NotFound("case"))?;
                        if c.status == CaseStatus::Closed.as_str() {
                            (None, Some(id))
                        } else {
                            (Some(id), None)
                        }
                    }
                },
                None => (None, None),
            };
            match current {
                Some(case_id) => {
                    let a = Append {
                        kind: MessageKind::Inbound,
                        body: body.clone(),
                        status: None,
                        external_id: Some(external.clone()),
                        actor,
                    };
                    let done = append_message(conn, &rules, &case_id, a, now)?;
                    let line = ChatLine::from_row(&done.message, &session.name)
                        .ok_or_else(|| AppError::Internal("chat message without position".into()))?;
                    let ack = ChatAck {
                        client_id: client_id.clone(),
                        message_id: done.message.id.clone(),
                        case_id: case_id.clone(),
                        case_number: done.case.number,
                        seq: line.seq,
                    };
                    Ok((
                        Posted {
                            ack,
                            lines: if done.new { vec![line] } else { Vec::new() },
                            opened: false,
                            alerted: false,
                        },
                        done.new,
                    ))
                }
                None => {
                    let subject: String = body.lines().next().unwrap_or_default().chars().take(80).collect();
                    let topic = session.topic.as_deref().and_then(|t| topics.topic(t));
                    let route = crate::routing::topic_route(conn, topic)?;
                    let (case, first) = open_case(
                        conn,
                        Opening {
                            subject: if subject.trim().is_empty() { "Chat".into() } else { subject },
                            body: body.clone(),
                            channel: Channel::Chat,
                            priority: route.priority,
                            customer_id: &session.customer_id,
                            team_id: route.team_id,
                            assignee_id: None,
                            topic: session.topic.clone(),
                            external_id: Some(external.clone()),
                            linked_case_id: linked.clone(),
                            skills: route.skills,
                        },
                        &actor,
                        now,
                    )?;
                    // A chat that continues after its case was closed is the same conversation:
                    // its topic alerted supervisors when it began.
                    let alerted =
                        linked.is_none() && crate::support::topic_alert(conn, &case, topic, Channel::Chat, now)?;
                    if !queries::chat::set_case_if(conn, &session.id, linked.as_deref(), &case.id)? {
                        // Another connection of this session opened the case first.
                        return Err(AppError::VersionConflict("chat session"));
                    }
                    let mut lines = vec![ChatLine::from_row(&first, &session.name)
                        .ok_or_else(|| AppError::Internal("chat message without position".into()))?];
                    if !greeting.trim().is_empty() {
                        let expected = if greeting.contains("{expected}") {
                            crate::sla::expected_answer(conn, &case.id, now)?
                        } else {
                            String::new()
                        };
                        let a = Append {
                            kind: MessageKind::Reply,
                            body: fill(&greeting, &session.name, case.number)
                                .replace("{expected}", &expected)
                                .trim()
                                .to_owned(),
                            status: None,
                            external_id: None,
                            actor: (ActorKind::System, None),
                        };
                        let done = append_message(conn, &rules, &case.id, a, now)?;
                        lines.extend(ChatLine::from_row(&done.message, ""));
                    }
                    let ack = ChatAck {
                        client_id: client_id.clone(),
                        message_id: first.id.clone(),
                        case_id: case.id.clone(),
                        case_number: case.number,
                        seq: 1,
                    };
                    Ok((Posted { ack, lines, opened: true, alerted }, true))
                }
            }
        })
        .await?;
        let (posted, new) = posted;
        if new {
            self.metrics().messages_ingested.with_label_values(&[Channel::Chat.as_str()]).inc();
            if posted.opened {
                self.metrics().cases_created.with_label_values(&[Channel::Chat.as_str()]).inc();
            }
            if posted.alerted {
                self.notify_alerts();
            }
            if posted.lines.iter().any(|l| l.author == ChatAuthor::System) {
                self.wake_outbox();
            }
            for line in &posted.lines {
                self.chat_hub().publish(ChatEvent::Message(line.clone()));
            }
        }
        Ok(posted)
    }

    /// The visitor's browser confirms it shows every line up to `seq`: those replies count as
    /// delivered and will not be emailed.
    pub async fn chat_confirm(&self, session_id: String, seq: i64) -> AppResult<()> {
        let now = self.now_naive();
        self.write(move |conn| {
            let session = load_session(conn, &session_id)?;
            queries::chat::confirm(conn, &session.id, seq, now)?;
            let Some(case_id) = session.case_id else { return Ok(()) };
            for m in queries::messages::queued_upto_seq(conn, &case_id, seq)? {
                // Settles the email fallback unless a worker is sending it right now (that
                // worker then records the outcome). A fallback that failed (no address) is
                // moot: the visitor saw the answer.
                let settled = queries::events::outbox_settle(conn, &m.id, now)?;
                let moot = !settled && queries::events::outbox_get(conn, &m.id)?.is_none_or(|r| r.status == "failed");
                if settled || moot {
                    queries::messages::set_delivery(conn, &m.id, "sent", None)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// The visitor ended the chat: replies not yet confirmed, and later ones, go by email.
    pub async fn chat_end(&self, session_id: String) -> AppResult<ChatSession> {
        let now = self.now_naive();
        let view = self
            .write(move |conn| {
                let mut row = load_session(conn, &session_id)?;
                row.status = "ended".into();
                row.ended_at = Some(now);
                row.last_seen_at = now;
                queries::chat::update(conn, &row)?;
                if let Some(case_id) = &row.case_id {
                    queries::events::outbox_due_now(conn, case_id, "reply.chat", now)?;
                    crate::cases::event(
                        conn,
                        case_id,
                        "chat_ended",
                        &(ActorKind::Customer, Some(row.customer_id.clone())),
                        serde_json::json!({"session_id": row.id}),
                        now,
                    )?;
                }
                session_view(conn, &row)
            })
            .await?;
        self.wake_outbox();
        if let Some(case_id) = &view.case_id {
            self.chat_hub().publish(ChatEvent::Session {
                case_id: case_id.clone(),
                session_id: view.session_id.clone(),
                state: SessionState::Ended,
                customer_name: view.customer_name.clone(),
            });
        }
        Ok(view)
    }

    /// The visitor left an address in the widget.
    pub async fn chat_set_email(&self, session_id: String, email: String) -> AppResult<ChatSession> {
        let email =
            normalize_identity(IdentityKind::Email, &email).map_err(|e| AppError::invalid(format!("email: {e}")))?;
        let now = self.now_naive();
        self.write(move |conn| {
            let row = load_session(conn, &session_id)?;
            claim_email(conn, &row.customer_id, &email, now)?;
            session_view(conn, &row)
        })
        .await
    }

    /// The conversation after position `after`, up to `limit` lines, in order.
    pub async fn chat_history(&self, case_id: String, after: i64, limit: i64) -> AppResult<Vec<ChatLine>> {
        self.read(move |conn| history(conn, &case_id, after, limit)).await
    }

    /// [`App::chat_history`] for an agent (checks the permission and that the case exists).
    pub async fn chat_history_for(
        &self,
        who: &Principal,
        case_id: String,
        after: i64,
        limit: i64,
    ) -> AppResult<Vec<ChatLine>> {
        who.require_read()?;
        self.read(move |conn| {
            queries::cases::get(conn, &case_id)?.ok_or(AppError::NotFound("case"))?;
            // The desk's copy: survey links masked (ADR 0014).
            let mut lines = history(conn, &case_id, after, limit)?;
            for l in &mut lines {
                l.body = crate::satisfaction::mask_links(&l.body);
            }
            Ok(lines)
        })
        .await
    }

    /// An agent's answer in a chat: a reply with the agent's client id (repeats are ignored).
    pub async fn chat_agent_reply(
        &self,
        who: &Principal,
        case_id: String,
        client_id: String,
        body: String,
    ) -> AppResult<ChatAck> {
        who.require_write()?;
        check_client_id(&client_id)?;
        let body = required("body", &body)?;
        check_len("body", &body, self.settings().limits.max_message_bytes)?;
        let actor = who.actor();
        let agent = actor.1.clone().unwrap_or_default();
        let append = Append {
            kind: MessageKind::Reply,
            body,
            status: None,
            external_id: Some(format!("agent:{agent}:{client_id}")),
            actor,
        };
        let done = self.append(case_id, append).await?;
        Ok(ChatAck {
            client_id,
            message_id: done.message.id.clone(),
            case_id: done.case.id.clone(),
            case_number: done.case.number,
            seq: done.message.seq.unwrap_or_default(),
        })
    }

    /// The name the customer sees for this caller (an agent's name; the support name for
    /// integrations).
    pub async fn display_name(&self, who: &Principal) -> AppResult<String> {
        let fallback = self.settings().email.from_name.clone();
        match who {
            Principal::Agent { id, .. } => {
                let id = id.as_str().to_owned();
                self.read(move |conn| Ok(queries::agents::get(conn, &id)?.map(|a| a.name).unwrap_or(fallback))).await
            }
            _ => Ok(fallback),
        }
    }

    /// Tells the other side that someone is typing (nothing is stored).
    pub fn chat_typing(&self, case_id: String, from: ChatAuthor, name: String, typing: bool) {
        self.chat_hub().publish(ChatEvent::Typing { case_id, from, name, typing });
    }

    /// Tells agents a visitor joined or left a conversation.
    pub fn chat_presence(&self, session: &ChatSession, state: SessionState) {
        if let Some(case_id) = &session.case_id {
            self.chat_hub().publish(ChatEvent::Session {
                case_id: case_id.clone(),
                session_id: session.session_id.clone(),
                state,
                customer_name: session.customer_name.clone(),
            });
        }
    }
}

fn history(conn: &mut DbConn, case_id: &str, after: i64, limit: i64) -> AppResult<Vec<ChatLine>> {
    let rows = queries::messages::after_seq(conn, case_id, after, limit)?;
    let mut names: HashMap<(String, Option<String>), String> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let key = (m.author_kind.clone(), m.author_id.clone());
        let name = match names.get(&key) {
            Some(n) => n.clone(),
            None => {
                let kind: ActorKind = stored("messages.author_kind", &m.author_kind)?;
                let n = crate::cases::author_name(conn, kind, m.author_id.as_deref())?;
                names.insert(key, n.clone());
                n
            }
        };
        out.extend(ChatLine::from_row(&m, &name));
    }
    Ok(out)
}

/// Compares two equal-length strings in time independent of where they differ.
fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_recovered_from_external_ids() {
        assert_eq!(client_id_of("0192-aa:c-1"), Some("c-1".into()));
        assert_eq!(client_id_of("0192-aa:c:1"), Some("c:1".into()));
        assert_eq!(client_id_of("agent:0192-bb:x:9"), Some("x:9".into()));
        assert_eq!(client_id_of("<mid@example.org>"), None);
    }

    #[test]
    fn client_ids_must_be_short_visible_ascii() {
        assert!(check_client_id("c-1").is_ok());
        assert!(check_client_id("").is_err());
        assert!(check_client_id("a b").is_err());
        assert!(check_client_id(&"x".repeat(101)).is_err());
    }

    #[test]
    fn templates_fill_name_and_number() {
        assert_eq!(fill("Hi {name}, case #{number}", "Ana", 1042), "Hi Ana, case #1042");
        assert_eq!(fill("Hi {name}", "", 1), "Hi there");
    }

    #[test]
    fn hub_delivers_case_events_to_the_case_and_every_event_to_agents() {
        let hub = ChatHub::default();
        let mut case_a = hub.subscribe_case("a");
        let mut agents = hub.subscribe_agents();
        hub.publish(ChatEvent::Typing {
            case_id: "b".into(),
            from: ChatAuthor::Customer,
            name: String::new(),
            typing: true,
        });
        hub.publish(ChatEvent::Typing {
            case_id: "a".into(),
            from: ChatAuthor::Agent,
            name: "Ann".into(),
            typing: true,
        });
        assert_eq!(case_a.try_recv().map(|e| e.case_id().to_owned()).ok(), Some("a".into()));
        assert!(case_a.try_recv().is_err(), "case b's event must not reach case a");
        assert_eq!(agents.try_recv().map(|e| e.case_id().to_owned()).ok(), Some("b".into()));
        assert_eq!(agents.try_recv().map(|e| e.case_id().to_owned()).ok(), Some("a".into()));
        drop(case_a);
        hub.publish(ChatEvent::Typing {
            case_id: "a".into(),
            from: ChatAuthor::Agent,
            name: String::new(),
            typing: false,
        });
        assert!(hub.cases.lock().map(|c| c.is_empty()).unwrap_or(false), "an unheard case channel is dropped");
        let rx = hub.subscribe_case("b");
        hub.forget_case("b");
        assert!(hub.cases.lock().map(|c| c.len() == 1).unwrap_or(false), "kept while someone listens");
        drop(rx);
        hub.forget_case("b");
        assert!(hub.cases.lock().map(|c| c.is_empty()).unwrap_or(false), "forgotten when the last socket left");
    }
}
