//! Sessions and the cases booked into them: series, publishing, moving and cancelling
//! sessions; booking, moving, withdrawing and ordering cases. Whether a change is allowed
//! and where displaced cases go are `domain::booking` rules; this applies them.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{append_audit_in, append_audits_in};
use super::core::Store;
use super::db::Tx;
use super::error::{or_unknown, StoreError, Unique, UNKNOWN_SPECIALTY_OR_CHAIR};
pub(super) use super::outbox::enqueue_in;
use super::outbox::insert_attachment_row;
use super::patients::{patient_cases_in, patient_updated, per_case, register_patient};
use super::rows;
use super::sql::{args, Arg};
use crate::domain::booking::{self, Candidate};
use crate::domain::conflict::Conflict;
use crate::domain::mentorship::clinic_date;
use crate::domain::schedule::SessionPlan;
use crate::domain::{
    Case, CaseState, NewAuditEvent, NewCase, NewMessage, NewSeries, NhsNumber, ParseError, Series,
    Session, SessionState, Specialty, TimeWindow, UserId,
};

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

/// The agenda (the cases triage put on it), in its order: the chair's order, then urgent
/// first, then by booking time.
const AGENDA: &str = "SELECT * FROM cases WHERE session_id = $1 \
     AND state NOT IN ('withdrawn', 'deferred', 'awaiting_triage', 'returned') \
     ORDER BY COALESCE(agenda_position, 2147483647), \
     CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id";
/// Every case holding a slot, on the agenda or still in triage (a cancellation or a
/// new time reaches them all), in booking order.
const HOLDING: &str = "SELECT * FROM cases WHERE session_id = $1 \
     AND state NOT IN ('withdrawn', 'deferred') \
     ORDER BY CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id";

const SESSIONS_IN: &str = "SELECT * FROM sessions WHERE ($1::text IS NULL OR specialty = $1) \
     AND ($2::timestamptz IS NULL OR starts_at >= $2) \
     AND ($3::timestamptz IS NULL OR starts_at < $3) ORDER BY starts_at, id";
const BY_IDEMPOTENCY_KEY: &str =
    "SELECT * FROM cases WHERE referrer_id = $1 AND idempotency_key = $2";
const REFERRER_CASES: &str =
    "SELECT * FROM cases WHERE referrer_id = $1 ORDER BY booked_at DESC, id";
const CLEAR_FLAG: &str = "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, \
     cleared_by = $3 WHERE case_id = $4 AND cleared_at IS NULL";
const DEFER_CASE: &str = "UPDATE cases SET state = 'deferred', needs_rebooking = $1 WHERE id = $2";
const FREE_SLOT: &str = "UPDATE sessions SET booked = booked - 1 WHERE id = $1";
/// The conditional update that can never over-book.
const TAKE_SLOT: &str =
    "UPDATE sessions SET booked = booked + 1 WHERE id = $1 AND booked < case_capacity";
const PATIENT_HELD: &str = "SELECT COUNT(*) AS n FROM cases WHERE session_id = $1 \
     AND nhs_number = $2 AND state NOT IN ('withdrawn', 'deferred')";
const PATIENTS_IN: &str = "SELECT session_id, nhs_number FROM cases \
     WHERE session_id = ANY($1) AND state NOT IN ('withdrawn', 'deferred')";
const LATER_IN_SERIES: &str = "SELECT * FROM sessions WHERE series_id = $1 AND starts_at > $2 \
     AND state IN ('scheduled', 'published') ORDER BY starts_at";
/// An open mentorship flag goes with the case to its new row.
const CARRY_FLAG: &str =
    "UPDATE mentorship_flags SET case_id = $1 WHERE case_id = $2 AND cleared_at IS NULL";

/// What cancelling a session will do, planned from the session as it stood.
#[derive(Clone, Debug)]
pub struct CancelPlan {
    pub session: Session,
    /// Each waiting case, with where it goes: `(target session, new case id)`, or `None`
    /// when it is to be flagged for rebooking.
    pub cases: Vec<(Case, Option<(Session, Uuid)>)>,
}

pub(super) async fn session_in(tx: &mut Tx, id: Uuid) -> Result<Session, StoreError> {
    let row = tx.opt("SELECT * FROM sessions WHERE id = $1 FOR UPDATE", args![id]).await?;
    rows::session(&row.ok_or(StoreError::NotFound("session"))?)
}

