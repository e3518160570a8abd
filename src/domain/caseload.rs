//! Mentorship on a practitioner's own caseload (issue 21): a patient from their caseload
//! put on their arm's mentorship list without an MDT slot, the consultants' advice on it,
//! the backlog entry it makes until advised, and what "book into the MDT" makes of it (an
//! ordinary booking carrying its details). Pure rules, no I/O; who may see or advise on
//! such a case is `auth::access`'s.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::case::{
    BodySite, CaseDetails, ClinicalText, NewCase, PatientDetails, PatientUpdate, PatientView,
    Urgency,
};
use super::conflict::Conflict;
use super::mentorship::{clinic_date, BacklogSource, MentorshipFlag};
use super::parse::ParseError;
use super::proforma::{vocabulary, Proforma, ReferralSource};
use super::specialty::Specialty;
use super::user::UserId;

vocabulary!(
    /// What a consultant advises on a caseload case.
    AdviceDecision, "invalid_decision", "decision", {
        AdviceGiven => "advice_given",
        PhoneFollowUp => "phone_follow_up",
        JointAssessment => "joint_assessment",
        BookMdt => "book_mdt",
    }
);

/// Where a caseload case stands: waiting for advice (on the arm's backlog), advised, or
/// booked into an MDT session (no further advice: the meeting decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseloadState {
    AwaitingAdvice,
    Advised,
    Booked,
}

/// A case from a practitioner's own caseload on their arm's mentorship list.
#[derive(Clone, Debug)]
pub struct CaseloadCase {
    pub id: Uuid,
    pub practitioner_id: UserId,
    pub specialty: Specialty,
    pub patient: PatientDetails,
    pub details: CaseDetails,
    pub created_at: DateTime<Utc>,
    pub created_on: NaiveDate,
    /// The day of its first advice, when it left the backlog.
    pub advised_on: Option<NaiveDate>,
    /// The MDT case "book into the MDT" made of it.
    pub booked_case_id: Option<Uuid>,
}

impl CaseloadCase {
    pub fn new(
        practitioner_id: UserId, specialty: Specialty, patient: PatientDetails,
        details: CaseDetails, now: DateTime<Utc>,
    ) -> Self {
        let now = now.trunc_subsecs(6);
        CaseloadCase {
            id: Uuid::new_v4(),
            practitioner_id,
            specialty,
            patient,
            details,
            created_at: now,
            created_on: clinic_date(now),
            advised_on: None,
            booked_case_id: None,
        }
    }

    pub fn state(&self) -> CaseloadState {
        match (self.booked_case_id, self.advised_on) {
            (Some(_), _) => CaseloadState::Booked,
            (None, Some(_)) => CaseloadState::Advised,
            (None, None) => CaseloadState::AwaitingAdvice,
        }
    }

    /// Advice is recorded until the case is booked into the MDT (`409 already_booked`).
    pub fn check_advisable(&self) -> Result<(), Conflict> {
        match self.booked_case_id {
            Some(_) => Err(Conflict::AlreadyBooked),
            None => Ok(()),
        }
    }

    /// The booking "book into the MDT" makes: the practitioner is its referrer, and it
    /// carries the patient, the question, the history and the proforma as they are.
    pub fn booking(&self, session_id: Uuid) -> NewCase {
        let d = &self.details;
        NewCase {
            id: Uuid::new_v4(),
            session_id,
            referrer_id: self.practitioner_id,
            patient: self.patient.clone(),
            clinical_question: d.clinical_question.clone(),
            history: d.history.clone(),
            urgency: d.urgency,
            body_site: d.body_site.clone(),
            free_text_identifies_patient: d.free_text_identifies_patient,
            idempotency_key: None,
            patient_update: PatientUpdate::None,
            proforma: d.proforma.clone(),
        }
    }

    /// Its place on the arm's mentorship backlog: from the day it was added to the day
    /// of its first advice.
    pub fn backlog_entry(&self) -> MentorshipFlag {
        MentorshipFlag {
            case_id: self.id,
            source: BacklogSource::Caseload,
            specialty: self.specialty.clone(),
            flagged_by: self.practitioner_id,
            flagged_at: self.created_at,
            flagged_on: self.created_on,
            cleared_on: self.advised_on,
            cleared_by_log: None,
        }
    }
}

/// Advice as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AdviceRequest {
    #[serde(default)]
    pub decision: String,
    pub note: Option<String>,
    pub session_id: Option<String>,
}

/// Parsed advice: `book_mdt` names the session (`422 required`), no other decision does
/// (`422 unexpected_session`).
#[derive(Clone, Debug)]
pub struct AdviceDraft {
    pub decision: AdviceDecision,
    pub note: Option<ClinicalText>,
    pub session_id: Option<Uuid>,
}

impl TryFrom<AdviceRequest> for AdviceDraft {
    type Error = ParseError;

