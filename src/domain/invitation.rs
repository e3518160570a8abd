//! Who may be invited to a session besides those it already reaches (its chair, the
//! referrers of its cases, the members of its specialty): learners, trainees and guests
//! of another specialty. Pure rules; `store::invitations` applies them, and
//! `auth::access` says what an invitation lets its holder see.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::conflict::Conflict;
use super::parse::ParseError;
use super::role::Role;
use super::schedule::{Session, SessionState};
use super::user::{User, UserId};

/// Why someone is invited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationKind {
    /// A practitioner who comes to learn (typically with no case on the agenda); sees
    /// the agenda identified.
    Learner,
    /// A consultant or practitioner of another specialty who joins the discussion; sees
    /// the agenda identified, waits in the lobby until the chair admits them, and never
    /// records or signs outcomes.
    Guest,
    /// A trainee, at a teaching session; sees the agenda de-identified.
    Trainee,
}

impl InvitationKind {
    pub const ALL: [InvitationKind; 3] =
        [InvitationKind::Learner, InvitationKind::Guest, InvitationKind::Trainee];

    pub fn as_str(self) -> &'static str {
        match self {
            InvitationKind::Learner => "learner",
            InvitationKind::Guest => "guest",
            InvitationKind::Trainee => "trainee",
        }
    }
}

impl FromStr for InvitationKind {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            ParseError::new("invalid_kind", "kind", "must be one of learner, guest, trainee")
        })
    }
}

/// An active invitation (a withdrawn one is kept in the table but not shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub session_id: Uuid,
    pub user_id: UserId,
    pub kind: InvitationKind,
    pub invited_by: UserId,
    pub invited_at: DateTime<Utc>,
}

/// Why an invitation may not be made or withdrawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `422`: the invitee does not fit the kind.
    Invalid(ParseError),
    /// `409`: the session's state or kind does not allow it.
    Conflict(Conflict),
}

/// Invitations change until the meeting closes: `409 invalid_state` for a closed or
/// cancelled session.
pub fn check_open(session: &Session) -> Result<(), Conflict> {
    match session.state {
        SessionState::Closed | SessionState::Cancelled => Err(Conflict::invalid(format!(
            "a {} session's invitations cannot change",
            session.state.as_str()
        ))),
        _ => Ok(()),
    }
}

/// Whether `invitee` may be invited to `session` as `kind`: an active account; a learner
/// is a practitioner; a trainee is a trainee and the session is for teaching
/// (`409 not_a_teaching_session`); a guest is a consultant or practitioner who is not a
/// member of the session's specialty (`422 not_a_guest`). The wrong role for the kind is
/// `422 invalid_invitee`; the session must not be closed or cancelled.
pub fn check_invitation(
    session: &Session, invitee: &User, kind: InvitationKind,
) -> Result<(), Refusal> {
    check_open(session).map_err(Refusal::Conflict)?;
    let invalid = |code, message: &str| Refusal::Invalid(ParseError::new(code, "user_id", message));
    if !invitee.active {
        return Err(invalid("unknown_user", "names no active account"));
    }
    match kind {
        InvitationKind::Learner if invitee.role != Role::Practitioner => {
            Err(invalid("invalid_invitee", "a learner is a practitioner"))
        }
        InvitationKind::Trainee if invitee.role != Role::Trainee => {
            Err(invalid("invalid_invitee", "only trainees are invited as trainees"))
        }
        InvitationKind::Trainee if !session.plan.teaching => {
            Err(Refusal::Conflict(Conflict::NotATeachingSession))
        }
        InvitationKind::Guest if !matches!(invitee.role, Role::Consultant | Role::Practitioner) => {
            Err(invalid("invalid_invitee", "a guest is a consultant or a practitioner"))
        }
        InvitationKind::Guest if invitee.has_specialty(&session.plan.specialty) => Err(invalid(
            "not_a_guest",
            "a guest is of another specialty; members of the session's specialty are invited as learners or already take part",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, PersonName, Specialty};

    fn user(role: Role, specialty: &str) -> User {
        User {
            id: UserId::new(),
            email: EmailAddress::parse("someone@example.org").unwrap(),
            name: PersonName::parse("Some One").unwrap(),
            role,
            specialties: vec![Specialty::parse(specialty).unwrap()],
            organisation: None,
            active: true,
            must_change_password: false,
            created_at: Utc::now(),
        }
    }

    fn session(state: SessionState, teaching: bool) -> Session {
        let mut s = Session::example(UserId::new(), Utc::now(), 8, 0, state);
        s.plan.teaching = teaching;
        s
    }

    fn code(r: Result<(), Refusal>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(Refusal::Invalid(e)) => e.code,
            Err(Refusal::Conflict(c)) => c.code(),
        }
    }

    #[test]
    fn kinds_parse_from_their_wire_names_only() {
        for k in InvitationKind::ALL {
            assert_eq!(k.as_str().parse::<InvitationKind>().unwrap(), k);
        }
        assert_eq!("observer".parse::<InvitationKind>().unwrap_err().code, "invalid_kind");
    }

    #[test]
    fn learners_are_practitioners_and_trainees_come_to_teaching_sessions() {
        let s = session(SessionState::Published, false);
        assert_eq!(
            code(check_invitation(
                &s,
                &user(Role::Practitioner, "spinal"),
                InvitationKind::Learner
            )),
            "ok"
        );
        assert_eq!(
            code(check_invitation(&s, &user(Role::Consultant, "spinal"), InvitationKind::Learner)),
            "invalid_invitee"
        );
        let trainee = user(Role::Trainee, "spinal");
        assert_eq!(
            code(check_invitation(&s, &trainee, InvitationKind::Trainee)),
            "not_a_teaching_session"
        );
        let teaching = session(SessionState::Scheduled, true);
        assert_eq!(code(check_invitation(&teaching, &trainee, InvitationKind::Trainee)), "ok");
        assert_eq!(
            code(check_invitation(
                &teaching,
                &user(Role::Practitioner, "spinal"),
                InvitationKind::Trainee
            )),
            "invalid_invitee"
        );
    }

    #[test]
    fn guests_come_from_another_specialty() {
        let s = session(SessionState::Live, false);
        let neurologist = user(Role::Consultant, "neurology");
        assert_eq!(code(check_invitation(&s, &neurologist, InvitationKind::Guest)), "ok");
        let psychologist = user(Role::Practitioner, "pain");
        assert_eq!(code(check_invitation(&s, &psychologist, InvitationKind::Guest)), "ok");
        let member = user(Role::Consultant, "spinal");
        assert_eq!(code(check_invitation(&s, &member, InvitationKind::Guest)), "not_a_guest");
        let trainee = user(Role::Trainee, "neurology");
        assert_eq!(code(check_invitation(&s, &trainee, InvitationKind::Guest)), "invalid_invitee");
        let coordinator = user(Role::Coordinator, "neurology");
        assert_eq!(
            code(check_invitation(&s, &coordinator, InvitationKind::Guest)),
            "invalid_invitee"
        );
    }

    #[test]
    fn inactive_accounts_and_finished_sessions_take_no_invitations() {
        let mut gone = user(Role::Practitioner, "spinal");
        gone.active = false;
        let s = session(SessionState::Published, false);
        assert_eq!(code(check_invitation(&s, &gone, InvitationKind::Learner)), "unknown_user");
        let physio = user(Role::Practitioner, "spinal");
        for state in [SessionState::Closed, SessionState::Cancelled] {
            let s = session(state, false);
            assert_eq!(
                code(check_invitation(&s, &physio, InvitationKind::Learner)),
                "invalid_state"
            );
        }
    }
}