/// The case row, locked for the rest of the transaction.
pub(super) async fn lock_case(tx: &mut Tx, id: Uuid) -> Result<Case, StoreError> {
    let row = tx.opt("SELECT * FROM cases WHERE id = $1 FOR UPDATE", args![id]).await?;
    rows::case(&row.ok_or(StoreError::NotFound("case"))?)
}

/// Locks the case's session and `also` (every writer locks sessions before cases, in id
/// order), then the case.
pub(super) async fn lock_case_and_session(
    tx: &mut Tx, id: Uuid, also: Option<Uuid>,
) -> Result<Case, StoreError> {
    let row = tx.opt("SELECT session_id FROM cases WHERE id = $1", args![id]).await?;
    let mut sessions = vec![row.ok_or(StoreError::NotFound("case"))?.get::<Uuid>("session_id")?];
    sessions.extend(also);
    tx.lock_sessions(&sessions).await?;
    lock_case(tx, id).await
}

async fn insert_session(
    tx: &mut Tx, id: Uuid, series: Option<Uuid>, p: &SessionPlan, starts_at: DateTime<Utc>,
) -> Result<Session, StoreError> {
    let inserted = tx
        .run(
            "INSERT INTO sessions (id, series_id, specialty, title, starts_at, duration_minutes, \
             case_capacity, booked, minutes_per_case, booking_cutoff_hours, chair_id, teaching, \
             state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11, 'scheduled', $12)",
            args![id, series, p.specialty.as_str(), &p.title, starts_at, p.duration_minutes as i32,
                p.case_capacity as i32, p.minutes_per_case as i32, p.booking_cutoff_hours as i32,
                p.chair_id, p.teaching, Utc::now()],
        )
        .await;
    or_unknown(inserted, "specialty", UNKNOWN_SPECIALTY_OR_CHAIR).map(|_| Session {
        id,
        series_id: series,
        plan: p.clone(),
        starts_at,
        booked: 0,
        state: SessionState::Scheduled,
    })
}

/// Takes one slot of `session_id` with the conditional update that can never over-book,
/// after checking it takes bookings (before its cut-off with `enforce_cutoff`).
pub(super) async fn take_slot(
    tx: &mut Tx, session_id: Uuid, now: DateTime<Utc>, enforce_cutoff: bool,
) -> Result<Session, StoreError> {
    let session = session_in(tx, session_id).await?;
    if enforce_cutoff {
        booking::check_bookable(&session, now)?;
    } else {
        booking::check_takes_bookings(&session)?;
    }
    if tx.run(TAKE_SLOT, args![session_id]).await? != 1 {
        return Err(Conflict::SessionFull.into());
    }
    Ok(session)
}

/// Whether the patient of `case` already holds a slot in `session_id`.
pub(super) async fn patient_already_in(
    tx: &mut Tx, case: &Case, session_id: Uuid,
) -> Result<bool, StoreError> {
    let row = tx.one(PATIENT_HELD, args![session_id, case.patient.nhs_number.as_str()]).await?;
    Ok(row.get::<i64>("n")? > 0)
}

/// Marks `case` deferred (optionally flagged for rebooking) and frees its slot.
async fn release_case(tx: &mut Tx, case: &Case, needs_rebooking: bool) -> Result<(), StoreError> {
    tx.run(DEFER_CASE, args![needs_rebooking, case.id]).await?;
    tx.run(FREE_SLOT, args![case.session_id]).await?;
    Ok(())
}

