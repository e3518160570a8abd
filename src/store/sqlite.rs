//! The SQLite dialect (embedded default): how to open the file (WAL, foreign keys, a busy
//! timeout), write transactions that take the write lock at once (`BEGIN IMMEDIATE`, with
//! a bounded retry), ids as TEXT, and the few fragments of the store's PostgreSQL-spelled
//! SQL that SQLite reads differently.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Arguments, Sqlite, SqliteExecutor, Transaction};

use super::error::{ConnectError, StoreError};
use super::sql::{bind_all, Arg, Done, Row, Sql, Want};
use crate::config::DatabaseSettings;

/// A SQLite database: its pool, and the turn this process's writers take one at a time.
/// SQLite has one writer; queueing here, in order, is fairer and much faster than 32
/// connections retrying `BEGIN IMMEDIATE` in the busy handler's sleeps.
#[derive(Clone)]
pub(crate) struct Lite {
    pub(crate) pool: SqlitePool,
    writer: Arc<tokio::sync::Mutex<()>>,
    wait: Duration,
}

/// A transaction and, for a writer, its turn (given back when the transaction ends).
pub(crate) struct LiteTx {
    pub(crate) tx: Transaction<'static, Sqlite>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

pub(super) async fn open(url: &str, settings: &DatabaseSettings) -> Result<Lite, ConnectError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_millis(settings.busy_timeout_ms));
    if let Some(dir) = options.get_filename().parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    let wait = Duration::from_millis(settings.busy_timeout_ms);
    Ok(Lite { pool, writer: Arc::default(), wait })
}

impl Lite {
    /// A write transaction: this process's turn to write (waiting at most the busy
    /// timeout), then the database's write lock from the first statement (`BEGIN
    /// IMMEDIATE`: another process, such as the CLI, may hold it; SQLite waits up to the
    /// busy timeout itself, this retries twice more), else [`StoreError::Busy`] (a 503
    /// with `Retry-After`).
    pub(super) async fn begin_write(&self) -> Result<LiteTx, StoreError> {
        let turn = tokio::time::timeout(self.wait, self.writer.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Busy)?;
        let mut attempt = 0;
        loop {
            match self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::from) {
                Err(StoreError::Busy) if attempt < 2 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                other => return other.map(|tx| LiteTx { tx, _turn: Some(turn) }),
            }
        }
    }

    /// A read transaction (one snapshot), which takes no turn.
    pub(super) async fn begin_read(&self) -> Result<LiteTx, StoreError> {
        Ok(LiteTx { tx: self.pool.begin().await?, _turn: None })
    }
}

fn bind(args: Vec<Arg>) -> Result<SqliteArguments, StoreError> {
    bind_all(args, |out: &mut SqliteArguments, arg| match arg {
        Arg::Uuid(v) => out.add(v.map(|u| u.to_string())),
        Arg::Uuids(v) => out.add(serde_json::to_string(&v)?),
        Arg::Texts(v) => out.add(serde_json::to_string(&v)?),
        _ => Ok(()),
    })
}

pub(super) async fn exec<'e>(
    e: impl SqliteExecutor<'e>, sql: &Sql, args: Vec<Arg>, want: Want,
) -> Result<Done, StoreError> {
    let text = sqlite_text(sql);
    let query = sqlx::query_with(sqlx::AssertSqlSafe(text), bind(args)?);
    Ok(match want {
        Want::Rows => Done::Rows(query.fetch_all(e).await?.into_iter().map(Row::Sqlite).collect()),
        Want::Affected => Done::Affected(query.execute(e).await?.rows_affected()),
    })
}

/// A statement's text as SQLite must read it (see `sqlite::dialect`).
fn sqlite_text(sql: &Sql) -> Cow<'static, str> {
    match sql {
        Sql::Static(s) => Cow::Borrowed(dialect(s)),
        Sql::Built(s) => Cow::Owned(rewrite(s)),
    }
}

/// The store's SQL as SQLite reads it: row locks dropped (the write transaction holds
/// the whole database), `= ANY($n)` and `FROM unnest($n::text[]) AS value` read from a
/// JSON array, `$n::type` casts dropped.
pub(crate) fn rewrite(sql: &str) -> String {
    let mut out = sql.replace(" FOR UPDATE SKIP LOCKED", "").replace(" FOR UPDATE", "");
    while let Some(at) = out.find("= ANY($") {
        let rest = &out[at + 7..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let n = rest[..digits].to_string();
        out.replace_range(at..at + 8 + digits, &format!("IN (SELECT value FROM json_each(${n}))"));
    }
    const UNNEST: (&str, &str) = ("unnest($", "::text[]) AS value");
    while let Some(at) = out.find(UNNEST.0) {
        let rest = &out[at + UNNEST.0.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if !rest[digits..].starts_with(UNNEST.1) {
            break;
        }
        let n = rest[..digits].to_string();
        let end = at + UNNEST.0.len() + digits + UNNEST.1.len();
        out.replace_range(at..end, &format!("json_each(${n})"));
    }
    for cast in ["::text", "::timestamptz", "::uuid", "::date", "::bigint"] {
        out = out.replace(cast, "");
    }
    out
}

/// [`rewrite`] for statements written in the source, each rewritten once.
pub(crate) fn dialect(sql: &'static str) -> &'static str {
    static DONE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    done.entry(sql).or_insert_with(|| match rewrite(sql) {
        same if same == sql => sql,
        changed => Box::leak(changed.into_boxed_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn postgres_spelling_becomes_sqlite() {
        assert_eq!(
            rewrite("SELECT * FROM s WHERE id = ANY($2) AND x = $1::text FOR UPDATE"),
            "SELECT * FROM s WHERE id IN (SELECT value FROM json_each($2)) AND x = $1"
        );
        assert_eq!(rewrite("SELECT 1 FOR UPDATE SKIP LOCKED"), "SELECT 1");
        assert_eq!(
            rewrite("INSERT INTO t (a, b) SELECT value, $2 FROM unnest($1::text[]) AS value"),
            "INSERT INTO t (a, b) SELECT value, $2 FROM json_each($1)"
        );
    }
}
