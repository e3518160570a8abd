//! Storage: one [`Store`] over SQLite (embedded default) or PostgreSQL (multi-instance),
//! chosen by the database URL's scheme. Each workflow is written once, in the area files
//! below, over the backend-neutral pool, transaction and row of [`db`]; `sqlite.rs` and
//! `postgres.rs` hold only what differs (opening, id encoding, locking, notifications).
//! Methods take and return domain types; nothing outside this module sees SQL.

pub mod blobs;
mod db;
mod postgres;
mod rows;
mod sqlite;

mod accounts;
mod audit;
mod live;
mod mentorship;
mod outbox;
mod outcomes;
mod patients;
mod reports;
mod schedule;

pub use self::patients::PatientCorrection;
pub use self::schedule::CancelPlan;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::error::DatabaseError as _;
use uuid::Uuid;

use crate::config::DatabaseSettings;
use crate::domain::conflict::Conflict;
use crate::domain::live::Attendance;
use crate::domain::{Case, OutcomeVersion, ParseError, Session, UserId};

pub(crate) use self::db::{Db, Tx};

/// The store, shared by every handler and task.
pub type DynStore = Arc<Store>;

/// The one storage implementation; see the area modules for its methods.
pub struct Store {
    db: Db,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A rule held by the data: duplicate, full, closed…
    #[error(transparent)]
    Conflict(Conflict),
    /// A reference to data that does not exist (e.g. an unknown specialty).
    #[error("{0}")]
    Invalid(ParseError),
    /// The booking's NHS number is on record with another name or date of birth
    /// (`domain::patient::reconcile`); the record is carried for whoever may see it.
    #[error("the patient's details differ from the record for this NHS number")]
    PatientConflict(Box<crate::domain::patient::PatientConflict>),
    /// A database constraint refused the write (mapped in `db::violation`); callers
    /// turn the ones they expect into a [`Conflict`].
    #[error("the database refused the change: {0:?}")]
    Violation(db::Violation),
    /// The database stayed locked after the bounded wait (SQLite) or the pool is exhausted.
    #[error("database busy")]
    Busy,
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<Conflict> for StoreError {
    fn from(c: Conflict) -> Self {
        StoreError::Conflict(c)
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: &str) -> Self {
        Self::Database(sqlx::Error::Decode(format!("stored value out of range: {what}").into()))
    }

    /// Whether the database's unique key `key` refused the write.
    pub(crate) fn is_unique(&self, key: db::Unique) -> bool {
        matches!(self, StoreError::Violation(db::Violation::Unique(k)) if *k == key)
    }

    pub(crate) fn is_foreign_key(&self) -> bool {
        matches!(self, StoreError::Violation(db::Violation::ForeignKey))
    }
}

/// A foreign-key refusal means the write named something that does not exist:
/// `422 unknown_reference` on `field`.
pub(crate) fn or_unknown<T>(
    done: Result<T, StoreError>, field: &'static str, message: &'static str,
) -> Result<T, StoreError> {
    match done {
        Err(e) if e.is_foreign_key() => {
            Err(StoreError::Invalid(ParseError::new("unknown_reference", field, message)))
        }
        other => other,
    }
}

/// What a session or series that names an unknown specialty or chair is told.
pub(crate) const UNKNOWN_SPECIALTY_OR_CHAIR: &str = "the specialty or chair does not exist";

/// PostgreSQL states that mean "try again shortly": serialization failure, deadlock,
/// lock not available, too many connections.
const PG_RETRYABLE: [&str; 4] = ["40001", "40P01", "55P03", "53300"];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let busy = match &e {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with or without extended codes.
                Some(lite) => lite
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| c & 0xff == 5 || c & 0xff == 6),
                None => db.code().is_some_and(|c| PG_RETRYABLE.contains(&c.as_ref())),
            },
            _ => false,
        };
        if busy {
            tracing::warn!(error = %e, "database busy");
            return StoreError::Busy;
        }
        match &e {
            sqlx::Error::Database(db) => match db::violation(db.as_ref()) {
                Some(v) => StoreError::Violation(v),
                None => StoreError::Database(e),
            },
            _ => StoreError::Database(e),
        }
    }
}

/// What login needs, in one query, before anything else about the account is loaded.
#[derive(Clone)]
pub struct Credentials {
    pub user_id: UserId,
    pub password_hash: String,
    pub active: bool,
}

