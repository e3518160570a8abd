//! Mentorship and attendance (issue 7): contracts, logs and the backlog of cases flagged
//! for mentorship; the sessions a person attended (their CPD record). The arithmetic and
//! the rules live in `domain::mentorship` and `domain::booking`; this module only stores
//! and reads, each statement written once for both backends.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use uuid::Uuid;

use super::db::{args, values_list, Arg, Row};
use super::{rows, AttendedSession, Store, StoreError};
use crate::domain::booking::check_flaggable;
use crate::domain::conflict::Conflict;
use crate::domain::live::Attendance;
use crate::domain::mentorship::{
    clinic_date, Contract, DateRange, MentorshipFlag, MentorshipKind, MentorshipLog,
};
use crate::domain::{NewAuditEvent, ParseError, Role, UserId};

/// A contract's consultant, arm or author must exist.
fn unknown_reference() -> StoreError {
    StoreError::Invalid(ParseError::new(
        "unknown_reference",
        "specialty",
        "the specialty or chair does not exist",
    ))
}

/// A log's cases and mentees must exist.
fn unknown_log_reference() -> StoreError {
    StoreError::Invalid(ParseError::new(
        "unknown_reference",
        "case_ids",
        "names a case or mentee that does not exist",
    ))
}

/// A minutes or weeks figure for an INTEGER column (PostgreSQL compares int4 strictly);
/// the domain bounds them far below `i32::MAX`.
fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// One stay at a session (a new row each time the person joined).
pub(super) fn attendance(row: &Row) -> Result<Attendance, StoreError> {
    Ok(Attendance {
        session_id: row.get("session_id")?,
        user_id: row.get("user_id")?,
        role: rows::parsed(row, "role", str::parse::<Role>)?,
        joined_at: row.get("joined_at")?,
        left_at: row.get("left_at")?,
    })
}

/// A stored log; its mentees and cases are read separately and passed in.
fn log_from(
    row: &Row,
    mentee_ids: Vec<UserId>,
    case_ids: Vec<Uuid>,
) -> Result<MentorshipLog, StoreError> {
    Ok(MentorshipLog {
        id: row.get("id")?,
        consultant_id: row.get("consultant_id")?,
        specialty: rows::specialty(row, "specialty")?,
        mentee_ids,
        occurred_on: row.get("occurred_on")?,
        duration_minutes: rows::count(row, "duration_minutes")?,
        kind: rows::parsed(row, "kind", MentorshipKind::parse)?,
        case_ids,
        // A JSON array of strings.
        learning_points: rows::parsed(row, "learning_points", |s| {
            serde_json::from_str::<Vec<String>>(s)
        })?,
        created_at: row.get("created_at")?,
    })
}

/// The case's open flag, read (and locked on PostgreSQL) inside the caller's transaction.
async fn open_flag_in(
    tx: &mut super::Tx,
    case_id: Uuid,
) -> Result<Option<MentorshipFlag>, StoreError> {
    let sql = "SELECT * FROM mentorship_flags WHERE case_id = $1 AND cleared_at IS NULL FOR UPDATE";
    tx.opt(sql, args![case_id])
        .await?
        .as_ref()
        .map(rows::flag)
        .transpose()
}

