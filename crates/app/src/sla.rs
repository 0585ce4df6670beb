//! The SLA service around the pure engine (`caseflow-sla`): calendars and policies stored as
//! JSON specs, each case's clocks derived from its history on demand, and the scheduler that
//! fires warnings, breaches and ladder steps exactly once.
//!
//! Scheduling (ADR 0010): `case_sla.next_at` holds, per case, the earliest milestone not yet
//! fired. Triggers set it to the epoch whenever something that can move a deadline changes
//! (a new case or message, a status, priority, channel, team or customer-tier change), so
//! such a case is due at once. Each tick claims due rows (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), re-evaluates those cases, records each milestone reached in `sla_fired`
//! (primary key: once per case, metric, reply cycle and milestone) together with its alert,
//! audit event and action in the same transaction, and writes the next `next_at`. The work of
//! a tick is proportional to the cases due, and a milestone passed while no node ran is fired
//! at the next start (within `sla.catch_up_secs`; older ones are recorded without alerts).

use crate::cases::event;
use crate::error::{AppError, AppResult};
use crate::views::stored;
use crate::{new_id, utc, App, Principal};
use caseflow_core::*;
use caseflow_sla::clock::{Clock as SlaClock, ClockState, Event, EventKind, MilestoneKind, Secs};
use caseflow_sla::policy::{select, Action, Facts, Metric, PolicySpec};
use caseflow_sla::{Calendar, CalendarSpec};
use caseflow_store::models::*;
use caseflow_store::queries::sla::AlertScope;
use caseflow_store::{queries, DbConn};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How long a claimed case is reserved for the node that claimed it (a node that dies
/// mid-batch leaves its cases to the others after this).
const LEASE_SECS: i64 = 60;

/// Calendars and policies as the engine takes them, read from the database.
#[derive(Debug, Default)]
pub(crate) struct Setup {
    /// In matching order: the rows and their parsed specs, index for index.
    rows: Vec<SlaPolicyRow>,
    specs: Vec<PolicySpec>,
    calendars: HashMap<String, Calendar>,
}

impl Setup {
    pub(crate) fn load(conn: &mut DbConn) -> AppResult<Self> {
        let mut calendars = HashMap::new();
        for row in queries::sla::calendars(conn)? {
            // Specs are validated when written; a row edited by hand that no longer parses is
            // left out (policies naming it count around the clock) and logged.
            match serde_json::from_str::<CalendarSpec>(&row.spec)
                .map_err(|e| e.to_string())
                .and_then(|spec| Calendar::from_spec(&spec).map_err(|e| e.to_string()))
            {
                Ok(cal) => {
                    calendars.insert(row.name.clone(), cal);
                }
                Err(e) => tracing::warn!(calendar = %row.id, error = %e, "stored SLA calendar does not parse"),
            }
        }
        let (mut rows, mut specs) = (Vec::new(), Vec::new());
        for row in queries::sla::policies(conn)? {
            match serde_json::from_str::<PolicySpec>(&row.spec) {
                Ok(spec) => {
                    rows.push(row);
                    specs.push(spec);
                }
                Err(e) => tracing::warn!(policy = %row.id, error = %e, "stored SLA policy does not parse"),
            }
        }
        Ok(Setup { rows, specs, calendars })
    }

    fn calendar_of(&self, p: &PolicySpec) -> Option<&Calendar> {
        p.calendar.as_ref().and_then(|name| self.calendars.get(name))
    }
}

fn secs(t: NaiveDateTime) -> Secs {
    t.and_utc().timestamp()
}

fn naive(s: Secs) -> NaiveDateTime {
    DateTime::from_timestamp(s, 0).unwrap_or_default().naive_utc()
}

/// The `sla_fired` key of a milestone. A clock warns and breaches once whatever policy
/// applies; ladder steps belong to their policy (a case whose priority was raised into
/// another policy takes that policy's steps).
fn milestone_name(k: MilestoneKind, policy_id: &str) -> String {
    match k {
        MilestoneKind::Warning => "warning".into(),
        MilestoneKind::Breach => "breach".into(),
        MilestoneKind::Step(i) => format!("step{i}:{policy_id}"),
    }
}

/// A case as the SLA engine sees it.
struct CaseHistory {
    case: CaseRow,
    facts: Facts,
    events: Vec<Event>,
}

/// Reads a case and its history; with `lock`, the case row is locked first (the scheduler:
/// writers lock the case before their triggers touch `case_sla`, so the same order here
/// means no deadlock).
fn load_case(conn: &mut DbConn, case_id: &str, lock: bool) -> AppResult<Option<CaseHistory>> {
    let case = if lock { queries::cases::get_for_update(conn, case_id)? } else { queries::cases::get(conn, case_id)? };
    let Some(case) = case else { return Ok(None) };
    let tier: Tier = match queries::customers::get(conn, &case.customer_id)? {
        Some(c) => stored("customers.tier", &c.tier)?,
        None => Tier::Standard,
    };
    let facts = Facts {
        priority: stored("cases.priority", &case.priority)?,
        tier,
        channel: stored("cases.channel", &case.channel)?,
        team: case.team_id.clone(),
    };
    let mut timed: Vec<(NaiveDateTime, bool, EventKind)> = Vec::new();
    for (direction, author, at) in queries::sla::message_history(conn, &case.id)? {
        let kind = match (direction.as_str(), author.as_str()) {
            ("inbound", _) => EventKind::CustomerMessage,
            // Automatic messages (acknowledgements, greetings) are not a reply.
            ("outbound", "agent" | "integration") => EventKind::AgentReply,
            _ => continue,
        };
        timed.push((at, false, kind));
    }
    for (data, at) in queries::sla::status_history(conn, &case.id)? {
        let to = serde_json::from_str::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("to").and_then(|t| t.as_str()).and_then(|t| t.parse::<CaseStatus>().ok()));
        if let Some(to) = to {
            timed.push((at, true, EventKind::Status(to)));
        }
    }
    // In time order at full precision (the engine counts whole seconds and keeps the given
    // order within one); at the same instant (one transaction) a status change comes after
    // the message that caused it.
    timed.sort_by_key(|e| (e.0, e.1));
    let events = timed.into_iter().map(|(at, _, kind)| Event { at: secs(at), kind }).collect();
    Ok(Some(CaseHistory { case, facts, events }))
}

