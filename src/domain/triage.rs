//! Triage (issue 15): every booking waits for the session's chair or a coordinator to
//! accept it onto the agenda, return it as not ready, or list it as following a standard
//! of care (listed, not discussed); the agenda publication rule and the late urgent
//! addition. Pure rules; the store applies them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use super::case::ReturnReason;
use super::case::{Case, CaseState, ClinicalText, Urgency};
use super::conflict::Conflict;
use super::outcome::{FollowUp, ManagementPlan, OutcomeDraft, OutcomeVersion};
use super::parse::{bounded_text, ParseError};
use super::schedule::{Session, SessionState};
use super::user::UserId;

/// One of a specialty's standard plans: what a listed case's signed outcome says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StandardPlan {
    pub code: String,
    pub title: String,
    pub plan: String,
}

impl StandardPlan {
    /// Parses a coordinator's list: codes are snake_case and unique; title and plan text.
    pub fn parse_list(plans: Vec<StandardPlan>) -> Result<Vec<StandardPlan>, ParseError> {
        let mut seen = std::collections::HashSet::new();
        plans
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let code = p.code.trim().to_string();
                let snake = !code.is_empty()
                    && code.len() <= 60
                    && code
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !snake || !seen.insert(code.clone()) {
                    let why = "must be a unique snake_case code";
                    return Err(ParseError::new(
                        "invalid_standard_plan",
                        format!("plans[{i}].code"),
                        why,
                    ));
                }
                let title = bounded_text(&p.title, "title", 120, false)
                    .map_err(|e| e.for_field(format!("plans[{i}].title")))?;
                let plan = bounded_text(&p.plan, "plan", 2000, true)
                    .map_err(|e| e.for_field(format!("plans[{i}].plan")))?;
                Ok(StandardPlan { code, title, plan })
            })
            .collect()
    }

    /// The outcome a listed case gets: this plan, no investigations or referrals.
    pub fn outcome(&self) -> OutcomeDraft {
        OutcomeDraft {
            investigations: Vec::new(),
            referrals: Vec::new(),
            management_plan: ManagementPlan { text: self.plan.clone(), items: Vec::new() },
            follow_up: FollowUp::None,
        }
    }

    /// The signed first version of a listed case's outcome, as the chair confirms it.
    pub fn signed_outcome(
        &self, case_id: Uuid, signer: UserId, now: DateTime<Utc>,
    ) -> OutcomeVersion {
        OutcomeVersion::first_draft(case_id, self.outcome(), signer, now).signed(signer, now)
    }
}

/// A parsed triage decision.
#[derive(Clone, Debug)]
pub enum Decision {
    Accept,
    Return { reason: ReturnReason, note: Option<ClinicalText> },
    List { plan: StandardPlan },
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Return { .. } => "return",
            Decision::List { .. } => "list",
        }
    }

    /// The state the case takes.
    pub fn state(&self) -> CaseState {
        match self {
            Decision::Accept => CaseState::Booked,
            Decision::Return { .. } => CaseState::Returned,
            Decision::List { .. } => CaseState::Listed,
        }
    }
}

/// `POST /api/cases/{id}/triage` as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TriageRequest {
    pub decision: String,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub standard_plan: Option<String>,
}

impl TriageRequest {
    /// Parses the decision against the specialty's standard plans.
    pub fn parse(&self, plans: &[StandardPlan]) -> Result<Decision, ParseError> {
        match self.decision.trim() {
            "accept" => Ok(Decision::Accept),
            "return" => {
                let reason = self.reason.as_deref().ok_or_else(|| {
                    ParseError::new(
                        "reason_required",
                        "reason",
                        "a returned booking needs a reason",
                    )
                })?;
                let note = self.note.as_deref().filter(|n| !n.trim().is_empty());
                Ok(Decision::Return {
                    reason: ReturnReason::parse(reason)?,
                    note: note.map(|n| ClinicalText::parse(n, "note")).transpose()?,
                })
            }
            "list" => {
                let code = self.standard_plan.as_deref().unwrap_or("").trim();
                let plan = plans.iter().find(|p| p.code == code).cloned().ok_or_else(|| {
                    let codes: Vec<&str> = plans.iter().map(|p| p.code.as_str()).collect();
                    let why = format!(
                        "must be one of this specialty's standard plans: {}",
                        codes.join(", ")
                    );
                    ParseError::new("unknown_standard_plan", "standard_plan", why)
                })?;
                Ok(Decision::List { plan })
            }
            _ => Err(ParseError::new(
                "invalid_decision",
                "decision",
                "must be accept, return or list",
            )),
        }
    }
}

