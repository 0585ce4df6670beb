//! Storage tests run against both backends: a temporary SQLite file and a throw-away
//! PostgreSQL database (from `CASEFLOW_TEST_POSTGRES_URL`, started by `make test`).

use crate::db::{create_postgres_database, run_migrations, DbConn, DbUrl, PoolOptions, Store};
use crate::models::*;
use crate::queries;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;
use std::collections::BTreeSet;

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// The admin URL of the test PostgreSQL server. Missing it is an error, never a skip: CI must
/// not pass without having run the PostgreSQL half.
pub(crate) fn postgres_admin_url() -> String {
    std::env::var("CASEFLOW_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("CASEFLOW_TEST_POSTGRES_URL is not set: run `make test` (it starts PostgreSQL) or `make pg-start` first")
    })
}

fn sqlite_url() -> DbUrl {
    let dir = std::env::temp_dir().join(unique_name("caseflow_store"));
    DbUrl::Sqlite(dir.join("test.db"))
}

fn postgres_url() -> DbUrl {
    let url = create_postgres_database(&postgres_admin_url(), &unique_name("cf_store")).unwrap();
    DbUrl::parse(&url).unwrap()
}

fn both() -> Vec<Store> {
    [sqlite_url(), postgres_url()].iter().map(|u| Store::open(u, &PoolOptions::default()).unwrap()).collect()
}

#[derive(QueryableByName, Debug)]
struct Col {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    nullable: String,
}

#[derive(QueryableByName, Debug)]
struct Idx {
    #[diesel(sql_type = Text)]
    name: String,
}

fn columns(conn: &mut DbConn) -> BTreeSet<(String, String, String)> {
    let sql = match conn {
        DbConn::Pg(_) => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             CASE WHEN is_nullable = 'YES' THEN 'null' ELSE 'not null' END AS nullable \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations'"
        }
        DbConn::Sqlite(_) => {
            "SELECT m.name AS table_name, p.name AS column_name, \
             CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 'not null' ELSE 'null' END AS nullable \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'"
        }
    };
    diesel::sql_query(sql)
        .load::<Col>(conn)
        .unwrap()
        .into_iter()
        .map(|c| (c.table_name, c.column_name, c.nullable))
        .collect()
}

fn indexes(conn: &mut DbConn) -> BTreeSet<String> {
    let sql = match conn {
        DbConn::Pg(_) => {
            "SELECT indexname::text AS name FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'"
        }
        DbConn::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    };
    let mut names: BTreeSet<String> =
        diesel::sql_query(sql).load::<Idx>(conn).unwrap().into_iter().map(|i| i.name).collect();
    let triggers = match conn {
        DbConn::Pg(_) => "SELECT tgname::text AS name FROM pg_trigger WHERE NOT tgisinternal",
        DbConn::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    };
    names.extend(
        diesel::sql_query(triggers).load::<Idx>(conn).unwrap().into_iter().map(|i| format!("trigger {}", i.name)),
    );
    names
}

#[test]
fn migration_trees_define_the_same_tables_columns_and_indexes() {
    let stores = both();
    let mut lite = stores[0].read(|c| Ok::<_, crate::StoreError>((columns(c), indexes(c)))).unwrap();
    let mut pg = stores[1].read(|c| Ok::<_, crate::StoreError>((columns(c), indexes(c)))).unwrap();
    assert!(lite.0.len() > 100, "expected the full schema, got {} columns", lite.0.len());
    let only_lite: Vec<_> = lite.0.difference(&pg.0).collect();
    let only_pg: Vec<_> = pg.0.difference(&lite.0).collect();
    assert!(only_lite.is_empty() && only_pg.is_empty(), "only in sqlite: {only_lite:?}\nonly in postgres: {only_pg:?}");
    assert!(lite.1.iter().any(|n| n.starts_with("trigger ")), "triggers are compared too");
    assert_eq!(std::mem::take(&mut lite.1), std::mem::take(&mut pg.1), "index or trigger names differ");
}

