//! The routing service: keeps the pure engine (`caseflow-routing`) fed from the database and
//! writes its decisions back. See `docs/routing.md` and ADR 0008.
//!
//! - **One router at a time.** On PostgreSQL the node holding a session advisory lock routes;
//!   the others stand by and take over when its connection ends. SQLite is one node.
//! - **Event-driven.** Triggers record every change that matters to routing (case created or
//!   changed, case skills, agent presence/skills/capacity/team, customer tier/value) as a
//!   row in `routing_signals`, in the writer's own transaction. The router takes the signals,
//!   reads those entities again, and lets the engine decide. Nothing a write path forgets can
//!   leave a case unrouted; a periodic full resync is the safety net.
//! - **Safe commits.** Each assignment is a compare-and-set (`assignee_id IS NULL` and still
//!   active) after locking the agent's row and counting its load again, so a case is never
//!   assigned twice and automatic assignment never exceeds capacity, even if two routers ran
//!   at once.

use crate::error::{AppError, AppResult};
use crate::views::stored;
use crate::{new_id, App};
use caseflow_core::*;
use caseflow_routing as engine;
use caseflow_store::models::*;
use caseflow_store::{queries, DbConn, Store};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The advisory-lock key of the routing leader ("cfrouter" in ASCII).
const LEADER_LOCK_KEY: i64 = 0x6366_726f_7574_6572;

/// Signals taken per round.
const SIGNAL_BATCH: i64 = 5_000;

/// One agent's part in an explanation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RankedAgent {
    pub agent_id: String,
    /// The values the strategy compared.
    pub why: String,
}

/// Why routing decided what it did, as stored with each decision.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    /// `least_busy`, `longest_idle` or `best_skill_match`.
    pub strategy: String,
    /// The class the case was served in: `starving` (waited past the fairness bound),
    /// `sla_at_risk` or `normal` (by score).
    pub class: String,
    /// Priority + tier + customer value + aging points at the time of the decision.
    pub score: i64,
    pub agents_total: usize,
    pub excluded_offline: usize,
    pub excluded_skills: usize,
    pub excluded_capacity: usize,
    pub excluded_team: usize,
    pub eligible: usize,
    /// The chosen agent first, then runners-up.
    pub ranking: Vec<RankedAgent>,
    /// When an agent with free capacity pulled the case: how many queue heads it looked at
    /// (or, for an agent who qualifies for few queues, how many queues it qualified for).
    pub queues_considered: usize,
    /// The best case the agent did not take instead.
    pub runner_up_case_id: Option<String>,
    /// Overflow steps that applied: `optional_skills_relaxed`, `team_widened`, `escalated`.
    pub overflow: Vec<String>,
    /// Who decided: `router` for automatic decisions.
    pub decided_by: String,
}

/// A stored routing decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoutingDecisionView {
    pub id: String,
    /// `assigned`, `waiting` (no eligible agent yet), `escalated` (raised to supervisors),
    /// `rerouted` (taken back from an agent who went away); offer mode: `offered`, `accepted`,
    /// `declined`, `offer_expired`.
    pub outcome: String,
    pub agent_id: Option<AgentId>,
    pub explanation: Explanation,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A skill a case needs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSkill {
    pub skill_id: String,
    /// The lowest level that qualifies, 1 to 5 (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 5)]
    pub min_level: i32,
    /// Required (default) or only preferred: preferred skills rank agents and stop mattering
    /// after `routing.relax_optional_after_secs`.
    #[serde(default = "yes")]
    pub required: bool,
}

fn one() -> i32 {
    1
}

fn yes() -> bool {
    true
}

/// A case's routing: requirements, state and the latest decisions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseRouting {
    pub case_id: CaseId,
    /// `waiting` (active and unassigned), `offered` (offer mode: waiting for the agent to
    /// accept), `assigned` or `inactive` (pending, on hold, solved or closed: not routed).
    pub state: String,
    pub assignee_id: Option<AgentId>,
    pub pinned: bool,
    pub waiting_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Offer mode: the agent the case is offered to, and until when.
    pub offered_to: Option<AgentId>,
    pub offer_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub skills: Vec<CaseSkill>,
    /// Newest first, at most 50.
    pub decisions: Vec<RoutingDecisionView>,
}

/// Replaces an agent's per-channel capacities.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCapacities {
    pub capacities: Vec<crate::views::ChannelCapacity>,
}

/// Replaces a case's skills.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCaseSkills {
    pub skills: Vec<CaseSkill>,
}

fn millis(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_millis()
}

fn channel_of(s: &str) -> AppResult<Channel> {
    stored("cases.channel", s)
}

/// Checks skill input and turns it into rows.
pub(crate) fn case_skill_rows(conn: &mut DbConn, case_id: &str, skills: &[CaseSkill]) -> AppResult<Vec<CaseSkillRow>> {
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::with_capacity(skills.len());
    for s in skills {
        if !(1..=5).contains(&s.min_level) {
            return Err(AppError::invalid("skills: min_level must be between 1 and 5"));
        }
        if !seen.insert(s.skill_id.as_str()) {
            return Err(AppError::invalid("skills: a skill is listed twice"));
        }
        if queries::skills::get(conn, &s.skill_id)?.is_none() {
            return Err(AppError::invalid("skills: no such skill"));
        }
        rows.push(CaseSkillRow {
            case_id: case_id.to_owned(),
            skill_id: s.skill_id.clone(),
            min_level: s.min_level,
            required: s.required,
        });
    }
    Ok(rows)
}

/// The required skills of a topic (`web_form.topics[].skills`, by name); unknown names are
/// skipped with a warning (a skill renamed after the configuration was written).
pub(crate) fn topic_skills(
    conn: &mut DbConn,
    topic: Option<&crate::settings::TopicSettings>,
) -> AppResult<Vec<CaseSkill>> {
    let Some(topic) = topic.filter(|t| !t.skills.is_empty()) else { return Ok(Vec::new()) };
    let all = queries::skills::list(conn)?;
    let mut out = Vec::new();
    for name in &topic.skills {
        match all.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
            Some(s) => out.push(CaseSkill { skill_id: s.id.clone(), min_level: 1, required: true }),
            None => tracing::warn!(topic = %topic.key, "a topic names a skill that does not exist; not required"),
        }
    }
    Ok(out)
}

/// What a topic gives a new case: the skills routing requires, its team and priority.
pub(crate) struct TopicRoute {
    pub skills: Vec<CaseSkill>,
    pub team_id: Option<String>,
    pub priority: Priority,
}

/// [`topic_skills`], and the topic's team (by name; a name no team has is logged and left out)
/// and priority.
pub(crate) fn topic_route(conn: &mut DbConn, topic: Option<&crate::settings::TopicSettings>) -> AppResult<TopicRoute> {
    let skills = topic_skills(conn, topic)?;
    let team_id = match topic.and_then(|t| t.team.as_deref()) {
        None => None,
        Some(name) => {
            let teams = queries::teams::list(conn)?;
            let found = teams
                .iter()
                .find(|t| t.name == name)
                .or_else(|| teams.iter().find(|t| t.name.eq_ignore_ascii_case(name)))
                .map(|t| t.id.clone());
            if found.is_none() {
                tracing::warn!(
                    topic = topic.map(|t| t.key.as_str()).unwrap_or_default(),
                    "a topic names a team that does not exist; no team set"
                );
            }
            found
        }
    };
    Ok(TopicRoute { skills, team_id, priority: topic.and_then(|t| t.priority).unwrap_or(Priority::Normal) })
}