/// Inserts a case row; a database refusal comes back as [`StoreError::Violation`].
pub(super) async fn insert_case_row(
    tx: &mut Tx, c: &Case, key: Option<&str>,
) -> Result<(), StoreError> {
    let p = &c.patient;
    let (reason, note) = rows::returned_columns(c);
    let mut values = args![
        c.id,
        c.session_id,
        c.referrer_id,
        p.nhs_number.as_str(),
        p.given_name.as_str(),
        p.family_name.as_str(),
        p.date_of_birth,
        p.sex.as_str(),
        p.gp_practice_code.as_str(),
        c.clinical_question.as_str(),
        c.history.as_str(),
        c.urgency.as_str(),
        c.body_site.as_str(),
        c.state.as_str(),
        c.booked_at,
        c.free_text_identifies_patient,
        key,
        c.moved_from,
        c.follow_up_of
    ];
    let source = c.proforma.as_ref().and_then(|f| f.referral_source).map(|s| s.as_str());
    values.extend(args![
        c.proforma.as_ref().map(|f| f.referral_received_on),
        source,
        rows::proforma_json(c)?,
        c.submitted_at,
        reason,
        note,
        c.standard_plan.as_deref()
    ]);
    tx.run(
        "INSERT INTO cases (id, session_id, referrer_id, nhs_number, given_name, family_name, \
         date_of_birth, sex, gp_practice_code, clinical_question, history, urgency, body_site, \
         state, booked_at, free_text_identifies_patient, idempotency_key, moved_from, follow_up_of, \
         referral_received_on, referral_source, proforma, submitted_at, return_reason, return_note, \
         standard_plan) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
        values,
    )
    .await?;
    super::facts::case_inserted_in(tx, c).await
}

/// Books `case` inside the caller's write transaction: takes a slot (before the cut-off),
/// registers the patient, inserts the case with `audit` and queues `mail`. A patient
/// already in the session is `409 duplicate_case`; a reused idempotency key comes back as
/// the unique violation for the caller to answer.
pub(super) async fn book_in(
    tx: &mut Tx, case: &NewCase, audit: NewAuditEvent, mail: &[NewMessage], now: DateTime<Utc>,
) -> Result<Case, StoreError> {
    tx.lock_sessions(&[case.session_id]).await?;
    take_slot(tx, case.session_id, now, true).await?;
    let booked = case.booked(now);
    let changed = register_patient(tx, case, now).await?;
    if !changed.is_empty() {
        // Every case of the patient now carries the change: each records it.
        let mut ids = patient_cases_in(tx, &case.patient.nhs_number).await?;
        ids.push(booked.id);
        append_audits_in(tx, per_case(&patient_updated(&audit, &changed), &ids)).await?;
    }
    match insert_case_row(tx, &booked, case.idempotency_key.as_deref()).await {
        Err(e) if e.is_unique(Unique::PatientInSession) => {
            return Err(Conflict::DuplicateCase.into())
        }
        other => other?,
    }
    append_audit_in(tx, audit.record(booked.id)).await?;
    for message in mail {
        enqueue_in(tx, message, now).await?;
    }
    Ok(booked)
}

/// Gives a new case row the attachments of the case it came from.
pub(super) async fn copy_attachments(tx: &mut Tx, from: Uuid, to: Uuid) -> Result<(), StoreError> {
    for row in tx.all("SELECT * FROM attachments WHERE case_id = $1", args![from]).await? {
        let mut a = rows::attachment(&row)?;
        a.id = Uuid::new_v4();
        a.case_id = to;
        insert_attachment_row(tx, &a).await?;
    }
    Ok(())
}

/// Moves `case` into `target` as a new row `new_id`: the slot there is taken, the
/// attachments and any open mentorship flag go with it, and the old row stays as history.
async fn move_into(
    tx: &mut Tx, case: &Case, target: Uuid, new_id: Uuid, enforce_cutoff: bool, now: DateTime<Utc>,
) -> Result<Case, StoreError> {
    take_slot(tx, target, now, enforce_cutoff).await?;
    if patient_already_in(tx, case, target).await? {
        return Err(Conflict::DuplicateCase.into());
    }
    let moved = case.moved_to(new_id, target, now);
    insert_case_row(tx, &moved, None).await?;
    copy_attachments(tx, case.id, moved.id).await?;
    tx.run(CARRY_FLAG, args![moved.id, case.id]).await?;
    release_case(tx, case, false).await?;
    Ok(moved)
}

/// Applies where a displaced case goes: moved into `target`, or flagged for rebooking.
pub(super) async fn rebook_in(
    tx: &mut Tx, case: &Case, target: Option<Uuid>, enforce_cutoff: bool, now: DateTime<Utc>,
) -> Result<Option<Case>, StoreError> {
    match target {
        Some(target) => {
            Ok(Some(move_into(tx, case, target, Uuid::new_v4(), enforce_cutoff, now).await?))
        }
        None => release_case(tx, case, true).await.map(|_| None),
    }
}

