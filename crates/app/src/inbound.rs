//! Receiving email: one raw message in, a case created or continued (or a note, a bounce
//! recorded, an ignore or a quarantine) out, in one transaction. Every raw message is kept in
//! `inbound_messages` with its outcome, which is also the deduplication ledger: a message seen
//! before (same Message-ID, or same bytes without one) is recognised and not processed twice.

use crate::auth::Principal;
use crate::cases::{event_row, NewCaseRow};
use crate::customers::{resolve_customer_in, CustomerRef};
use crate::error::{AppError, AppResult};
use crate::journal::Journal;
use crate::views::stored;
use crate::{new_id, utc, App, Page};
use caseflow_core::*;
use caseflow_ingest::{email, Disposition, ParseConfig, ParsedEmail, Quarantine};
use caseflow_store::models::*;
use caseflow_store::{queries, DbConn, Store};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

/// What became of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new case was opened.
    CaseCreated,
    /// The message continued an existing case.
    Threaded,
    /// Recorded as an internal note (an automatic reply to an active case).
    NoteAdded,
    /// A bounce of one of our messages: the message was marked failed on its case.
    BounceRecorded,
    /// Not a case by design (auto-reply to nothing, mailing list, our own mail); kept raw.
    Ignored,
    /// Could not be processed; kept raw with the reason for an admin.
    Quarantined,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::CaseCreated => "case_created",
            Outcome::Threaded => "threaded",
            Outcome::NoteAdded => "note_added",
            Outcome::BounceRecorded => "bounce_recorded",
            Outcome::Ignored => "ignored",
            Outcome::Quarantined => "quarantined",
        }
    }
}

/// The answer for one inbound message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Received {
    /// The inbound record (`GET /api/v1/inbound/{id}`).
    pub id: String,
    pub outcome: Outcome,
    /// Why: the threading rule, the ignore reason or the quarantine reason.
    pub reason: String,
    pub case_id: Option<CaseId>,
    pub message_id: Option<MessageId>,
    /// True when this exact message had been received before; nothing new was done.
    pub duplicate: bool,
}

/// An inbound message as listed for admins (no raw bytes).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboundView {
    pub id: String,
    pub channel: String,
    pub source: String,
    pub outcome: String,
    pub reason: String,
    pub case_id: Option<CaseId>,
    pub message_id: Option<MessageId>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<InboundMeta> for InboundView {
    fn from(r: InboundMeta) -> Self {
        Self {
            id: r.id,
            channel: r.channel,
            source: r.source,
            outcome: r.outcome,
            reason: r.reason,
            case_id: r.case_id.map(CaseId::new),
            message_id: r.message_id.map(MessageId::new),
            created_at: utc(r.created_at),
            resolved_at: r.resolved_at.map(utc),
        }
    }
}

struct Done {
    outcome: Outcome,
    reason: String,
    case_id: Option<String>,
    message_id: Option<String>,
}

impl Done {
    fn ignored(reason: impl Into<String>) -> Self {
        Self { outcome: Outcome::Ignored, reason: reason.into(), case_id: None, message_id: None }
    }
}

fn system() -> (ActorKind, Option<String>) {
    (ActorKind::System, None)
}

