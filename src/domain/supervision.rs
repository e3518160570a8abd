//! The supervision record (issue 21) as pure rules: a named supervisor per practitioner
//! with at most so many supervisees, workplace-based assessments recorded by the
//! supervisor (with the supervisee's reflective note), the month they are counted in, and
//! the monthly count against a target. No I/O; no patient data: a reflection that carries
//! an NHS number is refused.

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::conflict::Conflict;
use super::mentorship::{clinic_date, parse_date, user_id, DateRange};
use super::nhs_number::NhsNumber;
use super::parse::{bounded_text, ParseError};
use super::proforma::vocabulary;
use super::role::Role;
use super::user::{User, UserId};

/// Longest reflective note.
pub const MAX_REFLECTION: usize = 4000;

vocabulary!(
    /// A workplace-based assessment's kind.
    AssessmentKind, "invalid_kind", "kind", {
        CaseBasedDiscussion => "case_based_discussion",
        DirectObservation => "direct_observation",
        JointClinic => "joint_clinic",
        RecordReview => "record_review",
        MultiSourceFeedback => "multi_source_feedback",
    }
);

vocabulary!(
    /// How the supervisee did.
    AssessmentOutcome, "invalid_outcome", "outcome", {
        MeetsExpectations => "meets_expectations",
        DevelopmentNeeded => "development_needed",
        BelowExpectations => "below_expectations",
    }
);

/// An assignment as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssignmentRequest {
    #[serde(default)]
    pub supervisee_id: String,
    #[serde(default)]
    pub supervisor_id: String,
}

/// A parsed assignment request: two distinct account ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssignmentDraft {
    pub supervisee_id: UserId,
    pub supervisor_id: UserId,
}

impl TryFrom<AssignmentRequest> for AssignmentDraft {
    type Error = ParseError;

    fn try_from(r: AssignmentRequest) -> Result<Self, ParseError> {
        let supervisee_id = user_id(&r.supervisee_id, "supervisee_id")?;
        let supervisor_id = user_id(&r.supervisor_id, "supervisor_id")?;
        if supervisee_id == supervisor_id {
            return Err(ParseError::new(
                "invalid_supervisor",
                "supervisor_id",
                "nobody supervises themselves",
            ));
        }
        Ok(AssignmentDraft { supervisee_id, supervisor_id })
    }
}

/// The supervisee is an active practitioner (`422 invalid_supervisee`); the supervisor an
/// active consultant or practitioner (`422 invalid_supervisor`).
pub fn check_people(supervisee: &User, supervisor: &User) -> Result<(), ParseError> {
    if !supervisee.active || supervisee.role != Role::Practitioner {
        return Err(ParseError::new(
            "invalid_supervisee",
            "supervisee_id",
            "a supervisee is an active practitioner",
        ));
    }
    if !supervisor.active || !matches!(supervisor.role, Role::Consultant | Role::Practitioner) {
        return Err(ParseError::new(
            "invalid_supervisor",
            "supervisor_id",
            "a supervisor is an active consultant or practitioner",
        ));
    }
    Ok(())
}

/// A supervisor with `current` supervisees (the one being assigned not among them) takes
/// one more only below `max` (`409 supervisor_full`).
pub fn check_capacity(current: usize, max: u32) -> Result<(), Conflict> {
    if current >= usize::try_from(max).unwrap_or(usize::MAX) {
        Err(Conflict::SupervisorFull(max))
    } else {
        Ok(())
    }
}

/// A practitioner's named supervisor from a time, until another is named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub supervisee_id: UserId,
    #[schema(value_type = Uuid)]
    pub supervisor_id: UserId,
    pub assigned_at: DateTime<Utc>,
    #[schema(value_type = Uuid)]
    pub assigned_by: UserId,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Assignment {
    pub fn new(draft: AssignmentDraft, by: UserId, now: DateTime<Utc>) -> Self {
        Assignment {
            id: Uuid::new_v4(),
            supervisee_id: draft.supervisee_id,
            supervisor_id: draft.supervisor_id,
            assigned_at: now.trunc_subsecs(6),
            assigned_by: by,
            ended_at: None,
        }
    }

    /// Whether the assignment held on some day of `days` (clinic days).
    pub fn during(&self, days: &DateRange) -> bool {
        clinic_date(self.assigned_at) <= days.to
            && self.ended_at.is_none_or(|end| clinic_date(end) >= days.from)
    }
}