fn decision_view(r: RoutingDecisionRow) -> AppResult<RoutingDecisionView> {
    let explanation = serde_json::from_str(&r.explanation)
        .map_err(|e| AppError::Internal(format!("routing_decisions.explanation: {e}")))?;
    Ok(RoutingDecisionView {
        id: r.id,
        outcome: r.outcome,
        agent_id: r.agent_id.map(AgentId::new),
        explanation,
        created_at: crate::utc(r.created_at),
    })
}

impl App {
    /// A case's routing requirements, state and latest decisions.
    pub async fn case_routing(&self, who: &crate::Principal, id: String) -> AppResult<CaseRouting> {
        who.require_read()?;
        self.read(move |conn| {
            let case = queries::cases::get(conn, &id)?.ok_or(AppError::NotFound("case"))?;
            let skills = queries::routing::case_skills(conn, Some(std::slice::from_ref(&case.id)))?
                .into_iter()
                .map(|s| CaseSkill { skill_id: s.skill_id, min_level: s.min_level, required: s.required })
                .collect();
            let decisions = queries::routing::decisions(conn, &case.id, 50)?
                .into_iter()
                .map(decision_view)
                .collect::<AppResult<Vec<_>>>()?;
            let active = queries::routing::ACTIVE.contains(&case.status.as_str());
            let offer = queries::routing::offer_of(conn, &case.id)?;
            let state = match (&case.assignee_id, &offer, active) {
                (_, _, false) => "inactive",
                (Some(_), _, true) => "assigned",
                (None, Some(_), true) => "offered",
                (None, None, true) => "waiting",
            };
            Ok(CaseRouting {
                case_id: CaseId::new(case.id),
                state: state.into(),
                assignee_id: case.assignee_id.map(AgentId::new),
                pinned: case.pinned,
                waiting_since: case.waiting_since.map(crate::utc),
                offered_to: offer.as_ref().map(|o| AgentId::new(o.0.clone())),
                offer_expires_at: offer.map(|o| crate::utc(o.1)),
                skills,
                decisions,
            })
        })
        .await
    }

    /// Replaces a case's skills (staff with write access); audited on the case.
    pub async fn set_case_skills(
        &self,
        who: &crate::Principal,
        id: String,
        req: SetCaseSkills,
    ) -> AppResult<CaseRouting> {
        who.require_write()?;
        if req.skills.len() > 16 {
            return Err(AppError::invalid("skills: at most 16"));
        }
        let actor = who.actor();
        let now = self.now_naive();
        let case_id = id.clone();
        self.write(move |conn| {
            let case = queries::cases::get_for_update(conn, &case_id)?.ok_or(AppError::NotFound("case"))?;
            let rows = case_skill_rows(conn, &case.id, &req.skills)?;
            queries::routing::set_case_skills(conn, &case.id, &rows)?;
            let data = serde_json::json!({"skills": req.skills});
            crate::cases::event(conn, &case.id, "skills_set", &actor, data, now)?;
            Ok(())
        })
        .await?;
        self.case_routing(who, id).await
    }

    /// Replaces an agent's per-channel capacities (supervisors); audited on the agent.
    pub async fn set_agent_capacities(
        &self,
        who: &crate::Principal,
        id: String,
        req: SetCapacities,
    ) -> AppResult<crate::views::AgentView> {
        who.require_supervisor()?;
        let mut seen = std::collections::HashSet::new();
        for c in &req.capacities {
            if !(0..=1000).contains(&c.capacity) {
                return Err(AppError::invalid("capacity must be between 0 and 1000"));
            }
            if !seen.insert(c.channel) {
                return Err(AppError::invalid("a channel is listed twice"));
            }
        }
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            let row = queries::agents::get(conn, &id)?.ok_or(AppError::NotFound("agent"))?;
            let rows: Vec<AgentCapacityRow> = req
                .capacities
                .iter()
                .map(|c| AgentCapacityRow {
                    agent_id: row.id.clone(),
                    channel: c.channel.as_str().into(),
                    capacity: c.capacity,
                })
                .collect();
            queries::routing::set_capacities(conn, &row.id, &rows)?;
            crate::directory::agent_event(
                conn,
                &row.id,
                "capacities_set",
                &actor,
                serde_json::json!({"capacities": req.capacities}),
                now,
            )?;
            crate::directory::agent_view(conn, row)
        })
        .await
    }
}

/// Offers that ran out: withdrawn, audited on the case (`offer_expired`, a decision
/// `offer_expired`), and the agent set to `routing.offer_refused_presence` (they are evidently
/// not at their desk). The case is routed again.
fn expire_offers(app: &App, now: NaiveDateTime) -> AppResult<()> {
    let expired = app.store().read(|c| queries::routing::expired_offers(c, now, 1_000).map_err(AppError::from))?;
    if expired.is_empty() {
        return Ok(());
    }
    let to = app.settings().routing.offer_refused_presence;
    let reroute = app.settings().routing.reroute_on_away;
    let n = app.store().write(|conn| {
        let system = (ActorKind::System, None);
        let mut missed = std::collections::BTreeSet::new();
        for (case_id, agent, _) in &expired {
            // Cleared only if still this offer (an accept may have won in between); the case
            // read inside this transaction says whether it still waited for the agent.
            if !queries::routing::clear_offer(conn, case_id, Some(agent))? {
                continue;
            }
            let waiting = queries::cases::get(conn, case_id)?
                .is_some_and(|c| c.assignee_id.is_none() && queries::routing::ACTIVE.contains(&c.status.as_str()));
            if !waiting {
                continue;
            }
            crate::cases::event(conn, case_id, "offer_expired", &system, serde_json::json!({"agent_id": agent}), now)?;
            let why = note("offer_expired");
            queries::routing::insert_decisions(
                conn,
                &[decision_row(case_id, Some(agent), "offer_expired", &why, now)],
            )?;
            missed.insert(agent.clone());
        }
        let n = missed.len();
        for agent in missed {
            if let Some(row) = queries::agents::get(conn, &agent)? {
                crate::directory::change_presence(conn, row, to, &system, Some("offer_expired"), reroute, now)?;
            }
        }
        Ok::<_, AppError>(n)
    })?;
    app.metrics().routing_decisions.with_label_values(&["offer_expired"]).inc_by(n as u64);
    Ok(())
}

/// An explanation for a decision that is not the engine's (offers expiring, declined,
/// withdrawn; cases given back).
fn note(by: &str) -> Explanation {
    Explanation {
        strategy: String::new(),
        class: String::new(),
        score: 0,
        agents_total: 0,
        excluded_offline: 0,
        excluded_skills: 0,
        excluded_capacity: 0,
        excluded_team: 0,
        eligible: 0,
        ranking: Vec::new(),
        queues_considered: 0,
        runner_up_case_id: None,
        overflow: Vec::new(),
        decided_by: by.into(),
    }
}

