//! The booking rules: whether a session takes a case, whether a case may be moved,
//! withdrawn, drafted, signed, amended or flagged, the agenda-order rule, and where the
//! cases of a cancelled or deferring session go. Pure functions; the store applies them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::case::{Case, CaseState};
use super::conflict::Conflict;
use super::nhs_number::NhsNumber;
use super::outcome::OutcomeVersion;
use super::schedule::{Session, SessionState};

/// Only scheduled and published sessions take cases.
pub fn check_takes_bookings(session: &Session) -> Result<(), Conflict> {
    match session.state {
        SessionState::Scheduled | SessionState::Published => Ok(()),
        other => Err(Conflict::SessionNotBookable(other.as_str())),
    }
}

/// A referrer may book into a session that takes cases until its cut-off.
pub fn check_bookable(session: &Session, now: DateTime<Utc>) -> Result<(), Conflict> {
    check_takes_bookings(session)?;
    if now >= session.booking_closes_at() {
        return Err(Conflict::BookingClosed);
    }
    Ok(())
}

/// A session may be moved or cancelled until it is held.
pub fn check_changeable(session: &Session, verb: &str) -> Result<(), Conflict> {
    check_takes_bookings(session).map_err(|_| {
        Conflict::invalid(format!("a {} session cannot be {verb}", session.state.as_str()))
    })
}

/// A case may be withdrawn or moved until it is discussed.
pub fn check_movable(case: &Case) -> Result<(), Conflict> {
    if case.state.withdrawable() {
        Ok(())
    } else {
        Err(Conflict::invalid(format!(
            "a case that is {} cannot be withdrawn or moved",
            case.state.as_str()
        )))
    }
}

/// A proposed agenda order must name exactly the cases now on the agenda.
pub fn check_agenda_order(current: &[Uuid], proposed: &[Uuid]) -> Result<(), Conflict> {
    let mut a = current.to_vec();
    let mut b = proposed.to_vec();
    a.sort();
    b.sort();
    if a == b {
        Ok(())
    } else {
        Err(Conflict::AgendaChanged)
    }
}

fn holding_slot(case: &Case, what: &str) -> Result<(), Conflict> {
    if case.state.holds_slot() {
        Ok(())
    } else {
        Err(Conflict::invalid(format!("a case that is {} {what}", case.state.as_str())))
    }
}

/// A draft may be saved for a case on the agenda (triage accepted or listed it), while its
/// outcome is unsigned.
pub fn check_draftable(case: &Case, current: Option<&OutcomeVersion>) -> Result<(), Conflict> {
    if !case.state.on_agenda() {
        let why = format!("a case that is {} has no outcome to record", case.state.as_str());
        return Err(Conflict::invalid(why));
    }
    match current {
        Some(v) if v.signed_at.is_some() => Err(Conflict::OutcomeSigned),
        _ => Ok(()),
    }
}

/// A draft may be signed while the case is being (or was just) discussed in its meeting,
/// or, with a reason for deciding outside the meeting (`outside_meeting`), while it is
/// booked or listed; returns the draft.
pub fn check_signable<'a>(
    case: &Case, current: Option<&'a OutcomeVersion>, outside_meeting: bool,
) -> Result<&'a OutcomeVersion, Conflict> {
    let draft = current.ok_or(Conflict::NoDraft)?;
    if draft.signed_at.is_some() {
        return Err(Conflict::OutcomeSigned);
    }
    use CaseState::{Booked, Discussed, InDiscussion, Listed};
    match case.state {
        InDiscussion | Discussed => Ok(draft),
        Booked | Listed if outside_meeting => Ok(draft),
        Booked | Listed => Err(Conflict::NotDiscussed),
        other => Err(Conflict::invalid(format!(
            "the outcome of a case that is {} cannot be signed",
            other.as_str()
        ))),
    }
}

/// Only a signed outcome is amended; returns the version the amendment supersedes.
pub fn check_amendable(current: Option<&OutcomeVersion>) -> Result<&OutcomeVersion, Conflict> {
    match current {
        None => Err(Conflict::NoDraft),
        Some(v) if v.signed_at.is_none() => Err(Conflict::OutcomeNotSigned),
        Some(v) => Ok(v),
    }
}

/// A case may be flagged for mentorship while it holds its slot.
pub fn check_flaggable(case: &Case) -> Result<(), Conflict> {
    holding_slot(case, "cannot be flagged for mentorship")
}

/// A session a displaced case might go to, as it stands.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub session: Session,
    /// Patients already holding a slot in it.
    pub patients: HashSet<NhsNumber>,
}

/// Where a displaced case goes: the first candidate (in start order) that takes
/// bookings (before its cut-off when `enforce_cutoff`), has room and does not already
/// hold the patient; `None` means flag it for rebooking. Taking a place updates the
/// candidate, so a plan for several cases never over-books.
pub fn destination(
    case: &Case, candidates: &mut [Candidate], enforce_cutoff: bool, now: DateTime<Utc>,
) -> Option<Uuid> {
    let found = candidates.iter_mut().find(|c| {
        let open = if enforce_cutoff {
            check_bookable(&c.session, now).is_ok()
        } else {
            check_takes_bookings(&c.session).is_ok()
        };
        open && c.session.booked < c.session.plan.case_capacity
            && !c.patients.contains(&case.patient.nhs_number)
    })?;
    found.session.booked += 1;
    found.patients.insert(case.patient.nhs_number.clone());
    Some(found.session.id)
}

