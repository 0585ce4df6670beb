//! Customers and their identities: one customer across every channel, merges audited.

use crate::auth::Principal;
use crate::cases::event;
use crate::error::{AppError, AppResult};
use crate::journal::Journal;
use crate::views::*;
use crate::{check_len, new_id, App, Page};
use caseflow_core::*;
use caseflow_store::models::*;
use caseflow_store::queries;
use caseflow_store::DbConn;
use chrono::NaiveDateTime;
use serde::Deserialize;

/// How a request names a customer: by id, or by identities to resolve.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    /// Used when a new customer is created.
    #[serde(default)]
    pub name: Option<String>,
}

/// An identity to add.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIdentity {
    pub kind: IdentityKind,
    #[schema(min_length = 1, max_length = 255)]
    pub value: String,
}

/// Input for creating a customer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub value: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub identities: Vec<NewIdentity>,
}

/// Changes to a customer.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub value: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub version: Option<i64>,
}

/// Input for a merge: `source` is folded into the customer named in the path.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    #[schema(min_length = 1)]
    pub source_id: String,
}

pub(crate) fn follow_merges(conn: &mut DbConn, id: &str) -> AppResult<Option<CustomerRow>> {
    let mut current = queries::customers::get(conn, id)?;
    for _ in 0..16 {
        match current {
            Some(CustomerRow { merged_into: Some(ref next), .. }) => {
                let next = next.clone();
                current = queries::customers::get(conn, &next)?;
            }
            other => return Ok(other),
        }
    }
    Err(AppError::Internal("customer merge chain too long".into()))
}

pub(crate) fn customer_event(
    conn: &mut DbConn,
    customer_id: &str,
    kind: &str,
    actor: &(ActorKind, Option<String>),
    data: serde_json::Value,
    now: NaiveDateTime,
) -> AppResult<()> {
    queries::events::insert_customer_event(conn, &customer_event_row(customer_id, kind, actor, data, now))?;
    Ok(())
}

fn customer_event_row(
    customer_id: &str,
    kind: &str,
    actor: &(ActorKind, Option<String>),
    data: serde_json::Value,
    now: NaiveDateTime,
) -> CustomerEventRow {
    CustomerEventRow {
        id: new_id(),
        customer_id: customer_id.to_owned(),
        kind: kind.to_owned(),
        actor_kind: actor.0.as_str().to_owned(),
        actor_id: actor.1.clone(),
        data: data.to_string(),
        created_at: now,
    }
}

pub(crate) fn clean_name(name: Option<&str>) -> AppResult<String> {
    let n = crate::clean(name.unwrap_or_default());
    check_len("name", &n, 200)?;
    Ok(n)
}