/// The clocks of a case under the policy that applies to it now.
fn clocks_of<'a>(
    setup: &'a Setup,
    h: &CaseHistory,
    now: Secs,
) -> Option<(&'a SlaPolicyRow, &'a PolicySpec, Vec<SlaClock>)> {
    let (index, spec) = select(&setup.specs, &h.facts)?;
    let row = setup.rows.get(index)?;
    let clocks = caseflow_sla::evaluate(spec, setup.calendar_of(spec), secs(h.case.created_at), &h.events, now);
    Some((row, spec, clocks))
}

/// The earliest deadline of a running clock, and whether a clock that has not ended is
/// breached: what `case_sla` keeps for ordering and what `GET /cases/{id}/sla` shows.
fn summary(clocks: &[SlaClock]) -> (Option<Secs>, bool) {
    let due = clocks.iter().filter(|c| c.state == ClockState::Running).filter_map(|c| c.due_at).min();
    (due, clocks.iter().any(|c| c.breached && c.ended_at.is_none()))
}

/// What one scheduler batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub evaluated: usize,
    pub warnings: usize,
    pub breaches: usize,
    pub escalations: usize,
    /// Alerts raised (for the live streams).
    pub alerts: usize,
    /// Acknowledgements queued.
    pub acknowledged: usize,
    /// An action changed a case (priority, assignee).
    pub case_changed: bool,
}

impl TickReport {
    fn add(&mut self, o: &TickReport) {
        self.evaluated += o.evaluated;
        self.warnings += o.warnings;
        self.breaches += o.breaches;
        self.escalations += o.escalations;
        self.alerts += o.alerts;
        self.acknowledged += o.acknowledged;
        self.case_changed |= o.case_changed;
    }
}

/// How the scheduler acknowledges new email cases.
#[derive(Debug, Clone)]
pub(crate) struct AckRules {
    pub rules: crate::cases::ReplyRules,
    /// The text, with `{name}`, `{number}`, `{subject}` and `{expected}`.
    pub template: String,
}

/// Re-evaluates one claimed case in its own transaction: locks the case, derives its
/// clocks, fires each milestone reached once (the `sla_fired` key, with its alert, event and
/// action), acknowledges a new email case, and writes the next due time (unless a change
/// committed since the claim asked for another look).
pub(crate) fn process_case(
    conn: &mut DbConn,
    setup: &Setup,
    case_id: &str,
    now: NaiveDateTime,
    lease: NaiveDateTime,
    catch_up_secs: i64,
    ack: &AckRules,
) -> AppResult<TickReport> {
    let mut report = TickReport { evaluated: 1, ..TickReport::default() };
    let Some(h) = load_case(conn, case_id, true)? else { return Ok(report) };
    let now_s = secs(now);
    let mut row = CaseSlaRow {
        case_id: case_id.to_owned(),
        policy_id: None,
        due_at: None,
        breached: false,
        next_at: None,
        evaluated_at: Some(now),
    };
    let mut next: Option<Secs> = None;
    // An event stamped after `now` (another node's clock ahead of ours) is not in the
    // clocks yet: look again when it is.
    if let Some(later) = h.events.iter().map(|e| e.at).filter(|&t| t > now_s).min() {
        next = Some(later);
    }
    if let Some((prow, spec, clocks)) = clocks_of(setup, &h, now_s) {
        row.policy_id = Some(prow.id.clone());
        let fired: HashSet<(String, i32, String)> =
            queries::sla::fired(conn, case_id)?.into_iter().map(|f| (f.metric, f.cycle, f.milestone)).collect();
        let ack_key = ("acknowledgement".to_owned(), 0, "sent".to_owned());
        if !fired.contains(&ack_key) {
            report.acknowledged += acknowledge(conn, &h, spec, setup, &clocks, now, catch_up_secs, ack)?;
        }
        let (due, breached) = summary(&clocks);
        (row.due_at, row.breached) = (due.map(naive), breached);
        for clock in &clocks {
            let cycle = i32::try_from(clock.cycle).unwrap_or(i32::MAX);
            for m in &clock.milestones {
                let key = (clock.metric.as_str().to_owned(), cycle, milestone_name(m.kind, &prow.id));
                if fired.contains(&key) {
                    continue;
                }
                if m.at > now_s {
                    next = Some(next.map_or(m.at, |n| n.min(m.at)));
                    continue;
                }
                let fresh = queries::sla::fire(
                    conn,
                    &SlaFiredRow {
                        case_id: case_id.to_owned(),
                        metric: key.0,
                        cycle,
                        milestone: key.2,
                        due_at: naive(m.at),
                        fired_at: now,
                    },
                )?;
                if !fresh {
                    continue;
                }
                if clock.ended_at.is_some() || m.at < now_s - catch_up_secs {
                    // The reply came before the scheduler got there, or the milestone is
                    // older than the catch-up window: no alert, no action. A breach is still
                    // recorded on the case (and counted), marked late.
                    if m.kind == MilestoneKind::Breach {
                        let data = serde_json::json!({
                            "metric": clock.metric.as_str(), "cycle": clock.cycle, "policy": spec.name,
                            "due_at": utc(naive(m.at)), "late": true, "explanation": clock.explanation,
                        });
                        event(conn, case_id, "sla_breached", &(ActorKind::System, None), data, now)?;
                        report.breaches += 1;
                    }
                    continue;
                }
                let changed = fire(conn, &h, spec, clock, m.kind, now, &mut report)?;
                report.case_changed |= changed;
            }
        }
    }
    row.next_at = next.map(naive);
    if report.case_changed {
        // The action changed the case (priority, assignee): look at it again.
        row.next_at = Some(queries::sla::epoch());
    }
    queries::sla::save_case_sla(conn, &row, lease)?;
    Ok(report)
}