/// Where each case of a cancelled session goes, urgent cases first: `(case, Some(target))`
/// to move it, `(case, None)` to flag it for rebooking.
pub fn rebooking_plan(
    cases: &[Case], mut later: Vec<Candidate>, now: DateTime<Utc>,
) -> Vec<(Uuid, Option<Uuid>)> {
    let mut waiting: Vec<&Case> = cases.iter().filter(|c| c.state.withdrawable()).collect();
    waiting.sort_by_key(|c| (c.urgency != super::case::Urgency::Urgent, c.booked_at, c.id));
    waiting.into_iter().map(|case| (case.id, destination(case, &mut later, true, now))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Urgency, UserId};
    use chrono::Duration;

    fn session(hours_ahead: i64, capacity: u32, booked: u32) -> Session {
        let starts_at = Utc::now() + Duration::hours(hours_ahead);
        Session::example(
            UserId(Uuid::new_v4()),
            starts_at,
            capacity,
            booked,
            SessionState::Published,
        )
    }

    fn case(nhs: &str, urgency: Urgency, minutes_ago: i64) -> Case {
        Case { urgency, ..Case::example(nhs, CaseState::Booked, minutes_ago) }
    }

    fn candidate(s: Session) -> Candidate {
        Candidate { session: s, patients: HashSet::new() }
    }

    #[test]
    fn urgent_cases_take_the_first_free_places() {
        let routine = case("9434765919", Urgency::Routine, 30);
        let urgent = case("9434765870", Urgency::Urgent, 10);
        let next = session(24 * 8, 1, 0);
        let after = session(24 * 15, 5, 5);
        let plan = rebooking_plan(
            &[routine.clone(), urgent.clone()],
            vec![candidate(next.clone()), candidate(after)],
            Utc::now(),
        );
        assert_eq!(plan, vec![(urgent.id, Some(next.id)), (routine.id, None)]);
    }

    #[test]
    fn a_session_already_holding_the_patient_or_past_its_cutoff_is_skipped() {
        let c = case("9434765919", Urgency::Routine, 5);
        let closing = session(2, 5, 0);
        let mut holding = candidate(session(24 * 8, 5, 1));
        holding.patients.insert(c.patient.nhs_number.clone());
        let free = session(24 * 15, 5, 0);
        let mut all = vec![candidate(closing.clone()), holding, candidate(free.clone())];
        assert_eq!(destination(&c, &mut all, true, Utc::now()), Some(free.id));
        // Deferral during a meeting ignores the cut-off.
        let mut all = vec![candidate(closing.clone())];
        assert_eq!(destination(&c, &mut all, false, Utc::now()), Some(closing.id));
    }

    #[test]
    fn withdrawn_and_discussed_cases_are_not_rebooked() {
        let mut gone = case("9434765919", Urgency::Routine, 5);
        gone.state = CaseState::Withdrawn;
        let mut done = case("9434765870", Urgency::Routine, 5);
        done.state = CaseState::Discussed;
        assert!(rebooking_plan(&[gone, done], vec![], Utc::now()).is_empty());
    }

    #[test]
    fn signing_needs_an_unsigned_draft_and_amending_a_signed_one() {
        let c = case("9434765919", Urgency::Routine, 5);
        assert_eq!(check_signable(&c, None, true).unwrap_err(), Conflict::NoDraft);
        // A draft is signed once its meeting discussed the case, or with a reason.
        let plan = crate::domain::triage::StandardPlan {
            code: "rest".into(),
            title: "Rest".into(),
            plan: "Rest.".into(),
        };
        let draft = OutcomeVersion::first_draft(c.id, plan.outcome(), c.referrer_id, Utc::now());
        assert_eq!(check_signable(&c, Some(&draft), false).unwrap_err(), Conflict::NotDiscussed);
        assert!(check_signable(&c, Some(&draft), true).is_ok());
        let discussed = Case { state: CaseState::Discussed, ..c.clone() };
        assert!(check_signable(&discussed, Some(&draft), false).is_ok());
        assert_eq!(check_amendable(None).unwrap_err(), Conflict::NoDraft);
        let mut withdrawn = c.clone();
        withdrawn.state = CaseState::Withdrawn;
        assert!(matches!(check_draftable(&withdrawn, None), Err(Conflict::InvalidState(_))));
        assert!(check_movable(&c).is_ok());
        assert!(check_movable(&withdrawn).is_err());
    }

    #[test]
    fn the_agenda_order_must_name_exactly_the_cases_on_it() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(check_agenda_order(&[a, b], &[b, a]).is_ok());
        assert_eq!(check_agenda_order(&[a, b], &[a]), Err(Conflict::AgendaChanged));
    }

    #[test]
    fn cut_off_and_state_decide_bookability() {
        let now = Utc::now();
        assert!(check_bookable(&session(48, 5, 0), now).is_ok());
        assert_eq!(check_bookable(&session(2, 5, 0), now), Err(Conflict::BookingClosed));
        let mut held = session(48, 5, 0);
        held.state = SessionState::Closed;
        assert!(matches!(check_bookable(&held, now), Err(Conflict::SessionNotBookable(_))));
        assert!(check_changeable(&held, "cancelled").is_err());
    }
}
