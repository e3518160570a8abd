//! The mail a live command sends with its events: when the chair confirms listed cases'
//! standard outcomes (`confirm_listed`), each referrer's notice and each case's GP and
//! patient letters, made from the same versions the store writes and stored with them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::shared::Shared;
use crate::domain::letter::NewLetter;
use crate::domain::{Case, NewMessage, Session, UserId};
use crate::letters::issue::letter_inputs;
use crate::letters::LetterFacts;
use crate::mail::templates::{self, Discussed};
use crate::store::StoreError;

/// What confirming listed cases sends: the referrers' notices, and per case its letters.
#[derive(Default)]
pub struct ListedMail {
    pub notices: Vec<NewMessage>,
    pub letters: Vec<(Uuid, Vec<NewLetter>)>,
}

/// The mail for each listed case among `agenda` named in `case_ids`, signed by `signer`
/// at `now` (a case without its plan gets none; the store refuses it anyway).
pub async fn listed_mail(
    shared: &Shared, session: &Session, agenda: &[Case], case_ids: &[Uuid], signer: UserId,
    now: DateTime<Utc>,
) -> Result<ListedMail, StoreError> {
    let store = &shared.store;
    let plans = store.specialty_rules(&session.plan.specialty).await?.standard_plans;
    let Some(signer_name) = store.user(signer).await?.map(|u| u.name) else {
        return Ok(ListedMail::default());
    };
    let mut mail = ListedMail::default();
    for case in agenda.iter().filter(|c| case_ids.contains(&c.id)) {
        let code = case.standard_plan.as_deref();
        let Some(plan) = plans.iter().find(|p| Some(p.code.as_str()) == code) else { continue };
        let version = plan.signed_outcome(case.id, signer, now);
        let referrer = store.user(case.referrer_id).await?;
        if let Some(referrer) = &referrer {
            let discussed = Discussed { session, at: now };
            let notice = templates::outcome_letter(
                &referrer.email,
                discussed,
                case,
                &version,
                &signer_name,
                None,
                false,
            );
            mail.notices.push(notice);
        }
        let inputs = letter_inputs(store, case, session).await?;
        let facts = LetterFacts {
            case,
            version: &version,
            session,
            discussed_at: now,
            follow_up_session: None,
            signer: &signer_name,
            referrer: referrer.as_ref(),
            practice: inputs.practice.as_ref(),
            present: &inputs.present,
        };
        mail.letters.push((case.id, shared.letters.new_letters(&facts).await?));
    }
    Ok(mail)
}
