//! Who may see or do what with sessions and cases (DESIGN §2, §7). Pure functions of the
//! caller, the session and the case; handlers call these before touching patient data.

use crate::domain::caseload::CaseloadCase;
use crate::domain::invitation::InvitationKind;
use crate::domain::{Case, Role, Session, User, UserId};
use crate::error::ApiError;

/// How much of an agenda a caller may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgendaAccess {
    /// The session only, no cases.
    None,
    /// Cases de-identified (trainees at teaching sessions).
    DeIdentified,
    /// Cases with identifiers.
    Full,
}

/// Coordinators see every agenda; consultants those of their specialties; practitioners
/// those they have booked into; trainees teaching sessions, de-identified. Besides, the
/// session's invitees (`invited`, active invitations only): learners and guests see it
/// identified (they are clinicians in the discussion), trainees de-identified.
pub fn agenda_access(
    user: &User, session: &Session, booked_into: bool, invited: Option<InvitationKind>,
) -> AgendaAccess {
    match (own_access(user, session, booked_into), invited) {
        (AgendaAccess::None, Some(_)) if user.role == Role::Trainee => AgendaAccess::DeIdentified,
        (AgendaAccess::None, Some(_)) => AgendaAccess::Full,
        (own, _) => own,
    }
}

/// What a caller sees without an invitation.
fn own_access(user: &User, session: &Session, booked_into: bool) -> AgendaAccess {
    match user.role {
        Role::Coordinator => AgendaAccess::Full,
        Role::Consultant if user.has_specialty(&session.plan.specialty) => AgendaAccess::Full,
        Role::Practitioner if booked_into => AgendaAccess::Full,
        Role::Trainee if session.plan.teaching => AgendaAccess::DeIdentified,
        _ => AgendaAccess::None,
    }
}

/// A guest (someone who takes part only through a guest invitation) waits in the
/// meeting's lobby until the chair admits them.
pub fn waits_in_lobby(
    user: &User, session: &Session, booked_into: bool, invited: Option<InvitationKind>,
) -> bool {
    invited == Some(InvitationKind::Guest)
        && user.id != session.plan.chair_id
        && own_access(user, session, booked_into) == AgendaAccess::None
}

/// Whether the caller may read one case, and how. `None` means not at all (answer 404,
/// so a case's existence is not revealed).
pub fn case_access(user: &User, case: &Case, session: &Session) -> AgendaAccess {
    match user.role {
        Role::Coordinator => AgendaAccess::Full,
        Role::Consultant if user.has_specialty(&session.plan.specialty) => AgendaAccess::Full,
        Role::Practitioner if case.referrer_id == user.id => AgendaAccess::Full,
        Role::Trainee if session.plan.teaching => AgendaAccess::DeIdentified,
        _ => AgendaAccess::None,
    }
}

/// Practitioners and consultants book into sessions of their specialties; coordinators
/// into any; trainees never.
pub fn may_book_into(user: &User, session: &Session) -> Result<(), ApiError> {
    match user.role {
        Role::Coordinator => Ok(()),
        Role::Practitioner | Role::Consultant if user.has_specialty(&session.plan.specialty) => {
            Ok(())
        }
        Role::Practitioner | Role::Consultant => Err(ApiError::Forbidden {
            code: "forbidden_specialty",
            message: format!("you do not book into {} sessions", session.plan.specialty),
        }),
        Role::Trainee => Err(ApiError::forbidden("trainees do not book cases")),
    }
}

/// The session's chair or a coordinator invites people to it and withdraws invitations.
pub fn may_manage_invitations(user: &User, session: &Session) -> Result<(), ApiError> {
    if user.role == Role::Coordinator || user.id == session.plan.chair_id {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the chair or a coordinator manages invitations"))
    }
}

/// Triage (issue 15) is for the session's chair and coordinators.
pub fn may_triage(user: &User, session: &Session) -> Result<(), ApiError> {
    if user.role == Role::Coordinator || user.id == session.plan.chair_id {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the session's chair or a coordinator triages its bookings"))
    }
}

