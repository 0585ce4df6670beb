//! Staff directory and access: login, bearer-token authentication, agents, teams, skills and
//! integrator API tokens.

use crate::auth::{self, Principal, Scope};
use crate::cases::double_option;
use crate::error::{AppError, AppResult};
use crate::views::*;
use crate::{check_len, new_id, required, utc, App};
use caseflow_core::*;
use caseflow_store::models::*;
use caseflow_store::queries;
use caseflow_store::DbConn;
use serde::Deserialize;

/// Login input.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Input for creating an agent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub role: Role,
    /// At least 10 characters. Without one the agent cannot log in (yet).
    #[serde(default)]
    #[schema(min_length = 10, max_length = 1024)]
    pub password: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub max_load: Option<i32>,
}

/// Changes to an agent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable)]
    pub team_id: Option<Option<String>>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub max_load: Option<i32>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    #[schema(min_length = 10, max_length = 1024)]
    pub password: Option<String>,
}

/// Presence change.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceRequest {
    pub presence: Presence,
}

/// One skill level to set.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillLevel {
    pub skill_id: String,
    /// 1 (basic) to 5 (expert).
    #[schema(minimum = 1, maximum = 5)]
    pub level: i32,
}

/// Replaces an agent's skills.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSkills {
    pub skills: Vec<SkillLevel>,
}

/// Input for creating or changing a team or a skill.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedInput {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Input for creating an API token.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
}

/// A real argon2 hash of a random password, verified when the email is unknown so that a
/// login attempt takes as long for unknown emails as for wrong passwords.
fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(&auth::generate_api_token()).unwrap_or_default()).clone()
}

fn password_ok(p: &str) -> AppResult<()> {
    if p.chars().count() < 10 {
        return Err(AppError::invalid("password must be at least 10 characters"));
    }
    check_len("password", p, 1024)
}

/// Writes an agent audit-log row.
pub(crate) fn agent_event(
    conn: &mut DbConn,
    agent_id: &str,
    kind: &str,
    actor: &(ActorKind, Option<String>),
    data: serde_json::Value,
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    queries::agents::insert_event(
        conn,
        &AgentEventRow {
            id: new_id(),
            agent_id: agent_id.to_owned(),
            kind: kind.to_owned(),
            actor_kind: actor.0.as_str().to_owned(),
            actor_id: actor.1.clone(),
            data: data.to_string(),
            created_at: now,
        },
    )?;
    Ok(())
}

/// Changes an agent's presence (audited, with `reason` when the system does it). Leaving
/// `online` withdraws the agent's open offers and, with `reroute`, gives back their unstarted
/// cases.
pub(crate) fn change_presence(
    conn: &mut DbConn,
    mut row: AgentRow,
    to: Presence,
    actor: &(ActorKind, Option<String>),
    reason: Option<&str>,
    reroute: bool,
    now: chrono::NaiveDateTime,
) -> AppResult<AgentRow> {
    if row.presence == to.as_str() {
        return Ok(row);
    }
    let from = std::mem::replace(&mut row.presence, to.as_str().into());
    row.presence_changed_at = now;
    row.updated_at = now;
    queries::agents::update(conn, &row)?;
    let (mut rerouted, mut withdrawn) = (0, 0);
    if from == Presence::Online.as_str() {
        withdrawn = crate::routing::withdraw_offers(conn, &row.id, actor, now)?;
        if reroute {
            rerouted = crate::routing::take_back_unstarted(conn, &row.id, false, actor, now)?;
        }
    }
    let data = serde_json::json!({
        "from": from, "to": to, "cases_rerouted": rerouted, "offers_withdrawn": withdrawn, "reason": reason,
    });
    agent_event(conn, &row.id, "presence_changed", actor, data, now)?;
    tracing::info!(agent.id = %row.id, presence = %to, rerouted, "presence changed");
    Ok(row)
}

