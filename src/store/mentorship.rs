//! Mentorship and attendance (issue 7): contracts, their covers (issue 21), logs and the
//! backlog of cases flagged for mentorship (with the caseload cases waiting for advice);
//! the sessions a person attended (their CPD record). The arithmetic and the rules live in `domain::mentorship` and `domain::booking`; this module only stores
//! and reads, each statement written once for both backends.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::{or_unknown, StoreError, UNKNOWN_SPECIALTY_OR_CHAIR};
use super::rows;
use super::sql::{args, values_list, Column, Row};
use crate::domain::booking::check_flaggable;
use crate::domain::conflict::Conflict;
use crate::domain::live::Attendance;
use crate::domain::mentorship::{
    clinic_date, BacklogSource, Contract, Cover, DateRange, MentorshipFlag, MentorshipKind,
    MentorshipLog,
};
use crate::domain::{Case, NewAuditEvent, Session, UserId};

/// One session in a person's attendance record.
#[derive(Clone, Debug)]
pub struct AttendedSession {
    pub session: Session,
    /// The person's stays (a new row each time they joined).
    pub stays: Vec<Attendance>,
    /// The cases discussed (in discussion, discussed or signed), in agenda order.
    pub cases: Vec<Case>,
}

/// What a log naming a case or mentee that does not exist is told.
const UNKNOWN_LOG_REFERENCE: &str = "names a case or mentee that does not exist";

/// Each log's mentees or cases, by log id.
type Links<T> = HashMap<Uuid, Vec<T>>;

/// `log_id` → the `column` of its rows, in row order.
fn links<T: Column>(found: Vec<Row>, column: &str) -> Result<Links<T>, StoreError> {
    let mut out = Links::new();
    for row in found {
        let list: &mut Vec<T> = out.entry(row.get("log_id")?).or_default();
        list.push(row.get(column)?);
    }
    Ok(out)
}

/// A stored log, taking its mentees and cases from those read for it.
fn log_from(
    row: &Row, mentees: &mut Links<UserId>, cases: &mut Links<Uuid>,
) -> Result<MentorshipLog, StoreError> {
    let id = row.get("id")?;
    Ok(MentorshipLog {
        id,
        consultant_id: row.get("consultant_id")?,
        specialty: rows::specialty(row, "specialty")?,
        mentee_ids: mentees.remove(&id).unwrap_or_default(),
        occurred_on: row.get("occurred_on")?,
        duration_minutes: rows::count(row, "duration_minutes")?,
        kind: rows::parsed(row, "kind", MentorshipKind::parse)?,
        case_ids: cases.remove(&id).unwrap_or_default(),
        // Stored as a JSON array of strings.
        learning_points: rows::parsed(row, "learning_points", |s| serde_json::from_str(s))?,
        created_at: row.get("created_at")?,
    })
}

/// Links a log to its mentees and its cases, one statement each.
async fn link(tx: &mut Tx, log: &MentorshipLog) -> Result<(), StoreError> {
    let mentees: Vec<Uuid> = log.mentee_ids.iter().map(|m| m.0).collect();
    let tables = [
        ("mentorship_log_mentees (log_id, user_id)", &mentees),
        ("mentorship_log_cases (log_id, case_id)", &log.case_ids),
    ];
    for (table, ids) in tables.into_iter().filter(|(_, ids)| !ids.is_empty()) {
        let sql = format!("INSERT INTO {table} VALUES {}", values_list(ids.len(), 2));
        let pairs = ids.iter().flat_map(|id| args![log.id, *id]).collect();
        or_unknown(tx.run(sql, pairs).await, "case_ids", UNKNOWN_LOG_REFERENCE)?;
    }
    Ok(())
}

/// Covers with their contract's arm.
const COVERS: &str = "SELECT v.*, c.specialty FROM mentorship_covers v \
     JOIN mentorship_contracts c ON c.id = v.contract_id";

fn cover(row: &Row) -> Result<Cover, StoreError> {
    Ok(Cover {
        id: row.get("id")?,
        contract_id: row.get("contract_id")?,
        specialty: rows::specialty(row, "specialty")?,
        consultant_id: row.get("consultant_id")?,
        from: row.get("starts_on")?,
        to: row.get("ends_on")?,
        created_by: row.get("created_by")?,
        created_at: row.get("created_at")?,
    })
}

