//! The PostgreSQL dialect (multi-instance deployments): native `uuid` ids, arrays for
//! lists, the transaction-scoped advisory lock that keeps the audit chain linear,
//! read-only snapshots, and `LISTEN/NOTIFY` between instances.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions};
use sqlx::{Arguments, PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::error::{ConnectError, StoreError};
use super::sql::{bind_all, Arg, Done, Row, Sql, Want};
use crate::config::DatabaseSettings;

/// Receives cross-instance notifications (PostgreSQL `LISTEN`): a session has events up
/// to `seq`; or the listening connection went down or came back.
pub trait LiveSignal: Send + Sync {
    fn event(&self, session_id: Uuid, seq: u64);
    fn listening(&self, up: bool);
}

/// The notification channel the instances share.
pub(crate) const LIVE_CHANNEL: &str = "mdt_live";

/// Key of the advisory lock that serialises audit appends.
const AUDIT_CHAIN_LOCK: i64 = 0x4d44_545f_4155_4454;

pub(super) async fn open(url: &str, settings: &DatabaseSettings) -> Result<PgPool, ConnectError> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

fn bind(args: Vec<Arg>) -> Result<PgArguments, StoreError> {
    bind_all(args, |out: &mut PgArguments, arg| match arg {
        Arg::Uuid(v) => out.add(v),
        Arg::Uuids(v) => out.add(v),
        Arg::Texts(v) => out.add(v),
        _ => Ok(()),
    })
}

pub(super) async fn exec<'e>(
    e: impl PgExecutor<'e>, sql: &Sql, args: Vec<Arg>, want: Want,
) -> Result<Done, StoreError> {
    let query = match sql {
        Sql::Static(s) => sqlx::query_with(*s, bind(args)?),
        Sql::Built(s) => sqlx::query_with(sqlx::AssertSqlSafe(s.clone()), bind(args)?),
    };
    Ok(match want {
        Want::Rows => {
            Done::Rows(query.fetch_all(e).await?.into_iter().map(Row::Postgres).collect())
        }
        Want::Affected => Done::Affected(query.execute(e).await?.rows_affected()),
    })
}

pub(super) async fn lock_audit_chain(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_CHAIN_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn begin_snapshot(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Delivers other instances' event notifications to `signal`, reconnecting after a loss.
pub(super) async fn listen_live(pool: PgPool, signal: Arc<dyn LiveSignal>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(LIVE_CHANNEL).await {
                Ok(()) => {
                    signal.listening(true);
                    // `try_recv` answers `None` when the connection is lost.
                    while let Ok(Some(note)) = listener.try_recv().await {
                        if let Some((session, seq)) = note.payload().split_once(':') {
                            if let (Ok(session), Ok(seq)) = (session.parse(), seq.parse()) {
                                signal.event(session, seq);
                            }
                        }
                    }
                    tracing::warn!("live notifications lost; polling until they return");
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for live notifications"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for live notifications"),
        }
        signal.listening(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
