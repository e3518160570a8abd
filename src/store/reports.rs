//! The activity report's reads (issue 7): sessions, case rows and attendance of a window,
//! from one consistent snapshot. The figures are computed in `domain::report`; this module
//! only fetches and decodes what it needs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::core::Store;
use super::error::StoreError;
use super::rows;
use super::sql::{args, Row};
use crate::domain::report::{ActivityData, CaseRow, ReportQuery, SessionRow, TriageRow};
use crate::domain::{OutcomeDraft, PersonName, Role, SessionState};

// Each query reads the sessions starting in [$1, $2) of the specialties in $3.

/// The sessions of the window, with their specialty's quorum.
const REPORT_SESSIONS: &str = "\
SELECT s.id, s.specialty, s.starts_at, s.state, s.minutes_per_case, s.chair_id, sp.quorum_others
FROM sessions s JOIN specialties sp ON sp.slug = s.specialty
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
ORDER BY s.starts_at, s.id";

/// Every case row booked into a session of the window, with its referrer and its latest
/// signed outcome body.
const REPORT_CASES: &str = "\
SELECT c.*, u.role AS referrer_role, u.name AS referrer_name,
       (SELECT o.body FROM outcome_versions o WHERE o.case_id = c.id AND o.signed_at IS NOT NULL
        ORDER BY o.version DESC LIMIT 1) AS outcome_body,
       (SELECT COUNT(*) FROM outcome_versions o WHERE o.case_id = c.id
        AND o.outside_meeting_reason IS NOT NULL) AS outside_meeting,
       {clock_columns}
FROM sessions s
JOIN cases c ON c.session_id = s.id
JOIN users u ON u.id = c.referrer_id
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)";

/// Each case's first live start and its first completion or deferral. `{case_id}` is the
/// one fragment the backends spell differently: the case id inside the event's JSON text
/// ([`case_id_in_payload`]).
const REPORT_TIMING: &str = "\
SELECT {case_id} AS case_id,
       MIN(CASE WHEN e.kind = 'case_started' THEN e.occurred_at END) AS started_at,
       MIN(CASE WHEN e.kind <> 'case_started' THEN e.occurred_at END) AS ended_at
FROM sessions s
JOIN session_events e ON e.session_id = s.id
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
  AND e.kind IN ('case_started', 'case_completed', 'case_deferred')
GROUP BY 1";

/// For each case row that was moved from another, its episode's first booking (following
/// `moved_from` back, possibly to before the window).
const REPORT_FIRST_BOOKED: &str = "\
WITH RECURSIVE origin(case_id, ancestor, booked_at) AS (
    SELECT c.id, c.moved_from, c.booked_at
    FROM sessions s JOIN cases c ON c.session_id = s.id
    WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3) AND c.moved_from IS NOT NULL
    UNION ALL
    SELECT o.case_id, p.moved_from, p.booked_at FROM origin o JOIN cases p ON p.id = o.ancestor
)
SELECT case_id, MIN(booked_at) AS first_booked_at FROM origin GROUP BY case_id";

/// Every stay at a session of the window.
const REPORT_ATTENDANCE: &str = "\
SELECT a.session_id, a.user_id, a.role, a.joined_at, a.left_at FROM attendance a
JOIN sessions s ON s.id = a.session_id
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
ORDER BY a.joined_at";

/// Every triage decision on a booking into a session of the window.
const REPORT_TRIAGE: &str = "\
SELECT c.session_id, t.decision, t.reason, t.submitted_at, t.decided_at
FROM sessions s
JOIN cases c ON c.session_id = s.id
JOIN triage_decisions t ON t.case_id = c.id
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
ORDER BY t.decided_at";

/// The case id in a live event's payload (stored as JSON text by both backends).
fn case_id_in_payload(postgres: bool) -> &'static str {
    if postgres {
        "(e.payload::jsonb ->> 'case_id')::uuid"
    } else {
        "json_extract(e.payload, '$.case_id')"
    }
}

/// When a case's live discussion started and ended, if it did.
type LiveSpan = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// What the report derives for a case row from other tables, read by separate queries in
/// the same snapshot and joined here (a join against an aggregated subquery has no index
/// on SQLite and turned a year's report quadratic).
#[derive(Default)]
struct ReportExtras {
    /// Live `(started_at, ended_at)` per case row.
    timing: HashMap<Uuid, LiveSpan>,
    /// The episode's first booking, for case rows that were moved from another.
    first_booked: HashMap<Uuid, DateTime<Utc>>,
}