pub(crate) fn agent_view(conn: &mut DbConn, row: AgentRow) -> AppResult<AgentView> {
    let skills = queries::agents::skills(conn, std::slice::from_ref(&row.id))?
        .into_iter()
        .map(|s| AgentSkillView { skill_id: SkillId::new(s.skill_id), level: s.level })
        .collect();
    let capacities = queries::routing::capacities(conn, Some(std::slice::from_ref(&row.id)))?
        .into_iter()
        .map(|c| Ok(ChannelCapacity { channel: stored("agent_capacities.channel", &c.channel)?, capacity: c.capacity }))
        .collect::<AppResult<Vec<_>>>()?;
    AgentView::from_row(row, skills, capacities)
}

fn check_team(conn: &mut DbConn, team: Option<&str>) -> AppResult<()> {
    if let Some(t) = team {
        if queries::teams::get(conn, t)?.is_none() {
            return Err(AppError::invalid("team_id: no such team"));
        }
    }
    Ok(())
}

fn check_load(max_load: i32) -> AppResult<()> {
    if !(0..=1000).contains(&max_load) {
        return Err(AppError::invalid("max_load must be between 0 and 1000"));
    }
    Ok(())
}

impl App {
    /// Checks email and password and issues a session token.
    pub async fn login(&self, req: LoginRequest) -> AppResult<LoginView> {
        check_len("password", &req.password, 1024)?;
        let email = EmailAddress::parse(&req.email).map_err(|_| AppError::InvalidCredentials);
        let now = self.now();
        let app = self.clone();
        let row = match &email {
            Ok(e) => {
                let e = e.as_str().to_owned();
                self.read(move |conn| Ok(queries::agents::get_by_email(conn, &e)?)).await?
            }
            Err(_) => None,
        };
        let password = req.password;
        let (hash, usable) = match &row {
            Some(r) if r.active => (r.password_hash.clone().unwrap_or_else(dummy_hash), r.password_hash.is_some()),
            _ => (dummy_hash(), false),
        };
        let matched = crate::blocking(move || Ok(auth::verify_password(&password, &hash))).await?;
        let row = match row {
            Some(r) if matched && usable => r,
            _ => {
                tracing::info!("login refused");
                return Err(AppError::InvalidCredentials);
            }
        };
        let role: Role = stored("agents.role", &row.role)?;
        let agent_id = AgentId::new(row.id.clone());
        let token = app.jwt().issue(&agent_id, role, now.timestamp())?;
        let agent = self.read(move |conn| agent_view(conn, row)).await?;
        tracing::info!(agent.id = %agent_id, "login");
        Ok(LoginView { access_token: token, token_type: "Bearer".into(), expires_in: self.jwt().ttl_secs, agent })
    }

    /// Starts a browser session: checks the credentials like [`App::login`] and issues a
    /// session token for `auth.session_ttl_secs`, which the HTTP layer puts in an HttpOnly
    /// cookie, with the CSRF token the page must send back on every change.
    pub async fn start_session(&self, req: LoginRequest) -> AppResult<(String, SessionView)> {
        let login = self.login(req).await?;
        let ttl = i64::try_from(self.settings().auth.session_ttl_secs).unwrap_or(43_200);
        let token = self.jwt().issue_session(&login.agent.id, login.agent.role, self.now().timestamp(), ttl)?;
        let csrf_token = self.jwt().csrf_token(&token);
        Ok((token, SessionView { agent: login.agent, csrf_token, expires_in: ttl }))
    }

    /// The CSRF token that goes with a browser session token.
    pub fn csrf_token(&self, session: &str) -> String {
        self.jwt().csrf_token(session)
    }

    /// Whether `presented` is the CSRF token of the browser session `session`.
    pub fn csrf_ok(&self, session: &str, presented: &str) -> bool {
        self.jwt().csrf_ok(session, presented)
    }