/// Withdraws every open offer to the agent (they left `online`); audited on each case.
pub(crate) fn withdraw_offers(
    conn: &mut DbConn,
    agent_id: &str,
    actor: &(ActorKind, Option<String>),
    now: NaiveDateTime,
) -> AppResult<usize> {
    let mut n = 0;
    for id in queries::routing::offered_to(conn, agent_id)? {
        if queries::routing::clear_offer(conn, &id, Some(agent_id))? {
            let data = serde_json::json!({"agent_id": agent_id, "reason": "agent_left"});
            crate::cases::event(conn, &id, "offer_withdrawn", actor, data, now)?;
            n += 1;
        }
    }
    Ok(n)
}

impl App {
    /// The agent takes the case routing offered them. `409 invalid_transition` when there is
    /// no such offer any more (expired, withdrawn, or taken by someone else).
    pub async fn accept_offer(&self, who: &crate::Principal, case_id: String) -> AppResult<CaseRouting> {
        who.require_write()?;
        let me = who
            .agent_id()
            .ok_or_else(|| AppError::invalid("offers are accepted by the agent they were made to (an agent session)"))?
            .to_string();
        let actor = who.actor();
        let now = self.now_naive();
        let id = case_id.clone();
        self.write(move |conn| {
            queries::cases::get(conn, &id)?.ok_or(AppError::NotFound("case"))?;
            if !queries::routing::accept_offer(conn, &id, &me, now)? {
                return Err(AppError::InvalidTransition("there is no open offer of this case to you".into()));
            }
            let data = serde_json::json!({"from": null, "to": me, "by": "offer_accepted"});
            crate::cases::event(conn, &id, "assignee_changed", &actor, data, now)?;
            queries::routing::insert_decisions(conn, &[decision_row(&id, Some(&me), "accepted", &note("agent"), now)])?;
            Ok(())
        })
        .await?;
        self.metrics().routing_decisions.with_label_values(&["accepted"]).inc();
        self.case_routing(who, case_id).await
    }

    /// The agent declines the case routing offered them: the case is routed again and the
    /// agent set to `routing.offer_refused_presence`.
    pub async fn decline_offer(&self, who: &crate::Principal, case_id: String) -> AppResult<CaseRouting> {
        who.require_write()?;
        let me = who
            .agent_id()
            .ok_or_else(|| AppError::invalid("offers are declined by the agent they were made to (an agent session)"))?
            .to_string();
        let actor = who.actor();
        let now = self.now_naive();
        let to = self.settings().routing.offer_refused_presence;
        let reroute = self.settings().routing.reroute_on_away;
        let id = case_id.clone();
        self.write(move |conn| {
            queries::cases::get(conn, &id)?.ok_or(AppError::NotFound("case"))?;
            if !queries::routing::clear_offer(conn, &id, Some(&me))? {
                return Err(AppError::InvalidTransition("there is no open offer of this case to you".into()));
            }
            crate::cases::event(conn, &id, "offer_declined", &actor, serde_json::json!({"agent_id": me}), now)?;
            queries::routing::insert_decisions(conn, &[decision_row(&id, Some(&me), "declined", &note("agent"), now)])?;
            if let Some(row) = queries::agents::get(conn, &me)? {
                crate::directory::change_presence(conn, row, to, &actor, Some("offer_declined"), reroute, now)?;
            }
            Ok(())
        })
        .await?;
        self.metrics().routing_decisions.with_label_values(&["declined"]).inc();
        self.case_routing(who, case_id).await
    }
}

/// When an agent leaves `online`: their unstarted cases (status `new`; not pinned, unless
/// the agent is being deactivated) go back to the queue, keeping the customer's place
/// (waiting since the case was opened). Audited on each case. Returns how many.
pub(crate) fn take_back_unstarted(
    conn: &mut DbConn,
    agent_id: &str,
    with_pinned: bool,
    actor: &(ActorKind, Option<String>),
    now: NaiveDateTime,
) -> AppResult<usize> {
    let cases = queries::routing::unstarted(conn, agent_id, with_pinned)?;
    let mut decisions = Vec::with_capacity(cases.len());
    for old in &cases {
        let mut new = old.clone();
        new.assignee_id = None;
        new.pinned = false;
        new.waiting_since = Some(old.created_at);
        new.version = old.version + 1;
        new.updated_at = now;
        if !queries::cases::update_if_version(conn, &new, old.version)? {
            return Err(AppError::VersionConflict("case"));
        }
        let data = serde_json::json!({"from": agent_id, "to": null, "reason": "agent_away"});
        crate::cases::event(conn, &old.id, "assignee_changed", actor, data, now)?;
        let why = note("agent_away");
        decisions.push(decision_row(&old.id, Some(agent_id), "rerouted", &why, now));
    }
    queries::routing::insert_decisions(conn, &decisions)?;
    Ok(cases.len())
}

fn decision_row(
    case_id: &str,
    agent: Option<&str>,
    outcome: &str,
    why: &Explanation,
    now: NaiveDateTime,
) -> RoutingDecisionRow {
    RoutingDecisionRow {
        id: new_id(),
        case_id: case_id.to_owned(),
        agent_id: agent.map(str::to_owned),
        outcome: outcome.to_owned(),
        explanation: serde_json::to_string(why).unwrap_or_else(|_| "{}".into()),
        created_at: now,
    }
}

/// Ids both ways between the database's text ids and the engine's integers.
#[derive(Debug, Default)]
struct Interner<K: Copy> {
    to_key: HashMap<String, K>,
    to_id: HashMap<K, String>,
    next: u64,
}

impl<K: Copy + Eq + std::hash::Hash + TryFrom<u64> + From<u16>> Interner<K> {
    fn key(&mut self, id: &str) -> K {
        if let Some(&k) = self.to_key.get(id) {
            return k;
        }
        // Keys start at 1. A key type that ran out (65,535 distinct skills seen by one
        // process) maps every further id to 0: those skills are then one skill to the engine
        // (an agent holding any of them qualifies for all) until the process restarts.
        self.next += 1;
        let Ok(k) = K::try_from(self.next) else { return K::from(0) };
        self.to_key.insert(id.to_owned(), k);
        self.to_id.insert(k, id.to_owned());
        k
    }

    fn get(&self, id: &str) -> Option<K> {
        self.to_key.get(id).copied()
    }

    fn id(&self, k: K) -> &str {
        self.to_id.get(&k).map_or("", String::as_str)
    }

    fn forget(&mut self, id: &str) {
        if let Some(k) = self.to_key.remove(id) {
            self.to_id.remove(&k);
        }
    }
}

/// An assignment to write.
#[derive(Debug)]
struct Pending {
    case_id: String,
    agent_id: String,
    channel: Channel,
    why: Explanation,
}

/// Something to read again next round.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dirty {
    Case(String),
    Agent(String),
    /// Recount the agent's load: their active cases in the database and those the state
    /// holds for them are read again (a commit refused for capacity).
    Load(String),
}

/// The leader's in-memory routing state.
struct State {
    router: engine::Router,
    cases: Interner<u64>,
    agents: Interner<u32>,
    skills: Interner<u16>,
    teams: Interner<u32>,
    /// Active assigned cases: which agent they occupy, on which channel. A decision occupies
    /// the moment the engine makes it; a commit that fails is corrected by reading again.
    occupying: HashMap<u64, (u32, Channel)>,
    /// Per agent, the count of `occupying` per channel slot.
    loads: HashMap<u32, [u16; 4]>,
    /// The channel of each case the state holds.
    channels: HashMap<u64, Channel>,
    /// Each agent as last read (without load), to rebuild it when its load changes.
    agent_base: HashMap<u32, engine::Agent>,
    /// Decisions made and not yet written.
    out: Vec<Pending>,
    /// Entities to read again next round.
    dirty: Vec<Dirty>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("waiting", &self.router.waiting()).finish_non_exhaustive()
    }
}

