//! What agents share while working cases: who else has a case open (collision warnings) and
//! canned replies (macros) with placeholders.

use crate::error::{AppError, AppResult};
use crate::{check_len, new_id, required, utc, App, Principal};
use caseflow_store::models::{CaseViewerRow, MacroRow};
use caseflow_store::queries;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A viewer counts as present this long after their last heartbeat (the page beats every 15 s).
pub const VIEWER_WINDOW_SECS: i64 = 45;

/// What a viewer's heartbeat says.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The agent is writing a reply or note.
    #[serde(default)]
    pub composing: bool,
}

/// Another agent with the case open.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ViewerView {
    pub agent_id: String,
    pub name: String,
    pub composing: bool,
    pub seen_at: DateTime<Utc>,
}

/// The other agents who have the case open now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Viewers {
    pub viewers: Vec<ViewerView>,
}

/// A canned reply.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MacroView {
    pub id: String,
    pub name: String,
    /// The text, with placeholders such as `{{customer.first_name}}` (see [`PLACEHOLDERS`]).
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<MacroRow> for MacroView {
    fn from(r: MacroRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            body: r.body,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

/// Input for creating or replacing a canned reply.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacroInput {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The text, with `{{placeholders}}` (docs/ui.md lists them).
    #[schema(min_length = 1, max_length = 20000)]
    pub body: String,
    /// When replacing: the version read (optimistic concurrency).
    #[serde(default)]
    pub version: Option<i64>,
}

/// A canned reply filled in for one case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RenderedMacro {
    pub body: String,
}

/// The placeholders a canned reply may use.
pub const PLACEHOLDERS: &[&str] =
    &["customer.name", "customer.first_name", "case.number", "case.subject", "agent.name", "agent.first_name"];

/// The placeholders (`{{name}}`, spaces allowed inside the braces) in `body`, in order; an
/// opening `{{` without its `}}` is an error.
fn placeholders(body: &str) -> AppResult<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| AppError::invalid("body: a `{{` is not closed by `}}`"))?;
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    Ok(out)
}