/// The case's open flag, read (and locked on PostgreSQL) inside the caller's transaction.
async fn open_flag_in(tx: &mut Tx, case_id: Uuid) -> Result<Option<MentorshipFlag>, StoreError> {
    let sql = "SELECT * FROM mentorship_flags WHERE case_id = $1 AND cleared_at IS NULL FOR UPDATE";
    let row = tx.opt(sql, args![case_id]).await?;
    row.as_ref().map(rows::flag).transpose()
}

impl Store {
    /// Stores a contract with its audit event; `409 contract_overlaps` when the consultant
    /// already has a contract in the same arm on one of its days.
    #[tracing::instrument(skip_all, fields(contract_id = %contract.id))]
    pub async fn create_mentorship_contract(
        &self, contract: &Contract, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let c = contract;
        let mut tx = self.db.write().await?;
        // Two contracts for one consultant are checked for overlap one at a time.
        let lock = "SELECT id FROM users WHERE id = $1 FOR UPDATE";
        tx.run(lock, args![c.consultant_id]).await?;
        let same_arm = "SELECT * FROM mentorship_contracts \
                        WHERE consultant_id = $1 AND specialty = $2";
        let arm = args![c.consultant_id, c.specialty.as_str()];
        for row in &tx.all(same_arm, arm).await? {
            if rows::contract(row)?.overlaps(c) {
                return Err(Conflict::ContractOverlaps.into());
            }
        }
        let insert = "INSERT INTO mentorship_contracts (id, consultant_id, specialty, \
             minutes_per_week, weeks_per_year, starts_on, ends_on, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        // INTEGER columns: PostgreSQL compares int4 strictly; the domain bounds both.
        let (minutes, weeks) = (c.minutes_per_week as i32, c.weeks_per_year as i32);
        let mut values = args![c.id, c.consultant_id, c.specialty.as_str(), minutes, weeks];
        values.extend(args![c.starts_on, c.ends_on, c.created_by, c.created_at]);
        or_unknown(tx.run(insert, values).await, "specialty", UNKNOWN_SPECIALTY_OR_CHAIR)?;
        super::audit::append_audit_in(&mut tx, audit.record(c.id)).await?;
        tx.commit().await
    }