    /// Turns a browser session token (from the cookie) into a principal. Unlike a bearer JWT,
    /// a session lives for a working day, so the agent must still be active: checked in the
    /// database, at most every [`auth::TokenCache::TTL_SECS`] per session.
    pub async fn authenticate_session(&self, session: &str) -> AppResult<Principal> {
        if session.starts_with(auth::API_TOKEN_PREFIX) {
            return Err(AppError::Unauthenticated("the session cookie holds no session"));
        }
        let claims = self.jwt().verify(session, self.now().timestamp())?;
        if claims.typ.as_deref() != Some(auth::SESSION_TYP) {
            return Err(AppError::Unauthenticated("the session cookie holds no session"));
        }
        let key = format!("session:{}", auth::hash_api_token(session));
        let now = self.now();
        if let Some(p) = self.token_cache().get(&key, now) {
            return Ok(p);
        }
        let (id, hash) = (claims.sub.clone(), auth::hash_api_token(session));
        let (row, revoked) = self
            .read(move |conn| Ok((queries::agents::get(conn, &id)?, queries::sessions::is_revoked(conn, &hash)?)))
            .await?;
        if revoked {
            return Err(AppError::Unauthenticated("the session was ended by logging out"));
        }
        let row = row.filter(|r| r.active).ok_or(AppError::Unauthenticated("the session's agent is deactivated"))?;
        // The role as it is now, not as it was at login.
        let role: Role = stored("agents.role", &row.role)?;
        let principal = Principal::Agent { id: AgentId::new(row.id), role };
        self.token_cache().put(key, principal.clone(), now);
        Ok(principal)
    }

