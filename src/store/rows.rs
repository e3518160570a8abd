//! Rows back into domain types: every stored value is parsed again on the way out, so a
//! bad row is an error rather than an unchecked string.

use chrono::NaiveDate;
use uuid::Uuid;

use super::error::StoreError;
use super::sql::Row;
use crate::domain::action::{Action, ActionKind, ActionResult, ActionStatus};
use crate::domain::live::{Attendance, LiveEvent};
use crate::domain::mentorship::{BacklogSource, Contract, MentorshipFlag};
use crate::domain::message::split_recipients;
use crate::domain::proforma::{Proforma, ProformaRequest};
use crate::domain::schedule::SessionPlan;
use crate::domain::triage::ReturnReason;
use crate::domain::{
    Attachment, AuditEvent, BodySite, Case, CaseState, ClinicalText, NhsNumber, OdsCode,
    OutboxMessage, OutcomeVersion, PatientDetails, PersonName, Role, Session, SessionState, Sex,
    Specialty, Urgency,
};

/// A text column parsed into a domain type; a value the type refuses is corrupt.
pub(crate) fn parsed<T, E>(
    row: &Row, column: &'static str, parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let raw: String = row.get(column)?;
    parse(&raw).map_err(|_| StoreError::corrupt(column))
}

/// A count or size column (never negative).
pub(crate) fn count<T: TryFrom<i64>>(row: &Row, column: &'static str) -> Result<T, StoreError> {
    let raw: i64 = match row.get::<i64>(column) {
        Ok(v) => v,
        Err(_) => i64::from(row.get::<i32>(column)?),
    };
    T::try_from(raw).map_err(|_| StoreError::corrupt(column))
}

pub(crate) fn specialty(row: &Row, column: &'static str) -> Result<Specialty, StoreError> {
    parsed(row, column, Specialty::parse)
}

pub(crate) fn session(row: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        id: row.get("id")?,
        series_id: row.get("series_id")?,
        plan: SessionPlan {
            specialty: specialty(row, "specialty")?,
            title: row.get("title")?,
            duration_minutes: count(row, "duration_minutes")?,
            case_capacity: count(row, "case_capacity")?,
            minutes_per_case: count(row, "minutes_per_case")?,
            booking_cutoff_hours: count(row, "booking_cutoff_hours")?,
            chair_id: row.get("chair_id")?,
            teaching: row.get("teaching")?,
        },
        starts_at: row.get("starts_at")?,
        booked: count(row, "booked")?,
        state: parsed(row, "state", |s| SessionState::parse(s).ok_or(()))?,
    })
}

/// The patient's columns, as `patients` and `cases` both store them.
pub(crate) fn patient(row: &Row) -> Result<PatientDetails, StoreError> {
    Ok(PatientDetails {
        nhs_number: parsed(row, "nhs_number", NhsNumber::parse)?,
        given_name: parsed(row, "given_name", PersonName::parse)?,
        family_name: parsed(row, "family_name", PersonName::parse)?,
        date_of_birth: row.get("date_of_birth")?,
        sex: parsed(row, "sex", Sex::parse)?,
        gp_practice_code: parsed(row, "gp_practice_code", OdsCode::parse)?,
    })
}

pub(crate) fn case(row: &Row) -> Result<Case, StoreError> {
    Ok(Case {
        id: row.get("id")?,
        session_id: row.get("session_id")?,
        referrer_id: row.get("referrer_id")?,
        patient: patient(row)?,
        clinical_question: parsed(row, "clinical_question", |s| {
            ClinicalText::parse(s, "clinical_question")
        })?,
        history: parsed(row, "history", |s| ClinicalText::parse(s, "history"))?,
        urgency: parsed(row, "urgency", Urgency::parse)?,
        body_site: parsed(row, "body_site", BodySite::parse)?,
        free_text_identifies_patient: row.get("free_text_identifies_patient")?,
        state: parsed(row, "state", |s| CaseState::parse(s).ok_or(()))?,
        booked_at: row.get("booked_at")?,
        moved_from: row.get("moved_from")?,
        needs_rebooking: row.get("needs_rebooking")?,
        follow_up_of: row.get("follow_up_of")?,
        proforma: proforma(row)?,
        submitted_at: row.get("submitted_at")?,
        returned: match row.get::<Option<String>>("return_reason")? {
            None => None,
            Some(reason) => Some((
                ReturnReason::parse(&reason).map_err(|_| StoreError::corrupt("return_reason"))?,
                row.get::<Option<String>>("return_note")?
                    .map(|n| ClinicalText::parse(&n, "return_note"))
                    .transpose()
                    .map_err(|_| StoreError::corrupt("return_note"))?,
            )),
        },
        standard_plan: row.get("standard_plan")?,
    })
}

/// The stored proforma: its JSON parsed again as a request (with the date and source
/// columns), so a stored value passes the same rules as a new one.
pub(crate) fn proforma(row: &Row) -> Result<Option<Proforma>, StoreError> {
    let Some(json) = row.get::<Option<String>>("proforma")? else { return Ok(None) };
    let mut request: ProformaRequest =
        serde_json::from_str(&json).map_err(|_| StoreError::corrupt("proforma"))?;
    request.referral_received_on =
        row.get::<Option<NaiveDate>>("referral_received_on")?.map(|d| d.to_string());
    request.referral_source = row.get("referral_source")?;
    Proforma::parse(&request, NaiveDate::MAX).map(Some).map_err(|_| StoreError::corrupt("proforma"))
}

