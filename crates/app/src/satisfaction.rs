//! Customer satisfaction (CSAT, ADR 0014): a survey some time after a case is solved, sent on
//! the case's channel, answered on a public page reached through a random link; the answer
//! (good or bad, and a comment) is private to the desk, on the case's timeline, a webhook
//! event, counted per team and agent, and a bad one alerts the team's supervisors.

use crate::cases::{append_message, event, Append, Appended, MessageKind, ReplyRules};
use crate::error::{AppError, AppResult};
use crate::{check_len, clean, utc, App, Principal};
use caseflow_core::*;
use caseflow_store::models::SatisfactionRow;
use caseflow_store::{queries, DbConn};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The channels whose cases are surveyed (the API's belong to the integrator).
const CHANNELS: [&str; 3] = ["email", "web", "chat"];

/// The path of the public rating page; the token follows it.
pub const PAGE_PATH: &str = "/satisfaction/";

/// Hex digits in a survey token (256 random bits).
const TOKEN_HEX: usize = 64;

/// Longest comment kept, in bytes.
pub const MAX_COMMENT_BYTES: usize = 4000;

/// The customer's answer (`caseflow_core::Rating`, stored as its text).
pub use caseflow_core::Rating;

/// What the rating page shows the customer (through its link; nothing about the desk).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveyPage {
    pub case_number: i64,
    pub subject: String,
    pub rating: Option<Rating>,
    pub comment: Option<String>,
    pub rated_at: Option<DateTime<Utc>>,
    /// Until when the answer can be given or changed.
    pub expires_at: DateTime<Utc>,
}

/// An answer as the customer sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRating {
    pub rating: Rating,
    /// Optional; at most 4000 bytes.
    pub comment: Option<String>,
}

/// A case's survey as agents and supervisors see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SatisfactionView {
    pub case_id: CaseId,
    /// The case's channel (the survey went out on it, or by email).
    pub channel: Channel,
    /// `sent`, or `unreachable`: nothing could be sent (no email address, the chat had ended).
    pub status: String,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rating: Option<Rating>,
    pub comment: Option<String>,
    pub rated_at: Option<DateTime<Utc>>,
    /// The team and agent the case had when it was rated: whom the rating counts for.
    pub team_id: Option<TeamId>,
    pub agent_id: Option<AgentId>,
}

impl SatisfactionView {
    fn from_row(r: SatisfactionRow) -> AppResult<Self> {
        Ok(Self {
            case_id: CaseId::new(r.case_id),
            channel: crate::views::stored("satisfaction_surveys.channel", &r.channel)?,
            status: r.status,
            sent_at: utc(r.sent_at),
            expires_at: utc(r.expires_at),
            rating: r.rating.as_deref().and_then(|r| r.parse().ok()),
            comment: r.comment,
            rated_at: r.rated_at.map(utc),
            team_id: r.team_id.map(TeamId::new),
            agent_id: r.agent_id.map(AgentId::new),
        })
    }
}

/// Where a sweep of due cases goes on: the key (solved at, id) of the last case it read.
type Cursor = (NaiveDateTime, String);

/// After a page of the sweep: more may follow right after `Cursor`, or everything due up to
/// now was read and the next round starts at `Cursor`.
enum Sweep {
    More(Cursor),
    CaughtUp(Cursor),
}

/// How often the sender sweeps the whole window again (at most; half the window when that is
/// shorter, so a case a round missed is found while it is still in the window).
const FULL_SWEEP: Duration = Duration::from_secs(3600);

/// How far behind what it read a caught-up round's successor starts.
const RE_READ: chrono::Duration = chrono::Duration::minutes(5);

/// What one round of the survey sender did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SurveyReport {
    pub considered: usize,
    pub sent: usize,
    /// Recorded without sending: nobody to send it to.
    pub unreachable: usize,
}

impl SurveyReport {
    fn add(&mut self, o: &SurveyReport) {
        self.considered += o.considered;
        self.sent += o.sent;
        self.unreachable += o.unreachable;
    }
}

/// The survey text with its placeholders filled.
fn survey_text(template: &str, name: &str, number: i64, subject: &str, link: &str) -> String {
    crate::cases::fill_case_text(template, name, number, subject)
        .replace("{good_link}", &format!("{link}?rating=good"))
        .replace("{bad_link}", &format!("{link}?rating=bad"))
        .replace("{link}", link)
}

