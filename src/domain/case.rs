//! A patient case booked into a session: patient details and the clinical question, each
//! parsed into a type before it is stored.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use super::body_site::BodySite;
use super::nhs_number::NhsNumber;
use super::parse::{bounded_text, ParseError};
use super::person_name::PersonName;
use super::proforma::{vocabulary, Proforma, ReferralSource};
use super::user::UserId;

vocabulary!(
    /// Why triage returned a booking as not ready.
    ReturnReason, "invalid_return_reason", "reason", {
        IncompleteProforma => "incomplete_proforma",
        ConservativeCareNotTried => "conservative_care_not_tried",
        ImagingNeeded => "imaging_needed",
        WrongService => "wrong_service",
        UrgentPathway => "urgent_pathway",
        Other => "other",
    }
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ParseError::new("invalid_sex", "sex", "must be female, male, other or unknown")
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Urgent,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Routine => "routine",
            Urgency::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "routine" => Ok(Urgency::Routine),
            "urgent" => Ok(Urgency::Urgent),
            _ => Err(ParseError::new("invalid_urgency", "urgency", "must be routine or urgent")),
        }
    }
}

/// An ODS organisation code of a GP practice: a letter and five letters or digits
/// (e.g. `A81001`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OdsCode(String);

impl OdsCode {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let code = raw.trim().to_ascii_uppercase();
        let ok = code.len() == 6
            && code.starts_with(|c: char| c.is_ascii_uppercase())
            && code.chars().all(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Self(code))
        } else {
            Err(ParseError::new(
                "invalid_ods_code",
                "gp_practice_code",
                "must be a six-character ODS practice code such as A81001",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free clinical text (question, history, management); may identify the patient, so it
/// never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClinicalText(String);

impl ClinicalText {
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, ParseError> {
        bounded_text(raw, field, 4000, true).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClinicalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClinicalText(…)")
    }
}

/// Who the case is about. `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientDetails {
    pub nhs_number: NhsNumber,
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub date_of_birth: NaiveDate,
    pub sex: Sex,
    pub gp_practice_code: OdsCode,
}

impl fmt::Debug for PatientDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PatientDetails(…)")
    }
}

/// A date of birth: a real date, not in the future, not before 1900.
pub fn parse_date_of_birth(raw: &str, today: NaiveDate) -> Result<NaiveDate, ParseError> {
    let dob = super::time_window::parse_iso_date(raw).ok_or_else(|| {
        ParseError::new("invalid_date", "date_of_birth", "must be a date as YYYY-MM-DD")
    })?;
    if dob > today {
        return Err(ParseError::new(
            "date_of_birth_in_future",
            "date_of_birth",
            "must not be in the future",
        ));
    }
    if dob < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(ParseError::new("invalid_date", "date_of_birth", "is before 1900"));
    }
    Ok(dob)
}

/// What the person booking confirmed about a patient already on record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PatientUpdate {
    /// Nothing: the details must match the record.
    #[default]
    None,
    /// The patient's name has changed (the date of birth must still match).
    NameChange,
    /// A coordinator corrects the record: name and date of birth may both change.
    Correction,
}

/// What a referrer writes about a case, parsed: given when booking, and again when a
/// returned case is edited.
#[derive(Clone, Debug)]
pub struct CaseDetails {
    pub clinical_question: ClinicalText,
    pub history: ClinicalText,
    pub urgency: Urgency,
    pub body_site: BodySite,
    pub free_text_identifies_patient: bool,
    pub proforma: Proforma,
}

/// A parsed booking request; the id is chosen by the caller so that the confirmation
/// queued with the booking can name it.
#[derive(Clone, Debug)]
pub struct NewCase {
    pub id: Uuid,
    pub session_id: Uuid,
    pub referrer_id: UserId,
    pub patient: PatientDetails,
    pub clinical_question: ClinicalText,
    pub history: ClinicalText,
    pub urgency: Urgency,
    pub body_site: BodySite,
    pub free_text_identifies_patient: bool,
    /// A retried request with the same key (per referrer) returns the first booking.
    pub idempotency_key: Option<String>,
    /// What the booker confirmed when the NHS number is on record with other details.
    pub patient_update: PatientUpdate,
    pub proforma: Proforma,
}

