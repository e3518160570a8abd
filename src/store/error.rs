//! Why a store call failed: [`StoreError`], with database refusals mapped to what they
//! mean in one place (busy, a unique key, a missing reference), and why the database could
//! not be opened.

use sqlx::error::DatabaseError;

use crate::domain::conflict::Conflict;
use crate::domain::ParseError;

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
    /// A database constraint refused the write (mapped in `violation`); callers
    /// turn the ones they expect into a [`Conflict`].
    #[error("the database refused the change: {0:?}")]
    Violation(Violation),
    /// The database stayed locked after the bounded wait (SQLite), the pool is exhausted,
    /// or the database cannot be reached for now (a restart): a 503 with `Retry-After`.
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

/// An invitation the rules refuse (`domain::invitation`): `422` or `409`.
impl From<crate::domain::invitation::Refusal> for StoreError {
    fn from(r: crate::domain::invitation::Refusal) -> Self {
        match r {
            crate::domain::invitation::Refusal::Invalid(e) => StoreError::Invalid(e),
            crate::domain::invitation::Refusal::Conflict(c) => StoreError::Conflict(c),
        }
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: &str) -> Self {
        Self::Database(sqlx::Error::Decode(format!("stored value out of range: {what}").into()))
    }

    /// Whether the database's unique key `key` refused the write.
    pub(crate) fn is_unique(&self, key: Unique) -> bool {
        matches!(self, StoreError::Violation(Violation::Unique(k)) if *k == key)
    }

    pub(crate) fn is_foreign_key(&self) -> bool {
        matches!(self, StoreError::Violation(Violation::ForeignKey))
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
/// lock not available, too many connections, and a server shutting down or starting up
/// (admin or crash shutdown, cannot connect now).
const PG_RETRYABLE: [&str; 7] = ["40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03"];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let busy = match &e {
            // The pool waited in vain, or the connection to the database was refused or
            // cut (a restart): both pass, so the request is worth repeating shortly.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
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
            sqlx::Error::Database(db) => match violation(db.as_ref()) {
                Some(v) => StoreError::Violation(v),
                None => StoreError::Database(e),
            },
            _ => StoreError::Database(e),
        }
    }
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
    BankHolidayDay,
    Other,
}

const UNIQUE_KEYS: [(Unique, &str, &str); 7] = [
    (Unique::SpecialtySlug, "specialties_pkey", "specialties.slug"),
    (Unique::UserEmail, "users_email_key", "users.email"),
    (Unique::BookingIdempotency, "cases_idempotency", "cases.idempotency_key"),
    (Unique::PatientInSession, "cases_patient_once_per_session", "cases.nhs_number"),
    (Unique::EventCommand, "session_events_command", "session_events.command_id"),
    (Unique::EventSeq, "session_events_pkey", "session_events.seq"),
    (Unique::BankHolidayDay, "bank_holidays_pkey", "bank_holidays.day"),
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

/// Why a backup or a restore (`store::backup`) was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "backup and restore copy a SQLite database; back up PostgreSQL with pg_dump and \
         pg_restore as README.md (\"Back up and restore\") describes"
    )]
    Postgres,
    #[error("unsupported database URL scheme \"{0}\": use sqlite:// or postgres://")]
    UnsupportedScheme(String),
    #[error("{0} already exists: back up to a new file")]
    Exists(std::path::PathBuf),
    #[error("{0} is not empty: stop the service and pass --force to replace it")]
    NotEmpty(std::path::PathBuf),
    #[error("{0} is not an MDT Coordinator backup")]
    NotABackup(std::path::PathBuf),
    #[error("attachment {0} is missing from the attachment store")]
    MissingAttachment(String),
    #[error("attachment {0} does not match its digest")]
    DamagedAttachment(String),
    #[error(
        "the backup's audit chain is broken at event {seq} ({checked} events checked); \
         nothing was replaced"
    )]
    BrokenChain { seq: i64, checked: u64 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_busy_not_a_bug() {
        for kind in [std::io::ErrorKind::ConnectionRefused, std::io::ErrorKind::ConnectionReset] {
            let cut = sqlx::Error::Io(std::io::Error::new(kind, "restarting"));
            assert!(matches!(StoreError::from(cut), StoreError::Busy));
        }
        assert!(matches!(StoreError::from(sqlx::Error::PoolTimedOut), StoreError::Busy));
        assert!(matches!(StoreError::from(sqlx::Error::RowNotFound), StoreError::Database(_)));
    }
}