/// Free text the supervisee writes about their own practice: bounded, and never an NHS
/// number in it (`422 patient_identifier`), since the portfolio names no patient.
pub fn parse_reflection(raw: &str) -> Result<String, ParseError> {
    let text = bounded_text(raw, "reflection", MAX_REFLECTION, true)?;
    if carries_nhs_number(&text) {
        return Err(ParseError::new(
            "patient_identifier",
            "reflection",
            "a reflection names no patient: remove the NHS number",
        ));
    }
    Ok(text)
}

/// Whether `text` holds ten digits (optionally grouped 3-3-4 with spaces) that make a
/// valid NHS number.
fn carries_nhs_number(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(|c| c.is_ascii_digit());
    let spaced = |i: usize| chars.get(i + 3) == Some(&' ') && chars.get(i + 7) == Some(&' ');
    (0..chars.len()).filter(|&i| digit(i) && (i == 0 || !digit(i - 1))).any(|i| {
        [10, 12].into_iter().any(|n: usize| {
            let end = i + n;
            end <= chars.len()
                && !digit(end)
                && (n == 10 || spaced(i))
                && NhsNumber::parse(&chars[i..end].iter().collect::<String>()).is_ok()
        })
    })
}

/// An assessment as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssessmentRequest {
    #[serde(default)]
    pub supervisee_id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub occurred_on: String,
    #[serde(default)]
    pub outcome: String,
    pub reflection: Option<String>,
}

/// A parsed assessment: not dated in the future (`422 date_in_future`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssessmentDraft {
    pub supervisee_id: UserId,
    pub kind: AssessmentKind,
    pub occurred_on: NaiveDate,
    pub outcome: AssessmentOutcome,
    pub reflection: Option<String>,
}

impl AssessmentDraft {
    pub fn parse(r: AssessmentRequest, today: NaiveDate) -> Result<Self, ParseError> {
        let supervisee_id = user_id(&r.supervisee_id, "supervisee_id")?;
        let kind = AssessmentKind::parse(&r.kind)?;
        let occurred_on = parse_date(&r.occurred_on, "occurred_on")?;
        if occurred_on > today {
            return Err(ParseError::new(
                "date_in_future",
                "occurred_on",
                "record an assessment once it has happened",
            ));
        }
        let outcome = AssessmentOutcome::parse(&r.outcome)?;
        let reflection = match r.reflection.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(parse_reflection(raw)?),
        };
        Ok(AssessmentDraft { supervisee_id, kind, occurred_on, outcome, reflection })
    }
}

/// A stored workplace-based assessment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Assessment {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub supervisee_id: UserId,
    #[schema(value_type = Uuid)]
    pub supervisor_id: UserId,
    pub kind: AssessmentKind,
    pub occurred_on: NaiveDate,
    pub outcome: AssessmentOutcome,
    pub reflection: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Assessment {
    pub fn new(draft: AssessmentDraft, supervisor: UserId, now: DateTime<Utc>) -> Self {
        Assessment {
            id: Uuid::new_v4(),
            supervisee_id: draft.supervisee_id,
            supervisor_id: supervisor,
            kind: draft.kind,
            occurred_on: draft.occurred_on,
            outcome: draft.outcome,
            reflection: draft.reflection,
            created_at: now.trunc_subsecs(6),
        }
    }
}

/// A calendar month, `YYYY-MM` (`422 invalid_month`), as its days.
pub fn parse_month(raw: Option<&str>) -> Result<DateRange, ParseError> {
    let bad = || ParseError::new("invalid_month", "month", "give the month as YYYY-MM");
    let raw = raw.map(str::trim).ok_or_else(bad)?;
    let (year, month) = raw.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u32 = month.parse().map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let last = next.and_then(|n| n.pred_opt()).ok_or_else(bad)?;
    DateRange::new(first, last)
}