impl NewCase {
    /// The case this booking creates, before it is stored.
    pub fn booked(&self, now: DateTime<Utc>) -> Case {
        Case {
            id: self.id,
            session_id: self.session_id,
            referrer_id: self.referrer_id,
            patient: self.patient.clone(),
            clinical_question: self.clinical_question.clone(),
            history: self.history.clone(),
            urgency: self.urgency,
            body_site: self.body_site.clone(),
            free_text_identifies_patient: self.free_text_identifies_patient,
            state: CaseState::AwaitingTriage,
            booked_at: now,
            moved_from: None,
            needs_rebooking: false,
            follow_up_of: None,
            proforma: Some(self.proforma.clone()),
            submitted_at: Some(now),
            returned: None,
            standard_plan: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_fields() {
        assert_eq!(OdsCode::parse(" a81001 ").unwrap().as_str(), "A81001");
        assert!(OdsCode::parse("181001").is_err());
        assert!(OdsCode::parse("A8100").is_err());
        assert_eq!(Sex::parse("female").unwrap(), Sex::Female);
        assert!(Sex::parse("f").is_err());
        assert!(Urgency::parse("soon").is_err());
        assert_eq!(BodySite::parse("Lower Back").unwrap().as_str(), "lower back");
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert!(parse_date_of_birth("1970-02-28", today).is_ok());
        assert_eq!(
            parse_date_of_birth("2026-11-24", today).unwrap_err().code,
            "date_of_birth_in_future"
        );
        assert_eq!(parse_date_of_birth("1970-02-30", today).unwrap_err().code, "invalid_date");
    }
}

/// Where a case is in its life (DESIGN §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    AwaitingTriage,
    Returned,
    Booked,
    Listed,
    InDiscussion,
    Discussed,
    OutcomeSigned,
    Deferred,
    Withdrawn,
}

impl CaseState {
    const ALL: [CaseState; 9] = [
        CaseState::AwaitingTriage,
        CaseState::Returned,
        CaseState::Booked,
        CaseState::Listed,
        CaseState::InDiscussion,
        CaseState::Discussed,
        CaseState::OutcomeSigned,
        CaseState::Deferred,
        CaseState::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::AwaitingTriage => "awaiting_triage",
            CaseState::Returned => "returned",
            CaseState::Booked => "booked",
            CaseState::Listed => "listed",
            CaseState::InDiscussion => "in_discussion",
            CaseState::Discussed => "discussed",
            CaseState::OutcomeSigned => "outcome_signed",
            CaseState::Deferred => "deferred",
            CaseState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the case still holds a slot in its session.
    pub fn holds_slot(self) -> bool {
        !matches!(self, CaseState::Deferred | CaseState::Withdrawn)
    }

    /// Whether the referrer may still withdraw it (not once discussion has begun).
    pub fn withdrawable(self) -> bool {
        use CaseState::{AwaitingTriage, Booked, Listed, Returned};
        matches!(self, AwaitingTriage | Returned | Booked | Listed)
    }

    /// Whether triage has put it on the agenda (accepted or listed) or beyond.
    pub fn on_agenda(self) -> bool {
        self.holds_slot() && !matches!(self, CaseState::AwaitingTriage | CaseState::Returned)
    }
}

/// A stored case with everything about it. Never serialised directly: responses go
/// through [`CaseView`], which decides what the viewer may see.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: Uuid,
    pub session_id: Uuid,
    pub referrer_id: UserId,
    pub patient: PatientDetails,
    pub clinical_question: ClinicalText,
    pub history: ClinicalText,
    pub urgency: Urgency,
    pub body_site: BodySite,
    /// Whether the question and history may identify the patient (then trainees never
    /// see them). Defaults to true when the booking does not say.
    pub free_text_identifies_patient: bool,
    pub state: CaseState,
    pub booked_at: DateTime<Utc>,
    /// The case this one was moved from (its history), if any.
    pub moved_from: Option<Uuid>,
    /// Set when its session was cancelled and no later session could take it.
    pub needs_rebooking: bool,
    /// The case whose signed outcome asked for this re-discussion, if any.
    pub follow_up_of: Option<Uuid>,
    /// The referral proforma (`None` for cases booked before it existed).
    pub proforma: Option<Proforma>,
    /// When the case last went to triage.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Why triage last returned it, with the triager's note.
    pub returned: Option<(ReturnReason, Option<ClinicalText>)>,
    /// The standard plan (a code of its specialty's) a listed case follows.
    pub standard_plan: Option<String>,
}

impl Case {
    /// The case with a returned booking's edited details (its clock keeps its start only
    /// if the edit keeps the referral date).
    pub fn edited(&self, d: &CaseDetails) -> Case {
        Case {
            clinical_question: d.clinical_question.clone(),
            history: d.history.clone(),
            urgency: d.urgency,
            body_site: d.body_site.clone(),
            free_text_identifies_patient: d.free_text_identifies_patient,
            proforma: Some(d.proforma.clone()),
            ..self.clone()
        }
    }

