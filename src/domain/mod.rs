//! Parsed, validated domain types and pure rules. No I/O lives here: every value from
//! outside becomes one of these types before it reaches storage.

pub mod account;
pub mod action;
pub mod attachment;
pub mod audit;
pub mod body_site;
pub mod booking;
pub mod case;
pub mod caseload;
pub mod communication;
pub mod conflict;
pub mod dicom;
pub mod email;
pub mod fhir;
pub mod invitation;
pub mod letter;
pub mod live;
pub mod measures;
pub mod mentorship;
pub mod message;
pub mod nhs_number;
pub mod outcome;
pub mod parse;
pub mod password;
pub mod patient;
pub mod person_name;
pub mod practices;
pub mod proforma;
pub mod report;
pub mod role;
pub mod schedule;
pub mod specialty;
pub mod supervision;
pub mod time_window;
pub mod triage;
pub mod user;
pub mod viewer;

pub use attachment::{Attachment, AttachmentKind};
pub use audit::{AuditEvent, AuditVerification, NewAuditEvent};
pub use case::{
    BodySite, Case, CaseDetails, CaseState, CaseView, ClinicalText, NewCase, OdsCode,
    PatientDetails, Sex, Urgency,
};
pub use email::EmailAddress;
pub use message::{NewMessage, OutboxMessage};
pub use nhs_number::NhsNumber;
pub use outcome::{
    Amendment, AmendmentReason, AmendmentRequest, FollowUp, Investigation, InvestigationKind,
    ManagementPlan, OutcomeDraft, OutcomeRequest, OutcomeSummary, OutcomeVersion, Referral,
    ReferralDestination,
};
pub use parse::{bounded_text, ParseError};
pub use password::Password;
pub use person_name::PersonName;
pub use role::Role;
pub use schedule::{NewSeries, Series, Session, SessionState};
pub use specialty::Specialty;
pub use time_window::TimeWindow;
pub use user::{NewUser, User, UserId};
