//! The service's records beyond the meeting, on both backends: mentorship contracts, logs
//! and summary; caseload mentorship, covers and the supervision record; teaching
//! attendance and CPD; the activity report and its CSV; the FHIR export; audit queries. Each area is a module under `tests/records/`.

mod common;

#[path = "records/mentorship.rs"]
mod mentorship;

#[path = "records/supervision.rs"]
mod supervision;

#[path = "records/reports.rs"]
mod reports;

#[path = "records/measures.rs"]
mod measures;

#[path = "records/fhir.rs"]
mod fhir;

#[path = "records/letters.rs"]
mod letters;

#[path = "records/clocks.rs"]
mod clocks;
