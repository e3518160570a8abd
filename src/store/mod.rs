//! Storage: the [`Store`] trait and its two backends, SQLite (embedded default) and
//! PostgreSQL (multi-instance), chosen from the database URL's scheme. Methods take and
//! return domain types; each backend keeps its own SQL and migrations
//! (`migrations/sqlite`, `migrations/postgres`). Nothing outside this module sees SQL.

pub mod blobs;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::error::DatabaseError as _;
use uuid::Uuid;

use crate::config::DatabaseSettings;
use crate::domain::audit::{verify_chain, AuditQuery};
use crate::domain::live::{Attendance, EventBody, LiveEvent, NewLiveEvent};
use crate::domain::mentorship::{
    Contract, DateRange, MentorshipFlag, MentorshipKind, MentorshipLog,
};
use crate::domain::report::{ActivityData, CaseRow, ReportQuery, SessionRow};
use crate::domain::schedule::SessionPlan;
use crate::domain::{
    Amendment, Attachment, AuditEvent, AuditVerification, Case, EmailAddress, NewAuditEvent,
    NewCase, NewMessage, NewSeries, NewUser, NhsNumber, OutboxMessage, OutcomeDraft,
    OutcomeVersion, ParseError, Series, Session, Specialty, TimeWindow, User, UserId,
};

pub use self::postgres::PgStore;
pub use self::sqlite::SqliteStore;

/// Shared handle to whichever backend is configured.
pub type DynStore = Arc<dyn Store>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A rule held by the data: duplicate, full, closed…
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A reference to data that does not exist (e.g. an unknown specialty).
    #[error("{0}")]
    Invalid(ParseError),
    /// The booking's NHS number is on record with another name or date of birth
    /// (`domain::patient::reconcile`); the record is carried for whoever may see it.
    #[error("the patient's details differ from the record for this NHS number")]
    PatientConflict(Box<crate::domain::patient::PatientConflict>),
    /// The database stayed locked after the bounded wait (SQLite) or the pool is exhausted.
    #[error("database busy")]
    Busy,
    #[error(transparent)]
    Database(sqlx::Error),
}