/// The later sessions of `session`'s series that take bookings, in start order, with the
/// patients holding a slot in each, read in the caller's transaction (a writer has
/// locked them already: `append_live_events` before a deferral, `cancel_session` its
/// targets).
pub(super) async fn later_candidates_in(
    tx: &mut Tx, session: &Session,
) -> Result<Vec<Candidate>, StoreError> {
    let Some(series) = session.series_id else {
        return Ok(Vec::new());
    };
    let rows = tx.all(LATER_IN_SERIES, args![series, session.starts_at]).await?;
    let sessions: Vec<Session> = rows.iter().map(rows::session).collect::<Result<_, _>>()?;
    let ids: Vec<Uuid> = sessions.iter().map(|s| s.id).collect();
    let mut held: HashMap<Uuid, HashSet<NhsNumber>> = HashMap::new();
    for row in tx.all(PATIENTS_IN, args![&ids[..]]).await? {
        let patient = rows::parsed(&row, "nhs_number", NhsNumber::parse)?;
        held.entry(row.get("session_id")?).or_default().insert(patient);
    }
    let candidate = |session: Session| {
        let patients = held.remove(&session.id).unwrap_or_default();
        Candidate { session, patients }
    };
    Ok(sessions.into_iter().map(candidate).collect())
}

/// Records `audit` against the session, queues `mail` and commits.
pub(super) async fn commit_with(
    mut tx: Tx, id: Uuid, audit: NewAuditEvent, mail: &[NewMessage],
) -> Result<(), StoreError> {
    append_audit_in(&mut tx, audit.record(id)).await?;
    let now = Utc::now();
    for message in mail {
        enqueue_in(&mut tx, message, now).await?;
    }
    tx.commit().await
}