/// A refresh token as stored: only its hash, its family and its lifetime.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: Uuid,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now used and `next` replaces it in the same family.
    Rotated { user_id: UserId, family_id: Uuid },
    /// The token had already been used: the whole family is now revoked.
    Reused { user_id: UserId, family_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
}

/// One session in a person's attendance record.
#[derive(Clone, Debug)]
pub struct AttendedSession {
    pub session: Session,
    /// The person's stays (a new row each time they joined).
    pub stays: Vec<Attendance>,
    /// The cases discussed (in discussion, discussed or signed), in agenda order.
    pub cases: Vec<Case>,
}

/// Receives cross-instance notifications (PostgreSQL `LISTEN`): a session has events up
/// to `seq`; or the listening connection went down or came back.
pub trait LiveSignal: Send + Sync {
    fn event(&self, session_id: Uuid, seq: u64);
    fn listening(&self, up: bool);
}

/// The notification channel the instances share.
pub(crate) const LIVE_CHANNEL: &str = "mdt_live";

/// What signing an outcome did.
#[derive(Clone, Debug)]
pub struct SignedOutcome {
    pub version: OutcomeVersion,
    /// The case booked by a `re_discuss` follow-up.
    pub follow_up_case: Option<Case>,
}

/// The result of a booking request.
#[derive(Clone, Debug)]
pub struct Booked {
    pub case: Case,
    /// True when an earlier request with the same idempotency key made this booking.
    pub replayed: bool,
}

/// What cancelling a session did.
#[derive(Clone, Debug)]
pub struct Cancelled {
    pub session: Session,
    /// (old case id, new case) for each case moved to the next session of the series.
    pub moved: Vec<(Uuid, Case)>,
    /// Cases left for the referrer to rebook.
    pub flagged: Vec<Uuid>,
}

/// Why the configured database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL scheme \"{0}\": use sqlite:// or postgres://")]
    UnsupportedScheme(String),
    #[error("cannot open the database: {0}")]
    Open(#[from] sqlx::Error),
    #[error("cannot prepare the database directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] StoreError),
}

/// Opens the backend named by the URL's scheme and runs its migrations.
pub async fn connect(settings: &DatabaseSettings) -> Result<DynStore, ConnectError> {
    let url = settings.url.expose_secret();
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    let db = match scheme {
        "sqlite" => Db::Sqlite(sqlite::open(url, settings).await?),
        "postgres" | "postgresql" => Db::Postgres(postgres::open(url, settings).await?),
        other => return Err(ConnectError::UnsupportedScheme(other.to_string())),
    };
    let store = Store { db };
    store.migrate().await?;
    Ok(Arc::new(store))
}

impl Store {
    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        if self.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Whether several server instances may share this database (PostgreSQL), so live
    /// rooms must follow each other's events.
    pub fn serves_many_instances(&self) -> bool {
        self.db.is_postgres()
    }

    /// Runs this backend's pending migrations.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrated = match &self.db {
            Db::Sqlite(lite) => sqlx::migrate!("./migrations/sqlite").run(&lite.pool).await,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        migrated.map_err(|e| StoreError::Database(e.into()))
    }

    /// A round trip to the database (readiness).
    #[tracing::instrument(skip_all)]
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.run("SELECT 1", vec![]).await.map(|_| ())
    }

    /// Starts delivering other instances' event notifications to `signal`; false when
    /// the backend has none (SQLite serves one instance).
    pub fn watch_live(&self, signal: Arc<dyn LiveSignal>) -> bool {
        match &self.db {
            Db::Sqlite(_) => false,
            Db::Postgres(pool) => {
                tokio::spawn(postgres::listen_live(pool.clone(), signal));
                true
            }
        }
    }
}

/// Builds database settings for a URL with the defaults for the rest (tests, CLI).
pub fn settings_for(url: &str) -> DatabaseSettings {
    DatabaseSettings { url: SecretString::from(url), max_connections: 10, busy_timeout_ms: 5000 }
}

/// Runs a workflow that plans from what it reads and then applies the plan (composing
/// mail in between) again while what it read changed before the plan could be applied
/// (`409 changed_meanwhile`), up to three times.
pub async fn until_unchanged<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(StoreError::Conflict(Conflict::Changed)) if tries < 2 => tries += 1,
            other => return other,
        }
    }
}