impl StoreError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(what: &str) -> Self {
        Self::Database(sqlx::Error::Decode(
            format!("stored value out of range: {what}").into(),
        ))
    }
}

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
                None => db
                    .code()
                    .is_some_and(|c| PG_RETRYABLE.contains(&c.as_ref())),
            },
            _ => false,
        };
        if busy {
            tracing::warn!(error = %e, "database busy");
            StoreError::Busy
        } else {
            StoreError::Database(e)
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Runs this backend's pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A round trip to the database (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    async fn list_specialties(&self) -> Result<Vec<Specialty>, StoreError>;
    /// Adds a specialty; `409 specialty_exists` if it is already there.
    async fn add_specialty(&self, slug: &Specialty, name: &str) -> Result<(), StoreError>;

    /// Creates an account and appends `audit` in the same transaction;
    /// `409 email_taken`, `422 unknown_specialty`.
    async fn create_user(&self, user: NewUser, audit: NewAuditEvent) -> Result<User, StoreError>;
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The account id, password hash and active flag, for login.
    async fn credentials(&self, email: &EmailAddress) -> Result<Option<Credentials>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;

    /// Stores the first token of a new sign-in family, with its audit event, atomically.
    async fn insert_refresh_token(
        &self,
        token: &NewRefreshToken,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Atomically checks the presented token and either rotates it (storing `next_hash`
    /// in the same family) or, if it was already used, revokes the family.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
        next_expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError>;
    /// Revokes the family of the presented token (logout). Unknown tokens are ignored.
    async fn revoke_refresh_family(
        &self,
        presented_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Appends one event to the hash chain (serialised so the chain has no forks).
    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError>;
    /// Appends several events in one transaction (e.g. one per case a response shows).
    async fn append_audits(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError>;
    /// All audit events in chain order.
    async fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError>;
    /// Walks the chain and reports the first row that does not match.
    async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        Ok(verify_chain(&self.audit_events().await?))
    }

    /// Creates a weekly series and its sessions in one transaction.
    async fn create_series(&self, series: NewSeries) -> Result<(Series, Vec<Session>), StoreError>;
    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;

    /// Creates one session (outside any series).
    async fn create_session(
        &self,
        plan: SessionPlan,
        starts_at: DateTime<Utc>,
    ) -> Result<Session, StoreError>;
    /// Sessions in start order, optionally of one specialty and within a window.
    async fn list_sessions(
        &self,
        specialty: Option<&Specialty>,
        window: TimeWindow,
    ) -> Result<Vec<Session>, StoreError>;
    /// `scheduled → published`, with its audit event and invitations queued in the same
    /// transaction; `409 invalid_state` from any other state.
    async fn publish_session(
        &self,
        id: Uuid,
        audit: NewAuditEvent,
        mail: Vec<NewMessage>,
    ) -> Result<Session, StoreError>;

    /// Moves a session that has not yet been held (scheduled or published) to start at
    /// `starts_at`, with `audit` and `mail` (built from the moved session's cases) in the
    /// same transaction; `409 invalid_state` otherwise.
    async fn reschedule_session(
        &self,
        id: Uuid,
        starts_at: DateTime<Utc>,
        audit: NewAuditEvent,
        mail: RescheduleNotice<'_>,
    ) -> Result<Session, StoreError>;

    /// Books a case all-or-nothing: the session must be bookable, before its cut-off, not
    /// holding the same patient, and below capacity (never over-booked under any race).
    /// With an idempotency key already used by this referrer, returns that booking.
    /// `audit` (naming the new case) and `mail` are written in the booking's transaction.
    async fn book_case(
        &self,
        case: NewCase,
        audit: NewAuditEvent,
        mail: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Booked, StoreError>;
    async fn case(&self, id: Uuid) -> Result<Option<Case>, StoreError>;
    /// The agenda: cases holding a slot, urgent first, then by booking time.
    async fn session_cases(&self, session_id: Uuid) -> Result<Vec<Case>, StoreError>;
    /// A referrer's cases, newest first, in every state.
    async fn referrer_cases(&self, referrer: UserId) -> Result<Vec<Case>, StoreError>;
    /// Records an attachment (whose bytes are already in the blob store) with its audit
    /// event.
    async fn add_attachment(
        &self,
        attachment: &Attachment,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>, StoreError>;
    async fn case_attachments(&self, case_id: Uuid) -> Result<Vec<Attachment>, StoreError>;

    /// Claims up to `limit` undelivered messages that are due, leasing them until
    /// `lease_until` so no other worker sends them meanwhile.
    async fn claim_due_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    async fn message_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records a failed attempt; the message is due again at `retry_at`.
    async fn message_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Every message in the outbox, oldest first (operations and tests).
    async fn outbox_messages(&self) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Sets the agenda order; `case_ids` must be exactly the cases now on the agenda
    /// (`409 agenda_changed` otherwise).
    async fn reorder_agenda(
        &self,
        session_id: Uuid,
        case_ids: &[Uuid],
        audit: NewAuditEvent,
    ) -> Result<Vec<Case>, StoreError>;
    /// Moves a case that has not been discussed into another bookable session with room:
    /// the old row stays as history (`deferred`), a new row (`new_id`) is booked.
    async fn move_case(
        &self,
        id: Uuid,
        target: Uuid,
        new_id: Uuid,
        audit: NewAuditEvent,
        mail: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Case, StoreError>;
    /// Cancels a scheduled or published session. Each case on it moves to the next
    /// session of its series with room, or is flagged for rebooking; `notice` renders the
    /// message to each referrer, queued in the same transaction.
    async fn cancel_session(
        &self,
        id: Uuid,
        audit: NewAuditEvent,
        notice: CancelNotice<'_>,
        now: DateTime<Utc>,
    ) -> Result<Cancelled, StoreError>;

    /// Withdraws a case that has not been discussed and frees its slot, with `audit`,
    /// atomically.
    async fn withdraw_case(&self, id: Uuid, audit: NewAuditEvent) -> Result<Case, StoreError>;

    /// Appends events to a session's history in one transaction, each applying its
    /// durable change (session state, case states and order, deferrals, attendance).
    /// `seq` continues from the last stored event; with `expected_seq` the history must
    /// end exactly there (`409 stale_seq` otherwise: another writer got in first). A
    /// command id already used by the same actor is `409 duplicate_command`. Deferral
    /// events come back completed with where the case went. With PostgreSQL the other
    /// instances are notified on commit.
    async fn append_live_events(
        &self,
        session_id: Uuid,
        expected_seq: Option<u64>,
        events: Vec<NewLiveEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LiveEvent>, StoreError>;
    /// Up to `limit` events after `after_seq`, in order.
    async fn live_events(
        &self,
        session_id: Uuid,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<LiveEvent>, StoreError>;
    /// Stores a live-channel ticket (only its hash) for one user and session.
    async fn create_live_ticket(
        &self,
        ticket_hash: &str,
        session_id: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Uses a ticket once: the user it was issued to, if it is for `session_id`, unused
    /// and unexpired; `None` otherwise.
    async fn use_live_ticket(
        &self,
        ticket_hash: &str,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;
    /// Records that this server instance is alive, by the database's clock (so instances
    /// with skewed clocks still agree on who is alive).
    async fn live_heartbeat(&self, instance: Uuid) -> Result<(), StoreError>;
    /// Instances whose last heartbeat is at most `seconds` old by the database's clock.
    async fn live_instances_alive(&self, seconds: u64) -> Result<Vec<Uuid>, StoreError>;
    /// How many consultants or specialists besides the chair make a meeting quorate.
    async fn specialty_quorum(&self, specialty: &Specialty) -> Result<u32, StoreError>;
    /// Sets that number, with its audit event; `404` for an unknown specialty.
    async fn set_specialty_quorum(
        &self,
        specialty: &Specialty,
        others: u32,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Join and leave times of everyone who attended a session.
    async fn session_attendance(&self, session_id: Uuid) -> Result<Vec<Attendance>, StoreError>;
    /// Starts delivering other instances' event notifications to `signal`; false when
    /// the backend has none (SQLite serves one instance).
    fn watch_live(&self, signal: Arc<dyn LiveSignal>) -> bool {
        let _ = signal;
        false
    }

    /// Saves the case's outcome draft: creates version 1, or replaces the body of the
    /// current unsigned version. `409 outcome_signed` once the current version is signed,
    /// `409 invalid_state` for a deferred or withdrawn case. With `audit`, atomically.
    async fn draft_outcome(
        &self,
        case_id: Uuid,
        draft: OutcomeDraft,
        author: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<OutcomeVersion, StoreError>;
    /// Signs the current draft and marks the case `outcome_signed`, all in one
    /// transaction with `audit`, the referrer's letter (built by `letter`) and, for a
    /// `re_discuss` follow-up, a new case `follow_up_id` booked into the chosen later
    /// session of the same specialty (capacity enforced, cut-off not). Any refusal
    /// (`409 outcome_signed`, `409 no_draft`, `409 invalid_state`, `409 session_full`,
    /// `422 invalid_follow_up_session`…) leaves everything as it was.
    async fn sign_outcome(
        &self,
        case_id: Uuid,
        signer: UserId,
        audit: NewAuditEvent,
        letter: OutcomeLetter<'_>,
        follow_up_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<SignedOutcome, StoreError>;
    /// Corrects a signed outcome: inserts the next version, signed by `author`,
    /// superseding the current one (never changing it), with the amended letter.
    /// `409 outcome_not_signed` while the current version is a draft, `409 no_draft`
    /// when there is none.
    async fn amend_outcome(
        &self,
        case_id: Uuid,
        amendment: Amendment,
        author: UserId,
        audit: NewAuditEvent,
        letter: OutcomeLetter<'_>,
        now: DateTime<Utc>,
    ) -> Result<OutcomeVersion, StoreError>;
    /// Every version of the case's outcome, oldest first.
    async fn outcome_versions(&self, case_id: Uuid) -> Result<Vec<OutcomeVersion>, StoreError>;

    // FHIR and audit queries (issue 7). The FHIR export reads through the methods above
    // (case, session, outcome versions, user); these serve the coordinators' audit queries.

    /// One page of the audit trail of a patient (events whose record is one of the
    /// patient's cases, in any state, or an attachment of one) or of a user (events they
    /// caused): in chain order, `seq > query.after`, inside the time window, at most
    /// `query.limit`. Filtered in SQL; the log is never loaded whole.
    async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
    /// The ids of every case ever booked for this NHS number, in any state, oldest first.
    async fn patient_case_ids(&self, nhs_number: &NhsNumber) -> Result<Vec<Uuid>, StoreError>;

    /// NHS numbers whose cases disagreed on name or date of birth when the patient
    /// register was made (not merged: a coordinator decides), with when they were found;
    /// unresolved ones only, oldest first.
    async fn patient_conflicts(&self) -> Result<Vec<(NhsNumber, DateTime<Utc>)>, StoreError>;

    /// A coordinator's correction of the patient's record: the name and date of birth on
    /// the register and on every case of the patient, any conflict marked resolved, and
    /// `audit` recorded against each of those cases, in one transaction. Returns how many
    /// cases changed; `404` for an NHS number not on record.
    async fn correct_patient(
        &self,
        correction: &PatientCorrection,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    // Mentorship and attendance (issue 7) -------------------------------------------------
    // Contracts, logs and the backlog of cases flagged for mentorship; the sessions a
    // person attended (their CPD record). The arithmetic lives in `domain::mentorship`.

    /// Stores a contract with its audit event; `409 contract_overlaps` when the consultant
    /// already has a contract in the same arm on one of its days.
    async fn create_mentorship_contract(
        &self,
        contract: &Contract,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Contracts of one consultant, or all, by consultant, arm and start.
    async fn mentorship_contracts(
        &self,
        consultant: Option<UserId>,
    ) -> Result<Vec<Contract>, StoreError>;
    /// Stores a log with its mentees and cases and, in the same transaction, clears the
    /// backlog flag of every case it discusses (cleared on the log's day, by the log),
    /// with `audit`. Returns the cases whose flag it cleared. A case or mentee that does
    /// not exist refuses the whole log (`422 unknown_reference`).
    async fn create_mentorship_log(
        &self,
        log: &MentorshipLog,
        audit: Vec<NewAuditEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Logs dated within `range`, oldest first; with `involving`, only those where that
    /// person is the consultant or a mentee.
    async fn mentorship_logs(
        &self,
        range: DateRange,
        involving: Option<UserId>,
    ) -> Result<Vec<MentorshipLog>, StoreError>;
    /// Puts a case on its arm's backlog (the arm is its session's specialty), with
    /// `audit`. Returns the open flag and whether this call made it (flagging a flagged
    /// case changes nothing). `404` for an unknown case, `409 invalid_state` for a
    /// withdrawn or deferred one.
    async fn flag_for_mentorship(
        &self,
        case_id: Uuid,
        by: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(MentorshipFlag, bool), StoreError>;
    /// Takes a case off the backlog without a log (cleared today), with `audit`; `None`
    /// when it was not flagged.
    async fn unflag_for_mentorship(
        &self,
        case_id: Uuid,
        by: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<MentorshipFlag>, StoreError>;
    /// The case's open flag, if any.
    async fn mentorship_flag(&self, case_id: Uuid) -> Result<Option<MentorshipFlag>, StoreError>;
    /// Flags open at the end of `as_of`: flagged on or before it and not cleared by then.
    async fn mentorship_backlog(&self, as_of: NaiveDate)
        -> Result<Vec<MentorshipFlag>, StoreError>;
    /// Sessions starting in `[from, to)` that `user` attended, in start order, each with
    /// the user's stays and the cases that reached discussion.
    async fn attended_sessions(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AttendedSession>, StoreError>;

    // Reports (issue 7) ---------------------------------------------------------------

    /// What the activity report reads for sessions of `query.specialties` starting in
    /// `[query.starts_at, query.ends_at)`, from one consistent snapshot: the sessions
    /// (with their specialty's quorum), every case row booked into them (with its
    /// referrer, the first booking of its episode, its live start and end, and its latest
    /// signed outcome), and their attendance.
    async fn activity_data(&self, query: &ReportQuery) -> Result<ActivityData, StoreError>;
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

/// A log's cases and mentees must exist.
pub(crate) fn unknown_log_reference() -> StoreError {
    StoreError::Invalid(ParseError::new(
        "unknown_reference",
        "case_ids",
        "names a case or mentee that does not exist",
    ))
}

pub(crate) fn contract_overlaps() -> StoreError {
    StoreError::conflict(
        "contract_overlaps",
        "the consultant already has a contract in this arm on some of these days",
    )
}

/// Rebuilds a log's stored learning points (a JSON array of strings).
pub(crate) fn decode_learning_points(raw: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(raw).map_err(|_| StoreError::corrupt("mentorship_logs.learning_points"))
}

pub(crate) fn encode_learning_points(points: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(points).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

pub(crate) fn decode_specialty(raw: &str, what: &str) -> Result<Specialty, StoreError> {
    Specialty::parse(raw).map_err(|_| StoreError::corrupt(what))
}

pub(crate) fn decode_kind(raw: &str) -> Result<MentorshipKind, StoreError> {
    MentorshipKind::parse(raw).map_err(|_| StoreError::corrupt("mentorship_logs.kind"))
}

pub(crate) fn decode_minutes(v: i32, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::corrupt(what))
}

/// A case may be flagged while it is live on some agenda (or discussed).
pub(crate) fn check_flaggable(case: &Case) -> Result<(), StoreError> {
    if case.state.holds_slot() {
        Ok(())
    } else {
        Err(StoreError::conflict(
            "invalid_state",
            format!(
                "a case that is {} cannot be flagged for mentorship",
                case.state.as_str()
            ),
        ))
    }
}

/// Receives cross-instance notifications (PostgreSQL `LISTEN`): a session has events up
/// to `seq`; or the listening connection went down or came back.
pub trait LiveSignal: Send + Sync {
    fn event(&self, session_id: Uuid, seq: u64);
    fn listening(&self, up: bool);
}

/// The notification channel the instances share.
pub(crate) const LIVE_CHANNEL: &str = "mdt_live";

pub(crate) fn stale_seq() -> StoreError {
    StoreError::conflict(
        "stale_seq",
        "the session changed meanwhile; catch up and try again",
    )
}

pub(crate) fn duplicate_command() -> StoreError {
    StoreError::conflict("duplicate_command", "that command id was already applied")
}

pub(crate) fn invalid_transition(what: &str) -> StoreError {
    StoreError::conflict("invalid_state", format!("{what} is not possible now"))
}

/// Decodes a stored event.
pub(crate) fn decode_live_event(
    session_id: Uuid,
    seq: i64,
    payload: &str,
    actor: Option<Uuid>,
    command_id: Option<String>,
    at: DateTime<Utc>,
) -> Result<LiveEvent, StoreError> {
    Ok(LiveEvent {
        session_id,
        seq: u64::try_from(seq).map_err(|_| StoreError::corrupt("session_events.seq"))?,
        body: serde_json::from_str(payload)
            .map_err(|_| StoreError::corrupt("session_events.payload"))?,
        actor: actor.map(UserId),
        command_id,
        at,
    })
}

/// The JSON stored for an event (the same shape clients receive).
pub(crate) fn encode_live_event(body: &EventBody) -> Result<String, StoreError> {
    serde_json::to_string(body).map_err(|_| StoreError::corrupt("event body"))
}

/// Builds the outcome letter to the referrer of a case (the case, its session, the
/// version just signed); called inside the signing or amending transaction.
pub type OutcomeLetter<'a> =
    &'a (dyn Fn(&Case, &Session, &OutcomeVersion) -> Option<NewMessage> + Send + Sync);

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
    let store: DynStore = match scheme {
        "sqlite" => Arc::new(SqliteStore::open(url, settings).await?),
        "postgres" | "postgresql" => Arc::new(PgStore::open(url, settings).await?),
        other => return Err(ConnectError::UnsupportedScheme(other.to_string())),
    };
    store.migrate().await?;
    Ok(store)
}

/// Builds database settings for a URL with the defaults for the rest (tests, CLI).
pub fn settings_for(url: &str) -> DatabaseSettings {
    DatabaseSettings {
        url: SecretString::from(url),
        max_connections: 10,
        busy_timeout_ms: 5000,
    }
}

/// Rebuilds a [`User`] from stored columns, re-parsing each value so a bad row is an
/// error rather than an unchecked string.
pub(crate) fn decode_user(
    id: Uuid,
    email: &str,
    name: &str,
    role: &str,
    active: bool,
    created_at: DateTime<Utc>,
    specialties: &[String],
) -> Result<User, StoreError> {
    use crate::domain::{PersonName, Role};
    Ok(User {
        id: UserId(id),
        email: EmailAddress::parse(email).map_err(|_| StoreError::corrupt("users.email"))?,
        name: PersonName::parse(name).map_err(|_| StoreError::corrupt("users.name"))?,
        role: role
            .parse::<Role>()
            .map_err(|_| StoreError::corrupt("users.role"))?,
        specialties: specialties
            .iter()
            .map(|s| Specialty::parse(s).map_err(|_| StoreError::corrupt("user_specialties")))
            .collect::<Result<_, _>>()?,
        active,
        created_at,
    })
}

/// Session columns as stored, shared by both backends' row mapping.
pub(crate) struct SessionColumns {
    pub id: Uuid,
    pub series_id: Option<Uuid>,
    pub specialty: String,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: i32,
    pub case_capacity: i32,
    pub booked: i32,
    pub minutes_per_case: i32,
    pub booking_cutoff_hours: i32,
    pub chair_id: Uuid,
    pub teaching: bool,
    pub state: String,
}

impl SessionColumns {
    pub(crate) fn decode(self) -> Result<Session, StoreError> {
        use crate::domain::schedule::SessionPlan;
        use crate::domain::SessionState;
        let n = |v: i32, what: &str| u32::try_from(v).map_err(|_| StoreError::corrupt(what));
        Ok(Session {
            id: self.id,
            series_id: self.series_id,
            plan: SessionPlan {
                specialty: Specialty::parse(&self.specialty)
                    .map_err(|_| StoreError::corrupt("sessions.specialty"))?,
                title: self.title,
                duration_minutes: n(self.duration_minutes, "sessions.duration_minutes")?,
                case_capacity: n(self.case_capacity, "sessions.case_capacity")?,
                minutes_per_case: n(self.minutes_per_case, "sessions.minutes_per_case")?,
                booking_cutoff_hours: n(
                    self.booking_cutoff_hours,
                    "sessions.booking_cutoff_hours",
                )?,
                chair_id: UserId(self.chair_id),
                teaching: self.teaching,
            },
            starts_at: self.starts_at,
            booked: n(self.booked, "sessions.booked")?,
            state: SessionState::parse(&self.state)
                .ok_or_else(|| StoreError::corrupt("sessions.state"))?,
        })
    }
}

/// Checks, before any write, whether a case may be booked into `session` now.
pub(crate) fn check_bookable(session: &Session, now: DateTime<Utc>) -> Result<(), StoreError> {
    check_takes_bookings(session)?;
    if now >= session.booking_closes_at() {
        return Err(StoreError::conflict(
            "booking_closed",
            "bookings for this session closed at its cut-off",
        ));
    }
    Ok(())
}

/// Only scheduled and published sessions take cases.
pub(crate) fn check_takes_bookings(session: &Session) -> Result<(), StoreError> {
    use crate::domain::SessionState;
    if !matches!(
        session.state,
        SessionState::Scheduled | SessionState::Published
    ) {
        return Err(StoreError::conflict(
            "session_not_bookable",
            format!(
                "the session is {} and takes no bookings",
                session.state.as_str()
            ),
        ));
    }
    Ok(())
}

/// A coordinator's correction of a patient's name and date of birth.
#[derive(Clone, Debug)]
pub struct PatientCorrection {
    pub nhs_number: NhsNumber,
    pub given_name: crate::domain::PersonName,
    pub family_name: crate::domain::PersonName,
    pub date_of_birth: chrono::NaiveDate,
    pub by: UserId,
}

/// A patient's columns as stored (in `patients` and in each case), shared by both
/// backends' row mapping.
pub(crate) struct PatientColumns {
    pub nhs_number: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: chrono::NaiveDate,
    pub sex: String,
    pub gp_practice_code: String,
}

impl PatientColumns {
    pub(crate) fn decode(self) -> Result<crate::domain::PatientDetails, StoreError> {
        use crate::domain::{NhsNumber, OdsCode, PatientDetails, PersonName, Sex};
        let bad = |what: &'static str| move |_| StoreError::corrupt(what);
        Ok(PatientDetails {
            nhs_number: NhsNumber::parse(&self.nhs_number).map_err(bad("nhs_number"))?,
            given_name: PersonName::parse(&self.given_name).map_err(bad("given_name"))?,
            family_name: PersonName::parse(&self.family_name).map_err(bad("family_name"))?,
            date_of_birth: self.date_of_birth,
            sex: Sex::parse(&self.sex).map_err(bad("sex"))?,
            gp_practice_code: OdsCode::parse(&self.gp_practice_code)
                .map_err(bad("gp_practice_code"))?,
        })
    }
}

/// The audit events for a change to a patient's record: `template` (its actor, address
/// and details) recorded against each of the patient's cases.
pub(crate) fn per_case(template: &NewAuditEvent, case_ids: &[Uuid]) -> Vec<NewAuditEvent> {
    case_ids
        .iter()
        .map(|id| NewAuditEvent {
            record_type: "case".into(),
            record_id: Some(id.to_string()),
            ..template.clone()
        })
        .collect()
}

/// What a booking that changed the patient's record (`fields`) records on each case.
pub(crate) fn patient_updated(booking: &NewAuditEvent, fields: &[&'static str]) -> NewAuditEvent {
    NewAuditEvent {
        action: "patient_updated".into(),
        details: serde_json::json!({ "fields": fields }).to_string(),
        ..booking.clone()
    }
}

/// Case columns as stored, shared by both backends' row mapping.
pub(crate) struct CaseColumns {
    pub id: Uuid,
    pub session_id: Uuid,
    pub referrer_id: Uuid,
    pub nhs_number: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: chrono::NaiveDate,
    pub sex: String,
    pub gp_practice_code: String,
    pub clinical_question: String,
    pub history: String,
    pub urgency: String,
    pub body_site: String,
    pub free_text_identifies_patient: bool,
    pub state: String,
    pub booked_at: DateTime<Utc>,
    pub moved_from: Option<Uuid>,
    pub needs_rebooking: bool,
    pub follow_up_of: Option<Uuid>,
}

impl CaseColumns {
    pub(crate) fn decode(self) -> Result<Case, StoreError> {
        use crate::domain::{BodySite, CaseState, ClinicalText, Urgency};
        let bad = |what: &'static str| move |_| StoreError::corrupt(what);
        Ok(Case {
            id: self.id,
            session_id: self.session_id,
            referrer_id: UserId(self.referrer_id),
            patient: PatientColumns {
                nhs_number: self.nhs_number,
                given_name: self.given_name,
                family_name: self.family_name,
                date_of_birth: self.date_of_birth,
                sex: self.sex,
                gp_practice_code: self.gp_practice_code,
            }
            .decode()?,
            clinical_question: ClinicalText::parse(&self.clinical_question, "clinical_question")
                .map_err(bad("cases.clinical_question"))?,
            history: ClinicalText::parse(&self.history, "history").map_err(bad("cases.history"))?,
            urgency: Urgency::parse(&self.urgency).map_err(bad("cases.urgency"))?,
            body_site: BodySite::parse(&self.body_site).map_err(bad("cases.body_site"))?,
            free_text_identifies_patient: self.free_text_identifies_patient,
            state: CaseState::parse(&self.state)
                .ok_or_else(|| StoreError::corrupt("cases.state"))?,
            booked_at: self.booked_at,
            moved_from: self.moved_from,
            needs_rebooking: self.needs_rebooking,
            follow_up_of: self.follow_up_of,
        })
    }
}

/// A stored booking found under the request's idempotency key is the answer only if the
/// request is the same booking (same session and patient); otherwise the key was reused.
pub(crate) fn replay_of(existing: Case, request: &NewCase) -> Result<Booked, StoreError> {
    if existing.session_id == request.session_id
        && existing.patient.nhs_number == request.patient.nhs_number
    {
        Ok(Booked {
            case: existing,
            replayed: true,
        })
    } else {
        Err(StoreError::Invalid(ParseError::new(
            "idempotency_key_reused",
            "Idempotency-Key",
            "this key was used for a different booking",
        )))
    }
}

/// The case a new booking creates, before it is stored.
pub(crate) fn booked_case(case: &NewCase, now: DateTime<Utc>) -> Case {
    Case {
        id: case.id,
        session_id: case.session_id,
        referrer_id: case.referrer_id,
        patient: case.patient.clone(),
        clinical_question: case.clinical_question.clone(),
        history: case.history.clone(),
        urgency: case.urgency,
        body_site: case.body_site.clone(),
        free_text_identifies_patient: case.free_text_identifies_patient,
        state: crate::domain::CaseState::Booked,
        booked_at: now,
        moved_from: None,
        needs_rebooking: false,
        follow_up_of: None,
    }
}

/// Builds the messages telling referrers a session moved, from the moved session and
/// its cases; called inside the moving transaction.
pub type RescheduleNotice<'a> = &'a (dyn Fn(&Session, &[Case]) -> Vec<NewMessage> + Send + Sync);

/// Builds the message for each case a cancellation moved (`Some((new case, its
/// session))`) or flagged for rebooking (`None`); called inside the cancelling transaction.
pub type CancelNotice<'a> =
    &'a (dyn Fn(&Case, Option<(&Case, &Session)>) -> Option<NewMessage> + Send + Sync);

/// What cancelling a session did.
#[derive(Clone, Debug)]
pub struct Cancelled {
    pub session: Session,
    /// (old case id, new case) for each case moved to the next session of the series.
    pub moved: Vec<(Uuid, Case)>,
    /// Cases left for the referrer to rebook.
    pub flagged: Vec<Uuid>,
}

pub(crate) fn not_withdrawable(case: &Case) -> StoreError {
    StoreError::conflict(
        "invalid_state",
        format!(
            "a case that is {} cannot be withdrawn or moved",
            case.state.as_str()
        ),
    )
}

/// Checks a proposed agenda order names exactly the cases on the agenda.
pub(crate) fn check_same_cases(current: &[Case], proposed: &[Uuid]) -> Result<(), StoreError> {
    let mut a: Vec<Uuid> = current.iter().map(|c| c.id).collect();
    let mut b = proposed.to_vec();
    a.sort();
    b.sort();
    if a == b {
        Ok(())
    } else {
        Err(StoreError::conflict(
            "agenda_changed",
            "the order must list exactly the cases now on the agenda; reload and try again",
        ))
    }
}

pub(crate) fn session_full() -> StoreError {
    StoreError::conflict("session_full", "the session has no free case slots")
}

pub(crate) fn duplicate_case() -> StoreError {
    StoreError::conflict(
        "duplicate_case",
        "this patient is already booked into the session",
    )
}

pub(crate) fn unknown_reference() -> StoreError {
    StoreError::Invalid(ParseError::new(
        "unknown_reference",
        "specialty",
        "the specialty or chair does not exist",
    ))
}

pub(crate) fn unknown_specialty() -> StoreError {
    StoreError::Invalid(ParseError::new(
        "unknown_specialty",
        "specialties",
        "names a specialty that does not exist",
    ))
}

/// Whether a database error is a unique-constraint violation on the named index/column.
pub(crate) fn is_unique_violation(e: &sqlx::Error, needle: &str) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.kind() == sqlx::error::ErrorKind::UniqueViolation && db.message().contains(needle)
            || db.kind() == sqlx::error::ErrorKind::UniqueViolation
                && db.constraint().is_some_and(|c| c.contains(needle)))
}

pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

pub(crate) fn outcome_signed() -> StoreError {
    StoreError::conflict(
        "outcome_signed",
        "the outcome is signed and cannot change; record an amendment instead",
    )
}

pub(crate) fn outcome_not_signed() -> StoreError {
    StoreError::conflict(
        "outcome_not_signed",
        "the outcome is still a draft: change it and sign it instead of amending",
    )
}

pub(crate) fn no_draft() -> StoreError {
    StoreError::conflict("no_draft", "there is no outcome draft for this case")
}

/// A draft may be saved for a case that still holds its slot.
pub(crate) fn check_outcome_open(case: &Case) -> Result<(), StoreError> {
    if case.state.holds_slot() {
        Ok(())
    } else {
        Err(StoreError::conflict(
            "invalid_state",
            format!(
                "a case that is {} has no outcome to record",
                case.state.as_str()
            ),
        ))
    }
}

/// A draft may be signed while the case is booked, listed or being (or just) discussed.
pub(crate) fn check_signable(case: &Case) -> Result<(), StoreError> {
    use crate::domain::CaseState::{Booked, Discussed, InDiscussion, Listed};
    if matches!(case.state, Booked | Listed | InDiscussion | Discussed) {
        Ok(())
    } else {
        Err(StoreError::conflict(
            "invalid_state",
            format!(
                "the outcome of a case that is {} cannot be signed",
                case.state.as_str()
            ),
        ))
    }
}

/// The outcome body as stored: its JSON wire shape.
pub(crate) fn encode_outcome(draft: &OutcomeDraft) -> Result<String, StoreError> {
    serde_json::to_string(draft).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

/// The amendment that supersedes `current`: the next version, signed by its author.
pub(crate) fn amendment_of(
    current: &OutcomeVersion,
    amendment: Amendment,
    author: UserId,
    now: DateTime<Utc>,
) -> OutcomeVersion {
    OutcomeVersion {
        case_id: current.case_id,
        version: current.version + 1,
        body: amendment.body,
        author_id: author,
        created_at: now,
        updated_at: now,
        signed_by: Some(author),
        signed_at: Some(now),
        amendment_reason: Some(amendment.reason.as_str().to_string()),
        supersedes: Some(current.version),
    }
}

/// The first version of a case's outcome.
pub(crate) fn first_draft(
    case_id: Uuid,
    draft: OutcomeDraft,
    author: UserId,
    now: DateTime<Utc>,
) -> OutcomeVersion {
    OutcomeVersion {
        case_id,
        version: 1,
        body: draft,
        author_id: author,
        created_at: now,
        updated_at: now,
        signed_by: None,
        signed_at: None,
        amendment_reason: None,
        supersedes: None,
    }
}

/// The audit event recording the follow-up case a signing booked, from the signing's.
pub(crate) fn follow_up_audit(signing: &NewAuditEvent, follow_up: &Case) -> NewAuditEvent {
    let mut event = signing.clone();
    event.action = "follow_up_booked".to_string();
    event.record_type = "case".to_string();
    event
        .record(follow_up.id)
        .details(serde_json::json!({ "follow_up_of": follow_up.follow_up_of, "session": follow_up.session_id }))
}

/// Outcome version columns as stored, shared by both backends' row mapping; the body is
/// parsed again on the way out.
pub(crate) struct OutcomeColumns {
    pub case_id: Uuid,
    pub version: i32,
    pub body: String,
    pub author_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub signed_by: Option<Uuid>,
    pub signed_at: Option<DateTime<Utc>>,
    pub amendment_reason: Option<String>,
    pub supersedes: Option<i32>,
}

impl OutcomeColumns {
    pub(crate) fn decode(self) -> Result<OutcomeVersion, StoreError> {
        let n = |v: i32, what: &str| u32::try_from(v).map_err(|_| StoreError::corrupt(what));
        Ok(OutcomeVersion {
            case_id: self.case_id,
            version: n(self.version, "outcome_versions.version")?,
            body: serde_json::from_str(&self.body)
                .map_err(|_| StoreError::corrupt("outcome_versions.body"))?,
            author_id: UserId(self.author_id),
            created_at: self.created_at,
            updated_at: self.updated_at,
            signed_by: self.signed_by.map(UserId),
            signed_at: self.signed_at,
            amendment_reason: self.amendment_reason,
            supersedes: self
                .supersedes
                .map(|s| n(s, "outcome_versions.supersedes"))
                .transpose()?,
        })
    }
}

// Reports (issue 7) -------------------------------------------------------------------

/// Builds a report session row from stored columns.
pub(crate) fn report_session(
    id: Uuid,
    specialty: &str,
    starts_at: DateTime<Utc>,
    state: &str,
    minutes_per_case: i32,
    chair_id: Uuid,
    quorum_others: i32,
) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id,
        specialty: Specialty::parse(specialty)
            .map_err(|_| StoreError::corrupt("sessions.specialty"))?,
        starts_at,
        state: crate::domain::SessionState::parse(state)
            .ok_or_else(|| StoreError::corrupt("sessions.state"))?,
        minutes_per_case: u32::try_from(minutes_per_case)
            .map_err(|_| StoreError::corrupt("sessions.minutes_per_case"))?,
        chair_id: UserId(chair_id),
        quorum_others: u32::try_from(quorum_others)
            .map_err(|_| StoreError::corrupt("specialties.quorum_others"))?,
    })
}

/// When a case's live discussion started and ended, if it did.
pub(crate) type LiveSpan = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// What the report derives for a case row from other tables, read by separate queries in
/// the same snapshot and joined here (a join against an aggregated subquery has no index
/// on SQLite and turned a year's report quadratic).
#[derive(Default)]
pub(crate) struct ReportExtras {
    /// Live `(started_at, ended_at)` per case row.
    pub timing: std::collections::HashMap<Uuid, LiveSpan>,
    /// The episode's first booking, for case rows that were moved from another.
    pub first_booked: std::collections::HashMap<Uuid, DateTime<Utc>>,
}

/// The per-case columns beyond the case itself, as both backends select them.
pub(crate) struct ReportCaseColumns {
    pub referrer_role: String,
    pub referrer_name: String,
    /// The latest signed outcome version's body (JSON text).
    pub outcome_body: Option<String>,
}

impl ReportCaseColumns {
    pub(crate) fn decode(self, case: Case, extras: &ReportExtras) -> Result<CaseRow, StoreError> {
        let outcome = self
            .outcome_body
            .map(|body| {
                serde_json::from_str::<OutcomeDraft>(&body)
                    .map(|draft| draft.summary())
                    .map_err(|_| StoreError::corrupt("outcome_versions.body"))
            })
            .transpose()?;
        let (started_at, ended_at) = extras.timing.get(&case.id).copied().unwrap_or_default();
        Ok(CaseRow {
            referrer_role: self
                .referrer_role
                .parse()
                .map_err(|_| StoreError::corrupt("users.role"))?,
            referrer_name: crate::domain::PersonName::parse(&self.referrer_name)
                .map_err(|_| StoreError::corrupt("users.name"))?,
            first_booked_at: extras
                .first_booked
                .get(&case.id)
                .copied()
                .unwrap_or(case.booked_at),
            started_at,
            ended_at,
            outcome,
            case,
        })
    }
}