/// Hides the token of every survey link in `text` (`/satisfaction/…`): agents read the
/// survey on the timeline, but answering it is the customer's, so the desk never sees a
/// working link (the message sent keeps it).
pub fn mask_links(text: &str) -> String {
    if !text.contains(PAGE_PATH) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(PAGE_PATH) {
        let (head, tail) = rest.split_at(i + PAGE_PATH.len());
        out.push_str(head);
        let token_len = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if token_len == TOKEN_HEX {
            out.push('…');
        } else {
            out.push_str(&tail[..token_len]);
        }
        rest = &tail[token_len..];
    }
    out.push_str(rest);
    out
}

/// The stored form of a survey token.
fn token_hash(token: &str) -> String {
    crate::auth::hash_api_token(token)
}

/// A token is 64 lower-case hex digits; anything else is not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_HEX && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The survey a link's token opens: one that was sent (an unreachable survey's token never
/// left the server), looked up by the token's hash.
fn sent_survey(conn: &mut DbConn, token: &str) -> AppResult<SatisfactionRow> {
    queries::satisfaction::by_token_hash(conn, &token_hash(token))?
        .filter(|r| r.status == "sent")
        .ok_or(AppError::NotFound("survey"))
}

/// Refuses an answer (or the page) after the survey's link expired.
fn still_open(row: &SatisfactionRow, now: NaiveDateTime) -> AppResult<()> {
    if row.expires_at < now {
        return Err(AppError::Expired("survey"));
    }
    Ok(())
}

/// What the sender needs from the settings, copied out for the blocking closure.
#[derive(Debug, Clone)]
struct SendRules {
    rules: ReplyRules,
    template: String,
    base_url: String,
    delay: chrono::Duration,
    valid: chrono::Duration,
}

/// What surveying one case came to.
enum Outcome {
    /// Sent: the message and the link's token.
    Sent(Box<Appended>, String),
    /// Recorded as `unreachable`: no address and no live chat to send it to.
    Unreachable,
    /// No longer due (reopened, surveyed by another node, gone).
    NotDue,
}

/// Whether the customer can get the survey on this case's channel: by email (every channel's
/// fallback; the customer's address), or in a chat the visitor is still in.
fn reachable(conn: &mut DbConn, case: &caseflow_store::models::CaseRow) -> AppResult<bool> {
    if queries::customers::identities(conn, &case.customer_id)?.iter().any(|i| i.kind == IdentityKind::Email.as_str()) {
        return Ok(true);
    }
    Ok(case.channel == Channel::Chat.as_str()
        && queries::chat::latest_for_case(conn, &case.id)?.is_some_and(|s| s.status == "active"))
}

/// Surveys one case in the caller's transaction, if it is still due: locks the case, checks
/// that it is still solved since long enough, records the survey (once per case: the primary
/// key; another node that got there first wins) and appends the survey as a system message
/// on the case's channel, which the outbox (email) or the chat delivers. A customer who cannot
/// be reached (an anonymous chat that has ended) gets nothing: the survey is recorded as
/// `unreachable`, so the case is not looked at again, and no delivery fails for it.
fn survey_case(conn: &mut DbConn, r: &SendRules, case_id: &str, now: NaiveDateTime) -> AppResult<Outcome> {
    // Another node's sender (or a writer) holds the case: a later round reads it again (within
    // five minutes of its due time), or the next full sweep.
    let Some(case) = queries::cases::get_for_update_skip_locked(conn, case_id)? else { return Ok(Outcome::NotDue) };
    if case.status != CaseStatus::Solved.as_str() || case.solved_at.is_none_or(|t| t + r.delay > now) {
        return Ok(Outcome::NotDue);
    }
    let reach = reachable(conn, &case)?;
    let token = crate::auth::generate_api_token().trim_start_matches(crate::auth::API_TOKEN_PREFIX).to_owned();
    let expires_at = now + r.valid;
    let row = SatisfactionRow {
        case_id: case.id.clone(),
        token_hash: token_hash(&token),
        channel: case.channel.clone(),
        status: if reach { "sent" } else { "unreachable" }.to_owned(),
        sent_at: now,
        expires_at,
        rating: None,
        comment: None,
        rated_at: None,
        team_id: None,
        agent_id: None,
    };
    if !queries::satisfaction::insert(conn, &row)? {
        return Ok(Outcome::NotDue);
    }
    if !reach {
        let data = serde_json::json!({"channel": case.channel, "reason": "no email address, and the chat has ended"});
        event(conn, &case.id, "satisfaction_survey_skipped", &(ActorKind::System, None), data, now)?;
        return Ok(Outcome::Unreachable);
    }
    let name = queries::customers::get(conn, &case.customer_id)?.map(|c| c.name).unwrap_or_default();
    let link = format!("{}{PAGE_PATH}{token}", r.base_url.trim_end_matches('/'));
    let body = survey_text(&r.template, &name, case.number, &case.subject, &link);
    let a = Append {
        kind: MessageKind::Reply,
        body: clean(&body),
        status: None,
        external_id: None,
        actor: (ActorKind::System, None),
    };
    let done = append_message(conn, &r.rules, &case.id, a, now)?;
    let data = serde_json::json!({
        "channel": case.channel, "message_id": done.message.id, "expires_at": utc(expires_at),
    });
    event(conn, &case.id, "satisfaction_survey_sent", &(ActorKind::System, None), data, now)?;
    Ok(Outcome::Sent(Box::new(done), token))
}

