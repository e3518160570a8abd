//! Parsed, validated domain types and pure rules. No I/O lives here: every value from
//! outside becomes one of these types before it reaches storage.

use std::borrow::Cow;

pub mod attachment;
pub mod audit;
pub mod booking;
pub mod case;
pub mod conflict;
pub mod email;
pub mod fhir;
pub mod live;
pub mod mentorship;
pub mod message;
pub mod nhs_number;
pub mod outcome;
pub mod password;
pub mod patient;
pub mod person_name;
pub mod report;
pub mod role;
pub mod schedule;
pub mod specialty;
pub mod time_window;
pub mod user;

pub use attachment::{Attachment, AttachmentKind};
pub use audit::{AuditEvent, AuditVerification, NewAuditEvent};
pub use case::{
    BodySite, Case, CaseState, CaseView, ClinicalText, NewCase, OdsCode, PatientDetails, Sex,
    Urgency,
};
pub use email::EmailAddress;
pub use message::{NewMessage, OutboxMessage};
pub use nhs_number::NhsNumber;
pub use outcome::{
    Amendment, AmendmentReason, AmendmentRequest, FollowUp, Investigation, InvestigationKind,
    ManagementPlan, OutcomeDraft, OutcomeRequest, OutcomeSummary, OutcomeVersion, Referral,
    ReferralDestination,
};
pub use password::Password;
pub use person_name::PersonName;
pub use role::Role;
pub use schedule::{NewSeries, Series, Session, SessionState};
pub use specialty::Specialty;
pub use time_window::TimeWindow;
pub use user::{NewUser, User, UserId};

/// Why a value from outside was refused: a stable snake_case `code` naming the rule and
/// the `field` it applies to (a path such as `investigations[1].notes` inside nested
/// bodies). Routes turn it into a `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    pub code: &'static str,
    pub field: Cow<'static, str>,
    pub message: String,
}

impl ParseError {
    pub fn new(
        code: &'static str, field: impl Into<Cow<'static, str>>, message: impl Into<String>,
    ) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }

    /// The same rule applied to another field (e.g. a name used as `family_name`).
    pub fn for_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = field.into();
        self
    }
}

/// Trims and checks a bounded single-line or multi-line text; shared by names and
/// clinical text so the rules stay in one place.
pub fn bounded_text(
    raw: &str, field: &'static str, max_chars: usize, multiline: bool,
) -> Result<String, ParseError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(ParseError::new("required", field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(ParseError::new(
            "too_long",
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    let bad = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'));
    if text.chars().any(bad) {
        return Err(ParseError::new("invalid_characters", field, "contains control characters"));
    }
    Ok(text.to_string())
}