/// Whether `decision` may be applied to `case` in `session` by its chair (`by_chair`) or a
/// coordinator. Once the agenda is published only an urgent case the chair approves is
/// added to it (accepted or listed); returning is always possible.
pub fn check_triage(
    case: &Case, session: &Session, decision: &Decision, by_chair: bool,
) -> Result<(), Conflict> {
    if case.state != CaseState::AwaitingTriage {
        return Err(Conflict::NotAwaitingTriage(case.state.as_str()));
    }
    super::booking::check_takes_bookings(session)?;
    let adds = !matches!(decision, Decision::Return { .. });
    let late_ok = case.urgency == Urgency::Urgent && by_chair;
    if adds && session.state == SessionState::Published && !late_ok {
        return Err(Conflict::AgendaPublished);
    }
    Ok(())
}

/// A returned case may be edited (by its referrer or a coordinator) and resubmitted until
/// the session's cut-off; its slot is held until then.
pub fn check_returned(case: &Case) -> Result<(), Conflict> {
    if case.state == CaseState::Returned {
        Ok(())
    } else {
        Err(Conflict::NotReturned(case.state.as_str()))
    }
}

/// The agenda is published at least `hours` before the meeting (`409 publication_too_late`).
pub fn check_publishable(
    session: &Session, now: DateTime<Utc>, hours: u32,
) -> Result<(), Conflict> {
    if session.state != SessionState::Scheduled {
        return Err(Conflict::invalid(format!(
            "a {} session cannot be published",
            session.state.as_str()
        )));
    }
    if now > session.starts_at - Duration::hours(i64::from(hours)) {
        return Err(Conflict::PublicationTooLate(hours));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Vec<StandardPlan> {
        vec![StandardPlan {
            code: "continue_current_care".into(),
            title: "Continue".into(),
            plan: "Continue.".into(),
        }]
    }

    fn request(decision: &str) -> TriageRequest {
        TriageRequest { decision: decision.into(), reason: None, note: None, standard_plan: None }
    }

    #[test]
    fn parses_decisions() {
        assert!(matches!(request("accept").parse(&plans()), Ok(Decision::Accept)));
        assert_eq!(request("return").parse(&plans()).unwrap_err().code, "reason_required");
        let mut r = request("return");
        r.reason = Some("imaging_needed".into());
        assert!(matches!(
            r.parse(&plans()),
            Ok(Decision::Return { reason: ReturnReason::ImagingNeeded, note: None })
        ));
        assert_eq!(request("list").parse(&plans()).unwrap_err().code, "unknown_standard_plan");
        let mut l = request("list");
        l.standard_plan = Some("continue_current_care".into());
        assert_eq!(l.parse(&plans()).unwrap().state(), CaseState::Listed);
        assert_eq!(request("maybe").parse(&plans()).unwrap_err().code, "invalid_decision");
    }

    #[test]
    fn a_published_agenda_takes_only_urgent_cases_the_chair_approves() {
        let chair = UserId::new();
        let now = Utc::now();
        let session =
            Session::example(chair, now + Duration::days(3), 8, 0, SessionState::Published);
        let mut case = Case {
            session_id: session.id,
            ..Case::example("9434765919", CaseState::AwaitingTriage, 5)
        };
        assert_eq!(
            check_triage(&case, &session, &Decision::Accept, true),
            Err(Conflict::AgendaPublished)
        );
        case.urgency = Urgency::Urgent;
        assert_eq!(
            check_triage(&case, &session, &Decision::Accept, false),
            Err(Conflict::AgendaPublished)
        );
        assert!(check_triage(&case, &session, &Decision::Accept, true).is_ok());
        let back = Decision::Return { reason: ReturnReason::Other, note: None };
        case.urgency = Urgency::Routine;
        assert!(check_triage(&case, &session, &back, false).is_ok());
        case.state = CaseState::Booked;
        assert_eq!(
            check_triage(&case, &session, &back, true),
            Err(Conflict::NotAwaitingTriage("booked"))
        );
    }

    #[test]
    fn publication_is_at_least_the_configured_hours_ahead() {
        let now = Utc::now();
        let s = Session::example(
            UserId::new(),
            now + Duration::hours(30),
            8,
            0,
            SessionState::Scheduled,
        );
        assert!(check_publishable(&s, now, 24).is_ok());
        assert_eq!(check_publishable(&s, now, 48), Err(Conflict::PublicationTooLate(48)));
    }
}
