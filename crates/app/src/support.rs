//! The public web form: validation with errors per field, the honeypot, attachments, and one
//! transaction that resolves the customer, opens the case (channel `web`) and queues the
//! acknowledgement email through the outbox. Shared by the HTML page and the JSON endpoint.

use crate::cases::{append_message, open_case, Append, MessageKind, Opening, ReplyRules};
use crate::customers::{resolve_customer, CustomerRef};
use crate::error::AppError;
use crate::{clean, new_id, App};
use caseflow_core::*;
use caseflow_store::models::*;
use caseflow_store::queries;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a visitor submits.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    #[schema(min_length = 1)]
    pub message: String,
    /// A key of the configured topics.
    #[serde(default)]
    pub topic: Option<String>,
    /// A value the form generated once; submitting it again (double click, retry) returns the
    /// first case instead of opening another.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub submission_id: Option<String>,
    /// The honeypot: people never fill it in (it is hidden); anything here is refused.
    #[serde(default)]
    pub website: Option<String>,
    /// Files (HTML form only; the JSON endpoint takes none).
    #[serde(skip)]
    pub attachments: Vec<Upload>,
}

/// An uploaded file.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A field the visitor has to correct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The form field's name.
    pub field: String,
    pub message: String,
}

/// Why a submission was not taken.
#[derive(Debug)]
pub enum SubmitError {
    /// Fields to correct, in form order.
    Fields(Vec<FieldError>),
    /// The honeypot was filled in: an automated submission. Nothing was stored.
    Spam,
    /// Anything else (database unavailable, ...).
    App(AppError),
}

impl From<AppError> for SubmitError {
    fn from(e: AppError) -> Self {
        SubmitError::App(e)
    }
}

impl SubmitError {
    /// One message for all field errors (`{code, message}` clients).
    pub fn summary(errors: &[FieldError]) -> String {
        errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
    }
}

/// The confirmation shown to the visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SupportReceipt {
    /// The case number to quote (`[#1042]`).
    pub case_number: i64,
    /// False when `submission_id` repeated an earlier submission.
    pub created: bool,
    /// Whether an acknowledgement email was queued.
    pub acknowledgement_queued: bool,
}

struct Clean {
    name: String,
    email: String,
    subject: String,
    message: String,
    topic: Option<String>,
    submission_id: Option<String>,
}

fn field(errors: &mut Vec<FieldError>, name: &str, message: impl Into<String>) {
    errors.push(FieldError { field: name.into(), message: message.into() });
}