impl App {
    /// Sends every survey that is due now, sweeping the whole window (tests; the worker goes
    /// page by page with `satisfaction_pass`): cases
    /// solved at least `satisfaction.delay_secs` ago (and not longer than the window before
    /// that), still solved, of the email, web-form and chat channels, answered, with no survey
    /// yet; each in its own transaction, page after page.
    pub async fn satisfaction_tick(&self) -> AppResult<SurveyReport> {
        let mut report = SurveyReport::default();
        let mut from = None;
        loop {
            let (r, next) = self.satisfaction_pass(from).await?;
            report.add(&r);
            match next {
                Sweep::More(c) => from = Some(c),
                Sweep::CaughtUp(_) => return Ok(report),
            }
        }
    }

    /// One page of the sweep from `from` (the start of the window when `None`, or when `from`
    /// is older): what it did, and where the next page starts.
    async fn satisfaction_pass(&self, from: Option<Cursor>) -> AppResult<(SurveyReport, Sweep)> {
        let s = &self.settings().satisfaction;
        let mut report = SurveyReport::default();
        let rules = std::sync::Arc::new(self.send_rules());
        let now = self.now_naive();
        let until = now - rules.delay;
        let window_start = until - chrono::Duration::seconds(i64::try_from(s.window_secs).unwrap_or(i64::MAX / 1000));
        if !s.enabled {
            return Ok((report, Sweep::CaughtUp((until, String::new()))));
        }
        let from = from.filter(|(at, _)| *at >= window_start).unwrap_or((window_start, String::new()));
        let limit = i64::from(s.batch);
        let page = self
            .read(move |conn| Ok(queries::satisfaction::due(conn, (from.0, &from.1), until, &CHANNELS, limit)?))
            .await?;
        let next = match page.last() {
            Some((id, at, _)) if i64::try_from(page.len()).unwrap_or(i64::MAX) >= limit => {
                Sweep::More((*at, id.clone()))
            }
            // Caught up: the next round starts a little behind what this one read, so a case
            // whose solving committed late (its time is stamped before its transaction waits
            // for a lock, or on a node whose clock lags) or that was skipped is read again.
            _ => Sweep::CaughtUp((until - RE_READ, String::new())),
        };
        report.considered = page.len();
        let mut lines = Vec::new();
        // Closed cases keep their solving time but take no messages: passed over.
        for (id, _, _) in page.into_iter().filter(|(_, _, status)| status == CaseStatus::Solved.as_str()) {
            let (app, rules, case_id) = (self.clone(), rules.clone(), id.clone());
            match self.write(move |conn| survey_case(conn, &rules, &case_id, app.now_naive())).await {
                Ok(Outcome::Sent(done, _)) => {
                    report.sent += 1;
                    if done.case.channel == Channel::Chat.as_str() {
                        lines.extend(crate::chat::ChatLine::from_row(&done.message, &done.author_name));
                    }
                }
                Ok(Outcome::Unreachable) => report.unreachable += 1,
                Ok(Outcome::NotDue) => {}
                Err(e) => {
                    tracing::warn!(case.id = %id, error = %e, "satisfaction survey failed; retried by the next full sweep")
                }
            }
        }
        if report.sent > 0 {
            self.wake_outbox();
            self.metrics().satisfaction_surveys.inc_by(u64::try_from(report.sent).unwrap_or(0));
        }
        for line in lines {
            self.chat_hub().publish(crate::chat::ChatEvent::Message(line));
        }
        Ok((report, next))
    }

