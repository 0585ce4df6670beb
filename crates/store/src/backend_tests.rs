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
    diesel::sql_query(sql).load::<Idx>(conn).unwrap().into_iter().map(|i| i.name).collect()
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
    assert_eq!(std::mem::take(&mut lite.1), std::mem::take(&mut pg.1), "index names differ");
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
                        &CaseRow {
                            id: id.into(),
                            number: n,
                            subject: subject.into(),
                            status: "new".into(),
                            priority: "normal".into(),
                            channel: "api".into(),
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
                        },
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