fn engine_config(s: &crate::settings::RoutingSettings) -> engine::Config {
    let ms = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX / 2_000).saturating_mul(1_000);
    engine::Config {
        strategy: s.strategy,
        fairness_after_ms: ms(s.fairness_after_secs),
        sla_risk_ms: ms(s.sla_risk_secs),
        priority_points: s.priority_points,
        tier_points: s.tier_points,
        value_unit: s.value_unit,
        value_cap_points: s.value_cap_points,
        aging_points_per_minute: s.aging_points_per_minute,
        relax_optional_after_ms: ms(s.relax_optional_after_secs),
        widen_team_after_ms: ms(s.widen_team_after_secs),
        escalate_after_ms: ms(s.escalate_after_secs),
    }
}

const CHANNELS: [Channel; 4] = [Channel::Email, Channel::Web, Channel::Chat, Channel::Api];

fn slot(c: Channel) -> usize {
    CHANNELS.iter().position(|&x| x == c).unwrap_or(0)
}

/// Rows read for one round.
#[derive(Debug, Default)]
struct Reads {
    agents: Vec<AgentRow>,
    agent_skills: Vec<AgentSkillRow>,
    capacities: Vec<AgentCapacityRow>,
    cases: Vec<RoutableCase>,
    case_skills: Vec<CaseSkillRow>,
    /// Case ids asked for and not found.
    missing: Vec<String>,
}

impl State {
    fn new(config: engine::Config) -> Self {
        Self {
            router: engine::Router::new(config),
            cases: Interner::default(),
            agents: Interner::default(),
            skills: Interner::default(),
            teams: Interner::default(),
            occupying: HashMap::new(),
            loads: HashMap::new(),
            channels: HashMap::new(),
            agent_base: HashMap::new(),
            out: Vec::new(),
            dirty: Vec::new(),
        }
    }

    fn load_of(&self, agent: u32) -> [u16; 4] {
        self.loads.get(&agent).copied().unwrap_or_default()
    }

    /// Records what the case occupies now (`None`: nothing); returns what it occupied.
    fn occupy(&mut self, case: u64, now: Option<(u32, Channel)>) -> Option<(u32, Channel)> {
        let before = match now {
            Some(o) => self.occupying.insert(case, o),
            None => self.occupying.remove(&case),
        };
        if before != now {
            if let Some((a, ch)) = before {
                let l = self.loads.entry(a).or_default();
                l[slot(ch)] = l[slot(ch)].saturating_sub(1);
            }
            if let Some((a, ch)) = now {
                let l = self.loads.entry(a).or_default();
                l[slot(ch)] = l[slot(ch)].saturating_add(1);
            }
        }
        before
    }

    /// Takes the engine's decisions: each occupies its agent at once and waits to be written.
    fn take(&mut self, decisions: Vec<engine::Decision>) {
        for d in decisions {
            let case_id = self.cases.id(d.case).to_owned();
            let agent_id = self.agents.id(d.agent).to_owned();
            match self.channels.get(&d.case).copied() {
                Some(channel) => {
                    self.occupy(d.case, Some((d.agent, channel)));
                    let why = self.explain(&d.explanation, "router");
                    self.out.push(Pending { case_id, agent_id, channel, why });
                }
                None => {
                    // Not expected: read both again rather than guess.
                    self.dirty.push(Dirty::Case(case_id));
                    self.dirty.push(Dirty::Load(agent_id));
                }
            }
        }
    }

    /// Builds the engine's agent from its rows.
    fn agent_from(&mut self, row: &AgentRow, skills: &[&AgentSkillRow], caps: &[&AgentCapacityRow]) -> engine::Agent {
        let presence = if row.active { row.presence.parse().unwrap_or(Presence::Offline) } else { Presence::Offline };
        let mut capacity = [u16::try_from(row.max_load.max(0)).unwrap_or(u16::MAX); 4];
        for c in caps {
            if let Ok(ch) = channel_of(&c.channel) {
                capacity[slot(ch)] = u16::try_from(c.capacity.max(0)).unwrap_or(u16::MAX);
            }
        }
        let id = self.agents.key(&row.id);
        engine::Agent {
            id,
            team: row.team_id.as_deref().map(|t| self.teams.key(t)),
            presence,
            skills: skills
                .iter()
                .map(|s| (self.skills.key(&s.skill_id), u8::try_from(s.level.clamp(1, 5)).unwrap_or(1)))
                .collect(),
            capacity,
            load: [0; 4],
            last_assigned_at: row.last_assigned_at.map_or(0, millis),
        }
    }

    /// Sets the agent in the engine with its current load, without assigning yet.
    fn set_agent(&mut self, mut a: engine::Agent) {
        a.load = self.load_of(a.id);
        if let Some(known) = self.router.agent(a.id) {
            // The engine's own last assignment time is newer than the one read back while a
            // decision is still being written.
            a.last_assigned_at = a.last_assigned_at.max(known.last_assigned_at);
        }
        self.agent_base.insert(a.id, a.clone());
        self.router.set_agent(a);
    }

    /// Sets the agent again with its current load (after its load changed), not assigning.
    fn reset_agent(&mut self, agent: u32) {
        if let Some(a) = self.agent_base.get(&agent).cloned() {
            self.set_agent(a);
        }
    }

    fn engine_case(&mut self, c: &RoutableCase, skills: &[&CaseSkillRow]) -> AppResult<engine::Case> {
        let mut required = Vec::new();
        let mut optional = Vec::new();
        for s in skills {
            let k = self.skills.key(&s.skill_id);
            if s.required {
                required.push((k, u8::try_from(s.min_level.clamp(1, 5)).unwrap_or(1)));
            } else {
                optional.push(k);
            }
        }
        Ok(engine::Case {
            id: self.cases.key(&c.id),
            channel: channel_of(&c.channel)?,
            priority: stored("cases.priority", &c.priority)?,
            tier: stored("customers.tier", &c.tier)?,
            value: c.value,
            required,
            optional,
            team: c.team_id.as_deref().map(|t| self.teams.key(t)),
            enqueued_at: millis(c.waiting_since.unwrap_or(c.created_at)),
            sla_due: None,
        })
    }

    /// Sets every agent read, and every agent whose load changed, anew (assigning nothing);
    /// returns them.
    fn set_agents(&mut self, r: &Reads, affected: Vec<u32>) -> std::collections::BTreeSet<u32> {
        let mut agent_skills: HashMap<&str, Vec<&AgentSkillRow>> = HashMap::new();
        for s in &r.agent_skills {
            agent_skills.entry(s.agent_id.as_str()).or_default().push(s);
        }
        let mut capacities: HashMap<&str, Vec<&AgentCapacityRow>> = HashMap::new();
        for c in &r.capacities {
            capacities.entry(c.agent_id.as_str()).or_default().push(c);
        }
        let mut changed = std::collections::BTreeSet::new();
        for a in &r.agents {
            let skills = agent_skills.get(a.id.as_str()).map(Vec::as_slice).unwrap_or_default();
            let caps = capacities.get(a.id.as_str()).map(Vec::as_slice).unwrap_or_default();
            let agent = self.agent_from(a, skills, caps);
            changed.insert(agent.id);
            self.set_agent(agent);
        }
        for a in affected {
            if changed.insert(a) {
                self.reset_agent(a);
            }
        }
        changed
    }