fn report_session(row: &Row) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: row.get("id")?,
        specialty: rows::specialty(row, "specialty")?,
        starts_at: row.get("starts_at")?,
        state: rows::parsed(row, "state", |s| SessionState::parse(s).ok_or(()))?,
        minutes_per_case: rows::count(row, "minutes_per_case")?,
        chair_id: row.get("chair_id")?,
        quorum_others: rows::count(row, "quorum_others")?,
    })
}

/// Decodes every fetched row.
fn decode<T>(
    found: Vec<Row>, one: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    found.iter().map(one).collect()
}

/// A case row: the case's own columns plus its referrer, its latest signed outcome (as a
/// summary without free text) and the extras.
fn report_case(row: &Row, extras: &ReportExtras) -> Result<CaseRow, StoreError> {
    let case = rows::case(row)?;
    let outcome = row
        .get::<Option<String>>("outcome_body")?
        .map(|body| {
            serde_json::from_str::<OutcomeDraft>(&body)
                .map(|draft| draft.summary())
                .map_err(|_| StoreError::corrupt("outcome_versions.body"))
        })
        .transpose()?;
    let (started_at, ended_at) = extras.timing.get(&case.id).copied().unwrap_or_default();
    let first_booked = extras.first_booked.get(&case.id).copied();
    Ok(CaseRow {
        referrer_role: rows::parsed(row, "referrer_role", str::parse::<Role>)?,
        referrer_name: rows::parsed(row, "referrer_name", PersonName::parse)?,
        first_booked_at: first_booked.unwrap_or(case.booked_at),
        decided_outside_meeting: row.get::<i64>("outside_meeting")? > 0,
        clock: super::clocks::clock_facts(row, "id")?,
        started_at,
        ended_at,
        outcome,
        case,
    })
}

impl Store {
    /// What the activity report reads for sessions of `query.specialties` starting in
    /// `[query.starts_at, query.ends_at)`, from one consistent snapshot: the sessions
    /// (with their specialty's quorum), every case row booked into them (with its
    /// referrer, the first booking of its episode, its live start and end, and its latest
    /// signed outcome), and their attendance.
    #[tracing::instrument(skip_all, fields(specialties = query.specialties.len()))]
    pub async fn activity_data(&self, query: &ReportQuery) -> Result<ActivityData, StoreError> {
        let names = query.specialties.iter().map(|s| s.as_str().to_string());
        let specialties: Vec<String> = names.collect();
        let window = || args![query.starts_at, query.ends_at, specialties.clone()];
        // One read-only snapshot for all the reads.
        let mut tx = self.db.snapshot().await?;
        let sessions = decode(tx.all(REPORT_SESSIONS, window()).await?, report_session)?;
        let mut extras = ReportExtras::default();
        let timing = REPORT_TIMING.replace("{case_id}", case_id_in_payload(tx.is_postgres()));
        for r in tx.all(timing, window()).await? {
            let span = (r.get("started_at")?, r.get("ended_at")?);
            extras.timing.insert(r.get("case_id")?, span);
        }
        for r in tx.all(REPORT_FIRST_BOOKED, window()).await? {
            let (case_id, first) = (r.get("case_id")?, r.get("first_booked_at")?);
            extras.first_booked.insert(case_id, first);
        }
        let cases = REPORT_CASES.replace("{clock_columns}", super::clocks::CLOCK_COLUMNS);
        let cases = tx.all(cases, window()).await?;
        let cases = decode(cases, |r| report_case(r, &extras))?;
        let attendance = tx.all(REPORT_ATTENDANCE, window()).await?;
        let attendance = decode(attendance, super::rows::attendance)?;
        let triage = decode(tx.all(REPORT_TRIAGE, window()).await?, |r| {
            Ok(TriageRow {
                session_id: r.get("session_id")?,
                decision: r.get("decision")?,
                reason: r.get("reason")?,
                submitted_at: r.get("submitted_at")?,
                decided_at: r.get("decided_at")?,
            })
        })?;
        tx.commit().await?;
        Ok(ActivityData { sessions, cases, attendance, triage })
    }
}
