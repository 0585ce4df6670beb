//! The outbox dispatcher: delivers side effects written in the same transaction as the state
//! change that caused them (today: email replies). At-least-once: a row is claimed with a
//! lease (compare-and-set on `next_attempt_at`, so two nodes never send the same row at the
//! same time), sent, and then marked delivered; a crash between sending and marking sends it
//! again after the lease, with the same Message-ID, which mail clients show once.
//!
//! The transport is a trait so that the dispatcher is tested with an in-process fake and runs
//! in production with the SMTP adapter of `caseflow-mail`.

use crate::cases::event;
use crate::error::{AppError, AppResult};
use crate::views::stored;
use crate::App;
use caseflow_core::*;
use caseflow_ingest::compose;
use caseflow_store::models::*;
use caseflow_store::{queries, DbConn};
use chrono::Duration as ChronoDuration;
use std::future::Future;
use std::time::Duration;

/// Outbox kinds this dispatcher delivers by email.
pub const EMAIL_KINDS: &[&str] = &["reply.email", "reply.chat"];

/// An email ready to be put on the wire (the adapter only encodes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The outbox row being delivered.
    pub outbox_id: String,
    /// Our message row.
    pub message_id: String,
    pub from_name: String,
    pub from_address: String,
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    /// `Message-ID` without angle brackets.
    pub message_id_header: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub text: String,
    pub html: String,
    /// `Auto-Submitted: auto-replied` (RFC 3834) for messages no human wrote.
    pub auto_submitted: bool,
    /// Our loop-detection header and its value.
    pub loop_header: (String, String),
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying (connection refused, 4xx, timeout).
    Temporary(String),
    /// Will never work (5xx: unknown recipient, refused content).
    Permanent(String),
}

/// A mail transport.
pub trait EmailSender: Send + Sync + 'static {
    /// Delivers one message to the next hop.
    fn send(&self, mail: &OutgoingEmail) -> impl Future<Output = Result<(), SendError>> + Send;
}

/// What one dispatch round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    /// Superseded by another worker after the lease ran out, or the outcome not recorded.
    pub other: usize,
}

impl RoundReport {
    /// Rows attempted in the round.
    pub fn total_attempts(&self) -> usize {
        self.delivered + self.retrying + self.failed + self.other
    }
}

enum Built {
    Mail(Box<OutgoingEmail>),
    /// The row's message cannot be turned into mail (no address): a permanent failure.
    Unsendable {
        message_id: String,
        why: String,
    },
}

fn customer_email(conn: &mut DbConn, customer_id: &str) -> AppResult<Option<(String, String)>> {
    let customer = queries::customers::get(conn, customer_id)?.ok_or(AppError::NotFound("customer"))?;
    let mut ids = queries::customers::identities(conn, customer_id)?;
    ids.retain(|i| i.kind == "email");
    ids.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(ids.into_iter().next().map(|i| (customer.name, i.value)))
}