    /// Routes the round's waiting cases, oldest wait first; returns those that started
    /// waiting with nobody to take them.
    fn route_cases(
        &mut self,
        to_route: Vec<(RoutableCase, bool)>,
        case_skills: &[CaseSkillRow],
        now: i64,
    ) -> Vec<engine::Case> {
        let mut skills_of: HashMap<&str, Vec<&CaseSkillRow>> = HashMap::new();
        for s in case_skills {
            skills_of.entry(s.case_id.as_str()).or_default().push(s);
        }
        let mut newly_waiting = Vec::new();
        for (c, was_waiting) in to_route {
            let skills = skills_of.get(c.id.as_str()).map(Vec::as_slice).unwrap_or_default();
            let Ok(case) = self.engine_case(&c, skills) else { continue };
            let (d, why) = self.router.route(case.clone(), now);
            self.take(d);
            if why.is_some() && !was_waiting {
                newly_waiting.push(case);
            }
        }
        newly_waiting
    }

    /// Applies what was read in phases, so that no decision is made on state the same round
    /// is about to change: (1) every case's occupancy, withdrawn from the queues; (2) every
    /// agent read or whose load changed set anew, assigning nothing, and the round's waiting
    /// cases routed, oldest wait first (for a `full` load the cases first: see below); (3) the
    /// changed agents take waiting work. Returns the explanations of cases that started
    /// waiting with nobody to take them.
    fn apply(&mut self, mut r: Reads, now: i64, full: bool) -> Vec<(String, Explanation)> {
        let mut affected: Vec<u32> = Vec::new();
        for id in &r.missing {
            if let Some(k) = self.cases.get(id) {
                self.router.withdraw(k);
                if let Some((agent, _)) = self.occupy(k, None) {
                    affected.push(agent);
                }
                self.channels.remove(&k);
                self.cases.forget(id);
            }
        }
        r.cases.sort_by_key(|c| c.waiting_since.unwrap_or(c.created_at));
        let mut to_route = Vec::new();
        for c in std::mem::take(&mut r.cases) {
            let Ok(channel) = channel_of(&c.channel) else { continue };
            let active = queries::routing::ACTIVE.contains(&c.status.as_str());
            let key = self.cases.key(&c.id);
            self.channels.insert(key, channel);
            let was_waiting = self.router.withdraw(key);
            // An offered case holds its agent's seat until accepted, declined or expired.
            let holder = c.assignee_id.as_deref().or(c.offered_to.as_deref());
            let occupies = match (holder, active) {
                (Some(a), true) => Some((self.agents.key(a), channel)),
                _ => None,
            };
            let before = self.occupy(key, occupies);
            if before != occupies {
                affected.extend([before, occupies].into_iter().flatten().map(|o| o.0));
            }
            if active && holder.is_none() {
                to_route.push((c, was_waiting));
            } else if occupies.is_none() {
                self.channels.remove(&key);
                self.cases.forget(&c.id);
            }
        }
        // A full load routes every waiting case before any agent exists, so that agents then
        // pull the best of the whole backlog by the engine's order; a signal round sets the
        // agents first, so that no case is routed on an agent's stale state.
        let (changed, newly_waiting) = if full {
            let newly = self.route_cases(to_route, &r.case_skills, now);
            (self.set_agents(&r, affected), newly)
        } else {
            let changed = self.set_agents(&r, affected);
            (changed, self.route_cases(to_route, &r.case_skills, now))
        };
        // Then agents whose state changed take the best of everything waiting.
        for a in changed {
            let d = self.router.fill(a, now);
            self.take(d);
        }
        // Why the new cases that are still waiting wait, now that every agent is up to date
        // (routing them again re-queues them in place: their order keys do not change).
        let mut waiting = Vec::new();
        for case in newly_waiting {
            let key = case.id;
            if !self.router.withdraw(key) {
                continue;
            }
            let (d, why) = self.router.route(case, now);
            self.take(d);
            if let Some(w) = why {
                waiting.push((self.cases.id(key).to_owned(), self.explain(&w, "router")));
            }
        }
        waiting
    }

    fn explain(&self, e: &engine::Explanation, by: &str) -> Explanation {
        let name = |v: &dyn erased::AsSnake| v.snake();
        Explanation {
            strategy: name(&e.strategy),
            class: name(&e.class),
            score: e.score,
            agents_total: e.agents_total,
            excluded_offline: e.excluded_offline,
            excluded_skills: e.excluded_skills,
            excluded_capacity: e.excluded_capacity,
            excluded_team: e.excluded_team,
            eligible: e.eligible,
            ranking: e
                .ranking
                .iter()
                .map(|(a, why)| RankedAgent { agent_id: self.agents.id(*a).to_owned(), why: why.to_string() })
                .collect(),
            queues_considered: e.queues_considered,
            runner_up_case_id: e.runner_up_case.map(|(c, _)| self.cases.id(c).to_owned()),
            overflow: e.overflow.iter().map(|o| name(o)).collect(),
            decided_by: by.to_owned(),
        }
    }

    /// Ticks the engine's overflow timers; returns the cases escalated now.
    fn tick(&mut self, now: i64) -> Vec<(String, Explanation)> {
        let (decisions, escalated) = self.router.tick(now);
        self.take(decisions);
        let strategy = erased::AsSnake::snake(&self.router.config().strategy);
        escalated
            .into_iter()
            .map(|key| {
                let why = Explanation {
                    strategy: strategy.clone(),
                    class: "normal".into(),
                    overflow: vec!["escalated".into()],
                    ..note("router")
                };
                (self.cases.id(key).to_owned(), why)
            })
            .collect()
    }
}

mod erased {
    /// The snake_case name serde gives a unit enum variant.
    pub trait AsSnake {
        fn snake(&self) -> String;
    }

    impl<T: serde::Serialize> AsSnake for T {
        fn snake(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(s)) => s,
                _ => String::new(),
            }
        }
    }
}

/// What one round produced besides the assignments (`State::out`): explanations of newly
/// waiting cases and cases escalated now.
#[derive(Debug, Default)]
struct Round {
    waiting: Vec<(String, Explanation)>,
    escalated: Vec<(String, Explanation)>,
}

fn read_agents(conn: &mut DbConn, ids: Option<&[String]>, r: &mut Reads) -> AppResult<()> {
    r.agents = match ids {
        None => queries::agents::list(conn)?,
        Some(ids) => {
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.extend(queries::agents::get(conn, id)?);
            }
            rows
        }
    };
    let ids: Vec<String> = r.agents.iter().map(|a| a.id.clone()).collect();
    r.agent_skills = queries::agents::skills(conn, &ids)?;
    r.capacities = queries::routing::capacities(conn, Some(&ids))?;
    Ok(())
}