    fn try_from(r: AdviceRequest) -> Result<Self, ParseError> {
        let decision = AdviceDecision::parse(&r.decision)?;
        let note = match r.note.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(ClinicalText::parse(raw, "note")?),
        };
        let session_id = match r.session_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
                ParseError::new("invalid_id", "session_id", "must be a session id")
            })?),
        };
        match (decision, session_id) {
            (AdviceDecision::BookMdt, None) => Err(ParseError::new(
                "required",
                "session_id",
                "name the MDT session to book the case into",
            )),
            (AdviceDecision::BookMdt, _) | (_, None) => {
                Ok(AdviceDraft { decision, note, session_id })
            }
            (_, Some(_)) => Err(ParseError::new(
                "unexpected_session",
                "session_id",
                "only book_mdt books the case into a session",
            )),
        }
    }
}

/// A consultant's advice on a caseload case, as stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Advice {
    pub id: Uuid,
    pub mentorship_case_id: Uuid,
    #[schema(value_type = Uuid)]
    pub consultant_id: UserId,
    pub decision: AdviceDecision,
    #[schema(value_type = Option<String>)]
    pub note: Option<ClinicalText>,
    pub session_id: Option<Uuid>,
    pub booked_case_id: Option<Uuid>,
    pub given_at: DateTime<Utc>,
    pub given_on: NaiveDate,
}

impl Advice {
    pub fn new(
        case: &CaseloadCase, by: UserId, draft: AdviceDraft, booked_case_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Self {
        let now = now.trunc_subsecs(6);
        Advice {
            id: Uuid::new_v4(),
            mentorship_case_id: case.id,
            consultant_id: by,
            decision: draft.decision,
            note: draft.note,
            session_id: draft.session_id,
            booked_case_id,
            given_at: now,
            given_on: clinic_date(now),
        }
    }
}

/// A caseload case as those who may see it see it (always identified: trainees never see
/// one), with its advice.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseloadView<'a> {
    pub id: Uuid,
    pub source: BacklogSource,
    #[schema(value_type = Uuid)]
    pub practitioner_id: UserId,
    #[schema(value_type = String)]
    pub specialty: &'a Specialty,
    pub patient: PatientView,
    #[schema(value_type = String)]
    pub clinical_question: &'a ClinicalText,
    #[schema(value_type = String)]
    pub history: &'a ClinicalText,
    pub urgency: Urgency,
    #[schema(value_type = String)]
    pub body_site: &'a BodySite,
    pub free_text_identifies_patient: bool,
    pub referral_received_on: NaiveDate,
    pub referral_source: Option<ReferralSource>,
    /// The proforma's fields, flattened into the case (not spelled out here).
    #[serde(flatten)]
    #[schema(ignore)]
    pub proforma: &'a Proforma,
    pub state: CaseloadState,
    pub created_at: DateTime<Utc>,
    pub created_on: NaiveDate,
    pub advised_on: Option<NaiveDate>,
    pub booked_case_id: Option<Uuid>,
    #[schema(value_type = Vec<Advice>)]
    pub advice: &'a [Advice],
}

impl<'a> CaseloadView<'a> {
    pub fn of(case: &'a CaseloadCase, advice: &'a [Advice]) -> Self {
        let d = &case.details;
        CaseloadView {
            id: case.id,
            source: BacklogSource::Caseload,
            practitioner_id: case.practitioner_id,
            specialty: &case.specialty,
            patient: PatientView::of(&case.patient),
            clinical_question: &d.clinical_question,
            history: &d.history,
            urgency: d.urgency,
            body_site: &d.body_site,
            free_text_identifies_patient: d.free_text_identifies_patient,
            referral_received_on: d.proforma.referral_received_on,
            referral_source: d.proforma.referral_source,
            proforma: &d.proforma,
            state: case.state(),
            created_at: case.created_at,
            created_on: case.created_on,
            advised_on: case.advised_on,
            booked_case_id: case.booked_case_id,
            advice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advice(body: serde_json::Value) -> Result<AdviceDraft, ParseError> {
        AdviceDraft::try_from(serde_json::from_value::<AdviceRequest>(body).unwrap())
    }

    #[test]
    fn advice_names_a_session_only_to_book_into_the_mdt() {
        let session = Uuid::new_v4().to_string();
        let ok = advice(serde_json::json!({"decision": "phone_follow_up", "note": " "})).unwrap();
        assert_eq!(ok.decision, AdviceDecision::PhoneFollowUp);
        assert!(ok.note.is_none());
        let book = advice(serde_json::json!({"decision": "book_mdt", "session_id": session}));
        assert_eq!(book.unwrap().session_id.map(|s| s.to_string()), Some(session.clone()));
        let code = |body| advice(body).unwrap_err().code;
        assert_eq!(code(serde_json::json!({"decision": "book_mdt"})), "required");
        assert_eq!(
            code(serde_json::json!({"decision": "advice_given", "session_id": session})),
            "unexpected_session"
        );
        assert_eq!(code(serde_json::json!({"decision": "refer"})), "invalid_decision");
        assert_eq!(
            code(serde_json::json!({"decision": "book_mdt", "session_id": "x"})),
            "invalid_id"
        );
    }
}
