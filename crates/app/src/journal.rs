//! Append-only rows a use case writes as it goes (audit events, the inbound ledger): written at
//! once by interactive use cases, or collected and written with multi-row inserts at the end
//! of a batch (email intake), which saves a database round trip per row. Nothing in a batch
//! reads these rows back, except the dedup ledger, which the journal answers from memory.

use crate::error::AppResult;
use caseflow_store::models::*;
use caseflow_store::{queries, DbConn};
use std::collections::HashMap;

/// Rows per multi-row INSERT (PostgreSQL allows 65,535 bind parameters per statement).
const CHUNK: usize = 500;

#[derive(Debug, Default)]
pub(crate) struct Journal {
    deferred: bool,
    case_events: Vec<CaseEventRow>,
    customer_events: Vec<CustomerEventRow>,
    inbound: Vec<InboundRow>,
    /// Deferred mode: ledger entries of the batch, those stored before (loaded up front) and
    /// those pending here, by dedup key.
    known: HashMap<String, InboundMeta>,
    /// Identities looked up for the whole batch at once, by (kind, value); `None` = known not
    /// to exist. Keys not in the map are looked up in the database.
    identities: HashMap<(String, String), Option<IdentityRow>>,
    /// Case numbers taken for the batch in one round trip.
    case_numbers: std::collections::VecDeque<i64>,
}

/// A point to roll the journal back to (a message's savepoint failed).
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    case_events: usize,
    customer_events: usize,
    inbound: usize,
    identities: usize,
    case_numbers: std::collections::VecDeque<i64>,
}

impl Journal {
    /// Writes every row at once.
    pub(crate) fn immediate() -> Self {
        Self::default()
    }

    /// Collects rows until [`Journal::flush`]; `known` are the ledger entries already stored
    /// for the batch's dedup keys.
    pub(crate) fn deferred(known: Vec<InboundMeta>) -> Self {
        Self { deferred: true, known: known.into_iter().map(|m| (m.dedup_key.clone(), m)).collect(), ..Self::default() }
    }

    /// Preloads the identities of `kind` for `values` (deferred mode).
    pub(crate) fn preload_identities(&mut self, conn: &mut DbConn, kind: &str, values: Vec<String>) -> AppResult<()> {
        if !self.deferred || values.is_empty() {
            return Ok(());
        }
        let found = queries::customers::find_identities(conn, kind, &values)?;
        for v in values {
            self.identities.entry((kind.to_owned(), v)).or_insert(None);
        }
        for row in found {
            self.identities.insert((row.kind.clone(), row.value.clone()), Some(row));
        }
        Ok(())
    }

    pub(crate) fn find_identity(
        &mut self,
        conn: &mut DbConn,
        kind: &str,
        value: &str,
    ) -> AppResult<Option<IdentityRow>> {
        if let Some(hit) = self.identities.get(&(kind.to_owned(), value.to_owned())) {
            return Ok(hit.clone());
        }
        Ok(queries::customers::find_identity(conn, kind, value)?)
    }

    /// Records an identity just inserted, so later messages of the batch find it.
    pub(crate) fn identity_added(&mut self, row: &IdentityRow) {
        if self.deferred {
            self.identities.insert((row.kind.clone(), row.value.clone()), Some(row.clone()));
        }
    }

    /// Takes `n` case numbers up front (deferred mode).
    pub(crate) fn reserve_case_numbers(&mut self, conn: &mut DbConn, n: usize) -> AppResult<()> {
        if self.deferred && n > 0 {
            self.case_numbers.extend(queries::next_case_numbers(conn, i64::try_from(n).unwrap_or(0))?);
        }
        Ok(())
    }

    pub(crate) fn next_case_number(&mut self, conn: &mut DbConn) -> AppResult<i64> {
        match self.case_numbers.pop_front() {
            Some(n) => Ok(n),
            None => Ok(queries::next_case_number(conn)?),
        }
    }

    pub(crate) fn case_event(&mut self, conn: &mut DbConn, row: CaseEventRow) -> AppResult<()> {
        if self.deferred {
            self.case_events.push(row);
        } else {
            queries::events::insert_case_event(conn, &row)?;
        }
        Ok(())
    }

    pub(crate) fn customer_event(&mut self, conn: &mut DbConn, row: CustomerEventRow) -> AppResult<()> {
        if self.deferred {
            self.customer_events.push(row);
        } else {
            queries::events::insert_customer_event(conn, &row)?;
        }
        Ok(())
    }

    /// The ledger entry for a dedup key, if the message was received before.
    pub(crate) fn seen(&self, conn: &mut DbConn, channel: &str, dedup_key: &str) -> AppResult<Option<InboundMeta>> {
        if self.deferred {
            Ok(self.known.get(dedup_key).cloned())
        } else {
            Ok(queries::inbound::find(conn, channel, dedup_key)?)
        }
    }

    pub(crate) fn inbound(&mut self, conn: &mut DbConn, row: InboundRow) -> AppResult<()> {
        if self.deferred {
            self.known.insert(row.dedup_key.clone(), meta(&row));
            self.inbound.push(row);
        } else {
            queries::inbound::insert(conn, &row)?;
        }
        Ok(())
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            case_events: self.case_events.len(),
            customer_events: self.customer_events.len(),
            inbound: self.inbound.len(),
            identities: self.identities.len(),
            case_numbers: self.case_numbers.clone(),
        }
    }

    /// Forgets rows collected since `m` (their savepoint was rolled back).
    pub(crate) fn rollback_to(&mut self, m: Mark) {
        self.case_events.truncate(m.case_events);
        self.customer_events.truncate(m.customer_events);
        for row in self.inbound.drain(m.inbound..) {
            self.known.remove(&row.dedup_key);
        }
        if self.identities.len() != m.identities {
            // An identity inserted in the rolled-back savepoint is gone again: forget the
            // cache rather than trust it.
            self.identities.clear();
        }
        // Numbers taken inside the rolled-back savepoint were not used after all.
        self.case_numbers = m.case_numbers;
    }

    /// Writes what was collected, in multi-row inserts (inside the caller's transaction).
    pub(crate) fn flush(&mut self, conn: &mut DbConn) -> AppResult<()> {
        for chunk in self.customer_events.chunks(CHUNK) {
            queries::events::insert_customer_events(conn, chunk)?;
        }
        for chunk in self.case_events.chunks(CHUNK) {
            queries::events::insert_case_events(conn, chunk)?;
        }
        for chunk in self.inbound.chunks(CHUNK) {
            queries::inbound::insert_many(conn, chunk)?;
        }
        self.customer_events.clear();
        self.case_events.clear();
        self.inbound.clear();
        Ok(())
    }
}

fn meta(r: &InboundRow) -> InboundMeta {
    InboundMeta {
        id: r.id.clone(),
        channel: r.channel.clone(),
        source: r.source.clone(),
        dedup_key: r.dedup_key.clone(),
        outcome: r.outcome.clone(),
        reason: r.reason.clone(),
        case_id: r.case_id.clone(),
        message_id: r.message_id.clone(),
        created_at: r.created_at,
        resolved_at: r.resolved_at,
    }
}