/// "We will answer by <first-response deadline> (<zone>)." for a case in the caller's
/// transaction, or "" when no policy with a running first-response clock applies: the
/// `{expected}` of acknowledgements.
pub(crate) fn expected_answer(conn: &mut DbConn, case_id: &str, now: NaiveDateTime) -> AppResult<String> {
    let Some(h) = load_case(conn, case_id, false)? else { return Ok(String::new()) };
    let setup = Setup::load(conn)?;
    let Some((_, spec, clocks)) = clocks_of(&setup, &h, secs(now)) else { return Ok(String::new()) };
    Ok(expected_text(&setup, spec, &clocks))
}

fn expected_text(setup: &Setup, spec: &PolicySpec, clocks: &[SlaClock]) -> String {
    let tz = setup.calendar_of(spec).map_or(caseflow_sla::Tz::UTC, Calendar::time_zone);
    clocks
        .iter()
        .find(|c| c.metric == Metric::FirstResponse && c.state == ClockState::Running)
        .and_then(|c| c.due_at)
        .and_then(|d| DateTime::from_timestamp(d, 0))
        .map(|d| format!("We will answer by {} ({}).", d.with_timezone(&tz).format("%a %d %b %H:%M"), tz.name()))
        .unwrap_or_default()
}

/// Acknowledges a new case that came by email from a person, once (the `sla_fired` key
/// `acknowledgement`), through the outbox in this transaction, with the case number and when
/// the first response is due. Other channels acknowledge on their own: the web form at once,
/// chat live; cases created through the API belong to the integrator. Mail that is automatic
/// (auto-replies, bounces, lists, our own) never opens a case, so it is never acknowledged.
#[allow(clippy::too_many_arguments)]
fn acknowledge(
    conn: &mut DbConn,
    h: &CaseHistory,
    spec: &PolicySpec,
    setup: &Setup,
    clocks: &[SlaClock],
    now: NaiveDateTime,
    catch_up_secs: i64,
    ack: &AckRules,
) -> AppResult<usize> {
    let case = &h.case;
    let active = !matches!(case.status.as_str(), "solved" | "closed");
    if spec.acknowledge_within_secs == 0
        || case.channel != Channel::Email.as_str()
        || ack.template.trim().is_empty()
        || !active
    {
        return Ok(0);
    }
    let first = queries::sla::message_history(conn, &case.id)?.into_iter().next();
    if !matches!(first, Some((ref d, ref a, _)) if d == "inbound" && a == "customer") {
        return Ok(0);
    }
    let fresh = queries::sla::fire(
        conn,
        &SlaFiredRow {
            case_id: case.id.clone(),
            metric: "acknowledgement".into(),
            cycle: 0,
            milestone: "sent".into(),
            due_at: case.created_at + chrono::Duration::seconds(i64::from(spec.acknowledge_within_secs)),
            fired_at: now,
        },
    )?;
    // A case older than the catch-up window (an upgrade, a long outage) is not acknowledged
    // late; the key is recorded all the same.
    if !fresh || secs(case.created_at) < secs(now) - catch_up_secs {
        return Ok(0);
    }
    let expected = expected_text(setup, spec, clocks);
    let name = queries::customers::get(conn, &case.customer_id)?.map(|c| c.name).unwrap_or_default();
    let body =
        crate::cases::fill_case_text(&ack.template, &name, case.number, &case.subject).replace("{expected}", &expected);
    let a = crate::cases::Append {
        kind: crate::cases::MessageKind::Reply,
        body: crate::clean(&body),
        status: None,
        external_id: None,
        actor: (ActorKind::System, None),
    };
    crate::cases::append_message(conn, &ack.rules, &case.id, a, now)?;
    event(conn, &case.id, "acknowledged", &(ActorKind::System, None), serde_json::json!({"channel": "email"}), now)?;
    Ok(1)
}

/// An alert about `case` for its team's supervisors (every supervisor when it has no team):
/// not SLA milestones, but what else needs a supervisor at once (a bad satisfaction rating, a
/// complaint). Streamed like every alert once the transaction commits (`App::notify_alerts`
/// on this node, `NOTIFY` on the others).
pub(crate) fn team_alert(
    conn: &mut DbConn,
    case: &CaseRow,
    kind: &str,
    message: String,
    now: NaiveDateTime,
) -> AppResult<()> {
    queries::sla::insert_alert(
        conn,
        &AlertRow {
            id: new_id(),
            case_id: case.id.clone(),
            team_id: case.team_id.clone(),
            agent_id: None,
            kind: kind.to_owned(),
            metric: None,
            action: None,
            message,
            due_at: None,
            created_at: now,
            acknowledged_by: None,
            acknowledged_at: None,
        },
    )?;
    Ok(())
}

