//! What the supervisor console shows besides alerts: queues and agents' load now, and the
//! figures of the last hours and days (cases in and out per hour, first-response times and
//! breaches per day, per channel and team). Narrow rows from the database, bucketed here.

use crate::error::AppResult;
use crate::{utc, App, Principal};
use caseflow_store::queries;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Query for the overview.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// Days of history for the daily figures (1–31, default 7).
    #[param(minimum = 1, maximum = 31)]
    pub days: Option<i64>,
    /// Only this team's agents and cases (`none`: agents and cases of no team); every team
    /// when absent.
    pub team: Option<String>,
}

/// A team filter from a query parameter: `None` every team, `Some(None)` no team,
/// `Some(Some(id))` that team (which must exist).
pub(crate) fn team_filter(team: Option<&str>) -> AppResult<Option<Option<String>>> {
    match team.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(t) => {
            crate::check_len("team", t, 64)?;
            Ok(Some(Some(t.to_owned())))
        }
    }
}

/// Whether a row of team `row` passes the filter.
fn keeps(filter: &Option<Option<String>>, row: &Option<String>) -> bool {
    filter.as_ref().is_none_or(|f| f == row)
}

/// An agent and the unsolved cases assigned to them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentLoad {
    pub agent_id: String,
    pub name: String,
    pub team_id: Option<String>,
    pub presence: String,
    /// Active cases (new and open) assigned now: what routing counts against `max_load`.
    pub load: i64,
    pub max_load: i32,
}

/// A count under a name (a team or a skill; `id` absent for "no team").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Count {
    pub id: Option<String>,
    pub name: String,
    pub count: i64,
}

/// One hour: cases created and solved in it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hour {
    pub start: DateTime<Utc>,
    pub created: i64,
    pub solved: i64,
}

/// One day (UTC): first responses to the cases created that day, and breaches due that day.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Day {
    pub day: NaiveDate,
    /// Cases created that day and answered since.
    pub answered: i64,
    /// Median minutes from creation to first response, of those.
    pub first_response_median_mins: Option<f64>,
    pub breaches: i64,
    /// Breaches per channel.
    pub breaches_by_channel: BTreeMap<String, i64>,
}

/// Satisfaction answers under a name (a team or an agent; `id` absent for none).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ratings {
    pub id: Option<String>,
    pub name: String,
    pub good: i64,
    pub bad: i64,
    /// Good answers in percent of all answers (CSAT), rounded to one decimal.
    pub score: Option<f64>,
}

/// Good answers in percent of all answers, to one decimal; none without answers.
fn score(good: i64, bad: i64) -> Option<f64> {
    let total = good + bad;
    (total > 0).then(|| (good as f64 * 1000.0 / total as f64).round() / 10.0)
}

impl Ratings {
    fn new(id: Option<String>, name: String, good: i64, bad: i64) -> Self {
        Self { id, name, good, bad, score: score(good, bad) }
    }
}

/// Customer satisfaction of the window: answers given in it (a changed answer counts once,
/// as it stands), for the team and agent who had the case when it was rated.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Satisfaction {
    pub good: i64,
    pub bad: i64,
    pub score: Option<f64>,
    pub per_team: Vec<Ratings>,
    pub per_agent: Vec<Ratings>,
}

/// The supervisor console's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub as_of: DateTime<Utc>,
    /// Active agents, by name.
    pub agents: Vec<AgentLoad>,
    /// New and open unassigned cases per team.
    pub waiting_per_team: Vec<Count>,
    /// New and open unassigned cases per skill they require (preferred skills not counted).
    pub waiting_per_skill: Vec<Count>,
    /// The last 24 hours, oldest first.
    pub hourly: Vec<Hour>,
    /// The last `days` days, oldest first.
    pub daily: Vec<Day>,
    /// Breaches of the whole window per team.
    pub breaches_per_team: Vec<Count>,
    /// Satisfaction answers of the whole window.
    pub satisfaction: Satisfaction,
}

fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