fn split_ids(header: Option<&str>) -> Vec<String> {
    header.map(|h| h.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

impl App {
    fn build_email(&self, conn: &mut DbConn, row: &OutboxRow) -> AppResult<Built> {
        let payload: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| AppError::Internal(format!("outbox {} payload: {e}", row.id)))?;
        let message_id = payload["message_id"]
            .as_str()
            .ok_or_else(|| AppError::Internal(format!("outbox {} has no message_id", row.id)))?;
        let msg = queries::messages::get(conn, message_id)?.ok_or(AppError::NotFound("message"))?;
        let case = queries::cases::get(conn, &msg.case_id)?.ok_or(AppError::NotFound("case"))?;
        let Some((to_name, to_address)) = customer_email(conn, &case.customer_id)? else {
            return Ok(Built::Unsendable { message_id: msg.id, why: "the customer has no email address".into() });
        };
        let email = &self.settings().email;
        let author_kind: ActorKind = stored("messages.author_kind", &msg.author_kind)?;
        let from_name = match (author_kind, &msg.author_id) {
            (ActorKind::Agent, Some(id)) => match queries::agents::get(conn, id)? {
                Some(a) => format!("{} ({})", a.name, email.from_name),
                None => email.from_name.clone(),
            },
            _ => email.from_name.clone(),
        };
        // Answer the customer's last message; without one (a case opened through the API),
        // continue our own last message.
        let parent = match queries::messages::last_with_message_id_in(
            conn,
            &case.id,
            MessageDirection::Inbound.as_str(),
            &msg.id,
        )? {
            Some(p) => Some(p),
            None => queries::messages::last_with_message_id_in(
                conn,
                &case.id,
                MessageDirection::Outbound.as_str(),
                &msg.id,
            )?,
        };
        let (in_reply_to, references) = match &parent {
            Some(p) => (
                p.message_id_header.clone(),
                compose::references(&split_ids(p.references_header.as_deref()), p.message_id_header.as_deref()),
            ),
            None => (None, Vec::new()),
        };
        let message_id_header =
            msg.message_id_header.clone().unwrap_or_else(|| format!("caseflow.{}@{}", msg.id, email.message_id_domain));
        Ok(Built::Mail(Box::new(OutgoingEmail {
            outbox_id: row.id.clone(),
            message_id: msg.id.clone(),
            from_name,
            from_address: email.from_address.clone(),
            to_name,
            to_address,
            subject: compose::reply_subject(&case.subject, &email.subject_tag_prefix, case.number),
            message_id_header,
            in_reply_to,
            references,
            html: compose::text_to_html(&msg.body_text),
            text: msg.body_text,
            auto_submitted: author_kind == ActorKind::System,
            loop_header: (email.loop_header.clone(), email.message_id_domain.clone()),
        })))
    }

    /// The delay before attempt `attempts + 1`: exponential from `retry_base_secs`, capped.
    fn retry_delay(&self, attempts: i32) -> ChronoDuration {
        let s = &self.settings().smtp;
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let secs = s.retry_base_secs.saturating_mul(2u64.saturating_pow(exp)).min(s.retry_max_secs);
        ChronoDuration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
    }

    /// Claims the next due email row with a lease. One row at a time, so that a lease only
    /// has to cover one SMTP conversation (`smtp.lease_secs` ≥ 2 × `smtp.timeout_secs`).
    async fn claim_next_email_row(&self) -> AppResult<Option<OutboxRow>> {
        let now = self.now_naive();
        let lease = now + ChronoDuration::seconds(i64::try_from(self.settings().smtp.lease_secs).unwrap_or(120));
        self.write(move |conn| {
            // A few candidates: another node may win the first ones.
            for mut row in queries::events::outbox_due(conn, EMAIL_KINDS, now, 8)? {
                if queries::events::outbox_claim(conn, &row.id, row.next_attempt_at, lease)? {
                    row.attempts += 1;
                    row.next_attempt_at = lease;
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Records the outcome of one attempt on the outbox row and its message.
    async fn finish_email(
        &self,
        row: OutboxRow,
        message_id: Option<String>,
        result: Result<(), SendError>,
    ) -> AppResult<&'static str> {
        let now = self.now_naive();
        let max_attempts = self.settings().smtp.max_attempts;
        let retry_at = now + self.retry_delay(row.attempts);
        self.write(move |conn| {
            let (status, error, permanent) = match &result {
                Ok(()) => ("delivered", None, false),
                Err(SendError::Permanent(e)) => ("failed", Some(e.clone()), true),
                Err(SendError::Temporary(e)) if row.attempts >= max_attempts => {
                    ("failed", Some(format!("gave up after {} attempts: {e}", row.attempts)), true)
                }
                Err(SendError::Temporary(e)) => ("pending", Some(e.clone()), false),
            };
            let error: Option<String> = error.map(|e| e.chars().take(1000).collect());
            let next = if status == "pending" { retry_at } else { now };
            let still_ours = queries::events::outbox_finish(
                conn,
                &row.id,
                row.attempts,
                row.next_attempt_at,
                status,
                next,
                error.as_deref(),
                (status == "delivered").then_some(now),
            )?;
            if !still_ours {
                // The lease ran out and another worker took the row over; its outcome wins.
                return Ok("superseded");
            }
            if let Some(mid) = &message_id {
                let delivery = match status {
                    "delivered" => "sent",
                    "failed" => "failed",
                    _ => "queued",
                };
                queries::messages::set_delivery(conn, mid, delivery, error.as_deref())?;
                if let Some(case_id) = &row.case_id {
                    let actor = (ActorKind::System, None);
                    if status == "delivered" {
                        event(conn, case_id, "message_sent", &actor, serde_json::json!({"message_id": mid}), now)?;
                    } else if permanent {
                        event(
                            conn,
                            case_id,
                            "delivery_failed",
                            &actor,
                            serde_json::json!({"message_id": mid, "reason": error, "attempts": row.attempts}),
                            now,
                        )?;
                    }
                }
            }
            Ok(match status {
                "delivered" => "delivered",
                "failed" => "failed",
                _ => "retrying",
            })
        })
        .await
    }

    /// One round: up to `smtp.batch_size` times, claim the next due email row, send it and
    /// record the outcome. A failure to record one outcome is logged and the round goes on
    /// (the row is retried when its lease runs out).
    pub async fn dispatch_email_round<S: EmailSender>(&self, sender: &S) -> AppResult<RoundReport> {
        let mut report = RoundReport::default();
        for _ in 0..self.settings().smtp.batch_size {
            let Some(row) = self.claim_next_email_row().await? else { break };
            let built = {
                let app = self.clone();
                let row = row.clone();
                self.read(move |conn| app.build_email(conn, &row)).await
            };
            let (message_id, result) = match built {
                Ok(Built::Mail(mail)) => {
                    let r = sender.send(&mail).await;
                    (Some(mail.message_id.clone()), r)
                }
                Ok(Built::Unsendable { message_id, why }) => (Some(message_id), Err(SendError::Permanent(why))),
                Err(e) => {
                    tracing::error!(outbox.id = %row.id, error = %e, "cannot build the email; will retry");
                    (None, Err(SendError::Temporary(format!("cannot build the email: {}", e.code()))))
                }
            };
            let (id, kind) = (row.id.clone(), row.kind.clone());
            let outcome = match self.finish_email(row, message_id, result).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(outbox.id = %id, error = %e, "cannot record the delivery outcome; retried after the lease");
                    "unrecorded"
                }
            };
            self.metrics().outbox_deliveries.with_label_values(&[kind.as_str(), outcome]).inc();
            tracing::info!(outbox.id = %id, outcome, "outbox delivery attempt");
            match outcome {
                "delivered" => report.delivered += 1,
                "failed" => report.failed += 1,
                "retrying" => report.retrying += 1,
                _ => report.other += 1,
            }
        }
        Ok(report)
    }

    /// Runs the email dispatcher until `shutdown` turns true: a round whenever woken by a new
    /// outbox row, and at least every `smtp.poll_interval_ms` (for retries and other nodes).
    pub async fn run_email_dispatcher<S: EmailSender>(
        &self,
        sender: S,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let idle = Duration::from_millis(self.settings().smtp.poll_interval_ms);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.dispatch_email_round(&sender).await {
                // A full round may have left more due rows: go again at once.
                Ok(r) if r.total_attempts() > 0 => Duration::ZERO,
                Ok(_) => idle,
                Err(e) => {
                    tracing::warn!(error = %e, code = e.code(), "outbox round failed");
                    idle
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = self.outbox_woken() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
