//! The mail a live command sends with its events: the referrers' outcome letters when the
//! chair confirms listed cases' standard outcomes (`confirm_listed`). Composed from the
//! same versions the store writes, then queued in the events' transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Case, NewMessage, Session, UserId};
use crate::mail::templates::{self, Discussed};
use crate::store::{DynStore, StoreError};

/// One letter per listed case among `agenda` named in `case_ids`, signed by `signer`
/// at `now` (a case without its plan or referrer gets none; the store refuses it anyway).
pub async fn listed_letters(
    store: &DynStore, session: &Session, agenda: &[Case], case_ids: &[Uuid], signer: UserId,
    now: DateTime<Utc>,
) -> Result<Vec<NewMessage>, StoreError> {
    let plans = store.specialty_rules(&session.plan.specialty).await?.standard_plans;
    let Some(signer_name) = store.user(signer).await?.map(|u| u.name) else {
        return Ok(Vec::new());
    };
    let mut letters = Vec::new();
    for case in agenda.iter().filter(|c| case_ids.contains(&c.id)) {
        let code = case.standard_plan.as_deref();
        let Some(plan) = plans.iter().find(|p| Some(p.code.as_str()) == code) else { continue };
        let Some(referrer) = store.user(case.referrer_id).await? else { continue };
        let version = plan.signed_outcome(case.id, signer, now);
        let discussed = Discussed { session, at: now };
        letters.push(templates::outcome_letter(
            &referrer.email,
            discussed,
            case,
            &version,
            &signer_name,
            None,
            false,
        ));
    }
    Ok(letters)
}