impl App {
    /// Checks a submission as the form shows it: every problem, per field.
    fn validate_support(&self, r: &SupportRequest) -> Result<Clean, Vec<FieldError>> {
        let s = self.settings();
        let mut errors = Vec::new();
        let name = clean(&r.name);
        if name.is_empty() {
            field(&mut errors, "name", "Please enter your name.");
        } else if name.chars().count() > 200 {
            field(&mut errors, "name", "Please use at most 200 characters.");
        }
        let email = match normalize_identity(IdentityKind::Email, r.email.trim()) {
            Ok(e) => e,
            Err(_) if r.email.trim().is_empty() => {
                field(&mut errors, "email", "Please enter your email address.");
                String::new()
            }
            Err(_) => {
                field(&mut errors, "email", "This does not look like an email address (name@example.com).");
                String::new()
            }
        };
        let subject: String = clean(&r.subject).replace(['\r', '\n'], " ");
        if subject.is_empty() {
            field(&mut errors, "subject", "Please enter a subject.");
        } else if subject.chars().count() > 200 {
            field(&mut errors, "subject", "Please use at most 200 characters.");
        }
        let topic = match r.topic.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) if s.web_form.topic(t).is_some() => Some(t.to_owned()),
            Some(_) => {
                field(&mut errors, "topic", "Please choose one of the listed topics.");
                None
            }
            None if !s.web_form.topics.is_empty() => {
                field(&mut errors, "topic", "Please choose a topic.");
                None
            }
            None => None,
        };
        let message = clean(&r.message);
        if message.is_empty() {
            field(&mut errors, "message", "Please describe your request.");
        } else if message.len() > s.limits.max_message_bytes {
            field(
                &mut errors,
                "message",
                format!("Please shorten the message to {} bytes.", s.limits.max_message_bytes),
            );
        }
        if r.attachments.len() > s.web_form.max_attachments {
            field(&mut errors, "attachments", format!("Please attach at most {} files.", s.web_form.max_attachments));
        }
        for a in &r.attachments {
            if a.bytes.len() > s.limits.max_attachment_bytes {
                field(
                    &mut errors,
                    "attachments",
                    format!("{} is larger than {} bytes.", display_name(&a.filename), s.limits.max_attachment_bytes),
                );
            }
        }
        let submission_id = match r.submission_id.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) if v.len() <= 100 && v.bytes().all(|b| b.is_ascii_graphic()) => Some(v.to_owned()),
            Some(_) => {
                field(&mut errors, "submission_id", "Must be 1-100 visible ASCII characters.");
                None
            }
            None => None,
        };
        // Scoped to the submitter: another person's id can never return someone else's case.
        let submission_id = submission_id.map(|sid| {
            let digest: String = Sha256::digest(email.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("{digest}:{sid}")
        });
        if errors.is_empty() {
            Ok(Clean { name, email, subject, message, topic, submission_id })
        } else {
            Err(errors)
        }
    }

    /// Takes a web-form submission: one transaction creates (or finds) the customer by email,
    /// opens the case with its attachments and queues the acknowledgement; on any error
    /// nothing is stored.
    pub async fn submit_support(&self, request: SupportRequest) -> Result<SupportReceipt, SubmitError> {
        let reject = |reason: &str| {
            self.metrics().submissions_rejected.with_label_values(&[Channel::Web.as_str(), reason]).inc();
        };
        if request.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
            reject("honeypot");
            tracing::info!("web form submission discarded: honeypot filled");
            return Err(SubmitError::Spam);
        }
        let c = match self.validate_support(&request) {
            Ok(c) => c,
            Err(errors) => {
                reject("validation");
                return Err(SubmitError::Fields(errors));
            }
        };
        let rules = ReplyRules::from_settings(self.settings());
        let template = self.settings().web_form.acknowledgement.clone();
        let now = self.now_naive();
        let topic = c.topic.as_deref().and_then(|t| self.settings().web_form.topic(t)).cloned();
        let alerts = topic.as_ref().is_some_and(|t| t.alert_supervisors);
        let attachments = std::sync::Arc::new(request.attachments);
        let c = std::sync::Arc::new(c);
        // A second attempt after losing a race on the submission id (a double click sent
        // twice at once) finds the first submission's case.
        let receipt = crate::cases::write_retrying(self, 2, move |conn| {
            if let Some(sid) = &c.submission_id {
                if let Some(m) = queries::messages::find_by_external_id(conn, Channel::Web.as_str(), sid)? {
                    let case = queries::cases::get(conn, &m.case_id)?.ok_or(AppError::NotFound("case"))?;
                    return Ok(SupportReceipt {
                        case_number: case.number,
                        created: false,
                        acknowledgement_queued: false,
                    });
                }
            }
            let actor = (ActorKind::Customer, None);
            let who = CustomerRef { email: Some(c.email.clone()), name: Some(c.name.clone()), ..Default::default() };
            let (customer, _) = resolve_customer(conn, &who, &actor, now)?;
            let actor = (ActorKind::Customer, Some(customer.id.clone()));
            let route = crate::routing::topic_route(conn, topic.as_ref())?;
            let (case, first) = open_case(
                conn,
                Opening {
                    subject: c.subject.clone(),
                    body: c.message.clone(),
                    channel: Channel::Web,
                    priority: route.priority,
                    customer_id: &customer.id,
                    team_id: route.team_id,
                    assignee_id: None,
                    topic: c.topic.clone(),
                    external_id: c.submission_id.clone(),
                    linked_case_id: None,
                    skills: route.skills,
                },
                &actor,
                now,
            )?;
            topic_alert(conn, &case, topic.as_ref(), Channel::Web, now)?;
            for a in attachments.iter() {
                queries::messages::insert_attachment(
                    conn,
                    &NewAttachment {
                        id: new_id(),
                        message_id: first.id.clone(),
                        filename: display_name(&a.filename),
                        content_type: content_type(&a.content_type),
                        size_bytes: i64::try_from(a.bytes.len()).unwrap_or(i64::MAX),
                        sha256: Sha256::digest(&a.bytes).iter().map(|b| format!("{b:02x}")).collect(),
                        inline_cid: None,
                        content: a.bytes.clone(),
                        created_at: now,
                    },
                )?;
            }
            let ack = !template.trim().is_empty();
            if ack {
                let expected = if template.contains("{expected}") {
                    crate::sla::expected_answer(conn, &case.id, now)?
                } else {
                    String::new()
                };
                let body = template
                    .replace("{name}", &c.name)
                    .replace("{number}", &case.number.to_string())
                    .replace("{subject}", &c.subject)
                    .replace("{expected}", &expected);
                let a = Append {
                    kind: MessageKind::Reply,
                    body,
                    status: None,
                    external_id: None,
                    actor: (ActorKind::System, None),
                };
                append_message(conn, &rules, &case.id, a, now)?;
            }
            Ok(SupportReceipt { case_number: case.number, created: true, acknowledgement_queued: ack })
        })
        .await?;
        if receipt.created {
            self.metrics().cases_created.with_label_values(&[Channel::Web.as_str()]).inc();
            self.metrics().messages_ingested.with_label_values(&[Channel::Web.as_str()]).inc();
            if receipt.acknowledgement_queued {
                self.wake_outbox();
            }
            if alerts {
                self.notify_alerts();
            }
        }
        Ok(receipt)
    }

    /// Counts a submission refused before it reached [`App::submit_support`] (rate limit,
    /// upload too large).
    pub fn count_rejected_submission(&self, channel: Channel, reason: &str) {
        self.metrics().submissions_rejected.with_label_values(&[channel.as_str(), reason]).inc();
    }
}