/// Raises what a milestone calls for: the alert, the audit event, the ladder's action.
/// Returns whether the case itself was changed.
fn fire(
    conn: &mut DbConn,
    h: &CaseHistory,
    spec: &PolicySpec,
    clock: &SlaClock,
    kind: MilestoneKind,
    now: NaiveDateTime,
    report: &mut TickReport,
) -> AppResult<bool> {
    let case = &h.case;
    let system = (ActorKind::System, None);
    let metric = clock.metric;
    let due = clock.due_at.map(|d| utc(naive(d)));
    let data = serde_json::json!({
        "metric": metric.as_str(),
        "cycle": clock.cycle,
        "policy": spec.name,
        "due_at": due,
        "explanation": clock.explanation,
    });
    let alert = |conn: &mut DbConn, kind: &str, action: Option<Action>, agent: Option<String>, message: String| {
        let team_id = if agent.is_some() { None } else { case.team_id.clone() };
        queries::sla::insert_alert(
            conn,
            &AlertRow {
                id: new_id(),
                case_id: case.id.clone(),
                team_id,
                agent_id: agent,
                kind: kind.to_owned(),
                metric: Some(metric.as_str().to_owned()),
                action: action.map(|a| action_name(a).to_owned()),
                message,
                due_at: clock.due_at.map(naive),
                created_at: now,
                acknowledged_by: None,
                acknowledged_at: None,
            },
        )
    };
    let number = case.number;
    match kind {
        MilestoneKind::Warning => {
            let msg = format!("Case #{number}: {} {}", metric.label(), clock.explanation);
            alert(conn, "warning", None, None, msg)?;
            event(conn, &case.id, "sla_warning", &system, data, now)?;
            report.warnings += 1;
            report.alerts += 1;
            Ok(false)
        }
        MilestoneKind::Breach => {
            let msg = format!("Case #{number}: {} {}", metric.label(), clock.explanation);
            alert(conn, "breach", None, None, msg)?;
            event(conn, &case.id, "sla_breached", &system, data, now)?;
            report.breaches += 1;
            report.alerts += 1;
            Ok(false)
        }
        MilestoneKind::Step(i) => {
            let Some(step) = spec.ladder.get(usize::from(i)) else { return Ok(false) };
            report.escalations += 1;
            let mut data = data;
            data["action"] = serde_json::json!(action_name(step.action));
            data["step"] = serde_json::json!(i);
            let mut changed = false;
            match step.action {
                Action::NotifyAssignee => {
                    let msg = format!("Case #{number} is yours: {} {}", metric.label(), clock.explanation);
                    alert(conn, "escalation", Some(step.action), case.assignee_id.clone(), msg)?;
                    report.alerts += 1;
                }
                Action::AlertSupervisors => {
                    let msg = format!("Case #{number} escalated: {} {}", metric.label(), clock.explanation);
                    alert(conn, "escalation", Some(step.action), None, msg)?;
                    report.alerts += 1;
                }
                Action::RaisePriority => {
                    if let Some(mut fresh) = queries::cases::get_for_update(conn, &case.id)? {
                        let from: Priority = stored("cases.priority", &fresh.priority)?;
                        let to = match from {
                            Priority::Low => Priority::Normal,
                            Priority::Normal => Priority::High,
                            Priority::High | Priority::Urgent => Priority::Urgent,
                        };
                        if to != from {
                            let version = fresh.version;
                            fresh.priority = to.as_str().into();
                            fresh.version += 1;
                            fresh.updated_at = now;
                            if queries::cases::update_if_version(conn, &fresh, version)? {
                                let d = serde_json::json!({"from": from, "to": to, "reason": "sla"});
                                event(conn, &case.id, "priority_changed", &system, d, now)?;
                                changed = true;
                            }
                        }
                    }
                }
                Action::Reassign => {
                    if let Some(mut fresh) = queries::cases::get_for_update(conn, &case.id)? {
                        if let (Some(agent), false) = (fresh.assignee_id.clone(), fresh.pinned) {
                            let version = fresh.version;
                            fresh.assignee_id = None;
                            if matches!(fresh.status.as_str(), "new" | "open") {
                                // Back in line with the customer's place kept.
                                fresh.waiting_since = Some(fresh.waiting_since.unwrap_or(fresh.created_at).min(now));
                            }
                            fresh.version += 1;
                            fresh.updated_at = now;
                            if queries::cases::update_if_version(conn, &fresh, version)? {
                                let d = serde_json::json!({"from": agent, "to": null, "by": "sla"});
                                event(conn, &case.id, "assignee_changed", &system, d, now)?;
                                changed = true;
                            }
                        }
                    }
                }
            }
            event(conn, &case.id, "sla_escalated", &system, data, now)?;
            Ok(changed)
        }
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::NotifyAssignee => "notify_assignee",
        Action::AlertSupervisors => "alert_supervisors",
        Action::RaisePriority => "raise_priority",
        Action::Reassign => "reassign",
    }
}

// ---------------------------------------------------------------------------------------
// Views and use cases.

/// A calendar as stored, with its id.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CalendarView {
    pub id: String,
    #[serde(flatten)]
    pub spec: CalendarSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A policy as stored, with its id and place in the matching order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub id: String,
    /// Policies are tried in ascending position; the first that matches applies.
    pub position: i32,
    #[serde(flatten)]
    pub spec: PolicySpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A policy to create or replace.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct PolicyInput {
    /// Place in the matching order; default: after the last.
    #[serde(default)]
    pub position: Option<i32>,
    #[serde(flatten)]
    pub spec: PolicySpec,
}

/// A milestone of a clock, with whether it has been fired.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MilestoneView {
    /// `warning`, `breach` or `step`.
    pub kind: String,
    /// For a ladder step: its index and action.
    pub step: Option<u16>,
    pub action: Option<String>,
    pub at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
}

/// One SLA clock of a case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClockView {
    pub metric: Metric,
    /// 0 for first response and resolution; the reply cycle for next response.
    pub cycle: u32,
    pub state: ClockState,
    pub started_at: DateTime<Utc>,
    pub target_minutes: i64,
    pub business_hours: bool,
    pub elapsed_secs: i64,
    pub paused_secs: i64,
    pub due_at: Option<DateTime<Utc>>,
    pub warn_at: Option<DateTime<Utc>>,
    pub breached: bool,
    pub ended_at: Option<DateTime<Utc>>,
    pub milestones: Vec<MilestoneView>,
    pub explanation: String,
}