fn validate(name: &str, body: &str) -> AppResult<(String, String)> {
    let name = required("name", name)?;
    check_len("name", &name, 100)?;
    let body = required("body", body)?;
    check_len("body", &body, 20_000)?;
    let unknown: Vec<String> =
        placeholders(&body)?.into_iter().filter(|p| !PLACEHOLDERS.contains(&p.as_str())).collect();
    if !unknown.is_empty() {
        return Err(AppError::invalid(format!(
            "body: unknown placeholder {}; known: {}",
            unknown.iter().map(|u| format!("{{{{{u}}}}}")).collect::<Vec<_>>().join(", "),
            PLACEHOLDERS.iter().map(|p| format!("{{{{{p}}}}}")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok((name, body))
}

fn first_name(full: &str) -> &str {
    full.split_whitespace().next().unwrap_or(full)
}

/// Fills the placeholders of `body` with `values` (name → value); unknown ones stay as typed.
fn fill(body: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = after[..end].trim();
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl App {
    /// Records that the calling agent has the case open (and whether they are writing), and
    /// returns the other agents who have it open now.
    pub async fn view_case(&self, who: &Principal, case_id: String, beat: Heartbeat) -> AppResult<Viewers> {
        who.require_read()?;
        let agent = who
            .agent_id()
            .map(|a| a.to_string())
            .ok_or_else(|| AppError::Forbidden("viewing a case is for agent sessions, not API tokens".into()))?;
        let now = self.now_naive();
        // A heartbeat changes nothing anyone else must react to: no workers are woken.
        self.write_silent(move |conn| {
            queries::cases::get(conn, &case_id)?.ok_or(AppError::NotFound("case"))?;
            let row = CaseViewerRow {
                case_id: case_id.clone(),
                agent_id: agent.clone(),
                composing: beat.composing,
                seen_at: now,
            };
            queries::viewers::touch(conn, &row)?;
            queries::viewers::purge(conn, now - chrono::Duration::days(1))?;
            let since = now - chrono::Duration::seconds(VIEWER_WINDOW_SECS);
            let mut viewers = Vec::new();
            for v in queries::viewers::of_case(conn, &case_id, since)?.into_iter().filter(|v| v.agent_id != agent) {
                let name = queries::agents::get(conn, &v.agent_id)?.map(|a| a.name).unwrap_or_default();
                viewers.push(ViewerView {
                    agent_id: v.agent_id,
                    name,
                    composing: v.composing,
                    seen_at: utc(v.seen_at),
                });
            }
            Ok(Viewers { viewers })
        })
        .await
    }

    /// The calling agent closed the case.
    pub async fn leave_case(&self, who: &Principal, case_id: String) -> AppResult<()> {
        let Some(agent) = who.agent_id().map(|a| a.to_string()) else {
            return Err(AppError::Forbidden("viewing a case is for agent sessions, not API tokens".into()));
        };
        self.write_silent(move |conn| Ok(queries::viewers::leave(conn, &case_id, &agent)?)).await
    }

    pub async fn list_macros(&self, who: &Principal) -> AppResult<Vec<MacroView>> {
        who.require_read()?;
        self.read(|conn| Ok(queries::macros::list(conn)?.into_iter().map(MacroView::from).collect())).await
    }

    pub async fn get_macro(&self, who: &Principal, id: String) -> AppResult<MacroView> {
        who.require_read()?;
        self.read(move |conn| queries::macros::get(conn, &id)?.map(MacroView::from).ok_or(AppError::NotFound("macro")))
            .await
    }

    /// Creates a canned reply (admin).
    pub async fn create_macro(&self, who: &Principal, input: MacroInput) -> AppResult<MacroView> {
        who.require_admin()?;
        let (name, body) = validate(&input.name, &input.body)?;
        let now = self.now_naive();
        self.write(move |conn| {
            let row = MacroRow { id: new_id(), name, body, created_at: now, updated_at: now, version: 1 };
            queries::macros::insert(conn, &row)?;
            Ok(MacroView::from(row))
        })
        .await
    }

    /// Replaces a canned reply's name and text (admin); with `version`, only if unchanged since.
    pub async fn update_macro(&self, who: &Principal, id: String, input: MacroInput) -> AppResult<MacroView> {
        who.require_admin()?;
        let (name, body) = validate(&input.name, &input.body)?;
        let now = self.now_naive();
        self.write(move |conn| {
            let old = queries::macros::get(conn, &id)?.ok_or(AppError::NotFound("macro"))?;
            if input.version.is_some_and(|v| v != old.version) {
                return Err(AppError::VersionConflict("macro"));
            }
            let row = MacroRow { name, body, updated_at: now, version: old.version + 1, ..old.clone() };
            if !queries::macros::update_if_version(conn, &row, old.version)? {
                return Err(AppError::VersionConflict("macro"));
            }
            Ok(MacroView::from(row))
        })
        .await
    }

    pub async fn delete_macro(&self, who: &Principal, id: String) -> AppResult<()> {
        who.require_admin()?;
        self.write(move |conn| match queries::macros::delete(conn, &id)? {
            true => Ok(()),
            false => Err(AppError::NotFound("macro")),
        })
        .await
    }

    /// A canned reply filled in for a case and the calling agent.
    pub async fn render_macro(&self, who: &Principal, case_id: String, macro_id: String) -> AppResult<RenderedMacro> {
        who.require_read()?;
        let agent = who.agent_id().map(|a| a.to_string());
        self.read(move |conn| {
            let m = queries::macros::get(conn, &macro_id)?.ok_or(AppError::NotFound("macro"))?;
            let (case, customer, _) =
                queries::cases::get_with_customer(conn, &case_id)?.ok_or(AppError::NotFound("case"))?;
            let agent_name = match &agent {
                Some(a) => queries::agents::get(conn, a)?.map(|r| r.name).unwrap_or_default(),
                None => String::new(),
            };
            let values = [
                ("customer.name", customer.clone()),
                ("customer.first_name", first_name(&customer).to_owned()),
                ("case.number", case.number.to_string()),
                ("case.subject", case.subject.clone()),
                ("agent.name", agent_name.clone()),
                ("agent.first_name", first_name(&agent_name).to_owned()),
            ];
            Ok(RenderedMacro { body: fill(&m.body, &values) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_validated_and_filled() {
        assert_eq!(
            placeholders("Hi {{ customer.first_name }}, case {{case.number}}").ok(),
            Some(vec!["customer.first_name".to_owned(), "case.number".to_owned()])
        );
        assert!(placeholders("broken {{customer.name").is_err());
        assert!(validate("Thanks", "Hi {{customer.first_name}}").is_ok());
        let e = validate("Thanks", "Hi {{customer.shoe_size}}").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("{{customer.shoe_size}}") && e.contains("{{customer.first_name}}"), "{e}");
        assert!(validate(" ", "x").is_err());
        let values = [("customer.first_name", "Ann".to_owned()), ("case.number", "1042".to_owned())];
        assert_eq!(
            fill("Hi {{ customer.first_name }}, about #{{case.number}} {{other}} {{", &values),
            "Hi Ann, about #1042 {{other}} {{"
        );
        assert_eq!(first_name("Ann Example"), "Ann");
        assert_eq!(first_name(""), "");
    }
}