/// The referrer or a coordinator may withdraw a case.
pub fn may_withdraw(user: &User, case: &Case) -> bool {
    user.role == Role::Coordinator || case.referrer_id == user.id
}

/// Clinical decisions are by clinicians: the session's chair or a consultant of its
/// specialty may draft an outcome (coordinators, practitioners and trainees may not, nor
/// guests: a consultant of another specialty invited to the session).
pub fn may_draft_outcome(user: &User, session: &Session) -> Result<(), ApiError> {
    let consultant = user.role == Role::Consultant && user.has_specialty(&session.plan.specialty);
    if consultant || user.id == session.plan.chair_id {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the chair or a consultant of the specialty records outcomes"))
    }
}

/// A consultant of the session's specialty (the chair is one) signs and amends outcomes;
/// an invitation never makes a guest one.
pub fn may_sign_outcome(user: &User, session: &Session) -> Result<(), ApiError> {
    let of_specialty =
        user.has_specialty(&session.plan.specialty) || user.id == session.plan.chair_id;
    if user.role == Role::Consultant && of_specialty {
        Ok(())
    } else {
        Err(ApiError::forbidden("only a consultant of the specialty signs or amends outcomes"))
    }
}

/// Mentorship (issue 7): a case is flagged for, or taken off, its arm's mentorship
/// backlog by its referrer, a consultant of its specialty, or a coordinator.
pub fn may_flag_for_mentorship(
    user: &User, case: &Case, session: &Session,
) -> Result<(), ApiError> {
    let allowed = match user.role {
        Role::Coordinator => true,
        Role::Consultant => user.has_specialty(&session.plan.specialty),
        _ => case.referrer_id == user.id,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "the referrer, a consultant of the specialty or a coordinator flags cases for mentorship",
        ))
    }
}

/// Tracked actions (issue 16): an action is seen and changed by its owner, a consultant of
/// its case's specialty (or the session's chair) and coordinators; trainees never.
pub fn may_handle_action(user: &User, owner: UserId, session: &Session) -> bool {
    match user.role {
        Role::Coordinator => true,
        Role::Trainee => false,
        Role::Consultant => {
            user.id == owner
                || user.has_specialty(&session.plan.specialty)
                || user.id == session.plan.chair_id
        }
        Role::Practitioner => user.id == owner,
    }
}

/// Who may own an action of a case of `session`: an active coordinator, or an active
/// consultant or practitioner of its specialty (`422 invalid_owner` otherwise).
pub fn may_own_action(user: &User, session: &Session) -> Result<(), crate::domain::ParseError> {
    let fits = user.active
        && match user.role {
            Role::Coordinator => true,
            Role::Trainee => false,
            Role::Consultant | Role::Practitioner => user.has_specialty(&session.plan.specialty),
        };
    match fits {
        true => Ok(()),
        false => Err(crate::domain::ParseError::new(
            "invalid_owner",
            "owner_id",
            "an action is owned by a coordinator or a clinician of the case's specialty",
        )),
    }
}

/// Mentorship on the caseload (issue 21): a caseload case is seen by the practitioner who
/// added it, the consultants mentoring its arm (`mentors_arm`: a contract of theirs in the
/// arm runs today, or they cover one) and coordinators; trainees never, nor any other
/// practitioner or consultant (answer 404, so its existence is not revealed).
pub fn may_see_caseload_case(user: &User, case: &CaseloadCase, mentors_arm: bool) -> bool {
    match user.role {
        Role::Coordinator => true,
        Role::Consultant => mentors_arm,
        Role::Practitioner => case.practitioner_id == user.id,
        Role::Trainee => false,
    }
}

/// Advice on a caseload case is a mentoring consultant's of its arm.
pub fn may_advise(user: &User, mentors_arm: bool) -> Result<(), ApiError> {
    if user.role == Role::Consultant && mentors_arm {
        Ok(())
    } else {
        Err(ApiError::forbidden("a consultant mentoring the case's arm gives advice on it"))
    }
}