impl Store {
    /// Stores a contract with its audit event; `409 contract_overlaps` when the consultant
    /// already has a contract in the same arm on one of its days.
    #[tracing::instrument(skip_all, fields(contract_id = %contract.id))]
    pub async fn create_mentorship_contract(
        &self,
        contract: &Contract,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        // Two contracts for one consultant are checked for overlap one at a time.
        tx.run(
            "SELECT id FROM users WHERE id = $1 FOR UPDATE",
            args![contract.consultant_id],
        )
        .await?;
        let existing = tx
            .all(
                "SELECT * FROM mentorship_contracts WHERE consultant_id = $1 AND specialty = $2",
                args![contract.consultant_id, contract.specialty.as_str()],
            )
            .await?;
        for row in &existing {
            if rows::contract(row)?.overlaps(contract) {
                return Err(Conflict::ContractOverlaps.into());
            }
        }
        let inserted = tx
            .run(
                "INSERT INTO mentorship_contracts (id, consultant_id, specialty, minutes_per_week, \
                 weeks_per_year, starts_on, ends_on, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                args![
                    contract.id,
                    contract.consultant_id,
                    contract.specialty.as_str(),
                    int(contract.minutes_per_week),
                    int(contract.weeks_per_year),
                    contract.starts_on,
                    contract.ends_on,
                    contract.created_by,
                    contract.created_at
                ],
            )
            .await;
        match inserted {
            Err(e) if e.is_foreign_key() => return Err(unknown_reference()),
            other => other?,
        };
        super::audit::append_audit_in(&mut tx, audit.record(contract.id)).await?;
        tx.commit().await
    }

    /// Contracts of one consultant, or all, by consultant, arm and start.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_contracts(
        &self,
        consultant: Option<UserId>,
    ) -> Result<Vec<Contract>, StoreError> {
        let sql =
            "SELECT * FROM mentorship_contracts WHERE ($1::uuid IS NULL OR consultant_id = $1) \
                   ORDER BY consultant_id, specialty, starts_on";
        let found = self.db.all(sql, args![consultant]).await?;
        found.iter().map(rows::contract).collect()
    }

    /// Stores a log with its mentees and cases and, in the same transaction, clears the
    /// backlog flag of every case it discusses (cleared on the log's day, by the log),
    /// with `audit`. Returns the cases whose flag it cleared. A case or mentee that does
    /// not exist refuses the whole log (`422 unknown_reference`).
    #[tracing::instrument(skip_all, fields(log_id = %log.id))]
    pub async fn create_mentorship_log(
        &self,
        log: &MentorshipLog,
        audit: Vec<NewAuditEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let fk = |done: Result<u64, StoreError>| match done {
            Err(e) if e.is_foreign_key() => Err(unknown_log_reference()),
            other => other,
        };
        let points = serde_json::to_string(&log.learning_points)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
        let mut tx = self.db.write().await?;
        let insert = tx.run(
            "INSERT INTO mentorship_logs (id, consultant_id, specialty, occurred_on, \
             duration_minutes, kind, learning_points, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![
                log.id,
                log.consultant_id,
                log.specialty.as_str(),
                log.occurred_on,
                int(log.duration_minutes),
                log.kind.as_str(),
                points,
                log.created_at
            ],
        );
        fk(insert.await)?;
        if !log.mentee_ids.is_empty() {
            let sql = format!(
                "INSERT INTO mentorship_log_mentees (log_id, user_id) VALUES {}",
                values_list(log.mentee_ids.len(), 2)
            );
            let pairs: Vec<Arg> = log
                .mentee_ids
                .iter()
                .flat_map(|m| args![log.id, *m])
                .collect();
            fk(tx.run(sql, pairs).await)?;
        }
        let mut cleared = Vec::new();
        if !log.case_ids.is_empty() {
            let sql = format!(
                "INSERT INTO mentorship_log_cases (log_id, case_id) VALUES {}",
                values_list(log.case_ids.len(), 2)
            );
            let pairs: Vec<Arg> = log
                .case_ids
                .iter()
                .flat_map(|c| args![log.id, *c])
                .collect();
            fk(tx.run(sql, pairs).await)?;
            let done = tx
                .all(
                    "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, cleared_by = $3, \
                     cleared_by_log = $4 WHERE case_id = ANY($5) AND cleared_at IS NULL \
                     AND flagged_on <= $2 RETURNING case_id",
                    args![now, log.occurred_on, log.consultant_id, log.id, &log.case_ids[..]],
                )
                .await?;
            let done: HashSet<Uuid> = rows::ids(&done, "case_id")?.into_iter().collect();
            // In the log's order, as the old per-case loop returned them.
            cleared = log
                .case_ids
                .iter()
                .copied()
                .filter(|c| done.contains(c))
                .collect();
        }
        super::audit::append_audits_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(cleared)
    }

    /// Logs dated within `range`, oldest first; with `involving`, only those where that
    /// person is the consultant or a mentee.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_logs(
        &self,
        range: DateRange,
        involving: Option<UserId>,
    ) -> Result<Vec<MentorshipLog>, StoreError> {
        const FILTER: &str = "occurred_on >= $1 AND occurred_on <= $2 AND ($3::uuid IS NULL \
             OR consultant_id = $3 OR id IN (SELECT log_id FROM mentorship_log_mentees WHERE user_id = $3))";
        let window = || args![range.from, range.to, involving];
        let logs = self
            .db
            .all(format!("SELECT * FROM mentorship_logs WHERE {FILTER} ORDER BY occurred_on, created_at, id"), window())
            .await?;
        let mut mentees: HashMap<Uuid, Vec<UserId>> = HashMap::new();
        let sql = format!(
            "SELECT log_id, user_id FROM mentorship_log_mentees WHERE log_id IN \
             (SELECT id FROM mentorship_logs WHERE {FILTER}) ORDER BY user_id"
        );
        for row in self.db.all(sql, window()).await? {
            mentees
                .entry(row.get("log_id")?)
                .or_default()
                .push(row.get("user_id")?);
        }
        let mut cases: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let sql = format!(
            "SELECT c.log_id, c.case_id FROM mentorship_log_cases c JOIN cases k ON k.id = c.case_id \
             WHERE c.log_id IN (SELECT id FROM mentorship_logs WHERE {FILTER}) ORDER BY k.booked_at, c.case_id"
        );
        for row in self.db.all(sql, window()).await? {
            cases
                .entry(row.get("log_id")?)
                .or_default()
                .push(row.get("case_id")?);
        }
        logs.iter()
            .map(|row| {
                let id: Uuid = row.get("id")?;
                log_from(
                    row,
                    mentees.remove(&id).unwrap_or_default(),
                    cases.remove(&id).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Puts a case on its arm's backlog (the arm is its session's specialty), with
    /// `audit`. Returns the open flag and whether this call made it (flagging a flagged
    /// case changes nothing). `404` for an unknown case, `409 invalid_state` for a
    /// withdrawn or deferred one.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn flag_for_mentorship(
        &self,
        case_id: Uuid,
        by: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(MentorshipFlag, bool), StoreError> {
        let mut tx = self.db.write().await?;
        let case = super::schedule::lock_case(&mut tx, case_id).await?;
        check_flaggable(&case)?;
        if let Some(open) = open_flag_in(&mut tx, case_id).await? {
            return Ok((open, false));
        }
        let session = super::schedule::session_in(&mut tx, case.session_id).await?;
        let now = now.trunc_subsecs(6);
        let flag = MentorshipFlag {
            case_id,
            specialty: session.plan.specialty,
            flagged_by: by,
            flagged_at: now,
            flagged_on: clinic_date(now),
            cleared_on: None,
            cleared_by_log: None,
        };
        tx.run(
            "INSERT INTO mentorship_flags (id, case_id, specialty, flagged_by, flagged_at, flagged_on) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![Uuid::new_v4(), case_id, flag.specialty.as_str(), by, now, flag.flagged_on],
        )
        .await?;
        super::audit::append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok((flag, true))
    }

    /// Takes a case off the backlog without a log (cleared today), with `audit`; `None`
    /// when it was not flagged.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn unflag_for_mentorship(
        &self,
        case_id: Uuid,
        by: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<MentorshipFlag>, StoreError> {
        let mut tx = self.db.write().await?;
        let Some(mut flag) = open_flag_in(&mut tx, case_id).await? else {
            return Ok(None);
        };
        flag.cleared_on = Some(clinic_date(now));
        tx.run(
            "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, cleared_by = $3 \
             WHERE case_id = $4 AND cleared_at IS NULL",
            args![now, flag.cleared_on, by, case_id],
        )
        .await?;
        super::audit::append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok(Some(flag))
    }

    /// The case's open flag, if any.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn mentorship_flag(
        &self,
        case_id: Uuid,
    ) -> Result<Option<MentorshipFlag>, StoreError> {
        let sql = "SELECT * FROM mentorship_flags WHERE case_id = $1 AND cleared_at IS NULL";
        self.db
            .opt(sql, args![case_id])
            .await?
            .as_ref()
            .map(rows::flag)
            .transpose()
    }

    /// Flags open at the end of `as_of`: flagged on or before it and not cleared by then.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_backlog(
        &self,
        as_of: NaiveDate,
    ) -> Result<Vec<MentorshipFlag>, StoreError> {
        let sql = "SELECT * FROM mentorship_flags WHERE flagged_on <= $1 \
                   AND (cleared_on IS NULL OR cleared_on > $1) ORDER BY flagged_at, case_id";
        self.db
            .all(sql, args![as_of])
            .await?
            .iter()
            .map(rows::flag)
            .collect()
    }

    /// Sessions starting in `[from, to)` that `user` attended, in start order, each with
    /// the user's stays and the cases that reached discussion.
    #[tracing::instrument(skip_all, fields(user_id = %user.0))]
    pub async fn attended_sessions(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AttendedSession>, StoreError> {
        let sessions = self
            .db
            .all(
                "SELECT * FROM sessions WHERE starts_at >= $1 AND starts_at < $2 \
                 AND id IN (SELECT session_id FROM attendance WHERE user_id = $3) ORDER BY starts_at, id",
                args![from, to, user],
            )
            .await?;
        let mut out = Vec::with_capacity(sessions.len());
        for row in &sessions {
            let session = rows::session(row)?;
            let stays = self
                .db
                .all(
                    "SELECT session_id, user_id, role, joined_at, left_at FROM attendance \
                     WHERE session_id = $1 AND user_id = $2 ORDER BY joined_at",
                    args![session.id, user],
                )
                .await?;
            let cases = self
                .db
                .all(
                    "SELECT * FROM cases WHERE session_id = $1 \
                     AND state IN ('in_discussion', 'discussed', 'outcome_signed') \
                     ORDER BY COALESCE(agenda_position, 2147483647), \
                     CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id",
                    args![session.id],
                )
                .await?;
            out.push(AttendedSession {
                session,
                stays: stays.iter().map(attendance).collect::<Result<_, _>>()?,
                cases: cases.iter().map(rows::case).collect::<Result<_, _>>()?,
            });
        }
        Ok(out)
    }
}