/// The proforma column: the parsed proforma as JSON (the date and source have their own).
pub(crate) fn proforma_json(case: &Case) -> Result<Option<String>, StoreError> {
    case.proforma
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

/// The return columns: the reason's wire name and the note.
pub(crate) fn returned_columns(case: &Case) -> (Option<&'static str>, Option<&str>) {
    match &case.returned {
        None => (None, None),
        Some((reason, note)) => (Some(reason.as_str()), note.as_ref().map(|n| n.as_str())),
    }
}

pub(crate) fn message(row: &Row) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: row.get("id")?,
        to: split_recipients(&row.get::<String>("recipients")?),
        subject: row.get("subject")?,
        body: row.get("body")?,
        calendar: row.get("calendar")?,
        html: row.get("html")?,
        letter_id: row.get("letter_id")?,
        attempts: count(row, "attempts")?,
        created_at: row.get("created_at")?,
        sent_at: row.get("sent_at")?,
        last_error: row.get("last_error")?,
    })
}

pub(crate) fn attachment(row: &Row) -> Result<Attachment, StoreError> {
    Ok(Attachment {
        id: row.get("id")?,
        case_id: row.get("case_id")?,
        sha256: row.get("sha256")?,
        size: count(row, "size")?,
        content_type: row.get("content_type")?,
        filename: row.get("filename")?,
        uploaded_by: row.get("uploaded_by")?,
        uploaded_at: row.get("uploaded_at")?,
    })
}

pub(crate) fn audit(row: &Row) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        seq: row.get("seq")?,
        occurred_at: row.get("occurred_at")?,
        actor_id: row.get("actor_id")?,
        action: row.get("action")?,
        record_type: row.get("record_type")?,
        record_id: row.get("record_id")?,
        client_addr: row.get("client_addr")?,
        details: row.get("details")?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
        covers: Vec::new(),
    })
}

/// An outcome version; its body is the JSON wire shape, parsed again.
pub(crate) fn outcome(row: &Row) -> Result<OutcomeVersion, StoreError> {
    Ok(OutcomeVersion {
        case_id: row.get("case_id")?,
        version: count(row, "version")?,
        body: parsed(row, "body", |s| serde_json::from_str(s))?,
        author_id: row.get("author_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        signed_by: row.get("signed_by")?,
        signed_at: row.get("signed_at")?,
        amendment_reason: row.get("amendment_reason")?,
        supersedes: row
            .get::<Option<i32>>("supersedes")?
            .map(|v| u32::try_from(v).map_err(|_| StoreError::corrupt("supersedes")))
            .transpose()?,
        outside_meeting_reason: row.get("outside_meeting_reason")?,
    })
}

pub(crate) fn live_event(row: &Row) -> Result<LiveEvent, StoreError> {
    Ok(LiveEvent {
        session_id: row.get("session_id")?,
        seq: count(row, "seq")?,
        body: parsed(row, "payload", |s| serde_json::from_str(s))?,
        actor: row.get("actor_id")?,
        command_id: row.get("command_id")?,
        at: row.get("occurred_at")?,
    })
}

pub(crate) fn contract(row: &Row) -> Result<Contract, StoreError> {
    Ok(Contract {
        id: row.get("id")?,
        consultant_id: row.get("consultant_id")?,
        specialty: specialty(row, "specialty")?,
        minutes_per_week: count(row, "minutes_per_week")?,
        weeks_per_year: count(row, "weeks_per_year")?,
        starts_on: row.get("starts_on")?,
        ends_on: row.get("ends_on")?,
        created_by: row.get("created_by")?,
        created_at: row.get("created_at")?,
    })
}

pub(crate) fn flag(row: &Row) -> Result<MentorshipFlag, StoreError> {
    Ok(MentorshipFlag {
        case_id: row.get("case_id")?,
        source: BacklogSource::Mdt,
        specialty: specialty(row, "specialty")?,
        flagged_by: row.get("flagged_by")?,
        flagged_at: row.get("flagged_at")?,
        flagged_on: row.get("flagged_on")?,
        cleared_on: row.get("cleared_on")?,
        cleared_by_log: row.get("cleared_by_log")?,
    })
}

/// Ids from a one-column result.
pub(crate) fn ids(rows: &[Row], column: &str) -> Result<Vec<Uuid>, StoreError> {
    rows.iter().map(|r| r.get(column)).collect()
}

/// One stay at a session (a new row each time the person joined).
pub(crate) fn attendance(row: &Row) -> Result<Attendance, StoreError> {
    Ok(Attendance {
        session_id: row.get("session_id")?,
        user_id: row.get("user_id")?,
        role: parsed(row, "role", str::parse::<Role>)?,
        joined_at: row.get("joined_at")?,
        left_at: row.get("left_at")?,
    })
}

/// A tracked action; its result is the summary and attachment columns together.
pub(crate) fn action(row: &Row) -> Result<Action, StoreError> {
    let summary: Option<String> = row.get("result_summary")?;
    Ok(Action {
        id: row.get("id")?,
        case_id: row.get("case_id")?,
        outcome_version: count(row, "outcome_version")?,
        kind: parsed(row, "kind", |s| ActionKind::parse(s).ok_or(()))?,
        what: row.get("what")?,
        urgency: parsed(row, "urgency", Urgency::parse)?,
        owner_id: row.get("owner_id")?,
        due_on: row.get("due_on")?,
        status: parsed(row, "status", |s| ActionStatus::parse(s, "status"))?,
        result: match summary {
            None => None,
            Some(summary) => {
                Some(ActionResult { summary, attachment_id: row.get("result_attachment_id")? })
            }
        },
        cancel_reason: row.get("cancel_reason")?,
        rediscuss_case_id: row.get("rediscuss_case_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