    /// Ends a browser session for good (logout): refused from now on, on this node at once and
    /// on the others within [`auth::TokenCache::TTL_SECS`]. Anything that is not a valid
    /// session is ignored: logging out always succeeds.
    pub async fn end_session(&self, session: &str) -> AppResult<()> {
        let Ok(claims) = self.jwt().verify(session, self.now().timestamp()) else { return Ok(()) };
        if claims.typ.as_deref() != Some(auth::SESSION_TYP) {
            return Ok(());
        }
        let hash = auth::hash_api_token(session);
        let expires = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.naive_utc()).unwrap_or_default();
        let now = self.now_naive();
        let h = hash.clone();
        self.write_silent(move |conn| Ok(queries::sessions::revoke(conn, &h, expires, now)?)).await?;
        // After the write: a request checking the session meanwhile cannot cache it again.
        self.token_cache().forget(&format!("session:{hash}"));
        tracing::info!(agent.id = %claims.sub, "browser session ended");
        Ok(())
    }

    /// Turns a bearer token (agent JWT or integrator API token) into a principal.
    pub async fn authenticate(&self, bearer: &str) -> AppResult<Principal> {
        if bearer.starts_with(auth::API_TOKEN_PREFIX) {
            let hash = auth::hash_api_token(bearer);
            let now = self.now();
            if let Some(p) = self.token_cache().get(&hash, now) {
                return Ok(p);
            }
            let h = hash.clone();
            let row = self
                .read(move |conn| Ok(queries::tokens::find_by_hash(conn, &h)?))
                .await?
                .filter(|t| t.revoked_at.is_none())
                .ok_or(AppError::Unauthenticated("the API token is not valid or was revoked"))?;
            let principal =
                Principal::Token { id: ApiTokenId::new(row.id.clone()), scopes: parse_scopes(&row.scopes)? };
            self.token_cache().put(hash, principal.clone(), now);
            // Record use at most once a minute, off the request path.
            let now = now.naive_utc();
            if row.last_used_at.is_none_or(|t| (now - t).num_seconds() >= 60) {
                let app = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = app.write(move |conn| Ok(queries::tokens::touch(conn, &row.id, now)?)).await {
                        tracing::warn!(error = %e, "could not record API token use");
                    }
                });
            }
            return Ok(principal);
        }
        let claims = self.jwt().verify(bearer, self.now().timestamp())?;
        if claims.typ.is_some() {
            // A browser session lives in its HttpOnly cookie, with the checks made there.
            return Err(AppError::Unauthenticated("a browser session token is not a bearer token"));
        }
        Ok(Principal::Agent { id: AgentId::new(claims.sub), role: claims.role })
    }

    /// The calling agent.
    pub async fn me(&self, who: &Principal) -> AppResult<AgentView> {
        let Some(id) = who.agent_id().cloned() else {
            return Err(AppError::Forbidden("only agent sessions have a profile; this is an API token".into()));
        };
        self.get_agent(who, id.into_inner()).await
    }

    /// Creates an agent (admin).
    pub async fn create_agent(&self, who: &Principal, input: NewAgent) -> AppResult<AgentView> {
        who.require_admin()?;
        let email = EmailAddress::parse(&input.email).map_err(|e| AppError::invalid(format!("email: {e}")))?;
        let name = required("name", &input.name)?;
        check_len("name", &name, 200)?;
        let max_load = input.max_load.unwrap_or(5);
        check_load(max_load)?;
        let hash = match input.password {
            Some(p) => {
                password_ok(&p)?;
                Some(crate::blocking(move || auth::hash_password(&p)).await?)
            }
            None => None,
        };
        let now = self.now_naive();
        self.write(move |conn| {
            check_team(conn, input.team_id.as_deref())?;
            if queries::agents::get_by_email(conn, email.as_str())?.is_some() {
                return Err(AppError::AlreadyExists("an agent with this email already exists".into()));
            }
            let row = AgentRow {
                id: new_id(),
                email: email.as_str().into(),
                name,
                role: input.role.as_str().into(),
                password_hash: hash,
                team_id: input.team_id,
                presence: Presence::Offline.as_str().into(),
                presence_changed_at: now,
                max_load,
                active: true,
                created_at: now,
                updated_at: now,
                last_assigned_at: None,
            };
            queries::agents::insert(conn, &row)?;
            tracing::info!(agent.id = %row.id, role = %input.role, "agent created");
            agent_view(conn, row)
        })
        .await
    }

    /// All agents with their skills.
    pub async fn list_agents(&self, who: &Principal) -> AppResult<Vec<AgentView>> {
        who.require_read()?;
        self.read(|conn| {
            let rows = queries::agents::list(conn)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let skills = queries::agents::skills(conn, &ids)?;
            let caps = queries::routing::capacities(conn, Some(&ids))?;
            rows.into_iter()
                .map(|r| {
                    let mine = skills
                        .iter()
                        .filter(|s| s.agent_id == r.id)
                        .map(|s| AgentSkillView { skill_id: SkillId::new(s.skill_id.clone()), level: s.level })
                        .collect();
                    let capacities = caps
                        .iter()
                        .filter(|c| c.agent_id == r.id)
                        .map(|c| {
                            Ok(ChannelCapacity {
                                channel: stored("agent_capacities.channel", &c.channel)?,
                                capacity: c.capacity,
                            })
                        })
                        .collect::<AppResult<Vec<_>>>()?;
                    AgentView::from_row(r, mine, capacities)
                })
                .collect()
        })
        .await
    }

    /// One agent.
    pub async fn get_agent(&self, who: &Principal, id: String) -> AppResult<AgentView> {
        who.require_read()?;
        self.read(move |conn| {
            let row = queries::agents::get(conn, &id)?.ok_or(AppError::NotFound("agent"))?;
            agent_view(conn, row)
        })
        .await
    }

    /// Changes an agent (admin; agents may change their own name and password).
    pub async fn update_agent(&self, who: &Principal, id: String, patch: AgentPatch) -> AppResult<AgentView> {
        let is_self = who.agent_id().map(AgentId::as_str) == Some(id.as_str());
        let self_service =
            patch.role.is_none() && patch.team_id.is_none() && patch.max_load.is_none() && patch.active.is_none();
        if !(is_self && self_service) {
            who.require_admin()?;
        }
        if is_self && patch.active == Some(false) {
            return Err(AppError::invalid("you cannot deactivate yourself"));
        }
        let name = match &patch.name {
            Some(n) => {
                let n = required("name", n)?;
                check_len("name", &n, 200)?;
                Some(n)
            }
            None => None,
        };
        if let Some(m) = patch.max_load {
            check_load(m)?;
        }
        let hash = match patch.password.clone() {
            Some(p) => {
                password_ok(&p)?;
                Some(crate::blocking(move || auth::hash_password(&p)).await?)
            }
            None => None,
        };
        let actor = who.actor();
        let now = self.now_naive();
        let reroute = self.settings().routing.enabled && self.settings().routing.reroute_on_away;
        self.write(move |conn| {
            let mut row = queries::agents::get(conn, &id)?.ok_or(AppError::NotFound("agent"))?;
            if let Some(n) = name {
                row.name = n;
            }
            if let Some(r) = patch.role {
                row.role = r.as_str().into();
            }
            if let Some(t) = patch.team_id {
                check_team(conn, t.as_deref())?;
                row.team_id = t;
            }
            if let Some(m) = patch.max_load {
                row.max_load = m;
            }
            let mut rerouted = 0;
            if let Some(a) = patch.active {
                if !a && row.active {
                    // A deactivated agent works nothing: their offers are withdrawn and their
                    // unstarted cases go back to the queue like when they go away.
                    crate::routing::withdraw_offers(conn, &row.id, &actor, now)?;
                    if reroute {
                        rerouted = crate::routing::take_back_unstarted(conn, &row.id, true, &actor, now)?;
                    }
                    row.presence = Presence::Offline.as_str().into();
                    row.presence_changed_at = now;
                }
                row.active = a;
            }
            if hash.is_some() {
                row.password_hash = hash;
            }
            row.updated_at = now;
            queries::agents::update(conn, &row)?;
            let data = serde_json::json!({
                "name_changed": patch.name.is_some(), "role": patch.role, "team_id": row.team_id,
                "max_load": patch.max_load, "active": patch.active, "password_changed": patch.password.is_some(),
                "cases_rerouted": rerouted,
            });
            agent_event(conn, &row.id, "agent_updated", &actor, data, now)?;
            tracing::info!(agent.id = %row.id, actor.kind = %actor.0, "agent updated");
            agent_view(conn, row)
        })
        .await
    }

    /// Sets an agent's presence (their own, or anyone's for supervisors). Leaving `online`
    /// gives the agent's unstarted cases back to routing when `routing.reroute_on_away`.
    pub async fn set_presence(&self, who: &Principal, id: String, req: PresenceRequest) -> AppResult<AgentView> {
        if who.agent_id().map(AgentId::as_str) != Some(id.as_str()) {
            who.require_supervisor()?;
        }
        let now = self.now_naive();
        let actor = who.actor();
        let reroute = self.settings().routing.enabled && self.settings().routing.reroute_on_away;
        self.write(move |conn| {
            let row = queries::agents::get(conn, &id)?.ok_or(AppError::NotFound("agent"))?;
            if !row.active && req.presence != Presence::Offline {
                return Err(AppError::invalid("a deactivated agent cannot go online"));
            }
            let row = change_presence(conn, row, req.presence, &actor, None, reroute, now)?;
            agent_view(conn, row)
        })
        .await
    }

    /// An agent's audit log (supervisors, or the agent themself), oldest first.
    pub async fn list_agent_events(
        &self,
        who: &Principal,
        id: String,
        cursor: Option<String>,
        limit: Option<i64>,
    ) -> AppResult<crate::Page<EventView>> {
        if who.agent_id().map(AgentId::as_str) != Some(id.as_str()) {
            who.require_supervisor()?;
        }
        let limit = self.page_limit(limit)?;
        self.read(move |conn| {
            queries::agents::get(conn, &id)?.ok_or(AppError::NotFound("agent"))?;
            let rows = queries::agents::events(conn, &id, cursor.as_deref(), limit + 1)?;
            crate::Page::try_from_rows(rows, limit, |r| r.id.clone(), EventView::try_from)
        })
        .await
    }

    /// Replaces an agent's skills (supervisor or admin).
    pub async fn set_agent_skills(&self, who: &Principal, id: String, req: SetSkills) -> AppResult<AgentView> {
        who.require_supervisor()?;
        let actor = who.actor();
        let now = self.now_naive();
        let mut seen = std::collections::HashSet::new();
        for s in &req.skills {
            if !(1..=5).contains(&s.level) {
                return Err(AppError::invalid("skill level must be between 1 and 5"));
            }
            if !seen.insert(s.skill_id.clone()) {
                return Err(AppError::invalid("a skill is listed twice"));
            }
        }
        self.write(move |conn| {
            let row = queries::agents::get(conn, &id)?.ok_or(AppError::NotFound("agent"))?;
            let mut rows = Vec::new();
            for s in &req.skills {
                if queries::skills::get(conn, &s.skill_id)?.is_none() {
                    return Err(AppError::invalid("skill_id: no such skill"));
                }
                rows.push(AgentSkillRow { agent_id: row.id.clone(), skill_id: s.skill_id.clone(), level: s.level });
            }
            queries::agents::set_skills(conn, &row.id, &rows)?;
            let data = serde_json::json!({
                "skills": rows.iter().map(|r| serde_json::json!({"skill_id": r.skill_id, "level": r.level})).collect::<Vec<_>>(),
            });
            agent_event(conn, &row.id, "skills_set", &actor, data, now)?;
            tracing::info!(agent.id = %row.id, skills = rows.len(), "agent skills set");
            agent_view(conn, row)
        })
        .await
    }

    /// Creates a team (admin).
    pub async fn create_team(&self, who: &Principal, input: NamedInput) -> AppResult<TeamView> {
        who.require_admin()?;
        let name = required("name", input.name.as_deref().unwrap_or_default())?;
        check_len("name", &name, 100)?;
        let description = crate::clean(&input.description.unwrap_or_default());
        check_len("description", &description, 2000)?;
        let now = self.now_naive();
        self.write(move |conn| {
            let row = TeamRow { id: new_id(), name, description, created_at: now, updated_at: now };
            queries::teams::insert(conn, &row)?;
            Ok(row.into())
        })
        .await
    }

    /// All teams.
    pub async fn list_teams(&self, who: &Principal) -> AppResult<Vec<TeamView>> {
        who.require_read()?;
        self.read(|conn| Ok(queries::teams::list(conn)?.into_iter().map(TeamView::from).collect())).await
    }

    /// One team.
    pub async fn get_team(&self, who: &Principal, id: String) -> AppResult<TeamView> {
        who.require_read()?;
        self.read(move |conn| Ok(queries::teams::get(conn, &id)?.ok_or(AppError::NotFound("team"))?.into())).await
    }

    /// Renames or re-describes a team (admin).
    pub async fn update_team(&self, who: &Principal, id: String, input: NamedInput) -> AppResult<TeamView> {
        who.require_admin()?;
        let now = self.now_naive();
        self.write(move |conn| {
            let mut row = queries::teams::get(conn, &id)?.ok_or(AppError::NotFound("team"))?;
            if let Some(n) = input.name {
                row.name = required("name", &n)?;
                check_len("name", &row.name, 100)?;
            }
            if let Some(d) = input.description {
                check_len("description", &d, 2000)?;
                row.description = crate::clean(&d);
            }
            row.updated_at = now;
            queries::teams::update(conn, &row)?;
            Ok(row.into())
        })
        .await
    }

    /// Deletes a team that no agent or case refers to (admin).
    pub async fn delete_team(&self, who: &Principal, id: String) -> AppResult<()> {
        who.require_admin()?;
        self.write(move |conn| match queries::teams::delete(conn, &id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::NotFound("team")),
            Err(e) => Err(in_use(e, "the team still has agents or cases; move them first")),
        })
        .await
    }

    /// Creates a skill (admin).
    pub async fn create_skill(&self, who: &Principal, input: NamedInput) -> AppResult<SkillView> {
        who.require_admin()?;
        let name = required("name", input.name.as_deref().unwrap_or_default())?;
        check_len("name", &name, 100)?;
        let description = crate::clean(&input.description.unwrap_or_default());
        check_len("description", &description, 2000)?;
        let now = self.now_naive();
        self.write(move |conn| {
            let row = SkillRow { id: new_id(), name, description, created_at: now };
            queries::skills::insert(conn, &row)?;
            Ok(row.into())
        })
        .await
    }

    /// All skills.
    pub async fn list_skills(&self, who: &Principal) -> AppResult<Vec<SkillView>> {
        who.require_read()?;
        self.read(|conn| Ok(queries::skills::list(conn)?.into_iter().map(SkillView::from).collect())).await
    }

    /// One skill.
    pub async fn get_skill(&self, who: &Principal, id: String) -> AppResult<SkillView> {
        who.require_read()?;
        self.read(move |conn| Ok(queries::skills::get(conn, &id)?.ok_or(AppError::NotFound("skill"))?.into())).await
    }

    /// Renames or re-describes a skill (admin).
    pub async fn update_skill(&self, who: &Principal, id: String, input: NamedInput) -> AppResult<SkillView> {
        who.require_admin()?;
        self.write(move |conn| {
            let mut row = queries::skills::get(conn, &id)?.ok_or(AppError::NotFound("skill"))?;
            if let Some(n) = input.name {
                row.name = required("name", &n)?;
                check_len("name", &row.name, 100)?;
            }
            if let Some(d) = input.description {
                check_len("description", &d, 2000)?;
                row.description = crate::clean(&d);
            }
            queries::skills::update(conn, &row)?;
            Ok(row.into())
        })
        .await
    }

    /// Deletes a skill; agents lose it (admin).
    pub async fn delete_skill(&self, who: &Principal, id: String) -> AppResult<()> {
        who.require_admin()?;
        self.write(move |conn| match queries::skills::delete(conn, &id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::NotFound("skill")),
            Err(e) => Err(in_use(e, "the skill is still referenced")),
        })
        .await
    }

    /// Creates an integrator token and returns its plaintext once (admin).
    pub async fn create_api_token(&self, who: &Principal, input: NewApiToken) -> AppResult<CreatedApiToken> {
        who.require_admin()?;
        let name = required("name", &input.name)?;
        check_len("name", &name, 100)?;
        if input.scopes.is_empty() {
            return Err(AppError::invalid("scopes must name at least one of read, write, admin"));
        }
        let mut scopes: Vec<&str> = input.scopes.iter().map(|s| s.as_str()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let token = auth::generate_api_token();
        let row = ApiTokenRow {
            id: new_id(),
            name,
            token_prefix: token.chars().take(auth::API_TOKEN_PREFIX.len() + 6).collect(),
            token_hash: auth::hash_api_token(&token),
            scopes: scopes.join(" "),
            created_by: who.agent_id().map(ToString::to_string),
            created_at: self.now_naive(),
            last_used_at: None,
            revoked_at: None,
        };
        self.write(move |conn| {
            queries::tokens::insert(conn, &row)?;
            tracing::info!(token.id = %row.id, "API token created");
            Ok(CreatedApiToken { token, info: row.try_into()? })
        })
        .await
    }

    /// All tokens (never their secrets).
    pub async fn list_api_tokens(&self, who: &Principal) -> AppResult<Vec<ApiTokenView>> {
        who.require_admin()?;
        self.read(|conn| queries::tokens::list(conn)?.into_iter().map(ApiTokenView::try_from).collect()).await
    }

    /// Revokes a token; it stops working at once.
    pub async fn revoke_api_token(&self, who: &Principal, id: String) -> AppResult<ApiTokenView> {
        who.require_admin()?;
        let now = self.now_naive();
        let app = self.clone();
        self.write(move |conn| {
            queries::tokens::revoke(conn, &id, now)?;
            let row =
                queries::tokens::list(conn)?.into_iter().find(|t| t.id == id).ok_or(AppError::NotFound("API token"))?;
            tracing::info!(token.id = %row.id, revoked_at = %utc(now), "API token revoked");
            app.token_cache().forget_token(&row.id);
            row.try_into()
        })
        .await
    }
}

fn in_use(e: caseflow_store::QueryError, msg: &str) -> AppError {
    match AppError::from(e) {
        AppError::InUse(_) => AppError::InUse(msg.into()),
        other => other,
    }
}