/// The SLA of a case: the policy that applies and its clocks.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseSla {
    pub case_id: CaseId,
    /// Id and name of the policy that applies; none when no policy matches.
    pub policy_id: Option<String>,
    pub policy_name: Option<String>,
    pub calendar: Option<String>,
    pub time_zone: Option<String>,
    pub clocks: Vec<ClockView>,
    /// The earliest deadline of a running clock.
    pub due_at: Option<DateTime<Utc>>,
    pub breached: bool,
    pub evaluated_at: DateTime<Utc>,
}

/// An alert for supervisors or for one agent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: String,
    pub case_id: CaseId,
    pub team_id: Option<String>,
    /// The one agent the alert is for (notify the assignee).
    pub agent_id: Option<String>,
    /// `warning`, `breach`, `escalation` (SLA), `bad_rating` (a customer's bad satisfaction answer) or `topic` (a case opened on a topic that alerts supervisors, e.g. a complaint).
    pub kind: String,
    pub metric: Option<String>,
    pub action: Option<String>,
    pub message: String,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

impl From<AlertRow> for AlertView {
    fn from(r: AlertRow) -> Self {
        AlertView {
            id: r.id,
            case_id: CaseId::new(r.case_id),
            team_id: r.team_id,
            agent_id: r.agent_id,
            kind: r.kind,
            metric: r.metric,
            action: r.action,
            message: r.message,
            due_at: r.due_at.map(utc),
            created_at: utc(r.created_at),
            acknowledged_by: r.acknowledged_by,
            acknowledged_at: r.acknowledged_at.map(utc),
        }
    }
}

/// Which alerts a principal sees: admins, integrators and the system all; supervisors those
/// of their team, without a team, or addressed to them; agents those addressed to them.
fn alert_scope(conn: &mut DbConn, who: &Principal) -> AppResult<AlertScope> {
    Ok(match who {
        Principal::Agent { id, role: Role::Admin } => {
            let _ = id;
            AlertScope::All
        }
        Principal::Agent { id, role: Role::Supervisor } => {
            let agent = id.to_string();
            let team = queries::agents::get(conn, &agent)?.and_then(|a| a.team_id);
            AlertScope::Supervisor { team, agent }
        }
        Principal::Agent { id, role: Role::Agent } => AlertScope::Agent { agent: id.to_string() },
        _ => AlertScope::All,
    })
}

/// The same rule as the query, for one alert.
fn visible(scope: &AlertScope, a: &AlertRow) -> bool {
    match scope {
        AlertScope::All => true,
        AlertScope::Supervisor { team, agent } => {
            a.agent_id.as_ref() == Some(agent) || (a.agent_id.is_none() && (a.team_id.is_none() || a.team_id == *team))
        }
        AlertScope::Agent { agent } => a.agent_id.as_ref() == Some(agent),
    }
}

fn calendar_view(row: SlaCalendarRow) -> AppResult<CalendarView> {
    let spec = serde_json::from_str(&row.spec).map_err(|e| AppError::Internal(format!("stored calendar: {e}")))?;
    Ok(CalendarView { id: row.id, spec, created_at: utc(row.created_at), updated_at: utc(row.updated_at) })
}

fn policy_view(row: SlaPolicyRow) -> AppResult<PolicyView> {
    let spec = serde_json::from_str(&row.spec).map_err(|e| AppError::Internal(format!("stored policy: {e}")))?;
    Ok(PolicyView {
        id: row.id,
        position: row.position,
        spec,
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
    })
}

fn check_calendar(spec: &CalendarSpec) -> AppResult<()> {
    crate::check_len("name", &spec.name, 200)?;
    if spec.name.trim().is_empty() {
        return Err(AppError::invalid("name must not be empty"));
    }
    if spec.hours.len() > 200 || spec.holidays.len() > 2_000 || spec.closures.len() > 2_000 {
        return Err(AppError::invalid("at most 200 openings, 2,000 holidays and 2,000 closures"));
    }
    Calendar::from_spec(spec).map(drop).map_err(|e| AppError::invalid(e.to_string()))
}

fn check_policy(conn: &mut DbConn, spec: &PolicySpec) -> AppResult<()> {
    crate::check_len("name", &spec.name, 200)?;
    if spec.name.trim().is_empty() {
        return Err(AppError::invalid("name must not be empty"));
    }
    if spec.ladder.len() > 20 || spec.targets.len() > 3 {
        return Err(AppError::invalid("at most 3 targets and 20 ladder steps"));
    }
    spec.validate().map_err(|e| AppError::invalid(e.to_string()))?;
    if let Some(cal) = &spec.calendar {
        if queries::sla::calendar_by_name(conn, cal)?.is_none() {
            return Err(AppError::invalid(format!("calendar {cal:?} does not exist")));
        }
    }
    for t in &spec.conditions.teams {
        if queries::teams::get(conn, t)?.is_none() {
            return Err(AppError::invalid(format!("team {t:?} does not exist")));
        }
    }
    Ok(())
}

fn json(v: &impl Serialize) -> AppResult<String> {
    serde_json::to_string(v).map_err(|e| AppError::Internal(e.to_string()))
}

impl App {
    /// Every calendar, by name.
    pub async fn list_calendars(&self, who: &Principal) -> AppResult<Vec<CalendarView>> {
        who.require_read()?;
        self.read(|conn| queries::sla::calendars(conn)?.into_iter().map(calendar_view).collect()).await
    }

    pub async fn get_calendar(&self, who: &Principal, id: String) -> AppResult<CalendarView> {
        who.require_read()?;
        self.read(move |conn| calendar_view(queries::sla::calendar(conn, &id)?.ok_or(AppError::NotFound("calendar"))?))
            .await
    }