/// Reads everything and builds the state (on becoming leader, and at each resync).
fn full_load(store: &Store, config: engine::Config, now: NaiveDateTime) -> AppResult<(State, Round)> {
    store.write(|conn| queries::routing::clear_signals(conn).map_err(AppError::from))?;
    let (reads, unexplained) = store.read(|conn| {
        let mut r = Reads::default();
        read_agents(conn, None, &mut r)?;
        r.cases = queries::routing::active_cases(conn)?;
        r.case_skills = queries::routing::case_skills(conn, None)?;
        let unexplained: std::collections::HashSet<String> =
            queries::routing::waiting_without_decision(conn)?.into_iter().collect();
        Ok::<_, AppError>((r, unexplained))
    })?;
    let mut st = State::new(config);
    let at = millis(now);
    // Everything is new to a fresh state: record why a case waits only when nothing was
    // recorded for its current wait (after a restart or failover), not at every resync.
    let waiting = st.apply(reads, at, true).into_iter().filter(|(id, _)| unexplained.contains(id)).collect();
    let escalated = st.tick(at);
    Ok((st, Round { waiting, escalated }))
}

/// Takes pending signals, reads those entities again and lets the engine decide.
fn signal_round(store: &Store, st: &mut State, now: NaiveDateTime) -> AppResult<Round> {
    let signals = store.read(|conn| queries::routing::peek_signals(conn, SIGNAL_BATCH).map_err(AppError::from))?;
    if !signals.is_empty() {
        store.write(|conn| queries::routing::remove_signals(conn, &signals).map_err(AppError::from))?;
    }
    let at = millis(now);
    let dirty = std::mem::take(&mut st.dirty);
    if signals.is_empty() && dirty.is_empty() {
        return Ok(Round { waiting: Vec::new(), escalated: st.tick(at) });
    }
    let mut case_ids = Vec::new();
    let mut agent_ids = Vec::new();
    let mut customer_ids = Vec::new();
    let mut recount = Vec::new();
    for (kind, id, _) in signals {
        match kind.as_str() {
            "case" => case_ids.push(id),
            "agent" => agent_ids.push(id),
            "customer" => customer_ids.push(id),
            _ => {}
        }
    }
    for d in dirty {
        match d {
            Dirty::Case(id) => case_ids.push(id),
            Dirty::Agent(id) => agent_ids.push(id),
            Dirty::Load(id) => {
                if let Some(k) = st.agents.get(&id) {
                    case_ids
                        .extend(st.occupying.iter().filter(|(_, o)| o.0 == k).map(|(c, _)| st.cases.id(*c).to_owned()));
                }
                recount.push(id.clone());
                agent_ids.push(id);
            }
        }
    }
    agent_ids.sort();
    agent_ids.dedup();
    let reads = store.read(|conn| {
        // A transaction (read only in effect) so that the plan setting stays within it.
        Store::savepoint(conn, |conn| {
            queries::routing::plan_for_values(conn)?;
            let mut r = Reads::default();
            read_agents(conn, Some(&agent_ids), &mut r)?;
            for id in &recount {
                case_ids.extend(queries::routing::active_case_ids_of_agent(conn, id)?);
            }
            if !customer_ids.is_empty() {
                case_ids.extend(queries::routing::active_case_ids_of_customers(conn, &customer_ids)?);
            }
            case_ids.sort();
            case_ids.dedup();
            for chunk in case_ids.chunks(500) {
                r.cases.extend(queries::routing::cases(conn, chunk)?);
                r.case_skills.extend(queries::routing::case_skills(conn, Some(chunk))?);
            }
            let found: std::collections::HashSet<&str> = r.cases.iter().map(|c| c.id.as_str()).collect();
            r.missing = case_ids.iter().filter(|id| !found.contains(id.as_str())).cloned().collect();
            Ok::<_, AppError>(r)
        })
    })?;
    let waiting = st.apply(reads, at, false);
    Ok(Round { waiting, escalated: st.tick(at) })
}

/// Assignments per transaction: progress is committed (and visible) in steps, and row locks
/// are held briefly, however large a round is (a whole backlog when agents come online).
const COMMIT_CHUNK: usize = 250;

/// Writes assignments of one agent if they still hold: the agent online and active (its row
/// locked), room on the channel (its load counted again under that lock), each case still
/// active and unassigned (compare-and-set). Pushes the rows to write and what to read again.
fn commit_agent(
    conn: &mut DbConn,
    group: &[Pending],
    now: NaiveDateTime,
    offer_until: Option<NaiveDateTime>,
    rows: &mut (Vec<CaseEventRow>, Vec<RoutingDecisionRow>),
    refused: &mut Vec<(usize, Dirty)>,
    base: usize,
) -> AppResult<()> {
    let Some(first) = group.first() else { return Ok(()) };
    let agent_id = first.agent_id.as_str();
    let agent = queries::routing::lock_agent(conn, agent_id)?;
    let Some(agent) = agent.filter(|a| a.active && a.presence == Presence::Online.as_str()) else {
        refused.extend((0..group.len()).map(|i| (base + i, Dirty::Agent(agent_id.to_owned()))));
        return Ok(());
    };
    let caps = queries::routing::capacities(conn, Some(std::slice::from_ref(&agent.id)))?;
    let mut loads: HashMap<Channel, (i64, i64)> = HashMap::new();
    let mut assigned = false;
    for (i, p) in group.iter().enumerate() {
        let (load, capacity) = match loads.get(&p.channel) {
            Some(&lc) => lc,
            None => {
                let cap = caps
                    .iter()
                    .find(|c| c.channel == p.channel.as_str())
                    .map_or(i64::from(agent.max_load), |c| i64::from(c.capacity));
                (queries::routing::load(conn, &agent.id, p.channel.as_str())?, cap)
            }
        };
        if load >= capacity {
            loads.insert(p.channel, (load, capacity));
            refused.push((base + i, Dirty::Load(agent.id.clone())));
            continue;
        }
        let done = match offer_until {
            Some(until) => queries::routing::offer_if_waiting(conn, &p.case_id, &agent.id, now, until)?,
            None => queries::routing::assign_if_waiting(conn, &p.case_id, &agent.id, now)?,
        };
        if !done {
            loads.insert(p.channel, (load, capacity));
            refused.push((base + i, Dirty::Case(p.case_id.clone())));
            continue;
        }
        loads.insert(p.channel, (load + 1, capacity));
        assigned = true;
        let system = (ActorKind::System, None);
        match offer_until {
            Some(until) => {
                let data =
                    serde_json::json!({"to": agent.id, "expires_at": crate::utc(until), "strategy": p.why.strategy});
                rows.0.push(crate::cases::event_row(&p.case_id, "offered", &system, data, now));
                rows.1.push(decision_row(&p.case_id, Some(&agent.id), "offered", &p.why, now));
            }
            None => {
                let data =
                    serde_json::json!({"from": null, "to": agent.id, "by": "routing", "strategy": p.why.strategy});
                rows.0.push(crate::cases::event_row(&p.case_id, "assignee_changed", &system, data, now));
                rows.1.push(decision_row(&p.case_id, Some(&agent.id), "assigned", &p.why, now));
            }
        }
    }
    if assigned {
        queries::routing::touch_agent(conn, &agent.id, now)?;
    }
    Ok(())
}

