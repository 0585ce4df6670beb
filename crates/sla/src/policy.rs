//! SLA policies: which cases they cover, their targets, warnings and escalation ladder.

use caseflow_core::{CaseStatus, Channel, Priority, Tier};
use serde::{Deserialize, Serialize};

/// What an SLA target measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// From the case's creation to the first public reply by an agent.
    FirstResponse,
    /// From the oldest customer message not yet answered (after the first reply) to the next
    /// public reply by an agent. A follow-up from the customer does not restart it: chasing
    /// must not push the deadline back.
    NextResponse,
    /// From creation to solved; a reopened case continues with the time already used.
    Resolution,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::FirstResponse, Metric::NextResponse, Metric::Resolution];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::NextResponse => "next_response",
            Metric::Resolution => "resolution",
        }
    }

    /// Words for explanations.
    pub fn label(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first response",
            Metric::NextResponse => "next response",
            Metric::Resolution => "resolution",
        }
    }
}

fn yes() -> bool {
    true
}

/// One target of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub metric: Metric,
    /// The time allowed, in minutes.
    pub minutes: u32,
    /// Counted in the policy's calendar's business hours (the default), or in calendar time.
    #[serde(default = "yes")]
    pub business_hours: bool,
}

/// Which cases a policy covers: every listed criterion must match; an empty list matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conditions {
    #[serde(default)]
    pub priorities: Vec<Priority>,
    #[serde(default)]
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Team ids.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// What a case looks like to policy matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub priority: Priority,
    pub tier: Tier,
    pub channel: Channel,
    pub team: Option<String>,
}

impl Conditions {
    pub fn matches(&self, f: &Facts) -> bool {
        (self.priorities.is_empty() || self.priorities.contains(&f.priority))
            && (self.tiers.is_empty() || self.tiers.contains(&f.tier))
            && (self.channels.is_empty() || self.channels.contains(&f.channel))
            && (self.teams.is_empty() || f.team.as_ref().is_some_and(|t| self.teams.contains(t)))
    }
}

/// When a warning is raised before a breach: at a share of the target used, or some minutes
/// before the deadline (both counted like the target: in business hours for a business-hours
/// target, so warnings fall in working time, not at midnight). With both, the earlier wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Warning {
    #[serde(default)]
    pub percent: Option<u8>,
    #[serde(default)]
    pub minutes_before: Option<u32>,
}

impl Default for Warning {
    fn default() -> Self {
        Warning { percent: Some(75), minutes_before: None }
    }
}

/// The moment a ladder step is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOn {
    Warning,
    Breach,
}

/// What a ladder step does (the service carries it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Tell the assigned agent.
    NotifyAssignee,
    /// An alert to the supervisors of the case's team (all supervisors without a team).
    AlertSupervisors,
    /// Raise the case's priority by one level.
    RaisePriority,
    /// Take the case from its agent and route it again.
    Reassign,
}

/// One step of an escalation ladder: on a warning or a breach, possibly some minutes after it
/// (counted like the target), for some metrics (all when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub on: StepOn,
    #[serde(default)]
    pub after_minutes: u32,
    pub action: Action,
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

fn default_pause() -> Vec<CaseStatus> {
    vec![CaseStatus::Pending, CaseStatus::OnHold]
}

fn default_ack() -> u32 {
    60
}

/// A policy as configured. Policies are tried in order; the first whose conditions match a
/// case applies to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicySpec {
    pub name: String,
    #[serde(default)]
    pub conditions: Conditions,
    /// The business calendar, by name; none: around the clock in UTC.
    #[serde(default)]
    pub calendar: Option<String>,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub warning: Warning,
    /// Statuses during which the clocks pause (pending on the customer, on hold).
    #[serde(default = "default_pause")]
    pub pause_on: Vec<CaseStatus>,
    /// A new case from a customer is acknowledged on its channel within this many seconds.
    #[serde(default = "default_ack")]
    pub acknowledge_within_secs: u32,
    #[serde(default)]
    pub ladder: Vec<Step>,
}

/// Why a policy spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {0:?}: metric {1} has two targets")]
    DuplicateTarget(String, &'static str),
    #[error("policy {0:?}: a target of 0 minutes")]
    ZeroTarget(String),
    #[error("policy {0:?}: warning percent must be 1 to 99")]
    WarningPercent(String),
    #[error("policy {0:?}: clocks can only pause on pending or on_hold, not {1}")]
    PauseStatus(String, CaseStatus),
    #[error("policy {0:?}: a target in business hours needs a calendar")]
    NoCalendar(String),
}

impl PolicySpec {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let name = || self.name.clone();
        for (i, t) in self.targets.iter().enumerate() {
            if t.minutes == 0 {
                return Err(PolicyError::ZeroTarget(name()));
            }
            if self.targets[..i].iter().any(|o| o.metric == t.metric) {
                return Err(PolicyError::DuplicateTarget(name(), t.metric.as_str()));
            }
            if t.business_hours && self.calendar.is_none() {
                return Err(PolicyError::NoCalendar(name()));
            }
        }
        if self.warning.percent.is_some_and(|p| p == 0 || p >= 100) {
            return Err(PolicyError::WarningPercent(name()));
        }
        if let Some(&s) = self.pause_on.iter().find(|s| !matches!(s, CaseStatus::Pending | CaseStatus::OnHold)) {
            return Err(PolicyError::PauseStatus(name(), s));
        }
        Ok(())
    }

    pub fn target(&self, metric: Metric) -> Option<&Target> {
        self.targets.iter().find(|t| t.metric == metric)
    }
}

/// The first policy whose conditions match, with its position.
pub fn select<'a>(policies: &'a [PolicySpec], facts: &Facts) -> Option<(usize, &'a PolicySpec)> {
    policies.iter().enumerate().find(|(_, p)| p.conditions.matches(facts))
}