    /// The start of the patient's waiting-time clock: the date the referral was received
    /// (the booking date for cases booked before the proforma).
    pub fn referral_received_on(&self) -> NaiveDate {
        self.proforma.as_ref().map_or(self.booked_at.date_naive(), |p| p.referral_received_on)
    }

    /// The same case booked again into `session_id` (a move keeps the old row as history).
    pub fn moved_to(&self, new_id: Uuid, session_id: Uuid, now: DateTime<Utc>) -> Case {
        Case {
            id: new_id,
            session_id,
            // A case still in triage stays there; an accepted or listed one is accepted.
            state: match self.state {
                CaseState::AwaitingTriage | CaseState::Returned | CaseState::Listed => self.state,
                _ => CaseState::Booked,
            },
            booked_at: now,
            moved_from: Some(self.id),
            needs_rebooking: false,
            ..self.clone()
        }
    }

    /// A new case for the same patient and clinical details, booked into `session_id` to
    /// be discussed again (a signed outcome's `re_discuss` follow-up).
    pub fn follow_up(&self, new_id: Uuid, session_id: Uuid, now: DateTime<Utc>) -> Case {
        Case {
            id: new_id,
            session_id,
            state: CaseState::Booked,
            booked_at: now,
            moved_from: None,
            needs_rebooking: false,
            follow_up_of: Some(self.id),
            returned: None,
            standard_plan: None,
            ..self.clone()
        }
    }
}

/// A ten-year age band on `on`, e.g. `40–49`.
pub fn age_band(date_of_birth: NaiveDate, on: NaiveDate) -> String {
    let age = on.years_since(date_of_birth).unwrap_or(0);
    let low = age / 10 * 10;
    format!("{low}–{}", low + 9)
}

/// How a case leaves the server: in full for those who may see identifiers, or
/// de-identified (DESIGN §2) for trainees. This is the only serialisation of a case.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CaseView {
    Identified(Box<IdentifiedCase>),
    DeIdentified(DeIdentifiedCase),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PatientView {
    #[schema(value_type = String)]
    pub nhs_number: NhsNumber,
    #[schema(value_type = String)]
    pub given_name: PersonName,
    #[schema(value_type = String)]
    pub family_name: PersonName,
    pub date_of_birth: NaiveDate,
    pub sex: Sex,
    #[schema(value_type = String)]
    pub gp_practice_code: OdsCode,
}

impl PatientView {
    pub fn of(p: &PatientDetails) -> Self {
        PatientView {
            nhs_number: p.nhs_number.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            date_of_birth: p.date_of_birth,
            sex: p.sex,
            gp_practice_code: p.gp_practice_code.clone(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IdentifiedCase {
    pub id: Uuid,
    pub session_id: Uuid,
    #[schema(value_type = Uuid)]
    pub referrer_id: UserId,
    pub patient: PatientView,
    #[schema(value_type = String)]
    pub clinical_question: ClinicalText,
    #[schema(value_type = String)]
    pub history: ClinicalText,
    pub urgency: Urgency,
    #[schema(value_type = String)]
    pub body_site: BodySite,
    pub free_text_identifies_patient: bool,
    pub state: CaseState,
    pub booked_at: DateTime<Utc>,
    pub moved_from: Option<Uuid>,
    pub needs_rebooking: bool,
    pub follow_up_of: Option<Uuid>,
    /// The start of the waiting-time clock.
    pub referral_received_on: NaiveDate,
    pub referral_source: Option<ReferralSource>,
    /// The proforma's fields, flattened into the case (not spelled out here).
    #[serde(flatten)]
    #[schema(ignore)]
    pub proforma: Option<Proforma>,
    /// `low`, `medium` or `high`, from the STarT Back score.
    pub start_back_risk: Option<&'static str>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub return_reason: Option<ReturnReason>,
    #[schema(value_type = Option<String>)]
    pub return_note: Option<ClinicalText>,
    pub standard_plan: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeIdentifiedCase {
    pub id: Uuid,
    pub session_id: Uuid,
    /// e.g. `Case 3 · F · 40–49 · lower back`
    pub label: String,
    pub sex: Sex,
    pub age_band: String,
    #[schema(value_type = String)]
    pub body_site: BodySite,
    pub urgency: Urgency,
    pub state: CaseState,
    /// Present only when the booking said the text does not identify the patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub clinical_question: Option<ClinicalText>,
}

impl CaseView {
    /// `ordinal` is the case's 1-based place on its agenda (used in the trainee label).
    pub fn of(case: &Case, identified: bool, ordinal: usize, today: NaiveDate) -> Self {
        if identified {
            let p = &case.patient;
            return CaseView::Identified(Box::new(IdentifiedCase {
                id: case.id,
                session_id: case.session_id,
                referrer_id: case.referrer_id,
                patient: PatientView::of(p),
                clinical_question: case.clinical_question.clone(),
                history: case.history.clone(),
                urgency: case.urgency,
                body_site: case.body_site.clone(),
                free_text_identifies_patient: case.free_text_identifies_patient,
                state: case.state,
                booked_at: case.booked_at,
                moved_from: case.moved_from,
                needs_rebooking: case.needs_rebooking,
                follow_up_of: case.follow_up_of,
                referral_received_on: case.referral_received_on(),
                referral_source: case.proforma.as_ref().and_then(|p| p.referral_source),
                proforma: case.proforma.clone(),
                start_back_risk: case
                    .proforma
                    .as_ref()
                    .and_then(|p| p.start_back)
                    .map(|s| s.risk()),
                submitted_at: case.submitted_at,
                return_reason: case.returned.as_ref().map(|(r, _)| *r),
                return_note: case.returned.as_ref().and_then(|(_, n)| n.clone()),
                standard_plan: case.standard_plan.clone(),
            }));
        }
        let band = age_band(case.patient.date_of_birth, today);
        let sex_letter = match case.patient.sex {
            Sex::Female => "F",
            Sex::Male => "M",
            Sex::Other => "X",
            Sex::Unknown => "U",
        };
        CaseView::DeIdentified(DeIdentifiedCase {
            id: case.id,
            session_id: case.session_id,
            label: format!("Case {ordinal} · {sex_letter} · {band} · {}", case.body_site.as_str()),
            sex: case.patient.sex,
            age_band: band,
            body_site: case.body_site.clone(),
            urgency: case.urgency,
            state: case.state,
            clinical_question: (!case.free_text_identifies_patient)
                .then(|| case.clinical_question.clone()),
        })
    }
}

#[cfg(test)]
impl Case {
    /// A case for unit tests: a routine lower-back case in `state`, booked `minutes_ago`.
    pub(crate) fn example(nhs: &str, state: CaseState, minutes_ago: i64) -> Case {
        let booked_at = Utc::now() - chrono::Duration::minutes(minutes_ago);
        Case {
            id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            referrer_id: UserId(Uuid::new_v4()),
            patient: PatientDetails {
                nhs_number: NhsNumber::parse(nhs).unwrap(),
                given_name: PersonName::parse("Ann").unwrap(),
                family_name: PersonName::parse("Example").unwrap(),
                date_of_birth: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
                sex: Sex::Female,
                gp_practice_code: OdsCode::parse("A12345").unwrap(),
            },
            clinical_question: ClinicalText::parse("Query", "clinical_question").unwrap(),
            history: ClinicalText::parse("History", "history").unwrap(),
            urgency: Urgency::Routine,
            body_site: BodySite::parse("lower back").unwrap(),
            free_text_identifies_patient: false,
            state,
            booked_at,
            moved_from: None,
            needs_rebooking: false,
            follow_up_of: None,
            proforma: None,
            submitted_at: Some(booked_at),
            returned: None,
            standard_plan: None,
        }
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn body_sites_come_from_the_vocabulary() {
        assert_eq!(BodySite::parse("Lower  Back").unwrap().as_str(), "lower back");
        assert_eq!(BodySite::parse("left knee").unwrap().as_str(), "left knee");
        assert_eq!(BodySite::parse("bilateral hands").unwrap().as_str(), "bilateral hands");
        for bad in ["knee - Mrs Smith", "left", "Mr Jones", "", "left left knee"] {
            assert_eq!(BodySite::parse(bad).unwrap_err().code, "invalid_body_site", "{bad}");
        }
    }

    #[test]
    fn age_bands() {
        let on = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(age_band(NaiveDate::from_ymd_opt(1980, 11, 24).unwrap(), on), "40–49");
        assert_eq!(age_band(NaiveDate::from_ymd_opt(1976, 11, 23).unwrap(), on), "50–59");
        assert_eq!(age_band(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), on), "0–9");
    }
}