    /// Creates a calendar (admins).
    pub async fn create_calendar(&self, who: &Principal, spec: CalendarSpec) -> AppResult<CalendarView> {
        who.require_admin()?;
        check_calendar(&spec)?;
        let now = self.now_naive();
        let row = SlaCalendarRow {
            id: new_id(),
            name: spec.name.trim().to_owned(),
            spec: json(&spec)?,
            created_at: now,
            updated_at: now,
        };
        self.write(move |conn| {
            if queries::sla::calendar_by_name(conn, &row.name)?.is_some() {
                return Err(AppError::AlreadyExists(format!("a calendar named {:?} exists", row.name)));
            }
            queries::sla::insert_calendar(conn, &row)?;
            calendar_view(row)
        })
        .await
    }

    /// Replaces a calendar (admins); every active case is evaluated again. Renaming is not
    /// allowed (policies refer to calendars by name).
    pub async fn update_calendar(&self, who: &Principal, id: String, spec: CalendarSpec) -> AppResult<CalendarView> {
        who.require_admin()?;
        check_calendar(&spec)?;
        let now = self.now_naive();
        let text = json(&spec)?;
        self.write(move |conn| {
            let mut row = queries::sla::calendar(conn, &id)?.ok_or(AppError::NotFound("calendar"))?;
            if row.name != spec.name.trim() {
                return Err(AppError::invalid("a calendar cannot be renamed (policies refer to it by name)"));
            }
            row.spec = text;
            row.updated_at = now;
            queries::sla::update_calendar(conn, &row)?;
            queries::sla::touch_active(conn)?;
            calendar_view(row)
        })
        .await
    }

    /// Deletes a calendar no policy uses (admins).
    pub async fn delete_calendar(&self, who: &Principal, id: String) -> AppResult<()> {
        who.require_admin()?;
        self.write(move |conn| {
            let row = queries::sla::calendar(conn, &id)?.ok_or(AppError::NotFound("calendar"))?;
            for p in queries::sla::policies(conn)? {
                if serde_json::from_str::<PolicySpec>(&p.spec).ok().and_then(|s| s.calendar).as_deref()
                    == Some(&row.name)
                {
                    return Err(AppError::InUse(format!("policy {:?} uses this calendar", p.name)));
                }
            }
            queries::sla::delete_calendar(conn, &id)?;
            Ok(())
        })
        .await
    }

    /// Every policy in matching order.
    pub async fn list_policies(&self, who: &Principal) -> AppResult<Vec<PolicyView>> {
        who.require_read()?;
        self.read(|conn| queries::sla::policies(conn)?.into_iter().map(policy_view).collect()).await
    }

    pub async fn get_policy(&self, who: &Principal, id: String) -> AppResult<PolicyView> {
        who.require_read()?;
        self.read(move |conn| policy_view(queries::sla::policy(conn, &id)?.ok_or(AppError::NotFound("policy"))?)).await
    }

    /// Creates a policy (admins); every active case is evaluated again.
    pub async fn create_policy(&self, who: &Principal, input: PolicyInput) -> AppResult<PolicyView> {
        who.require_admin()?;
        let now = self.now_naive();
        self.write(move |conn| {
            check_policy(conn, &input.spec)?;
            let name = input.spec.name.trim().to_owned();
            if queries::sla::policies(conn)?.iter().any(|p| p.name == name) {
                return Err(AppError::AlreadyExists(format!("a policy named {name:?} exists")));
            }
            let position = match input.position {
                Some(p) => p,
                None => {
                    queries::sla::policies(conn)?.iter().map(|p| p.position).max().map_or(0, |m| m.saturating_add(10))
                }
            };
            let row = SlaPolicyRow {
                id: new_id(),
                name,
                position,
                spec: json(&input.spec)?,
                created_at: now,
                updated_at: now,
            };
            queries::sla::insert_policy(conn, &row)?;
            queries::sla::touch_active(conn)?;
            policy_view(row)
        })
        .await
    }

    /// Replaces a policy (admins); every active case is evaluated again.
    pub async fn update_policy(&self, who: &Principal, id: String, input: PolicyInput) -> AppResult<PolicyView> {
        who.require_admin()?;
        let now = self.now_naive();
        self.write(move |conn| {
            let mut row = queries::sla::policy(conn, &id)?.ok_or(AppError::NotFound("policy"))?;
            check_policy(conn, &input.spec)?;
            let name = input.spec.name.trim().to_owned();
            if queries::sla::policies(conn)?.iter().any(|p| p.name == name && p.id != row.id) {
                return Err(AppError::AlreadyExists(format!("a policy named {name:?} exists")));
            }
            row.name = name;
            row.position = input.position.unwrap_or(row.position);
            row.spec = json(&input.spec)?;
            row.updated_at = now;
            queries::sla::update_policy(conn, &row)?;
            queries::sla::touch_active(conn)?;
            policy_view(row)
        })
        .await
    }

    pub async fn delete_policy(&self, who: &Principal, id: String) -> AppResult<()> {
        who.require_admin()?;
        self.write(move |conn| {
            if queries::sla::delete_policy(conn, &id)? == 0 {
                return Err(AppError::NotFound("policy"));
            }
            queries::sla::touch_active(conn)?;
            Ok(())
        })
        .await
    }

