//! The outcome of a case (DESIGN §3 "Outcome"): investigations, onward referrals, the
//! management plan and the follow-up, parsed from the request before any I/O. Versions
//! are drafted, signed, and after signing only superseded by amendments. The summary is
//! the part with no free text at all, for live events, letters and trainees.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::case::{BodySite, Urgency};
use super::parse::{bounded_text, ParseError};
use super::schedule::Session;
use super::user::UserId;

/// At most this many investigations and this many referrals per outcome.
pub const MAX_ENTRIES: usize = 20;
/// At most this many structured plan items.
pub const MAX_PLAN_ITEMS: usize = 20;
const MAX_NOTES: usize = 500;
const MAX_REASON: usize = 1000;
const MAX_PLAN_TEXT: usize = 4000;
const MAX_ITEM: usize = 200;
const MAX_REVIEW_WEEKS: u8 = 52;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationKind {
    Mri,
    Xray,
    Ct,
    Ultrasound,
    Bloods,
    NerveConduction,
    Dexa,
    Other,
}

impl InvestigationKind {
    pub const ALL: [InvestigationKind; 8] = [
        InvestigationKind::Mri,
        InvestigationKind::Xray,
        InvestigationKind::Ct,
        InvestigationKind::Ultrasound,
        InvestigationKind::Bloods,
        InvestigationKind::NerveConduction,
        InvestigationKind::Dexa,
        InvestigationKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvestigationKind::Mri => "mri",
            InvestigationKind::Xray => "xray",
            InvestigationKind::Ct => "ct",
            InvestigationKind::Ultrasound => "ultrasound",
            InvestigationKind::Bloods => "bloods",
            InvestigationKind::NerveConduction => "nerve_conduction",
            InvestigationKind::Dexa => "dexa",
            InvestigationKind::Other => "other",
        }
    }

    /// How a letter names it.
    pub fn label(self) -> &'static str {
        match self {
            InvestigationKind::Mri => "MRI",
            InvestigationKind::Xray => "X-ray",
            InvestigationKind::Ct => "CT",
            InvestigationKind::Ultrasound => "Ultrasound",
            InvestigationKind::Bloods => "Blood tests",
            InvestigationKind::NerveConduction => "Nerve conduction studies",
            InvestigationKind::Dexa => "DEXA scan",
            InvestigationKind::Other => "Other investigation",
        }
    }

    pub fn parse(raw: &str, field: String) -> Result<Self, ParseError> {
        let raw = raw.trim();
        Self::ALL.into_iter().find(|k| k.as_str() == raw).ok_or_else(|| {
            invalid_value(
                raw,
                field,
                "mri, xray, ct, ultrasound, bloods, nerve_conduction, dexa or other",
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralDestination {
    Orthopaedics,
    SpinalSurgery,
    Rheumatology,
    PainClinic,
    Neurology,
    Physiotherapy,
    Psychology,
    PainManagementProgramme,
    InjectionClinic,
    GpDischarge,
    Other,
}

impl ReferralDestination {
    pub const ALL: [ReferralDestination; 11] = [
        ReferralDestination::Orthopaedics,
        ReferralDestination::SpinalSurgery,
        ReferralDestination::Rheumatology,
        ReferralDestination::PainClinic,
        ReferralDestination::Neurology,
        ReferralDestination::Physiotherapy,
        ReferralDestination::Psychology,
        ReferralDestination::PainManagementProgramme,
        ReferralDestination::InjectionClinic,
        ReferralDestination::GpDischarge,
        ReferralDestination::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReferralDestination::Orthopaedics => "orthopaedics",
            ReferralDestination::SpinalSurgery => "spinal_surgery",
            ReferralDestination::Rheumatology => "rheumatology",
            ReferralDestination::PainClinic => "pain_clinic",
            ReferralDestination::Neurology => "neurology",
            ReferralDestination::Physiotherapy => "physiotherapy",
            ReferralDestination::Psychology => "psychology",
            ReferralDestination::PainManagementProgramme => "pain_management_programme",
            ReferralDestination::InjectionClinic => "injection_clinic",
            ReferralDestination::GpDischarge => "gp_discharge",
            ReferralDestination::Other => "other",
        }
    }

    /// How a letter names it.
    pub fn label(self) -> &'static str {
        match self {
            ReferralDestination::Orthopaedics => "Orthopaedics",
            ReferralDestination::SpinalSurgery => "Spinal surgery",
            ReferralDestination::Rheumatology => "Rheumatology",
            ReferralDestination::PainClinic => "Pain clinic",
            ReferralDestination::Neurology => "Neurology",
            ReferralDestination::Physiotherapy => "Physiotherapy",
            ReferralDestination::Psychology => "Psychology",
            ReferralDestination::PainManagementProgramme => "Pain management programme",
            ReferralDestination::InjectionClinic => "Injection clinic",
            ReferralDestination::GpDischarge => "GP / discharge",
            ReferralDestination::Other => "Other service",
        }
    }

    pub fn parse(raw: &str, field: String) -> Result<Self, ParseError> {
        let raw = raw.trim();
        Self::ALL.into_iter().find(|d| d.as_str() == raw).ok_or_else(|| {
            invalid_value(
                raw,
                field,
                "a referral destination such as orthopaedics, pain_clinic or gp_discharge",
            )
        })
    }
}

fn invalid_value(raw: &str, field: String, expected: &str) -> ParseError {
    if raw.is_empty() {
        ParseError::new("required", field, format!("must be one of {expected}"))
    } else {
        ParseError::new("invalid_value", field, format!("must be one of {expected}"))
    }
}

fn urgency(raw: &str, field: String) -> Result<Urgency, ParseError> {
    let raw = raw.trim();
    Urgency::parse(raw).map_err(|_| invalid_value(raw, field, "routine or urgent"))
}

/// Free text of an outcome (notes, reasons, the plan). It may identify the patient, so it
/// never appears in `Debug` output, live events, letters or trainees' views.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OutcomeText(String);

impl OutcomeText {
    fn parse(
        raw: &str, field: String, max_chars: usize, multiline: bool,
    ) -> Result<Self, ParseError> {
        bounded_text(raw, "text", max_chars, multiline).map(Self).map_err(|e| e.for_field(field))
    }

    /// Absent, empty or blank text is `None`.
    fn optional(
        raw: Option<&str>, field: String, max_chars: usize,
    ) -> Result<Option<Self>, ParseError> {
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => Self::parse(text, field, max_chars, true).map(Some),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OutcomeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutcomeText(…)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Investigation {
    pub kind: InvestigationKind,
    /// From the body-site vocabulary, so no identifier can be written here.
    #[schema(value_type = Option<String>)]
    pub site: Option<BodySite>,
    pub urgency: Urgency,
    #[schema(value_type = Option<String>)]
    pub notes: Option<OutcomeText>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Referral {
    pub destination: ReferralDestination,
    pub urgency: Urgency,
    #[schema(value_type = String)]
    pub reason: OutcomeText,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ManagementPlan {
    /// Empty only when there are items.
    pub text: String,
    #[schema(value_type = Vec<String>)]
    pub items: Vec<OutcomeText>,
}

/// What happens next for the patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUp {
    None,
    /// Discuss again at a later session of the same specialty: signing books a follow-up
    /// case into it.
    ReDiscuss {
        session_id: Uuid,
        #[schema(value_type = String)]
        reason: OutcomeText,
    },
    /// Review in clinic after this many weeks.
    Review {
        weeks: u8,
    },
}

impl FollowUp {
    pub fn kind(&self) -> FollowUpKind {
        match self {
            FollowUp::None => FollowUpKind::None,
            FollowUp::ReDiscuss { .. } => FollowUpKind::ReDiscuss,
            FollowUp::Review { .. } => FollowUpKind::Review,
        }
    }

    /// The session a re-discussion is booked into.
    pub fn re_discuss_session(&self) -> Option<Uuid> {
        match self {
            FollowUp::ReDiscuss { session_id, .. } => Some(*session_id),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    None,
    ReDiscuss,
    Review,
}

/// A parsed outcome body. It serialises in the request's wire shape, and deserialising
/// parses it again (the store keeps it as JSON text and re-checks it on read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "OutcomeRequest")]
pub struct OutcomeDraft {
    pub investigations: Vec<Investigation>,
    pub referrals: Vec<Referral>,
    pub management_plan: ManagementPlan,
    pub follow_up: FollowUp,
}

/// An outcome body as it arrives: plain strings, parsed by [`OutcomeDraft::try_from`] so
/// each refusal names its field path (e.g. `investigations[1].notes`).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct OutcomeRequest {
    #[serde(default)]
    pub investigations: Vec<InvestigationRequest>,
    #[serde(default)]
    pub referrals: Vec<ReferralRequest>,
    pub management_plan: PlanRequest,
    #[serde(default)]
    pub follow_up: Option<FollowUpRequest>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct InvestigationRequest {
    #[serde(default)]
    pub kind: String,
    pub site: Option<String>,
    #[serde(default)]
    pub urgency: String,
    pub notes: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReferralRequest {
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub urgency: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PlanRequest {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub items: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FollowUpRequest {
    #[serde(default)]
    pub kind: String,
    pub session_id: Option<String>,
    pub reason: Option<String>,
    pub weeks: Option<i64>,
}

fn too_many(field: &'static str, max: usize) -> ParseError {
    ParseError::new("too_many", field, format!("must have at most {max} entries"))
}

fn parse_investigation(i: usize, r: InvestigationRequest) -> Result<Investigation, ParseError> {
    let at = |leaf: &str| format!("investigations[{i}].{leaf}");
    let site = match r.site.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(BodySite::parse(raw).map_err(|e| e.for_field(at("site")))?),
    };
    Ok(Investigation {
        kind: InvestigationKind::parse(&r.kind, at("kind"))?,
        site,
        urgency: urgency(&r.urgency, at("urgency"))?,
        notes: OutcomeText::optional(r.notes.as_deref(), at("notes"), MAX_NOTES)?,
    })
}

fn parse_referral(i: usize, r: ReferralRequest) -> Result<Referral, ParseError> {
    let at = |leaf: &str| format!("referrals[{i}].{leaf}");
    Ok(Referral {
        destination: ReferralDestination::parse(&r.destination, at("destination"))?,
        urgency: urgency(&r.urgency, at("urgency"))?,
        reason: OutcomeText::parse(&r.reason, at("reason"), MAX_REASON, true)?,
    })
}

fn parse_plan(r: PlanRequest) -> Result<ManagementPlan, ParseError> {
    if r.items.len() > MAX_PLAN_ITEMS {
        return Err(too_many("management_plan.items", MAX_PLAN_ITEMS));
    }
    let items = r
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            OutcomeText::parse(item, format!("management_plan.items[{i}]"), MAX_ITEM, false)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = if r.text.trim().is_empty() {
        if items.is_empty() {
            return Err(ParseError::new(
                "required",
                "management_plan.text",
                "give the plan as text, as items, or both",
            ));
        }
        String::new()
    } else {
        OutcomeText::parse(&r.text, "management_plan.text".into(), MAX_PLAN_TEXT, true)?.0
    };
    Ok(ManagementPlan { text, items })
}

fn parse_follow_up(r: Option<FollowUpRequest>) -> Result<FollowUp, ParseError> {
    let Some(r) = r else {
        return Ok(FollowUp::None);
    };
    match r.kind.trim() {
        "none" => Ok(FollowUp::None),
        "re_discuss" | "re-discuss" | "rediscuss" => {
            let raw = r.session_id.as_deref().map(str::trim).unwrap_or("");
            if raw.is_empty() {
                return Err(ParseError::new(
                    "required",
                    "follow_up.session_id",
                    "name the session to discuss the case again in",
                ));
            }
            let session_id = Uuid::parse_str(raw).map_err(|_| {
                ParseError::new("invalid_value", "follow_up.session_id", "must be a session id")
            })?;
            let reason = OutcomeText::parse(
                r.reason.as_deref().unwrap_or(""),
                "follow_up.reason".into(),
                MAX_REASON,
                true,
            )?;
            Ok(FollowUp::ReDiscuss { session_id, reason })
        }
        "review" => {
            let weeks = r
                .weeks
                .and_then(|w| u8::try_from(w).ok())
                .filter(|w| (1..=MAX_REVIEW_WEEKS).contains(w))
                .ok_or_else(|| {
                    ParseError::new(
                        "invalid_value",
                        "follow_up.weeks",
                        format!("must be a whole number of weeks from 1 to {MAX_REVIEW_WEEKS}"),
                    )
                })?;
            Ok(FollowUp::Review { weeks })
        }
        other => Err(invalid_value(other, "follow_up.kind".into(), "none, re_discuss or review")),
    }
}

impl TryFrom<OutcomeRequest> for OutcomeDraft {
    type Error = ParseError;

    fn try_from(r: OutcomeRequest) -> Result<Self, ParseError> {
        if r.investigations.len() > MAX_ENTRIES {
            return Err(too_many("investigations", MAX_ENTRIES));
        }
        if r.referrals.len() > MAX_ENTRIES {
            return Err(too_many("referrals", MAX_ENTRIES));
        }
        Ok(OutcomeDraft {
            investigations: r
                .investigations
                .into_iter()
                .enumerate()
                .map(|(i, inv)| parse_investigation(i, inv))
                .collect::<Result<_, _>>()?,
            referrals: r
                .referrals
                .into_iter()
                .enumerate()
                .map(|(i, re)| parse_referral(i, re))
                .collect::<Result<_, _>>()?,
            management_plan: parse_plan(r.management_plan)?,
            follow_up: parse_follow_up(r.follow_up)?,
        })
    }
}

impl OutcomeDraft {
    /// The decisions without any free text.
    pub fn summary(&self) -> OutcomeSummary {
        OutcomeSummary {
            investigations: self
                .investigations
                .iter()
                .map(|i| InvestigationSummary {
                    kind: i.kind,
                    site: i.site.clone(),
                    urgency: i.urgency,
                })
                .collect(),
            referrals: self
                .referrals
                .iter()
                .map(|r| ReferralSummary { destination: r.destination, urgency: r.urgency })
                .collect(),
            plan_items: self.management_plan.items.len(),
            follow_up: FollowUpSummary {
                kind: self.follow_up.kind(),
                session_id: self.follow_up.re_discuss_session(),
                weeks: match self.follow_up {
                    FollowUp::Review { weeks } => Some(weeks),
                    _ => None,
                },
            },
        }
    }
}

/// An outcome with no free text at all: for live events, letters and trainees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutcomeSummary {
    pub investigations: Vec<InvestigationSummary>,
    pub referrals: Vec<ReferralSummary>,
    pub plan_items: usize,
    pub follow_up: FollowUpSummary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvestigationSummary {
    pub kind: InvestigationKind,
    #[schema(value_type = Option<String>)]
    pub site: Option<BodySite>,
    pub urgency: Urgency,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReferralSummary {
    pub destination: ReferralDestination,
    pub urgency: Urgency,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FollowUpSummary {
    pub kind: FollowUpKind,
    pub session_id: Option<Uuid>,
    pub weeks: Option<u8>,
}

/// Why a signed outcome is amended: required, at most 1000 characters.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AmendmentReason(String);

impl AmendmentReason {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded_text(raw, "reason", MAX_REASON, true).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parsed amendment: the corrected outcome and why it was corrected.
#[derive(Clone, Debug)]
pub struct Amendment {
    pub reason: AmendmentReason,
    pub body: OutcomeDraft,
}

/// An amendment as it arrives: `{reason, …the outcome's fields}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AmendmentRequest {
    #[serde(default)]
    pub reason: String,
    #[serde(flatten)]
    pub outcome: OutcomeRequest,
}

impl TryFrom<AmendmentRequest> for Amendment {
    type Error = ParseError;

    fn try_from(r: AmendmentRequest) -> Result<Self, ParseError> {
        Ok(Amendment {
            reason: AmendmentReason::parse(&r.reason)?,
            body: OutcomeDraft::try_from(r.outcome)?,
        })
    }
}

impl fmt::Debug for AmendmentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AmendmentReason(…)")
    }
}

/// One stored version of a case's outcome. Version 1 is the first draft; a signed
/// version never changes again, and an amendment is a new version that `supersedes` it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeVersion {
    pub case_id: Uuid,
    /// 1-based.
    pub version: u32,
    pub body: OutcomeDraft,
    #[schema(value_type = Uuid)]
    pub author_id: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<Uuid>)]
    pub signed_by: Option<UserId>,
    pub signed_at: Option<DateTime<Utc>>,
    pub amendment_reason: Option<String>,
    pub supersedes: Option<u32>,
    /// Why a consultant signed it for a case its meeting did not discuss.
    pub outside_meeting_reason: Option<String>,
}

impl OutcomeVersion {
    pub fn is_signed(&self) -> bool {
        self.signed_at.is_some()
    }

    /// The first version of a case's outcome: an unsigned draft.
    pub fn first_draft(
        case_id: Uuid, body: OutcomeDraft, author: UserId, now: DateTime<Utc>,
    ) -> Self {
        let now = stored_time(now);
        OutcomeVersion {
            case_id,
            version: 1,
            body,
            author_id: author,
            created_at: now,
            updated_at: now,
            signed_by: None,
            signed_at: None,
            amendment_reason: None,
            supersedes: None,
            outside_meeting_reason: None,
        }
    }

    /// This draft, signed by `signer` at `now`.
    pub fn signed(mut self, signer: UserId, now: DateTime<Utc>) -> Self {
        self.signed_by = Some(signer);
        self.signed_at = Some(stored_time(now));
        self
    }

    /// The amendment that supersedes this signed version: the next version, signed by
    /// its author.
    pub fn amended(&self, amendment: Amendment, author: UserId, now: DateTime<Utc>) -> Self {
        let now = stored_time(now);
        OutcomeVersion {
            case_id: self.case_id,
            version: self.version + 1,
            body: amendment.body,
            author_id: author,
            created_at: now,
            updated_at: now,
            signed_by: Some(author),
            signed_at: Some(now),
            amendment_reason: Some(amendment.reason.as_str().to_string()),
            supersedes: Some(self.version),
            outside_meeting_reason: None,
        }
    }
}

/// Times as the databases keep them (to the microsecond), so what is returned equals
/// what is read back.
fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}

/// How a version leaves the server: in full, or (for de-identified viewers) with the
/// summary in place of the body and no amendment reason. The only serialisation of a
/// version in responses.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum OutcomeVersionView<'a> {
    Full(&'a OutcomeVersion),
    DeIdentified(DeIdentifiedVersion),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeIdentifiedVersion {
    pub case_id: Uuid,
    pub version: u32,
    pub summary: OutcomeSummary,
    #[schema(value_type = Uuid)]
    pub author_id: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<Uuid>)]
    pub signed_by: Option<UserId>,
    pub signed_at: Option<DateTime<Utc>>,
    pub amended: bool,
    pub supersedes: Option<u32>,
    /// Signed for a case its meeting did not discuss (the reason is free text, not shown).
    pub outside_meeting: bool,
}

impl<'a> OutcomeVersionView<'a> {
    pub fn of(v: &'a OutcomeVersion, identified: bool) -> Self {
        if identified {
            return OutcomeVersionView::Full(v);
        }
        OutcomeVersionView::DeIdentified(DeIdentifiedVersion {
            case_id: v.case_id,
            version: v.version,
            summary: v.body.summary(),
            author_id: v.author_id,
            created_at: v.created_at,
            updated_at: v.updated_at,
            signed_by: v.signed_by,
            signed_at: v.signed_at,
            amended: v.amendment_reason.is_some(),
            supersedes: v.supersedes,
            outside_meeting: v.outside_meeting_reason.is_some(),
        })
    }
}

/// A re-discussion goes to a later session of the same specialty as the case's own.
pub fn check_follow_up_session(case_session: &Session, target: &Session) -> Result<(), ParseError> {
    let bad =
        |why: &str| Err(ParseError::new("invalid_follow_up_session", "follow_up.session_id", why));
    if target.plan.specialty != case_session.plan.specialty {
        return bad("must be a session of the same specialty");
    }
    if target.starts_at <= case_session.starts_at {
        return bad("must start after the session the case was discussed in");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<OutcomeDraft, ParseError> {
        let request: OutcomeRequest = serde_json::from_value(v).expect("request shape");
        OutcomeDraft::try_from(request)
    }

    fn good() -> serde_json::Value {
        json!({
            "investigations": [
                {"kind": "mri", "site": "Lower Back", "urgency": "urgent", "notes": "  whole spine  "},
                {"kind": "bloods", "urgency": "routine"}
            ],
            "referrals": [{"destination": "pain_management_programme", "urgency": "routine", "reason": "Persistent pain"}],
            "management_plan": {"text": "Continue physiotherapy.", "items": ["Review analgesia"]},
            "follow_up": {"kind": "re-discuss", "session_id": "6f1c2b8e-1c44-4c55-9a36-0d7d2f3c1a11", "reason": "After MRI"}
        })
    }

    #[test]
    fn parses_a_full_outcome() {
        let d = parse(good()).unwrap();
        assert_eq!(d.investigations[0].kind, InvestigationKind::Mri);
        assert_eq!(d.investigations[0].site.as_ref().unwrap().as_str(), "lower back");
        assert_eq!(d.investigations[0].notes.as_ref().unwrap().as_str(), "whole spine");
        assert_eq!(d.investigations[1].notes, None);
        assert_eq!(d.referrals[0].destination, ReferralDestination::PainManagementProgramme);
        assert_eq!(d.follow_up.kind(), FollowUpKind::ReDiscuss);
        // Aliases are accepted; the canonical spelling is emitted.
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains(r#""kind":"re_discuss""#), "{text}");
        let s = d.summary();
        assert_eq!(s.plan_items, 1);
        let summary = serde_json::to_string(&s).unwrap();
        for free in ["whole spine", "Persistent pain", "Continue", "analgesia", "After MRI"] {
            assert!(!summary.contains(free), "{free} in {summary}");
        }
        for kind in ["rediscuss", "re_discuss"] {
            let mut v = good();
            v["follow_up"]["kind"] = json!(kind);
            assert!(parse(v).is_ok(), "{kind}");
        }
        let mut v = good();
        v["follow_up"] = json!({"kind": "review", "weeks": 52});
        assert_eq!(parse(v).unwrap().follow_up, FollowUp::Review { weeks: 52 });
        let mut v = good();
        v.as_object_mut().unwrap().remove("follow_up");
        assert_eq!(parse(v).unwrap().follow_up, FollowUp::None);
        // A plan may be items only.
        let mut v = good();
        v["management_plan"] = json!({"text": "  ", "items": ["Exercise"]});
        assert_eq!(parse(v).unwrap().management_plan.text, "");
    }

    fn refusal(edit: impl FnOnce(&mut serde_json::Value)) -> (String, &'static str) {
        let mut v = good();
        edit(&mut v);
        let e = parse(v).unwrap_err();
        (e.field.to_string(), e.code)
    }

    #[test]
    fn refuses_each_kind_of_bad_input_naming_the_field() {
        fn long(n: usize) -> String {
            "x".repeat(n)
        }
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str, &str)> = vec![
            (
                Box::new(|v| v["investigations"][1]["notes"] = json!(long(501))),
                "investigations[1].notes",
                "too_long",
            ),
            (
                Box::new(|v| v["investigations"][0]["kind"] = json!("pet")),
                "investigations[0].kind",
                "invalid_value",
            ),
            (
                Box::new(|v| v["investigations"][0]["urgency"] = json!("soon")),
                "investigations[0].urgency",
                "invalid_value",
            ),
            (
                Box::new(|v| v["investigations"][0]["site"] = json!("knee of Mrs Smith")),
                "investigations[0].site",
                "invalid_body_site",
            ),
            (
                Box::new(|v| v["investigations"][0]["notes"] = json!("bad\u{0007}bell")),
                "investigations[0].notes",
                "invalid_characters",
            ),
            (
                Box::new(|v| v["referrals"][0]["destination"] = json!("dentist")),
                "referrals[0].destination",
                "invalid_value",
            ),
            (
                Box::new(|v| v["referrals"][0]["reason"] = json!(long(1001))),
                "referrals[0].reason",
                "too_long",
            ),
            (
                Box::new(|v| v["referrals"][0]["reason"] = json!("  ")),
                "referrals[0].reason",
                "required",
            ),
            (
                Box::new(|v| v["management_plan"] = json!({"text": ""})),
                "management_plan.text",
                "required",
            ),
            (
                Box::new(|v| v["management_plan"]["text"] = json!(long(4001))),
                "management_plan.text",
                "too_long",
            ),
            (
                Box::new(|v| v["management_plan"]["items"] = json!([long(201)])),
                "management_plan.items[0]",
                "too_long",
            ),
            (
                Box::new(|v| v["management_plan"]["items"] = json!(["a\nb"])),
                "management_plan.items[0]",
                "invalid_characters",
            ),
            (
                Box::new(|v| v["management_plan"]["items"] = json!(vec!["a"; 21])),
                "management_plan.items",
                "too_many",
            ),
            (
                Box::new(|v| {
                    v["investigations"] =
                        json!(vec![json!({"kind": "ct", "urgency": "routine"}); 21])
                }),
                "investigations",
                "too_many",
            ),
            (
                Box::new(|v| {
                    v["referrals"] = json!(vec![
                        json!({"destination": "neurology", "urgency": "routine", "reason": "r"});
                        21
                    ])
                }),
                "referrals",
                "too_many",
            ),
            (
                Box::new(|v| v["follow_up"] = json!({"kind": "later"})),
                "follow_up.kind",
                "invalid_value",
            ),
            (
                Box::new(|v| v["follow_up"] = json!({"kind": "review", "weeks": 53})),
                "follow_up.weeks",
                "invalid_value",
            ),
            (
                Box::new(|v| v["follow_up"] = json!({"kind": "review", "weeks": 0})),
                "follow_up.weeks",
                "invalid_value",
            ),
            (
                Box::new(|v| v["follow_up"] = json!({"kind": "review"})),
                "follow_up.weeks",
                "invalid_value",
            ),
            (
                Box::new(|v| v["follow_up"]["session_id"] = json!("not-a-uuid")),
                "follow_up.session_id",
                "invalid_value",
            ),
            (
                Box::new(|v| v["follow_up"]["session_id"] = json!(null)),
                "follow_up.session_id",
                "required",
            ),
            (Box::new(|v| v["follow_up"]["reason"] = json!(null)), "follow_up.reason", "required"),
        ];
        for (edit, field, code) in cases {
            assert_eq!(refusal(edit), (field.to_string(), code));
        }
        assert_eq!(AmendmentReason::parse(" ").unwrap_err().code, "required");
        assert_eq!(AmendmentReason::parse(&long(1001)).unwrap_err().code, "too_long");
        assert!(AmendmentReason::parse("Wrong side recorded").is_ok());
    }

    #[test]
    fn free_text_stays_out_of_debug() {
        let d = parse(good()).unwrap();
        let debug = format!("{d:?}");
        assert!(!debug.contains("whole spine") && !debug.contains("After MRI"), "{debug}");
    }

    fn text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9 ,.()'-]{0,40}[A-Za-z0-9.]"
    }

    fn investigation() -> impl Strategy<Value = serde_json::Value> {
        (
            prop::sample::select(InvestigationKind::ALL.to_vec()),
            prop::option::of(prop::sample::select(BodySite::REGIONS.to_vec())),
            prop::bool::ANY,
            prop::option::of(text()),
        )
            .prop_map(|(kind, site, urgent, notes)| {
                json!({"kind": kind.as_str(), "site": site, "urgency": if urgent { "urgent" } else { "routine" }, "notes": notes})
            })
    }

    fn referral() -> impl Strategy<Value = serde_json::Value> {
        (
            prop::sample::select(ReferralDestination::ALL.to_vec()),
            prop::bool::ANY,
            text(),
        )
            .prop_map(|(d, urgent, reason)| {
                json!({"destination": d.as_str(), "urgency": if urgent { "urgent" } else { "routine" }, "reason": reason})
            })
    }

    fn follow_up() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(json!({"kind": "none"})),
            (1u8..=52).prop_map(|w| json!({"kind": "review", "weeks": w})),
            (any::<u128>(), text()).prop_map(|(id, reason)| json!({
                "kind": "re_discuss", "session_id": Uuid::from_u128(id), "reason": reason
            })),
        ]
    }

    proptest! {
        #[test]
        fn any_valid_draft_round_trips_through_json(
            investigations in prop::collection::vec(investigation(), 0..=MAX_ENTRIES),
            referrals in prop::collection::vec(referral(), 0..=MAX_ENTRIES),
            plan_text in prop::option::of(text()),
            items in prop::collection::vec(text(), 1..=MAX_PLAN_ITEMS),
            follow_up in follow_up(),
        ) {
            let draft = parse(json!({
                "investigations": investigations, "referrals": referrals,
                "management_plan": {"text": plan_text.unwrap_or_default(), "items": items},
                "follow_up": follow_up,
            })).expect("generated drafts are valid");
            let stored = serde_json::to_string(&draft).unwrap();
            let back: OutcomeDraft = serde_json::from_str(&stored).unwrap();
            prop_assert_eq!(back, draft);
        }
    }
}