    fn send_rules(&self) -> SendRules {
        let s = &self.settings().satisfaction;
        SendRules {
            rules: ReplyRules::from_settings(self.settings()),
            template: s.template.clone(),
            base_url: self.settings().server.public_url.clone(),
            delay: chrono::Duration::seconds(i64::try_from(s.delay_secs).unwrap_or(i64::MAX / 1000)),
            valid: chrono::Duration::days(i64::from(s.valid_days)),
        }
    }

    /// Demo data: surveys a solved case at once and records the customer's answer through the
    /// same paths a real survey and answer take.
    pub(crate) async fn demo_rating(&self, case_id: String, rating: Rating, comment: &str) -> AppResult<()> {
        let rules = SendRules { delay: chrono::Duration::zero(), ..self.send_rules() };
        let app = self.clone();
        let sent = self.write(move |conn| survey_case(conn, &rules, &case_id, app.now_naive())).await?;
        if let Outcome::Sent(_, token) = sent {
            self.rate(token, NewRating { rating, comment: Some(comment.to_owned()) }).await?;
        }
        Ok(())
    }

    /// The survey sender. Every node runs it; the survey's primary key keeps each case to one
    /// survey. Each round (every `satisfaction.tick_ms`) reads only the cases that became due
    /// since the last one, less five minutes (a cursor over `(solved_at, id)`), page after page
    /// while pages are full; at start and once an hour (half the window if shorter) it sweeps
    /// the whole window again, which catches a case skipped or failed further back.
    pub async fn run_satisfaction(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if !self.settings().satisfaction.enabled {
            return;
        }
        let pause = Duration::from_millis(self.settings().satisfaction.tick_ms);
        let full_sweep = FULL_SWEEP.min(Duration::from_secs(self.settings().satisfaction.window_secs / 2));
        let mut cursor: Option<Cursor> = None;
        let mut full_sweep_at = tokio::time::Instant::now();
        loop {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                if tokio::time::Instant::now() >= full_sweep_at {
                    cursor = None;
                    full_sweep_at = tokio::time::Instant::now() + full_sweep;
                }
                match self.satisfaction_pass(cursor.take()).await {
                    Ok((_, Sweep::More(c))) => cursor = Some(c),
                    Ok((_, Sweep::CaughtUp(c))) => {
                        cursor = Some(c);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "satisfaction survey round failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// The rating page's content for a survey link (public: the token is the credential).
    pub async fn survey(&self, token: String) -> AppResult<SurveyPage> {
        if !well_formed(&token) {
            return Err(AppError::NotFound("survey"));
        }
        let now = self.now_naive();
        self.read(move |conn| {
            let row = sent_survey(conn, &token)?;
            let case = queries::cases::get(conn, &row.case_id)?.ok_or(AppError::NotFound("survey"))?;
            still_open(&row, now)?;
            Ok(page_of(&row, &case))
        })
        .await
    }

    /// Records (or changes) the customer's answer: on the survey, counted for the case's team
    /// and assignee now, as a `case_rated` event on the timeline (and the `case.rated`
    /// webhook); a new bad rating alerts the team's supervisors.
    pub async fn rate(&self, token: String, answer: NewRating) -> AppResult<SurveyPage> {
        if !well_formed(&token) {
            return Err(AppError::NotFound("survey"));
        }
        let comment = answer.comment.as_deref().map(clean).filter(|c| !c.is_empty());
        if let Some(c) = &comment {
            check_len("comment", c, MAX_COMMENT_BYTES)?;
        }
        let app = self.clone();
        let (page, alerted, changed) = self
            .write(move |conn| {
                let now = app.now_naive();
                let row = sent_survey(conn, &token)?;
                // Lock the case: two answers at once are applied one after the other, so the
                // "previous" of each event and the alert on a new bad rating are exact.
                let case = queries::cases::get_for_update(conn, &row.case_id)?.ok_or(AppError::NotFound("survey"))?;
                let row = queries::satisfaction::get(conn, &row.case_id)?.ok_or(AppError::NotFound("survey"))?;
                still_open(&row, now)?;
                let previous = row.rating.clone();
                if previous.as_deref() == Some(answer.rating.as_str()) && row.comment == comment {
                    return Ok((page_of(&row, &case), false, false));
                }
                // The first answer fixes when it was given and whom it counts for (the team and
                // agent who had the case then); a change later alters the answer only, so the
                // credit does not follow a reassignment and the figures do not move in time.
                let first = row.rated_at.is_none();
                let rated = SatisfactionRow {
                    rating: Some(answer.rating.as_str().to_owned()),
                    comment: comment.clone(),
                    rated_at: row.rated_at.or(Some(now)),
                    team_id: if first { case.team_id.clone() } else { row.team_id.clone() },
                    agent_id: if first { case.assignee_id.clone() } else { row.agent_id.clone() },
                    ..row
                };
                queries::satisfaction::rate(conn, &rated)?;
                let data = serde_json::json!({
                    "rating": answer.rating.as_str(), "previous": previous, "comment": comment,
                    "team_id": rated.team_id, "agent_id": rated.agent_id,
                });
                event(conn, &case.id, "case_rated", &(ActorKind::Customer, Some(case.customer_id.clone())), data, now)?;
                // A new bad answer alerts, unless the case's last bad-rating alert is still
                // unacknowledged (toggling the answer does not flood the console).
                let alert = answer.rating == Rating::Bad
                    && previous.as_deref() != Some("bad")
                    && !queries::satisfaction::open_bad_rating_alert(conn, &case.id)?;
                if alert {
                    let mut message = format!("Case #{}: the customer rated the support bad", case.number);
                    if let Some(c) = &comment {
                        let short: String = c.chars().take(140).collect();
                        let more = if short.len() < c.len() { "…" } else { "" };
                        message.push_str(&format!(": \"{short}{more}\""));
                    }
                    crate::sla::team_alert(conn, &case, "bad_rating", message, now)?;
                }
                Ok((page_of(&rated, &case), alert, true))
            })
            .await?;
        if changed {
            self.metrics().satisfaction_ratings.with_label_values(&[answer.rating.as_str()]).inc();
        }
        if alerted {
            self.notify_alerts();
        }
        Ok(page)
    }

    /// A case's survey and answer (agents, supervisors, integrators with read scope).
    pub async fn case_satisfaction(&self, who: &Principal, case_id: String) -> AppResult<SatisfactionView> {
        who.require_read()?;
        self.read(move |conn| {
            if queries::cases::get(conn, &case_id)?.is_none() {
                return Err(AppError::NotFound("case"));
            }
            let row = queries::satisfaction::get(conn, &case_id)?.ok_or(AppError::NotFound("survey"))?;
            SatisfactionView::from_row(row)
        })
        .await
    }
}

fn page_of(row: &SatisfactionRow, case: &caseflow_store::models::CaseRow) -> SurveyPage {
    SurveyPage {
        case_number: case.number,
        subject: case.subject.clone(),
        rating: row.rating.as_deref().and_then(|r| r.parse().ok()),
        comment: row.comment.clone(),
        rated_at: row.rated_at.map(utc),
        expires_at: utc(row.expires_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_survey_text_fills_every_placeholder() {
        let t = "Hi {name}, #{number} {subject}: {link} | {good_link} | {bad_link}";
        let out = survey_text(t, "", 42, "Printer", "https://h/satisfaction/x");
        assert_eq!(
            out,
            "Hi there, #42 Printer: https://h/satisfaction/x | https://h/satisfaction/x?rating=good | \
             https://h/satisfaction/x?rating=bad"
        );
    }

    #[test]
    fn links_are_masked_and_other_text_is_kept() {
        let text =
            format!("Good: https://h/satisfaction/{TOKEN}?rating=good\nBad: https://h/satisfaction/{TOKEN}?rating=bad");
        let masked = mask_links(&text);
        assert!(!masked.contains(TOKEN), "{masked}");
        assert_eq!(masked, "Good: https://h/satisfaction/…?rating=good\nBad: https://h/satisfaction/…?rating=bad");
        // Not a token: left alone.
        assert_eq!(mask_links("see /satisfaction/abc and /satisfaction/"), "see /satisfaction/abc and /satisfaction/");
        assert_eq!(mask_links("nothing here"), "nothing here");
    }

    #[test]
    fn only_well_formed_tokens_are_looked_up() {
        assert!(well_formed(TOKEN));
        assert!(!well_formed(&TOKEN.to_uppercase()));
        assert!(!well_formed(&TOKEN[1..]));
        assert!(!well_formed(&format!("{}g", &TOKEN[1..])));
        assert!(!well_formed("../../etc/passwd"));
    }
}
