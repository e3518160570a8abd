//! The seam between the one store and its two backends: a pool, a transaction and a row
//! that are SQLite or PostgreSQL underneath, statement arguments as plain values, and
//! database refusals mapped to what they mean. The store's SQL is written once, in
//! PostgreSQL's spelling; `sqlite.rs` adapts the few fragments SQLite spells differently.

use uuid::Uuid;

use super::error::StoreError;
use super::sql::{args, Arg, Done, Row, Sql, Want};
use super::{postgres, sqlite};

/// A connection pool of either backend.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(sqlite::Lite),
    Postgres(sqlx::PgPool),
}

/// An open transaction of either backend.
pub(crate) enum Tx {
    Sqlite(sqlite::LiteTx),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Db {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    async fn exec(&self, sql: Sql, args: Vec<Arg>, want: Want) -> Result<Done, StoreError> {
        match self {
            Db::Sqlite(lite) => sqlite::exec(&lite.pool, &sql, args, want).await,
            Db::Postgres(pool) => postgres::exec(pool, &sql, args, want).await,
        }
    }

    /// A write transaction: SQLite takes the database's write lock at once (with a
    /// bounded retry); PostgreSQL relies on row locks taken by the statements.
    pub(crate) async fn write(&self) -> Result<Tx, StoreError> {
        match self {
            Db::Sqlite(lite) => Ok(Tx::Sqlite(lite.begin_write().await?)),
            Db::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
        }
    }

    /// A read-only transaction that sees one consistent snapshot.
    pub(crate) async fn snapshot(&self) -> Result<Tx, StoreError> {
        match self {
            Db::Sqlite(lite) => Ok(Tx::Sqlite(lite.begin_read().await?)),
            Db::Postgres(pool) => Ok(Tx::Postgres(postgres::begin_snapshot(pool).await?)),
        }
    }
}

impl Tx {
    async fn exec(&mut self, sql: Sql, args: Vec<Arg>, want: Want) -> Result<Done, StoreError> {
        match self {
            Tx::Sqlite(lite) => sqlite::exec(&mut *lite.tx, &sql, args, want).await,
            Tx::Postgres(tx) => postgres::exec(&mut **tx, &sql, args, want).await,
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(lite) => lite.tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Serialises audit appends for the rest of the transaction (PostgreSQL's advisory
    /// lock; SQLite's write transaction already excludes every other writer).
    pub(crate) async fn lock_audit_chain(&mut self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(_) => Ok(()),
            Tx::Postgres(tx) => postgres::lock_audit_chain(tx).await,
        }
    }

    /// Locks session rows in id order (PostgreSQL; SQLite's writer holds them all), so
    /// writers touching several sessions never deadlock.
    pub(crate) async fn lock_sessions(&mut self, ids: &[Uuid]) -> Result<(), StoreError> {
        if self.is_postgres() {
            self.all(
                "SELECT id FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                args![ids],
            )
            .await?;
        }
        Ok(())
    }

    /// Tells the other instances, on commit, that a session has events up to `seq`
    /// (PostgreSQL `NOTIFY`; a SQLite database serves one instance).
    pub(crate) async fn notify_live(
        &mut self, session_id: Uuid, seq: u64,
    ) -> Result<(), StoreError> {
        if self.is_postgres() {
            self.run(
                "SELECT pg_notify($1, $2)",
                args![postgres::LIVE_CHANNEL, format!("{session_id}:{seq}")],
            )
            .await?;
        }
        Ok(())
    }
}

/// The four ways the store runs a statement, on the pool or in a transaction.
macro_rules! statement_methods {
    ($t:ty, [$($r:tt)*] $s:ident) => {
        impl $t {
            pub(crate) async fn all(
                $($r)* $s,
                sql: impl Into<Sql>,
                args: Vec<Arg>,
            ) -> Result<Vec<Row>, StoreError> {
                match $s.exec(sql.into(), args, Want::Rows).await? {
                    Done::Rows(rows) => Ok(rows),
                    Done::Affected(_) => Ok(Vec::new()),
                }
            }

            pub(crate) async fn opt(
                $($r)* $s,
                sql: impl Into<Sql>,
                args: Vec<Arg>,
            ) -> Result<Option<Row>, StoreError> {
                Ok($s.all(sql, args).await?.into_iter().next())
            }

            pub(crate) async fn one(
                $($r)* $s,
                sql: impl Into<Sql>,
                args: Vec<Arg>,
            ) -> Result<Row, StoreError> {
                $s.opt(sql, args)
                    .await?
                    .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
            }

            /// Runs a statement; how many rows it changed.
            pub(crate) async fn run(
                $($r)* $s,
                sql: impl Into<Sql>,
                args: Vec<Arg>,
            ) -> Result<u64, StoreError> {
                match $s.exec(sql.into(), args, Want::Affected).await? {
                    Done::Affected(n) => Ok(n),
                    Done::Rows(rows) => Ok(rows.len() as u64),
                }
            }
        }
    };
}
statement_methods!(Db, [&] self);
statement_methods!(Tx, [&mut] self);
