//! Issuing a signed version's letters: what they say beyond the version (the patient's
//! practice, who attended the meeting), rendered, and their PDFs put in the blob store.
//! The one path for signing, amending and the chair's confirmation of listed cases.

use uuid::Uuid;

use super::{prepare, LetterFacts};
use crate::domain::letter::{NewLetter, Practice, SecureDomains};
use crate::domain::{Case, Session};
use crate::store::blobs::Blobs;
use crate::store::{Store, StoreError};

/// Where issued letters go: the blob store for their PDFs and the secure mail domains.
pub struct Issuer {
    pub blobs: Blobs,
    pub secure: SecureDomains,
}

/// What the GP and patient letters say beyond the case and version: the patient's
/// practice (if coordinators keep it) and who attended the session's live meeting.
pub struct LetterInputs {
    pub practice: Option<Practice>,
    pub present: Vec<(String, &'static str)>,
}

/// Reads the letters' inputs for `case` in `session`.
pub async fn letter_inputs(
    store: &Store, case: &Case, session: &Session,
) -> Result<LetterInputs, StoreError> {
    let practice = store.practice(&case.patient.gp_practice_code).await?;
    let mut present = Vec::new();
    let mut seen = Vec::new();
    for a in store.session_attendance(session.id).await? {
        if seen.contains(&a.user_id) {
            continue;
        }
        seen.push(a.user_id);
        if let Some(u) = store.user(a.user_id).await? {
            present.push((u.name.as_str().to_string(), a.role.as_str()));
        }
    }
    Ok(LetterInputs { practice, present })
}

impl Issuer {
    /// The GP and patient letters of the signed version in `facts`, their PDFs stored.
    pub async fn new_letters(&self, facts: &LetterFacts<'_>) -> Result<Vec<NewLetter>, StoreError> {
        let mut out = Vec::new();
        for p in prepare(facts, &self.secure) {
            let sha256 = self
                .blobs
                .put(&p.pdf)
                .await
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            out.push(NewLetter {
                id: Uuid::new_v4(),
                kind: p.kind,
                sha256,
                deliveries: p.deliveries,
                emails: p.emails,
                notices: p.notices,
            });
        }
        Ok(out)
    }
}