    /// The clocks of a case now, with deadlines, milestones and explanations.
    pub async fn case_sla(&self, who: &Principal, id: String) -> AppResult<CaseSla> {
        who.require_read()?;
        let now = self.now_naive();
        self.read(move |conn| {
            let h = load_case(conn, &id, false)?.ok_or(AppError::NotFound("case"))?;
            let setup = Setup::load(conn)?;
            let fired: HashMap<(String, i32, String), NaiveDateTime> = queries::sla::fired(conn, &h.case.id)?
                .into_iter()
                .map(|f| ((f.metric, f.cycle, f.milestone), f.fired_at))
                .collect();
            let mut out = CaseSla {
                case_id: CaseId::new(h.case.id.clone()),
                policy_id: None,
                policy_name: None,
                calendar: None,
                time_zone: None,
                clocks: Vec::new(),
                due_at: None,
                breached: false,
                evaluated_at: utc(now),
            };
            if let Some((row, spec, clocks)) = clocks_of(&setup, &h, secs(now)) {
                out.policy_id = Some(row.id.clone());
                out.policy_name = Some(row.name.clone());
                let cal = setup.calendar_of(spec);
                out.calendar = cal.map(|c| c.name().to_owned());
                out.time_zone = cal.map(|c| c.time_zone().name().to_owned());
                let (due, breached) = summary(&clocks);
                (out.due_at, out.breached) = (due.map(|d| utc(naive(d))), breached);
                for c in clocks {
                    let cycle = i32::try_from(c.cycle).unwrap_or(i32::MAX);
                    let milestones = c
                        .milestones
                        .iter()
                        .map(|m| {
                            let (kind, step, action) = match m.kind {
                                MilestoneKind::Warning => ("warning", None, None),
                                MilestoneKind::Breach => ("breach", None, None),
                                MilestoneKind::Step(i) => (
                                    "step",
                                    Some(i),
                                    spec.ladder.get(usize::from(i)).map(|s| action_name(s.action).to_owned()),
                                ),
                            };
                            let key = (c.metric.as_str().to_owned(), cycle, milestone_name(m.kind, &row.id));
                            MilestoneView {
                                kind: kind.into(),
                                step,
                                action,
                                at: utc(naive(m.at)),
                                fired_at: fired.get(&key).copied().map(utc),
                            }
                        })
                        .collect();
                    out.clocks.push(ClockView {
                        metric: c.metric,
                        cycle: c.cycle,
                        state: c.state,
                        started_at: utc(naive(c.started_at)),
                        target_minutes: c.target_secs / 60,
                        business_hours: c.business_hours,
                        elapsed_secs: c.elapsed_secs,
                        paused_secs: c.paused_secs,
                        due_at: c.due_at.map(|d| utc(naive(d))),
                        warn_at: c.warn_at().map(|d| utc(naive(d))),
                        breached: c.breached,
                        ended_at: c.ended_at.map(|d| utc(naive(d))),
                        milestones,
                        explanation: c.explanation,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Alerts the caller may see, oldest first, created at or after `since` (default: the
    /// last 24 hours).
    pub async fn list_alerts(
        &self,
        who: &Principal,
        since: Option<DateTime<Utc>>,
        unacknowledged: bool,
        limit: Option<i64>,
    ) -> AppResult<Vec<AlertView>> {
        who.require_read()?;
        let limit = self.page_limit(limit)?;
        let since = since.map_or_else(|| self.now_naive() - chrono::Duration::hours(24), |s| s.naive_utc());
        let who = who.clone();
        self.read(move |conn| {
            let scope = alert_scope(conn, &who)?;
            let rows = queries::sla::alerts_page(conn, &scope, since, None, unacknowledged, limit)?;
            Ok(rows.into_iter().map(AlertView::from).collect())
        })
        .await
    }

    /// Acknowledges an alert (the supervisors who see it, or the agent it is for); audited
    /// on the case. Acknowledging again changes nothing.
    pub async fn acknowledge_alert(&self, who: &Principal, id: String) -> AppResult<AlertView> {
        who.require_read()?;
        let Some(agent) = who.agent_id().map(|a| a.to_string()) else {
            return Err(AppError::Forbidden("alerts are acknowledged by a person".into()));
        };
        let now = self.now_naive();
        let who = who.clone();
        self.write(move |conn| {
            let scope = alert_scope(conn, &who)?;
            let alert =
                queries::sla::alert(conn, &id)?.filter(|a| visible(&scope, a)).ok_or(AppError::NotFound("alert"))?;
            if queries::sla::acknowledge(conn, &alert.id, &agent, now)? {
                let data = serde_json::json!({"alert_id": alert.id, "kind": alert.kind, "metric": alert.metric});
                event(conn, &alert.case_id, "alert_acknowledged", &who.actor(), data, now)?;
            }
            Ok(AlertView::from(queries::sla::alert(conn, &id)?.ok_or(AppError::NotFound("alert"))?))
        })
        .await
    }

    /// One page (at most `limit`) of the alerts the caller may see, in (created_at, id)
    /// order, created at or after `since` and after the key `after`: what a live stream reads.
    pub async fn stream_alerts(
        &self,
        who: &Principal,
        since: NaiveDateTime,
        after: Option<(NaiveDateTime, String)>,
        limit: i64,
    ) -> AppResult<Vec<AlertView>> {
        who.require_read()?;
        let who = who.clone();
        self.read(move |conn| {
            let scope = alert_scope(conn, &who)?;
            let rows = queries::sla::alerts_page(conn, &scope, since, after, false, limit)?;
            Ok(rows.into_iter().map(AlertView::from).collect())
        })
        .await
    }

    /// When an alert was created (to resume a stream from its id).
    pub async fn alert_created_at(&self, id: String) -> AppResult<Option<NaiveDateTime>> {
        self.read(move |conn| Ok(queries::sla::alert(conn, &id)?.map(|a| a.created_at))).await
    }

    /// Runs one scheduler batch now (tests and the worker): if anything is due, claims up to
    /// `sla.batch` cases with a lease (a short transaction), then processes each case in its
    /// own transaction, so one case's failure delays only that case (until the lease ends).
    pub async fn sla_tick(&self) -> AppResult<TickReport> {
        let s = &self.settings().sla;
        let (batch, catch_up) = (i64::from(s.batch), i64::try_from(s.catch_up_secs).unwrap_or(i64::MAX));
        let now = self.now_naive();
        // A read first: an idle system does not take the write lock four times a second.
        if self.read(|conn| Ok(queries::sla::next_due(conn)?)).await?.is_none_or(|d| d > now) {
            return Ok(TickReport::default());
        }
        let app = self.clone();
        let (ids, lease, setup) = self
            .write_silent(move |conn| {
                let now = app.now_naive();
                let lease = now + chrono::Duration::seconds(LEASE_SECS);
                let ids = queries::sla::claim_due(conn, now, batch, lease)?;
                let setup = if ids.is_empty() { Setup::default() } else { Setup::load(conn)? };
                Ok((ids, lease, setup))
            })
            .await?;
        let setup = std::sync::Arc::new(setup);
        let ack = std::sync::Arc::new(AckRules {
            rules: crate::cases::ReplyRules::from_settings(self.settings()),
            template: s.acknowledgement.clone(),
        });
        let mut report = TickReport::default();
        for id in ids {
            let (app, setup, ack, case_id) = (self.clone(), setup.clone(), ack.clone(), id.clone());
            // `now` is read inside the transaction, after the case is locked: every change
            // committed before is in what it reads.
            let done = self
                .write_silent(move |conn| process_case(conn, &setup, &case_id, app.now_naive(), lease, catch_up, &ack))
                .await;
            match done {
                Ok(r) => report.add(&r),
                Err(e) => {
                    tracing::warn!(case.id = %id, error = %e, "SLA evaluation failed; retried when its lease ends")
                }
            }
        }
        let m = self.metrics();
        m.sla_warnings.inc_by(u64::try_from(report.warnings).unwrap_or(0));
        m.sla_breaches.inc_by(u64::try_from(report.breaches).unwrap_or(0));
        if report.alerts > 0 {
            self.notify_alerts();
        }
        if report.acknowledged > 0 {
            self.wake_outbox();
        }
        if report.case_changed || report.acknowledged > 0 {
            self.wake_router();
        }
        if report.warnings + report.breaches + report.escalations + report.acknowledged > 0 || report.case_changed {
            // Their case events may have left webhook deliveries.
            self.wake_webhooks();
        }
        Ok(report)
    }

    /// The SLA scheduler: ticks every `sla.tick_ms` (sooner after a local write), batch after
    /// batch while cases are due. Every node runs it; `SKIP LOCKED` and the fired log keep
    /// each milestone to one node and one firing.
    pub async fn run_sla(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if !self.settings().sla.enabled {
            return;
        }
        let pause = Duration::from_millis(self.settings().sla.tick_ms.max(10));
        loop {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match self.sla_tick().await {
                    Ok(r) if r.evaluated >= usize::try_from(self.settings().sla.batch).unwrap_or(0) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "SLA scheduler tick failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.sla_woken() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

impl App {
    /// Listens for other nodes' commits (PostgreSQL `LISTEN/NOTIFY`, migration 9) on a
    /// dedicated connection and wakes this node's alert streams and router at once. Runs on
    /// its own blocking thread: checking for notifications is a non-blocking read of the
    /// socket, done every 50 ms. Reconnects with a backoff; SQLite (one node) needs none of it.
    pub fn spawn_listener(&self, shutdown: tokio::sync::watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
        let url = caseflow_store::DbUrl::parse(self.settings().database.url.expose()).ok()?;
        if !matches!(url, caseflow_store::DbUrl::Postgres(_)) {
            return None;
        }
        let app = self.clone();
        Some(tokio::task::spawn_blocking(move || {
            let mut backoff = Duration::from_secs(1);
            // Stops when asked, or when whoever could ask is gone (a server dropped without a
            // clean stop, e.g. a failed test): a blocking task that never ends would hold up
            // the runtime's shutdown for good.
            let running = |s: &tokio::sync::watch::Receiver<bool>| !*s.borrow() && s.has_changed().is_ok();
            while running(&shutdown) {
                let mut conn = match caseflow_store::db::connect_once(&url).and_then(|mut c| {
                    queries::notify::listen(&mut c).map_err(caseflow_store::StoreError::from)?;
                    Ok(c)
                }) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification listener cannot connect; retrying");
                        let until = std::time::Instant::now() + backoff;
                        while running(&shutdown) && std::time::Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                };
                // Whatever was missed while (re)connecting: look now.
                app.notify_alerts();
                app.changes_announced();
                let connected = std::time::Instant::now();
                let mut pinged = std::time::Instant::now();
                while running(&shutdown) {
                    // This node's writes, announced to the others (at most every 50 ms).
                    if app.take_routing_dirty() {
                        if let Err(e) = queries::notify::notify(&mut conn, "caseflow_routing") {
                            tracing::warn!(error = %e, "notification listener lost its connection");
                            break;
                        }
                    }
                    // A silently dropped connection (a NAT timeout, a failover) says nothing
                    // to a reader: ask now and then.
                    if pinged.elapsed() >= Duration::from_secs(30) {
                        pinged = std::time::Instant::now();
                        if let Err(e) = queries::leader::ping(&mut conn) {
                            tracing::warn!(error = %e, "notification listener lost its connection");
                            break;
                        }
                    }
                    match queries::notify::take(&mut conn) {
                        Ok(channels) => {
                            if channels.iter().any(|c| c == "caseflow_alerts") {
                                app.notify_alerts();
                            }
                            if channels.iter().any(|c| c == "caseflow_routing") {
                                app.changes_announced();
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "notification listener lost its connection");
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                // Lost: wait before reconnecting, longer if the connection was short-lived.
                if connected.elapsed() < Duration::from_secs(60) {
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                } else {
                    backoff = Duration::from_secs(1);
                }
                let until = std::time::Instant::now() + backoff;
                while running(&shutdown) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }))
    }
}