pub(crate) fn insert_customer(
    conn: &mut DbConn,
    name: String,
    tier: Tier,
    value: i64,
    notes: String,
    now: NaiveDateTime,
) -> AppResult<CustomerRow> {
    let row = CustomerRow {
        id: new_id(),
        name,
        tier: tier.as_str().into(),
        value,
        notes,
        merged_into: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    queries::customers::insert(conn, &row)?;
    Ok(row)
}

pub(crate) fn add_identity_row(
    conn: &mut DbConn,
    customer_id: &str,
    kind: IdentityKind,
    value: &str,
    now: NaiveDateTime,
) -> AppResult<IdentityRow> {
    let row = IdentityRow {
        id: new_id(),
        customer_id: customer_id.to_owned(),
        kind: kind.as_str().into(),
        value: value.to_owned(),
        created_at: now,
    };
    queries::customers::insert_identity(conn, &row)?;
    Ok(row)
}

/// Finds the customer a channel message belongs to, creating one (with its identities) when
/// none matches. Identities not yet known are attached to the found customer. Shared by every
/// channel, so one person is one customer whether they email, chat or use the web form.
pub fn resolve_customer(
    conn: &mut DbConn,
    r: &CustomerRef,
    actor: &(ActorKind, Option<String>),
    now: NaiveDateTime,
) -> AppResult<(CustomerRow, bool)> {
    resolve_customer_in(conn, &mut Journal::immediate(), r, actor, now)
}

/// [`resolve_customer`] writing its audit events through `journal`.
pub(crate) fn resolve_customer_in(
    conn: &mut DbConn,
    journal: &mut Journal,
    r: &CustomerRef,
    actor: &(ActorKind, Option<String>),
    now: NaiveDateTime,
) -> AppResult<(CustomerRow, bool)> {
    if let Some(id) = r.id.as_deref().filter(|s| !s.is_empty()) {
        if r.email.is_some() || r.external_id.is_some() {
            return Err(AppError::invalid("customer: give either id or identities, not both"));
        }
        let c = follow_merges(conn, id)?.ok_or_else(|| AppError::invalid("customer.id: no such customer"))?;
        return Ok((c, false));
    }
    let mut wanted: Vec<(IdentityKind, String)> = Vec::new();
    if let Some(e) = r.email.as_deref() {
        let v = normalize_identity(IdentityKind::Email, e)
            .map_err(|e| AppError::invalid(format!("customer.email: {e}")))?;
        wanted.push((IdentityKind::Email, v));
    }
    if let Some(x) = r.external_id.as_deref() {
        let v = normalize_identity(IdentityKind::External, x)
            .map_err(|e| AppError::invalid(format!("customer.external_id: {e}")))?;
        wanted.push((IdentityKind::External, v));
    }
    if wanted.is_empty() {
        return Err(AppError::invalid("customer: give an id, an email or an external_id"));
    }
    let mut found: Option<CustomerRow> = None;
    let mut missing = Vec::new();
    for (kind, value) in &wanted {
        match journal.find_identity(conn, kind.as_str(), value)? {
            Some(ident) => {
                let c = follow_merges(conn, &ident.customer_id)?.ok_or(AppError::NotFound("customer"))?;
                if let Some(prev) = &found {
                    if prev.id != c.id {
                        return Err(AppError::invalid(
                            "customer: the email and external_id belong to different customers; merge them first",
                        ));
                    }
                }
                found = Some(c);
            }
            None => missing.push((*kind, value.clone())),
        }
    }
    let created = found.is_none();
    let customer = match found {
        Some(c) => c,
        None => {
            let name = clean_name(r.name.as_deref())?;
            let c = insert_customer(conn, name, Tier::Standard, 0, String::new(), now)?;
            journal.customer_event(
                conn,
                customer_event_row(&c.id, "customer_created", actor, serde_json::json!({}), now),
            )?;
            c
        }
    };
    for (kind, value) in missing {
        let ident = add_identity_row(conn, &customer.id, kind, &value, now)?;
        journal.identity_added(&ident);
        journal.customer_event(
            conn,
            customer_event_row(
                &customer.id,
                "identity_added",
                actor,
                serde_json::json!({"identity_id": ident.id, "kind": kind}),
                now,
            ),
        )?;
    }
    Ok((customer, created))
}

fn customer_detail(conn: &mut DbConn, row: CustomerRow) -> AppResult<CustomerDetail> {
    let identities = queries::customers::identities(conn, &row.id)?
        .into_iter()
        .map(IdentityView::try_from)
        .collect::<AppResult<Vec<_>>>()?;
    let cases = queries::cases::for_customer(conn, &row.id, 200)?
        .into_iter()
        .map(CaseView::try_from)
        .collect::<AppResult<Vec<_>>>()?;
    let events = queries::events::list_customer_events(conn, &row.id)?
        .into_iter()
        .map(EventView::try_from)
        .collect::<AppResult<Vec<_>>>()?;
    Ok(CustomerDetail { customer: row.try_into()?, identities, cases, events })
}

impl App {
    /// Creates a customer with optional identities.
    pub async fn create_customer(&self, who: &Principal, input: NewCustomer) -> AppResult<CustomerDetail> {
        who.require_write()?;
        let name = clean_name(input.name.as_deref())?;
        let notes = crate::clean(&input.notes.unwrap_or_default());
        check_len("notes", &notes, 10_000)?;
        let mut idents = Vec::new();
        for i in &input.identities {
            let v = normalize_identity(i.kind, &i.value).map_err(|e| AppError::invalid(format!("identities: {e}")))?;
            idents.push((i.kind, v));
        }
        let (tier, value) = (input.tier.unwrap_or(Tier::Standard), input.value.unwrap_or(0));
        if value < 0 {
            return Err(AppError::invalid("value must not be negative"));
        }
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            let c = insert_customer(conn, name, tier, value, notes, now)?;
            customer_event(conn, &c.id, "customer_created", &actor, serde_json::json!({}), now)?;
            for (kind, v) in &idents {
                if queries::customers::find_identity(conn, kind.as_str(), v)?.is_some() {
                    return Err(AppError::AlreadyExists(format!(
                        "a customer with this {kind} identity already exists"
                    )));
                }
                add_identity_row(conn, &c.id, *kind, v, now)?;
            }
            tracing::info!(customer.id = %c.id, "customer created");
            customer_detail(conn, c)
        })
        .await
    }

    /// A customer with identities, cases from every channel and audit log. A merged customer
    /// is returned as stored, with `merged_into` naming where it went.
    pub async fn get_customer(&self, who: &Principal, id: String) -> AppResult<CustomerDetail> {
        who.require_read()?;
        self.read(move |conn| {
            let row = queries::customers::get(conn, &id)?.ok_or(AppError::NotFound("customer"))?;
            customer_detail(conn, row)
        })
        .await
    }

    /// A page of customers, optionally matching `q` against names and identities.
    pub async fn list_customers(
        &self,
        who: &Principal,
        q: Option<String>,
        cursor: Option<String>,
        limit: Option<i64>,
    ) -> AppResult<Page<CustomerView>> {
        who.require_read()?;
        let limit = self.page_limit(limit)?;
        let q = q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        if let Some(q) = &q {
            check_len("q", q, 200)?;
        }
        self.read(move |conn| {
            let rows = queries::customers::list(conn, q.as_deref(), cursor.as_deref(), limit + 1)?;
            Page::try_from_rows(rows, limit, |r| r.id.clone(), CustomerView::try_from)
        })
        .await
    }

    /// Updates a customer's profile.
    pub async fn update_customer(
        &self,
        who: &Principal,
        id: String,
        patch: CustomerPatch,
        if_match: Option<i64>,
    ) -> AppResult<CustomerDetail> {
        who.require_write()?;
        let expected = patch.version.or(if_match);
        if let Some(v) = patch.value {
            if v < 0 {
                return Err(AppError::invalid("value must not be negative"));
            }
        }
        let name = match &patch.name {
            Some(n) => Some(clean_name(Some(n))?),
            None => None,
        };
        if let Some(n) = &patch.notes {
            check_len("notes", n, 10_000)?;
        }
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            let old = queries::customers::get(conn, &id)?.ok_or(AppError::NotFound("customer"))?;
            if expected.is_some_and(|v| v != old.version) {
                return Err(AppError::VersionConflict("customer"));
            }
            if old.merged_into.is_some() {
                return Err(AppError::InvalidTransition(
                    "this customer was merged into another; update that one".into(),
                ));
            }
            let mut new = old.clone();
            if let Some(n) = name {
                new.name = n;
            }
            if let Some(t) = patch.tier {
                new.tier = t.as_str().into();
            }
            if let Some(v) = patch.value {
                new.value = v;
            }
            if let Some(n) = patch.notes {
                new.notes = crate::clean(&n);
            }
            new.version = old.version + 1;
            new.updated_at = now;
            if !queries::customers::update_if_version(conn, &new, old.version)? {
                return Err(AppError::VersionConflict("customer"));
            }
            customer_event(
                conn,
                &new.id,
                "customer_updated",
                &actor,
                serde_json::json!({"tier": new.tier, "value": new.value}),
                now,
            )?;
            customer_detail(conn, new)
        })
        .await
    }

    /// Adds an identity (email address, chat visitor id, external id) to a customer.
    pub async fn add_identity(&self, who: &Principal, id: String, input: NewIdentity) -> AppResult<CustomerDetail> {
        who.require_write()?;
        let value =
            normalize_identity(input.kind, &input.value).map_err(|e| AppError::invalid(format!("value: {e}")))?;
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            let c = queries::customers::get(conn, &id)?.ok_or(AppError::NotFound("customer"))?;
            if c.merged_into.is_some() {
                return Err(AppError::InvalidTransition("this customer was merged into another".into()));
            }
            if let Some(existing) = queries::customers::find_identity(conn, input.kind.as_str(), &value)? {
                return Err(AppError::AlreadyExists(if existing.customer_id == c.id {
                    "the customer already has this identity".into()
                } else {
                    "this identity belongs to another customer; merge the customers instead".into()
                }));
            }
            let ident = add_identity_row(conn, &c.id, input.kind, &value, now)?;
            customer_event(
                conn,
                &c.id,
                "identity_added",
                &actor,
                serde_json::json!({"identity_id": ident.id, "kind": input.kind}),
                now,
            )?;
            customer_detail(conn, c)
        })
        .await
    }

    /// Folds `source` into `target`: identities and cases move, `source` keeps a pointer to
    /// `target`, and both customers and every moved case get an audit event listing exactly
    /// what moved (enough to undo the merge).
    pub async fn merge_customers(
        &self,
        who: &Principal,
        target_id: String,
        req: MergeRequest,
    ) -> AppResult<CustomerDetail> {
        who.require_write()?;
        if target_id == req.source_id {
            return Err(AppError::invalid("a customer cannot be merged into itself"));
        }
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            let target = queries::customers::get(conn, &target_id)?.ok_or(AppError::NotFound("customer"))?;
            let source = queries::customers::get(conn, &req.source_id)?
                .ok_or_else(|| AppError::invalid("source_id: no such customer"))?;
            if target.merged_into.is_some() || source.merged_into.is_some() {
                return Err(AppError::InvalidTransition("one of the customers was already merged".into()));
            }
            let identity_ids = queries::customers::move_identities(conn, &source.id, &target.id)?;
            let case_ids = queries::cases::move_to_customer(conn, &source.id, &target.id, now)?;
            let mut src = source.clone();
            src.merged_into = Some(target.id.clone());
            src.version = source.version + 1;
            src.updated_at = now;
            if !queries::customers::update_if_version(conn, &src, source.version)? {
                return Err(AppError::VersionConflict("customer"));
            }
            let data = serde_json::json!({
                "source_id": source.id, "target_id": target.id,
                "identity_ids": identity_ids, "case_ids": case_ids,
            });
            customer_event(conn, &target.id, "customer_merged", &actor, data.clone(), now)?;
            customer_event(conn, &source.id, "merged_into", &actor, data, now)?;
            for case_id in &case_ids {
                event(conn, case_id, "customer_merged", &actor, serde_json::json!({"from": source.id, "to": target.id}), now)?;
            }
            tracing::info!(customer.id = %target.id, merged.id = %source.id, cases = case_ids.len(), "customers merged");
            let target = queries::customers::get(conn, &target.id)?.ok_or(AppError::NotFound("customer"))?;
            customer_detail(conn, target)
        })
        .await
    }

    /// Undoes the merge of `source_id`: the identities and cases that the merge moved (and
    /// that still sit on the customer it was merged into) go back, the pointer is cleared, and
    /// both customers and every returned case get an audit event. Cases opened on the merged
    /// customer since the merge stay there.
    pub async fn unmerge_customer(&self, who: &Principal, source_id: String) -> AppResult<CustomerDetail> {
        who.require_write()?;
        let actor = who.actor();
        let now = self.now_naive();
        self.write(move |conn| {
            let source = queries::customers::get(conn, &source_id)?.ok_or(AppError::NotFound("customer"))?;
            let Some(target_id) = source.merged_into.clone() else {
                return Err(AppError::InvalidTransition("the customer is not merged into another".into()));
            };
            let merge = queries::events::list_customer_events(conn, &source.id)?
                .into_iter()
                .rev()
                .find(|e| e.kind == "merged_into")
                .ok_or_else(|| {
                    AppError::Internal(format!("customer {} is merged but has no merge event", source.id))
                })?;
            let data: serde_json::Value = serde_json::from_str(&merge.data)
                .map_err(|e| AppError::Internal(format!("merge event {}: {e}", merge.id)))?;
            let ids = |key: &str| -> Vec<String> {
                data[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            };
            let identity_ids =
                queries::customers::move_identities_by_id(conn, &ids("identity_ids"), &target_id, &source.id)?;
            let case_ids = queries::cases::move_by_id_to_customer(conn, &ids("case_ids"), &target_id, &source.id, now)?;
            let mut src = source.clone();
            src.merged_into = None;
            src.version = source.version + 1;
            src.updated_at = now;
            if !queries::customers::update_if_version(conn, &src, source.version)? {
                return Err(AppError::VersionConflict("customer"));
            }
            let data = serde_json::json!({
                "source_id": source.id, "target_id": target_id,
                "identity_ids": identity_ids, "case_ids": case_ids,
            });
            customer_event(conn, &target_id, "customer_unmerged", &actor, data.clone(), now)?;
            customer_event(conn, &source.id, "unmerged_from", &actor, data, now)?;
            for case_id in &case_ids {
                event(
                    conn,
                    case_id,
                    "customer_unmerged",
                    &actor,
                    serde_json::json!({"from": target_id, "to": source.id}),
                    now,
                )?;
            }
            tracing::info!(customer.id = %source.id, from.id = %target_id, cases = case_ids.len(), "customer unmerged");
            let restored = queries::customers::get(conn, &source.id)?.ok_or(AppError::NotFound("customer"))?;
            customer_detail(conn, restored)
        })
        .await
    }
}