#[test]
fn migrations_are_idempotent_on_restart() {
    for url in [sqlite_url(), postgres_url()] {
        Store::open(&url, &PoolOptions::default()).unwrap();
        let mut conn = crate::db::connect_once(&url).unwrap();
        run_migrations(&mut conn).unwrap();
        // Opening again applies nothing and fails nothing.
        Store::open(&url, &PoolOptions::default()).unwrap();
    }
}

fn now() -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc()
}

fn customer(id: &str) -> CustomerRow {
    CustomerRow {
        id: id.into(),
        name: "Jane".into(),
        tier: "standard".into(),
        value: 0,
        notes: String::new(),
        merged_into: None,
        created_at: now(),
        updated_at: now(),
        version: 1,
    }
}

#[test]
fn case_numbers_increase_on_both_backends() {
    for store in both() {
        let a = store.write(|c| queries::next_case_number(c).map_err(crate::StoreError::from)).unwrap();
        let b = store.write(|c| queries::next_case_number(c).map_err(crate::StoreError::from)).unwrap();
        assert!(a >= 1001, "{a}");
        assert_eq!(b, a + 1, "{:?}", store.backend());
    }
}

#[test]
fn identity_uniqueness_is_enforced_and_a_failed_transaction_leaves_nothing() {
    for store in both() {
        store.write(|c| queries::customers::insert(c, &customer("c1")).map_err(crate::StoreError::from)).unwrap();
        let ident = |id: &str, cust: &str| IdentityRow {
            id: id.into(),
            customer_id: cust.into(),
            kind: "email".into(),
            value: "jane@example.org".into(),
            created_at: now(),
        };
        store
            .write(|c| queries::customers::insert_identity(c, &ident("i1", "c1")).map_err(crate::StoreError::from))
            .unwrap();
        let err = store
            .write(|c| {
                queries::customers::insert(c, &customer("c2"))?;
                queries::customers::insert_identity(c, &ident("i2", "c2"))?;
                Ok::<_, crate::StoreError>(())
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                crate::StoreError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ))
            ),
            "{err:?}"
        );
        let c2 = store.read(|c| queries::customers::get(c, "c2").map_err(crate::StoreError::from)).unwrap();
        assert!(c2.is_none(), "the customer insert must have been rolled back ({:?})", store.backend());
    }
}

#[test]
fn foreign_keys_are_enforced_on_both_backends() {
    for store in both() {
        let err = store
            .write(|c| {
                queries::customers::insert_identity(
                    c,
                    &IdentityRow {
                        id: "i".into(),
                        customer_id: "missing".into(),
                        kind: "email".into(),
                        value: "x@y.z".into(),
                        created_at: now(),
                    },
                )
                .map_err(crate::StoreError::from)
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                crate::StoreError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    _
                ))
            ),
            "{:?}: {err:?}",
            store.backend()
        );
    }
}