/// Alerts supervisors about a case just opened on a topic that asks for it (a complaint): the
/// case's team's supervisors, or every supervisor when the topic routes to no team.
pub(crate) fn topic_alert(
    conn: &mut caseflow_store::DbConn,
    case: &CaseRow,
    topic: Option<&crate::settings::TopicSettings>,
    channel: Channel,
    now: chrono::NaiveDateTime,
) -> crate::AppResult<bool> {
    let Some(t) = topic.filter(|t| t.alert_supervisors) else { return Ok(false) };
    let via = match channel {
        Channel::Chat => "in a chat",
        _ => "on the web form",
    };
    let message = format!("Case #{}: new \"{}\" {via}: {}", case.number, t.label, case.subject);
    crate::sla::team_alert(conn, case, "topic", message, now)?;
    Ok(true)
}

/// A file name safe to store and show: the last path component, no control characters,
/// at most 255 characters.
pub fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    let name = name.trim().to_owned();
    if name.is_empty() || name == "." || name == ".." {
        "attachment".into()
    } else {
        name
    }
}

fn content_type(raw: &str) -> String {
    let t = raw.trim();
    let ok = !t.is_empty() && t.len() <= 255 && t.contains('/') && t.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        t.to_owned()
    } else {
        "application/octet-stream".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(display_name("C:\\Users\\ana\\invoice.pdf"), "invoice.pdf");
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("a\u{0}b\n.txt"), "ab.txt");
        assert_eq!(display_name(".."), "attachment");
        assert_eq!(display_name(""), "attachment");
    }

    #[test]
    fn content_types_fall_back_to_octet_stream() {
        assert_eq!(content_type("image/png"), "image/png");
        assert_eq!(content_type("nonsense"), "application/octet-stream");
        assert_eq!(content_type("text/plain\r\nX: y"), "application/octet-stream");
    }
}
