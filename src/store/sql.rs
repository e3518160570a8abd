//! What the store's statements are made of, alike for both backends: their text, their
//! arguments as plain values (`args![..]`), the rows they return and the column types read
//! from them.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::{Encode, Type};
use uuid::Uuid;

use super::error::StoreError;
use crate::domain::UserId;

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
    ($($a:expr),* $(,)?) => { vec![$($crate::store::sql::Arg::from($a)),*] };
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