/// Writes a round: assignments in transactions of up to `COMMIT_CHUNK`, grouped by agent
/// (one lock, one capacity read and one load count per agent; a decision that no longer
/// holds is skipped and its case and agent read again next round); then the waiting and
/// escalation records. A transaction that fails has everything in it read again.
fn write_round(app: &App, st: &mut State, round: Round, now: NaiveDateTime) -> AppResult<()> {
    let mut assign = std::mem::take(&mut st.out);
    // One lock order (by agent) keeps two routers, should they ever run at once, from
    // deadlocking on each other's agents.
    assign.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    let m = app.metrics();
    let timeout = app.settings().routing.offer_timeout_secs;
    let offer_until = (timeout > 0).then(|| now + chrono::Duration::seconds(i64::try_from(timeout).unwrap_or(3_600)));
    let outcome = if offer_until.is_some() { "offered" } else { "assigned" };
    let mut start = 0;
    while start < assign.len() {
        let mut end = (start + COMMIT_CHUNK).min(assign.len());
        // Keep an agent's decisions in one transaction.
        while end < assign.len() && assign[end].agent_id == assign[end - 1].agent_id {
            end += 1;
        }
        let chunk = &assign[start..end];
        let written = app.store().write(|conn| {
            let mut rows = (Vec::new(), Vec::new());
            let mut refused = Vec::new();
            let mut i = 0;
            while i < chunk.len() {
                let mut j = i + 1;
                while j < chunk.len() && chunk[j].agent_id == chunk[i].agent_id {
                    j += 1;
                }
                commit_agent(conn, &chunk[i..j], now, offer_until, &mut rows, &mut refused, i)?;
                i = j;
            }
            if !rows.0.is_empty() {
                queries::events::insert_case_events(conn, &rows.0)?;
            }
            let done: Vec<&str> = rows.1.iter().map(|d| d.case_id.as_str()).collect();
            queries::routing::drop_case_signals(conn, &done)?;
            queries::routing::insert_decisions(conn, &rows.1)?;
            Ok::<_, AppError>(refused)
        });
        match written {
            Ok(refused) => {
                // Assignments are case changes: live streams here and other nodes hear of them.
                app.announce_changes();
                m.routing_decisions.with_label_values(&[outcome]).inc_by((chunk.len() - refused.len()) as u64);
                m.routing_decisions.with_label_values(&["lost_race"]).inc_by(refused.len() as u64);
                for (i, d) in refused {
                    tracing::debug!(case.id = %chunk[i].case_id, "routing decision no longer held; reading again");
                    st.dirty.push(Dirty::Case(chunk[i].case_id.clone()));
                    st.dirty.push(d);
                }
            }
            Err(e) => {
                for p in chunk.iter().chain(&assign[end..]) {
                    st.dirty.push(Dirty::Case(p.case_id.clone()));
                    st.dirty.push(Dirty::Load(p.agent_id.clone()));
                }
                return Err(e);
            }
        }
        start = end;
    }
    if round.waiting.is_empty() && round.escalated.is_empty() {
        return Ok(());
    }
    let escalated = app.store().write(|conn| {
        let mut rows: Vec<RoutingDecisionRow> =
            round.waiting.iter().map(|(id, why)| decision_row(id, None, "waiting", why, now)).collect();
        let mut escalated = Vec::new();
        for (id, why) in &round.escalated {
            // After a restart or resync the engine sees long waits afresh: escalate once.
            if queries::routing::escalated_since(conn, id)? {
                continue;
            }
            escalated.push(id.as_str());
            rows.push(decision_row(id, None, "escalated", why, now));
            let data = serde_json::json!({"waited_secs": app.settings().routing.escalate_after_secs});
            crate::cases::event(conn, id, "routing_escalated", &(ActorKind::System, None), data, now)?;
        }
        for chunk in rows.chunks(1_000) {
            queries::routing::insert_decisions(conn, chunk)?;
        }
        Ok::<_, AppError>(escalated)
    })?;
    m.routing_decisions.with_label_values(&["waiting"]).inc_by(round.waiting.len() as u64);
    m.routing_decisions.with_label_values(&["escalated"]).inc_by(escalated.len() as u64);
    for id in escalated {
        tracing::warn!(case.id = %id, "case escalated: no agent took it in time");
    }
    Ok(())
}

/// This node's part in routing: whether it leads, and the state while it does.
#[derive(Default)]
struct Leader {
    /// PostgreSQL: the connection holding (or trying for) the advisory lock.
    lock: Option<DbConn>,
    leading: bool,
    state: Option<State>,
    loaded_at: Option<std::time::Instant>,
    tried_at: Option<std::time::Instant>,
}

impl Leader {
    /// Whether this node routes now: SQLite always; PostgreSQL while its lock connection holds
    /// the advisory lock (tried again every `leader_retry` on a standby node).
    fn check(&mut self, app: &App, retry: Duration) -> AppResult<bool> {
        if app.store().backend() == caseflow_store::Backend::Sqlite || !app.settings().routing.single_leader {
            self.leading = true;
            return Ok(true);
        }
        if self.leading {
            let alive = self.lock.as_mut().is_some_and(|c| queries::leader::ping(c).is_ok());
            if alive {
                return Ok(true);
            }
            tracing::warn!("routing: lost the leader lock connection; standing by");
            *self = Leader::default();
        }
        if self.tried_at.is_some_and(|t| t.elapsed() < retry) {
            return Ok(false);
        }
        self.tried_at = Some(std::time::Instant::now());
        if self.lock.is_none() {
            let url = caseflow_store::DbUrl::parse(app.settings().database.url.expose())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            self.lock = Some(caseflow_store::db::connect_once(&url)?);
        }
        let Some(conn) = self.lock.as_mut() else { return Ok(false) };
        match queries::leader::try_lock(conn, LEADER_LOCK_KEY) {
            Ok(true) => {
                tracing::info!("routing: this node is the router now");
                self.leading = true;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                self.lock = None;
                Err(e.into())
            }
        }
    }
}

/// One pass: lead or stand by; load everything when starting or resyncing; else take the
/// signals; write the decisions.
fn pass(app: &App, leader: &mut Leader) -> AppResult<()> {
    let s = &app.settings().routing;
    if !leader.check(app, Duration::from_secs(s.leader_retry_secs))? {
        app.metrics().routing_leader.set(0);
        return Ok(());
    }
    app.metrics().routing_leader.set(1);
    let started = std::time::Instant::now();
    let now = app.now_naive();
    expire_offers(app, now)?;
    let resync = leader.loaded_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(s.resync_secs));
    let round = match leader.state.take() {
        Some(mut st) if !resync => {
            let round = signal_round(app.store(), &mut st, now);
            leader.state = Some(st);
            round?
        }
        _ => {
            let (st, round) = full_load(app.store(), engine_config(s), now)?;
            tracing::info!(waiting = st.router.waiting(), "routing: state loaded");
            leader.state = Some(st);
            leader.loaded_at = Some(std::time::Instant::now());
            round
        }
    };
    let decided = started.elapsed();
    if let Some(st) = leader.state.as_mut() {
        let n = st.out.len();
        write_round(app, st, round, now)?;
        tracing::debug!(
            assignments = n,
            decide_ms = decided.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "routing pass"
        );
    }
    Ok(())
}