impl App {
    /// Queues, load and the figures of the last day and `days` days (supervisors).
    pub async fn overview(&self, who: &Principal, q: OverviewQuery) -> AppResult<Overview> {
        who.require_supervisor()?;
        let days = q.days.unwrap_or(7);
        if !(1..=31).contains(&days) {
            return Err(crate::AppError::invalid("days must be between 1 and 31"));
        }
        let now = self.now_naive();
        let only = team_filter(q.team.as_deref())?;
        self.read(move |conn| {
            let agents = queries::agents::list(conn)?;
            let teams = queries::teams::list(conn)?;
            if let Some(Some(t)) = &only {
                if !teams.iter().any(|x| &x.id == t) {
                    return Err(crate::AppError::invalid("team: no such team (an id, or none)"));
                }
            }
            let keep = |row: &Option<String>| keeps(&only, row);
            let skills = queries::skills::list(conn)?;
            let team_name = |id: &Option<String>| match id {
                None => "No team".to_owned(),
                Some(t) => teams.iter().find(|x| &x.id == t).map(|x| x.name.clone()).unwrap_or_else(|| t.clone()),
            };
            let load: BTreeMap<String, i64> =
                queries::stats::load_per_agent(conn)?.into_iter().filter_map(|(a, n)| a.map(|a| (a, n))).collect();
            let mut agent_loads: Vec<AgentLoad> = agents
                .iter()
                .filter(|a| a.active && keep(&a.team_id))
                .map(|a| AgentLoad {
                    agent_id: a.id.clone(),
                    name: a.name.clone(),
                    team_id: a.team_id.clone(),
                    presence: a.presence.clone(),
                    load: load.get(&a.id).copied().unwrap_or(0),
                    max_load: a.max_load,
                })
                .collect();
            agent_loads.sort_by(|a, b| a.name.cmp(&b.name).then(a.agent_id.cmp(&b.agent_id)));
            let mut waiting_per_team: Vec<Count> = queries::stats::waiting_per_team(conn)?
                .into_iter()
                .filter(|(id, _)| keep(id))
                .map(|(id, count)| Count { name: team_name(&id), id, count })
                .collect();
            waiting_per_team.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
            let mut per_skill: BTreeMap<String, i64> = BTreeMap::new();
            for (skill, team) in queries::stats::waiting_skills(conn)? {
                if keep(&team) {
                    *per_skill.entry(skill).or_default() += 1;
                }
            }
            let mut waiting_per_skill: Vec<Count> = per_skill
                .into_iter()
                .map(|(id, count)| Count {
                    name: skills.iter().find(|s| s.id == id).map(|s| s.name.clone()).unwrap_or_else(|| id.clone()),
                    id: Some(id),
                    count,
                })
                .collect();
            waiting_per_skill.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));

            // The current hour and the 23 before it (UTC).
            let first_hour = hour_of(now) - Duration::hours(23);
            let mut hourly: Vec<Hour> =
                (0..24).map(|i| Hour { start: utc(first_hour + Duration::hours(i)), created: 0, solved: 0 }).collect();
            let slot =
                |t: NaiveDateTime| usize::try_from((hour_of(t) - first_hour).num_hours()).ok().filter(|i| *i < 24);
            for (t, team) in queries::stats::created_since(conn, first_hour)? {
                if let Some(i) = slot(t).filter(|_| keep(&team)) {
                    hourly[i].created += 1;
                }
            }
            for (t, team) in queries::stats::solved_since(conn, first_hour)? {
                if let Some(i) = slot(t).filter(|_| keep(&team)) {
                    hourly[i].solved += 1;
                }
            }

            let first_day = now.date() - Duration::days(days - 1);
            let since = first_day.and_hms_opt(0, 0, 0).unwrap_or(now);
            let n_days = usize::try_from(days).unwrap_or(0);
            let mut responses: Vec<Vec<f64>> = vec![Vec::new(); n_days];
            let day_slot =
                |t: NaiveDateTime| usize::try_from((t.date() - first_day).num_days()).ok().filter(|i| *i < n_days);
            let mut daily: Vec<Day> = (0..days)
                .map(|i| Day {
                    day: first_day + Duration::days(i),
                    answered: 0,
                    first_response_median_mins: None,
                    breaches: 0,
                    breaches_by_channel: BTreeMap::new(),
                })
                .collect();
            for (created, answered, _channel, team) in queries::stats::first_responses_since(conn, since)? {
                if let Some(i) = day_slot(created).filter(|_| keep(&team)) {
                    responses[i].push((answered - created).num_seconds().max(0) as f64 / 60.0);
                }
            }
            let mut per_team: BTreeMap<Option<String>, i64> = BTreeMap::new();
            for (due, channel, team) in queries::stats::breaches_since(conn, since)? {
                if let Some(i) = day_slot(due).filter(|_| keep(&team)) {
                    daily[i].breaches += 1;
                    *daily[i].breaches_by_channel.entry(channel).or_default() += 1;
                    *per_team.entry(team).or_default() += 1;
                }
            }
            for (d, r) in daily.iter_mut().zip(responses) {
                d.answered = r.len() as i64;
                d.first_response_median_mins = median(r);
            }
            let mut breaches_per_team: Vec<Count> =
                per_team.into_iter().map(|(id, count)| Count { name: team_name(&id), id, count }).collect();
            breaches_per_team.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));

            let mut by_team: BTreeMap<Option<String>, (i64, i64)> = BTreeMap::new();
            let mut by_agent: BTreeMap<Option<String>, (i64, i64)> = BTreeMap::new();
            for (rating, team, agent) in queries::satisfaction::rated_since(conn, since)? {
                if !keep(&team) {
                    continue;
                }
                let is_good = rating == "good";
                let add = |m: &mut BTreeMap<Option<String>, (i64, i64)>, k: Option<String>| {
                    let e = m.entry(k).or_default();
                    if is_good {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                };
                add(&mut by_team, team);
                add(&mut by_agent, agent);
            }
            // Every kept answer is under exactly one team (or none): the totals.
            let (good, bad) = by_team.values().fold((0, 0), |(g, b), (tg, tb)| (g + tg, b + tb));
            let agent_name = |id: &Option<String>| match id {
                None => "Unassigned".to_owned(),
                Some(a) => agents.iter().find(|x| &x.id == a).map(|x| x.name.clone()).unwrap_or_else(|| a.clone()),
            };
            let rank = |v: &mut Vec<Ratings>| {
                v.sort_by(|a, b| (b.good + b.bad).cmp(&(a.good + a.bad)).then(a.name.cmp(&b.name)));
            };
            let mut per_team: Vec<Ratings> =
                by_team.into_iter().map(|(id, (g, b))| Ratings::new(id.clone(), team_name(&id), g, b)).collect();
            let mut per_agent: Vec<Ratings> =
                by_agent.into_iter().map(|(id, (g, b))| Ratings::new(id.clone(), agent_name(&id), g, b)).collect();
            rank(&mut per_team);
            rank(&mut per_agent);
            let satisfaction = Satisfaction { good, bad, score: score(good, bad), per_team, per_agent };
            Ok(Overview {
                as_of: utc(now),
                agents: agent_loads,
                waiting_per_team,
                waiting_per_skill,
                hourly,
                daily,
                breaches_per_team,
                satisfaction,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_hours() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5.0]), Some(5.0));
        assert_eq!(median(vec![9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let t = NaiveDate::from_ymd_opt(2026, 12, 7).and_then(|d| d.and_hms_opt(9, 41, 7));
        assert_eq!(t.map(hour_of), NaiveDate::from_ymd_opt(2026, 12, 7).and_then(|d| d.and_hms_opt(9, 0, 0)));
    }

    #[test]
    fn scores_are_good_answers_in_percent() {
        assert_eq!(Ratings::new(None, String::new(), 0, 0).score, None);
        assert_eq!(Ratings::new(None, String::new(), 2, 1).score, Some(66.7));
        assert_eq!(Ratings::new(None, String::new(), 0, 3).score, Some(0.0));
        assert_eq!(Ratings::new(None, String::new(), 5, 0).score, Some(100.0));
    }
}