#[test]
fn text_search_treats_wildcards_literally_and_ignores_case() {
    for store in both() {
        store
            .write(|c| {
                queries::customers::insert(c, &customer("c1"))?;
                for (id, n, subject) in
                    [("a", 1, "Refund 100% please"), ("b", 2, "Refund 1000 please"), ("c", 3, "Other")]
                {
                    queries::cases::insert(
                        c,
                        &CaseRow { subject: subject.into(), channel: "api".into(), ..case_row(id, n) },
                    )?;
                }
                Ok::<_, crate::StoreError>(())
            })
            .unwrap();
        let find = |text: &str| {
            let f = queries::cases::CaseFilter { text: Some(text.into()), limit: 10, ..Default::default() };
            let mut ids: Vec<String> = store
                .read(|c| queries::cases::list(c, &f).map_err(crate::StoreError::from))
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(find("100%"), vec!["a"], "{:?}", store.backend());
        assert_eq!(find("REFUND"), vec!["a", "b"], "{:?}", store.backend());
        assert_eq!(find("#3"), vec!["c"], "{:?}", store.backend());
    }
}

#[test]
fn postgres_database_urls_keep_credentials_and_options() {
    // Pure string handling; the database itself is created by the other tests.
    let admin = postgres_admin_url();
    let name = unique_name("cf_url");
    let url = create_postgres_database(&admin, &name).unwrap();
    assert!(url.ends_with(&format!("/{name}")) || url.contains(&format!("/{name}?")), "{url}");
    assert!(create_postgres_database(&admin, "Bad-Name").is_err());
}

fn case_row(id: &str, number: i64) -> CaseRow {
    CaseRow {
        id: id.into(),
        number,
        subject: "Help".into(),
        status: "new".into(),
        priority: "normal".into(),
        channel: "email".into(),
        customer_id: "c1".into(),
        team_id: None,
        assignee_id: None,
        linked_case_id: None,
        created_at: now(),
        updated_at: now(),
        last_message_at: now(),
        first_response_at: None,
        solved_at: None,
        closed_at: None,
        version: 1,
        topic: None,
        waiting_since: Some(now()),
        pinned: false,
    }
}

fn agent_row(id: &str) -> AgentRow {
    AgentRow {
        id: id.into(),
        email: format!("{id}@example.org"),
        name: id.into(),
        role: "agent".into(),
        password_hash: None,
        team_id: None,
        presence: "offline".into(),
        presence_changed_at: now(),
        max_load: 2,
        active: true,
        created_at: now(),
        updated_at: now(),
        last_assigned_at: None,
    }
}

#[test]
fn triggers_leave_a_routing_signal_for_every_change_that_matters_and_taking_them_clears_them() {
    for store in both() {
        // As the router does: read, then remove the versions read, in two transactions.
        let taken = |store: &Store| {
            let seen = store.read(|c| queries::routing::peek_signals(c, 100).map_err(crate::StoreError::from)).unwrap();
            store.write(|c| queries::routing::remove_signals(c, &seen).map_err(crate::StoreError::from)).unwrap();
            let mut s: Vec<(String, String)> = seen.into_iter().map(|(k, r, _)| (k, r)).collect();
            s.sort();
            s
        };
        store
            .write(|c| {
                queries::customers::insert(c, &customer("c1"))?;
                queries::agents::insert(c, &agent_row("a1"))?;
                queries::cases::insert(c, &case_row("k1", 1))?;
                Ok::<_, crate::StoreError>(())
            })
            .unwrap();
        let sig = |k: &str, id: &str| (k.to_owned(), id.to_owned());
        assert_eq!(taken(&store), vec![sig("agent", "a1"), sig("case", "k1")], "{:?}", store.backend());
        assert!(taken(&store).is_empty(), "taking removes them");

        // An agent's presence, skills and capacities; a customer's tier; a case's skills.
        store
            .write(|c| {
                let mut a = agent_row("a1");
                a.presence = "online".into();
                queries::agents::update(c, &a)?;
                queries::routing::set_capacities(
                    c,
                    "a1",
                    &[AgentCapacityRow { agent_id: "a1".into(), channel: "chat".into(), capacity: 3 }],
                )?;
                let mut cu = customer("c1");
                cu.tier = "gold".into();
                queries::customers::update_if_version(c, &cu, 1)?;
                diesel::sql_query("INSERT INTO skills (id, name, description, created_at) VALUES ('s1', 'billing', '', '2027-01-15 08:00:00')")
                    .execute(c)?;
                queries::routing::set_case_skills(
                    c,
                    "k1",
                    &[CaseSkillRow { case_id: "k1".into(), skill_id: "s1".into(), min_level: 2, required: true }],
                )?;
                Ok::<_, crate::StoreError>(())
            })
            .unwrap();
        assert_eq!(
            taken(&store),
            vec![sig("agent", "a1"), sig("case", "k1"), sig("customer", "c1")],
            "{:?}",
            store.backend()
        );
        // Replacing rows fires the delete triggers too (skills and capacities emptied).
        store
            .write(|c| {
                queries::routing::set_capacities(c, "a1", &[])?;
                queries::routing::set_case_skills(c, "k1", &[])?;
                Ok::<_, crate::StoreError>(())
            })
            .unwrap();
        assert_eq!(taken(&store), vec![sig("agent", "a1"), sig("case", "k1")], "{:?}", store.backend());

        // The compare-and-set assignment: once only.
        let first = store
            .write(|c| queries::routing::assign_if_waiting(c, "k1", "a1", now()).map_err(crate::StoreError::from))
            .unwrap();
        let second = store
            .write(|c| queries::routing::assign_if_waiting(c, "k1", "a1", now()).map_err(crate::StoreError::from))
            .unwrap();
        assert!(first, "{:?}", store.backend());
        assert!(!second, "{:?}", store.backend());
        assert_eq!(
            store.read(|c| queries::routing::load(c, "a1", "email").map_err(crate::StoreError::from)).unwrap(),
            1
        );
        assert_eq!(taken(&store), vec![sig("case", "k1")], "{:?}", store.backend());
        let case = store.read(|c| queries::cases::get(c, "k1").map_err(crate::StoreError::from)).unwrap().unwrap();
        assert_eq!((case.assignee_id.as_deref(), case.waiting_since, case.version), (Some("a1"), None, 2));
    }
}

/// The race the signal versions close (PostgreSQL, READ COMMITTED): a writer changes an agent
/// whose signal is already pending, the router reads the signals and removes them while the
/// writer has not committed. The removal waits for the writer, then leaves its newer version:
/// the change is read next round instead of being lost.
#[test]
fn a_signal_changed_by_a_writer_in_flight_survives_the_routers_removal() {
    let url = postgres_url();
    let store = Store::open(&url, &PoolOptions::default()).unwrap();
    store
        .write(|c| {
            queries::agents::insert(c, &agent_row("a1"))?;
            Ok::<_, crate::StoreError>(())
        })
        .unwrap();
    let seen = store.read(|c| queries::routing::peek_signals(c, 10).map_err(crate::StoreError::from)).unwrap();
    assert_eq!(seen.len(), 1);

    // The writer: changes the agent (its trigger bumps the pending signal) and holds the
    // transaction open until told to commit.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (changed, has_changed) = std::sync::mpsc::channel::<()>();
    let writer_url = url.clone();
    let writer = std::thread::spawn(move || {
        let mut conn = crate::db::connect_once(&writer_url).unwrap();
        conn.transaction(|c| {
            let mut a = agent_row("a1");
            a.presence = "online".into();
            queries::agents::update(c, &a)?;
            changed.send(()).unwrap();
            wait.recv().unwrap();
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    });
    has_changed.recv().unwrap();
    // The router removes what it read; this blocks on the writer's row lock.
    let remover_store = store.clone();
    let to_remove = seen.clone();
    let remover = std::thread::spawn(move || {
        remover_store
            .write(|c| queries::routing::remove_signals(c, &to_remove).map_err(crate::StoreError::from))
            .unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    go.send(()).unwrap();
    writer.join().unwrap();
    remover.join().unwrap();
    let left = store.read(|c| queries::routing::peek_signals(c, 10).map_err(crate::StoreError::from)).unwrap();
    assert_eq!(left.len(), 1, "the writer's change must leave its signal: {left:?}");
    assert!(left[0].2 > seen[0].2, "a newer version: {left:?} after {seen:?}");
}

#[test]
fn sla_triggers_make_a_case_due_when_a_deadline_can_move_and_not_otherwise() {
    for store in both() {
        let later = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap();
        let next_at = |store: &Store| {
            store
                .read(|c| queries::sla::case_sla(c, "k1").map_err(crate::StoreError::from))
                .unwrap()
                .and_then(|r| r.next_at)
        };
        // Pretends the scheduler looked at the case and planned its next milestone.
        let plan = |store: &Store| {
            store
                .write(|c| {
                    diesel::update(crate::schema::case_sla::table)
                        .set(crate::schema::case_sla::next_at.eq(Some(later)))
                        .execute(c)
                        .map_err(crate::StoreError::from)
                })
                .unwrap();
        };
        store
            .write(|c| {
                queries::customers::insert(c, &customer("c1"))?;
                queries::cases::insert(c, &case_row("k1", 1))?;
                Ok::<_, crate::StoreError>(())
            })
            .unwrap();
        assert_eq!(next_at(&store), Some(queries::sla::epoch()), "a new case is due: {:?}", store.backend());

        // A whole-row update that changes only the subject: not due.
        plan(&store);
        store
            .write(|c| {
                let mut k = case_row("k1", 1);
                k.subject = "Another subject".into();
                k.version = 2;
                queries::cases::update_if_version(c, &k, 1).map_err(crate::StoreError::from)
            })
            .unwrap();
        assert_eq!(next_at(&store), Some(later), "{:?}", store.backend());
        // The priority: due.
        store
            .write(|c| {
                let mut k = case_row("k1", 1);
                k.subject = "Another subject".into();
                k.priority = "urgent".into();
                k.version = 3;
                queries::cases::update_if_version(c, &k, 2).map_err(crate::StoreError::from)
            })
            .unwrap();
        assert_eq!(next_at(&store), Some(queries::sla::epoch()), "{:?}", store.backend());
        // The customer's tier: due; the customer's name alone: not.
        plan(&store);
        store
            .write(|c| {
                let mut cu = customer("c1");
                cu.name = "Renamed".into();
                cu.version = 2;
                queries::customers::update_if_version(c, &cu, 1).map_err(crate::StoreError::from)
            })
            .unwrap();
        assert_eq!(next_at(&store), Some(later), "{:?}", store.backend());
        store
            .write(|c| {
                let mut cu = customer("c1");
                cu.name = "Renamed".into();
                cu.tier = "gold".into();
                cu.version = 3;
                queries::customers::update_if_version(c, &cu, 2).map_err(crate::StoreError::from)
            })
            .unwrap();
        assert_eq!(next_at(&store), Some(queries::sla::epoch()), "{:?}", store.backend());
        // A message: due.
        plan(&store);
        store
            .write(|c| {
                diesel::sql_query(
                    "INSERT INTO messages (id, case_id, direction, channel, author_kind, body_text, created_at) \
                     VALUES ('m1', 'k1', 'inbound', 'email', 'customer', 'hi', '2027-01-15 08:00:00')",
                )
                .execute(c)
                .map_err(crate::StoreError::from)
            })
            .unwrap();
        assert_eq!(next_at(&store), Some(queries::sla::epoch()), "{:?}", store.backend());
    }
}

#[test]
fn finished_webhook_deliveries_are_purged_in_batches_and_pending_ones_kept() {
    let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    let delivery = |id: &str, status: &str, last: &str| WebhookDeliveryRow {
        id: id.into(),
        subscription_id: "s1".into(),
        event_type: "case.created".into(),
        event_id: format!("e-{id}"),
        case_id: "k1".into(),
        data: "{}".into(),
        event_at: at("2026-01-01 00:00:00"),
        status: status.into(),
        attempts: 1,
        next_attempt_at: at(last),
        last_status: None,
        last_error: None,
        delivered_at: (status == "delivered").then(|| at(last)),
    };
    for store in both() {
        let rows = [
            delivery("old-delivered-1", "delivered", "2026-01-02 00:00:00"),
            delivery("old-delivered-2", "delivered", "2026-01-03 00:00:00"),
            delivery("old-failed", "failed", "2026-01-04 00:00:00"),
            delivery("old-pending", "pending", "2026-01-01 00:00:00"),
            delivery("recent-delivered", "delivered", "2026-03-01 00:00:00"),
        ];
        store
            .write(|c| {
                for r in &rows {
                    diesel::insert_into(crate::schema::webhook_deliveries::table)
                        .values(r)
                        .execute(c)
                        .map_err(crate::StoreError::from)?;
                }
                Ok::<_, crate::StoreError>(())
            })
            .unwrap();
        let cutoff = at("2026-02-01 00:00:00");
        let purge = |batch| {
            store
                .write(|c| queries::webhooks::purge_finished(c, cutoff, batch).map_err(crate::StoreError::from))
                .unwrap()
        };
        assert_eq!(purge(2), 2, "{:?}", store.backend());
        assert_eq!(purge(2), 1, "{:?}", store.backend());
        assert_eq!(purge(2), 0, "{:?}", store.backend());
        let left: Vec<String> = store
            .read(|c| {
                crate::schema::webhook_deliveries::table
                    .select(crate::schema::webhook_deliveries::id)
                    .order(crate::schema::webhook_deliveries::id)
                    .load(c)
                    .map_err(crate::StoreError::from)
            })
            .unwrap();
        assert_eq!(left, ["old-pending", "recent-delivered"], "{:?}", store.backend());
    }
}