impl App {
    /// The routing worker: routes while this node leads, stands by otherwise. Runs until
    /// `shutdown` turns true.
    pub async fn run_router(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let s = self.settings().routing.clone();
        if !s.enabled {
            // Triggers still record changes; nobody reads them, so they are cleared now and
            // then instead of growing without bound.
            loop {
                let app = self.clone();
                let cleared = crate::blocking(move || {
                    // Offers made before routing was turned off still run out.
                    expire_offers(&app, app.now_naive())?;
                    app.store().write(|c| queries::routing::clear_signals(c).map_err(AppError::from))
                })
                .await;
                if let Err(e) = cleared {
                    tracing::warn!(error = %e, "clearing routing signals failed");
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(s.resync_secs.min(5))) => {}
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        }
        let poll = Duration::from_millis(s.poll_ms);
        let mut leader = Some(Leader::default());
        let mut failures = 0u32;
        loop {
            let Some(mut l) = leader.take() else { break };
            let app = self.clone();
            let span = tracing::Span::current();
            let joined = tokio::task::spawn_blocking(move || {
                let r = span.in_scope(|| pass(&app, &mut l));
                (l, r)
            })
            .await;
            let pause = match joined {
                Ok((l, r)) => {
                    leader = Some(l);
                    match r {
                        Ok(()) => {
                            failures = 0;
                            poll
                        }
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            tracing::warn!(error = %e, "routing pass failed; state is read again");
                            if let Some(l) = leader.as_mut() {
                                l.state = None;
                            }
                            poll * failures.min(25)
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "routing pass panicked; starting over");
                    leader = Some(Leader::default());
                    poll * 5
                }
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.routing_woken() => {}
                _ = tokio::time::sleep(pause) => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        self.metrics().routing_leader.set(0);
    }
}

#[cfg(test)]
mod tests {
    //! Two routers with the same stale view (a split brain) writing against one database:
    //! the commit-time checks alone keep every case assigned once and every agent within
    //! capacity. Run on SQLite and on PostgreSQL (`CASEFLOW_TEST_POSTGRES_URL`).
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::cases::NewCase;
    use crate::customers::CustomerRef;
    use crate::directory::{NewAgent, PresenceRequest, SetSkills, SkillLevel};
    use crate::Principal;

    fn app(url: String) -> App {
        let mut env = HashMap::new();
        env.insert("CASEFLOW__DATABASE__URL".to_owned(), url);
        let settings = crate::Settings::load_with_env(None, Some(env)).unwrap();
        App::open(settings, std::sync::Arc::new(crate::SystemClock)).unwrap()
    }

    fn urls() -> Vec<String> {
        let dir = std::env::temp_dir().join(format!("caseflow_routing_{}", uuid::Uuid::now_v7().simple()));
        let admin = std::env::var("CASEFLOW_TEST_POSTGRES_URL")
            .expect("CASEFLOW_TEST_POSTGRES_URL is not set: run `make test` or `make pg-start`");
        let pg =
            caseflow_store::create_postgres_database(&admin, &format!("cf_routing_{}", uuid::Uuid::now_v7().simple()))
                .unwrap();
        vec![format!("sqlite://{}", dir.join("r.db").display()), pg]
    }

    async fn case(app: &App, skill: &str, priority: Priority) -> String {
        let input = NewCase {
            subject: "Help".into(),
            body: "Please.".into(),
            customer: CustomerRef { email: Some("c@example.org".into()), ..CustomerRef::default() },
            priority: Some(priority),
            channel: None,
            team_id: None,
            assignee_id: None,
            external_id: None,
            skills: vec![CaseSkill { skill_id: skill.into(), min_level: 1, required: true }],
        };
        app.create_case(&Principal::System, input).await.unwrap().case.case.id.into_inner()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_routers_with_the_same_stale_view_never_double_assign_or_overfill() {
        for url in urls() {
            let app = app(url);
            let sys = Principal::System;
            let skill = app
                .create_skill(&sys, crate::directory::NamedInput { name: Some("billing".into()), description: None })
                .await
                .unwrap()
                .id
                .into_inner();
            let mut agents = Vec::new();
            for i in 0..2 {
                let a = app
                    .create_agent(
                        &sys,
                        NewAgent {
                            email: format!("a{i}@example.org"),
                            name: format!("A{i}"),
                            role: Role::Agent,
                            password: None,
                            team_id: None,
                            max_load: Some(2),
                        },
                    )
                    .await
                    .unwrap()
                    .id
                    .into_inner();
                app.set_agent_skills(
                    &sys,
                    a.clone(),
                    SetSkills { skills: vec![SkillLevel { skill_id: skill.clone(), level: 3 }] },
                )
                .await
                .unwrap();
                app.set_presence(&sys, a.clone(), PresenceRequest { presence: Presence::Online }).await.unwrap();
                agents.push(a);
            }
            // Four normal cases: four seats. Router 1 and router 2 load the same view.
            let mut normal = Vec::new();
            for _ in 0..4 {
                normal.push(case(&app, &skill, Priority::Normal).await);
            }
            let now = app.now_naive();
            let cfg = engine_config(&app.settings().routing);
            let (mut one, r1) = full_load(app.store(), cfg.clone(), now).unwrap();
            let (mut two, r2) = full_load(app.store(), cfg.clone(), now).unwrap();
            assert_eq!((one.out.len(), two.out.len()), (4, 4), "both decided all four");
            // Four urgent cases arrive; a third router, also not seeing the first two's
            // writes, prefers them for the same four seats.
            let mut urgent = Vec::new();
            for _ in 0..4 {
                urgent.push(case(&app, &skill, Priority::Urgent).await);
            }
            let (mut three, r3) = full_load(app.store(), cfg, now).unwrap();
            let picked: Vec<&str> = three.out.iter().map(|p| p.case_id.as_str()).collect();
            assert!(urgent.iter().all(|u| picked.contains(&u.as_str())), "router 3 picks the urgent cases");

            let capacity = |n: i32| SetCapacities {
                capacities: vec![crate::views::ChannelCapacity { channel: Channel::Api, capacity: n }],
            };
            // Room to spare while routers 1 and 2 write: only the compare-and-set on the case
            // stands between router 2 and a second assignment of the same cases.
            for a in &agents {
                app.set_agent_capacities(&sys, a.clone(), capacity(10)).await.unwrap();
            }
            write_round(&app, &mut one, r1, now).unwrap();
            write_round(&app, &mut two, r2, now).unwrap();
            // Back to two seats each, all taken: only the load recount stops router 3.
            for a in &agents {
                app.set_agent_capacities(&sys, a.clone(), capacity(2)).await.unwrap();
            }
            write_round(&app, &mut three, r3, now).unwrap();

            // Router 1 won every seat; routers 2 (same cases) and 3 (same seats) were refused
            // and will read again.
            for id in &normal {
                let r = app.case_routing(&sys, id.clone()).await.unwrap();
                assert_eq!(r.state, "assigned");
                let assigned = r.decisions.iter().filter(|d| d.outcome == "assigned").count();
                assert_eq!(assigned, 1, "{id} assigned {assigned} times");
            }
            for id in &urgent {
                assert_eq!(app.case_routing(&sys, id.clone()).await.unwrap().state, "waiting");
            }
            for a in &agents {
                let load = app.store().read(|c| queries::routing::load(c, a, "api").map_err(AppError::from)).unwrap();
                assert_eq!(load, 2, "agent {a} at capacity, not over");
            }
            assert!(normal.iter().all(|n| two.dirty.contains(&Dirty::Case(n.clone()))), "{:?}", two.dirty);
            assert!(!two.dirty.iter().any(|d| matches!(d, Dirty::Load(_))), "refused by the case, not capacity");
            assert!(three.dirty.iter().any(|d| matches!(d, Dirty::Load(_))), "{:?}", three.dirty);
        }
    }
}