#[allow(clippy::too_many_arguments)]
fn insert_message(
    conn: &mut DbConn,
    j: &mut Journal,
    case: &CaseRow,
    direction: MessageDirection,
    author: (ActorKind, Option<String>),
    body: String,
    email: Option<&ParsedEmail>,
    rule: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<MessageRow> {
    let row = MessageRow {
        id: new_id(),
        case_id: case.id.clone(),
        direction: direction.as_str().into(),
        channel: Channel::Email.as_str().into(),
        author_kind: author.0.as_str().into(),
        author_id: author.1,
        body_text: body,
        body_html: email.and_then(|e| e.html.clone()),
        // Notes about a message (auto-replies) must not claim the message's id: the real
        // customer reply to the same thread still has to be recognised.
        external_id: email.filter(|_| direction == MessageDirection::Inbound).and_then(|e| e.message_id.clone()),
        message_id_header: email.and_then(|e| e.message_id.clone()),
        in_reply_to: email.and_then(|e| e.in_reply_to.first().cloned()),
        references_header: email.map(|e| e.references.join(" ")).filter(|r| !r.is_empty()),
        thread_rule: rule.map(str::to_owned),
        delivery_status: None,
        created_at: now,
        body_full: email
            .map(|e| e.text.clone())
            .filter(|full| direction == MessageDirection::Inbound && !full.is_empty()),
        delivery_error: None,
        seq: None,
    };
    queries::messages::insert(conn, &row)?;
    if let Some(e) = email {
        for a in &e.attachments {
            use sha2::Digest;
            let digest: String = sha2::Sha256::digest(&a.content).iter().map(|b| format!("{b:02x}")).collect();
            queries::messages::insert_attachment(
                conn,
                &NewAttachment {
                    id: new_id(),
                    message_id: row.id.clone(),
                    filename: a.filename.chars().take(255).collect(),
                    content_type: a.content_type.chars().take(255).collect(),
                    size_bytes: i64::try_from(a.content.len()).unwrap_or(i64::MAX),
                    sha256: digest,
                    inline_cid: a.inline_cid.clone(),
                    content: a.content.clone(),
                    created_at: now,
                },
            )?;
        }
    }
    j.case_event(
        conn,
        event_row(
            &case.id,
            "message_added",
            &author_actor(&row),
            serde_json::json!({"message_id": row.id, "direction": direction, "channel": "email", "thread_rule": rule}),
            now,
        ),
    )?;
    Ok(row)
}

fn author_actor(row: &MessageRow) -> (ActorKind, Option<String>) {
    (row.author_kind.parse().unwrap_or(ActorKind::System), row.author_id.clone())
}

/// The case a message continues: our Message-IDs first, then the subject tag (only from the
/// case's own customer), never the subject text alone.
fn find_thread(
    conn: &mut DbConn,
    e: &ParsedEmail,
    cfg: &ParseConfig,
    customer_id: Option<&str>,
) -> AppResult<Option<(CaseRow, &'static str)>> {
    let keys = email::thread_keys(e, cfg);
    if !keys.our_message_ids.is_empty() {
        if let Some(m) = queries::messages::find_by_message_id_header(conn, &keys.our_message_ids)? {
            if let Some(c) = queries::cases::get(conn, &m.case_id)? {
                return Ok(Some((c, "message_id")));
            }
        }
    }
    // A customer's own earlier message referenced (e.g. they reply to their own mail).
    let mut theirs: Vec<String> = e.in_reply_to.iter().chain(e.references.iter()).cloned().collect();
    theirs.retain(|id| !keys.our_message_ids.contains(id));
    if !theirs.is_empty() {
        if let Some(m) = queries::messages::find_by_message_id_header(conn, &theirs)? {
            if let Some(c) = queries::cases::get(conn, &m.case_id)? {
                if Some(c.customer_id.as_str()) == customer_id {
                    return Ok(Some((c, "references")));
                }
            }
        }
    }
    if let (Some(n), Some(cust)) = (keys.subject_number, customer_id) {
        if let Some(c) = queries::cases::get_by_number(conn, n)? {
            if c.customer_id == cust {
                return Ok(Some((c, "subject_tag")));
            }
        }
    }
    Ok(None)
}

fn new_case(
    conn: &mut DbConn,
    j: &mut Journal,
    e: &ParsedEmail,
    customer_id: &str,
    linked: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<CaseRow> {
    let number = j.next_case_number(conn)?;
    let subject = if e.subject.is_empty() { "(no subject)".to_owned() } else { e.subject.chars().take(998).collect() };
    let row = NewCaseRow {
        number,
        subject,
        priority: Priority::Normal,
        channel: Channel::Email,
        customer_id,
        team_id: None,
        assignee_id: None,
        linked_case_id: linked.map(str::to_owned),
        topic: None,
    }
    .build(now);
    queries::cases::insert(conn, &row)?;
    j.case_event(
        conn,
        event_row(
            &row.id,
            "case_created",
            &(ActorKind::Customer, Some(customer_id.to_owned())),
            serde_json::json!({"number": number, "channel": "email", "linked_case_id": linked}),
            now,
        ),
    )?;
    Ok(row)
}

fn save_case(conn: &mut DbConn, old: &CaseRow, mut new: CaseRow, now: NaiveDateTime) -> AppResult<CaseRow> {
    new.version = old.version + 1;
    new.updated_at = now;
    if !queries::cases::update_if_version(conn, &new, old.version)? {
        return Err(AppError::VersionConflict("case"));
    }
    Ok(new)
}

fn body_of(e: &ParsedEmail) -> String {
    let mut body = if e.new_text.trim().is_empty() { "(no text)".to_owned() } else { e.new_text.clone() };
    for (name, size) in &e.oversized_attachments {
        body.push_str(&format!("\n\n[attachment {name} ({size} bytes) not stored: over the size limit]"));
    }
    body
}

fn human(
    conn: &mut DbConn,
    j: &mut Journal,
    e: &ParsedEmail,
    cfg: &ParseConfig,
    now: NaiveDateTime,
) -> AppResult<Done> {
    let from = e.from.as_ref().ok_or_else(|| AppError::invalid("no sender"))?;
    let customer_ref =
        CustomerRef { email: Some(from.address.to_string()), name: from.name.clone(), ..CustomerRef::default() };
    let (customer, _) = resolve_customer_in(conn, j, &customer_ref, &(ActorKind::Customer, None), now)?;
    let author = (ActorKind::Customer, Some(customer.id.clone()));
    match find_thread(conn, e, cfg, Some(&customer.id))? {
        Some((case, rule)) => {
            let status: CaseStatus = stored("cases.status", &case.status)?;
            if status == CaseStatus::Closed {
                // A reply to a closed case opens a new case linked to the old one.
                let fresh = new_case(conn, j, e, &customer.id, Some(&case.id), now)?;
                let m = insert_message(
                    conn,
                    j,
                    &fresh,
                    MessageDirection::Inbound,
                    author,
                    body_of(e),
                    Some(e),
                    Some("reopened_closed"),
                    now,
                )?;
                return Ok(Done {
                    outcome: Outcome::CaseCreated,
                    reason: format!("reply to closed case #{}", case.number),
                    case_id: Some(fresh.id),
                    message_id: Some(m.id),
                });
            }
            let m = insert_message(
                conn,
                j,
                &case,
                MessageDirection::Inbound,
                author,
                body_of(e),
                Some(e),
                Some(rule),
                now,
            )?;
            let to = status.on_customer_reply()?;
            let mut new = case.clone();
            new.last_message_at = now;
            if to != status {
                new.status = to.as_str().into();
                if to.is_active() {
                    new.solved_at = None;
                }
                crate::cases::track_waiting(&case, &mut new, now);
                j.case_event(
                    conn,
                    event_row(
                        &case.id,
                        "status_changed",
                        &(ActorKind::Customer, Some(customer.id.clone())),
                        serde_json::json!({"from": status, "to": to}),
                        now,
                    ),
                )?;
            }
            save_case(conn, &case, new, now)?;
            Ok(Done { outcome: Outcome::Threaded, reason: rule.into(), case_id: Some(case.id), message_id: Some(m.id) })
        }
        None => {
            let case = new_case(conn, j, e, &customer.id, None, now)?;
            let m = insert_message(
                conn,
                j,
                &case,
                MessageDirection::Inbound,
                author,
                body_of(e),
                Some(e),
                Some("new"),
                now,
            )?;
            Ok(Done {
                outcome: Outcome::CaseCreated,
                reason: "new".into(),
                case_id: Some(case.id),
                message_id: Some(m.id),
            })
        }
    }
}

fn auto_reply(
    conn: &mut DbConn,
    j: &mut Journal,
    e: &ParsedEmail,
    reason: &str,
    cfg: &ParseConfig,
    now: NaiveDateTime,
) -> AppResult<Done> {
    let customer = match &e.from {
        Some(f) => queries::customers::find_identity(conn, "email", f.address.as_str())?.map(|i| i.customer_id),
        None => None,
    };
    if let Some((case, rule)) = find_thread(conn, e, cfg, customer.as_deref())? {
        let status: CaseStatus = stored("cases.status", &case.status)?;
        if status.is_active() {
            let body = format!("Automatic reply received ({reason}):\n\n{}", e.new_text.trim());
            let m = insert_message(conn, j, &case, MessageDirection::Note, system(), body, Some(e), Some(rule), now)?;
            return Ok(Done {
                outcome: Outcome::NoteAdded,
                reason: format!("auto-reply ({reason})"),
                case_id: Some(case.id),
                message_id: Some(m.id),
            });
        }
    }
    Ok(Done::ignored(format!("auto-reply ({reason})")))
}

fn bounce(
    conn: &mut DbConn,
    j: &mut Journal,
    e: &ParsedEmail,
    reason: &str,
    original: &[String],
    now: NaiveDateTime,
) -> AppResult<Done> {
    if original.is_empty() {
        return Ok(Done::ignored(format!("bounce ({reason}) of no message of ours")));
    }
    let Some(ours) = queries::messages::find_by_message_id_header(conn, original)? else {
        return Ok(Done::ignored(format!("bounce ({reason}) of no message of ours")));
    };
    if ours.direction != MessageDirection::Outbound.as_str() {
        return Ok(Done::ignored(format!("bounce ({reason}) of a message that is not ours")));
    }
    queries::messages::set_delivery_status(conn, &ours.id, "failed")?;
    let case = queries::cases::get(conn, &ours.case_id)?.ok_or(AppError::NotFound("case"))?;
    let body = format!("Delivery of a reply failed ({reason}):\n\n{}", e.new_text.trim());
    let m = insert_message(conn, j, &case, MessageDirection::Note, system(), body, Some(e), Some("bounce"), now)?;
    j.case_event(
        conn,
        event_row(
            &case.id,
            "delivery_failed",
            &system(),
            serde_json::json!({"message_id": ours.id, "reason": reason}),
            now,
        ),
    )?;
    Ok(Done {
        outcome: Outcome::BounceRecorded,
        reason: format!("bounce ({reason})"),
        case_id: Some(case.id),
        message_id: Some(m.id),
    })
}

/// One message fetched from a mailbox.
#[derive(Debug, Clone)]
pub struct FetchedMail {
    pub uid: u32,
    pub raw: Vec<u8>,
}

type ParseResult = Result<ParsedEmail, Quarantine>;
type Parsed = (u32, ParseResult, Vec<u8>);

/// The ledger key of a message, parsed or not.
fn dedup_key(p: &ParseResult) -> &str {
    match p {
        Ok(e) => &e.dedup_key,
        Err(q) => &q.dedup_key,
    }
}

/// Connections one PostgreSQL batch is spread over, and the smallest part worth its own.
const PARALLEL_PARTS: usize = 8;
const MIN_PART: usize = 16;

/// A stable bucket for a sender (FNV-1a), so one sender's messages share a transaction.
fn bucket_of(key: &str, parts: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    usize::try_from(h % parts as u64).unwrap_or(0)
}

/// The journal of a batch part, with what the part will ask for looked up in three round trips:
/// the ledger entries of its dedup keys, its senders' identities, and a case number for each
/// message that is certain to open a case (a human message, not seen before, without any
/// threading hint: no In-Reply-To, no References, no subject tag), so numbers are rarely wasted.
fn batch_journal(conn: &mut DbConn, part: &[Parsed]) -> AppResult<Journal> {
    let known = known_entries(conn, part)?;
    let seen: std::collections::HashSet<&str> = known.iter().map(|m| m.dedup_key.as_str()).collect();
    let mut senders = Vec::new();
    let mut fresh = 0;
    let mut keys = std::collections::HashSet::new();
    for (_, p, _) in part {
        let Ok(e) = p else { continue };
        if let Some(f) = &e.from {
            senders.push(f.address.to_string());
        }
        let certain_case = e.disposition == Disposition::Human
            && e.from.is_some()
            && !seen.contains(e.dedup_key.as_str())
            && keys.insert(e.dedup_key.as_str())
            && e.in_reply_to.is_empty()
            && e.references.is_empty()
            && !e.subject.contains('[');
        fresh += usize::from(certain_case);
    }
    let mut j = Journal::deferred(known);
    j.preload_identities(conn, IdentityKind::Email.as_str(), senders)?;
    j.reserve_case_numbers(conn, fresh)?;
    Ok(j)
}

/// The ledger entries already stored for a part's dedup keys (one query).
fn known_entries(conn: &mut DbConn, part: &[Parsed]) -> AppResult<Vec<InboundMeta>> {
    let keys: Vec<String> = part.iter().map(|(_, p, _)| dedup_key(p).to_owned()).collect();
    Ok(queries::inbound::find_many(conn, "email", &keys)?)
}

/// Whether an error belongs to one message (it is quarantined with the reason, so that one
/// bad message cannot block a mailbox) rather than to the moment (lost connection, a
/// serialization conflict or a concurrent insert of the same key on another node: the batch
/// is retried and the dedup ledger sorts it out).
fn is_message_error(e: &AppError) -> bool {
    !matches!(e, AppError::Unavailable(_) | AppError::VersionConflict(_) | AppError::AlreadyExists(_))
}

async fn parse_off_thread(raw: Vec<u8>, cfg: ParseConfig) -> AppResult<(Vec<u8>, ParseResult)> {
    crate::blocking(move || {
        let parsed = email::parse(&raw, &cfg);
        Ok((raw, parsed))
    })
    .await
}

/// Receives one parsed message inside the caller's transaction: the dedup ledger first, then
/// the disposition, then the ledger row with the raw bytes.
fn receive_in(
    conn: &mut DbConn,
    j: &mut Journal,
    cfg: &ParseConfig,
    source: String,
    parsed: &ParseResult,
    raw: Vec<u8>,
    now: NaiveDateTime,
) -> AppResult<Received> {
    let dedup_key = dedup_key(parsed).to_owned();
    if let Some(seen) = j.seen(conn, "email", &dedup_key)? {
        let outcome = match seen.outcome.as_str() {
            "case_created" => Outcome::CaseCreated,
            "threaded" => Outcome::Threaded,
            "note_added" => Outcome::NoteAdded,
            "bounce_recorded" => Outcome::BounceRecorded,
            "quarantined" => Outcome::Quarantined,
            _ => Outcome::Ignored,
        };
        return Ok(Received {
            id: seen.id,
            outcome,
            reason: seen.reason,
            case_id: seen.case_id.map(CaseId::new),
            message_id: seen.message_id.map(MessageId::new),
            duplicate: true,
        });
    }
    let done = match parsed {
        Err(q) => Done {
            outcome: Outcome::Quarantined,
            reason: format!("{}: {}", q.reason.label(), q.detail),
            case_id: None,
            message_id: None,
        },
        Ok(e) => match &e.disposition {
            Disposition::Human => human(conn, j, e, cfg, now)?,
            Disposition::AutoReply { reason } => auto_reply(conn, j, e, reason, cfg, now)?,
            Disposition::Bounce { reason, original_message_ids } => {
                bounce(conn, j, e, reason, original_message_ids, now)?
            }
            Disposition::MailingList { reason } => Done::ignored(format!("mailing list ({reason})")),
            Disposition::OwnLoop { reason } => Done::ignored(format!("our own mail ({reason})")),
        },
    };
    let row = InboundRow {
        id: new_id(),
        channel: "email".into(),
        source,
        dedup_key,
        outcome: done.outcome.as_str().into(),
        reason: done.reason.chars().take(500).collect(),
        case_id: done.case_id.clone(),
        message_id: done.message_id.clone(),
        raw,
        created_at: now,
        resolved_at: None,
    };
    let (id, reason) = (row.id.clone(), row.reason.clone());
    j.inbound(conn, row)?;
    Ok(Received {
        id,
        outcome: done.outcome,
        reason,
        case_id: done.case_id.map(CaseId::new),
        message_id: done.message_id.map(MessageId::new),
        duplicate: false,
    })
}

impl App {
    /// The parser configuration from `email.*` and `limits.*`.
    pub fn email_parse_config(&self) -> ParseConfig {
        let s = self.settings();
        ParseConfig {
            our_addresses: s
                .email
                .support_addresses
                .iter()
                .filter_map(|a| EmailAddress::parse(a).ok())
                .map(String::from)
                .collect(),
            message_id_domain: s.email.message_id_domain.clone(),
            loop_header: s.email.loop_header.clone(),
            subject_tag_prefix: s.email.subject_tag_prefix.clone(),
            max_message_bytes: s.email.max_message_bytes,
            max_attachment_bytes: s.limits.max_attachment_bytes,
        }
    }

    /// Receives one raw email from `source` (a mailbox name, `api`, `cli`).
    pub async fn receive_email(&self, who: &Principal, source: String, raw: Vec<u8>) -> AppResult<Received> {
        who.require_write()?;
        let cfg = self.email_parse_config();
        let now = self.now_naive();
        // Parsing is pure CPU work: do it before taking a connection.
        let (raw, parsed) = parse_off_thread(raw, cfg.clone()).await?;
        let received = self
            .write(move |conn| receive_in(conn, &mut Journal::immediate(), &cfg, source, &parsed, raw, now))
            .await?;
        self.count_received(&received);
        Ok(received)
    }

    /// Receives a batch fetched from an IMAP mailbox in one transaction, and records in the
    /// same transaction how far the mailbox has been read (`uid_validity`, and the highest of
    /// `read_up_to` and the batch's UIDs), so
    /// that the caller may flag the messages as processed once this returns. A message whose
    /// processing fails for a reason of its own is quarantined; a database failure fails the
    /// whole batch (nothing is committed, the caller fetches it again).
    pub async fn receive_mailbox_batch(
        &self,
        mailbox: String,
        uid_validity: u32,
        mails: Vec<FetchedMail>,
        read_up_to: u32,
    ) -> AppResult<Vec<Received>> {
        let cfg = self.email_parse_config();
        let now = self.now_naive();
        let parsed = {
            let cfg = cfg.clone();
            crate::blocking(move || {
                Ok(mails.into_iter().map(|m| (m.uid, email::parse(&m.raw, &cfg), m.raw)).collect::<Vec<_>>())
            })
            .await?
        };
        let last_uid = parsed.iter().map(|(uid, _, _)| *uid).fold(read_up_to, u32::max);
        // PostgreSQL: the batch is split by sender over several connections that commit in
        // parallel (each database round trip waits on the network, not on a lock). Messages
        // of one sender stay together and in order, so threading within a batch is
        // unaffected. SQLite has one writer: one transaction.
        let parts = match self.store().backend() {
            caseflow_store::Backend::Postgres => PARALLEL_PARTS.min(parsed.len().div_ceil(MIN_PART)).max(1),
            caseflow_store::Backend::Sqlite => 1,
        };
        let mut buckets: Vec<Vec<Parsed>> = (0..parts).map(|_| Vec::new()).collect();
        for (uid, p, raw) in parsed {
            let key = p.as_ref().ok().and_then(|e| e.from.as_ref()).map(|f| f.address.to_string()).unwrap_or_default();
            let i = if parts == 1 { 0 } else { bucket_of(&key, parts) };
            buckets[i].push((uid, p, raw));
        }
        let mut tasks = Vec::with_capacity(parts);
        for bucket in buckets.into_iter().filter(|b| !b.is_empty()) {
            let (app, cfg, mailbox) = (self.clone(), cfg.clone(), mailbox.clone());
            tasks.push(tokio::spawn(async move { app.receive_part(cfg, mailbox, bucket, now).await }));
        }
        let mut received = Vec::new();
        let mut failed = None;
        for t in tasks {
            match t.await {
                Ok(Ok(mut r)) => received.append(&mut r),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(e) => failed = failed.or(Some(AppError::Internal(format!("batch task failed: {e}")))),
            }
        }
        // Committed parts are not undone: a retry finds them in the dedup ledger.
        for r in &received {
            self.count_received(r);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        // Only once every part committed may the mailbox position move past the batch.
        self.write(move |conn| {
            let prev = queries::mailboxes::get(conn, &mailbox)?;
            let kept = prev.filter(|p| p.uid_validity == i64::from(uid_validity)).map_or(0, |p| p.last_uid);
            queries::mailboxes::put(
                conn,
                &MailboxStateRow {
                    mailbox: mailbox.clone(),
                    uid_validity: i64::from(uid_validity),
                    last_uid: kept.max(i64::from(last_uid)),
                    updated_at: now,
                },
            )?;
            Ok(())
        })
        .await?;
        Ok(received)
    }

    /// One transaction over part of a batch. First without savepoints (two round trips less
    /// per message); if a message fails for a reason of its own, the part is done again with a
    /// savepoint per message and that message quarantined.
    async fn receive_part(
        &self,
        cfg: ParseConfig,
        mailbox: String,
        part: Vec<Parsed>,
        now: NaiveDateTime,
    ) -> AppResult<Vec<Received>> {
        let part = std::sync::Arc::new(part);
        let optimistic = {
            let (cfg, mailbox, part) = (cfg.clone(), mailbox.clone(), part.clone());
            self.write(move |conn| {
                let mut j = batch_journal(conn, &part)?;
                let out = part
                    .iter()
                    .map(|(_, p, raw)| receive_in(conn, &mut j, &cfg, mailbox.clone(), p, raw.clone(), now))
                    .collect::<AppResult<Vec<_>>>()?;
                j.flush(conn)?;
                Ok(out)
            })
            .await
        };
        match optimistic {
            Err(e) if is_message_error(&e) => {}
            other => return other,
        }
        self.write(move |conn| {
            let mut j = batch_journal(conn, &part)?;
            let mut out = Vec::with_capacity(part.len());
            for (_, parsed, raw) in part.iter() {
                let mark = j.mark();
                let attempt =
                    Store::savepoint(conn, |c| receive_in(c, &mut j, &cfg, mailbox.clone(), parsed, raw.clone(), now));
                let r = match attempt {
                    Ok(r) => r,
                    Err(e) if is_message_error(&e) => {
                        j.rollback_to(mark);
                        let q = Quarantine {
                            reason: email::QuarantineReason::Unparseable,
                            detail: format!("processing failed ({}): {e}", e.code()),
                            dedup_key: dedup_key(parsed).to_owned(),
                        };
                        receive_in(conn, &mut j, &cfg, mailbox.clone(), &Err(q), raw.clone(), now)?
                    }
                    Err(e) => return Err(e),
                };
                out.push(r);
            }
            j.flush(conn)?;
            Ok(out)
        })
        .await
    }

    /// How far a mailbox has been read: `(uid_validity, last_uid)`.
    pub async fn mailbox_position(&self, mailbox: String) -> AppResult<Option<(u32, u32)>> {
        self.read(move |conn| {
            Ok(queries::mailboxes::get(conn, &mailbox)?
                .map(|r| (u32::try_from(r.uid_validity).unwrap_or(0), u32::try_from(r.last_uid).unwrap_or(0))))
        })
        .await
    }

    fn count_received(&self, received: &Received) {
        if received.duplicate {
            return;
        }
        let m = self.metrics();
        match received.outcome {
            Outcome::Quarantined => m.messages_quarantined.with_label_values(&["email"]).inc(),
            Outcome::Ignored => m.messages_ignored.with_label_values(&["email", "by_design"]).inc(),
            Outcome::CaseCreated => {
                m.cases_created.with_label_values(&["email"]).inc();
                m.messages_ingested.with_label_values(&["email"]).inc();
            }
            _ => m.messages_ingested.with_label_values(&["email"]).inc(),
        }
        tracing::debug!(inbound.id = %received.id, outcome = received.outcome.as_str(), case.id = ?received.case_id, "email received");
    }

    /// Inbound messages, optionally only those with one outcome (`quarantined` for the
    /// quarantine), newest first (admin).
    pub async fn list_inbound(
        &self,
        who: &Principal,
        outcome: Option<String>,
        cursor: Option<String>,
        limit: Option<i64>,
    ) -> AppResult<Page<InboundView>> {
        who.require_admin()?;
        let limit = self.page_limit(limit)?;
        self.read(move |conn| {
            let rows = queries::inbound::list(conn, outcome.as_deref(), cursor.as_deref(), limit + 1)?;
            Ok(Page::from_rows(rows, limit, |r| r.id.clone(), InboundView::from))
        })
        .await
    }

    /// The raw bytes of an inbound message (admin), e.g. to inspect a quarantined one.
    pub async fn inbound_raw(&self, who: &Principal, id: String) -> AppResult<Vec<u8>> {
        who.require_admin()?;
        self.read(move |conn| Ok(queries::inbound::get(conn, &id)?.ok_or(AppError::NotFound("inbound message"))?.raw))
            .await
    }

    /// Processes a quarantined message again (after a parser fix or a configuration change).
    pub async fn reprocess_inbound(&self, who: &Principal, id: String) -> AppResult<Received> {
        who.require_admin()?;
        let now = self.now_naive();
        let row = self
            .write(move |conn| {
                let mut row = queries::inbound::get(conn, &id)?.ok_or(AppError::NotFound("inbound message"))?;
                if row.outcome != Outcome::Quarantined.as_str() || row.resolved_at.is_some() {
                    return Err(AppError::InvalidTransition(
                        "only quarantined messages not yet reprocessed can be reprocessed".into(),
                    ));
                }
                // Free the dedup key so the message is processed afresh; keep the record.
                row.dedup_key = format!("reprocessed:{}:{}", row.id, row.dedup_key);
                row.resolved_at = Some(now);
                queries::inbound::update(conn, &row)?;
                Ok(row)
            })
            .await?;
        self.receive_email(who, row.source, row.raw).await
    }
}
