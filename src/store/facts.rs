//! The report's facts kept on case and session rows (issue 17): each is written by the
//! transaction that makes it true, so the reports aggregate columns instead of reading
//! events, outcome bodies and letters. Migration 0017 backfilled them; this module is the
//! only writer since.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::db::Tx;
use super::error::StoreError;
use super::sql::args;
use crate::domain::measures::MixFacts;
use crate::domain::{Case, OutcomeVersion};

/// A moved case row keeps its episode's first booking.
pub(super) async fn case_inserted_in(tx: &mut Tx, case: &Case) -> Result<(), StoreError> {
    let Some(from) = case.moved_from else { return Ok(()) };
    let sql = "UPDATE cases SET episode_booked_at = (SELECT COALESCE(p.episode_booked_at, \
               p.booked_at) FROM cases p WHERE p.id = $1) WHERE id = $2";
    tx.run(sql, args![from, case.id]).await.map(|_| ())
}

/// The first triage decision on a case row.
pub(super) async fn triaged_in(
    tx: &mut Tx, case_id: Uuid, at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE cases SET first_triaged_at = COALESCE(first_triaged_at, $1) WHERE id = $2";
    tx.run(sql, args![at, case_id]).await.map(|_| ())
}

/// A case's live discussion started (`started`) or ended (completed or deferred); the
/// first of each counts.
pub(super) async fn discussion_in(
    tx: &mut Tx, case_id: Uuid, session_id: Uuid, started: bool, at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = if started {
        "UPDATE cases SET discussion_started_at = COALESCE(discussion_started_at, $1) \
         WHERE id = $2 AND session_id = $3"
    } else {
        "UPDATE cases SET discussion_ended_at = COALESCE(discussion_ended_at, $1) \
         WHERE id = $2 AND session_id = $3"
    };
    tx.run(sql, args![at, case_id, session_id]).await.map(|_| ())
}

/// After someone joined: the session is quorate from now if its chair and its
/// specialty's `quorum_others` other consultants or practitioners are present.
pub(super) async fn joined_in(
    tx: &mut Tx, session_id: Uuid, at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE sessions SET quorate_at = $1 WHERE id = $2 AND quorate_at IS NULL \
       AND EXISTS (SELECT 1 FROM attendance a WHERE a.session_id = sessions.id \
                   AND a.user_id = sessions.chair_id AND a.left_at IS NULL) \
       AND (SELECT COUNT(DISTINCT a.user_id) FROM attendance a WHERE a.session_id = sessions.id \
            AND a.user_id <> sessions.chair_id AND a.left_at IS NULL \
            AND a.role IN ('consultant', 'practitioner')) \
           >= (SELECT sp.quorum_others FROM specialties sp WHERE sp.slug = sessions.specialty)";
    tx.run(sql, args![at, session_id]).await.map(|_| ())
}

/// A version of the case's outcome was signed (first signing, amendment or a listed
/// case's confirmation): the first signing's time, whether any was outside the meeting,
/// and the signed version's outcome mix.
pub(super) async fn signed_in(tx: &mut Tx, version: &OutcomeVersion) -> Result<(), StoreError> {
    let Some(signed_at) = version.signed_at else { return Ok(()) };
    let mix = MixFacts::of(&version.body.summary());
    let sql = "UPDATE cases SET first_signed_at = COALESCE(first_signed_at, $1), \
       outside_meeting = CASE WHEN $2 THEN 1 ELSE outside_meeting END, \
       outcome_discharged = $3, outcome_onward = $4, outcome_investigations = $5, \
       outcome_re_discuss = $6 WHERE id = $7";
    let outside = version.outside_meeting_reason.is_some();
    let mut values = args![signed_at, outside, i64::from(mix.discharged), mix.onward];
    values.extend(args![mix.investigations, i64::from(mix.re_discuss), version.case_id]);
    tx.run(sql, values).await.map(|_| ())
}

/// Letter deliveries were made at `at` (printed, or their email sent): the case's
/// communication clocks are met by the first GP letter to reach the referrer and the
/// first patient letter to reach the patient. `deliveries` picks the deliveries: a
/// condition on `d` with `$2` bound to `key`.
pub(super) async fn delivered_in(
    tx: &mut Tx, deliveries: &str, key: Uuid, at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (column, kind, recipient) in [
        ("referrer_informed_at", "gp", "referrer"),
        ("patient_letter_sent_at", "patient", "patient"),
    ] {
        let sql = format!(
            "UPDATE cases SET {column} = COALESCE({column}, $1) WHERE id IN \
             (SELECT l.case_id FROM letter_deliveries d JOIN letters l ON l.id = d.letter_id \
              WHERE {deliveries} AND l.kind = '{kind}' AND d.recipient = '{recipient}')"
        );
        tx.run(sql, args![at, key]).await?;
    }
    Ok(())
}
