//! Why a change was refused by the state of the data (a `409`): one variant per rule, so
//! callers decide what to do by matching variants, never by comparing strings.

/// A refusal by the state of the data. `code()` is the stable wire code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("that specialty already exists")]
    SpecialtyExists,
    #[error("an account with that email exists")]
    EmailTaken,
    #[error("the session has no free case slots")]
    SessionFull,
    #[error("this patient is already booked into the session")]
    DuplicateCase,
    #[error("the case is already in that session")]
    SameSession,
    #[error("bookings for this session closed at its cut-off")]
    BookingClosed,
    #[error("the session is {0} and takes no bookings")]
    SessionNotBookable(&'static str),
    #[error("the order must list exactly the cases now on the agenda; reload and try again")]
    AgendaChanged,
    #[error("the session changed meanwhile; catch up and try again")]
    StaleSeq,
    #[error("that command id was already applied")]
    DuplicateCommand,
    #[error("the outcome is signed and cannot change; record an amendment instead")]
    OutcomeSigned,
    #[error("the outcome is still a draft: change it and sign it instead of amending")]
    OutcomeNotSigned,
    #[error("there is no outcome draft for this case")]
    NoDraft,
    #[error("the consultant already has a contract in this arm on some of these days")]
    ContractOverlaps,
    #[error("the case is {0}, not awaiting triage")]
    NotAwaitingTriage(&'static str),
    #[error("the case is {0}: only a returned case is edited and resubmitted")]
    NotReturned(&'static str),
    #[error("the agenda is published: only an urgent case the chair approves may be added")]
    AgendaPublished,
    #[error("the agenda must be published at least {0} hours before the meeting")]
    PublicationTooLate(u32),
    #[error("trainees are invited to teaching sessions only")]
    NotATeachingSession,
    #[error("that person is already invited to this session")]
    AlreadyInvited,
    #[error("the case was not discussed in its meeting: give the reason for deciding outside it")]
    NotDiscussed,
    #[error("that day is already a bank holiday")]
    BankHolidayExists,
    #[error("an action cannot go from {from} to {to}")]
    InvalidTransition { from: &'static str, to: &'static str },
    #[error("the case was booked into the MDT: the meeting decides on it now")]
    AlreadyBooked,
    #[error("the contract already has a cover on some of these days")]
    CoverOverlaps,
    #[error("the supervisor already has {0} supervisees, the most allowed")]
    SupervisorFull(u32),
    #[error("nobody deactivates or resets their own account; ask another coordinator")]
    OwnAccount,
    #[error("the account is already deactivated")]
    AlreadyInactive,
    #[error("the account is already active")]
    AlreadyActive,
    #[error("the account is deactivated: reactivate it before resetting its password")]
    AccountInactive,
    /// What a change was planned from changed before it could be applied; plan again.
    #[error("the records changed meanwhile; try again")]
    Changed,
    /// The record's state does not allow the change (the message says which).
    #[error("{0}")]
    InvalidState(String),
}

impl Conflict {
    pub fn code(&self) -> &'static str {
        match self {
            Conflict::SpecialtyExists => "specialty_exists",
            Conflict::EmailTaken => "email_taken",
            Conflict::SessionFull => "session_full",
            Conflict::DuplicateCase => "duplicate_case",
            Conflict::SameSession => "same_session",
            Conflict::BookingClosed => "booking_closed",
            Conflict::SessionNotBookable(_) => "session_not_bookable",
            Conflict::AgendaChanged => "agenda_changed",
            Conflict::StaleSeq => "stale_seq",
            Conflict::DuplicateCommand => "duplicate_command",
            Conflict::OutcomeSigned => "outcome_signed",
            Conflict::OutcomeNotSigned => "outcome_not_signed",
            Conflict::NoDraft => "no_draft",
            Conflict::ContractOverlaps => "contract_overlaps",
            Conflict::NotAwaitingTriage(_) => "not_awaiting_triage",
            Conflict::NotReturned(_) => "not_returned",
            Conflict::AgendaPublished => "agenda_published",
            Conflict::PublicationTooLate(_) => "publication_too_late",
            Conflict::NotATeachingSession => "not_a_teaching_session",
            Conflict::AlreadyInvited => "already_invited",
            Conflict::NotDiscussed => "not_discussed",
            Conflict::BankHolidayExists => "bank_holiday_exists",
            Conflict::InvalidTransition { .. } => "invalid_transition",
            Conflict::AlreadyBooked => "already_booked",
            Conflict::CoverOverlaps => "cover_overlaps",
            Conflict::SupervisorFull(_) => "supervisor_full",
            Conflict::OwnAccount => "cannot_change_own_account",
            Conflict::AlreadyInactive => "already_inactive",
            Conflict::AlreadyActive => "already_active",
            Conflict::AccountInactive => "account_inactive",
            Conflict::Changed => "changed_meanwhile",
            Conflict::InvalidState(_) => "invalid_state",
        }
    }

    /// `invalid_state` with a message naming what is not possible.
    pub fn invalid(message: impl Into<String>) -> Self {
        Conflict::InvalidState(message.into())
    }
}
