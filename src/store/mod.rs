//! Storage: one [`Store`] over SQLite (embedded default) or PostgreSQL (multi-instance),
//! chosen by the database URL's scheme. Each workflow is written once, in the area files
//! below, over the backend-neutral pool, transaction and row of [`db`]; `sqlite.rs` and
//! `postgres.rs` hold only what differs (opening, id encoding, locking, notifications).
//! Methods take and return domain types; nothing outside this module sees SQL.

pub mod backup;
pub mod blobs;
mod core;
mod db;
mod error;
mod postgres;
pub mod renders;
mod rows;
mod sql;
mod sqlite;

mod accounts;
mod actions;
mod audit;
mod caseload;
mod clocks;
mod facts;
mod invitations;
mod letters;
mod live;
mod measures;
mod mentorship;
mod outbox;
mod outcomes;
mod patients;
mod reports;
mod schedule;
mod supervision;
mod triage;

pub use self::accounts::{Credentials, NewPassword, NewRefreshToken, RefreshOutcome};
pub use self::actions::{ActionQuery, ActionUpdate, UpdatedAction};
pub use self::core::{connect, settings_for, until_unchanged, DynStore, Store};
pub use self::error::{BackupError, ConnectError, StoreError};
pub use self::measures::TallyGroup;
pub use self::mentorship::AttendedSession;
pub use self::outcomes::SignedOutcome;
pub use self::patients::PatientCorrection;
pub use self::postgres::LiveSignal;
pub use self::schedule::{Booked, CancelPlan, Cancelled};
pub use self::triage::SpecialtyRules;