/// One supervisee's month in `GET /api/supervision/summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SuperviseeMonth {
    #[schema(value_type = Uuid)]
    pub supervisee_id: UserId,
    /// Their supervisor at the end of the month (or when the assignment ended).
    #[schema(value_type = Uuid)]
    pub supervisor_id: UserId,
    pub assessments: u32,
    pub target: u32,
    pub below_target: bool,
}

/// Per supervisee with a supervisor on some day of `month`: the assessments dated in it
/// (by any supervisor) against `target`. `assignments` newest first per supervisee wins.
pub fn monthly_summary(
    assignments: &[Assignment], assessments: &[Assessment], month: &DateRange, target: u32,
) -> Vec<SuperviseeMonth> {
    let mut rows: Vec<SuperviseeMonth> = Vec::new();
    let mut held: Vec<&Assignment> = assignments.iter().filter(|a| a.during(month)).collect();
    held.sort_by_key(|a| std::cmp::Reverse(a.assigned_at));
    for a in held {
        if rows.iter().any(|r| r.supervisee_id == a.supervisee_id) {
            continue;
        }
        let count = assessments
            .iter()
            .filter(|x| x.supervisee_id == a.supervisee_id && month.contains(x.occurred_on))
            .count();
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        rows.push(SuperviseeMonth {
            supervisee_id: a.supervisee_id,
            supervisor_id: a.supervisor_id,
            assessments: count,
            target,
            below_target: count < target,
        });
    }
    rows
}

/// The day a month starts, for display (`April 2026`).
pub fn month_name(month: &DateRange) -> String {
    format!("{} {}", month.from.format("%B"), month.from.year())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn months_parse_strictly() {
        let m = parse_month(Some("2026-02")).unwrap();
        assert_eq!((m.from, m.to), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(parse_month(Some("2026-12")).unwrap().to, d("2026-12-31"));
        for bad in ["2026-13", "2026-2", "26-02", "2026/02", "", "2026-02-01"] {
            assert_eq!(parse_month(Some(bad)).unwrap_err().code, "invalid_month", "{bad}");
        }
        assert_eq!(parse_month(None).unwrap_err().code, "invalid_month");
        assert_eq!(month_name(&m), "February 2026");
    }

    #[test]
    fn capacity_and_reflections() {
        assert!(check_capacity(3, 4).is_ok());
        assert_eq!(check_capacity(4, 4).unwrap_err().code(), "supervisor_full");
        assert!(parse_reflection("Saw a patient with sciatica; I rushed the history.").is_ok());
        assert_eq!(
            parse_reflection("Patient 943 476 5919 was anxious").unwrap_err().code,
            "patient_identifier"
        );
        assert_eq!(parse_reflection("re 9434765919").unwrap_err().code, "patient_identifier");
        // Ten digits that are no NHS number (a phone number) pass.
        assert!(parse_reflection("Rang 0123456788 for advice").is_ok());
    }

    #[test]
    fn a_month_with_one_assessment_is_below_a_target_of_two() {
        let (pip, sam, kim) = (UserId(Uuid::new_v4()), UserId(Uuid::new_v4()), UserId::new());
        let assign = |who: UserId, at: &str, ended: Option<&str>| Assignment {
            id: Uuid::new_v4(),
            supervisee_id: who,
            supervisor_id: sam,
            assigned_at: at.parse().unwrap(),
            assigned_by: sam,
            ended_at: ended.map(|e| e.parse().unwrap()),
        };
        let assess = |who: UserId, on: &str| Assessment {
            id: Uuid::new_v4(),
            supervisee_id: who,
            supervisor_id: sam,
            kind: AssessmentKind::CaseBasedDiscussion,
            occurred_on: d(on),
            outcome: AssessmentOutcome::MeetsExpectations,
            reflection: None,
            created_at: Utc::now(),
        };
        let april = parse_month(Some("2026-04")).unwrap();
        let rows = monthly_summary(
            &[
                assign(pip, "2026-01-05T09:00:00Z", None),
                assign(kim, "2026-05-02T09:00:00Z", None), // from May: not in April
            ],
            &[assess(pip, "2026-04-10"), assess(pip, "2026-03-31"), assess(pip, "2026-05-01")],
            &april,
            2,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].assessments, rows[0].target, rows[0].below_target), (1, 2, true));
    }
}
