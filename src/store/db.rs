//! The seam between the one store and its two backends: a pool, a transaction and a row
//! that are SQLite or PostgreSQL underneath, statement arguments as plain values, and
//! database refusals mapped to what they mean. The store's SQL is written once, in
//! PostgreSQL's spelling; `sqlite.rs` adapts the few fragments SQLite spells differently.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::error::DatabaseError;
use sqlx::{Encode, Type};
use uuid::Uuid;

use super::{postgres, sqlite, StoreError};
use crate::domain::UserId;

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

/// A fetched row of either backend; columns are read with [`Row::get`].
pub(crate) enum Row {
    Sqlite(sqlx::sqlite::SqliteRow),
    Postgres(sqlx::postgres::PgRow),
}

/// A statement's text: written in the source, or built for a variable number of rows.
pub(crate) enum Sql {
    Static(&'static str),
    Built(String),
}

impl From<&'static str> for Sql {
    fn from(s: &'static str) -> Self {
        Sql::Static(s)
    }
}

impl From<String> for Sql {
    fn from(s: String) -> Self {
        Sql::Built(s)
    }
}

/// One statement argument. Ids are encoded per backend (TEXT in SQLite, `uuid` in
/// PostgreSQL); a list is bound as an array (PostgreSQL) or as JSON text (SQLite).
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i32>),
    BigInt(Option<i64>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    TimeOfDay(Option<NaiveTime>),
    Uuids(Vec<Uuid>),
    Texts(Vec<String>),
}

macro_rules! arg_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Self { Arg::$v(Some(v.into())) }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Self { Arg::$v(v.map(Into::into)) }
        }
    )*};
}
arg_from!(Uuid => Uuid, UserId => Uuid, String => Text, &str => Text, &String => Text,
    i32 => Int, i64 => BigInt, DateTime<Utc> => Time, NaiveDate => Date, NaiveTime => TimeOfDay);

impl From<UserId> for Uuid {
    fn from(u: UserId) -> Self {
        u.0
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::BigInt(Some(i64::from(v)))
    }
}

impl From<&[Uuid]> for Arg {
    fn from(v: &[Uuid]) -> Self {
        Arg::Uuids(v.to_vec())
    }
}

impl From<Vec<String>> for Arg {
    fn from(v: Vec<String>) -> Self {
        Arg::Texts(v)
    }
}

/// `args![a, b]`: the arguments `$1, $2` of a statement.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::store::db::Arg::from($a)),*] };
}
pub(crate) use args;

/// What a statement should give back.
#[derive(Clone, Copy)]
pub(crate) enum Want {
    Rows,
    Affected,
}

/// Rows fetched or rows changed.
pub(crate) enum Done {
    Rows(Vec<Row>),
    Affected(u64),
}

/// A unique key that writers rely on to refuse a duplicate, named once for both
/// backends: PostgreSQL reports the constraint, SQLite the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    SpecialtySlug,
    UserEmail,
    BookingIdempotency,
    PatientInSession,
    EventCommand,
    EventSeq,
    Other,
}

const UNIQUE_KEYS: [(Unique, &str, &str); 6] = [
    (Unique::SpecialtySlug, "specialties_pkey", "specialties.slug"),
    (Unique::UserEmail, "users_email_key", "users.email"),
    (Unique::BookingIdempotency, "cases_idempotency", "cases.idempotency_key"),
    (Unique::PatientInSession, "cases_patient_once_per_session", "cases.nhs_number"),
    (Unique::EventCommand, "session_events_command", "session_events.command_id"),
    (Unique::EventSeq, "session_events_pkey", "session_events.seq"),
];

/// A refusal by the database's own constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    Unique(Unique),
    ForeignKey,
}

/// Classifies a database refusal: the one place constraint errors are recognised.
pub(crate) fn violation(e: &dyn DatabaseError) -> Option<Violation> {
    use sqlx::error::ErrorKind;
    match e.kind() {
        ErrorKind::ForeignKeyViolation => Some(Violation::ForeignKey),
        ErrorKind::UniqueViolation => {
            let key = UNIQUE_KEYS.iter().find(|(_, constraint, columns)| {
                e.constraint() == Some(*constraint) || e.message().contains(columns)
            });
            Some(Violation::Unique(key.map_or(Unique::Other, |k| k.0)))
        }
        _ => None,
    }
}

/// A column type the store reads, decoded the same way from either backend.
pub(crate) trait Column: Sized {
    fn read(row: &Row, name: &str) -> Result<Self, sqlx::Error>;
}

macro_rules! plain_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn read(row: &Row, name: &str) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                match row {
                    Row::Sqlite(r) => r.try_get(name),
                    Row::Postgres(r) => r.try_get(name),
                }
            }
        }
    )*};
}
plain_column!(
    String,
    Option<String>,
    i32,
    Option<i32>,
    i64,
    Option<i64>,
    bool,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    NaiveDate,
    Option<NaiveDate>,
    NaiveTime
);

impl Column for Option<Uuid> {
    fn read(row: &Row, name: &str) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        match row {
            Row::Sqlite(r) => r
                .try_get::<Option<String>, _>(name)?
                .map(|s| Uuid::parse_str(&s))
                .transpose()
                .map_err(|e| sqlx::Error::ColumnDecode {
                    index: name.to_string(),
                    source: e.into(),
                }),
            Row::Postgres(r) => r.try_get(name),
        }
    }
}

impl Column for Uuid {
    fn read(row: &Row, name: &str) -> Result<Self, sqlx::Error> {
        Option::<Uuid>::read(row, name)?.ok_or_else(|| sqlx::Error::ColumnDecode {
            index: name.to_string(),
            source: "unexpected NULL".into(),
        })
    }
}

impl Column for UserId {
    fn read(row: &Row, name: &str) -> Result<Self, sqlx::Error> {
        Uuid::read(row, name).map(UserId)
    }
}

impl Column for Option<UserId> {
    fn read(row: &Row, name: &str) -> Result<Self, sqlx::Error> {
        Ok(Option::<Uuid>::read(row, name)?.map(UserId))
    }
}

impl Row {
    pub(crate) fn get<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        Ok(T::read(self, name)?)
    }
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
                args![super::LIVE_CHANNEL, format!("{session_id}:{seq}")],
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

/// Binds `args` in order: the kinds both backends encode alike here, ids and lists by
/// `special`, each backend's own encoding.
pub(crate) fn bind_all<A>(
    args: Vec<Arg>, special: impl Fn(&mut A, Arg) -> Result<(), sqlx::error::BoxDynError>,
) -> Result<A, StoreError>
where
    A: sqlx::Arguments,
    for<'t> Option<String>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<i32>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<i64>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> bool: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<DateTime<Utc>>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<NaiveDate>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<NaiveTime>: Encode<'t, A::Database> + Type<A::Database>,
{
    let mut out = A::default();
    for arg in args {
        match arg {
            Arg::Text(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::BigInt(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Time(v) => out.add(v),
            Arg::Date(v) => out.add(v),
            Arg::TimeOfDay(v) => out.add(v),
            special_kind => special(&mut out, special_kind),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// `($1, $2, $3), ($4, $5, $6)…`: the VALUES list of a multi-row insert.
pub(crate) fn values_list(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> =
                (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement's text as SQLite must read it (see `sqlite::dialect`).
pub(crate) fn sqlite_text(sql: &Sql) -> Cow<'static, str> {
    match sql {
        Sql::Static(s) => Cow::Borrowed(sqlite::dialect(s)),
        Sql::Built(s) => Cow::Owned(sqlite::rewrite(s)),
    }
}
