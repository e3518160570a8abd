//! Upgrading a live database: one made by release 0.1 (commit f965378), its migrations
//! and its data, opens with this code and keeps every row, every signed outcome and an
//! intact audit chain, and still takes new writes on that chain. The release's dumps and
//! what they must contain (`expected.json`, computed from the release's own databases) are
//! in `tests/fixtures/release-0.1/`; they are never regenerated with newer code.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Row};
use uuid::Uuid;

use mdt_coordinator::domain::NewAuditEvent;

use crate::common::{Backend, TestDb};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release-0.1");

fn folder(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// What the release's database held, for this backend.
fn expected(backend: Backend) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURE}/expected.json")).unwrap();
    let mut all: Value = serde_json::from_str(&text).unwrap();
    all["backends"][folder(backend)].take()
}

/// The release's dump as SQL one `raw_sql` call runs. pg_dump's `\restrict` and
/// `\unrestrict` lines are psql meta-commands, not SQL, so they are left out.
fn release_dump(backend: Backend) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURE}/{}.sql", folder(backend))).unwrap();
    text.lines().filter(|line| !line.starts_with('\\')).collect::<Vec<_>>().join("\n")
}

/// Loads the dump into the empty database behind the store's back, as a restore would.
async fn restore(db: &TestDb) {
    let sql = sqlx::raw_sql(AssertSqlSafe(release_dump(db.backend)));
    match db.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            sql.execute(&mut conn).await.expect("the SQLite dump loads");
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sql.execute(&mut conn).await.expect("the PostgreSQL dump loads");
            conn.close().await.unwrap();
        }
    }
}

/// Each table's row count now, and the applied migrations, by raw SQL.
async fn counts(db: &TestDb, tables: &[&str]) -> (BTreeMap<String, i64>, Vec<i64>) {
    macro_rules! count_with {
        ($conn:expr) => {{
            let mut conn = $conn;
            let mut counts = BTreeMap::new();
            for table in tables {
                let row =
                    sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM \"{table}\"")))
                        .fetch_one(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("table {table} after the upgrade: {e}"));
                counts.insert(table.to_string(), row.get::<i64, _>("n"));
            }
            let migrations =
                sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<i64, _>("version"))
                    .collect();
            (counts, migrations)
        }};
    }
    match db.backend {
        Backend::Sqlite => count_with!(sqlx::SqliteConnection::connect(&db.url).await.unwrap()),
        Backend::Postgres => count_with!(sqlx::PgConnection::connect(&db.url).await.unwrap()),
    }
}

fn user_id(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

async fn a_release_0_1_database_upgrades_without_losing_anything(backend: Backend) {
    let expected = expected(backend);
    let db = TestDb::new(backend).await.expect("backend available");
    restore(&db).await;
    // Opening runs this code's migrations over the release's.
    let store = db.store().await;

    // No table lost a row (new migrations may add rows, never drop them).
    let tables: Vec<&str> =
        expected["tables"].as_object().unwrap().keys().map(String::as_str).collect();
    assert!(tables.len() > 20, "the manifest lists every table");
    let (now, migrations) = counts(&db, &tables).await;
    for (table, before) in expected["tables"].as_object().unwrap() {
        let before = before.as_i64().unwrap();
        assert!(
            now[table] >= before,
            "{table}: {before} rows in release 0.1, {} after the upgrade",
            now[table]
        );
    }
    for version in expected["migrations"].as_array().unwrap() {
        assert!(
            migrations.contains(&version.as_i64().unwrap()),
            "release migration {version} no longer recorded as applied: {migrations:?}"
        );
    }

    // Every case reads back through the store.
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for id in cases {
        let id: Uuid = id.as_str().unwrap().parse().unwrap();
        let case = store.case(id).await.unwrap();
        assert_eq!(case.map(|c| c.id), Some(id), "case {id} after the upgrade");
    }

    // Every outcome keeps every version, its author, its signer and whether it is signed.
    let outcomes = expected["outcomes"].as_array().unwrap();
    let signed = outcomes.iter().filter(|o| o["signed"] == true).count();
    let amended = outcomes.iter().filter(|o| o["latest_version"] == 2).count();
    assert_eq!((outcomes.len(), signed, amended), (4, 3, 1));
    for outcome in outcomes {
        let case_id: Uuid = outcome["case_id"].as_str().unwrap().parse().unwrap();
        let stored = store.outcome_versions(case_id).await.unwrap();
        let want = outcome["versions"].as_array().unwrap();
        assert_eq!(stored.len(), want.len(), "outcome versions of case {case_id}");
        for (got, want) in stored.iter().zip(want) {
            let what = format!("case {case_id} version {}", want["version"]);
            assert_eq!(u64::from(got.version), want["version"].as_u64().unwrap(), "{what}");
            assert_eq!(
                Some(got.author_id.to_string()),
                user_id(&want["author_id"]),
                "{what}: author"
            );
            assert_eq!(
                got.signed_by.map(|u| u.to_string()),
                user_id(&want["signed_by"]),
                "{what}: signer"
            );
            assert_eq!(got.is_signed(), want["signed"].as_bool().unwrap(), "{what}: signed");
            assert_eq!(
                got.supersedes.map(u64::from),
                want["supersedes"].as_u64(),
                "{what}: supersedes"
            );
        }
    }

    // The audit chain is whole, as long as it was, and ends where it ended.
    let length = expected["audit"]["length"].as_u64().unwrap();
    let tail_seq = expected["audit"]["tail_seq"].as_i64().unwrap();
    let tail_hash = expected["audit"]["tail_hash"].as_str().unwrap();
    let verified = store.verify_audit().await.unwrap();
    assert!(verified.is_intact(), "{verified:?}");
    assert_eq!(verified.rows_checked, length);
    let events = store.audit_events().await.unwrap();
    let tail = events.iter().find(|e| e.seq == tail_seq).unwrap();
    assert_eq!(tail.hash, tail_hash);

    // A write after the upgrade continues that chain.
    let next = store.append_audit(NewAuditEvent::new("upgrade_checked", "system")).await.unwrap();
    assert_eq!(next.prev_hash, events.last().unwrap().hash);
    assert!(next.seq > tail_seq);
    let verified = store.verify_audit().await.unwrap();
    assert!(verified.is_intact(), "{verified:?}");
    assert_eq!(verified.rows_checked, length + 1);
}

crate::on_both_backends!(a_release_0_1_database_upgrades_without_losing_anything);
