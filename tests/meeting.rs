//! The meeting and its records over HTTP, on both backends: outcomes (draft, sign,
//! amend, letters, follow-ups, access). Each area is a module under `tests/meeting/`.

mod common;

#[path = "meeting/outcomes.rs"]
mod outcomes;