impl Store {
    /// Creates a weekly series and its sessions in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn create_series(
        &self, series: NewSeries,
    ) -> Result<(Series, Vec<Session>), StoreError> {
        let (p, id) = (&series.plan, Uuid::new_v4());
        let mut tx = self.db.write().await?;
        let inserted = tx
            .run(
                "INSERT INTO series (id, specialty, title, first_date, local_time, weeks, duration_minutes, \
                 case_capacity, minutes_per_case, booking_cutoff_hours, chair_id, teaching, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                args![id, p.specialty.as_str(), &p.title, series.first_date,
                    series.local_time, series.weeks as i32,
                    p.duration_minutes as i32, p.case_capacity as i32, p.minutes_per_case as i32,
                    p.booking_cutoff_hours as i32, p.chair_id, p.teaching, Utc::now()],
            )
            .await;
        or_unknown(inserted, "specialty", UNKNOWN_SPECIALTY_OR_CHAIR)?;
        let mut sessions = Vec::new();
        for starts_at in series.occurrences() {
            sessions.push(insert_session(&mut tx, Uuid::new_v4(), Some(id), p, starts_at).await?);
        }
        tx.commit().await?;
        let NewSeries { plan, first_date, local_time, weeks } = series;
        Ok((Series { id, plan, first_date, local_time, weeks }, sessions))
    }

    /// Creates one session (outside any series).
    #[tracing::instrument(skip_all)]
    pub async fn create_session(
        &self, plan: SessionPlan, starts_at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let mut tx = self.db.write().await?;
        let session = insert_session(&mut tx, Uuid::new_v4(), None, &plan, starts_at).await?;
        tx.commit().await?;
        Ok(session)
    }

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let row = self.db.opt("SELECT * FROM sessions WHERE id = $1", args![id]).await?;
        row.as_ref().map(rows::session).transpose()
    }

    /// Sessions in start order, optionally of one specialty and within a window.
    #[tracing::instrument(skip_all)]
    pub async fn list_sessions(
        &self, specialty: Option<&Specialty>, window: TimeWindow,
    ) -> Result<Vec<Session>, StoreError> {
        let args = args![specialty.map(|s| s.as_str()), window.from, window.to];
        let rows = self.db.all(SESSIONS_IN, args).await?;
        rows.iter().map(rows::session).collect()
    }

    /// `scheduled → published` at `now`, with its audit event and invitations queued in the
    /// same transaction; `409 invalid_state` from any other state, `409
    /// publication_too_late` less than `hours_before` hours before the meeting.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn publish_session(
        &self, id: Uuid, audit: NewAuditEvent, mail: Vec<NewMessage>, now: DateTime<Utc>,
        hours_before: u32,
    ) -> Result<Session, StoreError> {
        let mut tx = self.db.write().await?;
        let mut session = session_in(&mut tx, id).await?;
        crate::domain::triage::check_publishable(&session, now, hours_before)?;
        let sql = "UPDATE sessions SET state = 'published', published_at = $2 WHERE id = $1";
        tx.run(sql, args![id, now]).await?;
        session.state = SessionState::Published;
        commit_with(tx, id, audit, &mail).await?;
        Ok(session)
    }

    /// Moves a session that has not yet been held to start at `starts_at`, with `audit`
    /// and `mail` (composed by the caller from the session's cases `case_ids`) in the same
    /// transaction; `409 invalid_state` once held, `409 changed_meanwhile` when the cases
    /// on it are no longer `case_ids` (compose again).
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn reschedule_session(
        &self, id: Uuid, starts_at: DateTime<Utc>, case_ids: &[Uuid], audit: NewAuditEvent,
        mail: Vec<NewMessage>,
    ) -> Result<Session, StoreError> {
        let mut tx = self.db.write().await?;
        let mut session = session_in(&mut tx, id).await?;
        booking::check_changeable(&session, "moved")?;
        let current = rows::ids(&tx.all(HOLDING, args![id]).await?, "id")?;
        booking::check_agenda_order(&current, case_ids).map_err(|_| Conflict::Changed)?;
        tx.run("UPDATE sessions SET starts_at = $2 WHERE id = $1", args![id, starts_at]).await?;
        session.starts_at = starts_at;
        commit_with(tx, id, audit, &mail).await?;
        Ok(session)
    }

    /// Plans a cancellation from the session as it stands: where each waiting case would
    /// go (`domain::booking::rebooking_plan`). Nothing changes until `cancel_session`.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn plan_cancellation(
        &self, id: Uuid, now: DateTime<Utc>,
    ) -> Result<CancelPlan, StoreError> {
        let mut tx = self.db.snapshot().await?;
        let row = tx.opt("SELECT * FROM sessions WHERE id = $1", args![id]).await?;
        let session = rows::session(&row.ok_or(StoreError::NotFound("session"))?)?;
        booking::check_changeable(&session, "cancelled")?;
        let cases: Vec<Case> =
            tx.all(HOLDING, args![id]).await?.iter().map(rows::case).collect::<Result<_, _>>()?;
        let later = later_candidates_in(&mut tx, &session).await?;
        let sessions: Vec<Session> = later.iter().map(|c| c.session.clone()).collect();
        tx.commit().await?;
        let plan = booking::rebooking_plan(&cases, later, now);
        let cases = plan
            .into_iter()
            .filter_map(|(case_id, target)| {
                let case = cases.iter().find(|c| c.id == case_id)?.clone();
                let target = target.and_then(|t| sessions.iter().find(|s| s.id == t).cloned());
                Some((case, target.map(|t| (t, Uuid::new_v4()))))
            })
            .collect();
        Ok(CancelPlan { session, cases })
    }

    /// Cancels a session as `plan` says, with `audit` and `mail` (composed by the caller
    /// from the plan) in one transaction. `409 changed_meanwhile` when the session, its
    /// cases or the room in a target changed since the plan was made (plan again).
    #[tracing::instrument(skip_all, fields(session_id = %plan.session.id))]
    pub async fn cancel_session(
        &self, plan: &CancelPlan, audit: NewAuditEvent, mail: Vec<NewMessage>, now: DateTime<Utc>,
    ) -> Result<Cancelled, StoreError> {
        let id = plan.session.id;
        let mut tx = self.db.write().await?;
        let targets = plan.cases.iter().filter_map(|(_, t)| t.as_ref().map(|t| t.0.id));
        tx.lock_sessions(&targets.chain([id]).collect::<Vec<_>>()).await?;
        let mut session = session_in(&mut tx, id).await?;
        booking::check_changeable(&session, "cancelled")?;
        let waiting: Vec<Case> =
            tx.all(HOLDING, args![id]).await?.iter().map(rows::case).collect::<Result<_, _>>()?;
        let waiting: Vec<Uuid> =
            waiting.iter().filter(|c| c.state.withdrawable()).map(|c| c.id).collect();
        let planned: Vec<Uuid> = plan.cases.iter().map(|(c, _)| c.id).collect();
        booking::check_agenda_order(&waiting, &planned).map_err(|_| Conflict::Changed)?;
        tx.run("UPDATE sessions SET state = 'cancelled' WHERE id = $1", args![id]).await?;
        let mut report =
            Cancelled { session: session.clone(), moved: Vec::new(), flagged: Vec::new() };
        for (case, target) in &plan.cases {
            let case = lock_case(&mut tx, case.id).await?;
            match target {
                Some((target, new_id)) => {
                    let moved = move_into(&mut tx, &case, target.id, *new_id, true, now)
                        .await
                        .map_err(|e| match e {
                            StoreError::Conflict(_) => Conflict::Changed.into(),
                            other => other,
                        })?;
                    report.moved.push((case.id, moved));
                }
                None => {
                    release_case(&mut tx, &case, true).await?;
                    report.flagged.push(case.id);
                }
            }
        }
        commit_with(tx, id, audit, &mail).await?;
        session.state = SessionState::Cancelled;
        session.booked = 0;
        report.session = session;
        Ok(report)
    }

    /// The booking this referrer already made with this idempotency key, if any.
    async fn idempotent_case(&self, case: &NewCase) -> Result<Option<Case>, StoreError> {
        let Some(key) = &case.idempotency_key else {
            return Ok(None);
        };
        let row = self.db.opt(BY_IDEMPOTENCY_KEY, args![case.referrer_id, key]).await?;
        row.as_ref().map(rows::case).transpose()
    }

    /// Books a case all-or-nothing: the session must be bookable, before its cut-off, not
    /// holding the same patient, and below capacity (never over-booked under any race).
    /// With an idempotency key already used by this referrer, returns that booking.
    /// `audit` (naming the new case) and `mail` are written in the booking's transaction.
    #[tracing::instrument(skip_all, fields(case_id = %case.id, session_id = %case.session_id))]
    pub async fn book_case(
        &self, case: NewCase, audit: NewAuditEvent, mail: Vec<NewMessage>, now: DateTime<Utc>,
    ) -> Result<Booked, StoreError> {
        if let Some(existing) = self.idempotent_case(&case).await? {
            return replay_of(existing, &case);
        }
        let mut tx = self.db.write().await?;
        let booked = match book_in(&mut tx, &case, audit, &mail, now).await {
            Err(e) if e.is_unique(Unique::BookingIdempotency) => {
                // A concurrent retry with the same key won the race: answer with its booking.
                drop(tx);
                let existing =
                    self.idempotent_case(&case).await?.ok_or(StoreError::NotFound("case"))?;
                return replay_of(existing, &case);
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(Booked { case: booked, replayed: false })
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    pub async fn case(&self, id: Uuid) -> Result<Option<Case>, StoreError> {
        let row = self.db.opt("SELECT * FROM cases WHERE id = $1", args![id]).await?;
        row.as_ref().map(rows::case).transpose()
    }

    /// The agenda: the cases triage put on it, in the chair's order, else urgent first,
    /// then by booking time.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn session_cases(&self, session_id: Uuid) -> Result<Vec<Case>, StoreError> {
        self.db.all(AGENDA, args![session_id]).await?.iter().map(rows::case).collect()
    }

    /// Every case holding a slot in the session, on the agenda or still in triage.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn session_bookings(&self, session_id: Uuid) -> Result<Vec<Case>, StoreError> {
        self.db.all(HOLDING, args![session_id]).await?.iter().map(rows::case).collect()
    }

    /// A referrer's cases, newest first, in every state.
    #[tracing::instrument(skip_all, fields(referrer_id = %referrer.0))]
    pub async fn referrer_cases(&self, referrer: UserId) -> Result<Vec<Case>, StoreError> {
        let rows = self.db.all(REFERRER_CASES, args![referrer]).await?;
        rows.iter().map(rows::case).collect()
    }

    /// Sets the agenda order; `case_ids` must be exactly the cases now on the agenda
    /// (`409 agenda_changed` otherwise).
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn reorder_agenda(
        &self, session_id: Uuid, case_ids: &[Uuid], audit: NewAuditEvent,
    ) -> Result<Vec<Case>, StoreError> {
        let mut tx = self.db.write().await?;
        session_in(&mut tx, session_id).await?;
        set_agenda_order(&mut tx, session_id, case_ids).await?;
        append_audit_in(&mut tx, audit.record(session_id)).await?;
        tx.commit().await?;
        self.session_cases(session_id).await
    }

    /// Moves a case that has not been discussed into another bookable session with room:
    /// the old row stays as history (`deferred`), a new row (`new_id`) is booked.
    #[tracing::instrument(skip_all, fields(case_id = %id, target = %target))]
    pub async fn move_case(
        &self, id: Uuid, target: Uuid, new_id: Uuid, audit: NewAuditEvent, mail: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Case, StoreError> {
        let mut tx = self.db.write().await?;
        let case = lock_case_and_session(&mut tx, id, Some(target)).await?;
        booking::check_movable(&case)?;
        if case.session_id == target {
            return Err(Conflict::SameSession.into());
        }
        let moved = move_into(&mut tx, &case, target, new_id, true, now).await?;
        append_audit_in(&mut tx, audit.record(new_id)).await?;
        for message in &mail {
            enqueue_in(&mut tx, message, now).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Withdraws a case that has not been discussed and frees its slot, with `audit`,
    /// atomically; a withdrawn case leaves the mentorship backlog.
    #[tracing::instrument(skip_all, fields(case_id = %id))]
    pub async fn withdraw_case(&self, id: Uuid, audit: NewAuditEvent) -> Result<Case, StoreError> {
        let mut tx = self.db.write().await?;
        let mut case = lock_case_and_session(&mut tx, id, None).await?;
        booking::check_movable(&case)?;
        tx.run("UPDATE cases SET state = 'withdrawn' WHERE id = $1", args![id]).await?;
        tx.run(FREE_SLOT, args![case.session_id]).await?;
        // A withdrawn case leaves the mentorship backlog, cleared by whoever withdrew it.
        if let Some(actor) = audit.actor_id {
            let at = audit.occurred_at;
            tx.run(CLEAR_FLAG, args![at, clinic_date(at), actor, id]).await?;
        }
        append_audit_in(&mut tx, audit.record(id)).await?;
        tx.commit().await?;
        case.state = CaseState::Withdrawn;
        Ok(case)
    }
}

/// Writes the agenda order after checking it names exactly the cases on the agenda.
pub(super) async fn set_agenda_order(
    tx: &mut Tx, session_id: Uuid, case_ids: &[Uuid],
) -> Result<(), StoreError> {
    let current = rows::ids(&tx.all(AGENDA, args![session_id]).await?, "id")?;
    booking::check_agenda_order(&current, case_ids)?;
    if case_ids.is_empty() {
        return Ok(());
    }
    // One statement for the whole agenda (a write transaction holds the lock for every
    // statement it runs): `$k` is the case at position k.
    let positions: String = (1..=case_ids.len()).map(|k| format!(" WHEN ${k} THEN {k}")).collect();
    let ids: Vec<String> = (1..=case_ids.len()).map(|k| format!("${k}")).collect();
    let session = case_ids.len() + 1;
    let sql = format!(
        "UPDATE cases SET agenda_position = CASE id{positions} END \
         WHERE session_id = ${session} AND id IN ({})",
        ids.join(", ")
    );
    let mut args: Vec<Arg> = case_ids.iter().map(|id| Arg::from(*id)).collect();
    args.push(Arg::from(session_id));
    tx.run(sql, args).await?;
    Ok(())
}

/// A stored booking found under the request's idempotency key is the answer only if the
/// request is the same booking (same session and patient); otherwise the key was reused.
fn replay_of(existing: Case, request: &NewCase) -> Result<Booked, StoreError> {
    if existing.session_id == request.session_id
        && existing.patient.nhs_number == request.patient.nhs_number
    {
        Ok(Booked { case: existing, replayed: true })
    } else {
        Err(StoreError::Invalid(ParseError::new(
            "idempotency_key_reused",
            "Idempotency-Key",
            "this key was used for a different booking",
        )))
    }
}