    /// Contracts of one consultant, or all, by consultant, arm and start.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_contracts(
        &self, consultant: Option<UserId>,
    ) -> Result<Vec<Contract>, StoreError> {
        let sql = "SELECT * FROM mentorship_contracts WHERE ($1::uuid IS NULL \
                   OR consultant_id = $1) ORDER BY consultant_id, specialty, starts_on";
        let found = self.db.all(sql, args![consultant]).await?;
        found.iter().map(rows::contract).collect()
    }

    /// One contract.
    #[tracing::instrument(skip_all, fields(contract_id = %id))]
    pub async fn mentorship_contract(&self, id: Uuid) -> Result<Option<Contract>, StoreError> {
        let sql = "SELECT * FROM mentorship_contracts WHERE id = $1";
        let row = self.db.opt(sql, args![id]).await?;
        row.as_ref().map(rows::contract).transpose()
    }

    /// Stores a cover of a contract with `audit`; `409 cover_overlaps` when the contract
    /// already has a cover on one of its days (covers of one contract are checked one at a
    /// time, under the contract's lock).
    #[tracing::instrument(skip_all, fields(cover_id = %cover.id))]
    pub async fn create_mentorship_cover(
        &self, cover: &Cover, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let lock = "SELECT id FROM mentorship_contracts WHERE id = $1 FOR UPDATE";
        tx.opt(lock, args![cover.contract_id]).await?.ok_or(StoreError::NotFound("contract"))?;
        let same = format!("{COVERS} WHERE v.contract_id = $1");
        for row in &tx.all(same, args![cover.contract_id]).await? {
            if self::cover(row)?.overlaps(cover) {
                return Err(Conflict::CoverOverlaps.into());
            }
        }
        let insert = "INSERT INTO mentorship_covers (id, contract_id, consultant_id, starts_on, \
             ends_on, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let v = cover;
        let values =
            args![v.id, v.contract_id, v.consultant_id, v.from, v.to, v.created_by, v.created_at];
        tx.run(insert, values).await?;
        super::audit::append_audit_in(&mut tx, audit.record(v.id)).await?;
        tx.commit().await
    }

    /// Every cover, by contract and first day.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_covers(&self) -> Result<Vec<Cover>, StoreError> {
        let sql = format!("{COVERS} ORDER BY v.contract_id, v.starts_on, v.id");
        self.db.all(sql, vec![]).await?.iter().map(cover).collect()
    }

    /// Stores a log with its mentees and cases and, in the same transaction, clears the
    /// backlog flag of every case it discusses (cleared on the log's day, by the log),
    /// with `audit`. Returns the cases whose flag it cleared. A case or mentee that does
    /// not exist refuses the whole log (`422 unknown_reference`).
    #[tracing::instrument(skip_all, fields(log_id = %log.id))]
    pub async fn create_mentorship_log(
        &self, log: &MentorshipLog, audit: Vec<NewAuditEvent>, now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let points = serde_json::to_string(&log.learning_points)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
        let mut tx = self.db.write().await?;
        let insert = "INSERT INTO mentorship_logs (id, consultant_id, specialty, occurred_on, \
             duration_minutes, kind, learning_points, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let (id, by) = (log.id, log.consultant_id);
        let mut values = args![id, by, log.specialty.as_str(), log.occurred_on];
        values.extend(args![log.duration_minutes as i32, log.kind.as_str()]);
        values.extend(args![points, log.created_at]);
        or_unknown(tx.run(insert, values).await, "case_ids", UNKNOWN_LOG_REFERENCE)?;
        link(&mut tx, log).await?;
        let clear = "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, \
             cleared_by = $3, cleared_by_log = $4 WHERE case_id = ANY($5) \
             AND cleared_at IS NULL AND flagged_on <= $2 RETURNING case_id";
        let cleared = args![now, log.occurred_on, by, id, &log.case_ids[..]];
        let cleared = tx.all(clear, cleared).await?;
        let cleared: HashSet<Uuid> = rows::ids(&cleared, "case_id")?.into_iter().collect();
        super::audit::append_audits_in(&mut tx, audit).await?;
        tx.commit().await?;
        let mut in_log_order = log.case_ids.clone();
        in_log_order.retain(|c| cleared.contains(c));
        Ok(in_log_order)
    }

    /// Logs dated within `range`, oldest first; with `involving`, only those where that
    /// person is the consultant or a mentee.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_logs(
        &self, range: DateRange, involving: Option<UserId>,
    ) -> Result<Vec<MentorshipLog>, StoreError> {
        const LOGS: &str = "SELECT * FROM mentorship_logs WHERE occurred_on >= $1 \
             AND occurred_on <= $2 AND ($3::uuid IS NULL OR consultant_id = $3 \
             OR id IN (SELECT log_id FROM mentorship_log_mentees WHERE user_id = $3)) \
             ORDER BY occurred_on, created_at, id";
        const MENTEES: &str = "SELECT log_id, user_id FROM mentorship_log_mentees \
             WHERE log_id = ANY($1) ORDER BY user_id";
        const CASES: &str = "SELECT c.log_id, c.case_id FROM mentorship_log_cases c \
             JOIN cases k ON k.id = c.case_id WHERE c.log_id = ANY($1) \
             ORDER BY k.booked_at, c.case_id";
        let window = args![range.from, range.to, involving];
        let logs = self.db.all(LOGS, window).await?;
        let ids = rows::ids(&logs, "id")?;
        let mut mentees = links(self.db.all(MENTEES, args![&ids[..]]).await?, "user_id")?;
        let mut cases = links(self.db.all(CASES, args![&ids[..]]).await?, "case_id")?;
        let decode = |row| log_from(row, &mut mentees, &mut cases);
        logs.iter().map(decode).collect()
    }

    /// Puts a case on its arm's backlog (the arm is its session's specialty), with
    /// `audit`. Returns the open flag and whether this call made it (flagging a flagged
    /// case changes nothing). `404` for an unknown case, `409 invalid_state` for a
    /// withdrawn or deferred one.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn flag_for_mentorship(
        &self, case_id: Uuid, by: UserId, audit: NewAuditEvent, now: DateTime<Utc>,
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
            source: BacklogSource::Mdt,
            specialty: session.plan.specialty,
            flagged_by: by,
            flagged_at: now,
            flagged_on: clinic_date(now),
            cleared_on: None,
            cleared_by_log: None,
        };
        let insert = "INSERT INTO mentorship_flags (id, case_id, specialty, flagged_by, \
             flagged_at, flagged_on) VALUES ($1, $2, $3, $4, $5, $6)";
        let (id, specialty) = (Uuid::new_v4(), flag.specialty.as_str());
        let values = args![id, case_id, specialty, by, now, flag.flagged_on];
        tx.run(insert, values).await?;
        super::audit::append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok((flag, true))
    }

    /// Takes a case off the backlog without a log (cleared today), with `audit`; `None`
    /// when it was not flagged.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn unflag_for_mentorship(
        &self, case_id: Uuid, by: UserId, audit: NewAuditEvent, now: DateTime<Utc>,
    ) -> Result<Option<MentorshipFlag>, StoreError> {
        let mut tx = self.db.write().await?;
        let Some(mut flag) = open_flag_in(&mut tx, case_id).await? else {
            return Ok(None);
        };
        flag.cleared_on = Some(clinic_date(now));
        let clear = "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, \
             cleared_by = $3 WHERE case_id = $4 AND cleared_at IS NULL";
        let values = args![now, flag.cleared_on, by, case_id];
        tx.run(clear, values).await?;
        super::audit::append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok(Some(flag))
    }

    /// The case's open flag, if any.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn mentorship_flag(
        &self, case_id: Uuid,
    ) -> Result<Option<MentorshipFlag>, StoreError> {
        let sql = "SELECT * FROM mentorship_flags WHERE case_id = $1 AND cleared_at IS NULL";
        let row = self.db.opt(sql, args![case_id]).await?;
        row.as_ref().map(rows::flag).transpose()
    }

    /// Flags open at the end of `as_of`: flagged on or before it and not cleared by then,
    /// with the caseload cases waiting for advice then (`caseload_backlog`), oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn mentorship_backlog(
        &self, as_of: NaiveDate,
    ) -> Result<Vec<MentorshipFlag>, StoreError> {
        let sql = "SELECT * FROM mentorship_flags WHERE flagged_on <= $1 \
                   AND (cleared_on IS NULL OR cleared_on > $1)";
        let found = self.db.all(sql, args![as_of]).await?;
        let mut open: Vec<MentorshipFlag> =
            found.iter().map(rows::flag).collect::<Result<_, _>>()?;
        open.extend(self.caseload_backlog(as_of).await?);
        open.sort_by_key(|f| (f.flagged_at, f.case_id));
        Ok(open)
    }

    /// Sessions starting in `[from, to)` that `user` attended, in start order, each with
    /// the user's stays and the cases that reached discussion.
    #[tracing::instrument(skip_all, fields(user_id = %user.0))]
    pub async fn attended_sessions(
        &self, user: UserId, from: DateTime<Utc>, to: DateTime<Utc>,
    ) -> Result<Vec<AttendedSession>, StoreError> {
        const SESSIONS: &str = "SELECT * FROM sessions WHERE starts_at >= $1 AND starts_at < $2 \
             AND id IN (SELECT session_id FROM attendance WHERE user_id = $3) \
             ORDER BY starts_at, id";
        const STAYS: &str = "SELECT session_id, user_id, role, joined_at, left_at \
             FROM attendance WHERE session_id = $1 AND user_id = $2 ORDER BY joined_at";
        // In agenda order.
        const DISCUSSED: &str = "SELECT * FROM cases WHERE session_id = $1 \
             AND state IN ('in_discussion', 'discussed', 'outcome_signed') \
             ORDER BY COALESCE(agenda_position, 2147483647), \
             CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id";
        let sessions = self.db.all(SESSIONS, args![from, to, user]).await?;
        let mut out = Vec::with_capacity(sessions.len());
        for row in &sessions {
            let session = rows::session(row)?;
            let stays = self.db.all(STAYS, args![session.id, user]).await?;
            let cases = self.db.all(DISCUSSED, args![session.id]).await?;
            out.push(AttendedSession {
                stays: stays.iter().map(rows::attendance).collect::<Result<_, _>>()?,
                cases: cases.iter().map(rows::case).collect::<Result<_, _>>()?,
                session,
            });
        }
        Ok(out)
    }
}
